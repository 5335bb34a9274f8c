"""Name-table scale: one userspace node publishes N names, a second node's subscription sees
them all, then they are withdrawn and seen withdrawn.

Two processes, each with its own :class:`~tipcrpc.transport.user.UserTransport` on a private
network id:

* the **observer** (``python -m bench.proc scale tipcrpc-user SPEC``, started by the harness)
  subscribes to ``{SCALE_TYPE, 0, 2**32-1}`` (``SubFilter.PORTS``) and counts the events;
* the **publisher** (``python -m bench.scale publisher JSON``, started by the observer)
  opens one endpoint and publishes ``{SCALE_TYPE, i}`` for ``i`` in ``0..N-1``, one
  ``await ep.publish(...)`` each — the public API as a user would call it, yielding to the
  event loop every :data:`YIELD_EVERY` calls — then, when told, withdraws them the same way.

Both wait until they see each other's node up (a type-0 subscription) before anything is
timed. The two processes talk over a pipe: ``UP`` (publisher linked) → ``GO`` → ``PUBLISHED``
→ ``WITHDRAW`` → ``WITHDRAWN`` → ``EXIT``. Timestamps are ``perf_counter_ns`` (Linux
``CLOCK_MONOTONIC``: one clock for every process on the host), so a phase runs from the
publisher's first call to the observer's last event:

* ``publish_s`` — first ``publish`` until the observer has counted N ``Published`` events;
* ``withdraw_s`` — first ``withdraw`` until it has counted N ``Withdrawn`` events;
* ``total_s`` — their sum (the pipe hand-over between the phases is not counted);
* ``publish_calls_s`` / ``withdraw_calls_s`` — the publisher's own loop of calls;
* ``cpu_s`` — CPU seconds each process spent over the two phases (on a busy machine the
  wall-clock figures stretch, these do not).

Memory per publication: the growth of each process's resident set while it holds the N
names (``/proc/self/statm``; includes allocator slack, so an upper bound), and the bytes a
bare :class:`~tipcrpc.nametable.table.NameTable` allocates per remote publication
(``tracemalloc``, exact).

The observer checks what it saw: N events of each kind, and the sum of the instances equals
the sum of ``0..N-1`` (a lost or duplicated name would show).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import tracemalloc
from typing import Any, Optional

from bench.common import ClientSpec, NotAvailable, emit_result, run_async

#: The service type the scale run publishes (any non-reserved type).
SCALE_TYPE = 0x5CA1E
#: Name counts of a full run and of ``--quick``.
COUNTS = (5_000, 10_000, 20_000, 40_000, 100_000)
QUICK_COUNTS = (500,)
#: The publisher lets its event loop run once per this many calls. ``publish`` and
#: ``withdraw`` complete without suspending, so a plain loop of 100 000 calls holds the event
#: loop for its whole duration (about a second, many on a busy machine): the node's link
#: timers and the packets waiting in its socket wait that long, and on a loaded host the peer
#: declared the node lost mid-run. An application publishing thousands of names should
#: yield the same way.
YIELD_EVERY = 1000
#: Safety bound for one phase (a hang is reported as an error, it is not a measurement).
PHASE_TIMEOUT_S = 300.0

_PAGE = os.sysconf("SC_PAGE_SIZE")
perf_ns = time.perf_counter_ns


def rss_bytes() -> int:
    """This process's resident set size."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def table_bytes_per_publication(n: int) -> float:
    """Bytes a :class:`NameTable` allocates per remote single-instance publication (tracemalloc)."""
    from tipcrpc.nametable.table import NameTable

    table = NameTable(1)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            table.insert(SCALE_TYPE, i, i, 2, 2, 4242, i + 1)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(table) == n
    return (after - before) / n


async def _peer_up(transport: Any) -> None:
    """Return once a node other than ``transport``'s own is up."""
    from tipcrpc.addr import NODE_STATE, ServiceRange
    from tipcrpc.events import NodeUp

    own = transport.own_node.addr
    async with await transport.subscribe(ServiceRange(NODE_STATE, 0, 0xFFFF_FFFF)) as sub:
        async for ev in sub:
            if isinstance(ev, NodeUp) and ev.node != own:
                return


# --------------------------------------------------------------------------- publisher


class _Lines:
    """Lines from a non-blocking fd, read by the event loop."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.q: asyncio.Queue[str] = asyncio.Queue()
        self._buf = b""
        os.set_blocking(fd, False)
        asyncio.get_running_loop().add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            asyncio.get_running_loop().remove_reader(self.fd)
            self.q.put_nowait("")
            return
        self._buf += chunk
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            self.q.put_nowait(line.decode())

    async def expect(self, word: str, timeout: float = PHASE_TIMEOUT_S) -> str:
        async with asyncio.timeout(timeout):
            while True:
                line = await self.q.get()
                if not line:
                    raise RuntimeError(f"pipe closed while waiting for {word}")
                if line.startswith("FAILED"):
                    raise RuntimeError(f"the other process failed: {line[7:]}")
                if line.startswith(word):
                    return line[len(word):].strip()

    def close(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self.fd)


def _say(word: str, info: Optional[dict[str, Any]] = None) -> None:
    sys.stdout.write(word + (" " + json.dumps(info) if info is not None else "") + "\n")
    sys.stdout.flush()


async def _publish_run(n: int, netid: int) -> None:
    from tipcrpc.addr import ServiceAddr
    from tipcrpc.transport.user import UserTransport

    cmd = _Lines(sys.stdin.fileno())
    try:
        async with UserTransport(netid=netid) as t:
            await asyncio.wait_for(_peer_up(t), PHASE_TIMEOUT_S)
            ep = await t.open_endpoint(lambda item: None)
            names = [ServiceAddr(SCALE_TYPE, i) for i in range(n)]
            _say("UP")
            await cmd.expect("GO")
            rss0 = rss_bytes()
            c0 = time.process_time()
            t0 = perf_ns()
            for k, name in enumerate(names):
                await ep.publish(name)
                if k % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)
            t1 = perf_ns()
            _say("PUBLISHED", {"t0": t0, "t1": t1, "rss_delta": rss_bytes() - rss0})
            await cmd.expect("WITHDRAW")
            c1 = time.process_time()
            t2 = perf_ns()
            for k, name in enumerate(names):
                await ep.withdraw(name)
                if k % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)
            t3 = perf_ns()
            # CPU time of the publisher process over both phases (to the observer's "all seen").
            await cmd.expect("CPU")
            _say("WITHDRAWN", {"t2": t2, "t3": t3, "cpu_publish": c1 - c0, "cpu_withdraw": time.process_time() - c1})
            await cmd.expect("EXIT")
            await ep.aclose()
    finally:
        cmd.close()


def publisher_main(arg: str) -> int:
    d = json.loads(arg)
    try:
        run_async(d.get("loop"), lambda: _publish_run(int(d["n"]), int(d["netid"])))
    except Exception as e:  # the observer reads this instead of waiting for a line forever
        _say(f"FAILED {type(e).__name__}: {e}".replace("\n", " "))
        raise
    return 0


# --------------------------------------------------------------------------- observer


async def _observe(n: int, netid: int, loop: str, publisher_cpus: Optional[list[int]]) -> dict[str, Any]:
    try:
        from tipcrpc.addr import ServiceRange
        from tipcrpc.events import SNAPSHOT_COMPLETE, Published, Withdrawn
        from tipcrpc.transport.user import UserTransport
    except Exception as e:
        raise NotAvailable(f"user transport missing: {type(e).__name__}: {e}") from None

    expected_sum = n * (n - 1) // 2
    async with contextlib.AsyncExitStack() as stack:
        t = await stack.enter_async_context(UserTransport(netid=netid))
        sub = await stack.enter_async_context(await t.subscribe(ServiceRange(SCALE_TYPE, 0, 0xFFFF_FFFF)))
        first = await sub.__anext__()
        if first is not SNAPSHOT_COMPLETE:
            raise RuntimeError(f"expected an empty snapshot, got {first!r}")

        def pre() -> None:
            if publisher_cpus:
                os.sched_setaffinity(0, set(publisher_cpus))

        env = dict(os.environ)
        proc = subprocess.Popen([sys.executable, "-m", "bench.scale", "publisher",
                                 json.dumps({"n": n, "netid": netid, "loop": loop})],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=pre, env=env)
        assert proc.stdin is not None and proc.stdout is not None
        stack.callback(_reap, proc)
        lines = _Lines(proc.stdout.fileno())
        stack.callback(lines.close)

        def tell(word: str) -> None:
            proc.stdin.write(word + "\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]

        await asyncio.wait_for(_peer_up(t), PHASE_TIMEOUT_S)
        await lines.expect("UP")
        rss0 = rss_bytes()

        async def count(kind: type) -> tuple[int, int, int]:
            seen = total = 0
            async for ev in sub:
                if type(ev) is not kind:
                    raise RuntimeError(f"unexpected event while counting {kind.__name__}: {ev!r}")
                seen += 1
                total += ev.range.lower
                if seen == n:
                    return seen, total, perf_ns()
            raise RuntimeError(f"subscription ended after {seen} of {n} {kind.__name__} events")

        c0 = time.process_time()
        tell("GO")
        seen, total, t_seen = await asyncio.wait_for(count(Published), PHASE_TIMEOUT_S)
        c1 = time.process_time()
        pub = json.loads(await lines.expect("PUBLISHED"))
        rss_observer = rss_bytes() - rss0
        if total != expected_sum:
            raise RuntimeError(f"published instances sum to {total}, expected {expected_sum}")
        tell("WITHDRAW")
        gone, total_w, t_gone = await asyncio.wait_for(count(Withdrawn), PHASE_TIMEOUT_S)
        c2 = time.process_time()
        tell("CPU")
        wd = json.loads(await lines.expect("WITHDRAWN"))
        if total_w != expected_sum:
            raise RuntimeError(f"withdrawn instances sum to {total_w}, expected {expected_sum}")
        tell("EXIT")
        stats = dict(t.statistics())
        if stats.get("peers_lost_total"):
            # A purge also yields N Withdrawn events: that would not be a measurement.
            raise RuntimeError("the link to the publisher was lost during the run (its names were purged, "
                               "not withdrawn): the machine is too busy for this measurement")
    publish_s = (t_seen - pub["t0"]) / 1e9
    withdraw_s = (t_gone - wd["t2"]) / 1e9
    return {
        "n": n,
        "events": seen + gone,
        "publish_s": publish_s,
        "withdraw_s": withdraw_s,
        "total_s": publish_s + withdraw_s,
        "publish_calls_s": (pub["t1"] - pub["t0"]) / 1e9,
        "withdraw_calls_s": (wd["t3"] - wd["t2"]) / 1e9,
        "cpu_s": {"publisher": wd["cpu_publish"] + wd["cpu_withdraw"], "observer": c2 - c0,
                  "publisher_publish": wd["cpu_publish"], "publisher_withdraw": wd["cpu_withdraw"],
                  "observer_publish": c1 - c0, "observer_withdraw": c2 - c1},
        "rss_per_publication": {"observer": rss_observer / n, "publisher": pub["rss_delta"] / n},
        "observer_name_items_applied": stats.get("name_items_applied"),
        "observer_udp_received": stats.get("udp_rx"),
    }


def _reap(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError, ValueError):
        if proc.stdin is not None:
            proc.stdin.close()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def observer_main(spec: ClientSpec) -> None:
    """One measurement for ``spec.extra['n']`` names; the result goes to ``result_path``."""
    extra = spec.extra
    n = int(extra["n"])
    try:
        res = run_async(spec.loop, lambda: _observe(n, int(extra["netid"]), spec.loop or "asyncio",
                                                    extra.get("publisher_cpus")))
        res["table_bytes_per_publication"] = table_bytes_per_publication(n)
    except NotAvailable as e:
        res = {"n": n, "na": str(e)}
    except Exception as e:
        res = {"n": n, "error": f"{type(e).__name__}: {e}"[:300]}
    emit_result({"scale": res}, extra.get("result_path"))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "publisher":
        raise SystemExit("usage: python -m bench.scale publisher JSON")
    sys.exit(publisher_main(sys.argv[2]))
