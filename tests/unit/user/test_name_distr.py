"""Name distribution (net/tipc/name_distr.c): items, bulk, incremental, ordering, purge."""

from __future__ import annotations

import random

import pytest

from tipcrpc.addr import Scope
from tipcrpc.errors import RemoteProtocolError
from tipcrpc.transport.user.msg import NAME_DISTRIBUTOR, PUBLICATION, WITHDRAWAL, Header
from tipcrpc.transport.user.name_distr import NameDistributor, decode_items, encode_item
from tipcrpc.nametable.table import NameTable, Publication

A = 0x0C6F6465  # hash of identity "nodeb" (see reference captures)
B = 0x0F6F6465
C = Scope.CLUSTER

# Frames from reference/captures/udp-replicast.pcap (TIPC part of the UDP payload).
BULK_FROM_A = bytes.fromhex(
    "5740003c1c000000000000020c6f646500000001000040000c6f64650f6f6465"
    "0000000000000000000000000c6f64650c6f6465000000000c6f6465"
)
INCREMENTAL_FROM_A = bytes.fromhex(
    "5750003c04000000000000010c6f646500000001000012670c6f646500000000"
    "0000000000000000000049c80000001100000011da54939dda54939e"
)
WITHDRAWAL_FROM_A = bytes.fromhex(
    "5750003c24000000000000020c6f646500000002000012670c6f646500000000"
    "0000000000000000000049c80000001100000011da54939dda54939e"
)


def make(node: int) -> NameDistributor:
    d = NameDistributor(NameTable(node))
    d.publish(0, node, node, C, 0, node, [])  # node-state publication, as tipc_net_finalize
    return d


def test_item_codec() -> None:
    p = Publication(18888, 17, 17, C, A, 0xDA54939D, 0xDA54939E)
    item = encode_item(p)
    assert item.hex() == "000049c80000001100000011da54939dda54939e"
    assert decode_items(item * 2) == [(18888, 17, 17, 0xDA54939D, 0xDA54939E)] * 2
    with pytest.raises(RemoteProtocolError):
        decode_items(item[:19])


def test_bulk_matches_kernel_capture() -> None:
    a = make(A)
    (bulk,) = a.node_up(B, mtu=1400)
    h = Header.decode(bulk)
    ref = Header.decode(BULK_FROM_A)
    # The link fills seqno/ack/prevnode; everything else is as the kernel's frame 35.
    for field in ("user", "mtype", "hsize", "size", "bulk", "last_bulk", "non_legacy", "named_seqno",
                  "bc_ack_invalid", "orignode", "destnode"):
        assert getattr(h, field) == getattr(ref, field), field
    assert bulk[40:] == BULK_FROM_A[40:]


def test_receive_kernel_frames() -> None:
    b = make(B)
    assert b.receive(A, BULK_FROM_A) == 1
    assert b.table.find(0, A, A, A, A) is not None
    assert b.receive(A, INCREMENTAL_FROM_A) == 1
    assert b.table.lookup_anycast(18888, 17) == (A, 0xDA54939D)
    assert b.receive(A, WITHDRAWAL_FROM_A) == 1
    assert b.table.lookup_anycast(18888, 17) is None


def test_incremental_messages_and_seqno() -> None:
    a = make(A)
    p, msgs = a.publish(100, 1, 2, C, 77, 78, [B, 0x1234])
    assert p is not None and [d for d, _ in msgs] == [B, 0x1234]
    h = Header.decode(msgs[0][1])
    assert (h.user, h.mtype, h.non_legacy, h.bulk, h.named_seqno, h.destnode) == (
        NAME_DISTRIBUTOR, PUBLICATION, 1, 0, 1, B)
    # Node scope never leaves the node.
    p2, msgs2 = a.publish(100, 5, 5, Scope.NODE, 77, 79, [B])
    assert p2 is not None and msgs2 == []
    _, w = a.withdraw(100, 1, 2, 78, [B])
    hw = Header.decode(w[0][1])
    assert (hw.mtype, hw.named_seqno) == (WITHDRAWAL, 2)
    assert a.withdraw(100, 1, 2, 78, [B]) == (None, [])
    _, w2 = a.withdraw(100, 5, 5, 79, [B])
    assert w2 == []


def test_bulk_split_by_mtu() -> None:
    a = make(A)
    for i in range(10):
        a.publish(100, i, i, C, 5, 6 + i, [])
    msgs = a.node_up(B, mtu=40 + 3 * 20)  # three items per message
    hs = [Header.decode(m) for m in msgs]
    assert [h.data_size // 20 for h in hs] == [3, 3, 3, 2]
    assert [h.last_bulk for h in hs] == [0, 0, 0, 1]
    assert all(h.bulk for h in hs)
    b = make(B)
    for m in msgs:
        b.receive(A, m)
    assert len(b.table.publications(A)) == 11


def test_incremental_before_bulk_waits_and_stale_dropped() -> None:
    a, b = make(A), make(B)
    _, m1 = a.publish(100, 1, 1, C, 5, 6, [B])
    bulk = a.node_up(B, 1400)  # snapshot includes {100,1}; next seqno is 2
    _, m2 = a.publish(100, 2, 2, C, 5, 7, [B])
    _, m3 = a.withdraw(100, 1, 1, 6, [B])
    # Deliver out of order: incremental 3 and 2 first, then a stale 1, then the bulk.
    assert b.receive(A, m3[0][1]) == 0
    assert b.receive(A, m2[0][1]) == 0
    assert b.receive(A, m1[0][1]) == 0
    assert b.receive(A, bulk[0]) == 2 + 2  # {0,A},{100,1} then deferred 2 and 3
    assert sorted(p.lower for p in b.table.publications(A) if p.type == 100) == [2]
    # Duplicates after the fact change nothing (a late bulk copy must not resurrect {100,1}).
    assert b.receive(A, m2[0][1]) == 0
    assert b.receive(A, bulk[0]) == 0
    assert sorted(p.lower for p in b.table.publications(A) if p.type == 100) == [2]


def test_node_down_purges_and_resets() -> None:
    a, b = make(A), make(B)
    a.publish(100, 1, 1, C, 5, 6, [])
    for m in a.node_up(B, 1400):
        b.receive(A, m)
    assert len(b.table.publications(A)) == 2
    purged = b.node_down(A)
    assert len(purged) == 2 and b.table.publications(A) == []
    # New session: the bulk reopens the stream at A's current seqno.
    for m in a.node_up(B, 1400):
        b.receive(A, m)
    _, inc = a.publish(100, 2, 2, C, 5, 7, [B])
    assert b.receive(A, inc[0][1]) == 1


def test_malformed_messages() -> None:
    b = make(B)
    with pytest.raises(RemoteProtocolError):
        b.receive(A, BULK_FROM_A[:30])
    bad = bytearray(BULK_FROM_A)
    bad[3] = 59  # size 59: partial item
    with pytest.raises(RemoteProtocolError):
        b.receive(A, bytes(bad[:59]))


def test_random_reorder_and_duplicates_converge() -> None:
    rng = random.Random(4711)
    for _ in range(20):
        a, b = make(A), make(B)
        stream: list[bytes] = []
        stream += a.node_up(B, 100)
        live: list[tuple[int, int]] = []
        for i in range(40):
            if live and rng.random() < 0.4:
                lower, key = live.pop(rng.randrange(len(live)))
                stream += [m for _, m in a.withdraw(100, lower, lower, key, [B])[1]]
            else:
                live.append((i, 1000 + i))
                stream += [m for _, m in a.publish(100, i, i, C, 9, 1000 + i, [B])[1]]
        noisy = stream + [rng.choice(stream) for _ in range(10)]
        rng.shuffle(noisy)
        for m in noisy:
            b.receive(A, m)
        got = sorted((p.lower, p.key) for p in b.table.publications(A) if p.type == 100)
        assert got == sorted(live)


def test_staged_changes_flush_as_multi_item_messages() -> None:
    a, b = make(A), make(B)
    for m in a.node_up(B, 1400):
        b.receive(A, m)
    seq0 = a.snd_nxt
    for i in range(7):
        assert a.stage_publish(100, i, i, C, 5, 10 + i) is not None
    assert a.stage_publish(100, 50, 50, Scope.NODE, 5, 99) is not None  # node scope: never staged
    assert a.stage_withdraw(100, 0, 0, 10) is not None
    assert a.stage_withdraw(100, 1, 1, 11) is not None
    assert a.stage_publish(100, 0, 0, C, 5, 20) is not None
    assert a.staged == 10
    msgs = a.flush([B], mtu=40 + 3 * 20)  # three items per message
    assert a.staged == 0 and a.flush([B], 1400) == []
    hs = [Header.decode(m) for _d, m in msgs]
    # Runs of one kind, split by the MTU: 3+3+1 publications, 2 withdrawals, 1 publication.
    assert [(h.mtype, h.data_size // 20) for h in hs] == [
        (PUBLICATION, 3), (PUBLICATION, 3), (PUBLICATION, 1), (WITHDRAWAL, 2), (PUBLICATION, 1)]
    assert [h.named_seqno for h in hs] == [(seq0 + k) & 0xFFFF for k in range(5)]
    assert all(h.non_legacy and not h.bulk for h in hs) and a.snd_nxt == seq0 + 5
    # Delivered in reverse order, the receiver applies them in seqno order all the same.
    assert sum(b.receive(A, m) for _d, m in reversed(msgs)) == 10
    assert sorted((p.lower, p.key) for p in b.table.publications(A) if p.type == 100) == [
        (0, 20), (2, 12), (3, 13), (4, 14), (5, 15), (6, 16)]


def test_flush_without_peers_still_numbers_messages() -> None:
    a = make(A)
    a.stage_publish(100, 1, 1, C, 5, 6)
    seq0 = a.snd_nxt
    assert a.flush([], 1400) == []
    assert a.snd_nxt == seq0 + 1
