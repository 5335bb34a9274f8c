"""The RPC server (layer L4): the event-loop shell around the serve table.

The rules — validation, limits, deadlines, duplicates, cancellation, drain — live in
:class:`~tipcrpc.rpc.serve_table.ServeTable` (pure). This shell owns the endpoint, one loop
timer and the handlers, and does what the table's outbox says.

Handlers run **eagerly** in the endpoint callback: a plain function, and an ``async def``
that finishes without suspending, answer inline — no task, the cheapest path there is. A
coroutine that suspends continues as a task from where it stopped; streaming methods run as
tasks. Handlers must not block the loop (see the guide on blocking work). At most
``max_concurrency`` calls run at once, up to ``max_queued`` more wait, beyond that
SERVER_BUSY (the client retries elsewhere). A running call is cancelled on CANCEL, when its
deadline passes (the client gets DEADLINE_EXCEEDED), when the client's socket or node is
lost, or at the end of a drain.

Exceptions from handlers become FAILURE frames (APPLICATION_ERROR with the type and message
in ``details``; :class:`~tipcrpc.errors.RpcError` subclasses keep their status). Malformed
frames are counted and, when they look like calls, answered with PROTOCOL_ERROR; nothing a
peer sends can stop the server.

Start-up publishes the names last, once everything a call needs is loaded and running: a
published name is a promise that calls are answered at full speed.

Drain (:meth:`Server.drain`, run on exit): withdraw every name first, so clients stop
choosing this socket; answer new calls with SHUTTING_DOWN (clients retry elsewhere); keep
answering PINGs (clients waiting on a non-idempotent call keep waiting); let calls in
progress finish, up to ``drain_timeout`` seconds; cancel what is left (RemoteCancelled at
the client); then close. Notifications reaching a draining server are still run (they
cannot be answered otherwise); once the endpoint is closing they are refused with
SHUTTING_DOWN, and the client re-sends them elsewhere.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from typing import Any, Awaitable, Coroutine, Generator, Iterable, Mapping

import anyio

from ..addr import NODE_STATE, U32_MAX, Importance, Scope, ServiceRange, SocketAddr
from ..codec import Codec
from ..errors import ClosedError, CodecError, FrameTooLarge, ProtocolError, Status, TipcRpcError, TransportError, UsageError
from ..events import NodeDown
from ..transport.base import Delivery, DeliveryFailure, Name, Returned, Transport
from .chunks import DEFAULT_MAX_FRAME, DEFAULT_WINDOW
from .context import _current
from .frames import HEADER_SIZE, Kind, encode_failure, encode_pong
from .serve_table import CLIENT_LOST, Served, ServeTable
from .service import MethodInfo, MethodKind, Service
from .runtime import Background, FrameLink, TableTimer
from ..metrics import MethodMetrics, Metrics
from .reflection import Reflection

__all__ = ["Server"]

log = logging.getLogger("tipcrpc.server")

_SYNC, _ASYNC = MethodKind.SYNC, MethodKind.ASYNC
_CALL, _PING, _CHUNK, _CHUNK_ACK = int(Kind.CALL), int(Kind.PING), int(Kind.CHUNK), int(Kind.CHUNK_ACK)
_REPLY_KINDS = frozenset({Kind.REPLY, Kind.FAILURE, Kind.STREAM_ITEM, Kind.STREAM_END, Kind.CHUNK})


class _InThread:
    """Awaitable: ``func(*args, **kwargs)`` in the loop's thread pool (``sync_handlers="thread"``).

    Runs in a copy of the context at creation, so the handler sees ``current_call()``.
    """

    __slots__ = ("call",)

    def __init__(self, func: Any, args: Any, kwargs: Any) -> None:
        ctx = contextvars.copy_context()
        self.call = functools.partial(ctx.run, func, *args, **kwargs)

    def __await__(self) -> Generator[Any, Any, Any]:
        return asyncio.get_running_loop().run_in_executor(None, self.call).__await__()


class _Resume:
    """Continue a coroutine that already ran its first step (and yielded ``first``) inside
    a task: the task sees exactly the awaitables the coroutine yields."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self.coro, self.first
        self.first = None
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # thrown in by the task (cancellation): pass it on
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class Server:
    """Serves ``services`` on one endpoint of ``transport`` under ``names`` (use :func:`tipcrpc.serve`)."""

    def __init__(
        self,
        transport: Transport,
        services: Iterable[Service[Any]],
        names: Iterable[Name],
        *,
        scope: Scope = Scope.CLUSTER,
        max_concurrency: int = 1024,
        max_queued: int = 8192,
        drain_timeout: float = 10.0,
        max_frame: int = DEFAULT_MAX_FRAME,
        window: int = DEFAULT_WINDOW,
        send_tracebacks: bool = False,
        sync_handlers: str = "inline",
    ) -> None:
        if sync_handlers not in ("inline", "thread"):
            raise UsageError(f"sync_handlers must be 'inline' or 'thread', got {sync_handlers!r}")
        if max_concurrency < 1 or max_queued < 0:
            raise UsageError(f"max_concurrency must be >= 1 and max_queued >= 0, got {max_concurrency} and {max_queued}")
        self.transport = transport
        # ops hook (tipcrpc.rpc.reflection, tipcrpc.metrics): every server also serves
        # describe/health and keeps per-method metrics — keep these lines when rewriting.
        self._reflection = Reflection(self)
        self.metrics = Metrics("server")
        self._method_metrics: dict[MethodInfo, MethodMetrics] = {}  # per-call shortcut into metrics
        self.services = [*services, self._reflection.service]
        self.names = [*names, self._reflection.name]
        self.scope = Scope(scope)
        self.drain_timeout = drain_timeout
        self._sync_in_thread = sync_handlers == "thread"
        seen: set[int] = set()
        for svc in self.services:
            if svc.type in seen:
                raise UsageError(f"two services share type {svc.type}: serve them on different endpoints")
            seen.add(svc.type)
        # The instance a call reaches when the client did not name one: known when this
        # server publishes exactly one instance of the type.
        ranges: dict[int, list[tuple[int, int]]] = {}
        for name in self.names:
            lo, hi = (name.lower, name.upper) if isinstance(name, ServiceRange) else (name.instance, name.instance)
            ranges.setdefault(name.type, []).append((lo, hi))
        single = {t: rs[0][0] for t, rs in ranges.items() if len(rs) == 1 and rs[0][0] == rs[0][1]}
        self._codec = Codec()
        self._table = ServeTable(self._codec, self.services, max_concurrency=max_concurrency, max_queued=max_queued,
                                 instance_of=single, send_tracebacks=send_tracebacks)  # fmt: skip
        self._reflection.install(self._table)  # ops hook: reserved methods on every served type
        self._link = FrameLink(max_message=transport.max_message, max_frame=max_frame, window=window)
        self._timer = TableTimer(self._on_timer)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bg = Background("server")
        self._idle: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def max_concurrency(self) -> int:
        return self._table.max_concurrency

    @property
    def max_queued(self) -> int:
        return self._table.max_queued

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Server:
        self._loop = asyncio.get_running_loop()
        try:
            endpoint = await self.transport.open_endpoint(self._on_message)
            self._link.attach(endpoint)
            self._table.address = endpoint.address
            self._bg.spawn(self._watch_nodes())
            self._bg.spawn(self._housekeeping())
            # Let the background tasks start (importing whatever they import on the loop)
            # before any client can see a name: publish only when calls are answered at once.
            await anyio.sleep(0)
            for name in self.names:
                await endpoint.publish(name, self.scope)
            log.info("serving %s at %s", ", ".join(f"{s.name} {n}" for s, n in zip(self.services, self.names)),
                     endpoint.address)  # fmt: skip
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

    def statistics(self) -> Mapping[str, Any]:
        """Counters (received, completed, failed, cancelled, busy, ...), gauges (active,
        queued) and ``methods``: per-method calls, errors and latency histogram
        (:meth:`tipcrpc.metrics.Metrics.snapshot`)."""
        stats: dict[str, Any] = dict(self._table.statistics())
        stats["overload_resends"] = self._link.overload_resends
        stats["methods"] = self.metrics.snapshot()
        return stats

    @property
    def draining(self) -> bool:
        """Whether :meth:`drain` has begun (names withdrawn, new calls refused)."""
        return self._table.draining

    async def drain(self, timeout: float | None = None) -> bool:
        """Withdraw the names, then wait up to ``timeout`` (default ``drain_timeout``) seconds for
        calls in progress; cancel the rest. Returns ``True`` if everything finished in time."""
        endpoint = self._link.endpoint
        table = self._table
        if not table.draining:
            table.drain()
            log.info("draining %s: withdrawing its names, %d calls in progress", endpoint and endpoint.address,
                     len(table.active))  # fmt: skip
            if endpoint is not None:
                for name in self.names:
                    try:
                        await endpoint.withdraw(name, self.scope)
                    except TipcRpcError as exc:
                        log.debug("withdraw %s failed: %s", name, exc)
        if table.idle:
            return True
        wait = self.drain_timeout if timeout is None else timeout
        with anyio.move_on_after(wait):
            await self._wait_idle()
        if table.idle:
            return True
        table.shutdown()
        self._flush()
        # Let the cancelled handlers unwind (bounded: a handler may swallow cancellation).
        with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
            await self._wait_idle()
        return False

    async def _wait_idle(self) -> None:
        while not self._table.idle:
            self._idle = self._loop.create_future()  # type: ignore[union-attr]
            await self._idle

    async def aclose(self) -> None:
        """Drain (if not done yet), then close the endpoint."""
        if self._closed:
            return
        try:
            await self.drain()
        finally:
            # From here on whatever arrives is refused (and still answered: the endpoint
            # stays open until it is closed below).
            self._table.close()
            self._closed = True
            self._timer.cancel()
            with anyio.CancelScope(shield=True):
                try:
                    if self._link.endpoint is not None:
                        await self._link.endpoint.aclose()
                finally:
                    self._link.close()
                    await self._bg.aclose()

    # -- what the table says ------------------------------------------------------------------------

    def _flush(self) -> None:
        table = self._table
        out = table.out
        while True:
            if out.sends:
                sends, out.sends = out.sends, []
                for dest, frame, imp in sends:
                    self._send(dest, frame, imp)
            if out.cancel:
                cancel, out.cancel = out.cancel, []
                for s in cancel:
                    task = s.handle
                    if task is not None:
                        task.cancel()
            if out.wake:
                wake, out.wake = out.wake, []
                for s in wake:
                    w = s.waiter
                    if w is not None and not w.done():
                        w.set_result(None)
            if not out.run:
                break
            run, out.run = out.run, []
            for s in run:
                self._start(s)
        if out.done:  # ops hook: finished calls into the per-method metrics
            self._record(out)
        if table._timers:
            self._timer.arm(self._loop, table.next_timer)  # type: ignore[arg-type]
        if self._idle is not None and table.idle and not self._idle.done():
            self._idle.set_result(None)

    def _record(self, out: Any) -> None:
        done, out.done = out.done, []
        now = self._loop.time()  # type: ignore[union-attr]
        by_info = self._method_metrics
        for s, error in done:
            mm = by_info.get(s.info)
            if mm is None:
                mm = by_info[s.info] = self.metrics.method(self._reflection.labels[s.info])
            mm.add(now - s.started, error)

    def _send(self, dest: SocketAddr, frame: bytes, importance: Importance = Importance.LOW) -> None:
        try:
            self._link.send(dest, frame, importance, cache=True)
        except (FrameTooLarge, ClosedError, TransportError) as exc:
            self._unsent(dest, frame, importance, exc)

    def _unsent(self, dest: SocketAddr, frame: bytes, importance: Importance, exc: TipcRpcError) -> None:
        """``frame`` could not be sent to ``dest``: too large (answer TOO_LARGE instead), or
        the client (or its node) is gone, or we are closing (nobody to tell)."""
        if isinstance(exc, FrameTooLarge):
            cid = int.from_bytes(frame[8:16], "big")
            self._send(dest, encode_failure(self._codec, cid, Status.TOO_LARGE, str(exc)), importance)

    def _on_timer(self) -> None:
        self._table.timeout(self._loop.time())  # type: ignore[union-attr]
        self._flush()

    # -- receiving ------------------------------------------------------------------------------

    def _on_message(self, msg: Delivery | Returned) -> None:
        if msg.__class__ is not Delivery:
            self._on_returned(msg)  # type: ignore[arg-type]
            return
        data: bytes | bytearray = msg.data
        source: SocketAddr = msg.source  # type: ignore[union-attr,unused-ignore]
        kind = data[1] if len(data) >= HEADER_SIZE else 0
        if kind == _CALL:  # the common case first
            warning = self._table.frame(source, data, self._loop.time())  # type: ignore[union-attr]
            if warning is not None:
                log.warning("%s", warning)
            self._flush()
            return
        if kind == _PING:
            cid = int.from_bytes(data[8:16], "big")
            active = self._table.knows(source, cid) or self._link.reassembler.has_call(source, cid) \
                or self._link.pending_resend(source, cid)  # fmt: skip
            try:
                self._link.send(source, encode_pong(cid, int.from_bytes(data[4:8], "big"), active), Importance.CRITICAL)
            except TipcRpcError:
                pass
            return
        if kind == _CHUNK:
            cid = int.from_bytes(data[8:16], "big")
            try:
                whole = self._link.on_chunk(source, int.from_bytes(data[4:8], "big"), cid, data, self._loop.time())  # type: ignore[union-attr]
            except FrameTooLarge as exc:
                self._send(source, encode_failure(self._codec, cid, Status.TOO_LARGE, str(exc)), Importance.HIGH)
                return
            except ProtocolError as exc:
                self._table.counts["malformed"] += 1
                self._send(source, encode_failure(self._codec, cid, Status.PROTOCOL_ERROR, str(exc)), Importance.HIGH)
                return
            if whole is None:
                return
            data = whole
            if len(data) < HEADER_SIZE or data[1] != _CALL:
                self._table.counts["malformed"] += 1
                self._send(source, encode_failure(self._codec, cid, Status.PROTOCOL_ERROR, "a chunked frame must be a CALL"),
                           Importance.HIGH)  # fmt: skip
                return
        elif kind == _CHUNK_ACK:
            try:
                self._link.on_chunk_ack(source, int.from_bytes(data[4:8], "big"), data)
            except ProtocolError:
                self._table.counts["malformed"] += 1
            return
        elif kind == Kind.CANCEL:
            self._link.abort_call(source, int.from_bytes(data[8:16], "big"))  # perhaps still being uploaded
        warning = self._table.frame(source, data, self._loop.time())  # type: ignore[union-attr]
        if warning is not None:
            log.warning("%s", warning)
        self._flush()

    def _on_returned(self, msg: Returned) -> None:
        dest, data = msg.dest, msg.data
        if not isinstance(dest, SocketAddr) or len(data) < HEADER_SIZE:
            return
        kind, aux, cid = data[1], int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:16], "big")
        if msg.reason == DeliveryFailure.OVERLOAD:
            if self._link.on_overload(dest, data, kind, aux) or kind not in _REPLY_KINDS:
                return
            if not self._table.cancel(dest, cid, CLIENT_LOST):
                # a reply too large to re-send from the returned prefix and no longer cached
                self._send(dest, encode_failure(self._codec, cid, Status.UNKNOWN,
                                                "the reply was refused by the receiver (overload) and could not be re-sent"),
                           Importance.HIGH)  # fmt: skip
            self._flush()
            return
        if kind in _REPLY_KINDS:  # the client's socket (or node) is gone: stop what it asked for
            self._table.client_lost(dest)
            self._flush()

    # -- running handlers -------------------------------------------------------------------------

    def _start(self, s: Served) -> None:
        """Run the handler of ``s``: to completion inline if it does not suspend."""
        info = s.info
        token = _current.set(s)
        try:
            if info.streaming:
                self._spawn(s, self._stream(s))
                return
            if info.kind is _SYNC and self._sync_in_thread:
                # A blocking plain function: a task awaiting a pool thread (limits, deadlines
                # and cancellation apply; a cancelled call's thread still runs to its end).
                self._spawn(s, self._finish(s, _InThread(info.func, s.args, s.kwargs)))
                return
            try:
                result = info.func(*s.args, **s.kwargs) if s.kwargs else info.func(*s.args)
                if info.kind is _ASYNC or hasattr(result, "__await__"):
                    if info.kind is not _ASYNC:  # a sync function returned an awaitable
                        result = result.__await__() if not asyncio.iscoroutine(result) else result
                    try:
                        first = result.send(None)
                    except StopIteration as stop:
                        result = stop.value
                    else:
                        self._spawn(s, self._finish(s, _Resume(result, first)))
                        return
            except Exception as exc:
                warning = self._table.error(s, exc)
                if warning is not None:
                    log.warning("%s", warning, exc_info=exc)
                return
            warning = self._table.result(s, result)
            if warning is not None:
                log.warning("%s", warning)
        finally:
            _current.reset(token)

    def _spawn(self, s: Served, coro: Coroutine[Any, Any, None]) -> None:
        # create_task copies the current context: the handler keeps seeing current_call().
        s.handle = self._loop.create_task(coro)  # type: ignore[union-attr]
        self._table.suspended(s)

    async def _finish(self, s: Served, rest: Awaitable[Any]) -> None:
        try:
            result = await rest
        except asyncio.CancelledError:
            if s.reason is None:
                raise  # not our doing (loop shutdown): let it propagate
            self._table.cancelled(s)
        except Exception as exc:
            warning = self._table.error(s, exc)
            if warning is not None:
                log.warning("%s", warning, exc_info=exc)
        else:
            warning = self._table.result(s, result)
            if warning is not None:
                log.warning("%s", warning)
        self._flush()

    async def _stream(self, s: Served) -> None:
        """Run a streaming method, one STREAM_ITEM per item within the client's credit."""
        info = s.info
        gen = info.func(*s.args, **s.kwargs)
        is_async = info.kind is MethodKind.ASYNC_STREAM
        table = self._table
        try:
            while True:
                try:
                    item = await gen.__anext__() if is_async else next(gen)
                except (StopAsyncIteration, StopIteration):
                    break
                while s.credit <= 0:
                    s.waiter = self._loop.create_future()  # type: ignore[union-attr]
                    try:
                        await s.waiter
                    finally:
                        s.waiter = None
                try:
                    table.item(s, item)
                except CodecError as exc:
                    table.unencodable(s, exc, "stream item")
                    return
                self._flush()
            table.stream_end(s)
        except asyncio.CancelledError:
            if s.reason is None:
                raise
            table.cancelled(s)
        except Exception as exc:
            warning = table.error(s, exc)
            if warning is not None:
                log.warning("%s", warning, exc_info=exc)
        finally:
            if is_async:
                await gen.aclose()
            else:
                gen.close()
            self._flush()

    # -- background -----------------------------------------------------------------------------

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
                    self._table.node_down(ev.node)
                    self._flush()
        except (TransportError, ClosedError):
            pass
        finally:
            with anyio.CancelScope(shield=True):
                await sub.aclose()

    async def _housekeeping(self) -> None:
        while True:
            await anyio.sleep(self._link.reassembler.ttl / 2)
            self._link.expire(self._loop.time())  # type: ignore[union-attr]
