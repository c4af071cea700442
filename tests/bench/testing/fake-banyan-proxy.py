#!/usr/bin/env python3
"""Stand-in for banyan-proxy, to test the bench adapter before the proxy serves.

Accepts banyan-proxy's command line (--config FILE [--log-level L]), checks the
parts of the config document the adapter writes (ids, protocols, unique member
ids, pools referenced), listens on every listener and forwards bytes to the
listener's pool members round-robin (an L4 relay: good enough for wrk, since one
client connection maps to one member connection). SIGHUP re-reads FILE (an
invalid document keeps the old one, as banyan-proxy does); SIGTERM exits 0.
Each apply is logged as `fake-banyan-proxy: applied generation=N weights=...`.
Not a benchmark subject: a Python relay is far slower than any real proxy.
"""
import argparse
import asyncio
import itertools
import json
import signal
import sys


def log(msg):
    print(f"fake-banyan-proxy: {msg}", file=sys.stderr, flush=True)


def validate(doc):
    for key in ("generation", "settings", "listeners", "pools"):
        if key not in doc:
            raise ValueError(f"/{key}: missing")
    pools = {p["id"]: p for p in doc["pools"]}
    member_ids = [m["id"] for p in doc["pools"] for m in p["members"]]
    if len(member_ids) != len(set(member_ids)):
        raise ValueError("/pools: member ids not unique in the document")
    for i, lst in enumerate(doc["listeners"]):
        if lst["protocol"] not in ("HTTP", "TCP"):
            raise ValueError(f"/listeners/{i}/protocol: {lst['protocol']}")
        if lst["default_pool_id"] not in pools:
            raise ValueError(f"/listeners/{i}/default_pool_id: unknown pool")
    for i, p in enumerate(doc["pools"]):
        if p["protocol"] not in ("HTTP", "TCP") or p["lb_algorithm"] != "ROUND_ROBIN":
            raise ValueError(f"/pools/{i}: unexpected protocol/algorithm")
        for j, m in enumerate(p["members"]):
            if not 0 <= m["weight"] <= 256:
                raise ValueError(f"/pools/{i}/members/{j}/weight: out of range")
    if doc["settings"].get("access_log", None) != "":
        raise ValueError("/settings/access_log: expected \"\" (off)")
    return doc


class Proxy:
    def __init__(self, path):
        self.path = path
        self.doc = None
        self.rr = {}

    def load(self):
        with open(self.path) as f:
            doc = validate(json.load(f))
        self.doc = doc
        # Weighted round-robin by repetition: fine for a stand-in.
        self.rr = {
            p["id"]: itertools.cycle(
                [(m["address"], m["protocol_port"]) for m in p["members"] for _ in range(m["weight"])])
            for p in doc["pools"]}
        weights = {p["id"]: [m["weight"] for m in p["members"]] for p in doc["pools"]}
        log(f"applied generation={doc['generation']} weights={json.dumps(weights, separators=(',', ':'))}")

    def reload(self):
        try:
            self.load()
        except (OSError, ValueError, KeyError, TypeError) as e:
            log(f"reload rejected, keeping generation={self.doc['generation']}: {e}")

    async def relay(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.close()

    def handler(self, pool_id):
        async def handle(creader, cwriter):
            addr = next(self.rr[pool_id])
            try:
                mreader, mwriter = await asyncio.open_connection(*addr)
            except OSError:
                cwriter.close()
                return
            await asyncio.gather(self.relay(creader, mwriter), self.relay(mreader, cwriter))
            cwriter.close()
            mwriter.close()
        return handle

    async def run(self):
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        servers = []
        for lst in self.doc["listeners"]:
            # The listener keeps its pool id; a reload that changes members is picked up
            # through self.rr on the next connection.
            servers.append(await asyncio.start_server(
                self.handler(lst["default_pool_id"]), lst["address"], lst["protocol_port"],
                reuse_address=True, backlog=4096))
        log("listening on " + ", ".join(f"{l['address']}:{l['protocol_port']}" for l in self.doc["listeners"]))
        await stop.wait()
        log("SIGTERM: exiting")
        for s in servers:
            s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--log-level")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    proxy = Proxy(args.config)
    try:
        proxy.load()
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"{args.config}: {e}", file=sys.stderr)
        return 1
    if args.check:
        return 0
    asyncio.run(proxy.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
