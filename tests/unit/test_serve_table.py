"""The server's serve table, without an event loop: validation, deadlines (also when the
client's CANCEL is lost), duplicates, limits, cancellation and drain (DESIGN.md §4a)."""

from __future__ import annotations

from tipcrpc.addr import SocketAddr
from tipcrpc.codec import Codec
from tipcrpc.errors import Status
from tipcrpc.rpc import frames as F
from tipcrpc.rpc.serve_table import CANCELLED, CLIENT_LOST, DEADLINE, SHUTDOWN, ServeTable
from tipcrpc.rpc.service import Service

codec = Codec()
svc = Service("test.unit.serve_table")
C1, C2 = SocketAddr(7, 70), SocketAddr(8, 80)


@svc.method
def add(a: int, b: int) -> int:
    return a + b


@svc.method
async def slow(x: int) -> int:
    return x


def call(cid: int, method: str = "add", args: list | None = None, deadline: float | None = None,
         flags: int = 0, instance: int | None = None, metadata: dict | None = None) -> bytes:  # fmt: skip
    return F.encode_call(codec, cid, svc.type, method, args if args is not None else [1, 2], None, deadline, flags,
                         None, instance, metadata)  # fmt: skip


def failures(table: ServeTable) -> list[tuple[SocketAddr, int, Status]]:
    out = []
    for dest, frame, _imp in table.out.sends:
        if frame[1] == F.Kind.FAILURE:
            out.append((dest, int.from_bytes(frame[8:16], "big"), F.decode_failure(codec, frame)[0]))
    table.out.sends.clear()
    return out


def runs(table: ServeTable, *, suspend: bool = True) -> list:
    """The calls the shell must start; like the shell, report each as suspended (running
    on as a task) unless told it finished inline."""
    out = list(table.out.run)
    table.out.run.clear()
    if suspend:
        for s in out:
            table.suspended(s)
    return out


def test_a_call_runs_and_its_result_is_answered() -> None:
    table = ServeTable(codec, [svc])
    table.frame(C1, call(1), 0.0)
    (s,) = runs(table, suspend=False)  # a sync handler: answered inline, never tracked
    assert (s.source, s.cid, s.args) == (C1, 1, [1, 2]) and not table.active
    table.result(s, 3)
    ((dest, frame, _imp),) = table.out.sends
    assert dest == C1 and frame[1] == F.Kind.REPLY and F.decode_value(codec, frame) == 3
    assert table.idle and table.stats["completed"] == 1


def test_the_server_enforces_the_deadline_it_received_even_if_cancel_is_lost() -> None:
    table = ServeTable(codec, [svc])
    table.frame(C1, call(1, "slow", [1], deadline=0.25), 100.0)  # 0.25 s left, on this clock
    (s,) = runs(table)
    assert s.deadline == 100.25 and table.next_timer == 100.25
    table.timeout(100.2)
    assert table.out.cancel == []
    table.timeout(100.25)  # no CANCEL came from the client: the table acts on its own
    assert table.out.cancel == [s] and s.reason == DEADLINE
    table.out.cancel.clear()
    table.cancelled(s)
    assert failures(table) == [(C1, 1, Status.DEADLINE_EXCEEDED)]
    assert table.stats["deadline_exceeded"] == 1 and table.idle


def test_a_call_whose_deadline_passed_on_the_way_never_runs() -> None:
    table = ServeTable(codec, [svc])
    table.frame(C1, call(1, deadline=0.0), 5.0)
    assert runs(table) == [] and failures(table) == [(C1, 1, Status.DEADLINE_EXCEEDED)]


def test_a_duplicate_of_a_call_in_progress_runs_once() -> None:
    table = ServeTable(codec, [svc])
    table.frame(C1, call(1, "slow", [1]), 0.0)
    assert len(runs(table)) == 1  # started; it suspended and runs on as a task
    table.frame(C1, call(1, "slow", [1]), 0.1)  # the same call id from the same socket
    assert runs(table) == [] and table.stats["received"] == 1
    table.frame(C2, call(1, "slow", [1]), 0.1)  # another client's call 1 is another call
    assert len(runs(table)) == 1


def test_cancel_from_the_client() -> None:
    table = ServeTable(codec, [svc])
    table.frame(C1, call(1, "slow", [1]), 0.0)
    (s,) = runs(table)
    table.frame(C1, F.encode_cancel(1), 0.1)
    assert table.out.cancel == [s] and s.reason == CANCELLED
    table.out.cancel.clear()
    table.cancelled(s)
    assert failures(table) == []  # the client asked: nothing to answer


def test_limits_backlog_and_busy() -> None:
    table = ServeTable(codec, [svc], max_concurrency=1, max_queued=1)
    table.frame(C1, call(1, "slow", [1]), 0.0)
    table.frame(C1, call(2, "slow", [2], deadline=1.0), 0.0)
    table.frame(C1, call(3, "slow", [3]), 0.0)
    (first,) = runs(table)
    assert failures(table) == [(C1, 3, Status.SERVER_BUSY)]
    table.timeout(1.0)  # the queued call's deadline passes before it starts
    assert failures(table) == [(C1, 2, Status.DEADLINE_EXCEEDED)] and table.out.cancel == []
    table.frame(C1, call(4, "slow", [4]), 1.0)
    table.result(first, 1)
    table.out.sends.clear()
    (nxt,) = runs(table)
    assert nxt.cid == 4


def test_validation_answers_are_typed() -> None:
    table = ServeTable(codec, [svc])
    table.frame(C1, call(1, "nope"), 0.0)
    table.frame(C1, call(2, "add", ["x"]), 0.0)
    table.frame(C1, call(3, "add", flags=int(F.Flag.STREAM)), 0.0)
    table.frame(C1, F.encode_call(codec, 4, 999_999, "add", [], None, None), 0.0)
    table.frame(C1, F.HEADER.pack(F.VERSION, F.Kind.CALL, 0, 0, svc.type, 5) + b"\xc1", 0.0)
    assert failures(table) == [
        (C1, 1, Status.METHOD_NOT_FOUND),
        (C1, 2, Status.INVALID_ARGUMENTS),
        (C1, 3, Status.INVALID_ARGUMENTS),
        (C1, 4, Status.METHOD_NOT_FOUND),
        (C1, 5, Status.PROTOCOL_ERROR),
    ]
    assert runs(table) == []


def test_notifications_are_never_answered_but_reported() -> None:
    table = ServeTable(codec, [svc])
    warning = table.frame(C1, call(1, "nope", flags=int(F.Flag.ONEWAY)), 0.0)
    assert warning is not None and "nope" in warning and failures(table) == []


def test_drain_refuses_calls_runs_notifications_until_closing() -> None:
    table = ServeTable(codec, [svc])
    table.drain()
    table.frame(C1, call(1), 0.0)
    assert failures(table) == [(C1, 1, Status.SHUTTING_DOWN)]
    table.frame(C1, call(2, flags=int(F.Flag.ONEWAY)), 0.0)
    assert len(runs(table)) == 1
    table.close()
    table.frame(C1, call(3, flags=int(F.Flag.ONEWAY)), 0.0)
    assert failures(table) == [(C1, 3, Status.SHUTTING_DOWN)]  # so the client re-sends it


def test_shutdown_and_lost_clients_cancel() -> None:
    table = ServeTable(codec, [svc])
    table.frame(C1, call(1, "slow", [1]), 0.0)
    table.frame(C2, call(2, "slow", [2]), 0.0)
    a, b = runs(table)
    table.node_down(C2.node)
    assert table.out.cancel == [b] and b.reason == CLIENT_LOST
    table.out.cancel.clear()
    table.shutdown()
    assert table.out.cancel == [a] and a.reason == SHUTDOWN
    table.out.cancel.clear()
    table.cancelled(a)
    assert failures(table) == [(C1, 1, Status.CANCELLED)]


def test_the_context_fields_travel() -> None:
    table = ServeTable(codec, [svc], instance_of={svc.type: 9})
    table.frame(C1, call(1, instance=5, metadata={"trace": "t1"}), 0.0)
    table.frame(C1, call(2), 0.0)
    a, b = runs(table)
    assert (a.instance, a.metadata) == (5, {"trace": "t1"})
    assert (b.instance, b.metadata) == (9, None)


def test_an_unencodable_result_is_reported_as_such() -> None:
    table = ServeTable(codec, [svc])
    table.frame(C1, call(1), 0.0)
    (s,) = runs(table)
    table.result(s, object())
    ((_dest, _cid, status),) = failures(table)
    assert status != Status.PROTOCOL_ERROR


def test_a_codec_error_raised_by_the_handler_is_an_application_error() -> None:
    from tipcrpc.errors import CodecError

    table = ServeTable(codec, [svc])
    table.frame(C1, call(1), 0.0)
    (s,) = runs(table, suspend=False)
    table.error(s, CodecError("inner call failed"))
    ((_dest, frame, _imp),) = table.out.sends
    status, message, details = F.decode_failure(codec, frame)
    assert status == Status.APPLICATION_ERROR and "result cannot be encoded" not in message
    assert details["type"] == "tipcrpc.errors.CodecError"
