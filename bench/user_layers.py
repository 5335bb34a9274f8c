"""Per-packet cost of the userspace node's layers: link, node, socket layer + endpoint, media.

Run: ``.venv/bin/python bench/user_layers.py [--layer L] [-n N] [--size B]``

Each layer is driven synchronously (no event loop turn, no timers) by a ping-pong between
two nodes: A sends a message to B, B's side answers, A receives the answer. One *pass* is
one packet sent by one node and received by the other, so an iteration is two passes. What
each ``--layer`` includes:

* ``link`` — :class:`~tipcrpc.transport.user.link.Link` only: ``xmit_one`` of a prebuilt
  message on one side, ``rcv`` on the other (sequence numbers, acks, queues);
* ``node`` — :class:`~tipcrpc.transport.user.node.Node`: ``xmit`` + ``rcv`` (validation,
  peer lookup, node state gate) including the link;
* ``stack`` — ``UserEndpoint.send`` down to the bearer and ``Stack._on_packet`` up to the
  endpoint's handler (message building, socket layer, delivery objects) including node and
  link, over an in-memory bearer that queues packets (no sockets);
* ``media`` — :class:`~tipcrpc.transport.user.udp_media.UdpMedia` alone: ``send`` and the
  readiness drain over real loopback UDP sockets (the kernel's share is not in callgrind's
  count: it counts user-space instructions only);
* ``raw`` — the floor under ``media``: ``sendto`` + ``recvfrom`` on two plain sockets.

The cost of a layer alone is the difference of two rows (node − link, stack − node).
``--callgrind`` prints nothing but runs exactly ``-n`` iterations after set-up, so that
``valgrind --tool=callgrind`` at two values of ``-n`` gives instructions per pass as
``(I(n2) − I(n1)) / (2 · (n2 − n1))``; ``--measure-instructions`` does that for every layer.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
from typing import Callable

from bench.callgrind import instructions_per_repeat

LAYERS = ("link", "node", "stack", "media", "raw")
A_MEDIA = ("127.0.0.1", 40001)
B_MEDIA = ("127.0.0.1", 40002)


def _nodes() -> tuple[object, object, float]:
    """Two pure nodes with an established link between them."""
    from tipcrpc.transport.user.node import BROADCAST, Node

    now = 1000.0
    a = Node(node_id=b"layers-a", media=A_MEDIA, signature=1, now=now, mtu=60_000)
    b = Node(node_id=b"layers-b", media=B_MEDIA, signature=2, now=now, mtu=60_000)
    by_media = {A_MEDIA: a, B_MEDIA: b}
    queue = [(A_MEDIA, a.timeout(now)), (B_MEDIA, b.timeout(now))]
    for _ in range(200):
        if not queue:
            break
        src, out = queue.pop(0)
        for dest, pkt in out.packets:
            for d, n in by_media.items():
                if d != src and (dest == BROADCAST or dest == d):
                    queue.append((d, n.receive(pkt, src, now)))
    assert a.peers()[b.own_addr].up and b.peers()[a.own_addr].up, "link set-up failed"
    return a, b, now


def _message(src_node: int, dst_node: int, size: int) -> bytes:
    from tipcrpc.transport.user.msg import direct_msg

    return direct_msg(0, src_node, 0x1001, dst_node, 0x2002, b"x" * size)


def _wire(pkt: object) -> bytes:
    """What the receiver's ``recvfrom`` returns for a packet the link queued to send."""
    return pkt if pkt.__class__ is bytes else bytes(pkt[0] + pkt[1])  # type: ignore[index,return-value]


def link_loop(size: int) -> Callable[[int], None]:
    a, b, now = _nodes()
    la = a._peers[b.own_addr].link  # type: ignore[attr-defined]
    lb = b._peers[a.own_addr].link  # type: ignore[attr-defined]
    m_ab = _message(a.own_addr, b.own_addr, size)
    m_ba = _message(b.own_addr, a.own_addr, size)
    if "body" in la.xmit_one.__code__.co_varnames:  # header and body apart (scatter-gather)
        h_ab, b_ab, h_ba, b_ba = m_ab[:32], m_ab[32:], m_ba[:32], m_ba[32:]

        def xmit(link: object, h: bytes, body: bytes, xq: list) -> None:
            link.xmit_one(h, body, now, xq)  # type: ignore[attr-defined]
    else:  # before: one message buffer
        h_ab, b_ab, h_ba, b_ba = m_ab, b"", m_ba, b""

        def xmit(link: object, h: bytes, body: bytes, xq: list) -> None:
            link.xmit_one(h, now, xq)  # type: ignore[attr-defined]

    def run(n: int) -> None:
        xq: list = []
        back: list = []
        got: list[bytes] = []
        for _ in range(n):
            xmit(la, h_ab, b_ab, xq)
            lb.rcv(_wire(xq.pop()), now, back, got)
            got.clear()
            back.clear()
            xmit(lb, h_ba, b_ba, xq)
            la.rcv(_wire(xq.pop()), now, back, got)
            got.clear()
            back.clear()

    return run


def node_loop(size: int) -> Callable[[int], None]:
    from tipcrpc.transport.user.node import Output

    a, b, now = _nodes()
    m_ab = _message(a.own_addr, b.own_addr, size)  # type: ignore[attr-defined]
    m_ba = _message(b.own_addr, a.own_addr, size)  # type: ignore[attr-defined]
    pa, pb = b.own_addr, a.own_addr  # type: ignore[attr-defined]
    out = Output()
    if hasattr(a, "xmit_parts"):  # the socket layer's path: header and body apart
        h_ab, b_ab, h_ba, b_ba = m_ab[:32], m_ab[32:], m_ba[:32], m_ba[32:]
        xa, xb = a.xmit_parts, b.xmit_parts  # type: ignore[attr-defined]
    else:
        h_ab, b_ab, h_ba, b_ba = m_ab, None, m_ba, None

        def xa(peer: int, h: bytes, body: object, now: float, xq: list) -> object:
            return a.xmit(peer, h, now, xq)  # type: ignore[attr-defined]

        def xb(peer: int, h: bytes, body: object, now: float, xq: list) -> object:
            return b.xmit(peer, h, now, xq)  # type: ignore[attr-defined]

    def run(n: int) -> None:
        xq: list = []
        for _ in range(n):
            xa(pa, h_ab, b_ab, now, xq)
            b.rcv(_wire(xq.pop()), A_MEDIA, now, out)  # type: ignore[attr-defined]
            out.clear()
            xb(pb, h_ba, b_ba, now, xq)
            a.rcv(_wire(xq.pop()), B_MEDIA, now, out)  # type: ignore[attr-defined]
            out.clear()

    return run


class _QueueBearer:
    """An in-memory bearer: ``send`` queues (dest, packet); the driver delivers."""

    def __init__(self, hub: _Hub, local: tuple[str, int], on_packet: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.hub = hub
        self.local = local
        self.on_packet = on_packet
        self.stats: dict[str, int] = {}
        hub.members[local] = self

    def open(self, loop: asyncio.AbstractEventLoop) -> tuple[str, int]:
        return self.local

    def send(self, dest: tuple[str, int], data: bytes) -> None:
        self.hub.queue.append((self.local, dest, data))

    def send_parts(self, dest: tuple[str, int], hdr: bytearray, body: bytes) -> None:
        hdr += body  # what the kernel gathers from UdpMedia.send_parts' two buffers
        self.hub.queue.append((self.local, dest, bytes(hdr)))

    def learn(self, addr: tuple[str, int]) -> None:
        pass

    def close(self) -> None:
        pass


class _Hub:
    def __init__(self) -> None:
        self.members: dict[tuple[str, int], _QueueBearer] = {}
        self.queue: list[tuple[tuple[str, int], tuple[str, int], bytes]] = []

    def pump(self) -> None:
        q = self.queue
        while q:
            src, dest, data = q.pop(0)
            for addr, m in list(self.members.items()):
                if addr != src and (dest[1] == 0 or dest == addr):
                    m.on_packet(data, src)


def stack_loop(size: int) -> Callable[[int], None]:
    from tipcrpc.transport.base import Delivery
    from tipcrpc.transport.user import UserTransport

    hub = _Hub()
    loop = asyncio.new_event_loop()
    state: dict[str, object] = {}

    def factory(addr: tuple[str, int]) -> Callable[..., _QueueBearer]:
        return lambda on_packet: _QueueBearer(hub, addr, on_packet)

    async def setup() -> None:
        a = UserTransport(identity="layers-a", liveness=False, discovery_wait=0.0, bearer_factory=factory(A_MEDIA))
        b = UserTransport(identity="layers-b", liveness=False, discovery_wait=0.0, bearer_factory=factory(B_MEDIA))
        await a.open()
        await b.open()
        for _ in range(50):
            hub.pump()
            await asyncio.sleep(0.001)
            if a._stack.up and b._stack.up:  # noqa: SLF001
                break
        got: list[object] = []

        def on_b(item: object) -> None:
            if item.__class__ is Delivery:
                ep_b.send(item.source, item.data)  # type: ignore[attr-defined]

        ep_a = await a.open_endpoint(got.append)
        ep_b = await b.open_endpoint(on_b)
        state.update(a=a, b=b, ep_a=ep_a, ep_b=ep_b, got=got)

    loop.run_until_complete(setup())
    ep_a = state["ep_a"]
    dest = state["ep_b"].address  # type: ignore[attr-defined]
    got: list[object] = state["got"]  # type: ignore[assignment]
    payload = b"x" * size
    pump = hub.pump

    def run(n: int) -> None:
        for _ in range(n):
            ep_a.send(dest, payload)  # type: ignore[attr-defined]
            pump()
        assert len(got) == n, (len(got), n)
        got.clear()

    return run


def media_loop(size: int) -> Callable[[int], None]:
    from tipcrpc.transport.user.udp_media import UdpMedia

    loop = asyncio.new_event_loop()
    got: list[bytes] = []
    a = UdpMedia(local_ip="127.0.0.1", port=0, multicast=False, on_packet=lambda d, s: got.append(d))
    b = UdpMedia(local_ip="127.0.0.1", port=0, multicast=False, on_packet=lambda d, s: got.append(d))
    a.open(loop)
    b.open(loop)
    pkt = b"x" * (size + 32)
    hdr, body = pkt[:32], pkt[32:]
    da, db = a.local, b.local
    drain_a = a._drain  # noqa: SLF001
    drain_b = b._drain  # noqa: SLF001
    sa, sb = a._ucast, b._ucast  # noqa: SLF001
    if hasattr(a, "send_parts"):  # header (a fresh stamped copy, as the link makes) + body

        def send(m: UdpMedia, dest: tuple[str, int]) -> None:
            m.send_parts(dest, bytearray(hdr), body)
    else:  # before: the link's stamped copy of the whole message

        def send(m: UdpMedia, dest: tuple[str, int]) -> None:
            m.send(dest, bytes(bytearray(pkt)))

    def run(n: int) -> None:
        for _ in range(n):
            send(a, db)
            drain_b(sb)
            send(b, da)
            drain_a(sa)
        assert len(got) == 2 * n
        got.clear()

    return run


def raw_loop(size: int) -> Callable[[int], None]:
    sa = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sb = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (sa, sb):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    da, db = sa.getsockname(), sb.getsockname()
    pkt = b"x" * (size + 32)

    def run(n: int) -> None:
        for _ in range(n):
            sa.sendto(pkt, db)
            sb.recvfrom(65535)
            sb.sendto(pkt, da)
            sa.recvfrom(65535)

    return run


LOOPS = {"link": link_loop, "node": node_loop, "stack": stack_loop, "media": media_loop, "raw": raw_loop}


def time_layer(layer: str, n: int, size: int, repeats: int = 5) -> float:
    """Best-of-``repeats`` µs per pass (one packet sent and received)."""
    run = LOOPS[layer](size)
    run(min(n, 2000))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(n)
        best = min(best, time.perf_counter() - t0)
    return best / (2 * n) * 1e6


def callgrind_instructions(layer: str, size: int, n1: int, n2: int) -> float:
    """Instructions per pass: callgrind at two iteration counts (two passes per iteration)."""
    argv = lambda n: [sys.executable, __file__, "--callgrind", "--layer", layer, "-n", str(n), "--size", str(size)]  # noqa: E731
    return instructions_per_repeat(argv, n1, n2) / 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layer", choices=LAYERS, action="append")
    ap.add_argument("-n", type=int, default=20_000, help="iterations (two passes each)")
    ap.add_argument("--size", type=int, default=32, help="payload bytes")
    ap.add_argument("--callgrind", action="store_true", help="run -n iterations once, print nothing")
    ap.add_argument("--measure-instructions", action="store_true", help="also run callgrind (slow)")
    ap.add_argument("--no-timing", action="store_true", help="skip the wall-clock timing (busy machine)")
    args = ap.parse_args()
    layers = args.layer or list(LAYERS)
    if args.callgrind:
        run = LOOPS[layers[0]](args.size)
        run(200)  # the same warm-up at every n: caches filled, code paths specialised
        run(args.n)
        return
    print(f"payload {args.size} B; one pass = one packet sent by one node and received by the other")
    print(f"{'layer':<8} {'us/pass':>9} {'instr/pass':>11}")
    for layer in layers:
        us = float("nan") if args.no_timing else time_layer(layer, args.n, args.size)
        ins = callgrind_instructions(layer, args.size, 500, 1500) if args.measure_instructions else float("nan")
        print(f"{layer:<8} {us:9.2f} {ins:11.0f}", flush=True)


if __name__ == "__main__":
    main()
