"""Large frames as chunks, with windowed flow control (layer L1, pure).

A frame longer than the transport's datagram limit (``max_message``, 66 000 bytes on TIPC)
is cut into CHUNK datagrams of ``chunk_size = max_message - CHUNK_HEADER_SIZE`` bytes (the
last one shorter). Each chunk names its message (``msg_id``, chosen by the sender, unique
per sending socket), the frame's total length, its index and the chunk size, so chunks are
self-describing and may arrive in any order. The header also carries the inner frame's
call id, so a *returned* chunk still tells the sender which call and which chunk it was.

Flow control: kernel RDM sockets have no end-to-end flow control and a 2 MiB receive
buffer (at LOW importance); overflowing it makes the kernel return datagrams with
``OVERLOAD``. So the sender keeps at most ``window`` bytes (default 1 MiB) sent but not
acknowledged; the receiver sends a CHUNK_ACK carrying the number of bytes received every
:data:`ACK_INTERVAL` bytes and when the message is complete. A chunk returned with
``OVERLOAD`` is queued with :meth:`ChunkSender.on_returned` and sent again by the next
:meth:`ChunkSender.take` (the I/O shell waits a short backoff first) — nothing is lost.

The receiver's :class:`Reassembler` bounds memory twice: no frame may exceed ``max_frame``
(default :data:`DEFAULT_MAX_FRAME` = 128 MiB, so a 64 MiB argument fits with room to spare)
and all partial frames together may not exceed ``max_buffered``. Partial frames idle for
longer than ``ttl`` seconds are dropped by :meth:`Reassembler.expire`, and
:meth:`Reassembler.drop_peer` forgets a lost peer's.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Hashable

from ..errors import FrameTooLarge, LocalProtocolError, RemoteProtocolError
from .frames import CHUNK_HEADER_SIZE, HEADER_SIZE, encode_chunk

__all__ = [
    "ACK_INTERVAL",
    "DEFAULT_WINDOW",
    "DEFAULT_MAX_FRAME",
    "DEFAULT_REASSEMBLY_TTL",
    "ChunkSender",
    "Reassembler",
]

#: The receiver acknowledges after at least this many new bytes (and at completion).
ACK_INTERVAL = 256 * 1024
#: Default bytes in flight per chunked message; must exceed ACK_INTERVAL plus one chunk.
DEFAULT_WINDOW = 1024 * 1024
#: Default largest frame (and so argument/result) either side accepts.
DEFAULT_MAX_FRAME = 128 * 1024 * 1024
#: Default seconds a partial frame may sit idle before it is garbage-collected.
DEFAULT_REASSEMBLY_TTL = 30.0


class ChunkSender:
    """Cuts one frame into chunks and releases them as the window allows.

    Usage (by the I/O shell): ``take()`` once and send what it returns; on every CHUNK_ACK
    call ``on_ack(received)`` then ``take()`` again; on a chunk returned with OVERLOAD call
    ``on_returned(index)`` and, after a backoff, ``take()``. ``done`` once everything was
    acknowledged.
    """

    __slots__ = ("call_id", "msg_id", "frame", "total", "chunk_size", "count", "window", "_next", "_acked", "_resend")

    def __init__(self, frame: bytes, *, call_id: int, msg_id: int, max_message: int, window: int = DEFAULT_WINDOW) -> None:
        chunk_size = max_message - CHUNK_HEADER_SIZE
        if chunk_size <= 0:
            raise LocalProtocolError(f"max_message {max_message} leaves no room for chunk payload")
        if len(frame) < HEADER_SIZE:
            raise LocalProtocolError("only whole frames can be chunked")
        self.call_id = call_id
        self.msg_id = msg_id
        self.frame = frame
        self.total = len(frame)
        self.chunk_size = chunk_size
        self.count = -(-self.total // chunk_size)
        # The receiver only acks every ACK_INTERVAL bytes: a smaller window would deadlock.
        self.window = max(window, ACK_INTERVAL + chunk_size)
        self._next = 0  # index of the next never-sent chunk
        self._acked = 0  # bytes the receiver confirmed
        self._resend: list[int] = []  # indexes returned with OVERLOAD, to send again

    @property
    def done(self) -> bool:
        """Every byte was acknowledged by the receiver."""
        return self._acked >= self.total

    @property
    def acked(self) -> int:
        return self._acked

    def _chunk(self, index: int) -> bytes:
        start = index * self.chunk_size
        view = memoryview(self.frame)[start : start + self.chunk_size]
        return encode_chunk(self.call_id, self.msg_id, self.total, index, self.chunk_size, view)

    def take(self) -> list[bytes]:
        """The chunks that may be sent now: pending resends first, then new ones."""
        out: list[bytes] = []
        if self._resend:
            # Returned chunks were never received, so they still occupy the window: resend
            # them regardless of it.
            out.extend(self._chunk(i) for i in sorted(self._resend))
            self._resend.clear()
        while self._next < self.count and self._next * self.chunk_size - self._acked < self.window:
            out.append(self._chunk(self._next))
            self._next += 1
        return out

    def on_ack(self, received: int) -> None:
        """The receiver has ``received`` bytes (monotonic; stale or bogus values ignored)."""
        if self._acked < received <= self.total:
            self._acked = received

    def on_returned(self, index: int) -> None:
        """Chunk ``index`` came back (OVERLOAD); queue it for :meth:`take`."""
        if 0 <= index < self._next and index not in self._resend:
            self._resend.append(index)


class _Partial:
    __slots__ = ("call_id", "total", "chunk_size", "count", "buf", "have", "received", "last_ack", "touched")

    def __init__(self, call_id: int, total: int, chunk_size: int, now: float) -> None:
        self.call_id = call_id
        self.total = total
        self.chunk_size = chunk_size
        self.count = -(-total // chunk_size)
        self.buf = bytearray(total)
        self.have: set[int] = set()
        self.received = 0
        self.last_ack = 0
        self.touched = now


class Reassembler:
    """Collects chunks per ``(peer, msg_id)`` until a frame is whole.

    :meth:`feed` returns ``(frame or None, ack or None)``: the completed frame (a
    ``bytearray``) and, when due, the ``received`` count to send back in a CHUNK_ACK.
    """

    def __init__(
        self,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_buffered: int | None = None,
        ttl: float = DEFAULT_REASSEMBLY_TTL,
        ack_interval: int = ACK_INTERVAL,
    ) -> None:
        self.max_frame = max_frame
        self.max_buffered = max_buffered if max_buffered is not None else 2 * max_frame
        self.ttl = ttl
        self.ack_interval = ack_interval
        self._partials: dict[tuple[Hashable, int], _Partial] = {}
        self._buffered = 0
        # Messages we refused, so their remaining chunks are dropped quietly (bounded, FIFO).
        self._rejected: OrderedDict[tuple[Hashable, int], None] = OrderedDict()

    @property
    def buffered(self) -> int:
        """Bytes currently held in partial frames."""
        return self._buffered

    def __len__(self) -> int:
        return len(self._partials)

    def _reject(self, key: tuple[Hashable, int]) -> None:
        self._rejected[key] = None
        while len(self._rejected) > 1024:
            self._rejected.popitem(last=False)

    def feed(
        self,
        peer: Hashable,
        call_id: int,
        msg_id: int,
        total: int,
        index: int,
        chunk_size: int,
        payload: bytes | memoryview,
        now: float,
    ) -> tuple[bytearray | None, int | None]:
        """Add one chunk. Raises :class:`FrameTooLarge` (over ``max_frame`` or the buffer budget)
        or :class:`RemoteProtocolError` (inconsistent chunk); after either, the rest of that
        message is ignored.
        """
        key = (peer, msg_id)
        if key in self._rejected:
            return None, None
        part = self._partials.get(key)
        if part is None:
            if total > self.max_frame:
                self._reject(key)
                raise FrameTooLarge(f"incoming frame of {total} bytes exceeds the limit of {self.max_frame} bytes")
            if total < HEADER_SIZE or chunk_size <= 0 or chunk_size >= total:
                self._reject(key)
                raise RemoteProtocolError(f"bad chunked frame: total {total}, chunk size {chunk_size}")
            if self._buffered + total > self.max_buffered:
                self._reject(key)
                raise FrameTooLarge(
                    f"incoming frame of {total} bytes does not fit the reassembly budget "
                    f"({self._buffered} of {self.max_buffered} bytes in use)"
                )
            part = _Partial(call_id, total, chunk_size, now)
            self._partials[key] = part
            self._buffered += total
        elif total != part.total or chunk_size != part.chunk_size or call_id != part.call_id:
            self.discard(peer, msg_id)
            self._reject(key)
            raise RemoteProtocolError(f"chunk of message {msg_id} disagrees with earlier chunks")
        if index >= part.count:
            self.discard(peer, msg_id)
            self._reject(key)
            raise RemoteProtocolError(f"chunk index {index} out of range (message has {part.count} chunks)")
        start = index * chunk_size
        expected = min(chunk_size, total - start)
        if len(payload) != expected:
            self.discard(peer, msg_id)
            self._reject(key)
            raise RemoteProtocolError(f"chunk {index} carries {len(payload)} bytes, expected {expected}")
        part.touched = now
        if index in part.have:
            return None, part.received  # duplicate: re-acknowledge, store nothing
        part.buf[start : start + expected] = payload
        part.have.add(index)
        part.received += expected
        if part.received == total:
            del self._partials[key]
            self._buffered -= total
            return part.buf, total
        if part.received - part.last_ack >= self.ack_interval:
            part.last_ack = part.received
            return None, part.received
        return None, None

    def has_call(self, peer: Hashable, call_id: int) -> bool:
        """Whether a partial frame of ``call_id`` from ``peer`` is being collected."""
        return any(k[0] == peer and p.call_id == call_id for k, p in self._partials.items())

    def discard_call(self, peer: Hashable, call_id: int) -> None:
        """Forget every partial frame of ``call_id`` from ``peer`` (its call ended)."""
        for key in [k for k, p in self._partials.items() if k[0] == peer and p.call_id == call_id]:
            self._buffered -= self._partials.pop(key).total

    def discard(self, peer: Hashable, msg_id: int) -> None:
        """Forget one partial frame (e.g. its call was cancelled)."""
        part = self._partials.pop((peer, msg_id), None)
        if part is not None:
            self._buffered -= part.total

    def drop_peer(self, match: Callable[[Hashable], bool]) -> list[tuple[Hashable, int]]:
        """Forget every partial frame whose peer satisfies ``match``; returns ``(peer, call_id)``."""
        dropped = []
        for key in [k for k in self._partials if match(k[0])]:
            part = self._partials.pop(key)
            self._buffered -= part.total
            dropped.append((key[0], part.call_id))
        return dropped

    def expire(self, now: float) -> list[tuple[Hashable, int]]:
        """Drop partial frames idle for longer than ``ttl``; returns ``(peer, call_id)`` of each."""
        limit = now - self.ttl
        dropped = []
        for key in [k for k, p in self._partials.items() if p.touched < limit]:
            part = self._partials.pop(key)
            self._buffered -= part.total
            self._reject(key)
            dropped.append((key[0], part.call_id))
        return dropped

    def next_expiry(self) -> float | None:
        """When :meth:`expire` should next run, or ``None`` if nothing is buffered."""
        if not self._partials:
            return None
        return min(p.touched for p in self._partials.values()) + self.ttl
