"""The transport conformance suite on the in-process memory cluster."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from tipcrpc.testing.conformance import TransportConformance
from tipcrpc.testing.harness import MemoryHarness


class TestMemoryConformance(TransportConformance):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[MemoryHarness]:
        h = MemoryHarness(seed=7)
        yield h
        await h.aclose()


class TestMemoryConformanceWithTolerance(TransportConformance):
    """Same contract when link failures are only detected after a link tolerance."""

    @pytest.fixture
    async def harness(self) -> AsyncIterator[MemoryHarness]:
        h = MemoryHarness(seed=11, tolerance=0.05)
        yield h
        await h.aclose()
