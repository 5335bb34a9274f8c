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
import socket
import sys
from typing import Any, List, Optional, Tuple, Union

from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import AsyncGenericNetlinkSocket, GenericNetlinkSocket

from ...errors import AddressError, TransportUnavailable
from . import netns as _netns
from .nlattrs import (
    _STATS,
    CMD_ADDR_LEGACY_GET,
    CMD_BEARER_ADD,
    CMD_BEARER_DISABLE,
    CMD_BEARER_ENABLE,
    CMD_BEARER_GET,
    CMD_BEARER_SET,
    CMD_LINK_GET,
    CMD_LINK_RESET_STATS,
    CMD_LINK_SET,
    CMD_MEDIA_GET,
    CMD_MEDIA_SET,
    CMD_NAME_TABLE_GET,
    CMD_NET_GET,
    CMD_NET_SET,
    CMD_NODE_GET,
    CMD_PEER_REMOVE,
    NETLINK_GENERIC,
    TIPC_GENL_NAME,
    TIPC_GENL_VERSION,
    UDP_PORT,
    BearerInfo,
    LinkInfo,
    MediaInfo,
    NamePublication,
    NetInfo,
    NodeState,
    TipcNetlinkError,
    _bearer_name,
    _nodeid_words,
    _prop_attrs,
    _props,
    _sockaddr_ip,
    parse_address,
    tipc_msg,
    udp_multicast_for,
)
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

    def close(self, code: int = _errno.ECONNRESET) -> None:
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

    def close(self, code: int = _errno.ECONNRESET) -> None:
        super().close(code)
        if self._own_socket is not None:
            self._own_socket.close()

    def _call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        return self._run_with_cleanup(getattr(self.asyncore, op), *args, **kwargs)

    def net(self) -> NetInfo:
        result: NetInfo = self._call("net")
        return result

    def set_identity(self, identity: Union[str, bytes]) -> None:
        self._call("set_identity", identity)

    def set_address(self, addr: Union[int, str]) -> None:
        self._call("set_address", addr)

    def set_netid(self, netid: int) -> None:
        self._call("set_netid", netid)

    def nodes(self) -> List[NodeState]:
        result: List[NodeState] = self._call("nodes")
        return result

    def remove_peer(self, addr: int) -> None:
        self._call("remove_peer", addr)

    def enable_bearer(self, name: str, **kwargs: Any) -> None:
        self._call("enable_bearer", name, **kwargs)

    def add_udp_remote(self, name: str, remoteip: str, remoteport: int = UDP_PORT) -> None:
        self._call("add_udp_remote", name, remoteip, remoteport)

    def disable_bearer(self, name: str) -> None:
        self._call("disable_bearer", name)

    def bearers(self) -> List[BearerInfo]:
        result: List[BearerInfo] = self._call("bearers")
        return result

    def set_bearer(self, name: str, **kwargs: Any) -> None:
        self._call("set_bearer", name, **kwargs)

    def media(self) -> List[MediaInfo]:
        result: List[MediaInfo] = self._call("media")
        return result

    def set_media(self, name: str, **kwargs: Any) -> None:
        self._call("set_media", name, **kwargs)

    def links(self) -> List[LinkInfo]:
        result: List[LinkInfo] = self._call("links")
        return result

    def set_link(self, name: str, **kwargs: Any) -> None:
        self._call("set_link", name, **kwargs)

    def reset_link_stats(self, name: str) -> None:
        self._call("reset_link_stats", name)

    def name_table(self) -> List[NamePublication]:
        result: List[NamePublication] = self._call("name_table")
        return result
