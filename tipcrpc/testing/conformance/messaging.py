"""Conformance checks for nodes, endpoints and datagrams (anycast, multicast, direct, returns)."""

from __future__ import annotations

from typing import Mapping

import anyio
import pytest

from ...addr import U32_MAX, NodeInfo, Scope, ServiceAddr, ServiceRange, SocketAddr
from ...errors import LocalProtocolError, ClosedError, FrameTooLarge, ServiceUnreachable
from ...transport.base import Delivery, DeliveryFailure, Endpoint, Returned, Transport
from ..harness import ClusterHarness
from .helpers import _open, _payload, _timeout, snapshot, wait_published

__all__ = ["MessagingConformance"]


class MessagingConformance:
    """Datagram half of the suite; combined into :class:`TransportConformance`."""

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
            seen = sorted(int(d.data) for d in got_b + got_c)
            assert seen == list(range(10))
            # Strict alternation: the two receivers got the odd and the even messages.
            parities = {int(d.data) % 2 for d in got_b}
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
            with pytest.raises(LocalProtocolError):
                sender.send(receiver.address, b"")  # the kernel would discard it silently
            sender.send(name, big)
            sender.send(receiver.address, b"1")
            got = await inbox.get()
            assert isinstance(got, Delivery) and got.data == big
            one = await inbox.get()
            assert isinstance(one, Delivery) and one.data == b"1"

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
            assert [d.dest for d in got] == [ServiceAddr(stype, i) for i in (100, 150, 199)]
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

    async def test_no_silent_loss_when_receiver_closes(self, harness: ClusterHarness, stype: int) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            sender, returned = await _open(a)
            receiver, delivered = await _open(b)
            name = ServiceAddr(stype, 1)
            await receiver.publish(name)
            await wait_published(a, name, receiver.address)
            n = 20
            for i in range(n):
                sender.send(name, b"%02d" % i)
            await receiver.aclose()
            # Every message was either delivered before the close or comes back.
            got = {int(d.data) for d in delivered}
            while len(got) < n:
                item = await returned.get()
                assert isinstance(item, Returned)
                assert item.reason in (DeliveryFailure.NO_NAME, DeliveryFailure.NO_PORT)
                assert item.dest == name
                value = int(item.data)
                assert value not in got
                got.add(value)
            assert got == set(range(n))

    async def test_send_after_close_raises(self, harness: ClusterHarness) -> None:
        with anyio.fail_after(_timeout(harness)):
            a, b = await harness.start(2)
            ep, _ = await _open(a)
            peer, _ = await _open(b)
            await ep.aclose()
            await ep.aclose()  # idempotent
            with pytest.raises(ClosedError):
                ep.send(peer.address, b"x")

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
