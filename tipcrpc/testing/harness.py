"""Cluster harnesses: how the conformance suite gets a cluster of a given transport.

A harness builds ``n`` opened transports that form one cluster (each a different node,
every link up), can crash one of them, and tears everything down. The memory transport's
harness is here; the kernel and userspace transports provide their own (netns nodes in
the QEMU guest, userspace nodes on loopback) and run the same suite.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..transport.base import MAX_MESSAGE, Transport

__all__ = ["ClusterHarness", "MemoryHarness"]


@runtime_checkable
class ClusterHarness(Protocol):
    """What :mod:`tipcrpc.testing.conformance` needs from a transport.

    Attributes:
        max_message: the largest datagram the transports accept (inclusive).

    A harness may also define ``timeout: float`` — the bound, in seconds, for any single
    wait in the suite (propagation, node-down detection); the suite uses 10 s otherwise.
    Set it above the link tolerance if :meth:`kill` relies on link supervision.
    """

    max_message: int

    async def start(self, n: int) -> list[Transport]:
        """Return ``n`` opened transports forming one cluster, all links up, distinct nodes.

        Called at most once per harness instance.
        """
        ...

    async def kill(self, t: Transport) -> None:
        """Crash ``t``'s node abruptly (no graceful withdrawals).

        Raise :class:`NotImplementedError` if the harness cannot; the tests that need it
        are then skipped.
        """
        ...

    async def aclose(self) -> None:
        """Close every transport still open and release all resources."""
        ...


class MemoryHarness:
    """:class:`ClusterHarness` over a fresh :class:`~tipcrpc.transport.memory.MemoryCluster`."""

    timeout = 5.0

    def __init__(self, seed: int = 0, *, max_message: int = MAX_MESSAGE, tolerance: float = 0.0) -> None:
        from ..transport.memory import MemoryCluster

        self.max_message = max_message
        self.cluster = MemoryCluster(seed, max_message=max_message, tolerance=tolerance)

    async def start(self, n: int) -> list[Transport]:
        nodes = [self.cluster.node(f"n{i}") for i in range(n)]
        for node in nodes:
            await node.open()
        return list(nodes)

    async def kill(self, t: Transport) -> None:
        from ..transport.memory import MemoryTransport

        if not isinstance(t, MemoryTransport):
            raise TypeError(f"MemoryHarness can only kill its own transports, got {t!r}")
        self.cluster.kill(t)

    async def aclose(self) -> None:
        await self.cluster.aclose()
