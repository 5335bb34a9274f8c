"""The client's call table: every rule about a call in flight, as a pure state machine (L1).

The table is fed what the client learns — frames from servers, datagrams that came back
undeliverable, withdrawals, node losses, the passing of time — and answers with an
:class:`Outbox`: frames to send, calls to complete (value or error), streams to wake, and
when it next needs :meth:`CallTable.timeout`. It never touches a socket, a clock or an
event loop; ``now`` is always an argument. The client shell
(:class:`~tipcrpc.rpc.client.Client`) owns the endpoint, the futures and one loop timer,
and does exactly what the outbox says.

One :class:`Call` record holds everything about a call: its frame, deadline, destination,
idempotency, the sockets it was sent to, its attempts and its timers. Nothing is kept
twice: the per-socket questions (which calls did that withdrawn socket hold?) are answered
by scanning the table, which happens on rare events only.

The rules (DESIGN.md §4):

* a CALL that comes back undeliverable (``NO_PORT``/``NO_NAME``/``NO_NODE``) provably never
  started: it is re-sent to another instance whatever the method; with ``OVERLOAD`` it is
  re-sent to the same socket after a short exponential backoff;
* a SERVER_BUSY or SHUTTING_DOWN answer means "never started" too: re-sent elsewhere;
* the node holding a call goes down: idempotent calls move at once, others fail with
  :class:`~tipcrpc.errors.PeerLost`;
* the socket's publication is withdrawn: idempotent calls move (a CANCEL goes to the old
  socket); the others are probed with PING: an undeliverable PING means the socket is gone
  (``PeerLost``), a PONG saying "in progress" (a graceful drain) means keep waiting and
  probe again every :data:`PROBE_INTERVAL_S`, a PONG saying "unknown" means it was lost;
* every datagram between two sockets arrives in send order, and undeliverable ones come
  back in that order: numbering transmissions lets a returned datagram tell which earlier
  calls to the same socket were delivered (possibly started) and which will come back too;
* a call is sent at most ``instances + 1`` times and never past its deadline; one made with
  ``wait_ready`` that may move but finds no untried instance is parked until a publication;
* a deadline that passes fails the call with :class:`~tipcrpc.errors.DeadlineExceeded` and
  sends CANCEL; so does the caller abandoning it. Re-sends reuse the call id, so a late
  duplicate reply finds no call and is ignored.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any, Callable, Iterable, Mapping

from ..addr import Importance, SocketAddr
from ..codec import Codec
from ..errors import (
    ClosedError,
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
from .frames import (
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
from .membership import Membership, Policy
from .remote_errors import failure_to_exception

__all__ = [
    "Call",
    "CallIds",
    "CallTable",
    "Outbox",
    "StreamState",
    "UNARY",
    "STREAM",
    "ONEWAY",
    "FANOUT",
    "PROBE_INTERVAL_S",
    "NOTIFY_RETRY_WINDOW_S",
    "OVERLOAD_BACKOFF_S",
    "OVERLOAD_BACKOFF_MAX_S",
]

#: Call kinds.
UNARY, STREAM, ONEWAY, FANOUT = 0, 1, 2, 3

#: While a non-idempotent call waits on a withdrawn (draining) socket, re-probe it this often.
PROBE_INTERVAL_S = 1.0
#: How long a notification is remembered so it can be re-sent if it comes back undeliverable.
NOTIFY_RETRY_WINDOW_S = 5.0
#: ... and at most this many at once: past it the oldest is forgotten (taken as delivered:
#: an undeliverable datagram comes back within a round trip, long before 1 024 newer ones
#: are sent). This bounds a client's memory under a notification flood.
NOTIFY_MEMORY = 1024
#: First backoff after an OVERLOAD return of a CALL; doubles per return, capped.
OVERLOAD_BACKOFF_S = 0.002
OVERLOAD_BACKOFF_MAX_S = 0.1
#: A PING refused with OVERLOAD (the socket exists but is swamped) is repeated after this.
PING_RETRY_S = 0.05

# Timer actions (the third element of a heap entry).
_DEADLINE, _PROBE, _RESEND = 0, 1, 2
_NEVER_STARTED = (Status.SERVER_BUSY, Status.SHUTTING_DOWN)
# Plain ints: IntFlag arithmetic is slow on the per-call path.
_IDEMPOTENT = int(Flag.IDEMPOTENT)
_KIND_FLAGS = (0, int(Flag.STREAM), int(Flag.ONEWAY), 0)
_U32 = 0xFFFF_FFFF
_REPLY, _FAILURE, _ITEM, _END, _PONG = int(Kind.REPLY), int(Kind.FAILURE), int(Kind.STREAM_ITEM), \
    int(Kind.STREAM_END), int(Kind.PONG)  # fmt: skip
_CALL, _CHUNK, _PING = int(Kind.CALL), int(Kind.CHUNK), int(Kind.PING)
_unpack_header = HEADER.unpack_from
_U64 = 0xFFFF_FFFF_FFFF_FFFF


class CallIds:
    """A 64-bit call-id counter starting at ``start`` (pass a random seed), skipping 0."""

    __slots__ = ("_next",)

    def __init__(self, start: int = 1) -> None:
        self._next = (start & _U64) or 1

    def __call__(self) -> int:
        cid = self._next
        nxt = (cid + 1) & _U64
        self._next = nxt or 1
        return cid


class StreamState:
    """Receive side of one streaming call: items re-ordered by sequence number (items
    re-sent after an overload may overtake others), the end marker, an error.

    Pure: the shell keeps its consumer's wake-up in ``waiter`` and is told through
    :attr:`Outbox.wake` when this state changed.
    """

    __slots__ = ("buf", "next_seq", "consumed", "end_count", "error", "waiter", "received_any")

    def __init__(self) -> None:
        self.buf: dict[int, Any] = {}
        self.next_seq = 0
        self.consumed = 0
        self.end_count: int | None = None
        self.error: BaseException | None = None
        self.waiter: Any = None  # the shell's wake-up handle
        self.received_any = False

    def push(self, seq: int, value: Any) -> None:
        if ((seq - self.next_seq) & _U32) >= 0x8000_0000 or seq in self.buf:
            return  # already consumed (a duplicate)
        self.buf[seq] = value
        self.received_any = True

    def end(self, count: int) -> None:
        self.end_count = count

    @property
    def complete(self) -> bool:
        """Every item and the end marker have arrived."""
        return self.end_count is not None and ((self.consumed + len(self.buf)) & _U32) == self.end_count

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc

    def reset(self) -> None:
        """The call moves to another instance before any item arrived."""
        self.buf.clear()
        self.end_count = None

    def take(self) -> tuple[bool, Any]:
        """``(True, item)`` for the next item in order, else ``(False, None)``."""
        seq = self.next_seq
        if seq in self.buf:
            self.next_seq = (seq + 1) & _U32
            self.consumed += 1
            return True, self.buf.pop(seq)
        return False, None

    @property
    def finished(self) -> bool:
        """The end marker arrived and every item before it was taken."""
        return self.end_count is not None and (self.consumed & _U32) == self.end_count


class Call:
    """One call in flight: the single record of everything about it."""

    __slots__ = (
        "id", "kind", "type", "method", "frame", "idempotent", "importance", "deadline", "instance",
        "socket", "tried", "attempts", "max_attempts", "sent", "wait_ready", "parked", "learn",
        "stream", "overloads", "resend_at", "probe_at", "waiter", "done", "body", "started",
    )  # fmt: skip

    def __init__(self, cid: int, kind: int, type: int, method: str, frame: bytes, idempotent: bool,
                 importance: Importance, deadline: float | None, instance: int | None, learn: int = -1,
                 started: float = 0.0, max_attempts: int = 2, wait_ready: bool = False) -> None:  # fmt: skip
        self.id = cid
        self.kind = kind
        self.type = type
        self.method = method
        self.frame = frame
        self.idempotent = idempotent
        self.importance = importance
        self.deadline = deadline
        self.instance = instance
        self.socket: SocketAddr | None = None
        self.tried: list[SocketAddr] = []
        self.attempts = 0
        self.max_attempts = max_attempts
        self.sent = 0  # transmission number of the latest send (see the module docstring)
        self.wait_ready = wait_ready
        self.parked = False
        # The method flags the client knew when it made a call by name (0: nothing yet),
        # compared with the answer's to learn them; -1 when a local Service defines it.
        self.learn = learn
        self.stream: StreamState | None = None
        self.overloads = 0
        self.resend_at: float | None = None
        self.probe_at: float | None = None
        self.waiter: Any = None  # the shell's handle (a future); never read here
        self.done = False
        # (args, kwargs, flags, credit, metadata): to re-encode the frame with the deadline
        # left when the call is re-sent later (failover, overload backoff)
        self.body: tuple[Any, Any, int, int | None, Mapping[str, Any] | None] | None = None
        self.started = started  # the ``now`` it was made at (ops hook: the client's latency metrics)

    def __repr__(self) -> str:
        return f"<Call {self.id:#x} {self.method} -> {self.socket}>"


class Outbox:
    """What the shell must do after feeding the table an event (one object, reused).

    ``sends``: ``(dest, frame, importance)`` in order; ``done``: ``(call, value, error)``
    (``error`` ``None`` for a result); ``wake``: stream calls whose :class:`StreamState`
    changed; ``learned``: ``(type, method, flags)`` describing a method called by name;
    ``moved``: ``(call, from socket, to socket, refusal or None)`` for calls that failed
    over (for the log; the call is already re-sent). The shell empties the lists it handled.
    """

    __slots__ = ("sends", "done", "wake", "learned", "moved")

    def __init__(self) -> None:
        self.sends: list[tuple[SocketAddr, bytes, Importance]] = []
        self.done: list[tuple[Call, Any, BaseException | None]] = []
        self.wake: list[Call] = []
        self.learned: list[tuple[int, str, int]] = []
        self.moved: list[tuple[Call, SocketAddr | None, SocketAddr, BaseException | None]] = []


class CallTable:
    """Calls in flight of one client (see the module docstring).

    ``view(type)`` returns the :class:`Membership` of a service type (the resolver's live
    view) and is used to pick sockets on failover.
    """

    def __init__(self, codec: Codec, view: Callable[[int], Membership], *, policy: Policy = Policy.ROUND_ROBIN,
                 own_node: int = 0, first_id: int = 1) -> None:  # fmt: skip
        self.codec = codec
        self.view = view
        self.policy = policy
        self.own_node = own_node
        self.out = Outbox()
        self.calls: dict[int, Call] = {}
        self.ids = CallIds(first_id)
        self._timers: list[tuple[float, int, int]] = []  # (when, call id, action), lazy deletion
        self._send_seq = 0
        self._nonce = 0
        self._pings: dict[int, int] = {}  # ping nonce -> transmission number
        self._parked: dict[int, list[Call]] = {}  # service type -> calls waiting for an instance
        self._notes: deque[Call] = deque()  # notifications remembered, oldest first
        # per-socket in-flight counts, kept only for the least-outstanding policy
        self.outstanding: dict[SocketAddr, int] | None = {} if policy is Policy.LEAST_OUTSTANDING else None
        self.closed = False
        # Counters: the two the per-call path moves are plain ints (cheaper than a dict
        # item); the rest, moved on rare events, live in ``counts``. ``stats`` joins them.
        self.calls_made = 0
        self.replies = 0
        self.counts = dict.fromkeys(
            ("failures", "retries", "failovers", "peer_lost", "timeouts", "cancelled",
             "notifications", "streams", "pings", "malformed"), 0)  # fmt: skip

    @property
    def stats(self) -> dict[str, int]:
        """Counters: calls, replies, failures, retries, failovers, peer_lost, timeouts,
        cancelled, notifications, streams, pings, malformed (a snapshot)."""
        return {"calls": self.calls_made, "replies": self.replies, **self.counts}

    def __len__(self) -> int:
        return len(self.calls)

    # -- starting ------------------------------------------------------------------------------

    def new(self, kind: int, type: int, method: str, args: Any, kwargs: Any, idempotent: bool = False,
            importance: Importance = Importance.LOW, deadline: float | None = None, instance: int | None = None,
            credit: int | None = None, metadata: Mapping[str, Any] | None = None, learn: int = -1,
            now: float = 0.0, to: SocketAddr | None = None, max_attempts: int = 2, wait_ready: bool = False) -> Call:  # fmt: skip
        """A new call, sent to ``to`` if given (else :meth:`send` sends it). Encodes its frame
        first, so an argument that cannot be encoded raises :class:`CodecError` before
        anything happens. ``max_attempts``: sends at most (instances + 1); ``wait_ready``:
        park rather than fail when no untried instance is left."""
        if self.closed:
            raise ClosedError("client is closed")
        ids = self.ids
        cid = ids._next  # CallIds() inlined: this is the per-call path
        ids._next = ((cid + 1) & _U64) or 1
        flags = _KIND_FLAGS[kind] | (_IDEMPOTENT if idempotent else 0)
        if deadline is None:
            frame = encode_call(self.codec, cid, type, method, args, kwargs, None, flags, credit, instance, metadata)
        else:
            remaining = deadline - now
            frame = encode_call(self.codec, cid, type, method, args, kwargs, remaining if remaining > 0.0 else 0.0,
                                flags, credit, instance, metadata)  # fmt: skip
        call = Call(cid, kind, type, method, frame, idempotent, importance, deadline, instance, learn, now,
                    max_attempts, wait_ready)  # fmt: skip
        self.calls[cid] = call
        self.calls_made += 1
        if kind != UNARY:
            if kind == ONEWAY:
                deadline = now + NOTIFY_RETRY_WINDOW_S  # remembered this long for re-sends
                self.counts["notifications"] += 1
                notes = self._notes
                notes.append(call)
                if len(notes) > NOTIFY_MEMORY:
                    self._forget_notes()
            elif kind == STREAM:
                call.stream = StreamState()
                self.counts["streams"] += 1
        if deadline is not None:
            call.body = (args, kwargs, flags, credit, metadata)
            heapq.heappush(self._timers, (deadline, cid, _DEADLINE))
        if to is not None:
            self.send(call, to)
        return call

    def _forget_notes(self) -> None:
        """Keep at most :data:`NOTIFY_MEMORY` notifications: forget the oldest (see there)."""
        notes = self._notes
        while notes and (notes[0].done or len(notes) > NOTIFY_MEMORY):
            old = notes.popleft()
            if not old.done and not old.parked:  # a parked one still waits for an instance
                old.done = True
                self.calls.pop(old.id, None)
                self._unroute(old)
            elif not old.done:
                notes.append(old)
                break

    def _refresh(self, call: Call, now: float) -> None:
        """Re-encode ``call``'s frame with the deadline left at ``now`` (before a re-send)."""
        body = call.body
        if body is not None and call.deadline is not None:
            args, kwargs, flags, credit, metadata = body
            call.frame = encode_call(self.codec, call.id, call.type, call.method, args, kwargs,
                                     max(call.deadline - now, 0.0), flags, credit, call.instance, metadata)  # fmt: skip

    def send(self, call: Call, sock: SocketAddr) -> None:
        """Send (or re-send) ``call`` to ``sock``."""
        call.socket = sock
        call.tried.append(sock)
        call.attempts += 1
        self._send_seq = call.sent = self._send_seq + 1
        counts = self.outstanding
        if counts is not None:
            counts[sock] = counts.get(sock, 0) + 1
        self.out.sends.append((sock, call.frame, call.importance))

    def _unroute(self, call: Call) -> None:
        counts = self.outstanding
        if counts is not None and call.socket is not None:
            n = counts.get(call.socket, 0) - 1
            if n > 0:
                counts[call.socket] = n
            else:
                counts.pop(call.socket, None)

    # -- ending --------------------------------------------------------------------------------

    def _complete(self, call: Call, value: Any, error: BaseException | None) -> None:
        """Remove ``call`` and hand its outcome to the shell."""
        if call.done:
            return
        call.done = True
        self.calls.pop(call.id, None)
        self._unroute(call)
        if call.parked:
            self._unpark(call)
        if error is not None:
            self.counts["failures"] += 1
            if isinstance(error, PeerLost):
                self.counts["peer_lost"] += 1
            if call.stream is not None:
                call.stream.fail(error)
                self.out.wake.append(call)
        self.out.done.append((call, value, error))

    def _fail(self, call: Call, error: BaseException, *, cancel: bool) -> None:
        if cancel:
            self._send_cancel(call)
        self._complete(call, None, error)

    def _send_cancel(self, call: Call) -> None:
        if call.socket is not None and call.kind != ONEWAY and not call.done:
            self.out.sends.append((call.socket, encode_cancel(call.id), Importance.HIGH))

    def abandon(self, call: Call) -> None:
        """The caller gave up (cancelled, or left a stream early): forget it, tell the server."""
        if call.done:
            return
        self.counts["cancelled"] += 1
        self._send_cancel(call)
        call.done = True
        self.calls.pop(call.id, None)
        self._unroute(call)
        if call.parked:
            self._unpark(call)

    def fail(self, call: Call, error: BaseException) -> None:
        """Fail ``call`` with ``error`` for a reason found outside the table (a send the
        transport refused, a reply transfer that stalled), telling the server."""
        if not call.done:
            self._fail(call, error, cancel=True)

    def grant(self, call: Call, credit: int) -> None:
        """The stream's consumer took ``credit`` items: let the server send more."""
        if not call.done and call.socket is not None:
            self.out.sends.append((call.socket, encode_stream_credit(call.id, credit), Importance.HIGH))

    def close(self) -> None:
        """The client closes: every call fails with :class:`ClosedError` (CANCEL sent)."""
        self.closed = True
        for call in list(self.calls.values()):
            if call.kind == ONEWAY:  # it was sent; only its re-send window ends
                call.done = True
                self.calls.pop(call.id, None)
            else:
                self._fail(call, ClosedError("client closed"), cancel=True)
        self._parked.clear()
        self._timers.clear()

    # -- receiving -----------------------------------------------------------------------------

    def frame(self, source: SocketAddr, data: bytes | bytearray | memoryview, now: float) -> None:
        """A frame arrived from ``source`` (CHUNKs are reassembled by the shell first)."""
        if len(data) < HEADER_SIZE or data[0] != VERSION:
            self.counts["malformed"] += 1
            if len(data) >= HEADER_SIZE:
                call = self.calls.get(int.from_bytes(data[8:16], "big"))
                if call is not None and call.socket == source:
                    self._fail(call, RemoteProtocolError(
                        f"reply in unsupported frame version {data[0]} (this side speaks {VERSION})"), cancel=True)
            return
        _v, kind, flags, _r, aux, cid = _unpack_header(data)
        call = self.calls.get(cid)
        if kind == _REPLY:
            if call is None or call.kind == STREAM:
                return  # a late duplicate (after failover) or an abandoned call
            if flags != call.learn and call.learn >= 0:
                self._learn(call, flags)
            try:
                value = self.codec.decode(data[HEADER_SIZE:] if len(data) <= 65536 else memoryview(data)[HEADER_SIZE:])
            except CodecError as exc:
                self._complete(call, None, exc)
                return
            self.replies += 1
            call.done = True
            del self.calls[cid]
            if self.outstanding is not None:
                self._unroute(call)
            self.out.done.append((call, value, None))
        elif kind == _ITEM or kind == _END:
            if call is None or call.stream is None or call.socket != source:
                return
            st = call.stream
            if kind == _ITEM:
                try:
                    st.push(aux, self.codec.decode(memoryview(data)[HEADER_SIZE:]))
                except CodecError as exc:
                    self._fail(call, exc, cancel=True)
                    return
            else:
                st.end(aux)
                if flags != call.learn and call.learn >= 0:
                    self._learn(call, flags)
            self.out.wake.append(call)
            if st.complete:
                call.done = True
                self.calls.pop(cid, None)
                self._unroute(call)
        elif kind == _FAILURE:
            if call is None:
                return
            try:
                status, message, details = decode_failure(self.codec, data)
            except ProtocolError as exc:
                self._complete(call, None, exc)
                return
            error = failure_to_exception(status, message, details)
            if status in _NEVER_STARTED and call.socket == source and call.kind != FANOUT:
                self._retry(call, now, never_started=True, error=error)
            else:
                self._complete(call, None, error)
        elif kind == _PONG:
            self._pong(source, call, aux, flags, now)
        else:
            self.counts["malformed"] += 1

    def _learn(self, call: Call, flags: int) -> None:
        if parse_method_flags(flags) is not None:
            self.out.learned.append((call.type, call.method, flags))

    def returned(self, dest: SocketAddr, data: bytes | bytearray | memoryview, overload: bool, now: float) -> None:
        """A datagram sent to ``dest`` came back undeliverable (``overload``: the socket
        exists but refused it; otherwise it is gone)."""
        hdr = peek_header(data)
        if hdr is None:
            return
        kind, _flags, aux, cid = hdr
        if kind == _CALL or kind == _CHUNK:
            call = self.calls.get(cid)
            if call is None or call.socket != dest:
                return  # an earlier attempt's datagram
            if overload:
                if kind == _CHUNK:
                    return  # the shell's chunk sender re-sends chunks itself
                call.overloads += 1
                call.resend_at = when = now + min(OVERLOAD_BACKOFF_S * 2 ** min(call.overloads - 1, 10),
                                                  OVERLOAD_BACKOFF_MAX_S)  # fmt: skip
                heapq.heappush(self._timers, (when, cid, _RESEND))
                return
            self.undeliverable(call, dest, now)
        elif kind == _PING:
            sent = self._pings.pop(aux, None)
            if not overload:
                if sent is not None:
                    self.socket_gone(dest, now, before=sent)
                return
            call = self.calls.get(cid)  # the socket exists but is swamped: probe again soon
            if call is not None and call.socket == dest:
                call.probe_at = when = now + PING_RETRY_S
                heapq.heappush(self._timers, (when, cid, _PROBE))
        # CANCEL / STREAM_CREDIT / CHUNK_ACK: the shell re-sends those refused with OVERLOAD;
        # otherwise the server is gone, and the withdrawal / node-down / ping paths act.

    def undeliverable(self, call: Call, dest: SocketAddr, now: float) -> None:
        """``call`` (or a chunk of it) provably did not reach ``dest``, which is gone: move
        it; calls sent to ``dest`` before it were delivered and fail over too."""
        sent = call.sent
        self._retry(call, now, never_started=True)
        self.socket_gone(dest, now, before=sent)

    # -- membership changes ----------------------------------------------------------------------

    def _on(self, sock: SocketAddr) -> list[Call]:
        return [c for c in self.calls.values() if c.socket == sock]

    def socket_gone(self, sock: SocketAddr, now: float, *, before: int | None = None) -> None:
        """``sock`` is gone for good. Calls sent to it before transmission ``before`` (all, if
        ``None``) that did not come back were delivered: fail them over. Later ones will come
        back undeliverable themselves and then move as never started."""
        for call in self._on(sock):
            if before is not None and call.sent > before:
                continue
            self._retry(call, now, never_started=False)

    def withdrawn(self, type: int, sock: SocketAddr, now: float) -> None:
        """``sock`` no longer publishes anything of ``type`` (it may be draining)."""
        for call in self._on(sock):
            if call.type != type or call.kind == ONEWAY:
                continue  # a notification is only re-sent when it comes back undeliverable
            if call.idempotent and call.kind in (UNARY, STREAM) and not (call.stream and call.stream.received_any):
                self._send_cancel(call)
                self._retry(call, now, never_started=False)
            else:
                self._probe(call)

    def node_down(self, node: int, now: float) -> None:
        """``node`` went down with every socket on it."""
        for call in [c for c in self.calls.values() if c.socket is not None and c.socket.node == node]:
            self._retry(call, now, never_started=False)

    def published(self, type: int, now: float) -> None:
        """A socket published something of ``type``: re-send parked calls that can now go to
        a socket they have not tried."""
        for call in self._parked.pop(type, ()):
            call.parked = False
            if call.done:
                continue
            fresh = self._pick_fresh(call)
            if fresh is None:
                self._park(call)  # not for its instance
                continue
            self.counts["retries"] += 1
            if call.stream is not None:
                call.stream.reset()
            self._refresh(call, now)
            self.send(call, fresh)

    # -- failover --------------------------------------------------------------------------------

    def _pick(self, call: Call, exclude: Iterable[SocketAddr] = ()) -> SocketAddr | None:
        return self.view(call.type).pick(self.policy, instance=call.instance, exclude=exclude,
                                         own_node=self.own_node, outstanding=self.outstanding)  # fmt: skip

    def _pick_fresh(self, call: Call) -> SocketAddr | None:
        sock = self._pick(call, call.tried)
        return None if sock is None or sock in call.tried else sock

    def _park(self, call: Call) -> None:
        call.parked = True
        self._parked.setdefault(call.type, []).append(call)

    def _unpark(self, call: Call) -> None:
        call.parked = False
        calls = self._parked.get(call.type)
        if calls is not None and call in calls:
            calls.remove(call)
            if not calls:
                del self._parked[call.type]

    def _retry(self, call: Call, now: float, *, never_started: bool, error: TipcRpcError | None = None) -> None:
        """Move ``call`` to another instance, or fail it (with ``error`` if given)."""
        if call.done:
            return
        self._unroute(call)
        if call.kind == ONEWAY and not never_started:
            call.done = True  # a delivered notification: nothing more to do
            self.calls.pop(call.id, None)
            return
        may_retry = call.kind != FANOUT and (never_started or call.idempotent)
        if call.stream is not None and call.stream.received_any:
            may_retry = False  # items were consumed: a restart would repeat them
        if call.deadline is not None and now >= call.deadline:
            may_retry = False
            error = DeadlineExceeded(f"{call.method}: deadline exceeded during failover")
        sock = None
        if may_retry:
            busy = isinstance(error, RpcError) and error.status == Status.SERVER_BUSY
            if call.wait_ready and not busy:
                # The instance is gone or going: move to one this call has not tried yet,
                # or wait for a new one to be published (until the deadline).
                sock = self._pick_fresh(call)
                if sock is None:
                    call.socket = None
                    self._park(call)
                    return
            elif call.attempts < call.max_attempts:
                sock = self._pick(call, call.tried)
        if sock is None:
            if error is None:
                what = f"{call.method} on {call.socket}"
                error = ServiceUnreachable(f"{what}: undeliverable and no other instance") if never_started \
                    else PeerLost(f"{what}: the instance was lost with the call in flight")  # fmt: skip
            self._complete(call, None, error)
            return
        self.counts["retries" if never_started else "failovers"] += 1
        self.out.moved.append((call, call.socket, sock, error))
        if call.stream is not None:
            call.stream.reset()
        self._refresh(call, now)
        self.send(call, sock)

    # -- probing ---------------------------------------------------------------------------------

    def _probe(self, call: Call) -> None:
        if call.socket is None or call.done:
            return
        self._nonce = nonce = (self._nonce + 1) & _U32
        self.counts["pings"] += 1
        self._send_seq += 1
        self._pings[nonce] = self._send_seq
        if len(self._pings) > 4096:  # answered pings are removed; this only bounds leaks
            for k in list(self._pings)[:2048]:
                del self._pings[k]
        call.probe_at = None
        self.out.sends.append((call.socket, encode_ping(call.id, nonce), Importance.CRITICAL))

    def _pong(self, source: SocketAddr, call: Call | None, nonce: int, flags: int, now: float) -> None:
        self._pings.pop(nonce, None)
        if call is None or call.socket != source:
            return
        if not flags & PONG_ACTIVE:
            # The server does not know the call, and its reply cannot be behind the pong
            # (datagrams between two sockets stay in order): the call is lost.
            self._retry(call, now, never_started=False)
            return
        if source not in self.view(call.type):  # still withdrawn (draining): ask again later
            call.probe_at = when = now + PROBE_INTERVAL_S
            heapq.heappush(self._timers, (when, call.id, _PROBE))

    # -- time ------------------------------------------------------------------------------------

    @property
    def next_timer(self) -> float | None:
        """When :meth:`timeout` must next run, or ``None``."""
        timers, calls = self._timers, self.calls
        while timers:
            when, cid, action = timers[0]
            call = calls.get(cid)
            if call is not None and (action == _DEADLINE or when == (call.probe_at if action == _PROBE else call.resend_at)):
                return when
            heapq.heappop(timers)
        return None

    def timeout(self, now: float) -> None:
        """Run every timer due at ``now``: deadlines, probes, overload re-sends."""
        timers, calls = self._timers, self.calls
        while timers and timers[0][0] <= now:
            when, cid, action = heapq.heappop(timers)
            call = calls.get(cid)
            if call is None:
                continue
            if action == _DEADLINE:
                if call.kind == ONEWAY:
                    call.done = True
                    del calls[cid]
                    if call.parked:
                        self._unpark(call)
                        self.out.done.append((call, None, ServiceUnreachable(
                            f"notification {call.method}: no instance appeared within {NOTIFY_RETRY_WINDOW_S:.0f} s")))
                    continue
                self.counts["timeouts"] += 1
                self._fail(call, DeadlineExceeded(f"{call.method}: deadline exceeded"), cancel=True)
            elif action == _PROBE:
                if call.probe_at == when:
                    self._probe(call)
            elif call.resend_at == when and call.socket is not None:
                call.resend_at = None
                self._refresh(call, now)
                self._send_seq = call.sent = self._send_seq + 1
                self.out.sends.append((call.socket, call.frame, call.importance))
        if len(timers) > 64 and len(timers) > 4 * len(calls):  # drop entries of finished calls
            self._timers = [t for t in timers if t[1] in calls]
            heapq.heapify(self._timers)
