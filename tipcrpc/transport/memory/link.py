"""Directed in-process links between memory nodes: ordered queues pumped by the loop.

A :class:`Link` carries every message from one node to another (or to itself, the
loopback link): data, returned messages, name-distribution items and the graceful-leave
notice, in one FIFO. That single queue is what gives the TIPC guarantees the transport
promises: per sender/receiver order, name distribution in publish order, and a late
(delayed or "retransmitted") message holding back everything behind it.

Messages are plain tuples ``(kind, src, dest, data, port, extra)`` to keep the hot path
free of per-message object construction.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .faults import LinkFaults

__all__ = ["Link", "Message", "DIRECT", "NAMED", "MCAST", "RETURNED", "DISTR", "LEAVE"]

#: ``(kind, src, dest, data, port, extra)``; see the kind constants for field meanings.
Message = tuple[int, Any, Any, Any, int, Any]

#: Data to a socket address: ``src`` SocketAddr, ``dest`` SocketAddr, ``port`` = dest port.
DIRECT = 0
#: Anycast data: ``dest`` ServiceAddr, ``port`` chosen by the lookup, ``extra`` reroute count.
NAMED = 1
#: Multicast data: ``dest`` ServiceRange, destination sockets looked up at the receiver.
MCAST = 2
#: A rejected message on its way back: ``src`` = original sender (``port`` its port),
#: ``dest`` what it addressed, ``data`` truncated, ``extra`` the DeliveryFailure.
RETURNED = 3
#: Name distribution: ``src`` origin node address, ``port`` the op, ``extra`` the items.
DISTR = 4
#: The sending node is leaving gracefully; everything it sent before has been delivered.
LEAVE = 5

DATA_KINDS = (DIRECT, NAMED, MCAST)


class Link:
    """One direction of a link (``src`` node to ``dst`` node).

    ``blocked`` models a silent partition or a crashed peer during the link tolerance:
    messages are accepted and held (TIPC keeps retransmitting them), and either released
    when the partition heals or bounced when the link is finally declared down.
    """

    __slots__ = (
        "src",
        "dst",
        "up",
        "blocked",
        "_loop",
        "_queue",
        "_receive",
        "_faults",
        "_rng",
        "_handle",
    )

    def __init__(
        self,
        src: int,
        dst: int,
        loop: asyncio.AbstractEventLoop,
        receive: Callable[[Message], None],
        faults: Callable[[], LinkFaults | None],
        rng: Any,
    ) -> None:
        self.src = src
        self.dst = dst
        self.up = True
        self.blocked = False
        self._loop = loop
        self._queue: deque[tuple[float, Message]] = deque()
        self._receive = receive
        self._faults = faults  # looked up per message so fault changes apply at once
        self._rng = rng
        self._handle: asyncio.Handle | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def send(self, msg: Message) -> None:
        """Queue ``msg`` for in-order delivery to the destination node."""
        faults = self._faults()
        if faults is None or faults.is_null:
            self._queue.append((0.0, msg))
        else:
            # No need to keep ``at`` monotonic: only the queue head is ever examined, so a
            # message never overtakes an earlier, later-due one (head-of-line blocking).
            at = self._loop.time() + faults.latency(self._rng)
            self._queue.append((at, msg))
            if msg[0] in DATA_KINDS and faults.duplicates(self._rng):
                self._queue.append((at, msg))
        if self._handle is None and not self.blocked:
            self._schedule()

    def _schedule(self) -> None:
        if not self._queue:
            return
        at = self._queue[0][0]
        delay = at - self._loop.time() if at else 0.0
        if delay <= 0:
            self._handle = self._loop.call_soon(self._pump)
        else:
            self._handle = self._loop.call_later(delay, self._pump)

    def _pump(self) -> None:
        self._handle = None
        if self.blocked or not self.up:
            return
        queue = self._queue
        budget = len(queue)  # only what was queued when we started: fairness for echo loops
        now = 0.0
        try:
            while budget and queue:
                at = queue[0][0]
                if at:
                    if not now:
                        now = self._loop.time()
                    if at > now:
                        break
                msg = queue.popleft()[1]
                budget -= 1
                self._receive(msg)
                if self.blocked or not self.up:
                    return
        finally:
            if queue and self._handle is None and self.up and not self.blocked:
                self._schedule()

    def block(self) -> None:
        """Hold messages (partition or dead peer, within the link tolerance)."""
        self.blocked = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def unblock(self) -> None:
        """Release held messages (the partition healed within the tolerance)."""
        self.blocked = False
        if self._handle is None and self.up:
            self._schedule()

    def shut(self) -> list[Message]:
        """Take the link down; returns the messages that were never delivered."""
        self.up = False
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        msgs = [m for _, m in self._queue]
        self._queue.clear()
        return msgs
