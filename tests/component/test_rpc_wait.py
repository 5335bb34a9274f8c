"""Waiting for instances: Client.wait_for() and wait_ready= (memory transport).

The default stays fail-fast (an absent service is ServiceUnreachable at once, as with the
kernel); these are the opt-in ways to wait for a server that is still starting.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

import tipcrpc
from tipcrpc.transport.memory import LinkFaults, MemoryCluster

from rpc_helpers import nodes

svc = tipcrpc.Service("test.rpc.wait")


@svc.method(idempotent=True)
def hello(name: str) -> str:
    return f"hi {name}"


@svc.method
def where() -> str:
    return "here"


async def test_wait_for_a_server_that_just_started_on_another_node(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "srv", "cli") as (srv, cli):
        memory_cluster.set_faults(srv, cli, LinkFaults(delay=0.05))  # name distribution takes a while
        async with tipcrpc.connect(cli) as client, tipcrpc.serve(svc, instance=3, transport=srv) as server:
            with pytest.raises(tipcrpc.ServiceUnreachable):
                await client.call(svc, "hello", "early")  # the default: fail fast
            with anyio.fail_after(5.0):
                found = await client.wait_for(svc)
            assert found == [(server.address, tipcrpc.ServiceRange(svc.type, 3, 3))]
            assert await client.call(svc, "hello", "now") == "hi now"


async def test_wait_ready_call_right_after_serve(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "srv", "cli") as (srv, cli):
        memory_cluster.set_faults(srv, cli, LinkFaults(delay=0.05))
        async with tipcrpc.connect(cli) as client, tipcrpc.serve(svc, transport=srv):
            with anyio.fail_after(5.0):
                assert await client.options(wait_ready=True, timeout=5.0).call(svc, "hello", "a") == "hi a"
        async with tipcrpc.connect(cli) as client, tipcrpc.serve(svc, instances=range(10), transport=srv):
            with anyio.fail_after(5.0):
                assert await client.options(key="some key", wait_ready=True).call(svc, "hello", "k") == "hi k"
                stub = client.stub(svc).with_options(wait_ready=True, timeout=5.0)
                assert await stub.where() == "here"


async def test_wait_ready_stream_notify_and_call_all(memory_cluster: MemoryCluster) -> None:
    streams = tipcrpc.Service("test.rpc.wait.kinds")
    noted = asyncio.Event()

    @streams.method
    async def count(n: int):  # noqa: ANN202
        for i in range(n):
            yield i

    @streams.method
    def note() -> None:
        noted.set()

    @streams.method
    def one() -> int:
        return 1

    async with nodes(memory_cluster, "srv", "cli") as (srv, cli):
        memory_cluster.set_faults(srv, cli, LinkFaults(delay=0.05))
        async with tipcrpc.connect(cli, default_timeout=5.0) as client:
            # one instance per step: the client learns of each withdrawal late as well
            with anyio.fail_after(5.0):
                async with tipcrpc.serve(streams, instance=1, transport=srv):
                    async with client.options(instance=1, wait_ready=True, timeout=5.0).stream(streams, "count", 3) as items:
                        assert [i async for i in items] == [0, 1, 2]
            with anyio.fail_after(5.0):
                async with tipcrpc.serve(streams, instance=2, transport=srv):
                    await client.options(instance=2, wait_ready=True).notify(streams, "note")
                    await noted.wait()
            with anyio.fail_after(5.0):
                async with tipcrpc.serve(streams, instance=3, transport=srv):
                    results = await client.options(instance=3, wait_ready=True).call_all(streams, "one")
                    assert [r.unwrap() for r in results] == [1]


async def test_wait_for_count_and_timeout(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "a", "b", "cli") as (a, b, cli):
        async with tipcrpc.connect(cli) as client:
            with pytest.raises(tipcrpc.DeadlineExceeded):
                await client.wait_for(svc, timeout=0.05)
            with pytest.raises(tipcrpc.DeadlineExceeded):
                await client.options(wait_ready=True, timeout=0.05).call(svc, "hello", "x")
            async with tipcrpc.serve(svc, instance=1, transport=a):
                waiter = asyncio.create_task(client.wait_for(svc, count=2, timeout=5.0))
                assert len(await client.wait_for(svc, timeout=5.0)) == 1
                assert not waiter.done()
                async with tipcrpc.serve(svc, instance=2, transport=b):
                    with anyio.fail_after(5.0):
                        found = await waiter
                    assert sorted(r.lower for _s, r in found) == [1, 2]
            with pytest.raises(TypeError):
                await client.wait_for(svc, count="2")  # type: ignore[arg-type]
            with pytest.raises(ValueError):
                await client.wait_for(svc, count=0)


async def test_wait_ready_call_waits_through_a_restart(memory_cluster: MemoryCluster) -> None:
    """The only instance crashes with an idempotent call in flight: with wait_ready the call
    waits for the next instance instead of failing with PeerLost."""
    gate, started = asyncio.Event(), asyncio.Event()
    first = tipcrpc.Service("test.rpc.wait.restart")

    @first.method(name="get", idempotent=True)
    async def get_slow() -> str:
        started.set()
        await gate.wait()
        return "first"

    second = tipcrpc.Service("test.rpc.wait.restart")

    @second.method(name="get", idempotent=True)
    def get_fast() -> str:
        return "second"

    async with nodes(memory_cluster, "a", "b", "cli") as (a, b, cli):
        async with tipcrpc.connect(cli) as client:
            async with tipcrpc.serve(first, transport=a):
                await client.wait_for(first)
                plain = asyncio.create_task(client.options(timeout=5.0).call(first, "get"))
                patient = asyncio.create_task(client.options(timeout=5.0, wait_ready=True).call(first, "get"))
                await started.wait()
                memory_cluster.kill(a)
                with pytest.raises(tipcrpc.PeerLost):
                    await plain
                assert not patient.done()
                async with tipcrpc.serve(second, transport=b):
                    with anyio.fail_after(5.0):
                        assert await patient == "second"
                gate.set()  # let the dead node's handler end, so its server's drain is quick
            assert client.statistics()["outstanding"] == 0


async def test_waiting_ends_with_the_client(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "cli") as (cli,):
        client = tipcrpc.Client(cli)
        await client.__aenter__()
        waiter = asyncio.create_task(client.wait_for(svc))
        call = asyncio.create_task(client.options(wait_ready=True).call(svc, "hello", "x"))
        while not client._waiters:
            await asyncio.sleep(0)
        await client.aclose()
        for task in (waiter, call):
            with pytest.raises(tipcrpc.ClosedError):
                await task


async def test_a_call_whose_deadline_passed_while_resolving_is_not_sent(
    memory_cluster: MemoryCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with nodes(memory_cluster, "srv", "cli") as (srv, cli):
        async with tipcrpc.serve(svc, transport=srv) as server, tipcrpc.connect(cli) as client:
            real = client._ready

            async def slow_ready(stype: int, deadline: float | None, now: float):  # noqa: ANN202
                m = await real(stype, deadline, now)
                await asyncio.sleep(0.06)  # a loaded machine: resolving eats the whole deadline
                return m

            monkeypatch.setattr(client, "_ready", slow_ready)
            with pytest.raises(tipcrpc.DeadlineExceeded, match="while resolving"):
                await client.options(timeout=0.05).call(svc, "hello", "late")
            assert server.statistics()["received"] == 0


async def test_a_cancelled_waiting_call_leaves_nothing_behind(memory_cluster: MemoryCluster) -> None:
    gate, started = asyncio.Event(), asyncio.Event()
    svc2 = tipcrpc.Service("test.rpc.wait.cancel")

    @svc2.method(idempotent=True)
    async def get() -> str:
        started.set()
        await gate.wait()
        return "x"

    async with nodes(memory_cluster, "a", "cli") as (a, cli):
        async with tipcrpc.connect(cli) as client:
            async with tipcrpc.serve(svc2, transport=a):
                await client.wait_for(svc2)
                call = asyncio.create_task(client.options(wait_ready=True).call(svc2, "get"))
                await started.wait()
                memory_cluster.kill(a)
                with anyio.fail_after(5.0):
                    while not client._table._parked:
                        await asyncio.sleep(0)  # the node-down event parks the call
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
                assert not client._table._parked and client.statistics()["outstanding"] == 0
                gate.set()
