"""The link endpoint (net/tipc/link.c): kernel conversation replay, FSM, reliability."""

from __future__ import annotations

import pytest

from tipcrpc.transport.user import msg as m
from tipcrpc.transport.user.link import Link
from tipcrpc.transport.user.link_fsm import (
    LINK_ESTABLISH_EVT,
    LINK_ESTABLISHED,
    LINK_ESTABLISHING,
    LINK_FAILURE_EVT,
    LINK_PEER_RESET,
    LINK_PEER_RESET_EVT,
    LINK_RESET,
    LINK_RESET_EVT,
    LINK_RESETTING,
    TIPC_LINK_DOWN_EVT,
    TIPC_LINK_UP_EVT,
    less,
    less_eq,
    link_fsm,
    more,
)

import golden as g


def kernel_like_link_a() -> Link:
    """Link a->b as the kernel in the capture had it: session 0xc3b3 after reset, MTU 14000."""
    link = Link(own_addr=g.NODE_A, peer_addr=g.NODE_B, session=g.SESSION_A - 1, mtu=14000,
                tolerance_ms=1500, window=50, peer_caps=m.TIPC_NODE_CAPABILITIES, if_name=b"b1")
    link.reset()
    link.fsm(LINK_RESET_EVT)
    return link


def test_seqno_arithmetic_wraps() -> None:
    assert less(65535, 0) and less(65000, 100) and more(100, 65000)
    assert less_eq(5, 5) and not less(5, 5) and not more(5, 5)
    assert more(0, 65535) and less(1, 2) and not less(2, 1)
    assert less(0, 32767) and more(0, 32768)  # half the space is "behind"


def test_fsm_table_matches_kernel_transitions() -> None:
    assert link_fsm(LINK_RESETTING, LINK_RESET_EVT) == (LINK_RESET, 0, True)
    assert link_fsm(LINK_RESET, LINK_PEER_RESET_EVT) == (LINK_ESTABLISHING, 0, True)
    assert link_fsm(LINK_ESTABLISHING, LINK_ESTABLISH_EVT) == (LINK_ESTABLISHED, 0, True)
    assert link_fsm(LINK_ESTABLISHED, LINK_PEER_RESET_EVT) == (LINK_PEER_RESET, TIPC_LINK_DOWN_EVT, True)
    assert link_fsm(LINK_ESTABLISHED, LINK_FAILURE_EVT) == (LINK_RESETTING, TIPC_LINK_DOWN_EVT, True)
    assert link_fsm(LINK_PEER_RESET, LINK_RESET_EVT) == (LINK_ESTABLISHING, 0, True)
    assert link_fsm(LINK_RESETTING, LINK_ESTABLISH_EVT) == (LINK_RESETTING, 0, False)  # illegal


def test_replays_the_kernel_link_setup_byte_for_byte() -> None:
    """Link a fed b's captured packets emits a's captured packets (udp-replicast 24..37)."""
    a = kernel_like_link_a()
    out: list[bytes] = []
    a.build_proto_msg(m.RESET_MSG, out)
    assert out == [g.RESET_A]  # frame 24

    out.clear()
    assert a.rcv(g.RESET_B, 1.0, out, []) == 0  # frame 25
    assert a.state == LINK_ESTABLISHING and a.peer_session == g.SESSION_B
    a.build_reset_msg(out)
    assert out == [g.ACTIVATE_A]  # frame 28

    out.clear()
    assert a.rcv(g.ACTIVATE_B, 1.1, out, []) == TIPC_LINK_UP_EVT  # frame 29
    a.fsm(LINK_ESTABLISH_EVT)
    assert a.state == LINK_ESTABLISHED and a.mtu == 14000
    a.build_state_msg(out)
    # frame 30 carries an empty Gap ACK record (4 bytes) we never send; the header matches
    ours = m.Header.decode(out[0])
    kernel = m.Header.decode(g.STATE_A_FIRST)
    assert ours.w[1:] == kernel.w[1:] and ours.size == 40

    out.clear()
    a.build_bc_init_msg(1.1, out)
    assert out == [g.BCAST_INIT_A]  # frame 31
    a.xmit([g.NAME_BULK_A], g.NAME_BULK_A, 1.1, out)
    assert out[1] == g.NAME_BULK_A  # frame 32: seqno 2 stamped identically

    delivered: list[bytes] = []
    out.clear()
    assert a.rcv(g.STATE_B_FIRST, 1.2, out, delivered) == 0  # frame 33
    assert a.rcv(g.BCAST_INIT_B, 1.2, out, delivered) == 0  # frame 34
    assert a.rcv(g.NAME_BULK_B, 1.2, out, delivered) == 0  # frame 35
    assert delivered == [g.NAME_BULK_B]
    assert a.bc_up and len(a.transmq) == 2  # frames 33..35 still ack 0
    a.build_state_msg(out)
    assert m.Header.decode(out[-1]).w[1:] == m.Header.decode(g.STATE_A).w[1:]  # frame 37


def test_peer_stopping_reset_takes_an_established_link_down() -> None:
    a = kernel_like_link_a()
    a.rcv(g.RESET_B, 1.0, [], [])
    a.rcv(g.ACTIVATE_B, 1.0, [], [])
    a.fsm(LINK_ESTABLISH_EVT)
    rc = a.rcv(g.RESET_B_STOPPING, 2.0, [], [])  # frame 181, session 0xac32 > 0xac31
    assert rc == TIPC_LINK_DOWN_EVT and a.state == LINK_RESETTING
    assert a.failure_reason == "peer is stopping"


def test_activate_for_another_session_forces_resynch() -> None:
    a = Link(own_addr=g.NODE_A, peer_addr=g.NODE_B, session=0xC39F, mtu=1400, tolerance_ms=1500,
             window=50, peer_caps=0)
    a.reset()
    a.fsm(LINK_RESET_EVT)
    assert a.session == 0xC3A0
    rc = a.rcv(g.ACTIVATE_B, 0.0, [], [])  # dest_session 0xc3b3 is ahead of ours
    assert rc == 0 and a.state == LINK_RESET and a.session == 0xC3B4
    rc = a.rcv(g.ACTIVATE_B, 0.0, [], [])  # still not ours (0xc3b4): ignored, no change
    assert rc == 0 and a.state == LINK_RESET and a.session == 0xC3B4


def pair(window: int = 50, mtu: int = 1400, caps: int = m.TIPC_LINK_PROTO_SEQNO) -> tuple[Link, Link]:
    """Two links wired up to ESTABLISHED by exchanging their own RESET/ACTIVATE/STATE."""
    a = Link(own_addr=1, peer_addr=2, session=100, mtu=mtu, tolerance_ms=1500, window=window, peer_caps=caps)
    b = Link(own_addr=2, peer_addr=1, session=200, mtu=mtu, tolerance_ms=1500, window=window, peer_caps=caps)
    for link in (a, b):
        link.reset()
        link.fsm(LINK_RESET_EVT)
    qa: list[bytes] = []
    a.build_proto_msg(m.RESET_MSG, qa)
    qb: list[bytes] = []
    assert b.rcv(qa[0], 0.0, qb, []) == 0 and b.state == LINK_ESTABLISHING
    b.build_reset_msg(qb)  # ACTIVATE
    qa.clear()
    assert a.rcv(qb[0], 0.0, qa, []) == TIPC_LINK_UP_EVT
    a.fsm(LINK_ESTABLISH_EVT)
    a.build_state_msg(qa)
    assert b.rcv(qa[-1], 0.0, [], []) == TIPC_LINK_UP_EVT
    b.fsm(LINK_ESTABLISH_EVT)
    return a, b


def data(i: int, size: int = 10) -> bytes:
    return m.direct_msg(0, 1, 7, 2, 9, i.to_bytes(4, "big") + b"\0" * (size - 4))


def bodies(msgs: list[bytes]) -> list[bytes]:
    """Delivered messages carry the link's seqno/ack stamps; compare what the sender wrote."""
    return [p[32:] for p in msgs]


def sent(*idx: int) -> list[bytes]:
    return [data(i)[32:] for i in idx]


def test_in_order_delivery_and_piggybacked_acks() -> None:
    a, b = pair()
    q: list[bytes] = []
    for i in range(5):
        a.xmit([data(i)], data(i), 0.0, q)
    got: list[bytes] = []
    back: list[bytes] = []
    for pkt in q:
        b.rcv(pkt, 0.0, back, got)
    assert bodies(got) == sent(*range(5))
    assert len(a.transmq) == 5
    b.xmit([data(99)], data(99), 0.0, back)  # carries ack 5
    a.rcv(back[-1], 0.0, [], [])
    assert len(a.transmq) == 0


def test_explicit_ack_after_16_packets() -> None:
    a, b = pair()
    q: list[bytes] = []
    for i in range(16):
        a.xmit([data(i)], data(i), 0.0, q)
    back: list[bytes] = []
    for pkt in q:
        b.rcv(pkt, 0.0, back, [])
    states = [m.Header.decode(p) for p in back]
    assert len(states) == 1 and states[0].mtype == m.STATE_MSG and states[0].ack == 16


def test_gap_defers_nacks_and_retransmits() -> None:
    a, b = pair()
    q: list[bytes] = []
    for i in range(6):
        a.xmit([data(i)], data(i), 0.0, q)
    got: list[bytes] = []
    back: list[bytes] = []
    for pkt in q[1:4]:  # packet 1 lost, 2..4 arrive
        b.rcv(pkt, 0.0, back, got)
    assert got == [] and len(b.deferdq) == 3
    (nack,) = [m.Header.decode(p) for p in back]
    assert (nack.mtype, nack.ack, nack.seq_gap) == (m.STATE_MSG, 0, 1)
    again: list[bytes] = []
    a.rcv(back[0], 0.01, again, [])
    assert [m.Header.decode(p).seqno for p in again] == [1]
    assert a.stats["retransmitted"] == 1
    for pkt in again + q[4:] + q[2:3]:  # retransmission, the rest, and a duplicate
        b.rcv(pkt, 0.01, [], got)
    assert bodies(got) == sent(*range(6))
    assert b.stats["duplicates"] == 1


def test_window_and_unbounded_backlog() -> None:
    a, b = pair(window=20)
    q: list[bytes] = []
    for i in range(100):
        a.xmit([data(i)], data(i), 0.0, q)
    assert len(q) == 20 and len(a.transmq) == 20 and len(a.backlogq) == 80
    got: list[bytes] = []
    for _ in range(10):
        back: list[bytes] = []
        for pkt in q:
            b.rcv(pkt, 0.0, back, got)
        b.build_state_msg(back)
        q = []
        for pkt in back:
            a.rcv(pkt, 0.0, q, [])
    assert bodies(got) == sent(*range(100))
    assert not a.transmq and not a.backlogq


def test_wraparound_near_65535() -> None:
    a, b = pair()
    a.snd_nxt = b.rcv_nxt = 65530
    q: list[bytes] = []
    for i in range(20):
        a.xmit([data(i)], data(i), 0.0, q)
    assert [m.Header.decode(p).seqno for p in q][4:8] == [65534, 65535, 0, 1]
    got: list[bytes] = []
    back: list[bytes] = []
    for pkt in reversed(q):  # worst-case reordering across the wrap
        b.rcv(pkt, 0.0, back, got)
    assert bodies(got) == sent(*range(20))
    b.build_state_msg(back)
    a.rcv(back[-1], 0.0, [], [])
    assert not a.transmq and b.rcv_nxt == (65530 + 20) & 0xFFFF


def test_supervision_probes_then_fails_after_abort_limit() -> None:
    a, _b = pair()
    a.set_abort_limit(4)
    probes = 0
    rc = 0
    ticks = 0
    while not rc & TIPC_LINK_DOWN_EVT:
        q: list[bytes] = []
        rc = a.timeout(ticks * 0.375, q)
        probes += sum(1 for p in q if m.Header.decode(p).probe)
        ticks += 1
    # Idle ticks probe (nothing sent since the last one); the silence counter reaches 5 >
    # abort_limit on the 6th tick: with tolerance 1500 ms (375 ms ticks) the link fails
    # 1.875..2.25 s after the last packet from the peer, as on a real kernel.
    assert ticks == 6
    assert probes == 5 and a.state == LINK_RESETTING
    assert "tolerance" in a.failure_reason


def test_reception_clears_silence() -> None:
    a, b = pair()
    for t in range(20):
        q: list[bytes] = []
        assert a.timeout(t * 0.375, q) == 0
        for p in q:
            back: list[bytes] = []
            b.rcv(p, t * 0.375, back, [])
            for r in back:
                a.rcv(r, t * 0.375, [], [])
    assert a.state == LINK_ESTABLISHED


def test_reset_returns_unacked_messages_in_order() -> None:
    a, _b = pair(window=16)
    frags_msg = data(1000, 3000)
    q: list[bytes] = []
    a.xmit([data(0)], data(0), 0.0, q)
    from tipcrpc.transport.user.fragment import fragment

    a.xmit(fragment(frags_msg, a.mss), frags_msg, 0.0, q)
    for i in range(1, 30):
        a.xmit([data(i)], data(i), 0.0, q)
    a.build_bc_init_msg(0.0, q)  # link-internal packet: not a caller's message
    # Window 16: data(0), the fragments and data(1..) up to the window were transmitted; the
    # rest never left the backlog.
    sent = len(a.transmq)
    assert sent == 16
    unacked, unsent = a.reset()
    in_window = 16 - 1 - len(fragment(frags_msg, a.mss))
    assert unacked == [data(0), frags_msg] + [data(i) for i in range(1, 1 + in_window)]
    assert unsent == [data(i) for i in range(1 + in_window, 30)]
    assert not a.transmq and not a.backlogq and a.snd_nxt == 1


def test_retransmission_failure_after_ten_tolerances() -> None:
    a, _b = pair()
    q: list[bytes] = []
    a.xmit([data(0)], data(0), 0.0, q)
    nack = m.Header(m.LINK_PROTOCOL, m.STATE_MSG, 40, own_node=2, dest_node=1)
    nack.session = _b.session
    nack.seq_gap = 1
    nack.next_sent = 1
    rc = 0
    t = 0.0
    seq = 1
    retransmits = []
    while not rc and t < 100:
        nack.seqno = seq
        seq += 1
        q2: list[bytes] = []
        rc = a.rcv(nack.build(), t, q2, [])
        retransmits.append(len(q2))
        t += 1.0
    # the first NACK at t=0 comes within 1 ms of sending: not retransmitted yet (UC_RETR_TIME);
    # from t=1 every NACK retransmits, and 10 x tolerance (15 s) after the first, the link fails
    assert retransmits[:3] == [0, 1, 1]
    assert rc == TIPC_LINK_DOWN_EVT and t - 1.0 == 17.0
    assert "retransmission failure" in a.failure_reason


def test_stale_state_and_wrong_session_are_ignored() -> None:
    a, b = pair()
    q: list[bytes] = []
    b.build_proto_msg(m.STATE_MSG, q, probe=True)
    b.build_proto_msg(m.STATE_MSG, q, probe=True)
    assert a.rcv(q[1], 0.0, [], []) == 0 and a.stats["recv_states"] == 1
    assert a.rcv(q[0], 0.0, [], []) == 0  # older LINK_PROTO_SEQNO: dropped
    assert a.stats["recv_states"] == 1 and a.stats["proto_invalid"] == 1
    h = m.Header.decode(q[1])
    h.session = (h.session + 5) & 0xFFFF
    h.seqno = 100
    a.rcv(h.build(), 0.0, [], [])
    assert a.stats["proto_invalid"] == 2


def test_data_while_establishing_brings_link_up() -> None:
    a = Link(own_addr=1, peer_addr=2, session=1, mtu=1400, tolerance_ms=1500, window=50, peer_caps=0)
    a.reset()
    a.fsm(LINK_RESET_EVT)
    a.fsm(LINK_PEER_RESET_EVT)
    assert a.state == LINK_ESTABLISHING
    assert a.rcv(data(0), 0.0, [], []) == TIPC_LINK_UP_EVT


def test_timeout_repeats_reset_then_backs_off() -> None:
    a = Link(own_addr=1, peer_addr=2, session=1, mtu=1400, tolerance_ms=1500, window=50, peer_caps=0)
    a.reset()
    a.fsm(LINK_RESET_EVT)
    sent = []
    for tick in range(40):
        q: list[bytes] = []
        a.timeout(tick, q)
        sent.append(len(q))
    assert a.state == LINK_RESET
    assert sent[:5] == [1] * 5 and sum(sent) == 5 + 2  # then every 16th tick (16, 32)


@pytest.mark.parametrize("mtu", [300, 1400, 14000])
def test_mtu_negotiates_to_the_smaller(mtu: int) -> None:
    a = Link(own_addr=1, peer_addr=2, session=1, mtu=1400, tolerance_ms=1500, window=50, peer_caps=0)
    b = Link(own_addr=2, peer_addr=1, session=9, mtu=mtu, tolerance_ms=1500, window=50, peer_caps=0)
    for link in (a, b):
        link.reset()
        link.fsm(LINK_RESET_EVT)
    q: list[bytes] = []
    b.build_proto_msg(m.RESET_MSG, q)
    a.rcv(q[0], 0.0, [], [])
    assert a.mtu == min(1400, mtu)
