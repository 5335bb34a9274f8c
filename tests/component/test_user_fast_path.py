"""The userspace node's fast path (:mod:`tipcrpc.transport.user.fast_path`) against the general path.

Two :class:`UserTransport` nodes on an in-memory bearer that queues packets and delivers them
when the test pumps (no sockets, no timers, no sleeps). The same traffic runs twice, once
with the fast path and once with every packet forced through the general path; the wire
bytes, the deliveries, the counters and the links' sequence state must come out identical.
Then each case the fast path must not take (out of sequence, fragmented, named, returned,
unknown port, trailing bytes, full window, staged names, no link) is shown to reach the
general path — and still give the right result.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest

from tipcrpc.addr import Importance, ServiceAddr, ServiceRange, SocketAddr
from tipcrpc.errors import ServiceUnreachable
from tipcrpc.transport.base import Delivery, DeliveryFailure, Returned
from tipcrpc.transport.user import msg as M
from tipcrpc.transport.user.fast_path import BUNDLE_BATCH
from tipcrpc.transport.user.fragment import bundle
from tipcrpc.transport.user.node import BROADCAST
from tipcrpc.transport.user.transport import UserEndpoint, UserTransport

Addr = tuple[str, int]
pytestmark = pytest.mark.timeout(30)


class Hub:
    """An in-memory bearer hub: sends are queued (and logged); :meth:`pump` delivers them."""

    def __init__(self) -> None:
        self.bearers: dict[Addr, Bearer] = {}
        self.queue: list[tuple[Addr, Addr, bytes]] = []
        self.wire: list[tuple[Addr, Addr, bytes]] = []

    def bearer(self, local: Addr) -> Callable[[Callable[[bytes, Addr], None]], Bearer]:
        return lambda on_packet: Bearer(self, local, on_packet)

    def pump(self, rounds: int = 1000) -> None:
        for _ in range(rounds):
            if not self.queue:
                return
            src, dest, data = self.queue.pop(0)
            for addr, b in list(self.bearers.items()):
                if addr != src and (dest == BROADCAST or dest == addr):
                    b.on_packet(data, src)
        raise AssertionError("the nodes never fell quiet")


class Bearer:
    def __init__(self, hub: Hub, local: Addr, on_packet: Callable[[bytes, Addr], None]) -> None:
        self.hub = hub
        self.local = local
        self.on_packet = on_packet
        self.stats: dict[str, int] = {}
        hub.bearers[local] = self

    def open(self, loop: asyncio.AbstractEventLoop) -> Addr:
        return self.local

    def send(self, dest: Addr, data: bytes) -> None:
        self.hub.queue.append((self.local, dest, data))
        self.hub.wire.append((self.local, dest, data))

    def learn(self, addr: Addr) -> None:
        pass

    def close(self) -> None:
        pass


A_MEDIA, B_MEDIA = ("10.9.0.1", 6118), ("10.9.0.2", 6118)


class Pair:
    """Nodes A and B, linked, one endpoint each; every packet and every send the general path sees is counted."""

    def __init__(self, hub: Hub, a: UserTransport, b: UserTransport) -> None:
        self.hub = hub
        self.a, self.b = a, b
        self.general = {a: 0, b: 0}
        self.general_sends = {a: 0, b: 0}
        self.got: dict[UserTransport, list[object]] = {a: [], b: []}
        for t in (a, b):
            fast = t._stack.fast
            inner = fast._general
            inner_send = fast._sockets_send

            def counting(data: bytes, src: Addr, t: UserTransport = t, inner: Callable[..., None] = inner) -> None:
                self.general[t] += 1
                inner(data, src)

            def counting_send(*args: Any, t: UserTransport = t, inner: Callable[..., None] = inner_send) -> None:
                self.general_sends[t] += 1
                inner(*args)

            fast._general = counting
            fast._sockets_send = counting_send  # type: ignore[assignment]
        self.ea: UserEndpoint
        self.eb: UserEndpoint

    def link(self, t: UserTransport) -> Any:
        other = self.b if t is self.a else self.a
        return t._stack.node.up[other._stack.own].link  # type: ignore[union-attr]

    def state(self) -> dict[str, object]:
        """Everything the two paths must agree on."""
        out: dict[str, object] = {"wire": list(self.hub.wire), "got_a": self.got[self.a], "got_b": self.got[self.b]}
        for name, t in (("a", self.a), ("b", self.b)):
            link = self.link(t)
            out[f"stats_{name}"] = dict(t.statistics())
            out[f"link_{name}"] = (link.snd_nxt, link.rcv_nxt, link.rcv_unacked, link.silent_intv_cnt,
                                   [(e[0], e[1][:4] + e[1][12:]) for e in link.transmq], len(link.backlogq))  # fmt: skip
        return out


async def make_pair(*, fast: bool, window: int = 50, mtu: int = 60_000, bundling: bool = False) -> Pair:
    """A and B linked over a :class:`Hub`. Bundling is off unless asked for: the general path
    never bundles, and the pump delivers without an event loop turn to end."""
    hub = Hub()
    ts = []
    for ident, media in (("fast-a", A_MEDIA), ("fast-b", B_MEDIA)):
        t = UserTransport(identity=ident, liveness=False, keepalive=False, discovery_wait=0.0,
                          window=window, mtu=mtu, bundling=bundling, bearer_factory=hub.bearer(media))  # fmt: skip
        t._stack._signature = 0x1234  # deterministic sessions: both runs put the same bytes on the wire
        t._next_port = 0x10000
        ts.append(t)
    a, b = ts
    await a.open()
    await b.open()
    hub.pump()
    assert a._stack.up and b._stack.up, "the link did not come up"
    pair = Pair(hub, a, b)
    for t in (a, b):  # a broadcast stream that does not start at 1, as a kernel peer's: bcast_ack != 0
        pair.link(t).bc_rcv_nxt = 1000
    if not fast:  # every packet, both ways, through the general path
        for t in (a, b):
            t._rx = t._stack.fast._general  # the counting wrapper of Pair
    pair.ea = await a.open_endpoint(pair.got[a].append)
    pair.eb = await b.open_endpoint(pair.got[b].append)
    if not fast:
        for ep in (pair.ea, pair.eb):
            ep._send = ep._sockets.send
    if bundling:  # one exchange acknowledges the link's first packets: A's link is idle
        for t in (a, b):
            t._stack.fast.bundling = False
        pair.ea.send(pair.eb.address, b"hello")
        hub.pump()
        pair.eb.send(pair.ea.address, b"hello")
        hub.pump()
        for t in (a, b):
            t._stack.fast.bundling = True
            pair.got[t].clear()
        assert not pair.link(a).transmq
    hub.wire.clear()
    pair.general = {a: 0, b: 0}
    pair.general_sends = {a: 0, b: 0}
    return pair


async def close(p: Pair) -> None:
    await p.a.aclose()
    await p.b.aclose()


async def traffic(p: Pair) -> None:
    """Ping-pong of every size class, a burst that needs acks, a backlog, replies from the handler."""
    ea, eb = p.ea, p.eb
    for size in (1, 7, 100, 2047, 2049, 30_000):
        ea.send(eb.address, bytes([size & 0xFF]) * size)
        p.hub.pump()
        eb.send(ea.address, b"r" * size, importance=Importance.CRITICAL)
        p.hub.pump()
    for i in range(40):  # > TIPC_MIN_LINK_WIN without a reply: B must send STATE acks
        ea.send(eb.address, i.to_bytes(2, "big"))
    p.hub.pump()
    for i in range(70):  # beyond the 50-packet window: the rest waits in the backlog
        eb.send(ea.address, i.to_bytes(2, "big"))
    p.hub.pump()
    echo = p.eb

    def answer(item: object) -> None:
        p.got[p.b].append(item)
        if isinstance(item, Delivery):
            echo.send(item.source, item.data[::-1])  # sent from inside the receive path

    p.eb._handler = answer
    for i in range(20):
        ea.send(eb.address, b"q%d" % i)
        p.hub.pump()


async def test_fast_and_general_path_leave_the_same_state() -> None:
    results = []
    for fast in (True, False):
        p = await make_pair(fast=fast)
        await traffic(p)
        results.append((p.state(), dict(p.general), sum(p.general_sends.values())))
        await close(p)
    (fast_state, fast_general, fast_sends), (general_state, general_general, _) = results
    assert fast_state["got_b"] and fast_state["got_a"]
    assert fast_state == general_state
    # The fast run took the data packets itself: the general path saw only the STATE acks,
    # and every send (the backlogged ones too) was the fast path's.
    assert sum(fast_general.values()) < sum(general_general.values()) / 10
    assert fast_sends == 0


async def test_fast_path_delivery_is_a_plain_delivery() -> None:
    p = await make_pair(fast=True)
    p.ea.send(p.eb.address, b"hello")
    p.hub.pump()
    (d,) = p.got[p.b]
    want = Delivery(b"hello", p.ea.address, p.eb.address)
    assert d == want and hash(d) == hash(want) and repr(d) == repr(want)
    assert sum(p.general.values()) == 0
    await close(p)


async def test_out_of_sequence_packets_take_the_general_path() -> None:
    p = await make_pair(fast=True)
    for i in range(3):
        p.ea.send(p.eb.address, b"m%d" % i)
    q = p.hub.queue
    q[0], q[2] = q[2], q[0]  # m2 and m1 arrive ahead of m0 and are deferred
    p.hub.pump()
    assert [d.data for d in p.got[p.b]] == [b"m0", b"m1", b"m2"]  # type: ignore[attr-defined]
    assert p.general[p.b] == 3  # all three: m0 is in sequence, but two packets wait deferred
    before = p.general[p.b]
    p.ea.send(p.eb.address, b"m3")
    p.hub.pump()
    assert p.general[p.b] == before  # in sequence again, nothing deferred: fast
    await close(p)


async def test_fragmented_messages_take_the_general_path() -> None:
    p = await make_pair(fast=True, mtu=2000)
    big = bytes(range(256)) * 20
    p.ea.send(p.eb.address, big)
    p.hub.pump()
    assert [d.data for d in p.got[p.b]] == [big]  # type: ignore[attr-defined]
    assert p.general[p.b] == 3  # three fragments
    await close(p)


async def test_named_and_multicast_messages_take_the_general_path() -> None:
    p = await make_pair(fast=True)
    await p.eb.publish(ServiceAddr(5000, 1))
    p.b._stack.flush_names()  # what the loop would do at the end of this turn
    p.hub.pump()
    p.general[p.b] = 0
    p.ea.send(ServiceAddr(5000, 1), b"named")
    p.ea.send(ServiceRange(5000, 0, 9), b"mcast")
    p.hub.pump()
    assert [(d.data, d.dest) for d in p.got[p.b]] == [  # type: ignore[attr-defined]
        (b"named", ServiceAddr(5000, 1)), (b"mcast", ServiceRange(5000, 0, 9))]  # fmt: skip
    assert p.general[p.b] == 2
    await close(p)


async def test_unknown_port_takes_the_general_path_and_comes_back() -> None:
    p = await make_pair(fast=True)
    gone = SocketAddr(p.b._stack.own, 0xDEAD)
    p.ea.send(gone, b"nobody")
    p.hub.pump()
    assert p.got[p.a] == [Returned(b"nobody", gone, DeliveryFailure.NO_PORT)]
    assert p.general[p.b] == 1 and p.general[p.a] == 1  # the message, then its return
    await close(p)


async def test_trailing_bytes_take_the_general_path() -> None:
    p = await make_pair(fast=True)
    link = p.link(p.a)
    hdr = M.direct_hdr(0, p.a._stack.own, p.ea.address.port, p.b._stack.own, p.eb.address.port, 3)
    w2 = ((link.rcv_nxt - 1) & 0xFFFF) << 16 | link.snd_nxt
    pkt = hdr[:8] + w2.to_bytes(4, "big") + hdr[12:] + b"abc" + b"pad"
    link.snd_nxt += 1  # as if A's link had sent it (B acks it; A's queue never had it)
    p.b._stack.fast.rcv(pkt, A_MEDIA)
    assert [d.data for d in p.got[p.b]] == [b"abc"]  # type: ignore[attr-defined]
    assert p.general[p.b] == 1
    await close(p)


async def test_full_window_and_staged_names_take_the_general_path() -> None:
    p = await make_pair(fast=True, window=16)
    link = p.link(p.a)
    room = 16 - len(link.transmq)  # the link's first packets may still wait for their ack
    for i in range(20):
        p.ea.send(p.eb.address, b"w%d" % i)
    assert len(link.transmq) == 16 and len(link.backlogq) == 20 - room  # the rest waits in the backlog
    assert p.general_sends[p.a] == 0  # the fast path backlogs too
    p.hub.pump()
    assert [d.data for d in p.got[p.b]] == [b"w%d" % i for i in range(20)]  # type: ignore[attr-defined]
    assert not link.backlogq  # B's acks let the backlog into the window
    # A publication staged before a message must reach B first: that send takes the general path.
    await p.ea.publish(ServiceAddr(6000, 1))
    assert p.a._stack._names_pending
    p.ea.send(p.eb.address, b"after the name")
    assert not p.a._stack._names_pending and p.general_sends[p.a] == 1
    kinds = [M.buf_user(pkt) for _src, _dst, pkt in p.hub.queue]
    assert kinds == [M.NAME_DISTRIBUTOR, M.LOW_IMPORTANCE]
    p.hub.pump()
    await close(p)


async def test_no_link_still_raises() -> None:
    p = await make_pair(fast=True)
    with pytest.raises(ServiceUnreachable):
        p.ea.send(SocketAddr(0x0BAD_0BAD, 1), b"x")
    await close(p)


# ------------------------------------------------------------------------- bundling


def _bundles(p: Pair, sender: UserTransport) -> list[bytes]:
    return [pkt for src, _dst, pkt in p.hub.wire if src == sender._stack.media.local and M.buf_user(pkt) == M.MSG_BUNDLER]


async def test_messages_sent_while_the_link_is_busy_share_one_bundle() -> None:
    p = await make_pair(fast=True, bundling=True)
    p.ea.send(p.eb.address, b"first")  # idle link: out at once
    assert len(p.hub.queue) == 1
    for i in range(10):  # the first is unacknowledged: these wait for the end of the turn
        p.ea.send(p.eb.address, b"m%d" % i)
    assert len(p.hub.queue) == 1 and len(p.link(p.a).bundleq) == 10
    p.a._stack.flush_bundles()  # what the loop does at the end of this turn
    assert len(p.hub.queue) == 2 and not p.link(p.a).bundleq
    p.hub.pump()
    assert [d.data for d in p.got[p.b]] == [b"first"] + [b"m%d" % i for i in range(10)]  # type: ignore[attr-defined]
    assert all(d.source == p.ea.address and d.dest == p.eb.address for d in p.got[p.b])  # type: ignore[attr-defined]
    (bundle,) = _bundles(p, p.a)
    assert M.Header.decode(bundle).msgcnt == 10
    sa, sb = p.a.statistics(), p.b.statistics()
    # (messages: the 11, and the hello of make_pair)
    assert (sa["sent_bundles"], sa["sent_bundled"], sa["messages_sent"]) == (1, 10, 12)
    assert (sb["recv_bundles"], sb["recv_bundled"], sb["messages_received"]) == (1, 10, 12)
    assert p.general[p.b] == 0  # the bundle took the fast path too
    await close(p)


async def test_a_full_batch_leaves_without_waiting_for_the_end_of_the_turn() -> None:
    p = await make_pair(fast=True, bundling=True)
    p.ea.send(p.eb.address, b"first")
    for i in range(BUNDLE_BATCH + 5):
        p.ea.send(p.eb.address, b"m%d" % i)
    # The batch went as soon as it was full (B can start on it); the last 5 wait for the turn.
    assert len(p.hub.queue) == 2 and len(p.link(p.a).bundleq) == 5
    p.a._stack.flush_bundles()
    p.hub.pump()
    assert [d.data for d in p.got[p.b]] == [b"first"] + [b"m%d" % i for i in range(BUNDLE_BATCH + 5)]  # type: ignore[attr-defined]
    assert [M.Header.decode(b).msgcnt for b in _bundles(p, p.a)] == [BUNDLE_BATCH, 5]
    await close(p)


async def test_request_response_on_an_idle_link_never_waits() -> None:
    p = await make_pair(fast=True, bundling=True)
    for i in range(20):
        p.ea.send(p.eb.address, b"q%d" % i)
        assert len(p.hub.queue) == 1  # sent at once: no turn to wait for
        p.hub.pump()
        p.eb.send(p.ea.address, b"r%d" % i)  # the request acknowledged the last reply
        assert len(p.hub.queue) == 1
        p.hub.pump()
    assert not _bundles(p, p.a) and not _bundles(p, p.b)
    assert not p.a._stack._corked and not p.b._stack._corked
    await close(p)


async def test_bundled_and_general_receive_deliver_the_same() -> None:
    results = []
    for fast in (True, False):
        p = await make_pair(fast=True, bundling=True)
        if not fast:
            p.b._rx = p.b._stack.fast._general  # B receives everything through the general path
        p.ea.send(p.eb.address, b"x")
        for size in (1, 3, 4, 5, 100, 2000):  # every padding case
            p.ea.send(p.eb.address, bytes([size & 0xFF]) * size, importance=Importance.HIGH)
        p.a._stack.flush_bundles()
        p.hub.pump()
        st = p.b.statistics()
        results.append((p.got[p.b], {k: st[k] for k in ("recv_bundles", "recv_bundled", "messages_received",
                                                        "bytes_received", "recv_pkts")}))  # fmt: skip
        assert p.general[p.b] == (0 if fast else 2)
        await close(p)
    assert results[0] == results[1]
    assert len(results[0][0]) == 7 and results[0][1]["recv_bundled"] == 6


async def test_a_bundle_for_an_unknown_port_takes_the_general_path_and_comes_back() -> None:
    p = await make_pair(fast=True, bundling=True)
    gone = SocketAddr(p.b._stack.own, 0xDEAD)
    p.ea.send(p.eb.address, b"first")
    p.ea.send(p.eb.address, b"kept")
    p.ea.send(gone, b"nobody")
    p.a._stack.flush_bundles()
    p.hub.pump()
    assert [d.data for d in p.got[p.b]] == [b"first", b"kept"]  # type: ignore[attr-defined]
    assert p.got[p.a] == [Returned(b"nobody", gone, DeliveryFailure.NO_PORT)]
    assert p.general[p.b] == 1  # the bundle
    await close(p)


async def test_a_large_message_goes_after_the_bundle_and_bundles_fit_the_mtu() -> None:
    p = await make_pair(fast=True, bundling=True, mtu=2000)
    p.ea.send(p.eb.address, b"first")
    small = [b"%03d" % i * 30 for i in range(30)]  # 90 bytes each: 30 need 2 packets of 2000 bytes
    for m in small:
        p.ea.send(p.eb.address, m)
    big = bytes(range(256)) * 12  # > BUNDLE_MAX, fragmented
    p.ea.send(p.eb.address, big)  # the bundles go first, then the large message
    assert not p.link(p.a).bundleq
    p.ea.send(p.eb.address, b"last")
    p.a._stack.flush_bundles()
    p.hub.pump()
    assert [d.data for d in p.got[p.b]] == [b"first", *small, big, b"last"]  # type: ignore[attr-defined]
    bundles = _bundles(p, p.a)
    assert len(bundles) == 2 and all(len(b) <= 2000 - M.INT_H_SIZE for b in bundles)
    assert sum(M.Header.decode(b).msgcnt for b in bundles) == 30
    await close(p)


async def test_messages_waiting_to_be_bundled_come_back_when_the_link_fails() -> None:
    p = await make_pair(fast=True, bundling=True)
    p.ea.send(p.eb.address, b"first")
    for i in range(3):
        p.ea.send(p.eb.address, b"w%d" % i)
    p.hub.queue.clear()  # B never hears of anything: its process is gone
    st = p.a._stack
    st._on_peer_lost(p.b._stack.own)
    assert [M.buf_user(pkt) for _s, _d, pkt in p.hub.queue] == [M.LINK_PROTOCOL]  # RESET, no data
    p.hub.queue.clear()
    # Never transmitted, so provably not delivered: each comes back to its sender.
    assert p.got[p.a] == [Returned(b"w%d" % i, p.eb.address, DeliveryFailure.NO_NODE) for i in range(3)]
    assert st.stats["messages_unsent_at_link_down"] == 3 and st.stats["messages_unacked_at_link_down"] == 1
    st.flush_bundles()  # the scheduled flush finds nothing left to send
    assert not p.hub.queue
    await close(p)


async def test_a_graceful_close_sends_what_waits_to_be_bundled() -> None:
    p = await make_pair(fast=True, bundling=True)
    p.ea.send(p.eb.address, b"first")
    p.ea.send(p.eb.address, b"second")
    await p.a.aclose()  # before the end of the turn
    p.hub.pump()
    assert [d.data for d in p.got[p.b]] == [b"first", b"second"]  # type: ignore[attr-defined]
    await p.b.aclose()


async def test_messages_that_are_not_bundled_do_not_overtake_the_bundle() -> None:
    p = await make_pair(fast=True, bundling=True)
    await p.eb.publish(ServiceAddr(5000, 1))
    p.b._stack.flush_names()
    p.hub.pump()
    p.ea.send(p.eb.address, b"first")
    p.ea.send(p.eb.address, b"small")  # waits to be bundled
    mid = b"m" * 3000  # one packet, but too large to bundle: after the bundle
    p.ea.send(p.eb.address, mid)
    p.ea.send(p.eb.address, b"small again")
    p.ea.send(ServiceAddr(5000, 1), b"named")  # the socket layer's send: after the bundle too
    p.a._stack.flush_bundles()
    p.hub.pump()
    assert [d.data for d in p.got[p.b]] == [b"first", b"small", mid, b"small again", b"named"]  # type: ignore[attr-defined]
    await close(p)


async def test_bundles_the_fast_path_cannot_take_whole_take_the_general_path() -> None:
    p = await make_pair(fast=True, bundling=True)
    await p.eb.publish(ServiceAddr(5000, 1))
    p.b._stack.flush_names()
    p.hub.pump()
    a_own, b_own = p.a._stack.own, p.b._stack.own
    sport, dport = p.ea.address.port, p.eb.address.port
    ok = M.direct_msg(0, a_own, sport, b_own, dport, b"ok")
    named = M.named_msg(0, a_own, sport, b_own, dport, 5000, 1, b"named", 0)  # resolved by A
    link = p.link(p.a)
    for inner, trailing, want in (
        ([ok, named], b"", [b"ok", b"named"]),
        ([ok, ok], b"\0" * 4, [b"ok", b"ok"]),  # bytes after the last message
    ):
        p.got[p.b].clear()
        before = p.general[p.b]
        pkt = bytearray(bundle(inner, prevnode=a_own, destnode=b_own) + trailing)
        w0 = int.from_bytes(pkt[:4], "big") & ~0x1FFFF | len(pkt)  # the size covers the trailing bytes
        pkt[:4] = w0.to_bytes(4, "big")
        w2 = ((link.rcv_nxt - 1) & 0xFFFF) << 16 | link.snd_nxt
        pkt[8:12] = w2.to_bytes(4, "big")
        link.snd_nxt += 1  # as if A's link had sent it (B acks it; A's queue never had it)
        p.b._stack.fast.rcv(bytes(pkt), A_MEDIA)
        assert p.general[p.b] == before + 1
        assert [d.data for d in p.got[p.b] if isinstance(d, Delivery)] == want
    await close(p)
