"""The client's call table, without an event loop: every failover and deadline rule is fed
events and ``now`` by hand, and checked on the outbox (DESIGN.md §4a)."""

from __future__ import annotations

import pytest

from tipcrpc.addr import ServiceRange, SocketAddr
from tipcrpc.codec import Codec
from tipcrpc.errors import DeadlineExceeded, PeerLost, ServiceUnreachable, Status
from tipcrpc.rpc import frames as F
from tipcrpc.rpc.call_table import (
    NOTIFY_RETRY_WINDOW_S,
    ONEWAY,
    PROBE_INTERVAL_S,
    STREAM,
    UNARY,
    CallTable,
)
from tipcrpc.rpc.membership import Membership

T = 4242
S1, S2, S3 = SocketAddr(1, 10), SocketAddr(2, 20), SocketAddr(3, 30)
codec = Codec()


def setup(*socks: SocketAddr) -> tuple[CallTable, Membership]:
    m = Membership(T)
    for i, s in enumerate(socks):
        m.published(ServiceRange(T, i + 1, i + 1), s)
    m.ready = True
    return CallTable(codec, lambda t: m, first_id=100), m


def start(table: CallTable, sock: SocketAddr, *, idempotent: bool = False, deadline: float | None = None,
          now: float = 0.0, kind: int = UNARY, max_attempts: int = 3):  # fmt: skip
    call = table.new(kind, T, "m", [1], None, idempotent=idempotent, deadline=deadline, now=now,
                     credit=8 if kind == STREAM else None)  # fmt: skip
    call.max_attempts = max_attempts
    table.send(call, sock)
    return call


def sends(table: CallTable) -> list[tuple[SocketAddr, int, int]]:
    """(dest, kind, call id) of every frame sent since the last look."""
    out = [(d, f[1], int.from_bytes(f[8:16], "big")) for d, f, _imp in table.out.sends]
    table.out.sends.clear()
    return out


def done(table: CallTable) -> list[tuple[int, object, type | None]]:
    out = [(c.id, v, type(e) if e is not None else None) for c, v, e in table.out.done]
    table.out.done.clear()
    return out


def reply(cid: int, value: object) -> bytes:
    return F.encode_reply(codec, cid, value)


def test_a_call_is_sent_and_its_reply_completes_it() -> None:
    table, _m = setup(S1)
    call = start(table, S1)
    assert sends(table) == [(S1, F.Kind.CALL, call.id)]
    table.frame(S1, reply(call.id, 3), 1.0)
    assert done(table) == [(call.id, 3, None)]
    assert len(table) == 0
    table.frame(S1, reply(call.id, 4), 1.0)  # a late duplicate finds nothing
    assert done(table) == [] and sends(table) == []


def test_the_deadline_travels_as_remaining_seconds() -> None:
    table, _m = setup(S1)
    table.new(UNARY, T, "m", [], None, deadline=12.5, now=10.0)
    call = table.calls[max(table.calls)]
    assert F.decode_call(codec, call.frame)[3] == pytest.approx(2.5)


def test_deadline_fails_the_call_and_sends_cancel() -> None:
    table, _m = setup(S1)
    call = start(table, S1, deadline=5.0)
    sends(table)
    assert table.next_timer == 5.0
    table.timeout(4.999)
    assert done(table) == []
    table.timeout(5.0)
    assert done(table) == [(call.id, None, DeadlineExceeded)]
    assert sends(table) == [(S1, F.Kind.CANCEL, call.id)]
    assert table.next_timer is None and table.stats["timeouts"] == 1


def test_returned_call_moves_even_if_not_idempotent() -> None:
    table, _m = setup(S1, S2)
    call = start(table, S1)
    sends(table)
    table.returned(S1, call.frame, False, 1.0)  # NO_PORT: it never started
    assert sends(table) == [(S2, F.Kind.CALL, call.id)]
    assert table.stats["retries"] == 1 and done(table) == []


def test_a_returned_call_tells_which_earlier_calls_were_delivered() -> None:
    """Datagrams to one socket arrive (and come back) in order: when the second call comes
    back, the first was delivered before the socket died, so it is lost (not idempotent)."""
    table, _m = setup(S1, S2)
    first = start(table, S1)
    second = start(table, S1)
    sends(table)
    table.returned(S1, second.frame, False, 1.0)
    assert (S2, F.Kind.CALL, second.id) in sends(table)
    assert done(table) == [(first.id, None, PeerLost)]


def test_node_down_moves_idempotent_calls_and_loses_the_others() -> None:
    table, _m = setup(S1, S2)
    idem = start(table, S1, idempotent=True)
    plain = start(table, S1)
    sends(table)
    table.node_down(S1.node, 1.0)
    assert sends(table) == [(S2, F.Kind.CALL, idem.id)]
    assert done(table) == [(plain.id, None, PeerLost)]
    assert table.stats["failovers"] == 1 and table.stats["peer_lost"] == 1


def test_withdrawal_moves_idempotent_calls_with_a_cancel() -> None:
    table, m = setup(S1, S2)
    call = start(table, S1, idempotent=True)
    sends(table)
    m.withdrawn(ServiceRange(T, 1, 1), S1)
    table.withdrawn(T, S1, 1.0)
    assert sends(table) == [(S1, F.Kind.CANCEL, call.id), (S2, F.Kind.CALL, call.id)]


def test_withdrawal_probes_a_non_idempotent_call_until_the_drain_ends() -> None:
    table, m = setup(S1, S2)
    call = start(table, S1)
    sends(table)
    m.withdrawn(ServiceRange(T, 1, 1), S1)
    table.withdrawn(T, S1, 1.0)
    (dest, kind, cid), = sends(table)
    assert (dest, kind, cid) == (S1, F.Kind.PING, call.id)
    nonce = table._nonce
    table.frame(S1, F.encode_pong(call.id, nonce, True), 1.1)  # in progress: keep waiting
    assert done(table) == [] and table.next_timer == pytest.approx(1.1 + PROBE_INTERVAL_S)
    table.timeout(1.1 + PROBE_INTERVAL_S)
    assert sends(table) == [(S1, F.Kind.PING, call.id)]
    table.frame(S1, reply(call.id, "ok"), 2.5)  # the drain let it finish
    assert done(table) == [(call.id, "ok", None)]


def test_a_pong_that_does_not_know_the_call_loses_it() -> None:
    table, m = setup(S1, S2)
    call = start(table, S1)
    sends(table)
    m.withdrawn(ServiceRange(T, 1, 1), S1)
    table.withdrawn(T, S1, 1.0)
    sends(table)
    table.frame(S1, F.encode_pong(call.id, table._nonce, False), 1.1)
    assert done(table) == [(call.id, None, PeerLost)]


def test_an_undeliverable_ping_means_the_socket_is_gone() -> None:
    table, m = setup(S1, S2)
    call = start(table, S1)
    sends(table)
    m.withdrawn(ServiceRange(T, 1, 1), S1)
    table.withdrawn(T, S1, 1.0)
    sends(table)
    table.returned(S1, F.encode_ping(call.id, table._nonce), False, 1.2)
    assert done(table) == [(call.id, None, PeerLost)]


def test_server_busy_is_never_started_and_moves() -> None:
    table, _m = setup(S1, S2)
    call = start(table, S1)
    sends(table)
    table.frame(S1, F.encode_failure(codec, call.id, Status.SERVER_BUSY, "busy"), 1.0)
    assert sends(table) == [(S2, F.Kind.CALL, call.id)]


def test_attempts_are_bounded() -> None:
    table, _m = setup(S1, S2)
    call = start(table, S1, max_attempts=2)
    table.returned(S1, call.frame, False, 1.0)
    table.returned(S2, call.frame, False, 1.0)
    assert done(table) == [(call.id, None, ServiceUnreachable)]


def test_no_retry_past_the_deadline() -> None:
    table, _m = setup(S1, S2)
    call = start(table, S1, idempotent=True, deadline=2.0)
    sends(table)
    table.node_down(S1.node, 2.0)
    assert sends(table) == [] and done(table) == [(call.id, None, DeadlineExceeded)]


def test_overload_resends_to_the_same_socket_after_a_backoff() -> None:
    table, _m = setup(S1, S2)
    call = start(table, S1)
    sends(table)
    table.returned(S1, call.frame, True, 1.0)
    assert sends(table) == []
    when = table.next_timer
    assert when is not None and 1.0 < when <= 1.01
    table.timeout(when)
    assert sends(table) == [(S1, F.Kind.CALL, call.id)]


def test_wait_ready_parks_until_a_new_instance_is_published() -> None:
    table, m = setup(S1)
    call = start(table, S1, idempotent=True)
    call.wait_ready = True
    sends(table)
    m.node_down(S1.node)
    table.node_down(S1.node, 1.0)
    assert sends(table) == [] and done(table) == [] and call.parked
    m.published(ServiceRange(T, 2, 2), S2)
    table.published(T, 1.5)
    assert sends(table) == [(S2, F.Kind.CALL, call.id)] and not call.parked


def test_abandon_sends_cancel_and_forgets() -> None:
    table, _m = setup(S1)
    call = start(table, S1)
    sends(table)
    table.abandon(call)
    assert sends(table) == [(S1, F.Kind.CANCEL, call.id)] and len(table) == 0
    table.frame(S1, reply(call.id, 1), 1.0)
    assert done(table) == []


def test_a_stream_collects_items_in_order_and_completes() -> None:
    table, _m = setup(S1)
    call = start(table, S1, kind=STREAM)
    sends(table)
    st = call.stream
    assert st is not None
    table.frame(S1, F.encode_stream_item(codec, call.id, 1, "b"), 1.0)
    table.frame(S1, F.encode_stream_item(codec, call.id, 0, "a"), 1.0)
    table.frame(S1, F.encode_stream_end(call.id, 2), 1.0)
    assert st.take() == (True, "a") and st.take() == (True, "b") and st.finished
    assert len(table) == 0


def test_a_delivered_notification_is_forgotten_an_undelivered_one_moves() -> None:
    table, _m = setup(S1, S2)
    note = start(table, S1, kind=ONEWAY)
    sends(table)
    table.returned(S1, note.frame, False, 1.0)
    assert sends(table) == [(S2, F.Kind.CALL, note.id)]
    table.timeout(NOTIFY_RETRY_WINDOW_S + 1)
    assert len(table) == 0 and done(table) == []


def test_close_fails_every_call() -> None:
    table, _m = setup(S1)
    call = start(table, S1)
    sends(table)
    table.close()
    (cid, _v, err), = done(table)
    assert cid == call.id and err is not None and err.__name__ == "ClosedError"
    assert sends(table) == [(S1, F.Kind.CANCEL, call.id)]


def test_timers_of_finished_calls_do_not_pile_up() -> None:
    table, _m = setup(S1)
    for i in range(10_000):
        call = start(table, S1, deadline=1000.0 + i, now=float(i))
        table.frame(S1, reply(call.id, i), float(i))
        table.timeout(float(i))
    assert len(table._timers) < 200 and len(table) == 0
    table.out.sends.clear()
    table.out.done.clear()
    assert table.next_timer is None


def test_a_moved_call_carries_the_deadline_left() -> None:
    table, _m = setup(S1, S2)
    call = start(table, S1, idempotent=True, deadline=10.0, now=0.0)
    assert F.decode_call(codec, call.frame)[3] == pytest.approx(10.0)
    sends(table)
    table.node_down(S1.node, 4.0)
    assert sends(table) == [(S2, F.Kind.CALL, call.id)]
    assert F.decode_call(codec, call.frame)[3] == pytest.approx(6.0)


def test_notifications_remembered_are_bounded() -> None:
    from tipcrpc.rpc.call_table import NOTIFY_MEMORY

    table, _m = setup(S1)
    notes = [start(table, S1, kind=ONEWAY) for _ in range(NOTIFY_MEMORY + 100)]
    sends(table)
    assert len(table) == NOTIFY_MEMORY
    assert notes[0].id not in table.calls and notes[-1].id in table.calls
