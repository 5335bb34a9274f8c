"""Shared machinery for benchmark processes: plans, drivers, statistics, process protocol.

Every benchmarked system is a pair of processes started by :mod:`bench.run`:

* a **server** (``python -m bench.proc server SYSTEM SPEC``) that prints exactly one line
  ``READY {json}`` on stdout once it accepts calls (or ``UNAVAILABLE reason``) and runs until
  SIGTERM;
* a **client** (``python -m bench.proc client SYSTEM SPEC``) that runs the requested
  workloads, timing every call with :func:`time.perf_counter_ns` inside its own process, and
  prints one line ``RESULT {json}``.

Clients implement one small adapter (``add``, ``echo``, ``fanout``); the drivers here do all
the timing so that every system is measured by the same loop.
"""

from __future__ import annotations

import array
import asyncio
import base64
import gc
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Awaitable, Callable, Optional, Sequence

perf_ns = time.perf_counter_ns

#: Payload sizes for the payload-scaling workload (echo bytes).
PAYLOAD_SIZES: tuple[int, ...] = (32, 1024, 16 * 1024, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024)
#: Concurrent callers on one client.
CONC_CALLERS = 64
#: Instances for the fan-out workload.
FANOUT_INSTANCES = 8
#: Per-call safety bound in drivers: a call that takes longer is reported as an error.
CALL_TIMEOUT_S = 30.0


@dataclass
class Plan:
    """How long each workload runs in one round (seconds) and how many calls at most."""

    warmup_s: float = 0.1
    seq_s: float = 0.3
    seq_max_calls: int = 50_000
    conc_s: float = 0.3
    payload_s: float = 0.08
    payload_min_calls: int = 3
    #: Stop adding calls to one payload size after this long (once one call is in): keeps a
    #: row that needs a second per 16 MiB call from dominating the run.
    payload_max_s: float = 1.5
    payload_sizes: tuple[int, ...] = PAYLOAD_SIZES
    fanout_s: float = 0.2
    workloads: tuple[str, ...] = ("seq", "conc", "payload", "fanout")

    @classmethod
    def quick(cls) -> "Plan":
        """Tiny counts for the smoke test: every code path, no meaningful numbers."""
        return cls(warmup_s=0.01, seq_s=0.03, seq_max_calls=2000, conc_s=0.03, payload_s=0.01,
                   payload_min_calls=1, payload_max_s=0.5, payload_sizes=(32, 16 * 1024), fanout_s=0.02)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Plan":
        d = dict(d)
        d["payload_sizes"] = tuple(d["payload_sizes"])
        d["workloads"] = tuple(d["workloads"])
        return cls(**d)


class NotAvailable(Exception):
    """A row or workload that cannot run here; the message says why (shown as ``n/a (why)``)."""


# --------------------------------------------------------------------------- samples / stats


def encode_samples(samples: Sequence[int]) -> str:
    """Pack nanosecond samples compactly for the JSON result line."""
    return base64.b64encode(array.array("q", samples).tobytes()).decode("ascii")


def decode_samples(text: str) -> list[int]:
    a = array.array("q")
    a.frombytes(base64.b64decode(text))
    return a.tolist()


def percentile(sorted_ns: Sequence[int], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of already sorted samples."""
    if not sorted_ns:
        raise ValueError("no samples")
    k = max(0, min(len(sorted_ns) - 1, int(round(q / 100.0 * len(sorted_ns) + 0.5)) - 1))
    return float(sorted_ns[k])


def summarize(samples_ns: Sequence[int]) -> dict[str, float]:
    """n, min, p50, p90, p99, max and mean of nanosecond samples, in microseconds."""
    s = sorted(samples_ns)
    us = 1e-3
    return {
        "n": len(s),
        "min": s[0] * us,
        "p50": percentile(s, 50) * us,
        "p90": percentile(s, 90) * us,
        "p99": percentile(s, 99) * us,
        "max": s[-1] * us,
        "mean": sum(s) / len(s) * us,
    }


# --------------------------------------------------------------------------- process protocol


def announce_ready(info: dict[str, Any]) -> None:
    """Tell the parent the server accepts calls (the only readiness signal; no sleeps)."""
    info = {"pid": os.getpid(), **info}
    sys.stdout.write("READY " + json.dumps(info) + "\n")
    sys.stdout.flush()


def announce_unavailable(reason: str) -> None:
    sys.stdout.write("UNAVAILABLE " + reason.replace("\n", " ") + "\n")
    sys.stdout.flush()


def emit_result(result: dict[str, Any], path: Optional[str] = None) -> None:
    """Hand the result to the parent: into ``path`` (atomically) when given, else stdout."""
    text = json.dumps(result)
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        return
    sys.stdout.write("RESULT " + text + "\n")
    sys.stdout.flush()


#: Sent by a profiling client to its server once warm-up is over: start profiling now.
PROFILE_SIGNAL = signal.SIGUSR1


class Profiler:
    """Optional cProfile around a section; dumps pstats to ``path`` on :meth:`stop`."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        self._prof = None
        if path:
            import cProfile  # only profiling runs pay for the import

            self._prof = cProfile.Profile()

    def start(self) -> None:
        if self._prof is not None:
            self._prof.enable()

    def arm(self) -> None:
        """Servers: start profiling when the client signals the end of its warm-up."""
        if self._prof is not None:
            signal.signal(PROFILE_SIGNAL, lambda signum, frame: self.start())

    def stop(self) -> None:
        if self._prof is not None and self.path:
            self._prof.disable()
            self._prof.dump_stats(self.path)
            self._prof = None


def new_event_loop(kind: Optional[str]) -> asyncio.AbstractEventLoop:
    """``"asyncio"`` (the default selector loop) or ``"uvloop"``."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if kind in (None, "asyncio"):
        return asyncio.SelectorEventLoop()
    raise ValueError(f"unknown loop kind {kind!r}")


def run_async(kind: Optional[str], main: Callable[[], Awaitable[Any]]) -> Any:
    loop = new_event_loop(kind)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main())
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


async def wait_for_stop() -> None:
    """Block until SIGTERM/SIGINT (how the harness stops asyncio servers)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


class Stopped(BaseException):
    """Raised in blocking servers by the SIGTERM handler."""


def install_blocking_stop() -> None:
    def _raise(signum: int, frame: object) -> None:
        raise Stopped()

    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGINT, _raise)


# --------------------------------------------------------------------------- drivers (async)


async def drive_seq_async(call: Callable[[], Awaitable[Any]], warmup_s: float, dur_s: float,
                          max_calls: int, on_start: Optional[Callable[[], None]] = None) -> dict[str, Any]:
    """Back-to-back calls; one latency sample per call after ``warmup_s``.

    ``on_start`` runs between warm-up and measurement (the profiler hook)."""
    end = perf_ns() + int(warmup_s * 1e9)
    while perf_ns() < end:
        await call()
    gc.collect()
    if on_start is not None:
        on_start()
    samples: list[int] = []
    append = samples.append
    t_start = perf_ns()
    end = t_start + int(dur_s * 1e9)
    t1 = t_start
    while t1 < end and len(samples) < max_calls:
        t0 = perf_ns()
        await call()
        t1 = perf_ns()
        append(t1 - t0)
    return {"samples": encode_samples(samples), "elapsed_ns": t1 - t_start, "completed": len(samples)}


async def drive_conc_async(call: Callable[[], Awaitable[Any]], callers: int, warmup_s: float,
                           dur_s: float) -> dict[str, Any]:
    """``callers`` coroutines calling back-to-back; throughput over the measured window."""
    samples: list[int] = []
    window = [0, 0]  # [start, end] in ns; 0 = not yet known
    stop = False

    async def worker() -> None:
        append = samples.append
        while not stop:
            t0 = perf_ns()
            await call()
            t1 = perf_ns()
            if window[0] and t0 >= window[0] and (not window[1] or t1 <= window[1]):
                append(t1 - t0)

    tasks = [asyncio.ensure_future(worker()) for _ in range(callers)]
    try:
        await asyncio.sleep(warmup_s)
        window[0] = perf_ns()
        await asyncio.sleep(dur_s)
        # On a loaded machine one call can outlast a short window (the smoke test's 30 ms):
        # keep it open until a call fits, so a slow run reports a slow figure, not "no samples".
        give_up = perf_ns() + int(CALL_TIMEOUT_S * 1e9)
        while not samples and perf_ns() < give_up:
            await asyncio.sleep(dur_s)
        window[1] = perf_ns()
        stop = True
        await asyncio.wait_for(asyncio.gather(*tasks), CALL_TIMEOUT_S)
    finally:
        for t in tasks:
            t.cancel()
    # Throughput counts calls that both started and completed inside the window; calls
    # straddling its edges are left out, which under-counts by at most `callers` calls.
    return {"samples": encode_samples(samples), "elapsed_ns": window[1] - window[0],
            "completed": len(samples)}


async def drive_payload_async(echo: Callable[[bytes], Awaitable[bytes]], plan: Plan,
                              limit: Optional[tuple[int, str]]) -> dict[str, Any]:
    """Echo each payload size; verifies the echoed length, one sample per call."""
    out: dict[str, Any] = {}
    for size in plan.payload_sizes:
        if limit is not None and size > limit[0]:
            out[str(size)] = {"na": limit[1]}
            continue
        data = os.urandom(size)
        try:
            r = await asyncio.wait_for(echo(data), CALL_TIMEOUT_S)  # warm-up and check
            if len(r) != size:
                raise RuntimeError(f"echo returned {len(r)} bytes for {size}")
            samples: list[int] = []
            start = perf_ns()
            end, hard = start + int(plan.payload_s * 1e9), start + int(plan.payload_max_s * 1e9)
            while not samples or (perf_ns() < end or len(samples) < plan.payload_min_calls) and perf_ns() < hard:
                t0 = perf_ns()
                await echo(data)
                samples.append(perf_ns() - t0)
            out[str(size)] = {"samples": encode_samples(samples)}
        except NotAvailable as e:
            out[str(size)] = {"na": str(e)}
        except Exception as e:  # reported as an error cell, never hidden
            out[str(size)] = {"error": f"{type(e).__name__}: {e}"[:200]}
    return out


# --------------------------------------------------------------------------- drivers (sync)


def drive_seq_sync(call: Callable[[], Any], warmup_s: float, dur_s: float, max_calls: int,
                   on_start: Optional[Callable[[], None]] = None) -> dict[str, Any]:
    end = perf_ns() + int(warmup_s * 1e9)
    while perf_ns() < end:
        call()
    gc.collect()
    if on_start is not None:
        on_start()
    samples: list[int] = []
    append = samples.append
    t_start = perf_ns()
    end = t_start + int(dur_s * 1e9)
    t1 = t_start
    while t1 < end and len(samples) < max_calls:
        t0 = perf_ns()
        call()
        t1 = perf_ns()
        append(t1 - t0)
    return {"samples": encode_samples(samples), "elapsed_ns": t1 - t_start, "completed": len(samples)}


def drive_payload_sync(echo: Callable[[bytes], bytes], plan: Plan,
                       limit: Optional[tuple[int, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in plan.payload_sizes:
        if limit is not None and size > limit[0]:
            out[str(size)] = {"na": limit[1]}
            continue
        data = os.urandom(size)
        try:
            r = echo(data)
            if len(r) != size:
                raise RuntimeError(f"echo returned {len(r)} bytes for {size}")
            samples: list[int] = []
            start = perf_ns()
            end, hard = start + int(plan.payload_s * 1e9), start + int(plan.payload_max_s * 1e9)
            while not samples or (perf_ns() < end or len(samples) < plan.payload_min_calls) and perf_ns() < hard:
                t0 = perf_ns()
                echo(data)
                samples.append(perf_ns() - t0)
            out[str(size)] = {"samples": encode_samples(samples)}
        except NotAvailable as e:
            out[str(size)] = {"na": str(e)}
        except Exception as e:
            out[str(size)] = {"error": f"{type(e).__name__}: {e}"[:200]}
    return out


@dataclass
class ClientSpec:
    """What the parent asks one client process to do (passed as JSON on argv)."""

    server: dict[str, Any]
    loop: Optional[str]
    plan: Plan
    profile: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"server": self.server, "loop": self.loop, "plan": self.plan.to_json(),
                           "profile": self.profile, "extra": self.extra})

    @classmethod
    def from_json(cls, text: str) -> "ClientSpec":
        d = json.loads(text)
        return cls(server=d["server"], loop=d["loop"], plan=Plan.from_json(d["plan"]),
                   profile=d.get("profile"), extra=d.get("extra") or {})


def run_workload(name: str, fn: Callable[[], Any]) -> dict[str, Any]:
    """Run one workload, turning NotAvailable/errors into reportable cells."""
    try:
        return fn()
    except NotAvailable as e:
        return {"na": str(e)}
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"[:300]}


async def run_workload_async(name: str, fn: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    try:
        return await fn()
    except NotAvailable as e:
        return {"na": str(e)}
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"[:300]}


# --------------------------------------------------------------------------- client runners


def _profile_hook(prof: Profiler, spec: ClientSpec) -> Optional[Callable[[], None]]:
    """After warm-up: start the client's profiler and tell the server to start its own."""
    if not spec.profile:
        return None

    def start() -> None:
        pid = spec.server.get("pid")
        if pid:
            os.kill(int(pid), PROFILE_SIGNAL)
        prof.start()

    return start


class AsyncAdapter:
    """What an asyncio client implements; the drivers above do the timing.

    ``payload_limit`` is ``(max_bytes, reason)`` when larger echo payloads cannot be carried
    (a datagram limit, say); those cells are reported as ``n/a (reason)``.
    """

    payload_limit: Optional[tuple[int, str]] = None

    async def open(self) -> None: ...

    async def add(self) -> Any:
        raise NotImplementedError

    async def echo(self, data: bytes) -> bytes:
        raise NotImplementedError

    async def fanout(self) -> Any:
        raise NotAvailable("fan-out not implemented for this row")

    async def close(self) -> None: ...


async def run_async_client(adapter: AsyncAdapter, spec: ClientSpec) -> dict[str, Any]:
    """Open ``adapter``, run ``spec.plan.workloads`` in order, close; the RESULT payload."""
    plan = spec.plan
    out: dict[str, Any] = {}
    await adapter.open()
    try:
        for w in plan.workloads:
            if w == "seq":
                prof = Profiler(spec.profile)
                out[w] = await run_workload_async(w, lambda: drive_seq_async(
                    adapter.add, plan.warmup_s, plan.seq_s, plan.seq_max_calls, _profile_hook(prof, spec)))
                prof.stop()
            elif w == "conc":
                out[w] = await run_workload_async(w, lambda: drive_conc_async(
                    adapter.add, CONC_CALLERS, plan.warmup_s, plan.conc_s))
            elif w == "payload":
                out[w] = await run_workload_async(w, lambda: drive_payload_async(
                    adapter.echo, plan, adapter.payload_limit))
            elif w == "fanout":
                out[w] = await run_workload_async(w, lambda: drive_seq_async(
                    adapter.fanout, plan.warmup_s, plan.fanout_s, plan.seq_max_calls))
            else:
                out[w] = {"na": f"workload {w} not offered by this row"}
    finally:
        await adapter.close()
    return out


class SyncAdapter:
    """Blocking counterpart of :class:`AsyncAdapter`; ``conc`` must be provided explicitly."""

    payload_limit: Optional[tuple[int, str]] = None

    def open(self) -> None: ...

    def add(self) -> Any:
        raise NotImplementedError

    def echo(self, data: bytes) -> bytes:
        raise NotImplementedError

    def fanout(self) -> Any:
        raise NotAvailable("fan-out not implemented for this row")

    def conc(self, callers: int, warmup_s: float, dur_s: float) -> dict[str, Any]:
        raise NotAvailable("concurrent callers not implemented for this row")

    def close(self) -> None: ...


def run_sync_client(adapter: SyncAdapter, spec: ClientSpec) -> dict[str, Any]:
    plan = spec.plan
    out: dict[str, Any] = {}
    adapter.open()
    try:
        for w in plan.workloads:
            if w == "seq":
                prof = Profiler(spec.profile)
                out[w] = run_workload(w, lambda: drive_seq_sync(
                    adapter.add, plan.warmup_s, plan.seq_s, plan.seq_max_calls, _profile_hook(prof, spec)))
                prof.stop()
            elif w == "conc":
                out[w] = run_workload(w, lambda: adapter.conc(CONC_CALLERS, plan.warmup_s, plan.conc_s))
            elif w == "payload":
                out[w] = run_workload(w, lambda: drive_payload_sync(adapter.echo, plan, adapter.payload_limit))
            elif w == "fanout":
                out[w] = run_workload(w, lambda: drive_seq_sync(
                    adapter.fanout, plan.warmup_s, plan.fanout_s, plan.seq_max_calls))
            else:
                out[w] = {"na": f"workload {w} not offered by this row"}
    finally:
        adapter.close()
    return out
