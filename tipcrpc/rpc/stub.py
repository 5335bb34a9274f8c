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

from ..addr import U32_MAX, Importance, ServiceRange, SocketAddr
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
    from .client import Client
    from .client.engine import _Call

__all__ = ["Stub", "CallStream", "StreamState", "Watch", "FanoutResult"]

_U32 = 0xFFFF_FFFF


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


class StreamState:
    """Receive side of one streaming call: re-orders items by sequence number (items
    re-sent after an overload may overtake others) and wakes the consumer."""

    __slots__ = ("buf", "next_seq", "consumed", "end_count", "error", "waiter", "received_any")

    def __init__(self) -> None:
        self.buf: dict[int, Any] = {}
        self.next_seq = 0
        self.consumed = 0
        self.end_count: int | None = None
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.received_any = False

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def push(self, seq: int, value: Any) -> None:
        if ((seq - self.next_seq) & _U32) >= 0x8000_0000 or seq in self.buf:
            return  # already consumed (duplicate)
        self.buf[seq] = value
        self.received_any = True
        self._wake()

    def end(self, count: int) -> None:
        self.end_count = count
        self._wake()

    @property
    def complete(self) -> bool:
        """Every item and the end marker have arrived."""
        return self.end_count is not None and ((self.consumed + len(self.buf)) & _U32) == self.end_count

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self._wake()

    def reset(self) -> None:
        """The call moves to another instance before any item arrived."""
        self.buf.clear()
        self.end_count = None


class CallStream:
    """The items of a streaming call, in order.

    Leaving an ``async with`` block (normally, by ``break`` or an exception) cancels the
    server's handler if it still runs; so does ``aclose()``, and so does discarding the
    stream object — in CPython at once, e.g. when ``async for x in client.stream(...)`` is
    left by ``break``. A stream kept in a variable stays open (another loop may resume it)
    until it is closed or collected.
    """

    def __init__(self, client: Client, start: Callable[[StreamState], Awaitable[_Call]], credit: int) -> None:
        self._client = client
        self._start = start
        self._state = StreamState()
        self._call: _Call | None = None
        self._done = False
        self._credit = credit
        self._unacked = 0

    async def _ensure_started(self) -> None:
        if self._call is None:
            if self._done:
                raise ClosedError("stream is closed")
            self._call = await self._start(self._state)

    async def __aenter__(self) -> CallStream:
        await self._ensure_started()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> CallStream:
        return self

    async def __anext__(self) -> Any:
        if self._call is None:
            await self._ensure_started()
        st = self._state
        while True:
            seq = st.next_seq
            if seq in st.buf:
                value = st.buf.pop(seq)
                st.next_seq = (seq + 1) & _U32
                st.consumed += 1
                self._unacked += 1
                if self._unacked >= max(self._credit // 2, 1) and not st.complete:
                    self._client._send_credit(self._call, self._unacked)  # type: ignore[arg-type]
                    self._unacked = 0
                return value
            if st.error is not None:
                self._done = True
                raise st.error
            if st.end_count is not None and (st.consumed & _U32) == st.end_count:
                self._done = True
                raise StopAsyncIteration
            if self._done:
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
    methods return a :class:`CallStream`. ``with_options(timeout=, key=, instance=,
    wait_ready=, idempotent=, importance=)`` returns a stub with different call options
    (see :meth:`Client.call`).
    """

    def __init__(self, client: Client, service: Service | str | int, *, timeout: float | None = None,
                 key: object = None, instance: int | None = None, wait_ready: bool = False,
                 idempotent: bool | None = None, importance: Importance | str | int | None = None) -> None:  # fmt: skip
        self._client = client
        self._service_ref = service
        self._options: dict[str, Any] = {"timeout": timeout, "key": key, "instance": instance,
                                         "wait_ready": wait_ready, "idempotent": idempotent,
                                         "importance": importance}  # fmt: skip
        if isinstance(service, Service):
            self._service: Service | None = service
        else:
            stype = client._service_type(service)[0]
            self._service = lookup_service(stype)
        self._bound: dict[str, Callable[..., Any]] = {}

    def with_options(self, **options: Any) -> Stub:
        """A copy of this stub with some of ``timeout``, ``key``, ``instance``, ``wait_ready``,
        ``idempotent``, ``importance`` changed."""
        unknown = set(options) - set(self._options)
        if unknown:
            raise TypeError(f"unknown stub options: {sorted(unknown)}")
        merged = {**self._options, **options}
        return Stub(self._client, self._service_ref, **merged)

    def __dir__(self) -> list[str]:
        names = list(self._service.methods) if self._service is not None else []
        return sorted(set(names) | {"with_options"})

    def __repr__(self) -> str:
        return f"<Stub {self._service_ref!r} {self._options}>"

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        bound = self._bound.get(name)
        if bound is not None:
            return bound
        info = None
        if self._service is not None:
            info = self._service.get(name)
            if info is None:
                raise AttributeError(f"service {self._service.name!r} has no method {name!r}")
        client, service, opts = self._client, self._service_ref, self._options
        if info is not None and info.streaming:

            def stream(*args: Any, **kwargs: Any) -> CallStream:
                return client.stream(service, name, *args, **opts, **kwargs)

            bound = stream
        else:

            async def call(*args: Any, **kwargs: Any) -> Any:
                return await client.call(service, name, *args, **opts, **kwargs)

            bound = call
        if info is not None:
            functools.update_wrapper(bound, info.func, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
            bound.__signature__ = info.signature  # type: ignore[attr-defined]
            bound.__annotations__ = dict(getattr(info.func, "__annotations__", {}))
        else:
            bound.__name__ = name
        self._bound[name] = bound
        return bound


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
        return self  # type: ignore[return-value]

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

