"""Properties of the shared name table (tipcrpc.nametable) against a brute-force model (no I/O)."""

from __future__ import annotations

from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from tipcrpc.addr import Scope, ServiceRange, SocketAddr
from tipcrpc.events import Published, SubFilter, TopologyEvent, Withdrawn
from tipcrpc.nametable.subscr import subscribe
from tipcrpc.nametable.table import NameTable, Publication

T = 100
OWN = 1

bounds = st.tuples(st.integers(0, 40), st.integers(0, 40)).map(lambda t: (min(t), max(t)))
publication = st.tuples(bounds, st.integers(1, 3), st.integers(1, 4), st.sampled_from(list(Scope)))


def _insert(table: NameTable, b: tuple[int, int], node: int, port: int, scope: Scope) -> Publication | None:
    # One key per (port, scope), as a socket's bindings would have.
    return table.insert(T, b[0], b[1], scope, node, port, port * 2 + int(scope))


@settings(max_examples=200, deadline=None)
@given(st.lists(publication, max_size=25), st.integers(0, 40), bounds)
def test_lookups_match_brute_force(pubs: list, instance: int, target: tuple[int, int]) -> None:
    table = NameTable(OWN)
    live: list[Publication] = []
    ranges: list[tuple[int, int]] = []  # distinct ranges, in creation order
    for b, node, port, scope in pubs:
        p = _insert(table, b, node, port, scope)
        if p is not None:
            live.append(p)
            if b not in ranges:
                ranges.append(b)
    # Anycast: first range in tree order containing the instance; the kernel's RB tree sorts
    # by lower and puts a newer range before an older one with the same lower.
    containing = [r for r in ranges if r[0] <= instance <= r[1]]
    order = sorted(containing, key=lambda r: (r[0], -ranges.index(r)))
    got = table.lookup_anycast(T, instance)
    if not order:
        assert got is None
    else:
        assert got is not None
        winners = {(p.node, p.port) for p in live if (p.lower, p.upper) == order[0]}
        assert got in winners
    # Multicast: the set of nodes, and the local ports (each once).
    tr = ServiceRange(T, *target)
    overlapping = [p for p in live if p.range.overlaps(tr)]
    assert set(table.lookup_mcast_nodes(T, *target)) == {p.node for p in overlapping}
    ports = table.lookup_mcast_sockets(T, *target, local_origin=False)
    assert len(ports) == len(set(ports))
    assert set(ports) == {p.port for p in overlapping if p.node == OWN and p.scope == Scope.CLUSTER}
    assert set(table.lookup_mcast_sockets(T, *target, local_origin=True)) == {
        p.port for p in overlapping if p.node == OWN
    }
    assert len(table) == len(live)


@settings(max_examples=200, deadline=None)
@given(st.lists(publication, max_size=12), st.lists(publication, max_size=12), st.randoms(use_true_random=False))
def test_service_filter_is_first_up_last_down_per_range(before: list, after: list, rnd: Random) -> None:
    table = NameTable(OWN)
    for b, node, port, scope in before:
        _insert(table, b, node, port, scope)
    ports_events: list[TopologyEvent] = []
    service_events: list[TopologyEvent] = []
    subscribe(table, ServiceRange(T, 0, 40), SubFilter.PORTS, ports_events.append)
    subscribe(table, ServiceRange(T, 0, 40), SubFilter.SERVICE, service_events.append)
    for b, node, port, scope in after:
        _insert(table, b, node, port, scope)
    current = table.publications()
    rnd.shuffle(current)
    for p in current:
        table.remove(p.type, p.lower, p.upper, p.node, p.key)
    assert len(table) == 0
    # PORTS: every publication up exactly once and down exactly once.
    ups = [e for e in ports_events if isinstance(e, Published)]
    downs = [e for e in ports_events if isinstance(e, Withdrawn)]
    assert sorted(repr((e.range, e.socket)) for e in ups) == sorted(repr((e.range, e.socket)) for e in downs)
    # SERVICE: per range, strictly alternating up/down, starting with up, ending with down.
    per_range: dict[ServiceRange, list[str]] = {}
    for e in service_events:
        if isinstance(e, (Published, Withdrawn)):
            per_range.setdefault(e.range, []).append("up" if isinstance(e, Published) else "down")
    for seq in per_range.values():
        assert seq == ["up", "down"] * (len(seq) // 2)


def test_anycast_cache_follows_range_changes() -> None:
    table = NameTable(OWN)
    table.insert(T, 0, 100, Scope.CLUSTER, 2, 7, 1)
    assert table.lookup_anycast(T, 50) == (2, 7)  # cached: instance 50 -> {0, 100}
    table.insert(T, 0, 60, Scope.CLUSTER, 3, 8, 1)  # a new first range for 50
    assert table.lookup_anycast(T, 50) == (3, 8)
    table.remove(T, 0, 60, 3, 1)
    assert table.lookup_anycast(T, 50) == (2, 7)
    table.remove(T, 0, 100, 2, 1)
    assert table.lookup_anycast(T, 50) is None
    assert SocketAddr(2, 7) == Publication(T, 0, 0, 2, 2, 7, 1).socket
