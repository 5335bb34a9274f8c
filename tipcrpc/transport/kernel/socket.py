"""The kernel endpoint: one non-blocking ``AF_TIPC``/``SOCK_RDM`` socket on the event loop.

Receiving: ``loop.add_reader`` plus a ``recvmsg_into`` drain loop (a bounded batch per
wake-up so one busy socket cannot starve the loop) with room for the three TIPC control
messages. A 0-byte datagram carrying ``TIPC_ERRINFO`` is one of *our* messages coming
back: it becomes :class:`~tipcrpc.transport.base.Returned` with the first ≤ 1024 bytes
from ``TIPC_RETDATA``. ``TIPC_DEST_DROPPABLE`` is cleared on every socket, otherwise the
kernel drops undeliverable datagrams silently.

Where a datagram was sent (``Delivery.dest``) comes from ``TIPC_DESTNAME``: anycast to
``{t, i}`` arrives as ``(t, i, i)``, multicast to ``{t, l, u}`` as ``(t, l, u)``, a direct
send carries none. The kernel keeps no other trace of anycast vs multicast, so a multicast
to a *singleton* range ``{t, i, i}`` is reported as ``ServiceAddr(t, i)``.

Empty datagrams are refused (:class:`~tipcrpc.errors.LocalProtocolError`): the kernel's
``tipc_recvmsg`` skips messages that carry neither data nor an error code, so an empty
datagram would be lost silently at the receiver.

Sending: ``sendto`` on the non-blocking socket. ``EAGAIN`` (link congestion towards the
destination node) parks the datagram and everything after it in an outbox flushed by
``loop.add_writer`` — nothing is dropped and per-endpoint order is kept; :meth:`drain`
waits while the outbox is above its high-water mark. ``EHOSTUNREACH`` (no publication, or
the destination node is gone) raises :class:`~tipcrpc.errors.ServiceUnreachable`,
``EMSGSIZE`` :class:`~tipcrpc.errors.FrameTooLarge`, anything else
:class:`~tipcrpc.errors.KernelError`. A queued datagram that later fails that way comes
back as ``Returned`` (``NO_NAME`` for a name, ``NO_NODE`` for a socket address).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import warnings
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, Optional, Set, Tuple, Union

from ...addr import Importance, Scope, ServiceAddr, ServiceRange, SocketAddr, check_publishable
from ...errors import (
    AddressError,
    ClosedError,
    FrameTooLarge,
    KernelError,
    LocalProtocolError,
    ServiceUnreachable,
)
from ..base import MAX_MESSAGE, RETURNED_DATA_MAX, Delivery, DeliveryFailure, Destination, MessageHandler, Name, Returned
from . import wire

if TYPE_CHECKING:
    from .transport import KernelTransport

__all__ = ["KernelEndpoint", "DuplicatePublicationWarning", "Counters"]

log = logging.getLogger(__name__)

#: recvmsg control buffer: ERRINFO (8) + RETDATA (≤ 1024) + DESTNAME (12).
_CMSG_SPACE = socket.CMSG_SPACE(8) + socket.CMSG_SPACE(RETURNED_DATA_MAX) + socket.CMSG_SPACE(12)
#: Datagrams handled per readable wake-up before yielding to the loop.
_RECV_BATCH = 64
#: The outbox counts as full (``drain`` waits) from this many queued bytes or datagrams.
HIGH_WATER_BYTES = 1 << 20
HIGH_WATER_COUNT = 1024
#: Caches of address objects (SocketAddr/ServiceAddr construction validates; datagrams repeat).
_CACHE_MAX = 4096

_SOL_TIPC = wire.SOL_TIPC
_TIPC_ERRINFO = wire.TIPC_ERRINFO
_TIPC_RETDATA = wire.TIPC_RETDATA
_TIPC_DESTNAME = wire.TIPC_DESTNAME


class DuplicatePublicationWarning(UserWarning):
    """Two endpoints of this process published the same name on the same node.

    TIPC accepts duplicate binds silently and round-robins between them; if that was not
    the intent, one of them is receiving the other's traffic.
    """


class Counters:
    """Per-transport counters shared by its endpoints (plain ints: cheap on the hot path)."""

    __slots__ = (
        "sent", "sent_bytes", "received", "received_bytes", "returned", "send_queued",
        "send_unreachable", "queued_failed", "handler_errors", "recv_errors", "published",
        "withdrawn", "endpoints_opened", "endpoints_closed", "topology_events",
        "topology_reconnects",
    )

    # Declared for the type checker (the slots above hold them).
    sent: int
    sent_bytes: int
    received: int
    received_bytes: int
    returned: int
    send_queued: int
    send_unreachable: int
    queued_failed: int
    handler_errors: int
    recv_errors: int
    published: int
    withdrawn: int
    endpoints_opened: int
    endpoints_closed: int
    topology_events: int
    topology_reconnects: int

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> Dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


# Publications of every endpoint of this process, per network namespace, to warn about
# duplicates: (netns, type, lower, upper) -> number of endpoints holding it.
_published_here: Dict[Tuple[Optional[str], int, int, int], int] = {}


class KernelEndpoint:
    """An :class:`~tipcrpc.transport.base.Endpoint` over one kernel ``SOCK_RDM`` socket."""

    def __init__(self, transport: "KernelTransport", sock: socket.socket, handler: MessageHandler,
                 address: SocketAddr) -> None:
        self._transport = transport
        self._sock: Optional[socket.socket] = sock
        self._fd = sock.fileno()
        self._handler = handler
        self._address = address
        self._loop = asyncio.get_running_loop()
        self._stats: Counters = transport._counters
        self._importance = int(transport.importance)  # the socket's current TIPC_IMPORTANCE
        self._default_importance = self._importance
        self._buf = bytearray(wire.MAX_USER_MSG_SIZE + 1)
        self._view = memoryview(self._buf)
        self._published: Set[Tuple[ServiceRange, Scope]] = set()
        self._outbox: Deque[Tuple[Any, bytes, int, Destination]] = deque()
        self._queued_bytes = 0
        self._writing = False
        self._drain_waiters: Deque[asyncio.Future[None]] = deque()
        self._src_cache: Dict[Tuple[int, ...], SocketAddr] = {}
        self._dest_cache: Dict[Tuple[int, int, int], Union[ServiceAddr, ServiceRange]] = {}
        self._addr_cache: Dict[Destination, Tuple[int, ...]] = {}
        sock.setsockopt(_SOL_TIPC, wire.TIPC_DEST_DROPPABLE, 0)
        if self._importance:
            sock.setsockopt(_SOL_TIPC, wire.TIPC_IMPORTANCE, self._importance)
        self._loop.add_reader(self._fd, self._on_readable)

    def __repr__(self) -> str:
        state = "closed" if self._sock is None else f"{len(self._published)} names"
        return f"<KernelEndpoint {self._address} {state}>"

    @property
    def address(self) -> SocketAddr:
        """This socket's ``{node, port}``."""
        return self._address

    @property
    def closed(self) -> bool:
        return self._sock is None

    # ------------------------------------------------------------------ publish / withdraw

    async def publish(self, name: Name, scope: Scope = Scope.CLUSTER) -> None:
        """Bind ``name`` at ``scope``; publishing the same name and scope again is a no-op."""
        sock = self._require_open()
        rng, scope = self._name_key(name, scope)
        check_publishable(rng)
        key = (rng, scope)
        if key in self._published:
            return
        try:
            sock.bind(wire.bind_sockaddr(rng, scope))
        except OSError as exc:
            if exc.errno == errno.EACCES:
                raise AddressError(f"the kernel refused to publish reserved {rng}") from None
            raise KernelError(exc.errno or errno.EIO, f"publish {rng} at {scope.name} scope: {exc.strerror}") from None
        self._published.add(key)
        self._stats.published += 1
        self._note_published(rng)

    async def withdraw(self, name: Name, scope: Scope = Scope.CLUSTER) -> None:
        """Unbind ``name`` published at ``scope`` (a negative-scope bind); no-op if not bound."""
        sock = self._require_open()
        rng, scope = self._name_key(name, scope)
        key = (rng, scope)
        if key not in self._published:
            return
        try:
            sock.bind(wire.bind_sockaddr(rng, scope, withdraw=True))
        except OSError as exc:
            raise KernelError(exc.errno or errno.EIO, f"withdraw {rng}: {exc.strerror}") from None
        self._published.discard(key)
        self._stats.withdrawn += 1
        self._note_withdrawn(rng)

    @staticmethod
    def _name_key(name: Name, scope: Scope) -> Tuple[ServiceRange, Scope]:
        if isinstance(name, ServiceAddr):
            rng = name.as_range()
        elif isinstance(name, ServiceRange):
            rng = name
        else:
            raise AddressError(f"only a ServiceAddr or ServiceRange can be published, got {name!r}")
        try:
            return rng, Scope(scope)
        except ValueError:
            raise AddressError(f"scope must be Scope.NODE or Scope.CLUSTER, got {scope!r}") from None

    def _note_published(self, rng: ServiceRange) -> None:
        if not self._transport.warn_duplicates or sum(1 for k in self._published if k[0] == rng) != 1:
            return  # this endpoint already held rng at the other scope: counted once
        key = (self._transport.netns, rng.type, rng.lower, rng.upper)
        count = _published_here.get(key, 0)
        if count:
            warnings.warn(
                f"{rng} is now published by {count + 1} endpoints of this process on the same node; "
                "TIPC round-robins between them silently (duplicate bind)",
                DuplicatePublicationWarning,
                stacklevel=3,
            )
        _published_here[key] = count + 1

    def _note_withdrawn(self, rng: ServiceRange) -> None:
        if not self._transport.warn_duplicates or any(k[0] == rng for k in self._published):
            return  # still held at the other scope
        key = (self._transport.netns, rng.type, rng.lower, rng.upper)
        count = _published_here.get(key, 0) - 1
        if count > 0:
            _published_here[key] = count
        else:
            _published_here.pop(key, None)

    # ------------------------------------------------------------------ send

    def send(self, dest: Destination, data: bytes, *, importance: Optional[Importance] = None) -> None:
        """Send one datagram (1..66 000 bytes); see the module docstring for failures.

        ``importance`` defaults to the transport's ``importance`` (LOW unless configured).
        """
        sock = self._sock
        if sock is None:
            raise ClosedError(f"endpoint {self._address} is closed")
        size = len(data)
        if size > MAX_MESSAGE:
            raise FrameTooLarge(f"datagram of {size} bytes exceeds the TIPC limit of {MAX_MESSAGE}")
        if not size:
            # tipc_recvmsg() silently skips messages with neither data nor an error code:
            # an empty datagram would vanish at the receiver without coming back.
            raise LocalProtocolError("kernel TIPC cannot carry an empty datagram (the receiver discards it)")
        try:
            addr = self._addr_cache.get(dest)
        except TypeError:  # unhashable: certainly not an address
            raise AddressError(f"not a TIPC destination: {dest!r}") from None
        if addr is None:
            addr = wire.sockaddr(dest)
            if len(self._addr_cache) >= _CACHE_MAX:
                self._addr_cache.clear()
            self._addr_cache[dest] = addr
        imp = self._default_importance if importance is None else importance
        if imp != self._importance and (not isinstance(imp, int) or not 0 <= imp <= 3):
            raise AddressError(f"importance must be an Importance (0..3), got {importance!r}")
        if self._outbox:
            # Keep order: once anything waits, everything after it waits too.
            self._enqueue(addr, data, imp, dest)
            return
        if imp != self._importance:
            self._set_importance(sock, imp)
        try:
            sock.sendto(data, addr)
        except BlockingIOError:
            self._enqueue(addr, data, imp, dest)
            return
        except InterruptedError:
            self._enqueue(addr, data, imp, dest)
            return
        except OSError as exc:
            raise self._send_error(exc, dest, size) from None
        stats = self._stats
        stats.sent += 1
        stats.sent_bytes += size

    def _set_importance(self, sock: socket.socket, imp: int) -> None:
        sock.setsockopt(_SOL_TIPC, wire.TIPC_IMPORTANCE, int(imp))
        self._importance = imp

    def _send_error(self, exc: OSError, dest: Destination, size: int) -> Exception:
        code = exc.errno
        if code == errno.EHOSTUNREACH:
            self._stats.send_unreachable += 1
            if isinstance(dest, SocketAddr):
                return ServiceUnreachable(f"node {dest.node:08x} of {dest} is not reachable")
            return ServiceUnreachable(f"no publication matches {dest}")
        if code == errno.EMSGSIZE:
            return FrameTooLarge(f"the kernel refused a datagram of {size} bytes to {dest} (EMSGSIZE)")
        return KernelError(code or errno.EIO, f"sendto {dest}: {exc.strerror}")

    def _enqueue(self, addr: Any, data: bytes, imp: int, dest: Destination) -> None:
        self._outbox.append((addr, data if isinstance(data, bytes) else bytes(data), imp, dest))
        self._queued_bytes += len(data)
        self._stats.send_queued += 1
        if not self._writing:
            self._writing = True
            self._loop.add_writer(self._fd, self._on_writable)

    def _on_writable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        outbox = self._outbox
        stats = self._stats
        while outbox:
            addr, data, imp, dest = outbox[0]
            try:
                if imp != self._importance:
                    self._set_importance(sock, imp)
                sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                outbox.popleft()
                self._queued_bytes -= len(data)
                self._fail_queued(exc, data, dest)
                continue
            outbox.popleft()
            self._queued_bytes -= len(data)
            stats.sent += 1
            stats.sent_bytes += len(data)
        if not outbox and self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)
        self._wake_drainers()

    def _fail_queued(self, exc: OSError, data: bytes, dest: Destination) -> None:
        """A parked datagram failed after ``send`` returned: report it as Returned."""
        self._stats.queued_failed += 1
        if exc.errno == errno.EHOSTUNREACH:
            reason = DeliveryFailure.NO_NODE if isinstance(dest, SocketAddr) else DeliveryFailure.NO_NAME
        else:
            log.warning("queued datagram to %s failed: %s; reporting it as returned (NO_NODE)", dest, exc)
            reason = DeliveryFailure.NO_NODE
        self._dispatch(Returned(bytes(data[:RETURNED_DATA_MAX]), dest, reason))

    def _wake_drainers(self) -> None:
        if not self._drain_waiters or self._above_high_water():
            return
        while self._drain_waiters:
            fut = self._drain_waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    def _above_high_water(self) -> bool:
        return self._queued_bytes >= HIGH_WATER_BYTES or len(self._outbox) >= HIGH_WATER_COUNT

    async def drain(self) -> None:
        """Wait while the outbox is at or above its high-water mark."""
        while self._above_high_water():
            if self._sock is None:
                raise ClosedError(f"endpoint {self._address} is closed")
            fut = self._loop.create_future()
            self._drain_waiters.append(fut)
            await fut
        if self._sock is None:
            raise ClosedError(f"endpoint {self._address} is closed")

    @property
    def queued(self) -> int:
        """Datagrams waiting in the outbox."""
        return len(self._outbox)

    # ------------------------------------------------------------------ receive

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        view = self._view
        bufs = [self._buf]
        stats = self._stats
        handler = self._handler
        for _ in range(_RECV_BATCH):
            try:
                n, anc, flags, addr = sock.recvmsg_into(bufs, _CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                stats.recv_errors += 1
                log.warning("recvmsg on %s failed: %s", self._address, exc)
                return
            src = self._src_cache.get(addr)
            if src is None:
                src = self._source(addr)
            if not anc:
                item: Union[Delivery, Returned] = Delivery(bytes(view[:n]), src, self._address)
                stats.received += 1
                stats.received_bytes += n
            else:
                item = self._with_ancillary(n, anc, src)
            try:
                handler(item)
            except Exception:  # a faulty handler must not stop the socket
                stats.handler_errors += 1
                log.exception("message handler of %s raised", self._address)
            if self._sock is None:  # the handler closed us
                return

    def _source(self, addr: Any) -> SocketAddr:
        src = wire.socket_addr_from(addr)
        if len(self._src_cache) >= _CACHE_MAX:
            self._src_cache.clear()
        self._src_cache[addr] = src
        return src

    def _name(self, destname: Tuple[int, int, int]) -> Union[ServiceAddr, ServiceRange]:
        name = self._dest_cache.get(destname)
        if name is None:
            name = wire.dest_from_destname(destname)
            if len(self._dest_cache) >= _CACHE_MAX:
                self._dest_cache.clear()
            self._dest_cache[destname] = name
        return name

    def _with_ancillary(self, n: int, anc: Any, src: SocketAddr) -> Union[Delivery, Returned]:
        errinfo = retdata = destname = None
        for level, ctype, cdata in anc:
            if level != _SOL_TIPC:
                continue
            if ctype == _TIPC_DESTNAME:
                destname = wire.decode_destname(cdata)
            elif ctype == _TIPC_ERRINFO:
                errinfo = wire.decode_errinfo(cdata)
            elif ctype == _TIPC_RETDATA:
                retdata = bytes(cdata)
        dest: Destination = self._name(destname) if destname is not None else self._address
        if errinfo is None or errinfo[0] == 0:
            self._stats.received += 1
            self._stats.received_bytes += n
            return Delivery(bytes(self._view[:n]), src, dest)
        # One of our datagrams came back. Without a name it was a direct send, and the
        # kernel reversed the header: the "source" is the socket we had addressed.
        if destname is None:
            dest = src
        try:
            reason = DeliveryFailure(wire.failure_from_code(errinfo[0]))
        except Exception:
            log.warning("returned datagram with unknown TIPC error code %d; reporting NO_PORT", errinfo[0])
            reason = DeliveryFailure.NO_PORT
        self._stats.returned += 1
        return Returned(retdata if retdata is not None else b"", dest, reason)

    def _dispatch(self, item: Union[Delivery, Returned]) -> None:
        """Hand an item to the handler from a fresh loop callback (never inside ``send``)."""

        def call() -> None:
            if self._sock is None:
                return
            try:
                self._handler(item)
            except Exception:
                self._stats.handler_errors += 1
                log.exception("message handler of %s raised", self._address)

        self._loop.call_soon(call)

    # ------------------------------------------------------------------ close

    def _require_open(self) -> socket.socket:
        sock = self._sock
        if sock is None:
            raise ClosedError(f"endpoint {self._address} is closed")
        return sock

    async def aclose(self, *, linger: float = 2.0) -> None:
        """Withdraw every name, flush the outbox (up to ``linger`` seconds), close."""
        if self._sock is None:
            return
        for rng, scope in list(self._published):
            try:
                await self.withdraw(rng, scope)
            except KernelError as exc:  # closing withdraws anyway
                log.debug("withdraw %s on close: %s", rng, exc)
        if self._outbox and linger > 0:
            try:
                await asyncio.wait_for(self._flush(), linger)
            except asyncio.TimeoutError:
                log.warning("%s closed with %d datagrams still queued", self._address, len(self._outbox))
        self.abort()

    async def _flush(self) -> None:
        while self._outbox and self._sock is not None:
            fut = self._loop.create_future()
            self._drain_waiters.append(fut)
            await fut

    def abort(self) -> None:
        """Close the socket at once (the kernel withdraws its names); idempotent."""
        sock = self._sock
        if sock is None:
            return
        self._sock = None
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        held = {rng for rng, _scope in self._published}
        self._published.clear()
        for rng in held:
            self._note_withdrawn(rng)
        if self._outbox:
            self._stats.queued_failed += len(self._outbox)
            self._outbox.clear()
            self._queued_bytes = 0
        sock.close()
        self._stats.endpoints_closed += 1
        while self._drain_waiters:
            fut = self._drain_waiters.popleft()
            if not fut.done():
                fut.set_result(None)
        self._transport._endpoint_closed(self)

