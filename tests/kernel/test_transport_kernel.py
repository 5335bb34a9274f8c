"""Kernel-transport behaviour beyond the shared contract (guest only).

Returned ``OVERLOAD`` (the RPC layer's chunk flow control depends on it), importance
budgets, topology resubscription after a lost connection, duplicate-bind warnings, the
probe, and namespace errors.
"""

from __future__ import annotations

import os
import socket
import warnings
from typing import List, Union

import anyio
import pytest

from tipcrpc.addr import Importance, Scope, ServiceAddr, ServiceRange, service_type
from tipcrpc.errors import ClosedError, LocalProtocolError, TransportUnavailable
from tipcrpc.events import Published, Withdrawn
from tipcrpc.testing.conformance import snapshot, wait_published
from tipcrpc.transport.base import Delivery, DeliveryFailure, Returned
from tipcrpc.transport.inbox import Inbox
from tipcrpc.transport.kernel import DuplicatePublicationWarning, KernelTransport, probe
from tipcrpc.transport.kernel import netns as knetns
from tipcrpc.transport.kernel import wire

from ktipc_cluster import EthCluster

TIMEOUT = 20


def _stype(tag: str) -> int:
    return service_type(f"tipcrpc.kernel.test.{tag}.{os.getpid()}")


def _raw_receiver(netns: str, stype: int) -> socket.socket:
    """A plain RDM socket bound to {stype, 1} that nobody reads: its queue fills up."""
    sock = knetns.create_socket(netns, wire.AF_TIPC, socket.SOCK_RDM)
    sock.bind((wire.TIPC_ADDR_NAMESEQ, stype, 1, 1, int(Scope.CLUSTER)))
    return sock


async def _flood_until_overload(eth_cluster: EthCluster, importance: Importance) -> int:
    """Send 60 kB datagrams to a receiver that never reads; return how many got in."""
    a, b = eth_cluster.nodes[0], eth_cluster.nodes[1]
    stype = _stype(f"overload{int(importance)}")
    receiver = _raw_receiver(b.netns, stype)
    try:
        async with KernelTransport(netns=a.netns) as t:
            inbox = Inbox()
            ep = await t.open_endpoint(inbox)
            name = ServiceAddr(stype, 1)
            await wait_published(t, name, wire.socket_addr_from(receiver.getsockname()))
            n = 400
            for i in range(n):
                ep.send(name, i.to_bytes(4, "big") + bytes(60_000), importance=importance)
                if i % 32 == 31:
                    await ep.drain()
            returned: List[Returned] = []
            with anyio.fail_after(TIMEOUT):
                # Every datagram either sits in the receiver's queue or comes back.
                while True:
                    queued = receiver.getsockopt(wire.SOL_TIPC, wire.TIPC_SOCK_RECVQ_DEPTH)
                    if queued + len(returned) >= n:
                        break
                    item = await inbox.get()
                    assert isinstance(item, Returned), item
                    returned.append(item)
            assert queued + len(returned) == n
            assert returned, "the receive queue never overflowed"
            for r in returned:
                assert r.reason is DeliveryFailure.OVERLOAD
                assert r.dest == name
                assert len(r.data) == 1024  # RETDATA is capped at 1 kB
            first = int.from_bytes(returned[0].data[:4], "big")
            assert first == queued  # in order: everything after the first overflow came back
            assert t.statistics()["returned"] == len(returned)
            return queued
    finally:
        receiver.close()


async def test_overload_comes_back_as_returned(eth_cluster: EthCluster) -> None:
    low = await _flood_until_overload(eth_cluster, Importance.LOW)
    high = await _flood_until_overload(eth_cluster, Importance.HIGH)
    print(f"\n[kernel] 60 kB datagrams queued before OVERLOAD: LOW {low}, HIGH {high}")
    # The kernel's connectionless budget is rcvbuf << importance: HIGH gets 4x LOW.
    assert high >= 3 * low


async def test_topology_resubscribes_and_reconciles(eth_cluster: EthCluster) -> None:
    node = eth_cluster.nodes[0]
    stype = _stype("resub")
    async with KernelTransport(netns=node.netns) as t:
        ep = await t.open_endpoint(Inbox())
        x, y, z = (ServiceAddr(stype, i) for i in (1, 2, 3))
        await ep.publish(x)
        with anyio.fail_after(TIMEOUT):
            sub = await t.subscribe(ServiceRange(stype, 0, 100))
            assert await snapshot(sub) == [Published(x.as_range(), ep.address)]
            assert t._topology is not None
            t._topology.break_connection()
            # Changes while the connection is down come out as differences, once.
            await ep.withdraw(x)
            await ep.publish(y)
            got = [await sub.__anext__(), await sub.__anext__()]
            assert got == [Withdrawn(x.as_range(), ep.address), Published(y.as_range(), ep.address)]
            await ep.publish(z)
            assert await sub.__anext__() == Published(z.as_range(), ep.address)
            assert t.statistics()["topology_reconnects"] == 1
            await sub.aclose()


async def test_cancelled_subscriptions_stay_silent(eth_cluster: EthCluster) -> None:
    """Cancels (network byte order, byte-identical) really remove the kernel subscription."""
    node = eth_cluster.nodes[0]
    stype = _stype("cancel")
    async with KernelTransport(netns=node.netns) as t:
        ep = await t.open_endpoint(Inbox())

        async def sync_point() -> None:
            # The topology server handles one connection's messages in order: once a new
            # subscription's snapshot marker is back, everything sent before was handled
            # and every event caused before it has been counted.
            probe_sub = await t.subscribe(ServiceRange(stype + 1, 0, 10))
            assert await snapshot(probe_sub) == []
            await probe_sub.aclose()

        with anyio.fail_after(TIMEOUT):
            subs = [await t.subscribe(ServiceRange(stype, 0, 10)) for _ in range(3)]
            for sub in subs:
                assert await snapshot(sub) == []
                await sub.aclose()
            await sync_point()  # the three cancels have been processed
            before = t.statistics()["topology_events"]
            await ep.publish(ServiceAddr(stype, 5))  # would reach the 3 subscriptions if still alive
            await sync_point()
            assert t.statistics()["topology_events"] - before == 1  # the sync point's marker only


async def test_duplicate_publication_warns_once_per_extra_endpoint(eth_cluster: EthCluster) -> None:
    a, b = eth_cluster.nodes[0], eth_cluster.nodes[1]
    name = ServiceAddr(_stype("dup"), 1)
    async with KernelTransport(netns=a.netns) as ta, KernelTransport(netns=b.netns) as tb:
        e1 = await ta.open_endpoint(Inbox())
        e2 = await ta.open_endpoint(Inbox())
        e3 = await tb.open_endpoint(Inbox())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            await e1.publish(name)
            await e1.publish(name)  # same endpoint again: idempotent
            await e1.publish(name, Scope.NODE)  # same endpoint, other scope: deliberate
            await e3.publish(name)  # another node: not a local duplicate
        assert [w for w in caught if issubclass(w.category, DuplicatePublicationWarning)] == []
        with pytest.warns(DuplicatePublicationWarning, match="2 endpoints"):
            await e2.publish(name)
        await e2.aclose()
        await e1.aclose()


async def test_empty_datagram_and_closed_endpoint(eth_cluster: EthCluster) -> None:
    async with KernelTransport(netns=eth_cluster.nodes[0].netns) as t:
        ep = await t.open_endpoint(Inbox())
        with pytest.raises(LocalProtocolError, match="empty"):
            ep.send(ep.address, b"")
        await ep.aclose()
        with pytest.raises(ClosedError):
            await ep.publish(ServiceAddr(_stype("closed"), 1))
    with pytest.raises(ClosedError):
        await t.open_endpoint(Inbox())


async def test_own_node_and_probe(eth_cluster: EthCluster) -> None:
    for node in eth_cluster.nodes:
        result = probe(node.netns)
        assert result.available and result.addr == node.addr and result.identity == node.identity
        assert result.diagnostics == []
        async with KernelTransport(netns=node.netns) as t:
            assert t.kind == "kernel"
            assert (t.own_node.addr, t.own_node.identity) == (node.addr, node.identity)
            ep = await t.open_endpoint(Inbox())
            assert ep.address.node == node.addr


async def test_missing_namespace_is_transport_unavailable() -> None:
    assert not probe("no-such-netns-here").available
    with pytest.raises(TransportUnavailable, match="does not exist"):
        async with KernelTransport(netns="no-such-netns-here"):
            pass


async def test_node_without_bearer_works_locally() -> None:
    """A fresh namespace: TIPC usable, address 0, the probe says how to add a bearer."""
    from pyroute2 import netns

    name = f"k{os.getpid() % 100000}lone"
    netns.create(name)
    try:
        result = probe(name)
        assert result.available and result.addr == 0
        assert result.diagnostics and "tipc bearer enable" in result.diagnostics[0]
        async with KernelTransport(netns=name) as t:
            inbox = Inbox()
            ep = await t.open_endpoint(inbox)
            name_ = ServiceAddr(_stype("lone"), 1)
            await ep.publish(name_, Scope.NODE)
            ep.send(name_, b"local")
            with anyio.fail_after(TIMEOUT):
                got: Union[Delivery, Returned] = await inbox.get()
            assert isinstance(got, Delivery) and got.data == b"local" and got.dest == name_
            assert got.source == ep.address
    finally:
        netns.remove(name)
