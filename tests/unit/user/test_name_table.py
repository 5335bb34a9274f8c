"""Name table semantics, as net/tipc/name_table.c (non-legacy addressing)."""

from __future__ import annotations

import pytest

from tipcrpc.addr import Scope
from tipcrpc.errors import AddressError
from tipcrpc.nametable.table import PUBLISHED, WITHDRAWN, NameTable, Publication

OWN = 0x1001
N2 = 0x2002
N3 = 0x3003
C = Scope.CLUSTER
N = Scope.NODE


class Recorder:
    def __init__(self, lower: int = 0, upper: int = 0xFFFFFFFF) -> None:
        self.lower = lower
        self.upper = upper
        self.seen: list[tuple[int, int, int, bool]] = []

    def report_overlap(self, publ: Publication, event: int, must: bool) -> None:
        self.seen.append((event, publ.node, publ.port, must))


def test_insert_and_duplicate() -> None:
    t = NameTable(OWN)
    p = t.insert(100, 1, 5, C, OWN, 7, 8)
    assert p is not None and (p.type, p.lower, p.upper, p.node, p.port, p.key) == (100, 1, 5, OWN, 7, 8)
    # Same range, node and key: refused (kernel "already exists").
    assert t.insert(100, 1, 5, C, OWN, 9, 8) is None
    # Same key on another node, or another key: fine (duplicate binds never fail).
    assert t.insert(100, 1, 5, C, N2, 7, 8) is not None
    assert t.insert(100, 1, 5, C, OWN, 7, 9) is not None
    assert len(t) == 3


def test_illegal_publication() -> None:
    t = NameTable(OWN)
    with pytest.raises(AddressError):
        t.insert(100, 5, 1, C, OWN, 1, 1)
    with pytest.raises(AddressError):
        t.insert(100, 1, 1, 7, OWN, 1, 1)


def test_remove_matches_node_and_key() -> None:
    t = NameTable(OWN)
    t.insert(100, 1, 1, C, N2, 7, 8)
    assert t.remove(100, 1, 1, N3, 8) is None
    assert t.remove(100, 1, 1, N2, 9) is None
    assert t.remove(100, 1, 2, N2, 8) is None
    p = t.remove(100, 1, 1, N2, 8)
    assert p is not None and p.port == 7
    assert len(t) == 0
    assert t.lookup_anycast(100, 1) is None


def test_anycast_round_robin_over_all_publications() -> None:
    t = NameTable(OWN)
    t.insert(100, 0, 10, C, OWN, 1, 2)
    t.insert(100, 0, 10, C, N2, 2, 3)
    t.insert(100, 0, 10, C, N3, 3, 4)
    # Kernel list_add puts the newest first; list_move_tail rotates after each pick.
    picks = [t.lookup_anycast(100, 5) for _ in range(6)]
    assert picks == [(N3, 3), (N2, 2), (OWN, 1)] * 2


def test_anycast_no_local_preference_but_node_domain() -> None:
    t = NameTable(OWN)
    t.insert(100, 0, 10, C, N2, 2, 3)
    t.insert(100, 0, 10, C, OWN, 1, 2)
    t.insert(100, 0, 10, C, N3, 3, 4)
    assert {t.lookup_anycast(100, 5) for _ in range(3)} == {(N2, 2), (OWN, 1), (N3, 3)}
    # Lookup domain = own node: local publications only.
    assert [t.lookup_anycast(100, 5, OWN) for _ in range(2)] == [(OWN, 1), (OWN, 1)]
    # Another node's address: deferred to that node, port 0.
    assert t.lookup_anycast(100, 5, N2) == (N2, 0)


def test_anycast_first_matching_range_only() -> None:
    t = NameTable(OWN)
    t.insert(100, 0, 100, C, N2, 2, 3)
    t.insert(100, 50, 60, C, N3, 3, 4)
    # Instance 55 is in both ranges; the first (lowest lower) wins every time.
    assert [t.lookup_anycast(100, 55) for _ in range(3)] == [(N2, 2)] * 3
    assert t.lookup_anycast(100, 101) is None
    assert t.lookup_anycast(101, 1) is None


def test_anycast_equal_lower_newest_range_first() -> None:
    t = NameTable(OWN)
    t.insert(100, 10, 20, C, N2, 2, 3)
    t.insert(100, 10, 30, C, N3, 3, 4)
    # The kernel's RB-tree places the later range with an equal lower to the left.
    assert t.lookup_anycast(100, 15) == (N3, 3)


def test_node_domain_skips_ranges_without_local_publications() -> None:
    t = NameTable(OWN)
    t.insert(100, 0, 100, C, N2, 2, 3)
    t.insert(100, 50, 60, C, OWN, 1, 2)
    assert t.lookup_anycast(100, 55, OWN) == (OWN, 1)
    assert t.lookup_anycast(100, 10, OWN) is None


def test_multicast_lookups() -> None:
    t = NameTable(OWN)
    t.insert(100, 0, 9, C, OWN, 1, 2)
    t.insert(100, 5, 15, C, OWN, 1, 3)  # same socket, second binding: one copy only
    t.insert(100, 0, 9, N, OWN, 4, 5)  # node scope: local senders only
    t.insert(100, 10, 20, C, N2, 7, 8)
    t.insert(100, 30, 40, C, N3, 9, 10)
    assert sorted(t.lookup_mcast_nodes(100, 0, 25)) == sorted([OWN, N2])
    assert t.lookup_mcast_nodes(100, 21, 29) == []
    assert sorted(t.lookup_mcast_sockets(100, 0, 25, local_origin=True)) == [1, 4]
    assert t.lookup_mcast_sockets(100, 0, 25, local_origin=False) == [1]
    assert t.has_match(100, 35, 35) and not t.has_match(100, 41, 50)


def test_purge_node_only_cluster_scope() -> None:
    t = NameTable(OWN)
    t.insert(100, 1, 1, C, N2, 7, 8)
    t.insert(101, 1, 1, C, N2, 7, 9)
    t.insert(2, N2, N2, N, N2, 0, N2)  # link-state entry owned by this node
    t.insert(100, 1, 1, C, N3, 7, 8)
    purged = t.purge_node(N2)
    assert sorted((p.type, p.key) for p in purged) == [(100, 8), (101, 9)]
    assert [(p.type, p.node) for p in t.publications()] == [(2, N2), (100, N3)]
    assert t.purge_node(N2) == []


def test_subscription_reports_first_and_last() -> None:
    t = NameTable(OWN)
    r = Recorder(0, 100)
    t.subscribe(r, 100, ports=True)
    t.insert(100, 1, 1, C, N2, 7, 8)
    t.insert(100, 1, 1, C, N3, 9, 10)
    t.insert(100, 500, 600, C, N3, 9, 11)  # outside the subscription: not reported to it
    t.remove(100, 1, 1, N2, 8)
    t.remove(100, 1, 1, N3, 10)
    assert r.seen == [
        (PUBLISHED, N2, 7, True),
        (PUBLISHED, N3, 9, False),
        (WITHDRAWN, N2, 7, False),
        (WITHDRAWN, N3, 9, True),
    ]


def test_subscribe_replays_by_age() -> None:
    t = NameTable(OWN)
    t.insert(100, 50, 50, C, N2, 1, 1)
    t.insert(100, 10, 10, C, N3, 2, 2)
    t.insert(100, 50, 50, C, N3, 3, 3)
    ports = Recorder()
    t.subscribe(ports, 100, ports=True)
    assert [s[2] for s in ports.seen] == [1, 2, 3]
    service = Recorder()
    t.subscribe(service, 100, ports=False)
    # SERVICE: the oldest publication of each range only, sorted by age.
    assert [s[2] for s in service.seen] == [1, 2]
    t.unsubscribe(service, 100)
    t.insert(100, 70, 70, C, N3, 4, 4)
    assert len(service.seen) == 2
    assert len(ports.seen) == 4


def test_service_entry_lifetime() -> None:
    t = NameTable(OWN)
    r = Recorder()
    t.subscribe(r, 100, ports=True)
    t.insert(100, 1, 1, C, N2, 7, 8)
    t.remove(100, 1, 1, N2, 8)
    # The service survives while subscribed; ids keep increasing (age order stays valid).
    p = t.insert(100, 1, 1, C, N2, 7, 9)
    assert p is not None and p.id == 1
    t.unsubscribe(r, 100)
    t.remove(100, 1, 1, N2, 9)
    assert t.publications() == [] and t.nodes() == []
