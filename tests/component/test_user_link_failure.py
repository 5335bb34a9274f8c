"""What a sender learns when the userspace node's link to the destination fails.

Two :class:`UserTransport` nodes on an in-memory bearer that can be cut. A sends 20
messages to B's socket while the cut is in place; the link window (16, one slot taken by
the link's broadcast init message) lets 15 of them leave, the other 5 wait in the backlog.
The link then fails after its tolerance:

* the 15 transmitted ones may have reached B (acknowledgements are delayed), so nothing
  is returned for them — the loss shows as the peer going down;
* the 5 that never left come back to A's socket as ``Returned(NO_NODE)``: provably not
  delivered, so even a non-idempotent request may be re-sent elsewhere.

That runs with bundling off (every message its own packet, so the window splits them).
With bundling on, the 20 leave in one bundle at the end of the turn: all transmitted, none
returned, and the link counts each of the 20 as unacknowledged when it fails.
"""

from __future__ import annotations

import asyncio
from typing import Callable

import anyio

from tipcrpc.addr import ServiceRange
from tipcrpc.events import NodeDown
from tipcrpc.transport.base import DeliveryFailure, Returned
from tipcrpc.transport.inbox import Inbox
from tipcrpc.transport.user.node import BROADCAST
from tipcrpc.transport.user.transport import UserTransport

Addr = tuple[str, int]


class CutHub:
    """In-memory bearer hub; while ``cut`` is set every packet is lost."""

    def __init__(self) -> None:
        self.bearers: dict[Addr, CutBearer] = {}
        self.cut = False
        self._n = 0

    def bearer(self, on_packet: Callable[[bytes, Addr], None]) -> CutBearer:
        self._n += 1
        return CutBearer(self, (f"10.9.0.{self._n}", 6118), on_packet)


class CutBearer:
    def __init__(self, hub: CutHub, local: Addr, on_packet: Callable[[bytes, Addr], None]) -> None:
        self.hub = hub
        self.local = local
        self.on_packet = on_packet
        self.stats: dict[str, int] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    def open(self, loop: asyncio.AbstractEventLoop) -> Addr:
        self.loop = loop
        self.hub.bearers[self.local] = self
        return self.local

    def send(self, dest: Addr, data: bytes) -> None:
        if self.hub.cut:
            return
        for t in [a for a in self.hub.bearers if a != self.local] if dest == BROADCAST else [dest]:
            b = self.hub.bearers.get(t)
            if b is not None:
                assert self.loop is not None
                self.loop.call_soon(b.on_packet, data, self.local)

    def learn(self, addr: Addr) -> None:
        pass

    def close(self) -> None:
        self.hub.bearers.pop(self.local, None)


async def test_messages_a_failed_link_never_sent_come_back_as_no_node() -> None:
    await _cut_while_sending(bundling=False)


async def test_a_failed_link_counts_each_message_of_a_bundle() -> None:
    await _cut_while_sending(bundling=True)


async def _cut_while_sending(*, bundling: bool) -> None:
    hub = CutHub()
    kw = dict(liveness=False, discovery_wait=0.0, bearer_factory=hub.bearer, window=16, tolerance_ms=50,
              bundling=bundling)
    a = UserTransport(identity="lf-a", **kw)  # type: ignore[arg-type]
    b = UserTransport(identity="lf-b", **kw)  # type: ignore[arg-type]
    with anyio.fail_after(10):
        await a.open()
        await b.open()
        try:
            while not (a._stack.up and b._stack.up):
                await a._stack.wait_peer_up()
            in_a, in_b = Inbox(), Inbox()
            ep_a = await a.open_endpoint(in_a)
            ep_b = await b.open_endpoint(in_b)
            # Let the links settle (bulk name distribution acknowledged) before the cut.
            ep_a.send(ep_b.address, b"hello")
            assert (await in_b.get()).data == b"hello"
            await a._stack.wait_drained(1)  # all acknowledged but the broadcast init message
            async with await a.subscribe(ServiceRange(0, b.own_node.addr, b.own_node.addr)) as nodes:
                hub.cut = True
                queued = a._stack.queued_packets()
                payloads = [i.to_bytes(2, "big") * 8 for i in range(20)]
                for p in payloads:
                    ep_a.send(ep_b.address, p)
                # Bundled, the 20 leave in one packet at the end of this turn; else the window
                # lets some leave and the rest wait in the backlog.
                sent = 20 if bundling else 16 - queued
                async for ev in nodes:  # B's NodeUp in the snapshot, then: the link failed
                    if isinstance(ev, NodeDown):
                        break
            returned = [in_a.get_nowait() for _ in range(len(in_a))]
            assert all(isinstance(r, Returned) for r in returned)
            assert [r.data for r in returned] == payloads[sent:]  # type: ignore[union-attr]
            assert {r.reason for r in returned} <= {DeliveryFailure.NO_NODE}  # type: ignore[union-attr]
            assert {r.dest for r in returned} <= {ep_b.address}  # type: ignore[union-attr]
            st = a.statistics()
            assert st["messages_unsent_at_link_down"] == 20 - sent
            assert st["messages_unacked_at_link_down"] == sent
            # (an idle link sends the first at once: it has nothing to share a packet with yet)
            assert st["sent_bundled"] == (0 if not bundling else 20 if queued else 19)
            assert st["peers_lost_total"] == 1
            assert not a._stack.up
        finally:
            await a.abort()
            await b.abort()
