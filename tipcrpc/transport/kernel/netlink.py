"""Configure kernel TIPC through generic netlink ``"TIPCv2"`` (what ``tipc(8)`` does).

pyroute2 ships no TIPC family, so this module defines the attribute classes from
``include/uapi/linux/tipc_netlink.h`` on top of pyroute2's generic-netlink sockets, and
offers typed operations: node identity/address/netid, bearers (``eth:<ifname>``,
``udp:<name>`` with local/remote IP and port), links and their statistics, nodes, media
and the name table.

Two front ends share one implementation:

* :class:`AsyncTipcNetlink` — ``await``-able, for code running in an event loop
  (pyroute2's synchronous sockets cannot run inside a running loop);
* :class:`TipcNetlink` — synchronous, for scripts and synchronous test fixtures.

Both take ``netns=`` (a name under ``/var/run/netns`` or a path): the netlink socket is
created inside that network namespace, so one process configures many TIPC nodes::

    with TipcNetlink(netns="n1") as nl:
        nl.set_identity("node1")
        nl.enable_bearer("eth:eth0")
        nl.set_bearer("eth:eth0", tolerance_ms=300)

Errors: a missing ``tipc`` module raises :class:`~tipcrpc.errors.TransportUnavailable`;
a kernel refusal raises :class:`TipcNetlinkError` (a :class:`~tipcrpc.errors.KernelError`
with ``errno`` and the operation); bad arguments raise
:class:`~tipcrpc.errors.AddressError`.
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import socket
import struct
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, genlmsg, nla
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import AsyncGenericNetlinkSocket, GenericNetlinkSocket

from ...errors import AddressError, KernelError, TransportUnavailable
from . import netns as _netns
from .wire import identity_to_nodeid, nodeid_to_identity, socket_addr_from

__all__ = [
    "TIPC_GENL_NAME",
    "UDP_PORT",
    "TipcNetlinkError",
    "NetInfo",
    "BearerInfo",
    "LinkInfo",
    "NodeState",
    "MediaInfo",
    "NamePublication",
    "AsyncTipcNetlink",
    "TipcNetlink",
    "parse_address",
    "udp_multicast_for",
]

TIPC_GENL_NAME = "TIPCv2"
TIPC_GENL_VERSION = 1
UDP_PORT = 6118  #: IANA port of the UDP bearer
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
    import os

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


class AsyncTipcNetlink(AsyncGenericNetlinkSocket):
    """TIPCv2 generic netlink, ``await``-able. Use ``async with AsyncTipcNetlink(...) as nl``."""

    def __init__(self, netns: Optional[str] = None, **kwarg: Any) -> None:
        sock = kwarg.pop("use_socket", None)
        if sock is None and netns is not None:
            sock = _netns.create_socket(netns, socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_GENERIC)
        self._own_socket = sock
        self.netns = netns
        kwarg["family"] = NETLINK_GENERIC
        super().__init__(use_socket=sock, **kwarg)

    async def setup_endpoint(self) -> None:
        if getattr(self.local, "transport", None) is not None:
            return
        await super().setup_endpoint()
        try:
            await self.bind(TIPC_GENL_NAME, tipc_msg)
        except NetlinkError as exc:
            if exc.code in (_errno.ENOENT, _errno.ENOTSUP):
                raise TransportUnavailable(
                    "generic netlink family TIPCv2 not found: the kernel TIPC module is not loaded "
                    "(run `modprobe tipc`)"
                ) from None
            raise TipcNetlinkError(exc.code, "resolve family") from None

    def close(self, code: int = _errno.ECONNRESET) -> None:  # type: ignore[override]
        super().close(code)
        if self._own_socket is not None:
            self._own_socket.close()

    # -- plumbing --

    async def _request(self, cmd: int, attrs: List[Any], operation: str, *, dump: bool = False) -> List[Any]:
        await self.setup_endpoint()
        msg = tipc_msg()
        msg["cmd"] = cmd
        msg["version"] = TIPC_GENL_VERSION
        msg["attrs"] = attrs
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        try:
            return [m async for m in await self.nlm_request(msg, msg_type=self.prid, msg_flags=flags)]
        except NetlinkError as exc:
            raise TipcNetlinkError(exc.code, operation) from None

    # -- node / net --

    async def net(self) -> NetInfo:
        """This node's netid, address and identity (``tipc node get ...``)."""
        for m in await self._request(CMD_NET_GET, [], "get net", dump=True):
            n = m.get_attr("TIPC_NLA_NET")
            if n is None:
                continue
            w0 = n.get_attr("TIPC_NLA_NET_NODEID") or 0
            w1 = n.get_attr("TIPC_NLA_NET_NODEID_W1") or 0
            node_id = w0.to_bytes(8, sys.byteorder) + w1.to_bytes(8, sys.byteorder)
            addr, legacy = await self._own_address()
            return NetInfo(
                netid=n.get_attr("TIPC_NLA_NET_ID") or 0,
                addr=addr,
                node_id=node_id,
                identity=nodeid_to_identity(node_id),
                legacy_address=legacy,
            )
        raise TipcNetlinkError(_errno.ENODATA, "get net")

    async def _own_address(self) -> Tuple[int, bool]:
        # Neither NET_GET nor ADDR_LEGACY_GET carries the address on 6.1 (the latter only
        # the legacy flag), so read it from a TIPC socket of the same namespace.
        legacy = False
        try:
            for m in await self._request(CMD_ADDR_LEGACY_GET, [], "get address"):
                n = m.get_attr("TIPC_NLA_NET")
                if n is not None:
                    legacy = bool(n.get_attr("TIPC_NLA_NET_ADDR_LEGACY"))
        except TipcNetlinkError as exc:
            if exc.errno not in (_errno.EOPNOTSUPP, _errno.EINVAL):
                raise
        try:
            with _netns.create_socket(self.netns, socket.AF_TIPC, socket.SOCK_RDM) as sock:
                return socket_addr_from(sock.getsockname()).node, legacy
        except OSError:
            return 0, legacy

    async def set_identity(self, identity: Union[str, bytes]) -> None:
        """Set the 128-bit node identity (before any bearer is enabled)."""
        w0, w1 = _nodeid_words(identity_to_nodeid(identity))
        await self._request(CMD_NET_SET, [("TIPC_NLA_NET", {"attrs": [
            ("TIPC_NLA_NET_NODEID", w0), ("TIPC_NLA_NET_NODEID_W1", w1)]})], f"set identity {identity!r}")

    async def set_address(self, addr: Union[int, str]) -> None:
        """Set a legacy 32-bit node address (switches anycast to closest-first)."""
        value = parse_address(addr)
        await self._request(CMD_NET_SET, [("TIPC_NLA_NET", {"attrs": [("TIPC_NLA_NET_ADDR", value)]})],
                            f"set address {addr!r}")

    async def set_netid(self, netid: int) -> None:
        """Set the cluster id (1..9999; fixed once the node has joined)."""
        if not isinstance(netid, int) or not 1 <= netid <= 9999:
            raise AddressError(f"netid must be 1..9999, got {netid!r}")
        await self._request(CMD_NET_SET, [("TIPC_NLA_NET", {"attrs": [("TIPC_NLA_NET_ID", netid)]})],
                            f"set netid {netid}")

    async def nodes(self) -> List[NodeState]:
        """Known nodes and whether they are up (``tipc node list``)."""
        out = []
        for m in await self._request(CMD_NODE_GET, [], "list nodes", dump=True):
            n = m.get_attr("TIPC_NLA_NODE")
            if n is not None:
                out.append(NodeState(n.get_attr("TIPC_NLA_NODE_ADDR") or 0, bool(n.get_attr("TIPC_NLA_NODE_UP"))))
        return out

    async def remove_peer(self, addr: int) -> None:
        """Forget a peer node that is down (``tipc peer remove address``)."""
        await self._request(CMD_PEER_REMOVE, [("TIPC_NLA_NET", {"attrs": [("TIPC_NLA_NET_ADDR", parse_address(addr))]})],
                            f"remove peer {addr:#x}")

    # -- bearers --

    async def enable_bearer(self, name: str, *, priority: Optional[int] = None, domain: Optional[int] = None,
                            localip: Optional[str] = None, localport: int = UDP_PORT,
                            remoteip: Optional[str] = None, remoteport: int = UDP_PORT) -> None:
        """Enable a bearer: ``"eth:<ifname>"`` or ``"udp:<name>"`` (with ``localip``).

        For UDP without ``remoteip`` the bearer discovers peers by IPv4 multicast on the
        group derived from the netid (as the ``tipc`` tool does); a unicast ``remoteip``
        makes it replicast and the kernel learns further peers from discovery.
        """
        name = _bearer_name(name)
        attrs: List[Any] = [("TIPC_NLA_BEARER_NAME", name)]
        if domain is not None:
            attrs.append(("TIPC_NLA_BEARER_DOMAIN", domain))
        props = _prop_attrs(priority, None, None)
        if props:
            attrs.append(("TIPC_NLA_BEARER_PROP", {"attrs": props}))
        if name.startswith("udp:"):
            if localip is None:
                raise AddressError("a UDP bearer needs localip=")
            if remoteip is None:
                remoteip = udp_multicast_for((await self.net()).netid)
            local = _sockaddr_ip(localip, localport)
            remote = _sockaddr_ip(remoteip, remoteport)
            if len(local) != len(remote):
                raise AddressError("localip and remoteip must be the same IP version")
            attrs.append(("TIPC_NLA_BEARER_UDP_OPTS", {"attrs": [
                ("TIPC_NLA_UDP_LOCAL", local), ("TIPC_NLA_UDP_REMOTE", remote)]}))
        elif localip is not None or remoteip is not None:
            raise AddressError("localip/remoteip apply to udp: bearers only")
        await self._request(CMD_BEARER_ENABLE, [("TIPC_NLA_BEARER", {"attrs": attrs})], f"enable bearer {name}")

    async def add_udp_remote(self, name: str, remoteip: str, remoteport: int = UDP_PORT) -> None:
        """Add a replicast peer to a UDP bearer (``tipc bearer add media udp ... remoteip``)."""
        name = _bearer_name(name)
        await self._request(CMD_BEARER_ADD, [("TIPC_NLA_BEARER", {"attrs": [
            ("TIPC_NLA_BEARER_NAME", name),
            ("TIPC_NLA_BEARER_UDP_OPTS", {"attrs": [("TIPC_NLA_UDP_REMOTE", _sockaddr_ip(remoteip, remoteport))]}),
        ]})], f"add remote {remoteip} to {name}")

    async def disable_bearer(self, name: str) -> None:
        """Disable a bearer: its links go down at once."""
        name = _bearer_name(name)
        await self._request(CMD_BEARER_DISABLE, [("TIPC_NLA_BEARER", {"attrs": [("TIPC_NLA_BEARER_NAME", name)]})],
                            f"disable bearer {name}")

    async def bearers(self) -> List[BearerInfo]:
        """Enabled bearers and their properties (``tipc bearer list``)."""
        out = []
        for m in await self._request(CMD_BEARER_GET, [], "list bearers", dump=True):
            b = m.get_attr("TIPC_NLA_BEARER")
            if b is not None:
                out.append(BearerInfo(b.get_attr("TIPC_NLA_BEARER_NAME"), **_props(b.get_attr("TIPC_NLA_BEARER_PROP"))))
        return out

    async def set_bearer(self, name: str, *, priority: Optional[int] = None, tolerance_ms: Optional[int] = None,
                         window: Optional[int] = None, mtu: Optional[int] = None) -> None:
        """Change a bearer's link properties; tolerance also applies to its existing links."""
        name = _bearer_name(name)
        props = _prop_attrs(priority, tolerance_ms, window, mtu)
        if not props:
            raise AddressError("set_bearer needs at least one property")
        await self._request(CMD_BEARER_SET, [("TIPC_NLA_BEARER", {"attrs": [
            ("TIPC_NLA_BEARER_NAME", name), ("TIPC_NLA_BEARER_PROP", {"attrs": props})]})], f"set bearer {name}")

    # -- media --

    async def media(self) -> List[MediaInfo]:
        """Media types and their default properties (``tipc media list``)."""
        out = []
        for m in await self._request(CMD_MEDIA_GET, [], "list media", dump=True):
            md = m.get_attr("TIPC_NLA_MEDIA")
            if md is not None:
                out.append(MediaInfo(md.get_attr("TIPC_NLA_MEDIA_NAME"), **_props(md.get_attr("TIPC_NLA_MEDIA_PROP"))))
        return out

    async def set_media(self, name: str, *, priority: Optional[int] = None, tolerance_ms: Optional[int] = None,
                        window: Optional[int] = None, mtu: Optional[int] = None) -> None:
        """Change a media type's defaults (used by bearers enabled afterwards)."""
        props = _prop_attrs(priority, tolerance_ms, window, mtu)
        if not props:
            raise AddressError("set_media needs at least one property")
        await self._request(CMD_MEDIA_SET, [("TIPC_NLA_MEDIA", {"attrs": [
            ("TIPC_NLA_MEDIA_NAME", name), ("TIPC_NLA_MEDIA_PROP", {"attrs": props})]})], f"set media {name}")

    # -- links --

    async def links(self) -> List[LinkInfo]:
        """Every link, the broadcast link included (``tipc link list`` + statistics)."""
        out = []
        for m in await self._request(CMD_LINK_GET, [], "list links", dump=True):
            lk = m.get_attr("TIPC_NLA_LINK")
            if lk is None:
                continue
            st = lk.get_attr("TIPC_NLA_LINK_STATS")
            stats = {}
            if st is not None:
                for name in _STATS:
                    value = st.get_attr("TIPC_NLA_STATS_" + name.upper())
                    if value is not None:
                        stats[name] = value
            props = _props(lk.get_attr("TIPC_NLA_LINK_PROP"))
            out.append(LinkInfo(
                name=lk.get_attr("TIPC_NLA_LINK_NAME"),
                up=bool(lk.get_attr("TIPC_NLA_LINK_UP")),
                active=bool(lk.get_attr("TIPC_NLA_LINK_ACTIVE")),
                broadcast=bool(lk.get_attr("TIPC_NLA_LINK_BROADCAST")),
                mtu=lk.get_attr("TIPC_NLA_LINK_MTU"),
                priority=props["priority"],
                tolerance_ms=props["tolerance_ms"],
                window=props["window"],
                rx=lk.get_attr("TIPC_NLA_LINK_RX") or 0,
                tx=lk.get_attr("TIPC_NLA_LINK_TX") or 0,
                stats=stats,
            ))
        return out

    async def set_link(self, name: str, *, priority: Optional[int] = None, tolerance_ms: Optional[int] = None,
                       window: Optional[int] = None) -> None:
        """Change one link's properties (``tipc link set ... link NAME``)."""
        props = _prop_attrs(priority, tolerance_ms, window)
        if not props:
            raise AddressError("set_link needs at least one property")
        await self._request(CMD_LINK_SET, [("TIPC_NLA_LINK", {"attrs": [
            ("TIPC_NLA_LINK_NAME", name), ("TIPC_NLA_LINK_PROP", {"attrs": props})]})], f"set link {name}")

    async def reset_link_stats(self, name: str) -> None:
        """Zero a link's statistics."""
        await self._request(CMD_LINK_RESET_STATS, [("TIPC_NLA_LINK", {"attrs": [("TIPC_NLA_LINK_NAME", name)]})],
                            f"reset stats of {name}")

    # -- name table --

    async def name_table(self) -> List[NamePublication]:
        """Every publication this node knows (``tipc nametable show``)."""
        out = []
        for m in await self._request(CMD_NAME_TABLE_GET, [], "dump name table", dump=True):
            nt = m.get_attr("TIPC_NLA_NAME_TABLE")
            if nt is None:
                continue
            p = nt.get_attr("TIPC_NLA_NAME_TABLE_PUBL")
            if p is None:
                continue
            out.append(NamePublication(
                type=p.get_attr("TIPC_NLA_PUBL_TYPE"),
                lower=p.get_attr("TIPC_NLA_PUBL_LOWER"),
                upper=p.get_attr("TIPC_NLA_PUBL_UPPER"),
                scope=p.get_attr("TIPC_NLA_PUBL_SCOPE"),
                node=p.get_attr("TIPC_NLA_PUBL_NODE"),
                port=p.get_attr("TIPC_NLA_PUBL_REF"),
                key=p.get_attr("TIPC_NLA_PUBL_KEY"),
            ))
        return out


class TipcNetlink(GenericNetlinkSocket):
    """TIPCv2 generic netlink, synchronous (not usable inside a running event loop).

    Same operations as :class:`AsyncTipcNetlink`, without ``await``. Use as a context
    manager: ``with TipcNetlink(netns="n1") as nl: nl.set_identity("node1")``.
    """

    async_class = AsyncTipcNetlink

    def __init__(self, netns: Optional[str] = None) -> None:
        sock = None
        if netns is not None:
            sock = _netns.create_socket(netns, socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_GENERIC)
        self._own_socket = sock
        super().__init__(family=NETLINK_GENERIC, use_socket=sock)
        self.asyncore.netns = netns  # the async core was built without it (pyroute2 passes its own args)

    def close(self, code: int = _errno.ECONNRESET) -> None:  # type: ignore[override]
        super().close(code)
        if self._own_socket is not None:
            self._own_socket.close()

    def _call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        return self._run_with_cleanup(getattr(self.asyncore, op), *args, **kwargs)

    def net(self) -> NetInfo:
        return self._call("net")

    def set_identity(self, identity: Union[str, bytes]) -> None:
        self._call("set_identity", identity)

    def set_address(self, addr: Union[int, str]) -> None:
        self._call("set_address", addr)

    def set_netid(self, netid: int) -> None:
        self._call("set_netid", netid)

    def nodes(self) -> List[NodeState]:
        return self._call("nodes")

    def remove_peer(self, addr: int) -> None:
        self._call("remove_peer", addr)

    def enable_bearer(self, name: str, **kwargs: Any) -> None:
        self._call("enable_bearer", name, **kwargs)

    def add_udp_remote(self, name: str, remoteip: str, remoteport: int = UDP_PORT) -> None:
        self._call("add_udp_remote", name, remoteip, remoteport)

    def disable_bearer(self, name: str) -> None:
        self._call("disable_bearer", name)

    def bearers(self) -> List[BearerInfo]:
        return self._call("bearers")

    def set_bearer(self, name: str, **kwargs: Any) -> None:
        self._call("set_bearer", name, **kwargs)

    def media(self) -> List[MediaInfo]:
        return self._call("media")

    def set_media(self, name: str, **kwargs: Any) -> None:
        self._call("set_media", name, **kwargs)

    def links(self) -> List[LinkInfo]:
        return self._call("links")

    def set_link(self, name: str, **kwargs: Any) -> None:
        self._call("set_link", name, **kwargs)

    def reset_link_stats(self, name: str) -> None:
        self._call("reset_link_stats", name)

    def name_table(self) -> List[NamePublication]:
        return self._call("name_table")
