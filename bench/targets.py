"""The performance targets (issue "Benchmarks"), evaluated on a raw results JSON.

Per tipcrpc row on a real transport, same event loop and same CPU placement:

* sequential ``add(1, 2)`` p50 ≤ 1.3 × the raw event-loop echo p50 on the same transport;
* 64 concurrent callers: calls/s ≥ 0.8 × the raw event-loop echo's;
* p50 at least 3× lower than Pyro5's, 10× lower than pyzmq asyncio's, 20× lower than gRPC aio's.

The in-process ``memory`` row has no floor and is reported in absolute terms only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

#: The raw event-loop floor under each tipcrpc transport.
FLOORS = {"tipcrpc-user": "raw-udp", "tipcrpc-kernel": "raw-tipc-rdm"}
SEQ_MAX_RATIO = 1.3
CONC_MIN_RATIO = 0.8
PEER_FACTORS = (("pyro5", 3.0), ("zmq", 10.0), ("grpc", 20.0))


@dataclass(frozen=True)
class Target:
    system: str
    variant: str
    placement: str
    name: str  # short id: seq-floor | conc-floor | vs-pyro5 | vs-zmq | vs-grpc
    label: str
    ratio: Optional[float]
    bound: str
    status: str  # pass | miss | n/a
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Key = tuple[str, str, str, str, Optional[int]]


def index(cells: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    return {(c["system"], c["variant"], c["placement"], c["workload"], c.get("size")): c for c in cells}


def _p50(c: Optional[dict[str, Any]]) -> Optional[float]:
    return c["pooled"]["p50"] if c and c.get("status") == "ok" else None


def _rate(c: Optional[dict[str, Any]]) -> Optional[float]:
    return c["rate"]["median"] if c and c.get("status") == "ok" and "rate" in c else None


def _why(c: Optional[dict[str, Any]], what: str) -> str:
    if c is None:
        return f"{what} not measured in this run"
    return f"{what}: {c.get('reason', c.get('status'))}"


def evaluate(raw: dict[str, Any]) -> list[Target]:
    """Every target for every tipcrpc row with a floor, in a stable order."""
    idx = index(raw.get("cells", []))
    rows = sorted({(k[0], k[1], k[2]) for k in idx if k[0] in FLOORS and k[3] == "seq"})
    out: list[Target] = []
    for system, variant, placement in rows:
        seq = idx.get((system, variant, placement, "seq", None))
        conc = idx.get((system, variant, placement, "conc", None))
        p50, rate = _p50(seq), _rate(conc)
        floor = FLOORS[system]
        fseq = idx.get((floor, variant, placement, "seq", None))
        fconc = idx.get((floor, variant, placement, "conc", None))

        def add(name: str, label: str, mine: Optional[float], other: Optional[float], bound: str,
                ok: Any, why: str) -> None:
            if mine is None or other is None:
                out.append(Target(system, variant, placement, name, label, None, bound, "n/a", why))
                return
            ratio = ok[0](mine, other)
            out.append(Target(system, variant, placement, name, label, ratio, bound,
                              "pass" if ok[1](ratio) else "miss"))

        fl = f"{floor}/{variant}"
        add("seq-floor", f"seq p50 / {fl} p50", p50, _p50(fseq), f"≤ {SEQ_MAX_RATIO}",
            (lambda m, o: m / o, lambda r: r <= SEQ_MAX_RATIO),
            _why(seq, "tipcrpc") if p50 is None else _why(fseq, fl))
        add("conc-floor", f"conc64 calls/s / {fl} calls/s", rate, _rate(fconc), f"≥ {CONC_MIN_RATIO}",
            (lambda m, o: m / o, lambda r: r >= CONC_MIN_RATIO),
            _why(conc, "tipcrpc") if rate is None else _why(fconc, fl))
        for peer, factor in PEER_FACTORS:
            pv = "sync" if peer == "pyro5" else variant
            pc = idx.get((peer, pv, placement, "seq", None))
            why = _why(seq, "tipcrpc") if p50 is None else (
                "peers are measured on the host run only" if pc is None and raw.get("mode") == "guest"
                else _why(pc, f"{peer}/{pv}"))
            add(f"vs-{peer}", f"{peer}/{pv} p50 / seq p50", p50, _p50(pc), f"≥ {factor:g}",
                (lambda m, o: o / m, lambda r, f=factor: r >= f), why)
    return out


def missed_rows(raw: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(system, variant, placement) of rows that miss at least one target."""
    seen: list[tuple[str, str, str]] = []
    for t in evaluate(raw):
        k = (t.system, t.variant, t.placement)
        if t.status == "miss" and k not in seen:
            seen.append(k)
    return seen
