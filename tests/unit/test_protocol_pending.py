"""Pending-call table, call ids, deadlines, membership and routing keys (error mapping: test_remote_errors)."""

from __future__ import annotations

import pytest

from tipcrpc.addr import ServiceRange, SocketAddr
from tipcrpc.errors import AddressError
from tipcrpc.rpc.membership import Membership, Policy, key_to_instance, merge_ranges
from tipcrpc.rpc.protocol import CallIds, PendingTable, remaining


def test_call_ids_skip_zero_and_wrap() -> None:
    ids = CallIds(2**64 - 2)
    assert [ids(), ids(), ids()] == [2**64 - 2, 2**64 - 1, 1]
    assert CallIds(0)() == 1


def test_pending_table_deadlines() -> None:
    t: PendingTable[str] = PendingTable()
    t.add(1, "a", deadline=10.0)
    t.add(2, "b", deadline=5.0)
    t.add(3, "c")  # no deadline
    with pytest.raises(KeyError):
        t.add(1, "dup")
    assert t.next_deadline() == 5.0
    assert t.pop(2) == "b"
    assert t.next_deadline() == 10.0  # stale heap entry skipped
    assert t.expire(9.9) == []
    t.set_deadline(1, 3.0)
    assert t.next_deadline() == 3.0
    assert t.expire(3.0) == [(1, "a")]
    assert t.next_deadline() is None
    assert len(t) == 1 and 3 in t and t.get(3) == "c"
    assert t.pop(99) is None


def test_pending_table_compacts_stale_heap_entries() -> None:
    t: PendingTable[int] = PendingTable()
    for i in range(1, 10_001):
        t.add(i, i, deadline=float(i))
        t.pop(i)
    assert len(t._heap) < 200  # type: ignore[attr-defined]
    t.add(1, 1, deadline=1.0)
    assert t.expire(2.0) == [(1, 1)]


def test_remaining() -> None:
    assert remaining(None, 5.0) is None
    assert remaining(7.5, 5.0) == 2.5
    assert remaining(4.0, 5.0) == 0.0


S1, S2, S3 = SocketAddr(1, 10), SocketAddr(2, 20), SocketAddr(2, 21)


def membership() -> Membership:
    m = Membership(100)
    m.published(ServiceRange(100, 0, 9), S1)
    m.published(ServiceRange(100, 10, 19), S2)
    m.published(ServiceRange(100, 0, 19), S3)
    return m


def test_membership_candidates_and_withdraw() -> None:
    m = membership()
    assert m.candidates(None) == [S1, S2, S3]
    assert m.candidates(5) == [S1, S3]
    assert m.candidates(15) == [S2, S3]
    assert m.candidates(25) == []
    m.published(ServiceRange(100, 30, 30), S1)
    assert m.withdrawn(ServiceRange(100, 30, 30), S1) is False  # still publishes 0..9
    assert m.withdrawn(ServiceRange(100, 0, 9), S1) is True
    assert m.candidates(5) == [S3]
    assert m.node_down(2) == [S2, S3]
    assert len(m) == 0


def test_round_robin_uses_every_candidate() -> None:
    m = membership()
    picks = {m.pick(Policy.ROUND_ROBIN) for _ in range(6)}
    assert picks == {S1, S2, S3}


def test_local_first_and_exclude() -> None:
    m = membership()
    assert {m.pick(Policy.LOCAL_FIRST, own_node=2) for _ in range(6)} == {S2, S3}
    assert m.pick(Policy.LOCAL_FIRST, own_node=2, exclude=[S2, S3]) == S1
    # everything tried: fall back to the full candidate list rather than failing
    assert m.pick(Policy.ROUND_ROBIN, instance=5, exclude=[S1, S3]) in (S1, S3)
    assert m.pick(Policy.ROUND_ROBIN, instance=99) is None


def test_least_outstanding() -> None:
    m = membership()
    outstanding = {S1: 2, S2: 1, S3: 0}
    assert m.pick(Policy.LEAST_OUTSTANDING, outstanding=outstanding) == S3
    outstanding[S3] = 3
    assert m.pick(Policy.LEAST_OUTSTANDING, outstanding=outstanding) == S2


def test_key_to_instance() -> None:
    assert key_to_instance(7, []) == 7
    with pytest.raises(AddressError):
        key_to_instance(-1, [])
    with pytest.raises(AddressError):
        key_to_instance(1.5, [])
    assert key_to_instance("user-1", []) is None
    ranges = [(0, 9), (20, 29)]
    seen = {key_to_instance(f"user-{i}", ranges) for i in range(200)}
    assert seen <= set(range(10)) | set(range(20, 30)) and len(seen) > 10
    assert key_to_instance("user-1", ranges) == key_to_instance(b"user-1", ranges)  # stable, str = UTF-8
    assert merge_ranges([(5, 9), (0, 4), (20, 30), (25, 26)]) == [(0, 9), (20, 30)]
