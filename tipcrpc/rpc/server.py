"""The RPC server (layer L4): one endpoint serving one or more services.

Dispatch happens in the endpoint's callback. Plain (sync) methods run **inline** — no task,
the cheapest path; they must not block, like any event-loop callback. Coroutine methods and
streaming methods run as asyncio tasks, at most ``max_concurrency`` at a time; further calls
wait in a FIFO backlog of at most ``max_queued`` (their deadlines still apply) and beyond
that are refused with SERVER_BUSY, which the client treats as "never started" and retries
elsewhere. A handler task is cancelled when the client sends CANCEL, when the call's
deadline (sent as remaining seconds, converted to this loop's clock) passes — the client
then gets DEADLINE_EXCEEDED —, when the client's socket or node is lost, or at the end of
a drain.

Exceptions from handlers become FAILURE frames (APPLICATION_ERROR with the exception's
qualified type name and message in ``details``; :class:`~tipcrpc.errors.RpcError`
subclasses keep their status). Malformed frames are counted and, when they look like calls,
answered with PROTOCOL_ERROR; nothing a peer sends can stop the server.

Drain (:meth:`Server.drain`, run on exit): withdraw every name first, so clients stop
choosing this socket; answer new calls with SHUTTING_DOWN (clients retry elsewhere);
keep answering PINGs (clients waiting on a non-idempotent call keep waiting); let calls
in progress finish, up to ``drain_timeout`` seconds; cancel what is left (RemoteCancelled
at the client); then close.

Notifications are never dropped without a trace. One that reaches a draining server is
*run* (a client that has not yet seen the withdrawal sent it in good faith, and it cannot
be answered), and the drain waits for it like for any call in progress. One that cannot
be run — the server is at its limit (SERVER_BUSY), or the drain is over and the endpoint
is closing (SHUTTING_DOWN) — is answered with that FAILURE, although notifications are
otherwise never answered: the client still remembers it and re-sends it to another
instance. Notifications with an unknown method or bad arguments are logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Iterable, Mapping

import anyio

from ..addr import NODE_STATE, U32_MAX, Importance, Scope, ServiceRange, SocketAddr
from ..errors import (
    ClosedError,
    CodecError,
    FrameTooLarge,
    InvalidArguments,
    ProtocolError,
    Status,
    TipcRpcError,
    TransportError,
    UsageError,
)
from ..events import NodeDown
from ..transport.base import Delivery, DeliveryFailure, Name, Returned, Transport
from .chunks import DEFAULT_MAX_FRAME, DEFAULT_WINDOW
from .frames import (
    HEADER,
    HEADER_SIZE,
    VERSION,
    Flag,
    Kind,
    decode_call,
    encode_failure,
    encode_pong,
    encode_reply,
    method_flags,
    peek_header,
)
from .protocol import PendingTable, exception_to_failure
from .runtime import Background, FrameLink
from .service import MethodInfo, MethodKind, Service
from .serving import Active, produce_stream

__all__ = ["Server"]

log = logging.getLogger("tipcrpc.server")

# Why a handler task was cancelled (None = not by us: propagate).
_CANCEL, _DEADLINE, _SHUTDOWN, _CLIENT_LOST = 1, 2, 3, 4
_ONEWAY, _STREAM = int(Flag.ONEWAY), int(Flag.STREAM)  # plain ints: IntFlag ops are slow
_SYNC = MethodKind.SYNC
_REPLY_KINDS = frozenset({Kind.REPLY, Kind.FAILURE, Kind.STREAM_ITEM, Kind.STREAM_END, Kind.CHUNK})


class _InThread:
    """An awaitable that runs ``func(*args, **kwargs)`` in the loop's thread pool when awaited.

    Nothing starts before the call's task awaits it (a call refused as busy never runs), and
    an awaitable that is never awaited leaves no warning behind, unlike a coroutine.
    """

    __slots__ = ("func", "args", "kwargs")

    def __init__(self, func: Any, args: Any, kwargs: Any) -> None:
        self.func, self.args, self.kwargs = func, args, kwargs

    def __await__(self) -> Any:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(None, lambda: self.func(*self.args, **self.kwargs)).__await__()


class Server:
    """Serves ``services`` on one endpoint of ``transport`` under ``names`` (use :func:`tipcrpc.serve`)."""

    def __init__(
        self,
        transport: Transport,
        services: Iterable[Service],
        names: Iterable[Name],
        *,
        scope: Scope = Scope.CLUSTER,
        max_concurrency: int = 1024,
        max_queued: int = 8192,
        drain_timeout: float = 10.0,
        max_frame: int = DEFAULT_MAX_FRAME,
        window: int = DEFAULT_WINDOW,
        sync_handlers: str = "inline",
    ) -> None:
        from ..codec import Codec

        if sync_handlers not in ("inline", "thread"):
            raise UsageError(f"sync_handlers must be 'inline' or 'thread', got {sync_handlers!r}")

        if max_concurrency < 1 or max_queued < 0:
            raise UsageError(f"max_concurrency must be >= 1 and max_queued >= 0, got {max_concurrency} and {max_queued}")
        self.transport = transport
        self.services = list(services)
        self.names = list(names)
        self.scope = Scope(scope)
        self.max_concurrency = max_concurrency
        self.max_queued = max_queued
        self.drain_timeout = drain_timeout
        self._sync_in_thread = sync_handlers == "thread"
        self._methods: dict[int, dict[str, MethodInfo]] = {}
        # Flags of every REPLY/STREAM_END: the method's options, for clients calling by name.
        self._flags: dict[MethodInfo, int] = {}
        for svc in self.services:
            if svc.type in self._methods:
                raise UsageError(f"two services share type {svc.type}: serve them on different endpoints")
            self._methods[svc.type] = dict(svc.methods)
            for info in svc.methods.values():
                self._flags[info] = method_flags(info.idempotent, info.importance)
        self._codec = Codec()
        self._link = FrameLink(max_message=transport.max_message, max_frame=max_frame, window=window)
        self._active: dict[tuple[SocketAddr, int], Active] = {}
        self._deadlines: PendingTable[Active] = PendingTable()
        self._backlog: deque[Active] = deque()
        self._running = 0
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bg = Background("server")
        self._draining = False
        self._drained: anyio.Event | None = None
        # Set when the drain is over and the endpoint is closing: from then on even
        # notifications are refused (with SHUTTING_DOWN, so their senders re-send them).
        self._closing = False
        self._closed = False
        self._stats = dict.fromkeys(
            ("received", "completed", "failed", "cancelled", "deadline_exceeded", "busy", "malformed",
             "notifications", "streams", "client_lost"), 0)  # fmt: skip

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Server:
        self._loop = asyncio.get_running_loop()
        try:
            endpoint = await self.transport.open_endpoint(self._on_message)
            self._link.attach(endpoint)
            for name in self.names:
                await endpoint.publish(name, self.scope)
            self._bg.spawn(self._watch_nodes())
            self._bg.spawn(self._housekeeping())
        except BaseException:
            with anyio.CancelScope(shield=True):
                self._closed = True
                self._link.close()
                try:
                    if self._link.endpoint is not None:
                        await self._link.endpoint.aclose()
                finally:
                    await self._bg.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def address(self) -> SocketAddr:
        """The serving socket's address."""
        if self._link.endpoint is None:
            raise ClosedError("server is not started")
        return self._link.endpoint.address

    def statistics(self) -> Mapping[str, int]:
        """Counters (received, completed, failed, cancelled, busy, ...) and gauges (active, queued)."""
        stats = dict(self._stats)
        stats["active"] = self._running
        stats["queued"] = len(self._backlog)
        stats["overload_resends"] = self._link.overload_resends
        return stats

    async def drain(self, timeout: float | None = None) -> bool:
        """Withdraw the names, then wait up to ``timeout`` (default ``drain_timeout``) seconds for
        calls in progress; cancel the rest. Returns ``True`` if everything finished in time."""
        endpoint = self._link.endpoint
        if not self._draining:
            self._draining = True
            self._drained = anyio.Event()
            if endpoint is not None:
                for name in self.names:
                    try:
                        await endpoint.withdraw(name, self.scope)
                    except TipcRpcError as exc:
                        log.debug("withdraw %s failed: %s", name, exc)
        if not self._active:
            return True
        wait = self.drain_timeout if timeout is None else timeout
        with anyio.move_on_after(wait):
            await self._idle()
        if not self._active:
            return True
        for a in list(self._active.values()):
            self._cancel(a, _SHUTDOWN)
        # Let the cancelled handlers unwind (bounded: a handler may swallow cancellation).
        with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
            await self._idle()
        return False

    async def _idle(self) -> None:
        """Return once no call is active. Notifications accepted during the drain count as
        active, so this loops until a wake-up finds the table empty."""
        while self._active:
            self._drained = anyio.Event()
            await self._drained.wait()

    async def aclose(self) -> None:
        """Drain (if not done yet), then close the endpoint."""
        if self._closed:
            return
        try:
            await self.drain()
        finally:
            # No await since the drain found nothing active: whatever arrives from now on
            # is refused (and still answered, the link stays open until the endpoint is).
            self._closing = self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            with anyio.CancelScope(shield=True):
                try:
                    if self._link.endpoint is not None:
                        await self._link.endpoint.aclose()
                finally:
                    self._link.close()
                    await self._bg.aclose()

    # -- sending ------------------------------------------------------------------------------

    def _send(self, dest: SocketAddr, frame: bytes, importance: Importance = Importance.LOW) -> None:
        try:
            self._link.send(dest, frame, importance, cache=True)
        except FrameTooLarge as exc:
            cid = int.from_bytes(frame[8:16], "big")
            self._send(dest, encode_failure(self._codec, cid, Status.TOO_LARGE, str(exc)), importance)
        except (ClosedError, TransportError):
            pass  # the client (or its node) is gone, or we are closing; nobody to tell

    def _fail(self, dest: SocketAddr, cid: int, status: Status, message: str, details: Any = None) -> None:
        self._stats["failed"] += 1
        self._send(dest, encode_failure(self._codec, cid, status, message, details), Importance.HIGH)

    def _fail_exc(self, source: SocketAddr, cid: int, oneway: bool, info: MethodInfo, exc: BaseException) -> None:
        status, message, details = exception_to_failure(exc)
        if oneway:
            self._stats["failed"] += 1
            log.warning("notification %s raised %s: %s", info.name, type(exc).__name__, exc)
            return
        self._fail(source, cid, status, message, details)

    def _reply(self, a: Active, result: Any) -> None:
        try:
            frame = encode_reply(self._codec, a.cid, result, self._flags[a.info])
        except CodecError as exc:
            self._fail_exc(a.source, a.cid, a.oneway, a.info, exc)
            return
        self._stats["completed"] += 1
        self._send(a.source, frame, a.info.importance)

    # -- receiving ----------------------------------------------------------------------------

    def _on_message(self, msg: Delivery | Returned) -> None:
        if msg.__class__ is Delivery:
            self._on_frame(msg.data, msg.source)  # type: ignore[union-attr]
        else:
            self._on_returned(msg)  # type: ignore[arg-type]

    def _on_frame(self, data: bytes | bytearray, source: SocketAddr) -> None:
        if len(data) < HEADER_SIZE:
            self._stats["malformed"] += 1
            return
        version, kind, flags, _r, aux, cid = HEADER.unpack_from(data)
        if version != VERSION:
            self._stats["malformed"] += 1
            if kind == Kind.CALL and not flags & _ONEWAY:
                self._fail(source, cid, Status.PROTOCOL_ERROR, f"unsupported frame version {version}; this server speaks {VERSION}")
            return
        if kind == Kind.CALL:
            self._on_call(data, flags, aux, cid, source)
        elif kind == Kind.CANCEL:
            a = self._active.get((source, cid))
            if a is not None:
                self._cancel(a, _CANCEL)
            else:  # perhaps still being uploaded in chunks
                self._link.abort_call(source, cid)
        elif kind == Kind.STREAM_CREDIT:
            a = self._active.get((source, cid))
            if a is not None:
                a.credit += aux
                w = a.waiter
                if w is not None and not w.done():
                    w.set_result(None)
        elif kind == Kind.PING:
            active = (source, cid) in self._active or self._link.reassembler.has_call(source, cid) \
                or self._link.pending_resend(source, cid)  # fmt: skip
            try:
                self._link.send(source, encode_pong(cid, aux, active), Importance.CRITICAL)
            except TipcRpcError:
                pass
        elif kind == Kind.CHUNK:
            try:
                frame = self._link.on_chunk(source, aux, cid, data, self._loop.time())  # type: ignore[union-attr]
            except FrameTooLarge as exc:
                self._fail(source, cid, Status.TOO_LARGE, str(exc))
                return
            except ProtocolError as exc:
                self._stats["malformed"] += 1
                self._fail(source, cid, Status.PROTOCOL_ERROR, str(exc))
                return
            if frame is not None:
                if len(frame) >= HEADER_SIZE and frame[1] == Kind.CALL:
                    self._on_frame(frame, source)
                else:
                    self._stats["malformed"] += 1
                    self._fail(source, cid, Status.PROTOCOL_ERROR, "a chunked frame must be a CALL")
        elif kind == Kind.CHUNK_ACK:
            try:
                self._link.on_chunk_ack(source, aux, data)
            except ProtocolError:
                self._stats["malformed"] += 1
        else:
            self._stats["malformed"] += 1  # replies/pongs/unknown kinds are never answered: no loops

    def _on_call(self, data: bytes | bytearray, flags: int, stype: int, cid: int, source: SocketAddr) -> None:
        oneway = flags & _ONEWAY != 0
        try:
            method, args, kwargs, remaining, credit = decode_call(self._codec, data)
        except ProtocolError as exc:
            self._stats["malformed"] += 1
            if not oneway:
                self._fail(source, cid, Status.PROTOCOL_ERROR, str(exc))
            return
        self._stats["received"] += 1
        if oneway:
            self._stats["notifications"] += 1
        methods = self._methods.get(stype)
        info = methods.get(method) if methods is not None else None
        if info is None:
            what = f"method {method!r}" if methods is not None else f"service type {stype}"
            if oneway:
                self._stats["failed"] += 1
                log.warning("notification from %s dropped: %s is not served here", source, what)
            else:
                self._fail(source, cid, Status.METHOD_NOT_FOUND, f"{what} is not served at {self.address}",
                           {"type": stype, "method": method})  # fmt: skip
            return
        if self._draining and (self._closing or not oneway):
            # Calls are refused while draining; notifications only once the endpoint is
            # closing (before that they are run: see the module docstring). Both are
            # answered, so the client re-sends them elsewhere.
            self._fail(source, cid, Status.SHUTTING_DOWN, "server is closing" if self._closing else "server is draining")
            return
        streaming = info.streaming
        try:
            if streaming != (flags & _STREAM != 0):
                hint = "stream()" if streaming else "call()"
                raise InvalidArguments(f"{method} is {'a' if streaming else 'not a'} streaming method; use {hint}")
            info.bind(args, kwargs)
        except InvalidArguments as exc:
            if oneway:
                self._stats["failed"] += 1
                log.warning("notification %s from %s dropped: %s", method, source, exc.message)
            else:
                self._fail(source, cid, Status.INVALID_ARGUMENTS, exc.message, exc.details)
            return
        if remaining is not None and remaining <= 0.0:
            self._stats["deadline_exceeded"] += 1
            if oneway:
                log.warning("notification %s from %s dropped: its deadline passed before it arrived", method, source)
            else:
                self._fail(source, cid, Status.DEADLINE_EXCEEDED, "deadline passed before the call arrived")
            return
        if info.kind is _SYNC and self._sync_in_thread:
            # sync_handlers="thread": run in the loop's default thread pool, as a task (so
            # the concurrency limit, deadlines and cancellation apply; a cancelled call's
            # thread still runs to its end — threads cannot be interrupted).
            args, kwargs = [_InThread(info.func, args, kwargs)], {}
        elif info.kind is _SYNC:
            # Inline: no task, no bookkeeping — the cheapest path there is.
            try:
                result = info.func(*args, **kwargs)
            except Exception as exc:
                self._fail_exc(source, cid, oneway, info, exc)
                return
            if not hasattr(result, "__await__"):
                if oneway:
                    self._stats["completed"] += 1
                    return
                try:
                    frame = encode_reply(self._codec, cid, result, self._flags[info])
                except CodecError as exc:
                    self._fail_exc(source, cid, oneway, info, exc)
                    return
                self._stats["completed"] += 1
                self._send(source, frame, info.importance)
                return
            args, kwargs = [result], {}  # a sync function returned an awaitable: await it in a task
        key = (source, cid)
        if key in self._active:
            self._stats["received"] -= 1
            return  # a re-sent duplicate of a call in progress (inline calls never are)
        self._seq += 1
        a = Active(self._seq, source, cid, info, args, kwargs, oneway, credit or 0)
        self._active[key] = a
        if remaining is not None:
            deadline = self._loop.time() + remaining  # type: ignore[union-attr]
            self._deadlines.add(a.seq, a, deadline)
            if self._timer is None or deadline < self._timer_at:
                self._arm(deadline)
        if self._running < self.max_concurrency:
            self._spawn(a)
        elif len(self._backlog) < self.max_queued:
            self._backlog.append(a)
        else:
            self._forget(a)
            self._stats["busy"] += 1
            # Answered even for a notification: the client re-sends it to another instance.
            self._fail(source, cid, Status.SERVER_BUSY, f"server at its limit of {self.max_concurrency} calls")

    def _on_returned(self, msg: Returned) -> None:
        hdr = peek_header(msg.data)
        dest = msg.dest
        if hdr is None or not isinstance(dest, SocketAddr):
            return
        kind, _flags, aux, cid = hdr
        if msg.reason == DeliveryFailure.OVERLOAD:
            if self._link.on_overload(dest, msg.data, kind, aux) or kind not in _REPLY_KINDS:
                return
            a = self._active.get((dest, cid))
            if a is not None:
                self._cancel(a, _CLIENT_LOST)
            else:  # a reply too large to re-send from the returned prefix and no longer cached
                self._fail(dest, cid, Status.UNKNOWN, "the reply was refused by the receiver (overload) and could not be re-sent")
            return
        if kind not in _REPLY_KINDS:
            return
        # The client's socket (or node) is gone: stop everything it asked for.
        for a in [a for a in self._active.values() if a.source == dest]:
            self._cancel(a, _CLIENT_LOST)

    # -- running calls ------------------------------------------------------------------------

    def _spawn(self, a: Active) -> None:
        self._running += 1
        a.task = self._loop.create_task(self._run(a))  # type: ignore[union-attr]

    async def _run(self, a: Active) -> None:
        info = a.info
        try:
            if info.kind.streaming:
                self._stats["streams"] += 1
                await self._run_stream(a)
            else:
                if info.kind is MethodKind.SYNC:  # the awaitable a sync function returned
                    result = await a.args[0]
                else:
                    result = await info.func(*a.args, **a.kwargs)
                if a.reason is None:
                    if a.oneway:
                        self._stats["completed"] += 1
                    else:
                        self._reply(a, result)
        except asyncio.CancelledError:
            reason = a.reason
            if reason is None:
                raise  # not our doing (loop shutdown): let it propagate
            if reason == _DEADLINE:
                self._stats["deadline_exceeded"] += 1
                if not a.oneway:
                    self._fail(a.source, a.cid, Status.DEADLINE_EXCEEDED, f"{info.name}: deadline exceeded on the server")
            elif reason == _SHUTDOWN:
                self._stats["cancelled"] += 1
                if not a.oneway:
                    self._fail(a.source, a.cid, Status.CANCELLED, "server shut down before the call finished")
            else:
                self._stats["cancelled"] += 1
        except Exception as exc:
            self._fail_exc(a.source, a.cid, a.oneway, info, exc)
        finally:
            self._finished(a)

    async def _run_stream(self, a: Active) -> None:
        def fail(exc: CodecError) -> None:
            self._fail_exc(a.source, a.cid, a.oneway, a.info, exc)

        if await produce_stream(a, self._codec, self._send, fail, self._flags[a.info]):
            self._stats["completed"] += 1

    def _forget(self, a: Active) -> None:
        self._active.pop((a.source, a.cid), None)
        self._deadlines.pop(a.seq)

    def _finished(self, a: Active) -> None:
        self._forget(a)
        self._running -= 1
        self._start_backlog()
        if self._draining and not self._active and self._drained is not None:
            self._drained.set()

    def _start_backlog(self) -> None:
        backlog = self._backlog
        while backlog and self._running < self.max_concurrency:
            a = backlog.popleft()
            if self._active.get((a.source, a.cid)) is a and a.reason is None:
                self._spawn(a)

    def _cancel(self, a: Active, reason: int) -> None:
        if a.reason is not None:
            return
        a.reason = reason
        if reason == _CLIENT_LOST:
            self._stats["client_lost"] += 1
        if a.task is not None:
            a.task.cancel()
            return
        # still in the backlog: it never started
        self._forget(a)
        if reason == _DEADLINE:
            self._stats["deadline_exceeded"] += 1
            if not a.oneway:
                self._fail(a.source, a.cid, Status.DEADLINE_EXCEEDED, "deadline passed while queued")
        elif reason == _SHUTDOWN:  # answered even for a notification: the client re-sends it
            self._fail(a.source, a.cid, Status.SHUTTING_DOWN, "server shut down before the call started")
        if self._draining and not self._active and self._drained is not None:
            self._drained.set()

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._on_timer)  # type: ignore[union-attr]

    def _on_timer(self) -> None:
        self._timer = None
        for _seq, a in self._deadlines.expire(self._loop.time()):  # type: ignore[union-attr]
            self._cancel(a, _DEADLINE)
        nxt = self._deadlines.next_deadline()
        if nxt is not None:
            self._arm(nxt)

    # -- background ---------------------------------------------------------------------------

    async def _watch_nodes(self) -> None:
        """Cancel the calls of clients whose node went down."""
        try:
            sub = await self.transport.subscribe(ServiceRange(NODE_STATE, 0, U32_MAX))
        except TipcRpcError as exc:
            log.warning("node subscription failed; calls of lost clients will run to completion: %s", exc)
            return
        try:
            async for ev in sub:
                if type(ev) is NodeDown:
                    self._link.drop_node(ev.node)
                    for a in [a for a in self._active.values() if a.source.node == ev.node]:
                        self._cancel(a, _CLIENT_LOST)
        except (TransportError, ClosedError):
            pass
        finally:
            with anyio.CancelScope(shield=True):
                await sub.aclose()

    async def _housekeeping(self) -> None:
        while True:
            await anyio.sleep(self._link.reassembler.ttl / 2)
            self._link.expire(self._loop.time())  # type: ignore[union-attr]

