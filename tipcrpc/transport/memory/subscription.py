"""Topology subscriptions of the memory transport: an async iterator over a queue."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Callable

from ...addr import ServiceRange
from ...events import SNAPSHOT_COMPLETE, SubFilter, TopologyEvent

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["MemorySubscription"]

_ACTIVE, _FINISHING, _CLOSED = 0, 1, 2


class MemorySubscription:
    """Topology events for one ``(target, filter)``: snapshot, marker, then live changes.

    Events are queued synchronously by the node's name table, so nothing is missed
    between the snapshot and the first live event. :meth:`aclose` ends iteration at once
    (queued events are discarded); when the transport closes or its node is killed,
    queued events are still yielded and then iteration ends.
    """

    def __init__(
        self,
        target: ServiceRange,
        filter: SubFilter,
        on_close: Callable[[MemorySubscription], None],
    ) -> None:
        self._target = target
        self._filter = filter
        self._queue: deque[TopologyEvent] = deque()
        self._state = _ACTIVE
        self._waiter: asyncio.Future[None] | None = None
        self._on_close = on_close

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
        """Number of events queued and not yet consumed."""
        return len(self._queue)

    def _start(self, snapshot: list[TopologyEvent]) -> None:
        """Queue the snapshot and the marker (before any live event can be pushed)."""
        self._queue.extendleft(reversed([*snapshot, SNAPSHOT_COMPLETE]))

    def _push(self, event: TopologyEvent) -> None:
        if self._state != _ACTIVE:
            return
        self._queue.append(event)
        self._wake()

    def _finish(self) -> None:
        """The transport went away: yield what is queued, then stop."""
        if self._state == _ACTIVE:
            self._state = _FINISHING
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

    def __aiter__(self) -> MemorySubscription:
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
        self._on_close(self)
        self._wake()

    async def __aenter__(self) -> MemorySubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = ("active", "finishing", "closed")[self._state]
        return f"<MemorySubscription {self._target} {self._filter.name} {state} queued={len(self._queue)}>"
