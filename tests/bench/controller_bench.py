#!/usr/bin/python3
"""Control-plane benchmarks (issue 5): `banyan-provider all` with the netns drivers.

    controller_bench.py [--provider BIN] [--agent BIN] [--proxy BIN] [--member-server PY]
                        [--net 198.51.100] [--runs 10] [--json OUT]

Measures, through the Octavia v2 REST API (urllib/http.client, so no CLI start-up
time is counted):

1. create-to-ACTIVE: POST /v2/lbaas/loadbalancers until provisioning_status ACTIVE
   (polled every 5 ms), with spare_amphora_pool_size = 1 (a READY spare waited for
   before each create) and with no spare pool;
2. member-add-to-first-request: POST a second member and loop requests to the VIP
   (a new connection each) until one is answered by the new member;
3. batch update of 1,000 members (PUT /v2/lbaas/pools/{id}/members): full set to
   ACTIVE, then the same set with one member changed (a delta) to ACTIVE.

Prints one JSON document (and writes it to --json). Needs root. Everything runs in
namespaces and bridges this script creates on one documentation /24 (--net, split
in four: members .0/25, member hosts at .120-.121, VIPs .192/27, management .224/27)
and is removed at the end, even on failure. Traffic goes only to those namespaces
and 127.0.0.1. Every wait and request loop is bounded in count and time.
"""
import argparse
import http.client
import ipaddress
import json
import math
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

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(msg):
    print("[bench] " + msg, file=sys.stderr, flush=True)


def run(cmd, check_rc=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check_rc and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary(values):
    """min / median / p90 (nearest rank) / max in milliseconds, plus every run."""
    ms = sorted(v * 1000.0 for v in values)
    if not ms:
        return {"n": 0}
    n = len(ms)
    median = ms[n // 2] if n % 2 else (ms[n // 2 - 1] + ms[n // 2]) / 2
    return {"n": n, "min_ms": round(ms[0], 1), "median_ms": round(median, 1),
            "p90_ms": round(ms[max(0, math.ceil(0.9 * n) - 1)], 1), "max_ms": round(ms[-1], 1),
            "runs_ms": [round(v * 1000.0, 1) for v in values]}


class Api:
    """The provider's REST API over one kept-alive connection (reopened on error), so a
    5 ms poll costs a request, not a TCP handshake."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def call(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        # Only a GET is retried (on a fresh connection, after the server closed an idle
        # one): a retried POST or PUT may have been applied already and would get a 409.
        attempts = (1, 2) if method == "GET" else (2,)
        if method != "GET":
            self.close()
        for attempt in attempts:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                self.conn.request(method, "/v2" + path, body=data, headers=headers)
                r = self.conn.getresponse()
                text = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, (json.loads(text) if text else None)
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def ok(self, method, path, body=None, timeout=30):
        status, doc = self.call(method, path, body, timeout)
        if status >= 300:
            raise RuntimeError("%s %s: HTTP %d %s" % (method, path, status, json.dumps(doc)[:300]))
        return doc

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Env:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="banyan-cbench-")
        self.prefix = "bc" + secrets.token_hex(2)
        self.api_port = free_port()
        self.hm_port = free_port(socket.SOCK_DGRAM)
        net = args.net
        self.mgmt_cidr = net + ".224/27"
        self.vip_cidr = net + ".192/27"
        self.mem_cidr = net + ".0/25"
        self.vip_net = "0b0c0000-0000-4000-8000-%012d" % 192
        self.mem_net = "0b0c0000-0000-4000-8000-%012d" % 0
        self.net = net
        self.conf = os.path.join(self.tmp, "provider.conf")
        self.log_path = os.path.join(self.tmp, "provider.log")
        self.provider = None
        self.member_procs = {}  # i -> Popen
        self.member_ns = {}  # i -> namespace
        self.api = Api(self.api_port)

    # --- preflight -------------------------------------------------------------
    def preflight(self):
        mine = [ipaddress.ip_network(c) for c in (self.mgmt_cidr, self.vip_cidr, self.mem_cidr)]
        for line in run(["ip", "-o", "-4", "addr"]).stdout.splitlines():
            parts = line.split()
            addr = ipaddress.ip_interface(parts[3])
            for net in mine:
                if addr.network.overlaps(net):
                    raise RuntimeError("%s on %s overlaps %s: pick another --net" % (parts[3], parts[1], net))
        links = run(["ip", "-o", "link"]).stdout
        if re.search(r"^\d+: %s" % re.escape(self.prefix), links, re.M):
            raise RuntimeError("links named %s* exist already" % self.prefix)

    def write_conf(self, spare_pool):
        with open(self.conf, "w") as f:
            f.write("""[DEFAULT]
state_dir = {tmp}/state
debug = false
[api_settings]
bind_port = {api}
noauth_project_id = demo
[controller_worker]
amp_active_retries = 30
amp_active_wait_sec = 1
[health_manager]
bind_port = {hm}
heartbeat_interval = 10
[house_keeping]
spare_amphora_pool_size = {spare}
spare_check_interval = 1
[netns]
state_dir = {tmp}/state/netns
name_prefix = {prefix}
management_cidr = {mgmt}
vip_networks = {vip}::{vip_cidr}
member_networks = {mem}::{mem_cidr}
agent_binary = {agent}
proxy_binary = {proxy}
""".format(tmp=self.tmp, api=self.api_port, hm=self.hm_port, spare=spare_pool, prefix=self.prefix,
           mgmt=self.mgmt_cidr, vip=self.vip_net, vip_cidr=self.vip_cidr, mem=self.mem_net,
           mem_cidr=self.mem_cidr, agent=self.args.agent, proxy=self.args.proxy))

    # --- processes -------------------------------------------------------------
    def start_provider(self, spare_pool):
        self.write_conf(spare_pool)
        out = open(self.log_path, "a")
        self.provider = subprocess.Popen([self.args.provider, "--config-file", self.conf, "all"],
                                         stdout=out, stderr=subprocess.STDOUT)
        out.close()
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                self.api.call("GET", "/lbaas/loadbalancers", timeout=2)
                return
            except OSError:
                if self.provider.poll() is not None:
                    raise RuntimeError("banyan-provider exited: see " + self.log_path)
                time.sleep(0.1)
        raise RuntimeError("banyan-provider API did not come up in 30 s")

    def stop_provider(self):
        self.api.close()
        if self.provider and self.provider.poll() is None:
            self.provider.send_signal(signal.SIGTERM)
            try:
                self.provider.wait(20)
            except subprocess.TimeoutExpired:
                self.provider.kill()
                self.provider.wait()
        self.provider = None

    def member_addr(self, i):
        return "%s.%d" % (self.net, 119 + i)

    def start_member(self, i):
        ns = "%s-m%d" % (self.prefix, i)
        addr = self.member_addr(i)
        veth = "%sm%dh" % (self.prefix, i)
        self.member_ns[i] = ns
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "link", "set", veth, "master", self.prefix + "-mem0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", ns, "addr", "add", addr + "/25", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        out = open(os.path.join(self.tmp, ns + ".log"), "a")
        self.member_procs[i] = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, self.args.member_server, "--bind", addr, "--port", "80",
             "--name", "m%d" % i], stdout=out, stderr=subprocess.STDOUT)
        out.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            if run(["ip", "netns", "exec", ns, sys.executable, "-c",
                    "import socket; socket.create_connection(('%s', 80), 1)" % addr], check_rc=False).returncode == 0:
                return addr
            time.sleep(0.1)
        raise RuntimeError("member server %d did not start" % i)

    def cleanup(self):
        self.stop_provider()
        for p in self.member_procs.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if os.path.exists(self.conf):
            r = run([self.args.provider, "--config-file", self.conf, "netns-cleanup"], check_rc=False)
            if r.returncode != 0:
                log("netns-cleanup failed: " + r.stderr.strip())
        for i, ns in self.member_ns.items():
            # The host end first: a namespace is destroyed asynchronously, its veth later.
            run(["ip", "link", "del", "%sm%dh" % (self.prefix, i)], check_rc=False)
            run(["ip", "netns", "del", ns], check_rc=False)

    def leftovers(self):
        left = [l.split()[0] for l in run(["ip", "netns", "list"]).stdout.splitlines() if l.startswith(self.prefix)]
        for l in run(["ip", "-o", "link"]).stdout.splitlines():
            name = l.split(":")[1].strip().split("@")[0]
            if name.startswith(self.prefix):
                left.append(name)
        return left

    # --- API helpers -----------------------------------------------------------
    def lb_status(self, lb_id):
        status, doc = self.api.call("GET", "/lbaas/loadbalancers/" + lb_id)
        if status == 404:
            return "GONE"
        if status >= 300:
            return "?"
        return doc["loadbalancer"]["provisioning_status"]

    def wait_active(self, lb_id, since=None, timeout=60, interval=0.005):
        """Polls every `interval` s; returns seconds from `since` (default: now) to ACTIVE."""
        start = since if since is not None else time.perf_counter()
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            st = self.lb_status(lb_id)
            if st == "ACTIVE":
                return time.perf_counter() - start
            if st == "ERROR":
                raise RuntimeError("load balancer %s went ERROR (see %s)" % (lb_id, self.log_path))
            time.sleep(interval)
        raise RuntimeError("load balancer %s not ACTIVE after %d s" % (lb_id, timeout))

    def wait_for(self, what, fn, timeout=60, interval=0.05):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if fn():
                return
            time.sleep(interval)
        raise RuntimeError("timed out after %d s waiting for %s" % (timeout, what))

    def amphorae(self):
        return self.api.ok("GET", "/octavia/amphorae")["amphorae"]

    def ready_spares(self):
        return [a["id"] for a in self.amphorae() if a["status"] == "READY" and not a.get("loadbalancer_id")]

    def create_lb(self, name):
        lb = self.api.ok("POST", "/lbaas/loadbalancers", {"loadbalancer": {"name": name, "vip_subnet_id": self.vip_net}})
        return lb["loadbalancer"]["id"]

    def delete_lb(self, lb_id):
        self.api.ok("DELETE", "/lbaas/loadbalancers/%s?cascade=true" % lb_id)
        self.wait_for("load balancer %s deleted" % lb_id, lambda: self.lb_status(lb_id) == "GONE", timeout=60)

    def log_offset(self):
        return os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0

    def jobs_since(self, offset):
        """`job done` durations (ms) the provider logged after `offset`, by job kind."""
        jobs = {}
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            for line in f.read().decode(errors="replace").splitlines():
                m = re.search(r"job done job=(\S+) .* ms=([0-9.]+)", line)
                if m:
                    jobs.setdefault(m.group(1), []).append(float(m.group(2)))
        return {k: {"n": len(v), "median_ms": round(sorted(v)[len(v) // 2], 1), "max_ms": round(max(v), 1)}
                for k, v in jobs.items()}


def http_get(address, port=80, timeout=1.0):
    with socket.create_connection((address, port), timeout) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while len(data) < 65536:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    fields = dict(p.split("=", 1) for p in body.decode(errors="replace").split() if "=" in p)
    return int(head.split()[1]), fields.get("member")


# --- 1. create to ACTIVE ----------------------------------------------------------
def bench_create(env, runs, spare):
    times, used_spare = [], 0
    for run_no in range(runs):
        spare_id = None
        if spare:
            env.wait_for("a READY spare amphora", lambda: env.ready_spares(), timeout=60)
            spare_id = env.ready_spares()[0]
        t0 = time.perf_counter()
        lb_id = env.create_lb("bench-create-%d" % run_no)
        dt = env.wait_active(lb_id, since=t0)
        times.append(dt)
        amps = env.api.ok("GET", "/octavia/amphorae?loadbalancer_id=" + lb_id)["amphorae"]
        if spare_id and any(a["id"] == spare_id for a in amps):
            used_spare += 1
        log("create (spare=%s) run %d: %.1f ms" % (spare, run_no + 1, dt * 1000))
        env.delete_lb(lb_id)
    return times, used_spare


# --- 2. member add to first request -----------------------------------------------
def bench_member_add(env, runs):
    env.start_member(1)
    env.start_member(2)
    lb_id = env.create_lb("bench-member")
    env.wait_active(lb_id)
    vip = env.api.ok("GET", "/lbaas/loadbalancers/" + lb_id)["loadbalancer"]["vip_address"]
    listener = env.api.ok("POST", "/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 80, "name": "http"}})["listener"]
    env.wait_active(lb_id)
    pool = env.api.ok("POST", "/lbaas/pools", {"pool": {
        "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "name": "rr"}})["pool"]
    env.wait_active(lb_id)
    env.api.ok("POST", "/lbaas/pools/%s/members" % pool["id"], {"member": {
        "address": env.member_addr(1), "protocol_port": 80, "subnet_id": env.mem_net, "name": "m1"}})
    env.wait_active(lb_id)
    env.wait_for("m1 answering through the VIP", lambda: _answers(vip) == "m1", timeout=10)

    times, requests = [], []
    for run_no in range(runs):
        t0 = time.perf_counter()
        member = env.api.ok("POST", "/lbaas/pools/%s/members" % pool["id"], {"member": {
            "address": env.member_addr(2), "protocol_port": 80, "subnet_id": env.mem_net, "name": "m2"}})["member"]
        count, seen = 0, None
        deadline = t0 + 10
        while count < 5000 and time.perf_counter() < deadline:
            count += 1
            seen = _answers(vip)
            if seen == "m2":
                break
        dt = time.perf_counter() - t0
        if seen != "m2":
            raise RuntimeError("the new member answered no request within %d requests / 10 s" % count)
        times.append(dt)
        requests.append(count)
        log("member add run %d: %.1f ms (%d requests)" % (run_no + 1, dt * 1000, count))
        env.wait_active(lb_id)
        env.api.ok("DELETE", "/lbaas/pools/%s/members/%s" % (pool["id"], member["id"]))
        env.wait_active(lb_id)
    return lb_id, times, requests


def _answers(vip):
    try:
        status, member = http_get(vip)
        return member if status == 200 else None
    except (OSError, IndexError, ValueError):
        return None


# --- 3. batch update of 1,000 members ---------------------------------------------
def batch_members(env, weight0=1):
    # 100 addresses x 10 ports in the member subnet; nothing needs to answer there.
    members = []
    for a in range(100):
        for p in range(10):
            members.append({"address": "%s.%d" % (env.net, 10 + a), "protocol_port": 8001 + p,
                            "subnet_id": env.mem_net, "name": "b%03d-%d" % (a, p), "weight": 1})
    members[0]["weight"] = weight0
    return {"members": members}


def bench_batch(env, lb_id, runs):
    listener = env.api.ok("POST", "/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 81, "name": "batch"}})["listener"]
    env.wait_active(lb_id)
    pool = env.api.ok("POST", "/lbaas/pools", {"pool": {
        "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "name": "batch"}})["pool"]
    env.wait_active(lb_id)
    path = "/lbaas/pools/%s/members" % pool["id"]
    full, full_api, clear, delta, delta_api = [], [], [], [], []
    for run_no in range(runs):
        t0 = time.perf_counter()
        env.api.ok("PUT", path, {"members": []}, timeout=300)
        clear.append(env.wait_active(lb_id, since=t0))
        t0 = time.perf_counter()
        env.api.ok("PUT", path, batch_members(env), timeout=300)
        full_api.append(time.perf_counter() - t0)
        full.append(env.wait_active(lb_id, since=t0))
        log("batch 1000 run %d: %.1f ms (PUT answered in %.1f ms)" % (run_no + 1, full[-1] * 1000,
                                                                        full_api[-1] * 1000))
    count = len(env.api.ok("GET", path + "?limit=2000")["members"])
    if count != 1000:
        raise RuntimeError("pool has %d members after the batch update, not 1000" % count)
    for run_no in range(runs):
        t0 = time.perf_counter()
        env.api.ok("PUT", path, batch_members(env, weight0=2 if run_no % 2 == 0 else 1), timeout=300)
        delta_api.append(time.perf_counter() - t0)
        delta.append(env.wait_active(lb_id, since=t0))
        log("batch delta run %d: %.1f ms (PUT answered in %.1f ms)" % (run_no + 1, delta[-1] * 1000,
                                                                         delta_api[-1] * 1000))
    return {"full_1000": summary(full), "full_1000_put_answered": summary(full_api),
            "delta_1_of_1000": summary(delta), "delta_put_answered": summary(delta_api),
            "clear_1000_to_0": summary(clear), "members_in_pool": count}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    b = os.path.join(REPO, "build")
    parser.add_argument("--provider", default=os.path.join(b, "provider/src/app/banyan-provider"))
    parser.add_argument("--agent", default=os.path.join(b, "amphora-agent/src/app/banyan-agent"))
    parser.add_argument("--proxy", default=os.path.join(b, "dataplane/banyan-proxy"))
    parser.add_argument("--member-server", default=os.path.join(REPO, "scripts/demo_member_server.py"))
    parser.add_argument("--net", default="198.51.100", help="documentation /24 to use (first three octets)")
    parser.add_argument("--runs", type=int, default=10, help="runs of benchmarks 1 (spare) and 2")
    parser.add_argument("--no-spare-runs", type=int, default=5)
    parser.add_argument("--batch-runs", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--keep-log", help="copy the provider log here")
    args = parser.parse_args()
    if args.net not in ("198.51.100", "203.0.113"):
        parser.error("--net must be 198.51.100 or 203.0.113 (192.0.2.0/24 is often the host's uplink)")
    if os.geteuid() != 0:
        print("controller_bench: needs root", file=sys.stderr)
        return 1
    for path in (args.provider, args.agent, args.proxy, args.member_server):
        if not os.path.exists(path):
            print("controller_bench: missing " + path, file=sys.stderr)
            return 1

    # SIGTERM runs the cleanup as SIGINT does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = Env(args)
    results = {"machine": {"nproc": os.cpu_count(), "loadavg_start": open("/proc/loadavg").read().split()[:3]},
               "prefix": env.prefix, "net": args.net + ".0/24"}
    rc = 0
    try:
        env.preflight()
        # 1b. No spare pool first, so no spare exists yet.
        env.start_provider(spare_pool=0)
        off = env.log_offset()
        times, _ = bench_create(env, args.no_spare_runs, spare=False)
        results["create_to_active_no_spare"] = summary(times)
        results["create_to_active_no_spare"]["jobs"] = env.jobs_since(off)
        env.stop_provider()

        # 1a. With a spare pool of one.
        env.start_provider(spare_pool=1)
        off = env.log_offset()
        times, used = bench_create(env, args.runs, spare=True)
        results["create_to_active_spare"] = summary(times)
        results["create_to_active_spare"]["spare_claimed"] = used
        results["create_to_active_spare"]["jobs"] = env.jobs_since(off)

        # 2. Member add to the first request it answers.
        off = env.log_offset()
        lb_id, times, requests = bench_member_add(env, args.runs)
        results["member_add_to_first_request"] = summary(times)
        results["member_add_to_first_request"]["requests_per_run"] = requests
        results["member_add_to_first_request"]["jobs"] = env.jobs_since(off)

        # 3. Batch update of 1,000 members on the same load balancer.
        off = env.log_offset()
        results["batch_update"] = bench_batch(env, lb_id, args.batch_runs)
        results["batch_update"]["jobs"] = env.jobs_since(off)
        env.delete_lb(lb_id)
    except BaseException as e:  # a failed step ends the benchmark; the cleanup still runs
        rc = 1
        results["error"] = repr(e)
        log("failed: %r" % (e,))
        if os.path.exists(env.log_path):
            log("--- provider.log (last 30 lines)\n" + "".join(open(env.log_path).readlines()[-30:]))
    finally:
        results["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        try:
            env.cleanup()
        finally:
            left = env.leftovers()
            results["left_behind"] = left
            if left:
                rc = 1
                log("left behind: " + " ".join(left))
            if args.keep_log and os.path.exists(env.log_path):
                shutil.copy(env.log_path, args.keep_log)
            shutil.rmtree(env.tmp, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
