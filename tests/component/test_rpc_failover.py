"""Failover, drain, deadlines and cancellation over the memory transport."""

from __future__ import annotations

import asyncio

import anyio
import pytest

import tipcrpc
from tipcrpc.transport.memory import MemoryCluster

from rpc_helpers import nodes, wait_instances

NAME = "test.rpc.failover"


class Counter:
    """Counts events and lets a test wait for a total without polling."""

    def __init__(self) -> None:
        self.n = 0
        self._cond = asyncio.Condition()

    async def bump(self) -> None:
        async with self._cond:
            self.n += 1
            self._cond.notify_all()

    async def wait_for(self, n: int) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.n >= n)


def pair(idempotent: bool, gate: asyncio.Event, started: Counter, done: Counter) -> tuple[tipcrpc.Service, tipcrpc.Service]:
    """Two definitions of one service: on "a" calls block on ``gate``; on "b" they return at once."""
    slow = tipcrpc.Service(NAME)
    fast = tipcrpc.Service(NAME)

    @slow.method(name="work", idempotent=idempotent)
    async def work_a(i: int) -> tuple[str, int]:
        await started.bump()
        await gate.wait()
        return ("a", i)

    @fast.method(name="work", idempotent=idempotent)
    async def work_b(i: int) -> tuple[str, int]:
        await done.bump()
        return ("b", i)

    return slow, fast


@pytest.mark.parametrize("idempotent", [True, False])
async def test_kill_a_server_node_mid_load(memory_cluster: MemoryCluster, idempotent: bool) -> None:
    gate, started, done = asyncio.Event(), Counter(), Counter()
    slow, fast = pair(idempotent, gate, started, done)
    async with nodes(memory_cluster, "a", "b", "cli") as (a, b, cli):
        async with tipcrpc.serve(fast, instance=2, transport=b), tipcrpc.connect(cli) as client:
            server_a = tipcrpc.serve(slow, instance=1, transport=a)
            await server_a.__aenter__()
            await wait_instances(client, NAME, 2)

            async def one(i: int) -> object:
                try:
                    return await client.options(timeout=10.0).call(NAME, "work", i)
                except tipcrpc.PeerLost as exc:
                    return exc

            with anyio.fail_after(5.0):
                tasks = [asyncio.create_task(one(i)) for i in range(200)]
                # every call is either finished at b or blocked in a's handler
                while started.n + done.n < 200:
                    await asyncio.wait([asyncio.ensure_future(started.wait_for(started.n + 1)),
                                        asyncio.ensure_future(done.wait_for(done.n + 1))],
                                       return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                on_a = started.n
                assert 0 < on_a < 200
                memory_cluster.kill(a)
                results = await asyncio.gather(*tasks)
            values = [r for r in results if isinstance(r, list)]
            lost = [r for r in results if isinstance(r, tipcrpc.PeerLost)]
            assert len(values) + len(lost) == 200
            assert all(v[0] == "b" for v in values)
            if idempotent:
                assert lost == [] and len(values) == 200
                assert client.statistics()["failovers"] >= on_a
            else:
                assert len(lost) == on_a  # exactly the calls that had started on the dead node
            gate.set()


async def test_graceful_drain_finishes_in_flight_and_moves_new_calls(memory_cluster: MemoryCluster) -> None:
    gate, started, done = asyncio.Event(), Counter(), Counter()
    slow, fast = pair(False, gate, started, done)
    async with nodes(memory_cluster, "a", "b", "cli") as (a, b, cli):
        async with tipcrpc.serve(fast, instance=2, transport=b), tipcrpc.connect(cli) as client:
            stop = asyncio.Event()
            drained = asyncio.Event()
            stats_a: dict[str, int] = {}

            async def run_a() -> None:
                async with tipcrpc.serve(slow, instance=1, transport=a) as server:
                    await stop.wait()
                    task = asyncio.current_task()
                    assert task is not None
                # exit = drain: withdraw, finish in-flight calls, close
                stats_a.update(server.statistics())
                drained.set()

            runner = asyncio.create_task(run_a())
            await wait_instances(client, NAME, 2)
            with anyio.fail_after(5.0):
                in_flight = [asyncio.create_task(client.options(instance=1).call(NAME, "work", i)) for i in range(5)]
                await started.wait_for(5)
                stop.set()  # begin draining while 5 calls are blocked in a's handlers
                await wait_instances(client, NAME, 1)  # a's name is withdrawn first
                fresh = await asyncio.gather(*(client.call(NAME, "work", 100 + i) for i in range(10)))
                assert all(r[0] == "b" for r in fresh)  # new calls go elsewhere
                assert not drained.is_set()
                gate.set()
                assert sorted(await asyncio.gather(*in_flight)) == [["a", i] for i in range(5)]
                await runner
            assert stats_a["completed"] == 5 and stats_a["cancelled"] == 0
            assert client.statistics()["pings"] >= 5  # non-idempotent calls were probed, not failed


async def test_undeliverable_call_is_retried_even_if_not_idempotent(memory_cluster: MemoryCluster) -> None:
    from tipcrpc.transport.memory import LinkFaults

    gate, started, done = asyncio.Event(), Counter(), Counter()
    gate.set()
    slow, fast = pair(False, gate, started, done)
    async with nodes(memory_cluster, "a", "b", "cli") as (a, b, cli):
        async with tipcrpc.serve(fast, instance=2, transport=b), tipcrpc.connect(cli) as client:
            server_a = tipcrpc.serve(slow, instance=1, transport=a)
            srv = await server_a.__aenter__()
            await wait_instances(client, NAME, 2)
            memory_cluster.set_faults(a, cli, LinkFaults(delay=0.05))
            with anyio.fail_after(5.0):
                calls = [asyncio.create_task(client.options(timeout=5.0).call(NAME, "work", i)) for i in range(20)]
                while client.statistics()["calls"] < 20:
                    await asyncio.sleep(0)  # let every call task send its datagram
                # a's socket closes while the calls to it are still on the (slow) link
                await srv._link.endpoint.aclose()
                results = await asyncio.gather(*calls)
            assert all(r[0] == "b" for r in results)
            assert started.n == 0
            assert client.statistics()["retries"] >= 5
            await server_a.__aexit__(None, None, None)


async def test_abrupt_socket_loss_fails_non_idempotent_call_with_peer_lost(memory_cluster: MemoryCluster) -> None:
    gate, started, done = asyncio.Event(), Counter(), Counter()
    slow, _fast = pair(False, gate, started, done)
    async with nodes(memory_cluster, "a", "cli") as (a, cli):
        async with tipcrpc.connect(cli) as client:
            server_a = tipcrpc.serve(slow, instance=1, transport=a)
            srv = await server_a.__aenter__()
            await wait_instances(client, NAME, 1)
            call = asyncio.create_task(client.call(NAME, "work", 1))
            with anyio.fail_after(3.0):
                await started.wait_for(1)
                await srv._link.endpoint.aclose()  # withdrawn; then the probe comes back undeliverable
                with pytest.raises(tipcrpc.PeerLost):
                    await call
            gate.set()
            await server_a.__aexit__(None, None, None)


def blocking_service(name: str, started: asyncio.Queue[str], cancelled: asyncio.Queue[str]) -> tipcrpc.Service:
    svc = tipcrpc.Service(name)

    @svc.method
    async def hang(tag: str) -> None:
        await started.put(tag)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await cancelled.put(tag)
            raise

    return svc


async def test_deadline_cancels_the_server_handler(memory_cluster: MemoryCluster) -> None:
    started: asyncio.Queue[str] = asyncio.Queue()
    cancelled: asyncio.Queue[str] = asyncio.Queue()
    svc = blocking_service("test.rpc.deadline", started, cancelled)
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(svc, transport=a) as server, tipcrpc.connect(b, default_timeout=0.2) as client:
            with anyio.fail_after(3.0):
                with pytest.raises(tipcrpc.DeadlineExceeded):
                    await client.call(svc, "hang", "t1")
                assert await cancelled.get() == "t1"
                with pytest.raises(tipcrpc.DeadlineExceeded):
                    await client.options(timeout=0.05).call(svc, "hang", "t2")
                assert await cancelled.get() == "t2"
            assert client.statistics()["timeouts"] == 2
            assert server.statistics()["active"] == 0


async def test_client_cancel_cancels_the_server_handler(memory_cluster: MemoryCluster) -> None:
    started: asyncio.Queue[str] = asyncio.Queue()
    cancelled: asyncio.Queue[str] = asyncio.Queue()
    svc = blocking_service("test.rpc.cancel", started, cancelled)
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(svc, transport=a) as server, tipcrpc.connect(b) as client:
            with anyio.fail_after(3.0):
                task = asyncio.create_task(client.call(svc, "hang", "c1"))
                assert await started.get() == "c1"
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert await cancelled.get() == "c1"
            assert server.statistics()["cancelled"] == 1
            assert client.statistics()["outstanding"] == 0


async def test_client_node_loss_cancels_its_calls(memory_cluster: MemoryCluster) -> None:
    started: asyncio.Queue[str] = asyncio.Queue()
    cancelled: asyncio.Queue[str] = asyncio.Queue()
    svc = blocking_service("test.rpc.clientloss", started, cancelled)
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(svc, transport=a) as server:
            client = tipcrpc.Client(b)
            await client.__aenter__()
            asyncio.create_task(client.call(svc, "hang", "gone"))
            with anyio.fail_after(3.0):
                assert await started.get() == "gone"
                memory_cluster.kill(b)
                assert await cancelled.get() == "gone"
            assert server.statistics()["client_lost"] == 1
            await client.aclose()


async def test_server_busy_and_backlog(memory_cluster: MemoryCluster) -> None:
    started: asyncio.Queue[str] = asyncio.Queue()
    cancelled: asyncio.Queue[str] = asyncio.Queue()
    svc = blocking_service("test.rpc.busy", started, cancelled)

    @svc.method
    async def quick(x: int) -> int:
        return x

    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(svc, transport=a, max_concurrency=1, max_queued=2) as server:
            async with tipcrpc.connect(b) as client:
                with anyio.fail_after(3.0):
                    blocker = asyncio.create_task(client.call(svc, "hang", "x"))
                    await started.get()
                    queued = [asyncio.create_task(client.call(svc, "quick", i)) for i in range(2)]
                    while server.statistics()["queued"] < 2:
                        await asyncio.sleep(0)  # let the two calls reach the server's backlog
                    with pytest.raises(tipcrpc.ServerBusy):
                        await client.call(svc, "quick", 99)
                    blocker.cancel()
                    assert await asyncio.gather(*queued) == [0, 1]
                assert server.statistics()["busy"] >= 1


async def test_drain_timeout_cancels_what_is_left(memory_cluster: MemoryCluster) -> None:
    started: asyncio.Queue[str] = asyncio.Queue()
    cancelled: asyncio.Queue[str] = asyncio.Queue()
    svc = blocking_service("test.rpc.draintimeout", started, cancelled)
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.connect(b) as client:
            server = tipcrpc.serve(svc, transport=a, drain_timeout=0.05)
            srv = await server.__aenter__()
            await wait_instances(client, svc, 1)
            with anyio.fail_after(3.0):
                call = asyncio.create_task(client.call(svc, "hang", "stuck"))
                assert await started.get() == "stuck"
                await server.__aexit__(None, None, None)  # drain gives up after 0.05 s
                assert await cancelled.get() == "stuck"
                with pytest.raises(tipcrpc.RemoteCancelled, match="shut down"):
                    await call
            assert srv.statistics()["cancelled"] == 1


async def test_stub_by_name_without_a_local_definition(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "a") as (a,):
        async with tipcrpc.connect(a) as client:
            stub = client.stub("test.rpc.nowhere")
            with pytest.raises(tipcrpc.ServiceUnreachable):
                await stub.anything(1, 2)
            assert stub.anything.__name__ == "anything"


async def test_undeliverable_notification_is_resent_elsewhere(memory_cluster: MemoryCluster) -> None:
    from tipcrpc.transport.memory import LinkFaults

    got: dict[str, list[int]] = {"a": [], "b": []}
    arrived = Counter()
    defs = {}
    for who in ("a", "b"):
        s = tipcrpc.Service("test.rpc.notify.failover")

        def make(w: str):  # noqa: ANN202
            async def note(i: int) -> None:
                got[w].append(i)
                await arrived.bump()

            return note

        s.method(name="note")(make(who))
        defs[who] = s
    async with nodes(memory_cluster, "a", "b", "cli") as (a, b, cli):
        async with tipcrpc.serve(defs["b"], instance=2, transport=b), tipcrpc.connect(cli) as client:
            server_a = tipcrpc.serve(defs["a"], instance=1, transport=a)
            srv = await server_a.__aenter__()
            await wait_instances(client, "test.rpc.notify.failover", 2)
            memory_cluster.set_faults(a, cli, LinkFaults(delay=0.05))
            for i in range(20):
                await client.notify("test.rpc.notify.failover", "note", i)
            await srv._link.endpoint.aclose()  # the notifications to a are still on the link
            with anyio.fail_after(5.0):
                await arrived.wait_for(20)
            assert got["a"] == [] and sorted(got["b"]) == list(range(20))
            assert client.statistics()["retries"] >= 5
            await server_a.__aexit__(None, None, None)
