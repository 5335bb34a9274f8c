"""Call ids, membership (instance choice) and routing keys (the call table: test_call_table)."""

from __future__ import annotations

import pytest

from tipcrpc.addr import ServiceRange, SocketAddr
from tipcrpc.errors import AddressError
from tipcrpc.rpc.membership import Membership, Policy, key_to_instance, merge_ranges
from tipcrpc.rpc.call_table import CallIds


def test_call_ids_skip_zero_and_wrap() -> None:
    ids = CallIds(2**64 - 2)
    assert [ids(), ids(), ids()] == [2**64 - 2, 2**64 - 1, 1]
    assert CallIds(0)() == 1


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
