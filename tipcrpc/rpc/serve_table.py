"""The server's serve table: every rule about a call being served, as a pure state machine (L1).

The table is fed frames from clients, returned datagrams, node losses, handler outcomes and
the passing of time; it answers with a :class:`ServeOutbox`: frames to send, calls to run,
calls to cancel, streams to wake. The server shell (:class:`~tipcrpc.rpc.server.Server`)
runs handlers (inline when they finish without suspending, as tasks otherwise), owns the
endpoint and one loop timer, and does what the outbox says. ``now`` is always an argument.

Rules:

* a CALL is decoded and checked (known service type and method, call shape, arguments
  against the signature) before anything runs; a malformed one is answered with
  PROTOCOL_ERROR, an unknown method with METHOD_NOT_FOUND, bad arguments with
  INVALID_ARGUMENTS — notifications are never answered, only counted and reported;
* the deadline travels as *remaining seconds* and becomes ``now + remaining`` on this
  server's clock; a call whose deadline passed on the way is refused at once, one whose
  deadline passes while it runs or waits is cancelled and answered DEADLINE_EXCEEDED, even
  when the client's CANCEL is lost;
* a CALL whose id is already in progress from the same socket is a duplicate (re-sent after
  an overload that was delivered after all, or duplicated on the way) and is dropped;
* at most ``max_concurrency`` calls run; up to ``max_queued`` wait in FIFO order; beyond that
  SERVER_BUSY — which the client treats as "never started" and retries elsewhere;
* CANCEL, the client's socket coming back undeliverable, and its node going down cancel
  its calls;
* draining: new calls are answered SHUTTING_DOWN (clients retry elsewhere); notifications
  are still run until the table is *closing*, since they cannot be answered otherwise.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any, Mapping

from ..addr import Importance, SocketAddr
from ..codec import Codec
from ..errors import CodecError, InvalidArguments, ProtocolError, RpcError, Status
from .frames import (
    HEADER,
    HEADER_SIZE,
    VERSION,
    Flag,
    Kind,
    decode_call,
    encode_failure,
    encode_reply,
    encode_stream_end,
    encode_stream_item,
    method_flags,
)
from .remote_errors import exception_to_failure, unencodable_result_failure
from .service import MethodInfo, Service

__all__ = ["Served", "ServeTable", "ServeOutbox", "CANCELLED", "DEADLINE", "SHUTDOWN", "CLIENT_LOST"]

#: Why a call was cancelled (:attr:`Served.reason`).
CANCELLED, DEADLINE, SHUTDOWN, CLIENT_LOST = 1, 2, 3, 4

_ONEWAY, _STREAM = int(Flag.ONEWAY), int(Flag.STREAM)  # plain ints: IntFlag ops are slow
_CALL, _CANCEL, _CREDIT = int(Kind.CALL), int(Kind.CANCEL), int(Kind.STREAM_CREDIT)
_unpack_header = HEADER.unpack_from


class Served:
    """One call accepted by the server: running, or waiting in the backlog."""

    __slots__ = ("source", "cid", "info", "args", "kwargs", "oneway", "credit", "deadline", "instance",
                 "metadata", "reason", "handle", "waiter", "seq", "done", "queued", "tracked", "started")  # fmt: skip

    def __init__(self, source: SocketAddr, cid: int, info: MethodInfo, args: list[Any], kwargs: dict[str, Any],
                 oneway: bool, credit: int, deadline: float | None, instance: int | None,
                 metadata: dict[str, Any] | None, started: float = 0.0) -> None:  # fmt: skip
        #: ``instance``: the one the client routed to, else this server's only instance of the type
        self.source = source
        self.cid = cid
        self.info = info
        self.args = args
        self.kwargs = kwargs
        self.oneway = oneway
        self.credit = credit
        self.deadline = deadline
        self.instance = instance
        self.metadata = metadata
        self.reason: int | None = None
        self.handle: Any = None  # the shell's task, once the call runs as one
        self.waiter: Any = None  # the shell's wake-up for a stream waiting for credit
        self.seq = 0  # items sent (streams)
        self.done = False
        self.queued = False  # waiting in the backlog
        self.tracked = False  # in ServeTable.active (see ServeTable.suspended)
        self.started = started  # when it was accepted (the ``now`` of its CALL), for metrics

    def __repr__(self) -> str:
        return f"<Served {self.cid:#x} {self.info.name} from {self.source}>"


class ServeOutbox:
    """What the shell must do after an event (one object, reused; the shell empties it).

    ``sends``: ``(dest, frame, importance)``; ``run``: calls to start now; ``cancel``: running
    calls to cancel (their :attr:`Served.reason` says why); ``wake``: streams given credit;
    ``done``: ``(call, error name or None)`` of handlers that finished, for the metrics.
    """

    __slots__ = ("sends", "run", "cancel", "wake", "done")

    def __init__(self) -> None:
        self.sends: list[tuple[SocketAddr, bytes, Importance]] = []
        self.run: list[Served] = []
        self.cancel: list[Served] = []
        self.wake: list[Served] = []
        self.done: list[tuple[Served, str | None]] = []


class ServeTable:
    """Calls being served by one server endpoint (see the module docstring)."""

    def __init__(self, codec: Codec, services: list[Service[Any]], *, max_concurrency: int = 1024,
                 max_queued: int = 8192, address: object = None,
                 instance_of: Mapping[int, int] | None = None, send_tracebacks: bool = False) -> None:  # fmt: skip
        self.codec = codec
        self.max_concurrency = max_concurrency
        self.max_queued = max_queued
        self.address = address  # for messages only
        # service type -> the one instance this server publishes of it (when there is one)
        self.instance_of = dict(instance_of or {})
        self.send_tracebacks = send_tracebacks  # add handler tracebacks to failures (opt-in)
        self.methods: dict[int, dict[str, MethodInfo]] = {svc.type: dict(svc.methods) for svc in services}
        # Flags of every REPLY/STREAM_END: the method's options, for clients calling by name.
        self.flags: dict[MethodInfo, int] = {
            info: method_flags(info.idempotent, info.importance) for svc in services for info in svc.methods.values()
        }
        self.out = ServeOutbox()
        self.active: dict[tuple[SocketAddr, int], Served] = {}
        self.backlog: deque[Served] = deque()
        self.running = 0
        self.draining = False
        self.closing = False
        self._timers: list[tuple[float, int, Served]] = []
        self._tseq = 0
        # Counters: the two the per-call path moves are plain ints (cheaper than a dict
        # item); the rest, moved on rare events, live in ``counts``. ``stats`` joins them.
        self.received = 0
        self.completed = 0
        self.counts = dict.fromkeys(
            ("failed", "cancelled", "deadline_exceeded", "busy", "malformed", "notifications", "streams",
             "client_lost"), 0)  # fmt: skip

    @property
    def stats(self) -> dict[str, int]:
        """Counters: received, completed, failed, cancelled, deadline_exceeded, busy,
        malformed, notifications, streams, client_lost (a snapshot)."""
        return {"received": self.received, "completed": self.completed, **self.counts}

    # -- answering -----------------------------------------------------------------------------

    def _failure(self, dest: SocketAddr, cid: int, status: Status, message: str, details: Any = None) -> None:
        self.counts["failed"] += 1
        self.out.sends.append((dest, encode_failure(self.codec, cid, status, message, details), Importance.HIGH))

    def refuse_oneway(self, what: str) -> str:
        """Count a notification that cannot run; returns the text to log."""
        self.counts["failed"] += 1
        return what

    # -- receiving -----------------------------------------------------------------------------

    def frame(self, source: SocketAddr, data: bytes | bytearray | memoryview, now: float) -> str | None:
        """A frame arrived (CHUNKs reassembled, PINGs answered by the shell). Returns a
        warning for the shell to log when a notification had to be dropped, else ``None``."""
        if len(data) < HEADER_SIZE:
            self.counts["malformed"] += 1
            return None
        version, kind, flags, _r, aux, cid = _unpack_header(data)
        if kind == _CALL and version == VERSION:
            return self._call(source, data, flags, aux, cid, now)
        if version != VERSION:
            self.counts["malformed"] += 1
            if kind == _CALL and not flags & _ONEWAY:
                self._failure(source, cid, Status.PROTOCOL_ERROR,
                              f"unsupported frame version {version}; this server speaks {VERSION}")  # fmt: skip
            return None
        if kind == _CALL:
            return self._call(source, data, flags, aux, cid, now)
        if kind == _CANCEL:
            s = self.active.get((source, cid))
            if s is not None:
                self._cancel(s, CANCELLED)
        elif kind == _CREDIT:
            s = self.active.get((source, cid))
            if s is not None:
                s.credit += aux
                self.out.wake.append(s)
        else:
            self.counts["malformed"] += 1  # replies and unknown kinds are never answered: no loops
        return None

    def _call(self, source: SocketAddr, data: Any, flags: int, stype: int, cid: int, now: float) -> str | None:
        oneway = flags & _ONEWAY != 0
        try:
            method, args, kwargs, remaining, credit, instance, metadata = decode_call(self.codec, data)
        except ProtocolError as exc:
            self.counts["malformed"] += 1
            if oneway:
                return f"notification from {source} dropped: {exc}"
            self._failure(source, cid, Status.PROTOCOL_ERROR, str(exc))
            return None
        self.received += 1
        counts = self.counts
        if oneway:
            counts["notifications"] += 1
        methods = self.methods.get(stype)
        info = methods.get(method) if methods is not None else None
        if info is None:
            what = f"method {method!r}" if methods is not None else f"service type {stype}"
            if oneway:
                return self.refuse_oneway(f"notification from {source} dropped: {what} is not served here")
            self._failure(source, cid, Status.METHOD_NOT_FOUND, f"{what} is not served at {self.address}",
                          {"type": stype, "method": method})  # fmt: skip
            return None
        if self.draining and (self.closing or not oneway):
            # Answered even for a notification: the client re-sends it elsewhere.
            self._failure(source, cid, Status.SHUTTING_DOWN, "server is closing" if self.closing else "server is draining")
            return None
        if info.streaming != (flags & _STREAM != 0) or kwargs or info.arity != len(args):
            # (the common case, positional arguments matching a plain signature, needs no bind)
            try:
                if info.streaming != (flags & _STREAM != 0):
                    hint = "stream()" if info.streaming else "call()"
                    raise InvalidArguments(f"{method} is {'a' if info.streaming else 'not a'} streaming method; use {hint}")
                info.bind(args, kwargs)
            except InvalidArguments as exc:
                if oneway:
                    return self.refuse_oneway(f"notification {method} from {source} dropped: {exc.message}")
                self._failure(source, cid, Status.INVALID_ARGUMENTS, exc.message, exc.details)
                return None
        if remaining is not None and remaining <= 0.0:
            counts["deadline_exceeded"] += 1
            if oneway:
                return f"notification {method} from {source} dropped: its deadline passed before it arrived"
            self._failure(source, cid, Status.DEADLINE_EXCEEDED, "deadline passed before the call arrived")
            return None
        if self.active and (source, cid) in self.active:
            self.received -= 1
            return None  # a duplicate of a call in progress
        if instance is None:
            instance = self.instance_of.get(stype)
        s = Served(source, cid, info, args, kwargs, oneway, credit or 0, None if remaining is None else now + remaining,
                   instance, metadata, now)  # fmt: skip
        if info.streaming:
            counts["streams"] += 1
        if self.running < self.max_concurrency:
            # Not tracked yet: a handler that finishes inline needs no entry (nothing else
            # can reach it meanwhile); the shell calls suspended() if it does not.
            self.running += 1
            self.out.run.append(s)
        elif len(self.backlog) < self.max_queued:
            self._track(s)
            s.queued = True
            self.backlog.append(s)
        else:
            s.done = True
            counts["busy"] += 1
            # Answered even for a notification: the client re-sends it to another instance.
            self._failure(source, cid, Status.SERVER_BUSY, f"server at its limit of {self.max_concurrency} calls")
        return None

    def _track(self, s: Served) -> None:
        s.tracked = True
        self.active[(s.source, s.cid)] = s
        if s.deadline is not None:
            self._tseq += 1
            heapq.heappush(self._timers, (s.deadline, self._tseq, s))

    def suspended(self, s: Served) -> None:
        """The handler of ``s`` did not finish inline (it runs on as a task): from now on
        CANCELs, duplicates, deadlines and lost clients reach it."""
        if not s.tracked:
            self._track(s)

    def knows(self, source: SocketAddr, cid: int) -> bool:
        """Whether call ``cid`` from ``source`` is in progress (for PING answers)."""
        return (source, cid) in self.active

    def client_lost(self, dest: SocketAddr) -> None:
        """``dest`` (a client socket) is gone: cancel everything it asked for."""
        for s in [s for s in self.active.values() if s.source == dest]:
            self._cancel(s, CLIENT_LOST)

    def node_down(self, node: int) -> None:
        """``node`` went down: cancel the calls of every client socket on it."""
        for s in [s for s in self.active.values() if s.source.node == node]:
            self._cancel(s, CLIENT_LOST)

    def cancel(self, source: SocketAddr, cid: int, reason: int = CANCELLED) -> bool:
        """Cancel call ``cid`` of ``source`` if in progress; returns whether it was."""
        s = self.active.get((source, cid))
        if s is None:
            return False
        self._cancel(s, reason)
        return True

    def _cancel(self, s: Served, reason: int) -> None:
        if s.reason is not None or s.done:
            return
        s.reason = reason
        if reason == CLIENT_LOST:
            self.counts["client_lost"] += 1
        if not s.queued:
            self.out.cancel.append(s)  # running: the shell cancels it, then reports cancelled()
            return
        # still in the backlog: it never started
        s.queued = False
        self.backlog.remove(s)
        self._end(s)
        if reason == DEADLINE:
            self.counts["deadline_exceeded"] += 1
            if not s.oneway:
                self._failure(s.source, s.cid, Status.DEADLINE_EXCEEDED, "deadline passed while queued")
        elif reason == SHUTDOWN:  # answered even for a notification: the client re-sends it
            self._failure(s.source, s.cid, Status.SHUTTING_DOWN, "server shut down before the call started")
        else:
            self.counts["cancelled"] += 1

    # -- outcomes ------------------------------------------------------------------------------

    def _end(self, s: Served) -> None:
        s.done = True
        if s.tracked:
            self.active.pop((s.source, s.cid), None)

    def _release(self, s: Served) -> None:
        """``s`` stopped running: start the next ones from the backlog."""
        self._end(s)
        self.running -= 1
        backlog = self.backlog
        while backlog and self.running < self.max_concurrency:
            nxt = backlog.popleft()
            nxt.queued = False
            if not nxt.done and nxt.reason is None:
                self.running += 1
                self.out.run.append(nxt)

    def result(self, s: Served, value: Any) -> str | None:
        """The handler of ``s`` returned ``value``; a value that cannot be encoded is answered
        as an error (the handler ran, so the client must not take it for a protocol fault)."""
        if not s.tracked and not self.backlog and not s.oneway:
            # The common case, inlined: a call answered inline, nothing waiting behind it.
            s.done = True
            self.running -= 1
            try:
                frame = encode_reply(self.codec, s.cid, value, self.flags[s.info])
            except CodecError as exc:
                return self.unencodable(s, exc, "result", released=True)
            self.completed += 1
            self.out.done.append((s, None))
            self.out.sends.append((s.source, frame, s.info.importance))
            return None
        self._release(s)
        if s.reason is not None:
            return None  # cancelled meanwhile (its failure was or will be sent)
        if s.oneway:
            self.completed += 1
            self.out.done.append((s, None))
            return None
        try:
            frame = encode_reply(self.codec, s.cid, value, self.flags[s.info])
        except CodecError as exc:
            return self.unencodable(s, exc, "result", released=True)
        self.completed += 1
        self.out.done.append((s, None))
        self.out.sends.append((s.source, frame, s.info.importance))
        return None

    def error(self, s: Served, exc: BaseException, *, released: bool = False) -> str | None:
        """The handler of ``s`` raised ``exc``. Returns a warning to log (with the traceback)
        for a notification, and for a call unless ``exc`` is an :class:`RpcError` (a typed
        answer the handler chose)."""
        if not released:
            self._release(s)
        self.out.done.append((s, type(exc).__name__))
        if s.oneway:
            self.counts["failed"] += 1
            return f"notification {s.info.name} raised {type(exc).__name__}: {exc}"
        status, message, details = exception_to_failure(exc, send_traceback=self.send_tracebacks, codec=self.codec)
        self._failure(s.source, s.cid, status, message, details)
        if isinstance(exc, RpcError):
            return None
        return f"call {s.info.name} from {s.source} raised {type(exc).__name__}: {exc}"

    def unencodable(self, s: Served, exc: CodecError, what: str = "result", *, released: bool = False) -> str | None:
        """The handler of ``s`` ran but its ``what`` (result, stream item) cannot be encoded:
        say so (not a protocol fault). Returns a warning to log for a notification."""
        if not released:
            self._release(s)
        if s.oneway:
            self.counts["failed"] += 1
            return f"notification {s.info.name}: {what} cannot be encoded: {exc}"
        self._failure(s.source, s.cid, *unencodable_result_failure(exc, what))
        return None

    def cancelled(self, s: Served) -> None:
        """The handler of ``s`` ended after the shell cancelled it (for :attr:`Served.reason`)."""
        self._release(s)
        reason = s.reason
        self.out.done.append((s, "DeadlineExceeded" if reason == DEADLINE else "Cancelled"))
        if reason == DEADLINE:
            self.counts["deadline_exceeded"] += 1
            if not s.oneway:
                self._failure(s.source, s.cid, Status.DEADLINE_EXCEEDED, f"{s.info.name}: deadline exceeded on the server")
        elif reason == SHUTDOWN:
            self.counts["cancelled"] += 1
            if not s.oneway:
                self._failure(s.source, s.cid, Status.CANCELLED, "server shut down before the call finished")
        else:
            self.counts["cancelled"] += 1

    def item(self, s: Served, value: Any) -> None:
        """A streaming handler produced ``value`` (the shell checked :attr:`Served.credit`).
        Raises :class:`CodecError` if it cannot be encoded."""
        frame = encode_stream_item(self.codec, s.cid, s.seq, value)
        s.seq += 1
        s.credit -= 1
        self.out.sends.append((s.source, frame, s.info.importance))

    def stream_end(self, s: Served) -> None:
        """A streaming handler finished after :attr:`Served.seq` items."""
        self._release(s)
        if s.reason is None:
            self.out.done.append((s, None))
            self.completed += 1
            self.out.sends.append((s.source, encode_stream_end(s.cid, s.seq, self.flags[s.info]), s.info.importance))

    # -- drain ---------------------------------------------------------------------------------

    def drain(self) -> None:
        """Refuse new calls from now on (notifications still run until :meth:`close`)."""
        self.draining = True

    def shutdown(self) -> None:
        """The drain timed out: cancel everything still in progress."""
        for s in list(self.active.values()):
            self._cancel(s, SHUTDOWN)

    def close(self) -> None:
        """The endpoint is closing: refuse even notifications (their senders re-send them)."""
        self.draining = self.closing = True

    @property
    def idle(self) -> bool:
        return not self.running and not self.backlog

    # -- time ----------------------------------------------------------------------------------

    @property
    def next_timer(self) -> float | None:
        timers = self._timers
        while timers:
            s = timers[0][2]
            if not s.done and s.reason is None:
                return timers[0][0]
            heapq.heappop(timers)
        return None

    def timeout(self, now: float) -> None:
        """Cancel every call whose deadline is ``<= now``."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            s = heapq.heappop(timers)[2]
            if not s.done:
                self._cancel(s, DEADLINE)
        if len(timers) > 64 and len(timers) > 4 * len(self.active):
            self._timers = [t for t in timers if not t[2].done]
            heapq.heapify(self._timers)

    def statistics(self) -> Mapping[str, int]:
        stats = dict(self.stats)
        stats["active"] = self.running
        stats["queued"] = len(self.backlog)
        return stats
