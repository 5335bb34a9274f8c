"""One node's view of the cluster name table, with topology-subscription matching.

This is the memory transport's counterpart of the kernel's ``name_table.c`` plus the
matching half of ``subscr.c``. It holds no I/O: it is mutated synchronously by the
transport (own publications, name-distribution items from peers, link/node changes) and
reports topology events to registered subscribers synchronously; subscribers queue them.

Kernel semantics mirrored here:

* publications are grouped per *service range* (exact ``[lower, upper]``) per type;
  ranges are ordered by ``(lower, upper)`` like the kernel's RB tree;
* anycast takes the *first* range containing the instance and round-robins over that
  range's publications (``list_move_tail`` in ``tipc_nametbl_lookup_anycast``);
* ``SubFilter.SERVICE`` reports first-up / last-down per service range, with the
  publication's own range; ``SubFilter.PORTS`` reports every publication;
* a subscription's snapshot lists publications oldest first (``tipc_publ_sort``) and,
  for ``SERVICE``, only the oldest publication of each range;
* node state (type 0) and link state (type 2) are kept apart from user publications and
  surface as :class:`NodeUp`/:class:`NodeDown` and :class:`LinkUp`/:class:`LinkDown`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from typing import Iterable, Iterator, Protocol

from ...addr import LINK_STATE, NODE_STATE, Scope, ServiceRange, SocketAddr
from ...events import (
    LinkDown,
    LinkUp,
    NodeDown,
    NodeUp,
    Published,
    SubFilter,
    TopologyEvent,
    Withdrawn,
)

__all__ = ["Publication", "Subscriber", "NameTable"]


class Publication:
    """One binding of a range to a socket, as known to one node's table."""

    __slots__ = ("range", "socket", "scope", "id")

    def __init__(self, range: ServiceRange, socket: SocketAddr, scope: Scope) -> None:
        self.range = range
        self.socket = socket
        self.scope = scope
        #: insertion sequence number in the owning table (publication age, oldest first).
        self.id = -1

    def __repr__(self) -> str:
        return f"Publication({self.range}, {self.socket}, {self.scope.name})"


class Subscriber(Protocol):
    """What the table needs from a topology subscription."""

    @property
    def target(self) -> ServiceRange: ...

    @property
    def filter(self) -> SubFilter: ...

    def _push(self, event: TopologyEvent) -> None: ...


class _Range:
    """The kernel's ``tipc_service_range``: all publications of one exact range."""

    __slots__ = ("lower", "upper", "publs")

    def __init__(self, lower: int, upper: int) -> None:
        self.lower = lower
        self.upper = upper
        # Rotated on every anycast lookup for round-robin.
        self.publs: deque[Publication] = deque()


class _Service:
    """All ranges of one type, ordered by ``(lower, upper)``.

    ``_lowers`` and ``_max_upper`` (prefix maximum of ``upper``) make "first range that
    contains instance i" a pair of bisections instead of a scan; they are rebuilt only
    when a range appears or disappears, which is rare next to lookups.
    """

    __slots__ = ("ranges", "_keys", "_lowers", "_max_upper")

    def __init__(self) -> None:
        self.ranges: list[_Range] = []
        self._keys: list[tuple[int, int]] = []
        self._lowers: list[int] = []
        self._max_upper: list[int] = []

    def _reindex(self) -> None:
        self._keys = [(r.lower, r.upper) for r in self.ranges]
        self._lowers = [r.lower for r in self.ranges]
        acc = -1
        prefix = []
        for r in self.ranges:
            acc = max(acc, r.upper)
            prefix.append(acc)
        self._max_upper = prefix

    def get(self, lower: int, upper: int) -> _Range | None:
        i = bisect_left(self._keys, (lower, upper))
        if i < len(self._keys) and self._keys[i] == (lower, upper):
            return self.ranges[i]
        return None

    def get_or_create(self, lower: int, upper: int) -> _Range:
        i = bisect_left(self._keys, (lower, upper))
        if i < len(self._keys) and self._keys[i] == (lower, upper):
            return self.ranges[i]
        r = _Range(lower, upper)
        self.ranges.insert(i, r)
        self._reindex()
        return r

    def discard(self, r: _Range) -> None:
        self.ranges.remove(r)
        self._reindex()

    def first_containing(self, instance: int) -> _Range | None:
        hi = bisect_right(self._lowers, instance)  # ranges[:hi] have lower <= instance
        if hi == 0:
            return None
        j = bisect_left(self._max_upper, instance, 0, hi)
        # max_upper[j] >= instance and max_upper[j-1] < instance, so ranges[j].upper >= instance.
        return self.ranges[j] if j < hi else None

    def overlapping(self, lower: int, upper: int) -> Iterator[_Range]:
        hi = bisect_right(self._lowers, upper)
        start = bisect_left(self._max_upper, lower, 0, hi)
        for k in range(start, hi):
            r = self.ranges[k]
            if r.upper >= lower:
                yield r


class NameTable:
    """One node's name table, node-state and link-state view, and subscriber registry."""

    def __init__(self, own_node: int) -> None:
        self.own_node = own_node
        self._services: dict[int, _Service] = {}
        # node address -> {(type, lower, upper, port, scope): Publication}, insertion ordered.
        self._by_node: dict[int, dict[tuple[int, int, int, int, int], Publication]] = {}
        self._next_id = 0
        self._subs: dict[int, list[Subscriber]] = {}
        self._nodes: dict[int, None] = {}  # nodes up, in order of coming up (own first)
        self._links: dict[int, int] = {}  # peer node -> link id

    # ------------------------------------------------------------------ publications

    def __len__(self) -> int:
        return sum(len(d) for d in self._by_node.values())

    def insert(self, publ: Publication) -> bool:
        """Add ``publ``; ``False`` (and no event) if the same binding already exists."""
        r = publ.range
        key = (r.type, r.lower, r.upper, publ.socket.port, publ.scope)
        per_node = self._by_node.setdefault(publ.socket.node, {})
        if key in per_node:
            return False
        per_node[key] = publ
        publ.id = self._next_id
        self._next_id += 1
        svc = self._services.get(r.type)
        if svc is None:
            svc = self._services[r.type] = _Service()
        sr = svc.get_or_create(r.lower, r.upper)
        first = not sr.publs
        sr.publs.append(publ)
        self._report(publ, Published(r, publ.socket), first)
        return True

    def remove(self, range: ServiceRange, socket: SocketAddr, scope: Scope) -> Publication | None:
        """Remove a binding; returns it, or ``None`` if it was not there."""
        per_node = self._by_node.get(socket.node)
        if not per_node:
            return None
        publ = per_node.pop((range.type, range.lower, range.upper, socket.port, scope), None)
        if publ is None:
            return None
        if not per_node:
            del self._by_node[socket.node]
        svc = self._services[range.type]
        sr = svc.get(range.lower, range.upper)
        assert sr is not None
        sr.publs.remove(publ)
        last = not sr.publs
        if last:
            svc.discard(sr)
            if not svc.ranges:
                del self._services[range.type]
        self._report(publ, Withdrawn(range, socket), last)
        return publ

    def publications_of(self, node: int) -> list[Publication]:
        """The publications of ``node`` in this view, oldest first."""
        return list(self._by_node.get(node, {}).values())

    def purge_node(self, node: int) -> None:
        """Remove every publication of ``node`` (its links are down)."""
        for publ in self.publications_of(node):
            self.remove(publ.range, publ.socket, publ.scope)

    # ------------------------------------------------------------------ lookups

    def lookup_anycast(self, type: int, instance: int) -> Publication | None:
        """Round-robin pick within the first range containing ``instance``."""
        svc = self._services.get(type)
        if svc is None:
            return None
        sr = svc.first_containing(instance)
        if sr is None:
            return None
        publs = sr.publs
        publ = publs[0]
        publs.rotate(-1)
        return publ

    def mcast_nodes(self, target: ServiceRange) -> list[int]:
        """Nodes holding at least one publication overlapping ``target``, first-seen order."""
        svc = self._services.get(target.type)
        if svc is None:
            return []
        nodes: dict[int, None] = {}
        for sr in svc.overlapping(target.lower, target.upper):
            for publ in sr.publs:
                nodes[publ.socket.node] = None
        return list(nodes)

    def mcast_ports(self, target: ServiceRange, *, cluster_scope_only: bool) -> list[int]:
        """Local ports with a publication overlapping ``target``, each once.

        ``cluster_scope_only`` is set for messages from other nodes: node-scope
        publications never match them.
        """
        svc = self._services.get(target.type)
        if svc is None:
            return []
        own = self.own_node
        ports: dict[int, None] = {}
        for sr in svc.overlapping(target.lower, target.upper):
            for publ in sr.publs:
                if publ.socket.node != own:
                    continue
                if cluster_scope_only and publ.scope is not Scope.CLUSTER:
                    continue
                ports[publ.socket.port] = None
        return list(ports)

    # ------------------------------------------------------------------ nodes and links

    @property
    def nodes(self) -> list[int]:
        """Nodes up in this view (own node included), in order of coming up."""
        return list(self._nodes)

    @property
    def links(self) -> dict[int, int]:
        """Working links: peer node -> link id."""
        return dict(self._links)

    def node_up(self, node: int) -> None:
        if node in self._nodes:
            return
        self._nodes[node] = None
        self._report_state(NODE_STATE, node, NodeUp(node))

    def node_down(self, node: int) -> None:
        if node not in self._nodes:
            return
        del self._nodes[node]
        self._report_state(NODE_STATE, node, NodeDown(node))

    def link_up(self, peer: int, link_id: int) -> None:
        if peer in self._links:
            return
        self._links[peer] = link_id
        self._report_state(LINK_STATE, peer, LinkUp(peer, link_id))

    def link_down(self, peer: int) -> None:
        link_id = self._links.pop(peer, None)
        if link_id is None:
            return
        self._report_state(LINK_STATE, peer, LinkDown(peer, link_id))

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, sub: Subscriber) -> list[TopologyEvent]:
        """Register ``sub`` and return its snapshot (without the completion marker)."""
        target = sub.target
        self._subs.setdefault(target.type, []).append(sub)
        if target.type == NODE_STATE:
            return [NodeUp(n) for n in self._nodes if target.lower <= n <= target.upper]
        if target.type == LINK_STATE:
            return [LinkUp(n, lid) for n, lid in self._links.items() if target.lower <= n <= target.upper]
        svc = self._services.get(target.type)
        if svc is None:
            return []
        chosen: list[Publication] = []
        for sr in svc.overlapping(target.lower, target.upper):
            if sub.filter == SubFilter.PORTS:
                chosen.extend(sr.publs)
            else:
                chosen.append(min(sr.publs, key=_age))
        chosen.sort(key=_age)
        return [Published(p.range, p.socket) for p in chosen]

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subs.get(sub.target.type)
        if subs is not None and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subs[sub.target.type]

    def subscribers(self) -> Iterable[Subscriber]:
        return [s for subs in self._subs.values() for s in subs]

    def _report(self, publ: Publication, event: TopologyEvent, edge: bool) -> None:
        subs = self._subs.get(publ.range.type)
        if not subs:
            return
        r = publ.range
        for sub in list(subs):
            t = sub.target
            if t.lower <= r.upper and r.lower <= t.upper and (edge or sub.filter == SubFilter.PORTS):
                sub._push(event)

    def _report_state(self, type: int, node: int, event: TopologyEvent) -> None:
        for sub in list(self._subs.get(type, ())):
            if sub.target.lower <= node <= sub.target.upper:
                sub._push(event)


def _age(publ: Publication) -> int:
    return publ.id
