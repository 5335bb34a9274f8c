"""``python -m bench``: run every benchmark row in interleaved rounds, then write the report.

    python -m bench                 # host rows, default plan (< 10 min on 2 vCPUs)
    python -m bench --quick         # tiny counts: every code path, numbers meaningless
    python -m bench --guest         # kernel rows; run inside ../shared/ktipc/run-in-guest
    python -m bench --report-only   # re-render results.md/results.png from the raw JSON

Method (see bench/README.md): each *case* is a row (system + variant) at a CPU placement.
Every round starts a fresh server process (readiness = its ``READY`` line) and a fresh client
process, both pinned with ``sched_setaffinity``; the client times every call with
``perf_counter_ns`` after a warm-up. Rounds interleave all cases in a new seeded order each
time, so machine drift hits every row alike; the report quotes pooled p50/p99 plus the min and
max of the per-round medians.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import itertools
import json
import os
import platform
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bench.common import ClientSpec, Plan, decode_samples, percentile, summarize

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
ALL_WORKLOADS = ("seq", "conc", "payload", "fanout")
READY_TIMEOUT_S = 60.0
CLIENT_TIMEOUT_S = 240.0
QUANTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9)


@dataclass(frozen=True)
class Row:
    """One line of the report: a system and how it is driven."""

    system: str  # raw-<family> | tipcrpc-<transport> | pyro5 | zmq | grpc
    variant: str  # blocking | sync | asyncio | uvloop
    group: str  # raw | tipcrpc | peer
    workloads: tuple[str, ...] = ALL_WORKLOADS
    in_process: bool = False

    @property
    def key(self) -> str:
        return f"{self.system}/{self.variant}"

    @property
    def loop(self) -> Optional[str]:
        return self.variant if self.variant in ("asyncio", "uvloop") else None


@dataclass(frozen=True)
class Case:
    row: Row
    placement: str  # same-cpu | split | in-process


LOOPS = ("asyncio", "uvloop")


def host_rows() -> list[Row]:
    rows: list[Row] = []
    for fam in ("udp", "unix-dgram", "unix-seqpacket", "tcp"):
        # Unix rows are references: sequential and concurrent only, to keep the run short.
        wl = ALL_WORKLOADS if fam in ("udp", "tcp") else ("seq", "conc")
        rows.append(Row(f"raw-{fam}", "blocking", "raw", wl))
        rows += [Row(f"raw-{fam}", lp, "raw", wl) for lp in LOOPS]
    rows += [Row("tipcrpc-memory", lp, "tipcrpc", in_process=True) for lp in LOOPS]
    rows += [Row("tipcrpc-user", lp, "tipcrpc") for lp in LOOPS]
    rows.append(Row("pyro5", "sync", "peer"))
    rows += [Row("zmq", lp, "peer") for lp in LOOPS]
    rows += [Row("grpc", lp, "peer") for lp in LOOPS]
    return rows


def guest_rows() -> list[Row]:
    """Kernel rows. Raw UDP is a reference for the kernel's UDP path under the same emulation.

    The userspace transport is left out: under TCG (Python ~10-50× slower, multi-second
    interpreter start-up) its links can miss their tolerance, and it is measured on the host.
    """
    rows: list[Row] = []
    for fam in ("tipc-rdm", "udp"):
        rows.append(Row(f"raw-{fam}", "blocking", "raw"))
        rows += [Row(f"raw-{fam}", lp, "raw") for lp in LOOPS]
    rows += [Row("tipcrpc-kernel", lp, "tipcrpc") for lp in LOOPS]
    return rows


# --------------------------------------------------------------------------- child processes

_netids = itertools.count(int.from_bytes(os.urandom(2), "big"))


def new_netid() -> int:
    """A fresh TIPC network id for a userspace cluster (never the default 4711 other runs use)."""
    while True:
        n = 1000 + next(_netids) % 9000
        if n != 4711:
            return n


_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _preexec(cpus: Optional[set[int]]) -> Any:
    def pre() -> None:
        # A child must never outlive the harness (no stray servers after ^C).
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if cpus:
            os.sched_setaffinity(0, cpus)
    return pre


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def spawn(role: str, system: str, arg: str, cpus: Optional[set[int]], errlog: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bench.proc", role, system, arg], cwd=str(REPO),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errlog, text=True,
                            preexec_fn=_preexec(cpus), env=child_env())


class Unavailable(Exception):
    """The row cannot run here (reported as ``n/a (reason)``)."""


def read_ready(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """Wait for the server's READY/UNAVAILABLE line (no sleeps: select on its stdout)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"server not ready after {timeout:.0f} s")
        r, _, _ = select.select([proc.stdout], [], [], left)
        if not r:
            continue
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server exited (status {proc.wait()}) before READY")
        if line.startswith("READY "):
            return json.loads(line[6:])
        if line.startswith("UNAVAILABLE "):
            proc.wait()
            raise Unavailable(line[12:].strip())
        if line.startswith("FAILED "):
            proc.wait()
            raise RuntimeError(f"server failed: {line[7:].strip()}")


def stop(proc: Optional[subprocess.Popen[str]]) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(path: Path, n: int = 400) -> str:
    try:
        return path.read_text(errors="replace")[-n:].strip().replace("\n", " | ")
    except OSError:
        return ""


@dataclass
class Placement:
    name: str
    client: Optional[set[int]]
    server: Optional[set[int]]


def placements(cpus: list[int]) -> list[Placement]:
    """Both processes on one CPU, and split across two CPUs (when there are two)."""
    out = [Placement("same-cpu", {cpus[0]}, {cpus[0]})]
    if len(cpus) >= 2:
        out.append(Placement("split", {cpus[0]}, {cpus[1]}))
    return out


class Runner:
    """Runs one case for one round and returns the client's RESULT payload."""

    def __init__(self, plan: Plan, logdir: Path, ready_timeout: float, client_timeout: float) -> None:
        self.plan = plan
        self.logdir = logdir
        self.ready_timeout = ready_timeout
        self.client_timeout = client_timeout
        self.seq = 0
        #: Set when a child failed: the harness then keeps its logs for inspection.
        self.failed = False

    def run(self, case: Case, pl: Placement, workloads: tuple[str, ...], profile: Optional[dict[str, str]] = None,
            extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        row = case.row
        self.seq += 1
        tag = f"{self.seq:04d}-{row.system}-{row.variant}-{pl.name}"
        srv_log = self.logdir / f"{tag}.server.log"
        cli_log = self.logdir / f"{tag}.client.log"
        server = None
        info: dict[str, Any] = {}
        extra = dict(extra or {})
        try:
            if not row.in_process:
                with open(srv_log, "w") as f:
                    server = spawn("server", row.system, json.dumps(
                        {"variant": row.variant, "profile": (profile or {}).get("server"), "extra": extra}),
                        pl.server, f)
                try:
                    info = read_ready(server, self.ready_timeout)
                except Unavailable:
                    raise
                except RuntimeError as e:
                    self.failed = True
                    raise RuntimeError(f"{e}: {tail(srv_log)}") from None
            plan = Plan.from_json(self.plan.to_json())
            plan.workloads = workloads
            result_path = self.logdir / f"{tag}.result.json"
            spec = ClientSpec(server=info, loop=row.loop, plan=plan, profile=(profile or {}).get("client"),
                              extra={"variant": row.variant, "result_path": str(result_path), **extra})
            with open(cli_log, "w") as f:
                client = spawn("client", row.system, spec.to_json(), pl.client, f)
                try:
                    client.communicate(timeout=self.client_timeout)
                except subprocess.TimeoutExpired:
                    client.kill()
                    client.communicate()
                    self.failed = True
                    raise RuntimeError(f"client timed out after {self.client_timeout:.0f} s") from None
            if client.returncode != 0 or not result_path.exists():
                self.failed = True
                raise RuntimeError(f"client exited {client.returncode} without a result: {tail(cli_log)}")
            return json.loads(result_path.read_text())
        finally:
            stop(server)


# --------------------------------------------------------------------------- aggregation


@dataclass
class Cell:
    """Every round's samples of one (case, workload[, size])."""

    system: str
    variant: str
    placement: str
    workload: str
    size: Optional[int] = None
    samples: list[list[int]] = field(default_factory=list)  # per round
    rates: list[float] = field(default_factory=list)  # calls/s per round
    na: Optional[str] = None
    errors: list[str] = field(default_factory=list)

    def add(self, r: dict[str, Any]) -> None:
        if "na" in r:
            self.na = r["na"]
        elif "error" in r:
            self.errors.append(r["error"])
        else:
            s = decode_samples(r["samples"])
            if not s:
                self.errors.append("no samples")
                return
            self.samples.append(s)
            if r.get("elapsed_ns"):
                self.rates.append(r["completed"] / r["elapsed_ns"] * 1e9)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"system": self.system, "variant": self.variant, "placement": self.placement,
                             "workload": self.workload, "size": self.size}
        if not self.samples:
            if self.na:
                d.update(status="na", reason=self.na)
            else:
                d.update(status="error", reason=self.errors[0] if self.errors else "no rounds ran")
            return d
        pooled = sorted(x for rnd in self.samples for x in rnd)
        medians = sorted(percentile(sorted(r), 50) / 1e3 for r in self.samples)
        d.update(status="ok", rounds=len(self.samples), pooled=summarize(pooled),
                 quantiles={str(q): percentile(pooled, q) / 1e3 for q in QUANTILES},
                 round_p50={"min": medians[0], "max": medians[-1], "all": medians})
        if self.rates:
            rates = sorted(self.rates)
            d["rate"] = {"median": rates[len(rates) // 2] if len(rates) % 2 else
                         (rates[len(rates) // 2 - 1] + rates[len(rates) // 2]) / 2,
                         "min": rates[0], "max": rates[-1]}
        if self.errors:
            d["errors"] = self.errors
        return d


class Collector:
    def __init__(self) -> None:
        self.cells: dict[tuple[Any, ...], Cell] = {}

    def cell(self, case: Case, workload: str, size: Optional[int] = None) -> Cell:
        k = (case.row.system, case.row.variant, case.placement, workload, size)
        if k not in self.cells:
            self.cells[k] = Cell(*k)
        return self.cells[k]

    def add_result(self, case: Case, result: dict[str, Any]) -> None:
        for w, r in result.items():
            if w == "payload" and "na" not in r and "error" not in r:
                for size, c in r.items():
                    self.cell(case, w, int(size)).add(c)
            else:
                self.cell(case, w).add(r)

    def mark(self, case: Case, workloads: tuple[str, ...], key: str, reason: str) -> None:
        for w in workloads:
            if w == "payload":
                continue  # sizes are unknown without a result; one cell says it all
            self.cell(case, w).add({key: reason})
        if "payload" in workloads:
            self.cell(case, "payload").add({key: reason})


# --------------------------------------------------------------------------- main loop


def git_commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        return rev or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    from importlib import metadata

    from tipcrpc import fastpath

    # Which tipcrpc ran: pure Python, or the optional compiled build (./dev build-compiled;
    # TIPCRPC_PURE=1 in the environment runs the pure modules even where a build exists).
    out = {"python": platform.python_version(), "tipcrpc build": fastpath.describe()}
    for pkg in ("msgpack", "uvloop", "Pyro5", "pyzmq", "grpcio", "anyio"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def run_suite(rows: list[Row], plan: Plan, rounds: int, payload_rounds: int, seed: int, logdir: Path,
              ready_timeout: float, placement_names: Optional[list[str]] = None) -> tuple[Collector, dict[str, Any]]:
    cpus = sorted(os.sched_getaffinity(0))
    pls = [p for p in placements(cpus) if not placement_names or p.name in placement_names]
    cases: list[tuple[Case, Placement]] = []
    for row in rows:
        if row.in_process:
            cases.append((Case(row, "in-process"), Placement("in-process", {cpus[0]}, None)))
        else:
            cases += [(Case(row, p.name), p) for p in pls]
    runner = Runner(plan, logdir, ready_timeout, CLIENT_TIMEOUT_S)
    col = Collector()
    dead: dict[Case, str] = {}
    rng = random.Random(seed)
    load0 = list(os.getloadavg())  # a busy machine shows here (the report prints it)
    t0 = time.monotonic()
    # Payload scaling and fan-out are slow per round; they run in `payload_rounds` rounds
    # spread evenly over the run (always including the first and the last).
    heavy = {round(i * (rounds - 1) / max(1, payload_rounds - 1)) for i in range(payload_rounds)} if rounds > 1 else {0}
    for rnd in range(rounds):
        order = cases[:]
        rng.shuffle(order)
        for i, (case, pl) in enumerate(order):
            if case in dead:
                continue
            wl = tuple(w for w in case.row.workloads if w in plan.workloads and
                       (w in ("seq", "conc") or rnd in heavy))
            if not wl:
                continue
            t = time.monotonic()
            extra = {"netid": new_netid()} if case.row.system == "tipcrpc-user" else {}
            try:
                col.add_result(case, runner.run(case, pl, wl, extra=extra))
                status = "ok"
            except Unavailable as e:
                dead[case] = str(e)
                col.mark(case, case.row.workloads, "na", str(e))
                status = f"n/a ({e})"
            except Exception as e:  # one bad round is reported, the run goes on
                col.mark(case, wl, "error", f"{type(e).__name__}: {e}"[:300])
                status = f"error ({type(e).__name__}: {e})"[:160]
            log(f"[round {rnd + 1}/{rounds} {i + 1:2d}/{len(order)} {time.monotonic() - t0:6.1f}s] "
                f"{case.row.key:28s} {case.placement:10s} {','.join(wl):22s} {time.monotonic() - t:5.1f}s {status}")
    meta = {"failed_children": runner.failed, "loadavg_start": load0, "loadavg_end": list(os.getloadavg()),
            "rounds": rounds, "payload_rounds": payload_rounds, "seed": seed, "cpus": cpus,
            "placements": {p.name: {"client": sorted(p.client or []), "server": sorted(p.server or [])} for p in pls},
            "suite_seconds": round(time.monotonic() - t0, 1)}
    return col, meta


def reprofile(out: Path, mode: str, chart: bool) -> int:
    """Re-run the profiles of an existing results file (the measurements stay as they are)."""
    from bench import report, scenarios

    path = out / f"raw-{mode}.json"
    raw = json.loads(path.read_text())
    logdir = Path(tempfile.mkdtemp(prefix="benchlogs-"))
    plan = Plan.from_json(raw["plan"])
    raw["profiles"] = scenarios.profile_misses(raw, plan, logdir=logdir, ready_timeout=READY_TIMEOUT_S *
                                               (4 if mode == "guest" else 1), quick=bool(raw.get("quick")))
    raw["profiled_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    raw["profiled_commit"] = git_commit()
    path.write_text(json.dumps(raw, indent=1) + "\n")
    shutil.rmtree(logdir, ignore_errors=True)
    report.render(out, chart=chart)
    log(f"re-profiled {path}")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny counts (smoke test); numbers meaningless")
    ap.add_argument("--guest", action="store_true", help="kernel rows (run inside the ktipc guest)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 5 host, 3 guest, 1 quick)")
    ap.add_argument("--payload-rounds", type=int, help="rounds that include payload/fan-out (default 3)")
    ap.add_argument("--only", action="append", default=[], help="keep rows whose system/variant contains this")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory (default bench/results)")
    ap.add_argument("--placement", action="append", choices=("same-cpu", "split"),
                    help="CPU placements to run (default both; --quick: split only)")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--no-failover", action="store_true")
    ap.add_argument("--no-profile", action="store_true", help="skip profiling rows that miss a target")
    ap.add_argument("--no-chart", action="store_true", help="write results.md only")
    ap.add_argument("--report-only", action="store_true", help="re-render from the raw JSON in --out")
    ap.add_argument("--profile-only", action="store_true",
                    help="redo only the profiles of missed targets for the raw JSON in --out, then re-render")
    args = ap.parse_args(argv)

    from bench import report

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        report.render(out, chart=not args.no_chart)
        return 0
    if args.profile_only:
        return reprofile(out, "guest" if args.guest else "host", chart=not args.no_chart)

    mode = "guest" if args.guest else "host"
    plan = Plan.quick() if args.quick else Plan()
    rounds = args.rounds or (1 if args.quick else 3 if args.guest else 5)
    payload_rounds = min(rounds, args.payload_rounds or (1 if args.quick else 2 if args.guest else 3))
    rows = guest_rows() if args.guest else host_rows()
    if args.quick and not args.guest:
        # Smoke: every module and both loops, without repeating code paths that differ only
        # in the event loop (raw UDP and tipcrpc keep both loops).
        rows = [r for r in rows if r.variant != "asyncio" or r.system in ("raw-udp", "tipcrpc-memory", "tipcrpc-user")]
    if args.only:
        rows = [r for r in rows if any(s in r.key for s in args.only)]
    ready_timeout = READY_TIMEOUT_S * (4 if args.guest else 1)
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    # Child logs and result files; kept only when something failed (the path is printed).
    logdir = Path(tempfile.mkdtemp(prefix="benchlogs-"))
    # Guest: one CPU only. Under TCG a wake-up across vCPUs costs milliseconds and would
    # swamp everything measured; on one vCPU the kernel paths are what differ.
    pnames = args.placement or (["same-cpu"] if args.guest else
                                ["split"] if args.quick and len(os.sched_getaffinity(0)) > 1 else None)
    col, meta = run_suite(rows, plan, rounds, payload_rounds, args.seed, logdir, ready_timeout, pnames)
    cells = [c.to_json() for c in col.cells.values()]
    extra: dict[str, Any] = {}
    if not args.no_failover:
        from bench import scenarios

        extra["failover"] = scenarios.failover_all(mode, plan, quick=args.quick, logdir=logdir,
                                                   ready_timeout=ready_timeout, only=args.only)
    if mode == "host":  # the userspace transport is measured on the host only
        from bench import scenarios

        extra["scale"] = scenarios.scale_all(plan, quick=args.quick, logdir=logdir, only=args.only)
    raw = {"mode": mode, "quick": args.quick, "started": started.isoformat(timespec="seconds"),
           "commit": git_commit(), "host": {"cpu": cpu_model(), "kernel": platform.release(),
                                            "ncpu": os.cpu_count()},
           "versions": versions(), "plan": plan.to_json(), **meta, "cells": cells, **extra}
    if not args.no_profile:
        from bench import scenarios

        raw["profiles"] = scenarios.profile_misses(raw, plan, logdir=logdir, ready_timeout=ready_timeout,
                                                   quick=args.quick)
    raw["total_seconds"] = round(time.monotonic() - t0, 1)
    if meta.get("failed_children") or any(c.get("status") == "error" or c.get("errors")
                                          for c in cells + raw.get("failover", [])) or \
            any("error" in c for c in raw.get("scale", [])):
        log(f"some runs failed: their logs are in {logdir}")
    else:
        shutil.rmtree(logdir, ignore_errors=True)
    path = out / f"raw-{mode}.json"
    if not cells and not raw.get("failover") and raw.get("scale") and path.exists():
        # Only the scale scenario ran (--only scale): update that section of the existing
        # results instead of replacing them with an empty run.
        previous = json.loads(path.read_text())
        previous["scale"] = raw["scale"]
        previous["scale_run"] = {k: raw[k] for k in ("started", "commit", "host", "versions", "quick",
                                                      "loadavg_start", "loadavg_end", "total_seconds")}
        raw = previous
    path.write_text(json.dumps(raw, indent=1) + "\n")
    log(f"wrote {path} ({raw['total_seconds']} s)")
    report.render(out, chart=not args.no_chart)
    log(f"wrote {out / 'results.md'}" + ("" if args.no_chart else f" and {out / 'results.png'}"))
    return 0
