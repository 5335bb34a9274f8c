"""The public :class:`Client` (layer L4): calls, streams, notifications, fan-out, watches.

See :mod:`tipcrpc.rpc.client` for how calls are routed and failed over.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping

import anyio

from ...addr import RESERVED_TYPES, U32_MAX, Importance, ServiceRange, SocketAddr, service_type
from ...errors import AddressError, ClosedError, DeadlineExceeded, ServiceUnreachable, TipcRpcError, UsageError
from ..membership import Membership, key_to_instance
from ..resolver import Resolver
from ..frames import parse_method_flags
from ..service import Service, importance_of, lookup_service
from ..stub import CallStream, FanoutResult, StreamState, Stub, Watch
from .engine import _FANOUT, _ONEWAY, _STREAM, _UNARY, CallEngine, Meta, _Call

__all__ = ["Client"]


class Client(CallEngine):
    """An RPC client on one transport (use :func:`tipcrpc.connect`, or ``async with Client(t)``).

    ``policy``: ``"round_robin"`` | ``"local_first"`` | ``"least_outstanding"``.
    ``default_timeout``: seconds applied to calls that pass no ``timeout`` (``None`` = none).
    ``max_frame``: largest frame sent or accepted (default 128 MiB); ``window``: bytes of a
    chunked frame in flight before an acknowledgement.
    """

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        self._loop = asyncio.get_running_loop()
        self._own_node = self.transport.own_node.addr
        try:
            self._link.attach(await self.transport.open_endpoint(self._on_message))
            self._resolver = Resolver(self.transport, self._bg, on_socket_gone=self._socket_withdrawn,
                                      on_node_down=self._node_down, on_published=self._published)  # fmt: skip
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
        for _cid, call in self._pending.items():
            self._pending.pop(call.cid)
            if call.kind != _ONEWAY:  # a notification was sent; only its retry window ends
                self._fail(call, ClosedError("client closed"), cancel=True)
        self._waiting.close()
        if self._timer is not None:
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

    def statistics(self) -> Mapping[str, int]:
        """Counters: calls, replies, failures, retries, failovers, timeouts, ... and gauges."""
        stats = dict(self._stats)
        stats["outstanding"] = len(self._pending)
        stats["overload_resends"] = self._link.overload_resends
        return stats

    # -- public API ---------------------------------------------------------------------------

    async def call(self, service: Service | str | int, method: str, *args: Any, timeout: float | None = None,
                   key: object = None, instance: int | None = None, wait_ready: bool = False,
                   idempotent: bool | None = None, importance: Importance | str | int | None = None,
                   **kwargs: Any) -> Any:  # fmt: skip
        """Call ``method`` of ``service`` and return its result.

        ``timeout`` (seconds; default ``default_timeout``) bounds everything and travels to
        the server. ``key`` routes to the instance that owns it (int = instance; str/bytes
        hashed, see :func:`~tipcrpc.rpc.membership.key_to_instance`); ``instance`` names one.
        ``wait_ready``: if no instance is published (at the start, or when failover finds
        none left), wait for one until the deadline instead of failing with
        :class:`ServiceUnreachable`. ``idempotent`` and ``importance`` override, for this
        call, what the client knows of the method (its Service definition, else what a
        server told it, else non-idempotent and low).
        """
        call = await self._start(_UNARY, service, method, args, kwargs, timeout, key, instance, None, wait_ready,
                                 idempotent, importance)  # fmt: skip
        try:
            return await call.fut  # type: ignore[misc]
        except asyncio.CancelledError:
            self._abandon(call)  # no-op if it completed meanwhile
            raise

    def stub(self, service: Service | str | int, **options: Any) -> Stub:
        """Attribute-style calls: ``await client.stub(calc).add(1, 2)``; see :class:`Stub`."""
        return Stub(self, service, **options)

    def stream(self, service: Service | str | int, method: str, *args: Any, timeout: float | None = None,
               key: object = None, instance: int | None = None, credit: int = 64, wait_ready: bool = False,
               idempotent: bool | None = None, importance: Importance | str | int | None = None,
               **kwargs: Any) -> CallStream:  # fmt: skip
        """Call a streaming method; iterate the result (``async for``), ideally inside ``async with``.

        ``credit`` items may be in flight before the consumer takes them (flow control).
        ``timeout``, if given, bounds the whole stream; ``default_timeout`` does not apply.
        Leaving early (``break``, exception, ``aclose()``) cancels the server's handler.
        ``wait_ready``, ``idempotent``, ``importance`` as for :meth:`call`.
        """
        if not 1 <= credit <= 0xFFFF:
            raise UsageError(f"credit must be in 1..65535, got {credit}")

        async def start(state: StreamState) -> _Call:
            call = await self._start(_STREAM, service, method, args, kwargs, timeout, key, instance, credit,
                                     wait_ready, idempotent, importance, state)  # fmt: skip
            return call

        return CallStream(self, start, credit)

    async def notify(self, service: Service | str | int, method: str, *args: Any, key: object = None,
                     instance: int | None = None, wait_ready: bool = False, idempotent: bool | None = None,
                     importance: Importance | str | int | None = None, **kwargs: Any) -> None:  # fmt: skip
        """Send a one-way call; returns once sent. The server runs it and sends nothing back.
        If within :data:`NOTIFY_RETRY_WINDOW_S` it comes back undeliverable, or a busy or
        closing server refuses it, it is re-sent to another instance. ``wait_ready``: wait
        (bounded by ``default_timeout``, if set) for an instance instead of failing;
        ``importance`` (and ``idempotent``) as for :meth:`call`."""
        await self._start(_ONEWAY, service, method, args, kwargs, None, key, instance, None, wait_ready,
                          idempotent, importance)  # fmt: skip
        endpoint = self._link.endpoint
        if endpoint is not None:
            await endpoint.drain()

    async def call_all(self, service: Service | str | int, method: str, *args: Any, timeout: float | None = None,
                       instance: int | None = None, wait_ready: bool = False, idempotent: bool | None = None,
                       importance: Importance | str | int | None = None, **kwargs: Any) -> list[FanoutResult]:  # fmt: skip
        """Call ``method`` on every socket publishing ``service`` (or ``instance``).

        Returns one :class:`FanoutResult` per socket (sorted by socket), each holding the
        value or the error of that instance; no retries. :class:`ServiceUnreachable` if none
        (with ``wait_ready``: wait for at least one until the deadline). ``importance``
        (and ``idempotent``, sent along but never acted on here) as for :meth:`call`.
        """
        stype, _name, idem, imp, learn = self._method_options(service, method, idempotent, importance)
        if instance is not None:
            _check_instance(instance)
        loop = self._running_loop()
        now = loop.time()
        deadline = self._deadline(timeout, now)
        m = await self._ready(stype, deadline, now)
        while True:
            targets: dict[SocketAddr, ServiceRange] = {}
            for sock, rng in m.publications():
                if (instance is None or rng.contains(instance)) and sock not in targets:
                    targets[sock] = rng
            if targets or not wait_ready:
                break
            await self._changed(stype, deadline, self._label(service))
        if not targets:
            raise ServiceUnreachable(f"no instance of {self._label(service)} is published")
        calls: list[tuple[SocketAddr, ServiceRange, _Call]] = []
        for sock, rng in sorted(targets.items(), key=lambda t: (t[0].node, t[0].port)):
            call = self._new_call(_FANOUT, stype, method, args, kwargs, idem, imp, learn, deadline, instance, None,
                                  loop.time())  # fmt: skip
            call.fut = loop.create_future()
            calls.append((sock, rng, call))
            self._send_to(call, sock)
        results = []
        try:
            for sock, rng, call in calls:
                try:
                    results.append(FanoutResult(sock, rng, await call.fut))  # type: ignore[misc]
                except TipcRpcError as exc:
                    results.append(FanoutResult(sock, rng, None, exc))
        except asyncio.CancelledError:
            for _s, _r, call in calls:
                if not call.fut.done():  # type: ignore[union-attr]
                    self._abandon(call)
            raise
        return results

    async def wait_for(self, service: Service | str | int, count: int = 1, *,
                       timeout: float | None = None) -> list[tuple[SocketAddr, ServiceRange]]:  # fmt: skip
        """Wait until at least ``count`` sockets publish ``service``, as this client sees it.

        Returns every ``(socket, range)`` published then, sorted. Calls made afterwards see
        those instances (this waits on the very view calls are routed with). ``timeout``
        (seconds; ``None`` = wait indefinitely; ``default_timeout`` does not apply) ends the
        wait with :class:`~tipcrpc.errors.DeadlineExceeded`.
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
            await self._changed(stype, deadline, self._label(service))
        return m.publications()

    def watch(self, service: Service | str | int) -> Watch:
        """ServiceUp/ServiceDown for every publication of ``service``: current ones first, then
        :data:`~tipcrpc.events.SNAPSHOT_COMPLETE`, then live changes. Iterate; ``aclose()`` to stop."""
        stype, name = self._service_type(service)
        return Watch(self.transport, stype, name)

    def watch_nodes(self) -> Watch:
        """NodeUp/NodeDown: current nodes, SNAPSHOT_COMPLETE, then live changes."""
        return Watch(self.transport, 0, None)

    # -- call setup ---------------------------------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._closed or self._loop is None:
            raise ClosedError("client is closed" if self._closed else "client is not open (use `async with`)")
        return self._loop

    @staticmethod
    def _label(service: Service | str | int) -> str:
        return service.name if isinstance(service, Service) else repr(service)

    def _service_type(self, service: Service | str | int) -> tuple[int, str]:
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

    def _method_meta(self, service: Service | str | int, method: str) -> Meta:
        """What this client knows of ``method`` (cached): the local Service definition, else
        what a server told it (see :meth:`CallEngine._learn`), else non-idempotent, low."""
        key = (service, method)
        meta = self._meta.get(key)
        if meta is None:
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

    def _method_options(self, service: Service | str | int, method: str, idempotent: bool | None,
                        importance: Importance | str | int | None) -> Meta:  # fmt: skip
        """:meth:`_method_meta` with this call's overrides applied."""
        meta = self._method_meta(service, method)
        if idempotent is None and importance is None:
            return meta
        stype, name, idem, imp, learn = meta
        if idempotent is not None:
            if idempotent is not True and idempotent is not False:
                raise TypeError(f"idempotent must be True, False or None, got {idempotent!r}")
            idem = idempotent
        if importance is not None:
            imp = importance_of(importance)
        return stype, name, idem, imp, learn

    def _deadline(self, timeout: float | None, now: float) -> float | None:
        t = timeout if timeout is not None else self.default_timeout
        return None if t is None else now + t

    async def _ready(self, stype: int, deadline: float | None, now: float) -> Membership:
        resolver = self._resolver
        if resolver is None:
            raise ClosedError("client is not open")
        m = resolver.view(stype)
        if not m.ready:
            m = await resolver.ready(stype, deadline, now)
        return m

    async def _route(self, service: Service | str | int, stype: int, method: str, deadline: float | None, now: float,
                     key: object, instance: int | None,
                     wait_ready: bool) -> tuple[Membership, SocketAddr, int | None, float]:  # fmt: skip
        """The first socket for a call off the common path: resolve the type first if needed,
        route by ``key``/``instance``, and (``wait_ready``) wait for an instance. Returns the
        membership, the socket, the instance the call targets and the time."""
        loop = self._loop
        assert loop is not None
        m = self._resolver.view(stype)  # type: ignore[union-attr]
        if not m.ready:
            m = await self._ready(stype, deadline, now)
            now = loop.time()
            if deadline is not None and now >= deadline:  # resolving took it all: do not send
                raise DeadlineExceeded(f"{method}: deadline passed while resolving {self._label(service)}")
        if instance is not None:
            _check_instance(instance)
            if key is not None:
                raise UsageError("pass either key= or instance=, not both")
        while True:
            target = key_to_instance(key, m.ranges()) if key is not None else instance
            sock = None if key is not None and target is None else \
                m.pick(self.policy, instance=target, own_node=self._own_node, outstanding=self._by_socket)  # fmt: skip
            if sock is not None:
                return m, sock, target, now
            if not wait_ready:
                if key is not None and target is None:
                    raise ServiceUnreachable(f"no instance of {self._label(service)} is published")
                where = f" instance {target}" if target is not None else ""
                raise ServiceUnreachable(f"no publication of {self._label(service)}{where}")
            await self._changed(stype, deadline, self._label(service))
            now = loop.time()

    async def _start(self, kind: int, service: Service | str | int, method: str, args: tuple[Any, ...],
                     kwargs: dict[str, Any], timeout: float | None, key: object, instance: int | None,
                     credit: int | None, wait_ready: bool, idempotent: bool | None,
                     importance: Importance | str | int | None, state: StreamState | None = None) -> _Call:  # fmt: skip
        # The per-call path: everything uncommon (overrides, resolving, key or instance
        # routing, no instance yet) is in the slower helpers.
        meta = self._meta.get((service, method))
        if meta is None or idempotent is not None or importance is not None:
            meta = self._method_options(service, method, idempotent, importance)
        stype, _name, idem, imp, learn = meta
        loop = self._loop
        if loop is None or self._closed:
            loop = self._running_loop()  # raises ClosedError
        now = loop.time()
        t = timeout if timeout is not None or kind == _STREAM else self.default_timeout
        deadline = None if t is None else now + t
        m = self._resolver.view(stype)  # type: ignore[union-attr]
        if m.ready and key is None and instance is None:
            sock = m.pick(self.policy, own_node=self._own_node, outstanding=self._by_socket)
        else:
            sock = None
        if sock is None:
            m, sock, instance, now = await self._route(service, stype, method, deadline, now, key, instance, wait_ready)
        call = self._new_call(kind, stype, method, args, kwargs, idem, imp, learn, deadline, instance, credit, now)
        call.max_attempts = len(m) + 1
        call.wait_ready = wait_ready
        if kind == _UNARY:
            call.fut = loop.create_future()
        if state is not None:
            call.stream = state
            self._stats["streams"] += 1
        elif kind == _ONEWAY:
            self._stats["notifications"] += 1
        self._send_to(call, sock)
        return call


def _check_instance(instance: object) -> None:
    if isinstance(instance, bool) or not isinstance(instance, int):
        raise TypeError(f"instance must be an int, got {instance!r}")
    if not 0 <= instance <= U32_MAX:
        raise AddressError(f"an instance must be in 0..{U32_MAX}, got {instance}")
