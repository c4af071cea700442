#!/usr/bin/python3
"""Octavia v2 API benchmark (issue 6): throughput and latency of banyan-provider `api`.

    api_bench.py [--provider BIN] [--backend sqlite|postgres|both] [--driver serial|python|wrk|both|all]
                 [--lbs 1000] [--members-per-lb 10] [--projects 10] [--clients 50]
                 [--duration 10] [--max-requests 30000] [--json OUT] [--phases a,b,...]
                 [--compare-provider OLD_BIN] [--api-settings KEY=VALUE,...]...

For each backend it starts its own `banyan-provider api` on 127.0.0.1 (noauth, the
noop_driver as default provider so every change is ACTIVE when the answer comes back;
for PostgreSQL also its own server: initdb in a temp dir, a free port on 127.0.0.1,
stopped by PID), populates --lbs load balancers with one HTTP listener, one pool and
--members-per-lb members each (full-graph creates, spread round-robin over --projects
projects named with X-Project-Id, as noauth takes the project from that header), then
runs bounded phases at --clients concurrent clients, each stopping after --duration
seconds or --max-requests requests, whichever comes first:

  lb_show          GET  /v2/lbaas/loadbalancers/{id}
  lb_list          GET  /v2/lbaas/loadbalancers  (default page: noauth callers are admins,
                                                  so this is every project, up to
                                                  pagination_max_limit = 1000)
  lb_list_project  GET  /v2/lbaas/loadbalancers?project_id={p}
  lb_list_filter   GET  /v2/lbaas/loadbalancers?project_id={p}&name={name}
  lb_list_page     GET  /v2/lbaas/loadbalancers?limit=50&marker={id}
  member_show      GET  /v2/lbaas/pools/{pool}/members/{id}
  member_list      GET  /v2/lbaas/pools/{pool}/members
  mixed            every client loops over its own project's objects: create a load
                   balancer, show it, rename it, list its project, add a member to a
                   pool of its project, change its weight, list the pool's members,
                   delete the member, delete the load balancer (cascade). With the
                   wrk driver: --mixed-writers Python clients loop over those writes
                   alone while one wrk per read kind reads on the other connections
                   (shared by the weights of MIXED_READS), so the reads' latency under
                   writes is measured without the Python clients' own cost

Drivers. `serial`: one client, one request at a time (--serial-requests), the service
time without queueing. `python`: one process per client (no GIL between clients), each with one
kept-alive HTTP/1.1 connection, timing every request with perf_counter. `wrk`: Debian's
wrk (C, epoll, 2 threads) with a Lua script that picks the same random paths; it runs
the read phases, and the reads of the mixed phase (see above). Both share the
machine's cores with the server: on a small box the load generator's own CPU time
shows up as latency.

Variants: after one population the provider is restarted for each of them and every
phase runs again on the same data: first --compare-provider (another build, e.g. of
the previous commit, with its defaults), then --provider once per --api-settings (extra
[api_settings] lines, e.g. page_in_store=false for the in-memory paging). Before/after numbers then share the data and the machine's load of
the same minutes.

Prints a table (count, non-2xx, req/s, p50/p90/p99/max in ms, the provider's CPU
milliseconds per request over the phase, load average per request kind) and one JSON
document (also written to --json). Only 127.0.0.1 is contacted. Every loop is
bounded in count and time; every process the script starts is stopped by PID, even on
failure.
"""
import argparse
import http.client
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from pg_cluster import PgCluster  # noqa: E402  (the e2e scripts' throwaway PostgreSQL)
VIP_SUBNET = "00000000-0000-4000-8000-203000113000"
READ_PHASES = ["lb_show", "lb_list", "lb_list_project", "lb_list_filter", "lb_list_page",
               "member_show", "member_list"]
# What wrk reads in the mixed phase, and how often: what a dashboard and the CLI ask for.
MIXED_READS = [("lb_show", 4), ("member_show", 2), ("member_list", 2), ("lb_list_project", 1),
               ("lb_list_page", 1)]
ALL_PHASES = READ_PHASES + ["mixed"]


def log(msg):
    print("[api-bench] " + msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_pid(proc, timeout=15):
    """SIGTERM, then SIGKILL after timeout; only the process we started."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def percentile(sorted_values, p):
    """Nearest-rank percentile."""
    if not sorted_values:
        return None
    k = max(0, math.ceil(p / 100.0 * len(sorted_values)) - 1)
    return sorted_values[k]


# --------------------------------------------------------------------------- servers

class Provider:
    def __init__(self, binary, tmp, database_url, name):
        self.binary = binary
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.database_url = database_url
        self.proc = None

    def start(self, api_settings=()):
        conf = os.path.join(self.dir, "provider.conf")
        with open(conf, "w") as f:
            f.write("[DEFAULT]\nstate_dir = %s\n\n" % self.dir)
            f.write("[api_settings]\nbind_host = 127.0.0.1\nbind_port = %d\nauth_strategy = noauth\n"
                    "enabled_provider_drivers = noop_driver:The no-op driver.\n"
                    "default_provider_driver = noop_driver\n" % self.port)
            for line in api_settings:
                f.write(line + "\n")
            f.write("\n")
            f.write("[database]\nconnection = %s\n" % self.database_url)
        self.log = open(os.path.join(self.dir, "provider.log"), "w")
        self.proc = subprocess.Popen([self.binary, "--config-file", conf, "api"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("banyan-provider exited; see " + self.log.name)
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/")
                c.getresponse().read()
                c.close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("banyan-provider did not answer in 60 s")

    def stop(self):
        stop_pid(self.proc)
        self.proc = None

    def cpu_seconds(self):
        try:
            with open("/proc/%d/stat" % self.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def wait_idle(self, timeout=120):
        """Until the server uses < 5% of a core over half a second: a phase must not
        inherit requests a previous phase's clients left queued."""
        deadline = time.time() + timeout
        last = self.cpu_seconds()
        while time.time() < deadline and last is not None:
            time.sleep(0.5)
            now = self.cpu_seconds()
            if now is None or now - last < 0.025:
                return
            last = now
        log("the server was still busy after %d s" % timeout)

    def rss_kib(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None


# --------------------------------------------------------------------------- client

class Client:
    """One kept-alive connection; reconnects after an error or a server close."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def call(self, method, path, body=None, project=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if project:
            headers["X-Project-Id"] = project
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            self.conn.request(method, "/v2" + path, body=data, headers=headers)
            r = self.conn.getresponse()
            text = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.close()
            return r.status, text
        except (OSError, http.client.HTTPException):
            self.close()
            return 0, b""

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def populate(port, lbs, members_per_lb, projects, threads=8):
    """Full-graph creates, round-robin over projects. Returns the objects' ids."""
    created = [None] * lbs
    errors = []
    next_index = [0]
    lock = threading.Lock()

    def body(i):
        members = [{"address": "198.51.100.%d" % (10 + j % 200), "protocol_port": 80 + j // 200,
                    "name": "m-%d-%d" % (i, j)} for j in range(members_per_lb)]
        pool = {"name": "pool-%d" % i, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                "members": members}
        return {"loadbalancer": {"name": "lb-%05d" % i, "vip_subnet_id": VIP_SUBNET,
                                 "listeners": [{"name": "l-%d" % i, "protocol": "HTTP", "protocol_port": 80,
                                                "default_pool": pool}]}}

    def worker():
        client = Client(port)
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= lbs or errors:
                return
            project = projects[i % len(projects)]
            status, text = client.call("POST", "/lbaas/loadbalancers", body(i), project)
            if status != 201:
                errors.append("create %d: HTTP %d %s" % (i, status, text[:300]))
                return
            lb = json.loads(text)["loadbalancer"]
            pool = lb["pools"][0]
            created[i] = {"id": lb["id"], "name": lb["name"], "project": project, "pool": pool["id"],
                          "members": [m["id"] for m in pool["members"]]}

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=3600)
    if errors:
        raise RuntimeError(errors[0])
    return created


# --------------------------------------------------------------------------- phases

def read_request(phase, objs, projects, rng):
    lb = objs[rng.randrange(len(objs))]
    if phase == "lb_show":
        return "/lbaas/loadbalancers/" + lb["id"], lb["project"]
    if phase == "lb_list":
        return "/lbaas/loadbalancers", lb["project"]
    if phase == "lb_list_project":
        return "/lbaas/loadbalancers?project_id=" + lb["project"], lb["project"]
    if phase == "lb_list_filter":
        return "/lbaas/loadbalancers?project_id=%s&name=%s" % (lb["project"], lb["name"]), lb["project"]
    if phase == "lb_list_page":
        return "/lbaas/loadbalancers?limit=50&marker=" + lb["id"], lb["project"]
    if phase == "member_show":
        return "/lbaas/pools/%s/members/%s" % (lb["pool"], lb["members"][rng.randrange(len(lb["members"]))]), \
            lb["project"]
    if phase == "member_list":
        return "/lbaas/pools/%s/members" % lb["pool"], lb["project"]
    raise ValueError(phase)


def mixed_cycle(client, index, cycle, objs, record, reads=True):
    """One round of a client's writes and reads (only its writes without `reads`) on its
    own project's objects. Each client owns one pre-populated load balancer (objs[index])
    for its member changes, so clients never collide on a PENDING parent; a 409 here
    would be a bug."""
    own = objs[index % len(objs)]
    project = own["project"]

    def timed(kind, method, path, body=None):
        t0 = time.perf_counter()
        status, text = client.call(method, path, body, project)
        record(kind, status, time.perf_counter() - t0)
        return status, text

    st, text = timed("lb_create", "POST", "/lbaas/loadbalancers",
                     {"loadbalancer": {"name": "mix-%d-%d" % (index, cycle), "vip_subnet_id": VIP_SUBNET}})
    lb_id = json.loads(text)["loadbalancer"]["id"] if st == 201 else None
    if lb_id:
        if reads:
            timed("lb_show", "GET", "/lbaas/loadbalancers/" + lb_id)
        timed("lb_update", "PUT", "/lbaas/loadbalancers/" + lb_id,
              {"loadbalancer": {"name": "mix-%d-%d-renamed" % (index, cycle), "description": "bench"}})
    if reads:
        timed("lb_list_project", "GET", "/lbaas/loadbalancers?project_id=" + project)
    st, text = timed("member_create", "POST", "/lbaas/pools/%s/members" % own["pool"],
                     {"member": {"address": "198.51.100.250", "protocol_port": 10000 + cycle % 50000,
                                 "name": "mix-%d" % cycle}})
    member_id = json.loads(text)["member"]["id"] if st == 201 else None
    if member_id:
        timed("member_update", "PUT", "/lbaas/pools/%s/members/%s" % (own["pool"], member_id),
              {"member": {"weight": 5}})
    if reads:
        timed("member_list", "GET", "/lbaas/pools/%s/members" % own["pool"])
    if member_id:
        timed("member_delete", "DELETE", "/lbaas/pools/%s/members/%s" % (own["pool"], member_id))
    if lb_id:
        timed("lb_delete", "DELETE", "/lbaas/loadbalancers/%s?cascade=true" % lb_id)


def client_process(port, phase, index, objs, projects, start_event, start_at, duration, max_requests,
                   conn):
    """One benchmark client. Sends back {kind: (latencies, {status: count})}."""
    rng = random.Random(index * 7919 + 17)
    client = Client(port)
    results = {}

    def record(kind, status, seconds):
        lat, codes = results.setdefault(kind, ([], {}))
        lat.append(seconds)
        codes[status] = codes.get(status, 0) + 1

    start_event.wait(120)
    while time.time() < start_at.value:
        time.sleep(0.001)
    deadline = start_at.value + duration
    sent = 0
    cycle = 0
    while time.time() < deadline and sent < max_requests:
        if phase in ("mixed", "mixed_writes"):
            mixed_cycle(client, index, cycle, objs, record, reads=phase == "mixed")
            cycle += 1
            sent = sum(len(v[0]) for v in results.values())
        else:
            path, project = read_request(phase, objs, projects, rng)
            t0 = time.perf_counter()
            status, _ = client.call("GET", path, None, project)
            record(phase, status, time.perf_counter() - t0)
            sent += 1
    client.close()
    conn.send(results)
    conn.close()


def summarize(results, wall):
    out = {}
    for kind in sorted(results):
        lat, codes = results[kind]
        ms = sorted(v * 1000.0 for v in lat)
        bad = {str(k): v for k, v in codes.items() if not 200 <= k < 300}
        out[kind] = {"count": len(ms), "non_2xx": bad, "rps": round(len(ms) / wall, 1),
                     "p50_ms": round(percentile(ms, 50), 2), "p90_ms": round(percentile(ms, 90), 2),
                     "p99_ms": round(percentile(ms, 99), 2), "max_ms": round(ms[-1], 2)}
    return out


def run_python_phase(port, phase, objs, projects, clients, duration, max_requests):
    ctx = multiprocessing.get_context("fork")
    start_event = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    procs, pipes = [], []
    per_client = max(1, max_requests // clients)
    try:
        for i in range(clients):
            parent, child = ctx.Pipe(duplex=False)
            p = ctx.Process(target=client_process,
                            args=(port, phase, i, objs, projects, start_event, start_at, duration, per_client,
                                  child))
            p.start()
            child.close()
            procs.append(p)
            pipes.append(parent)
        start_at.value = time.time() + 0.5
        start_event.set()
        merged = {}
        for parent in pipes:
            if not parent.poll(duration + 300):
                raise RuntimeError("a benchmark client did not report in time")
            for kind, (lat, codes) in parent.recv().items():
                m = merged.setdefault(kind, ([], {}))
                m[0].extend(lat)
                for k, v in codes.items():
                    m[1][k] = m[1].get(k, 0) + v
        wall = max(1e-9, time.time() - start_at.value)
        for p in procs:
            p.join(timeout=30)
        return summarize(merged, wall)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=10)


WRK_LUA = r"""
local paths = {}
local projects = {}
for line in io.lines("%(paths)s") do
  local project, path = line:match("^(%%S+) (.+)$")
  paths[#paths + 1] = path
  projects[#projects + 1] = project
end
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
function init(args)
  math.randomseed(seed * 7919 + 17)
end
function request()
  local i = math.random(#paths)
  return wrk.format("GET", "/v2" .. paths[i], {["Accept"] = "application/json", ["X-Project-Id"] = projects[i]})
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "non_2xx": %%d, "socket_errors": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def run_wrk_mixed(port, objs, projects, clients, writers, duration, max_requests, tmp):
    """The mixed phase through wrk: `writers` Python clients loop over the writes while one
    wrk per kind of MIXED_READS reads on the other connections (shared by weight), all for
    the same seconds."""
    writes = {}
    failed = []

    def write():
        try:
            writes.update(run_python_phase(port, "mixed_writes", objs, projects, writers, duration, max_requests))
        except Exception as e:  # reported below, after wrk is done
            failed.append(e)

    readers = clients - writers
    total = sum(w for _, w in MIXED_READS)
    shares = [(kind, max(1, round(readers * w / total))) for kind, w in MIXED_READS]
    t = threading.Thread(target=write)
    t.start()
    running = []
    try:
        time.sleep(0.5)  # the writers' own start delay
        for kind, n in shares:
            running.append((kind, start_wrk(port, kind, objs, projects, n, 1, duration, tmp)))
        reads = {}
        for kind, proc in running:
            reads.update(finish_wrk(kind, proc, duration))
    finally:
        for _, proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        t.join(duration + 600)
    if failed:
        raise failed[0]
    return dict(reads, **writes)


def start_wrk(port, phase, objs, projects, clients, threads, duration, tmp):
    rng = random.Random(4242)
    paths_file = os.path.join(tmp, "wrk-%s.txt" % phase)
    with open(paths_file, "w") as f:
        for _ in range(2000):
            path, project = read_request(phase, objs, projects, rng)
            f.write("%s %s\n" % (project, path))
    script = os.path.join(tmp, "wrk-%s.lua" % phase)
    with open(script, "w") as f:
        f.write(WRK_LUA % {"paths": paths_file})
    return subprocess.Popen(["wrk", "-t", str(min(threads, clients)), "-c", str(clients), "-d", "%ds" % duration,
                             "--timeout", "30s", "-s", script, "http://127.0.0.1:%d/" % port],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_wrk(phase, proc, duration):
    try:
        out, err = proc.communicate(timeout=duration + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    m = re.search(r"^WRKJSON (.*)$", out, re.M)
    if proc.returncode != 0 or not m:
        raise RuntimeError("wrk failed: " + out + err)
    w = json.loads(m.group(1))
    secs = w["duration_us"] / 1e6
    non_2xx = {}
    if w["non_2xx"]:
        non_2xx["non_2xx"] = w["non_2xx"]
    if w["socket_errors"]:
        non_2xx["socket_errors"] = w["socket_errors"]
    return {phase: {"count": w["requests"], "non_2xx": non_2xx, "rps": round(w["requests"] / secs, 1),
                    "p50_ms": round(w["p50_us"] / 1000.0, 2), "p90_ms": round(w["p90_us"] / 1000.0, 2),
                    "p99_ms": round(w["p99_us"] / 1000.0, 2), "max_ms": round(w["max_us"] / 1000.0, 2)}}


def run_wrk_phase(port, phase, objs, projects, clients, duration, tmp):
    return finish_wrk(phase, start_wrk(port, phase, objs, projects, clients, 2, duration, tmp), duration)


# --------------------------------------------------------------------------- main

def bench_backend(args, backend, tmp):
    pg = None
    provider = None
    out = {"backend": backend}
    try:
        if backend == "postgres":
            # Stock durability settings (fsync on), so write numbers are honest.
            pg = PgCluster(os.path.join(tmp, "pg"), durable=True, max_connections=200)
            pg.start()
            url = pg.url()
        else:
            url = "sqlite:///" + os.path.join(tmp, backend + "-db", "banyan.sqlite")
        provider = Provider(args.provider, tmp, url, "provider-" + backend)
        provider.start()
        projects = ["bench-project-%02d" % i for i in range(args.projects)]
        t0 = time.time()
        objs = populate(provider.port, args.lbs, args.members_per_lb, projects)
        out["populate_s"] = round(time.time() - t0, 1)
        out["load_balancers"] = len(objs)
        out["members"] = sum(len(o["members"]) for o in objs)
        log("%s: populated %d load balancers, %d members in %.1f s" % (backend, out["load_balancers"],
                                                                       out["members"], out["populate_s"]))
        # Variants run one after the other on the same populated database: the provider
        # is restarted with each binary (--compare-provider) and thread pool size
        # (--http-threads), so before/after numbers share data and machine load.
        variants = [(args.provider, v) for v in args.api_settings]
        if args.compare_provider:
            variants = [(args.compare_provider, [])] + variants  # its defaults
        # The database as it is in service, not as the population left it: PostgreSQL
        # after the VACUUM ANALYZE autovacuum would run (statistics, and the visibility
        # map that index-only scans count on); SQLite's WAL (about 4 MiB after the
        # population) folded into the database when the population's provider closes it.
        # Through that WAL a phase took 3-6 % more of the provider's CPU per request.
        if pg:
            pg.psql("VACUUM ANALYZE", db="banyan")
        for i, (binary, settings) in enumerate(variants):
            label = variant_label(binary, settings)
            provider.stop()
            provider.binary = binary
            provider.start(settings)
            phases = {}
            if len(variants) > 1:
                out.setdefault("variants", {})[label] = {"provider": binary, "api_settings": settings,
                                                         "load_before": os.getloadavg()[0], "phases": phases}
                log("%s: variant %s" % (backend, label))
            else:
                out["phases"] = phases
            for phase in args.phases:
                for driver in args.drivers:
                    if driver == "wrk" and phase not in READ_PHASES + ["mixed"]:
                        continue
                    provider.wait_idle()
                    t0 = time.time()
                    cpu0 = provider.cpu_seconds()
                    if driver == "wrk" and phase == "mixed":
                        res = run_wrk_mixed(provider.port, objs, projects, args.clients, args.mixed_writers,
                                            args.duration, args.max_requests, tmp)
                    elif driver == "wrk":
                        res = run_wrk_phase(provider.port, phase, objs, projects, args.clients, args.duration, tmp)
                    elif driver == "serial":
                        # One client, one request at a time: the service time without queueing.
                        res = run_python_phase(provider.port, phase, objs, projects, 1, args.duration,
                                               args.serial_requests)
                    else:
                        res = run_python_phase(provider.port, phase, objs, projects, args.clients, args.duration,
                                               args.max_requests)
                    cpu1 = provider.cpu_seconds()
                    # The provider's own CPU time per request: steadier than the rate on a
                    # small machine, where wrk and the provider share the cores.
                    count = sum(v["count"] for v in res.values())
                    cpu_ms = round((cpu1 - cpu0) * 1000.0 / count, 4) if None not in (cpu0, cpu1) and count else None
                    res = {k: dict(v, load=round(os.getloadavg()[0], 1), cpu_ms_per_req=cpu_ms) for k, v in res.items()}
                    phases.setdefault(phase, {})[driver] = res
                    log("%s %s via %s: %.1f s" % (backend, phase, driver, time.time() - t0))
                    print_table(backend if len(variants) == 1 else backend[:3] + ":" + label, phase, driver, res)
        out["provider_rss_kib"] = provider.rss_kib()
        out["load_after"] = os.getloadavg()[0]
    finally:
        if provider:
            provider.stop()
        if pg:
            pg.stop()
    return out


def variant_label(binary, settings):
    """The build directory of a binary (build-foo/provider/src/app/...) and its settings."""
    parts = os.path.abspath(binary).split(os.sep)
    build = next((p for p in reversed(parts) if p.startswith("build")), os.path.basename(binary))
    return build + ("/" + ",".join(settings) if settings else "")


def print_table(backend, phase, driver, res):
    for kind, r in res.items():
        bad = ",".join("%s:%s" % kv for kv in r["non_2xx"].items()) or "-"
        cpu = r.get("cpu_ms_per_req")
        print("%-8s %-16s %-6s %-16s %7d %8.1f %8.2f %8.2f %8.2f %9.2f %7s %5s  %s" % (
            backend, phase, driver, kind, r["count"], r["rps"], r["p50_ms"], r["p90_ms"], r["p99_ms"],
            r["max_ms"], "-" if cpu is None else "%.3f" % cpu, r.get("load", "-"), bad), flush=True)


def default_provider():
    for d in ("build-apibench", "build"):
        cand = os.path.join(REPO, d, "provider", "src", "app", "banyan-provider")
        if os.path.exists(cand):
            return cand
    return "banyan-provider"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--provider", default=default_provider())
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--driver", default="all",
                    help="serial, python, wrk, or several comma-separated (serial,wrk); both: python and "
                         "wrk; all: also 'serial' (one client, --serial-requests)")
    ap.add_argument("--serial-requests", type=int, default=300)
    ap.add_argument("--lbs", type=int, default=1000)
    ap.add_argument("--members-per-lb", type=int, default=10)
    ap.add_argument("--projects", type=int, default=10)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=int, default=10, help="seconds per phase (at most)")
    ap.add_argument("--max-requests", type=int, default=30000, help="requests per phase (at most)")
    ap.add_argument("--phases", default=",".join(ALL_PHASES))
    ap.add_argument("--mixed-writers", type=int, default=10,
                    help="the mixed phase through wrk: clients that write (Python), of --clients")
    ap.add_argument("--api-settings", action="append", default=None, metavar="KEY=VALUE,...",
                    help="a variant: extra [api_settings] lines for --provider, e.g. "
                         "'page_in_store=false'; repeat for several variants, each run in turn on the same "
                         "data ('' is the defaults)")
    ap.add_argument("--compare-provider",
                    help="another banyan-provider binary (e.g. a build of the previous commit), run first on "
                         "the same data: before/after under the same machine load")
    ap.add_argument("--json")
    args = ap.parse_args()
    args.phases = [p for p in args.phases.split(",") if p]
    args.api_settings = [[kv.strip().replace("=", " = ", 1) for kv in v.split(",") if kv.strip()]
                         for v in (args.api_settings or [""])]
    for v in args.api_settings:
        for line in v:
            if not re.match(r"^[a-z_]+ = \S+$", line):
                ap.error("--api-settings takes key=value,...: " + line)
    for p in args.phases:
        if p not in ALL_PHASES:
            ap.error("unknown phase " + p)
    args.drivers = {"both": ["python", "wrk"], "all": ["serial", "python", "wrk"]}.get(
        args.driver, [d for d in args.driver.split(",") if d])
    for d in args.drivers:
        if d not in ("serial", "python", "wrk"):
            ap.error("unknown driver " + d)
    if "wrk" in args.drivers and not shutil.which("wrk"):
        ap.error("wrk is not installed (apt-get install wrk)")
    if not (1 <= args.duration <= 600 and 1 <= args.clients <= 500 and args.max_requests >= 1):
        ap.error("duration must be 1-600 s, clients 1-500")
    if not 1 <= args.mixed_writers < args.clients:
        ap.error("--mixed-writers must be at least 1 and fewer than --clients")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]

    tmp = tempfile.mkdtemp(prefix="banyan-apibench-")
    report = {"machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]},
              "config": {"lbs": args.lbs, "members_per_lb": args.members_per_lb, "projects": args.projects,
                         "clients": args.clients, "duration_s": args.duration,
                         "max_requests": args.max_requests, "provider": args.provider},
              "backends": []}
    print("%-8s %-16s %-6s %-16s %7s %8s %8s %8s %8s %9s %7s %5s  %s" % (
        "backend", "phase", "driver", "kind", "count", "req/s", "p50ms", "p90ms", "p99ms", "maxms", "cpu/req",
        "load", "non-2xx"))
    try:
        for backend in backends:
            report["backends"].append(bench_backend(args, backend, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
