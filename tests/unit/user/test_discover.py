"""Discovery: LINK_CONFIG codec against kernel packets, media address, timer schedule."""

from __future__ import annotations

import pytest

from tipcrpc.addr import node_addr_from_id
from tipcrpc.errors import LocalProtocolError, RemoteProtocolError
from tipcrpc.transport.user import msg as m
from tipcrpc.transport.user.discover import (
    ADVERTISED_CAPABILITIES,
    DISC_FAST,
    DISC_INIT,
    DISC_SLOW,
    Discoverer,
    build_discovery,
    parse_discovery,
)
from tipcrpc.transport.user.media import decode_media_addr, encode_media_addr

import golden as g


def test_node_addresses_match_capture() -> None:
    assert node_addr_from_id(g.ID_A) == g.NODE_A
    assert node_addr_from_id(g.ID_B) == g.NODE_B


@pytest.mark.parametrize(
    "pkt,mtype,dest,sig,hash_",
    [
        (g.DISC_REQ_A, m.DSC_REQ_MSG, 0, 0xD4F3, 0xF07FE259),
        (g.DISC_RESP_A, m.DSC_RESP_MSG, g.NODE_B, 0xD4F3, 0xF07FE259),
        (g.DISC_TRIAL_A, m.DSC_TRIAL_MSG, 0, 0xD4F3, 0xF07FE259),
        (g.DISC_REQ_A_MCAST, m.DSC_REQ_MSG, 0, 0xDD06, 0x8342E315),
    ],
)
def test_kernel_discovery_parses_and_rebuilds_byte_identically(
    pkt: bytes, mtype: int, dest: int, sig: int, hash_: int
) -> None:
    d = parse_discovery(pkt)
    assert (d.mtype, d.addr, d.node_id, d.signature, d.capabilities) == (mtype, g.NODE_A, g.ID_A, sig, 0xFFF)
    assert (d.netid, d.media, d.media_is_multicast, d.dest_domain) == (g.NETID, g.MEDIA_A, False, dest)
    assert d.peer_net_hash == hash_
    rebuilt = build_discovery(
        mtype, own_addr=g.NODE_A, node_id=g.ID_A, signature=sig, capabilities=0xFFF, netid=g.NETID,
        media=g.MEDIA_A, dest_domain=dest, peer_net_hash=hash_,
    )
    assert rebuilt == pkt


def test_media_address_codec() -> None:
    info = encode_media_addr(("192.0.2.1", 6118))
    assert info == g.DISC_REQ_A[20:52]
    assert decode_media_addr(info) == (("192.0.2.1", 6118), False)
    v6 = encode_media_addr(("fe80::1", 6118))
    assert v6[4:6] == b"\x86\xdd" and decode_media_addr(v6) == (("fe80::1", 6118), False)
    assert decode_media_addr(encode_media_addr(("228.0.18.103", 6118)))[1] is True
    with pytest.raises(LocalProtocolError):
        encode_media_addr(("not-an-ip", 1))
    with pytest.raises(RemoteProtocolError):
        decode_media_addr(b"\0" * 32)  # media type 0
    bad = bytearray(info)
    bad[4:6] = b"\x12\x34"
    with pytest.raises(RemoteProtocolError):
        decode_media_addr(bytes(bad))


def test_parse_rejects_malformed() -> None:
    with pytest.raises(RemoteProtocolError):
        parse_discovery(g.RESET_A)  # not LINK_CONFIG
    with pytest.raises(RemoteProtocolError):
        parse_discovery(g.DISC_REQ_A[:60] + g.DISC_REQ_A[60:70])  # truncated
    short = bytearray(g.DISC_REQ_A[:60])
    short[3] = 60  # header-only message without the node id, yet NODE_ID128 advertised
    with pytest.raises(RemoteProtocolError):
        parse_discovery(bytes(short))


def test_legacy_peer_without_node_id128_is_named_by_address() -> None:
    pkt = build_discovery(m.DSC_REQ_MSG, own_addr=0x1001002, node_id=b"\0" * 16, signature=1,
                          capabilities=0, netid=4711, media=("10.0.0.1", 6118))
    assert parse_discovery(pkt[:60] + bytes(16)).node_id == b"1001002".ljust(16, b"\0")


def test_signature_top_bit_is_capability_bit_0() -> None:
    pkt = build_discovery(m.DSC_REQ_MSG, own_addr=1, node_id=b"x" * 16, signature=0xFFFF,
                          capabilities=ADVERTISED_CAPABILITIES, netid=1, media=("10.0.0.1", 1))
    assert parse_discovery(pkt).signature == 0x7FFF  # SYN_BIT not advertised
    d = Discoverer(own_addr=1, node_id=b"x" * 16, media=("10.0.0.1", 1), netid=1, signature=0xFFFF,
                   capabilities=ADVERTISED_CAPABILITIES, now=0.0)
    assert d.wire_signature == 0x7FFF


def test_advertised_capabilities_are_the_honest_subset() -> None:
    # BCAST_RCAST: we receive multicast replicated over unicast links (socket_layer's MCAST path)
    assert ADVERTISED_CAPABILITIES == (m.TIPC_BCAST_SYNCH | m.TIPC_NODE_ID128 | m.TIPC_LINK_PROTO_SEQNO
                                       | m.TIPC_BCAST_RCAST) == 0x72
    assert not ADVERTISED_CAPABILITIES & (m.TIPC_NAMED_BCAST | m.TIPC_GAP_ACK_BLOCK | m.TIPC_MCAST_RBCTL)


def _schedule(d: Discoverer, until: float) -> list[float]:
    times = []
    t = 0.0
    while t <= until:
        t = d.next_due
        if t > until:
            break
        assert len(d.timeout(t)) == 1
        times.append(round(t, 3))
        assert d.timeout(t) == []  # nothing more at the same instant
    return times


def test_timer_doubles_to_fast_without_links_and_slow_with_links() -> None:
    d = Discoverer(own_addr=1, node_id=b"x" * 16, media=("10.0.0.1", 1), netid=1, signature=5,
                   capabilities=ADVERTISED_CAPABILITIES, now=0.0)
    times = _schedule(d, 5.0)
    assert times[:6] == [0.0, 0.125, 0.375, 0.875, 1.875, 2.875]
    assert d.interval == DISC_FAST
    d.add_dest()
    last = d.next_due
    d.timeout(last)
    assert d.interval == 2 * DISC_FAST
    for _ in range(10):
        d.timeout(d.next_due)
    assert d.interval == DISC_SLOW
    d.remove_dest(now=100.0)
    assert d.interval == DISC_INIT and d.next_due == pytest.approx(100.125)
    d.timeout(d.next_due)
    assert d.interval == 2 * DISC_INIT


def test_request_and_response_messages() -> None:
    d = Discoverer(own_addr=g.NODE_A, node_id=g.ID_A, media=g.MEDIA_A, netid=4711, signature=0xD4F3,
                   capabilities=0xFFF, now=0.0)
    (req,) = d.timeout(0.0)
    assert parse_discovery(req).mtype == m.DSC_REQ_MSG
    resp = parse_discovery(d.response(g.NODE_B))
    assert (resp.mtype, resp.dest_domain) == (m.DSC_RESP_MSG, g.NODE_B)
    tf = parse_discovery(d.trial_fail(0x1234, 0x5678))
    assert (tf.mtype, tf.dest_domain, tf.sugg_addr) == (m.DSC_TRIAL_FAIL_MSG, 0x1234, 0x5678)
