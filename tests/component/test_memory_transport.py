"""Memory transport specifics: kernel lookup details, fault injection, determinism, helpers.

The generic Transport contract is covered by tests/conformance/test_memory.py; this module
covers what only the memory cluster offers (kill/partition/heal, link tolerance, link
faults, seeded determinism) and the kernel details it mirrors beyond the contract.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from tipcrpc.addr import LINK_STATE, NODE_STATE, U32_MAX, Scope, ServiceAddr, ServiceRange, node_addr_from_id
from tipcrpc.errors import AddressError, ClosedError, LocalProtocolError, ServiceUnreachable, TransportError
from tipcrpc.events import SNAPSHOT_COMPLETE, LinkDown, LinkUp, NodeDown, NodeUp, Published, SubFilter, Withdrawn
from tipcrpc.testing import Inbox, MemoryHarness
from tipcrpc.testing.conformance import snapshot, wait_event, wait_published, wait_withdrawn
from tipcrpc.transport.base import Delivery, DeliveryFailure, Returned
from tipcrpc.transport.memory import (
    LinkFaults,
    MemoryCluster,
    MemoryTransport,
    default_cluster,
    reset_default_cluster,
)

T = 1000  # service type used throughout
TIMEOUT = 5.0
ALL_NODES = ServiceRange(NODE_STATE, 0, U32_MAX)
ALL_LINKS = ServiceRange(LINK_STATE, 0, U32_MAX)


async def _ep(t: MemoryTransport) -> tuple[Any, Inbox]:
    inbox = Inbox()
    return await t.open_endpoint(inbox), inbox


async def _cluster(n: int, **kwargs: Any) -> tuple[MemoryCluster, list[MemoryTransport]]:
    cluster = MemoryCluster(**kwargs)
    nodes = [cluster.node(f"n{i}") for i in range(n)]
    for node in nodes:
        await node.open()
    return cluster, nodes


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
    # Modern kernels have no local preference: strict round-robin over all publications.
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
    assert got_local == [0, 2, 4] and got_remote == [1, 3, 5]
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


# ---------------------------------------------------------------------- kill


async def test_kill_returns_messages_in_flight() -> None:
    cluster, (a, b) = await _cluster(2)
    sender, inbox = await _ep(a)
    target, target_inbox = await _ep(b)
    sender.send(target.address, b"in flight")  # queued on the link, not yet delivered
    cluster.kill(b)
    got = await inbox.get()
    assert got == Returned(b"in flight", target.address, DeliveryFailure.NO_NODE)
    assert len(target_inbox) == 0
    assert not b.is_open and target.closed
    with pytest.raises(ClosedError):
        target.send(sender.address, b"x")
    with pytest.raises(ServiceUnreachable):
        sender.send(target.address, b"x")  # no link to that node any more
    await cluster.aclose()


async def test_kill_ends_the_victims_subscriptions() -> None:
    cluster, (a, b) = await _cluster(2)
    sub = await b.subscribe(ServiceRange(T, 0, 1))
    cluster.kill(b)
    assert [ev async for ev in sub] == [SNAPSHOT_COMPLETE]
    cluster.kill(b)  # already dead: no-op
    await cluster.aclose()


async def test_kill_with_tolerance_holds_then_returns() -> None:
    cluster, (a, b) = await _cluster(2, tolerance=0.05)
    sender, inbox = await _ep(a)
    target, _ = await _ep(b)
    name = ServiceAddr(T, 1)
    await target.publish(name)
    await wait_published(a, name, target.address)
    nsub = await a.subscribe(ALL_NODES)
    await snapshot(nsub)
    cluster.kill(b)
    # Within the tolerance the peer still looks alive: sending by name works...
    sender.send(name, b"late")
    with anyio.fail_after(TIMEOUT):
        # ...and the message comes back once the link is declared down.
        assert await inbox.get() == Returned(b"late", name, DeliveryFailure.NO_NODE)
        assert await nsub.__anext__() == NodeDown(b.own_node.addr)
    with pytest.raises(ServiceUnreachable):
        sender.send(name, b"x")
    await nsub.aclose()
    await cluster.aclose()


async def test_graceful_close_delivers_what_was_sent_first() -> None:
    cluster, (a, b) = await _cluster(2)
    receiver, inbox = await _ep(a)
    server, _ = await _ep(b)
    nsub = await a.subscribe(ALL_NODES)
    await snapshot(nsub)
    server.send(receiver.address, b"last words")
    await b.aclose()  # returns once a has seen b leave
    assert await inbox.get() == Delivery(b"last words", server.address, receiver.address)
    assert await nsub.__anext__() == NodeDown(b.own_node.addr)
    assert cluster.nodes == [a]
    await nsub.aclose()
    await cluster.aclose()


async def test_transport_close_finishes_its_subscriptions_after_queued_events() -> None:
    cluster, (a,) = await _cluster(1)
    ep, _ = await _ep(a)
    sub = await a.subscribe(ServiceRange(T, 0, 9))
    await ep.publish(ServiceAddr(T, 1))
    await a.aclose()
    assert [ev async for ev in sub] == [
        SNAPSHOT_COMPLETE,
        Published(ServiceRange(T, 1, 1), ep.address),
        Withdrawn(ServiceRange(T, 1, 1), ep.address),
    ]
    await cluster.aclose()


# ---------------------------------------------------------------------- partition / heal


async def test_partition_purges_both_sides_and_heal_restores() -> None:
    cluster, (a, b, c) = await _cluster(3)
    ea, _ = await _ep(a)
    eb, ib = await _ep(b)
    await ea.publish(ServiceAddr(T, 1))
    await eb.publish(ServiceAddr(T, 2))
    for t in (a, b, c):
        await wait_published(t, ServiceAddr(T, 1), ea.address)
        await wait_published(t, ServiceAddr(T, 2), eb.address)
    pubs_a = await a.subscribe(ServiceRange(T, 0, 9))
    links_a = await a.subscribe(ALL_LINKS)
    nodes_a = await a.subscribe(ALL_NODES)
    for sub in (pubs_a, links_a, nodes_a):
        await snapshot(sub)

    cluster.partition(a, b)
    assert cluster.partitioned(b, a)
    assert await pubs_a.__anext__() == Withdrawn(ServiceRange(T, 2, 2), eb.address)
    assert await links_a.__anext__() == LinkDown(b.own_node.addr, 0)
    assert await nodes_a.__anext__() == NodeDown(b.own_node.addr)
    with pytest.raises(ServiceUnreachable):
        ea.send(ServiceAddr(T, 2), b"x")
    with pytest.raises(ServiceUnreachable):
        ea.send(eb.address, b"x")
    # c still sees both, and b still sees c.
    ec, _ = await _ep(c)
    ec.send(ServiceAddr(T, 2), b"via c")
    assert (await ib.get()).data == b"via c"  # type: ignore[union-attr]
    assert set(b.name_table.links) == {c.own_node.addr}

    cluster.heal(a, b)
    assert await links_a.__anext__() == LinkUp(b.own_node.addr, 0)
    assert await nodes_a.__anext__() == NodeUp(b.own_node.addr)
    assert await pubs_a.__anext__() == Published(ServiceRange(T, 2, 2), eb.address)  # bulk
    ea.send(ServiceAddr(T, 2), b"healed")
    assert (await ib.get()).data == b"healed"  # type: ignore[union-attr]
    for sub in (pubs_a, links_a, nodes_a):
        await sub.aclose()
    await cluster.aclose()


async def test_partition_within_tolerance_then_heal_loses_nothing() -> None:
    cluster, (a, b) = await _cluster(2, tolerance=60.0)
    sender, sender_inbox = await _ep(a)
    receiver, inbox = await _ep(b)
    name = ServiceAddr(T, 1)
    await receiver.publish(name)
    await wait_published(a, name, receiver.address)
    cluster.partition(a, b)
    for i in range(5):
        sender.send(name, bytes([i]))
    other, _ = await _ep(b)
    await other.publish(ServiceAddr(T, 2))  # name distribution is held as well
    await asyncio.sleep(0)
    assert len(inbox) == 0
    cluster.heal(a, b)
    assert [d.data[0] for d in await inbox.get_many(5)] == list(range(5))  # type: ignore[union-attr]
    await wait_published(a, ServiceAddr(T, 2), other.address)
    assert len(sender_inbox) == 0
    assert a.own_node.addr in b.name_table.nodes
    await cluster.aclose()


async def test_partition_after_tolerance_returns_held_messages() -> None:
    cluster, (a, b) = await _cluster(2, tolerance=0.02)
    sender, inbox = await _ep(a)
    receiver, _ = await _ep(b)
    cluster.partition(a, b)
    sender.send(receiver.address, b"held")
    with anyio.fail_after(TIMEOUT):
        assert await inbox.get() == Returned(b"held", receiver.address, DeliveryFailure.NO_NODE)
    cluster.heal(a, b)
    sender.send(receiver.address, b"x")  # link is back: accepted
    await cluster.aclose()


async def test_partitioned_node_joining_later_gets_no_link() -> None:
    cluster = MemoryCluster()
    a, b = cluster.node("a"), cluster.node("b")
    cluster.partition(a, b)
    async with a, b:
        assert b.own_node.addr not in a.name_table.nodes
        cluster.heal(a, b)
        assert b.own_node.addr in a.name_table.nodes
    with pytest.raises(AddressError):
        cluster.partition(a, a)


# ---------------------------------------------------------------------- link faults


async def test_delay_and_jitter_preserve_order() -> None:
    cluster, (a, b) = await _cluster(2, seed=3)
    cluster.faults = LinkFaults(delay=0.001, jitter=0.004, loss=0.3, retransmit_delay=0.002)
    sender, _ = await _ep(a)
    receiver, inbox = await _ep(b)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(100):
        sender.send(receiver.address, i.to_bytes(2, "big"))
    with anyio.fail_after(TIMEOUT):
        got = await inbox.get_many(100)
    assert [int.from_bytes(d.data, "big") for d in got] == list(range(100))  # type: ignore[union-attr]
    assert loop.time() - start >= 0.001
    await cluster.aclose()


async def test_per_link_faults_override_the_default() -> None:
    cluster, (a, b, c) = await _cluster(3)
    cluster.faults = LinkFaults(duplicate=0.99)
    cluster.set_faults(a, b, None)  # perfect link between a and b
    assert cluster.faults_between(a, b) is None
    assert cluster.faults_between(b, c) == cluster.faults
    assert cluster.faults_between(a, a) is None
    sender, _ = await _ep(a)
    rb, ib = await _ep(b)
    rc, ic = await _ep(c)
    sender.send(rb.address, b"b")
    sender.send(rc.address, b"c")
    sender.send(rb.address, b"b-end")
    assert [d.data for d in await ib.get_many(2)] == [b"b", b"b-end"]  # type: ignore[union-attr]
    assert [d.data for d in await ic.get_many(2)] == [b"c", b"c"]  # type: ignore[union-attr]
    cluster.clear_faults(a, b)
    assert cluster.faults_between(a, b) == cluster.faults
    cluster.clear_faults()
    await cluster.aclose()


async def test_duplicate_option_delivers_adjacent_copies() -> None:
    cluster, (a, b) = await _cluster(2, seed=5)
    cluster.set_faults(a, b, LinkFaults(duplicate=0.5))
    sender, _ = await _ep(a)
    receiver, inbox = await _ep(b)
    for i in range(50):
        sender.send(receiver.address, bytes([i]))
    cluster.set_faults(a, b, None)
    sender.send(receiver.address, b"end")
    got: list[int] = []
    while True:
        item = await inbox.get()
        assert isinstance(item, Delivery)
        if item.data == b"end":
            break
        got.append(item.data[0])
    assert sorted(set(got)) == list(range(50))  # nothing lost
    assert got == sorted(got)  # order kept, copies adjacent
    assert 50 < len(got) < 100  # some, not all, duplicated
    await cluster.aclose()


def test_link_faults_validation() -> None:
    assert LinkFaults().is_null
    for bad in ({"delay": -1}, {"loss": 1.0}, {"duplicate": -0.1}, {"jitter": "x"}, {"loss": True}):
        with pytest.raises(ValueError):
            LinkFaults(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        MemoryCluster(max_message=10)


# ---------------------------------------------------------------------- determinism


async def _scenario(seed: int) -> tuple[list[int], list[int], list[int]]:
    """Anycast choices, duplicated message ids and port numbers for one seed."""
    cluster, (a, b, c) = await _cluster(3, seed=seed)
    cluster.faults = LinkFaults(duplicate=0.3, jitter=0.001, loss=0.2, retransmit_delay=0.001)
    sender, _ = await _ep(a)
    receivers = []
    chosen: dict[int, int] = {}
    dups: list[int] = []
    done = asyncio.Event()
    expected = 40
    seen: list[int] = []

    def make_handler(idx: int) -> Any:
        def handler(item: Delivery | Returned) -> None:
            assert isinstance(item, Delivery)
            n = item.data[0]
            if n in seen:
                dups.append(n)
            else:
                seen.append(n)
                chosen[n] = idx
            if len(seen) == expected:
                done.set()

        return handler

    for idx, t in enumerate((b, c)):
        ep = await t.open_endpoint(make_handler(idx))
        await ep.publish(ServiceAddr(T, 1))
        await wait_published(a, ServiceAddr(T, 1), ep.address)
        receivers.append(ep)
    for i in range(expected):
        sender.send(ServiceAddr(T, 1), bytes([i]))
    with anyio.fail_after(TIMEOUT):
        await done.wait()
    ports = [sender.address.port] + [ep.address.port for ep in receivers]
    await cluster.aclose()
    return [chosen[n] for n in range(expected)], sorted(dups), ports


async def test_same_seed_same_choices_and_faults() -> None:
    first = await _scenario(42)
    second = await _scenario(42)
    assert first == second
    other = await _scenario(43)
    assert other[1] != first[1]  # different fault decisions
    assert other[2] != first[2]  # different port numbers
    assert first[0] == other[0] == [0, 1] * 20  # round-robin itself is not random


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


async def test_memory_harness_and_plugin_fixtures(memory_cluster: MemoryCluster, memory_transport: MemoryTransport) -> None:
    assert memory_transport.cluster is memory_cluster and memory_transport.is_open
    harness = MemoryHarness(seed=1)
    nodes = await harness.start(2)
    await harness.kill(nodes[1])
    assert harness.cluster.nodes == [nodes[0]]
    with pytest.raises(AddressError):
        await harness.kill(memory_transport.cluster.node("other"))  # not the harness's cluster  # type: ignore[arg-type]
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
