"""The value codec: msgpack with an explicit extension-type registry (layer L1, pure).

Arguments, results and stream items travel as msgpack. Plain msgpack covers ``None``,
``bool``, ``int`` (64-bit), ``float``, ``str``, ``bytes``, lists and dicts; tuples are sent
as arrays and arrive as lists — except where the value must be hashable: an array used as a
**map key** or as a **set element** arrives as a tuple, so ``{(1, 2): "v"}`` and
``{(1, "a")}`` round-trip exactly. Beyond that, only the types below and those registered
with :func:`register_ext` can be sent — there is **no** pickle fallback, so a peer can never
make us construct an arbitrary class. Anything else raises :class:`CodecError` while
encoding, that is on the sending side, before a frame exists.

Built-in extension types (codes 0..15 are reserved for tipcrpc):

====  ========================  ====================================================
code  Python type               payload
====  ========================  ====================================================
1     ``uuid.UUID``             16 raw bytes
2     ``decimal.Decimal``       ASCII ``str(d)``
3     ``datetime.datetime``     ASCII ISO-8601; see below for time zones
4     ``datetime.date``         ASCII ISO-8601
5     ``datetime.timedelta``    ``>qiI`` days, seconds, microseconds
6     ``set``                   msgpack array of the elements
7     ``frozenset``             msgpack array of the elements
====  ========================  ====================================================

Datetimes: naive stays naive; a fixed offset (``datetime.timezone``, UTC included) arrives
as that offset (a custom ``tzname`` is not carried); a ``zoneinfo.ZoneInfo`` zone travels by
its key (``2026-10-25T02:30:00+01:00[Europe/Paris]``, RFC 9557) and arrives with the same
wall time, offset and zone (``fold`` kept where it matters) — the receiver needs the zone in
its tz database, else :class:`CodecError`. Any other ``tzinfo`` (pytz, dateutil, a ``ZoneInfo`` without a key)
raises :class:`CodecError`: convert with ``.astimezone(datetime.timezone.utc)`` first.

Dataclasses, enums, named tuples' names and other classes do not travel by themselves: a
dataclass raises :class:`CodecError` unless registered with :func:`register_dataclass` (or
:func:`register_ext`) on both sides; send ``dataclasses.asdict(value)`` otherwise.

Applications register their own types with codes 16..127::

    register_ext(16, Point, lambda p: struct.pack(">dd", p.x, p.y),
                 lambda b: Point(*struct.unpack(">dd", b)))

Decoding uses ``strict_map_key=False`` so maps may have integer (or other hashable) keys;
a map used as a map key or set element is reported as :class:`CodecError`. Length
limits default to msgpack's automatic bound (nothing may claim to be longer than the buffer
holding it), which stops allocation bombs; explicit limits can be set per :class:`Codec`.
Every failure — unencodable value, malformed bytes, a failing extension hook — surfaces
as :class:`~tipcrpc.errors.CodecError` and nothing else.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import struct
import uuid
import zoneinfo
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar, overload

import msgpack

from .errors import CodecError
from .fastpath import mypyc_attr

__all__ = [
    "ExtType",
    "ExtRegistry",
    "Codec",
    "DEFAULT_REGISTRY",
    "RESERVED_EXT_CODES",
    "register_ext",
    "register_dataclass",
    "encode",
    "decode",
]

T = TypeVar("T")

#: Extension codes ``0..RESERVED_EXT_CODES-1`` belong to tipcrpc's built-ins.
RESERVED_EXT_CODES = 16
_MAX_EXT_CODE = 127


# An ordinary class when compiled (./dev build-compiled): mypyc cannot build a generic dataclass.
@mypyc_attr(native_class=False)
@dataclass(frozen=True, slots=True)
class ExtType(Generic[T]):
    """One registered extension type: ``cls`` ⇄ ``bytes`` under msgpack ext ``code``."""

    code: int
    cls: type[T]
    encode: Callable[[T], bytes]
    decode: Callable[[bytes], T]


class ExtRegistry:
    """A mapping of extension codes to Python types, shared by the codecs built on it.

    Encoding looks a value's exact type up first, then its base classes (so subclasses of
    a registered class are encoded as that class).
    """

    def __init__(self) -> None:
        self._by_code: dict[int, ExtType[Any]] = {}
        self._by_cls: dict[type, ExtType[Any]] = {}
        # Resolution cache for subclasses; cleared whenever a type is registered.
        self._mro_cache: dict[type, ExtType[Any] | None] = {}

    def register(
        self,
        code: int,
        cls: type[T],
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
        *,
        _builtin: bool = False,
    ) -> None:
        """Register ``cls`` under ``code`` (16..127 for applications).

        Raises :class:`ValueError` (as :class:`CodecError`) when the code is out of range or
        already taken, or when ``cls`` is already registered under another code.
        """
        if not isinstance(code, int) or isinstance(code, bool):
            raise CodecError(f"extension code must be an int, got {code!r}")
        low = 0 if _builtin else RESERVED_EXT_CODES
        if not low <= code <= _MAX_EXT_CODE:
            raise CodecError(
                f"extension code {code} out of range: applications use {RESERVED_EXT_CODES}..{_MAX_EXT_CODE}"
            )
        if not isinstance(cls, type):
            raise CodecError(f"extension class must be a type, got {cls!r}")
        existing = self._by_code.get(code)
        if existing is not None and existing.cls is not cls:
            raise CodecError(f"extension code {code} is already registered for {existing.cls.__qualname__}")
        other = self._by_cls.get(cls)
        if other is not None and other.code != code:
            raise CodecError(f"{cls.__qualname__} is already registered under extension code {other.code}")
        ext = ExtType(code, cls, encode, decode)
        self._by_code[code] = ext
        self._by_cls[cls] = ext
        self._mro_cache.clear()

    def for_value(self, value: object) -> ExtType[Any] | None:
        """The extension type that encodes ``value``, or ``None``."""
        cls = type(value)
        ext = self._by_cls.get(cls)
        if ext is not None:
            return ext
        try:
            return self._mro_cache[cls]
        except KeyError:
            pass
        found: ExtType[Any] | None = None
        for base in cls.__mro__[1:]:
            found = self._by_cls.get(base)
            if found is not None:
                break
        self._mro_cache[cls] = found
        return found

    def for_code(self, code: int) -> ExtType[Any] | None:
        """The extension type registered under ``code``, or ``None``."""
        return self._by_code.get(code)

    def codes(self) -> dict[int, type]:
        """A snapshot ``{code: class}`` of every registration."""
        return {code: ext.cls for code, ext in self._by_code.items()}


# -- built-ins ------------------------------------------------------------------------------

_TIMEDELTA = struct.Struct(">qiI")


def _dec_uuid(b: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=bytes(b))


def _dec_decimal(b: bytes) -> decimal.Decimal:
    return decimal.Decimal(bytes(b).decode("ascii"))


def _enc_datetime(d: datetime.datetime) -> bytes:
    tz = d.tzinfo
    if tz is None or type(tz) is datetime.timezone:
        return d.isoformat().encode("ascii")
    if isinstance(tz, zoneinfo.ZoneInfo) and tz.key:
        return f"{d.isoformat()}[{tz.key}]".encode("ascii")
    raise CodecError(
        f"cannot encode a datetime in time zone {tz!r} ({type(tz).__qualname__}): only naive datetimes, "
        f"datetime.timezone offsets and zoneinfo.ZoneInfo zones travel; convert with "
        f".astimezone(datetime.timezone.utc) first"
    )


def _dec_datetime(b: bytes) -> datetime.datetime:
    text = bytes(b).decode("ascii")
    if not text.endswith("]"):
        return datetime.datetime.fromisoformat(text)
    stamp, _, key = text[:-1].partition("[")
    try:
        zone = zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise CodecError(f"datetime in time zone {key!r}, which this host's tz database lacks (install tzdata)") from exc
    moment = datetime.datetime.fromisoformat(stamp)
    # Keep the wall time (and fold) the sender had, which is not always the instant's: a time
    # in a DST gap has no instant of its own. Only if the zone rules differ between the hosts
    # (no fold gives the sent offset) fall back to the same instant in the zone.
    offset = moment.utcoffset()
    for fold in (0, 1):
        local = moment.replace(tzinfo=zone, fold=fold)
        if local.utcoffset() == offset:
            return local
    return moment.astimezone(zone)


def _dec_date(b: bytes) -> datetime.date:
    return datetime.date.fromisoformat(bytes(b).decode("ascii"))


def _enc_timedelta(t: datetime.timedelta) -> bytes:
    return _TIMEDELTA.pack(t.days, t.seconds, t.microseconds)


def _dec_timedelta(b: bytes) -> datetime.timedelta:
    days, seconds, micros = _TIMEDELTA.unpack(bytes(b))
    return datetime.timedelta(days=days, seconds=seconds, microseconds=micros)


def _install_builtins(reg: ExtRegistry) -> None:
    reg.register(1, uuid.UUID, lambda u: u.bytes, _dec_uuid, _builtin=True)
    reg.register(2, decimal.Decimal, lambda d: str(d).encode("ascii"), _dec_decimal, _builtin=True)
    # datetime is a subclass of date: both are registered, exact-type lookup picks the right one.
    reg.register(3, datetime.datetime, _enc_datetime, _dec_datetime, _builtin=True)
    reg.register(4, datetime.date, lambda d: d.isoformat().encode("ascii"), _dec_date, _builtin=True)
    reg.register(5, datetime.timedelta, _enc_timedelta, _dec_timedelta, _builtin=True)


#: The process-wide registry used by :func:`encode`/:func:`decode` and by default codecs.
DEFAULT_REGISTRY = ExtRegistry()
_install_builtins(DEFAULT_REGISTRY)


def register_ext(code: int, cls: type[T], encode: Callable[[T], bytes], decode: Callable[[bytes], T]) -> None:
    """Register an application extension type (code 16..127) in :data:`DEFAULT_REGISTRY`.

    Both peers must register the same ``code``/``cls`` pair. ``encode`` returns bytes;
    ``decode`` receives them and must return the value (any exception it raises becomes a
    :class:`CodecError` on the receiving side).
    """
    DEFAULT_REGISTRY.register(code, cls, encode, decode)


@overload
def register_dataclass(code: int, cls: type[T]) -> type[T]: ...
@overload
def register_dataclass(code: int, cls: None = None) -> Callable[[type[T]], type[T]]: ...
def register_dataclass(code: int, cls: type[T] | None = None) -> type[T] | Callable[[type[T]], type[T]]:
    """Let the dataclass ``cls`` travel under extension ``code`` (16..127); returns ``cls``.

    Its ``__init__`` fields are sent as a msgpack array, in declaration order, and the
    receiver calls ``cls(*fields)``; field values follow the codec's rules (a tuple field
    arrives as a list). Register the same pair on both sides, directly or as a decorator::

        @register_dataclass(17)
        @dataclass
        class Point:
            x: float
            y: float
    """
    if cls is None:
        return lambda c: register_dataclass(code, c)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise CodecError(f"register_dataclass needs a dataclass type, got {cls!r}")
    names = tuple(f.name for f in dataclasses.fields(cls) if f.init)

    def enc(value: Any) -> bytes:
        return _DEFAULT.encode([getattr(value, n) for n in names])

    def dec(data: bytes) -> Any:
        fields = _DEFAULT.decode(data)
        if type(fields) is not list or len(fields) != len(names):
            raise CodecError(f"{cls.__qualname__}: expected an array of {len(names)} fields")
        return cls(*fields)

    DEFAULT_REGISTRY.register(code, cls, enc, dec)
    return cls


# Codes of the two container extensions, handled by Codec itself: their elements are
# encoded with the codec's own registry (ExtType hooks only ever see bytes).
_SET, _FROZENSET = 6, 7


def _hashable(value: Any) -> Any:
    """``value`` with arrays turned into tuples (recursively): for map keys and set elements."""
    if type(value) is list:
        return tuple([_hashable(v) for v in value])
    if type(value) is dict:
        raise CodecError("a map cannot be a map key or a set element")
    return value


def _pairs_to_dict(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    return {_hashable(k): v for k, v in pairs}


class Codec:
    """Encodes values to msgpack bytes and back, with ``registry``'s extension types.

    A codec keeps a reusable packer, so give each event loop/thread its own instance (the
    RPC runtime creates one per client and server); the registry may be shared.
    """

    __slots__ = ("registry", "_packer", "_busy", "_limits")

    def __init__(
        self,
        registry: ExtRegistry | None = None,
        *,
        max_str_len: int = -1,
        max_bin_len: int = -1,
        max_array_len: int = -1,
        max_map_len: int = -1,
        max_ext_len: int = -1,
    ) -> None:
        self.registry = registry if registry is not None else DEFAULT_REGISTRY
        self._packer = msgpack.Packer(default=self._default, use_bin_type=True, autoreset=True)
        self._busy = False
        # -1 = msgpack's automatic limit: the length of the buffer being decoded.
        # Only the limits that differ from msgpack's default (-1: bounded by the data's own
        # length) are passed: every keyword costs on each decode (~3 000 instructions each
        # for the defaults, measured with callgrind), and a call decodes twice.
        limits = dict(
            max_str_len=max_str_len,
            max_bin_len=max_bin_len,
            max_array_len=max_array_len,
            max_map_len=max_map_len,
            max_ext_len=max_ext_len,
        )
        self._limits = {k: v for k, v in limits.items() if v != -1}

    def _default(self, value: object) -> msgpack.ExtType:
        # The packer is mid-buffer while it calls this hook: anything the hook encodes with
        # this codec (set elements, an extension encoder using it) must take a fresh packer.
        # Flagging that here, the one place Python code runs inside a pack, keeps encode()'s
        # common path free of bookkeeping.
        outer, self._busy = self._busy, True
        try:
            return self._extension(value)
        finally:
            self._busy = outer

    def _extension(self, value: object) -> msgpack.ExtType:
        ext = self.registry.for_value(value)
        if ext is None:
            if isinstance(value, (set, frozenset)):
                code = _FROZENSET if isinstance(value, frozenset) else _SET
                return msgpack.ExtType(code, self.encode(list(value)))
            if isinstance(value, int):
                raise OverflowError(f"integer {value} is outside msgpack's 64-bit range")
            if dataclasses.is_dataclass(value):
                raise TypeError(
                    f"cannot encode dataclass {type(value).__qualname__}: register it on both sides with "
                    f"tipcrpc.codec.register_dataclass (or register_ext), or send dataclasses.asdict(value)"
                )
            raise TypeError(
                f"cannot encode {type(value).__qualname__}: not a msgpack type and no extension "
                f"registered for it (see tipcrpc.codec.register_ext)"
            )
        data = ext.encode(value)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"extension encoder for {ext.cls.__qualname__} returned {type(data).__qualname__}, not bytes")
        return msgpack.ExtType(ext.code, bytes(data))

    def _ext_hook(self, code: int, data: bytes) -> Any:
        ext = self.registry.for_code(code)
        if ext is None:
            if code == _SET or code == _FROZENSET:
                items = self.decode(data)
                if type(items) is not list:
                    raise CodecError(f"extension {code} (set) must hold an array")
                elements = [_hashable(v) for v in items]
                return set(elements) if code == _SET else frozenset(elements)
            raise CodecError(f"unknown msgpack extension code {code}")
        return ext.decode(data)

    def encode(self, value: Any) -> bytes:
        """Serialise ``value``; :class:`CodecError` if it (or something inside) cannot be."""
        try:
            if self._busy:
                # Re-entrant use (inside the packer's hook, see _default): the shared packer
                # is mid-buffer, so use a fresh one.
                nested: bytes = msgpack.packb(value, default=self._default, use_bin_type=True)
                return nested
            packed: bytes = self._packer.pack(value)  # it resets itself after an error too
            return packed
        except CodecError:
            raise
        except Exception as exc:  # TypeError, OverflowError, ValueError (recursion), hook errors
            raise CodecError(f"cannot encode value: {exc}") from exc

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """Deserialise exactly one value from ``data``; :class:`CodecError` on any defect."""
        try:
            try:
                if not self._limits:
                    return msgpack.unpackb(data, ext_hook=self._ext_hook, strict_map_key=False)
                return msgpack.unpackb(data, ext_hook=self._ext_hook, strict_map_key=False, **self._limits)
            except TypeError:
                # An array as a map key (a tuple key on the sender's side) cannot be a list
                # here. Decode again, building maps from pairs with such keys made tuples: the
                # common path pays nothing for this.
                return msgpack.unpackb(
                    data,
                    ext_hook=self._ext_hook,
                    object_pairs_hook=_pairs_to_dict,
                    strict_map_key=False,
                    use_list=True,
                    raw=False,
                    **self._limits,
                )
        except CodecError:
            raise
        except Exception as exc:  # ExtraData, FormatError, StackError, ValueError, TypeError, ...
            raise CodecError(f"cannot decode msgpack value: {type(exc).__name__}: {exc}") from exc


_DEFAULT = Codec()


def encode(value: Any) -> bytes:
    """Encode with the default registry (see :class:`Codec`)."""
    return _DEFAULT.encode(value)


def decode(data: bytes | bytearray | memoryview) -> Any:
    """Decode with the default registry (see :class:`Codec`)."""
    return _DEFAULT.decode(data)
