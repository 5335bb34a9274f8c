"""Per-method metrics, the Prometheus rendering and the log throttle (pure, no loop)."""

from __future__ import annotations

import pytest

from tipcrpc.logs import Throttle
from tipcrpc.metrics import Metrics, render_prometheus


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
