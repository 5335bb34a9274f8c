"""The userspace node's I/O shell: the only place with sockets, timers and the event loop.

:class:`Stack` owns one pure :class:`~.node.Node` (links, discovery, fragmentation), the
:class:`~tipcrpc.nametable.table.NameTable`, the :class:`~.name_distr.NameDistributor`, the
local ports (endpoints), the topology server and the UDP bearer. It

* feeds received datagrams to the node and timer expiries to ``node.timeout`` (one timer
  handle, re-armed to ``node.next_timeout()`` after every operation that can move it);
* turns the node's outputs into UDP sends, link events (bulk name distribution at link-up,
  ``{2, peer}`` link-state publications, purge at node-down, same-host liveness watches),
  and deliveries of data messages to ports (through the socket layer,
  :class:`~.socket_layer.SocketLayer`, which it holds as ``sockets``);
* wakes the endpoints waiting in ``drain`` once the links' queues shrink.

When a link fails, the messages it had accepted but not seen acknowledged are treated by
what is provably true of them (see :meth:`Stack._process`): the ones it had transmitted may
have been delivered, so they are dropped and counted (the NodeDown/Withdrawn events report
the loss, as the kernel does); the ones it never transmitted — still in its backlog — come
back to their sending socket as :class:`Returned` with ``NO_NODE``, so a caller may re-send
even a non-idempotent request elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Iterable, cast

from ...addr import LINK_STATE, NODE_STATE, Scope, ServiceRange
from ...fastpath import Timer
from ...logs import Throttle
from ...nametable.table import NameTable
from ...nametable.topsrv import TopologyServer
from ..base import DeliveryFailure
from . import msg as M
from .fast_path import FastPath
from .keepalive import DEFAULT_STALL_LIMIT, Keepalive
from .liveness import Liveness
from .name_distr import NameDistributor
from .node import DuplicateAddress, NoLink, Node, Output, PeerDown, PeerUp
from .socket_layer import Port, SocketLayer
from .udp_media import Bearer

__all__ = ["Port", "Stack"]

log = logging.getLogger("tipcrpc.user")
#: At most one log line per this many seconds about dropped malformed packets.
DROP_LOG_INTERVAL_S = 10.0

_CLUSTER = int(Scope.CLUSTER)
_NODE = int(Scope.NODE)
#: Link id reported in ``{2, peer}`` publications: ``local_bearer | remote_bearer << 16``;
#: the userspace node has one bearer (id 0) and so do the peers it links with.
LINK_ID = 0
#: Largest name-distribution message (~70 items). A full message goes out as soon as it is
#: staged, so a burst of publications streams to the peers in small packets. With 60 kB
#: loopback-MTU messages (3 000 items, a 3 MB window in flight) the peer lost the link in the
#: 100 000-name benchmark on a loaded host; at 1.5 kB it did not, and the per-packet cost
#: is noise next to the per-item cost (bench/results/scale.md).
NAMES_MTU = 1500
#: Packets of these users may create peers or move timers: the node's timer is re-armed.
_TIMER_USERS = frozenset((M.LINK_CONFIG, M.LINK_PROTOCOL))
#: A node timer this late (seconds) means the loop was blocked: read what waits in the
#: socket before the timer judges the peers' silence.
_LATE_TIMER = 0.1


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
        keepalive: bool = True,
        stall_limit: float | None = DEFAULT_STALL_LIMIT,
        bundling: bool = True,
    ) -> None:
        self.node_id = node_id
        self.media = media
        self.netid = netid
        self._signature = signature
        self._tolerance_ms = tolerance_ms
        self._window = window
        self._mtu = mtu
        self._use_liveness = liveness
        self._use_keepalive = keepalive
        self._stall_limit = stall_limit
        self.keepalive: Keepalive | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.node: Node | None = None
        self.own = 0
        self.table: NameTable | None = None
        self.distr: NameDistributor | None = None
        self.topsrv: TopologyServer | None = None
        self.liveness: Liveness | None = None
        #: Peers with an established link, by address: the node's own record (``Node.up``)
        #: once started — one record, read here, never kept twice.
        self.up: dict[int, Any] = {}
        self._timer: Timer | None = None
        self._timer_at: float | None = None
        self._closed = False
        self._rx_out: Output | None = Output()
        self._names_pending = False  # a flush_names is scheduled
        self._corked: list[Any] = []  # peers whose links gather messages to bundle
        self._names_mss = min(mtu, NAMES_MTU) - M.INT_H_SIZE
        self._names_per_msg = max(1, (self._names_mss - M.INT_H_SIZE) // M.DISTR_ITEM_SIZE)
        self._peer_up_waiters: list[asyncio.Future[None]] = []
        self._drain_waiters: list[tuple[int, asyncio.Future[None]]] = []
        # Malformed/unsupported packets are counted per packet (statistics()) and reported
        # from the timer, at most once per DROP_LOG_INTERVAL_S: a flood costs no log lines.
        self._drop_log = Throttle(DROP_LOG_INTERVAL_S)
        self._drops_logged = 0
        self._drops_check = 0.0
        # (messages and bytes sent/received are the socket layer's attributes: see there)
        self.stats: dict[str, int] = {
            "messages_returned": 0,
            "messages_rejected": 0,
            "messages_rerouted": 0,
            "multicast_unmatched": 0,
            "returns_dropped": 0,
            "messages_unacked_at_link_down": 0,
            "messages_unsent_at_link_down": 0,
            "malformed_dropped": 0,
            "unsupported_dropped": 0,
            "peers_up_total": 0,
            "peers_lost_total": 0,
        }
        #: The socket layer: local ports, sending to names/sockets, delivery and returns.
        self.sockets = SocketLayer(self, self.stats)
        #: The fused common case; its ``rcv`` is the bearer's packet callback.
        self.fast = FastPath(self, bundling=bundling)

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
        self.up = self.node.up
        self._send_parts = getattr(self.media, "send_parts", None) or self._join_and_send
        self.table = NameTable(self.own)
        self.distr = NameDistributor(self.table)
        self.topsrv = TopologyServer(self.table)
        self.sockets.start(own=self.own, table=self.table, distr=self.distr, loop=loop, up=self.up)
        self.fast.start()
        # Every node publishes its own address cluster-wide (tipc_net_finalize): key = addr.
        self.distr.publish(NODE_STATE, self.own, self.own, _CLUSTER, 0, self.own, ())
        if self._use_liveness:
            self.liveness = Liveness(
                netid=self.netid, own_addr=self.own, node_id=self.node_id, on_peer_lost=self._on_peer_lost
            )
            self.liveness.open(loop)
        if self._use_keepalive and getattr(self.media, "thread_safe_send", False):
            self.keepalive = Keepalive(
                name=f"tipcrpc-keepalive-{self.own:08x}",
                links=self.node.links_up,
                send=self.media.send,
                stall_limit=self._stall_limit,
            )
            self.keepalive.start()
        self._process(self.node.timeout(now))

    def stop(self) -> None:
        """Graceful: the caller has closed the ports already; send RESET, release everything."""
        if self._closed:
            return
        self.flush_names()  # the withdrawals of the closed ports
        self.flush_bundles()  # what was sent this turn goes out before the links reset
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
        self.fast.stop()
        if self.keepalive is not None:
            self.keepalive.stop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.media.close()
        if self.liveness is not None:
            self.liveness.close()
        if self.topsrv is not None:
            self.topsrv.close()
        self.sockets.close()
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
        """The general path of a received datagram (:attr:`fast` takes the common case)."""
        node = self.node
        if node is None or self._closed:
            return
        # One Output per stack, reused: nothing is allocated per packet unless a handler
        # re-enters (a test bearer delivering synchronously), which gets a fresh one.
        out = self._rx_out
        if out is None:
            out = Output()
        else:
            self._rx_out = None
        try:
            user = node.rcv(data, src, self.loop.time(), out)  # type: ignore[union-attr]
            if out.events or out.undelivered or out.unsent or user in _TIMER_USERS:
                self._process(out)
                return
            # Hot path (payload and name distribution): no peer events, and the node's
            # timers cannot have moved, so no re-arm.
            if out.packets:
                self._send_packets(out.packets)
            delivered = out.delivered
            if delivered:
                if len(delivered) == 1:
                    self.sockets.dispatch(*delivered[0])
                else:
                    dispatch = self.sockets.dispatch
                    for peer, m in delivered:
                        dispatch(peer, m)
            if self._drain_waiters:
                self._wake_drained()
        finally:
            out.clear()
            if self._rx_out is None:
                self._rx_out = out

    def _on_timer(self) -> None:
        due = self._timer_at
        self._timer = None
        self._timer_at = None
        if self._closed or self.node is None:
            return
        if due is not None and self.loop.time() - due > _LATE_TIMER:  # type: ignore[union-attr]
            # The loop was blocked: the peers' packets (their STATE messages) wait in the
            # socket. Process them first, or the silence counters would judge the peers by
            # our own stall (whatever order the event loop runs timers and I/O in).
            drain = getattr(self.media, "drain_pending", None)
            if drain is not None:
                drain()
            if self._closed:
                return
        now = self.loop.time()  # type: ignore[union-attr]
        self._process(self.node.timeout(now))
        self._log_drops(now)

    def _log_drops(self, now: float) -> None:
        node = self.node
        if node is None or now < self._drops_check:
            return
        self._drops_check = now + 1.0  # summing the counters costs: at most once a second
        dropped = node.statistics().get("malformed", 0) + self.stats["malformed_dropped"] + self.stats["unsupported_dropped"]
        if dropped > self._drops_logged and self._drop_log.allow(now) is not None:
            log.warning("node %08x: dropped %d malformed or unsupported packets (%d in all; see statistics())",
                        self.own, dropped - self._drops_logged, dropped)  # fmt: skip
            self._drops_logged = dropped

    def _arm(self) -> None:
        at = self.node.next_timeout()  # type: ignore[union-attr]
        if at == self._timer_at and (at is None or self._timer is not None):
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at is not None and not self._closed:
            self._timer = cast(Any, self.loop).call_at(at, self._on_timer)  # uvloop's handle: see fastpath.Timer

    def _send_packets(self, packets: Iterable[tuple[tuple[str, int], Any]]) -> None:
        """Put packets on the bearer: bytes, or ``(header, body)`` pairs from the link."""
        send = self.media.send
        for dest, pkt in packets:
            if pkt.__class__ is tuple:
                self._send_parts(dest, pkt[0], pkt[1])
            else:
                send(dest, pkt)

    def _cork(self, peer: Any) -> None:
        """``peer``'s link has started gathering messages to bundle (:mod:`.fast_path`):
        flush them at the end of this turn of the event loop."""
        corked = self._corked
        corked.append(peer)
        if len(corked) == 1:
            cast(Any, self.loop).call_soon(self.flush_bundles)  # see fastpath.Timer

    def flush_bundles(self) -> None:
        """Send the messages the links gathered to bundle (see :mod:`.fast_path`)."""
        corked = self._corked
        if not corked:
            return
        self._corked = []
        if self._closed:  # aborted: nothing more goes out
            return
        now = self.loop.time()  # type: ignore[union-attr]
        for p in corked:
            if p.link is not None and p.link.bundleq:  # (a link reset since has returned them)
                self.flush_peer(p, now)

    def flush_peer(self, p: Any, now: float) -> None:
        """Send what ``p``'s link gathered to bundle, now (a full batch, or the turn's end)."""
        xmitq: list[Any] = []
        p.link.flush_bundle(now, xmitq)
        self._send_packets([(p.media, pkt) for pkt in xmitq])

    def _join_and_send(self, dest: tuple[str, int], hdr: bytes | bytearray, body: bytes) -> None:
        """``send_parts`` for bearers without one (test bearers): join, then send."""
        hdr += body
        self.media.send(dest, bytes(hdr))

    def _process(self, out: Any) -> None:
        """Act on one node Output: events, deliveries, returns, packets; re-arm the timer."""
        if self._closed:
            return
        if self.keepalive is not None:
            self.keepalive.last_beat = time.monotonic()  # the loop runs: no keepalive needed
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
            dispatch = self.sockets.dispatch
            for peer, m in out.delivered:
                dispatch(peer, m)
        if out.undelivered:
            # Sent over a link that failed before acknowledging them: they may well have
            # been delivered (acks are delayed and piggy-backed), so returning them as
            # NO_NODE ("provably not delivered") would let callers re-send non-idempotent
            # requests that already ran. Like the kernel, drop them and count them; the
            # loss is signalled by the NodeDown/LinkDown/Withdrawn events that come with it.
            self.stats["messages_unacked_at_link_down"] += len(out.undelivered)
        if out.unsent:
            # Never transmitted by the failed link (still in its backlog): provably not
            # delivered, so the sender gets them back, like a message the kernel rejects
            # for a node that is gone (tipc_sk_rcv of a NO_NODE reject).
            self.stats["messages_unsent_at_link_down"] += len(out.unsent)
            for _peer, m in out.unsent:
                self.sockets.undeliverable(m, DeliveryFailure.NO_NODE)
        if self._drain_waiters:
            self._wake_drained()
        self._arm()

    # ------------------------------------------------------------------------- backpressure

    def queued_packets(self) -> int:
        """Packets accepted by the links and not yet acknowledged (window + backlog)."""
        return self.node.queued() if self.node is not None else 0

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
        No re-arm: sending never moves the node's timers (they tick at fixed intervals).
        """
        xmitq: list[Any] = []
        dest = self.node.xmit(peer, m, self.loop.time(), xmitq)  # type: ignore[union-attr]
        send = self.media.send
        for pkt in xmitq:
            if pkt.__class__ is tuple:  # a backlogged message with a body, let out now
                self._send_parts(dest, pkt[0], pkt[1])
            else:
                send(dest, pkt)

    def _xmit_parts(self, peer: int, hdr: bytes, body: bytes) -> None:
        """:meth:`_xmit` for a message given as header and body (the socket layer's sends).

        Raises :class:`~.node.NoLink` without a working link. The body is never copied
        unless the message must be fragmented.
        """
        xmitq: list[Any] = []
        dest = self.node.xmit_parts(peer, hdr, body, self.loop.time(), xmitq)  # type: ignore[union-attr]
        send_parts = self._send_parts
        for pkt in xmitq:
            if pkt.__class__ is tuple:
                send_parts(dest, pkt[0], pkt[1])
            else:
                self.media.send(dest, pkt)

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
        # Staged changes go out before the new peer's bulk snapshot, to the peers that were
        # up before (the node has already added the new one; the snapshot covers it).
        self.flush_names(exclude=peer)
        self.stats["peers_up_total"] += 1
        log.info("node %08x: link up to node %08x (id %s) at %s:%d", self.own, peer, ev.identity.hex(), *ev.media)
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
        peer = ev.addr  # the node has removed it from ``up`` already
        self.stats["peers_lost_total"] += 1
        log.info("node %08x: link down to node %08x: %s", self.own, peer, ev.reason)
        forget = getattr(self.media, "forget_peer", None)
        identity = self.node.identity_of(peer) if forget is not None else None  # type: ignore[union-attr]
        if identity is not None:  # cluster key: the peer may restart and count from 1 again
            forget(peer, identity)  # type: ignore[misc]
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

    # Name changes are applied to the local table at once and distributed at the end of the
    # event-loop turn (or before the next data message, which must not overtake them), so a
    # burst of publications travels in a few multi-item messages (see name_distr).

    def publish(self, name: ServiceRange, scope: Scope, port: int, key: int) -> None:
        self.distr.stage_publish(name.type, name.lower, name.upper, int(scope), port, key)  # type: ignore[union-attr]
        self._names_staged()

    def withdraw(self, name: ServiceRange, port: int, key: int) -> None:
        if self._closed:
            return
        self.distr.stage_withdraw(name.type, name.lower, name.upper, key)  # type: ignore[union-attr]
        self._names_staged()

    def _names_staged(self) -> None:
        staged = self.distr.staged  # type: ignore[union-attr]
        if staged >= self._names_per_msg:
            self.flush_names()  # a full message goes now: the peers start on it while we go on
        elif staged and not self._names_pending:
            self._names_pending = True
            cast(Any, self.loop).call_soon(self.flush_names)  # see fastpath.Timer

    def flush_names(self, exclude: int | None = None) -> None:
        """Send the staged name changes to every peer but ``exclude`` (a no-op when none are staged)."""
        self._names_pending = False
        if self._closed or self.distr is None or not self.distr.staged:
            return
        peers = [p for p in self.up if p != exclude]
        # Messages of at most NAMES_MTU: never fragmented, and small (see NAMES_MTU).
        for dest, m in self.distr.flush(peers, self._names_mss):
            self._xmit_internal(dest, m)

    # ------------------------------------------------------------------------- inspection

    def statistics(self) -> dict[str, int]:
        sk = self.sockets
        out: dict[str, int] = {
            "messages_sent": sk.messages_sent,
            "bytes_sent": sk.bytes_sent,
            "messages_received": sk.messages_received,
            "bytes_received": sk.bytes_received,
            **self.stats,
        }
        out.update(self.media.stats)
        if self.distr is not None:
            out.update(self.distr.stats)
        if self.liveness is not None:
            out.update(self.liveness.stats)
        if self.keepalive is not None:
            out.update(self.keepalive.stats)
        if self.node is not None:
            try:
                for k, v in dict(self.node.statistics()).items():
                    if isinstance(v, int):
                        out[f"node_{k}" if k in out else k] = v
            except Exception:  # statistics must never break the caller
                log.exception("node.statistics failed")
        out["peers_up"] = len(self.up)
        out["ports"] = len(self.sockets.ports)
        out["publications"] = len(self.table) if self.table is not None else 0
        return out


def _same_host(a: tuple[str, int], b: tuple[str, int]) -> bool:
    """Whether a peer's media address is on this host (loopback, or our own bearer IP)."""
    return a[0].startswith("127.") or a[0] == b[0]
