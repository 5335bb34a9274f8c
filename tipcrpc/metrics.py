"""Per-method call metrics and their Prometheus text rendering (layer L1, pure).

A :class:`Metrics` table counts, per ``(service, method)``, the calls that finished, how
many failed (by error name) and how long they took, in a fixed-bucket histogram. It reads
no clock: the caller measures the duration and passes it to :meth:`Metrics.record`, so the
table is tested without an event loop and costs one dict lookup and a bucket search per
call.

:func:`render_prometheus` turns one or more tables into the Prometheus text exposition
format (version 0.0.4), the format every scraper understands::

    # HELP tipcrpc_server_calls_total Calls finished, per method.
    # TYPE tipcrpc_server_calls_total counter
    tipcrpc_server_calls_total{service="demo.calc",method="add"} 3
    ...
    # TYPE tipcrpc_server_latency_seconds histogram
    tipcrpc_server_latency_seconds_bucket{service="demo.calc",method="add",le="0.001"} 3
    ...

Labels are escaped as the format requires (backslash, double quote, newline).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Iterable, Mapping

__all__ = ["DEFAULT_BUCKETS", "MethodMetrics", "Metrics", "render_prometheus"]

#: Upper bounds (seconds) of the latency buckets: 100 µs to 10 s, roughly ×2.5 per step.
#: An RPC on one host takes tens of µs; across a link, a few hundred µs; a handler that
#: waits on something else, anything up to its deadline.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class MethodMetrics:
    """Counts and a latency histogram for one method (slots: one per method, not per call)."""

    __slots__ = ("calls", "errors", "by_error", "counts", "sum_seconds", "_bounds", "_first")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.calls = 0
        self.errors = 0
        #: error name (exception type or status) -> count
        self.by_error: dict[str, int] = {}
        #: one count per bucket, plus the last for +Inf (not cumulative; rendering sums them)
        self.counts = [0] * (len(bounds) + 1)
        self.sum_seconds = 0.0
        self._bounds = bounds
        self._first = bounds[0]

    def add(self, seconds: float, error: str | None = None) -> None:
        """One call finished after ``seconds``; ``error`` names its failure, ``None`` if it succeeded."""
        self.calls += 1
        self.sum_seconds += seconds
        # Most calls fall in the first bucket (an RPC on one host takes tens of µs): one
        # comparison instead of a search.
        self.counts[0 if seconds <= self._first else bisect_left(self._bounds, seconds)] += 1
        if error is not None:
            self.errors += 1
            self.by_error[error] = self.by_error.get(error, 0) + 1

    def as_dict(self, bounds: tuple[float, ...]) -> dict[str, Any]:
        """Plain data: ``calls``, ``errors``, ``by_error``, ``sum_seconds`` and cumulative
        ``buckets`` as ``[[upper_bound, count], ...]`` ending with ``["+Inf", calls]``."""
        cumulative, acc = [], 0
        for bound, n in zip((*bounds, "+Inf"), self.counts):
            acc += n
            cumulative.append([bound, acc])
        return {"calls": self.calls, "errors": self.errors, "by_error": dict(self.by_error),
                "sum_seconds": self.sum_seconds, "buckets": cumulative}  # fmt: skip


class Metrics:
    """Per-method metrics of one server or client.

    ``role`` (``"server"`` or ``"client"``) names the Prometheus metric family;
    ``buckets`` are the histogram's upper bounds in seconds, increasing.
    """

    def __init__(self, role: str, buckets: Iterable[float] = DEFAULT_BUCKETS) -> None:
        bounds = tuple(float(b) for b in buckets)
        if not bounds or any(b <= 0 for b in bounds) or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"buckets must be positive and strictly increasing, got {bounds!r}")
        if not role.isidentifier():
            raise ValueError(f"role must be an identifier such as 'server', got {role!r}")
        self.role = role
        self.bounds = bounds
        self._methods: dict[tuple[Any, str], MethodMetrics] = {}

    def record(self, key: tuple[Any, str], seconds: float, error: str | None = None) -> None:
        """One call of ``key = (service, method)`` finished after ``seconds``; ``error``
        names its failure (an exception type or status name), ``None`` if it succeeded.
        ``service`` is whatever :meth:`label` turns into the service's name (the server
        records names; a client records type numbers, named only when read)."""
        self.method(key).add(seconds, error)

    def method(self, key: tuple[Any, str]) -> MethodMetrics:
        """The metrics of ``key = (service, method)``, created on first use: a shell may keep
        it and :meth:`MethodMetrics.add` to it directly (one dict lookup less per call)."""
        m = self._methods.get(key)
        if m is None:
            m = self._methods[key] = MethodMetrics(self.bounds)
        return m

    def label(self, service: Any) -> str:
        """The service name for a recorded ``service`` key (here: the key itself)."""
        return str(service)

    def get(self, service: str, method: str) -> MethodMetrics | None:
        """The metrics of one method (by service name), if it was called."""
        for (s, m), mm in self._methods.items():
            if m == method and self.label(s) == service:
                return mm
        return None

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """``{"service.method": MethodMetrics.as_dict(), ...}`` sorted by name (for
        ``statistics()`` and ``--json``)."""
        return {f"{s}.{m}": mm.as_dict(self.bounds) for s, m, mm in self.items()}

    def items(self) -> list[tuple[str, str, MethodMetrics]]:
        """``(service name, method, metrics)`` sorted by service then method."""
        return sorted(((self.label(s), m, mm) for (s, m), mm in self._methods.items()), key=lambda r: r[:2])


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def render_prometheus(tables: Iterable[Metrics], gauges: Mapping[str, float] | None = None) -> str:
    """The Prometheus text format for ``tables`` (tables of the same role are merged into
    one family, their samples told apart by nothing: pass one table per role and process),
    plus optional untyped ``gauges`` ``{name: value}`` (names must be valid metric names)."""
    by_role: dict[str, list[Metrics]] = {}
    for t in tables:
        by_role.setdefault(t.role, []).append(t)
    lines: list[str] = []
    for role, group in sorted(by_role.items()):
        prefix = f"tipcrpc_{role}"
        rows = [(s, m, mm, t.bounds) for t in group for s, m, mm in t.items()]
        lines += [f"# HELP {prefix}_calls_total Calls finished, per method.", f"# TYPE {prefix}_calls_total counter"]
        for s, m, mm, _b in rows:
            lines.append(f'{prefix}_calls_total{{service="{_label(s)}",method="{_label(m)}"}} {mm.calls}')
        lines += [f"# HELP {prefix}_errors_total Calls that failed, per method and error.",
                  f"# TYPE {prefix}_errors_total counter"]  # fmt: skip
        for s, m, mm, _b in rows:
            for err, n in sorted(mm.by_error.items()):
                lines.append(f'{prefix}_errors_total{{service="{_label(s)}",method="{_label(m)}",'
                             f'error="{_label(err)}"}} {n}')  # fmt: skip
        lines += [f"# HELP {prefix}_latency_seconds Call duration, per method.",
                  f"# TYPE {prefix}_latency_seconds histogram"]  # fmt: skip
        for s, m, mm, bounds in rows:
            labels = f'service="{_label(s)}",method="{_label(m)}"'
            acc = 0
            for bound, n in zip((*bounds, None), mm.counts):
                acc += n
                le = "+Inf" if bound is None else _num(bound)
                lines.append(f'{prefix}_latency_seconds_bucket{{{labels},le="{le}"}} {acc}')
            lines.append(f"{prefix}_latency_seconds_sum{{{labels}}} {mm.sum_seconds!r}")
            lines.append(f"{prefix}_latency_seconds_count{{{labels}}} {mm.calls}")
    for name, value in sorted((gauges or {}).items()):
        lines += [f"# TYPE {name} gauge", f"{name} {_num(float(value))}"]
    return "\n".join(lines) + "\n"
