"""Notifications are never lost silently: draining, busy and closing servers (memory transport)."""

from __future__ import annotations

import asyncio
import logging

import anyio
import pytest

import tipcrpc
from tipcrpc.transport.memory import LinkFaults, MemoryCluster

from rpc_helpers import nodes, wait_instances


class Notes:
    """Where each server's ``note`` handler records what it got; wakes waiters."""

    def __init__(self) -> None:
        self.got: list[tuple[str, int]] = []
        self._cond = asyncio.Condition()

    async def add(self, who: str, x: int) -> None:
        async with self._cond:
            self.got.append((who, x))
            self._cond.notify_all()

    async def wait_for(self, n: int) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: len(self.got) >= n)


def define(name: str, who: str, notes: Notes, gate: asyncio.Event, held: asyncio.Event) -> tipcrpc.Service:
    svc = tipcrpc.Service(name)

    @svc.method
    async def hold() -> str:
        held.set()
        await gate.wait()
        return who

    @svc.method
    async def note(x: int) -> None:
        await notes.add(who, x)

    return svc


async def test_notifications_reaching_a_draining_server_are_run(memory_cluster: MemoryCluster) -> None:
    """The client still believes in a server that has withdrawn its name: what it sends
    there while the server drains is run, and the drain waits for it."""
    name = "test.rpc.notify.drain"
    notes, gate, held = Notes(), asyncio.Event(), asyncio.Event()
    async with nodes(memory_cluster, "a", "b", "c") as (a, b, c):
        async with tipcrpc.serve(define(name, "b", notes, gate, held), instance=2, transport=b), \
                tipcrpc.connect(c) as client, tipcrpc.connect(a) as local:  # fmt: skip
            server_a = tipcrpc.serve(define(name, "a", notes, gate, held), instance=1, transport=a)
            srv = await server_a.__aenter__()
            await wait_instances(client, name, 2)
            await wait_instances(local, name, 2)
            with anyio.fail_after(5.0):
                hold = asyncio.create_task(client.options(instance=1).call(name, "hold"))  # keeps a draining
                await held.wait()
                memory_cluster.set_faults(a, c, LinkFaults(delay=0.1))  # c learns of the withdrawal late
                drain = asyncio.create_task(server_a.__aexit__(None, None, None))
                await wait_instances(local, name, 1)  # a has withdrawn; c does not know yet
                for i in range(10):
                    await client.notify(name, "note", i)  # round-robin over a and b
                await notes.wait_for(10)  # nothing lost: a runs its half while draining
                assert not drain.done()
                gate.set()
                await drain
                assert await hold == "a"
    assert sorted(x for _w, x in notes.got) == list(range(10))
    assert {w for w, _x in notes.got} == {"a", "b"}
    assert srv.statistics()["notifications"] == 5


async def test_notification_refused_by_a_busy_server_is_resent_elsewhere(memory_cluster: MemoryCluster) -> None:
    name = "test.rpc.notify.busy"
    notes, gate, held = Notes(), asyncio.Event(), asyncio.Event()
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(define(name, "a", notes, gate, held), transport=a, max_concurrency=1, max_queued=0) as srv, \
                tipcrpc.serve(define(name, "b", notes, gate, held), transport=b), \
                tipcrpc.connect(a, policy="local_first") as client:  # fmt: skip
            await wait_instances(client, name, 2)
            with anyio.fail_after(5.0):
                hold = asyncio.create_task(client.call(name, "hold"))  # a's only slot
                await held.wait()
                for i in range(5):
                    await client.notify(name, "note", i)  # local first: all to a, which is full
                await notes.wait_for(5)
                gate.set()
                await hold
            assert srv.statistics()["busy"] == 5
    assert sorted(notes.got) == [("b", i) for i in range(5)]
    assert client.statistics()["retries"] == 5


async def test_notification_queued_when_the_drain_gives_up_is_resent(memory_cluster: MemoryCluster) -> None:
    name = "test.rpc.notify.queued"
    notes, gate, held = Notes(), asyncio.Event(), asyncio.Event()
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(define(name, "b", notes, gate, held), transport=b), \
                tipcrpc.connect(a, policy="local_first") as client:  # fmt: skip
            server_a = tipcrpc.serve(define(name, "a", notes, gate, held), transport=a, max_concurrency=1,
                                     drain_timeout=0.05)  # fmt: skip
            srv = await server_a.__aenter__()
            await wait_instances(client, name, 2)
            with anyio.fail_after(5.0):
                hold = asyncio.create_task(client.call(name, "hold"))
                await held.wait()
                await client.notify(name, "note", 7)  # waits in a's backlog behind hold
                while srv.statistics()["queued"] < 1:
                    await asyncio.sleep(0)  # let it reach the backlog
                await server_a.__aexit__(None, None, None)  # gives up: hold cancelled, note refused
                with pytest.raises(tipcrpc.RemoteCancelled):
                    await hold
                await notes.wait_for(1)
    assert notes.got == [("b", 7)]


async def test_undeliverable_notification_without_another_instance_is_logged(
    memory_cluster: MemoryCluster, caplog: pytest.LogCaptureFixture
) -> None:
    name = "test.rpc.notify.lost"
    notes, gate, held = Notes(), asyncio.Event(), asyncio.Event()
    async with nodes(memory_cluster, "a") as (a,):
        async with tipcrpc.serve(define(name, "a", notes, gate, held), transport=a, max_concurrency=1, max_queued=0), \
                tipcrpc.connect(a) as client:  # fmt: skip
            with anyio.fail_after(5.0), caplog.at_level(logging.WARNING, logger="tipcrpc.client"):
                hold = asyncio.create_task(client.call(name, "hold"))
                await held.wait()
                await client.notify(name, "note", 1)
                # refused (busy), re-sent once to the only instance, refused again: reported
                while client.statistics()["failures"] < 1:
                    await asyncio.sleep(0)
                gate.set()
                await hold
    assert notes.got == []
    assert any("notification note could not be delivered" in r.getMessage() for r in caplog.records)


async def test_notification_reaching_a_closing_server_is_resent(memory_cluster: MemoryCluster) -> None:
    """Once the drain is over the endpoint closes; with the kernel transport that takes a
    while (queued datagrams are flushed), and what still arrives is refused and re-sent."""
    name = "test.rpc.notify.closing"
    notes, gate, held = Notes(), asyncio.Event(), asyncio.Event()
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(define(name, "a", notes, gate, held), transport=a) as srv, \
                tipcrpc.serve(define(name, "b", notes, gate, held), transport=b), \
                tipcrpc.connect(a, policy="local_first") as client:  # fmt: skip
            await wait_instances(client, name, 2)
            srv._table.draining = srv._table.closing = True  # as between the drain's end and the close
            with anyio.fail_after(5.0):
                await client.notify(name, "note", 1)
                await notes.wait_for(1)
            assert notes.got == [("b", 1)]
            with anyio.fail_after(5.0):
                assert await client.call(name, "note", 2) is None  # a call is refused and moves too
            assert notes.got == [("b", 1), ("b", 2)]
            assert srv.statistics()["received"] == 2 and client.statistics()["retries"] == 2
            srv._table.draining = srv._table.closing = False
