"""How close pure Python can get: tipcrpc's userspace call against three floors, two processes.

    python -m bench.floors [--rounds 5] [--calls 5000] [--cpu 0]

Each row runs a server process and a client process pinned to the same CPU (as
``--placement same-cpu`` does), uvloop, sequential ``add(1, 2)``; rounds are interleaved and
the median of the rounds' p50 is reported with its ratio to the raw echo:

* ``raw-udp`` — the echo floor (``loop.add_reader``, one future);
* ``lean-udp`` — a hand-written msgpack RPC on that socket (``[id, method, args]``);
* ``lean-tipc`` — that RPC over the least a TIPC data path must do per message
  (:class:`bench.callpath._LeanTipcNode`: header, sequence number and ack, retransmission
  queue, validation, port): no link supervision, window, names, returns, deadlines, failover
  or statistics — a floor under any pure-Python TIPC node, not a usable one;
* ``tipcrpc-user`` — ``serve``/``connect`` on two userspace nodes.

``bench/callpath.py`` gives the same rows' instructions per call (callgrind, exact).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import statistics
import time
from typing import Any, Awaitable, Callable

ROWS = ("raw-udp", "lean-udp", "lean-tipc", "tipcrpc-user")


def _pin(cpu: int) -> None:
    try:
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):  # not Linux, or the CPU is not ours: run unpinned
        pass


def _loop() -> asyncio.AbstractEventLoop:
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def _server(row: str, cpu: int, conn: Any) -> None:
    _pin(cpu)
    loop = _loop()
    loop.run_until_complete(_serve(row, conn))


async def _serve(row: str, conn: Any) -> None:
    import msgpack

    from bench.callpath import _LeanTipcNode, echo_server

    loop = asyncio.get_running_loop()
    if row == "tipcrpc-user":
        import tipcrpc
        from bench.callpath import calc
        from tipcrpc.transport.user import UserTransport

        netid = conn.recv()
        async with UserTransport(netid=netid) as t, tipcrpc.serve(calc, instance=1, transport=t):
            conn.send("ready")
            await loop.run_in_executor(None, conn.recv)  # until the client is done
        return
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    conn.send(sock.getsockname())
    peer = conn.recv()
    pack, unpack = msgpack.Packer().pack, msgpack.unpackb
    methods = {"add": lambda a, b: a + b}
    if row == "lean-tipc":

        def port(orig: int, sport: int, dport: int, body: bytes) -> None:
            msgid, method, a = unpack(body)
            node.send(orig, dport, sport, pack([msgid, methods[method](*a)]))

        node = _LeanTipcNode(sock, 0x1001, peer, port)
        loop.add_reader(sock.fileno(), node.readable)
    else:
        readable = echo_server(sock, row == "lean-udp")
        loop.add_reader(sock.fileno(), readable)
    conn.send("ready")
    await loop.run_in_executor(None, conn.recv)


async def _client(row: str, conn: Any, calls: int, warm: int) -> list[float]:
    import msgpack

    from bench.callpath import _LeanTipcNode

    loop = asyncio.get_running_loop()
    done: Callable[[], None] = lambda: None  # noqa: E731
    if row == "tipcrpc-user":
        import contextlib

        import tipcrpc
        from bench.callpath import calc
        from tipcrpc.transport.user import UserTransport

        netid = 1000 + (os.getpid() + int(time.time())) % 8000
        conn.send(netid)
        conn.recv()
        stack = contextlib.AsyncExitStack()
        t = await stack.enter_async_context(UserTransport(netid=netid))
        client = await stack.enter_async_context(tipcrpc.connect(t))
        await client.wait_for(calc)
        c = client.call

        def call() -> Awaitable[Any]:
            return c(calc, "add", 1, 2)

        async def close() -> None:
            await stack.aclose()

    else:
        saddr = conn.recv()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        conn.send(sock.getsockname())
        conn.recv()
        pack, unpack = msgpack.Packer().pack, msgpack.unpackb
        slot: list[asyncio.Future[Any] | None] = [None]
        msgid = 0

        def got(value: Any) -> None:
            fut, slot[0] = slot[0], None
            if fut is not None:
                fut.set_result(value)

        if row == "lean-tipc":
            node = _LeanTipcNode(sock, 0x1002, saddr, lambda o, s, d, body: got(unpack(body)[1]))
            loop.add_reader(sock.fileno(), node.readable)

            def call() -> Awaitable[Any]:
                nonlocal msgid
                msgid += 1
                fut = slot[0] = loop.create_future()
                node.send(0x1001, 7, 9, pack([msgid, "add", (1, 2)]))
                return fut

        else:
            lean = row == "lean-udp"

            def readable() -> None:
                while True:
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        return
                    got(unpack(data)[1] if lean else data)

            loop.add_reader(sock.fileno(), readable)

            def call() -> Awaitable[Any]:
                nonlocal msgid
                msgid += 1
                fut = slot[0] = loop.create_future()
                sock.sendto(pack([msgid, "add", (1, 2)]) if lean else b"add(1, 2)", saddr)
                return fut

        async def close() -> None:
            loop.remove_reader(sock.fileno())
            sock.close()

    for _ in range(warm):
        await call()
    lat = []
    pc = time.perf_counter
    for _ in range(calls):
        a = pc()
        await call()
        lat.append(pc() - a)
    await close()
    done()
    return lat


def run_row(row: str, cpu: int, calls: int, warm: int) -> float:
    """One round of ``row``: the p50 round trip in microseconds."""
    # "spawn": the server is a fresh interpreter, as in ``python -m bench``. A forked server
    # shares the client's pages (and so cache lines) until written; that made tipcrpc's call
    # look ~40 % cheaper than it is (50 vs 90 µs p50 here): with both processes on one CPU,
    # what a call costs is largely the cache misses of two separate working sets.
    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    proc = ctx.Process(target=_server, args=(row, cpu, there), daemon=True)
    proc.start()
    try:
        loop = _loop()
        lat = loop.run_until_complete(_client(row, here, calls, warm))
        loop.close()
        here.send("stop")
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    return statistics.median(lat) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--warm", type=int, default=500)
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    _pin(a.cpu)
    p50: dict[str, list[float]] = {r: [] for r in ROWS}
    for _ in range(a.rounds):
        for row in ROWS:
            p50[row].append(run_row(row, a.cpu, a.calls, a.warm))
    med = {r: statistics.median(v) for r, v in p50.items()}
    if a.json:
        print(json.dumps({"p50_us": med, "rounds": p50}))
        return
    raw = med["raw-udp"]
    print(f"p50 of add(1, 2), median of {a.rounds} interleaved rounds, {a.calls} calls each, CPU {a.cpu}, uvloop")
    for r in ROWS:
        print(f"{r:14s} {med[r]:7.1f} us  {med[r] / raw:5.2f}x raw   rounds: {', '.join(f'{x:.1f}' for x in p50[r])}")


if __name__ == "__main__":
    main()
