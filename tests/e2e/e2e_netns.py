#!/usr/bin/python3
"""Banyan end to end: `banyan-provider all` with the netns drivers, real amphorae
(banyan-agent + banyan-proxy + keepalived in network namespaces), the real
`openstack loadbalancer` CLI, and real traffic through the VIPs to member hosts.

    e2e_netns.py --provider BIN --agent BIN --proxy BIN --member-server PY [--backend sqlite|postgresql]
                 [--roles all|split]

--backend postgresql runs the same scenario on a throwaway PostgreSQL cluster the
script starts itself (pg_cluster.py: initdb in the temp dir, 127.0.0.1, a free port)
and stops at the end, also on failure; the default is the embedded SQLite file.

--roles split (PostgreSQL only) runs the provider as separate processes on the same
provider.conf: `api`, two `worker`s, `health` and `housekeeping`, each with its own log
(provider-<name>.log); the default `all` is one process (provider.log). The workers
claim jobs from the shared database; the netns drivers of both workers and of
housekeeping share one host and one state directory. Split adds its own checks:
three creates at once, each job run by exactly one worker, one amphora each and no
namespace without an amphora; and the provider killed during a create becomes the
worker that claimed it killed (SIGKILL) while the other keeps running.

Needs root. Everything runs inside namespaces and bridges this test creates, on
documentation ranges (203.0.113.0/24 split in three), and is removed at the end,
even on failure; the last check is that nothing is left behind. Exit status 0 when
every check passed. Timings are printed, not asserted beyond the issue's bounds.
"""
import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from local_procs import free_port, stop_process  # noqa: E402
from pg_cluster import PgCluster, child_setup  # noqa: E402

CHECKS = []
TIMINGS = {}

# --roles split: the processes, by name; "workerN" run the `worker` role.
SPLIT_PROCESSES = ("api", "health", "housekeeping", "worker1", "worker2")
# A line each role logs once it runs (the API is checked over HTTP instead).
STARTED_LINE = {"worker": "controller worker started", "health": "health manager listening"}
CLAIMED_RE = re.compile(r"job claimed job=(\d+) kind=(\S+) attempt=(\d+)")
DONE_RE = re.compile(r"job done job=(\S+) lb=(\S*) ")


def role_of(name):
    return "worker" if name.startswith("worker") else name


def check(name, ok, detail=""):
    CHECKS.append((name, bool(ok), detail))
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, (": " + detail) if detail and not ok else ""), flush=True)
    return bool(ok)


def run(cmd, check_rc=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check_rc and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r


class Env:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="banyan-e2e-")
        self.prefix = "be" + secrets.token_hex(2)
        self.api_port = free_port()
        self.hm_port = free_port(socket.SOCK_DGRAM)
        self.vip_net = "0e2e0000-0000-4000-8000-203000113064"
        self.mem_net = "0e2e0000-0000-4000-8000-203000113128"
        # A second member subnet (bridge <prefix>-mem1): plugged while a member lives there.
        self.mem_net2 = "0e2e0000-0000-4000-8000-203000113000"
        self.split = args.roles == "split"
        self.procs = {}  # process name ("all", or SPLIT_PROCESSES) -> Popen
        self.started = []  # (what, Popen) of every long-running process started: none may outlive cleanup()
        self.pg = None  # PgCluster with --backend postgresql
        self.member_pids = {}
        self.members = {}  # name -> address
        self.clients = []  # namespaces of extra clients on the VIP network
        self.conf = os.path.join(self.tmp, "provider.conf")
        with open(self.conf, "w") as f:
            f.write("""[DEFAULT]
state_dir = {tmp}/state
debug = true
[api_settings]
bind_port = {api}
noauth_project_id = demo
[controller_worker]
amp_active_retries = 30
amp_active_wait_sec = 1
[health_manager]
bind_port = {hm}
heartbeat_interval = 1
heartbeat_timeout = 6
health_check_interval = 1
[house_keeping]
spare_amphora_pool_size = 1
spare_check_interval = 1
# Certificates valid one day, rotated when less than two are left, checked every 5 s:
# every amphora's certificate is rotated again and again while the scenario runs.
cert_interval = 5
cert_expiry_buffer = 172800
[certificates]
cert_validity_time = 86400
cert_manager = local_cert_manager
storage_path = {tmp}/state/certificates
[netns]
state_dir = {tmp}/state/netns
name_prefix = {prefix}
management_cidr = 203.0.113.192/26
vip_networks = {vip}::203.0.113.64/26
member_networks = {mem}::203.0.113.128/26, {mem2}::203.0.113.0/26
agent_binary = {agent}
proxy_binary = {proxy}
""".format(tmp=self.tmp, api=self.api_port, hm=self.hm_port, prefix=self.prefix, vip=self.vip_net,
           mem=self.mem_net, mem2=self.mem_net2, agent=args.agent, proxy=args.proxy))
        self.base = "http://127.0.0.1:%d" % self.api_port

    # --- processes -------------------------------------------------------------
    def start_database(self):
        """--backend postgresql: a cluster of our own, named in the provider's config."""
        if self.args.backend != "postgresql":
            return
        self.pg = PgCluster(os.path.join(self.tmp, "pg"))
        self.pg.start()
        self.started.append(("postgres", self.pg.proc))
        with open(self.conf, "a") as f:
            f.write("[database]\nconnection = %s\n" % self.pg.url())

    def process_names(self):
        return SPLIT_PROCESSES if self.split else ("all",)

    def worker_names(self):
        return [n for n in self.process_names() if role_of(n) in ("worker", "all")]

    def log_path(self, name):
        return os.path.join(self.tmp, "provider.log" if name == "all" else "provider-%s.log" % name)

    def log_text(self, name=None, since=None):
        """The log of process NAME (every provider log when None), from the byte offsets
        SINCE (log_offsets()) on when given."""
        out = ""
        for n in ([name] if name else self.process_names()):
            try:
                with open(self.log_path(n), "rb") as f:
                    f.seek((since or {}).get(n, 0))
                    out += f.read().decode(errors="replace")
            except OSError:
                pass
        return out

    def log_offsets(self):
        return {n: os.path.getsize(self.log_path(n)) if os.path.exists(self.log_path(n)) else 0
                for n in self.process_names()}

    def start_provider(self, names=None):
        """Starts the provider processes NAMES (default: every one not running) and waits
        until each runs: the API answers, a worker, health manager logged its start."""
        names = [n for n in (names or self.process_names())
                 if n not in self.procs or self.procs[n].poll() is not None]
        since = self.log_offsets()
        for name in names:
            with open(self.log_path(name), "a") as log:
                # SIGTERM when this script dies without its cleanup (killed by a timeout).
                self.procs[name] = subprocess.Popen([self.args.provider, "--config-file", self.conf, role_of(name)],
                                                    stdout=log, stderr=subprocess.STDOUT,
                                                    preexec_fn=child_setup(signal.SIGTERM))
                self.started.append(("provider " + name, self.procs[name]))
        deadline = time.time() + 30
        waiting = list(names)
        while waiting and time.time() < deadline:
            for name in list(waiting):
                if self.procs[name].poll() is not None:
                    raise RuntimeError("banyan-provider %s exited: see %s" % (role_of(name), self.log_path(name)))
                role = role_of(name)
                ready = True
                if role in ("api", "all"):
                    try:
                        urllib.request.urlopen(self.base + "/", timeout=1).read()
                    except OSError:
                        ready = False
                for r in (("worker", "health") if role == "all" else (role,)):
                    if r in STARTED_LINE and STARTED_LINE[r] not in self.log_text(name, since):
                        ready = False
                if ready:
                    waiting.remove(name)
            time.sleep(0.05)
        if waiting:
            raise RuntimeError("banyan-provider %s did not come up" % " ".join(waiting))

    def stop_provider(self, sig=signal.SIGTERM, names=None):
        """Stops the provider processes NAMES (default: all) by PID with SIG, SIGKILL
        after 20 s; every one is tried even when one fails."""
        names = [n for n in (names or list(self.procs)) if n in self.procs]
        for name in names:
            p = self.procs[name]
            if p.poll() is None:
                try:
                    p.send_signal(sig)
                except OSError:
                    pass
        for name in names:
            p = self.procs.pop(name)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def start_member(self, i, bridge="mem0", addr=None):
        """Member host i on the member bridge BRIDGE (mem0: 203.0.113.128/26, mem1: .0/26)."""
        ns = "%s-m%d" % (self.prefix, i)
        addr = addr or "203.0.113.%d" % (190 - i)
        veth = "%sm%dh" % (self.prefix, i)
        if ns not in self.members:
            run(["ip", "netns", "add", ns])
            run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(["ip", "link", "set", veth, "master", "%s-%s" % (self.prefix, bridge), "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "addr", "add", addr + "/26", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            self.members[ns] = addr
        log = open(os.path.join(self.tmp, ns + ".log"), "a")
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, self.args.member_server, "--bind", addr,
                              "--port", "80", "--name", "m%d" % i], stdout=log, stderr=subprocess.STDOUT,
                             preexec_fn=child_setup(signal.SIGTERM))
        self.member_pids[i] = p
        self.started.append(("member %d" % i, p))
        deadline = time.time() + 10
        while time.time() < deadline:
            if run(["ip", "netns", "exec", ns, "python3", "-c",
                    "import socket; socket.create_connection(('%s', 80), 1)" % addr], check_rc=False).returncode == 0:
                return addr
            time.sleep(0.1)
        raise RuntimeError("member server %d did not start" % i)

    def start_client(self, name, addr):
        """A client namespace on the VIP network (beside the host's own address there)."""
        ns = "%s-%s" % (self.prefix, name)
        veth = "%s%sh" % (self.prefix, name)
        run(["ip", "netns", "add", ns])
        self.clients.append((ns, veth))
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "link", "set", veth, "master", self.prefix + "-vip0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", ns, "addr", "add", addr + "/26", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        return ns

    def stop_member(self, i):
        stop_process(self.member_pids.pop(i, None), timeout=10)

    def cleanup(self):
        """Stops every process this script started, by PID, and removes what it made;
        each part runs even when an earlier one failed."""
        try:
            self.stop_provider()
        finally:
            for p in self.procs.values():  # whatever stop_provider did not get to
                if p.poll() is None:
                    p.kill()
                    p.wait()
            self.procs = {}
            try:
                for i in list(self.member_pids):
                    self.stop_member(i)
                r = run([self.args.provider, "--config-file", self.conf, "netns-cleanup"], check_rc=False)
                if r.returncode != 0:
                    print("netns-cleanup failed: " + r.stderr, file=sys.stderr)
                for ns, veth in self.clients:
                    run(["ip", "link", "del", veth], check_rc=False)
                    run(["ip", "netns", "del", ns], check_rc=False)
                for i, ns in enumerate(self.members, 1):
                    # The host end first: a namespace is destroyed asynchronously, its veth later.
                    run(["ip", "link", "del", "%sm%dh" % (self.prefix, i)], check_rc=False)
                    run(["ip", "netns", "del", ns], check_rc=False)
            finally:
                if self.pg:
                    self.pg.stop()  # after the provider: it holds connections
                    self.pg = None

    def leftovers(self):
        names = run(["ip", "netns", "list"]).stdout
        links = run(["ip", "-o", "link"]).stdout
        left = [l.split()[0] for l in names.splitlines() if l.startswith(self.prefix)]
        left += [l.split(":")[1].strip().split("@")[0] for l in links.splitlines()
                 if l.split(":")[1].strip().startswith(self.prefix)]
        amp_dir = os.path.join(self.tmp, "state", "netns", "amphorae")
        if os.path.isdir(amp_dir):
            left += ["file " + f for f in os.listdir(amp_dir)]
        left += ["process %s (pid %d)" % (what, p.pid) for what, p in self.started if p.poll() is None]
        return left

    def start_tls_member(self, i, cert, key, port=443, extra=()):
        """openssl s_server -www on PORT of member i's namespace (a TLS member); EXTRA
        arguments, e.g. -Verify 1 -CAfile F to require a client certificate."""
        ns = "%s-m%d" % (self.prefix, i)
        addr = self.members[ns]
        log = open(os.path.join(self.tmp, "%s-tls%d.log" % (ns, port)), "a")
        p = subprocess.Popen(["ip", "netns", "exec", ns, "openssl", "s_server", "-quiet", "-accept", str(port),
                              "-cert", cert, "-key", key, "-www"] + list(extra),
                             stdout=log, stderr=subprocess.STDOUT, preexec_fn=child_setup(signal.SIGTERM))
        self.member_pids["tls%d-%d" % (i, port)] = p
        self.started.append(("TLS member %d:%d" % (i, port), p))
        deadline = time.time() + 10
        while time.time() < deadline:
            if run(["ip", "netns", "exec", ns, "python3", "-c",
                    "import socket; socket.create_connection(('%s', %d), 1)" % (addr, port)],
                   check_rc=False).returncode == 0:
                return addr
            time.sleep(0.1)
        raise RuntimeError("TLS member server %d did not start" % i)

    def store_certificate(self, *argv):
        """banyan-provider store-certificate: the new local_cert_manager reference."""
        r = run([self.args.provider, "--config-file", self.conf, "store-certificate"] + list(argv))
        return r.stdout.strip()

    # --- API -------------------------------------------------------------------
    def cli(self, *argv):
        cmd = ["openstack", "--os-auth-type", "none", "--os-endpoint", self.base, "loadbalancer"] + list(argv)
        r = run(cmd, check_rc=False)
        if r.returncode != 0:
            raise RuntimeError("openstack loadbalancer %s: %s" % (" ".join(argv), r.stderr.strip()))
        return json.loads(r.stdout) if "-f" in argv and "json" in argv and r.stdout.strip() else r.stdout

    def rest(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + "/v2" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
            return json.loads(text) if text else None

    def rest_status(self, method, path, body=None):
        """(HTTP status, faultstring or body) without raising on 4xx/5xx."""
        try:
            return 200, json.dumps(self.rest(method, path, body))
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                return e.code, json.loads(text).get("faultstring", text)
            except ValueError:
                return e.code, text

    def lb(self, lb_id):
        return self.rest("GET", "/lbaas/loadbalancers/" + lb_id)["loadbalancer"]

    def wait_active(self, lb_id, timeout=30):
        start = time.time()
        while time.time() - start < timeout:
            try:
                st = self.lb(lb_id)["provisioning_status"]
            except urllib.error.HTTPError:
                st = "?"
            if st == "ACTIVE":
                return time.time() - start
            if st == "ERROR":
                raise RuntimeError("load balancer %s went ERROR" % lb_id)
            time.sleep(0.02)
        raise RuntimeError("load balancer %s not ACTIVE after %ds" % (lb_id, timeout))

    def wait_for(self, what, fn, timeout=30, interval=0.1):
        start = time.time()
        while time.time() - start < timeout:
            try:
                if fn():
                    return time.time() - start
            except (OSError, KeyError, ValueError):
                pass
            time.sleep(interval)
        raise RuntimeError("timed out waiting for " + what)


def http_get(address, port=80, timeout=2):
    with socket.create_connection((address, port), timeout) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


def curl_from(ns, address, port=80):
    """(curl exit code, HTTP status) of a GET from namespace NS; exit 28 with no status is
    a connect timeout: the SYN was dropped, not refused or closed by the proxy."""
    r = run(["ip", "netns", "exec", ns, "curl", "-sS", "--connect-timeout", "2", "-m", "5", "-o", "/dev/null",
             "-w", "%{http_code}", "http://%s:%d/" % (address, port)], check_rc=False)
    return r.returncode, r.stdout.strip()


def curl_https(host, address, port=443, cacert=None, cert=None, key=None):
    """(curl exit code, body) of https://HOST:PORT/ sent to ADDRESS (SNI = HOST), verified
    against CACERT; with CERT and KEY as the client certificate."""
    client = ["--cert", cert, "--key", key] if cert else []
    r = run(["curl", "-sS", "--connect-timeout", "2", "-m", "5", "--cacert", cacert, "--resolve",
             "%s:%d:%s" % (host, port, address)] + client + ["https://%s:%d/" % (host, port)], check_rc=False)
    return r.returncode, (r.stdout if r.returncode == 0 else r.stderr).strip()


def make_pki(directory):
    """A CA for the listener certificates (www.e2e.example, api.e2e.example), another
    for the TLS member's server certificate, and a client CA with two client
    certificates ("client", and "revoked", which its CRL client-ca.crl revokes), made
    with the openssl CLI."""
    os.makedirs(directory)

    def sh(cmd):
        run(["sh", "-c", "cd %s && %s" % (directory, cmd)])
    ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    for ca in ("ca", "member-ca", "client-ca"):
        sh("openssl req -x509 %s -keyout %s.key -out %s.pem -days 2 -subj /CN=e2e-%s "
           "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
           % (ec, ca, ca, ca))
    for name, ca, san in (("www", "ca", "DNS:www.e2e.example"), ("api", "ca", "DNS:api.e2e.example"),
                          ("member", "member-ca", "IP:203.0.113.189"),
                          ("client", "client-ca", "DNS:client.e2e.example"),
                          ("revoked", "client-ca", "DNS:revoked.e2e.example")):
        sh("openssl req %s -keyout %s.key -out %s.csr -subj /CN=%s" % (ec, name, name, name))
        with open(os.path.join(directory, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        sh("openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial -out %s.pem -days 2 "
           "-extfile %s.ext" % (name, ca, ca, name, name))
    with open(os.path.join(directory, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ndefault_md=sha256\ndefault_crl_days=2\n")
    open(os.path.join(directory, "index.txt"), "w").close()
    sh("openssl ca -config ca.cnf -keyfile client-ca.key -cert client-ca.pem -revoke revoked.pem")
    sh("openssl ca -config ca.cnf -keyfile client-ca.key -cert client-ca.pem -gencrl -out client-ca.crl")
    return lambda name: os.path.join(directory, name)


def answer_fields(body):
    return dict(part.split("=", 1) for part in body.split() if "=" in part)


def spread(address, port=80, count=30):
    seen = {}
    for _ in range(count):
        status, body = http_get(address, port)
        name = answer_fields(body).get("member", "status%d" % status) if status == 200 else "status%d" % status
        seen[name] = seen.get(name, 0) + 1
    return seen


OUTAGE_LOG = []  # what the last outage() saw: (seconds in, outcome) at each change


def outage(address, deadline_s, port=80):
    """Requests every 20 ms until one fails and then one succeeds again; returns the gap."""
    first_fail = None
    start = time.time()
    del OUTAGE_LOG[:]
    while time.time() - start < deadline_s:
        t = time.time()
        try:
            status = http_get(address, port, timeout=0.3)[0]
            ok, what = status == 200, str(status)
        except OSError as e:
            ok, what = False, type(e).__name__
        if not OUTAGE_LOG or OUTAGE_LOG[-1][1] != what:
            OUTAGE_LOG.append((round(t - start, 2), what))
        if not ok and first_fail is None:
            first_fail = t
        if ok and first_fail is not None:
            return t - first_fail
        time.sleep(0.02)
    return None if first_fail is None else float("inf")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--provider", required=True)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--member-server", required=True)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--roles", choices=("all", "split"), default="all",
                        help="one `all` process, or api, two workers, health and housekeeping apart "
                             "(needs --backend postgresql)")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the provider logs to DIR at the end")
    args = parser.parse_args()
    if args.roles == "split" and args.backend != "postgresql":
        parser.error("--roles split needs --backend postgresql: SQLite is the embedded one-process "
                     "backend; separate workers sharing a database is what PostgreSQL is for "
                     "(FOR UPDATE SKIP LOCKED claims, LISTEN/NOTIFY wake-ups)")
    for name in ("provider", "agent", "proxy", "member_server"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    if os.geteuid() != 0:
        print("e2e_netns: needs root")
        return 1
    # A SIGTERM (ctest's timeout, ^C's cousin) ends the scenario like a failure: cleanup runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = Env(args)
    print("backend: %s, roles: %s" % (args.backend, args.roles), flush=True)
    try:
        env.start_database()
        scenario(env)
    except Exception as e:  # a failed step ends the scenario; cleanup still runs
        check("scenario ran to the end", False, repr(e))
        for name in env.process_names():
            lines = [l for l in env.log_text(name).splitlines(True) if " job " in l or " ERROR " in l
                     or " WARNING " in l or "stopping" in l or "listening" in l or "started" in l]
            if lines:
                print("--- %s (jobs, errors, warnings, starts; last 60)" % os.path.basename(env.log_path(name)))
                print("".join(lines[-60:]))
    finally:
        env.cleanup()
        left = env.leftovers()
        check("nothing left behind (processes, namespaces, links, amphora files)", not left, " ".join(left))
        if args.keep_logs:
            os.makedirs(args.keep_logs, exist_ok=True)
            for name in env.process_names():
                if os.path.exists(env.log_path(name)):
                    shutil.copy(env.log_path(name), args.keep_logs)
        shutil.rmtree(env.tmp, ignore_errors=True)
    print("timings: " + json.dumps({k: round(v, 3) for k, v in TIMINGS.items()}))
    failed = [c for c in CHECKS if not c[1]]
    print("%d checks, %d failed" % (len(CHECKS), len(failed)))
    return 1 if failed else 0


def scenario(env):
    env.start_provider()
    # The spare pool fills first: a create then needs no boot.
    env.wait_for("a READY spare amphora",
                 lambda: any(a["status"] == "READY" for a in env.rest("GET", "/octavia/amphorae")["amphorae"]))
    addrs = [env.start_member(i) for i in (1, 2, 3)]

    t0 = time.time()
    lb = env.cli("create", "--name", "e2e", "--vip-subnet-id", env.vip_net, "-f", "json")
    TIMINGS["create_cli_returned_s"] = time.time() - t0
    lb_id = lb["id"]
    waited = env.wait_active(lb_id)
    TIMINGS["create_to_active_after_cli_s"] = waited
    check("SINGLE load balancer ACTIVE within 2 s of the create (spare pool on)", waited < 2.0, "%.2fs" % waited)
    vip = env.lb(lb_id)["vip_address"]
    check("VIP allocated on the VIP subnet", vip.startswith("203.0.113."), vip)
    first_amp = env.rest("GET", "/octavia/amphorae?loadbalancer_id=" + lb_id)["amphorae"][0]["id"]
    first_cert = env.rest("GET", "/octavia/amphorae/" + first_amp)["amphora"]["cert_expiration"]

    listener = env.cli("listener", "create", "--name", "http", "--protocol", "HTTP", "--protocol-port", "80",
                       "--insert-headers", "X-Forwarded-For=true", lb_id, "-f", "json")
    env.wait_active(lb_id)
    pool = env.cli("pool", "create", "--name", "rr", "--protocol", "HTTP", "--lb-algorithm", "ROUND_ROBIN",
                   "--listener", listener["id"], "-f", "json")
    env.wait_active(lb_id)
    members = []
    for i, addr in enumerate(addrs, 1):
        members.append(env.cli("member", "create", "--name", "m%d" % i, "--address", addr, "--protocol-port", "80",
                               "--subnet-id", env.mem_net, pool["id"], "-f", "json"))
        env.wait_active(lb_id)
    env.cli("healthmonitor", "create", "--name", "hm", "--type", "HTTP", "--url-path", "/health", "--delay", "1",
            "--timeout", "1", "--max-retries", "1", "--max-retries-down", "1", pool["id"], "-f", "json")
    env.wait_active(lb_id)

    seen = spread(vip)
    check("HTTP round robin reaches every member", set(seen) == {"m1", "m2", "m3"} and min(seen.values()) >= 8,
          str(seen))
    status, body = http_get(vip)
    xff = answer_fields(body).get("xff", "")
    check("member sees the client address in X-Forwarded-For", xff == "203.0.113.65", body.strip())

    # allowed_cidrs: the amphora's firewall (nftables, table inet banyan) serves the
    # allowed source only; another client on the VIP network is dropped, then let in.
    amp_ns = env.rest("GET", "/octavia/amphorae/" + first_amp)["amphora"]["compute_id"]
    table = run(["ip", "netns", "exec", amp_ns, "nft", "list", "table", "inet", "banyan"], check_rc=False).stdout
    check("the amphora's firewall opens the agent port to the management network only",
          "203.0.113.192/26" in table and "jump mgmt_only" in table, table[:400])
    other = env.start_client("c2", "203.0.113.126")
    # The same rule in packets: the controller pushed its management CIDRs to the agent
    # (PUT /1.0/agent-config), so the agent port answers the management network and
    # drops a client on the VIP network, although the agent listens on every address.
    amp = env.rest("GET", "/octavia/amphorae/" + first_amp)["amphora"]
    from_vip_net = curl_from(other, amp["vrrp_ip"], 9443)
    check("the agent port drops a client on the VIP network (connect timeout)", from_vip_net[0] == 28,
          "%s from 203.0.113.126 to %s" % (from_vip_net, amp["vrrp_ip"]))
    from_mgmt = run(["curl", "-sS", "--connect-timeout", "2", "-m", "5", "-o", "/dev/null",
                     "http://%s:9443/" % amp["lb_network_ip"]], check_rc=False)
    check("the agent port accepts the management network (the connection is made, TLS refuses plain HTTP)",
          from_mgmt.returncode not in (7, 28), "curl exit %d %s" % (from_mgmt.returncode, from_mgmt.stderr.strip()))
    check("a second client is served before allowed_cidrs", curl_from(other, vip) == (0, "200"),
          str(curl_from(other, vip)))
    env.cli("listener", "set", "--allowed-cidr", "203.0.113.65/32", listener["id"])
    env.wait_active(lb_id)
    status, _ = http_get(vip)
    check("listener set --allowed-cidr keeps the allowed client served", status == 200, str(status))
    refused = curl_from(other, vip)
    check("a client outside allowed_cidrs is dropped (connect timeout)", refused[0] == 28, str(refused))
    env.cli("listener", "unset", "--allowed-cidrs", listener["id"])
    env.wait_active(lb_id)
    check("listener unset --allowed-cidrs serves the other client again", curl_from(other, vip) == (0, "200"),
          str(curl_from(other, vip)))

    # TCP listener with a PROXY v2 pool: the member reads the client from the header.
    tcp = env.cli("listener", "create", "--name", "tcp", "--protocol", "TCP", "--protocol-port", "81", lb_id,
                  "-f", "json")
    env.wait_active(lb_id)
    ppool = env.cli("pool", "create", "--name", "pp2", "--protocol", "PROXYV2", "--lb-algorithm",
                    "LEAST_CONNECTIONS", "--listener", tcp["id"], "-f", "json")
    env.wait_active(lb_id)
    env.cli("member", "create", "--address", addrs[0], "--protocol-port", "80", "--subnet-id", env.mem_net,
            ppool["id"], "-f", "json")
    env.wait_active(lb_id)
    status, body = http_get(vip, 81)
    check("TCP listener with a PROXYV2 pool passes the client address", status == 200 and
          answer_fields(body).get("proxy") == "203.0.113.65", body.strip())

    # TLS: a TERMINATED_HTTPS listener with certificates stored by store-certificate
    # (local_cert_manager): the controller places them on the amphora; SNI picks one.
    pki = make_pki(os.path.join(env.tmp, "pki"))
    www_ref = env.store_certificate("--cert", pki("www.pem"), "--key", pki("www.key"))
    api_ref = env.store_certificate("--cert", pki("api.pem"), "--key", pki("api.key"))
    member_ca_ref = env.store_certificate("--ca", pki("member-ca.pem"))
    check("store-certificate prints new references", len(www_ref) == 36 and len(member_ca_ref) == 36,
          "%s %s" % (www_ref, member_ca_ref))
    https = env.cli("listener", "create", lb_id, "--name", "https", "--protocol", "TERMINATED_HTTPS",
                    "--protocol-port", "443", "--default-tls-container-ref", www_ref,
                    "--sni-container-refs", api_ref, "-f", "json")
    env.wait_active(lb_id)
    spool = env.cli("pool", "create", "--name", "behind-tls", "--protocol", "HTTP", "--lb-algorithm",
                    "ROUND_ROBIN", "--listener", https["id"], "-f", "json")
    env.wait_active(lb_id)
    env.cli("member", "create", "--address", addrs[0], "--protocol-port", "80", "--subnet-id", env.mem_net,
            spool["id"], "-f", "json")
    env.wait_active(lb_id)
    rc, body = curl_https("www.e2e.example", vip, cacert=pki("ca.pem"))
    check("HTTPS to the TERMINATED_HTTPS listener verifies the default certificate and reaches a member",
          rc == 0 and answer_fields(body).get("member") == "m1", "%d %s" % (rc, body))
    rc, body = curl_https("api.e2e.example", vip, cacert=pki("ca.pem"))
    check("SNI api.e2e.example is answered with the SNI certificate", rc == 0 and "member=m1" in body,
          "%d %s" % (rc, body))
    bad = env.rest_status("POST", "/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb_id, "protocol": "TERMINATED_HTTPS", "protocol_port": 444,
        "default_tls_container_ref": "no-such-ref"}})
    check("a listener naming a missing certificate is refused with Octavia's 400",
          bad[0] == 400 and "Could not retrieve certificate: ['no-such-ref']" in bad[1], str(bad))

    # Re-encryption: an HTTP listener whose pool speaks TLS to a member (openssl
    # s_server) and verifies it against a CA reference.
    env.start_tls_member(1, pki("member.pem"), pki("member.key"))
    reenc = env.cli("listener", "create", "--name", "reencrypt", "--protocol", "HTTP", "--protocol-port", "82",
                    lb_id, "-f", "json")
    env.wait_active(lb_id)
    tpool = env.cli("pool", "create", "--name", "tls-members", "--protocol", "HTTP", "--lb-algorithm",
                    "ROUND_ROBIN", "--listener", reenc["id"], "--enable-tls", "--ca-tls-container-ref",
                    member_ca_ref, "-f", "json")
    env.wait_active(lb_id)
    env.cli("member", "create", "--address", addrs[0], "--protocol-port", "443", "--subnet-id", env.mem_net,
            tpool["id"], "-f", "json")
    env.wait_active(lb_id)
    status, body = http_get(vip, 82)
    check("a tls_enabled pool with a CA reference reaches the TLS member", status == 200 and "s_server" in body,
          "%s %s" % (status, body[:200]))
    # The member's certificate is verified: with a CA that did not sign it, no answer.
    env.cli("pool", "set", "--ca-tls-container-ref", env.store_certificate("--ca", pki("ca.pem")), tpool["id"])
    env.wait_active(lb_id)
    try:
        status, body = http_get(vip, 82)
    except (OSError, IndexError, ValueError) as e:
        status, body = 0, repr(e)
    check("a member whose certificate the pool's CA did not sign is not reached", status != 200 and
          "s_server" not in body, "%s %s" % (status, body[:200]))

    # Client authentication on a TERMINATED_HTTPS listener: MANDATORY with a client CA
    # and its CRL; curl with a good, without any, and with a revoked client certificate.
    client_ca_ref = env.store_certificate("--ca", pki("client-ca.pem"))
    client_crl_ref = env.store_certificate("--ca", pki("client-ca.crl"))
    mtls = env.cli("listener", "create", lb_id, "--name", "mtls", "--protocol", "TERMINATED_HTTPS",
                   "--protocol-port", "8443", "--default-tls-container-ref", www_ref,
                   "--client-authentication", "MANDATORY", "--client-ca-tls-container-ref", client_ca_ref,
                   "--client-crl-container-ref", client_crl_ref, "-f", "json")
    env.wait_active(lb_id)
    check("the MANDATORY listener is ACTIVE with its client CA and CRL",
          mtls["client_authentication"] == "MANDATORY" and
          env.rest("GET", "/lbaas/listeners/" + mtls["id"])["listener"]["provisioning_status"] == "ACTIVE",
          str(mtls))
    mpool = env.cli("pool", "create", "--name", "behind-mtls", "--protocol", "HTTP", "--lb-algorithm",
                    "ROUND_ROBIN", "--listener", mtls["id"], "-f", "json")
    env.wait_active(lb_id)
    env.cli("member", "create", "--address", addrs[1], "--protocol-port", "80", "--subnet-id", env.mem_net,
            mpool["id"], "-f", "json")
    env.wait_active(lb_id)
    rc, body = curl_https("www.e2e.example", vip, 8443, cacert=pki("ca.pem"), cert=pki("client.pem"),
                          key=pki("client.key"))
    check("client_authentication MANDATORY: a client certificate of the client CA is served",
          rc == 0 and "member=m2" in body, "%d %s" % (rc, body))
    rc, body = curl_https("www.e2e.example", vip, 8443, cacert=pki("ca.pem"))
    check("client_authentication MANDATORY: a client without a certificate is refused",
          rc != 0 and "member=" not in body, "%d %s" % (rc, body))
    rc, body = curl_https("www.e2e.example", vip, 8443, cacert=pki("ca.pem"), cert=pki("revoked.pem"),
                          key=pki("revoked.key"))
    check("client_authentication MANDATORY: a certificate the CRL revokes is refused",
          rc != 0 and "member=" not in body, "%d %s" % (rc, body))
    rc, body = curl_https("www.e2e.example", vip, 8443, cacert=pki("ca.pem"), cert=pki("member.pem"),
                          key=pki("member.key"))
    check("client_authentication MANDATORY: a certificate of another CA is refused",
          rc != 0 and "member=" not in body, "%d %s" % (rc, body))

    # A pool presenting a client certificate (tls_container_ref) to a member that
    # requires one (openssl s_server -Verify): refused without it, served with it.
    client_ref = env.store_certificate("--cert", pki("client.pem"), "--key", pki("client.key"))
    env.start_tls_member(1, pki("member.pem"), pki("member.key"), port=8443,
                         extra=["-Verify", "1", "-CAfile", pki("client-ca.pem")])
    creenc = env.cli("listener", "create", "--name", "reencrypt-client", "--protocol", "HTTP", "--protocol-port",
                     "83", lb_id, "-f", "json")
    env.wait_active(lb_id)
    cpool = env.cli("pool", "create", "--name", "client-cert", "--protocol", "HTTP", "--lb-algorithm",
                    "ROUND_ROBIN", "--listener", creenc["id"], "--enable-tls", "--ca-tls-container-ref",
                    member_ca_ref, "-f", "json")
    env.wait_active(lb_id)
    env.cli("member", "create", "--address", addrs[0], "--protocol-port", "8443", "--subnet-id", env.mem_net,
            cpool["id"], "-f", "json")
    env.wait_active(lb_id)
    try:
        status, body = http_get(vip, 83)
    except (OSError, IndexError, ValueError) as e:
        status, body = 0, repr(e)
    check("a member requiring a client certificate is not reached by a pool without one",
          status != 200 and "s_server" not in body, "%s %s" % (status, body[:200]))
    env.cli("pool", "set", "--tls-container-ref", client_ref, cpool["id"])
    env.wait_active(lb_id)
    status, body = http_get(vip, 83)
    check("a pool with tls_container_ref presents the client certificate the member requires",
          status == 200 and "s_server" in body, "%s %s" % (status, body[:200]))
    # Gone again, so the certificate files counted below are the HTTPS listener's and pool's.
    for kind, obj in (("pool", cpool), ("listener", creenc), ("pool", mpool), ("listener", mtls)):
        env.cli(kind, "delete", obj["id"])
        env.wait_active(lb_id)

    # Member changes change the traffic.
    env.cli("member", "set", "--disable", pool["id"], members[0]["id"])
    env.wait_active(lb_id)
    seen = spread(vip, count=12)
    check("a disabled member gets no traffic", "m1" not in seen and set(seen) == {"m2", "m3"}, str(seen))
    env.cli("member", "set", "--enable", pool["id"], members[0]["id"])
    env.wait_active(lb_id)
    env.cli("member", "delete", pool["id"], members[2]["id"])
    env.wait_active(lb_id)
    seen = spread(vip, count=12)
    check("a deleted member gets no traffic", set(seen) == {"m1", "m2"}, str(seen))

    t0 = time.time()
    env.rest("PUT", "/lbaas/pools/%s/members" % pool["id"], {"members": [
        {"address": addrs[1], "protocol_port": 80, "subnet_id": env.mem_net, "name": "m2"},
        {"address": addrs[2], "protocol_port": 80, "subnet_id": env.mem_net, "name": "m3"}]})
    env.wait_active(lb_id)
    TIMINGS["batch_update_to_active_s"] = time.time() - t0
    seen = spread(vip, count=12)
    check("batch update replaces the members", set(seen) == {"m2", "m3"}, str(seen))

    # A member on a second member subnet: the amphora gets an interface there, and
    # loses it when the subnet's last member goes (Octavia's HandleNetworkDeltas).
    addr4 = env.start_member(4, bridge="mem1", addr="203.0.113.62")
    amp_ns = env.rest("GET", "/octavia/amphorae?loadbalancer_id=" + lb_id)["amphorae"][0]["compute_id"]

    def on_second_subnet():
        """The amphora's addresses in 203.0.113.0/26 and its veths on the mem1 bridge."""
        found = []
        for link in json.loads(run(["ip", "-n", amp_ns, "-j", "addr"]).stdout):
            for a in link.get("addr_info", []):
                parts = a["local"].split(".")
                if a["local"].startswith("203.0.113.") and int(parts[3]) < 64:
                    found.append("%s %s" % (link["ifname"], a["local"]))
        ports = json.loads(run(["ip", "-j", "link", "show", "master", env.prefix + "-mem1"]).stdout or "[]")
        found += ["bridge port " + l["ifname"] for l in ports if l["ifname"] != "%sm4h" % env.prefix]
        return found
    check("the amphora has no interface on the second member subnet before a member is there",
          not on_second_subnet(), str(on_second_subnet()))
    m4 = env.cli("member", "create", "--name", "m4", "--address", addr4, "--protocol-port", "80", "--subnet-id",
                 env.mem_net2, pool["id"], "-f", "json")
    env.wait_active(lb_id)
    seen = spread(vip, count=15)
    check("a member on a second subnet plugs the amphora into it and gets traffic",
          len(on_second_subnet()) == 2 and set(seen) == {"m2", "m3", "m4"}, "%s %s" % (on_second_subnet(), seen))
    env.cli("member", "delete", pool["id"], m4["id"])
    env.wait_active(lb_id)
    check("deleting the last member of a subnet unplugs the amphora from it (no interface, no bridge port)",
          not on_second_subnet(), str(on_second_subnet()))
    seen = spread(vip, count=12)
    check("the remaining members still get the traffic after the unplug", set(seen) == {"m2", "m3"}, str(seen))

    # A stopped member turns ERROR and is avoided, then comes back.
    env.stop_member(3)
    env.wait_for("member m3 ERROR", lambda: member_status(env, lb_id, addrs[2]) == "ERROR", timeout=15)
    check("a stopped member turns ERROR in status show", member_status(env, lb_id, addrs[2]) == "ERROR")
    seen = spread(vip, count=10)
    check("traffic avoids the stopped member", set(seen) == {"m2"}, str(seen))
    env.start_member(3)
    env.wait_for("member m3 ONLINE", lambda: member_status(env, lb_id, addrs[2]) == "ONLINE", timeout=15)
    check("the member comes back ONLINE", member_status(env, lb_id, addrs[2]) == "ONLINE")

    rotated = env.rest("GET", "/octavia/amphorae/" + first_amp)["amphora"]["cert_expiration"]
    check("housekeeping rotated the amphora's certificate (and the agent kept answering)",
          first_cert and rotated and rotated > first_cert, "%s -> %s" % (first_cert, rotated))

    # Kill the amphora: the health manager fails it over and traffic resumes.
    amp = [a for a in env.rest("GET", "/octavia/amphorae?loadbalancer_id=" + lb_id)["amphorae"]][0]
    ns = env.rest("GET", "/octavia/amphorae/" + amp["id"])["amphora"]["compute_id"]
    kill_namespace(ns)
    gap = outage(vip, 40)
    TIMINGS["single_failover_outage_s"] = gap or -1
    check("after the amphora is killed, failover replaces it and traffic resumes", gap is not None and gap < 40,
          "%s; client saw %s; neighbour: %s" % (gap, OUTAGE_LOG,
                                                run(["ip", "neigh", "show", vip], check_rc=False).stdout.strip()))
    env.wait_active(lb_id)
    new_amps = env.rest("GET", "/octavia/amphorae?loadbalancer_id=" + lb_id)["amphorae"]
    check("the failed amphora was replaced", len(new_amps) == 1 and new_amps[0]["id"] != amp["id"], str(new_amps))
    rc, body = curl_https("www.e2e.example", vip, cacert=pki("ca.pem"))
    check("the replacement amphora got the listener's certificates (HTTPS answers again)",
          rc == 0 and "member=m1" in body, "%d %s" % (rc, body))

    # Deleting the TLS listeners: the certificate files leave the amphora after the push.
    new_ns = env.rest("GET", "/octavia/amphorae/" + new_amps[0]["id"])["amphora"]["compute_id"]
    cert_dir = os.path.join(env.tmp, "state", "netns", "amphorae", new_ns, "state", "certs")
    before = sorted(os.listdir(cert_dir)) if os.path.isdir(cert_dir) else []
    check("the amphora holds the placed certificate files (two TLS bundles, one CA)", len(before) == 3,
          "%s %s" % (cert_dir, before))
    # A certificate gone after the API checked it: the push fails before touching the
    # amphora, the listener goes ERROR (no PENDING left), the load balancer stays ACTIVE.
    crt = os.path.join(env.tmp, "state", "certificates", www_ref + ".crt")
    os.rename(crt, crt + ".gone")
    env.cli("listener", "set", "--name", "https-renamed", https["id"])
    env.wait_active(lb_id)
    failed = env.rest("GET", "/lbaas/listeners/" + https["id"])["listener"]["provisioning_status"]
    said = "certificate %s could not be fetched" % www_ref in env.log_text()
    check("a certificate that cannot be fetched fails the push: listener ERROR, the log says why",
          failed == "ERROR" and said, "%s %s" % (failed, said))
    rc, body = curl_https("www.e2e.example", vip, cacert=pki("ca.pem"))
    check("the running configuration keeps serving HTTPS", rc == 0 and "member=m1" in body, "%d %s" % (rc, body))
    os.rename(crt + ".gone", crt)
    env.cli("listener", "delete", https["id"])
    env.wait_active(lb_id)
    env.cli("pool", "delete", tpool["id"])
    env.wait_active(lb_id)
    after = sorted(os.listdir(cert_dir)) if os.path.isdir(cert_dir) else ["?"]
    check("certificates no listener or pool uses are removed from the amphora", after == [],
          "%s -> %s (ns %s)" % (before, after, new_ns))

    # ACTIVE_STANDBY through a flavor.
    profile = env.cli("flavorprofile", "create", "--name", "ha", "--provider", "amphora", "--flavor-data",
                      '{"loadbalancer_topology": "ACTIVE_STANDBY"}', "-f", "json")
    flavor = env.cli("flavor", "create", "--name", "ha", "--flavorprofile", profile["id"], "--enable", "-f", "json")
    lb2 = env.cli("create", "--name", "e2e-ha", "--vip-subnet-id", env.vip_net, "--flavor", flavor["id"],
                  "-f", "json")
    TIMINGS["active_standby_create_to_active_s"] = env.wait_active(lb2["id"])
    vip2 = env.lb(lb2["id"])["vip_address"]
    l2 = env.cli("listener", "create", "--protocol", "HTTP", "--protocol-port", "80", lb2["id"], "-f", "json")
    env.wait_active(lb2["id"])
    p2 = env.cli("pool", "create", "--protocol", "HTTP", "--lb-algorithm", "ROUND_ROBIN", "--listener", l2["id"],
                 "-f", "json")
    env.wait_active(lb2["id"])
    env.cli("member", "create", "--address", addrs[1], "--protocol-port", "80", "--subnet-id", env.mem_net, p2["id"])
    env.wait_active(lb2["id"])
    env.wait_for("traffic through the ACTIVE_STANDBY VIP", lambda: http_get(vip2)[0] == 200, timeout=10)
    amps = env.rest("GET", "/octavia/amphorae?loadbalancer_id=" + lb2["id"])["amphorae"]
    check("ACTIVE_STANDBY has a MASTER and a BACKUP", sorted(a["role"] for a in amps) == ["BACKUP", "MASTER"],
          str([a["role"] for a in amps]))
    # VRRP adverts come from the peer's address on the VIP network: the firewall lets
    # them in, so exactly one amphora holds the VIP (two would be a split brain).
    def vip_holders():
        held = 0
        for a in amps:
            ns = env.rest("GET", "/octavia/amphorae/" + a["id"])["amphora"]["compute_id"]
            held += ('"local":"%s"' % vip2) in run(["ip", "-n", ns, "-j", "addr"]).stdout
        return held
    try:
        env.wait_for("one VIP holder", lambda: vip_holders() == 1, timeout=10)
    except RuntimeError:
        pass  # the check below says how many
    check("exactly one amphora of the pair holds the VIP (VRRP passes the firewall)", vip_holders() == 1,
          str(vip_holders()))
    master = [a for a in amps if a["role"] == "MASTER"][0]
    kill_namespace(env.rest("GET", "/octavia/amphorae/" + master["id"])["amphora"]["compute_id"])
    gap = outage(vip2, 20)
    TIMINGS["active_standby_vip_move_gap_s"] = gap or -1
    check("killing the MASTER moves the VIP to the BACKUP", gap is not None and gap < 10, str(gap))

    def pair_replaced():
        ids = [a["id"] for a in env.rest("GET", "/octavia/amphorae?loadbalancer_id=" + lb2["id"])["amphorae"]]
        return (master["id"] not in ids and len(ids) == 2 and
                env.lb(lb2["id"])["provisioning_status"] == "ACTIVE")
    TIMINGS["active_standby_failover_s"] = env.wait_for("the killed MASTER replaced", pair_replaced, timeout=60)
    check("the health manager replaces the killed MASTER", pair_replaced())
    check("traffic flows through the repaired pair", http_get(vip2)[0] == 200)

    if env.split:
        concurrent_creates(env)
        lb3 = kill_worker_during_create(env)
    else:
        # Kill the provider in the middle of a create: after the restart the job is resumed.
        req = env.rest("POST", "/lbaas/loadbalancers", {"loadbalancer": {"name": "e2e-crash",
                                                                         "vip_subnet_id": env.vip_net}})
        lb3 = req["loadbalancer"]["id"]
        time.sleep(0.05)
        env.stop_provider(signal.SIGKILL)
        env.start_provider()
        env.wait_active(lb3, timeout=60)
        check("a create interrupted by killing the provider reaches ACTIVE after the restart", True)

    # Delete everything: only the spare pool's amphorae stay.
    env.wait_active(lb2["id"], timeout=60)
    for lid in (lb_id, lb2["id"], lb3):
        env.cli("delete", "--cascade", lid)
    env.wait_for("every load balancer gone", lambda: not env.rest("GET", "/lbaas/loadbalancers")["loadbalancers"],
                 timeout=60)
    def only_spares():
        return all(a["status"] == "READY" and not a["loadbalancer_id"]
                   for a in env.rest("GET", "/octavia/amphorae")["amphorae"])
    env.wait_for("only READY spares (one may still be booting)", only_spares, timeout=30)
    amps = env.rest("GET", "/octavia/amphorae")["amphorae"]
    check("after deleting every load balancer only spare amphorae remain", only_spares(), str(amps))
    namespaces = [l for l in run(["ip", "netns", "list"]).stdout.splitlines()
                  if l.startswith(env.prefix + "-amp-")]
    check("one namespace per remaining amphora", len(namespaces) == len(amps), "%s vs %s" % (namespaces, amps))
    if env.split:
        ran = {n: len(DONE_RE.findall(env.log_text(n))) for n in env.worker_names()}
        check("both worker processes ran jobs", all(ran.values()), str(ran))
        print("jobs done per worker: %s" % ran, flush=True)
        # Agents another process removed are reaped by their parent at its next driver
        # call, so a few may wait here; printed, not asserted.
        print("zombie agents waiting to be reaped: %s" % {n: zombie_children(p.pid) for n, p in env.procs.items()},
              flush=True)


def zombie_children(parent):
    count = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        count += fields[0] == "Z" and int(fields[1]) == parent
    return count


def jobs_since(env, since):
    """Per worker since the log offsets SINCE: the jobs it claimed [(job id, kind,
    attempt)] and the jobs it finished [(kind, lb id)]."""
    claimed, done = {}, {}
    for name in env.worker_names():
        text = env.log_text(name, since)
        claimed[name] = [(int(j), k, int(a)) for j, k, a in CLAIMED_RE.findall(text)]
        done[name] = DONE_RE.findall(text)
    return claimed, done


def amphora_census(env):
    """(amphora records not DELETED, amphora namespaces on the host, netns compute
    records in compute.json)."""
    amps = [a for a in env.rest("GET", "/octavia/amphorae")["amphorae"] if a["status"] != "DELETED"]
    namespaces = [l.split()[0] for l in run(["ip", "netns", "list"]).stdout.splitlines()
                  if l.startswith(env.prefix + "-amp-")]
    with open(os.path.join(env.tmp, "state", "netns", "compute.json")) as f:
        records = [a["compute_id"] for a in json.load(f)["amphorae"]]
    return amps, namespaces, records


def concurrent_creates(env):
    """--roles split: three load balancers created back to back while two workers run.
    Every one goes ACTIVE; each create job is claimed once and done once, by one worker;
    each load balancer has one amphora of its own; every amphora namespace belongs to an
    amphora record (none doubled or leaked), and every VIP differs."""
    since = env.log_offsets()
    t0 = time.time()
    ids = [env.rest("POST", "/lbaas/loadbalancers", {"loadbalancer": {
        "name": "e2e-at-once-%d" % i, "vip_subnet_id": env.vip_net}})["loadbalancer"]["id"] for i in range(3)]
    for lid in ids:
        env.wait_active(lid, timeout=60)
    TIMINGS["three_creates_at_once_to_active_s"] = time.time() - t0
    check("three load balancers created at once with two workers are all ACTIVE", True)
    claimed, done = jobs_since(env, since)
    creates = [(name, j) for name in claimed for j in claimed[name] if j[1] == "loadbalancer.create"]
    job_ids = [j[0] for _, j in creates]
    check("each create job was claimed by exactly one worker, once (no second claim, no retry)",
          len(creates) == 3 and len(set(job_ids)) == 3 and all(j[2] == 1 for _, j in creates), str(creates))
    finished = [(name, lb) for name in done for kind, lb in done[name] if kind == "loadbalancer.create"]
    check("each create ran to its end exactly once",
          sorted(lb for _, lb in finished) == sorted(ids), "%s vs %s" % (finished, ids))
    print("the three creates ran on: %s" % sorted(name for name, _ in finished), flush=True)
    per_lb = {lid: [a for a in env.rest("GET", "/octavia/amphorae?loadbalancer_id=" + lid)["amphorae"]]
              for lid in ids}
    computes = [a["compute_id"] for amps in per_lb.values() for a in amps]
    check("each of them has exactly one amphora, each amphora its own namespace",
          all(len(a) == 1 for a in per_lb.values()) and len(set(computes)) == 3 and all(computes),
          str({k: [(a["id"], a["compute_id"]) for a in v] for k, v in per_lb.items()}))
    vips = [env.lb(lid)["vip_address"] for lid in ids]
    check("their VIPs differ", len(set(vips)) == 3, str(vips))

    def settled():
        amps, namespaces, records = amphora_census(env)
        named = {a["compute_id"] for a in amps if a["compute_id"]}
        return (all(a["status"] in ("READY", "ALLOCATED") for a in amps) and named == set(namespaces) ==
                set(records) and len(named) == len(amps))
    try:
        env.wait_for("amphorae, namespaces and compute records to agree", settled, timeout=20)
    except RuntimeError:
        pass  # the check says what differs
    amps, namespaces, records = amphora_census(env)
    check("every amphora namespace belongs to one amphora record (none doubled, none leaked)", settled(),
          "records %s; namespaces %s; compute.json %s" % (
              [(a["id"][:8], a["status"], a["compute_id"]) for a in amps], namespaces, records))
    for lid in ids:
        env.cli("delete", lid)
    env.wait_for("the three load balancers gone", lambda: not any(
        lb["id"] in ids for lb in env.rest("GET", "/lbaas/loadbalancers")["loadbalancers"]), timeout=60)


def kill_worker_during_create(env):
    """--roles split: the worker that claimed a create is SIGKILLed in the middle of it
    and started again; the other worker keeps running. The create still reaches ACTIVE
    (whichever worker claims it after the lease runs it from the start) and is done once."""
    since = env.log_offsets()
    req = env.rest("POST", "/lbaas/loadbalancers", {"loadbalancer": {"name": "e2e-crash", "vip_subnet_id": env.vip_net}})
    lb3 = req["loadbalancer"]["id"]
    claimer = None
    deadline = time.time() + 10
    while claimer is None and time.time() < deadline:
        claimed, _ = jobs_since(env, since)
        claimer = next((n for n in claimed if any(j[1] == "loadbalancer.create" for j in claimed[n])), None)
        time.sleep(0.005)
    if claimer is None:
        raise RuntimeError("no worker claimed the create within 10 s")
    env.stop_provider(signal.SIGKILL, names=[claimer])
    _, done = jobs_since(env, since)
    too_late = any(lb == lb3 for _, lb in done[claimer])
    print("killed %s (it claimed the create%s)" % (claimer, ", but had already finished it" if too_late else
                                                   " and had not finished it"), flush=True)
    env.start_provider(names=[claimer])
    env.wait_active(lb3, timeout=60)
    check("a create whose worker is killed in the middle reaches ACTIVE (the other worker kept running)",
          not too_late, "the create ended before the kill")
    claimed, done = jobs_since(env, since)
    finished = [(n, lb) for n in done for kind, lb in done[n] if lb == lb3]
    amps = env.rest("GET", "/octavia/amphorae?loadbalancer_id=" + lb3)["amphorae"]
    check("the interrupted create was done once, after a second claim, with one amphora",
          len(finished) == 1 and len(amps) == 1 and
          sum(1 for n in claimed for j in claimed[n] if j[1] == "loadbalancer.create") == 2,
          "done %s; claims %s; amphorae %s" % (finished, claimed, [a["id"] for a in amps]))
    print("the interrupted create was finished by %s" % (finished[0][0] if finished else "nobody"), flush=True)
    return lb3


def member_status(env, lb_id, address):
    tree = env.rest("GET", "/lbaas/loadbalancers/%s/status" % lb_id)["statuses"]["loadbalancer"]
    for listener in tree["listeners"]:
        for pool in listener["pools"]:
            for m in pool["members"]:
                if m["address"] == address:
                    return m["operating_status"]
    return None


def kill_namespace(ns):
    # Only processes this test's provider started: they run in its namespace.
    for pid in run(["ip", "netns", "pids", ns]).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    sys.exit(main())
