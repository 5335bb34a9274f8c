"""Real kernel packets to a userspace node (``golden.KERNEL_*``): decoded, then rebuilt byte for byte.

The packets were captured by ``tests/kernel/test_mixed_cluster.py`` on a Linux 6.1 kernel node
sending to one of our nodes: a named (anycast) message, a message to a socket address, a
multicast message replicated over the unicast link, the three fragments of a 3 072-byte
message, and a name publication and withdrawal sent over the unicast link. Each is decoded
by our header codec, checked field by field against what the kernel was asked to send, and
rebuilt with our own builders (``msg``, ``fragment``, ``name_distr``): the bytes must match.
"""

from __future__ import annotations

import pytest

from tipcrpc.transport.user import msg as m
from tipcrpc.transport.user.fragment import Reassembler, fragment
from tipcrpc.transport.user.name_distr import decode_items

import golden as g

KERNEL_PACKETS = [
    g.KERNEL_NAMED, g.KERNEL_DIRECT, g.KERNEL_MCAST, g.KERNEL_FRAGMENT_1, g.KERNEL_FRAGMENT_2,
    g.KERNEL_FRAGMENT_3, g.KERNEL_PUBLICATION, g.KERNEL_WITHDRAWAL,
]


def _link_fields(built: bytes, kernel: bytes) -> bytes:
    """``built`` with the link-layer fields (seqno, acks, prevnode) the kernel's link filled in."""
    h = m.Header.decode(kernel)
    return m.with_link_fields(built, ack=h.ack, seqno=h.seqno, bcast_ack=h.bcast_ack, prevnode=h.prevnode)


@pytest.mark.parametrize("pkt", KERNEL_PACKETS)
def test_header_round_trip_is_byte_identical(pkt: bytes) -> None:
    h = m.Header.decode(pkt, exact=True)
    assert h.encode() == pkt[: h.hsize]
    assert m.validate(pkt) == (h.user, h.hsize, h.size)
    # one link, in order: every packet acknowledges the same peer seqno, comes from the kernel node
    assert (h.prevnode, h.ack, h.bcast_ack) == (g.KERNEL_NODE, 4, 0)


@pytest.mark.parametrize(("pkt", "mtype", "text"), [
    (g.KERNEL_NAMED, m.TIPC_NAMED_MSG, b"golden named"),
    (g.KERNEL_DIRECT, m.TIPC_DIRECT_MSG, b"golden direct"),
    (g.KERNEL_MCAST, m.TIPC_MCAST_MSG, b"golden mcast"),
], ids=["named", "direct", "mcast"])
def test_data_messages_decode_and_rebuild(pkt: bytes, mtype: int, text: bytes) -> None:
    h = m.Header.decode(pkt, exact=True)
    d = m.data_header(pkt)
    assert (d.mtype, d.orig_node, d.dest_node, d.size, pkt[d.hsize :]) == (
        mtype, g.KERNEL_NODE, g.USER_NODE, len(pkt), text)
    # A kernel RDM socket is "unreturnable": dest_droppable; its multicast src_droppable too.
    flags = {"dest_droppable": True, "src_droppable": mtype == m.TIPC_MCAST_MSG}
    assert (d.dest_droppable, d.src_droppable) == tuple(flags.values())
    if mtype == m.TIPC_NAMED_MSG:
        assert (d.hsize, d.name_type, d.name_instance, d.lookup_scope) == (40, g.RAW_TYPE, 103, 2)
        built = m.named_msg(d.importance, d.orig_node, d.orig_port, d.dest_node, d.dest_port, d.name_type,
                            d.name_instance, text, d.lookup_scope, **flags)
    elif mtype == m.TIPC_DIRECT_MSG:
        assert d.hsize == 32
        built = m.direct_msg(d.importance, d.orig_node, d.orig_port, d.dest_node, d.dest_port, text, **flags)
    else:
        # replicated over the unicast link: addressed to our node, port 0 (we look the range up)
        assert (d.hsize, d.name_type, d.name_instance, d.name_upper, d.dest_port) == (44, g.RAW_TYPE, 103, 103, 0)
        built = m.mcast_msg(d.importance, d.orig_node, d.orig_port, d.name_type, d.name_instance, d.name_upper,
                            text, d.lookup_scope, dest_node=d.dest_node, dest_port=d.dest_port, **flags)
    assert _link_fields(built, pkt) == pkt
    assert h.importance == d.importance == 0


def test_fragments_reassemble_and_refragment_byte_for_byte() -> None:
    frags = [g.KERNEL_FRAGMENT_1, g.KERNEL_FRAGMENT_2, g.KERNEL_FRAGMENT_3]
    assert [m.Header.decode(f).mtype for f in frags] == [m.FIRST_FRAGMENT, m.FRAGMENT, m.LAST_FRAGMENT]
    r = Reassembler()
    assert r.append(frags[0]) is None and r.append(frags[1]) is None
    inner = r.append(frags[2])
    assert inner is not None and not r.in_progress
    d = m.data_header(inner)
    assert (d.mtype, d.orig_node, d.dest_node, d.name_type, inner[d.hsize :]) == (
        m.TIPC_NAMED_MSG, g.KERNEL_NODE, g.USER_NODE, g.RAW_TYPE, g.GOLDEN_PAYLOAD)
    # our fragmenter, at the kernel's packet size, cuts the message exactly where the kernel did
    ours = fragment(inner, len(frags[0]))
    assert [_link_fields(o, k) for o, k in zip(ours, frags)] == frags and len(ours) == 3


@pytest.mark.parametrize(("pkt", "mtype", "named_seqno"), [
    (g.KERNEL_PUBLICATION, m.PUBLICATION, 3),
    (g.KERNEL_WITHDRAWAL, m.WITHDRAWAL, 4),
], ids=["publication", "withdrawal"])
def test_name_distribution_over_the_unicast_link(pkt: bytes, mtype: int, named_seqno: int) -> None:
    """We do not advertise TIPC_NAMED_BCAST: the kernel sends name updates on our unicast link."""
    h = m.Header.decode(pkt, exact=True)
    assert (h.user, h.mtype, h.orignode, h.destnode) == (m.NAME_DISTRIBUTOR, mtype, g.KERNEL_NODE, g.USER_NODE)
    assert (h.non_seq, h.non_legacy, h.named_seqno) == (0, 1, named_seqno)
    items = pkt[h.hsize : h.size]
    (item,) = decode_items(items)
    assert item[:3] == (g.RAW_TYPE, 300, 300)  # {type, 300, 300} bound by the kernel socket
    built = m.name_distr_msg(mtype, items, h.orignode, h.destnode, non_legacy=True, named_seqno=named_seqno)
    assert _link_fields(built, pkt) == pkt
