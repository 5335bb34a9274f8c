"""Shared pieces of the RPC component tests (memory transport)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, AsyncIterator

import tipcrpc
from tipcrpc.transport.memory import MemoryCluster, MemoryTransport


class Probe:
    """Records handler starts/ends so tests can wait for them without sleeping."""

    def __init__(self) -> None:
        self.started: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled: asyncio.Queue[Any] = asyncio.Queue()
        self.release = asyncio.Event()


@asynccontextmanager
async def nodes(cluster: MemoryCluster, *names: str) -> AsyncIterator[list[MemoryTransport]]:
    async with AsyncExitStack() as stack:
        out = [await stack.enter_async_context(cluster.node(n)) for n in names]
        yield out


async def wait_instances(client: tipcrpc.Client, service: tipcrpc.Service | str, count: int) -> None:
    """Wait until the client's view of ``service`` has ``count`` sockets (via watch)."""
    seen: set[tuple[int, int]] = set()
    async with client.watch(service) as w:
        async for ev in w:
            if isinstance(ev, tipcrpc.ServiceUp):
                seen.add((ev.node, ev.port))
            elif isinstance(ev, tipcrpc.ServiceDown):
                seen.discard((ev.node, ev.port))
            if len(seen) == count:
                return
