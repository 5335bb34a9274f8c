"""One node of a :class:`~tipcrpc.transport.memory.MemoryCluster`: the memory Transport.

A :class:`MemoryTransport` is a TIPC node living in this process. It keeps its own name
table view (:mod:`.name_table`); cluster-scope publications reach other nodes only through
the ordered links, so views converge asynchronously exactly as TIPC's replicated tables do.
Message routing mirrors the kernel's socket layer:

* the sender resolves names in *its own* view (``EHOSTUNREACH`` if nothing matches);
* the receiving node delivers to the addressed port, or — for an anycast message whose
  socket vanished — re-does the lookup once in *its* view (``msg_reroute_cnt``), else
  rejects the message back to its sender with ``TIPC_ERR_NO_NAME``/``NO_PORT``;
* multicast is resolved to nodes at the sender and to sockets at each receiver.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Mapping, Union

from ...addr import (
    Importance,
    NodeInfo,
    Scope,
    ServiceAddr,
    ServiceRange,
    SocketAddr,
    U32_MAX,
    check_publishable,
)
from ...errors import AddressError, ClosedError, FrameTooLarge, LocalProtocolError, ServiceUnreachable
from ...events import SubFilter
from ..base import RETURNED_DATA_MAX, Delivery, DeliveryFailure, Destination, MessageHandler, Name, Returned
from .link import DIRECT, DISTR, LEAVE, MCAST, NAMED, RETURNED, Link, Message
from .name_table import NameTable, Publication
from .subscription import MemorySubscription

if TYPE_CHECKING:
    from .cluster import MemoryCluster

__all__ = ["MemoryTransport", "MemoryEndpoint"]

# Name-distribution operations carried in DISTR messages.
_PUBLISH, _WITHDRAW, _BULK = 0, 1, 2

_NEW, _OPEN, _CLOSED = 0, 1, 2

_IMPORTANCES = frozenset(int(i) for i in Importance)


def _as_range(name: object) -> ServiceRange:
    if isinstance(name, ServiceRange):
        return name
    if isinstance(name, ServiceAddr):
        return name.as_range()
    raise AddressError(f"expected a ServiceAddr or ServiceRange, got {name!r}")


def _check_scope(scope: object) -> Scope:
    if scope is Scope.CLUSTER or scope is Scope.NODE:
        return scope
    try:
        return Scope(scope)  # type: ignore[arg-type]
    except ValueError:
        raise AddressError(f"scope must be Scope.NODE or Scope.CLUSTER, got {scope!r}") from None


class _Counters:
    """Per-node traffic counters (attributes, not a dict: cheaper on the hot path)."""

    __slots__ = (
        "messages_sent",
        "bytes_sent",
        "messages_received",
        "bytes_received",
        "messages_returned",
        "messages_rejected",
        "messages_rerouted",
        "multicast_unmatched",
        "returns_dropped",
    )

    def __init__(self) -> None:
        self.messages_sent = 0
        self.bytes_sent = 0
        self.messages_received = 0
        self.bytes_received = 0
        self.messages_returned = 0  #: returned messages handed to our endpoints
        self.messages_rejected = 0  #: messages we sent back as undeliverable
        self.messages_rerouted = 0  #: anycast messages re-resolved here (second chance)
        self.multicast_unmatched = 0  #: multicast that found no socket here (dropped)
        self.returns_dropped = 0  #: returned messages whose sender had gone

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class MemoryEndpoint:
    """A reliable-datagram socket of a :class:`MemoryTransport` (see :class:`~tipcrpc.transport.base.Endpoint`)."""

    __slots__ = ("_node", "_address", "_handler", "_closed", "_bindings")

    def __init__(self, node: MemoryTransport, address: SocketAddr, handler: MessageHandler) -> None:
        self._node = node
        self._address = address
        self._handler = handler
        self._closed = False
        self._bindings: dict[tuple[ServiceRange, Scope], None] = {}  # publish order

    @property
    def address(self) -> SocketAddr:
        """This endpoint's socket address ``{node, port}``."""
        return self._address

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose` (or when its node closed or crashed)."""
        return self._closed

    @property
    def bindings(self) -> list[tuple[ServiceRange, Scope]]:
        """The names this endpoint has published, in publication order."""
        return list(self._bindings)

    async def publish(self, name: Name, scope: Scope = Scope.CLUSTER) -> None:
        """Bind ``name`` at ``scope`` (a no-op if already bound at that scope)."""
        r = _as_range(name)
        check_publishable(r)
        scope = _check_scope(scope)
        if self._closed:
            raise ClosedError(f"endpoint {self._address} is closed")
        if (r, scope) in self._bindings:
            return
        self._bindings[(r, scope)] = None
        self._node._publish(r, self._address, scope)

    async def withdraw(self, name: Name, scope: Scope = Scope.CLUSTER) -> None:
        """Unbind a name published with the same scope (no-op if not bound)."""
        r = _as_range(name)
        scope = _check_scope(scope)
        if (r, scope) not in self._bindings:
            return
        del self._bindings[(r, scope)]
        self._node._withdraw(r, self._address, scope)

    def send(self, dest: Destination, data: bytes, *, importance: Importance = Importance.LOW) -> None:
        """Queue ``data`` for ``dest`` (anycast, multicast or direct); see the contract."""
        if self._closed:
            raise ClosedError(f"endpoint {self._address} is closed")
        if importance not in _IMPORTANCES:
            raise LocalProtocolError(f"importance must be one of {sorted(_IMPORTANCES)}, got {importance!r}")
        self._node._send(self._address, dest, data)

    async def drain(self) -> None:
        """Memory links have no send buffer limit; this only yields to the event loop."""
        if self._closed:
            raise ClosedError(f"endpoint {self._address} is closed")
        await asyncio.sleep(0)

    async def aclose(self) -> None:
        """Withdraw every publication and close; idempotent.

        Messages still on their way to this endpoint are rerouted (anycast, once) or
        returned to their senders, like the kernel's ``tipc_sk_release``.
        """
        if self._closed:
            return
        self._closed = True
        for r, scope in list(self._bindings):
            self._node._withdraw(r, self._address, scope)
        self._bindings.clear()
        self._node._endpoint_closed(self)

    def _deliver(self, item: Union[Delivery, Returned]) -> None:
        try:
            self._handler(item)
        except Exception as exc:  # a broken handler must not break the link pump
            self._node._loop_or_none().call_exception_handler(  # type: ignore[union-attr]
                {
                    "message": f"exception in message handler of memory endpoint {self._address}",
                    "exception": exc,
                }
            )

    def __repr__(self) -> str:
        return f"<MemoryEndpoint {self._address}{' closed' if self._closed else ''}>"


class MemoryTransport:
    """An in-process TIPC node; create it with :meth:`MemoryCluster.node`.

    Open it with ``async with node:`` (or :meth:`open`/:meth:`aclose`). Closing is
    graceful: endpoints withdraw their names, messages already sent are still delivered,
    and peers then see the node and its links go down. For an abrupt crash use
    :meth:`MemoryCluster.kill`.
    """

    kind = "memory"

    def __init__(self, cluster: MemoryCluster, identity: str, addr: int, first_port: int) -> None:
        self._cluster = cluster
        self._info = NodeInfo(addr, identity)
        self._addr = addr
        self._state = _NEW
        self._table = NameTable(addr)
        self._endpoints: dict[int, MemoryEndpoint] = {}
        self._subscriptions: list[MemorySubscription] = []
        self._next_port = first_port
        self._stats = _Counters()
        #: outgoing links by destination node address, own address = loopback.
        self._out: dict[int, Link] = {}
        self._gone: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ public surface

    @property
    def own_node(self) -> NodeInfo:
        """This node's 32-bit address and identity."""
        return self._info

    @property
    def max_message(self) -> int:
        """Largest datagram accepted (the cluster's setting, 66 000 by default)."""
        return self._cluster.max_message

    @property
    def cluster(self) -> MemoryCluster:
        """The cluster this node belongs to."""
        return self._cluster

    @property
    def is_open(self) -> bool:
        """True between :meth:`open` and close or crash."""
        return self._state == _OPEN

    @property
    def name_table(self) -> NameTable:
        """This node's name-table view (read it, do not mutate it)."""
        return self._table

    async def open(self) -> MemoryTransport:
        """Join the cluster: links come up to every reachable open node."""
        if self._state == _OPEN:
            return self
        if self._state == _CLOSED:
            raise ClosedError(f"memory node {self._info} is closed; create a new one with cluster.node()")
        self._cluster._join(self)
        self._state = _OPEN
        return self

    async def aclose(self) -> None:
        """Leave the cluster gracefully; returns once every peer has seen the node go."""
        if self._state == _NEW:
            self._state = _CLOSED
            self._cluster._forget(self)
            return
        if self._state == _OPEN:
            for ep in list(self._endpoints.values()):
                await ep.aclose()
            self._state = _CLOSED
            for sub in self._subscriptions:
                sub._finish()
            self._subscriptions.clear()
            self._gone = asyncio.get_running_loop().create_future()
            self._cluster._leave(self)
        if self._gone is not None and not self._gone.done():
            await asyncio.shield(self._gone)

    async def __aenter__(self) -> MemoryTransport:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def open_endpoint(self, handler: MessageHandler) -> MemoryEndpoint:
        """Open an endpoint whose deliveries and returned messages go to ``handler``."""
        self._check_open()
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}")
        port = self._alloc_port()
        ep = MemoryEndpoint(self, SocketAddr(self._addr, port), handler)
        self._endpoints[port] = ep
        return ep

    async def subscribe(
        self, target: ServiceRange | ServiceAddr, *, filter: SubFilter = SubFilter.PORTS
    ) -> MemorySubscription:
        """Subscribe to publications (or nodes: type 0, links: type 2) overlapping ``target``."""
        self._check_open()
        rng = _as_range(target)
        if filter not in (SubFilter.PORTS, SubFilter.SERVICE):
            raise AddressError(f"subscription filter must be SubFilter.PORTS or SubFilter.SERVICE, got {filter!r}")
        sub = MemorySubscription(rng, SubFilter(filter), self._unsubscribe)
        sub._start(self._table.subscribe(sub))
        self._subscriptions.append(sub)
        return sub

    def statistics(self) -> Mapping[str, int]:
        """Traffic counters plus gauges (endpoints, publications, subscriptions, links)."""
        stats = self._stats.as_dict()
        stats["endpoints"] = len(self._endpoints)
        stats["publications"] = len(self._table.publications_of(self._addr))
        stats["name_table_size"] = len(self._table)
        stats["subscriptions"] = len(self._subscriptions)
        stats["links"] = len(self._table.links)
        return stats

    def __repr__(self) -> str:
        state = ("new", "open", "closed")[self._state]
        return f"<MemoryTransport {self._info} {state}>"

    # ------------------------------------------------------------------ internals: local side

    def _check_open(self) -> None:
        if self._state != _OPEN:
            raise ClosedError(f"memory node {self._info} is not open")

    def _loop_or_none(self) -> asyncio.AbstractEventLoop | None:
        return self._cluster._loop

    def _alloc_port(self) -> int:
        # Like the kernel: start at a random port, then count up, skipping ports in use.
        port = self._next_port
        while port in self._endpoints or port == 0:
            port = port + 1 if port < U32_MAX else 1
        self._next_port = port + 1 if port < U32_MAX else 1
        return port

    def _endpoint_closed(self, ep: MemoryEndpoint) -> None:
        self._endpoints.pop(ep.address.port, None)

    def _unsubscribe(self, sub: MemorySubscription) -> None:
        self._table.unsubscribe(sub)
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    def _publish(self, r: ServiceRange, socket: SocketAddr, scope: Scope) -> None:
        self._table.insert(Publication(r, socket, scope))
        if scope is Scope.CLUSTER:
            self._distribute(_PUBLISH, (r, socket.port))

    def _withdraw(self, r: ServiceRange, socket: SocketAddr, scope: Scope) -> None:
        if self._table.remove(r, socket, scope) is not None and scope is Scope.CLUSTER:
            self._distribute(_WITHDRAW, (r, socket.port))

    def _distribute(self, op: int, item: object) -> None:
        own = self._addr
        for peer, link in self._out.items():
            if peer != own:
                link.send((DISTR, own, None, None, op, item))

    def _crash(self) -> None:
        """Abrupt death: everything local vanishes without telling anyone."""
        self._state = _CLOSED
        for ep in self._endpoints.values():
            ep._closed = True
            ep._bindings.clear()
        self._endpoints.clear()
        for sub in self._subscriptions:
            sub._finish()
        self._subscriptions.clear()
        self._table = NameTable(self._addr)

    # ------------------------------------------------------------------ internals: data path

    def _send(self, src: SocketAddr, dest: Destination, data: bytes) -> None:
        if data.__class__ is not bytes:
            if isinstance(data, (bytearray, memoryview)):
                data = bytes(data)  # the caller may reuse its buffer
            else:
                raise LocalProtocolError(f"data must be bytes-like, got {type(data).__name__}")
        size = len(data)
        if size > self._cluster.max_message:
            raise FrameTooLarge(f"{size}-byte message exceeds the {self._cluster.max_message}-byte limit")
        if isinstance(dest, ServiceAddr):
            publ = self._table.lookup_anycast(dest.type, dest.instance)
            if publ is None:
                raise ServiceUnreachable(f"no publication matches {dest}")
            link = self._out.get(publ.socket.node)
            if link is None:  # cannot happen while views and links agree; be explicit anyway
                raise ServiceUnreachable(f"node {publ.socket.node:08x} publishing {dest} is unreachable")
            link.send((NAMED, src, dest, data, publ.socket.port, 0))
        elif isinstance(dest, SocketAddr):
            link = self._out.get(dest.node)
            if link is None:  # the kernel's tipc_node_xmit: EHOSTUNREACH for an unknown node
                raise ServiceUnreachable(f"node {dest.node:08x} of {dest} is not reachable")
            link.send((DIRECT, src, dest, data, dest.port, 0))
        elif isinstance(dest, ServiceRange):
            nodes = self._table.mcast_nodes(dest)
            if not nodes:
                raise ServiceUnreachable(f"no publication overlaps {dest}")
            msg: Message = (MCAST, src, dest, data, 0, 0)
            out = self._out
            for node in nodes:
                link = out.get(node)
                if link is not None:
                    link.send(msg)
        else:
            raise AddressError(f"destination must be a ServiceAddr, ServiceRange or SocketAddr, got {dest!r}")
        stats = self._stats
        stats.messages_sent += 1
        stats.bytes_sent += size

    def _receive(self, msg: Message) -> None:
        """A message arrived over a link (called from the link pump)."""
        kind = msg[0]
        if self._state != _OPEN:
            if kind <= MCAST:
                self._cluster._bounce(msg, DeliveryFailure.NO_NODE)
            return
        if kind == NAMED or kind == DIRECT:
            ep = self._endpoints.get(msg[4])
            if ep is not None:
                data = msg[3]
                stats = self._stats
                stats.messages_received += 1
                stats.bytes_received += len(data)
                ep._deliver(Delivery(data, msg[1], msg[2]))
                return
            if kind == NAMED:
                if not msg[5]:
                    dest = msg[2]
                    # Second-chance lookup at the destination node (kernel msg_reroute_cnt).
                    publ = self._table.lookup_anycast(dest.type, dest.instance)
                    if publ is not None:
                        link = self._out.get(publ.socket.node)
                        if link is not None:
                            self._stats.messages_rerouted += 1
                            link.send((NAMED, msg[1], dest, msg[3], publ.socket.port, 1))
                            return
                self._reject(msg, DeliveryFailure.NO_NAME)
            else:
                self._reject(msg, DeliveryFailure.NO_PORT)
        elif kind == MCAST:
            src = msg[1]
            ports = self._table.mcast_ports(msg[2], cluster_scope_only=src.node != self._addr)
            delivered = 0
            for port in ports:
                ep = self._endpoints.get(port)
                if ep is not None:
                    delivered += 1
                    ep._deliver(Delivery(msg[3], src, msg[2]))
            if delivered:
                stats = self._stats
                stats.messages_received += delivered
                stats.bytes_received += delivered * len(msg[3])
            else:
                # The kernel drops multicast that finds no socket at the destination.
                self._stats.multicast_unmatched += 1
        elif kind == RETURNED:
            ep = self._endpoints.get(msg[4])
            if ep is None:
                self._stats.returns_dropped += 1
                return
            self._stats.messages_returned += 1
            ep._deliver(Returned(msg[3], msg[2], msg[5]))
        elif kind == DISTR:
            self._apply_distr(msg[1], msg[4], msg[5])
        elif kind == LEAVE:
            self._cluster._link_down(msg[1], self._addr)

    def _reject(self, msg: Message, reason: DeliveryFailure) -> None:
        """Send an undeliverable message back to its sender (``TIPC_ERRINFO``)."""
        self._stats.messages_rejected += 1
        src: SocketAddr = msg[1]
        back: Message = (RETURNED, src, msg[2], msg[3][:RETURNED_DATA_MAX], src.port, reason)
        link = self._out.get(src.node)
        if link is not None:
            link.send(back)
        else:
            self._cluster._bounce(msg, reason)

    def _apply_distr(self, origin: int, op: int, items: Any) -> None:
        table = self._table
        if op == _PUBLISH:
            r, port = items
            table.insert(Publication(r, SocketAddr(origin, port), Scope.CLUSTER))
        elif op == _WITHDRAW:
            r, port = items
            table.remove(r, SocketAddr(origin, port), Scope.CLUSTER)
        else:
            for r, port in items:
                table.insert(Publication(r, SocketAddr(origin, port), Scope.CLUSTER))

    def _bulk_items(self) -> list[tuple[ServiceRange, int]]:
        """This node's cluster-scope publications, for the bulk sent at link-up."""
        return [
            (p.range, p.socket.port) for p in self._table.publications_of(self._addr) if p.scope is Scope.CLUSTER
        ]

