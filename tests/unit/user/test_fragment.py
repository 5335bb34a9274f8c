"""Fragmentation (tipc_msg_build layout), reassembly (tipc_buf_append) and bundles."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipcrpc.errors import LocalProtocolError, RemoteProtocolError
from tipcrpc.transport.user import msg as m
from tipcrpc.transport.user.fragment import Reassembler, bundle, bundle_parts, fragment, unbundle


def big(n: int, importance: int = 2) -> bytes:
    return m.named_msg(importance, 0x11, 5, 0x22, 6, 18888, 1, bytes(i & 0xFF for i in range(n)), 2)


def test_small_message_is_not_fragmented() -> None:
    msg = big(100)
    assert fragment(msg, 1360) == [msg]


def test_66000_byte_message_fragments_and_reassembles() -> None:
    msg = big(m.MAX_USER_MSG_SIZE)
    frags = fragment(msg, 1360)
    chunk = 1360 - m.INT_H_SIZE
    assert len(frags) == -(-len(msg) // chunk)
    assert all(len(f) <= 1360 for f in frags)
    hs = [m.Header.decode(f) for f in frags]
    assert [h.mtype for h in hs] == [m.FIRST_FRAGMENT] + [m.FRAGMENT] * (len(frags) - 2) + [m.LAST_FRAGMENT]
    assert [h.fragm_no for h in hs] == list(range(1, len(frags) + 1))
    assert all(h.user == m.MSG_FRAGMENTER and h.importance == 2 for h in hs)
    assert all((h.prevnode, h.orignode, h.destnode) == (0x11, 0x11, 0x22) for h in hs)
    # the first fragment carries the original header as data, like the kernel
    assert frags[0][40:80] == msg[:40]
    r = Reassembler()
    out = [r.append(f) for f in frags]
    assert out[:-1] == [None] * (len(frags) - 1)
    assert out[-1] == msg
    assert not r.in_progress


def test_exact_multiple_of_chunk() -> None:
    chunk = 500 - m.INT_H_SIZE
    msg = big(2 * chunk - 40)  # header + data = exactly two chunks
    frags = fragment(msg, 500)
    assert len(frags) == 2 and [m.Header.decode(f).mtype for f in frags] == [m.FIRST_FRAGMENT, m.LAST_FRAGMENT]
    r = Reassembler()
    assert r.append(frags[0]) is None and r.append(frags[1]) == msg


def test_fragment_rejects_bad_input() -> None:
    with pytest.raises(LocalProtocolError):
        fragment(big(1000), 40)
    with pytest.raises(LocalProtocolError):
        fragment(big(10) + b"x", 1000)
    with pytest.raises(RemoteProtocolError):
        fragment(b"short", 1000)


def test_reassembly_errors() -> None:
    frags = fragment(big(5000), 1000)
    r = Reassembler()
    with pytest.raises(RemoteProtocolError):
        r.append(frags[1])  # FRAGMENT without FIRST
    r.append(frags[0])
    with pytest.raises(RemoteProtocolError):
        r.append(frags[0])  # FIRST while open
    assert not r.in_progress
    # a reassembled message that is not a valid TIPC message
    h = m.Header(m.MSG_FRAGMENTER, m.FIRST_FRAGMENT, 40)
    r.append(h.build(b"\x10" * 30))
    h.mtype = m.LAST_FRAGMENT
    with pytest.raises(RemoteProtocolError):
        r.append(h.build(b"\x10" * 30))


def test_bundle_round_trip_with_padding() -> None:
    inner = [m.direct_msg(0, 1, 2, 3, 4, b"a" * n) for n in (1, 2, 3, 4, 0)]
    b = bundle(inner, prevnode=1, destnode=3, importance=1)
    h = m.Header.decode(b)
    assert (h.user, h.msgcnt, h.importance) == (m.MSG_BUNDLER, 5, 1)
    assert unbundle(b) == inner


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=8), st.integers(0, 3), st.integers(1, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_bundle_parts_is_the_bundle_the_kernel_layout_gives(bodies: list[bytes], imp: int, node: int) -> None:
    """The link's own builder (no validation, one join) makes byte for byte what ``bundle``
    makes through :class:`Header` (the ``tipc_msg_try_bundle`` layout)."""
    inner = [m.direct_msg(imp, node, 7, 3, 9, b) for b in bodies]
    hdr, body = bundle_parts(inner, prevnode=node, destnode=3, importance=imp)
    assert hdr + body == bundle(inner, prevnode=node, destnode=3, importance=imp)
    assert len(hdr) == m.INT_H_SIZE and unbundle(hdr + body) == inner


def test_unbundle_stops_at_bad_entry_and_rejects_empty() -> None:
    good = m.direct_msg(0, 1, 2, 3, 4, b"ok")
    h = m.Header(m.MSG_BUNDLER, 0, 40)
    pkt = h.build(good + b"\0" * 2 + b"\xff" * 30)
    assert unbundle(pkt) == [good]
    with pytest.raises(RemoteProtocolError):
        unbundle(h.build(b"\xff" * 30))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 20000), st.integers(120, 3000))
def test_fragment_reassemble_property(n: int, pktmax: int) -> None:
    msg = big(n)
    frags = fragment(msg, pktmax)
    assert all(len(f) <= max(pktmax, len(msg)) for f in frags)
    if len(frags) == 1:
        assert frags[0] == msg
        return
    r = Reassembler()
    results = [r.append(f) for f in frags]
    assert results[-1] == msg


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_reassembler_and_unbundle(data: bytes) -> None:
    r = Reassembler()
    for f in (r.append, unbundle):
        try:
            f(data)
        except RemoteProtocolError:
            pass
