"""Scenarios outside the interleaved rounds: failover timing and profiles of missed targets."""

from __future__ import annotations

import json
import os
import pstats
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import targets
from bench.common import ClientSpec, Plan
from bench.run import (CLIENT_TIMEOUT_S, REPO, Case, Cell, Row, Runner, _preexec, child_env, log,
                       new_netid, placements, tail)


def failover_all(mode: str, plan: Plan, *, quick: bool, logdir: Path, ready_timeout: float,
                 only: list[str]) -> list[dict[str, Any]]:
    """Failover cells: host → the userspace transport; guest → the kernel transport."""
    kinds = ["kernel"] if mode == "guest" else ["user"]
    cpus = sorted(os.sched_getaffinity(0))
    # Host: client and servers on separate CPUs. Guest: one vCPU (see run.main).
    pl = placements(cpus)[0 if mode == "guest" else -1]
    reps = 1 if quick else 3 if mode == "guest" else 5
    out = []
    for kind in kinds:
        for loop in ("asyncio",) if quick else ("asyncio", "uvloop"):
            key = f"tipcrpc-{kind}/{loop}"
            if only and not any(s in key for s in only):
                continue
            cell = Cell(f"tipcrpc-{kind}", loop, pl.name, "failover")
            result_path = logdir / f"failover-{kind}-{loop}.result.json"
            spec = ClientSpec(server={}, loop=loop, plan=plan,
                              extra={"variant": loop, "reps": reps, "netid": new_netid(),
                                     "server_cpus": sorted(pl.server or []), "result_path": str(result_path)})
            errlog = logdir / f"failover-{kind}-{loop}.log"
            with open(errlog, "w") as f:
                proc = subprocess.Popen([sys.executable, "-m", "bench.proc", "failover", f"tipcrpc-{kind}",
                                         spec.to_json()], cwd=str(REPO), stdout=subprocess.PIPE, stderr=f,
                                        stdin=subprocess.DEVNULL, text=True, preexec_fn=_preexec(pl.client),
                                        env=child_env())
                try:
                    proc.communicate(timeout=CLIENT_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()
            res = json.loads(result_path.read_text()) if result_path.exists() else None
            if res is None:
                cell.add({"error": f"failover driver exited {proc.returncode}: {tail(errlog)}"})
            else:
                cell.add(res["failover"])
            d = cell.to_json()
            d["reps"] = reps
            log(f"[failover] {key} {pl.name}: {d['status']} "
                + (f"p50 {d['pooled']['p50'] / 1e3:.2f} ms" if d["status"] == "ok" else d.get("reason", "")))
            out.append(d)
    return out


# --------------------------------------------------------------------------- profiles

#: Seconds of profiled sequential calls per missed row.
PROFILE_SEQ_S = 2.0

AREAS = (
    ("tipcrpc/rpc/", "tipcrpc RPC layer (rpc/)"),
    ("tipcrpc/transport/user/", "userspace TIPC transport"),
    ("tipcrpc/transport/kernel/", "kernel transport adapter"),
    ("tipcrpc/transport/memory/", "memory transport"),
    ("tipcrpc/codec", "tipcrpc codec"),
    ("tipcrpc/", "tipcrpc (other)"),
    ("msgpack", "msgpack"),
    ("anyio", "anyio"),
    ("uvloop", "uvloop"),
    ("asyncio/", "asyncio"),
)


def _area(file: str, func: str) -> str:
    if file == "~":  # builtins: classify the C functions that matter
        if "poll" in func or "select" in func:
            return "waiting in epoll/select (idle: the other side's turn)"
        if any(s in func for s in ("send", "recv", "_socket")):
            return "socket syscalls"
        return "builtins"
    f = file.replace("\\", "/")
    for needle, name in AREAS:
        if needle in f:
            return name
    return "other Python"


def _short(file: str) -> str:
    f = file.replace("\\", "/")
    for marker in ("/tipcrpc/", "/site-packages/", "/lib/python3"):
        if marker in f:
            return f.split(marker, 1)[1] if marker != "/tipcrpc/" else "tipcrpc/" + f.split(marker, 1)[1]
    return os.path.basename(f)


def summarize_pstats(path: Path, calls: int, top: int = 14) -> dict[str, Any]:
    """Where the time goes: per-area self time and the top functions, per call."""
    st = pstats.Stats(str(path))
    total = st.total_tt  # type: ignore[attr-defined]
    areas: dict[str, float] = {}
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        a = _area(file, func)
        areas[a] = areas.get(a, 0.0) + tt
        rows.append((tt, ct, nc, f"{_short(file)}:{line}({func})" if file != "~" else func))
    rows.sort(reverse=True)
    per = 1e6 / max(1, calls)
    idle = sum(t for a, t in areas.items() if a.startswith("waiting"))
    return {
        "calls": calls, "total_s": total, "busy_us_per_call": (total - idle) * per,
        "areas": [{"area": a, "us_per_call": t * per, "share": t / total if total else 0.0}
                  for a, t in sorted(areas.items(), key=lambda kv: -kv[1])],
        "top": [{"func": name, "ncalls_per_call": nc / max(1, calls), "self_us_per_call": tt * per,
                 "cum_us_per_call": ct * per} for tt, ct, nc, name in rows[:top]],
    }


def profile_misses(raw: dict[str, Any], plan: Plan, *, logdir: Path, ready_timeout: float,
                   quick: bool) -> dict[str, Any]:
    """cProfile client and server of the seq workload for every row that misses a target."""
    missed = targets.missed_rows(raw)
    if not missed:
        return {}
    cpus = sorted(os.sched_getaffinity(0))
    # Profile with client and server on separate CPUs: on one CPU the kernel runs the woken
    # peer inside the sender's sendto(), which would bill the server's work to the client.
    # (In the guest, one vCPU: see run.main.)
    pl = placements(cpus)[0 if raw.get("mode") == "guest" else -1]
    # A longer sequential run than a round's: the profiler slows every call several-fold,
    # and a few hundred calls let one stall (a retransmission, a collection) dominate.
    pplan = Plan.from_json(plan.to_json())
    if not quick:
        pplan.seq_s = PROFILE_SEQ_S
    runner = Runner(pplan, logdir, ready_timeout, CLIENT_TIMEOUT_S)
    out: dict[str, Any] = {}
    done: set[tuple[str, str]] = set()
    for system, variant, _placement in missed[:1] if quick else missed:
        if (system, variant) in done:
            continue  # one profile per row and loop
        done.add((system, variant))
        paths = {"client": str(logdir / f"prof-{system}-{variant}.client.pstats"),
                 "server": str(logdir / f"prof-{system}-{variant}.server.pstats")}
        extra = {"netid": new_netid()} if system == "tipcrpc-user" else {}
        key = f"{system}/{variant}/{pl.name}"
        try:
            res = runner.run(Case(Row(system, variant, "tipcrpc"), pl.name), pl, ("seq",), profile=paths, extra=extra)
            seq = res.get("seq", {})
            if "error" in seq or "na" in seq:
                raise RuntimeError(f"the profiled seq run failed: {seq.get('error') or seq.get('na')}")
            calls = seq.get("completed", 0)
            entry: dict[str, Any] = {"placement": pl.name, "profiled_calls": calls}
            for side, p in paths.items():
                entry[side] = summarize_pstats(Path(p), calls) if Path(p).exists() else {"error": "no profile written"}
            out[key] = entry
            log(f"[profile] {key}: {calls} calls profiled")
        except Exception as e:
            out[key] = {"error": f"{type(e).__name__}: {e}"[:300]}
            log(f"[profile] {key}: {out[key]['error']}")
    return out


# --------------------------------------------------------------------------- name-table scale


def scale_all(plan: Plan, *, quick: bool, logdir: Path, only: list[str]) -> list[dict[str, Any]]:
    """Name-table scale on the userspace transport (:mod:`bench.scale`), one fresh pair per N."""
    from bench import scale

    key = "tipcrpc-user/scale"
    if only and not any(s in key for s in only):
        return []
    cpus = sorted(os.sched_getaffinity(0))
    pl = placements(cpus)[-1]  # observer and publisher on separate CPUs when there are two
    loop = "asyncio" if quick else "uvloop"
    out = []
    for n in scale.QUICK_COUNTS if quick else scale.COUNTS:
        result_path = logdir / f"scale-{n}.result.json"
        spec = ClientSpec(server={}, loop=loop, plan=plan,
                          extra={"n": n, "netid": new_netid(), "result_path": str(result_path),
                                 "publisher_cpus": sorted(pl.server or [])})
        errlog = logdir / f"scale-{n}.log"
        with open(errlog, "w") as f:
            proc = subprocess.Popen([sys.executable, "-m", "bench.proc", "scale", "tipcrpc-user", spec.to_json()],
                                    cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=f, stdin=subprocess.DEVNULL,
                                    text=True, preexec_fn=_preexec(pl.client), env=child_env())
            try:
                proc.wait(timeout=CLIENT_TIMEOUT_S * 3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        res = json.loads(result_path.read_text())["scale"] if result_path.exists() else \
            {"n": n, "error": f"scale driver exited {proc.returncode}: {tail(errlog)}"}
        res.update(loop=loop, placement=pl.name)
        if "total_s" in res:
            log(f"[scale] {n} names: publish {res['publish_s']:.2f} s + withdraw {res['withdraw_s']:.2f} s = "
                f"{res['total_s']:.2f} s; {res['table_bytes_per_publication']:.0f} B/publication in the table")
        else:
            log(f"[scale] {n} names: {res.get('error') or res.get('na')}")
        out.append(res)
    return out
