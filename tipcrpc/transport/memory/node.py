"""One node of a :class:`~tipcrpc.transport.memory.MemoryCluster`: the memory Transport.

A :class:`MemoryTransport` is a TIPC node living in this process. It keeps its own name
table view (:mod:`tipcrpc.nametable`); cluster-scope publications reach other nodes only through
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
from typing import TYPE_CHECKING, Any, Mapping

from ...addr import (
    LINK_STATE,
    NODE_STATE,
    RESERVED_TYPES,
    Importance,
    NodeInfo,
    Scope,
    ServiceAddr,
    ServiceRange,
    SocketAddr,
)
from ...errors import AddressError, ClosedError, ServiceUnreachable
from ...events import SubFilter
from ...nametable.endpoint import IMPORTANCES, EndpointBase, alloc_port, check_payload
from ...nametable.table import NameTable, Publication
from ...nametable.topsrv import TopologyServer, TopologySubscription
from ..base import RETURNED_DATA_MAX, Delivery, DeliveryFailure, Destination, MessageHandler, Returned
from .link import DIRECT, DISTR, LEAVE, MCAST, NAMED, RETURNED, Link, Message

if TYPE_CHECKING:
    from .cluster import MemoryCluster

__all__ = ["MemoryTransport", "MemoryEndpoint", "MemorySubscription", "NameTableView"]

#: Topology subscriptions of a :class:`MemoryTransport` (the shared implementation).
MemorySubscription = TopologySubscription

# Name-distribution operations carried in DISTR messages; items are the kernel's
# ``distr_item`` fields ``(type, lower, upper, port, key)``.
_PUBLISH, _WITHDRAW, _BULK = 0, 1, 2
_CLUSTER = int(Scope.CLUSTER)
_NODE = int(Scope.NODE)
#: Link id of the ``{2, peer}`` link-state publication: one bearer, ``0 | 0 << 16``.
LINK_ID = 0

_NEW, _OPEN, _CLOSED = 0, 1, 2

DistrItem = tuple[int, int, int, int, int]


class NameTableView:
    """A read-only view of one memory node's name table, user publications apart.

    Node membership and links are publications of types 0 and 2 in the shared
    :class:`~tipcrpc.nametable.table.NameTable`; this view lists them separately.
    """

    __slots__ = ("table",)

    def __init__(self, table: NameTable) -> None:
        #: The underlying table (read it, do not mutate it).
        self.table = table

    @property
    def nodes(self) -> list[int]:
        """Nodes up in this view (own node included), in order of coming up."""
        return [p.lower for p in self.table.of_type(NODE_STATE)]

    @property
    def links(self) -> dict[int, int]:
        """Working links: peer node -> link id."""
        return {p.lower: p.port for p in self.table.of_type(LINK_STATE)}

    def publications_of(self, node: int) -> list[Publication]:
        """The user publications of ``node`` in this view, by type then age."""
        return [p for p in self.table.publications(node) if p.type >= RESERVED_TYPES]

    def __len__(self) -> int:
        return sum(1 for p in self.table.publications() if p.type >= RESERVED_TYPES)


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


class MemoryEndpoint(EndpointBase):
    """A reliable-datagram socket of a :class:`MemoryTransport` (see :class:`~tipcrpc.transport.base.Endpoint`)."""

    __slots__ = ("_node",)

    def __init__(self, node: MemoryTransport, address: SocketAddr, handler: MessageHandler) -> None:
        super().__init__(address, handler)
        self._node = node

    def send(self, dest: Destination, data: bytes, *, importance: Importance = Importance.LOW) -> None:
        """Queue ``data`` for ``dest`` (anycast, multicast or direct); see the contract."""
        if self._closed:
            raise ClosedError(f"endpoint {self._address} is closed")
        limit = self._node._cluster.max_message
        if data.__class__ is not bytes or importance not in IMPORTANCES or not 0 < len(data) <= limit:
            data = check_payload(data, limit, importance)
        self._node._send(self._address, dest, data)

    async def drain(self) -> None:
        """Memory links have no send buffer limit; this only yields to the event loop."""
        self._check_open()
        await asyncio.sleep(0)

    async def aclose(self) -> None:
        """Withdraw every publication and close; idempotent.

        Messages still on their way to this endpoint are rerouted (anycast, once) or
        returned to their senders, like the kernel's ``tipc_sk_release``.
        """
        if self._release():
            self._node._endpoint_closed(self)

    def _bind(self, r: ServiceRange, scope: Scope, key: int) -> None:
        self._node._publish(r, self._address.port, scope, key)

    def _unbind(self, r: ServiceRange, key: int) -> None:
        self._node._withdraw(r, self._address.port, key)

    def _report(self, context: dict[str, Any]) -> None:
        loop = self._node._loop_or_none()
        if loop is not None:
            loop.call_exception_handler(context)


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
        self._topsrv = TopologyServer(self._table)
        self._endpoints: dict[int, MemoryEndpoint] = {}
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
    def name_table(self) -> NameTableView:
        """This node's name-table view (read only)."""
        return NameTableView(self._table)

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
            self._topsrv.close()
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
        port, self._next_port = alloc_port(self._next_port, self._endpoints)
        ep = MemoryEndpoint(self, SocketAddr(self._addr, port), handler)
        self._endpoints[port] = ep
        return ep

    async def subscribe(
        self, target: ServiceRange | ServiceAddr, *, filter: SubFilter = SubFilter.PORTS
    ) -> TopologySubscription:
        """Subscribe to publications (or nodes: type 0, links: type 2) overlapping ``target``."""
        self._check_open()
        return self._topsrv.subscribe(target, filter)

    def statistics(self) -> Mapping[str, int]:
        """Traffic counters plus gauges (endpoints, publications, subscriptions, links)."""
        stats = self._stats.as_dict()
        stats["endpoints"] = len(self._endpoints)
        view = NameTableView(self._table)
        stats["publications"] = len(view.publications_of(self._addr))
        stats["name_table_size"] = len(view)
        stats["subscriptions"] = len(self._topsrv)
        stats["links"] = len(view.links)
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

    def _endpoint_closed(self, ep: MemoryEndpoint) -> None:
        self._endpoints.pop(ep.address.port, None)

    def _publish(self, r: ServiceRange, port: int, scope: Scope, key: int) -> None:
        t, lo, hi = r.type, r.lower, r.upper
        self._table.insert(t, lo, hi, scope, self._addr, port, key)
        if scope is Scope.CLUSTER:
            self._distribute(_PUBLISH, (t, lo, hi, port, key))

    def _withdraw(self, r: ServiceRange, port: int, key: int) -> None:
        t, lo, hi = r.type, r.lower, r.upper
        p = self._table.remove(t, lo, hi, self._addr, key)
        if p is not None and p.scope == _CLUSTER:
            self._distribute(_WITHDRAW, (t, lo, hi, port, key))

    def _distribute(self, op: int, item: object) -> None:
        own = self._addr
        for peer, link in self._out.items():
            if peer != own:
                link.send((DISTR, own, None, None, op, item))

    def _crash(self) -> None:
        """Abrupt death: everything local vanishes without telling anyone."""
        self._state = _CLOSED
        for ep in self._endpoints.values():
            ep._vanish()
        self._endpoints.clear()
        self._topsrv.close()
        self._table = NameTable(self._addr)

    # ------------------------------------------------------------------ internals: data path

    def _send(self, src: SocketAddr, dest: Destination, data: bytes) -> None:
        """Route one checked payload (see :meth:`MemoryEndpoint.send`)."""
        if isinstance(dest, ServiceAddr):
            found = self._table.lookup_anycast(dest.type, dest.instance)
            if found is None:
                raise ServiceUnreachable(f"no publication matches {dest}")
            link = self._out.get(found[0])
            if link is None:  # cannot happen while views and links agree; be explicit anyway
                raise ServiceUnreachable(f"node {found[0]:08x} publishing {dest} is unreachable")
            link.send((NAMED, src, dest, data, found[1], 0))
        elif isinstance(dest, SocketAddr):
            link = self._out.get(dest.node)
            if link is None:  # the kernel's tipc_node_xmit: EHOSTUNREACH for an unknown node
                raise ServiceUnreachable(f"node {dest.node:08x} of {dest} is not reachable")
            link.send((DIRECT, src, dest, data, dest.port, 0))
        elif isinstance(dest, ServiceRange):
            nodes = self._table.lookup_mcast_nodes(dest.type, dest.lower, dest.upper)
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
        stats.bytes_sent += len(data)

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
                    found = self._table.lookup_anycast(dest.type, dest.instance)
                    if found is not None:
                        link = self._out.get(found[0])
                        if link is not None:
                            self._stats.messages_rerouted += 1
                            link.send((NAMED, msg[1], dest, msg[3], found[1], 1))
                            return
                self._reject(msg, DeliveryFailure.NO_NAME)
            else:
                self._reject(msg, DeliveryFailure.NO_PORT)
        elif kind == MCAST:
            src = msg[1]
            rng = msg[2]
            ports = self._table.lookup_mcast_sockets(
                rng.type, rng.lower, rng.upper, local_origin=src.node == self._addr
            )
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
            t, lo, hi, port, key = items
            table.insert(t, lo, hi, _CLUSTER, origin, port, key)
        elif op == _WITHDRAW:
            t, lo, hi, port, key = items
            table.remove(t, lo, hi, origin, key)
        else:
            for t, lo, hi, port, key in items:
                table.insert(t, lo, hi, _CLUSTER, origin, port, key)

    def _bulk_items(self) -> list[DistrItem]:
        """This node's cluster-scope publications, for the bulk sent at link-up."""
        return [
            (p.type, p.lower, p.upper, p.port, p.key)
            for p in self._table.publications(self._addr)
            if p.scope == _CLUSTER and p.type >= RESERVED_TYPES
        ]

    # ------------------------------------------------------------------ internals: membership

    def _node_up(self, node: int) -> None:
        """``node`` joined this view: every node publishes ``{0, addr}`` cluster-wide."""
        self._table.insert(NODE_STATE, node, node, _CLUSTER, node, 0, node)

    def _link_up(self, peer: int) -> None:
        """A link to ``peer`` came up: the node-scope ``{2, peer}`` publication, then ``{0, peer}``."""
        self._table.insert(LINK_STATE, peer, peer, _NODE, peer, LINK_ID, LINK_ID)
        self._node_up(peer)

    def _link_down(self, peer: int) -> None:
        """The link to ``peer`` is gone: its publications, then the link, then the node."""
        table = self._table
        for p in table.publications(peer):
            if p.scope == _CLUSTER and p.type != NODE_STATE:
                table.remove(p.type, p.lower, p.upper, peer, p.key)
        table.remove(LINK_STATE, peer, peer, peer, LINK_ID)
        table.remove(NODE_STATE, peer, peer, peer, peer)
