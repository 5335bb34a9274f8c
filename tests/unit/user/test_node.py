"""Node: discovery to link-up, reliable delivery over a bad medium, failure handling."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipcrpc.errors import LocalProtocolError, ServiceUnreachable
from tipcrpc.transport.user import msg as m
from tipcrpc.transport.user.discover import parse_discovery
from tipcrpc.transport.user.fragment import bundle
from tipcrpc.transport.user.node import (
    BROADCAST,
    DuplicateAddress,
    NoLink,
    Node,
    Output,
    PeerDown,
    PeerUp,
)

import golden as g
from sim import Medium, Sim, simulate

A = ("127.0.0.1", 7001)
B = ("127.0.0.1", 7002)
C = ("127.0.0.1", 7003)


def node(media: tuple[str, int], ident: bytes, sig: int = 0x1111, **kw: object) -> Node:
    return Node(node_id=ident, media=media, signature=sig, now=0.0, **kw)  # type: ignore[arg-type]


def up_pair(medium: Medium | None = None, **kw: object) -> tuple[Sim, Node, Node]:
    a = node(A, b"alpha", 0x1234, **kw)
    b = node(B, b"beta", 0x4321, **kw)
    sim = Sim(medium or Medium())
    sim.add(A, a)
    sim.add(B, b)
    assert sim.run_while(lambda: not (a.peers() and b.peers() and all(
        p.up for n in (a, b) for p in n.peers().values())), limit=10.0)
    return sim, a, b


def msg(src: Node, dst: Node, i: int, size: int = 16) -> bytes:
    payload = i.to_bytes(4, "big") + bytes(size - 4)
    return m.named_msg(0, src.own_addr, 1, dst.own_addr, 2, 18888, i, payload, 2)


def payloads(sim: Sim, media: tuple[str, int]) -> list[int]:
    return [int.from_bytes(p[40:44], "big") for _t, _peer, p in sim.logs[media].delivered]


def events(sim: Sim, media: tuple[str, int], kind: type) -> list:
    return [e for _t, e in sim.logs[media].events if isinstance(e, kind)]


def test_two_nodes_discover_and_establish_quickly() -> None:
    sim, a, b = up_pair()
    assert sim.now < 0.01  # RESET at link creation and ACTIVATE on RESET: no timer waits
    (ua,) = events(sim, A, PeerUp)
    assert ua == PeerUp(b.own_addr, b.node_id, B)
    (ub,) = events(sim, B, PeerUp)
    assert ub.addr == a.own_addr and ub.media == A
    sim.run_until(sim.now + 0.1)  # the peer's first STATE moves SELF_UP_PEER_COMING -> UP_UP
    info = a.peers()[b.own_addr]
    assert (info.link_state, info.node_state, info.mtu) == ("ESTABLISHED", "SELF_UP_PEER_UP", 1400)
    assert info.identity == b"beta".ljust(16, b"\0")
    sim.run_until(30.0)
    assert not events(sim, A, PeerDown) and a.peers()[b.own_addr].up  # idle link stays up


def test_messages_flow_both_ways_in_order() -> None:
    sim, a, b = up_pair()
    for i in range(10):
        sim.send(A, b.own_addr, msg(a, b, i))
        sim.send(B, a.own_addr, msg(b, a, 100 + i))
    sim.run_until(sim.now + 1.0)
    assert payloads(sim, B) == list(range(10))
    assert payloads(sim, A) == list(range(100, 110))
    assert all(peer == a.own_addr for _t, peer, _p in sim.logs[B].delivered)
    d = m.data_header(sim.logs[B].delivered[0][2])
    assert (d.name_type, d.orig_node, d.dest_node) == (18888, a.own_addr, b.own_addr)


def test_link_goes_down_after_tolerance_and_returns_undelivered() -> None:
    sim, a, b = up_pair()
    sim.run_until(5.0)
    sim.medium.cut(A, B)
    t_cut = sim.now
    pending = [msg(a, b, i) for i in range(3)]
    for p in pending:
        sim.send(A, b.own_addr, p)
    assert sim.run_while(lambda: not events(sim, A, PeerDown), limit=t_cut + 10)
    ((t_down, down),) = [(t, e) for t, e in sim.logs[A].events if isinstance(e, PeerDown)]
    assert down.addr == b.own_addr and "tolerance" in down.reason
    assert 1.5 <= t_down - t_cut <= 2.3  # tolerance 1500 ms, checked every 375 ms
    assert [u for _t, _peer, u in sim.logs[A].undelivered] == pending
    assert sim.logs[A].unsent == []  # all three were transmitted: their fate is unknown
    with pytest.raises(NoLink):
        a.send(b.own_addr, msg(a, b, 9), sim.now)
    assert isinstance(NoLink("x"), ServiceUnreachable)
    # heal: discovery and RESET/ACTIVATE bring it back
    sim.medium.heal()
    assert sim.run_while(lambda: len(events(sim, A, PeerUp)) < 2, limit=sim.now + 10)
    sim.send(A, b.own_addr, msg(a, b, 42))
    sim.run_until(sim.now + 0.5)
    assert payloads(sim, B)[-1] == 42


def test_loss_every_kth_packet_all_delivered_once_in_order() -> None:
    rng = random.Random(1234)
    count = {"n": 0}

    def drop(src: object, dst: object, pkt: bytes) -> bool:
        count["n"] += 1
        return count["n"] % 7 == 0 or rng.random() < 0.05

    sim, a, b = up_pair(Medium(random.Random(5), drop=drop))
    for i in range(500):
        sim.send(A, b.own_addr, msg(a, b, i))
        if i % 50 == 0:
            sim.run_until(sim.now + 0.01)
    assert sim.run_while(lambda: len(payloads(sim, B)) < 500, limit=sim.now + 60)
    assert payloads(sim, B) == list(range(500))
    st = a.statistics()
    assert st["retransmitted"] > 0 and st["links_down"] == 0


def test_duplicates_and_reordering_tolerated() -> None:
    medium = Medium(random.Random(99), duplicate=0.2, reorder=0.3, jitter=0.002, reorder_delay=0.01)
    sim, a, b = up_pair(medium)
    for i in range(300):
        sim.send(A, b.own_addr, msg(a, b, i))
        sim.send(B, a.own_addr, msg(b, a, i))
    assert sim.run_while(lambda: len(payloads(sim, B)) < 300 or len(payloads(sim, A)) < 300, limit=60)
    sim.run_until(sim.now + 2)
    assert payloads(sim, B) == list(range(300)) and payloads(sim, A) == list(range(300))
    assert b.statistics()["duplicates"] > 0


def test_terrible_network_soak() -> None:
    medium = Medium(random.Random(7), loss=0.15, duplicate=0.1, reorder=0.2, jitter=0.003)
    sim, a, b = up_pair(medium, tolerance_ms=3000)
    for i in range(400):
        sim.send(A, b.own_addr, msg(a, b, i, size=random.Random(i).randint(16, 5000)))
    assert sim.run_while(lambda: len(payloads(sim, B)) < 400, limit=sim.now + 120)
    assert payloads(sim, B) == list(range(400))


def test_sequence_numbers_wrap_around() -> None:
    sim, a, b = up_pair()
    sim.run_until(sim.now + 1.0)  # let the bc-init packet be acked: link queues empty
    la = a._peers[b.own_addr].link
    lb = b._peers[a.own_addr].link
    assert la is not None and lb is not None and not la.transmq
    la.snd_nxt = la.checkpoint = lb.rcv_nxt = 65500
    for i in range(100):
        sim.send(A, b.own_addr, msg(a, b, i))
    sim.run_until(sim.now + 1.0)
    assert payloads(sim, B) == list(range(100))
    assert la.snd_nxt == (65500 + 100) & 0xFFFF and not la.transmq


def test_66000_byte_message_is_fragmented_and_reassembled() -> None:
    sim, a, b = up_pair(Medium(random.Random(3), loss=0.05))
    big = m.named_msg(1, a.own_addr, 1, b.own_addr, 2, 18888, 7, bytes(range(256)) * 257 + bytes(208), 2)
    assert len(big) == 66040
    sim.send(A, b.own_addr, big)
    assert sim.run_while(lambda: not sim.logs[B].delivered, limit=sim.now + 30)
    ((_t, peer, got),) = sim.logs[B].delivered
    assert got == big and peer == a.own_addr
    assert a.statistics()["sent_fragmented"] == 1
    assert b.statistics()["recv_fragmented"] == 1


def test_bundle_is_received_as_its_messages() -> None:
    sim, a, b = up_pair()
    inner = [msg(a, b, i) for i in range(3)]
    sim.send(A, b.own_addr, bundle(inner, prevnode=a.own_addr, destnode=b.own_addr))
    sim.run_until(sim.now + 0.1)
    assert [p for _t, _peer, p in sim.logs[B].delivered] == inner
    assert b.statistics()["recv_bundled"] == 3


def test_window_backlog_1000_messages_at_once() -> None:
    sim, a, b = up_pair()
    for i in range(1000):
        sim.apply(A, a.send(b.own_addr, msg(a, b, i), sim.now))
    link = a._peers[b.own_addr].link
    assert link is not None and len(link.transmq) == 50 and len(link.backlogq) >= 950
    assert a.queued() == len(link.transmq) + len(link.backlogq) >= 1000
    assert sim.run_while(lambda: len(payloads(sim, B)) < 1000, limit=sim.now + 30)
    assert payloads(sim, B) == list(range(1000))
    assert a.statistics()["max_queue_sz"] >= 1000
    assert sim.run_while(lambda: a.queued() > 0, limit=sim.now + 5)  # all acknowledged


def test_link_failure_separates_transmitted_from_never_transmitted_messages() -> None:
    # Window 16, one slot taken by the link's broadcast init message (never acknowledged
    # across the cut): the first 15 messages leave at once, the other 5 wait in the backlog.
    # When the link fails, the 15 may have arrived (unacknowledged is not undelivered); the
    # 5 in the backlog provably did not, and are reported apart so the shell returns them.
    sim, a, b = up_pair(window=16)
    sim.medium.cut(A, B)
    pending = [msg(a, b, i) for i in range(20)]
    for p in pending:
        sim.send(A, b.own_addr, p)
    assert a.queued() == 21
    assert sim.run_while(lambda: not events(sim, A, PeerDown), limit=sim.now + 10)
    assert [u for _t, peer, u in sim.logs[A].undelivered] == pending[:15]
    assert [u for _t, peer, u in sim.logs[A].unsent] == pending[15:]
    assert {peer for _t, peer, _u in sim.logs[A].unsent} == {b.own_addr}
    assert a.queued() == 0


def test_reset_peer_reports_down_and_returns_undelivered() -> None:
    sim, a, b = up_pair()
    sim.medium.cut(A, B)
    pending = [msg(a, b, i) for i in range(5)]
    for p in pending:
        sim.send(A, b.own_addr, p)
    out = a.reset_peer(b.own_addr, "peer process died", sim.now)
    assert out.events == [PeerDown(b.own_addr, "peer process died")]
    assert [u for _peer, u in out.undelivered] == pending
    assert out.unsent == []
    (reset,) = [m.Header.decode(p) for _dst, p in out.packets]
    assert (reset.user, reset.mtype, reset.peer_stopping) == (m.LINK_PROTOCOL, m.RESET_MSG, 1)
    assert not a.peers()[b.own_addr].up
    assert a.reset_peer(b.own_addr, "again", sim.now) == Output()  # already down: nothing
    assert a.reset_peer(0xDEAD, "unknown", sim.now) == Output()


def test_peer_restart_is_noticed_and_link_reestablishes() -> None:
    sim, a, b = up_pair()
    sim.run_until(2.0)
    sim.remove(B)  # b crashes silently
    b2 = node(B, b"beta", sig=0x7777)  # same identity, new signature
    sim.add(B, b2)
    assert sim.run_while(lambda: not b2.peers() or not b2.peers()[a.own_addr].up, limit=sim.now + 15)
    sim.send(B, a.own_addr, msg(b2, a, 5))
    sim.run_until(sim.now + 0.5)
    assert payloads(sim, A) == [5]


def test_stop_sends_reset_and_peer_goes_down_at_once() -> None:
    sim, a, b = up_pair()
    t0 = sim.now
    sim.apply(A, a.stop(sim.now))
    assert a.next_timeout() is None and a.peers() == {}
    assert sim.run_while(lambda: not events(sim, B, PeerDown), limit=t0 + 1)
    assert sim.now - t0 < 0.01
    (down,) = events(sim, B, PeerDown)
    assert down.reason == "peer is stopping"
    with pytest.raises(NoLink):
        a.send(b.own_addr, msg(a, b, 1), sim.now)
    assert a.receive(g.DISC_REQ_A, g.MEDIA_A, sim.now) == Output()


def test_netid_mismatch_is_ignored() -> None:
    a = node(A, b"alpha")
    b = node(B, b"beta", netid=4712)
    sim = simulate({A: a, B: b}, Medium(), until=5.0)
    assert a.peers() == {} and b.peers() == {}
    assert a.statistics()["netid_mismatch"] > 0 and not sim.logs[A].events


def test_three_nodes_full_mesh() -> None:
    nodes = {A: node(A, b"n1", 1), B: node(B, b"n2", 2), C: node(C, b"n3", 3)}
    simulate(nodes, Medium(random.Random(4), loss=0.1), until=10.0)
    for n in nodes.values():
        assert len(n.peers()) == 2 and all(p.up for p in n.peers().values())


def test_kernel_discovery_request_gets_response_and_reset() -> None:
    b = Node(node_id=g.ID_B, media=g.MEDIA_B, signature=0x0A5ED, now=0.0)
    assert b.own_addr == g.NODE_B
    out = b.receive(g.DISC_REQ_A, g.MEDIA_A, 1.0)
    kinds = [(m.Header.decode(p).user, m.Header.decode(p).mtype) for _dst, p in out.packets]
    # the response first: a kernel drops link messages from a node it has not discovered
    assert kinds == [(m.LINK_CONFIG, m.DSC_RESP_MSG), (m.LINK_PROTOCOL, m.RESET_MSG),
                     (m.LINK_PROTOCOL, m.ACTIVATE_MSG)]
    by_kind = {(m.Header.decode(p).user, m.Header.decode(p).mtype): (dst, p) for dst, p in out.packets}
    dst, resp = by_kind[(m.LINK_CONFIG, m.DSC_RESP_MSG)]
    r = parse_discovery(resp)
    assert dst == g.MEDIA_A and r.dest_domain == g.NODE_A and r.addr == g.NODE_B and r.media == g.MEDIA_B
    dst, reset = by_kind[(m.LINK_PROTOCOL, m.RESET_MSG)]
    h = m.Header.decode(reset)
    assert dst == g.MEDIA_A and (h.prevnode, h.destnode, h.max_pkt) == (g.NODE_B, g.NODE_A, 1400)
    # ... and an ACTIVATE naming no destination session (the kernel's session is unknown yet)
    _dst, act = by_kind[(m.LINK_PROTOCOL, m.ACTIVATE_MSG)]
    h = m.Header.decode(act)
    assert (h.dest_session_valid, h.session) == (0, m.Header.decode(reset).session)
    # the kernel's RESET moves our link to ESTABLISHING and we answer ACTIVATE at once
    out = b.receive(g.RESET_A, g.MEDIA_A, 1.1)
    (act,) = [m.Header.decode(p) for _d, p in out.packets]
    assert (act.mtype, act.dest_session_valid, act.dest_session) == (m.ACTIVATE_MSG, 1, g.SESSION_A)
    # a response to the kernel's own request is not answered again
    assert not [p for _d, p in b.receive(g.DISC_RESP_A, g.MEDIA_A, 1.2).packets
                if m.Header.decode(p).user == m.LINK_CONFIG]


def test_kernel_link_up_one_round_trip_after_discovery() -> None:
    """A kernel link comes up on our unaddressed ACTIVATE and says so with a STATE (ack 0).

    ``STATE_A_FIRST`` is the first STATE a real kernel sent after its link came up; taking
    it as the kernel's activation brings our side up without waiting for a kernel tick.
    """
    b = Node(node_id=g.ID_B, media=g.MEDIA_B, signature=0x0A5ED, now=0.0)
    b.receive(g.DISC_REQ_A, g.MEDIA_A, 1.0)  # response, RESET, unaddressed ACTIVATE
    out = b.receive(g.STATE_A_FIRST, g.MEDIA_A, 1.001)
    (up,) = out.events
    assert isinstance(up, PeerUp) and up.addr == g.NODE_A
    info = b.peers()[g.NODE_A]
    assert info.link_state == "ESTABLISHED"
    # our side's first packets after link-up: STATE, then the broadcast init (seqno 1)
    sent = [m.Header.decode(p) for _d, p in out.packets]
    assert [(h.user, h.mtype) for h in sent] == [(m.LINK_PROTOCOL, m.STATE_MSG), (m.BCAST_PROTOCOL, m.STATE_MSG)]
    assert sent[0].ack == 0 and sent[1].seqno == 1


def test_stale_kernel_state_does_not_bring_a_fresh_link_up() -> None:
    """A STATE acknowledging our packets comes from a link to an earlier incarnation: ignored."""
    b = Node(node_id=g.ID_B, media=g.MEDIA_B, signature=0x0A5ED, now=0.0)
    b.receive(g.DISC_REQ_A, g.MEDIA_A, 1.0)
    assert m.Header.decode(g.STATE_A).ack == 2
    out = b.receive(g.STATE_A, g.MEDIA_A, 1.001)
    assert not out.events and b.peers()[g.NODE_A].link_state == "RESET"
    # the link timer repeats RESET and the unaddressed ACTIVATE until the peer answers
    out = b.timeout(1.0 + 0.375)
    kinds = [(m.Header.decode(p).mtype, m.Header.decode(p).dest_session_valid) for _d, p in out.packets
             if m.Header.decode(p).user == m.LINK_PROTOCOL]
    assert kinds == [(m.RESET_MSG, 0), (m.ACTIVATE_MSG, 0)]
    out = b.receive(g.STATE_A_FIRST, g.MEDIA_A, 1.4)
    assert [type(e) for e in out.events] == [PeerUp]


def test_duplicate_identity_and_trial_fail() -> None:
    twin = Node(node_id=g.ID_A, media=("192.0.2.9", 6118), signature=1, now=0.0)
    out = twin.receive(g.DISC_REQ_A, g.MEDIA_A, 0.0)
    (ev,) = out.events
    assert isinstance(ev, DuplicateAddress) and ev.addr == g.NODE_A and ev.media == g.MEDIA_A
    out = twin.receive(g.DISC_TRIAL_A, g.MEDIA_A, 0.0)  # a kernel trialling our address
    ((dst, pkt),) = out.packets
    tf = parse_discovery(pkt)
    assert dst == g.MEDIA_A and tf.mtype == m.DSC_TRIAL_FAIL_MSG and tf.dest_domain == g.NODE_A
    assert tf.sugg_addr not in (0, g.NODE_A)
    other = Node(node_id=b"other", media=("192.0.2.8", 6118), signature=1, now=0.0)
    assert other.receive(g.DISC_TRIAL_A, g.MEDIA_A, 0.0).packets == []  # no conflict: silence


def test_duplicate_address_while_link_up() -> None:
    sim, a, b = up_pair()
    impostor = node(C, b"beta", sig=0x9999)  # same identity as b, other media
    sim.add(C, impostor)
    sim.run_until(sim.now + 3)
    dups = events(sim, A, DuplicateAddress)
    assert dups and dups[0].addr == b.own_addr and dups[0].media == C
    assert a.peers()[b.own_addr].media == B and a.peers()[b.own_addr].up


def test_own_looped_back_discovery_is_ignored() -> None:
    a = node(A, b"alpha")
    (_dst, req), = a.timeout(0.0).packets
    assert _dst == BROADCAST
    assert a.receive(req, A, 0.0) == Output() and a.peers() == {}


def test_send_validates_messages() -> None:
    sim, a, b = up_pair()
    with pytest.raises(LocalProtocolError):
        a.send(b.own_addr, b"garbage", sim.now)
    with pytest.raises(LocalProtocolError):
        a.send(b.own_addr, msg(a, b, 1) + b"x", sim.now)
    with pytest.raises(LocalProtocolError):
        a.send(b.own_addr, g.RESET_A, sim.now)
    with pytest.raises(NoLink):
        a.send(0x1234, msg(a, b, 1), sim.now)


def test_send_stamps_prevnode_and_destnode() -> None:
    sim, a, b = up_pair()
    items = bytes(20)
    sim.send(A, b.own_addr, m.name_distr_msg(m.PUBLICATION, items, orig_node=0))  # dest 0
    sim.run_until(sim.now + 0.1)
    ((_t, _peer, got),) = sim.logs[B].delivered
    h = m.Header.decode(got)
    assert (h.user, h.prevnode, h.destnode) == (m.NAME_DISTRIBUTOR, a.own_addr, b.own_addr)


def test_broadcast_link_packets_are_counted_and_dropped() -> None:
    sim, a, b = up_pair()
    out = b.receive(g.NAME_PUBL_B, A, sim.now)  # non_seq NAME_DISTRIBUTOR: broadcast link
    assert out == Output() and b.statistics()["bcast_dropped"] == 1


def test_node_rejects_bad_configuration() -> None:
    for kw in ({"netid": 0}, {"tolerance_ms": 10}, {"window": 2}, {"mtu": 50}):
        with pytest.raises(LocalProtocolError):
            node(A, b"x", **kw)
    with pytest.raises(LocalProtocolError):
        Node(node_id=b"x" * 17, media=A, signature=1, now=0.0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_counted_never_raised(data: bytes) -> None:
    b = _FUZZ_TARGET[0]
    before = b.statistics()["rx_packets"]
    out = b.receive(data, A, 1.0)
    assert isinstance(out, Output) and b.statistics()["rx_packets"] == before + 1


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(range(8)), st.integers(0, 1 << 16), st.integers(0, 255), st.integers(0, 3))
def test_fuzz_mutated_valid_packets(which: int, pos: int, val: int, nbytes: int) -> None:
    b, pkts = _FUZZ_TARGET
    base = bytearray(pkts[which % len(pkts)])
    for k in range(nbytes + 1):
        base[(pos + 7 * k) % len(base)] = (val + k) & 0xFF
    out = b.receive(bytes(base), A, 1.0)
    assert isinstance(out, Output)


def _fuzz_target() -> tuple[Node, list[bytes]]:
    """An established node b plus a sample of real packets a sent it."""
    sim, a, b = up_pair()
    captured: list[bytes] = []
    orig = sim.nodes[B].receive

    def spy(p: bytes, src: tuple[str, int], now: float) -> Output:
        captured.append(p)
        return orig(p, src, now)

    sim.nodes[B] = type("Spy", (), {"receive": staticmethod(spy), "timeout": b.timeout,
                                    "next_timeout": b.next_timeout})()
    sim.send(A, b.own_addr, msg(a, b, 1))
    sim.send(A, b.own_addr, m.named_msg(0, a.own_addr, 1, b.own_addr, 2, 1, 1, bytes(4000), 2))
    sim.send(A, b.own_addr, bundle([msg(a, b, 2), msg(a, b, 3)], prevnode=a.own_addr, destnode=b.own_addr))
    sim.run_until(sim.now + 2)
    return b, captured + [g.DISC_REQ_A, g.RESET_A, g.STATE_A]


_FUZZ_TARGET = _fuzz_target()
