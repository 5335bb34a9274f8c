"""The name table's indexes at scale, against naive models (pure; no loop, no timing).

The blocked indexes of :mod:`tipcrpc.nametable.ranges` are checked with tiny blocks so that
every path (block splits, emptied blocks, stale running maxima) runs in small examples, and
a 100 000-publication table is built, looked up and emptied through the public API.
"""

from __future__ import annotations

from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipcrpc.addr import Scope, ServiceRange, SocketAddr
from tipcrpc.events import Published, SubFilter, TopologyEvent, Withdrawn
from tipcrpc.nametable import ranges as ranges_mod
from tipcrpc.nametable.ranges import RangeIndex, Subscribers
from tipcrpc.nametable.subscr import subscribe
from tipcrpc.nametable.table import NameTable, Publication

T = 0x5CA1E
OWN = 1
PEER = 2


class Item:
    __slots__ = ("lower", "upper", "order", "seq")

    def __init__(self, lower: int, upper: int, seq: int) -> None:
        self.lower, self.upper, self.order, self.seq = lower, upper, 0, seq

    def __repr__(self) -> str:
        return f"Item({self.lower}, {self.upper}, #{self.seq})"


bounds = st.tuples(st.integers(0, 60), st.integers(0, 60)).map(lambda t: (min(t), max(t)))
ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), bounds),
        st.tuples(st.just("remove"), st.integers(0, 10_000)),
        st.tuples(st.just("first"), st.integers(0, 61)),
        st.tuples(st.just("overlap"), bounds),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(ops, st.integers(2, 5))
def test_range_index_matches_sorted_list_model(script: list, block_max: int) -> None:
    index: RangeIndex[Item] = RangeIndex(block_max)
    model: list[Item] = []  # tree order: by lower, newest first among equal lowers
    seq = 0
    for op, arg in script:
        if op == "add":
            item = Item(arg[0], arg[1], seq)
            seq += 1
            index.add(item)
            model.append(item)
            model.sort(key=lambda r: (r.lower, -r.seq))
        elif op == "remove" and model:
            item = model.pop(arg % len(model))
            index.remove(item)
        elif op == "first":
            want = next((r for r in model if r.lower <= arg <= r.upper), None)
            assert index.first_containing(arg) is want
        elif op == "overlap":
            lo, hi = arg
            assert list(index.overlapping(lo, hi)) == [r for r in model if r.lower <= hi and r.upper >= lo]
        index.check()
        assert list(index) == model and len(index) == len(model)


def test_range_index_rejects_unknown_item() -> None:
    index: RangeIndex[Item] = RangeIndex(4)
    index.add(Item(1, 2, 0))
    stranger = Item(1, 2, 1)
    stranger.order = 12345
    with pytest.raises(KeyError):
        index.remove(stranger)


class Sub:
    def __init__(self, lower: int, upper: int) -> None:
        self.lower, self.upper = lower, upper

    def report_overlap(self, publ: Publication, event: int, must: bool) -> None:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(bounds, max_size=40), st.lists(st.integers(0, 10_000), max_size=10), bounds)
def test_subscribers_overlapping_in_attach_order(subs: list, drops: list, probe: tuple[int, int]) -> None:
    s: Subscribers[Sub] = Subscribers()
    attached = [Sub(lo, hi) for lo, hi in subs]
    for sub in attached:
        s.add(sub)
    for d in drops:
        if attached:
            assert s.remove(attached.pop(d % len(attached)))
    assert not s.remove(Sub(0, 0))
    lo, hi = probe
    assert s.overlapping(lo, hi) == [x for x in attached if x.lower <= hi and x.upper >= lo]
    assert list(s) == attached and len(s) == len(attached)


publication = st.tuples(bounds, st.integers(1, 3), st.integers(1, 4), st.sampled_from(list(Scope)))


@settings(max_examples=150, deadline=None)
@given(st.lists(publication, max_size=80), st.randoms(use_true_random=False), st.integers(0, 61), bounds)
def test_table_with_tiny_blocks_matches_brute_force(
    pubs: list, rnd: Random, instance: int, target: tuple[int, int]
) -> None:
    table = NameTable(OWN)
    saved, ranges_mod.BLOCK_MAX = ranges_mod.BLOCK_MAX, 3  # many blocks in a small table
    try:
        table.subscribe(Sub(0, 0), T, ports=True)  # creates the type (and keeps it)
    finally:
        ranges_mod.BLOCK_MAX = saved
    assert table._services[T].ranges._block_max == 3
    live: list[Publication] = []
    created: list[tuple[int, int]] = []
    for (lo, hi), node, port, scope in pubs:
        p = table.insert(T, lo, hi, scope, node, port, port * 2 + int(scope))
        if p is not None:
            live.append(p)
            if (lo, hi) not in created:
                created.append((lo, hi))
    # Withdraw a random half, then check every lookup against the survivors.
    rnd.shuffle(live)
    for p in live[: len(live) // 2]:
        assert table.remove(T, p.lower, p.upper, p.node, p.key) is p
    live = live[len(live) // 2 :]
    alive = {(p.lower, p.upper) for p in live}
    order = sorted((r for r in created if r in alive), key=lambda r: (r[0], -created.index(r)))
    containing = [r for r in order if r[0] <= instance <= r[1]]
    got = table.lookup_anycast(T, instance)
    if containing:
        assert got in {(p.node, p.port) for p in live if (p.lower, p.upper) == containing[0]}
    else:
        assert got is None
    local = [r for r in containing if any(p.node == OWN and (p.lower, p.upper) == r for p in live)]
    got_local = table.lookup_anycast(T, instance, OWN)
    if local:
        assert got_local in {(OWN, p.port) for p in live if p.node == OWN and (p.lower, p.upper) == local[0]}
    else:
        assert got_local is None
    lo, hi = target
    overlapping = [p for p in live if p.lower <= hi and p.upper >= lo]
    assert set(table.lookup_mcast_nodes(T, lo, hi)) == {p.node for p in overlapping}
    assert set(table.lookup_mcast_sockets(T, lo, hi, local_origin=True)) == {p.port for p in overlapping if p.node == OWN}
    assert table.has_match(T, lo, hi) == bool(overlapping)
    assert sorted(p.id for p in table.of_type(T)) == sorted(p.id for p in live)


def test_many_subscriptions_each_see_only_their_range() -> None:
    table = NameTable(OWN)
    seen: dict[int, list[TopologyEvent]] = {i: [] for i in range(100)}
    for i in range(100):  # one subscription per block of 10 instances
        subscribe(table, ServiceRange(T, 10 * i, 10 * i + 9), SubFilter.PORTS, seen[i].append)
    for inst in range(1000):
        table.insert(T, inst, inst, Scope.CLUSTER, PEER, 7, inst + 1)
    table.insert(T, 5, 25, Scope.CLUSTER, PEER, 8, 5000)  # overlaps subscriptions 0, 1 and 2
    for i in range(100):
        evs = seen[i][1:]  # after the snapshot marker
        extra = 1 if i <= 2 else 0
        assert len(evs) == 10 + extra
        assert all(isinstance(e, Published) for e in evs)
        assert [e.range.lower for e in evs[:10]] == list(range(10 * i, 10 * i + 10))


def test_hundred_thousand_publications() -> None:
    """Insert, look up, subscribe to and withdraw 100 000 single-instance publications."""
    n = 100_000
    rnd = Random(20261207)
    table = NameTable(OWN)
    events: list[TopologyEvent] = []
    subscribe(table, ServiceRange(T, 0, 0xFFFF_FFFF), SubFilter.PORTS, events.append)
    order = list(range(n))
    rnd.shuffle(order)
    for i in order:  # random order: inserts land all over the blocks
        assert table.insert(T, 2 * i, 2 * i, Scope.CLUSTER, PEER, 1000 + i % 7, i + 1) is not None
    assert len(table) == n
    assert table.insert(T, 0, 0, Scope.CLUSTER, PEER, 1000, 1) is None  # duplicate
    for i in rnd.sample(range(n), 2000):
        assert table.lookup_anycast(T, 2 * i) == (PEER, 1000 + i % 7)
        assert table.lookup_anycast(T, 2 * i + 1) is None  # the gaps are empty
    assert table.lookup_mcast_nodes(T, 1000, 1010) == [PEER]
    assert len(table.of_type(T)) == n
    replayed: list[TopologyEvent] = []
    subscribe(table, ServiceRange(T, 100, 199), SubFilter.SERVICE, replayed.append)
    position = {i: k for k, i in enumerate(order)}
    assert [e.range.lower for e in replayed[:-1]] == sorted(
        range(100, 200, 2), key=lambda inst: position[inst // 2]
    )  # replayed oldest first
    rnd.shuffle(order)
    for i in order:
        p = table.remove(T, 2 * i, 2 * i, PEER, i + 1)
        assert p is not None and (p.lower, p.port) == (2 * i, 1000 + i % 7)
    assert len(table) == 0 and table.lookup_anycast(T, 0) is None
    published = [e for e in events if isinstance(e, Published)]
    withdrawn = [e for e in events if isinstance(e, Withdrawn)]
    assert len(published) == len(withdrawn) == n
    assert sum(e.range.lower for e in withdrawn) == sum(2 * i for i in range(n))
    assert all(type(e.socket) is SocketAddr and e.socket.node == PEER for e in published)


def test_withdraw_order_does_not_matter_for_remaining_lookups() -> None:
    # Removing from the front, the back and the middle keeps "first containing" right.
    table = NameTable(OWN)
    for i in range(3000):
        table.insert(T, i, i + 2, Scope.CLUSTER, PEER, i, i + 1)  # overlapping triples
    for i in list(range(0, 500)) + list(range(2999, 2500, -1)) + list(range(1000, 1500)):
        table.remove(T, i, i + 2, PEER, i + 1)
    for inst in range(3002):
        alive = [i for i in range(inst - 2, inst + 1) if 500 <= i <= 2500 and not 1000 <= i < 1500]
        got = table.lookup_anycast(T, inst)
        assert got == ((PEER, min(alive)) if alive else None), inst
