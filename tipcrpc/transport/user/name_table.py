"""The userspace node's name table (mirrors ``net/tipc/name_table.c``).

A *publication* binds a service range ``{type, lower, upper}`` to a socket ``{node, port}``
with a scope and a *key* (the publishing socket's per-publication number, ``portid +
pub_count + 1`` in the kernel). Publications with the same exact range share a *service
range* entry; the ranges of one type are kept sorted by ``lower`` (equal lowers: newest range
first — the kernel's RB-tree insertion order) so that "first matching range" means what it
means in the kernel.

Lookups, as the kernel does them (no legacy ``Z.C.N`` addressing, so no closest-first):

* **anycast** (:meth:`NameTable.lookup_anycast`): the *first* range containing the instance;
  lookup domain 0 = round-robin over all its publications, domain = own node = round-robin
  over its local publications only, any other domain = deferred to that node (port 0).
  Round-robin is ``list_move_tail`` of the chosen publication.
* **multicast**: :meth:`lookup_mcast_nodes` on the sending node (every node with an
  overlapping publication), :meth:`lookup_mcast_sockets` on each receiving node (each local
  socket once; messages from other nodes only reach cluster-scope publications).

Subscriptions (see :mod:`.subscr`) are attached per type and told about every insertion and
removal with the kernel's "first"/"last" flags (``TIPC_SUB_SERVICE`` semantics).

Pure (layer L1): no I/O, no clocks.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterator, Protocol

from ...addr import Scope
from ...errors import AddressError

__all__ = [
    "PUBLISHED",
    "WITHDRAWN",
    "Publication",
    "Subscriber",
    "NameTable",
]

#: ``TIPC_PUBLISHED`` / ``TIPC_WITHDRAWN`` event codes (``linux/tipc.h``).
PUBLISHED = 1
WITHDRAWN = 2

_U32 = 0xFFFF_FFFF


class Publication:
    """One binding of a range to a socket. ``id`` orders publications of a type by age."""

    __slots__ = ("type", "lower", "upper", "scope", "node", "port", "key", "id")

    def __init__(self, type: int, lower: int, upper: int, scope: int, node: int, port: int, key: int) -> None:
        self.type = type
        self.lower = lower
        self.upper = upper
        self.scope = scope
        self.node = node
        self.port = port
        self.key = key
        self.id = 0

    def __repr__(self) -> str:
        scope = "node" if self.scope == Scope.NODE else "cluster"
        return (
            f"Publication({{{self.type},{self.lower},{self.upper}}} -> <{self.node:08x}:{self.port}> "
            f"{scope} key={self.key} id={self.id})"
        )


class Subscriber(Protocol):
    """What the name table calls on insert/remove (implemented by :class:`.subscr.Subscription`)."""

    lower: int
    upper: int

    def report_overlap(self, publ: Publication, event: int, must: bool) -> None: ...


class _Range:
    """All publications of one exact ``[lower, upper]`` (kernel ``struct service_range``)."""

    __slots__ = ("lower", "upper", "all_publ", "local_publ")

    def __init__(self, lower: int, upper: int) -> None:
        self.lower = lower
        self.upper = upper
        # Both lists are newest-first (kernel list_add) and rotated on lookup (list_move_tail).
        self.all_publ: list[Publication] = []
        self.local_publ: list[Publication] = []


class _Service:
    """All ranges and subscriptions of one type (kernel ``struct tipc_service``)."""

    __slots__ = ("type", "ranges", "lowers", "publ_cnt", "subscriptions")

    def __init__(self, type: int) -> None:
        self.type = type
        self.ranges: list[_Range] = []  # sorted by lower; equal lowers newest-first
        self.lowers: list[int] = []  # parallel to ranges, for bisect
        self.publ_cnt = 0
        self.subscriptions: list[Subscriber] = []

    def matching(self, start: int, end: int) -> Iterator[_Range]:
        """Ranges overlapping ``[start, end]``, in tree order."""
        for r in self.ranges:
            if r.lower > end:
                return
            if r.upper >= start:
                yield r

    def find_exact(self, lower: int, upper: int) -> _Range | None:
        i = bisect_left(self.lowers, lower)
        ranges = self.ranges
        while i < len(ranges) and ranges[i].lower == lower:
            if ranges[i].upper == upper:
                return ranges[i]
            i += 1
        return None

    def create_range(self, lower: int, upper: int) -> _Range:
        found = self.find_exact(lower, upper)
        if found is not None:
            return found
        r = _Range(lower, upper)
        # The kernel descends left when lower <= node.lower, so a new range lands before every
        # existing range with an equal lower: bisect_left gives exactly that position.
        i = bisect_left(self.lowers, lower)
        self.ranges.insert(i, r)
        self.lowers.insert(i, lower)
        return r

    def delete_range(self, r: _Range) -> None:
        i = self.ranges.index(r)
        del self.ranges[i]
        del self.lowers[i]


class NameTable:
    """The cluster-wide binding table as seen from node ``own_node``.

    Remote publications enter through name distribution (:mod:`.name_distr`), local ones
    through the stack's endpoints. Every mutation is reported to the subscriptions of the
    affected type before the call returns.
    """

    def __init__(self, own_node: int) -> None:
        self.own_node = own_node
        self._services: dict[int, _Service] = {}
        # node -> {(type, lower, upper, key): publication}: duplicate detection and purge.
        self._by_node: dict[int, dict[tuple[int, int, int, int], Publication]] = {}
        self._count = 0

    # -- mutation -------------------------------------------------------------------------

    def insert(
        self, type: int, lower: int, upper: int, scope: int, node: int, port: int, key: int
    ) -> Publication | None:
        """Add a publication; ``None`` if an identical one (same range, node and key) exists.

        Raises :class:`AddressError` for an inverted range or out-of-range values.
        """
        if not (0 <= lower <= upper <= _U32 and 0 <= type <= _U32):
            raise AddressError(f"illegal publication {{{type},{lower},{upper}}} from node {node:08x}")
        if scope not in (Scope.NODE, Scope.CLUSTER):
            raise AddressError(f"illegal publication scope {scope!r}")
        ident = (type, lower, upper, key)
        per_node = self._by_node.get(node)
        if per_node is not None and ident in per_node:
            return None
        sc = self._services.get(type)
        if sc is None:
            sc = self._services[type] = _Service(type)
        r = sc.create_range(lower, upper)
        first = not r.all_publ
        p = Publication(type, lower, upper, int(scope), node, port, key)
        p.id = sc.publ_cnt
        sc.publ_cnt += 1
        r.all_publ.insert(0, p)
        if node == self.own_node:
            r.local_publ.insert(0, p)
        if per_node is None:
            per_node = self._by_node[node] = {}
        per_node[ident] = p
        self._count += 1
        for sub in list(sc.subscriptions):
            sub.report_overlap(p, PUBLISHED, first)
        return p

    def remove(self, type: int, lower: int, upper: int, node: int, key: int) -> Publication | None:
        """Remove the publication with this exact range, node and key; ``None`` if absent."""
        per_node = self._by_node.get(node)
        if per_node is None:
            return None
        p = per_node.pop((type, lower, upper, key), None)
        if p is None:
            return None
        if not per_node:
            del self._by_node[node]
        sc = self._services[type]
        r = sc.find_exact(lower, upper)
        assert r is not None, "name table index out of sync"
        r.all_publ.remove(p)
        if node == self.own_node:
            r.local_publ.remove(p)
        self._count -= 1
        last = not r.all_publ
        for sub in list(sc.subscriptions):
            sub.report_overlap(p, WITHDRAWN, last)
        if last:
            sc.delete_range(r)
        if not sc.ranges and not sc.subscriptions:
            del self._services[type]
        return p

    def purge_node(self, node: int, *, scope: int | None = Scope.CLUSTER) -> list[Publication]:
        """Remove every publication of ``node`` (node down), oldest first; returns them.

        By default only cluster-scope ones: a node-scope publication naming a remote node
        (the link-state entry ``{2, peer}``) belongs to this node and is withdrawn by its owner.
        """
        per_node = self._by_node.get(node)
        if not per_node:
            return []
        victims = sorted(
            (p for p in per_node.values() if scope is None or p.scope == scope),
            key=lambda p: (p.type, p.id),
        )
        for p in victims:
            self.remove(p.type, p.lower, p.upper, p.node, p.key)
        return victims

    # -- lookups --------------------------------------------------------------------------

    def lookup_anycast(self, type: int, instance: int, domain: int = 0) -> tuple[int, int] | None:
        """Translate ``{type, instance}`` to ``(node, port)`` (kernel ``tipc_nametbl_lookup_anycast``).

        ``domain`` 0 = whole cluster, own node = local publications only, another node =
        the lookup is deferred to that node: ``(domain, 0)`` is returned unchecked.
        ``None`` when nothing matches.
        """
        own = self.own_node
        if domain and domain != own:
            return (domain, 0)
        sc = self._services.get(type)
        if sc is None:
            return None
        for r in sc.ranges:
            if r.lower > instance:
                return None
            if r.upper < instance:
                continue
            lst = r.local_publ if domain == own else r.all_publ
            if not lst:
                continue  # only possible for the local list: try the next range
            p = lst[0]
            if len(lst) > 1:
                del lst[0]
                lst.append(p)
            return (p.node, p.port)
        return None

    def lookup_mcast_nodes(self, type: int, lower: int, upper: int) -> list[int]:
        """Every node with a publication overlapping the range (own node included), each once."""
        sc = self._services.get(type)
        if sc is None:
            return []
        nodes: dict[int, None] = {}
        for r in sc.matching(lower, upper):
            for p in r.all_publ:
                nodes[p.node] = None
        return list(nodes)

    def lookup_mcast_sockets(self, type: int, lower: int, upper: int, *, local_origin: bool) -> list[int]:
        """Local ports with an overlapping publication, each once.

        A message that came from another node reaches cluster-scope publications only; one
        sent on this node reaches node-scope ones too (kernel ``TIPC_ANY_SCOPE``).
        """
        sc = self._services.get(type)
        if sc is None:
            return []
        ports: dict[int, None] = {}
        for r in sc.matching(lower, upper):
            for p in r.local_publ:
                if local_origin or p.scope == Scope.CLUSTER:
                    ports[p.port] = None
        return list(ports)

    def has_match(self, type: int, lower: int, upper: int) -> bool:
        """Whether any publication overlaps the range."""
        sc = self._services.get(type)
        return sc is not None and any(True for _ in sc.matching(lower, upper))

    # -- subscriptions --------------------------------------------------------------------

    def subscribe(self, sub: Subscriber, type: int, *, ports: bool) -> None:
        """Attach ``sub`` to ``type`` and replay matching publications, oldest first.

        With ``ports`` every publication is replayed (``TIPC_SUB_PORTS``), otherwise only the
        oldest publication of each range (``TIPC_SUB_SERVICE``) — as ``tipc_service_subscribe``.
        """
        sc = self._services.get(type)
        if sc is None:
            sc = self._services[type] = _Service(type)
        sc.subscriptions.append(sub)
        replay: list[Publication] = []
        for r in sc.matching(sub.lower, sub.upper):
            if ports:
                replay.extend(r.all_publ)
            elif r.all_publ:
                replay.append(min(r.all_publ, key=lambda p: p.id))
        replay.sort(key=lambda p: p.id)
        for p in replay:
            sub.report_overlap(p, PUBLISHED, True)

    def unsubscribe(self, sub: Subscriber, type: int) -> None:
        """Detach ``sub``; a no-op if it is not attached."""
        sc = self._services.get(type)
        if sc is None:
            return
        try:
            sc.subscriptions.remove(sub)
        except ValueError:
            return
        if not sc.ranges and not sc.subscriptions:
            del self._services[type]

    # -- inspection -----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def publications(self, node: int | None = None) -> list[Publication]:
        """All publications (or those of ``node``), ordered by type then age."""
        if node is None:
            pubs = [p for per in self._by_node.values() for p in per.values()]
        else:
            pubs = list(self._by_node.get(node, {}).values())
        pubs.sort(key=lambda p: (p.type, p.id))
        return pubs

    def nodes(self) -> list[int]:
        """Nodes that currently own at least one publication."""
        return list(self._by_node)

    def find(self, type: int, lower: int, upper: int, node: int, key: int) -> Publication | None:
        """The publication with this identity, if present."""
        per_node = self._by_node.get(node)
        return None if per_node is None else per_node.get((type, lower, upper, key))
