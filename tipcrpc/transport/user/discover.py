"""Neighbour discovery: LINK_CONFIG messages (``net/tipc/discover.c``), pure.

Every node periodically sends a *request* to all nodes on the bearer (UDP multicast group
or each replicast peer); a node that receives one from a node it may link to answers with
a *response* sent straight to the requester's media address. Both are 76 bytes: a 60-byte
header (netid, node signature, capabilities, media address, peer-net hash) followed by the
16-byte node identity.

:class:`Discoverer` owns the request and its timer: 125 ms at start, doubling up to 1 s
while the node has no links, and up to 60 s once it has some (``tipc_disc_timeout``). What
to do with a received request (create the peer, respond, detect duplicates) is the node's
business (``tipc_node_check_dest``); :func:`parse_discovery` only decodes.

Capabilities we advertise (:data:`ADVERTISED_CAPABILITIES`), and why only these:

* ``TIPC_NODE_ID128`` — we send the 128-bit identity after the header (the node id *is*
  how a peer names us).
* ``TIPC_LINK_PROTO_SEQNO`` — our STATE messages carry their own sequence number and we
  drop stale ones, as :mod:`.link` implements.
* ``TIPC_BCAST_SYNCH`` — we send the BCAST_PROTOCOL init message at link-up, so a kernel
  peer synchronises its broadcast receive state from it rather than from RESET/ACTIVATE.

* ``TIPC_BCAST_RCAST`` — we receive multicast replicated over the unicast links. A kernel
  sends multicast over its broadcast link unless *every* node in the cluster has this bit
  (``tipc_bcbase_select_primary``), so without it multicast from kernel nodes with a
  multicast UDP bearer would never reach us. (With a replicast UDP bearer the kernel has no
  broadcast medium and replicates regardless.)

Not advertised: ``TIPC_NAMED_BCAST`` (so kernel peers send us name updates over the
unicast link instead of the broadcast link we do not receive),
``TIPC_BCAST_STATE_NACK`` / ``TIPC_MCAST_RBCTL`` (no broadcast link), ``TIPC_GAP_ACK_BLOCK``
(plain NACKs only), ``TIPC_TUNNEL_ENHANCED`` (no failover), and the socket-level
``TIPC_SYN_BIT`` / ``TIPC_BLOCK_FLOWCTL`` / ``TIPC_NAGLE`` (connection features the
userspace socket layer would have to implement first; the node accepts a wider set via
its ``capabilities`` argument when it does).

Peer-net hash (word 13): the kernel mixes secrets of its own network namespaces into it to
recognise peers living in the same kernel; we cannot compute it and send 0, which a kernel
never mistakes for a local namespace (it also compares the node identity).

Address trial: a kernel node without a fixed address spends 1 s sending DSC_TRIAL
messages. Our address is fixed by our identity (``hash128to32``), so we do not trial; we
do answer other nodes' trials with DSC_TRIAL_FAIL when their address is taken, and report
duplicates of our own address to the node (see ``node.DuplicateAddress``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import LocalProtocolError, RemoteProtocolError
from .media import MEDIA_INFO_SIZE, MediaAddr, decode_media_addr, encode_media_addr
from .msg import (
    DSC_REQ_MSG,
    DSC_RESP_MSG,
    DSC_TRIAL_FAIL_MSG,
    LINK_CONFIG,
    LINK_CONFIG_H_SIZE,
    NODE_ID_LEN,
    TIPC_BCAST_RCAST,
    TIPC_BCAST_SYNCH,
    TIPC_LINK_PROTO_SEQNO,
    TIPC_NODE_ID128,
    Header,
    validate,
)

__all__ = [
    "ADVERTISED_CAPABILITIES",
    "DISC_INIT",
    "DISC_FAST",
    "DISC_SLOW",
    "DiscoveryMsg",
    "build_discovery",
    "parse_discovery",
    "Discoverer",
]

ADVERTISED_CAPABILITIES = TIPC_BCAST_SYNCH | TIPC_NODE_ID128 | TIPC_LINK_PROTO_SEQNO | TIPC_BCAST_RCAST
DISC_INIT = 0.125  #: first request interval (s)
DISC_FAST = 1.0  #: interval cap while the node has no links
DISC_SLOW = 60.0  #: interval cap once it has links

_MEDIA_START = 20  # word 5
_DISC_SIZE = LINK_CONFIG_H_SIZE + NODE_ID_LEN


@dataclass(frozen=True, slots=True)
class DiscoveryMsg:
    """A decoded LINK_CONFIG message.

    ``signature`` is the 16-bit value as carried on the wire (its top bit is shared with
    capability bit 0, as in the kernel, so compare signatures only with each other).
    """

    mtype: int
    addr: int  #: the sender's node address (``prevnode``)
    node_id: bytes  #: 16 bytes
    signature: int
    capabilities: int
    netid: int
    media: MediaAddr
    media_is_multicast: bool
    dest_domain: int
    sugg_addr: int
    peer_net_hash: int


def build_discovery(
    mtype: int,
    *,
    own_addr: int,
    node_id: bytes,
    signature: int,
    capabilities: int,
    netid: int,
    media: MediaAddr,
    dest_domain: int = 0,
    sugg_addr: int = 0,
    peer_net_hash: int = 0,
) -> bytes:
    """A 76-byte LINK_CONFIG message as ``tipc_disc_init_msg`` builds it."""
    if len(node_id) != NODE_ID_LEN:
        raise LocalProtocolError(f"node id must be {NODE_ID_LEN} bytes, got {len(node_id)}")
    h = Header(LINK_CONFIG, mtype, LINK_CONFIG_H_SIZE, own_node=own_addr, dest_node=0)
    h.non_seq = 1
    h.node_sig = signature
    h.capabilities = capabilities  # after node_sig: bit 15 is capability bit 0
    h.dest_domain = dest_domain
    h.bc_netid = netid
    info = encode_media_addr(media)
    for i in range(MEDIA_INFO_SIZE // 4):
        h.w[5 + i] = int.from_bytes(info[4 * i : 4 * i + 4], "big")
    h.peer_net_hash = peer_net_hash
    h.sugg_node_addr = sugg_addr
    return h.build(node_id)


def parse_discovery(packet: bytes) -> DiscoveryMsg:
    """Decode a LINK_CONFIG message (``tipc_disc_rcv`` up to the policy checks).

    Raises :class:`RemoteProtocolError` for anything malformed: wrong user, short header,
    missing node id, or a media area that is not a UDP address.
    """
    user, hsize, size = validate(packet)
    if user != LINK_CONFIG:
        raise RemoteProtocolError(f"not a discovery message (user {user})")
    if hsize != LINK_CONFIG_H_SIZE:
        raise RemoteProtocolError(f"discovery header is {hsize} bytes, expected {LINK_CONFIG_H_SIZE}")
    h = Header.decode(packet)
    caps = h.capabilities
    if caps & TIPC_NODE_ID128:
        if size < _DISC_SIZE:
            raise RemoteProtocolError(f"discovery message of {size} bytes lacks the 16-byte node id")
        node_id = bytes(packet[hsize : hsize + NODE_ID_LEN])
    else:
        # Pre-4.17 peers: the kernel names them by their address in hex.
        node_id = f"{h.prevnode:x}".encode().ljust(NODE_ID_LEN, b"\0")
    media, mcast = decode_media_addr(packet[_MEDIA_START : _MEDIA_START + MEDIA_INFO_SIZE])
    return DiscoveryMsg(
        mtype=h.mtype,
        addr=h.prevnode,
        node_id=node_id,
        signature=h.node_sig,
        capabilities=caps,
        netid=h.bc_netid,
        media=media,
        media_is_multicast=mcast,
        dest_domain=h.dest_domain,
        sugg_addr=h.sugg_node_addr,
        peer_net_hash=h.peer_net_hash,
    )


class Discoverer:
    """Periodic discovery requests for one bearer (``struct tipc_discoverer``)."""

    def __init__(
        self,
        *,
        own_addr: int,
        node_id: bytes,
        media: MediaAddr,
        netid: int,
        signature: int,
        capabilities: int,
        now: float,
    ) -> None:
        self.own_addr = own_addr
        self.node_id = node_id
        self.media = media
        self.netid = netid
        self.signature = signature
        self.capabilities = capabilities
        self.num_nodes = 0
        self.interval = DISC_INIT
        self.next_due = now  # the kernel sends the first request when the bearer comes up
        self.sent = 0
        self._request = self._build(DSC_REQ_MSG)

    def _build(self, mtype: int, dest: int = 0, sugg: int = 0) -> bytes:
        return build_discovery(
            mtype,
            own_addr=self.own_addr,
            node_id=self.node_id,
            signature=self.signature,
            capabilities=self.capabilities,
            netid=self.netid,
            media=self.media,
            dest_domain=dest,
            sugg_addr=sugg,
        )

    @property
    def wire_signature(self) -> int:
        """Our signature as peers see it (bit 15 replaced by capability bit 0)."""
        return (self.signature & 0x7FFF) | ((self.capabilities & 1) << 15)

    def timeout(self, now: float) -> list[bytes]:
        """Requests due at ``now`` (0 or 1), with the next one scheduled."""
        if now < self.next_due:
            return []
        if self.sent:
            self.interval *= 2
            cap = DISC_SLOW if self.num_nodes else DISC_FAST
            self.interval = min(self.interval, cap)
        self.next_due = now + self.interval
        self.sent += 1
        return [self._request]

    def response(self, dest_addr: int) -> bytes:
        """A DSC_RESP_MSG for the node ``dest_addr``."""
        return self._build(DSC_RESP_MSG, dest_addr)

    def trial_fail(self, dest_addr: int, sugg_addr: int) -> bytes:
        """A DSC_TRIAL_FAIL_MSG telling a trialling node its address is taken."""
        return self._build(DSC_TRIAL_FAIL_MSG, dest_addr, sugg_addr)

    def add_dest(self) -> None:
        """A link came up (``tipc_disc_add_dest``)."""
        self.num_nodes += 1

    def remove_dest(self, now: float) -> None:
        """A link went down: with no links left, go back to fast discovery."""
        self.num_nodes = max(0, self.num_nodes - 1)
        if not self.num_nodes and self.interval > DISC_FAST:
            self.interval = DISC_INIT
            self.next_due = now + DISC_INIT
