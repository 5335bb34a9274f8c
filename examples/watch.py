"""Watching a service and the cluster's nodes, with the snapshot marker.

    python examples/watch.py

A client subscribes to the publications of ``example.watched`` and to node membership.
Each subscription first replays what exists now, then yields ``SNAPSHOT_COMPLETE``, then
live changes. The script then changes the cluster and prints what the watches report:

1. an instance already published on the watcher's own node (in the snapshot);
2. a server starting on node ``srv1`` (live ``ServiceUp``);
3. that server stopping gracefully (``ServiceDown``: the name is withdrawn first);
4. a server starting on node ``srv2``, then node ``srv2`` crashing (``ServiceDown`` for its
   publication and ``NodeDown``).

In-process on a ``MemoryCluster``; with real transports the code is the same minus
``transport=``.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Union

import anyio

import tipcrpc
from tipcrpc.transport.memory import MemoryCluster

NAME = "example.watched"

svc = tipcrpc.Service(NAME)


@svc.method
def ping() -> str:
    return "pong"


Event = Union[tipcrpc.ServiceUp, tipcrpc.ServiceDown, tipcrpc.NodeUp, tipcrpc.NodeDown, tipcrpc.SnapshotComplete]


def describe(source: str, ev: Event) -> str:
    if ev is tipcrpc.SNAPSHOT_COMPLETE:
        return f"[{source}] SNAPSHOT_COMPLETE (everything above existed when the watch started)"
    if isinstance(ev, (tipcrpc.ServiceUp, tipcrpc.ServiceDown)):
        return f"[{source}] {type(ev).__name__:11} {ev.service} {{{ev.lower}..{ev.upper}}} at {ev.socket}"
    return f"[{source}] {type(ev).__name__:11} node {ev.node:08x}"


class Log:
    """Collects events from both watches; lets the script wait for one without sleeping."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Condition()

    async def add(self, source: str, ev: Event) -> None:
        print(describe(source, ev), flush=True)
        async with self._changed:
            self.events.append(ev)
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[Event], bool]) -> Event:
        with anyio.fail_after(5):
            async with self._changed:
                while True:
                    for ev in self.events:
                        if predicate(ev):
                            self.events.remove(ev)
                            return ev
                    await self._changed.wait()


async def follow(source: str, watch: tipcrpc.Watch, log: Log) -> None:
    async with watch:
        async for ev in watch:
            await log.add(source, ev)


async def main() -> None:
    cluster = MemoryCluster(seed=1)
    log = Log()
    async with cluster.node("watcher") as home, cluster.node("srv1") as srv1, cluster.node("srv2") as srv2:
        async with tipcrpc.serve(svc, instance=0, transport=home), tipcrpc.connect(home) as client:
            tasks = [
                asyncio.create_task(follow("service", client.watch(svc), log)),
                asyncio.create_task(follow("nodes", client.watch_nodes(), log)),
            ]
            # Both snapshots end with the marker.
            await log.wait_for(lambda ev: ev is tipcrpc.SNAPSHOT_COMPLETE)
            await log.wait_for(lambda ev: ev is tipcrpc.SNAPSHOT_COMPLETE)

            print("-- starting a server on srv1")
            async with tipcrpc.serve(svc, instances=range(1, 8), transport=srv1):
                await log.wait_for(lambda ev: isinstance(ev, tipcrpc.ServiceUp) and ev.node == srv1.own_node.addr)
                print("-- stopping it gracefully")
            await log.wait_for(lambda ev: isinstance(ev, tipcrpc.ServiceDown) and ev.node == srv1.own_node.addr)

            print("-- starting a server on srv2, then crashing node srv2")
            async with tipcrpc.serve(svc, instance=9, transport=srv2):
                await log.wait_for(lambda ev: isinstance(ev, tipcrpc.ServiceUp) and ev.node == srv2.own_node.addr)
                cluster.kill(srv2)
                await log.wait_for(lambda ev: isinstance(ev, tipcrpc.ServiceDown) and ev.node == srv2.own_node.addr)
                await log.wait_for(lambda ev: isinstance(ev, tipcrpc.NodeDown) and ev.node == srv2.own_node.addr)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    print("watch example done")


if __name__ == "__main__":
    asyncio.run(main())
