"""The client's call engine (layer L4): bookkeeping, failover and the receive path.

:class:`CallEngine` keeps every call in flight (:class:`_Call`) in a
:class:`~tipcrpc.rpc.protocol.PendingTable`, indexed by the socket holding it, and reacts to
everything the transport reports — replies, failures, PONGs, returned datagrams,
withdrawals, node loss — without tasks: all of it runs in the endpoint callback, in the
resolver's subscription callbacks, or in the single deadline timer. The failover rules are
described in :mod:`tipcrpc.rpc.client`; :class:`~tipcrpc.rpc.client.Client` builds the
public API on top of this class.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import anyio

from ...addr import Importance, SocketAddr
from ...errors import (
    CodecError,
    DeadlineExceeded,
    PeerLost,
    ProtocolError,
    RemoteProtocolError,
    RpcError,
    ServiceUnreachable,
    Status,
    TipcRpcError,
)
from ...transport.base import Delivery, DeliveryFailure, Returned, Transport
from ..chunks import DEFAULT_MAX_FRAME, DEFAULT_WINDOW
from ..frames import (
    HEADER,
    HEADER_SIZE,
    PONG_ACTIVE,
    VERSION,
    Flag,
    Kind,
    decode_failure,
    encode_call,
    encode_cancel,
    encode_ping,
    encode_stream_credit,
    parse_method_flags,
    peek_header,
)
from ..membership import Policy, policy_of
from ..protocol import CallIds, PendingTable, failure_to_exception, remaining
from ..resolver import Resolver
from ..runtime import Background, FrameLink
from ..stub import StreamState
from .waiting import Waiting

__all__ = ["CallEngine", "Meta", "PROBE_INTERVAL_S", "NOTIFY_RETRY_WINDOW_S"]

#: What a client knows of a method: (service type, service label, idempotent, importance,
#: learn) — ``learn`` is -1 when a local Service defines the method, else the REPLY flags
#: learned from a server so far (0: nothing yet); see ``CallEngine._learn``.
Meta = tuple[int, str, bool, Importance, int]

log = logging.getLogger("tipcrpc.client")

#: While a non-idempotent call waits on a withdrawn (draining) socket, re-probe it this often.
PROBE_INTERVAL_S = 1.0
#: How long a notification is remembered so it can be re-sent if it comes back undeliverable.
NOTIFY_RETRY_WINDOW_S = 5.0

_UNARY, _STREAM, _ONEWAY, _FANOUT = 0, 1, 2, 3
_NEVER_STARTED = (Status.SERVER_BUSY, Status.SHUTTING_DOWN)
# Plain ints: IntFlag arithmetic is slow on the per-call path.
_IDEMPOTENT = int(Flag.IDEMPOTENT)
_KIND_FLAGS = {_UNARY: 0, _STREAM: int(Flag.STREAM), _ONEWAY: int(Flag.ONEWAY), _FANOUT: 0}


class _Call:
    """One call in flight (slots: it is allocated per call)."""

    __slots__ = (
        "cid", "kind", "fut", "type", "method", "frame", "idempotent", "importance", "socket",
        "tried", "attempts", "max_attempts", "deadline", "instance", "stream", "overloads", "sent",
        "wait_ready", "parked", "learn", "tracked",
    )  # fmt: skip

    def __init__(self, cid: int, kind: int, type: int, method: str, frame: bytes, idempotent: bool,
                 importance: Importance, deadline: float | None, instance: int | None) -> None:  # fmt: skip
        self.cid = cid
        self.kind = kind
        self.fut: asyncio.Future[Any] | None = None
        self.type = type
        self.method = method
        self.frame = frame
        self.idempotent = idempotent
        self.importance = importance
        self.socket: SocketAddr | None = None
        self.tried: list[SocketAddr] = []
        self.attempts = 0
        self.max_attempts = 2
        self.deadline = deadline
        self.instance = instance
        self.stream: StreamState | None = None
        self.overloads = 0
        self.sent = 0  # the client's send sequence number of the latest transmission
        self.wait_ready = False  # wait for a new instance instead of failing (see _retry)
        self.parked = False  # parked in CallEngine._waiting until an instance appears
        # The method flags this client knew for a call by name (0: nothing yet), compared
        # with the answer's to learn them; -1 when a local Service defines the method.
        self.learn = -1
        self.tracked: set[_Call] | None = None  # CallEngine._by_socket[socket], while sent there



class CallEngine:
    """State and mechanics of a client's calls (see the module docstring)."""

    def __init__(
        self,
        transport: Transport,
        *,
        policy: Policy | str = Policy.ROUND_ROBIN,
        default_timeout: float | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        from ...codec import Codec

        self.transport = transport
        self.policy = policy_of(policy)
        self.default_timeout = default_timeout
        self._codec = Codec()
        self._link = FrameLink(max_message=transport.max_message, max_frame=max_frame, window=window)
        self._pending: PendingTable[_Call] = PendingTable()
        # Calls in flight per socket. Emptied sets stay (a sequential caller would otherwise
        # insert and delete one per call, hashing the socket four times); _prune_sockets
        # drops them when the socket goes and in housekeeping.
        self._by_socket: dict[SocketAddr, set[_Call]] = {}
        self._ids = CallIds(int.from_bytes(os.urandom(8), "big"))
        # (service as given, method) -> (type, name, idempotent, importance, learn flags)
        self._meta: dict[tuple[object, str], Meta] = {}
        # (type, method) -> REPLY flags describing a method this client calls by name only
        self._learned: dict[tuple[int, str], int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bg = Background("client")
        self._resolver: Resolver | None = None
        self._own_node = 0
        self._closed = False
        self._nonce = 0
        # Every datagram a client sends to a socket arrives in send order, and undeliverable
        # ones come back in that order too. Numbering transmissions lets a returned datagram
        # tell which other calls to the same socket were delivered (sent earlier, not
        # returned: possibly started) and which will come back as well (sent later).
        self._send_seq = 0
        self._pings: dict[int, int] = {}  # ping nonce -> send sequence number
        self._waiting: Waiting[_Call] = Waiting()  # wait_for() and wait_ready calls
        self._stats = dict.fromkeys(
            ("calls", "replies", "failures", "retries", "failovers", "peer_lost", "timeouts", "cancelled",
             "notifications", "streams", "pings", "malformed"), 0)  # fmt: skip


    def _new_call(self, kind: int, stype: int, method: str, args: Any, kwargs: Any, idempotent: bool,
                  imp: Importance, learn: int, deadline: float | None, instance: int | None, credit: int | None,
                  now: float) -> _Call:  # fmt: skip
        cid = self._ids()
        flags = _KIND_FLAGS[kind] | (_IDEMPOTENT if idempotent else 0)
        frame = encode_call(self._codec, cid, stype, method, args, kwargs, remaining(deadline, now), flags, credit)
        call = _Call(cid, kind, stype, method, frame, idempotent, imp, deadline, instance)
        call.learn = learn
        if kind == _ONEWAY:
            deadline = now + NOTIFY_RETRY_WINDOW_S
        self._pending.add(cid, call, deadline)
        if deadline is not None and (self._timer is None or deadline < self._timer_at):
            self._arm(deadline)
        self._stats["calls"] += 1
        return call

    def _learn(self, call: _Call, flags: int) -> None:
        """An answer described the method of ``call`` (made by name only): remember it for
        the next calls of that method, unless they pass options of their own."""
        parsed = parse_method_flags(flags)
        if parsed is None:
            return
        idempotent, imp = parsed
        self._learned[(call.type, call.method)] = flags
        for key, meta in list(self._meta.items()):
            if meta[0] == call.type and key[1] == call.method and meta[4] >= 0:
                self._meta[key] = (meta[0], meta[1], idempotent, Importance(imp), flags)

    # -- sending and bookkeeping --------------------------------------------------------------

    def _send_to(self, call: _Call, sock: SocketAddr) -> None:
        call.socket = sock
        call.tried.append(sock)
        call.attempts += 1
        calls = self._by_socket.get(sock)
        if calls is None:
            calls = self._by_socket[sock] = set()
        calls.add(call)
        call.tracked = calls
        self._send_seq = call.sent = self._send_seq + 1
        try:
            self._link.send(sock, call.frame, call.importance)
        except ServiceUnreachable:
            # The transport knows no route to that node: this call never left, the others
            # on that socket may have started before the node went away.
            if self._resolver is not None:
                self._resolver.forget_socket(sock)
            self._retry(call, never_started=True)
            self._socket_dead(sock, None)
        except TipcRpcError as exc:
            self._finish(call, exc)

    def _untrack(self, call: _Call) -> None:
        calls = call.tracked
        if calls is not None:
            calls.discard(call)
            call.tracked = None

    def _prune_sockets(self, node: int | None = None) -> None:
        """Forget the emptied call sets (of ``node``'s sockets, or all)."""
        for sock in [s for s, c in self._by_socket.items() if not c and (node is None or s.node == node)]:
            del self._by_socket[sock]

    def _finish(self, call: _Call, exc: BaseException) -> None:
        """Remove ``call`` and fail it with ``exc`` (no CANCEL)."""
        if self._pending.pop(call.cid) is not None or call.kind == _FANOUT:
            self._fail(call, exc, cancel=False)

    def _fail(self, call: _Call, exc: BaseException, *, cancel: bool) -> None:
        self._untrack(call)
        if call.parked:
            self._waiting.unpark(call)
        if cancel:
            self._send_cancel(call)
        self._link.abort_call(call.socket, call.cid)
        self._stats["failures"] += 1
        if isinstance(exc, PeerLost):
            self._stats["peer_lost"] += 1
        if call.stream is not None:
            call.stream.fail(exc)
        elif call.kind == _ONEWAY:  # nobody awaits a notification: say so, never lose it silently
            log.warning("notification %s could not be delivered: %s", call.method, exc)
        fut = call.fut
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    def _send_cancel(self, call: _Call) -> None:
        endpoint = self._link.endpoint
        if call.socket is not None and endpoint is not None and not self._closed and call.kind != _ONEWAY:
            try:
                endpoint.send(call.socket, encode_cancel(call.cid), importance=Importance.HIGH)
            except TipcRpcError:
                pass

    def _abandon(self, call: _Call) -> None:
        """The caller gave up (cancelled, or left a stream early): forget it and tell the server."""
        if self._pending.pop(call.cid) is not None:
            self._stats["cancelled"] += 1
            self._untrack(call)
            if call.parked:
                self._waiting.unpark(call)
            self._link.abort_call(call.socket, call.cid)
            self._send_cancel(call)

    def _send_credit(self, call: _Call, credit: int) -> None:
        endpoint = self._link.endpoint
        if call.socket is not None and endpoint is not None and self._pending.get(call.cid) is call:
            try:
                endpoint.send(call.socket, encode_stream_credit(call.cid, credit), importance=Importance.HIGH)
            except TipcRpcError:
                pass

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._on_timer)  # type: ignore[union-attr]

    def _on_timer(self) -> None:
        self._timer = None
        now = self._loop.time()  # type: ignore[union-attr]
        for _cid, call in self._pending.expire(now):
            if call.kind == _ONEWAY:
                self._untrack(call)
                if call.parked:
                    self._waiting.unpark(call)
                    log.warning("notification %s could not be delivered: no instance appeared within %.0f s",
                                call.method, NOTIFY_RETRY_WINDOW_S)  # fmt: skip
                continue
            self._stats["timeouts"] += 1
            self._fail(call, DeadlineExceeded(f"{call.method}: deadline exceeded"), cancel=True)
        nxt = self._pending.next_deadline()
        if nxt is not None:
            self._arm(nxt)

    # -- failover -----------------------------------------------------------------------------

    def _retry(self, call: _Call, never_started: bool, error: TipcRpcError | None = None) -> None:
        """Move ``call`` to another instance, or fail it (with ``error`` if given)."""
        self._untrack(call)
        self._link.abort_call(call.socket, call.cid)
        if call.kind == _ONEWAY and not never_started:
            self._pending.pop(call.cid)  # a delivered notification: nothing more to do
            return
        may_retry = call.kind != _FANOUT and (never_started or call.idempotent)
        if call.stream is not None and call.stream.received_any:
            may_retry = False  # items were consumed: a restart would repeat them
        now = self._loop.time()  # type: ignore[union-attr]
        if call.deadline is not None and now >= call.deadline:
            may_retry = False
            error = DeadlineExceeded(f"{call.method}: deadline exceeded during failover")
        sock = None
        if may_retry and self._resolver is not None:
            if call.wait_ready and not (isinstance(error, RpcError) and error.status == Status.SERVER_BUSY):
                # The instance is gone or going: move to one this call has not tried yet,
                # or wait for a new one to be published (until the deadline).
                sock = self._pick_fresh(call)
                if sock is None:
                    call.socket = None
                    self._waiting.park(call)
                    return
            elif call.attempts < call.max_attempts:
                m = self._resolver.view(call.type)
                sock = m.pick(self.policy, instance=call.instance, exclude=call.tried, own_node=self._own_node,
                              outstanding=self._by_socket)  # fmt: skip
        if sock is None:
            if error is None:
                what = f"{call.method} on {call.socket}"
                error = ServiceUnreachable(f"{what}: undeliverable and no other instance") if never_started \
                    else PeerLost(f"{what}: the instance was lost with the call in flight")  # fmt: skip
            if self._pending.pop(call.cid) is not None or call.kind == _FANOUT:
                self._fail(call, error, cancel=False)
            return
        self._stats["retries" if never_started else "failovers"] += 1
        if call.stream is not None:
            call.stream.reset()
        self._send_to(call, sock)

    # -- waiting for instances (wait_for, wait_ready) ------------------------------------------

    def _pick_fresh(self, call: _Call) -> SocketAddr | None:
        """A socket for ``call`` that it has not been sent to yet, or ``None``."""
        m = self._resolver.view(call.type)  # type: ignore[union-attr]
        sock = m.pick(self.policy, instance=call.instance, exclude=call.tried, own_node=self._own_node,
                      outstanding=self._by_socket)  # fmt: skip
        return None if sock is None or sock in call.tried else sock

    def _published(self, stype: int, sock: SocketAddr) -> None:
        """Resolver callback: ``sock`` published something of ``stype``: wake the waiters,
        re-send parked calls that can go to a socket they have not tried."""
        for call in self._waiting.published(stype):
            if self._pending.get(call.cid) is not call:
                continue
            fresh = self._pick_fresh(call)
            if fresh is None:
                self._waiting.park(call)  # not for its instance
                continue
            self._stats["retries"] += 1
            if call.stream is not None:
                call.stream.reset()
            self._send_to(call, fresh)

    async def _changed(self, stype: int, deadline: float | None, what: str) -> None:
        await self._waiting.changed(self._loop, stype, deadline, what)  # type: ignore[arg-type]

    def _calls_on(self, sock: SocketAddr) -> list[_Call]:
        return list(self._by_socket.get(sock, ()))

    def _socket_dead(self, sock: SocketAddr, before: int | None) -> None:
        """``sock`` is gone for good. Calls sent to it before transmission number ``before``
        (all, if ``None``) that did not come back were delivered: fail them over. Later ones
        will come back undeliverable themselves and are then retried as never started."""
        if self._resolver is not None:
            self._resolver.forget_socket(sock)
        for call in self._calls_on(sock):
            if before is not None and (call.sent > before or self._link.sending_to(sock, call.cid)):
                continue
            self._retry(call, never_started=False)
        if not self._by_socket.get(sock, True):
            del self._by_socket[sock]

    def _socket_withdrawn(self, stype: int, sock: SocketAddr) -> None:
        for call in self._calls_on(sock):
            if call.type != stype or call.kind == _ONEWAY:
                continue  # a notification is only re-sent when it comes back undeliverable
            if call.idempotent and call.kind in (_UNARY, _STREAM) and not (call.stream and call.stream.received_any):
                self._send_cancel(call)
                self._retry(call, never_started=False)
            else:
                self._probe(call)

    def _node_down(self, node: int) -> None:
        self._link.drop_node(node)
        for sock in [s for s in self._by_socket if s.node == node]:
            for call in self._calls_on(sock):
                self._retry(call, never_started=False)
        self._prune_sockets(node)

    def _probe(self, call: _Call) -> None:
        endpoint = self._link.endpoint
        if endpoint is None or call.socket is None or self._closed:
            return
        self._nonce = nonce = (self._nonce + 1) & 0xFFFF_FFFF
        self._stats["pings"] += 1
        self._send_seq += 1
        self._pings[nonce] = self._send_seq
        if len(self._pings) > 4096:  # answered pings are removed; this only bounds leaks
            for k in list(self._pings)[:2048]:
                del self._pings[k]
        try:
            endpoint.send(call.socket, encode_ping(call.cid, nonce), importance=Importance.CRITICAL)
        except ServiceUnreachable:
            self._socket_dead(call.socket, None)
        except TipcRpcError:
            pass

    def _on_pong(self, source: SocketAddr, cid: int, nonce: int, flags: int) -> None:
        self._pings.pop(nonce, None)
        call = self._pending.get(cid)
        if call is None or call.socket != source:
            return
        if not flags & PONG_ACTIVE:
            # The server does not know the call and its reply cannot be behind the pong
            # (datagrams between two sockets stay in order): the call is lost.
            self._retry(call, never_started=False)
            return
        m = self._resolver.view(call.type) if self._resolver is not None else None
        if m is not None and source not in m:

            def again() -> None:
                if self._pending.get(cid) is call and call.socket == source:
                    self._probe(call)

            self._link.later(PROBE_INTERVAL_S, again)

    # -- receiving ----------------------------------------------------------------------------

    def _on_message(self, msg: Delivery | Returned) -> None:
        if msg.__class__ is Delivery:
            self._on_frame(msg.data, msg.source)  # type: ignore[union-attr]
        else:
            self._on_returned(msg)  # type: ignore[arg-type]

    def _on_frame(self, data: bytes | bytearray, source: SocketAddr) -> None:
        if len(data) < HEADER_SIZE or data[0] != VERSION:
            self._stats["malformed"] += 1
            if len(data) >= HEADER_SIZE:
                call = self._pending.get(int.from_bytes(data[8:16], "big"))
                if call is not None and call.socket == source:
                    self._pending.pop(call.cid)
                    self._fail(call, RemoteProtocolError(
                        f"reply in unsupported frame version {data[0]} (this side speaks {VERSION})"), cancel=True)
            return
        _v, kind, flags, _r, aux, cid = HEADER.unpack_from(data)
        if kind == Kind.REPLY:
            call = self._pending.pop(cid)
            if call is None:
                return  # late duplicate (after failover) or abandoned
            self._untrack(call)
            if flags != call.learn and call.learn >= 0:
                self._learn(call, flags)
            fut = call.fut
            if fut is None or fut.done():
                return
            try:
                body = data[HEADER_SIZE:] if len(data) <= 65536 else memoryview(data)[HEADER_SIZE:]
                fut.set_result(self._codec.decode(body))
                self._stats["replies"] += 1
            except CodecError as exc:
                fut.set_exception(exc)
        elif kind == Kind.STREAM_ITEM or kind == Kind.STREAM_END:
            call = self._pending.get(cid)
            if call is None or call.stream is None or call.socket != source:
                return
            st = call.stream
            if kind == Kind.STREAM_ITEM:
                try:
                    st.push(aux, self._codec.decode(memoryview(data)[HEADER_SIZE:]))
                except CodecError as exc:
                    self._pending.pop(cid)
                    self._fail(call, exc, cancel=True)
                    return
            else:
                st.end(aux)
                if flags != call.learn and call.learn >= 0:
                    self._learn(call, flags)
            if st.complete:
                self._pending.pop(cid)
                self._untrack(call)
        elif kind == Kind.FAILURE:
            call = self._pending.get(cid)
            if call is None:
                return
            try:
                status, message, details = decode_failure(self._codec, data)
            except ProtocolError as exc:
                self._finish(call, exc)
                return
            exc = failure_to_exception(status, message, details)
            if status in _NEVER_STARTED and call.socket == source and call.kind != _FANOUT:
                self._retry(call, never_started=True, error=exc)  # type: ignore[arg-type]
            else:
                self._finish(call, exc)
        elif kind == Kind.PONG:
            self._on_pong(source, cid, aux, flags)
        elif kind == Kind.CHUNK:
            try:
                frame = self._link.on_chunk(source, aux, cid, data, self._loop.time())  # type: ignore[union-attr]
            except ProtocolError as exc:
                call = self._pending.get(cid)
                if call is not None:
                    self._pending.pop(cid)
                    self._fail(call, exc, cancel=True)
                return
            if frame is not None and len(frame) >= HEADER_SIZE and frame[1] != Kind.CHUNK:
                self._on_frame(frame, source)
        elif kind == Kind.CHUNK_ACK:
            try:
                self._link.on_chunk_ack(source, aux, data)
            except ProtocolError:
                self._stats["malformed"] += 1
        else:
            self._stats["malformed"] += 1

    def _on_returned(self, msg: Returned) -> None:
        hdr = peek_header(msg.data)
        dest = msg.dest
        if hdr is None or not isinstance(dest, SocketAddr):
            return
        kind, _flags, aux, cid = hdr
        reason = msg.reason
        if kind == Kind.CALL or kind == Kind.CHUNK:
            call = self._pending.get(cid)
            if call is None or call.socket != dest:
                return  # an earlier attempt's datagram
            if reason == DeliveryFailure.OVERLOAD:
                if kind == Kind.CHUNK:
                    if not self._link.on_overload(dest, msg.data, kind, aux):
                        self._retry(call, never_started=True)
                    return
                call.overloads += 1
                delay = min(0.002 * 2 ** min(call.overloads, 10), 0.1)

                def resend() -> None:
                    if self._pending.get(cid) is call and call.socket == dest:
                        self._send_seq = call.sent = self._send_seq + 1
                        try:
                            self._link.send(dest, call.frame, call.importance)
                        except TipcRpcError as exc:
                            self._finish(call, exc)

                self._link.later(delay, resend)
                return
            # NO_PORT / NO_NAME / NO_NODE: it never reached a handler.
            if self._resolver is not None:
                self._resolver.forget_socket(dest)
            sent = call.sent
            self._retry(call, never_started=True)
            self._socket_dead(dest, sent)
        elif kind == Kind.PING:
            sent = self._pings.pop(aux, None)
            if reason != DeliveryFailure.OVERLOAD:
                if sent is not None:
                    self._socket_dead(dest, sent)
                return
            call = self._pending.get(cid)  # the socket exists but is swamped: probe again soon
            if call is not None and call.socket == dest:
                self._link.later(0.05, lambda: self._probe(call) if self._pending.get(cid) is call else None)
        elif reason == DeliveryFailure.OVERLOAD:
            # CANCEL / STREAM_CREDIT / CHUNK_ACK refused by a swamped socket: small enough to
            # come back whole, so send them again (a lost credit or ack would stall a transfer).
            self._link.on_overload(dest, msg.data, kind, aux)
        # Otherwise the server is gone or going; the calls it held are handled by the
        # withdrawal / node-down / ping paths.

    async def _housekeeping(self) -> None:
        """Garbage-collect stale partial frames (e.g. replies from peers that vanished)."""
        while True:
            await anyio.sleep(self._link.reassembler.ttl / 2)
            self._prune_sockets()
            for _peer, cid in self._link.expire(self._loop.time()):  # type: ignore[union-attr]
                call = self._pending.get(cid)
                if call is not None:
                    self._pending.pop(cid)
                    self._fail(call, PeerLost(f"{call.method}: reply transfer stalled"), cancel=True)
