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
from typing import Any, Awaitable, Callable

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


def echo_server(sock: Any, lean: bool) -> Callable[[], None]:
    """The readable callback of a floor server on a UDP socket: echo every datagram, or
    (``lean``) decode a msgpack ``[id, method, args]``, call it and send ``[id, result]``."""
    import msgpack

    pack, unpack = msgpack.Packer().pack, msgpack.unpackb
    methods = {"add": lambda a, b: a + b}

    def readable() -> None:
        while True:
            try:
                data, src = sock.recvfrom(65536)
            except BlockingIOError:
                return
            if lean:
                msgid, method, a = unpack(data)
                data = pack([msgid, methods[method](*a)])
            sock.sendto(data, src)

    return readable


async def _timed(args: argparse.Namespace, one: Callable[[], Awaitable[object]], unit: str, note: str = "") -> None:
    """``args.warm`` rounds of ``one()``, then ``args.calls`` timed ones; prints the time per ``unit``."""
    for _ in range(args.warm):
        await one()
    t0 = time.perf_counter()
    for _ in range(args.calls):
        await one()
    dt = time.perf_counter() - t0
    plural = "echoes" if unit == "echo" else unit + "s"
    print(f"{args.calls} {plural} in {dt:.3f} s: {dt / args.calls * 1e6:.1f} us/{unit}{note}")


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
    on_server = echo_server(srv, lean)

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

    await _timed(args, call, "call", f" ({caddr})")
    loop.remove_reader(srv.fileno())
    loop.remove_reader(cli.fileno())
    srv.close()
    cli.close()


class _LeanTipcNode:
    """``lean-tipc``: the least Python a TIPC node's data path must run per message.

    One established link per node, TIPC v2 direct data messages (the 32-byte header the
    userspace node sends): the sender builds the header with its sequence number and a
    piggy-backed ack, keeps the packet for retransmission and sends header + body; the
    receiver unpacks the header, checks version, size, sequence and destination, releases
    what the ack covers and hands the body to the port. No link supervision, window,
    fragmentation, names, returns or statistics: an under-estimate of a real node, so a
    floor for what any pure-Python TIPC node costs.
    """

    def __init__(self, sock: object, own: int, peer_addr: object, on_body: object) -> None:
        from collections import deque
        from struct import Struct

        self.sock, self.own, self.peer_addr, self.on_body = sock, own, peer_addr, on_body
        self.snd_nxt = self.rcv_nxt = 1
        self.transmq: deque[tuple[int, bytes]] = deque()
        self.h8 = Struct(">8I")

    def send(self, peer: int, sport: int, dport: int, body: bytes) -> None:
        seq = self.snd_nxt
        self.snd_nxt = (seq + 1) & 0xFFFF
        hdr = self.h8.pack(
            (2 << 29) | (32 << 19) | (32 + len(body)),
            3 << 29,
            (((self.rcv_nxt - 1) & 0xFFFF) << 16) | seq,
            self.own,
            sport,
            dport,
            self.own,
            peer,
        )
        pkt = hdr + body
        self.transmq.append((seq, pkt))
        self.sock.sendto(pkt, self.peer_addr)  # type: ignore[attr-defined]

    def readable(self) -> None:
        recvfrom = self.sock.recvfrom  # type: ignore[attr-defined]
        while True:
            try:
                pkt, _src = recvfrom(65536)
            except BlockingIOError:
                return
            w0, _w1, w2, prev, sport, dport, orig, dest = self.h8.unpack_from(pkt, 0)
            if w0 >> 29 != 2 or (w0 & 0xFFFF) != len(pkt) or dest != self.own or (w2 & 0xFFFF) != self.rcv_nxt:
                continue  # a real node would validate, defer or nack here
            self.rcv_nxt = (self.rcv_nxt + 1) & 0xFFFF
            acked = w2 >> 16
            q = self.transmq
            while q and ((acked - q[0][0]) & 0xFFFF) < 32768:
                q.popleft()
            self.on_body(orig, sport, dport, pkt[(w0 >> 19) & 0x3C :])  # type: ignore[operator]


async def lean_tipc(args: argparse.Namespace) -> None:
    """``lean-tipc``: the lean msgpack RPC of ``lean-udp`` over two :class:`_LeanTipcNode`."""
    import socket

    import msgpack

    loop = asyncio.get_running_loop()
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    pack, unpack = msgpack.Packer().pack, msgpack.unpackb
    methods = {"add": lambda a, b: a + b}
    slot: list[asyncio.Future[object] | None] = [None]

    def server_port(orig: int, sport: int, dport: int, body: bytes) -> None:
        msgid, method, a = unpack(body)
        srv.send(orig, dport, sport, pack([msgid, methods[method](*a)]))

    def client_port(orig: int, sport: int, dport: int, body: bytes) -> None:
        fut, slot[0] = slot[0], None
        if fut is not None:
            fut.set_result(unpack(body)[1])

    srv = _LeanTipcNode(socks[0], 0x1001, socks[1].getsockname(), server_port)
    cli = _LeanTipcNode(socks[1], 0x1002, socks[0].getsockname(), client_port)
    loop.add_reader(socks[0].fileno(), srv.readable)
    loop.add_reader(socks[1].fileno(), cli.readable)
    msgid = 0

    async def call() -> object:
        nonlocal msgid
        msgid += 1
        fut = slot[0] = loop.create_future()
        cli.send(0x1001, 7, 9, pack([msgid, "add", (1, 2)]))
        return await fut

    assert await call() == 3
    await _timed(args, call, "call")
    for s in socks:
        loop.remove_reader(s.fileno())
        s.close()


async def main(args: argparse.Namespace) -> None:
    if args.transport in ("raw-udp", "lean-udp"):
        await floor(args)
        return
    if args.transport == "lean-tipc":
        await lean_tipc(args)
        return
    server_t, client_t = _transports(args.transport)
    async with contextlib.AsyncExitStack() as stack:
        for t in {id(server_t): server_t, id(client_t): client_t}.values():
            if not isinstance(t, str):
                await stack.enter_async_context(t)  # type: ignore[arg-type]
        if getattr(args, "echo", False):  # (profiling drivers pass a bare Namespace)
            await _echo(args, server_t, client_t)
        else:
            await _run(args, server_t, client_t)


async def _echo(args: argparse.Namespace, server_t: object, client_t: object) -> None:
    """``--echo``: the transport alone under the RPC layer. Two raw endpoints, one echoing
    every datagram back to its source, the other awaiting one future per datagram; the
    payloads are the sizes of an ``add(1, 2)`` CALL and REPLY frame. tipcrpc's call minus
    this is what the RPC layers (tables, codec, shells, metrics) cost per call."""
    from tipcrpc.api import _make_transport

    loop = asyncio.get_running_loop()
    own: Any = None
    if isinstance(server_t, str):  # "memory": one node of the default cluster, like serve/connect
        server_t = client_t = own = _make_transport(server_t)
        await own.__aenter__()
    slot: list[asyncio.Future[bytes] | None] = [None]
    reply = bytes(17)

    def on_server(msg: Any) -> None:
        srv.send(msg.source, reply)

    def on_client(msg: Any) -> None:
        fut, slot[0] = slot[0], None
        if fut is not None:
            fut.set_result(msg.data)

    srv = await server_t.open_endpoint(on_server)  # type: ignore[attr-defined]
    cli = await client_t.open_endpoint(on_client)  # type: ignore[attr-defined]
    dest, call = srv.address, bytes(28)

    async def one() -> bytes:
        fut = slot[0] = loop.create_future()
        cli.send(dest, call)
        return await fut

    await _timed(args, one, "echo")
    await cli.aclose()
    await srv.aclose()
    if own is not None:
        await own.__aexit__(None, None, None)


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
    ap.add_argument("--echo", action="store_true", help="the transport alone: raw endpoints, one echoing")
    ap.add_argument("--no-gc", action="store_true", help="gc.disable(): how much of a call is the cyclic GC")
    ap.add_argument("--measure-instructions", nargs=2, type=int, metavar=("N1", "N2"),
                    help="print instructions per call instead: callgrind with N1 and N2 calls (e.g. 300 1300)")
    a = ap.parse_args()
    if a.measure_instructions:
        import sys

        from bench.callgrind import instructions_per_repeat

        n1, n2 = a.measure_instructions
        i = sys.argv.index("--measure-instructions")
        rest = sys.argv[1:i] + sys.argv[i + 3 :]
        ins = instructions_per_repeat(lambda n: [sys.executable, "-m", "bench.callpath", *rest, "--calls", str(n)], n1, n2)
        print(f"{a.transport}: {ins:.0f} instructions/call")
        raise SystemExit(0)
    if a.no_gc:
        import gc

        gc.disable()
    if a.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(main(a))
