"""Server rules that the client's own behaviour used to hide (issue 12), public API only.

* **Server-side deadline with the CANCEL lost**: the client gives up at its deadline and
  sends CANCEL, but the link to the server is cut (a partition held within the link
  tolerance: the CANCEL waits in the link and never arrives in time). The server must cancel
  the handler itself, at the deadline the call carried.
* **Deadline propagation**: the handler sees the caller's remaining time
  (``current_call().deadline``), and a call that fails over to another instance carries what
  is left of its deadline, not its original timeout.
* **Duplicate suppression**: the same call id delivered again while the call is in progress
  (memory-transport chaos: ``LinkFaults(duplicate=...)``) runs once.

Every scenario runs on the memory transport with a seeded cluster; waits are on events,
not sleeps (one test lets time pass on purpose, to make the remaining time shrink).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import anyio
import pytest

import tipcrpc
from rpc_helpers import nodes, wait_instances
from tipcrpc.testing import LinkFaults, MemoryCluster

TIMEOUT = 10.0  # bound of every wait (generous: CI machines can be very loaded)


class Recorder:
    """What the ``hang`` handlers of one test saw: starts and cancellations, with loop times."""

    def __init__(self) -> None:
        #: (server label, tag, loop time at start, remaining deadline seen by the handler)
        self.started: asyncio.Queue[tuple[str, str, float, float | None]] = asyncio.Queue()
        #: (server label, tag, loop time at cancellation)
        self.cancelled: asyncio.Queue[tuple[str, str, float]] = asyncio.Queue()
        self.release = asyncio.Event()

    def service(self, name: str, label: str) -> tipcrpc.Service:
        """``hang(tag)`` (idempotent): records its start, blocks until released, records a
        cancellation. One Service object per server, all with the same name (same type)."""
        svc = tipcrpc.Service(name)

        @svc.method(idempotent=True)
        async def hang(tag: str) -> str:
            loop = asyncio.get_running_loop()
            self.started.put_nowait((label, tag, loop.time(), tipcrpc.current_call().deadline))
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.put_nowait((label, tag, loop.time()))
                raise
            return tag

        return svc


async def test_server_deadline_cancels_the_handler_when_the_cancel_is_lost() -> None:
    # Tolerance 30 s: a partition holds messages (the CANCEL) instead of failing the link,
    # so nothing but the server's own deadline timer can stop the handler.
    cluster = MemoryCluster(seed=12, tolerance=30.0)
    rec = Recorder()
    svc = rec.service("test.rules.lostcancel", "srv")
    async with nodes(cluster, "srv", "cli") as (srv, cli):
        async with tipcrpc.serve(svc, transport=srv) as server, tipcrpc.connect(cli) as client:
            with anyio.fail_after(TIMEOUT):
                t0 = asyncio.get_running_loop().time()
                call = asyncio.create_task(client.options(timeout=0.5).call(svc, "hang", "x"))
                _srv, tag, t_start, remaining = await rec.started.get()
                assert tag == "x" and remaining is not None and 0.0 < remaining <= 0.5
                cluster.partition(srv, cli)  # the client's CANCEL will be held in the link
                with pytest.raises(tipcrpc.DeadlineExceeded):
                    await call
                _srv, tag, t_cancel = await rec.cancelled.get()
                # Cancelled by the server's own timer at the deadline the call carried: not
                # before it, and not long after it.
                assert tag == "x"
                assert t_cancel >= t_start + remaining - 0.01
                assert t_cancel - t0 < 0.5 + 2.0
            stats = server.statistics()
            assert stats["deadline_exceeded"] == 1 and stats["cancelled"] == 0 and stats["active"] == 0
            # Heal: the late CANCEL arrives (harmless) and the server answers again.
            cluster.heal(srv, cli)
            rec.release.set()
            assert await client.options(timeout=TIMEOUT).call(svc, "hang", "y") == "y"
    await cluster.aclose()


async def test_the_handler_sees_the_remaining_time() -> None:
    cluster = MemoryCluster(seed=13)
    rec = Recorder()
    svc = rec.service("test.rules.remaining", "srv")
    release = rec.release
    async with nodes(cluster, "srv", "cli") as (srv, cli):
        async with tipcrpc.serve(svc, transport=srv), tipcrpc.connect(cli) as client:
            with anyio.fail_after(TIMEOUT):
                loop = asyncio.get_running_loop()
                for timeout in (0.75, 3.0, 7.5):
                    t0 = loop.time()
                    call = asyncio.create_task(client.options(timeout=timeout).call(svc, "hang", str(timeout)))
                    _srv, _tag, t_start, remaining = await rec.started.get()
                    t1 = loop.time()
                    release.set()
                    assert await call == str(timeout)
                    release.clear()
                    # The server's deadline is the client's plus the transit time (same clock
                    # here): the call started after t0 and was received before t1, so it
                    # lies in [t0 + timeout, t1 + timeout] whatever the host's load.
                    assert remaining is not None
                    assert t0 + timeout - 0.01 <= t_start + remaining <= t1 + timeout
                # No timeout: no deadline on the server either.
                call = asyncio.create_task(client.call(svc, "hang", "none"))
                assert (await rec.started.get())[3] is None
                release.set()
                assert await call == "none"
    await cluster.aclose()


async def test_a_failed_over_call_carries_what_is_left_of_its_deadline() -> None:
    cluster = MemoryCluster(seed=14)
    rec = Recorder()
    name = "test.rules.failover_deadline"
    async with nodes(cluster, "s1", "s2", "cli") as (s1, s2, cli):
        async with tipcrpc.serve(rec.service(name, "s1"), transport=s1), \
                tipcrpc.serve(rec.service(name, "s2"), transport=s2), \
                tipcrpc.connect(cli) as client:  # fmt: skip
            with anyio.fail_after(TIMEOUT):
                await wait_instances(client, name, 2)
                t0 = asyncio.get_running_loop().time()
                call = asyncio.create_task(client.options(timeout=5.0, idempotent=True).call(name, "hang", "f"))
                first, _tag, t1, remaining1 = await rec.started.get()
                # Let time pass on the first instance (on purpose: the remaining time must
                # shrink), then crash its node: the idempotent call fails over.
                await asyncio.sleep(1.0)
                cluster.kill(s1 if first == "s1" else s2)
                second, _tag, t2, remaining2 = await rec.started.get()
                assert second != first
                rec.release.set()
                assert await call == "f"
            assert remaining1 is not None and remaining2 is not None
            # Both servers' deadlines are the client's, t0 + 5 s (within the transit time).
            assert t1 + remaining1 <= t0 + 5.0 + 0.01
            assert t2 + remaining2 <= t0 + 5.0 + 0.01, f"the second server's deadline is {t2 + remaining2 - t0 - 5.0:.2f} s late"
    await cluster.aclose()


async def test_a_call_delivered_twice_while_in_progress_runs_once() -> None:
    cluster = MemoryCluster(seed=15)
    svc = tipcrpc.Service("test.rules.duplicates")
    runs: Counter[int] = Counter()
    started: asyncio.Queue[int] = asyncio.Queue()
    release = asyncio.Event()

    @svc.method
    async def once(i: int) -> int:  # not idempotent: running twice would be a real bug
        runs[tipcrpc.current_call().call_id] += 1
        started.put_nowait(i)
        await release.wait()
        return i

    n = 100
    async with nodes(cluster, "srv", "cli") as (srv, cli):
        # Every data message between the two nodes is delivered twice, the copy right behind
        # the original (the call is in progress by then: its handler waits on `release`).
        cluster.set_faults(srv, cli, LinkFaults(duplicate=0.999))
        async with tipcrpc.serve(svc, transport=srv) as server, tipcrpc.connect(cli) as client:
            with anyio.fail_after(TIMEOUT):
                await wait_instances(client, svc, 1)
                received_before = srv.statistics()["messages_received"]
                sent_before = cli.statistics()["messages_sent"]
                calls = [asyncio.create_task(client.options(timeout=TIMEOUT).call(svc, "once", i)) for i in range(n)]
                assert sorted([await started.get() for _ in range(n)]) == list(range(n))
                # Every CALL arrived (at least) twice.
                sent = cli.statistics()["messages_sent"] - sent_before
                received = srv.statistics()["messages_received"] - received_before
                assert sent >= n and received >= 2 * n - 1, (sent, received)
                release.set()
                assert await asyncio.gather(*calls) == list(range(n))
            assert len(runs) == n and set(runs.values()) == {1}, runs
            assert server.statistics()["received"] == n
    await cluster.aclose()
