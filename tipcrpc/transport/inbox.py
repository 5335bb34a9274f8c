"""A ready-made :data:`~tipcrpc.transport.base.MessageHandler` that queues what arrives.

Handy in tests and for simple users who prefer ``await inbox.get()`` to callbacks::

    inbox = Inbox()
    ep = await transport.open_endpoint(inbox)
    item = await inbox.get()          # Delivery or Returned, in arrival order
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Iterator, Union

from .base import Delivery, Returned

__all__ = ["Inbox"]

Item = Union[Delivery, Returned]


class Inbox:
    """Queues every :class:`Delivery`/:class:`Returned` passed to it, in arrival order.

    Unbounded (a test helper, not a flow-control device). Any number of tasks may wait
    in :meth:`get`; each item goes to exactly one of them, first come first served.
    """

    def __init__(self) -> None:
        self._items: deque[Item] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()

    def __call__(self, item: Item) -> None:
        """The handler entry point: queue ``item`` and wake one waiting getter."""
        self._items.append(item)
        self._wake_one()

    def __len__(self) -> int:
        """Number of queued items."""
        return len(self._items)

    def __iter__(self) -> Iterator[Item]:
        """Iterate over the queued items without consuming them."""
        return iter(list(self._items))

    def get_nowait(self) -> Item:
        """The oldest queued item; raises :class:`asyncio.QueueEmpty` if there is none."""
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    async def get(self) -> Item:
        """Wait for and return the oldest item (wrap in a timeout as needed)."""
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                # Cancelled after being woken: pass the wake-up on so no item is stranded.
                if waiter.done() and not waiter.cancelled() and self._items:
                    self._wake_one()
                raise
        return self._items.popleft()

    async def get_many(self, n: int) -> list[Item]:
        """Wait for the next ``n`` items."""
        return [await self.get() for _ in range(n)]

    async def get_delivery(self) -> Delivery:
        """Wait for the next item and require it to be a :class:`Delivery`."""
        item = await self.get()
        if not isinstance(item, Delivery):
            raise AssertionError(f"expected a Delivery, got {item!r}")
        return item

    async def get_returned(self) -> Returned:
        """Wait for the next item and require it to be a :class:`Returned`."""
        item = await self.get()
        if not isinstance(item, Returned):
            raise AssertionError(f"expected a Returned, got {item!r}")
        return item

    def clear(self) -> list[Item]:
        """Remove and return every queued item."""
        items = list(self._items)
        self._items.clear()
        return items

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def __repr__(self) -> str:
        return f"<Inbox queued={len(self._items)} waiting={len(self._waiters)}>"
