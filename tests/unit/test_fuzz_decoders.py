"""Fuzz every decoder: any bytes give a value or a typed tipcrpc error, nothing else."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tipcrpc.codec import Codec
from tipcrpc.errors import ProtocolError
from tipcrpc.rpc import frames as F
from tipcrpc.rpc.chunks import Reassembler

codec = Codec()
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Random bytes rarely form a valid header; also generate frames with a valid header and a
# random body so the body decoders are exercised.
headers = st.builds(
    lambda kind, flags, aux, cid: F.HEADER.pack(F.VERSION, kind, flags, 0, aux, cid),
    st.sampled_from([int(k) for k in F.Kind]),
    st.integers(0, 255),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**64 - 1),
)
frames = st.one_of(st.binary(max_size=256), st.builds(lambda h, b: h + b, headers, st.binary(max_size=256)))


@SETTINGS
@given(st.binary(max_size=512))
def test_codec_decode(data: bytes) -> None:
    try:
        codec.decode(data)
    except ProtocolError:
        pass


@SETTINGS
@given(frames)
def test_decode_frame(data: bytes) -> None:
    try:
        F.decode_frame(codec, data)
    except ProtocolError:
        pass


@SETTINGS
@given(frames)
def test_per_kind_decoders(data: bytes) -> None:
    for fn in (
        F.parse_header,
        F.peek_header,
        lambda d: F.decode_call(codec, d),
        lambda d: F.decode_value(codec, d),
        lambda d: F.decode_failure(codec, d),
        F.decode_chunk,
        F.decode_chunk_ack,
    ):
        try:
            fn(data)
        except ProtocolError:
            pass


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.binary(max_size=64)), max_size=8))
def test_reassembler_feed(chunks: list[tuple[int, int, int, bytes]]) -> None:
    r = Reassembler(max_frame=4096, max_buffered=8192)
    for total, index, size, payload in chunks:
        try:
            frame, _ack = r.feed("peer", 1, 1, total, index, size, payload, 0.0)
        except ProtocolError:
            continue
        if frame is not None:
            assert len(frame) == total
    assert 0 <= r.buffered <= 8192
