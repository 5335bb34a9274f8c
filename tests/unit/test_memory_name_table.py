"""Properties of the memory transport's name table against a brute-force model (no I/O)."""

from __future__ import annotations

from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from tipcrpc.addr import Scope, ServiceRange, SocketAddr
from tipcrpc.events import Published, SubFilter, TopologyEvent, Withdrawn
from tipcrpc.transport.memory.name_table import NameTable, Publication

T = 100
OWN = 1

bounds = st.tuples(st.integers(0, 40), st.integers(0, 40)).map(lambda t: (min(t), max(t)))
publication = st.tuples(bounds, st.integers(1, 3), st.integers(1, 4), st.sampled_from(list(Scope)))


class _Sub:
    def __init__(self, target: ServiceRange, filter: SubFilter) -> None:
        self.target = target
        self.filter = filter
        self.events: list[TopologyEvent] = []

    def _push(self, event: TopologyEvent) -> None:
        self.events.append(event)


def _pub(b: tuple[int, int], node: int, port: int, scope: Scope) -> Publication:
    return Publication(ServiceRange(T, *b), SocketAddr(node, port), scope)


@settings(max_examples=200, deadline=None)
@given(st.lists(publication, max_size=25), st.integers(0, 40), bounds)
def test_lookups_match_brute_force(pubs: list, instance: int, target: tuple[int, int]) -> None:
    table = NameTable(OWN)
    live: list[Publication] = []
    for b, node, port, scope in pubs:
        p = _pub(b, node, port, scope)
        if table.insert(p):
            live.append(p)
    # Anycast: first range in (lower, upper) order containing the instance.
    containing = sorted({(p.range.lower, p.range.upper) for p in live if p.range.contains(instance)})
    got = table.lookup_anycast(T, instance)
    if not containing:
        assert got is None
    else:
        assert got is not None and (got.range.lower, got.range.upper) == containing[0]
    # Multicast: the set of nodes, and the local ports (each once).
    tr = ServiceRange(T, *target)
    overlapping = [p for p in live if p.range.overlaps(tr)]
    assert set(table.mcast_nodes(tr)) == {p.socket.node for p in overlapping}
    ports = table.mcast_ports(tr, cluster_scope_only=True)
    assert len(ports) == len(set(ports))
    assert set(ports) == {p.socket.port for p in overlapping if p.socket.node == OWN and p.scope is Scope.CLUSTER}
    assert set(table.mcast_ports(tr, cluster_scope_only=False)) == {
        p.socket.port for p in overlapping if p.socket.node == OWN
    }
    assert len(table) == len(live)


@settings(max_examples=200, deadline=None)
@given(st.lists(publication, max_size=12), st.lists(publication, max_size=12), st.randoms(use_true_random=False))
def test_service_filter_is_first_up_last_down_per_range(before: list, after: list, rnd: Random) -> None:
    table = NameTable(OWN)
    for b, node, port, scope in before:
        table.insert(_pub(b, node, port, scope))
    ports_sub = _Sub(ServiceRange(T, 0, 40), SubFilter.PORTS)
    service_sub = _Sub(ServiceRange(T, 0, 40), SubFilter.SERVICE)
    ports_sub.events = table.subscribe(ports_sub)
    service_sub.events = table.subscribe(service_sub)
    for b, node, port, scope in after:
        table.insert(_pub(b, node, port, scope))
    current = [p for d in table._by_node.values() for p in d.values()]
    rnd.shuffle(current)
    for p in current:
        table.remove(p.range, p.socket, p.scope)
    assert len(table) == 0
    # PORTS: every publication up exactly once and down exactly once.
    ups = [e for e in ports_sub.events if isinstance(e, Published)]
    downs = [e for e in ports_sub.events if isinstance(e, Withdrawn)]
    assert sorted(repr((e.range, e.socket)) for e in ups) == sorted(repr((e.range, e.socket)) for e in downs)
    # SERVICE: per range, strictly alternating up/down, starting with up, ending with down.
    per_range: dict[ServiceRange, list[str]] = {}
    for e in service_sub.events:
        per_range.setdefault(e.range, []).append("up" if isinstance(e, Published) else "down")  # type: ignore[union-attr]
    for seq in per_range.values():
        assert seq == ["up", "down"] * (len(seq) // 2)
