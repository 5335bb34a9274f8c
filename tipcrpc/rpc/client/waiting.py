"""Callers waiting for an instance of a service type to be published (layer L4).

Used by :meth:`~tipcrpc.rpc.client.Client.wait_for` and by ``wait_ready`` calls (gRPC's
*wait-for-ready*). Two kinds of waiter, both woken by the resolver's ``on_published``
callback for their type:

* coroutines — ``wait_for()`` and calls that find no instance when they start — await
  :meth:`Waiting.changed`, a future resolved by the next publication;
* calls in flight that failover finds no new instance for are *parked*; the engine takes
  them back with :meth:`Waiting.take_parked` and re-sends them.

Deadlines bound both: the coroutine's own (``DeadlineExceeded``), and for parked calls the
client's pending table, which fails them as usual.
"""

from __future__ import annotations

import asyncio
from typing import Generic, Protocol, TypeVar

import anyio

from ...errors import ClosedError, DeadlineExceeded

__all__ = ["Waiting"]


class _Parkable(Protocol):
    type: int
    parked: bool


C = TypeVar("C", bound=_Parkable)


class Waiting(Generic[C]):
    """Futures and parked calls per service type."""

    __slots__ = ("_futures", "_parked")

    def __init__(self) -> None:
        self._futures: dict[int, list[asyncio.Future[None]]] = {}
        self._parked: dict[int, list[C]] = {}

    async def changed(self, loop: asyncio.AbstractEventLoop, stype: int, deadline: float | None, what: str) -> None:
        """Return after the next publication of ``stype``; DeadlineExceeded at ``deadline``."""
        fut: asyncio.Future[None] = loop.create_future()
        futures = self._futures.setdefault(stype, [])
        futures.append(fut)
        try:
            if deadline is None:
                await fut
                return
            delay = deadline - loop.time()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await fut
            if not fut.done():
                raise DeadlineExceeded(f"deadline passed while waiting for an instance of {what}")
        finally:
            if not fut.done():
                fut.cancel()
                if fut in futures:
                    futures.remove(fut)

    def park(self, call: C) -> None:
        """Keep ``call`` until a publication of its type."""
        call.parked = True
        self._parked.setdefault(call.type, []).append(call)

    def unpark(self, call: C) -> None:
        """Forget a parked ``call`` (it failed or completed otherwise)."""
        call.parked = False
        calls = self._parked.get(call.type)
        if calls is not None and call in calls:
            calls.remove(call)
            if not calls:
                del self._parked[call.type]

    def published(self, stype: int) -> list[C]:
        """A publication of ``stype`` appeared: wake the coroutines; return the parked calls
        (no longer parked: the caller re-sends or parks them again)."""
        futures = self._futures.pop(stype, None)
        if futures is not None:
            for fut in futures:
                if not fut.done():
                    fut.set_result(None)
        calls = self._parked.pop(stype, None)
        if calls is None:
            return []
        for call in calls:
            call.parked = False
        return calls

    def close(self) -> None:
        """The client closes: waiting coroutines get ClosedError; parked calls are dropped
        (the client fails every pending call itself)."""
        for futures in self._futures.values():
            for fut in futures:
                if not fut.done():
                    fut.set_exception(ClosedError("client closed"))
        self._futures.clear()
        self._parked.clear()
