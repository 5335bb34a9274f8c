"""Conformance checks for publications, topology subscriptions, nodes, links and crashes."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from ...addr import LINK_STATE, NODE_STATE, U32_MAX, ServiceAddr, ServiceRange
from ...errors import AddressError, ServiceUnreachable
from ...events import LinkDown, LinkUp, NodeDown, NodeUp, Published, SubFilter, Withdrawn
from ...transport.base import DeliveryFailure, Returned
from ..harness import ClusterHarness
from .helpers import _kill_or_skip, _open, _timeout, snapshot, wait_event

__all__ = ["TopologyConformance"]


class TopologyConformance:
    """Topology half of the suite; combined into :class:`TransportConformance`."""

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
            names: list[ServiceAddr | ServiceRange] = [
                ServiceRange(stype, 10, 19),
                ServiceRange(stype, 0, 9),
                ServiceAddr(stype, 30),
            ]
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

    async def test_subscriptions_are_independent(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            (a,) = await harness.start(1)
            ep, _ = await _open(a)
            r = ServiceRange(stype, 0, 10)
            first = await a.subscribe(r)
            second = await a.subscribe(r, filter=SubFilter.SERVICE)
            try:
                assert await snapshot(first) == []
                assert await snapshot(second) == []
                await first.aclose()
                await ep.publish(r)
                assert await second.__anext__() == Published(r, ep.address)
            finally:
                await first.aclose()
                await second.aclose()

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
                assert {ev.node for ev in nsnap if isinstance(ev, NodeUp)} == addrs
                lsnap = await snapshot(lsub)
                assert all(isinstance(ev, LinkUp) for ev in lsnap)
                assert {ev.node for ev in lsnap if isinstance(ev, LinkUp)} == addrs - {a.own_node.addr}
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
                    nodes = {ev.node for ev in await snapshot(check) if isinstance(ev, NodeUp)}
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
