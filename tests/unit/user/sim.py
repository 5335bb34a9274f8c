"""A pure discrete-event simulator for userspace TIPC nodes (no sockets, no clock, no sleep).

Reusable by any test that drives objects shaped like :class:`~tipcrpc.transport.user.node.Node`
(``receive(packet, src, now)``, ``timeout(now)``, ``next_timeout()``, each returning an
``Output``-like object with ``packets``, ``delivered``, ``events``, ``undelivered``, ``unsent``)::

    medium = Medium(random.Random(7), loss=0.1, duplicate=0.05, reorder=0.1)
    sim = Sim(medium)
    sim.add(A, node_a)
    sim.add(B, node_b, on_output=my_stack_hook)   # hook(sim, media, output) -> None
    sim.run_until(2.0)
    sim.apply(A, node_a.send(node_b.own_addr, msg, sim.now))
    sim.run_while(lambda: len(sim.logs[B].delivered) < 1, limit=10.0)

Packets addressed to ``BROADCAST`` go to every other node (multicast discovery). Time only
advances to the next packet arrival or node timer, so long simulated runs are fast.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from tipcrpc.transport.user.node import BROADCAST, MediaAddr

__all__ = ["NodeLike", "Medium", "NodeLog", "Sim", "simulate"]


class NodeLike(Protocol):
    def receive(self, packet: bytes, src: MediaAddr, now: float) -> Any: ...
    def timeout(self, now: float) -> Any: ...
    def next_timeout(self) -> float | None: ...


DropFn = Callable[[MediaAddr, MediaAddr, bytes], bool]


class Medium:
    """A lossy network: seeded loss, duplication, reordering and delay; cuttable links.

    ``drop(src, dst, packet)`` is an extra deterministic predicate (True = lose it).
    Reordering delays a packet by up to ``reorder_delay`` extra seconds.
    """

    def __init__(
        self,
        rng: random.Random | None = None,
        *,
        loss: float = 0.0,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        delay: float = 0.0005,
        jitter: float = 0.0,
        reorder_delay: float = 0.005,
        drop: DropFn | None = None,
    ) -> None:
        self.rng = rng or random.Random(0)
        self.loss = loss
        self.duplicate = duplicate
        self.reorder = reorder
        self.delay = delay
        self.jitter = jitter
        self.reorder_delay = reorder_delay
        self.drop = drop
        self._cut: set[frozenset[MediaAddr]] = set()
        self.sent = 0
        self.lost = 0

    def cut(self, a: MediaAddr, b: MediaAddr) -> None:
        """Stop all traffic between ``a`` and ``b`` (both directions)."""
        self._cut.add(frozenset((a, b)))

    def heal(self, a: MediaAddr | None = None, b: MediaAddr | None = None) -> None:
        """Restore traffic between ``a`` and ``b``, or everywhere when called without arguments."""
        if a is None or b is None:
            self._cut.clear()
        else:
            self._cut.discard(frozenset((a, b)))

    def transit(self, src: MediaAddr, dst: MediaAddr, packet: bytes) -> list[float]:
        """Delays (s) after which copies of ``packet`` arrive: [] lost, [d] once, [d1, d2] duplicated."""
        self.sent += 1
        if frozenset((src, dst)) in self._cut or (self.drop is not None and self.drop(src, dst, packet)):
            self.lost += 1
            return []
        r = self.rng
        if self.loss and r.random() < self.loss:
            self.lost += 1
            return []
        copies = 2 if self.duplicate and r.random() < self.duplicate else 1
        out = []
        for _ in range(copies):
            d = self.delay + (r.random() * self.jitter if self.jitter else 0.0)
            if self.reorder and r.random() < self.reorder:
                d += r.random() * self.reorder_delay
            out.append(d)
        return out


@dataclass
class NodeLog:
    """Everything a node produced, in order."""

    delivered: list[tuple[float, int, bytes]] = field(default_factory=list)
    events: list[tuple[float, Any]] = field(default_factory=list)
    undelivered: list[tuple[float, int, bytes]] = field(default_factory=list)
    unsent: list[tuple[float, int, bytes]] = field(default_factory=list)
    packets_out: int = 0


Hook = Callable[["Sim", MediaAddr, Any], None]


class Sim:
    """Event loop: packet arrivals (heap) and node timers, in time order."""

    def __init__(self, medium: Medium, now: float = 0.0) -> None:
        self.medium = medium
        self.now = now
        self.nodes: dict[MediaAddr, NodeLike] = {}
        self.hooks: dict[MediaAddr, Hook] = {}
        self.logs: dict[MediaAddr, NodeLog] = {}
        self._q: list[tuple[float, int, MediaAddr, MediaAddr, bytes]] = []
        self._seq = 0
        self.steps = 0

    def add(self, media: MediaAddr, node: NodeLike, on_output: Hook | None = None) -> None:
        self.nodes[media] = node
        self.logs.setdefault(media, NodeLog())
        if on_output is not None:
            self.hooks[media] = on_output

    def remove(self, media: MediaAddr) -> NodeLike:
        """Crash a node: it vanishes without a word; packets to it are lost."""
        self.hooks.pop(media, None)
        return self.nodes.pop(media)

    def apply(self, media: MediaAddr, out: Any) -> None:
        """Record a node's output and put its packets on the medium."""
        log = self.logs[media]
        now = self.now
        for peer, msg in out.delivered:
            log.delivered.append((now, peer, msg))
        for ev in out.events:
            log.events.append((now, ev))
        for peer, msg in out.undelivered:
            log.undelivered.append((now, peer, msg))
        for peer, msg in getattr(out, "unsent", ()):
            log.unsent.append((now, peer, msg))
        for dst, pkt in out.packets:
            log.packets_out += 1
            dsts = [m for m in self.nodes if m != media] if dst == BROADCAST else [dst]
            for d in dsts:
                for delay in self.medium.transit(media, d, pkt):
                    self._seq += 1
                    heapq.heappush(self._q, (now + delay, self._seq, d, media, pkt))
        hook = self.hooks.get(media)
        if hook is not None:
            hook(self, media, out)

    def send(self, media: MediaAddr, peer: int, msg: bytes) -> None:
        """``node.send`` at the current time, output applied."""
        node: Any = self.nodes[media]
        self.apply(media, node.send(peer, msg, self.now))

    def _next_timer(self) -> tuple[float, MediaAddr | None]:
        best: tuple[float, MediaAddr | None] = (float("inf"), None)
        for m, n in self.nodes.items():
            t = n.next_timeout()
            if t is not None and t < best[0]:
                best = (t, m)
        return best

    def step(self, until: float = float("inf")) -> bool:
        """Process the next event if it happens no later than ``until``; False if none."""
        t_timer, who = self._next_timer()
        t_pkt = self._q[0][0] if self._q else float("inf")
        if min(t_timer, t_pkt) > until:
            return False
        self.steps += 1
        if t_pkt <= t_timer:
            t, _s, dst, src, pkt = heapq.heappop(self._q)
            self.now = max(self.now, t)
            node = self.nodes.get(dst)
            if node is not None:
                self.apply(dst, node.receive(pkt, src, self.now))
        else:
            assert who is not None
            self.now = max(self.now, t_timer)
            self.apply(who, self.nodes[who].timeout(self.now))
        return True

    def run_until(self, t: float) -> None:
        while self.step(t):
            pass
        self.now = max(self.now, t)

    def run_while(self, cond: Callable[[], bool], limit: float) -> bool:
        """Run while ``cond()`` holds, at most until time ``limit``; return ``not cond()``."""
        while cond():
            if not self.step(limit):
                self.now = max(self.now, limit)
                return not cond()
        return True


def simulate(nodes: dict[MediaAddr, NodeLike], medium: Medium, until: float, now: float = 0.0) -> Sim:
    """Run ``nodes`` over ``medium`` from ``now`` to ``until``; return the :class:`Sim` with its logs."""
    sim = Sim(medium, now)
    for m, n in nodes.items():
        sim.add(m, n)
    sim.run_until(until)
    return sim
