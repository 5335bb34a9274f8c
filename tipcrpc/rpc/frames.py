"""RPC frames on the wire (layer L1, pure).

Every datagram starts with a fixed 16-byte binary header, followed by a kind-specific body::

    offset  size  field
    0       1     version        (VERSION = 1; anything else -> RemoteProtocolError)
    1       1     kind           (Kind)
    2       1     flags          (Flag bits; meaning depends on kind)
    3       1     reserved       (sent as 0, ignored on receipt)
    4       4     aux   u32 BE   (CALL: service type; STREAM_ITEM: seq; STREAM_END: item count;
                                  STREAM_CREDIT: credit; PING/PONG: probe nonce;
                                  CHUNK/CHUNK_ACK: message id)
    8       8     call_id u64 BE

The call id sits inside the first 16 bytes on purpose: an undeliverable datagram comes back
truncated to 1024 bytes (:class:`~tipcrpc.transport.base.Returned`), and the sender must
recognise which call it belonged to from that prefix alone.

Bodies (``msgpack`` = encoded by :class:`~tipcrpc.codec.Codec`):

==============  ===========================================================================
kind            body
==============  ===========================================================================
CALL            msgpack ``[method, args, kwargs|None, deadline_remaining_s|None, credit|None,
                instance|None, metadata|None]`` (trailing ``None`` elements omitted; at least 4)
                flags: IDEMPOTENT, STREAM (credit = initial item credit), ONEWAY (no reply);
                instance: the instance the client routed the call to (key/instance routing);
                metadata: a small map of string keys the client attached (tracing ids)
REPLY           msgpack value; flags: the method's options (below)
FAILURE         msgpack ``[status, message, details]``
CANCEL          empty
STREAM_ITEM     msgpack value (aux = sequence number, from 0)
STREAM_END      empty (aux = number of items sent); flags: the method's options (below)
STREAM_CREDIT   empty (aux = additional items the client accepts)
PING / PONG     empty (liveness probe of a socket; PONG flag PONG_ACTIVE: call_id in progress)
CHUNK           ``>QII`` total length, chunk index, chunk size; then the chunk's bytes
CHUNK_ACK       ``>Q`` bytes of the message received so far
==============  ===========================================================================

The flags of REPLY and STREAM_END describe the method that answered, so a client that
calls a service by name, without its :class:`~tipcrpc.rpc.service.Service` definition,
learns the method's options from the first answer (:func:`method_flags`,
:func:`parse_method_flags`): ``METHOD_META`` (0x80) says the other bits are set,
``IDEMPOTENT`` (0x01) the method is idempotent, bits 1–2 its importance (0–3). A sender that
does not know them sends 0.

Frames larger than the transport's datagram limit travel as CHUNKs (see :mod:`.chunks`).
Parsing functions raise :class:`~tipcrpc.errors.RemoteProtocolError` (malformed frame) or
:class:`~tipcrpc.errors.CodecError` (malformed msgpack) and nothing else.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any, Mapping, Union

import msgpack

from ..codec import Codec
from ..errors import CodecError, RemoteProtocolError, Status

__all__ = [
    "VERSION",
    "HEADER",
    "HEADER_SIZE",
    "CHUNK_EXT",
    "CHUNK_HEADER_SIZE",
    "Kind",
    "Flag",
    "PONG_ACTIVE",
    "METHOD_META",
    "method_flags",
    "parse_method_flags",
    "Header",
    "CallBody",
    "parse_header",
    "peek_header",
    "encode_call",
    "encode_reply",
    "encode_failure",
    "encode_cancel",
    "encode_stream_item",
    "encode_stream_end",
    "encode_stream_credit",
    "encode_ping",
    "encode_pong",
    "encode_chunk",
    "encode_chunk_ack",
    "decode_call",
    "decode_value",
    "decode_failure",
    "decode_chunk",
    "decode_chunk_ack",
    "decode_frame",
    "Frame",
    "CallFrame",
    "ReplyFrame",
    "FailureFrame",
    "CancelFrame",
    "StreamItemFrame",
    "StreamEndFrame",
    "StreamCreditFrame",
    "PingFrame",
    "PongFrame",
    "ChunkFrame",
    "ChunkAckFrame",
]

VERSION = 1
HEADER = struct.Struct(">BBBBIQ")
HEADER_SIZE = HEADER.size  # 16
CHUNK_EXT = struct.Struct(">QII")
CHUNK_HEADER_SIZE = HEADER_SIZE + CHUNK_EXT.size  # 32
_ACK_EXT = struct.Struct(">Q")
_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF
# Below this size a bytes slice (one copy) decodes faster than a memoryview slice.
_SLICE_LIMIT = 1 << 16


class Kind(enum.IntEnum):
    """Frame kinds (header byte 1)."""

    CALL = 1
    REPLY = 2
    FAILURE = 3
    CANCEL = 4
    STREAM_ITEM = 5
    STREAM_END = 6
    STREAM_CREDIT = 7
    PING = 8
    PONG = 9
    CHUNK = 10
    CHUNK_ACK = 11


_KINDS = frozenset(int(k) for k in Kind)


class Flag(enum.IntFlag):
    """Header flag bits (header byte 2)."""

    NONE = 0
    IDEMPOTENT = 0x01  #: CALL: safe to execute more than once
    STREAM = 0x02  #: CALL: streaming method; the reply is STREAM_ITEMs then STREAM_END
    ONEWAY = 0x04  #: CALL: notification; the server sends nothing back


#: PONG flag bit: the probed call id is in progress on this socket.
PONG_ACTIVE = 0x01

#: REPLY/STREAM_END flag bit: the other flag bits describe the answering method.
METHOD_META = 0x80


def method_flags(idempotent: bool, importance: int) -> int:
    """The REPLY/STREAM_END flags describing a method (see the module docstring)."""
    return METHOD_META | (0x01 if idempotent else 0) | ((int(importance) & 0x03) << 1)


def parse_method_flags(flags: int) -> tuple[bool, int] | None:
    """``(idempotent, importance)`` from REPLY/STREAM_END flags, or ``None`` if absent."""
    if not flags & METHOD_META:
        return None
    return bool(flags & 0x01), (flags >> 1) & 0x03


#: ``(kind, flags, aux, call_id)`` as parsed from a header.
Header = tuple[int, int, int, int]
#: ``(method, args, kwargs, deadline_remaining_s, credit, instance, metadata)`` of a CALL body.
CallBody = tuple[str, list[Any], dict[str, Any], Union[float, None], Union[int, None], Union[int, None],
                 Union[dict[str, Any], None]]

_pack_header = HEADER.pack
_unpack_header = HEADER.unpack_from
_CALL, _REPLY = int(Kind.CALL), int(Kind.REPLY)  # plain ints: IntEnum arguments cost more


def parse_header(data: bytes | bytearray | memoryview) -> Header:
    """Parse and validate the 16-byte header of a received frame."""
    if len(data) < HEADER_SIZE:
        raise RemoteProtocolError(f"frame of {len(data)} bytes is shorter than the {HEADER_SIZE}-byte header")
    version, kind, flags, _reserved, aux, call_id = _unpack_header(data)
    if version != VERSION:
        raise RemoteProtocolError(f"unsupported frame version {version} (this side speaks {VERSION})")
    if kind not in _KINDS:
        raise RemoteProtocolError(f"unknown frame kind {kind}")
    return kind, flags, aux, call_id


def peek_header(data: bytes | bytearray | memoryview) -> Header | None:
    """Like :func:`parse_header` but returns ``None`` instead of raising (for returned data)."""
    if len(data) < HEADER_SIZE:
        return None
    version, kind, flags, _reserved, aux, call_id = _unpack_header(data)
    if version != VERSION or kind not in _KINDS:
        return None
    return kind, flags, aux, call_id


def _body(data: bytes | bytearray | memoryview) -> bytes | memoryview:
    if len(data) <= _SLICE_LIMIT and isinstance(data, bytes):
        return data[HEADER_SIZE:]
    return memoryview(data)[HEADER_SIZE:]


# -- encoding -------------------------------------------------------------------------------


def encode_call(
    codec: Codec,
    call_id: int,
    service_type: int,
    method: str,
    args: list[Any] | tuple[Any, ...],
    kwargs: dict[str, Any] | None,
    deadline_remaining: float | None,
    flags: int = 0,
    credit: int | None = None,
    instance: int | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> bytes:
    """A CALL frame. ``deadline_remaining`` is seconds left (the server uses its own clock)."""
    header = _pack_header(VERSION, _CALL, flags, 0, service_type, call_id)
    if not kwargs and instance is None and not metadata and credit is None and type(method) is str:
        # The common shape, [method, args, None, deadline|None, None]: only the arguments go
        # through the packer; the array head with the method name is the same for every call
        # of a method (cached) and the tail is a constant or one double. Byte for byte what
        # packing the whole array gives (tests/unit/test_protocol_frames.py checks).
        head = _method_heads.get(method) or _method_head(method)
        if deadline_remaining is None:
            return header + head + codec.encode(args) + _NO_DEADLINE_TAIL
        if type(deadline_remaining) is float:
            return header + head + codec.encode(args) + _DEADLINE_TAIL.pack(0xC0, 0xCB, deadline_remaining, 0xC0)
    if metadata:
        fields: list[Any] = [method, args, kwargs or None, deadline_remaining, credit, instance, metadata]
    elif instance is not None:
        fields = [method, args, kwargs or None, deadline_remaining, credit, instance]
    else:
        fields = [method, args, kwargs or None, deadline_remaining, credit]
    return header + codec.encode(fields)


# msgpack of [method, args, kwargs=None, deadline, credit=None] around args: a fixarray of 5
# and the method name in front; nil, the deadline (nil or a float 64) and nil behind.
_NO_DEADLINE_TAIL = b"\xc0\xc0\xc0"
_DEADLINE_TAIL = struct.Struct(">BBdB")
_method_heads: dict[str, bytes] = {}


def _method_head(method: str) -> bytes:
    if len(_method_heads) >= 4096:  # bounds memory if a client calls unboundedly many names
        _method_heads.clear()
    head: bytes = b"\x95" + msgpack.packb(method)
    _method_heads[method] = head
    return head


def encode_reply(codec: Codec, call_id: int, value: Any, flags: int = 0) -> bytes:
    """A REPLY frame carrying ``value``; ``flags`` from :func:`method_flags`."""
    return _pack_header(VERSION, _REPLY, flags, 0, 0, call_id) + codec.encode(value)


def encode_failure(codec: Codec, call_id: int, status: int, message: str, details: Any = None) -> bytes:
    """A FAILURE frame. Undecodable ``details`` are replaced by their ``repr``."""
    try:
        body = codec.encode([int(status), message, details])
    except CodecError:
        body = codec.encode([int(status), message, repr(details)])
    return _pack_header(VERSION, Kind.FAILURE, 0, 0, 0, call_id) + body


def encode_cancel(call_id: int) -> bytes:
    """A CANCEL frame: the client no longer wants the result of ``call_id``."""
    return _pack_header(VERSION, Kind.CANCEL, 0, 0, 0, call_id)


def encode_stream_item(codec: Codec, call_id: int, seq: int, value: Any) -> bytes:
    """A STREAM_ITEM frame (``seq`` counts from 0, modulo 2**32)."""
    return _pack_header(VERSION, Kind.STREAM_ITEM, 0, 0, seq & _U32, call_id) + codec.encode(value)


def encode_stream_end(call_id: int, count: int, flags: int = 0) -> bytes:
    """A STREAM_END frame after ``count`` items; ``flags`` from :func:`method_flags`."""
    return _pack_header(VERSION, Kind.STREAM_END, flags, 0, count & _U32, call_id)


def encode_stream_credit(call_id: int, credit: int) -> bytes:
    """A STREAM_CREDIT frame granting ``credit`` more items."""
    return _pack_header(VERSION, Kind.STREAM_CREDIT, 0, 0, min(credit, _U32), call_id)


def encode_ping(call_id: int, nonce: int) -> bytes:
    """A PING probe asking whether the socket is alive (and whether ``call_id`` is active)."""
    return _pack_header(VERSION, Kind.PING, 0, 0, nonce & _U32, call_id)


def encode_pong(call_id: int, nonce: int, active: bool) -> bytes:
    """The answer to a PING."""
    return _pack_header(VERSION, Kind.PONG, PONG_ACTIVE if active else 0, 0, nonce & _U32, call_id)


def encode_chunk(call_id: int, msg_id: int, total: int, index: int, chunk_size: int, payload: bytes | memoryview) -> bytes:
    """One CHUNK of a large frame (see :mod:`.chunks`)."""
    return b"".join(
        (
            _pack_header(VERSION, Kind.CHUNK, 0, 0, msg_id & _U32, call_id),
            CHUNK_EXT.pack(total, index, chunk_size),
            payload,
        )
    )


def encode_chunk_ack(call_id: int, msg_id: int, received: int) -> bytes:
    """A CHUNK_ACK: ``received`` bytes of message ``msg_id`` have arrived."""
    return _pack_header(VERSION, Kind.CHUNK_ACK, 0, 0, msg_id & _U32, call_id) + _ACK_EXT.pack(received)


# -- decoding bodies ------------------------------------------------------------------------


def decode_call(codec: Codec, data: bytes | bytearray | memoryview) -> CallBody:
    """Decode and validate a CALL body (header already parsed)."""
    body = codec.decode(data[HEADER_SIZE:] if len(data) <= _SLICE_LIMIT and type(data) is bytes else _body(data))
    if type(body) is not list or not 4 <= len(body) <= 7:
        raise RemoteProtocolError("CALL body must be an array of 4 to 7 elements")
    if len(body) == 5:
        # The common shape first: positional arguments, no credit, deadline or not. Anything
        # else takes the full checks below.
        method, args, kwargs, deadline, credit = body
        if type(method) is str and type(args) is list and kwargs is None and credit is None:
            if deadline is None:
                return method, args, {}, None, None, None, None
            if type(deadline) is float and deadline >= 0.0:
                return method, args, {}, deadline, None, None, None
    n = len(body)
    method, args, kwargs, deadline = body[0], body[1], body[2], body[3]
    credit = body[4] if n > 4 else None
    instance = body[5] if n > 5 else None
    metadata = body[6] if n > 6 else None
    if type(method) is not str:
        raise RemoteProtocolError("CALL method name must be a string")
    if type(args) is not list:
        raise RemoteProtocolError("CALL args must be an array")
    if kwargs is None:
        kwargs = {}
    elif type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
        raise RemoteProtocolError("CALL kwargs must be a map with string keys")
    if deadline is not None:
        if type(deadline) not in (int, float) or not deadline >= 0:  # 'not >=' also rejects NaN
            raise RemoteProtocolError("CALL deadline must be a non-negative number of seconds")
        deadline = float(deadline)
    if credit is not None and (type(credit) is not int or not 0 <= credit <= _U32):
        raise RemoteProtocolError("CALL credit must be an integer in 0..2**32-1")
    if instance is not None and (type(instance) is not int or not 0 <= instance <= _U32):
        raise RemoteProtocolError("CALL instance must be an integer in 0..2**32-1")
    if metadata is not None and (type(metadata) is not dict or not all(type(k) is str for k in metadata)):
        raise RemoteProtocolError("CALL metadata must be a map with string keys")
    return method, args, kwargs, deadline, credit, instance, metadata


def decode_value(codec: Codec, data: bytes | bytearray | memoryview) -> Any:
    """Decode the msgpack value of a REPLY or STREAM_ITEM frame."""
    return codec.decode(_body(data))


def decode_failure(codec: Codec, data: bytes | bytearray | memoryview) -> tuple[Status, str, Any]:
    """Decode a FAILURE body to ``(status, message, details)``; unknown statuses → UNKNOWN."""
    body = codec.decode(_body(data))
    if type(body) is not list or len(body) != 3 or type(body[0]) is not int or type(body[1]) is not str:
        raise RemoteProtocolError("FAILURE body must be [status:int, message:str, details]")
    try:
        status = Status(body[0])
    except ValueError:
        status = Status.UNKNOWN
    return status, body[1], body[2]


def decode_chunk(data: bytes | bytearray | memoryview) -> tuple[int, int, int, memoryview]:
    """Split a CHUNK frame into ``(total, index, chunk_size, payload)`` (payload is a view)."""
    if len(data) < CHUNK_HEADER_SIZE:
        raise RemoteProtocolError(f"CHUNK frame of {len(data)} bytes is shorter than its {CHUNK_HEADER_SIZE}-byte header")
    total, index, chunk_size = CHUNK_EXT.unpack_from(data, HEADER_SIZE)
    return total, index, chunk_size, memoryview(data)[CHUNK_HEADER_SIZE:]


def decode_chunk_ack(data: bytes | bytearray | memoryview) -> int:
    """The ``received`` count of a CHUNK_ACK frame."""
    if len(data) != HEADER_SIZE + _ACK_EXT.size:
        raise RemoteProtocolError("CHUNK_ACK frame must be exactly 24 bytes")
    received: int = _ACK_EXT.unpack_from(data, HEADER_SIZE)[0]
    return received


# -- typed view (tests, tools, rare paths) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallFrame:
    call_id: int
    service_type: int
    method: str
    args: list[Any]
    kwargs: dict[str, Any]
    deadline_remaining: float | None
    flags: Flag
    credit: int | None
    instance: int | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ReplyFrame:
    call_id: int
    value: Any
    flags: int = 0


@dataclass(frozen=True, slots=True)
class FailureFrame:
    call_id: int
    status: Status
    message: str
    details: Any


@dataclass(frozen=True, slots=True)
class CancelFrame:
    call_id: int


@dataclass(frozen=True, slots=True)
class StreamItemFrame:
    call_id: int
    seq: int
    value: Any


@dataclass(frozen=True, slots=True)
class StreamEndFrame:
    call_id: int
    count: int
    flags: int = 0


@dataclass(frozen=True, slots=True)
class StreamCreditFrame:
    call_id: int
    credit: int


@dataclass(frozen=True, slots=True)
class PingFrame:
    call_id: int
    nonce: int


@dataclass(frozen=True, slots=True)
class PongFrame:
    call_id: int
    nonce: int
    active: bool


@dataclass(frozen=True, slots=True)
class ChunkFrame:
    call_id: int
    msg_id: int
    total: int
    index: int
    chunk_size: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class ChunkAckFrame:
    call_id: int
    msg_id: int
    received: int


Frame = Union[
    CallFrame,
    ReplyFrame,
    FailureFrame,
    CancelFrame,
    StreamItemFrame,
    StreamEndFrame,
    StreamCreditFrame,
    PingFrame,
    PongFrame,
    ChunkFrame,
    ChunkAckFrame,
]

_EMPTY_KINDS = frozenset({Kind.CANCEL, Kind.STREAM_END, Kind.STREAM_CREDIT, Kind.PING, Kind.PONG})


def decode_frame(codec: Codec, data: bytes | bytearray | memoryview) -> Frame:
    """Decode a whole frame into its typed dataclass (slower than the per-kind functions)."""
    kind, flags, aux, call_id = parse_header(data)
    if kind in _EMPTY_KINDS and len(data) != HEADER_SIZE:
        raise RemoteProtocolError(f"{Kind(kind).name} frame must have an empty body")
    if kind == Kind.CALL:
        method, args, kwargs, deadline, credit, instance, metadata = decode_call(codec, data)
        return CallFrame(call_id, aux, method, args, kwargs, deadline, Flag(flags & 0x07), credit, instance, metadata)
    if kind == Kind.REPLY:
        return ReplyFrame(call_id, decode_value(codec, data), flags)
    if kind == Kind.FAILURE:
        return FailureFrame(call_id, *decode_failure(codec, data))
    if kind == Kind.CANCEL:
        return CancelFrame(call_id)
    if kind == Kind.STREAM_ITEM:
        return StreamItemFrame(call_id, aux, decode_value(codec, data))
    if kind == Kind.STREAM_END:
        return StreamEndFrame(call_id, aux, flags)
    if kind == Kind.STREAM_CREDIT:
        return StreamCreditFrame(call_id, aux)
    if kind == Kind.PING:
        return PingFrame(call_id, aux)
    if kind == Kind.PONG:
        return PongFrame(call_id, aux, bool(flags & PONG_ACTIVE))
    if kind == Kind.CHUNK:
        total, index, chunk_size, payload = decode_chunk(data)
        return ChunkFrame(call_id, aux, total, index, chunk_size, bytes(payload))
    # CHUNK_ACK (parse_header admitted only known kinds)
    return ChunkAckFrame(call_id, aux, decode_chunk_ack(data))
