"""Name distribution of the userspace node under a burst: batched, and never overtaken.

Two :class:`UserTransport` nodes over UDP loopback (a private network id). Publications made
in one event-loop turn travel in a few multi-item messages, and a data message sent right
after a publication still reaches the peer after it (the stack flushes staged name changes
before any data message).
"""

from __future__ import annotations

import os

import anyio

from tipcrpc.addr import NODE_STATE, U32_MAX, ServiceAddr, ServiceRange
from tipcrpc.events import SNAPSHOT_COMPLETE, NodeUp, Published, Withdrawn
from tipcrpc.transport.user import UserTransport

STYPE = 0x7C0BA7C4


def _netid() -> int:
    return 1000 + (os.getpid() * 7907 + 17) % 8999


async def _linked(a: UserTransport, b: UserTransport) -> None:
    for t, other in ((a, b), (b, a)):
        async with await t.subscribe(ServiceRange(NODE_STATE, 0, U32_MAX)) as sub:
            async for ev in sub:
                if isinstance(ev, NodeUp) and ev.node == other.own_node.addr:
                    break


async def test_data_sent_after_publish_does_not_overtake_it() -> None:
    netid = _netid()
    with anyio.fail_after(30):
        async with UserTransport(identity="nb-a", netid=netid) as a, UserTransport(identity="nb-b", netid=netid) as b:
            await _linked(a, b)
            seen: list[object] = []
            got = anyio.Event()

            def on_b(item: object) -> None:
                # What B's name table says when the message arrives.
                seen.append(b._stack.table.lookup_anycast(STYPE, 1))  # type: ignore[union-attr]
                got.set()

            eb = await b.open_endpoint(on_b)
            ea = await a.open_endpoint(lambda item: None)
            await ea.publish(ServiceAddr(STYPE, 1))
            ea.send(eb.address, b"after the publication")  # same event-loop turn
            await got.wait()
            assert seen == [(a.own_node.addr, ea.address.port)]


async def test_burst_of_publications_travels_in_few_messages() -> None:
    n = 5000
    netid = _netid() + 1
    with anyio.fail_after(60):
        async with UserTransport(identity="nb-c", netid=netid) as a, UserTransport(identity="nb-d", netid=netid) as b:
            await _linked(a, b)
            async with await b.subscribe(ServiceRange(STYPE, 0, U32_MAX)) as sub:
                assert await sub.__anext__() is SNAPSHOT_COMPLETE
                ep = await a.open_endpoint(lambda item: None)
                sent0 = a.statistics()["names_published"]
                tx0 = a.statistics()["udp_tx"]
                for i in range(n):
                    await ep.publish(ServiceAddr(STYPE, i))
                ups = 0
                async for ev in sub:
                    assert isinstance(ev, Published) and ev.node == a.own_node.addr
                    ups += 1
                    if ups == n:
                        break
                assert a.statistics()["names_published"] - sent0 == n
                # ~70 items per name-distribution message; without batching there would be
                # one packet per publication.
                assert a.statistics()["udp_tx"] - tx0 < n // 20
                for i in range(n):
                    await ep.withdraw(ServiceAddr(STYPE, i))
                downs = 0
                async for ev in sub:
                    assert isinstance(ev, Withdrawn)
                    downs += 1
                    if downs == n:
                        break
            assert b._stack.table.lookup_anycast(STYPE, 0) is None  # type: ignore[union-attr]
