"""Memory transport specifics: identities, kernel lookup details, helpers and fixtures.

The generic Transport contract is covered by tests/conformance/test_memory.py and fault
injection by test_memory_faults.py; this module covers node identities, the kernel lookup
details the memory cluster mirrors beyond the contract, and the test helpers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tipcrpc.addr import Scope, ServiceAddr, ServiceRange, node_addr_from_id
from tipcrpc.errors import AddressError, ClosedError, LocalProtocolError, TransportError
from tipcrpc.events import SNAPSHOT_COMPLETE, NodeDown, NodeUp, Published, SubFilter, Withdrawn
from tipcrpc.testing import Inbox, MemoryHarness
from tipcrpc.testing.conformance import snapshot, wait_event, wait_published, wait_withdrawn
from tipcrpc.transport.base import Delivery, DeliveryFailure, Returned
from tipcrpc.transport.memory import (
    MemoryCluster,
    MemoryTransport,
    default_cluster,
    reset_default_cluster,
)

from memory_helpers import ALL_NODES, T, _cluster, _ep  # noqa: E402


# ---------------------------------------------------------------------- nodes and identities


async def test_node_address_is_kernel_hash_of_identity() -> None:
    cluster = MemoryCluster()
    node = cluster.node("alpha")
    assert node.own_node.addr == node_addr_from_id(b"alpha")
    assert node.own_node.identity == "alpha"
    assert node.kind == "memory"
    assert cluster[node.own_node.addr] is node
    auto = cluster.node()
    assert auto.own_node.identity and auto.own_node.addr not in (0, node.own_node.addr)


async def test_identity_errors() -> None:
    cluster = MemoryCluster()
    cluster.node("abcdefgh")
    with pytest.raises(AddressError, match="already in use"):
        cluster.node("abcdefgh")
    with pytest.raises(AddressError, match="hashes to address"):
        cluster.node("efghabcd")  # same XOR of 32-bit words
    with pytest.raises(AddressError, match="longer than 16"):
        cluster.node("x" * 17)
    with pytest.raises(AddressError):
        cluster.node("")


async def test_closed_identity_can_rejoin_and_peers_see_it() -> None:
    cluster, (a, b) = await _cluster(2)
    nsub = await a.subscribe(ALL_NODES)
    await snapshot(nsub)
    addr = b.own_node.addr
    await b.aclose()
    assert await nsub.__anext__() == NodeDown(addr)
    async with cluster.node("n1") as again:
        assert again.own_node.addr == addr
        assert await nsub.__anext__() == NodeUp(addr)
    with pytest.raises(ClosedError):
        await b.open()
    await nsub.aclose()
    await cluster.aclose()


async def test_not_open_transport_refuses_work() -> None:
    cluster = MemoryCluster()
    node = cluster.node("a")
    with pytest.raises(ClosedError):
        await node.open_endpoint(Inbox())
    with pytest.raises(ClosedError):
        await node.subscribe(ServiceRange(T, 0, 1))
    await node.aclose()
    with pytest.raises(ClosedError):
        await node.open()


# ---------------------------------------------------------------------- kernel lookup details


async def test_anycast_uses_first_matching_range_only() -> None:
    # tipc_nametbl_lookup_anycast: the first range in (lower, upper) order wins.
    cluster, (a,) = await _cluster(1)
    sender, _ = await _ep(a)
    wide, wide_inbox = await _ep(a)
    narrow, narrow_inbox = await _ep(a)
    await narrow.publish(ServiceAddr(T, 5))
    await wide.publish(ServiceRange(T, 0, 10))
    for _ in range(4):
        sender.send(ServiceAddr(T, 5), b"x")
    assert len(await wide_inbox.get_many(4)) == 4
    await narrow.publish(ServiceAddr(T, 20))  # marker: nothing else is coming
    sender.send(narrow.address, b"end")
    assert (await narrow_inbox.get()).data == b"end"  # type: ignore[union-attr]
    await cluster.aclose()


async def test_anycast_round_robin_includes_local_and_remote() -> None:
    # Modern kernels have no local preference: strict round-robin over all publications,
    # starting with the newest (list_add), here the remote one.
    cluster, (a, b) = await _cluster(2)
    sender, _ = await _ep(a)
    local, li = await _ep(a)
    remote, ri = await _ep(b)
    name = ServiceAddr(T, 1)
    await local.publish(name)
    await remote.publish(name)
    await wait_published(a, name, remote.address)
    for i in range(6):
        sender.send(name, bytes([i]))
    got_local = [d.data[0] for d in await li.get_many(3)]  # type: ignore[union-attr]
    got_remote = [d.data[0] for d in await ri.get_many(3)]  # type: ignore[union-attr]
    assert got_remote == [0, 2, 4] and got_local == [1, 3, 5]
    await cluster.aclose()


async def test_anycast_rerouted_once_at_destination() -> None:
    # The destination node re-does the lookup once when the chosen socket has gone.
    cluster, (a, b) = await _cluster(2)
    sender, sender_inbox = await _ep(a)
    first, _ = await _ep(b)
    second, second_inbox = await _ep(b)
    name = ServiceAddr(T, 1)
    await first.publish(name)
    await wait_published(a, name, first.address)
    sender.send(name, b"one")  # resolved at a to `first`, in flight
    await second.publish(name)
    await first.aclose()
    got = await second_inbox.get()
    assert got == Delivery(b"one", sender.address, name)
    assert b.statistics()["messages_rerouted"] == 1
    assert len(sender_inbox) == 0
    await cluster.aclose()


async def test_anycast_without_alternative_returns_no_name() -> None:
    cluster, (a, b) = await _cluster(2)
    sender, inbox = await _ep(a)
    target, _ = await _ep(b)
    name = ServiceAddr(T, 1)
    await target.publish(name)
    await wait_published(a, name, target.address)
    sender.send(name, b"x" * 2000)
    await target.aclose()
    got = await inbox.get()
    assert isinstance(got, Returned)
    assert got.reason == DeliveryFailure.NO_NAME and got.dest == name
    assert got.data == b"x" * 1024  # RETURNED_DATA_MAX
    await cluster.aclose()


async def test_multicast_to_node_without_matching_socket_is_counted() -> None:
    cluster, (a, b) = await _cluster(2)
    sender, _ = await _ep(a)
    target, _ = await _ep(b)
    r = ServiceRange(T, 0, 9)
    await target.publish(r)
    await wait_published(a, r, target.address)
    sender.send(r, b"x")
    await target.aclose()
    sub = await a.subscribe(r)
    await wait_event(sub, lambda ev: isinstance(ev, Withdrawn))  # b processed our message first
    assert b.statistics()["multicast_unmatched"] == 1
    await sub.aclose()
    await cluster.aclose()


async def test_publish_is_idempotent_and_scopes_are_separate() -> None:
    cluster, (a,) = await _cluster(1)
    ep, _ = await _ep(a)
    sub = await a.subscribe(ServiceRange(T, 0, 10))
    await snapshot(sub)
    await ep.publish(ServiceAddr(T, 1))
    await ep.publish(ServiceAddr(T, 1))
    await ep.publish(ServiceAddr(T, 1), Scope.NODE)
    assert [await sub.__anext__() for _ in range(2)] == [Published(ServiceRange(T, 1, 1), ep.address)] * 2
    assert len(sub) == 0
    assert ep.bindings == [(ServiceRange(T, 1, 1), Scope.CLUSTER), (ServiceRange(T, 1, 1), Scope.NODE)]
    assert a.statistics()["publications"] == 2
    await ep.withdraw(ServiceAddr(T, 1), Scope.NODE)
    assert await sub.__anext__() == Withdrawn(ServiceRange(T, 1, 1), ep.address)
    await sub.aclose()
    await cluster.aclose()


async def test_bad_arguments_raise_typed_errors() -> None:
    cluster, (a,) = await _cluster(1)
    ep, _ = await _ep(a)
    await ep.publish(ServiceAddr(T, 1))
    with pytest.raises(AddressError):
        await ep.publish((T, 1))  # type: ignore[arg-type]
    with pytest.raises(AddressError):
        await ep.publish(ServiceAddr(T, 1), scope=7)  # type: ignore[arg-type]
    with pytest.raises(AddressError):
        ep.send((T, 1), b"x")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        ep.send(ServiceAddr(T, 1), "text")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        ep.send(ServiceAddr(T, 1), b"x", importance=9)  # type: ignore[arg-type]
    with pytest.raises(AddressError):
        await a.subscribe(ServiceRange(T, 0, 1), filter=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await a.open_endpoint(None)  # type: ignore[arg-type]
    await cluster.aclose()


async def test_bytes_like_payloads_are_copied() -> None:
    cluster, (a,) = await _cluster(1)
    ep, inbox = await _ep(a)
    buf = bytearray(b"abc")
    ep.send(ep.address, buf)
    buf[0] = ord("X")
    ep.send(ep.address, memoryview(b"def"))
    assert [d.data for d in await inbox.get_many(2)] == [b"abc", b"def"]  # type: ignore[union-attr]
    await cluster.aclose()


async def test_max_message_is_configurable() -> None:
    cluster, (a,) = await _cluster(1, max_message=2000)
    ep, inbox = await _ep(a)
    assert a.max_message == 2000
    ep.send(ep.address, bytes(2000))
    await inbox.get()
    with pytest.raises(Exception) as info:
        ep.send(ep.address, bytes(2001))
    assert type(info.value).__name__ == "FrameTooLarge"
    await cluster.aclose()


async def test_handler_exception_is_reported_and_delivery_continues() -> None:
    cluster, (a,) = await _cluster(1)
    errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    inbox = Inbox()

    def handler(item: Delivery | Returned) -> None:
        if isinstance(item, Delivery) and item.data == b"boom":
            raise RuntimeError("handler bug")
        inbox(item)

    ep = await a.open_endpoint(handler)
    ep.send(ep.address, b"boom")
    ep.send(ep.address, b"fine")
    assert (await inbox.get()).data == b"fine"  # type: ignore[union-attr]
    loop.set_exception_handler(None)
    assert len(errors) == 1 and isinstance(errors[0]["exception"], RuntimeError)
    await cluster.aclose()


# ---------------------------------------------------------------------- helpers


async def test_inbox_helpers() -> None:
    inbox = Inbox()
    with pytest.raises(asyncio.QueueEmpty):
        inbox.get_nowait()
    d = Delivery(b"x", ServiceAddr(T, 1), ServiceAddr(T, 1))  # type: ignore[arg-type]
    waiter = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox(d)
    assert await waiter is d
    r = Returned(b"y", ServiceAddr(T, 1), DeliveryFailure.NO_PORT)
    inbox(d)
    inbox(r)
    assert len(inbox) == 2 and list(inbox) == [d, r]
    assert await inbox.get_delivery() is d
    assert await inbox.get_returned() is r
    inbox(r)
    with pytest.raises(AssertionError):
        await inbox.get_delivery()
    inbox(d)
    assert inbox.clear() == [d]
    # A cancelled getter does not swallow an item.
    cancelled = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    inbox(d)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert inbox.get_nowait() is d


async def test_subscription_get_nowait_and_repr() -> None:
    cluster, (a,) = await _cluster(1)
    sub = await a.subscribe(ServiceAddr(T, 1), filter=SubFilter.SERVICE)
    assert sub.target == ServiceRange(T, 1, 1) and sub.filter is SubFilter.SERVICE
    assert "active" in repr(sub)
    assert sub.get_nowait() == SNAPSHOT_COMPLETE
    assert sub.get_nowait() is None
    await sub.aclose()
    assert sub.closed and sub.get_nowait() is None
    async with await a.subscribe(ServiceRange(T, 0, 1)) as sub2:
        assert await snapshot(sub2) == []
    assert sub2.closed
    await cluster.aclose()


async def test_statistics_count_traffic() -> None:
    cluster, (a, b) = await _cluster(2)
    sender, inbox = await _ep(a)
    receiver, rinbox = await _ep(b)
    sender.send(receiver.address, b"12345")
    await rinbox.get()
    gone, _ = await _ep(b)
    addr = gone.address
    await gone.aclose()
    sender.send(addr, b"x")
    await inbox.get()
    sa, sb = a.statistics(), b.statistics()
    assert sa["messages_sent"] == 2 and sa["bytes_sent"] == 6 and sa["messages_returned"] == 1
    assert sb["messages_received"] == 1 and sb["bytes_received"] == 5 and sb["messages_rejected"] == 1
    assert sa["links"] == 1 and sb["endpoints"] == 1
    await cluster.aclose()


async def test_default_cluster_is_a_process_singleton() -> None:
    previous = default_cluster()
    try:
        assert default_cluster() is previous
        fresh = reset_default_cluster()
        assert default_cluster() is fresh and fresh is not previous
        async with fresh.node("x") as node:
            assert node in fresh.nodes
    finally:
        reset_default_cluster(previous)


def test_cluster_reused_on_a_new_loop_drops_stale_nodes() -> None:
    cluster = MemoryCluster()

    async def first() -> None:
        await cluster.node("a").open()  # never closed: its loop dies with it

    async def second() -> int:
        async with cluster.node("a") as node:  # identity free again
            return len(cluster.nodes) + (node.own_node.addr != 0)

    asyncio.run(first())
    assert asyncio.run(second()) == 2


async def test_cluster_bound_to_a_running_loop_refuses_another() -> None:
    cluster = MemoryCluster()
    async with cluster.node("a"):

        def other_loop() -> None:
            async def join() -> None:
                await cluster.node("b").open()

            asyncio.run(join())

        with pytest.raises(TransportError):
            await asyncio.to_thread(other_loop)


async def test_memory_harness_and_plugin_fixtures(
    memory_cluster: MemoryCluster, memory_transport: MemoryTransport
) -> None:
    assert memory_transport.cluster is memory_cluster and memory_transport.is_open
    harness = MemoryHarness(seed=1)
    nodes = await harness.start(2)
    await harness.kill(nodes[1])
    assert harness.cluster.nodes == [nodes[0]]
    with pytest.raises(AddressError):
        await harness.kill(memory_cluster.node("other"))  # not the harness's cluster
    await harness.aclose()


async def test_wait_withdrawn_helper() -> None:
    cluster, (a, b) = await _cluster(2)
    ep, _ = await _ep(b)
    await wait_withdrawn(a, ServiceAddr(T, 1), ep.address)  # never published: returns at once
    await ep.publish(ServiceAddr(T, 1))
    await wait_published(a, ServiceAddr(T, 1), ep.address)
    await ep.aclose()
    await wait_withdrawn(a, ServiceAddr(T, 1), ep.address)
    await cluster.aclose()
