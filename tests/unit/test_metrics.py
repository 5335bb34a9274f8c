"""Per-method metrics (server and client), the Prometheus rendering, the log throttle and the
client's failover lines (pure, no loop)."""

from __future__ import annotations

import logging

import pytest

from tipcrpc.addr import Importance, SocketAddr
from tipcrpc.client_metrics import FAILOVER_LOG_INTERVAL_S, ClientMetrics
from tipcrpc.errors import PeerLost, ServerBusy
from tipcrpc.logs import Throttle
from tipcrpc.metrics import Metrics, render_prometheus
from tipcrpc.rpc.call_table import ONEWAY, Call, Outbox


def test_record_counts_errors_and_buckets() -> None:
    m = Metrics("server", buckets=(0.001, 0.01, 0.1))
    key = ("demo.calc", "add")
    m.record(key, 0.0005)
    m.record(key, 0.001)  # on a bound: counted in that bucket (le = "less or equal")
    m.record(key, 0.05, "KeyError")
    m.record(key, 3.0, "DeadlineExceeded")
    mm = m.get("demo.calc", "add")
    assert mm is not None
    assert (mm.calls, mm.errors) == (4, 2)
    assert mm.by_error == {"KeyError": 1, "DeadlineExceeded": 1}
    assert mm.counts == [2, 0, 1, 1]
    snap = m.snapshot()["demo.calc.add"]
    assert snap["buckets"] == [[0.001, 2], [0.01, 2], [0.1, 3], ["+Inf", 4]]
    assert snap["sum_seconds"] == pytest.approx(3.0515)
    assert m.get("demo.calc", "nope") is None


def test_bad_buckets_and_role_are_refused() -> None:
    for bad in ((), (0.1, 0.01), (0.0, 1.0), (1.0, 1.0)):
        with pytest.raises(ValueError, match="increasing"):
            Metrics("server", buckets=bad)
    with pytest.raises(ValueError, match="identifier"):
        Metrics("my server")


def test_prometheus_text_is_exact() -> None:
    m = Metrics("server", buckets=(0.001, 0.5))
    m.record(("demo.calc", "add"), 0.0002)
    m.record(("demo.calc", "add"), 0.25, "ValueError")
    m.record(('we"ird\\', "m\nx"), 1.0)
    text = render_prometheus([m], gauges={"tipcrpc_server_active": 2})
    assert text == (
        "# HELP tipcrpc_server_calls_total Calls finished, per method.\n"
        "# TYPE tipcrpc_server_calls_total counter\n"
        'tipcrpc_server_calls_total{service="demo.calc",method="add"} 2\n'
        'tipcrpc_server_calls_total{service="we\\"ird\\\\",method="m\\nx"} 1\n'
        "# HELP tipcrpc_server_errors_total Calls that failed, per method and error.\n"
        "# TYPE tipcrpc_server_errors_total counter\n"
        'tipcrpc_server_errors_total{service="demo.calc",method="add",error="ValueError"} 1\n'
        "# HELP tipcrpc_server_latency_seconds Call duration, per method.\n"
        "# TYPE tipcrpc_server_latency_seconds histogram\n"
        'tipcrpc_server_latency_seconds_bucket{service="demo.calc",method="add",le="0.001"} 1\n'
        'tipcrpc_server_latency_seconds_bucket{service="demo.calc",method="add",le="0.5"} 2\n'
        'tipcrpc_server_latency_seconds_bucket{service="demo.calc",method="add",le="+Inf"} 2\n'
        'tipcrpc_server_latency_seconds_sum{service="demo.calc",method="add"} 0.2502\n'
        'tipcrpc_server_latency_seconds_count{service="demo.calc",method="add"} 2\n'
        'tipcrpc_server_latency_seconds_bucket{service="we\\"ird\\\\",method="m\\nx",le="0.001"} 0\n'
        'tipcrpc_server_latency_seconds_bucket{service="we\\"ird\\\\",method="m\\nx",le="0.5"} 0\n'
        'tipcrpc_server_latency_seconds_bucket{service="we\\"ird\\\\",method="m\\nx",le="+Inf"} 1\n'
        'tipcrpc_server_latency_seconds_sum{service="we\\"ird\\\\",method="m\\nx"} 1.0\n'
        'tipcrpc_server_latency_seconds_count{service="we\\"ird\\\\",method="m\\nx"} 1\n'
        "# TYPE tipcrpc_server_active gauge\n"
        "tipcrpc_server_active 2\n"
    )


def test_throttle_allows_one_message_per_interval_and_counts_the_rest() -> None:
    t = Throttle(interval=10.0)
    assert t.allow(100.0) == 0
    assert t.allow(101.0) is None
    assert t.allow(109.9) is None
    assert t.allow(110.0) == 2  # two held back since the last message
    assert t.allow(115.0) is None
    assert t.allow(200.0) == 1


def _call(cid: int, method: str, kind: int = 0, started: float = 0.0) -> Call:
    call = Call(cid, kind, 4242, method, b"", True, Importance.LOW, None, None)
    call.started = started
    return call


def test_client_metrics_record_finished_calls_by_type_and_name_them_when_read() -> None:
    meta = {("demo.calc", "add"): (4242, "demo.calc", False, Importance.LOW, 0),
            (4242, "add"): (4242, "4242", False, Importance.LOW, 0)}  # fmt: skip
    m = ClientMetrics(meta, buckets=(0.001, 0.01))
    out = Outbox()
    out.done = [(_call(1, "add", started=10.0), 3, None), (_call(2, "add", started=9.995), None, PeerLost("x")),
                (_call(3, "note", kind=ONEWAY, started=9.0), None, PeerLost("y"))]  # fmt: skip
    m.observe(out, 10.0)
    assert len(out.done) == 3  # the shell still completes them
    assert m.snapshot() == {"demo.calc.add": {"calls": 2, "errors": 1, "by_error": {"PeerLost": 1},
                                              "sum_seconds": pytest.approx(0.005),
                                              "buckets": [[0.001, 1], [0.01, 2], ["+Inf", 2]]}}  # fmt: skip


def test_client_failover_lines_are_one_per_batch_and_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    m = ClientMetrics({("demo.calc", "get"): (4242, "demo.calc", True, Importance.LOW, 0)})
    a, b, c = SocketAddr(1, 10), SocketAddr(2, 20), SocketAddr(3, 30)

    def batch(now: float, *moves: tuple[int, SocketAddr, SocketAddr, BaseException | None]) -> Outbox:
        out = Outbox()
        out.moved = [(_call(cid, "get"), src, dest, refusal) for cid, src, dest, refusal in moves]
        m.observe(out, now)
        assert out.moved == []
        return out

    with caplog.at_level(logging.INFO, logger="tipcrpc.client"):
        batch(100.0, (1, a, b, None), (2, a, c, None), (3, b, c, ServerBusy("busy")))
        batch(100.5, (4, b, c, None))  # within FAILOVER_LOG_INTERVAL_S of the last line: counted only
        batch(100.9, (5, b, c, None), (6, b, c, None))
        batch(100.0 + FAILOVER_LOG_INTERVAL_S, (7, c, a, None))
    assert [r.getMessage() for r in caplog.records] == [
        "failover: 2 calls of demo.calc.get from <00000001:10> to <00000002:20>, <00000003:30> (its instance was "
        "lost or withdrawn); 1 call of demo.calc.get from <00000002:20> to <00000003:30> (refused: server_busy)",
        "failover: 1 call of demo.calc.get from <00000003:30> to <00000001:10> (its instance was lost or withdrawn) "
        "(3 earlier moves not logged)",
    ]
    assert {r.levelno for r in caplog.records} == {logging.INFO}
