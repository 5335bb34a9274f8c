"""The userspace node's local topology server: subscriptions as async iterators.

The kernel's topology server (``net/tipc/topsrv.c``) queues ``tipc_event`` records on a
SEQPACKET connection; here each :meth:`TopologyServer.subscribe` returns a
:class:`UserSubscription` whose queue is filled synchronously by the name table (through
:mod:`.subscr`), so no event can slip between the replayed snapshot, the
:data:`~tipcrpc.events.SNAPSHOT_COMPLETE` marker and the first live change.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

from ...addr import ServiceRange
from ...errors import AddressError, ClosedError, LocalProtocolError
from ...events import SubFilter, TopologyEvent
from .name_table import NameTable
from .subscr import Subscription, subscribe

__all__ = ["UserSubscription", "TopologyServer"]

_ACTIVE, _FINISHING, _CLOSED = 0, 1, 2


class UserSubscription:
    """Topology events for one ``(target, filter)``: snapshot, marker, then live changes.

    :meth:`aclose` cancels the subscription and ends iteration at once (queued events are
    discarded). When the transport closes, queued events are still yielded, then iteration
    ends.
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
        return self._target

    @property
    def filter(self) -> SubFilter:
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
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _finish(self) -> None:
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
        """The next queued event, or ``None``."""
        if self._state == _CLOSED or not self._queue:
            return None
        return self._queue.popleft()

    def __aiter__(self) -> UserSubscription:
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

    async def __aenter__(self) -> UserSubscription:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = ("active", "finishing", "closed")[self._state]
        return f"<UserSubscription {self._target} {self._filter.name} {state} queued={len(self._queue)}>"


class TopologyServer:
    """Local subscriptions on one node's name table."""

    def __init__(self, table: NameTable) -> None:
        self._table = table
        self._subs: dict[UserSubscription, None] = {}
        self._closed = False

    def subscribe(self, target: ServiceRange, filter: SubFilter = SubFilter.PORTS) -> UserSubscription:
        """A new subscription; its snapshot and marker are queued before this returns."""
        if self._closed:
            raise ClosedError("the transport is closed")
        if not isinstance(target, ServiceRange):
            raise AddressError(f"subscribe() takes a ServiceRange, got {target!r}")
        try:
            f = SubFilter(filter)
        except ValueError:
            raise LocalProtocolError(
                f"illegal subscription filter {filter!r}: use SubFilter.PORTS or SubFilter.SERVICE"
            ) from None
        us = UserSubscription(self, target, f)
        us._sub = subscribe(self._table, target, us._filter, us._push)
        self._subs[us] = None
        return us

    def _forget(self, us: UserSubscription) -> None:
        self._subs.pop(us, None)

    def close(self) -> None:
        """The node is going away: every subscription ends after its queued events."""
        self._closed = True
        for us in list(self._subs):
            us._finish()
        self._subs.clear()

    def __len__(self) -> int:
        return len(self._subs)
