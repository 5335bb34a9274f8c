"""The msgpack codec: round trips, the extension registry, limits, typed failures."""

from __future__ import annotations

import datetime
import decimal
import struct
import uuid
from dataclasses import dataclass

import msgpack
import pytest

from tipcrpc.codec import Codec, ExtRegistry, RESERVED_EXT_CODES, decode, encode
from tipcrpc.errors import CodecError


@dataclass(frozen=True)
class Point:
    x: float
    y: float


def point_registry() -> ExtRegistry:
    reg = ExtRegistry()
    reg.register(16, Point, lambda p: struct.pack(">dd", p.x, p.y), lambda b: Point(*struct.unpack(">dd", b)))
    return reg


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -1,
        2**64 - 1,
        -(2**63),
        1.5,
        "héllo",
        b"\x00\xff",
        [1, [2, [3]]],
        {"a": 1, 2: "int key", None: 0},
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        decimal.Decimal("-1.2500"),
        datetime.datetime(2024, 2, 29, 12, 30, 1, 5),
        datetime.datetime(2024, 2, 29, 12, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=5))),
        datetime.date(1999, 12, 31),
        datetime.timedelta(days=-3, seconds=7, microseconds=9),
    ],
)
def test_round_trip(value: object) -> None:
    assert decode(encode(value)) == value
    assert type(decode(encode(value))) is type(value)


def test_tuples_arrive_as_lists() -> None:
    assert decode(encode((1, (2, 3)))) == [1, [2, 3]]


def test_registered_extension_round_trips_and_subclasses_encode_as_base() -> None:
    codec = Codec(point_registry())

    class SubPoint(Point):
        pass

    assert codec.decode(codec.encode([Point(1, 2)])) == [Point(1.0, 2.0)]
    assert codec.decode(codec.encode(SubPoint(3, 4))) == Point(3.0, 4.0)


def test_unregistered_type_is_codec_error() -> None:
    with pytest.raises(CodecError, match="register_ext"):
        encode(object())
    with pytest.raises(CodecError, match="64-bit"):
        encode(2**64)


def test_codec_is_reusable_after_an_encode_error() -> None:
    codec = Codec()
    with pytest.raises(CodecError):
        codec.encode([1, 2, object()])
    assert codec.decode(codec.encode([3])) == [3]


def test_reentrant_extension_encoder() -> None:
    reg = ExtRegistry()
    codec = Codec(reg)

    @dataclass
    class Box:
        inner: object

    reg.register(17, Box, lambda b: codec.encode(b.inner), lambda raw: Box(codec.decode(raw)))
    assert codec.decode(codec.encode([Box([1, "x"]), 2])) == [Box([1, "x"]), 2]


def test_registry_rejects_conflicts_and_reserved_codes() -> None:
    reg = point_registry()
    with pytest.raises(CodecError, match="already registered"):
        reg.register(17, Point, lambda p: b"", lambda b: Point(0, 0))
    with pytest.raises(CodecError, match="already registered"):
        reg.register(16, complex, lambda c: b"", lambda b: 0j)
    with pytest.raises(CodecError, match="out of range"):
        reg.register(RESERVED_EXT_CODES - 1, complex, lambda c: b"", lambda b: 0j)
    with pytest.raises(CodecError, match="out of range"):
        reg.register(128, complex, lambda c: b"", lambda b: 0j)


def test_unknown_extension_code_is_codec_error() -> None:
    raw = msgpack.packb(msgpack.ExtType(99, b"zz"))
    with pytest.raises(CodecError, match="unknown msgpack extension code 99"):
        decode(raw)


def test_failing_extension_decoder_is_codec_error() -> None:
    raw = msgpack.packb(msgpack.ExtType(1, b"short"))  # UUID needs 16 bytes
    with pytest.raises(CodecError):
        decode(raw)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xc1", b"\x92\x01", b"\x01\x02", b"\x81\x80\x01", b"\xdd\xff\xff\xff\xff", b"\xc6\x7f\xff\xff\xff"],
)
def test_malformed_input_is_codec_error(raw: bytes) -> None:
    with pytest.raises(CodecError):
        decode(raw)


def test_explicit_limits() -> None:
    codec = Codec(max_bin_len=4)
    assert codec.decode(codec.encode(b"1234")) == b"1234"
    with pytest.raises(CodecError):
        codec.decode(codec.encode(b"12345"))


def test_never_pickles() -> None:
    import pickle

    with pytest.raises(CodecError):
        encode(pickle)  # a module: not encodable, and certainly not pickled
