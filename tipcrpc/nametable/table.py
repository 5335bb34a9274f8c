"""One node's view of the cluster name table (mirrors ``net/tipc/name_table.c``), pure.

A *publication* binds a service range ``{type, lower, upper}`` to a socket ``{node, port}``
with a scope and a *key* (the publishing socket's per-publication number, ``portid +
pub_count + 1`` in the kernel; see :class:`~.bindings.Bindings`). Publications with the same
exact range share a *service range* entry; the ranges of one type are kept sorted by
``lower`` (equal lowers: newest range first — the kernel's RB-tree insertion order) so that
"first matching range" means what it means in the kernel.

Lookups, as the kernel does them (no legacy ``Z.C.N`` addressing, so no closest-first):

* **anycast** (:meth:`NameTable.lookup_anycast`): the *first* range containing the instance;
  lookup domain 0 = round-robin over all its publications, domain = own node = round-robin
  over its local publications only, any other domain = deferred to that node (port 0).
  Publications are kept newest first (``list_add``) and round-robin is ``list_move_tail`` of
  the chosen one.
* **multicast**: :meth:`~NameTable.lookup_mcast_nodes` on the sending node (every node with
  an overlapping publication), :meth:`~NameTable.lookup_mcast_sockets` on each receiving
  node (each local socket once; messages from other nodes only reach cluster-scope
  publications).

Node membership and links live in the same table, as in the kernel: every node publishes
``{0, own_addr}`` cluster-wide (``TIPC_NODE_STATE``) and every working link is a node-scope
``{2, peer}`` publication (``TIPC_LINK_STATE``), so one subscription mechanism serves all.

Subscriptions (see :mod:`.subscr`) are attached per type and told about every insertion and
removal that overlaps their range, with the kernel's "first"/"last" flags
(``TIPC_SUB_SERVICE`` semantics).

Scale: insert, remove and anycast lookup cost O(log n) in the ranges of the type (the
interval index of :mod:`.ranges` stands in for the kernel's augmented RB tree), a multicast
lookup O(log n + matches), and an event reaches only the subscriptions it overlaps — 100 000
publications are routine (``bench/scale.py``).

Pure (layer L1): no I/O, no clocks. Used by both the userspace node and the memory cluster.
"""

from __future__ import annotations

from typing import Protocol

from ..addr import Scope, ServiceRange, SocketAddr
from ..errors import AddressError
from ..fastpath import mypyc_attr
from .ranges import RangeIndex, Subscribers

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
_CLUSTER = int(Scope.CLUSTER)
_NODE = int(Scope.NODE)
#: Anycast lookups remembered per type (instance -> first matching range); the cache is
#: dropped whenever a range of the type appears or disappears.
_ANYCAST_CACHE_MAX = 1024


class Publication:
    """One binding of a range to a socket. ``id`` orders publications of a type by age."""

    __slots__ = ("type", "lower", "upper", "scope", "node", "port", "key", "id", "sk", "sr")

    def __init__(self, type: int, lower: int, upper: int, scope: int, node: int, port: int, key: int) -> None:
        self.type = type
        self.lower = lower
        self.upper = upper
        self.scope = scope
        self.node = node
        self.port = port
        self.key = key
        self.id = 0
        #: ``(node, port)``, what an anycast lookup returns: built by the first lookup and kept
        #: (most publications of a large table are never looked up one by one).
        self.sk: tuple[int, int] | None = None
        #: The service range entry holding this publication (set by the table).
        self.sr: _Range | None = None

    @property
    def range(self) -> ServiceRange:
        """The published range as a :class:`ServiceRange`."""
        return ServiceRange(self.type, self.lower, self.upper)

    @property
    def socket(self) -> SocketAddr:
        """The publishing socket as a :class:`SocketAddr`."""
        return SocketAddr(self.node, self.port)

    def __repr__(self) -> str:
        scope = "node" if self.scope == _NODE else "cluster"
        return (
            f"Publication({{{self.type},{self.lower},{self.upper}}} -> <{self.node:08x}:{self.port}> "
            f"{scope} key={self.key} id={self.id})"
        )


class Subscriber(Protocol):
    """What the name table calls on insert/remove (implemented by :class:`.subscr.Subscription`)."""

    lower: int
    upper: int

    def report_overlap(self, publ: Publication, event: int, must: bool) -> None: ...


# An ordinary class when compiled (./dev build-compiled): a mypyc native class cannot subclass list.
@mypyc_attr(native_class=False)
class _Range(list):  # type: ignore[type-arg]
    """One exact ``[lower, upper]`` (kernel ``struct service_range``): the list of all its
    publications (``all_publ``), plus ``local_publ``, the local ones.

    A service range *is* its list of publications — one object per range instead of two
    (100 000 names = 100 000 ranges). Both lists are newest first (kernel ``list_add``) and
    rotated on lookup (``list_move_tail``); ``local_publ`` is ``None`` while there is no
    local publication (most ranges of a large table are remote).
    """

    __slots__ = ("lower", "upper", "order", "local_publ")

    def __init__(self, lower: int, upper: int) -> None:
        self.lower = lower
        self.upper = upper
        self.order = 0  # sort key, set by the RangeIndex
        self.local_publ: list[Publication] | None = None

    # Identity semantics (a list compares by content): ranges are dict values and are
    # removed from their index by identity.
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__  # type: ignore[assignment]


class _Service:
    """All ranges and subscriptions of one type (kernel ``struct tipc_service``).

    ``ranges`` keeps the tree order and answers overlap queries in O(log n) (see
    :mod:`.ranges`); ``exact`` finds a range by its bounds.
    """

    __slots__ = ("type", "ranges", "exact", "publ_cnt", "subscriptions", "cache")

    def __init__(self, type: int) -> None:
        self.type = type
        self.ranges: RangeIndex[_Range] = RangeIndex()
        self.exact: dict[int, _Range] = {}  # lower << 32 | upper -> range
        self.publ_cnt = 0
        self.subscriptions: Subscribers[Subscriber] = Subscribers()
        self.cache: dict[int, _Range] = {}  # anycast: instance -> first containing range

    def delete_range(self, r: _Range) -> None:
        del self.exact[r.lower << 32 | r.upper]
        self.ranges.remove(r)
        if self.cache:
            self.cache.clear()


class NameTable:
    """The cluster-wide binding table as seen from node ``own_node``.

    Remote publications enter through name distribution, local ones through the node's
    sockets. Every mutation is reported to the subscriptions of the affected type before the
    call returns.
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
        if scope != _NODE and scope != _CLUSTER:
            raise AddressError(f"illegal publication scope {scope!r}")
        if upper == lower:
            upper = lower  # one int object for both bounds of a single instance (32 bytes)
        ident = (type, lower, upper, key)
        per_node = self._by_node.get(node)
        if per_node is not None and ident in per_node:
            return None
        sc = self._services.get(type)
        if sc is None:
            sc = self._services[type] = _Service(type)
        bounds = lower << 32 | upper
        r = sc.exact.get(bounds)
        if r is None:
            r = sc.exact[bounds] = _Range(lower, upper)
            sc.ranges.add(r)
            if sc.cache:
                sc.cache.clear()
        first = not r
        p = Publication(type, lower, upper, int(scope), node, port, key)
        p.id = sc.publ_cnt
        p.sr = r
        sc.publ_cnt += 1
        r.insert(0, p)
        if node == self.own_node:
            if r.local_publ is None:
                r.local_publ = [p]
            else:
                r.local_publ.insert(0, p)
        if per_node is None:
            per_node = self._by_node[node] = {}
        per_node[ident] = p
        self._count += 1
        if sc.subscriptions.members:
            for sub in sc.subscriptions.overlapping(lower, upper):
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
        r = p.sr
        assert r is not None, "name table index out of sync"
        _drop(r, p)
        if r.local_publ is not None and node == self.own_node:
            _drop(r.local_publ, p)
            if not r.local_publ:
                r.local_publ = None
        self._count -= 1
        last = not r
        if sc.subscriptions.members:
            for sub in sc.subscriptions.overlapping(lower, upper):
                sub.report_overlap(p, WITHDRAWN, last)
        if last:
            sc.delete_range(r)
            if not sc.exact and not sc.subscriptions.members:
                del self._services[type]
        return p

    def purge_node(self, node: int, *, scope: int | None = Scope.CLUSTER) -> list[Publication]:
        """Remove every publication of ``node`` (node down), by type then age; returns them.

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
        sc = self._services.get(type)
        if domain:
            if domain != self.own_node:
                return (domain, 0)
            return self._lookup_local(sc, instance) if sc is not None else None
        if sc is None:
            return None
        r = sc.cache.get(instance)
        if r is None:
            r = sc.ranges.first_containing(instance)
            if r is None:
                return None
            if len(sc.cache) < _ANYCAST_CACHE_MAX:
                sc.cache[instance] = r
        p = r[0]
        if len(r) > 1:
            r.append(r.pop(0))  # list_move_tail
        sk: tuple[int, int] | None = p.sk
        if sk is None:
            sk = p.sk = (p.node, p.port)
        return sk

    @staticmethod
    def _lookup_local(sc: _Service, instance: int) -> tuple[int, int] | None:
        for r in sc.ranges.overlapping(instance, instance):
            lst = r.local_publ
            if lst:  # else the kernel tries the next matching range
                p = lst[0]
                if len(lst) > 1:
                    lst.append(lst.pop(0))
                if p.sk is None:
                    p.sk = (p.node, p.port)
                return p.sk
        return None

    def lookup_mcast_nodes(self, type: int, lower: int, upper: int) -> list[int]:
        """Every node with a publication overlapping the range (own node included), each once."""
        sc = self._services.get(type)
        if sc is None:
            return []
        nodes: dict[int, None] = {}
        for r in sc.ranges.overlapping(lower, upper):
            for p in r:
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
        for r in sc.ranges.overlapping(lower, upper):
            for p in r.local_publ or ():
                if local_origin or p.scope == _CLUSTER:
                    ports[p.port] = None
        return list(ports)

    def has_match(self, type: int, lower: int, upper: int) -> bool:
        """Whether any publication overlaps the range."""
        sc = self._services.get(type)
        return sc is not None and any(True for _ in sc.ranges.overlapping(lower, upper))

    # -- subscriptions --------------------------------------------------------------------

    def subscribe(self, sub: Subscriber, type: int, *, ports: bool) -> None:
        """Attach ``sub`` to ``type`` and replay matching publications, oldest first.

        With ``ports`` every publication is replayed (``TIPC_SUB_PORTS``), otherwise only the
        oldest publication of each range (``TIPC_SUB_SERVICE``) — as ``tipc_service_subscribe``.
        """
        sc = self._services.get(type)
        if sc is None:
            sc = self._services[type] = _Service(type)
        sc.subscriptions.add(sub)
        replay: list[Publication] = []
        for r in sc.ranges.overlapping(sub.lower, sub.upper):
            if ports:
                replay.extend(r)
            elif r:
                replay.append(min(r, key=_age))
        replay.sort(key=_age)
        for p in replay:
            sub.report_overlap(p, PUBLISHED, True)

    def unsubscribe(self, sub: Subscriber, type: int) -> None:
        """Detach ``sub``; a no-op if it is not attached."""
        sc = self._services.get(type)
        if sc is None:
            return
        if not sc.subscriptions.remove(sub):
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
        pubs.sort(key=_type_age)
        return pubs

    def of_type(self, type: int) -> list[Publication]:
        """Every publication of ``type``, oldest first."""
        sc = self._services.get(type)
        if sc is None:
            return []
        pubs = [p for r in sc.ranges for p in r]
        pubs.sort(key=_age)
        return pubs

    def nodes(self) -> list[int]:
        """Nodes that currently own at least one publication."""
        return list(self._by_node)

    def find(self, type: int, lower: int, upper: int, node: int, key: int) -> Publication | None:
        """The publication with this identity, if present."""
        per_node = self._by_node.get(node)
        return None if per_node is None else per_node.get((type, lower, upper, key))


def _age(p: Publication) -> int:
    return p.id


def _type_age(p: Publication) -> tuple[int, int]:
    return (p.type, p.id)


def _drop(lst: list[Publication], p: Publication) -> None:
    """Remove ``p`` (by identity) from a range's list; the common single entry costs nothing."""
    if len(lst) == 1:
        lst.pop()
    else:
        for i, q in enumerate(lst):
            if q is p:
                del lst[i]
                return
