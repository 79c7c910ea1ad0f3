#!/usr/bin/env python3
"""An HTTP/1.1 proxy in front of an S3-compatible server on loopback that injects faults into
a seeded random share of the requests, for bench/soak.sh (issue 14, part 4).

    fault_proxy.py --listen PORT --upstream PORT [--rate 0.10] [--seed 1] [--stats FILE]

Each request is forwarded unchanged (so signatures stay valid) unless it draws a fault, one of
(in equal shares):
  slowdown  503 SlowDown (S3's XML error body), not forwarded
  internal  500 InternalError, not forwarded
  reset     the connection is closed without an answer
  truncate  the upstream answer's head with its full Content-Length, then half of its body
  stall     no answer at all for STALL seconds (the client must time out), then a close
Counts per fault kind and per method are written to --stats as JSON on SIGTERM/SIGINT and every
few seconds. Only what the bench needs: Content-Length and chunked bodies, keep-alive.
"""
import argparse
import asyncio
import json
import random
import signal
import sys

KINDS = ["slowdown", "internal", "reset", "truncate", "stall"]


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--upstream", type=int, required=True)
    p.add_argument("--rate", type=float, default=0.10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--stall", type=float, default=60.0)
    p.add_argument("--stats", default=None)
    return p.parse_args()


ARGS = parse_args()
RNG = random.Random(ARGS.seed)
STATS = {"requests": 0, "faults": {k: 0 for k in KINDS}, "methods": {}}


async def read_head(reader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return head


def headers_of(head):
    lines = head.decode("latin-1").split("\r\n")
    h = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            h[k.strip().lower()] = v.strip()
    return lines[0], h


async def read_body(reader, h, none=False):
    if none:
        return b""
    if "content-length" in h:
        n = int(h["content-length"])
        return await reader.readexactly(n) if n else b""
    if h.get("transfer-encoding", "").lower() == "chunked":
        raw = b""
        while True:
            line = await reader.readline()
            raw += line
            n = int(line.strip().split(b";")[0] or b"0", 16)
            raw += await reader.readexactly(n + 2)
            if n == 0:
                return raw
    return b""


def error_response(status, code):
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code>'
        "<Message>injected by fault_proxy</Message></Error>" % code
    ).encode()
    reason = {503: "Slow Down", 500: "Internal Server Error"}[status]
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n"
        % (status, reason.encode(), len(body))
        + body
    )


async def serve(creader, cwriter):
    up = None
    try:
        while True:
            head = await read_head(creader)
            if head is None:
                return
            first, h = headers_of(head)
            method = first.split(" ", 1)[0]
            body = await read_body(creader, h)
            STATS["requests"] += 1
            STATS["methods"][method] = STATS["methods"].get(method, 0) + 1
            fault = RNG.choice(KINDS) if RNG.random() < ARGS.rate else None
            if fault:
                STATS["faults"][fault] += 1
            if fault == "slowdown":
                cwriter.write(error_response(503, "SlowDown"))
                await cwriter.drain()
                continue
            if fault == "internal":
                cwriter.write(error_response(500, "InternalError"))
                await cwriter.drain()
                continue
            if fault == "reset":
                return
            if fault == "stall":
                await asyncio.sleep(ARGS.stall)
                return
            if up is None:
                up = await asyncio.open_connection("127.0.0.1", ARGS.upstream)
            ureader, uwriter = up
            uwriter.write(head + body)
            await uwriter.drain()
            rhead = await read_head(ureader)
            if rhead is None:
                return
            rfirst, rh = headers_of(rhead)
            status = int(rfirst.split(" ")[1])
            rbody = await read_body(ureader, rh, none=method == "HEAD" or status in (204, 304))
            if fault == "truncate" and len(rbody) > 1:
                cwriter.write(rhead + rbody[: len(rbody) // 2])
                await cwriter.drain()
                return
            cwriter.write(rhead + rbody)
            await cwriter.drain()
            if rh.get("connection", "").lower() == "close":
                up[1].close()
                up = None
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        if up is not None:
            up[1].close()
        cwriter.close()


def write_stats():
    if ARGS.stats:
        with open(ARGS.stats + ".tmp", "w") as f:
            json.dump(STATS, f)
        import os

        os.replace(ARGS.stats + ".tmp", ARGS.stats)


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", ARGS.listen)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    print("listening", flush=True)
    while not stop.done():
        write_stats()
        await asyncio.wait([stop], timeout=2)
    write_stats()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
