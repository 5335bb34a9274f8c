"""A userspace TIPC node: peers, their links and discovery (``net/tipc/node.c``), pure.

:class:`Node` is what the I/O shell (``stack``) drives. It never touches a socket or a
clock: the shell passes each received UDP datagram to :meth:`Node.receive`, calls
:meth:`Node.timeout` at :meth:`Node.next_timeout`, hands messages to :meth:`Node.send`, and
performs the returned :class:`Output` — packets to put on the UDP bearer, messages
delivered in order from peers, peer up/down events, and the messages accepted for a peer
whose link went down before acknowledging them (``undelivered``: transmitted, fate unknown;
``unsent``: never transmitted, so provably not delivered).

One bearer, one link per peer. The node FSM gates reception while a peer is coming up or
going down exactly as the kernel's ``tipc_node_check_state`` does for a single link.
Discovery reception and peer admission are :class:`~.node_peers.PeerDiscovery`, which the
node holds.

The per-packet calls have lean variants for the shell: :meth:`Node.rcv` fills an
:class:`Output` the shell reuses, :meth:`Node.xmit` takes messages the shell built itself
(no re-validation) and appends packets to a list; an in-sequence payload packet on an
established link takes a fast path through :meth:`.link.Link.rcv` with the same effects.

Deviations from the kernel, all deliberate:

* A new link sends RESET at once, and a link that a peer's RESET moves to ESTABLISHING
  answers ACTIVATE at once, instead of waiting for the next node timer (375 ms). Extra
  RESET/ACTIVATE messages are legal protocol traffic; this only shortens link set-up.
* The link stamps ``prevnode`` and ``destnode`` of every message it sends (the kernel's
  replicast does the latter for name-distributor messages), so callers may leave them 0.
* Link-level failover, the broadcast link, the monitor and crypto are not implemented
  (see :mod:`.link`); broadcast-link packets (``non_seq`` and not LINK_CONFIG) are counted
  and dropped.
"""

from __future__ import annotations

import struct
from typing import Any

from ...addr import node_addr_from_id
from ...errors import LocalProtocolError, ProtocolError
from .discover import ADVERTISED_CAPABILITIES, Discoverer
from .fragment import fragment
from .link import TIPC_MAX_IF_NAME, Link
from .link_fsm import (
    LINK_ESTABLISH_EVT,
    LINK_ESTABLISHED,
    LINK_ESTABLISHING,
    LINK_SYNCHING,
    LINK_RESET_EVT,
    LINK_STATE_NAMES,
    NODE_STATE_NAMES,
    PEER_ESTABL_CONTACT_EVT,
    PEER_LOST_CONTACT_EVT,
    SELF_DOWN_PEER_LEAVING,
    SELF_ESTABL_CONTACT_EVT,
    SELF_LEAVING_PEER_DOWN,
    SELF_LOST_CONTACT_EVT,
    SELF_UP_PEER_COMING,
    SELF_UP_PEER_UP,
    TIPC_LINK_DOWN_EVT,
    TIPC_LINK_UP_EVT,
    node_fsm,
)
from .media import MediaAddr
from .msg import (
    BASIC_H_SIZE,
    CRITICAL_IMPORTANCE,
    INT_H_SIZE,
    LINK_CONFIG,
    LINK_PROTOCOL,
    MAX_MSG_SIZE,
    NODE_ID_LEN,
    SHORT_H_SIZE,
    STATE_MSG,
    TUNNEL_PROTOCOL,
    Header,
    validate,
)
from .header import link_rx_words, msg_hdr_sz
from .node_api import (
    BROADCAST,
    DuplicateAddress,
    NodeEvent,
    NoLink,
    Output,
    PeerDown,
    PeerInfo,
    PeerUp,
)
from .node_peers import NODE_CLEANUP_AFTER, Peer, PeerDiscovery

__all__ = [
    "MediaAddr",
    "BROADCAST",
    "PeerUp",
    "PeerDown",
    "DuplicateAddress",
    "NodeEvent",
    "Output",
    "PeerInfo",
    "NoLink",
    "Node",
    "NODE_CLEANUP_AFTER",
]

_W3 = struct.Struct(">I")
_PREV_DEST = struct.Struct(">I8xI12xI")  # words 0, 3 (prevnode) and 7 (destnode)
_LINK_UP = LINK_ESTABLISHED | LINK_SYNCHING


class Node:
    """One userspace TIPC node on one UDP bearer.

    ``node_id`` (up to 16 bytes, zero-padded) is the node identity; the node address is
    its ``hash128to32``. ``media`` is the UDP address we advertise in discovery: kernel
    peers send link traffic there. ``signature`` is a random 16-bit value (fresh per
    process start, so peers can tell a restart). ``mtu`` is the largest UDP payload we
    accept; the link uses the smaller of ours and the peer's. ``capabilities`` defaults to
    :data:`~.discover.ADVERTISED_CAPABILITIES`.
    """

    def __init__(
        self,
        *,
        node_id: bytes,
        media: MediaAddr,
        netid: int = 4711,
        signature: int,
        tolerance_ms: int = 1500,
        window: int = 50,
        mtu: int = 1400,
        now: float,
        capabilities: int = ADVERTISED_CAPABILITIES,
        if_name: str = "tipcrpc",
    ) -> None:
        if not node_id or len(node_id) > NODE_ID_LEN:
            raise LocalProtocolError(f"node id must be 1..{NODE_ID_LEN} bytes, got {len(node_id)}")
        if not 1 <= netid <= 9999:
            raise LocalProtocolError(f"netid must be 1..9999, got {netid}")
        if not 50 <= tolerance_ms <= 30000:
            raise LocalProtocolError(f"tolerance_ms must be 50..30000, got {tolerance_ms}")
        if not 16 <= window <= 8191:
            raise LocalProtocolError(f"window must be 16..8191, got {window}")
        if not 200 <= mtu <= 0xFFFF * 4:
            raise LocalProtocolError(f"mtu must be at least 200 bytes, got {mtu}")
        self.node_id: bytes = node_id.ljust(NODE_ID_LEN, b"\0")
        self.own_addr: int = node_addr_from_id(self.node_id)
        if not self.own_addr:
            raise LocalProtocolError("node id hashes to address 0; choose another identity")
        self.media = media
        self.netid = netid
        self.tolerance_ms = tolerance_ms
        self.window = window
        self.mtu = mtu & ~3  # max_pkt travels divided by 4
        self.capabilities = capabilities
        self.if_name = if_name.encode()[: TIPC_MAX_IF_NAME - 1]
        self._signature = signature & 0xFFFF
        self._disc = Discoverer(
            own_addr=self.own_addr, node_id=self.node_id, media=media, netid=netid,
            signature=self._signature, capabilities=capabilities, now=now,
        )
        self._peers: dict[int, Peer] = {}
        #: Peers whose link is established (``node_is_up``), by address: the one record of
        #: which peers are up, read by the shell (sending, name distribution).
        self.up: dict[int, Peer] = {}
        self._discovery = PeerDiscovery(self)
        self._stopped = False
        self._stats: dict[str, int] = dict.fromkeys(_NODE_STAT_KEYS, 0)
        #: Packets received (``statistics()["rx_packets"]``): an attribute, not a ``_stats``
        #: key, because the stack's fast path counts every packet too and an attribute
        #: costs half as much to increment.
        self.rx_packets = 0

    # -- public API --------------------------------------------------------------------------

    def receive(self, packet: bytes, src: MediaAddr, now: float) -> Output:
        """Process one UDP datagram from ``src``. Never raises for bad input: it counts and drops."""
        out = Output()
        self.rcv(packet, src, now, out)
        return out

    def rcv(self, packet: bytes, src: MediaAddr, now: float, out: Output) -> int:
        """:meth:`receive` into a caller's :class:`Output` (the shell reuses one per node).

        Validates like ``tipc_msg_validate``. Returns the packet's user (``msg_user``), or
        -1 if it was dropped as malformed or the node is stopped: only LINK_CONFIG and
        LINK_PROTOCOL packets can move the node's timers, so the shell re-arms only for those.
        """
        st = self._stats
        self.rx_packets += 1
        f = link_rx_words(packet)
        if f is None:
            st["malformed"] += 1
            return -1
        user, non_seq, w2, w3, w7 = f
        if self._stopped:
            return -1
        try:
            if non_seq:
                if user == LINK_CONFIG:
                    self._discovery.rcv(packet, src, now, out)
                else:
                    st["bcast_dropped"] += 1
                return user
            if w7 != self.own_addr and w7 != -1:  # -1: a short header, which has no destnode
                st["malformed" if w7 == -2 else "not_for_us"] += 1
                return -1
            if user <= CRITICAL_IMPORTANCE:
                # Fast path: the next payload packet of an established link (tipc_rcv's
                # common case) — peer lookup, link fast path, delivery; nothing else.
                p = self.up.get(w3)
                if p is not None and p.state == SELF_UP_PEER_UP:
                    sent = p.link.rcv_in_seq(w2, now)  # type: ignore[union-attr]
                    if sent is not None:
                        out.delivered.append((w3, packet))
                        if sent:
                            self._emit(p, sent, out)
                        return user
            self._link_rcv(packet, user, w3, now, out)
        except ProtocolError:
            st["malformed"] += 1
            return -1
        return user

    def send(self, peer: int, msg: bytes, now: float) -> Output:
        """Send one complete TIPC message (header included) reliably and in order to ``peer``.

        Fragments it if it exceeds the link's packet limit. Raises :class:`NoLink` if there
        is no established link to ``peer`` and :class:`LocalProtocolError` if ``msg`` is not
        a well-formed TIPC message.
        """
        p = self._peers.get(peer)
        if p is None or p.link is None or not p.link.is_up or self._stopped:
            raise NoLink(f"no working link to node {peer:08x}")
        self._check_outgoing(msg)
        out = Output()
        xmitq: list[Any] = []
        media = self.xmit(peer, msg, now, xmitq)
        out.packets.extend((media, x) for x in xmitq)
        return out

    def xmit(self, peer: int, msg: bytes, now: float, xmitq: list[Any]) -> MediaAddr:
        """``tipc_node_xmit`` for a well-formed message: what :meth:`send` does, minus the checks.

        For the shell's own messages (built by :mod:`.msg`, so well-formed by construction):
        stamps prevnode/destnode if needed, fragments if needed, queues the packets on the
        link and appends the ones to send now to ``xmitq``. Returns the peer's media address
        to send them to. Raises :class:`NoLink` without an established link.
        """
        p = self._peers.get(peer)
        link = p.link if p is not None else None
        if link is None or not link.state & _LINK_UP:
            raise NoLink(f"no working link to node {peer:08x}")
        if len(msg) >= BASIC_H_SIZE:
            w0, prev, dest = _PREV_DEST.unpack_from(msg, 0)
            if prev != self.own_addr or (dest != peer and msg_hdr_sz(w0) > SHORT_H_SIZE):
                msg = self._stamp_nodes(msg, msg_hdr_sz(w0), peer)
        else:
            msg = self._stamp_nodes(msg, SHORT_H_SIZE, peer)
        mss = link.mtu - INT_H_SIZE
        if len(msg) <= mss:
            link.xmit_one(msg, b"", now, xmitq)
        else:
            link.xmit(fragment(msg, mss), msg, now, xmitq)
        return p.media  # type: ignore[union-attr,return-value]

    def xmit_parts(self, peer: int, hdr: bytes, body: bytes, now: float, xmitq: list[Any]) -> MediaAddr:
        """:meth:`xmit` for a message given as header and body, the body never copied.

        ``hdr`` must already carry this node as prevnode/orignode and ``peer`` as destnode
        (the socket layer's builders do), so nothing is stamped. A message that fits one
        packet goes to ``xmitq`` as ``(stamped header, body)`` (see
        :meth:`.link.Link.xmit_one`); a larger one is fragmented (which copies it).
        """
        p = self.up.get(peer)
        if p is None or not p.link.state & _LINK_UP:  # type: ignore[union-attr]
            raise NoLink(f"no working link to node {peer:08x}")
        link = p.link
        mss = link.mtu - INT_H_SIZE  # type: ignore[union-attr]
        if len(hdr) + len(body) <= mss:
            link.xmit_one(hdr, body, now, xmitq)  # type: ignore[union-attr]
        else:
            msg = hdr + body
            link.xmit(fragment(msg, mss), msg, now, xmitq)  # type: ignore[union-attr]
        return p.media  # type: ignore[return-value]

    def timeout(self, now: float) -> Output:
        """Run the discovery timer and every peer's node timer that is due."""
        out = Output()
        if self._stopped:
            return out
        for pkt in self._disc.timeout(now):
            out.packets.append((BROADCAST, pkt))
            self._stats["disc_sent"] += 1
        for p in list(self._peers.values()):
            if p.next_tick is not None and now >= p.next_tick:
                self._node_timeout(p, now, out)
            elif p.link is None and now >= p.delete_at:
                del self._peers[p.addr]  # a rejected announcement never got a link
        return out

    def next_timeout(self) -> float | None:
        """Absolute time of the next timer, or None once stopped."""
        if self._stopped:
            return None
        t = self._disc.next_due
        for p in self._peers.values():
            if p.next_tick is not None and p.next_tick < t:
                t = p.next_tick
        return t

    def identity_of(self, peer: int) -> bytes | None:
        """The node identity of a known peer (up or recently down), else None."""
        p = self._peers.get(peer)
        return p.identity if p is not None else None

    def links_up(self) -> list[tuple[MediaAddr, Link]]:
        """``(media address, link)`` of every established link (read by the keepalive thread)."""
        return [(p.media, p.link) for p in list(self._peers.values())
                if p.link is not None and p.link.state & _LINK_UP and p.media is not None]  # fmt: skip

    def peers(self) -> dict[int, PeerInfo]:
        """Every known peer by address: identity, media, link state and counters."""
        res: dict[int, PeerInfo] = {}
        for a, p in self._peers.items():
            link = p.link
            res[a] = PeerInfo(
                addr=a,
                identity=p.identity,
                media=p.media,
                up=bool(link and link.is_up),
                link_state=LINK_STATE_NAMES.get(link.state, hex(link.state)) if link else "NONE",
                node_state=NODE_STATE_NAMES.get(p.state, hex(p.state)),
                mtu=link.mtu if link else 0,
                tolerance_ms=link.tolerance_ms if link else self.tolerance_ms,
                capabilities=p.caps,
                counters=dict(link.stats) if link else {},
            )
        return res

    def reset_peer(self, peer: int, reason: str, now: float) -> Output:
        """Declare ``peer`` down at once (its link goes RESET, PeerDown, unacknowledged reported)."""
        out = Output()
        p = self._peers.get(peer)
        if p is None or p.link is None or self._stopped:
            return out
        p.link.failure_reason = reason
        self._node_link_down(p, reason, now, out)
        return out

    def stop(self, now: float) -> Output:
        """Leave the bearer: RESET (peer stopping) to every peer with a working link."""
        out = Output()
        if self._stopped:
            return out
        for p in list(self._peers.values()):
            if p.link is not None:
                self._node_link_down(p, "local node stopped", now, out)
        self._peers.clear()
        self.up.clear()
        self._stopped = True
        return out

    def queued(self) -> int:
        """Packets accepted for peers and not yet acknowledged: send windows plus backlogs."""
        n = 0
        for p in self._peers.values():
            link = p.link
            if link is not None:
                n += link.queued()
        return n

    def statistics(self) -> dict[str, int]:
        """Node counters plus link counters summed over all peers."""
        s = {"rx_packets": self.rx_packets, **self._stats}
        s["peers"] = len(self._peers)
        s["peers_up"] = sum(1 for p in self._peers.values() if p.link is not None and p.link.is_up)
        for p in self._peers.values():
            if p.link is not None:
                for k, v in p.link.stats.items():
                    s[k] = max(s.get(k, 0), v) if k == "max_queue_sz" else s.get(k, 0) + v
        return s

    # -- sending helpers ---------------------------------------------------------------------

    @staticmethod
    def _check_outgoing(msg: bytes) -> tuple[int, int, int]:
        try:
            user, hsize, size = validate(msg)
        except ProtocolError as e:
            raise LocalProtocolError(f"not a TIPC message: {e}") from None
        if size != len(msg):
            raise LocalProtocolError(f"message is {len(msg)} bytes but its header says {size}")
        if size > MAX_MSG_SIZE:
            raise LocalProtocolError(f"message of {size} bytes exceeds {MAX_MSG_SIZE}")
        if user in (LINK_CONFIG, LINK_PROTOCOL):
            raise LocalProtocolError(f"user {user} messages belong to the link layer")
        return user, hsize, size

    def _stamp_nodes(self, msg: bytes, hsize: int, peer: int) -> bytes:
        """Set prevnode (we are the previous hop) and destnode (the peer) if they differ."""
        prev = _W3.unpack_from(msg, 12)[0]
        dest = _W3.unpack_from(msg, 28)[0] if hsize > SHORT_H_SIZE else peer
        if prev == self.own_addr and dest == peer:
            return msg
        buf = bytearray(msg)
        _W3.pack_into(buf, 12, self.own_addr)
        if hsize > SHORT_H_SIZE:
            _W3.pack_into(buf, 28, peer)
        return bytes(buf)

    def _emit(self, p: Peer, xmitq: list[Any], out: Output) -> None:
        if xmitq and p.media is not None:
            out.packets.extend((p.media, x) for x in xmitq)

    # -- reception ---------------------------------------------------------------------------

    def _link_rcv(self, packet: bytes, user: int, prev: int, now: float, out: Output) -> None:
        """``tipc_rcv`` for sequenced (link) packets from node ``prev``, addressed to us."""
        p = self._peers.get(prev)
        link = p.link if p is not None else None
        if link is None:
            self._stats["unknown_peer"] += 1
            return
        xmitq: list[Any] = []
        delivered: list[bytes] = []
        before = link.state
        rc = 0
        if p.state == SELF_UP_PEER_UP and user != TUNNEL_PROTOCOL:  # type: ignore[union-attr]
            rc = link.rcv(packet, now, xmitq, delivered)
        elif link.unaddressed_activate and user == LINK_PROTOCOL and link.accept_peer_up(Header.decode(packet)):
            if p.state == SELF_DOWN_PEER_LEAVING:  # type: ignore[union-attr]
                self._node_fsm(p, PEER_LOST_CONTACT_EVT)  # type: ignore[arg-type]  # it has just come up
            rc = TIPC_LINK_UP_EVT
        elif self._check_state(p, packet, user):  # type: ignore[arg-type]
            rc = link.rcv(packet, now, xmitq, delivered)
        if link.state == LINK_ESTABLISHING and before != LINK_ESTABLISHING and not rc & TIPC_LINK_UP_EVT:
            link.build_reset_msg(xmitq)  # answer ACTIVATE now rather than at the next tick
        if xmitq:
            self._emit(p, xmitq, out)  # type: ignore[arg-type]
        if delivered:
            addr = p.addr  # type: ignore[union-attr]
            if len(delivered) == 1:
                out.delivered.append((addr, delivered[0]))
            else:
                out.delivered.extend((addr, m) for m in delivered)
        if rc:
            if rc & TIPC_LINK_UP_EVT:
                self._node_link_up(p, now, out)  # type: ignore[arg-type]
            if rc & TIPC_LINK_DOWN_EVT:
                self._node_link_down(p, link.failure_reason or "link failure", now, out)  # type: ignore[arg-type]

    def _check_state(self, p: Peer, packet: bytes, user: int) -> bool:
        """``tipc_node_check_state`` for a node with a single link."""
        link = p.link
        assert link is not None
        h = Header.decode(packet)
        if not link.validate_msg(h):
            link.stats["proto_invalid"] += 1
            return False
        peer_link_up = user != LINK_PROTOCOL or h.mtype == STATE_MSG
        if p.state == SELF_UP_PEER_COMING:
            if not link.is_up or not peer_link_up:
                return True
            self._node_fsm(p, PEER_ESTABL_CONTACT_EVT)
        if p.state == SELF_DOWN_PEER_LEAVING:
            if peer_link_up or h.redundant_link:  # msg_peer_node_is_up
                return False
            self._node_fsm(p, PEER_LOST_CONTACT_EVT)
            return True
        if p.state == SELF_LEAVING_PEER_DOWN:
            return False
        return True

    def _node_fsm(self, p: Peer, evt: int) -> None:
        p.state, legal = node_fsm(p.state, evt)
        if not legal:
            self._stats["illegal_node_evt"] += 1

    def _node_link_up(self, p: Peer, now: float, out: Output) -> None:
        """``__tipc_node_link_up``: the link is ESTABLISHED; the peer node is up."""
        link = p.link
        assert link is not None
        if link.is_up:
            return
        link.fsm(LINK_ESTABLISH_EVT)
        if not link.is_up:
            return
        xmitq: list[Any] = []
        link.build_state_msg(xmitq)  # a STATE message goes first
        self.up[p.addr] = p
        self._node_fsm(p, SELF_ESTABL_CONTACT_EVT)
        link.build_bc_init_msg(now, xmitq)
        self._disc.add_dest()
        self._emit(p, xmitq, out)
        self._stats["links_up"] += 1
        assert p.media is not None
        out.events.append(PeerUp(p.addr, p.identity, p.media))

    def _node_link_down(self, p: Peer, reason: str, now: float, out: Output) -> None:
        """``tipc_node_link_down``: reset the link, tell the peer, return what was not acked."""
        link = p.link
        assert link is not None
        xmitq: list[Any] = []
        if link.is_establishing:
            unacked, unsent = link.reset()  # defuse a pending link-up
            link.fsm(LINK_RESET_EVT)
        elif link.is_reset:
            return
        else:
            if link.peer_is_down:
                self._node_fsm(p, PEER_LOST_CONTACT_EVT)
            self._node_fsm(p, SELF_LOST_CONTACT_EVT)
            link.fsm(LINK_RESET_EVT)
            unacked, unsent = link.reset()
            link.build_reset_msg(xmitq)
        self._emit(p, xmitq, out)
        if unacked:
            out.undelivered.extend((p.addr, m) for m in unacked)
        if unsent:
            out.unsent.extend((p.addr, m) for m in unsent)
        if self.up.pop(p.addr, None) is not None:
            p.delete_at = now + NODE_CLEANUP_AFTER
            self._disc.remove_dest(now)
            self._stats["links_down"] += 1
            out.events.append(PeerDown(p.addr, reason))

    # -- timers ------------------------------------------------------------------------------

    def _keepalive(self, link: Link) -> float:
        """``tipc_node_calculate_timer``: interval min(tolerance/4, 500 ms); sets the abort limit."""
        tol = link.tolerance_ms
        intv = min(tol // 4, 500)
        link.set_abort_limit(tol // intv)
        return intv / 1000

    def _node_timeout(self, p: Peer, now: float, out: Output) -> None:
        """``tipc_node_timeout``."""
        link = p.link
        if link is None:
            p.next_tick = None
            return
        if p.addr not in self.up and now >= p.delete_at:
            del self._peers[p.addr]
            self._stats["peers_forgotten"] += 1
            return
        intv = self._keepalive(link)
        xmitq: list[Any] = []
        rc = link.timeout(now, xmitq)
        self._emit(p, xmitq, out)
        if rc & TIPC_LINK_DOWN_EVT:
            self._node_link_down(p, link.failure_reason or "link failure", now, out)
        p.next_tick = now + intv


_NODE_STAT_KEYS = (
    "malformed",
    "not_for_us",
    "unknown_peer",
    "bcast_dropped",
    "netid_mismatch",
    "disc_sent",
    "disc_received",
    "duplicate_addr",
    "links_up",
    "links_down",
    "peers_forgotten",
    "illegal_node_evt",
)
