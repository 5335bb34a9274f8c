"""Frame layout: header position of the call id, round trips, typed errors."""

from __future__ import annotations

import struct

import pytest

from tipcrpc.codec import Codec
from tipcrpc.errors import CodecError, RemoteProtocolError, Status
from tipcrpc.rpc import frames as F

codec = Codec()
CID = 0x0123_4567_89AB_CDEF


def test_header_is_16_bytes_with_call_id_at_8() -> None:
    data = F.encode_call(codec, CID, 4242, "add", [1, 2], None, 1.5, F.Flag.IDEMPOTENT)
    assert F.HEADER_SIZE == 16
    assert data[0] == F.VERSION
    assert data[1] == F.Kind.CALL
    assert data[2] == F.Flag.IDEMPOTENT
    assert struct.unpack(">I", data[4:8])[0] == 4242
    assert struct.unpack(">Q", data[8:16])[0] == CID
    # a returned datagram truncated to 1024 bytes still identifies the call
    big = F.encode_call(codec, CID, 77, "m", [b"x" * 5000], None, None)
    assert F.peek_header(big[:1024]) == (F.Kind.CALL, 0, 77, CID)


def test_call_round_trip() -> None:
    data = F.encode_call(codec, CID, 99, "div", [6], {"by": 3}, 0.25, F.Flag.STREAM | F.Flag.IDEMPOTENT, credit=16)
    frame = F.decode_frame(codec, data)
    assert frame == F.CallFrame(CID, 99, "div", [6], {"by": 3}, 0.25, F.Flag.STREAM | F.Flag.IDEMPOTENT, 16)
    assert F.decode_call(codec, data) == ("div", [6], {"by": 3}, 0.25, 16, None, None)


@pytest.mark.parametrize("method", ["add", "m" * 31, "é" * 40, "x" * 70_000])
@pytest.mark.parametrize("deadline", [None, 0.0, 2.5, 1e300])
@pytest.mark.parametrize("args", [[], [1, 2], ("a", {"k": [None]}), [b"\x00" * 300]])
def test_call_of_the_common_shape_is_the_whole_array_packed(method: str, deadline: float | None, args: list) -> None:
    """encode_call builds the common CALL (no kwargs, credit, instance or metadata) from a
    cached head and a constant tail: it must be exactly what packing the whole array gives,
    and decode_call's shortcut must return what the full checks return."""
    data = F.encode_call(codec, CID, 99, method, args, None, deadline, F.Flag.IDEMPOTENT)
    body = codec.encode([method, args, None, deadline, None])
    assert data == struct.pack(">BBBBIQ", F.VERSION, F.Kind.CALL, F.Flag.IDEMPOTENT, 0, 99, CID) + body
    assert F.decode_call(codec, data) == (method, list(args), {}, deadline, None, None, None)
    assert F.encode_call(codec, CID, 99, method, args, {}, deadline, F.Flag.IDEMPOTENT) == data  # empty kwargs: nil


@pytest.mark.parametrize("deadline", [-1.0, float("nan"), "1", True])
def test_a_call_with_a_bad_deadline_is_refused_even_in_the_common_shape(deadline: object) -> None:
    data = F.encode_call(codec, CID, 99, "m", [1], None, None)[: F.HEADER_SIZE] + codec.encode(["m", [1], None, deadline, None])
    with pytest.raises(RemoteProtocolError, match="deadline"):
        F.decode_call(codec, data)


@pytest.mark.parametrize(
    "data,expected",
    [
        (F.encode_reply(codec, CID, {"ok": [1]}), F.ReplyFrame(CID, {"ok": [1]})),
        (F.encode_failure(codec, CID, Status.METHOD_NOT_FOUND, "nope", {"m": "x"}), F.FailureFrame(CID, Status.METHOD_NOT_FOUND, "nope", {"m": "x"})),
        (F.encode_cancel(CID), F.CancelFrame(CID)),
        (F.encode_stream_item(codec, CID, 7, "seven"), F.StreamItemFrame(CID, 7, "seven")),
        (F.encode_stream_end(CID, 8), F.StreamEndFrame(CID, 8)),
        (F.encode_stream_credit(CID, 32), F.StreamCreditFrame(CID, 32)),
        (F.encode_ping(CID, 5), F.PingFrame(CID, 5)),
        (F.encode_pong(CID, 5, True), F.PongFrame(CID, 5, True)),
        (F.encode_pong(CID, 5, False), F.PongFrame(CID, 5, False)),
        (F.encode_chunk(CID, 3, 100, 1, 60, b"y" * 40), F.ChunkFrame(CID, 3, 100, 1, 60, b"y" * 40)),
        (F.encode_chunk_ack(CID, 3, 60), F.ChunkAckFrame(CID, 3, 60)),
    ],
)
def test_round_trips(data: bytes, expected: F.Frame) -> None:
    assert F.decode_frame(codec, data) == expected


def test_failure_with_unencodable_details_falls_back_to_repr() -> None:
    frame = F.decode_frame(codec, F.encode_failure(codec, 1, Status.APPLICATION_ERROR, "boom", object()))
    assert isinstance(frame, F.FailureFrame) and frame.details.startswith("<object")


def test_unknown_status_becomes_unknown() -> None:
    data = F.HEADER.pack(F.VERSION, F.Kind.FAILURE, 0, 0, 0, 1) + codec.encode([999, "x", None])
    assert F.decode_failure(codec, data) == (Status.UNKNOWN, "x", None)


def test_unknown_version_is_remote_protocol_error() -> None:
    data = bytearray(F.encode_cancel(1))
    data[0] = 2
    with pytest.raises(RemoteProtocolError, match="version 2"):
        F.parse_header(bytes(data))
    assert F.peek_header(bytes(data)) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01" * 15,
        F.HEADER.pack(F.VERSION, 200, 0, 0, 0, 1),
        F.encode_cancel(1) + b"x",
        F.HEADER.pack(F.VERSION, F.Kind.CALL, 0, 0, 64, 1) + codec.encode(["m", [], None]),
        F.HEADER.pack(F.VERSION, F.Kind.CALL, 0, 0, 64, 1) + codec.encode([1, [], None, None]),
        F.HEADER.pack(F.VERSION, F.Kind.CALL, 0, 0, 64, 1) + codec.encode(["m", {}, None, None]),
        F.HEADER.pack(F.VERSION, F.Kind.CALL, 0, 0, 64, 1) + codec.encode(["m", [], {1: 2}, None]),
        F.HEADER.pack(F.VERSION, F.Kind.CALL, 0, 0, 64, 1) + codec.encode(["m", [], None, -1.0]),
        F.HEADER.pack(F.VERSION, F.Kind.CALL, 0, 0, 64, 1) + codec.encode(["m", [], None, float("nan")]),
        F.HEADER.pack(F.VERSION, F.Kind.CALL, 0, 0, 64, 1) + codec.encode(["m", [], None, None, -3]),
        F.HEADER.pack(F.VERSION, F.Kind.FAILURE, 0, 0, 0, 1) + codec.encode(["x", "y", None]),
        F.HEADER.pack(F.VERSION, F.Kind.CHUNK, 0, 0, 0, 1) + b"short",
        F.HEADER.pack(F.VERSION, F.Kind.CHUNK_ACK, 0, 0, 0, 1) + b"123",
    ],
)
def test_malformed_frames_are_remote_protocol_errors(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        F.decode_frame(codec, data)


def test_bad_msgpack_body_is_codec_error() -> None:
    with pytest.raises(CodecError):
        F.decode_frame(codec, F.HEADER.pack(F.VERSION, F.Kind.REPLY, 0, 0, 0, 1) + b"\xc1")


@pytest.mark.parametrize("idempotent", [False, True])
@pytest.mark.parametrize("importance", [0, 1, 2, 3])
def test_answers_carry_the_method_options(idempotent: bool, importance: int) -> None:
    flags = F.method_flags(idempotent, importance)
    assert flags & F.METHOD_META and flags < 0x100
    assert F.parse_method_flags(flags) == (idempotent, importance)
    reply = F.encode_reply(codec, CID, 1, flags)
    assert reply[2] == flags and F.decode_frame(codec, reply) == F.ReplyFrame(CID, 1, flags)
    end = F.encode_stream_end(CID, 3, flags)
    assert F.decode_frame(codec, end) == F.StreamEndFrame(CID, 3, flags)
    assert F.parse_method_flags(0) is None  # an older server says nothing
