"""The Transport contract as executable checks, run unchanged against every transport.

How to use it: subclass :class:`TransportConformance` in a test module whose class name
starts with ``Test`` and override the ``harness`` fixture to yield a
:class:`~tipcrpc.testing.harness.ClusterHarness`::

    import pytest
    from tipcrpc.testing.conformance import TransportConformance
    from tipcrpc.testing import MemoryHarness

    class TestMemoryConformance(TransportConformance):
        @pytest.fixture
        async def harness(self):
            h = MemoryHarness()
            yield h
            await h.aclose()

Every ``test_*`` method below is then collected for that transport. Each test calls
``harness.start(n)`` once, is bounded by ``anyio.fail_after`` (``harness.timeout``,
10 s by default) and never sleeps to synchronise: propagation is awaited through topology
subscriptions, and "nothing else arrived" is proven with ordered marker messages or
marker publications (TIPC orders name distribution and datagrams per node pair).

The checks avoid what a real kernel would break: port numbers and node addresses are
arbitrary non-zero u32, events of different subscriptions are not ordered against each
other, node and link snapshots come in any order, and a direct send to a lost node may
either raise :class:`~tipcrpc.errors.ServiceUnreachable` or come back ``Returned``.

Tests that need ``harness.kill`` are skipped if it raises :class:`NotImplementedError`.
"""

from __future__ import annotations

import os
from typing import Any, AsyncIterator, Callable, Mapping

import anyio
import pytest

from ..addr import (
    LINK_STATE,
    NODE_STATE,
    U32_MAX,
    NodeInfo,
    Scope,
    ServiceAddr,
    ServiceRange,
    SocketAddr,
    service_type,
)
from ..errors import AddressError, ClosedError, FrameTooLarge, ServiceUnreachable
from ..events import (
    SNAPSHOT_COMPLETE,
    LinkDown,
    LinkUp,
    NodeDown,
    NodeUp,
    Published,
    SubFilter,
    TopologyEvent,
    Withdrawn,
)
from ..transport.base import Delivery, DeliveryFailure, Endpoint, Returned, Subscription, Transport
from ..transport.inbox import Inbox
from .harness import ClusterHarness

__all__ = [
    "TransportConformance",
    "wait_event",
    "wait_published",
    "wait_withdrawn",
    "snapshot",
]

DEFAULT_TIMEOUT = 10.0


def _timeout(harness: ClusterHarness) -> float:
    return float(getattr(harness, "timeout", DEFAULT_TIMEOUT))


# ---------------------------------------------------------------------- helpers (public)


async def wait_event(sub: Subscription, predicate: Callable[[TopologyEvent], bool]) -> list[TopologyEvent]:
    """Consume ``sub`` until an event satisfies ``predicate``; returns every event seen."""
    seen: list[TopologyEvent] = []
    async for ev in sub:
        seen.append(ev)
        if predicate(ev):
            return seen
    raise AssertionError(f"subscription ended before the expected event; saw {seen!r}")


async def snapshot(sub: Subscription) -> list[TopologyEvent]:
    """Consume ``sub`` up to :data:`SNAPSHOT_COMPLETE`; returns the events before it."""
    seen = await wait_event(sub, lambda ev: ev == SNAPSHOT_COMPLETE)
    return seen[:-1]


async def wait_published(t: Transport, name: ServiceAddr | ServiceRange, socket: SocketAddr) -> None:
    """Wait until ``t``'s view holds the publication of ``name`` by ``socket``."""
    r = name.as_range() if isinstance(name, ServiceAddr) else name
    sub = await t.subscribe(r, filter=SubFilter.PORTS)
    try:
        await wait_event(sub, lambda ev: isinstance(ev, Published) and ev.range == r and ev.socket == socket)
    finally:
        await sub.aclose()


async def wait_withdrawn(t: Transport, name: ServiceAddr | ServiceRange, socket: SocketAddr) -> None:
    """Wait until ``t``'s view no longer holds the publication of ``name`` by ``socket``."""
    r = name.as_range() if isinstance(name, ServiceAddr) else name
    sub = await t.subscribe(r, filter=SubFilter.PORTS)
    try:
        present = False
        async for ev in sub:
            if ev == SNAPSHOT_COMPLETE:
                if not present:
                    return
            elif isinstance(ev, (Published, Withdrawn)) and ev.range == r and ev.socket == socket:
                present = isinstance(ev, Published)
                if not present:
                    return
    finally:
        await sub.aclose()


async def _open(t: Transport) -> tuple[Endpoint, Inbox]:
    inbox = Inbox()
    ep = await t.open_endpoint(inbox)
    return ep, inbox


async def _kill_or_skip(harness: ClusterHarness, t: Transport) -> None:
    try:
        await harness.kill(t)
    except NotImplementedError:
        pytest.skip("this harness cannot kill a node")


def _payload(size: int, seed: int = 0) -> bytes:
    import random

    return random.Random(seed).randbytes(size)


# ---------------------------------------------------------------------- the suite


class TransportConformance:
    """Base class of the conformance suite; override the ``harness`` fixture."""

    @pytest.fixture
    async def harness(self) -> AsyncIterator[ClusterHarness]:
        """Override in the subclass: yield a fresh harness, close it afterwards."""
        pytest.skip("TransportConformance subclasses must override the 'harness' fixture")
        yield  # pragma: no cover

    @pytest.fixture
    def stype(self, request: pytest.FixtureRequest) -> int:
        """A service type private to this test (helps clusters shared between tests)."""
        return service_type(f"tipcrpc.conformance.{request.node.nodeid}.{os.getpid()}")

    # -- nodes and endpoints ---------------------------------------------------------

    async def test_own_node_sane_and_distinct(self, harness: ClusterHarness) -> None:
        with anyio.fail_after(_timeout(harness)):
            nodes = await harness.start(3)
            assert len(nodes) == 3
            infos = [t.own_node for t in nodes]
            for t, info in zip(nodes, infos):
                assert isinstance(t, Transport)
                assert isinstance(t.kind, str) and t.kind
                assert isinstance(info, NodeInfo)
                assert 0 < info.addr <= U32_MAX
                assert isinstance(info.identity, str) and info.identity
                assert t.max_message == harness.max_message
            assert len({i.addr for i in infos}) == 3
            assert len({i.identity for i in infos}) == 3

    async def test_endpoint_addresses_unique(self, harness: ClusterHarness) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            eps = [ep for t in (a, b) for ep, _ in [await _open(t) for _ in range(3)]]
            for ep in eps:
                assert isinstance(ep, Endpoint)
                assert isinstance(ep.address, SocketAddr)
            assert {ep.address.node for ep in eps[:3]} == {a.own_node.addr}
            assert {ep.address.node for ep in eps[3:]} == {b.own_node.addr}
            assert len({ep.address for ep in eps}) == 6

    # -- anycast, multicast, direct ----------------------------------------------------

    async def test_anycast_reaches_remote_publication(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            sender, _ = await _open(a)
            receiver, inbox = await _open(b)
            name = ServiceAddr(stype, 7)
            await receiver.publish(name)
            await wait_published(a, name, receiver.address)
            sender.send(name, b"hello")
            got = await inbox.get()
            assert got == Delivery(b"hello", sender.address, name)

    async def test_anycast_round_robin_across_nodes(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b, c = await harness.start(3)
            sender, _ = await _open(a)
            rb, ib = await _open(b)
            rc, ic = await _open(c)
            name = ServiceAddr(stype, 1)
            await rb.publish(name)
            await rc.publish(name)
            await wait_published(a, name, rb.address)
            await wait_published(a, name, rc.address)
            for i in range(10):
                sender.send(name, b"%d" % i)
            got_b = await ib.get_many(5)
            got_c = await ic.get_many(5)
            assert len(ib) == 0 and len(ic) == 0
            seen = sorted(int(d.data) for d in got_b + got_c)  # type: ignore[union-attr]
            assert seen == list(range(10))
            # Strict alternation: the two receivers got the odd and the even messages.
            parities = {int(d.data) % 2 for d in got_b}  # type: ignore[union-attr]
            assert len(parities) == 1

    async def test_multicast_reaches_each_matching_socket_once(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b, c = await harness.start(3)
            sender, _ = await _open(c)
            e1, i1 = await _open(a)
            e2, i2 = await _open(b)
            e3, i3 = await _open(b)
            # e1 holds two overlapping publications and must still get one copy.
            await e1.publish(ServiceRange(stype, 0, 10))
            await e1.publish(ServiceRange(stype, 5, 15))
            await e2.publish(ServiceAddr(stype, 3))
            await e3.publish(ServiceRange(stype, 100, 200))  # outside the target
            await wait_published(c, ServiceRange(stype, 5, 15), e1.address)
            await wait_published(c, ServiceAddr(stype, 3), e2.address)
            await wait_published(c, ServiceRange(stype, 100, 200), e3.address)
            target = ServiceRange(stype, 0, 20)
            sender.send(target, b"copy")
            # Marker multicast to everyone: multicasts from one socket stay ordered.
            everyone = ServiceRange(stype, 0, 1000)
            sender.send(everyone, b"end")
            for inbox in (i1, i2):
                first, second = await inbox.get_many(2)
                assert first == Delivery(b"copy", sender.address, target)
                assert second == Delivery(b"end", sender.address, everyone)
            assert await i3.get() == Delivery(b"end", sender.address, everyone)
            assert len(i1) == len(i2) == len(i3) == 0

    async def test_multicast_to_local_and_remote(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            sender, own_inbox = await _open(a)
            local, il = await _open(a)
            remote, ir = await _open(b)
            await local.publish(ServiceRange(stype, 0, 9))
            await remote.publish(ServiceRange(stype, 5, 19))
            await wait_published(a, ServiceRange(stype, 5, 19), remote.address)
            target = ServiceRange(stype, 0, 99)
            sender.send(target, b"m")
            assert await il.get() == Delivery(b"m", sender.address, target)
            assert await ir.get() == Delivery(b"m", sender.address, target)
            assert len(own_inbox) == 0

    async def test_direct_send(self, harness: ClusterHarness) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            sender, _ = await _open(a)
            receiver, inbox = await _open(b)
            local, local_inbox = await _open(a)
            sender.send(receiver.address, b"remote")
            sender.send(local.address, b"local")
            assert await inbox.get() == Delivery(b"remote", sender.address, receiver.address)
            assert await local_inbox.get() == Delivery(b"local", sender.address, local.address)

    async def test_handler_not_called_from_inside_send(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            (a,) = await harness.start(1)
            in_send = False
            calls: list[bool] = []
            done = anyio.Event()

            def handler(item: Delivery | Returned) -> None:
                calls.append(in_send)
                done.set()

            receiver = await a.open_endpoint(handler)
            sender, _ = await _open(a)
            name = ServiceAddr(stype, 1)
            await receiver.publish(name)
            in_send = True
            sender.send(name, b"x")
            in_send = False
            await done.wait()
            assert calls == [False]

    async def test_node_scope_invisible_elsewhere_reachable_locally(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            owner, inbox = await _open(b)
            private = ServiceAddr(stype, 1)
            marker = ServiceAddr(stype, 2)
            await owner.publish(private, Scope.NODE)
            await owner.publish(marker, Scope.CLUSTER)
            # Name distribution is ordered: once the later marker is visible on a, the
            # node-scope name would have been too, had it been distributed.
            await wait_published(a, marker, owner.address)
            remote_sender, _ = await _open(a)
            with pytest.raises(ServiceUnreachable):
                remote_sender.send(private, b"x")
            sub = await a.subscribe(private.as_range())
            try:
                assert await snapshot(sub) == []
            finally:
                await sub.aclose()
            local_sender, _ = await _open(b)
            local_sender.send(private, b"local")
            assert await inbox.get() == Delivery(b"local", local_sender.address, private)

    async def test_unreachable_name_raises_synchronously(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, _ = await harness.start(2)
            ep, inbox = await _open(a)
            with pytest.raises(ServiceUnreachable):
                ep.send(ServiceAddr(stype, 4242), b"x")
            with pytest.raises(ServiceUnreachable):
                ep.send(ServiceRange(stype, 0, 10), b"x")
            assert len(inbox) == 0

    async def test_message_size_limit(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            sender, _ = await _open(a)
            receiver, inbox = await _open(b)
            name = ServiceAddr(stype, 1)
            await receiver.publish(name)
            await wait_published(a, name, receiver.address)
            big = _payload(harness.max_message, seed=1)
            with pytest.raises(FrameTooLarge):
                sender.send(name, big + b"!")
            with pytest.raises(FrameTooLarge):
                sender.send(receiver.address, big + b"!")
            sender.send(name, big)
            sender.send(receiver.address, b"")
            got = await inbox.get()
            assert isinstance(got, Delivery) and got.data == big
            empty = await inbox.get()
            assert isinstance(empty, Delivery) and empty.data == b""

    async def test_per_pair_order(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            sender, _ = await _open(a)
            receiver, inbox = await _open(b)
            name = ServiceAddr(stype, 1)
            await receiver.publish(name)
            await wait_published(a, name, receiver.address)
            for i in range(200):
                if i % 2:
                    sender.send(name, i.to_bytes(4, "big"))
                else:
                    sender.send(receiver.address, i.to_bytes(4, "big"))
                if i % 50 == 49:
                    await sender.drain()
            got = await inbox.get_many(200)
            assert [int.from_bytes(d.data, "big") for d in got] == list(range(200))

    async def test_delivery_source_and_dest(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            sender, _ = await _open(a)
            receiver, inbox = await _open(b)
            await receiver.publish(ServiceRange(stype, 10, 20))
            await wait_published(a, ServiceRange(stype, 10, 20), receiver.address)
            sender.send(ServiceAddr(stype, 15), b"any")
            sender.send(ServiceRange(stype, 0, 12), b"multi")
            sender.send(receiver.address, b"direct")
            got = await inbox.get_many(3)
            assert got == [
                Delivery(b"any", sender.address, ServiceAddr(stype, 15)),
                Delivery(b"multi", sender.address, ServiceRange(stype, 0, 12)),
                Delivery(b"direct", sender.address, receiver.address),
            ]

    async def test_range_publication_anycast_to_each_instance(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            sender, _ = await _open(a)
            receiver, inbox = await _open(b)
            r = ServiceRange(stype, 100, 199)
            await receiver.publish(r)
            await wait_published(a, r, receiver.address)
            for inst in (100, 150, 199):
                sender.send(ServiceAddr(stype, inst), b"x")
            got = await inbox.get_many(3)
            assert [d.dest for d in got] == [ServiceAddr(stype, i) for i in (100, 150, 199)]  # type: ignore[union-attr]
            for inst in (99, 200):
                with pytest.raises(ServiceUnreachable):
                    sender.send(ServiceAddr(stype, inst), b"x")

    # -- returned messages ---------------------------------------------------------------

    async def test_send_to_closed_endpoint_is_returned(self, harness: ClusterHarness) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            sender, inbox = await _open(a)
            gone, _ = await _open(b)
            address = gone.address
            await gone.aclose()
            sender.send(address, b"are you there")
            got = await inbox.get()
            assert isinstance(got, Returned)
            assert got.reason in (DeliveryFailure.NO_PORT, DeliveryFailure.NO_NODE)
            assert got.dest == address
            assert got.data == b"are you there"

    async def test_returned_data_is_a_prefix(self, harness: ClusterHarness) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            sender, inbox = await _open(a)
            gone, _ = await _open(b)
            address = gone.address
            await gone.aclose()
            original = _payload(3000, seed=2)
            sender.send(address, original)
            got = await inbox.get()
            assert isinstance(got, Returned)
            assert got.data and original.startswith(got.data)

    async def test_send_after_close_raises(self, harness: ClusterHarness) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            ep, _ = await _open(a)
            peer, _ = await _open(b)
            await ep.aclose()
            await ep.aclose()  # idempotent
            with pytest.raises(ClosedError):
                ep.send(peer.address, b"x")

    # -- publications and subscriptions --------------------------------------------------

    async def test_reserved_types_rejected(self, harness: ClusterHarness) -> None:
        with anyio.fail_after(_timeout(harness)):
            (a,) = await harness.start(1)
            ep, _ = await _open(a)
            for name in (ServiceAddr(0, 1), ServiceAddr(1, 1), ServiceRange(2, 0, 5), ServiceAddr(63, 0)):
                with pytest.raises(AddressError):
                    await ep.publish(name)

    async def test_subscription_snapshot_then_live(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            (a,) = await harness.start(1)
            ep, _ = await _open(a)
            names = [ServiceRange(stype, 10, 19), ServiceRange(stype, 0, 9), ServiceAddr(stype, 30)]
            for name in names:
                await ep.publish(name)
            sub = await a.subscribe(ServiceRange(stype, 0, 100))
            try:
                snap = await snapshot(sub)
                ranges = [n.as_range() if isinstance(n, ServiceAddr) else n for n in names]
                assert snap == [Published(r, ep.address) for r in ranges]  # publication order
                await ep.publish(ServiceRange(stype, 50, 60))
                assert await sub.__anext__() == Published(ServiceRange(stype, 50, 60), ep.address)
                await ep.withdraw(names[1])
                assert await sub.__anext__() == Withdrawn(ranges[1], ep.address)
                await ep.publish(ServiceAddr(stype, 1000))  # outside the subscription
                await ep.publish(ServiceAddr(stype, 99))  # marker: proves nothing came in between
                assert await sub.__anext__() == Published(ServiceRange(stype, 99, 99), ep.address)
            finally:
                await sub.aclose()

    async def test_remote_withdraw_and_close_produce_withdrawn(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            ep, _ = await _open(b)
            name = ServiceAddr(stype, 5)
            r = name.as_range()
            sub = await a.subscribe(r)
            try:
                assert await snapshot(sub) == []
                await ep.publish(name)
                assert await sub.__anext__() == Published(r, ep.address)
                await ep.withdraw(name)
                assert await sub.__anext__() == Withdrawn(r, ep.address)
                await ep.withdraw(name)  # not bound: no-op
                await ep.publish(name)
                assert await sub.__anext__() == Published(r, ep.address)
                await ep.aclose()
                assert await sub.__anext__() == Withdrawn(r, ep.address)
            finally:
                await sub.aclose()

    async def test_service_filter_first_up_last_down(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            (a,) = await harness.start(1)
            e1, _ = await _open(a)
            e2, _ = await _open(a)
            e3, _ = await _open(a)
            marker_ep, _ = await _open(a)
            r = ServiceRange(stype, 0, 9)
            await e1.publish(r)
            await e2.publish(r)
            sub = await a.subscribe(ServiceRange(stype, 0, 1000), filter=SubFilter.SERVICE)
            markers = iter(range(500, 1000))

            async def assert_quiet() -> None:
                # A new range is always reported; nothing may come before it.
                m = ServiceAddr(stype, next(markers))
                await marker_ep.publish(m)
                assert await sub.__anext__() == Published(m.as_range(), marker_ep.address)

            try:
                assert await snapshot(sub) == [Published(r, e1.address)]  # oldest only
                await e3.publish(r)
                await assert_quiet()
                await e1.withdraw(r)
                await assert_quiet()
                await e2.aclose()
                await assert_quiet()
                # An overlapping but different range is its own first-up, with its own range.
                other = ServiceRange(stype, 5, 14)
                await e1.publish(other)
                assert await sub.__anext__() == Published(other, e1.address)
                await e3.withdraw(r)
                assert await sub.__anext__() == Withdrawn(r, e3.address)  # last down
            finally:
                await sub.aclose()

    async def test_subscription_close_ends_iteration(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            (a,) = await harness.start(1)
            sub = await a.subscribe(ServiceRange(stype, 0, 10))
            assert await snapshot(sub) == []
            result: list[Any] = []

            async def consume() -> None:
                async for ev in sub:
                    result.append(ev)
                result.append("ended")

            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                await anyio.sleep(0)  # let the consumer block (not needed for correctness)
                await sub.aclose()
            assert result == ["ended"]
            with pytest.raises(StopAsyncIteration):
                await sub.__anext__()
            await sub.aclose()  # idempotent
            async with await a.subscribe(ServiceRange(stype, 0, 10)) as sub2:  # type: ignore[attr-defined]
                assert await snapshot(sub2) == []

    # -- nodes, links and crashes --------------------------------------------------------

    async def test_node_and_link_snapshots(self, harness: ClusterHarness) -> None:
        with anyio.fail_after(_timeout(harness)):
            nodes = await harness.start(3)
            addrs = {t.own_node.addr for t in nodes}
            a = nodes[0]
            nsub = await a.subscribe(ServiceRange(NODE_STATE, 0, U32_MAX))
            lsub = await a.subscribe(ServiceRange(LINK_STATE, 0, U32_MAX))
            try:
                nsnap = await snapshot(nsub)
                assert all(isinstance(ev, NodeUp) for ev in nsnap)
                assert {ev.node for ev in nsnap} == addrs  # type: ignore[union-attr]
                lsnap = await snapshot(lsub)
                assert all(isinstance(ev, LinkUp) for ev in lsnap)
                assert {ev.node for ev in lsnap} == addrs - {a.own_node.addr}  # type: ignore[union-attr]
            finally:
                await nsub.aclose()
                await lsub.aclose()

    async def test_kill_reports_node_and_link_down(self, harness: ClusterHarness) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b, c = await harness.start(3)
            nsub = await a.subscribe(ServiceRange(NODE_STATE, 0, U32_MAX))
            lsub = await a.subscribe(ServiceRange(LINK_STATE, 0, U32_MAX))
            try:
                await snapshot(nsub)
                await snapshot(lsub)
                victim = c.own_node.addr
                await _kill_or_skip(harness, c)
                await wait_event(nsub, lambda ev: ev == NodeDown(victim))
                await wait_event(lsub, lambda ev: isinstance(ev, LinkDown) and ev.node == victim)
                # The survivors still see each other.
                check = await a.subscribe(ServiceRange(NODE_STATE, 0, U32_MAX))
                try:
                    nodes = {ev.node for ev in await snapshot(check)}  # type: ignore[union-attr]
                    assert nodes == {a.own_node.addr, b.own_node.addr}
                finally:
                    await check.aclose()
            finally:
                await nsub.aclose()
                await lsub.aclose()

    async def test_kill_withdraws_publications_on_survivors(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            ep, _ = await _open(b)
            r = ServiceRange(stype, 0, 9)
            await ep.publish(r)
            sub = await a.subscribe(r)
            try:
                await wait_event(sub, lambda ev: ev == Published(r, ep.address))
                await _kill_or_skip(harness, b)
                await wait_event(sub, lambda ev: ev == Withdrawn(r, ep.address))
            finally:
                await sub.aclose()
            sender, inbox = await _open(a)
            with pytest.raises(ServiceUnreachable):
                sender.send(ServiceAddr(stype, 1), b"x")
            # A direct send to the dead node fails at once or comes back.
            try:
                sender.send(ep.address, b"anyone?")
            except ServiceUnreachable:
                pass
            else:
                got = await inbox.get()
                assert isinstance(got, Returned)
                assert got.reason in (DeliveryFailure.NO_NODE, DeliveryFailure.NO_PORT)

    # -- statistics ------------------------------------------------------------------------

    async def test_statistics_is_a_mapping_of_ints(self, harness: ClusterHarness) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            sender, _ = await _open(a)
            receiver, inbox = await _open(b)
            sender.send(receiver.address, b"x")
            await inbox.get()
            for t in (a, b):
                stats = t.statistics()
                assert isinstance(stats, Mapping)
                assert stats and all(isinstance(k, str) and type(v) is int for k, v in stats.items())
