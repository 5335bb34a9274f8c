"""TIPCv2 generic-netlink vocabulary: commands, attribute classes (from
``include/uapi/linux/tipc_netlink.h``), typed results and pure argument helpers.

Used by :mod:`.netlink`, which holds the sockets and operations.
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import os
import socket
import struct
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from pyroute2.netlink import genlmsg, nla

from ...addr import TIPC_UDP_PORT
from ...errors import AddressError, KernelError

__all__ = [
    "TIPC_GENL_NAME",
    "TIPC_GENL_VERSION",
    "UDP_PORT",
    "TipcNetlinkError",
    "NetInfo",
    "BearerInfo",
    "LinkInfo",
    "NodeState",
    "MediaInfo",
    "NamePublication",
    "tipc_msg",
    "parse_address",
    "udp_multicast_for",
]

TIPC_GENL_NAME = "TIPCv2"
TIPC_GENL_VERSION = 1
UDP_PORT = TIPC_UDP_PORT  #: IANA port of the UDP bearer
NETLINK_GENERIC = 16

# commands (enum in tipc_netlink.h)
(
    CMD_UNSPEC, CMD_LEGACY, CMD_BEARER_DISABLE, CMD_BEARER_ENABLE, CMD_BEARER_GET, CMD_BEARER_SET,
    CMD_SOCK_GET, CMD_PUBL_GET, CMD_LINK_GET, CMD_LINK_SET, CMD_LINK_RESET_STATS, CMD_MEDIA_GET,
    CMD_MEDIA_SET, CMD_NODE_GET, CMD_NET_GET, CMD_NET_SET, CMD_NAME_TABLE_GET, CMD_MON_SET,
    CMD_MON_GET, CMD_MON_PEER_GET, CMD_PEER_REMOVE, CMD_BEARER_ADD, CMD_UDP_GET_REMOTEIP,
    CMD_KEY_SET, CMD_KEY_FLUSH, CMD_ADDR_LEGACY_GET,
) = range(26)

_STATS = (
    "rx_info", "rx_fragments", "rx_fragmented", "rx_bundles", "rx_bundled", "tx_info",
    "tx_fragments", "tx_fragmented", "tx_bundles", "tx_bundled", "msg_prof_tot", "msg_len_cnt",
    "msg_len_tot", "msg_len_p0", "msg_len_p1", "msg_len_p2", "msg_len_p3", "msg_len_p4",
    "msg_len_p5", "msg_len_p6", "rx_states", "rx_probes", "rx_nacks", "rx_deferred", "tx_states",
    "tx_probes", "tx_nacks", "tx_acks", "retransmitted", "duplicates", "link_congs", "max_queue",
    "avg_queue",
)


# --- attribute classes (tipc_netlink.h) ---


class _prop(nla):
    prefix = "TIPC_NLA_PROP_"
    nla_map = (
        ("TIPC_NLA_PROP_UNSPEC", "none"),
        ("TIPC_NLA_PROP_PRIO", "uint32"),
        ("TIPC_NLA_PROP_TOL", "uint32"),
        ("TIPC_NLA_PROP_WIN", "uint32"),
        ("TIPC_NLA_PROP_MTU", "uint32"),
        ("TIPC_NLA_PROP_BROADCAST", "uint32"),
        ("TIPC_NLA_PROP_BROADCAST_RATIO", "uint32"),
    )


class _udp_opts(nla):
    prefix = "TIPC_NLA_UDP_"
    nla_map = (
        ("TIPC_NLA_UDP_UNSPEC", "none"),
        ("TIPC_NLA_UDP_LOCAL", "cdata"),  # struct sockaddr_in / sockaddr_in6
        ("TIPC_NLA_UDP_REMOTE", "cdata"),
        ("TIPC_NLA_UDP_MULTI_REMOTEIP", "flag"),
    )


class _bearer(nla):
    prefix = "TIPC_NLA_BEARER_"
    nla_map = (
        ("TIPC_NLA_BEARER_UNSPEC", "none"),
        ("TIPC_NLA_BEARER_NAME", "asciiz"),
        ("TIPC_NLA_BEARER_PROP", "prop"),
        ("TIPC_NLA_BEARER_DOMAIN", "uint32"),
        ("TIPC_NLA_BEARER_UDP_OPTS", "udp_opts"),
    )
    prop = _prop
    udp_opts = _udp_opts


class _stats(nla):
    prefix = "TIPC_NLA_STATS_"
    nla_map = (("TIPC_NLA_STATS_UNSPEC", "none"),) + tuple(
        ("TIPC_NLA_STATS_" + n.upper(), "uint32") for n in _STATS
    )


class _link(nla):
    prefix = "TIPC_NLA_LINK_"
    nla_map = (
        ("TIPC_NLA_LINK_UNSPEC", "none"),
        ("TIPC_NLA_LINK_NAME", "asciiz"),
        ("TIPC_NLA_LINK_DEST", "uint32"),
        ("TIPC_NLA_LINK_MTU", "uint32"),
        ("TIPC_NLA_LINK_BROADCAST", "flag"),
        ("TIPC_NLA_LINK_UP", "flag"),
        ("TIPC_NLA_LINK_ACTIVE", "flag"),
        ("TIPC_NLA_LINK_PROP", "prop"),
        ("TIPC_NLA_LINK_STATS", "stats"),
        ("TIPC_NLA_LINK_RX", "uint32"),
        ("TIPC_NLA_LINK_TX", "uint32"),
    )
    prop = _prop
    stats = _stats


class _media(nla):
    prefix = "TIPC_NLA_MEDIA_"
    nla_map = (
        ("TIPC_NLA_MEDIA_UNSPEC", "none"),
        ("TIPC_NLA_MEDIA_NAME", "asciiz"),
        ("TIPC_NLA_MEDIA_PROP", "prop"),
    )
    prop = _prop


class _node(nla):
    prefix = "TIPC_NLA_NODE_"
    nla_map = (
        ("TIPC_NLA_NODE_UNSPEC", "none"),
        ("TIPC_NLA_NODE_ADDR", "uint32"),
        ("TIPC_NLA_NODE_UP", "flag"),
        ("TIPC_NLA_NODE_ID", "cdata"),
        ("TIPC_NLA_NODE_KEY", "cdata"),
        ("TIPC_NLA_NODE_KEY_MASTER", "flag"),
        ("TIPC_NLA_NODE_REKEYING", "uint32"),
    )


class _net(nla):
    prefix = "TIPC_NLA_NET_"
    nla_map = (
        ("TIPC_NLA_NET_UNSPEC", "none"),
        ("TIPC_NLA_NET_ID", "uint32"),
        ("TIPC_NLA_NET_ADDR", "uint32"),
        ("TIPC_NLA_NET_NODEID", "uint64"),  # node id bytes 0..7, in host memory order
        ("TIPC_NLA_NET_NODEID_W1", "uint64"),  # node id bytes 8..15
        ("TIPC_NLA_NET_ADDR_LEGACY", "flag"),
    )


class _publ(nla):
    prefix = "TIPC_NLA_PUBL_"
    nla_map = (
        ("TIPC_NLA_PUBL_UNSPEC", "none"),
        ("TIPC_NLA_PUBL_TYPE", "uint32"),
        ("TIPC_NLA_PUBL_LOWER", "uint32"),
        ("TIPC_NLA_PUBL_UPPER", "uint32"),
        ("TIPC_NLA_PUBL_SCOPE", "uint32"),
        ("TIPC_NLA_PUBL_NODE", "uint32"),
        ("TIPC_NLA_PUBL_REF", "uint32"),
        ("TIPC_NLA_PUBL_KEY", "uint32"),
    )


class _name_table(nla):
    prefix = "TIPC_NLA_NAME_TABLE_"
    nla_map = (
        ("TIPC_NLA_NAME_TABLE_UNSPEC", "none"),
        ("TIPC_NLA_NAME_TABLE_PUBL", "publ"),
    )
    publ = _publ


class tipc_msg(genlmsg):
    """A TIPCv2 generic-netlink message (top-level attributes)."""

    prefix = "TIPC_NLA_"
    nla_map = (
        ("TIPC_NLA_UNSPEC", "none"),
        ("TIPC_NLA_BEARER", "bearer"),
        ("TIPC_NLA_SOCK", "hex"),
        ("TIPC_NLA_PUBL", "publ"),
        ("TIPC_NLA_LINK", "link"),
        ("TIPC_NLA_MEDIA", "media"),
        ("TIPC_NLA_NODE", "node"),
        ("TIPC_NLA_NET", "net"),
        ("TIPC_NLA_NAME_TABLE", "name_table"),
        ("TIPC_NLA_MON", "hex"),
        ("TIPC_NLA_MON_PEER", "hex"),
    )
    bearer = _bearer
    publ = _publ
    link = _link
    media = _media
    node = _node
    net = _net
    name_table = _name_table


# --- results ---


class TipcNetlinkError(KernelError):
    """The kernel refused a TIPCv2 request; ``errno`` says why, ``operation`` what."""

    def __init__(self, errno: int, operation: str) -> None:
        super().__init__(errno, f"TIPCv2 {operation}: {_errno.errorcode.get(errno, errno)} ({_strerror(errno)})")
        self.operation = operation


def _strerror(code: int) -> str:
    return os.strerror(code)


@dataclass(frozen=True, slots=True)
class NetInfo:
    """This node: cluster id (netid), 32-bit address and 128-bit identity.

    ``addr`` is 0 until the node has an address: the hash of the identity is assigned
    when the first bearer comes up (after a ~1 s duplicate-address trial), a legacy
    address (:meth:`AsyncTipcNetlink.set_address`) at once.
    """

    netid: int
    addr: int
    node_id: bytes
    identity: str
    legacy_address: bool


@dataclass(frozen=True, slots=True)
class BearerInfo:
    """An enabled bearer (``eth:eth0``, ``udp:b1``) and its link properties."""

    name: str
    priority: Optional[int]
    tolerance_ms: Optional[int]
    window: Optional[int]
    mtu: Optional[int]


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """A link (or the ``broadcast-link``) with its state and statistics."""

    name: str  #: ``<own identity>:<bearer>-<peer identity>:<bearer>``, or ``broadcast-link``
    up: bool
    active: bool
    broadcast: bool
    mtu: Optional[int]
    priority: Optional[int]
    tolerance_ms: Optional[int]
    window: Optional[int]
    rx: int
    tx: int
    stats: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeState:
    """A node this node knows about (itself included) and whether it is up."""

    addr: int
    up: bool


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """A media type (``eth``, ``udp``, ``ib``) and its default link properties."""

    name: str
    priority: Optional[int]
    tolerance_ms: Optional[int]
    window: Optional[int]
    mtu: Optional[int]


@dataclass(frozen=True, slots=True)
class NamePublication:
    """One row of the name table (``tipc nametable show``)."""

    type: int
    lower: int
    upper: int
    scope: int
    node: int
    port: int
    key: int


# --- pure helpers ---


def parse_address(addr: Union[int, str]) -> int:
    """A 32-bit node address from an integer or legacy ``"Z.C.N"`` notation."""
    if isinstance(addr, int) and not isinstance(addr, bool):
        if not 0 < addr <= 0xFFFFFFFF:
            raise AddressError(f"node address must be in 1..0xFFFFFFFF, got {addr!r}")
        return addr
    if isinstance(addr, str):
        parts = addr.split(".")
        try:
            z, c, n = (int(p) for p in parts)
        except ValueError:
            raise AddressError(f"node address {addr!r} is not Z.C.N") from None
        if not (0 <= z <= 255 and 0 <= c <= 4095 and 0 <= n <= 4095) or (z, c, n) == (0, 0, 0):
            raise AddressError(f"node address {addr!r} out of range (Z<256, C<4096, N<4096)")
        return (z << 24) | (c << 12) | n
    raise AddressError(f"node address must be an int or 'Z.C.N', got {addr!r}")


def udp_multicast_for(netid: int) -> str:
    """The IPv4 discovery group the ``tipc`` tool uses by default: 228.0.(netid>>8).(netid&255)."""
    return f"228.0.{(netid >> 8) & 0xFF}.{netid & 0xFF}"


def _sockaddr_ip(ip: str, port: int) -> bytes:
    """``struct sockaddr_in``/``sockaddr_in6`` bytes for the UDP bearer options."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        raise AddressError(f"not an IP address: {ip!r}") from None
    if not 0 < port < 65536:
        raise AddressError(f"UDP port must be 1..65535, got {port!r}")
    if address.version == 4:
        return struct.pack("=HH4s8x", socket.AF_INET, socket.htons(port), address.packed)
    return struct.pack("=HHI16sI", socket.AF_INET6, socket.htons(port), 0, address.packed, 0)


def _nodeid_words(node_id: bytes) -> Tuple[int, int]:
    # The kernel copies two u64 attributes over the 16 id bytes in host memory order.
    return (int.from_bytes(node_id[:8], sys.byteorder), int.from_bytes(node_id[8:16], sys.byteorder))


def _props(prop: Any) -> Dict[str, Optional[int]]:
    if prop is None:
        return {"priority": None, "tolerance_ms": None, "window": None, "mtu": None}
    return {
        "priority": prop.get_attr("TIPC_NLA_PROP_PRIO"),
        "tolerance_ms": prop.get_attr("TIPC_NLA_PROP_TOL"),
        "window": prop.get_attr("TIPC_NLA_PROP_WIN"),
        "mtu": prop.get_attr("TIPC_NLA_PROP_MTU"),
    }


def _prop_attrs(priority: Optional[int], tolerance_ms: Optional[int], window: Optional[int],
                mtu: Optional[int] = None) -> List[Tuple[str, int]]:
    attrs: List[Tuple[str, int]] = []
    for key, value, lo, hi in (
        ("TIPC_NLA_PROP_PRIO", priority, 0, 31),
        ("TIPC_NLA_PROP_TOL", tolerance_ms, 50, 30_000),
        ("TIPC_NLA_PROP_WIN", window, 16, 8191),
        ("TIPC_NLA_PROP_MTU", mtu, 68, 0xFFFF),
    ):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise AddressError(f"{key[14:].lower()} must be in {lo}..{hi}, got {value!r}")
        attrs.append((key, value))
    return attrs


def _bearer_name(name: str) -> str:
    if not isinstance(name, str) or ":" not in name or len(name) > 31:
        raise AddressError(f"bearer names are '<media>:<name>' (eth:eth0, udp:b1), ≤ 31 chars; got {name!r}")
    return name
