"""Codec properties (hypothesis): every value either round-trips as documented or is refused
with CodecError at encode time — tuple keys, sets, frozensets, zoned datetimes, dataclasses."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import uuid
import zoneinfo
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tipcrpc.codec import Codec, ExtRegistry
from tipcrpc.errors import CodecError
from tipcrpc.rpc import frames as F

codec = Codec()
# derandomize: the same examples on every run (deterministic suite); still hundreds of cases.
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ints = st.integers(-(2**63), 2**64 - 1)
# A few zones with unusual rules (half-hour DST, no DST, both hemispheres), not the whole tz
# database: small reprs, and the same on every host.
zones = st.sampled_from([zoneinfo.ZoneInfo(k) for k in (
    "UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham")])
scalars = st.one_of(
    st.none(), st.booleans(), ints, st.floats(allow_nan=False), st.text(max_size=8), st.binary(max_size=8),
    st.uuids(), st.decimals(allow_nan=False), st.dates(), st.timedeltas(),
    st.datetimes(),  # naive
    st.datetimes(timezones=zones),  # zoneinfo zones (the key travels)
    st.datetimes(timezones=st.builds(datetime.timezone, st.timedeltas(-datetime.timedelta(hours=23),
                                                                       datetime.timedelta(hours=23)))),
)
hashables = st.recursive(
    st.one_of(st.none(), st.booleans(), ints, st.text(max_size=6), st.binary(max_size=6), st.uuids()),
    lambda inner: st.one_of(st.tuples(inner, inner), st.frozensets(inner, max_size=3)),
    max_leaves=6,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(hashables, inner, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
    ),
    max_leaves=12,
)


def expected(value: Any) -> Any:
    """What the receiver gets, per the codec's documented rules."""
    if isinstance(value, (list, tuple)):
        return [expected(v) for v in value]  # an array arrives as a list ...
    if isinstance(value, dict):
        return {k: expected(v) for k, v in value.items()}  # ... but keys stay tuples
    if isinstance(value, datetime.datetime) and value.replace(fold=1 - value.fold).utcoffset() == value.utcoffset():
        return value.replace(fold=0)  # fold is kept only where it changes the offset (repeated hour)
    return value


def canon(value: Any) -> Any:
    """A type-tagged, order-independent form: ``1``, ``True`` and ``1.0`` differ, set order not."""
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [canon(v) for v in value])
    if isinstance(value, dict):
        return ("dict", sorted((repr(canon(k)), canon(v)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return (type(value).__name__, sorted(repr(canon(v)) for v in value))
    return (type(value).__name__, repr(value))  # datetime's repr shows fold and zone key


def same(a: Any, b: Any) -> bool:
    return a == b and canon(a) == canon(b)


@SETTINGS
@given(values)
def test_every_value_round_trips_as_documented(value: Any) -> None:
    assert same(codec.decode(codec.encode(value)), expected(value))


@SETTINGS
@given(st.dictionaries(hashables, ints, min_size=1, max_size=5))
def test_hashable_keyed_maps_round_trip_exactly(value: dict[Any, int]) -> None:
    assert same(codec.decode(codec.encode(value)), value)


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Opaque:
    pass


class PytzLike(datetime.tzinfo):
    """A tzinfo that is neither datetime.timezone nor zoneinfo.ZoneInfo."""

    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta:
        return datetime.timedelta(hours=1)

    def dst(self, dt: datetime.datetime | None) -> datetime.timedelta:
        return datetime.timedelta(0)

    def tzname(self, dt: datetime.datetime | None) -> str:
        return "X"


unencodable = st.one_of(
    st.builds(Point, st.integers(), st.integers()),
    st.builds(Opaque),
    st.builds(lambda d: d.replace(tzinfo=PytzLike()), st.datetimes()),
    st.integers(2**64, 2**80),
    st.just(1j),
)


@SETTINGS
@given(values, unencodable, st.integers(0, 2))
def test_unencodable_inside_anything_is_codec_error_when_encoding(value: Any, bad: Any, where: int) -> None:
    nested = [value, bad] if where == 0 else {"k": [bad]} if where == 1 else {(1, 2): {frozenset([1]): bad}}
    with pytest.raises(CodecError):
        codec.encode(nested)
    # ... so a CALL frame is never built: nothing can be sent.
    with pytest.raises(CodecError):
        F.encode_call(codec, 1, 100, "m", [nested], None, None)
    assert codec.decode(codec.encode(value)) is not None or value is None  # the codec is still usable


def test_named_cases() -> None:
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    cases = [
        {(1, 2): "v"},
        {(1, (2, "x")): [1, (2, 3)]},
        {1, (2, 3), frozenset({4})},
        frozenset({b"a", None}),
        datetime.datetime(2026, 3, 29, 2, 30, tzinfo=paris),  # in the spring-forward gap
        datetime.datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=paris),  # the repeated hour
        datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
        {uuid.UUID(int=5): {decimal.Decimal("1.50")}},
    ]
    for value in cases:
        got = codec.decode(codec.encode(value))
        assert same(got, expected(value)), value
    assert codec.decode(codec.encode({(1, 2): "v"})) == {(1, 2): "v"}


def test_a_zone_unknown_to_the_receiver_is_codec_error() -> None:
    data = codec.encode(datetime.datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")))
    with pytest.raises(CodecError, match="tz database"):
        codec.decode(data.replace(b"Europe/Paris", b"Europe/Nowhr"))


def test_dataclass_messages_and_registration() -> None:
    with pytest.raises(CodecError, match="register_dataclass"):
        codec.encode(Point(1, 2))
    reg = ExtRegistry()
    private = Codec(reg)
    with pytest.raises(CodecError):
        private.encode(Point(1, 2))


def test_register_dataclass_round_trips() -> None:
    from tipcrpc.codec import DEFAULT_REGISTRY, register_dataclass

    @register_dataclass(120)
    @dataclasses.dataclass(frozen=True)
    class Pixel:
        x: int
        colour: tuple[int, int, int]
        tags: frozenset[str] = frozenset()

    try:
        got = codec.decode(codec.encode([Pixel(1, (2, 3, 4), frozenset({"a"}))]))
        assert got == [Pixel(1, [2, 3, 4], frozenset({"a"}))]  # type: ignore[arg-type]
        with pytest.raises(CodecError):
            codec.decode(codec.encode(Pixel(1, (2, 3, 4))).replace(b"\x93", b"\x92", 1))  # wrong arity
        with pytest.raises(CodecError, match="needs a dataclass"):
            register_dataclass(121, Opaque)
    finally:
        DEFAULT_REGISTRY._by_code.pop(120, None)
        DEFAULT_REGISTRY._by_cls.pop(Pixel, None)
        DEFAULT_REGISTRY._mro_cache.clear()


@SETTINGS
@given(st.binary(max_size=64))
def test_set_payloads_from_a_peer_give_a_set_or_codec_error(payload: bytes) -> None:
    import msgpack

    for code in (6, 7):
        try:
            got = codec.decode(msgpack.packb(msgpack.ExtType(code, payload)))
        except CodecError:
            continue
        assert isinstance(got, (set, frozenset))
