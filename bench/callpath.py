"""Instructions (or seconds) per call of the RPC call path, one process, for callgrind.

    python -m bench.callpath --transport memory --calls 2000 [--conc 64]
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p python -m bench.callpath --calls 2000

Runs ``warm`` calls, then ``calls`` calls of ``add(1, 2)`` (sequential, or spread over
``--conc`` concurrent callers) against a server in the same process. Under callgrind, the
difference between two runs with different ``--calls`` divided by the difference in calls
gives instructions per call with start-up cancelled out (bench/README.md, "call path").
The API form is detected, so the same script measures versions before and after the call
options change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

import tipcrpc

calc = tipcrpc.Service("bench.callpath")


@calc.method
def add(a: int, b: int) -> int:
    return a + b


def _transports(name: str) -> tuple[object, object]:
    """``user2``: two userspace nodes in this process, linked over UDP loopback (a private
    network id), so one call crosses both nodes' full send and receive paths; else the
    transport named, shared by server and client."""
    if name != "user2":
        return name, name
    import os

    from tipcrpc.transport.user import UserTransport

    netid = 1000 + os.getpid() % 8000
    return UserTransport(netid=netid, liveness=False), UserTransport(netid=netid, liveness=False)


async def floor(args: argparse.Namespace) -> None:
    """``raw-udp`` / ``lean-udp``: the floors in the same harness. Two UDP loopback sockets
    under ``loop.add_reader``; the server echoes each datagram (``raw-udp``) or decodes a
    msgpack ``[id, method, args]``, calls ``add`` and encodes ``[id, result]``
    (``lean-udp``); the client awaits one future per call."""
    import socket

    import msgpack

    loop = asyncio.get_running_loop()
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (srv, cli):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    saddr, caddr = srv.getsockname(), cli.getsockname()
    lean = args.transport == "lean-udp"
    pack, unpack = msgpack.Packer().pack, msgpack.unpackb
    methods = {"add": lambda a, b: a + b}

    def on_server() -> None:
        while True:
            try:
                data, src = srv.recvfrom(65536)
            except BlockingIOError:
                return
            if lean:
                msgid, method, a = unpack(data)
                data = pack([msgid, methods[method](*a)])
            srv.sendto(data, src)

    slot: list[asyncio.Future[bytes] | None] = [None]

    def on_client() -> None:
        while True:
            try:
                data = cli.recv(65536)
            except BlockingIOError:
                return
            fut, slot[0] = slot[0], None
            if fut is not None:
                fut.set_result(data)

    loop.add_reader(srv.fileno(), on_server)
    loop.add_reader(cli.fileno(), on_client)
    msgid = 0

    async def call() -> object:
        nonlocal msgid
        msgid += 1
        fut = slot[0] = loop.create_future()
        if lean:
            cli.sendto(pack([msgid, "add", (1, 2)]), saddr)
            return unpack(await fut)[1]
        cli.sendto(b"add(1, 2)", saddr)
        return await fut

    for _ in range(args.warm):
        await call()
    t0 = time.perf_counter()
    for _ in range(args.calls):
        await call()
    dt = time.perf_counter() - t0
    print(f"{args.calls} calls in {dt:.3f} s: {dt / args.calls * 1e6:.1f} us/call ({caddr})")
    loop.remove_reader(srv.fileno())
    loop.remove_reader(cli.fileno())
    srv.close()
    cli.close()


async def main(args: argparse.Namespace) -> None:
    if args.transport in ("raw-udp", "lean-udp"):
        await floor(args)
        return
    server_t, client_t = _transports(args.transport)
    async with contextlib.AsyncExitStack() as stack:
        for t in {id(server_t): server_t, id(client_t): client_t}.values():
            if not isinstance(t, str):
                await stack.enter_async_context(t)  # type: ignore[arg-type]
        await _run(args, server_t, client_t)


async def _run(args: argparse.Namespace, server_t: object, client_t: object) -> None:
    async with tipcrpc.serve(calc, instance=1, transport=server_t), tipcrpc.connect(client_t) as client:  # type: ignore[arg-type]
        await client.wait_for(calc)
        call = client.call
        for _ in range(args.warm):
            await call(calc, "add", 1, 2)
        t0 = time.perf_counter()
        if args.conc <= 1:
            for _ in range(args.calls):
                await call(calc, "add", 1, 2)
        else:
            per = args.calls // args.conc

            async def worker() -> None:
                for _ in range(per):
                    await call(calc, "add", 1, 2)

            await asyncio.gather(*(worker() for _ in range(args.conc)))
        dt = time.perf_counter() - t0
        print(f"{args.calls} calls in {dt:.3f} s: {dt / args.calls * 1e6:.1f} us/call")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--transport", default="memory")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--warm", type=int, default=200)
    ap.add_argument("--conc", type=int, default=1)
    ap.add_argument("--uvloop", action="store_true")
    ap.add_argument("--no-gc", action="store_true", help="gc.disable(): how much of a call is the cyclic GC")
    a = ap.parse_args()
    if a.no_gc:
        import gc

        gc.disable()
    if a.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(main(a))
