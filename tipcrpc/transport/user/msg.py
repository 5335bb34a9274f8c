"""TIPC v2 message header codec (the kernel's ``net/tipc/msg.h``), pure.

A TIPC message is a header of 6..15 big-endian 32-bit words followed by data. Word 0 says
who the message is for (``user``: data importance 0..3 or an internal protocol 5..13),
how long the header is (``hsize``) and how long the whole message is (``size``). The other
words mean different things per user; :class:`Header` exposes every field the userspace node
needs under the kernel's accessor names (``msg_ack`` → :attr:`Header.ack`, ...).

Two ways in:

* :class:`Header` — a mutable list of words with one property per field. Decoding keeps
  every bit (even ones we do not understand), so ``Header.decode(b).encode()`` reproduces
  the header byte for byte. Used for internal (link/discovery/name) messages.
* :func:`data_header` — the hot path for payload messages: one precompiled
  ``struct.Struct`` unpack into a :class:`DataHeader` named tuple.

Builders (:func:`named_msg`, :func:`direct_msg`, :func:`mcast_msg`, :func:`conn_msg`,
:func:`name_distr_msg`) produce complete messages exactly as the kernel lays them out;
:func:`rejected` turns a payload message into the returned one (``tipc_msg_reverse``).

Malformed bytes raise :class:`~tipcrpc.errors.RemoteProtocolError`; builders given
out-of-range values raise :class:`~tipcrpc.errors.LocalProtocolError`.
"""

from __future__ import annotations

import struct

from ...errors import LocalProtocolError
from . import msgconst as _const
from .header import (  # noqa: F401 (re-exported)
    DataHeader,
    Header,
    buf_user,
    data_header,
    is_data_user,
    msg_ack,
    msg_errcode,
    msg_hdr_sz,
    msg_non_seq,
    msg_seqno,
    msg_size,
    msg_type,
    msg_user,
    msg_version,
    peek,
    validate,
)
from tipcrpc.transport.user.msgconst import *  # noqa: F403 (re-exported: msg is the public home of the constants)
from .msgconst import (
    BASIC_H_SIZE,
    CRITICAL_IMPORTANCE,
    DISTR_ITEM_SIZE,
    INT_H_SIZE,
    MAX_FORWARD_SIZE,
    MAX_USER_MSG_SIZE,
    MCAST_H_SIZE,
    NAME_DISTRIBUTOR,
    NAMED_H_SIZE,
    PUBLICATION,
    SHORT_H_SIZE,
    TIPC_CONN_MSG,
    TIPC_DIRECT_MSG,
    TIPC_ERR_OVERLOAD,
    TIPC_MCAST_MSG,
    TIPC_NAMED_MSG,
    TIPC_VERSION,
    WITHDRAWAL,
)

# The star import above, carried out by name: mypyc compiles ``import *`` (absolute; the
# relative form fails at import) without binding the names (./dev build-compiled).
globals().update({name: getattr(_const, name) for name in _const.__all__})

__all__ = [  # noqa: PLE0604 (constants come from msgconst)
    *_const.__all__,
    "Header",
    "DataHeader",
    "data_header",
    "peek",
    "validate",
    "named_msg",
    "direct_msg",
    "named_msg_trusted",
    "direct_msg_trusted",
    "direct_hdr",
    "named_hdr",
    "mcast_msg",
    "conn_msg",
    "rejected",
    "name_distr_msg",
    "with_link_fields",
    "is_data_user",
    "msg_version",
    "msg_user",
    "msg_hdr_sz",
    "msg_size",
    "msg_non_seq",
    "msg_type",
    "msg_errcode",
    "msg_ack",
    "msg_seqno",
    "buf_user",
]

_U32 = 0xFFFF_FFFF
_WORDS = [struct.Struct(f">{n}I") for n in range(16)]  # _WORDS[n] packs n words


_LINK_W2 = struct.Struct(">III")  # words 1..3


def with_link_fields(packet: bytes | bytearray, *, ack: int, seqno: int, bcast_ack: int, prevnode: int) -> bytes:
    """Return ``packet`` with the link-layer fields rewritten, as the kernel does per send.

    The link stamps every outgoing packet with its own seqno, the latest ack and broadcast
    ack (word 1 low half — only for users whose word 1 carries ``bcast_ack``) and its node
    address as ``prevnode``.
    """
    buf = bytearray(packet)
    w1 = int.from_bytes(buf[4:8], "big")
    w1 = (w1 & ~0xFFFF) | (bcast_ack & 0xFFFF)
    _LINK_W2.pack_into(buf, 4, w1, ((ack & 0xFFFF) << 16) | (seqno & 0xFFFF), prevnode & _U32)
    return bytes(buf)


# --- builders -----------------------------------------------------------------------------


def _check_u32(what: str, v: int) -> None:
    if not 0 <= v <= _U32:
        raise LocalProtocolError(f"{what} must be a 32-bit unsigned integer, got {v!r}")


def _payload_hdr(
    importance: int,
    mtype: int,
    hsize: int,
    orig_node: int,
    orig_port: int,
    dest_node: int,
    dest_port: int,
    data_len: int,
    dest_droppable: bool,
    src_droppable: bool,
    syn: bool,
) -> list[int]:
    if not 0 <= importance <= CRITICAL_IMPORTANCE:
        raise LocalProtocolError(f"importance must be 0..3, got {importance}")
    if data_len > MAX_USER_MSG_SIZE:
        raise LocalProtocolError(f"TIPC payload of {data_len} bytes exceeds {MAX_USER_MSG_SIZE}")
    for what, v in (("orig node", orig_node), ("orig port", orig_port), ("dest node", dest_node), ("dest port", dest_port)):
        _check_u32(what, v)
    w = [0] * (hsize // 4)
    w[0] = (
        (TIPC_VERSION << 29)
        | (importance << 25)
        | ((hsize >> 2) << 21)
        | (int(dest_droppable) << 19)
        | (int(src_droppable) << 18)
        | (int(syn) << 17)
        | (hsize + data_len)
    )
    w[1] = mtype << 29
    w[3] = orig_node
    w[4] = orig_port
    w[5] = dest_port
    if hsize > SHORT_H_SIZE:
        w[6] = orig_node
        w[7] = dest_node
    return w


def named_msg(
    importance: int,
    orig_node: int,
    orig_port: int,
    dest_node: int,
    dest_port: int,
    type: int,
    instance: int,
    payload: bytes,
    lookup_scope: int,
    *,
    dest_droppable: bool = False,
    src_droppable: bool = False,
    syn: bool = False,
) -> bytes:
    """A named (anycast) message, 40-byte header, as ``__tipc_sendmsg`` builds it.

    ``dest_node``/``dest_port`` are the lookup result (``dest_port`` 0 lets the destination
    node look the name up); ``lookup_scope`` is the scope of the lookup (2 cluster, 3 node).
    """
    _check_u32("name type", type)
    _check_u32("name instance", instance)
    if not 0 <= lookup_scope <= 3:
        raise LocalProtocolError(f"lookup scope must be 0..3, got {lookup_scope}")
    w = _payload_hdr(
        importance, TIPC_NAMED_MSG, NAMED_H_SIZE, orig_node, orig_port, dest_node, dest_port,
        len(payload), dest_droppable, src_droppable, syn,
    )
    w[1] |= lookup_scope << 19
    w[8] = type
    w[9] = instance
    return _WORDS[10].pack(*w) + payload


# --- trusted builders (hot path) ----------------------------------------------------------
#
# The socket layer sends values it has already validated: node and port numbers of existing
# sockets and SocketAddr/ServiceAddr fields (u32 by construction), an importance checked by
# the endpoint, a payload no longer than MAX_USER_MSG_SIZE. For those, one precompiled pack
# replaces the checked builders' argument validation. Layouts are the same (tests compare).

_H8 = _WORDS[8]
_H10 = _WORDS[10]
_DIRECT_W0 = (TIPC_VERSION << 29) | ((BASIC_H_SIZE >> 2) << 21)
_DIRECT_W1 = TIPC_DIRECT_MSG << 29
_NAMED_W0 = (TIPC_VERSION << 29) | ((NAMED_H_SIZE >> 2) << 21)
_NAMED_W1 = TIPC_NAMED_MSG << 29


def direct_hdr(importance: int, orig_node: int, orig_port: int, dest_node: int, dest_port: int, dlen: int) -> bytes:
    """The header of :func:`direct_msg_trusted` for ``dlen`` bytes of payload (no checks).

    Sent with the payload as a separate buffer (scatter-gather), so the payload is never
    copied into a message.
    """
    return _H8.pack(
        _DIRECT_W0 | (importance << 25) | (BASIC_H_SIZE + dlen),
        _DIRECT_W1, 0, orig_node, orig_port, dest_port, orig_node, dest_node,
    )


def named_hdr(
    importance: int,
    orig_node: int,
    orig_port: int,
    dest_node: int,
    dest_port: int,
    type: int,
    instance: int,
    dlen: int,
    lookup_scope: int,
) -> bytes:
    """The header of :func:`named_msg_trusted` for ``dlen`` bytes of payload (no checks)."""
    return _H10.pack(
        _NAMED_W0 | (importance << 25) | (NAMED_H_SIZE + dlen),
        _NAMED_W1 | (lookup_scope << 19), 0, orig_node, orig_port, dest_port, orig_node, dest_node,
        type, instance,
    )


def direct_msg_trusted(
    importance: int, orig_node: int, orig_port: int, dest_node: int, dest_port: int, payload: bytes
) -> bytes:
    """:func:`direct_msg` without argument checks: the caller guarantees every value is in range."""
    return direct_hdr(importance, orig_node, orig_port, dest_node, dest_port, len(payload)) + payload


def named_msg_trusted(
    importance: int,
    orig_node: int,
    orig_port: int,
    dest_node: int,
    dest_port: int,
    type: int,
    instance: int,
    payload: bytes,
    lookup_scope: int,
) -> bytes:
    """:func:`named_msg` without argument checks: the caller guarantees every value is in range."""
    return named_hdr(importance, orig_node, orig_port, dest_node, dest_port, type, instance, len(payload), lookup_scope) + payload


def direct_msg(
    importance: int,
    orig_node: int,
    orig_port: int,
    dest_node: int,
    dest_port: int,
    payload: bytes,
    *,
    dest_droppable: bool = False,
    src_droppable: bool = False,
    syn: bool = False,
) -> bytes:
    """A message to a socket address ``<dest_node:dest_port>``, 32-byte header."""
    w = _payload_hdr(
        importance, TIPC_DIRECT_MSG, BASIC_H_SIZE, orig_node, orig_port, dest_node, dest_port,
        len(payload), dest_droppable, src_droppable, syn,
    )
    return _WORDS[8].pack(*w) + payload


def mcast_msg(
    importance: int,
    orig_node: int,
    orig_port: int,
    type: int,
    lower: int,
    upper: int,
    payload: bytes,
    lookup_scope: int,
    *,
    dest_node: int = 0,
    dest_port: int = 0,
    dest_droppable: bool = False,
    src_droppable: bool = False,
) -> bytes:
    """A multicast message to every socket bound in ``{type, lower, upper}``, 44-byte header."""
    _check_u32("name type", type)
    _check_u32("range lower", lower)
    _check_u32("range upper", upper)
    if lower > upper:
        raise LocalProtocolError(f"multicast range lower {lower} exceeds upper {upper}")
    if not 0 <= lookup_scope <= 3:
        raise LocalProtocolError(f"lookup scope must be 0..3, got {lookup_scope}")
    w = _payload_hdr(
        importance, TIPC_MCAST_MSG, MCAST_H_SIZE, orig_node, orig_port, dest_node, dest_port,
        len(payload), dest_droppable, src_droppable, False,
    )
    w[1] |= lookup_scope << 19
    w[8] = type
    w[9] = lower
    w[10] = upper
    return _WORDS[11].pack(*w) + payload


def conn_msg(
    importance: int,
    orig_node: int,
    orig_port: int,
    dest_node: int,
    dest_port: int,
    payload: bytes,
    *,
    syn: bool = False,
    errcode: int = 0,
    hsize: int = BASIC_H_SIZE,
) -> bytes:
    """A connection message (type CONN). ``hsize`` 24 (SHORT) or 32 (BASIC)."""
    if hsize not in (SHORT_H_SIZE, BASIC_H_SIZE):
        raise LocalProtocolError(f"connection messages use 24- or 32-byte headers, got {hsize}")
    w = _payload_hdr(
        importance, TIPC_CONN_MSG, hsize, orig_node, orig_port, dest_node, dest_port,
        len(payload), False, False, syn,
    )
    w[1] |= (errcode & 0xF) << 25
    return _WORDS[hsize // 4].pack(*w) + payload


def rejected(msg: bytes | bytearray | memoryview, errcode: int, own_node: int) -> bytes | None:
    """The kernel's ``tipc_msg_reverse``: turn a payload message into the returned one.

    Swaps ports, sets ``errcode``, sends it back to the original ``prevnode`` with
    ``own_node`` as origin, keeps at most :data:`MAX_FORWARD_SIZE` bytes of data (none when a
    SYN is rejected for overload), never returns a 24-byte header. Returns ``None`` when the
    kernel would drop instead: the message is ``dest_droppable`` or already carries an
    error code. Raises :class:`RemoteProtocolError` if ``msg`` is malformed.
    """
    _user, hsize, size = validate(msg)
    h = Header.decode(msg)
    if h.dest_droppable or h.errcode:
        return None
    dlen = min(size - hsize, MAX_FORWARD_SIZE)
    if h.syn and errcode == TIPC_ERR_OVERLOAD:
        dlen = 0
    data = bytes(msg[hsize : hsize + dlen])
    words = list(h.w)
    new_h = hsize
    if hsize < BASIC_H_SIZE:
        # A 24-byte (or, malformed but accepted by validation as by the kernel's, 28-byte)
        # header has no word for the destination node: the reply gets the 32-byte form.
        new_h = BASIC_H_SIZE
        words += [0] * (BASIC_H_SIZE // 4 - len(words))
        if hsize == SHORT_H_SIZE:
            # A short header's orignode is its prevnode; the long form needs it in word 6.
            words[6] = h.prevnode
    r = Header.from_words(words)
    r.set_bits(0, 21, 0xF, new_h >> 2)
    r.errcode = errcode
    r.non_seq = 0
    orig_port, dest_port = h.origport, h.destport
    r.origport = dest_port
    r.destport = orig_port
    r.destnode = h.prevnode
    r.prevnode = own_node
    r.orignode = own_node
    r.size = new_h + dlen
    return r.encode() + data


def name_distr_msg(
    mtype: int,
    items: bytes,
    orig_node: int,
    dest_node: int = 0,
    *,
    bulk: bool = False,
    last_bulk: bool = False,
    non_legacy: bool = True,
    named_seqno: int = 0,
) -> bytes:
    """A NAME_DISTRIBUTOR PUBLICATION/WITHDRAWAL carrying N × 20-byte ``distr_item``.

    Laid out as ``named_prepare_buf`` + ``tipc_named_publish`` do (see the captures: frame 35
    of udp-replicast is a bulk publication with ``bulk|last_bulk|non_legacy``; frame 61 an
    incremental one with ``non_legacy`` and ``named_seqno`` 1). Link fields (seqno, acks,
    bc_ack_invalid) are filled in by the link.
    """
    if mtype not in (PUBLICATION, WITHDRAWAL):
        raise LocalProtocolError(f"name distributor message type must be PUBLICATION or WITHDRAWAL, got {mtype}")
    if len(items) % DISTR_ITEM_SIZE:
        raise LocalProtocolError(f"name distributor items must be a multiple of {DISTR_ITEM_SIZE} bytes, got {len(items)}")
    if len(items) > MAX_USER_MSG_SIZE:
        raise LocalProtocolError(f"name distributor message of {len(items)} bytes exceeds {MAX_USER_MSG_SIZE}")
    h = Header(NAME_DISTRIBUTOR, mtype, INT_H_SIZE, own_node=orig_node, dest_node=dest_node)
    if bulk:
        h.bulk = 1
    if last_bulk:
        h.last_bulk = 1
    if non_legacy:
        h.non_legacy = 1
    h.named_seqno = named_seqno
    return h.build(items)
