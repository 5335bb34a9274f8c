"""The keepalive thread's tick (transport/user/keepalive.py), driven by hand with a fake clock.

Link ``b`` belongs to a node whose event loop is blocked: it never runs its own timer. Its
peer ``a`` runs its timer every 375 ms (tolerance 1500 ms) and would declare the link dead
after ~2 s; the keepalive's STATE messages keep it up for as long as the stall lasts (up to
``stall_limit``), and nothing is sent while the loop beats.
"""

from __future__ import annotations

from tipcrpc.transport.user import msg as m
from tipcrpc.transport.user.keepalive import Keepalive, keepalive_interval
from tipcrpc.transport.user.link import Link
from tipcrpc.transport.user.link_fsm import LINK_ESTABLISHED, TIPC_LINK_DOWN_EVT

from test_link import pair

MEDIA = ("127.0.0.1", 6118)


def _simulate(a: Link, seconds: float, *, ka: Keepalive | None, sent: list[bytes], clock: list[float]) -> float | None:
    """Advance time in 1/8-interval steps: ``a`` runs its timer every interval and reads what
    the keepalive sends; ``b``'s loop never runs. Return when ``a`` declared the link down."""
    intv = keepalive_interval(a.tolerance_ms)
    step = intv / 8
    t = next_tick = 0.0
    for i in range(int(seconds / step) + 1):
        t = i * step
        clock[0] = t
        if t >= next_tick:
            if a.timeout(t, []) & TIPC_LINK_DOWN_EVT:  # a's probes go unanswered
                return t
            next_tick = t + intv
        if ka is not None and i % 4 == 0:  # the thread wakes every interval/2
            n = len(sent)
            ka.tick()
            for pkt in sent[n:]:
                a.rcv(pkt, t, [], [])
    return None


def _keepalive(b: Link, clock: list[float], sent: list[bytes], **kw: object) -> Keepalive:
    def send(dest: tuple[str, int], pkt: bytes) -> None:
        assert dest == MEDIA
        sent.append(pkt)

    return Keepalive(name="test", links=lambda: [(MEDIA, b)], send=send, clock=lambda: clock[0], **kw)  # type: ignore[arg-type]


def test_a_blocked_loop_is_declared_dead_without_keepalive() -> None:
    a, b = pair()
    a.set_abort_limit(4)
    down = _simulate(a, 10.0, ka=None, sent=[], clock=[0.0])
    assert down is not None and 1.5 <= down <= 2.25


def test_keepalive_states_keep_the_peer_up_through_a_10s_stall() -> None:
    a, b = pair()
    a.set_abort_limit(4)
    clock = [0.0]
    sent: list[bytes] = []
    ka = _keepalive(b, clock, sent)
    ka.last_beat = 0.0  # the loop's last beat; it never beats again
    seq0 = b.snd_nxt_state

    assert _simulate(a, 10.0, ka=ka, sent=sent, clock=clock) is None
    assert a.state == LINK_ESTABLISHED
    assert sent, "no keepalive was sent"
    hdrs = [m.Header.decode(p) for p in sent]
    assert all(h.user == m.LINK_PROTOCOL and h.mtype == m.STATE_MSG for h in hdrs)
    # Current values of the link: its session, what it has received (ack) and sent.
    assert all(h.session == b.session and h.ack == (b.rcv_nxt - 1) & 0xFFFF and h.next_sent == b.snd_nxt for h in hdrs)
    # Consecutive STATE sequence numbers (the peer drops a STATE whose seqno went back).
    assert [h.seqno for h in hdrs] == [(seq0 + i) & 0xFFFF for i in range(len(hdrs))]
    assert ka.stats["keepalive_stalls"] == 1 and ka.stats["keepalive_sent"] == len(sent)
    assert ka.stats["keepalive_longest_stall_ms"] >= 9_500


def test_nothing_is_sent_while_the_loop_beats() -> None:
    a, b = pair()
    clock = [0.0]
    sent: list[bytes] = []
    ka = _keepalive(b, clock, sent)
    for i in range(100):
        clock[0] = i * 0.1
        ka.beat()
        ka.tick()
    assert sent == [] and ka.stats["keepalive_stalls"] == 0


def test_stall_limit_lets_a_wedged_node_fail_over() -> None:
    a, b = pair()
    a.set_abort_limit(4)
    clock = [0.0]
    sent: list[bytes] = []
    ka = _keepalive(b, clock, sent, stall_limit=3.0)
    ka.last_beat = 0.0
    down = _simulate(a, 10.0, ka=ka, sent=sent, clock=clock)
    # Kept alive for 3 s, then link tolerance runs its course.
    assert down is not None and 3.0 + 1.5 <= down <= 3.0 + 2.25 + 0.2
