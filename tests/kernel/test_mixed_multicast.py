"""The mixed cluster again, with multicast discovery everywhere (no replicast peers at all).

Kernel nodes enable their UDP bearer without ``remoteip`` (discovery on the netid's group
228.0.18.103:6118); userspace nodes set ``TIPCRPC_USER_MULTICAST=1`` and list no peers, so
they find everyone, and everyone finds them, through the group on the bridge. One test:
links, name tables both ways, calls both ways, and multicast both ways with one userspace
destination node (a kernel with a multicast bearer replicates over the unicast links only
up to its broadcast threshold; above it, it uses the broadcast link, which userspace nodes
do not receive: see docs/transports.md).
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Iterator

import anyio
import pytest

import tipcrpc
from tipcrpc.addr import service_type
from tipcrpc.transport.kernel import KernelTransport
from tipcrpc.transport.kernel import netns as knetns
from tipcrpc.transport.kernel import wire
from tipcrpc.transport.kernel.netlink import TipcNetlink

from ktipc_cluster import wait_published
from mixed_cluster import MixedCluster

#: The module's cluster is built by its first test: four Python processes starting in the
#: emulated guest (about 80 s on a loaded host, START_S at most) count against its timeout.
pytestmark = pytest.mark.timeout(600)

SERVICE = f"tipcrpc.kernel.mixed.mcast.{os.getpid()}"
STYPE = service_type(SERVICE)
RAW_TYPE = 0x7E57_3000 + os.getpid() % 0x1000
INSTANCE = {"k1": 1, "k2": 2, "u1": 3, "u2": 4}
START_S = 300.0


@pytest.fixture(scope="module")
def mcluster() -> Iterator[MixedCluster]:
    cluster = MixedCluster(discovery="multicast", tolerance_ms=1000, subnet=79, tag=f"q{os.getpid() % 100000}")
    try:
        cluster.start_kernel()
        for node in cluster.user_nodes:
            cluster.start_agent(node, SERVICE, INSTANCE[node.name], f"{RAW_TYPE}:{100 + INSTANCE[node.name]}")
        for node in cluster.kernel_nodes:
            cluster.start_server(node, SERVICE, INSTANCE[node.name])
        for proc in list(cluster.agents.values()) + list(cluster.servers.values()):
            proc.wait_ready(START_S)
        cluster.wait_mesh(60)
        yield cluster
    finally:
        cluster.destroy()


def test_multicast_discovery_cluster(mcluster: MixedCluster) -> None:
    k1, u1 = mcluster.node("k1"), mcluster.node("u1")
    with TipcNetlink(netns=k1.netns) as nl:
        assert sorted(ln.up for ln in nl.links() if not ln.broadcast) == [True] * 3
    # name tables converge both ways
    everyone = set(INSTANCE.values())
    for k in mcluster.kernel_nodes:
        wait_published(k.netns, STYPE, everyone, 60)
        with TipcNetlink(netns=k.netns) as nl:
            assert {(p.lower, p.node) for p in nl.name_table() if p.type == STYPE} == \
                {(INSTANCE[n.name], n.addr) for n in mcluster.nodes}
    for agent in mcluster.agents.values():
        agent.request("wait_names", type=STYPE, instances=sorted(everyone), timeout_s=60, timeout=70)
    # calls both ways (this test is synchronous: TipcNetlink runs its own event loop)
    async def kernel_call_all() -> list[str]:
        with anyio.fail_after(120):
            async with KernelTransport(netns=k1.netns) as t, tipcrpc.connect(t) as client:
                await client.wait_for(SERVICE, 4, timeout=60)
                results = await client.options(timeout=30).call_all(SERVICE, "whoami")
                return sorted(r.value for r in results)

    assert asyncio.run(kernel_call_all()) == ["k1", "k2", "u1", "u2"]
    agent = mcluster.agents["u1"]
    assert agent.request("call_all", service=SERVICE, method="whoami", call_timeout=30) == ["k1", "k2", "u1", "u2"]
    # kernel multicast to one userspace node, and userspace multicast to both kernel nodes
    inst = 100 + INSTANCE["u1"]
    wait_published(k1.netns, RAW_TYPE, {inst}, 60)
    data = b"kernel multicast " + os.urandom(8)
    with knetns.create_socket(k1.netns, wire.AF_TIPC, socket.SOCK_RDM) as s:
        s.sendto(data, (wire.TIPC_ADDR_NAMESEQ, RAW_TYPE, inst, inst, 0))
    ev = agent.wait_event(lambda e: e["ev"] == "raw" and e["data"] == data.hex(), 60, "kernel multicast")
    assert ev["src"][0] == k1.addr
    socks = []
    try:
        for k in mcluster.kernel_nodes:
            s = knetns.create_socket(k.netns, wire.AF_TIPC, socket.SOCK_RDM)
            s.bind((wire.TIPC_ADDR_NAMESEQ, RAW_TYPE, 200 + INSTANCE[k.name], 200 + INSTANCE[k.name], 2))
            s.settimeout(60)
            socks.append(s)
        agent.request("wait_names", type=RAW_TYPE, instances=[201, 202], timeout_s=60, timeout=70)
        back = b"user multicast " + os.urandom(8)
        agent.request("mcast", type=RAW_TYPE, lower=200, upper=299, data=back.hex())
        for s in socks:
            got_data, src = s.recvfrom(1000)
            assert got_data == back and src[1] == u1.addr
    finally:
        for s in socks:
            s.close()
