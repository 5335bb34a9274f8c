"""Netns TIPC clusters for the kernel test tier (runs inside the ktipc QEMU guest).

Built with pyroute2 (namespaces, veth, bridge, addresses) and tipcrpc's own TIPCv2
netlink module (identity, media tolerance, bearers) — no ``ip``/``tipc`` commands.

* :class:`EthCluster`: ``n`` nodes (one netns each) on a Linux bridge in the root
  namespace, Ethernet bearers. :meth:`EthCluster.cut` sets a node's bridge-side veth
  down: the node loses carrier (resets its links at once) while its peers only notice
  through link supervision, i.e. after the link tolerance — a silent node death.
* :class:`UdpCluster`: two nodes joined by a veth pair with 10.x addresses, UDP bearers.

Waiting is event-driven: :class:`TopologyWatch` is a *blocking* topology-server
subscription (no event loop needed), so fixtures wait for link/node events instead of
polling.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Set

from tipcrpc.addr import LINK_STATE, NODE_STATE, U32_MAX
from tipcrpc.errors import TransportError
from tipcrpc.transport.kernel import netns as knetns
from tipcrpc.transport.kernel import wire
from tipcrpc.transport.kernel.netlink import TipcNetlink

__all__ = ["Node", "EthCluster", "UdpCluster", "TopologyWatch", "wait_published", "wait_withdrawn"]


_MARKER_TYPE = 0x7E57_0001


class TopologyWatch:
    """A blocking PORTS subscription to the topology server of one netns node.

    Like the transport, it marks the end of the replayed state with a private marker
    name subscribed right after the real subscription (see ``topsrv.py``).
    """

    def __init__(self, netns: Optional[str], stype: int, lower: int = 0, upper: int = U32_MAX) -> None:
        self.sock = knetns.create_socket(netns, wire.AF_TIPC, socket.SOCK_SEQPACKET)
        self.marker = knetns.create_socket(netns, wire.AF_TIPC, socket.SOCK_RDM)
        port = wire.socket_addr_from(self.marker.getsockname()).port
        self.marker.bind((wire.TIPC_ADDR_NAMESEQ, _MARKER_TYPE, port, port, 3))
        self.sock.connect(wire.topsrv_sockaddr())
        self.sock.send(wire.pack_subscr(wire.Subscr(stype, lower, upper, -1, wire.TIPC_SUB_PORTS, b"ktipc-ts")))
        self.sock.send(wire.pack_subscr(wire.Subscr(_MARKER_TYPE, port, port, -1, wire.TIPC_SUB_PORTS, b"ktipc-mk")))
        self.in_snapshot = True

    def next(self, deadline: float) -> Optional[wire.Event]:
        """The next event, or ``None`` once for the end of the snapshot.

        Raises TimeoutError at ``deadline`` (``time.monotonic()``).
        """
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("topology watch timed out")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(64)
        except socket.timeout:
            raise TimeoutError("topology watch timed out") from None
        if not data:
            raise TransportError("topology server closed the connection")
        ev = wire.unpack_event(data)
        if ev.sub.handle == b"ktipc-mk":
            self.in_snapshot = False
            return None
        return ev

    def close(self) -> None:
        self.sock.close()
        self.marker.close()

    def __enter__(self) -> "TopologyWatch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_published(netns: Optional[str], stype: int, want: Set[int], timeout: float) -> None:
    """Block until the ``netns`` node holds a publication of ``stype`` for every instance in ``want``."""
    deadline = time.monotonic() + timeout
    up: Set[int] = set()
    with TopologyWatch(netns, stype) as w:
        while not want <= up:
            ev = w.next(deadline)
            if ev is None:
                continue
            if ev.event == wire.TIPC_PUBLISHED:
                up.add(ev.found_lower)
            elif ev.event == wire.TIPC_WITHDRAWN:
                up.discard(ev.found_lower)


def wait_withdrawn(netns: Optional[str], stype: int, gone: int, timeout: float) -> float:
    """Block until no publication of instance ``gone`` of ``stype`` is left on the ``netns`` node.

    Returns the seconds it took.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout
    count = 0
    with TopologyWatch(netns, stype) as w:
        while True:
            ev = w.next(deadline)
            if ev is None:
                if count == 0:
                    break
                continue
            if ev.found_lower <= gone <= ev.found_upper:
                count += 1 if ev.event == wire.TIPC_PUBLISHED else -1
                if count == 0 and not w.in_snapshot:
                    break
    return time.monotonic() - t0


@dataclass
class Node:
    """One TIPC node: a network namespace with a bearer."""

    netns: str
    identity: str
    ifname: str  #: interface inside the namespace
    host_ifname: Optional[str] = None  #: bridge-side veth in the root namespace (eth)
    ip: Optional[str] = None  #: IPv4 address (udp)
    bearer: str = ""
    addr: int = 0  #: 32-bit node address, known once the links are up
    alive: bool = True

    def netlink(self) -> TipcNetlink:
        return TipcNetlink(netns=self.netns)


def _session_tag() -> str:
    return f"k{os.getpid() % 100000}"


def _link_up(ipr: object, ifname: str) -> None:
    idx = ipr.link_lookup(ifname=ifname)[0]  # type: ignore[attr-defined]
    ipr.link("set", index=idx, state="up")  # type: ignore[attr-defined]


@dataclass
class _Base:
    nodes: List[Node] = field(default_factory=list)
    tolerance_ms: int = 500
    timeout: float = 20.0

    def _configure(self, node: Node, media: str, **bearer_opts: object) -> None:
        with node.netlink() as nl:
            nl.set_identity(node.identity)
            nl.set_media(media, tolerance_ms=self.tolerance_ms)
            nl.enable_bearer(node.bearer, **bearer_opts)  # type: ignore[arg-type]

    def wait_mesh(self, nodes: Optional[Iterable[Node]] = None) -> None:
        """Block until every live node has a working link to every other live node."""
        live = [n for n in (nodes or self.nodes) if n.alive]
        for node in live:
            peers_wanted = len(live) - 1
            deadline = time.monotonic() + self.timeout
            seen: Set[int] = set()
            with TopologyWatch(node.netns, LINK_STATE) as w:
                while len(seen) < peers_wanted:
                    ev = w.next(deadline)
                    if ev is None:
                        continue
                    if ev.event == wire.TIPC_PUBLISHED:
                        seen.add(ev.found_lower)
                    else:
                        seen.discard(ev.found_lower)
        for node in live:
            with knetns.entered(node.netns):
                s = socket.socket(wire.AF_TIPC, socket.SOCK_RDM)
            with s:
                node.addr = wire.socket_addr_from(s.getsockname()).node
        # Every node must see every live node's {0, addr} (name distribution done).
        want = {n.addr for n in live}
        for node in live:
            wait_published(node.netns, NODE_STATE, want, self.timeout)

    def destroy(self) -> None:
        from pyroute2 import netns

        for node in self.nodes:
            try:
                netns.remove(node.netns)
            except OSError:
                pass


class EthCluster(_Base):
    """``n`` netns nodes on a bridge, Ethernet bearers, link tolerance ``tolerance_ms``."""

    def __init__(self, n: int, *, tolerance_ms: int = 500, tag: Optional[str] = None) -> None:
        super().__init__(tolerance_ms=tolerance_ms)
        from pyroute2 import IPRoute, netns

        tag = tag or _session_tag()
        self.bridge = f"{tag}br"
        with IPRoute() as ipr:
            ipr.link("add", ifname=self.bridge, kind="bridge")
            _link_up(ipr, self.bridge)
            br = ipr.link_lookup(ifname=self.bridge)[0]
            for i in range(n):
                name = f"{tag}n{i}"
                node = Node(netns=name, identity=f"{tag}n{i}", ifname=f"{tag}e{i}", host_ifname=f"{tag}h{i}")
                node.bearer = f"eth:{node.ifname}"
                netns.create(name)
                ipr.link("add", ifname=node.host_ifname, kind="veth", peer={"ifname": node.ifname})
                ipr.link("set", index=ipr.link_lookup(ifname=node.ifname)[0], net_ns_fd=name)
                ipr.link("set", index=ipr.link_lookup(ifname=node.host_ifname)[0], master=br)
                _link_up(ipr, node.host_ifname)
                self.nodes.append(node)
        for node in self.nodes:
            with IPRoute(netns=node.netns) as ipr:
                _link_up(ipr, "lo")
                _link_up(ipr, node.ifname)
            self._configure(node, "eth")
        self.wait_mesh()

    def _host_link(self, node: Node, state: str) -> None:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=node.host_ifname)[0]
            ipr.link("set", index=idx, state=state)

    def cut(self, node: Node) -> None:
        """Take ``node`` off the bridge (carrier loss on its side only)."""
        node.alive = False
        self._host_link(node, "down")

    def restore(self, node: Node) -> None:
        """Put ``node`` back on the bridge and wait until the full mesh is up again."""
        self._host_link(node, "up")
        node.alive = True
        self.wait_mesh()

    def restore_all(self) -> None:
        dead = [n for n in self.nodes if not n.alive]
        for node in dead:
            self._host_link(node, "up")
            node.alive = True
        if dead:
            self.wait_mesh()

    def destroy(self) -> None:
        super().destroy()
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            for idx in ipr.link_lookup(ifname=self.bridge):
                ipr.link("del", index=idx)


class UdpCluster(_Base):
    """Two netns nodes on a veth pair (10.77.x.1/2), UDP bearers with unicast discovery."""

    def __init__(self, *, tolerance_ms: int = 500, tag: Optional[str] = None, subnet: int = 77) -> None:
        super().__init__(tolerance_ms=tolerance_ms)
        from pyroute2 import IPRoute, netns

        tag = tag or _session_tag()
        for i in (1, 2):
            node = Node(netns=f"{tag}u{i}", identity=f"{tag}u{i}", ifname=f"{tag}w{i}", ip=f"10.{subnet}.0.{i}")
            node.bearer = "udp:b1"
            netns.create(node.netns)
            self.nodes.append(node)
        a, b = self.nodes
        with IPRoute() as ipr:
            ipr.link("add", ifname=a.ifname, kind="veth", peer={"ifname": b.ifname})
            ipr.link("set", index=ipr.link_lookup(ifname=a.ifname)[0], net_ns_fd=a.netns)
            ipr.link("set", index=ipr.link_lookup(ifname=b.ifname)[0], net_ns_fd=b.netns)
        for node in self.nodes:
            with IPRoute(netns=node.netns) as ipr:
                _link_up(ipr, "lo")
                idx = ipr.link_lookup(ifname=node.ifname)[0]
                ipr.addr("add", index=idx, address=node.ip, prefixlen=24)
                ipr.link("set", index=idx, state="up")
        for node, peer in ((a, b), (b, a)):
            self._configure(node, "udp", localip=node.ip, remoteip=peer.ip)
        self.wait_mesh()
