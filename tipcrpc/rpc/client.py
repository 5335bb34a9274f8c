"""The RPC client (layer L4): the event-loop shell around the call table.

Every call is sent straight to one chosen **socket address** (see :mod:`.resolver` and
:mod:`.membership`), so the client always knows which instance holds it. The rules that
move a call elsewhere — the moment the client learns something, never on a timer — are in
the pure :class:`~tipcrpc.rpc.call_table.CallTable`; :class:`Client` owns the endpoint, the
futures callers await, one loop timer and the subscriptions, feeds the table what happens
and does what its outbox says. Replies resolve their future directly in the endpoint
callback: no task per call. :class:`Caller` carries call options (``client.options(...)``)
apart from the method's arguments.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Mapping, TypeVar, Union, overload

import anyio

from ..addr import RESERVED_TYPES, U32_MAX, Importance, ServiceRange, SocketAddr, service_type
from ..client_metrics import ClientMetrics
from ..codec import Codec
from ..errors import (
    AddressError,
    ClosedError,
    DeadlineExceeded,
    ProtocolError,
    ServiceUnreachable,
    TipcRpcError,
    UsageError,
)
from ..transport.base import Delivery, DeliveryFailure, Returned, Transport
from .call_table import FANOUT, NOTIFY_RETRY_WINDOW_S, ONEWAY, PROBE_INTERVAL_S, STREAM, UNARY, Call, CallTable
from .chunks import DEFAULT_MAX_FRAME, DEFAULT_WINDOW
from .frames import HEADER_SIZE, Kind, parse_method_flags
from .membership import Membership, Policy, key_to_instance, policy_of
from .options import DEFAULT_OPTIONS, CallOptions
from .resolver import Resolver
from .runtime import Background, FrameLink, TableTimer
from .service import Service, lookup_service
from .stub import CallStream, FanoutResult, Stub, Watch

__all__ = ["Client", "Caller", "CallOptions", "FanoutResult", "PROBE_INTERVAL_S", "NOTIFY_RETRY_WINDOW_S"]

log = logging.getLogger("tipcrpc.client")

ServiceRef = Union["Service[Any]", str, int]
Api = TypeVar("Api")
#: What a client knows of a method: (service type, label, idempotent, importance, learn) —
#: ``learn`` is -1 when a local Service defines the method, else the flags learned so far.
Meta = tuple[int, str, bool, Importance, int]

_CHUNK, _CHUNK_ACK, _REPLY = int(Kind.CHUNK), int(Kind.CHUNK_ACK), int(Kind.REPLY)
_OVERLOAD = DeliveryFailure.OVERLOAD


def _chosen(opts: CallOptions, idempotent: bool, importance: Importance) -> tuple[bool, Importance]:
    """A method's idempotency and importance, as the call's options override them."""
    return (
        idempotent if opts.idempotent is None else opts.idempotent,
        importance if opts.importance is None else opts.importance,
    )


class Client:
    """An RPC client on one transport (use :func:`tipcrpc.connect`, or ``async with Client(t)``).

    ``policy``: ``"round_robin"`` | ``"local_first"`` | ``"least_outstanding"``.
    ``default_timeout``: seconds applied to calls whose options set no ``timeout``.
    ``max_frame``: largest frame sent or accepted (default 128 MiB); ``window``: bytes of a
    chunked frame in flight before an acknowledgement.

    Arguments and options never mix: ``client.call(service, method, *args, **kwargs)`` passes
    every argument to the method; options come from :meth:`options`.
    """

    def __init__(self, transport: Transport, *, policy: Policy | str = Policy.ROUND_ROBIN,
                 default_timeout: float | None = None, max_frame: int = DEFAULT_MAX_FRAME,
                 window: int = DEFAULT_WINDOW) -> None:  # fmt: skip
        self.transport = transport
        self.policy = policy_of(policy)
        self.default_timeout = default_timeout
        self._codec = Codec()
        self._link = FrameLink(max_message=transport.max_message, max_frame=max_frame, window=window)
        self._table: CallTable | None = None
        self._resolver: Resolver | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer = TableTimer(self._on_timer)
        self._bg = Background("client")
        self._meta: dict[tuple[object, str], Meta] = {}
        #: per-method calls, errors and latency (ops hook: fed in _flush; read by statistics())
        self.metrics = ClientMetrics(self._meta)
        self._learned: dict[tuple[int, str], int] = {}
        self._waiters: dict[int, list[asyncio.Future[None]]] = {}  # type -> wait_for() futures
        self._own_node = 0
        self._closed = False
        self._default = Caller(self, DEFAULT_OPTIONS)

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        self._loop = asyncio.get_running_loop()
        self._own_node = self.transport.own_node.addr
        try:
            self._link.attach(await self.transport.open_endpoint(self._on_message))
            self._resolver = Resolver(self.transport, self._bg, on_socket_gone=self._withdrawn,
                                      on_node_down=self._node_down, on_published=self._published)  # fmt: skip
            self._table = CallTable(self._codec, self._resolver.view, policy=self.policy, own_node=self._own_node,
                                    first_id=int.from_bytes(os.urandom(8), "big"))  # fmt: skip
            self._resolver.start()
            self._bg.spawn(self._housekeeping())
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Fail every call in flight with :class:`ClosedError` and release the endpoint."""
        if self._closed:
            return
        self._closed = True
        if self._table is not None:
            self._table.close()
            self._flush()
        for futures in self._waiters.values():
            for fut in futures:
                if not fut.done():
                    fut.set_exception(ClosedError("client closed"))
        self._waiters.clear()
        self._timer.cancel()
        if self._resolver is not None:
            self._resolver.close()
        self._link.close()
        with anyio.CancelScope(shield=True):
            try:
                if self._link.endpoint is not None:
                    await self._link.endpoint.aclose()
            finally:
                await self._bg.aclose()

    @property
    def address(self) -> SocketAddr:
        """This client's socket address."""
        if self._link.endpoint is None:
            raise ClosedError("client is not open")
        return self._link.endpoint.address

    def statistics(self) -> Mapping[str, Any]:
        """Counters: calls, replies, failures, retries, failovers, timeouts, ..., gauges, and
        ``methods``: per-method calls, errors and latency histogram
        (:class:`~tipcrpc.client_metrics.ClientMetrics`)."""
        table = self._table
        stats: dict[str, Any] = dict(table.stats) if table is not None else {}
        stats["outstanding"] = len(table) if table is not None else 0
        stats["overload_resends"] = self._link.overload_resends
        stats["methods"] = self.metrics.snapshot()
        return stats

    # -- public API -----------------------------------------------------------------------------

    def options(self, **options: Any) -> Caller:
        """Calls made with these options: ``client.options(timeout=1.0, key="alice").call(...)``.

        Names: ``timeout``, ``key``, ``instance``, ``instances``, ``wait_ready``,
        ``idempotent``, ``importance``, ``metadata``, ``credit`` (see :class:`CallOptions`).
        """
        return Caller(self, DEFAULT_OPTIONS.merged(**options))

    async def call(self, service: ServiceRef, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` of ``service`` with ``args``/``kwargs`` and return its result.

        Every argument reaches the method. Routing, deadline and retries follow the client's
        defaults; choose others with :meth:`options`."""
        call = self._start_now(UNARY, DEFAULT_OPTIONS, service, method, args, kwargs) \
            or await self._start(UNARY, DEFAULT_OPTIONS, service, method, args, kwargs)  # fmt: skip
        try:
            return await call.waiter
        except asyncio.CancelledError:
            self._abandon(call)  # a no-op if it completed meanwhile
            raise

    def stream(self, service: ServiceRef, method: str, /, *args: Any, **kwargs: Any) -> CallStream:
        """Call a streaming method; iterate the result (``async for``), ideally in ``async with``.
        Leaving early (``break``, exception, ``aclose()``) cancels the server's handler."""
        return self._default.stream(service, method, *args, **kwargs)

    async def notify(self, service: ServiceRef, method: str, /, *args: Any, **kwargs: Any) -> None:
        """Send a one-way call; returns once sent. The server runs it and sends nothing back.
        If it comes back undeliverable within :data:`NOTIFY_RETRY_WINDOW_S`, or a busy or
        closing server refuses it, it is re-sent to another instance."""
        await self._default.notify(service, method, *args, **kwargs)

    async def call_all(self, service: ServiceRef, method: str, /, *args: Any, **kwargs: Any) -> list[FanoutResult]:
        """Call ``method`` on every socket publishing ``service`` (or, with the ``instance`` /
        ``instances`` options, the part of it that overlaps); one :class:`FanoutResult` each."""
        return await self._default.call_all(service, method, *args, **kwargs)

    @overload
    def stub(self, service: Service[Api]) -> Api: ...

    @overload
    def stub(self, service: str | int) -> Stub: ...

    def stub(self, service: Service[Any] | str | int) -> Any:
        """Attribute-style calls: ``await client.stub(calc).add(1, 2)``; see :class:`Stub`.

        For a ``Service(..., interface=CalcAPI)`` the stub is typed as ``CalcAPI``."""
        return self._default.stub(service)

    async def wait_for(self, service: ServiceRef, count: int = 1, *,
                       timeout: float | None = None) -> list[tuple[SocketAddr, ServiceRange]]:  # fmt: skip
        """Wait until at least ``count`` sockets publish ``service``, as this client sees it.

        Returns every ``(socket, range)`` published then, sorted. Calls made afterwards see
        those instances (this waits on the very view calls are routed with). ``timeout``
        (seconds; ``None`` = wait indefinitely) ends the wait with DeadlineExceeded.
        """
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"count must be an int, got {count!r}")
        if count < 1:
            raise UsageError(f"count must be at least 1, got {count}")
        stype, _name = self._service_type(service)
        loop = self._running_loop()
        now = loop.time()
        deadline = None if timeout is None else now + timeout
        m = await self._ready(stype, deadline, now)
        while len(m) < count:
            await self._changed(stype, deadline, _label(service))
        return m.publications()

    def watch(self, service: ServiceRef) -> Watch:
        """ServiceUp/ServiceDown for every publication of ``service``: current ones first, then
        :data:`~tipcrpc.events.SNAPSHOT_COMPLETE`, then live changes. Iterate; ``aclose()`` to stop."""
        stype, name = self._service_type(service)
        return Watch(self.transport, stype, name)

    def watch_nodes(self) -> Watch:
        """NodeUp/NodeDown: current nodes, SNAPSHOT_COMPLETE, then live changes."""
        return Watch(self.transport, 0, None)

    # -- what the table says ----------------------------------------------------------------------

    def _flush(self) -> None:
        """Do what the table's outbox says: send, complete, wake, re-arm the timer."""
        table = self._table
        assert table is not None
        out = table.out
        while out.sends:
            sends, out.sends = out.sends, []
            for dest, frame, imp in sends:
                try:
                    self._link.send(dest, frame, imp)
                except ServiceUnreachable:
                    # No route to that node: this datagram never left.
                    if self._resolver is not None:
                        self._resolver.forget_socket(dest)
                    table.returned(dest, frame, False, self._loop.time())  # type: ignore[union-attr]
                except TipcRpcError as exc:
                    call = table.calls.get(int.from_bytes(frame[8:16], "big"))
                    if call is not None and frame[1] == Kind.CALL and call.socket == dest:
                        table.fail(call, exc)
        if out.done or out.moved:  # ops hook: per-method metrics, failover log lines
            self.metrics.observe(out, self._loop.time())  # type: ignore[union-attr]
        if out.done:
            done, out.done = out.done, []
            for call, value, error in done:
                fut = call.waiter
                if fut is not None:
                    if not fut.done():
                        if error is None:
                            fut.set_result(value)
                        else:
                            fut.set_exception(error)
                elif error is not None and call.kind == ONEWAY:  # nobody awaits it: never lose it silently
                    log.warning("notification %s could not be delivered: %s", call.method, error)
            if out.sends:
                self._flush()
                return
        if out.wake:
            wake, out.wake = out.wake, []
            for call in wake:
                st = call.stream
                w = st.waiter if st is not None else None
                if w is not None and not w.done():
                    w.set_result(None)
        if out.learned:
            for stype, method, flags in out.learned:
                self._learn(stype, method, flags)
            out.learned.clear()
        if table._timers:
            self._timer.arm(self._loop, table.next_timer)  # type: ignore[arg-type]

    def _on_timer(self) -> None:
        table = self._table
        if table is None or self._closed:
            return
        table.timeout(self._loop.time())  # type: ignore[union-attr]
        self._flush()

    def _learn(self, stype: int, method: str, flags: int) -> None:
        """An answer described a method called by name: use it for the next calls."""
        parsed = parse_method_flags(flags)
        if parsed is None:
            return
        idempotent, imp = parsed
        self._learned[(stype, method)] = flags
        for key, meta in list(self._meta.items()):
            if meta[0] == stype and key[1] == method and meta[4] >= 0:
                self._meta[key] = (meta[0], meta[1], idempotent, Importance(imp), flags)

    # -- what the transport and the resolver say ----------------------------------------------------

    def _on_message(self, msg: Delivery | Returned) -> None:
        table = self._table
        if table is None:
            return
        loop = self._loop
        if msg.__class__ is Delivery:
            data: bytes | bytearray = msg.data
            source: SocketAddr = msg.source  # type: ignore[union-attr,unused-ignore]
            kind = data[1] if len(data) >= HEADER_SIZE else 0
            if kind == _CHUNK:
                cid = int.from_bytes(data[8:16], "big")
                try:
                    whole = self._link.on_chunk(source, int.from_bytes(data[4:8], "big"), cid, data, loop.time())  # type: ignore[union-attr]
                except ProtocolError as exc:
                    call = table.calls.get(cid)
                    if call is not None:
                        table.fail(call, exc)
                        self._flush()
                    return
                if whole is None or len(whole) < HEADER_SIZE or whole[1] == _CHUNK:
                    return
                data = whole
            elif kind == _CHUNK_ACK:
                try:
                    self._link.on_chunk_ack(source, int.from_bytes(data[4:8], "big"), data)
                except ProtocolError:
                    table.counts["malformed"] += 1
                return
            # Only failover decisions need the time; a reply (the common case) does not.
            table.frame(source, data, 0.0 if kind == _REPLY else loop.time())  # type: ignore[union-attr]
        else:
            self._on_returned(table, msg)  # type: ignore[arg-type]
        self._flush()

    def _on_returned(self, table: CallTable, msg: Returned) -> None:
        dest, data = msg.dest, msg.data
        if not isinstance(dest, SocketAddr) or len(data) < HEADER_SIZE:
            return
        now = self._loop.time()  # type: ignore[union-attr]
        kind = data[1]
        overload = msg.reason == _OVERLOAD
        if kind == _CHUNK:
            if overload:
                if not self._link.on_overload(dest, data, kind, int.from_bytes(data[4:8], "big")):
                    call = table.calls.get(int.from_bytes(data[8:16], "big"))
                    if call is not None and call.socket == dest:
                        table.undeliverable(call, dest, now)
                return
            self._link.abort_call(dest, int.from_bytes(data[8:16], "big"))
        elif kind != Kind.CALL and kind != Kind.PING and overload:
            # CANCEL / STREAM_CREDIT / CHUNK_ACK refused by a swamped socket: small enough to
            # come back whole, so send them again (a lost credit or ack would stall a transfer).
            self._link.on_overload(dest, data, kind, int.from_bytes(data[4:8], "big"))
            return
        if not overload and self._resolver is not None:
            self._resolver.forget_socket(dest)
        table.returned(dest, data, overload, now)

    def _withdrawn(self, stype: int, sock: SocketAddr) -> None:
        if self._table is not None:
            self._table.withdrawn(stype, sock, self._loop.time())  # type: ignore[union-attr]
            self._flush()

    def _node_down(self, node: int) -> None:
        self._link.drop_node(node)
        if self._table is not None:
            self._table.node_down(node, self._loop.time())  # type: ignore[union-attr]
            self._flush()

    def _published(self, stype: int, sock: SocketAddr) -> None:
        futures = self._waiters.pop(stype, None)
        if futures is not None:
            for fut in futures:
                if not fut.done():
                    fut.set_result(None)
        if self._table is not None:
            self._table.published(stype, self._loop.time())  # type: ignore[union-attr]
            self._flush()

    async def _changed(self, stype: int, deadline: float | None, what: str) -> None:
        """Return after the next publication of ``stype``; DeadlineExceeded at ``deadline``."""
        loop = self._running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        futures = self._waiters.setdefault(stype, [])
        futures.append(fut)
        try:
            if deadline is None:
                await fut
                return
            delay = deadline - loop.time()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await fut
            if not fut.done():
                raise DeadlineExceeded(f"deadline passed while waiting for an instance of {what}")
        finally:
            if not fut.done():
                fut.cancel()
                if fut in futures:
                    futures.remove(fut)

    async def _housekeeping(self) -> None:
        """Garbage-collect stale partial frames (e.g. replies from peers that vanished)."""
        while True:
            await anyio.sleep(self._link.reassembler.ttl / 2)
            table = self._table
            for _peer, cid in self._link.expire(self._loop.time()):  # type: ignore[union-attr]
                call = table.calls.get(cid) if table is not None else None
                if call is not None:
                    table.fail(call, ProtocolError(f"{call.method}: reply transfer stalled"))  # type: ignore[union-attr]
            if table is not None:
                self._flush()

    # -- call set-up ----------------------------------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._closed or self._loop is None:
            raise ClosedError("client is closed" if self._closed else "client is not open (use `async with`)")
        return self._loop

    def _service_type(self, service: ServiceRef) -> tuple[int, str]:
        if isinstance(service, Service):
            return service.type, service.name
        if isinstance(service, str):
            if not service:
                raise AddressError("a service name must be a non-empty string")
            return service_type(service), service
        if isinstance(service, int) and not isinstance(service, bool):
            if not RESERVED_TYPES <= service <= U32_MAX:
                raise AddressError(
                    f"service type must be in {RESERVED_TYPES}..{U32_MAX} (types below {RESERVED_TYPES} "
                    f"are reserved by TIPC), got {service}"
                )
            return service, str(service)
        raise TypeError(f"service must be a Service, a name or a type number, got {service!r}")

    def _method_meta(self, service: ServiceRef, method: str) -> Meta:
        """What this client knows of ``method`` (cached): the local Service definition, else
        what a server told it, else non-idempotent and low importance."""
        key = (service, method)
        meta = self._meta.get(key)
        if meta is None:
            if not isinstance(method, str) or not method:
                raise TypeError(f"method must be a non-empty string, got {method!r}")
            stype, name = self._service_type(service)
            svc = service if isinstance(service, Service) else lookup_service(stype)
            info = svc.get(method) if svc is not None else None
            if info is not None:
                meta = (stype, name, info.idempotent, info.importance, -1)
            else:
                flags = self._learned.get((stype, method), 0)
                idem, imp = parse_method_flags(flags) or (False, 0)
                meta = (stype, name, idem, Importance(imp), flags)
            self._meta[key] = meta
        return meta

    async def _ready(self, stype: int, deadline: float | None, now: float) -> Membership:
        resolver = self._resolver
        if resolver is None or self._closed:
            raise ClosedError("client is closed" if self._closed else "client is not open (use `async with`)")
        m = resolver.view(stype)
        if not m.ready:
            m = await resolver.ready(stype, deadline, now)
        return m

    async def _route(self, service: ServiceRef, stype: int, method: str, opts: CallOptions, deadline: float | None,
                     now: float) -> tuple[Membership, SocketAddr, int | None, float]:  # fmt: skip
        """The first socket for a call off the common path: resolve the type first if needed,
        route by key/instance, and (``wait_ready``) wait for an instance."""
        loop = self._running_loop()
        m = await self._ready(stype, deadline, now)
        now = loop.time()
        if deadline is not None and now >= deadline:  # resolving took it all: do not send
            raise DeadlineExceeded(f"{method}: deadline passed while resolving {_label(service)}")
        key = opts.key
        while True:
            target = key_to_instance(key, m.ranges()) if key is not None else opts.instance
            table = self._table
            assert table is not None
            sock = None if key is not None and target is None else \
                m.pick(self.policy, instance=target, own_node=self._own_node, outstanding=table.outstanding)  # fmt: skip
            if sock is not None:
                return m, sock, target, now
            if not opts.wait_ready:
                if key is not None and target is None:
                    raise ServiceUnreachable(f"no instance of {_label(service)} is published")
                where = f" instance {target}" if target is not None else ""
                raise ServiceUnreachable(f"no publication of {_label(service)}{where}")
            await self._changed(stype, deadline, _label(service))
            now = loop.time()

    def _start_now(self, kind: int, opts: CallOptions, service: ServiceRef, method: str, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Call | None:  # fmt: skip
        """Start a call without waiting, on the common path: a method seen before, a service
        whose instances are known, no key or instance routing. ``None``: use :meth:`_start`."""
        meta = self._meta.get((service, method))
        table = self._table
        if meta is None or table is None or self._closed or opts.key is not None or opts.instance is not None:
            return None
        stype, _name, idem, imp, learn = meta
        m = self._resolver.memberships.get(stype)  # type: ignore[union-attr]
        if m is None or not m.ready:
            return None
        routed = m.route(self.policy, self._own_node, table.outstanding)
        if routed is None:
            return None
        sock, count = routed
        if opts is not DEFAULT_OPTIONS:
            idem, imp = _chosen(opts, idem, imp)
        loop = self._loop
        now = loop.time()  # type: ignore[union-attr]
        t = opts.timeout
        if t is None and kind != STREAM:
            t = self.default_timeout
        return self._begin(loop, table, kind, opts, stype, method, args, kwargs, idem, imp, learn,
                           None if t is None else now + t, None, now, sock, count + 1)  # fmt: skip

    async def _start(self, kind: int, opts: CallOptions, service: ServiceRef, method: str, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Call:  # fmt: skip
        """Start a call: resolve the type first if needed, route by key/instance, and
        (``wait_ready``) wait for an instance. :meth:`_start_now` is the common path."""
        stype, _name, idem, imp, learn = self._method_meta(service, method)
        idem, imp = _chosen(opts, idem, imp)
        loop = self._running_loop()  # raises ClosedError
        now = loop.time()
        t = opts.timeout
        if t is None and kind != STREAM:
            t = self.default_timeout
        deadline = None if t is None else now + t
        m, sock, instance, now = await self._route(service, stype, method, opts, deadline, now)
        table = self._table
        if table is None or self._closed:
            raise ClosedError("client is closed")
        return self._begin(loop, table, kind, opts, stype, method, args, kwargs, idem, imp, learn, deadline,
                           instance, now, sock, len(m) + 1)  # fmt: skip

    def _begin(self, loop: Any, table: CallTable, kind: int, opts: CallOptions, stype: int, method: str,
               args: tuple[Any, ...], kwargs: dict[str, Any], idem: bool, imp: Importance, learn: int,
               deadline: float | None, instance: int | None, now: float, sock: SocketAddr | None,
               max_attempts: int) -> Call:  # fmt: skip
        """Make the routed call in the table (sent to ``sock`` if known), give a unary call
        its future, and send what the table's outbox holds (both starts end here)."""
        call = table.new(kind, stype, method, args, kwargs, idem, imp, deadline, instance,
                         opts.credit if kind == STREAM else None, opts.metadata, learn, now, sock, max_attempts,
                         opts.wait_ready)  # fmt: skip
        if kind == UNARY:
            call.waiter = loop.create_future()
        self._flush()
        return call

    async def _call_all(self, opts: CallOptions, service: ServiceRef, method: str, args: tuple[Any, ...],
                        kwargs: dict[str, Any]) -> list[FanoutResult]:  # fmt: skip
        stype, _name, idem, imp, learn = self._method_meta(service, method)
        idem, imp = _chosen(opts, idem, imp)
        loop = self._running_loop()
        now = loop.time()
        t = opts.timeout if opts.timeout is not None else self.default_timeout
        deadline = None if t is None else now + t
        m = await self._ready(stype, deadline, now)
        if opts.instances is not None:
            lo, hi = opts.instances
        elif opts.instance is not None:
            lo = hi = opts.instance
        else:
            lo, hi = 0, U32_MAX
        while True:
            targets: dict[SocketAddr, ServiceRange] = {}
            for sock, rng in m.publications():
                if rng.lower <= hi and lo <= rng.upper and sock not in targets:
                    targets[sock] = rng
            if targets or not opts.wait_ready:
                break
            await self._changed(stype, deadline, _label(service))
        if not targets:
            where = "" if (lo, hi) == (0, U32_MAX) else f" in instances {lo}..{hi}"
            raise ServiceUnreachable(f"no instance of {_label(service)} is published{where}")
        table = self._table
        if table is None or self._closed:
            raise ClosedError("client is closed")
        now = loop.time()
        calls: list[tuple[SocketAddr, ServiceRange, Call]] = []
        for sock, rng in sorted(targets.items(), key=lambda t: (t[0].node, t[0].port)):
            instance = max(lo, rng.lower) if rng.lower == rng.upper or lo == hi else None
            call = table.new(FANOUT, stype, method, args, kwargs, idempotent=idem, importance=imp, deadline=deadline,
                             instance=instance, metadata=opts.metadata, learn=learn, now=now)  # fmt: skip
            call.waiter = loop.create_future()
            calls.append((sock, rng, call))
            table.send(call, sock)
        self._flush()
        results = []
        try:
            for sock, rng, call in calls:
                try:
                    results.append(FanoutResult(sock, rng, await call.waiter))
                except TipcRpcError as exc:
                    results.append(FanoutResult(sock, rng, None, exc))
        except asyncio.CancelledError:
            for _s, _r, call in calls:
                table.abandon(call)
            self._flush()
            raise
        return results

    def _abandon(self, call: Call) -> None:
        table = self._table
        if table is not None and not call.done:
            table.abandon(call)
            self._flush()

    def _grant(self, call: Call, credit: int) -> None:
        table = self._table
        if table is not None and not self._closed:
            table.grant(call, credit)
            self._flush()


class Caller:
    """Calls made with fixed :class:`CallOptions`: what :meth:`Client.options` returns.

    ``client.options(timeout=1.0).call(svc, "m", x)``; chain ``.options(...)`` to change
    more; ``.stub(svc)`` gives a stub with these options.
    """

    __slots__ = ("client", "opts")

    def __init__(self, client: Client, opts: CallOptions) -> None:
        self.client = client
        self.opts = opts

    def __repr__(self) -> str:
        return f"<Caller {self.opts}>"

    def options(self, **options: Any) -> Caller:
        """These options with ``options`` changed."""
        return Caller(self.client, self.opts.merged(**options))

    async def call(self, service: ServiceRef, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Like :meth:`Client.call`, with these options."""
        client, opts = self.client, self.opts
        call = client._start_now(UNARY, opts, service, method, args, kwargs) \
            or await client._start(UNARY, opts, service, method, args, kwargs)  # fmt: skip
        try:
            return await call.waiter
        except asyncio.CancelledError:
            client._abandon(call)  # a no-op if it completed meanwhile
            raise

    def stream(self, service: ServiceRef, method: str, /, *args: Any, **kwargs: Any) -> CallStream:
        """Like :meth:`Client.stream`, with these options (``timeout`` bounds the whole stream)."""
        client, opts = self.client, self.opts

        async def start() -> Call:
            return client._start_now(STREAM, opts, service, method, args, kwargs) \
                or await client._start(STREAM, opts, service, method, args, kwargs)  # fmt: skip

        return CallStream(client, start, opts.credit)

    async def notify(self, service: ServiceRef, method: str, /, *args: Any, **kwargs: Any) -> None:
        """Like :meth:`Client.notify`, with these options."""
        client = self.client
        opts = self.opts
        client._start_now(ONEWAY, opts, service, method, args, kwargs) \
            or await client._start(ONEWAY, opts, service, method, args, kwargs)  # fmt: skip
        endpoint = client._link.endpoint
        if endpoint is not None:
            await endpoint.drain()

    async def call_all(self, service: ServiceRef, method: str, /, *args: Any, **kwargs: Any) -> list[FanoutResult]:
        """Like :meth:`Client.call_all`, with these options."""
        return await self.client._call_all(self.opts, service, method, args, kwargs)

    @overload
    def stub(self, service: Service[Api]) -> Api: ...

    @overload
    def stub(self, service: str | int) -> Stub: ...

    def stub(self, service: Service[Any] | str | int) -> Any:
        """A :class:`Stub` of ``service`` making its calls with these options (typed as the
        service's ``interface`` when it has one)."""
        return Stub(self, service)


def _label(service: ServiceRef) -> str:
    return service.name if isinstance(service, Service) else repr(service)
