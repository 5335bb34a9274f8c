"""Slow fuzz tier, RPC and kernel-wire decoders: at least 10 000 cases each.

Every decoder that reads bytes from a peer gets random bytes and structured near-misses
(a valid header with a random body, valid messages with bytes flipped, truncated or
extended) and must return a value or raise a typed :class:`~tipcrpc.errors.ProtocolError`
/ :class:`~tipcrpc.errors.TipcRpcError` — nothing else. The fast versions with a few
hundred cases run in ``tests/unit/test_fuzz_decoders.py``; the userspace node's decoders are
in ``tests/unit/user/test_fuzz_node_slow.py``. Counts are printed (``pytest -s -m slow``).
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from fuzzing import frames, fuzz, packed, report
from tipcrpc.codec import Codec
from tipcrpc.errors import ProtocolError, TipcRpcError
from tipcrpc.rpc import frames as F
from tipcrpc.rpc.chunks import Reassembler
from tipcrpc.transport.kernel import wire

# CPU-bound and bounded by the case count; the timeout only catches a hang (machines running
# several suites at once have been seen to need 5 min for one of these).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

codec = Codec()

def _typed(fn, data) -> None:  # type: ignore[no-untyped-def]
    try:
        fn(data)
    except ProtocolError:
        pass


def test_codec_decode() -> None:
    report("codec.decode", fuzz(st.one_of(st.binary(max_size=400), packed), lambda d: _typed(codec.decode, d)))


def test_decode_frame() -> None:
    report("frames.decode_frame", fuzz(frames, lambda d: _typed(lambda x: F.decode_frame(codec, x), d)))


def test_per_kind_frame_decoders() -> None:
    decoders = (
        F.parse_header,
        F.peek_header,
        lambda d: F.decode_call(codec, d),
        lambda d: F.decode_value(codec, d),
        lambda d: F.decode_failure(codec, d),
        F.decode_chunk,
        F.decode_chunk_ack,
    )

    def check(data: bytes) -> None:
        for fn in decoders:
            _typed(fn, data)

    report("frames per-kind decoders (7 each)", fuzz(frames, check))


def test_chunk_reassembler() -> None:
    chunk = st.tuples(
        st.sampled_from([0, 1, 100, 4096, 4097, 2**32, 2**64 - 1]) | st.integers(0, 2**64 - 1),
        st.integers(0, 8) | st.integers(0, 2**32 - 1),
        st.sampled_from([0, 1, 64, 1000]) | st.integers(0, 2**32 - 1),
        st.integers(0, 3),  # message id
        st.binary(max_size=128),
    )

    def check(chunks: list[tuple[int, int, int, int, bytes]]) -> None:
        r = Reassembler(max_frame=4096, max_buffered=8192)
        for total, index, size, msg_id, payload in chunks:
            try:
                frame, _ack = r.feed("peer", 1, msg_id, total, index, size, payload, 0.0)
            except ProtocolError:
                continue
            if frame is not None:
                assert len(frame) == total <= 4096
            assert 0 <= r.buffered <= 8192

    report("chunks.Reassembler.feed", fuzz(st.lists(chunk, max_size=12), check))


def test_kernel_topology_event_decoder() -> None:
    def check(data: bytes) -> None:
        for order in (wire.ByteOrder.NETWORK, wire.ByteOrder.NATIVE):
            try:
                wire.event_to_topology(wire.unpack_event(data, order))
            except TipcRpcError:
                pass

    report("kernel wire.unpack_event + event_to_topology", fuzz(st.binary(max_size=64), check))


def test_kernel_ancillary_decoders() -> None:
    cmsg = st.tuples(
        st.sampled_from([wire.SOL_TIPC, 0, 1]),
        st.sampled_from([wire.TIPC_ERRINFO, wire.TIPC_RETDATA, wire.TIPC_DESTNAME, 0, 99]),
        st.binary(max_size=40),
    )

    def check(anc: list[tuple[int, int, bytes]]) -> None:
        try:
            a = wire.parse_ancillary(anc)
            if a.destname is not None:
                wire.dest_from_destname(a.destname)
        except TipcRpcError:
            pass

    report("kernel wire.parse_ancillary", fuzz(st.lists(cmsg, max_size=4), check))
