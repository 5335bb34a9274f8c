"""The Transport contract as executable checks, run unchanged against every transport.

How to use it: subclass :class:`TransportConformance` in a test module whose class name
starts with ``Test`` and override the ``harness`` fixture to yield a
:class:`~tipcrpc.testing.harness.ClusterHarness`::

    import pytest
    from tipcrpc.testing.conformance import TransportConformance
    from tipcrpc.testing import MemoryHarness

    class TestMemoryConformance(TransportConformance):
        @pytest.fixture
        async def harness(self):
            h = MemoryHarness()
            yield h
            await h.aclose()

Every ``test_*`` method below is then collected for that transport. Each test calls
``harness.start(n)`` once, is bounded by ``anyio.fail_after`` (``harness.timeout``,
10 s by default) and never sleeps to synchronise: propagation is awaited through topology
subscriptions, and "nothing else arrived" is proven with ordered marker messages or
marker publications (TIPC orders name distribution and datagrams per node pair).

The checks avoid what a real kernel would break: port numbers and node addresses are
arbitrary non-zero u32, events of different subscriptions are not ordered against each
other, node and link snapshots come in any order, and a direct send to a lost node may
either raise :class:`~tipcrpc.errors.ServiceUnreachable` or come back ``Returned``.

Tests that need ``harness.kill`` are skipped if it raises :class:`NotImplementedError`.
"""

from __future__ import annotations

import os
from typing import AsyncIterator

import pytest

from ...addr import service_type
from ..harness import ClusterHarness
from .helpers import DEFAULT_TIMEOUT, snapshot, wait_event, wait_published, wait_withdrawn
from .messaging import MessagingConformance
from .topology import TopologyConformance

__all__ = [
    "TransportConformance",
    "MessagingConformance",
    "TopologyConformance",
    "DEFAULT_TIMEOUT",
    "wait_event",
    "wait_published",
    "wait_withdrawn",
    "snapshot",
]


class TransportConformance(MessagingConformance, TopologyConformance):
    """The whole suite; subclass it as ``Test<Transport>...`` and override ``harness``."""

    @pytest.fixture
    async def harness(self) -> AsyncIterator[ClusterHarness]:
        """Override in the subclass: yield a fresh harness, close it afterwards."""
        pytest.skip("TransportConformance subclasses must override the 'harness' fixture")
        yield  # pragma: no cover

    @pytest.fixture
    def stype(self, request: pytest.FixtureRequest) -> int:
        """A service type private to this test (helps clusters shared between tests)."""
        return service_type(f"tipcrpc.conformance.{request.node.nodeid}.{os.getpid()}")
