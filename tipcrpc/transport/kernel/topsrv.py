"""Topology client: every subscription of a transport on one connection to the kernel's
topology server ``{1, 1}``, told apart by ``usr_handle``.

Snapshot marker. The server replays the current state when a subscription arrives but
never says where the replay ends. Events on one connection are queued in order, and the
server reports a subscription's snapshot synchronously while handling it. So after each
subscription ``S`` we send a second one, ``M``, for a private name this client keeps
published (node scope, type :data:`MARKER_TYPE`, instance = the marker socket's port, so
clients never share it). ``M``'s snapshot — one ``PUBLISHED`` event — arrives after every
snapshot event of ``S`` (verified on the 6.1 kernel): that is where we put
:data:`~tipcrpc.events.SNAPSHOT_COMPLETE`. ``M`` is then cancelled.

Cancelling needs the byte-identical 28-byte subscription with ``TIPC_SUB_CANCEL`` OR-ed in;
we send everything in network byte order because native-order cancels are broken on
little-endian kernels (see :mod:`.wire`).

Resubscription. If the connection dies (it should not: we validate every subscription
before sending it), the client reconnects, sends every live subscription again and
reconciles: each subscription's new snapshot is compared with what its consumer has
seen, and only the differences come out as ``Published``/``Withdrawn`` (no second
snapshot marker).
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import socket
from collections import deque
from typing import TYPE_CHECKING, Callable, Deque, Dict, Optional, Tuple

from ...addr import ServiceRange, Scope, service_type
from ...errors import AddressError, ClosedError, KernelError, TransportError
from ...events import SNAPSHOT_COMPLETE, SubFilter, TopologyEvent
from . import wire

if TYPE_CHECKING:
    from types import TracebackType

    from .socket import Counters

__all__ = ["MARKER_TYPE", "TopologyClient", "KernelSubscription"]

log = logging.getLogger(__name__)

#: Service type of the private snapshot-marker names (node scope, never distributed).
MARKER_TYPE = service_type("tipcrpc.kernel.snapshot-marker")
_MARKER_BIT = 1 << 63
_RECV_BATCH = 256
_RECONNECT_DELAYS = (0.0, 0.05, 0.2, 0.5, 1.0, 2.0)

_Key = Tuple[int, int, int, int]  # found_lower, found_upper, port_ref, port_node


class KernelSubscription:
    """One topology subscription: an async iterator of :data:`TopologyEvent`.

    Yields the replayed state, then :data:`SNAPSHOT_COMPLETE`, then live changes.
    :meth:`aclose` cancels it and ends iteration at once; if the transport closes, the
    events already queued are still yielded, then iteration ends.
    """

    def __init__(self, client: "TopologyClient", sub_id: int, subscr: wire.Subscr) -> None:
        self._client = client
        self.id = sub_id
        self.subscr = subscr
        self._queue: Deque[TopologyEvent] = deque()
        self._waiter: Optional[asyncio.Future[None]] = None
        self._closed = False  # aclose(): stop now
        self._finished = False  # transport gone: drain, then stop
        self._error: Optional[BaseException] = None
        self._present: Dict[_Key, wire.Event] = {}  # what the consumer has been told
        self._resync: Optional[Dict[_Key, wire.Event]] = None  # new snapshot being collected
        self._snapshot_done = False

    def __repr__(self) -> str:
        return f"<KernelSubscription {self.subscr.range} filter={self.subscr.filter}>"

    @property
    def target(self) -> ServiceRange:
        return self.subscr.range

    @property
    def filter(self) -> SubFilter:
        return SubFilter(self.subscr.filter)

    # -- fed by the client --

    def _event(self, ev: wire.Event) -> None:
        key = (ev.found_lower, ev.found_upper, ev.port_ref, ev.port_node)
        if self._resync is not None:
            if ev.event == wire.TIPC_PUBLISHED:
                self._resync[key] = ev
            elif ev.event == wire.TIPC_WITHDRAWN:
                self._resync.pop(key, None)
            return
        if ev.event == wire.TIPC_PUBLISHED:
            self._present[key] = ev
        elif ev.event == wire.TIPC_WITHDRAWN:
            self._present.pop(key, None)
        self._push_wire(ev)

    def _push_wire(self, ev: wire.Event) -> None:
        try:
            topo = wire.event_to_topology(ev)
        except Exception as exc:  # a malformed event: log, keep the subscription alive
            log.warning("dropping malformed topology event %r: %s", ev, exc)
            return
        if topo is not None:
            self._push(topo)

    def _push(self, topo: TopologyEvent) -> None:
        if self._closed:
            return
        self._queue.append(topo)
        self._wake()

    def _marker(self) -> None:
        """The marker of this subscription's (re)subscription arrived."""
        if self._resync is not None:
            fresh, self._resync = self._resync, None
            old = self._present
            self._present = fresh
            for key, ev in old.items():
                if key not in fresh:
                    self._push_wire(ev._replace(event=wire.TIPC_WITHDRAWN))
            for key, ev in fresh.items():
                if key not in old:
                    self._push_wire(ev)
        if not self._snapshot_done:
            self._snapshot_done = True
            self._push(SNAPSHOT_COMPLETE)

    def _begin_resync(self) -> None:
        self._resync = {}

    def _finish(self, error: Optional[BaseException] = None) -> None:
        if not self._finished:
            self._finished = True
            self._error = error
            self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- consumer side --

    def __aiter__(self) -> "KernelSubscription":
        return self

    async def __anext__(self) -> TopologyEvent:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._queue:
                return self._queue.popleft()
            if self._finished:
                if self._error is not None:
                    err, self._error = self._error, None
                    raise err
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def aclose(self) -> None:
        """Cancel the subscription and end iteration; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._wake()
        self._client._cancel(self)

    async def __aenter__(self) -> "KernelSubscription":
        return self

    async def __aexit__(self, exc_type: Optional[type], exc: Optional[BaseException],
                        tb: "Optional[TracebackType]") -> None:
        await self.aclose()


class TopologyClient:
    """The transport's connection to the topology server, multiplexing subscriptions."""

    def __init__(self, new_socket: Callable[[int], socket.socket], counters: "Counters") -> None:
        self._new_socket = new_socket
        self._counters = counters
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._sock: Optional[socket.socket] = None
        self._marker_sock: Optional[socket.socket] = None
        self._marker_instance = 0
        self._ids = itertools.count(1)
        self._subs: Dict[int, KernelSubscription] = {}
        self._markers: Dict[int, wire.Subscr] = {}  # marker id -> its subscription (to cancel)
        self._outbox: Deque[bytes] = deque()
        self._writing = False
        self._closed = False
        self._reconnecting: Optional[asyncio.Task[None]] = None

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        marker = self._new_socket(socket.SOCK_RDM)
        try:
            self._marker_instance = wire.socket_addr_from(marker.getsockname()).port
            marker.bind(wire.bind_sockaddr(ServiceRange(MARKER_TYPE, self._marker_instance, self._marker_instance),
                                           Scope.NODE))
        except OSError as exc:
            marker.close()
            raise KernelError(exc.errno or errno.EIO, f"binding the snapshot marker: {exc.strerror}") from None
        self._marker_sock = marker
        await self._connect()

    async def _connect(self) -> None:
        assert self._loop is not None
        sock = self._new_socket(socket.SOCK_SEQPACKET)
        try:
            await _connect(self._loop, sock, wire.topsrv_sockaddr())
        except OSError as exc:
            sock.close()
            raise KernelError(exc.errno or errno.EIO, f"connecting to the topology server: {exc.strerror}") from None
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._on_readable)

    # -- subscriptions --

    async def subscribe(self, target: ServiceRange, filter: SubFilter) -> KernelSubscription:
        if self._closed:
            raise ClosedError("the transport is closed")
        if not isinstance(target, ServiceRange):
            raise AddressError(f"subscribe() takes a ServiceRange, got {target!r}")
        try:
            filt = SubFilter(filter)
        except ValueError:
            raise AddressError(f"filter must be SubFilter.PORTS or SubFilter.SERVICE, got {filter!r}") from None
        sub_id = next(self._ids)
        subscr = wire.validate_subscr(wire.Subscr(target.type, target.lower, target.upper,
                                                  wire.TIPC_WAIT_FOREVER, int(filt), wire.handle_for(sub_id)))
        sub = KernelSubscription(self, sub_id, subscr)
        self._subs[sub_id] = sub
        if self._sock is not None:
            self._send_with_marker(sub)
        # else: a reconnect is under way and will send it
        return sub

    def _send_with_marker(self, sub: KernelSubscription) -> None:
        self._send(wire.pack_subscr(sub.subscr))
        inst = self._marker_instance
        marker = wire.Subscr(MARKER_TYPE, inst, inst, wire.TIPC_WAIT_FOREVER, wire.TIPC_SUB_PORTS,
                             wire.handle_for(sub.id | _MARKER_BIT))
        self._markers[sub.id] = marker
        self._send(wire.pack_subscr(marker))

    def _cancel(self, sub: KernelSubscription) -> None:
        if self._subs.pop(sub.id, None) is None or self._sock is None:
            return
        self._send(wire.pack_cancel(sub.subscr))
        marker = self._markers.pop(sub.id, None)
        if marker is not None:
            self._send(wire.pack_cancel(marker))

    # -- I/O --

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            return
        if not self._outbox:
            try:
                sock.send(data)
                return
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self._lost(exc)
                return
        self._outbox.append(data)
        if not self._writing:
            self._writing = True
            assert self._loop is not None
            self._loop.add_writer(sock.fileno(), self._on_writable)

    def _on_writable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        while self._outbox:
            try:
                sock.send(self._outbox[0])
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._lost(exc)
                return
            self._outbox.popleft()
        self._writing = False
        assert self._loop is not None
        self._loop.remove_writer(sock.fileno())

    def _on_readable(self) -> None:
        sock = self._sock
        for _ in range(_RECV_BATCH):
            if sock is None or self._sock is not sock:
                return
            try:
                data = sock.recv(wire.EVENT_SIZE + 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._lost(exc)
                return
            if not data:
                self._lost(None)
                return
            try:
                ev = wire.unpack_event(data, wire.ByteOrder.NETWORK)
            except Exception as exc:
                log.warning("ignoring malformed topology message (%d bytes): %s", len(data), exc)
                continue
            self._counters.topology_events += 1
            self._dispatch(ev)

    def _dispatch(self, ev: wire.Event) -> None:
        sub_id = wire.handle_id(ev.sub.handle)
        if sub_id & _MARKER_BIT:
            sub_id &= ~_MARKER_BIT
            marker = self._markers.pop(sub_id, None)
            if marker is None:
                return  # a late duplicate for a cancelled marker
            self._send(wire.pack_cancel(marker))
            sub = self._subs.get(sub_id)
            if sub is not None and ev.event == wire.TIPC_PUBLISHED:
                sub._marker()
            return
        sub = self._subs.get(sub_id)
        if sub is not None:
            sub._event(ev)

    def _lost(self, exc: Optional[OSError]) -> None:
        """The topology connection died: reconnect and resubscribe in the background."""
        sock = self._sock
        if sock is None:
            return
        self._drop_socket()
        if self._closed:
            return
        log.warning("topology server connection lost (%s); resubscribing", exc or "EOF")
        assert self._loop is not None
        self._reconnecting = self._loop.create_task(self._reconnect())

    def _drop_socket(self) -> None:
        sock = self._sock
        if sock is None:
            return
        self._sock = None
        assert self._loop is not None
        self._loop.remove_reader(sock.fileno())
        if self._writing:
            self._loop.remove_writer(sock.fileno())
            self._writing = False
        self._outbox.clear()
        self._markers.clear()
        sock.close()

    async def _reconnect(self) -> None:
        last: Optional[BaseException] = None
        for delay in _RECONNECT_DELAYS:
            if self._closed:
                return
            if delay:
                await asyncio.sleep(delay)
            try:
                await self._connect()
            except TransportError as exc:
                last = exc
                continue
            self._counters.topology_reconnects += 1
            for sub in list(self._subs.values()):
                sub._begin_resync()
                self._send_with_marker(sub)
            return
        error = TransportError(f"topology server connection lost and not re-established: {last}")
        for sub in list(self._subs.values()):
            sub._finish(error)
        self._subs.clear()

    def break_connection(self) -> None:
        """Drop the topology connection as if the server had closed it (for tests)."""
        self._lost(OSError(errno.ECONNRESET, "closed on request"))

    async def aclose(self) -> None:
        """Close the connection; subscriptions yield what is queued, then end."""
        self.abort()

    def abort(self) -> None:
        """Close everything at once; idempotent."""
        if self._closed and self._sock is None and self._marker_sock is None:
            return
        self._closed = True
        task = self._reconnecting
        if task is not None and not task.done():
            task.cancel()
        self._drop_socket()
        for sub in list(self._subs.values()):
            sub._finish()
        self._subs.clear()
        if self._marker_sock is not None:
            self._marker_sock.close()
            self._marker_sock = None

    @property
    def subscriptions(self) -> int:
        return len(self._subs)


async def _connect(loop: asyncio.AbstractEventLoop, sock: socket.socket, addr: tuple[int, ...]) -> None:
    """Connect a non-blocking socket, waiting for writability if the kernel says EINPROGRESS.

    Not ``loop.sock_connect``: uvloop resolves every address through ``getaddrinfo``, which
    rejects AF_TIPC tuples (``TypeError: host must be a str or bytes``).
    """
    try:
        sock.connect(addr)
        return
    except (BlockingIOError, InterruptedError):
        pass
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()
    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))
