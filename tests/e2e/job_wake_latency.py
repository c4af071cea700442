#!/usr/bin/python3
"""How long a job waits for a worker in another process: `banyan-provider api` and
`banyan-provider worker` as two processes on one throwaway PostgreSQL (pg_cluster.py),
noop compute and network drivers. For each of N load balancers it POSTs
/v2/lbaas/loadbalancers and reads, from the worker's debug log (millisecond
timestamps), when the worker claimed the create job; then waits for the job to end
before the next POST, so every job finds the worker idle.

    job_wake_latency.py --provider BIN [--count N] [--variants poll,notify]

Variants: `poll` is [controller_worker] job_notifications = false (the worker looks
every job_poll_interval, 50 ms: how it was before LISTEN/NOTIFY); `notify` the default
(LISTEN/NOTIFY, a 2 s safety-net poll). Prints min/median/p90/max per variant.
Everything runs on 127.0.0.1 in a temp dir, removed at the end, also on failure.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from local_procs import free_port, stop_process  # noqa: E402
from pg_cluster import PgCluster  # noqa: E402

VIP_NET = "0e2e0000-0000-4000-8000-203000113064"
CLAIMED = re.compile(r"^(\S+) DEBUG job claimed job=(\d+) kind=loadbalancer\.create")


def log_time(stamp):
    # 2026-11-22T22:18:47.167Z
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def call(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read()
        return json.loads(text) if text else None


def run_variant(args, tmp, pg, name, notify):
    vdir = os.path.join(tmp, name)
    os.makedirs(vdir)
    pg.psql("DROP DATABASE IF EXISTS banyan")
    pg.psql("CREATE DATABASE banyan")
    api_port = free_port()
    conf = os.path.join(vdir, "provider.conf")
    with open(conf, "w") as f:
        f.write("""[DEFAULT]
state_dir = {d}/state
debug = true
[api_settings]
bind_port = {api}
noauth_project_id = demo
[database]
connection = {url}
[controller_worker]
compute_driver = noop
network_driver = noop
amp_active_retries = 1
amp_active_wait_sec = 1
job_notifications = {notify}
[health_manager]
bind_port = {hm}
[netns]
state_dir = {d}/state/netns
vip_networks = {vip}::203.0.113.64/26
""".format(d=vdir, api=api_port, url=pg.url(), notify="true" if notify else "false",
           hm=free_port(socket.SOCK_DGRAM), vip=VIP_NET))
    procs = []
    try:
        for role in ("api", "worker"):
            log = open(os.path.join(vdir, role + ".log"), "w")
            procs.append(subprocess.Popen([args.provider, "--config-file", conf, role], stdout=log,
                                          stderr=subprocess.STDOUT))
        base = "http://127.0.0.1:%d" % api_port
        deadline = time.time() + 30
        while True:
            try:
                call(base, "GET", "/")
                break
            except OSError:
                if time.time() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError("banyan-provider did not come up; see " + vdir)
                time.sleep(0.1)
        time.sleep(1.0)  # the worker connects and LISTENs
        worker_log = os.path.join(vdir, "worker.log")
        latencies = []
        for i in range(args.count):
            seen = sum(1 for line in open(worker_log) if CLAIMED.match(line))
            t0 = time.time()
            lb = call(base, "POST", "/v2/lbaas/loadbalancers",
                      {"loadbalancer": {"vip_subnet_id": VIP_NET, "name": "lat%d" % i}})["loadbalancer"]
            claimed = None
            deadline = time.time() + 10
            while claimed is None and time.time() < deadline:
                lines = [m for m in (CLAIMED.match(l) for l in open(worker_log)) if m]
                if len(lines) > seen:
                    claimed = log_time(lines[seen].group(1))
                else:
                    time.sleep(0.005)
            if claimed is None:
                raise RuntimeError("the worker did not claim the job of %s" % lb["id"])
            latencies.append((claimed - t0) * 1000.0)
            # The job ends (noop drivers: the amphora never answers, ERROR) before the next.
            deadline = time.time() + 30
            while time.time() < deadline:
                status = call(base, "GET", "/v2/lbaas/loadbalancers/" + lb["id"])["loadbalancer"]
                if not status["provisioning_status"].startswith("PENDING"):
                    break
                time.sleep(0.05)
            time.sleep(0.2)  # the worker is back in its idle wait
        return latencies
    finally:
        for p in procs:
            stop_process(p)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--provider", required=True)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--variants", default="poll,notify")
    args = parser.parse_args()
    args.provider = os.path.abspath(args.provider)
    tmp = tempfile.mkdtemp(prefix="banyan-wake-")
    pg = PgCluster(os.path.join(tmp, "pg"))
    results = {}
    try:
        pg.start()
        for variant in args.variants.split(","):
            lat = sorted(run_variant(args, tmp, pg, variant, variant == "notify"))
            results[variant] = lat
            p90 = lat[max(0, int(len(lat) * 0.9) - 1)]
            print("%-6s n=%d POST->claim ms: min %.1f median %.1f p90 %.1f max %.1f" %
                  (variant, len(lat), lat[0], statistics.median(lat), p90, lat[-1]), flush=True)
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
