"""Frame transfer over one endpoint, shared by client and server (layer L4).

:class:`FrameLink` sits between the RPC logic and an :class:`~tipcrpc.transport.base.Endpoint`:

* ``send(dest, frame)`` sends a frame as one datagram, or — above ``max_message`` — as
  windowed CHUNKs (:class:`~tipcrpc.rpc.chunks.ChunkSender`), refusing frames above
  ``max_frame`` with :class:`~tipcrpc.errors.FrameTooLarge`;
* ``on_chunk``/``on_chunk_ack`` feed incoming CHUNK/CHUNK_ACK frames (reassembly, acks,
  releasing more chunks);
* ``on_overload`` re-sends a datagram the destination refused with ``OVERLOAD`` after a
  short exponential backoff. A returned datagram holds at most 1024 bytes, so frames larger
  than that are kept in a bounded FIFO cache (``resend_cache_bytes``) when sent with
  ``cache=True``; chunks are re-sent from their :class:`ChunkSender`.

Everything here runs inside the endpoint's handler callback or a ``call_later`` timer: no
tasks on the per-message path.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any, Callable, Coroutine, cast

from ..addr import Importance, SocketAddr
from ..errors import ClosedError, FrameTooLarge, TransportError
from ..fastpath import Timer
from ..transport.base import RETURNED_DATA_MAX, Endpoint
from .chunks import DEFAULT_MAX_FRAME, DEFAULT_REASSEMBLY_TTL, DEFAULT_WINDOW, ChunkSender, Reassembler
from .frames import HEADER_SIZE, decode_chunk, decode_chunk_ack, encode_chunk_ack

__all__ = ["FrameLink", "Background", "TableTimer", "OVERLOAD_BACKOFF_S", "OVERLOAD_MAX_RETRIES"]

log = logging.getLogger("tipcrpc.rpc")

#: First backoff after an OVERLOAD return; doubles per retry of the same datagram.
OVERLOAD_BACKOFF_S = 0.002
#: Backoff never exceeds this.
OVERLOAD_BACKOFF_MAX_S = 0.1
#: After this many OVERLOAD returns of one datagram, give up (the owner is told).
OVERLOAD_MAX_RETRIES = 40


class FrameLink:
    """Chunking, reassembly and overload re-sends for one endpoint."""

    def __init__(
        self,
        *,
        max_message: int,
        max_frame: int = DEFAULT_MAX_FRAME,
        window: int = DEFAULT_WINDOW,
        reassembly_ttl: float = DEFAULT_REASSEMBLY_TTL,
        resend_cache_bytes: int = 8 << 20,
    ) -> None:
        self.endpoint: Endpoint | None = None
        self.max_message = max_message
        self.max_frame = max_frame
        self.window = window
        self.reassembler = Reassembler(max_frame=max_frame, ttl=reassembly_ttl)
        self._senders: dict[tuple[SocketAddr, int], ChunkSender] = {}
        self._importance: dict[tuple[SocketAddr, int], Importance] = {}
        self._msg_id = 0
        self._cache: OrderedDict[tuple[SocketAddr, bytes], bytes] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = resend_cache_bytes
        self._retries: dict[tuple[SocketAddr, bytes], int] = {}
        self._timers: set[Timer] = set()
        self._closed = False
        #: Count of datagrams re-sent after OVERLOAD.
        self.overload_resends = 0

    def attach(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    # -- sending ------------------------------------------------------------------------------

    def send(self, dest: SocketAddr, frame: bytes, importance: Importance = Importance.LOW, *, cache: bool = False) -> None:
        """Send one frame, chunked if needed. Raises FrameTooLarge, ClosedError, TransportError."""
        endpoint = self.endpoint
        if endpoint is None or self._closed:
            raise ClosedError("endpoint is closed")
        n = len(frame)
        if n <= self.max_message:
            endpoint.send(dest, frame, importance=importance)
            if cache and n > RETURNED_DATA_MAX:
                self._remember(dest, frame)
            return
        if n > self.max_frame:
            raise FrameTooLarge(f"frame of {n} bytes exceeds the limit of {self.max_frame} bytes")
        self._msg_id = msg_id = (self._msg_id + 1) & 0xFFFF_FFFF
        call_id = int.from_bytes(frame[8:16], "big")
        sender = ChunkSender(frame, call_id=call_id, msg_id=msg_id, max_message=self.max_message, window=self.window)
        key = (dest, msg_id)
        self._senders[key] = sender
        self._importance[key] = importance
        self._pump(key, sender)

    def _pump(self, key: tuple[SocketAddr, int], sender: ChunkSender) -> None:
        endpoint = self.endpoint
        if endpoint is None or self._closed:
            return
        imp = self._importance.get(key, Importance.LOW)
        for chunk in sender.take():
            endpoint.send(key[0], chunk, importance=imp)

    def _remember(self, dest: SocketAddr, frame: bytes) -> None:
        key = (dest, frame[:HEADER_SIZE])
        old = self._cache.pop(key, None)
        if old is not None:
            self._cache_bytes -= len(old)
        self._cache[key] = frame
        self._cache_bytes += len(frame)
        while self._cache_bytes > self._cache_limit and self._cache:
            _, dropped = self._cache.popitem(last=False)
            self._cache_bytes -= len(dropped)

    def abort_call(self, dest: SocketAddr | None, call_id: int) -> None:
        """Stop sending chunks of any frame of ``call_id`` (to ``dest``, or anywhere) and
        drop any partial frame of it being received from ``dest``."""
        if dest is not None and self.reassembler.buffered:
            self.reassembler.discard_call(dest, call_id)
        for key in [k for k, s in self._senders.items() if s.call_id == call_id and (dest is None or k[0] == dest)]:
            del self._senders[key]
            self._importance.pop(key, None)

    def sending_to(self, dest: SocketAddr, call_id: int) -> bool:
        """Whether chunks of ``call_id`` to ``dest`` are still unacknowledged."""
        return any(k[0] == dest and s.call_id == call_id for k, s in self._senders.items())

    # -- receiving ----------------------------------------------------------------------------

    def on_chunk(self, source: SocketAddr, aux: int, call_id: int, data: bytes | bytearray, now: float) -> bytearray | None:
        """Feed a CHUNK; returns the whole frame once complete. Raises ProtocolError/FrameTooLarge."""
        total, index, chunk_size, payload = decode_chunk(data)
        frame, ack = self.reassembler.feed(source, call_id, aux, total, index, chunk_size, payload, now)
        if ack is not None and self.endpoint is not None and not self._closed:
            try:
                self.endpoint.send(source, encode_chunk_ack(call_id, aux, ack), importance=Importance.HIGH)
            except TransportError:
                pass  # the peer is gone; its partial frame will expire
        return frame

    def on_chunk_ack(self, source: SocketAddr, aux: int, data: bytes | bytearray) -> None:
        """Feed a CHUNK_ACK: release more chunks or finish the transfer."""
        key = (source, aux)
        sender = self._senders.get(key)
        if sender is None:
            return
        sender.on_ack(decode_chunk_ack(data))
        if sender.done:
            del self._senders[key]
            self._importance.pop(key, None)
        else:
            self._pump(key, sender)

    # -- undeliverable ------------------------------------------------------------------------

    def _backoff(self, key: tuple[SocketAddr, bytes]) -> float | None:
        n = self._retries.get(key, 0) + 1
        if n > OVERLOAD_MAX_RETRIES:
            self._retries.pop(key, None)
            return None
        self._retries[key] = n
        if len(self._retries) > 65536:  # forget the oldest half; only a bound on memory
            for k in list(self._retries)[:32768]:
                del self._retries[k]
        delay: float = min(OVERLOAD_BACKOFF_S * (2 ** (n - 1)), OVERLOAD_BACKOFF_MAX_S)
        return delay

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` after ``delay`` seconds unless the link closes first."""
        loop = asyncio.get_running_loop()
        handle: Timer

        def fire() -> None:
            self._timers.discard(handle)
            if not self._closed:
                fn()

        handle = cast(Any, loop).call_later(delay, fire)  # uvloop's handle: see fastpath.Timer
        self._timers.add(handle)

    def on_overload(self, dest: SocketAddr, data: bytes, kind: int, aux: int) -> bool:
        """A datagram came back with OVERLOAD. Returns ``True`` if a re-send was scheduled,
        ``False`` if this link cannot re-send it (the owner must handle it)."""
        from .frames import Kind  # local: keeps the hot import list short

        if kind == Kind.CHUNK:
            key = (dest, aux)
            sender = self._senders.get(key)
            if sender is None or len(data) < HEADER_SIZE + 16:
                return True  # transfer already finished or aborted: nothing to do
            index = decode_chunk(data)[1]
            delay = self._backoff((dest, bytes(data[: HEADER_SIZE + 16])))
            if delay is None:
                return False
            sender.on_returned(index)
            self.later(delay, lambda: self._pump(key, sender) if self._senders.get(key) is sender else None)
            self.overload_resends += 1
            return True
        ckey = (dest, bytes(data[:HEADER_SIZE]))
        frame = self._cache.get(ckey)
        if frame is None:
            if len(data) >= RETURNED_DATA_MAX:
                return False  # truncated and not cached
            frame = bytes(data)
        delay = self._backoff(ckey)
        if delay is None:
            return False

        def resend() -> None:
            try:
                if self.endpoint is not None:
                    self.endpoint.send(dest, frame)
            except TransportError:
                pass

        self.later(delay, resend)
        self.overload_resends += 1
        return True

    def pending_resend(self, dest: SocketAddr, call_id: int) -> bool:
        """Whether a reply/stream frame of ``call_id`` to ``dest`` awaits an overload re-send."""
        return any(k[0] == dest and int.from_bytes(k[1][8:16], "big") == call_id for k in self._retries)

    # -- housekeeping -------------------------------------------------------------------------

    def expire(self, now: float) -> list[tuple[object, int]]:
        """Garbage-collect stale partial frames; returns ``(peer, call_id)`` of each."""
        return self.reassembler.expire(now)

    def drop_node(self, node: int) -> None:
        """Forget partial frames and chunk transfers involving ``node``."""
        self.reassembler.drop_peer(lambda p: isinstance(p, SocketAddr) and p.node == node)
        for key in [k for k in self._senders if k[0].node == node]:
            del self._senders[key]
            self._importance.pop(key, None)

    def close(self) -> None:
        self._closed = True
        for h in self._timers:
            h.cancel()
        self._timers.clear()
        self._senders.clear()
        self._cache.clear()
        self._cache_bytes = 0


class TableTimer:
    """The one loop timer a table shell keeps for its table's ``next_timer``.

    :meth:`arm` (after every event) re-arms it only when the table needs an earlier
    wake-up than the one armed; when it fires, ``fire`` runs the table's ``timeout``.
    """

    __slots__ = ("_fire", "_handle", "_at")

    def __init__(self, fire: Callable[[], None]) -> None:
        self._fire = fire
        self._handle: Timer | None = None
        self._at = 0.0

    def arm(self, loop: asyncio.AbstractEventLoop, when: float | None) -> None:
        if when is not None and (self._handle is None or when < self._at):
            if self._handle is not None:
                self._handle.cancel()
            self._at = when
            self._handle = cast(Any, loop).call_at(when, self._fired)  # see fastpath.Timer

    def _fired(self) -> None:
        self._handle = None
        self._fire()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Background:
    """Background tasks of a client or server (subscriptions, housekeeping).

    Plain asyncio tasks rather than an anyio task group on purpose: a Client or Server may be
    opened in one task and closed in another (application start-up and shut-down hooks),
    which a task group's cancel scope forbids. :meth:`aclose` cancels and awaits them all;
    a task that fails is logged, never silently lost.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            coro.close()
            raise ClosedError(f"{self._name} is closed")
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("%s: background task %s failed", self._name, task.get_name(), exc_info=exc)

    async def aclose(self) -> None:
        self._closed = True
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)
