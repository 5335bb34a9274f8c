"""A node's peers and what discovery does with them (``net/tipc/node.c``), pure.

:class:`Peer` is ``struct tipc_node`` for one bearer. :class:`PeerDiscovery`, held by the
:class:`~.node.Node`, handles LINK_CONFIG messages: ``tipc_disc_rcv`` up to
``tipc_node_check_dest`` — peers appear, their links are created and started, restarts and
address changes are recognised, duplicate addresses are flagged, trial addresses refused.
The rest of the node (link reception, link up/down, timers, sending) is in :mod:`.node`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .discover import DiscoveryMsg, parse_discovery
from .link import Link
from .link_fsm import LINK_ESTABLISHING, LINK_RESET_EVT, SELF_DOWN_PEER_LEAVING
from .media import MediaAddr
from .msg import DSC_REQ_MSG, DSC_RESP_MSG, DSC_TRIAL_MSG
from .node_api import DuplicateAddress, Output

if TYPE_CHECKING:
    from .node import Node

__all__ = ["Peer", "PeerDiscovery", "NODE_CLEANUP_AFTER"]

NODE_CLEANUP_AFTER = 300.0  #: a peer down this long (s) is forgotten, as in the kernel
_INVALID_SIG = 0x10000


class Peer:
    """``struct tipc_node`` for one bearer."""

    __slots__ = ("addr", "identity", "caps", "signature", "state", "link", "media", "next_tick", "delete_at")

    def __init__(self, addr: int, identity: bytes, caps: int, now: float) -> None:
        self.addr = addr
        self.identity = identity
        self.caps = caps
        self.signature = _INVALID_SIG
        self.state = SELF_DOWN_PEER_LEAVING
        self.link: Link | None = None
        self.media: MediaAddr | None = None
        self.next_tick: float | None = None
        self.delete_at = now + NODE_CLEANUP_AFTER


def _mix(*values: int) -> int:
    """A small integer hash (splitmix-style) for link session numbers; no ``random``."""
    x = 0x9E3779B9
    for v in values:
        x = (x ^ (v & 0xFFFFFFFF)) * 0x85EBCA6B & 0xFFFFFFFF
        x ^= x >> 13
        x = x * 0xC2B2AE35 & 0xFFFFFFFF
        x ^= x >> 16
    return x


class PeerDiscovery:
    """Discovery reception and peer admission for one :class:`~.node.Node`, which holds it.

    Reads the node's configuration and peer table and calls back into it for what belongs
    to the node (taking a link down, emitting packets, the link timer interval), as
    ``tipc_disc_rcv`` calls into ``node.c``.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self._links_created = 0

    # -- discovery ---------------------------------------------------------------------------

    def rcv(self, packet: bytes, src: MediaAddr, now: float, out: Output) -> None:
        """``tipc_disc_rcv`` up to ``tipc_node_check_dest``."""
        self.node._stats["disc_received"] += 1
        d = parse_discovery(packet)
        if d.media_is_multicast:
            self.node._stats["malformed"] += 1  # "Rcv corrupt discovery message"
            return
        media = d.media if d.media[0] not in ("0.0.0.0", "::") else src
        if media == self.node.media and d.node_id == self.node.node_id:
            return  # our own request, looped back
        if d.netid != self.node.netid:
            self.node._stats["netid_mismatch"] += 1
            return
        if d.mtype == DSC_TRIAL_MSG:
            sugg = self._try_addr(d.node_id, d.addr)
            if sugg:
                out.packets.append((media, self.node._disc.trial_fail(d.addr, sugg)))
            return
        if d.mtype not in (DSC_REQ_MSG, DSC_RESP_MSG) or not d.addr:
            return  # TRIAL_FAIL (we never trial) or nonsense
        if d.addr == self.node.own_addr:
            detail = "another node uses our address" if d.node_id != self.node.node_id else "another process uses our identity"
            self._dupl(out, d.addr, d.node_id, media, detail)
            return
        if d.dest_domain not in (0, self.node.own_addr):
            return
        respond, start = self._check_dest(d, media, now, out)
        if respond and d.mtype == DSC_REQ_MSG:
            out.packets.append((media, self.node._disc.response(d.addr)))
        if start is not None:
            # After the response: a kernel learns of us only from our discovery message
            # and drops link messages from a node it does not know yet.
            xmitq: list[bytes] = []
            start.build_start_msgs(xmitq)
            self.node._emit(self.node._peers[d.addr], xmitq, out)

    def _dupl(self, out: Output, addr: int, ident: bytes, media: MediaAddr, detail: str) -> None:
        self.node._stats["duplicate_addr"] += 1
        out.events.append(DuplicateAddress(addr, ident, media, detail))

    def _try_addr(self, ident: bytes, addr: int) -> int:
        """``tipc_node_try_addr``: a free address to suggest if ``addr`` is taken, else 0."""
        p = self.node._peers.get(addr)
        taken = addr == self.node.own_addr or (p is not None and p.identity != ident)
        if not taken:
            return 0
        sugg = (addr ^ _mix(self.node._signature, addr)) or 1
        while sugg == self.node.own_addr or sugg in self.node._peers or not sugg:
            sugg = (sugg + 1) & 0xFFFFFFFF
        return sugg

    def _check_dest(self, d: DiscoveryMsg, media: MediaAddr, now: float, out: Output) -> tuple[bool, Link | None]:
        """``tipc_node_check_dest``: create/refresh the peer.

        Returns whether to respond, and the link to start at once (a new link, or one reset
        here), which the caller does after responding.
        """
        p = self.node._peers.get(d.addr)
        if p is None:
            p = self.node._peers[d.addr] = Peer(d.addr, d.node_id, d.capabilities, now)
        elif p.identity != d.node_id:
            if p.link is not None and p.link.is_up:
                self._dupl(out, d.addr, d.node_id, media, f"address also used by {p.identity!r}")
                return False, None
            p.identity = d.node_id  # the old owner is gone; the address changes hands
            p.signature = _INVALID_SIG
        if p.caps != d.capabilities:
            p.caps = d.capabilities
            if p.link is not None:
                p.link.peer_caps = d.capabilities
        link = p.link
        link_up = link is not None and link.is_up
        link_is_reset = link is not None and link.is_reset
        addr_match = link is not None and p.media == media
        sign_match = d.signature == p.signature
        respond = accept_addr = reset = False
        if sign_match and addr_match:
            respond = not link_up  # all fine / the link will come up in due time
        elif sign_match and not addr_match:
            if link_up:  # same signature, other media while up: clone or moved peer
                self._dupl(out, d.addr, d.node_id, media, f"signature seen at {p.media} and {media}")
            else:
                accept_addr = respond = reset = True
        elif addr_match:  # peer rebooted (new signature) at the same address
            p.signature = d.signature
            respond = not link_up
        elif link_up:  # new signature at another address while the link is up
            self._dupl(out, d.addr, d.node_id, media, f"peer at {p.media} also announced from {media}")
        else:  # new peer, or rebooted with a new address
            p.signature = d.signature
            accept_addr = respond = reset = True
        if not accept_addr:
            return respond, None
        if link is None:
            link = self._create_link(p, now)
            link_is_reset = True
        p.media = media
        if reset and not link_is_reset:
            self.node._node_link_down(p, "peer changed its media address", now, out)
        if link.state != LINK_ESTABLISHING and not link.in_session:
            return respond, link  # start at once instead of at the next tick
        return respond, None

    def _create_link(self, p: Peer, now: float) -> Link:
        self._links_created += 1
        link = Link(
            own_addr=self.node.own_addr,
            peer_addr=p.addr,
            session=_mix(self.node._signature, p.addr, self._links_created) & 0xFFFF,
            mtu=self.node.mtu,
            tolerance_ms=self.node.tolerance_ms,
            window=self.node.window,
            peer_caps=p.caps,
            if_name=self.node.if_name,
        )
        link.reset()
        link.fsm(LINK_RESET_EVT)
        p.link = link
        p.next_tick = now + self.node._keepalive(link)
        return link

