"""A node's local topology server: subscriptions as async iterators (layer L3: asyncio).

The kernel's topology server (``net/tipc/topsrv.c``) queues ``tipc_event`` records on a
SEQPACKET connection; here each :meth:`TopologyServer.subscribe` returns a
:class:`TopologySubscription` whose queue is filled synchronously by the name table (through
:mod:`.subscr`), so no event can slip between the replayed snapshot, the
:data:`~tipcrpc.events.SNAPSHOT_COMPLETE` marker and the first live change.

Shared by the userspace node and the memory cluster (each node has one server on its own
:class:`~.table.NameTable`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

from ..addr import ServiceAddr, ServiceRange
from ..errors import AddressError, ClosedError
from ..events import SubFilter, TopologyEvent
from .bindings import as_range
from .subscr import Subscription, subscribe
from .table import NameTable

__all__ = ["TopologySubscription", "TopologyServer"]

_ACTIVE, _FINISHING, _CLOSED = 0, 1, 2


class TopologySubscription:
    """Topology events for one ``(target, filter)``: snapshot, marker, then live changes.

    :meth:`aclose` cancels the subscription and ends iteration at once (queued events are
    discarded), also for a task blocked in it. When the node closes or crashes, queued
    events are still yielded, then iteration ends.
    """

    def __init__(self, server: TopologyServer, target: ServiceRange, filter: SubFilter) -> None:
        self._server = server
        self._target = target
        self._filter = filter
        self._queue: deque[TopologyEvent] = deque()
        self._state = _ACTIVE
        self._waiter: asyncio.Future[None] | None = None
        self._sub: Subscription | None = None

    @property
    def target(self) -> ServiceRange:
        """The subscribed range."""
        return self._target

    @property
    def filter(self) -> SubFilter:
        """The subscription filter."""
        return self._filter

    @property
    def closed(self) -> bool:
        """True once no further events will be queued."""
        return self._state != _ACTIVE

    def __len__(self) -> int:
        """Number of queued, unconsumed events."""
        return len(self._queue)

    def _push(self, event: TopologyEvent) -> None:
        if self._state != _ACTIVE:
            return
        self._queue.append(event)
        self._wake()

    def _finish(self) -> None:
        """The node went away: yield what is queued, then stop."""
        if self._state == _ACTIVE:
            self._state = _FINISHING
            if self._sub is not None:
                self._sub.cancel()
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> TopologyEvent | None:
        """The next queued event, or ``None`` if none is queued right now."""
        if self._state == _CLOSED or not self._queue:
            return None
        return self._queue.popleft()

    def __aiter__(self) -> TopologySubscription:
        return self

    async def __anext__(self) -> TopologyEvent:
        while True:
            if self._state == _CLOSED:
                raise StopAsyncIteration
            if self._queue:
                return self._queue.popleft()
            if self._state == _FINISHING:
                raise StopAsyncIteration
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter

    async def aclose(self) -> None:
        """Cancel the subscription; iteration ends (also for a task blocked in it)."""
        if self._state == _CLOSED:
            return
        self._state = _CLOSED
        self._queue.clear()
        if self._sub is not None:
            self._sub.cancel()
        self._server._forget(self)
        self._wake()

    async def __aenter__(self) -> TopologySubscription:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = ("active", "finishing", "closed")[self._state]
        return f"<{type(self).__name__} {self._target} {self._filter.name} {state} queued={len(self._queue)}>"


class TopologyServer:
    """Local subscriptions on one node's name table."""

    def __init__(self, table: NameTable) -> None:
        self._table = table
        self._subs: dict[TopologySubscription, None] = {}
        self._closed = False

    def subscribe(
        self, target: ServiceRange | ServiceAddr, filter: SubFilter = SubFilter.PORTS
    ) -> TopologySubscription:
        """A new subscription; its snapshot and marker are queued before this returns.

        Raises :class:`ClosedError` after :meth:`close` and :class:`AddressError` for a target
        that is not a name or a filter other than ``PORTS``/``SERVICE``.
        """
        if self._closed:
            raise ClosedError("the node is closed")
        rng = as_range(target)
        if filter is not SubFilter.PORTS and filter is not SubFilter.SERVICE:
            try:
                filter = SubFilter(filter)
            except ValueError:
                raise AddressError(
                    f"subscription filter must be SubFilter.PORTS or SubFilter.SERVICE, got {filter!r}"
                ) from None
        ts = TopologySubscription(self, rng, filter)
        ts._sub = subscribe(self._table, rng, filter, ts._push)
        self._subs[ts] = None
        return ts

    def _forget(self, ts: TopologySubscription) -> None:
        self._subs.pop(ts, None)

    def close(self) -> None:
        """The node is going away: every subscription ends after its queued events."""
        self._closed = True
        for ts in list(self._subs):
            ts._finish()
        self._subs.clear()

    def __len__(self) -> int:
        return len(self._subs)
