"""Client-side handles (layer L4): :class:`Stub`, :class:`CallStream`, :class:`Watch`,
:class:`FanoutResult`.

These are what :class:`~tipcrpc.rpc.client.Client` hands to user code; the protocol work
stays in the client.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Union

from ..addr import U32_MAX, ServiceRange, SocketAddr
from ..errors import ClosedError
from ..events import (
    NodeDown,
    NodeUp,
    Published,
    ServiceDown,
    ServiceUp,
    SnapshotComplete,
    Withdrawn,
)
from ..transport.base import Subscription, Transport
from .service import Service, lookup_service

if TYPE_CHECKING:
    from .call_table import Call
    from .client import Caller, Client
    from .options import CallOptions

__all__ = ["Stub", "CallStream", "Watch", "FanoutResult"]



@dataclass(frozen=True, slots=True)
class FanoutResult:
    """The outcome of a :meth:`Client.call_all` at one socket: ``value`` or ``error``."""

    socket: SocketAddr
    range: ServiceRange
    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True if this instance returned a value."""
        return self.error is None

    def unwrap(self) -> Any:
        """The value, or raise the error."""
        if self.error is not None:
            raise self.error
        return self.value


class CallStream:
    """The items of a streaming call, in order.

    Leaving an ``async with`` block (normally, by ``break`` or an exception) cancels the
    server's handler if it still runs; so does ``aclose()``, and so does discarding the
    stream object — in CPython at once, e.g. when ``async for x in client.stream(...)`` is
    left by ``break``. A stream kept in a variable stays open (another loop may resume it)
    until it is closed or collected.
    """

    def __init__(self, client: Client, start: Callable[[], Awaitable[Call]], credit: int) -> None:
        self._client = client
        self._start = start
        self._call: Call | None = None
        self._done = False
        self._credit = credit
        self._unacked = 0

    async def _ensure_started(self) -> Call:
        call = self._call
        if call is None:
            if self._done:
                raise ClosedError("stream is closed")
            call = self._call = await self._start()
        return call

    async def __aenter__(self) -> CallStream:
        await self._ensure_started()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> CallStream:
        return self

    async def __anext__(self) -> Any:
        call = self._call or await self._ensure_started()
        st = call.stream
        assert st is not None
        while True:
            ok, value = st.take()
            if ok:
                self._unacked += 1
                if self._unacked >= max(self._credit // 2, 1) and not st.complete:
                    self._client._grant(call, self._unacked)
                    self._unacked = 0
                return value
            if st.error is not None:
                self._done = True
                raise st.error
            if st.finished or self._done:
                self._done = True
                raise StopAsyncIteration
            st.waiter = asyncio.get_running_loop().create_future()
            try:
                await st.waiter
            finally:
                st.waiter = None

    async def aclose(self) -> None:
        """Stop the stream; the server's handler is cancelled if still running."""
        self._close()

    def _close(self) -> None:
        if not self._done:
            self._done = True
            if self._call is not None:
                self._client._abandon(self._call)

    def __del__(self) -> None:
        if not self._done and self._call is not None:
            try:
                self._close()
            except Exception:  # pragma: no cover - best effort during garbage collection
                pass


class Stub:
    """Attribute-style calls on one service: ``await stub.add(1, 2)``.

    For a :class:`Service` (or a name/type whose Service is defined in this process) only
    its methods exist, each carrying the original signature and docstring; streaming
    methods return a :class:`CallStream`. Every argument reaches the method; call options
    come from :meth:`with_options` (``stub.with_options(timeout=1.0, key="alice")``) or from
    the caller the stub was made by (``client.options(...).stub(svc)``).
    """

    def __init__(self, caller: Caller, service: Service[Any] | str | int) -> None:
        self._caller = caller
        self._service_ref = service
        if isinstance(service, Service):
            self._service: Service[Any] | None = service
        else:
            stype = caller.client._service_type(service)[0]
            self._service = lookup_service(stype)
        # An interface (Service(..., interface=...)) names the methods when none is defined
        # in this process: True for streaming ones.
        self._declared = self._service.interface_methods() if self._service is not None else {}
        if self._service is not None:
            self._service.check_interface()
        self._bound: dict[str, Callable[..., Any]] = {}

    def with_options(self, **options: Any) -> Stub:
        """A copy of this stub making its calls with ``options`` changed (see :class:`CallOptions`)."""
        return Stub(self._caller.options(**options), self._service_ref)

    @property
    def options(self) -> CallOptions:
        """The options this stub's calls are made with."""
        return self._caller.opts

    def __dir__(self) -> list[str]:
        names = list(self._service.methods) if self._service is not None else []
        return sorted(set(names) | set(self._declared) | {"with_options", "options"})

    def __repr__(self) -> str:
        return f"<Stub {self._service_ref!r} {self._caller.opts}>"

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        cached = self._bound.get(name)
        if cached is not None:
            return cached
        info = None
        streaming = self._declared.get(name, False)
        if self._service is not None:
            info = self._service.get(name)
            if info is None and (self._service.methods or name not in self._declared):
                raise AttributeError(f"service {self._service.name!r} has no method {name!r}")
            if info is not None:
                streaming = info.streaming
        caller, service = self._caller, self._service_ref
        bound: Any
        if streaming:

            def stream(*args: Any, **kwargs: Any) -> CallStream:
                return caller.stream(service, name, *args, **kwargs)

            bound = stream
        else:

            async def call(*args: Any, **kwargs: Any) -> Any:
                return await caller.call(service, name, *args, **kwargs)

            bound = call
        if info is not None:
            functools.update_wrapper(bound, info.func, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
            bound.__signature__ = info.signature
            bound.__annotations__ = dict(getattr(info.func, "__annotations__", {}))
        else:
            bound.__name__ = name
        self._bound[name] = bound
        result: Callable[..., Any] = bound
        return result


WatchItem = Union[ServiceUp, ServiceDown, NodeUp, NodeDown, SnapshotComplete]


class Watch:
    """An async iterator over topology changes; an async context manager too.

    Its subscription is cancelled by ``aclose()``, at the end of an ``async with`` block,
    and when the watch object is discarded — in CPython at once, e.g. when ``async for ev
    in client.watch(...)`` is left by ``break``. A watch kept in a variable stays
    subscribed (another loop may resume it) until it is closed or collected.
    """

    def __init__(self, transport: Transport, type: int, name: str | None) -> None:
        self._transport = transport
        self._type = type
        self._name = name
        self._sub: Subscription | None = None
        self._closed = False

    async def __aenter__(self) -> Watch:
        await self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _open(self) -> Subscription:
        if self._closed:
            raise ClosedError("watch is closed")
        if self._sub is None:
            self._sub = await self._transport.subscribe(ServiceRange(self._type, 0, U32_MAX))
        return self._sub

    def __aiter__(self) -> AsyncIterator[WatchItem]:
        return self

    async def __anext__(self) -> WatchItem:
        sub = await self._open()
        while True:
            ev = await sub.__anext__()
            t = type(ev)
            if t is Published or t is Withdrawn:
                cls = ServiceUp if t is Published else ServiceDown
                r, s = ev.range, ev.socket  # type: ignore[union-attr]
                return cls(self._name or str(self._type), r.type, r.lower, r.upper, s.node, s.port)
            if t in (NodeUp, NodeDown, SnapshotComplete):
                return ev  # type: ignore[return-value]
            # link events or anything else: not part of this watch

    async def aclose(self) -> None:
        """Cancel the subscription."""
        self._closed = True
        sub, self._sub = self._sub, None
        if sub is not None:
            await sub.aclose()

    def __del__(self) -> None:
        sub = self._sub
        if sub is None:
            return
        try:  # best effort: collected while its event loop runs (the usual case)
            task = asyncio.get_running_loop().create_task(sub.aclose())
        except RuntimeError:
            return
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)


# Subscriptions being cancelled on behalf of collected watches (strong refs until done).
_CLOSING: set[asyncio.Task[None]] = set()

