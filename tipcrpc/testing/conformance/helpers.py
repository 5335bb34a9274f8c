"""Helpers of the conformance suite, also handy in any transport's own tests."""

from __future__ import annotations

import random
from typing import Callable

import pytest

from ...addr import ServiceAddr, ServiceRange, SocketAddr
from ...events import SNAPSHOT_COMPLETE, Published, SubFilter, TopologyEvent, Withdrawn
from ...transport.base import Endpoint, Subscription, Transport
from ...transport.inbox import Inbox
from ..harness import ClusterHarness

__all__ = ["DEFAULT_TIMEOUT", "wait_event", "snapshot", "wait_published", "wait_withdrawn"]

#: Bound on any single wait when the harness does not define ``timeout``.
DEFAULT_TIMEOUT = 10.0


def _timeout(harness: ClusterHarness) -> float:
    return float(getattr(harness, "timeout", DEFAULT_TIMEOUT))


async def wait_event(sub: Subscription, predicate: Callable[[TopologyEvent], bool]) -> list[TopologyEvent]:
    """Consume ``sub`` until an event satisfies ``predicate``; returns every event seen."""
    seen: list[TopologyEvent] = []
    async for ev in sub:
        seen.append(ev)
        if predicate(ev):
            return seen
    raise AssertionError(f"subscription ended before the expected event; saw {seen!r}")


async def snapshot(sub: Subscription) -> list[TopologyEvent]:
    """Consume ``sub`` up to :data:`SNAPSHOT_COMPLETE`; returns the events before it."""
    seen = await wait_event(sub, lambda ev: ev == SNAPSHOT_COMPLETE)
    return seen[:-1]


async def wait_published(t: Transport, name: ServiceAddr | ServiceRange, socket: SocketAddr) -> None:
    """Wait until ``t``'s view holds the publication of ``name`` by ``socket``."""
    r = name.as_range() if isinstance(name, ServiceAddr) else name
    sub = await t.subscribe(r, filter=SubFilter.PORTS)
    try:
        await wait_event(sub, lambda ev: isinstance(ev, Published) and ev.range == r and ev.socket == socket)
    finally:
        await sub.aclose()


async def wait_withdrawn(t: Transport, name: ServiceAddr | ServiceRange, socket: SocketAddr) -> None:
    """Wait until ``t``'s view no longer holds the publication of ``name`` by ``socket``."""
    r = name.as_range() if isinstance(name, ServiceAddr) else name
    sub = await t.subscribe(r, filter=SubFilter.PORTS)
    try:
        present = False
        async for ev in sub:
            if ev == SNAPSHOT_COMPLETE:
                if not present:
                    return
            elif isinstance(ev, (Published, Withdrawn)) and ev.range == r and ev.socket == socket:
                present = isinstance(ev, Published)
                if not present:
                    return
    finally:
        await sub.aclose()


async def _open(t: Transport) -> tuple[Endpoint, Inbox]:
    inbox = Inbox()
    ep = await t.open_endpoint(inbox)
    return ep, inbox


async def _kill_or_skip(harness: ClusterHarness, t: Transport) -> None:
    try:
        await harness.kill(t)
    except NotImplementedError:
        pytest.skip("this harness cannot kill a node")


def _payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


