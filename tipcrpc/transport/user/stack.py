"""The userspace node's I/O shell: the only place with sockets, timers and the event loop.

:class:`Stack` owns one pure :class:`~.node.Node` (links, discovery, fragmentation), the
:class:`~tipcrpc.nametable.table.NameTable`, the :class:`~.name_distr.NameDistributor`, the local ports
(endpoints), the topology server and the UDP bearer. It

* feeds received datagrams to ``node.receive`` and timer expiries to ``node.timeout``
  (one timer handle, re-armed to ``node.next_timeout()`` after every operation);
* turns the node's outputs into UDP sends, link events (bulk name distribution at link-up,
  ``{2, peer}`` link-state publications, purge at node-down, same-host liveness watches),
  and deliveries of data messages to ports;
* implements the socket layer of ``net/tipc/socket.c`` for connectionless messages: named
  (anycast, looked up locally as ``__tipc_sendmsg`` does), multicast (one copy per
  destination node, each local socket once) and direct messages; the destination node's
  reroute-once of a named message whose socket vanished (``tipc_msg_lookup_dest``); returned
  messages (``tipc_msg_reverse``) with ``NO_NAME``/``NO_PORT``. Messages a failing link had
  sent but not seen acknowledged are *not* returned: their fate is unknown (see
  :meth:`Stack._process`); the NodeDown/Withdrawn events report the loss.

Messages to the own node never touch the bearer; they are queued and delivered from the
event loop, never from inside :meth:`Stack.send`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from typing import Any, Iterable, Protocol, Union

from ...addr import LINK_STATE, NODE_STATE, Scope, ServiceAddr, ServiceRange, SocketAddr
from ...errors import AddressError, ClosedError, RemoteProtocolError, ServiceUnreachable
from ..base import RETURNED_DATA_MAX, Delivery, DeliveryFailure, Destination, Returned
from . import msg as M
from .liveness import Liveness
from .name_distr import NameDistributor
from ...nametable.table import NameTable
from ...nametable.topsrv import TopologyServer
from .node import DuplicateAddress, NoLink, Node, PeerDown, PeerUp
from .udp_media import Bearer

__all__ = ["Port", "Stack"]

log = logging.getLogger("tipcrpc.user")

_CLUSTER = int(Scope.CLUSTER)
_NODE = int(Scope.NODE)
_NAMED = M.TIPC_NAMED_MSG
_DIRECT = M.TIPC_DIRECT_MSG
_MCAST = M.TIPC_MCAST_MSG
#: Link id reported in ``{2, peer}`` publications: ``local_bearer | remote_bearer << 16``;
#: the userspace node has one bearer (id 0) and so do the peers it links with.
LINK_ID = 0
#: Packets of these users may create peers or move timers: the node's timer is re-armed.
_TIMER_USERS = frozenset((M.LINK_CONFIG, M.LINK_PROTOCOL))
_CACHE_MAX = 4096
_REROUTE_MEMORY = 1024

_FAILURES = {int(f): f for f in DeliveryFailure}


class Port(Protocol):
    """What the stack needs from a local endpoint."""

    def _deliver(self, item: Union[Delivery, Returned]) -> None: ...


class Stack:
    """One userspace TIPC node bound to an event loop (see the module docstring)."""

    def __init__(
        self,
        *,
        node_id: bytes,
        media: Bearer,
        netid: int,
        signature: int,
        tolerance_ms: int,
        window: int,
        mtu: int,
        liveness: bool,
    ) -> None:
        self.node_id = node_id
        self.media = media
        self.netid = netid
        self._signature = signature
        self._tolerance_ms = tolerance_ms
        self._window = window
        self._mtu = mtu
        self._use_liveness = liveness
        self.loop: asyncio.AbstractEventLoop | None = None
        self.node: Node | None = None
        self.own = 0
        self.table: NameTable | None = None
        self.distr: NameDistributor | None = None
        self.topsrv: TopologyServer | None = None
        self.liveness: Liveness | None = None
        self.ports: dict[int, Port] = {}
        self.up: dict[int, bytes] = {}  # peer addr -> identity, links up
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._local: deque[bytes] = deque()
        self._local_scheduled = False
        self._closed = False
        self._peer_up_waiters: list[asyncio.Future[None]] = []
        self._drain_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._src_cache: dict[tuple[int, int], SocketAddr] = {}
        self._name_cache: dict[tuple[int, int], ServiceAddr] = {}
        self._range_cache: dict[tuple[int, int, int], ServiceRange] = {}
        # (sender port, type, instance) -> sender node of named messages we rerouted to
        # another node: a return from there comes back to us (its prevnode) and must be
        # passed on to the original sender.
        self._rerouted: OrderedDict[tuple[int, int, int], int] = OrderedDict()
        self.stats: dict[str, int] = {
            "messages_sent": 0,
            "bytes_sent": 0,
            "messages_received": 0,
            "bytes_received": 0,
            "messages_returned": 0,
            "messages_rejected": 0,
            "messages_rerouted": 0,
            "multicast_unmatched": 0,
            "returns_dropped": 0,
            "messages_unacked_at_link_down": 0,
            "malformed_dropped": 0,
            "unsupported_dropped": 0,
            "peers_up_total": 0,
            "peers_lost_total": 0,
        }

    # ------------------------------------------------------------------------- lifecycle

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open the bearer, create the node, publish ``{0, own}``, start discovery."""
        self.loop = loop
        local = self.media.open(loop)
        now = loop.time()
        try:
            self.node = Node(
                node_id=self.node_id,
                media=local,
                netid=self.netid,
                signature=self._signature,
                tolerance_ms=self._tolerance_ms,
                window=self._window,
                mtu=self._mtu,
                now=now,
            )
        except BaseException:
            self.media.close()
            self._closed = True
            raise
        self.own = self.node.own_addr
        self.table = NameTable(self.own)
        self.distr = NameDistributor(self.table)
        self.topsrv = TopologyServer(self.table)
        # Every node publishes its own address cluster-wide (tipc_net_finalize): key = addr.
        self.distr.publish(NODE_STATE, self.own, self.own, _CLUSTER, 0, self.own, ())
        if self._use_liveness:
            self.liveness = Liveness(
                netid=self.netid, own_addr=self.own, node_id=self.node_id, on_peer_lost=self._on_peer_lost
            )
            self.liveness.open(loop)
        self._process(self.node.timeout(now))

    def stop(self) -> None:
        """Graceful: the caller has closed the ports already; send RESET, release everything."""
        if self._closed:
            return
        if self.node is not None and self.loop is not None:
            try:
                out = self.node.stop(self.loop.time())
            except Exception:  # never let a protocol bug keep sockets open
                log.exception("node.stop failed")
            else:
                self._send_packets(out.packets)
        self._teardown()

    def abort(self) -> None:
        """As if the process died: no RESET, no withdrawals; sockets just close."""
        if self._closed:
            return
        self._teardown()

    def _teardown(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.media.close()
        if self.liveness is not None:
            self.liveness.close()
        if self.topsrv is not None:
            self.topsrv.close()
        self._local.clear()
        for fut in self._peer_up_waiters:
            if not fut.done():
                fut.set_result(None)
        for _, fut in self._drain_waiters:
            if not fut.done():
                fut.set_result(None)
        self._drain_waiters.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------------- node I/O

    def _on_packet(self, data: bytes, src: tuple[str, int]) -> None:
        """UDP datagram callback (from :class:`UdpMedia`)."""
        node = self.node
        if node is None or self._closed:
            return
        try:
            out = node.receive(data, src, self.loop.time())  # type: ignore[union-attr]
        except RemoteProtocolError:
            self.stats["malformed_dropped"] += 1
            return
        if out.events or out.undelivered or (data[0] >> 1) & 0xF in _TIMER_USERS:
            self._process(out)
            return
        # Hot path (payload and name distribution): no peer events, and the node's timers
        # cannot have moved, so no re-arm.
        if out.packets:
            self._send_packets(out.packets)
        if out.delivered:
            dispatch = self._dispatch
            for peer, m in out.delivered:
                dispatch(peer, m)
        if self._drain_waiters:
            self._wake_drained()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closed or self.node is None:
            return
        self._process(self.node.timeout(self.loop.time()))  # type: ignore[union-attr]

    def _arm(self) -> None:
        at = self.node.next_timeout()  # type: ignore[union-attr]
        if at == self._timer_at and (at is None or self._timer is not None):
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at is not None and not self._closed:
            self._timer = self.loop.call_at(at, self._on_timer)  # type: ignore[union-attr]

    def _send_packets(self, packets: Iterable[tuple[tuple[str, int], bytes]]) -> None:
        send = self.media.send
        for dest, pkt in packets:
            send(dest, pkt)

    def _process(self, out: Any) -> None:
        """Act on one node Output: events, deliveries, returns, packets; re-arm the timer."""
        if self._closed:
            return
        # Packets first: they were produced before anything we do in reaction (a link's
        # first STATE must precede the bulk name distribution sent on PeerUp).
        if out.packets:
            self._send_packets(out.packets)
        if out.events:
            for ev in out.events:
                if isinstance(ev, PeerUp):
                    self._peer_up(ev)
                elif isinstance(ev, PeerDown):
                    self._peer_down(ev)
                elif isinstance(ev, DuplicateAddress):
                    log.warning(
                        "node %08x: duplicate address %08x (%r at %s): %s",
                        self.own, ev.addr, ev.identity, ev.media, ev.detail,
                    )
        if out.delivered:
            for peer, m in out.delivered:
                self._dispatch(peer, m)
        if out.undelivered:
            # Sent over a link that failed before acknowledging them: they may well have
            # been delivered (acks are delayed and piggy-backed), so returning them as
            # NO_NODE ("provably not delivered") would let callers re-send non-idempotent
            # requests that already ran. Like the kernel, drop them and count them; the
            # loss is signalled by the NodeDown/LinkDown/Withdrawn events that come with it.
            self.stats["messages_unacked_at_link_down"] += len(out.undelivered)
        unsent = getattr(out, "unsent", None)
        if unsent:
            # Messages a failing link never transmitted are provably undelivered: return
            # them (needs a Node that reports them separately).
            for _peer, m in unsent:
                self._undeliverable(m, DeliveryFailure.NO_NODE)
        if self._drain_waiters:
            self._wake_drained()
        self._arm()

    # ------------------------------------------------------------------------- backpressure

    def queued_packets(self) -> int:
        """Packets accepted by the links and not yet acknowledged (window + backlog)."""
        node = self.node
        queued = getattr(node, "queued", None)
        if queued is not None:
            return int(queued())
        # The pure Node has no accessor yet: read the links' queues (transmq + backlogq).
        total = 0
        for p in getattr(node, "_peers", {}).values():
            link = p.link
            if link is not None:
                total += len(link.transmq) + len(link.backlogq)
        return total

    async def wait_drained(self, high_water: int) -> None:
        """Return once at most ``high_water`` packets are queued in the links (or on close)."""
        if self._closed or self.queued_packets() <= high_water:
            return
        fut = self.loop.create_future()  # type: ignore[union-attr]
        self._drain_waiters.append((high_water, fut))
        await fut

    def _wake_drained(self) -> None:
        queued = self.queued_packets()
        keep = []
        for high, fut in self._drain_waiters:
            if fut.done():
                continue
            if queued <= high:
                fut.set_result(None)
            else:
                keep.append((high, fut))
        self._drain_waiters = keep

    def _xmit(self, peer: int, m: bytes) -> None:
        """Send one message to a peer node over its link (fragmented as needed).

        Raises :class:`~.node.NoLink` (a :class:`ServiceUnreachable`) without a working link.
        """
        out = self.node.send(peer, m, self.loop.time())  # type: ignore[union-attr]
        send = self.media.send
        for dest, pkt in out.packets:
            send(dest, pkt)
        if out.events or out.delivered or out.undelivered:
            # Never run handlers re-entrantly from inside a send(): finish the rest later.
            out.packets = []
            self.loop.call_soon(self._process, out)  # type: ignore[union-attr]
        # No re-arm: sending never moves the node's timers (they tick at fixed intervals).

    def _xmit_internal(self, peer: int, m: bytes) -> bool:
        """:meth:`_xmit` for traffic the node generates itself; ``False`` if no link."""
        try:
            self._xmit(peer, m)
        except NoLink:
            return False
        return True

    # ------------------------------------------------------------------------- peers

    def _peer_up(self, ev: PeerUp) -> None:
        peer = ev.addr
        self.up[peer] = ev.identity
        self.stats["peers_up_total"] += 1
        # Link-state publication (node scope, as tipc_node_write_unlock does): {2, peer}.
        self.table.insert(LINK_STATE, peer, peer, _NODE, peer, LINK_ID, LINK_ID)  # type: ignore[union-attr]
        for m in self.distr.node_up(peer, self._mtu):  # type: ignore[union-attr]
            self._xmit_internal(peer, m)
        if self.liveness is not None and _same_host(ev.media, self.media.local):
            self.liveness.watch(peer, ev.identity)
        if ev.media[1]:
            self.media.learn(ev.media)
        waiters, self._peer_up_waiters = self._peer_up_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _peer_down(self, ev: PeerDown) -> None:
        peer = ev.addr
        if self.up.pop(peer, None) is None:
            return
        self.stats["peers_lost_total"] += 1
        if self.liveness is not None:
            self.liveness.unwatch(peer)
        self.table.remove(LINK_STATE, peer, peer, peer, LINK_ID)  # type: ignore[union-attr]
        self.distr.node_down(peer)  # type: ignore[union-attr]

    def _on_peer_lost(self, peer: int) -> None:
        """Liveness: the peer's process is gone; reset the link now."""
        if self._closed or peer not in self.up:
            return
        out = self.node.reset_peer(peer, "peer process exited", self.loop.time())  # type: ignore[union-attr]
        self._process(out)

    async def wait_peer_up(self) -> None:
        """Resolve at the next link-up (or close)."""
        fut = self.loop.create_future()  # type: ignore[union-attr]
        self._peer_up_waiters.append(fut)
        await fut

    # ------------------------------------------------------------------------- names

    def publish(self, name: ServiceRange, scope: Scope, port: int, key: int) -> None:
        p, msgs = self.distr.publish(  # type: ignore[union-attr]
            name.type, name.lower, name.upper, int(scope), port, key, list(self.up)
        )
        for dest, m in msgs:
            self._xmit_internal(dest, m)

    def withdraw(self, name: ServiceRange, port: int, key: int) -> None:
        if self._closed:
            return
        _p, msgs = self.distr.withdraw(name.type, name.lower, name.upper, key, list(self.up))  # type: ignore[union-attr]
        for dest, m in msgs:
            self._xmit_internal(dest, m)

    # ------------------------------------------------------------------------- send

    def send(self, port: int, dest: Destination, data: bytes, importance: int) -> None:
        """Send a datagram from local ``port`` (see :meth:`Endpoint.send`)."""
        if self._closed:
            raise ClosedError("the transport is closed")
        own = self.own
        cls = dest.__class__
        if cls is ServiceAddr:
            found = self.table.lookup_anycast(dest.type, dest.instance, 0)  # type: ignore[union-attr]
            if found is None:
                raise ServiceUnreachable(f"no publication matches {dest}")
            node, dport = found
            m = M.named_msg(importance, own, port, node, dport, dest.type, dest.instance, data, _CLUSTER)
            if node == own:
                self._local_put(m)
            else:
                self._xmit(node, m)
        elif cls is SocketAddr:
            node = dest.node
            m = M.direct_msg(importance, own, port, node, dest.port, data)
            if node == own:
                self._local_put(m)
            elif node in self.up:
                self._xmit(node, m)
            else:  # tipc_node_xmit: EHOSTUNREACH for a node we have no link to
                raise ServiceUnreachable(f"node {node:08x} of {dest} is not reachable")
        elif cls is ServiceRange:
            t, lo, hi = dest.type, dest.lower, dest.upper
            nodes = self.table.lookup_mcast_nodes(t, lo, hi)  # type: ignore[union-attr]
            if not nodes:
                raise ServiceUnreachable(f"no publication overlaps {dest}")
            for node in nodes:
                m = M.mcast_msg(importance, own, port, t, lo, hi, data, _CLUSTER, dest_node=node)
                if node == own:
                    self._local_put(m)
                elif node in self.up:
                    self._xmit_internal(node, m)
        else:
            raise AddressError(f"destination must be a ServiceAddr, ServiceRange or SocketAddr, got {dest!r}")
        st = self.stats
        st["messages_sent"] += 1
        st["bytes_sent"] += len(data)

    def _local_put(self, m: bytes) -> None:
        self._local.append(m)
        if not self._local_scheduled:
            self._local_scheduled = True
            self.loop.call_soon(self._local_flush)  # type: ignore[union-attr]

    def _local_flush(self) -> None:
        self._local_scheduled = False
        q = self._local
        own = self.own
        # Only what is queued now: messages sent by handlers run here wait for the next round.
        for _ in range(len(q)):
            if self._closed:
                return
            self._dispatch(own, q.popleft())

    # ------------------------------------------------------------------------- receive

    def _dispatch(self, peer: int, m: bytes) -> None:
        """A complete message arrived from ``peer`` (or from this node)."""
        user = (m[0] >> 1) & 0xF if m else 255
        if user <= M.CRITICAL_IMPORTANCE:
            try:
                h = M.data_header(m)
            except RemoteProtocolError:
                self.stats["malformed_dropped"] += 1
                return
            self._data(h, m)
        elif user == M.NAME_DISTRIBUTOR:
            try:
                self.distr.receive(peer, m)  # type: ignore[union-attr]
            except RemoteProtocolError:
                self.stats["malformed_dropped"] += 1
        else:
            # CONN_MANAGER and others: connections are not implemented by this node.
            self.stats["unsupported_dropped"] += 1

    def _src(self, node: int, port: int) -> SocketAddr:
        key = (node, port)
        s = self._src_cache.get(key)
        if s is None:
            if len(self._src_cache) >= _CACHE_MAX:
                self._src_cache.clear()
            s = self._src_cache[key] = SocketAddr(node, port)
        return s

    def _name(self, type: int, instance: int) -> ServiceAddr:
        key = (type, instance)
        s = self._name_cache.get(key)
        if s is None:
            if len(self._name_cache) >= _CACHE_MAX:
                self._name_cache.clear()
            s = self._name_cache[key] = ServiceAddr(type, instance)
        return s

    def _range(self, type: int, lower: int, upper: int) -> ServiceRange:
        key = (type, lower, upper)
        s = self._range_cache.get(key)
        if s is None:
            if len(self._range_cache) >= _CACHE_MAX:
                self._range_cache.clear()
            s = self._range_cache[key] = ServiceRange(type, lower, upper)
        return s

    def _data(self, h: M.DataHeader, m: bytes) -> None:
        data = m[h.hsize : h.size]
        mtype = h.mtype
        if h.errcode:
            self._returned(h, data, m)
            return
        if mtype == _NAMED or mtype == _DIRECT:
            port = self.ports.get(h.dest_port)
            if port is not None:
                st = self.stats
                st["messages_received"] += 1
                st["bytes_received"] += len(data)
                dest: Destination = (
                    self._name(h.name_type, h.name_instance) if mtype == _NAMED else self._src(self.own, h.dest_port)
                )
                port._deliver(Delivery(data, self._src(h.orig_node, h.orig_port), dest))
                return
            if mtype == _NAMED and h.reroute_cnt == 0:
                if self._reroute(h, m):
                    return
                self._reject(m, M.TIPC_ERR_NO_NAME)
            else:
                self._reject(m, M.TIPC_ERR_NO_NAME if mtype == _NAMED else M.TIPC_ERR_NO_PORT)
        elif mtype == _MCAST:
            ports = self.table.lookup_mcast_sockets(  # type: ignore[union-attr]
                h.name_type, h.name_instance, h.name_upper, local_origin=h.orig_node == self.own
            )
            if not ports:
                self.stats["multicast_unmatched"] += 1  # the kernel drops it too
                return
            src = self._src(h.orig_node, h.orig_port)
            rng = self._range(h.name_type, h.name_instance, h.name_upper)
            n = 0
            for p in ports:
                ep = self.ports.get(p)
                if ep is not None:
                    ep._deliver(Delivery(data, src, rng))
                    n += 1
            st = self.stats
            st["messages_received"] += n
            st["bytes_received"] += n * len(data)
        else:
            self._reject(m, M.TIPC_ERR_NO_PORT)

    def _reroute(self, h: M.DataHeader, m: bytes) -> bool:
        """Second-chance anycast lookup at the destination node (``tipc_msg_lookup_dest``)."""
        domain = self.own if h.lookup_scope == _NODE else 0
        found = self.table.lookup_anycast(h.name_type, h.name_instance, domain)  # type: ignore[union-attr]
        if found is None or (found[0] == self.own and found[1] not in self.ports):
            return False
        node, dport = found
        hdr = M.Header.decode(m)
        hdr.reroute_cnt = h.reroute_cnt + 1
        hdr.destnode = node
        hdr.destport = dport
        if node != self.own:
            hdr.prevnode = self.own
        fwd = hdr.encode() + m[h.hsize : h.size]
        self.stats["messages_rerouted"] += 1
        if node == self.own:
            self._local_put(fwd)
            return True
        if h.orig_node != self.own:
            rr = self._rerouted
            rr[(h.orig_port, h.name_type, h.name_instance)] = h.orig_node
            if len(rr) > _REROUTE_MEMORY:
                rr.popitem(last=False)
        return self._xmit_internal(node, fwd)

    def _reject(self, m: bytes, err: int) -> None:
        """Return an undeliverable message to its sender (``tipc_msg_reverse``)."""
        try:
            back = M.rejected(m, err, self.own)
        except RemoteProtocolError:
            self.stats["malformed_dropped"] += 1
            return
        if back is None:  # dest_droppable, or already an error: the kernel drops it
            self.stats["returns_dropped"] += 1
            return
        self.stats["messages_rejected"] += 1
        dnode = int.from_bytes(back[28:32], "big")
        if dnode == self.own:
            self._local_put(back)
        elif not self._xmit_internal(dnode, back):
            self.stats["returns_dropped"] += 1

    def _returned(self, h: M.DataHeader, data: bytes, m: bytes) -> None:
        ep = self.ports.get(h.dest_port)
        if ep is None:
            sender = self._rerouted.pop((h.dest_port, h.name_type, h.name_instance), None)
            if h.mtype == _NAMED and sender is not None and sender != self.own:
                # The second chance failed too: hand the return on to the original sender.
                if self._xmit_internal(sender, m):
                    return
            self.stats["returns_dropped"] += 1
            return
        mtype = h.mtype
        dest: Destination
        if mtype == _NAMED:
            dest = self._name(h.name_type, h.name_instance)
        elif mtype == _MCAST:
            dest = self._range(h.name_type, h.name_instance, h.name_upper)
        else:
            dest = self._src(h.orig_node, h.orig_port)
        self.stats["messages_returned"] += 1
        ep._deliver(Returned(data, dest, _FAILURES.get(h.errcode, DeliveryFailure.NO_PORT)))

    def _undeliverable(self, m: bytes, reason: DeliveryFailure) -> None:
        """A message of ours the link could not deliver: return it to its port locally."""
        if not m or (m[0] >> 1) & 0xF > M.CRITICAL_IMPORTANCE:
            return  # name distribution and other internal traffic: nothing to report
        try:
            h = M.data_header(m)
        except RemoteProtocolError:
            return
        if h.errcode:
            return  # a return we were sending back: dropped, as the kernel would
        ep = self.ports.get(h.orig_port) if h.orig_node == self.own else None
        if ep is None:
            self.stats["returns_dropped"] += 1
            return
        data = m[h.hsize : h.size][:RETURNED_DATA_MAX]
        mtype = h.mtype
        dest: Destination
        if mtype == _NAMED:
            dest = self._name(h.name_type, h.name_instance)
        elif mtype == _MCAST:
            dest = self._range(h.name_type, h.name_instance, h.name_upper)
        else:
            dest = self._src(h.dest_node, h.dest_port)
        self.stats["messages_returned"] += 1
        ep._deliver(Returned(data, dest, reason))

    # ------------------------------------------------------------------------- inspection

    def statistics(self) -> dict[str, int]:
        out: dict[str, int] = dict(self.stats)
        out.update(self.media.stats)
        if self.distr is not None:
            out.update(self.distr.stats)
        if self.liveness is not None:
            out.update(self.liveness.stats)
        if self.node is not None:
            try:
                for k, v in dict(self.node.statistics()).items():
                    if isinstance(v, int):
                        out[f"node_{k}" if k in out else k] = v
            except Exception:  # statistics must never break the caller
                log.exception("node.statistics failed")
        out["peers_up"] = len(self.up)
        out["ports"] = len(self.ports)
        out["publications"] = len(self.table) if self.table is not None else 0
        return out


def _same_host(a: tuple[str, int], b: tuple[str, int]) -> bool:
    """Whether a peer's media address is on this host (loopback, or our own bearer IP)."""
    return a[0].startswith("127.") or a[0] == b[0]
