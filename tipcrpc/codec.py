"""The value codec: msgpack with an explicit extension-type registry (layer L1, pure).

Arguments, results and stream items travel as msgpack. Plain msgpack covers ``None``,
``bool``, ``int`` (64-bit), ``float``, ``str``, ``bytes``, lists and dicts; tuples are sent
as arrays and arrive as lists. Beyond that, only types registered with :func:`register_ext`
can be sent — there is **no** pickle fallback, so a peer can never make us construct an
arbitrary class.

Built-in extension types (codes 0..15 are reserved for tipcrpc):

====  ======================  ====================================================
code  Python type             payload
====  ======================  ====================================================
1     ``uuid.UUID``           16 raw bytes
2     ``decimal.Decimal``     ASCII ``str(d)``
3     ``datetime.datetime``   ASCII ISO-8601 (naive stays naive, tz offset kept)
4     ``datetime.date``       ASCII ISO-8601
5     ``datetime.timedelta``  ``>qiI`` days, seconds, microseconds
====  ======================  ====================================================

Applications register their own types with codes 16..127::

    register_ext(16, Point, lambda p: struct.pack(">dd", p.x, p.y),
                 lambda b: Point(*struct.unpack(">dd", b)))

Decoding uses ``strict_map_key=False`` so maps may have integer (or other hashable) keys;
an unhashable key (a map used as a map key) is reported as :class:`CodecError`. Length
limits default to msgpack's automatic bound (nothing may claim to be longer than the buffer
holding it), which stops allocation bombs; explicit limits can be set per :class:`Codec`.
Every failure — unencodable value, malformed bytes, a failing extension hook — surfaces
as :class:`~tipcrpc.errors.CodecError` and nothing else.
"""

from __future__ import annotations

import datetime
import decimal
import struct
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

import msgpack

from .errors import CodecError

__all__ = [
    "ExtType",
    "ExtRegistry",
    "Codec",
    "DEFAULT_REGISTRY",
    "RESERVED_EXT_CODES",
    "register_ext",
    "encode",
    "decode",
]

T = TypeVar("T")

#: Extension codes ``0..RESERVED_EXT_CODES-1`` belong to tipcrpc's built-ins.
RESERVED_EXT_CODES = 16
_MAX_EXT_CODE = 127


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
    return d.isoformat().encode("ascii")


def _dec_datetime(b: bytes) -> datetime.datetime:
    return datetime.datetime.fromisoformat(bytes(b).decode("ascii"))


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
        self._limits = dict(
            max_str_len=max_str_len,
            max_bin_len=max_bin_len,
            max_array_len=max_array_len,
            max_map_len=max_map_len,
            max_ext_len=max_ext_len,
        )

    def _default(self, value: object) -> msgpack.ExtType:
        ext = self.registry.for_value(value)
        if ext is None:
            if isinstance(value, int):
                raise OverflowError(f"integer {value} is outside msgpack's 64-bit range")
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
            raise CodecError(f"unknown msgpack extension code {code}")
        return ext.decode(data)

    def encode(self, value: Any) -> bytes:
        """Serialise ``value``; :class:`CodecError` if it (or something inside) cannot be."""
        try:
            if self._busy:
                # Re-entrant use (an extension encoder encoding a nested value): the shared
                # packer is mid-buffer, so use a fresh one.
                return msgpack.packb(value, default=self._default, use_bin_type=True)
            self._busy = True
            try:
                return self._packer.pack(value)
            finally:
                self._busy = False
        except CodecError:
            raise
        except Exception as exc:  # TypeError, OverflowError, ValueError (recursion), hook errors
            raise CodecError(f"cannot encode value: {exc}") from exc

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """Deserialise exactly one value from ``data``; :class:`CodecError` on any defect."""
        try:
            return msgpack.unpackb(
                data,
                ext_hook=self._ext_hook,
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
