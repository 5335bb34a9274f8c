"""Shared helpers of the memory-transport component tests."""

from __future__ import annotations

from typing import Any

from tipcrpc.addr import LINK_STATE, NODE_STATE, U32_MAX, ServiceRange
from tipcrpc.testing import Inbox
from tipcrpc.transport.memory import MemoryCluster, MemoryTransport

T = 1000  # service type used throughout
TIMEOUT = 5.0
ALL_NODES = ServiceRange(NODE_STATE, 0, U32_MAX)
ALL_LINKS = ServiceRange(LINK_STATE, 0, U32_MAX)


async def _ep(t: MemoryTransport) -> tuple[Any, Inbox]:
    """An endpoint of ``t`` and the inbox its messages go to."""
    inbox = Inbox()
    return await t.open_endpoint(inbox), inbox


async def _cluster(n: int, **kwargs: Any) -> tuple[MemoryCluster, list[MemoryTransport]]:
    """A cluster of ``n`` opened nodes named ``n0``, ``n1``, ..."""
    cluster = MemoryCluster(**kwargs)
    nodes = [cluster.node(f"n{i}") for i in range(n)]
    for node in nodes:
        await node.open()
    return cluster, nodes
