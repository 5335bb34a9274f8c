"""The transport conformance suite on the userspace TIPC node (UDP bearer on loopback).

Several :class:`UserTransport` instances in this process form a cluster: each binds its own
UDP port on 127.0.0.1 and they find each other by multicast on loopback. Every harness uses
a netid of its own, so concurrent test runs on one host never link up with each other.

``kill`` is :meth:`UserTransport.abort`: sockets close without a link RESET or withdrawals,
as if the process had died. The survivors notice through the liveness socket (immediately)
in :class:`TestUserConformance`, and through link tolerance alone in
:class:`TestUserConformanceTolerance` (liveness off, short tolerance).

:class:`TestUserConformanceProcesses` runs the suite once more with every node in its own
process (``user_proc.py``: a proxy Transport per child over pipes; ``kill`` is SIGKILL).
"""

from __future__ import annotations

import itertools
import os
from typing import AsyncIterator

import anyio
import pytest

from tipcrpc.addr import NODE_STATE, U32_MAX, ServiceRange
from tipcrpc.events import NodeUp
from tipcrpc.testing.conformance import TransportConformance
from tipcrpc.transport.base import MAX_MESSAGE, Transport
from tipcrpc.transport.user import UserTransport
from user_proc import ProcHarness

_netids = itertools.count()


def fresh_netid() -> int:
    """A cluster id unlikely to be used by another test process on this host."""
    return 1000 + (os.getpid() * 131 + next(_netids) * 17) % 8999


class UserHarness:
    """:class:`~tipcrpc.testing.harness.ClusterHarness` of in-process userspace nodes."""

    max_message = MAX_MESSAGE

    def __init__(self, *, tolerance_ms: int = 1500, liveness: bool = True) -> None:
        self.netid = fresh_netid()
        self.tolerance_ms = tolerance_ms
        self.liveness = liveness
        # Kill detection waits for tolerance when liveness is off.
        self.timeout = 10.0 + 2 * tolerance_ms / 1000
        self.nodes: list[UserTransport] = []

    async def start(self, n: int) -> list[Transport]:
        for i in range(n):
            t = UserTransport(
                identity=f"conf{self.netid}-{i}",
                netid=self.netid,
                tolerance_ms=self.tolerance_ms,
                liveness=self.liveness,
                discovery_wait=0.0,
            )
            await t.open()
            self.nodes.append(t)
        addrs = {t.own_node.addr for t in self.nodes}
        # All links up and every bulk applied: each node sees every node's {0, addr}.
        with anyio.fail_after(self.timeout):
            for t in self.nodes:
                sub = await t.subscribe(ServiceRange(NODE_STATE, 0, U32_MAX))
                seen: set[int] = set()
                async for ev in sub:
                    if isinstance(ev, NodeUp):
                        seen.add(ev.node)
                    if seen >= addrs:
                        break
                await sub.aclose()
        return list(self.nodes)

    async def kill(self, t: Transport) -> None:
        assert isinstance(t, UserTransport)
        await t.abort()

    async def aclose(self) -> None:
        for t in self.nodes:
            await t.aclose()
        self.nodes.clear()


class TestUserConformance(TransportConformance):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[UserHarness]:
        h = UserHarness()
        yield h
        await h.aclose()


class TestUserConformanceTolerance(TransportConformance):
    """Crashes detected by link supervision only (no same-host liveness shortcut)."""

    @pytest.fixture
    async def harness(self) -> AsyncIterator[UserHarness]:
        h = UserHarness(tolerance_ms=200, liveness=False)
        yield h
        await h.aclose()


@pytest.mark.slow
class TestUserConformanceProcesses(TransportConformance):
    """Every node a real process; crashes are real SIGKILLs."""

    @pytest.fixture
    async def harness(self) -> AsyncIterator[ProcHarness]:
        h = ProcHarness(fresh_netid())
        yield h
        await h.aclose()
