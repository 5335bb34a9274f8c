"""SIGKILL of server processes under sustained load, counted per call across all servers.

Shared by the userspace-transport test (``tests/integration/test_kill_under_load.py``) and
the kernel one (``tests/kernel/test_kill_under_load_kernel.py``). Server processes run
``tests/integration/fault_server_proc.py``: ``test.faults`` with ``idem(token)``
(idempotent) and ``once(token)`` (not), each execution appended to the server's record file
before anything else happens (an ``O_APPEND`` write survives SIGKILL). :func:`run` keeps
``workers`` callers busy with unique tokens, SIGKILLs a live server at each ``kill_at``
count of completed calls and starts a replacement while the load goes on; :func:`check`
unions the record files and asserts, per token, that

* every idempotent call returned its value — none lost (re-running one is allowed);
* no non-idempotent call ran twice anywhere; one that returned ran exactly once; one that
  failed did so with a typed error;
* the kills hit calls in flight (otherwise the run proves nothing): some call re-ran, failed,
  or was moved to another server by the client.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Callable

import anyio

import tipcrpc

SCRIPT = Path(__file__).resolve().parent / "integration" / "fault_server_proc.py"
SERVICE = "test.faults"


class Fleet:
    """The server processes of one run. ``args(n)``: transport arguments of server ``n``."""

    def __init__(self, records: Path, args: Callable[[int], list[str]]) -> None:
        self.records = records
        self.args = args
        self.live: list[subprocess.Popen[str]] = []
        self.all: list[subprocess.Popen[str]] = []

    async def start(self) -> None:
        n = len(self.all) + 1
        proc = subprocess.Popen([sys.executable, str(SCRIPT), *self.args(n), "--record", str(self.records / f"server{n}.log")],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        self.all.append(proc)
        assert proc.stdout is not None
        line = await anyio.to_thread.run_sync(proc.stdout.readline)
        assert line.startswith("READY"), f"server {n} did not start: {line!r}"
        self.live.append(proc)

    def kill_one(self) -> None:
        self.live.pop(0).send_signal(signal.SIGKILL)

    def stop(self) -> None:
        for p in self.all:
            if p.poll() is None:
                p.terminate()
        for p in self.all:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def executions(self) -> Counter[tuple[str, int]]:
        seen: Counter[tuple[str, int]] = Counter()
        for f in self.records.glob("server*.log"):
            for line in f.read_text().splitlines():
                method, token = line.split()
                seen[(method, int(token))] += 1
        return seen


async def run(client: tipcrpc.Client, fleet: Fleet, *, workers: int, kill_at: tuple[int, ...], total: int,
              timeout: float) -> dict[tuple[str, int], object]:  # fmt: skip
    """The load with its kills; returns ``(method, token) -> value or exception``."""
    outcomes: dict[tuple[str, int], object] = {}
    tokens = iter(range(1, 10**9))
    completed = 0
    milestones = {n: asyncio.Event() for n in (*kill_at, total)}
    stop = False
    caller = client.options(timeout=timeout)

    async def worker(w: int) -> None:
        nonlocal completed
        i = 0
        while not stop:
            token = next(tokens)
            method = "idem" if (w + i) % 2 else "once"
            i += 1
            try:
                outcomes[(method, token)] = await caller.call(SERVICE, method, token)
            except tipcrpc.TipcRpcError as exc:
                outcomes[(method, token)] = exc
            completed += 1
            ev = milestones.get(completed)
            if ev is not None:
                ev.set()

    tasks = [asyncio.create_task(worker(w)) for w in range(workers)]
    try:
        for at in kill_at:
            await milestones[at].wait()
            fleet.kill_one()
            await fleet.start()  # the load goes on meanwhile
        await milestones[total].wait()
    finally:
        stop = True
        await asyncio.gather(*tasks)
    return outcomes


def check(outcomes: dict[tuple[str, int], object], seen: Counter[tuple[str, int]], kills: int, what: str,
          moved: int = 0) -> None:
    """Assert the per-token rules (module docstring) and print the figures. ``moved``: calls
    the client re-sent elsewhere (its ``retries`` + ``failovers``): a kill that only found
    calls queued in the dead socket (returned undelivered and re-sent, as the kernel does
    with a killed socket's receive queue) still hit calls in flight."""
    idem = {tok: r for (m, tok), r in outcomes.items() if m == "idem"}
    once = {tok: r for (m, tok), r in outcomes.items() if m == "once"}
    lost = [tok for tok, r in idem.items() if r != tok]
    twice = [tok for tok in once if seen[("once", tok)] > 1]
    wrong = [tok for tok, r in once.items() if r == tok and seen[("once", tok)] != 1]
    untyped = [r for r in once.values() if not isinstance(r, (int, tipcrpc.TipcRpcError))]
    failed_once = Counter(type(r).__name__ for r in once.values() if isinstance(r, Exception))
    failed_ran = sum(1 for tok, r in once.items() if isinstance(r, Exception) and seen[("once", tok)])
    reran_idem = sum(1 for tok in idem if seen[("idem", tok)] > 1)
    print(f"\n[{what}] SIGKILL x{kills} under load: {len(outcomes)} calls ({len(idem)} idempotent, {len(once)} not); "
          f"idempotent lost {len(lost)}, re-run after a crash {reran_idem}; non-idempotent run twice {len(twice)}, "
          f"failed {dict(failed_once)} (of which had started before the kill: {failed_ran})")  # fmt: skip
    assert lost == [], f"idempotent calls lost: {[(t, idem[t]) for t in lost[:5]]}"
    assert twice == [], f"non-idempotent calls run twice: {twice[:5]}"
    assert wrong == [] and untyped == []
    assert reran_idem + sum(failed_once.values()) + moved > 0, "the kills hit no call in flight"
