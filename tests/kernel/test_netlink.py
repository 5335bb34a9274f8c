"""The TIPCv2 generic-netlink module against the real kernel (guest only).

Read-only checks use the session's 3-node cluster; anything that changes a node's
configuration runs in a namespace of its own, created (with pyroute2) and removed here.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Iterator

import pytest

from tipcrpc.addr import node_addr_from_id
from tipcrpc.errors import AddressError
from tipcrpc.transport.kernel import netns as knetns
from tipcrpc.transport.kernel import wire
from tipcrpc.transport.kernel.netlink import (
    AsyncTipcNetlink,
    TipcNetlink,
    TipcNetlinkError,
    parse_address,
    udp_multicast_for,
)

from ktipc_cluster import EthCluster


@pytest.fixture
def scratch_netns() -> Iterator[str]:
    """A fresh network namespace with a dummy interface ``d0`` (10.66.0.1/24), removed after."""
    from pyroute2 import IPRoute, netns

    name = f"k{os.getpid() % 100000}s{os.urandom(2).hex()}"
    netns.create(name)
    try:
        with IPRoute(netns=name) as ipr:
            ipr.link("add", ifname="d0", kind="dummy")
            idx = ipr.link_lookup(ifname="d0")[0]
            ipr.addr("add", index=idx, address="10.66.0.1", prefixlen=24)
            ipr.link("set", index=idx, state="up")
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        yield name
    finally:
        netns.remove(name)


def test_net_info_of_cluster_nodes(eth_cluster: EthCluster) -> None:
    for node in eth_cluster.nodes:
        with node.netlink() as nl:
            info = nl.net()
        assert info.identity == node.identity
        assert info.node_id == wire.identity_to_nodeid(node.identity)
        assert info.netid == 4711
        assert not info.legacy_address
        # Without a legacy address the node address is the hash of the identity.
        assert info.addr == node.addr == node_addr_from_id(info.node_id)


def test_bearers_links_nodes(eth_cluster: EthCluster) -> None:
    eth_cluster.restore_all()
    node = eth_cluster.nodes[0]
    peers = {n.addr for n in eth_cluster.nodes[1:]}
    with node.netlink() as nl:
        bearers = nl.bearers()
        links = nl.links()
        nodes = nl.nodes()
    assert [b.name for b in bearers] == [node.bearer]
    assert bearers[0].tolerance_ms == eth_cluster.tolerance_ms  # inherited from the media setting
    unicast = [lk for lk in links if not lk.broadcast]
    assert sorted(lk.name for lk in unicast) == sorted(
        f"{node.identity}:{node.ifname}-{peer.identity}:{peer.ifname}" for peer in eth_cluster.nodes[1:]
    )
    for lk in unicast:
        assert lk.up and lk.active
        assert lk.tolerance_ms == eth_cluster.tolerance_ms
        assert lk.mtu and lk.mtu > 1000
        assert "retransmitted" in lk.stats and all(isinstance(v, int) for v in lk.stats.values())
    assert [lk.name for lk in links if lk.broadcast] == ["broadcast-link"]
    assert {n.addr for n in nodes if n.up} >= peers


def test_name_table_shows_a_publication(eth_cluster: EthCluster) -> None:
    node = eth_cluster.nodes[0]
    stype = 0x7A000000 + os.getpid() % 0x10000
    with knetns.entered(node.netns):
        sock = socket.socket(wire.AF_TIPC, socket.SOCK_RDM)
    with sock:
        sock.bind((wire.TIPC_ADDR_NAMESEQ, stype, 10, 19, 3))  # node scope
        port = wire.socket_addr_from(sock.getsockname()).port
        with node.netlink() as nl:
            table = nl.name_table()
    rows = [p for p in table if p.type == stype]
    assert len(rows) == 1
    row = rows[0]
    assert (row.lower, row.upper, row.scope, row.node, row.port) == (10, 19, 3, node.addr, port)
    # Every node publishes its own address under type 0.
    assert any(p.type == 0 and p.lower == node.addr for p in table)


def test_link_tolerance_set_and_restored(eth_cluster: EthCluster) -> None:
    node = eth_cluster.nodes[0]
    with node.netlink() as nl:
        link = next(lk for lk in nl.links() if not lk.broadcast)
        nl.set_link(link.name, tolerance_ms=1234)
        assert next(lk for lk in nl.links() if lk.name == link.name).tolerance_ms == 1234
        nl.set_link(link.name, tolerance_ms=eth_cluster.tolerance_ms)
        assert next(lk for lk in nl.links() if lk.name == link.name).tolerance_ms == eth_cluster.tolerance_ms
        nl.reset_link_stats(link.name)


def test_configuration_errors_are_typed(eth_cluster: EthCluster) -> None:
    node = eth_cluster.nodes[0]
    with node.netlink() as nl:
        with pytest.raises(TipcNetlinkError) as exc:
            nl.enable_bearer("eth:nosuchdev0")
        assert exc.value.errno == errno.ENODEV and "enable bearer" in str(exc.value)
        with pytest.raises(TipcNetlinkError) as exc:
            nl.set_netid(1234)  # the node has joined a cluster: netid is frozen
        assert exc.value.errno == errno.EPERM
        with pytest.raises(TipcNetlinkError):
            nl.disable_bearer("eth:nosuchdev0")
        with pytest.raises(AddressError):
            nl.enable_bearer("eth0")  # no media prefix
        with pytest.raises(AddressError):
            nl.set_bearer(node.bearer, tolerance_ms=10)  # below the kernel's 50 ms
        with pytest.raises(AddressError):
            nl.set_identity("x" * 40)
        with pytest.raises(AddressError):
            nl.enable_bearer("udp:b9")  # needs localip


def test_fresh_node_identity_netid_udp_bearer(scratch_netns: str) -> None:
    with TipcNetlink(netns=scratch_netns) as nl:
        before = nl.net()
        assert before.identity == "" and before.addr == 0 and before.netid == 4711
        nl.set_netid(1234)
        nl.set_identity("scratch-node")
        nl.set_media("udp", tolerance_ms=700)
        nl.enable_bearer("udp:bx", localip="10.66.0.1")  # multicast discovery by default
        info = nl.net()
        assert (info.netid, info.identity) == (1234, "scratch-node")
        bearers = nl.bearers()
        assert [b.name for b in bearers] == ["udp:bx"]
        assert bearers[0].tolerance_ms == 700
        nl.set_bearer("udp:bx", tolerance_ms=900, priority=12)
        b = nl.bearers()[0]
        assert (b.tolerance_ms, b.priority) == (900, 12)
        with pytest.raises(TipcNetlinkError) as exc:
            nl.add_udp_remote("udp:bx", "10.66.0.9")  # not on a multicast-discovery bearer
        assert exc.value.errno == errno.EINVAL
        nl.disable_bearer("udp:bx")
        assert nl.bearers() == []
        # Replicast: a unicast remote; more peers can be added. (Another local port: the
        # old bearer's UDP socket is released asynchronously.)
        nl.enable_bearer("udp:by", localip="10.66.0.1", localport=6119, remoteip="10.66.0.8")
        nl.add_udp_remote("udp:by", "10.66.0.9")
        nl.disable_bearer("udp:by")
    assert udp_multicast_for(1234) == "228.0.4.210"


def test_legacy_address(scratch_netns: str) -> None:
    with TipcNetlink(netns=scratch_netns) as nl:
        nl.set_address("1.1.5")
        info = nl.net()
    assert info.legacy_address
    assert info.addr == (1 << 24) | (1 << 12) | 5
    for bad in ("1.1", "0.0.0", "256.1.1", 0, "a.b.c"):
        with pytest.raises(AddressError):
            parse_address(bad)  # type: ignore[arg-type]


async def test_async_netlink_inside_an_event_loop(eth_cluster: EthCluster) -> None:
    node = eth_cluster.nodes[1]
    async with AsyncTipcNetlink(netns=node.netns) as nl:
        info = await nl.net()
        links = await nl.links()
    assert info.identity == node.identity
    assert any(lk.up for lk in links if not lk.broadcast)


def test_missing_netns_is_transport_unavailable() -> None:
    from tipcrpc.errors import TransportUnavailable

    with pytest.raises(TransportUnavailable):
        TipcNetlink(netns="no-such-netns-here")
