"""The shared transport conformance suite against real kernel TIPC (netns nodes in the guest).

The harness hands out fresh :class:`KernelTransport` instances on the nodes of the
session's 3-node Ethernet cluster. ``kill`` is a silent node death: the node's
bridge port goes down (its peers notice after the 500 ms link tolerance), then every
socket of its transport is closed abruptly. The node is put back after the test.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, List, Tuple

import pytest

from tipcrpc.testing.conformance import TransportConformance
from tipcrpc.transport.base import MAX_MESSAGE, Endpoint, Transport
from tipcrpc.transport.inbox import Inbox
from tipcrpc.transport.kernel import KernelTransport

from ktipc_cluster import EthCluster


async def _open(t: Transport) -> Tuple[Endpoint, Inbox]:
    inbox = Inbox()
    return await t.open_endpoint(inbox), inbox


class KernelHarness:
    """:class:`~tipcrpc.testing.harness.ClusterHarness` over the session's netns nodes."""

    max_message = MAX_MESSAGE

    def __init__(self, cluster: EthCluster) -> None:
        self.cluster = cluster
        # Node death is detected by link supervision: tolerance plus generous slack for TCG.
        self.timeout = 10.0 + 2 * cluster.tolerance_ms / 1000
        self.transports: List[KernelTransport] = []

    async def start(self, n: int) -> list[Transport]:
        if n > len(self.cluster.nodes):
            raise ValueError(f"the kernel cluster has {len(self.cluster.nodes)} nodes, {n} requested")
        await asyncio.to_thread(self.cluster.restore_all)
        for node in self.cluster.nodes[:n]:
            t = KernelTransport(netns=node.netns, warn_duplicates=False)
            await t.open()
            self.transports.append(t)
        return list(self.transports)

    async def kill(self, t: Transport) -> None:
        assert isinstance(t, KernelTransport)
        node = next(n for n in self.cluster.nodes if n.netns == t.netns)
        await asyncio.to_thread(self.cluster.cut, node)
        t.abort()

    async def aclose(self) -> None:
        for t in self.transports:
            await t.aclose()
        self.transports.clear()
        await asyncio.to_thread(self.cluster.restore_all)


class TestKernelConformance(TransportConformance):
    @pytest.fixture
    async def harness(self, eth_cluster: EthCluster) -> AsyncIterator[KernelHarness]:
        h = KernelHarness(eth_cluster)
        yield h
        await h.aclose()
