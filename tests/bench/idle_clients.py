#!/usr/bin/env python3
"""Opens many client connections to a proxy's HTTP listener and keeps them idle.

  idle_clients.py --port 8080 --conns 10000 --mode idle|request [--sources 127.0.0.2-9]

mode idle:    connect and send nothing.
mode request: connect, send one keep-alive `GET /`, read the whole response, then
              stay idle on the open connection.
Source addresses rotate over 127.0.0.A..B so no single source runs out of
ephemeral ports. Connects (and requests) run with bounded concurrency so the
listen backlog is not overrun (a dropped SYN costs a 1 s retransmit).

Protocol with the caller: prints one line
  READY open=N failed=F answered=A bad_status=B alive=L elapsed_s=S
on stdout once every connection is established (and answered), then holds them
until stdin reaches EOF (or --hold seconds pass), prints
  DONE alive=L
(connections the proxy had not closed by then) and exits. Python stdlib only.
"""
import argparse
import asyncio
import os
import sys
import time


def parse_sources(spec):
    base, _, rng = spec.rpartition(".")
    lo, _, hi = rng.partition("-")
    return [f"{base}.{i}" for i in range(int(lo), int(hi or lo) + 1)]


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--mode", choices=("idle", "request"), default="idle")
    ap.add_argument("--sources", default="127.0.0.2-9")
    ap.add_argument("--parallel", type=int, default=128, help="connects/requests in flight")
    ap.add_argument("--timeout", type=float, default=120, help="give up establishing after S s")
    ap.add_argument("--hold", type=float, default=600, help="hold at most S s after READY")
    args = ap.parse_args()

    sources = parse_sources(args.sources)
    sem = asyncio.Semaphore(args.parallel)
    conns = []
    failed = answered = bad_status = 0
    request = f"GET / HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n\r\n".encode()

    async def one(i):
        nonlocal failed, answered, bad_status
        async with sem:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(args.host, args.port,
                                            local_addr=(sources[i % len(sources)], 0)), 10)
                if args.mode == "request":
                    writer.write(request)
                    status = await asyncio.wait_for(read_response(reader), 10)
                    answered += 1
                    if not 200 <= status < 400:
                        bad_status += 1
                conns.append((reader, writer))
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError, ValueError, IndexError):
                failed += 1

    t0 = time.monotonic()
    try:
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(args.conns))), args.timeout)
    except asyncio.TimeoutError:
        pass
    await asyncio.sleep(0.5)  # let a proxy that refuses connections close them first

    def alive():
        return sum(1 for r, w in conns if not r.at_eof() and not w.is_closing())

    print(f"READY open={len(conns)} failed={failed} answered={answered} bad_status={bad_status} "
          f"alive={alive()} elapsed_s={time.monotonic() - t0:.1f}", flush=True)

    loop = asyncio.get_running_loop()
    eof = loop.run_in_executor(None, sys.stdin.read)
    try:
        await asyncio.wait_for(eof, args.hold)
    except asyncio.TimeoutError:
        pass
    print(f"DONE alive={alive()}", flush=True)
    for _, w in conns:
        w.close()
    await asyncio.sleep(0.2)
    # The stdin reader thread may still be blocked: do not wait for it.
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
