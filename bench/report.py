"""Render ``results.md`` (Markdown tables) and ``results.png`` (chart) from the raw JSON.

Inputs in the results directory: ``raw-host.json`` (``python -m bench``) and, when present,
``raw-guest.json`` (``python -m bench --guest`` inside the ktipc guest), which becomes its own
section: guest timings are only comparable with other guest timings. ``findings.md``, when
present, is included verbatim as the hand-written analysis of the profiles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Optional

from bench import targets

PLACEMENT_NAMES = {"same-cpu": "same CPU", "split": "split CPUs", "in-process": "in-process"}
SIZE_NAMES = {32: "32 B", 1024: "1 KiB", 16384: "16 KiB", 65536: "64 KiB", 1048576: "1 MiB", 16777216: "16 MiB"}
SYSTEM_NAMES = {
    "raw-udp": "raw UDP loopback", "raw-unix-dgram": "raw Unix dgram", "raw-unix-seqpacket": "raw Unix seqpacket",
    "raw-tcp": "raw TCP loopback", "raw-tipc-rdm": "raw AF_TIPC RDM", "tipcrpc-memory": "tipcrpc memory (in-process)",
    "tipcrpc-user": "tipcrpc user (UDP)", "tipcrpc-kernel": "tipcrpc kernel", "pyro5": "Pyro5 (msgpack)",
    "zmq": "pyzmq asyncio", "grpc": "grpc aio",
}
ORDER = ["raw-udp", "raw-tipc-rdm", "raw-unix-dgram", "raw-unix-seqpacket", "raw-tcp", "tipcrpc-memory",
         "tipcrpc-user", "tipcrpc-kernel", "pyro5", "zmq", "grpc"]
VARIANT_ORDER = ["blocking", "sync", "asyncio", "uvloop"]


def fmt_us(v: Optional[float]) -> str:
    if v is None:
        return "–"
    if v >= 10_000:
        return f"{v / 1000:,.1f} ms"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_rate(v: Optional[float]) -> str:
    return "–" if v is None else f"{v:,.0f}"


def partial_mark(c: dict[str, Any]) -> str:
    """A dagger on figures from which some rounds failed (listed under "Failed rounds")."""
    return " †" if c.get("errors") else ""


def failed_rounds_md(raw: dict[str, Any]) -> Optional[str]:
    rows = [c for c in raw.get("cells", []) if c.get("status") == "ok" and c.get("errors")]
    if not rows:
        return None
    t = Table(["row", "loop", "placement", "workload", "rounds kept", "failure"])
    for c in rows:
        for e in c["errors"]:
            t.add([_name(c["system"]), c["variant"], PLACEMENT_NAMES.get(c["placement"], c["placement"]),
                   c["workload"] + (f" {SIZE_NAMES.get(c['size'], c['size'])}" if c.get("size") else ""),
                   str(c.get("rounds")), str(e).replace("|", "/")[:160]])
    return t.render()


def short_reason(c: dict[str, Any]) -> str:
    word = "n/a" if c.get("status") == "na" else "error"
    r = str(c.get("reason", "")).replace("|", "/")
    return f"{word} ({r[:90]}{'…' if len(r) > 90 else ''})"


class Table:
    def __init__(self, header: list[str]) -> None:
        self.header = header
        self.rows: list[list[str]] = []

    def add(self, row: list[str]) -> None:
        self.rows.append(row)

    def render(self) -> str:
        out = ["| " + " | ".join(self.header) + " |", "|" + "|".join("---" for _ in self.header) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(out)


class View:
    """Indexed access to one raw results file."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.idx = targets.index(raw.get("cells", []))
        self.rows = sorted({(k[0], k[1]) for k in self.idx},
                           key=lambda r: (ORDER.index(r[0]) if r[0] in ORDER else 99,
                                          VARIANT_ORDER.index(r[1]) if r[1] in VARIANT_ORDER else 9))
        # In-process rows (one process on one CPU) are shown in the "same CPU" columns.
        self.placements = [p for p in ("same-cpu", "split") if any(k[2] == p for k in self.idx)] or \
            [p for p in ("in-process",) if any(k[2] == p for k in self.idx)]

    def get(self, system: str, variant: str, placement: str, workload: str,
            size: Optional[int] = None) -> Optional[dict[str, Any]]:
        c = self.idx.get((system, variant, placement, workload, size))
        if c is None and placement == self.placements[0]:
            c = self.idx.get((system, variant, "in-process", workload, size))
        return c

    def rows_with(self, workload: str) -> list[tuple[str, str]]:
        return [r for r in self.rows if any(k[0] == r[0] and k[1] == r[1] and k[3] == workload for k in self.idx)]

    def row_placements(self, system: str, variant: str) -> list[str]:
        return [p for p in self.placements if self.get(system, variant, p, "seq") is not None
                or any(k[:3] == (system, variant, p) for k in self.idx)]


def _name(system: str) -> str:
    return SYSTEM_NAMES.get(system, system)


def _latency_cells(c: Optional[dict[str, Any]], with_rate: bool) -> list[str]:
    n = 4 if with_rate else 3
    if c is None:
        return ["–"] * n
    if c["status"] != "ok":
        return [short_reason(c)] + [""] * (n - 1)
    rp = c["round_p50"]
    cells = [fmt_us(c["pooled"]["p50"]) + partial_mark(c), f"{fmt_us(rp['min'])}–{fmt_us(rp['max'])}",
             fmt_us(c["pooled"]["p99"])]
    if with_rate:
        cells.append(fmt_rate(c.get("rate", {}).get("median")))
    return cells


def seq_table(v: View, workload: str = "seq", with_rate: bool = True) -> str:
    pls = [p for p in v.placements]
    header = ["system", "loop"]
    for p in pls:
        pn = PLACEMENT_NAMES[p]
        header += [f"{pn} p50", "round p50 min–max", "p99"] + (["calls/s"] if with_rate else [])
    t = Table(header)
    for system, variant in v.rows_with(workload):
        row = [_name(system), variant]
        for p in pls:
            row += _latency_cells(v.get(system, variant, p, workload), with_rate)
        t.add(row)
    return t.render()


def conc_table(v: View) -> str:
    header = ["system", "loop"]
    for p in v.placements:
        pn = PLACEMENT_NAMES[p]
        header += [f"{pn} calls/s", "round min–max", "p50 µs", "p99 µs"]
    t = Table(header)
    for system, variant in v.rows_with("conc"):
        row = [_name(system), variant]
        for p in v.placements:
            c = v.get(system, variant, p, "conc")
            if c is None:
                row += ["–"] * 4
            elif c["status"] != "ok":
                row += [short_reason(c), "", "", ""]
            else:
                r = c.get("rate", {})
                row += [fmt_rate(r.get("median")) + partial_mark(c), f"{fmt_rate(r.get('min'))}–{fmt_rate(r.get('max'))}",
                        fmt_us(c["pooled"]["p50"]), fmt_us(c["pooled"]["p99"])]
        t.add(row)
    return t.render()


def payload_table(v: View, placement: str) -> Optional[str]:
    sizes = sorted({k[4] for k in v.idx if k[3] == "payload" and k[4] is not None})
    rows = [r for r in v.rows_with("payload") if placement in v.row_placements(*r)]
    if not rows:
        return None
    t = Table(["system", "loop"] + [SIZE_NAMES.get(s, f"{s} B") for s in sizes])
    for system, variant in rows:
        whole = v.get(system, variant, placement, "payload")  # row-level n/a or error
        row = [_name(system), variant]
        last = ""
        for s in sizes:
            c = v.get(system, variant, placement, "payload", s)
            if c is None and whole is not None and whole["status"] != "ok":
                row.append(short_reason(whole) if s == sizes[0] else "")
            elif c is None:
                row.append("–")
            elif c["status"] != "ok":
                text = short_reason(c)
                row.append(text if text != last else "″")  # same reason as the size before
                last = text
            else:
                row.append(f"{fmt_us(c['pooled']['p50'])} ({fmt_us(c['pooled']['p99'])}){partial_mark(c)}")
        t.add(row)
    return t.render()


def failover_table(raw: dict[str, Any]) -> Optional[str]:
    cells = raw.get("failover") or []
    if not cells:
        return None
    t = Table(["transport", "loop", "placement", "kills", "p50 ms", "min ms", "max ms"])
    for c in cells:
        row = [_name(c["system"]), c["variant"], PLACEMENT_NAMES.get(c["placement"], c["placement"])]
        if c["status"] != "ok":
            row += [str(c.get("reps", "")), short_reason(c), "", ""]
        else:
            p = c["pooled"]
            row += [str(p["n"]), f"{p['p50'] / 1e3:.2f}", f"{p['min'] / 1e3:.2f}", f"{p['max'] / 1e3:.2f}"]
        t.add(row)
    return t.render()


def scale_table(raw: dict[str, Any]) -> Optional[str]:
    """The scale scenario (bench/scale.py): seconds per phase and bytes per publication."""
    rows = raw.get("scale") or []
    if not rows:
        return None
    t = Table(["names", "publish → all seen s", "withdraw → all seen s", "total s", "target ≤ 5 s (100 000)",
               "publisher calls s (publish / withdraw)", "CPU s (publisher / observer)", "table B/publ.",
               "RSS B/publ. (observer / publisher)"])
    for r in rows:
        n = r.get("n")
        if "total_s" not in r:
            t.add([f"{n:,}", f"n/a ({(r.get('error') or r.get('na') or '')[:90]})", "", "", "", "", "", "", ""])
            continue
        verdict = ("✅ pass" if r["total_s"] <= 5.0 else "❌ miss") if n == 100_000 else ""
        rss = r["rss_per_publication"]
        t.add([f"{n:,}", f"{r['publish_s']:.2f}", f"{r['withdraw_s']:.2f}", f"{r['total_s']:.2f}", verdict,
               f"{r['publish_calls_s']:.2f} / {r['withdraw_calls_s']:.2f}",
               f"{r['cpu_s']['publisher']:.2f} / {r['cpu_s']['observer']:.2f}",
               f"{r['table_bytes_per_publication']:.0f}", f"{rss['observer']:.0f} / {rss['publisher']:.0f}"])
    r0 = rows[0]
    run = raw.get("scale_run") or raw
    la = run.get("loadavg_start")
    note = (f"One userspace node publishes `{{{hex(0x5CA1E)}, i}}` for i < N with one `await ep.publish()` "
            f"each, a second node's `SubFilter.PORTS` subscription counts N `Published` events; then the same "
            f"for `withdraw` and `Withdrawn` (bench/scale.py). {r0.get('loop', '')} loop, {PLACEMENT_NAMES.get(r0.get('placement'), r0.get('placement'))}"
            f"; commit `{run.get('commit')}`" + (f", load average {la[0]:.1f} at start" if la else "") + ". "
            "*table B/publ.*: what a bare NameTable allocates per remote publication (tracemalloc); "
            "*RSS*: growth of each process's resident set while it holds the names (an upper bound).")
    return note + "\n\n" + t.render()


def targets_table(raw: dict[str, Any]) -> tuple[str, int, int]:
    ts = targets.evaluate(raw)
    t = Table(["tipcrpc row", "loop", "placement", "target", "ratio", "bound", "result"])
    passed = missed = 0
    for x in ts:
        res = {"pass": "✅ pass", "miss": "❌ miss"}.get(x.status, f"n/a ({x.reason[:80]})")
        passed += x.status == "pass"
        missed += x.status == "miss"
        t.add([_name(x.system), x.variant, PLACEMENT_NAMES.get(x.placement, x.placement), x.label,
               "–" if x.ratio is None else f"{x.ratio:.2f}×", x.bound, res])
    return (t.render() if ts else "_No tipcrpc row with a floor was measured._"), passed, missed


def profiles_md(raw: dict[str, Any]) -> str:
    profs = raw.get("profiles") or {}
    if not profs:
        return "_No target was missed, so nothing was profiled._" if "profiles" in raw else "_Profiling was skipped._"
    out = []
    for key, p in profs.items():
        out.append(f"#### {key}")
        if "error" in p:
            out.append(f"Profile failed: {p['error']}")
            continue
        when = (f" — profiled separately at {raw['profiled_at']} (commit `{raw.get('profiled_commit')}`)"
                if raw.get("profiled_at") else "")
        out.append(f"cProfile of the sequential workload ({p['profiled_calls']} calls, {p['placement']}{when}; "
                   "profiling inflates every figure, so read the shares, not the absolute µs).")
        for side in ("client", "server"):
            s = p.get(side) or {}
            if "areas" not in s:
                out.append(f"\n{side}: {s.get('error', 'no data')}")
                continue
            t = Table(["area (self time)", "µs/call", "share"])
            for a in s["areas"][:9]:
                t.add([a["area"], f"{a['us_per_call']:.2f}", f"{a['share'] * 100:.0f}%"])
            busy = s.get("busy_us_per_call")
            busy_txt = f" (busy {busy:.1f} µs per call outside the epoll wait, under the profiler)" if busy else ""
            out.append(f"\n**{side}** — where the time goes{busy_txt}:\n\n" + t.render())
            t2 = Table(["function", "calls/call", "self µs/call", "cum µs/call"])
            for f in s["top"][:10]:
                t2.add([f"`{f['func'][:90]}`", f"{f['ncalls_per_call']:.1f}", f"{f['self_us_per_call']:.2f}",
                        f"{f['cum_us_per_call']:.2f}"])
            out.append(f"\n{side} top functions by self time:\n\n" + t2.render())
        out.append("")
    return "\n".join(out)


def meta_md(raw: dict[str, Any]) -> str:
    v = raw.get("versions", {})
    h = raw.get("host", {})
    pl = raw.get("placements", {})
    pls = "; ".join(f"{PLACEMENT_NAMES.get(k, k)}: client CPU {c['client']}, server CPU {c['server']}"
                    for k, c in pl.items())
    vs = ", ".join(f"{k} {val}" for k, val in v.items())
    plan = raw.get("plan", {})
    return (f"- run: {raw.get('started')} UTC, commit `{raw.get('commit')}`, {raw.get('rounds')} interleaved rounds "
            f"(payload/fan-out in {raw.get('payload_rounds')}), {raw.get('total_seconds')} s in total"
            f"{' — QUICK MODE: numbers are meaningless' if raw.get('quick') else ''}\n"
            f"- machine: {h.get('cpu')}, {h.get('ncpu')} CPUs, Linux {h.get('kernel')}"
            f"{_loadavg(raw)}\n"
            f"- placements: {pls}\n"
            f"- software: {vs}\n"
            f"- per round: warm-up {plan.get('warmup_s')} s, then seq {plan.get('seq_s')} s, "
            f"64 callers {plan.get('conc_s')} s, each payload size ≥ {plan.get('payload_s')} s "
            f"(≥ {plan.get('payload_min_calls')} calls), fan-out {plan.get('fanout_s')} s")


def _loadavg(raw: dict[str, Any]) -> str:
    a, b = raw.get("loadavg_start"), raw.get("loadavg_end")
    if not a or not b:
        return ""
    return f"; load average (1/5/15 min) {a[0]:.1f}/{a[1]:.1f}/{a[2]:.1f} at start, {b[0]:.1f}/{b[1]:.1f}/{b[2]:.1f} at end"


def section(raw: dict[str, Any], title: str, level: str = "##") -> str:
    v = View(raw)
    parts = [f"{level} {title}", meta_md(raw)]
    tt, passed, missed = targets_table(raw)
    parts += [f"{level}# Targets ({passed} pass, {missed} miss)",
              "Ratios per tipcrpc row against rows of the same run, same event loop and same CPU placement: "
              "seq p50 ≤ 1.3× the raw event-loop echo on the same transport; 64-caller calls/s ≥ 0.8× "
              "the raw event-loop echo's; p50 ≥ 3× / 10× / 20× better than Pyro5 / pyzmq / gRPC.", tt]
    parts += [f"{level}# Sequential `add(1, 2)` (µs)",
              "One caller, back to back. p50/p99 pooled over all rounds; *round p50 min–max* is the spread "
              "of the per-round medians; calls/s is the median over rounds.", seq_table(v)]
    if v.rows_with("conc"):
        parts += [f"{level}# 64 concurrent callers on one client",
                  "Throughput over the measured window (median over rounds) and per-call latency.", conc_table(v)]
    for p in ("split", "same-cpu"):
        pt = payload_table(v, p)
        if pt:
            parts += [f"{level}# Payload scaling, echo bytes — {PLACEMENT_NAMES[p]}: p50 (p99) µs", pt]
    if v.rows_with("fanout"):
        parts += [f"{level}# Fan-out: one call to each of 8 instances (µs until all 8 replied)",
                  "tipcrpc: `call_all`; pyzmq/gRPC: `asyncio.gather` over 8 servers; Pyro5: the 8 calls in "
                  "turn (a synchronous proxy cannot overlap them); raw event loop: 8 sends, then wait for 8 "
                  "replies.", seq_table(v, "fanout", with_rate=False)]
    ft = failover_table(raw)
    if ft:
        parts += [f"{level}# Failover: SIGKILL of the server holding a call → the retried call completes",
                  "Server A holds an idempotent call without answering; B publishes the same name; A is "
                  "SIGKILLed and the clock runs until the call returns B's answer.", ft]
    st = scale_table(raw)
    if st:
        parts += [f"{level}# Name-table scale: N names published, seen by a second node, withdrawn",
                  st]
    fr = failed_rounds_md(raw)
    if fr:
        parts += [f"{level}# Failed rounds (†)",
                  "Figures marked † are computed from the rounds that succeeded; these failed:", fr]
    parts += [f"{level}# Profiles of rows that missed a target", profiles_md(raw)]
    return "\n\n".join(parts)


def render(out: Path, chart: bool = True) -> None:
    host = _load(out / "raw-host.json")
    guest = _load(out / "raw-guest.json")
    parts = ["# tipcrpc benchmark results",
             "Produced by `python -m bench` (host) and `../shared/ktipc/run-in-guest -- .venv/bin/python -m bench "
             "--guest` (kernel rows); method in [bench/README.md](../README.md). Latencies in µs unless marked. "
             "A row that cannot run here says `n/a (reason)`; nothing is estimated or filled in."]
    if chart:
        parts.append("![results](results.png)")
    findings = out / "findings.md"
    if findings.exists():
        parts.append(findings.read_text().strip())
    if host:
        parts.append(section(host, "Host run"))
    else:
        parts.append("## Host run\n\n_Not run yet: `python -m bench`._")
    if guest:
        parts.append(section(guest, "Guest run (kernel TIPC inside the QEMU guest; compare only within this section)"))
    else:
        parts.append("## Guest run\n\n_Not run yet: `../shared/ktipc/run-in-guest -- .venv/bin/python -m bench --guest`._")
    (out / "results.md").write_text("\n\n".join(parts) + "\n")
    if chart:
        from bench import chart as chart_mod

        chart_mod.draw(out / "results.png", host, guest)


def _load(p: Path) -> Optional[dict[str, Any]]:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def main(argv: Optional[Iterable[str]] = None) -> None:
    import sys

    args = list(argv if argv is not None else sys.argv[1:])
    render(Path(args[0]) if args else Path(__file__).resolve().parent / "results")


if __name__ == "__main__":
    main()
