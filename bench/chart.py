"""The PNG chart: sequential p50, concurrent throughput, payload scaling, fan-out (+ guest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from bench.report import PLACEMENT_NAMES, SIZE_NAMES, View, _name

COLORS = {"same-cpu": "#4477aa", "split": "#ee6677", "in-process": "#228833"}
GROUP_COLORS = {"raw": "#999999", "tipcrpc": "#228833", "peer": "#aa3377"}


def _group(system: str) -> str:
    return "raw" if system.startswith("raw-") else "tipcrpc" if system.startswith("tipcrpc") else "peer"


def _label(system: str, variant: str) -> str:
    return f"{_name(system)} · {variant}"


def _plain(axis: Any) -> None:
    """Log axes labelled 20, 50, 100 … rather than 2×10¹."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    fmt = FuncFormatter(lambda x, _pos: f"{x:,.0f}" if x >= 1 else f"{x:g}")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(fmt)
    axis.set_minor_formatter(FuncFormatter(lambda x, _pos: ""))


def _bars(ax: Any, v: View, workload: str, value: str, title: str, xlabel: str, log: bool) -> None:
    """Horizontal bars per row, one per placement; whiskers = min–max of round medians/rates."""
    rows = v.rows_with(workload)
    pls = v.placements
    h = 0.8 / max(1, len(pls))
    for j, p in enumerate(pls):
        ys: list[float] = []
        xs: list[float] = []
        lo: list[float] = []
        hi: list[float] = []
        na: list[tuple[float, str]] = []
        for i, (s, var) in enumerate(rows):
            c = v.get(s, var, p, workload)
            y = i + (j - (len(pls) - 1) / 2) * h
            if c is None:
                continue
            if c["status"] != "ok":
                na.append((y, "n/a" if c["status"] == "na" else "error"))
                continue
            if value == "p50":
                x = c["pooled"]["p50"]
                a, b = c["round_p50"]["min"], c["round_p50"]["max"]
            else:
                r = c.get("rate") or {}
                if "median" not in r:
                    continue
                x, a, b = r["median"], r["min"], r["max"]
            ys.append(y)
            xs.append(x)
            lo.append(max(0.0, x - a))
            hi.append(max(0.0, b - x))
        ax.barh(ys, xs, height=h, color=COLORS.get(p, "#666666"), label=PLACEMENT_NAMES.get(p, p),
                xerr=[lo, hi], error_kw={"elinewidth": 0.8, "capsize": 1.5})
        for y, word in na:
            ax.text(0.01, y, word, transform=ax.get_yaxis_transform(), va="center", fontsize=6, color="#aa0000")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([_label(s, var) for s, var in rows], fontsize=6.5)
    for tick, (s, _var) in zip(ax.get_yticklabels(), rows):
        tick.set_color(GROUP_COLORS[_group(s)])
    ax.invert_yaxis()
    if log and any(b.get_width() > 0 for b in ax.patches):
        ax.set_xscale("log")
        _plain(ax.xaxis)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3, which="both")
    ax.legend(fontsize=6, loc="lower right")


def _payload(ax: Any, v: View) -> None:
    p = "split" if "split" in v.placements else (v.placements[-1] if v.placements else "split")
    rows = [r for r in v.rows_with("payload") if r[1] in ("uvloop", "sync", "blocking")
            or r[0].startswith("tipcrpc")]
    sizes = sorted({k[4] for k in v.idx if k[3] == "payload" and k[4] is not None})
    drawn = 0
    for s, var in rows:
        pts = [(size, c["pooled"]["p50"]) for size in sizes
               if (c := v.get(s, var, p, "payload", size)) is not None and c["status"] == "ok"]
        if not pts:
            continue
        style = "--" if _group(s) == "raw" else "-"
        drawn += 1
        ax.plot([x for x, _ in pts], [y for _, y in pts], style, marker="o", markersize=2.5, linewidth=1,
                label=_label(s, var))
    if not drawn:
        ax.axis("off")
        ax.set_title("Payload scaling: not measured in this run", fontsize=9)
        return
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    _plain(ax.yaxis)
    ax.set_xticks(sizes)
    ax.set_xticklabels([SIZE_NAMES.get(x, str(x)) for x in sizes], fontsize=6.5)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"Payload scaling: echo p50, {PLACEMENT_NAMES.get(p, p)} (µs, log-log)", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=5.5, ncol=2)


def draw(path: Path, host: Optional[dict[str, Any]], guest: Optional[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[tuple[str, Any]] = []
    if host:
        hv = View(host)
        panels += [("seq", hv), ("conc", hv), ("payload", hv), ("fanout", hv)]
    if guest:
        gv = View(guest)
        panels += [("gseq", gv), ("gconc", gv)]
    if not panels:
        return
    nrows = (len(panels) + 1) // 2
    fig, axes = plt.subplots(nrows, 2, figsize=(15, 5.2 * nrows), squeeze=False)
    for ax, (kind, v) in zip(axes.flat, panels):
        if kind == "seq":
            _bars(ax, v, "seq", "p50", "Sequential add(1, 2): p50 (whiskers: round medians min–max)", "µs (log)", True)
        elif kind == "conc":
            _bars(ax, v, "conc", "rate", "64 concurrent callers: calls/s (whiskers: rounds min–max)", "calls/s", False)
        elif kind == "payload":
            _payload(ax, v)
        elif kind == "fanout":
            _bars(ax, v, "fanout", "p50", "Fan-out to 8 instances: p50 until all replied", "µs (log)", True)
        elif kind == "gseq":
            _bars(ax, v, "seq", "p50", "GUEST (QEMU TCG, ~10× slower): sequential add p50", "µs (log)", True)
        elif kind == "gconc":
            _bars(ax, v, "conc", "rate", "GUEST: 64 concurrent callers, calls/s", "calls/s", False)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    src = host or guest or {}
    fig.suptitle(f"tipcrpc benchmarks — commit {src.get('commit')}, {src.get('started')} "
                 f"({(src.get('host') or {}).get('ncpu')} vCPUs)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=110)
    plt.close(fig)
