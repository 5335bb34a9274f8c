"""Slow fuzz tier, userspace TIPC node decoders: at least 10 000 cases each.

What a peer (or anyone who can reach the UDP port) controls: the header decoders, discovery,
name distribution items and messages, fragment reassembly and the whole receive path of an
established :class:`~tipcrpc.transport.user.node.Node`. Inputs: random bytes, and real
packets (kernel goldens and packets one node sent another) with bytes overwritten,
truncated, extended or with the version field changed. Decoders must raise only
:class:`~tipcrpc.errors.RemoteProtocolError`; the node must count and drop, never raise,
and must still deliver in-sequence traffic afterwards.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

import golden as g
from fuzzing import fuzz, report
from test_msg import ALL_GOLDEN
from test_node import A, B, msg, payloads, up_pair
from tipcrpc import fastpath
from tipcrpc.errors import RemoteProtocolError
from tipcrpc.nametable.table import NameTable
from tipcrpc.transport.user import msg as m
from tipcrpc.transport.user.discover import parse_discovery
from tipcrpc.transport.user.fragment import Reassembler, bundle, fragment, unbundle
from tipcrpc.transport.user.name_distr import NameDistributor, decode_items
from tipcrpc.transport.user.node import Node, Output

# CPU-bound and bounded by the case count; the timeout only catches a hang (machines running
# several suites at once have been seen to need 5 min for one of these).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        "tipcrpc.transport.user.node" in fastpath.compiled_modules(),  # docs/compiled.md
        reason="spies on Node.receive by replacing it, which a compiled class does not allow: TIPCRPC_PURE=1 runs it",
    ),
]


def _real_packets() -> tuple[Node, Node, list[bytes]]:
    """Nodes a, b with an established link, and a sample of real packets a sent b."""
    sim, a, b = up_pair()
    captured: list[bytes] = []
    orig_b = b.receive

    def spy(p: bytes, src: tuple[str, int], now: float) -> Output:
        captured.append(p)
        return orig_b(p, src, now)

    b.receive = spy  # type: ignore[method-assign]
    sim.send(A, b.own_addr, msg(a, b, 1))
    sim.send(A, b.own_addr, m.named_msg(0, a.own_addr, 1, b.own_addr, 2, 1, 1, bytes(4000), 2))
    sim.send(A, b.own_addr, bundle([msg(a, b, 2), msg(a, b, 3)], prevnode=a.own_addr, destnode=b.own_addr))
    sim.run_until(sim.now + 2)
    del b.receive
    return a, b, captured + list(ALL_GOLDEN) + [g.DISC_REQ_A, g.RESET_A, g.STATE_A]


_A, _B, _PACKETS = _real_packets()


def _mutate(pkt: bytes, edits: list[tuple[int, int]], cut: int, extra: bytes, version: int | None) -> bytes:
    b = bytearray(pkt)
    for pos, val in edits:
        b[pos % len(b)] = val
    if version is not None:
        b[0] = (b[0] & 0x1F) | (version << 5)  # TIPC version: the top 3 bits of word 0
    if cut:
        del b[len(b) - cut % len(b) :]
    return bytes(b) + extra


mutated = st.builds(
    _mutate,
    st.sampled_from(_PACKETS),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=4),
    st.integers(0, 64),
    st.binary(max_size=16),
    st.none() | st.integers(0, 7),
)
packets = st.one_of(st.binary(max_size=200), mutated)


def _typed(fn, data) -> None:  # type: ignore[no-untyped-def]
    try:
        fn(data)
    except RemoteProtocolError:
        pass


def test_header_decoders() -> None:
    def check(data: bytes) -> None:
        for fn in (m.validate, m.Header.decode, m.data_header, lambda d: m.rejected(d, 1, 5)):
            _typed(fn, data)

    report("user msg.validate/Header.decode/data_header/rejected", fuzz(packets, check))


def test_discovery_decoder() -> None:
    report("user discover.parse_discovery", fuzz(packets, lambda d: _typed(parse_discovery, d)))


def test_name_distribution() -> None:
    item = st.binary(min_size=20, max_size=20) | st.builds(
        lambda t, lo, up, port, key: b"".join(x.to_bytes(4, "big") for x in (t, lo, up, port, key)),
        st.sampled_from([0, 1, 2, 64, 18888, 2**32 - 1]),
        st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
    )  # fmt: skip
    name_msgs = st.builds(
        lambda mtype, items, tail: m.name_distr_msg(mtype, b"".join(items), _A.own_addr, _B.own_addr) + tail,
        st.sampled_from([m.PUBLICATION, m.WITHDRAWAL]),  # other types: in the mutated packets
        st.lists(item, max_size=5),
        st.just(b"") | st.binary(max_size=19),
    )
    table = NameTable(_B.own_addr)
    distr = NameDistributor(table)

    def check(data: bytes) -> None:
        _typed(decode_items, data)
        _typed(lambda d: distr.receive(_A.own_addr, d), data)

    report("user name_distr.decode_items + NameDistributor.receive", fuzz(st.one_of(packets, name_msgs), check))


def test_fragment_reassembly_and_unbundle() -> None:
    whole = m.named_msg(0, _A.own_addr, 1, _B.own_addr, 2, 18888, 1, bytes(3000), 2)
    frags = fragment(whole, 1400)

    def check(case: tuple[list[int], list[bytes]]) -> None:
        order, junk = case
        r = Reassembler()
        seq = [frags[i % len(frags)] for i in order] + junk
        for p in seq:
            try:
                out = r.append(p)
            except RemoteProtocolError:
                continue
            if out is not None:
                m.validate(out)
        for p in junk:
            _typed(unbundle, p)

    cases = st.tuples(st.lists(st.integers(0, 5), max_size=6), st.lists(packets, max_size=3))
    report("user fragment.Reassembler.append + unbundle", fuzz(cases, check))


def test_node_receive_path() -> None:
    """Any datagram at an established node: counted, dropped or processed, never raised; the
    link still delivers a fresh in-sequence message afterwards."""
    sim, a, b = up_pair()
    base = b.statistics()["rx_packets"]
    sent = 0

    def check(data: bytes) -> None:
        nonlocal sent
        sent += 1
        assert isinstance(b.receive(data, ("127.0.0.9", 9999), sim.now), Output)
        assert isinstance(b.receive(data, A, sim.now), Output)  # also as if from the real peer

    report("user Node.receive", fuzz(packets, check))
    st_b = b.statistics()
    assert st_b["rx_packets"] == base + 2 * sent
    assert st_b["malformed"] > 0
    # Still serving: the link from a to b works (a forged RESET from a's media address may
    # have reset it; then it comes back up within the link tolerance).
    sim.run_until(sim.now + 5)
    sim.send(A, b.own_addr, msg(a, b, 424242))
    sim.run_until(sim.now + 5)
    assert 424242 in payloads(sim, B)
