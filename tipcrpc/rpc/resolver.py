"""Membership views fed by topology subscriptions (layer L4).

The :class:`Resolver` keeps one :class:`~tipcrpc.rpc.membership.Membership` per service
type, each fed by a PORTS subscription to ``{type, 0, 2**32-1}``, plus one node
subscription (type 0) for node-down events. The first call for a type opens its
subscription and waits for the snapshot marker, so the first pick sees every instance that
already existed; if the snapshot is empty the call fails at once with
:class:`~tipcrpc.errors.ServiceUnreachable` instead of waiting for a timeout.

Changes that matter to in-flight calls are reported through callbacks:
``on_socket_gone(type, socket)`` when a socket no longer publishes anything of a type,
``on_node_down(node)``, and ``on_published(type, socket)`` after every publication (for
callers waiting for an instance to appear).
"""

from __future__ import annotations

import logging
from typing import Callable

import anyio

from ..addr import NODE_STATE, U32_MAX, ServiceRange, SocketAddr
from ..errors import ClosedError, DeadlineExceeded, TipcRpcError, TransportError
from ..events import NodeDown, NodeUp, Published, SnapshotComplete, Withdrawn
from ..transport.base import Transport
from .membership import Membership
from .runtime import Background

__all__ = ["Resolver"]

log = logging.getLogger("tipcrpc.resolver")


class _View:
    __slots__ = ("membership", "ready", "error")

    def __init__(self, type: int) -> None:
        self.membership = Membership(type)
        self.ready = anyio.Event()
        self.error: BaseException | None = None


class Resolver:
    """Per-type membership views for one client."""

    def __init__(
        self,
        transport: Transport,
        background: Background,
        *,
        on_socket_gone: Callable[[int, SocketAddr], None],
        on_node_down: Callable[[int], None],
        on_published: Callable[[int, SocketAddr], None] | None = None,
    ) -> None:
        self._transport = transport
        self._bg = background
        self._views: dict[int, _View] = {}
        #: type -> its membership (the views' memberships, for a dict lookup per call)
        self.memberships: dict[int, Membership] = {}
        self._on_socket_gone = on_socket_gone
        self._on_node_down = on_node_down
        self._on_published = on_published
        self._closed = False
        self._nodes_started = False
        self.nodes: set[int] = set()

    def start(self) -> None:
        """Start the node-state subscription (idempotent)."""
        if not self._nodes_started:
            self._nodes_started = True
            self._bg.spawn(self._watch_nodes())

    def view(self, type: int) -> Membership:
        """The membership of ``type``, opening its subscription on first use."""
        v = self._views.get(type)
        if v is None:
            if self._closed:
                raise ClosedError("client is closed")
            v = self._views[type] = _View(type)
            self.memberships[type] = v.membership
            self._bg.spawn(self._follow(v))
        return v.membership

    async def ready(self, type: int, deadline: float | None, now: float) -> Membership:
        """The membership of ``type`` once its snapshot is complete (bounded by ``deadline``)."""
        m = self.view(type)
        if m.ready:
            return m
        v = self._views[type]
        if v.error is not None:
            raise v.error
        if deadline is None:
            await v.ready.wait()
        else:
            with anyio.move_on_after(max(deadline - now, 0.0)) as scope:
                await v.ready.wait()
            if scope.cancelled_caught:
                raise DeadlineExceeded(f"deadline passed while resolving service type {type}")
        if v.error is not None:
            raise v.error
        return m

    def forget_socket(self, socket: SocketAddr) -> None:
        """``socket`` is known to be gone: drop it from every view now."""
        for v in self._views.values():
            m = v.membership
            if socket in m:
                for _s, rng in [p for p in m.publications() if p[0] == socket]:
                    m.withdrawn(rng, socket)

    async def _follow(self, v: _View) -> None:
        m = v.membership
        try:
            sub = await self._transport.subscribe(ServiceRange(m.type, 0, U32_MAX))
        except TipcRpcError as exc:
            v.error = exc
            v.ready.set()
            return
        try:
            async for ev in sub:
                if isinstance(ev, Published):
                    m.published(ev.range, ev.socket)
                    if self._on_published is not None:
                        self._on_published(m.type, ev.socket)
                elif isinstance(ev, Withdrawn):
                    if m.withdrawn(ev.range, ev.socket):
                        self._on_socket_gone(m.type, ev.socket)
                elif isinstance(ev, SnapshotComplete):
                    m.ready = True
                    v.ready.set()
        except (TransportError, ClosedError) as exc:
            if not self._closed:
                log.warning("subscription to service type %d ended: %s", m.type, exc)
                v.error = exc
        finally:
            if not v.ready.is_set():
                v.error = v.error or ClosedError("subscription closed before its snapshot completed")
                v.ready.set()
            with anyio.CancelScope(shield=True):
                await sub.aclose()

    async def _watch_nodes(self) -> None:
        try:
            sub = await self._transport.subscribe(ServiceRange(NODE_STATE, 0, U32_MAX))
        except TipcRpcError as exc:
            log.warning("node subscription failed: %s", exc)
            return
        try:
            async for ev in sub:
                if isinstance(ev, NodeUp):
                    self.nodes.add(ev.node)
                elif isinstance(ev, NodeDown):
                    self.nodes.discard(ev.node)
                    for v in self._views.values():
                        v.membership.node_down(ev.node)
                    self._on_node_down(ev.node)
        except (TransportError, ClosedError) as exc:
            if not self._closed:
                log.warning("node subscription ended: %s", exc)
        finally:
            with anyio.CancelScope(shield=True):
                await sub.aclose()

    def close(self) -> None:
        self._closed = True
