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
from typing import NamedTuple, overload

from ...errors import LocalProtocolError, RemoteProtocolError
from . import msgconst as _const
from .msgconst import *  # noqa: F403 (re-exported: msg is the public home of the constants)
from .msgconst import (
    BASIC_H_SIZE,
    CRITICAL_IMPORTANCE,
    DISTR_ITEM_SIZE,
    INT_H_SIZE,
    MAX_FORWARD_SIZE,
    MAX_H_SIZE,
    MAX_USER_MSG_SIZE,
    MCAST_H_SIZE,
    MIN_H_SIZE,
    MSG_BUNDLER,
    MSG_FRAGMENTER,
    NAME_DISTRIBUTOR,
    NAMED_H_SIZE,
    PUBLICATION,
    SHORT_H_SIZE,
    SYSTEM_IMPORTANCE,
    TIPC_CONN_MSG,
    TIPC_DIRECT_MSG,
    TIPC_ERR_OVERLOAD,
    TIPC_MCAST_MSG,
    TIPC_NAMED_MSG,
    TIPC_VERSION,
    WITHDRAWAL,
)

__all__ = [  # noqa: PLE0604 (constants come from msgconst)
    *_const.__all__,
    "Header",
    "DataHeader",
    "data_header",
    "peek",
    "validate",
    "named_msg",
    "direct_msg",
    "mcast_msg",
    "conn_msg",
    "rejected",
    "name_distr_msg",
    "with_link_fields",
    "is_data_user",
]

_U32 = 0xFFFF_FFFF
_WORDS = [struct.Struct(f">{n}I") for n in range(16)]  # _WORDS[n] packs n words
_W0 = struct.Struct(">I")


def is_data_user(user: int) -> bool:
    """``msg_isdata``: users 0..3 are payload messages of that importance."""
    return user <= CRITICAL_IMPORTANCE


class _Bits:
    """A header bit field: ``(word >> pos) & mask``, as the kernel's ``msg_bits``.

    Reading a word beyond the header gives 0; writing one raises LocalProtocolError.
    """

    def __init__(self, word: int, pos: int, mask: int, doc: str) -> None:
        self.word = word
        self.pos = pos
        self.mask = mask
        self.__doc__ = doc

    @overload
    def __get__(self, obj: None, owner: type) -> _Bits: ...
    @overload
    def __get__(self, obj: Header, owner: type) -> int: ...
    def __get__(self, obj: Header | None, owner: type) -> int | _Bits:
        if obj is None:
            return self
        w = obj.w
        if self.word >= len(w):
            return 0
        return (w[self.word] >> self.pos) & self.mask

    def __set__(self, obj: Header, value: int) -> None:
        w = obj.w
        if self.word >= len(w):
            raise LocalProtocolError(f"word {self.word} is beyond this {len(w) * 4}-byte header")
        w[self.word] = (w[self.word] & ~(self.mask << self.pos)) | ((value & self.mask) << self.pos)


class Header:
    """A TIPC header as a list of 32-bit words with the kernel's field accessors.

    ``Header(user, mtype, hsize, ...)`` is the kernel's ``tipc_msg_init``: version 2, the
    user, the type, ``hsize`` and ``size = hsize``, ``prevnode`` and (for headers longer than
    24 bytes) ``orignode``/``destnode``. Set the remaining fields through the properties and
    call :meth:`encode` (header only) or :meth:`build` (header + data, size fixed up).

    Decoding (:meth:`decode`) validates like ``tipc_msg_validate`` and keeps all header words,
    so unknown bits survive a decode/encode round trip.
    """

    __slots__ = ("w",)

    def __init__(
        self,
        user: int = 0,
        mtype: int = 0,
        hsize: int = INT_H_SIZE,
        *,
        own_node: int = 0,
        dest_node: int = 0,
    ) -> None:
        if hsize % 4 or not MIN_H_SIZE <= hsize <= MAX_H_SIZE:
            raise LocalProtocolError(f"TIPC header size must be a multiple of 4 in 24..60, got {hsize}")
        if not 0 <= user <= 15 or not 0 <= mtype <= 7:
            raise LocalProtocolError(f"bad TIPC user {user} / message type {mtype}")
        self.w: list[int] = [0] * (hsize // 4)
        self.w[0] = (TIPC_VERSION << 29) | (user << 25) | ((hsize >> 2) << 21) | hsize
        self.w[1] = mtype << 29
        self.w[3] = own_node & _U32
        if hsize > SHORT_H_SIZE:
            self.w[6] = own_node & _U32
            self.w[7] = dest_node & _U32

    # -- codec -------------------------------------------------------------------------------

    @classmethod
    def from_words(cls, words: list[int]) -> Header:
        """Wrap an existing word list (not copied)."""
        h = cls.__new__(cls)
        h.w = words
        return h

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, *, exact: bool = False) -> Header:
        """Decode and validate the header at the start of ``data``.

        Checks as ``tipc_msg_validate``: at least 24 bytes, version 2, 24 <= hsize <= 60,
        hsize <= size, data size <= 66000, and ``len(data) >= size``. With ``exact``, also
        require ``len(data) == size``.
        """
        _user, hsize, size = validate(data)
        n = len(data)
        if exact and n != size:
            raise RemoteProtocolError(f"TIPC message has {n - size} trailing bytes after {size}")
        return cls.from_words(list(_WORDS[hsize >> 2].unpack_from(data, 0)))

    def encode(self) -> bytes:
        """The header bytes (``hsize`` bytes)."""
        return _WORDS[len(self.w)].pack(*self.w)

    def build(self, data: bytes | bytearray | memoryview = b"") -> bytes:
        """Header + ``data`` with :attr:`size` set to the total."""
        self.size = self.hsize + len(data)
        return _WORDS[len(self.w)].pack(*self.w) + bytes(data)

    def copy(self) -> Header:
        return Header.from_words(list(self.w))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Header) and self.w == other.w

    def __repr__(self) -> str:
        return (
            f"Header(user={self.user}, mtype={self.mtype}, hsize={self.hsize}, size={self.size}, "
            f"words=[{', '.join(f'{x:08x}' for x in self.w)}])"
        )

    # -- bit helpers -------------------------------------------------------------------------

    def get_bits(self, word: int, pos: int, mask: int) -> int:
        """``msg_bits``; words beyond the header read as 0."""
        if word >= len(self.w):
            return 0
        return (self.w[word] >> pos) & mask

    def set_bits(self, word: int, pos: int, mask: int, value: int) -> None:
        """``msg_set_bits``; grows the word list if needed (hsize is not changed)."""
        if word >= len(self.w):
            raise LocalProtocolError(f"word {word} is beyond this {len(self.w) * 4}-byte header")
        self.w[word] = (self.w[word] & ~(mask << pos)) | ((value & mask) << pos)

    def get_word(self, word: int) -> int:
        return self.w[word] if word < len(self.w) else 0

    def set_word(self, word: int, value: int) -> None:
        if word >= len(self.w):
            raise LocalProtocolError(f"word {word} is beyond this {len(self.w) * 4}-byte header")
        self.w[word] = value & _U32

    # -- word 0 ------------------------------------------------------------------------------

    version = _Bits(0, 29, 0x7, "Protocol version (2).")
    user = _Bits(0, 25, 0xF, "Data importance 0..3 or an internal user (5..13).")
    non_seq = _Bits(0, 20, 1, "Not sequenced on a link: discovery or broadcast-link packet.")
    dest_droppable = _Bits(0, 19, 1, "Drop instead of returning when undeliverable; ``keepalive`` on STATE.")
    src_droppable = _Bits(0, 18, 1, "May be dropped at congestion; ``ack_required``/``nagle_ack``/``is_rcast``.")
    syn = _Bits(0, 17, 1, "Connection SYN.")

    @property
    def hsize(self) -> int:
        """Header size in bytes (stored in words)."""
        return ((self.w[0] >> 21) & 0xF) << 2

    @property
    def size(self) -> int:
        """Message size in bytes, header included."""
        return self.w[0] & 0x1FFFF

    @size.setter
    def size(self, v: int) -> None:
        if not 0 <= v <= 0x1FFFF:
            raise LocalProtocolError(f"TIPC message size {v} does not fit 17 bits")
        self.w[0] = (self.w[0] & ~0x1FFFF) | v

    @property
    def data_size(self) -> int:
        return self.size - self.hsize

    # -- word 1 ------------------------------------------------------------------------------

    mtype = _Bits(1, 29, 0x7, "Message type (meaning depends on the user).")
    errcode = _Bits(1, 25, 0xF, "TIPC_ERR_* of a returned message.")
    reroute_cnt = _Bits(1, 21, 0xF, "Times a named message was re-looked-up.")
    lookup_scope = _Bits(1, 19, 0x3, "Scope of the name lookup (2 cluster, 3 node).")
    bcast_ack = _Bits(1, 0, 0xFFFF, "Last broadcast packet acknowledged by the sender.")
    # internal reuse of word 1
    seq_gap = _Bits(1, 16, 0x1FFF, "LINK_PROTOCOL STATE: missing packets after ``ack`` (a NACK).")
    node_sig = _Bits(1, 0, 0xFFFF, "LINK_CONFIG: the sender's random node signature.")
    capabilities = _Bits(1, 15, 0x1FFF, "LINK_CONFIG: node capability bits (bit 15 overlaps node_sig).")
    bulk = _Bits(1, 28, 1, "NAME_DISTRIBUTOR: part of the bulk sent at link-up.")
    last_bulk = _Bits(1, 27, 1, "NAME_DISTRIBUTOR: last message of the bulk.")
    non_legacy = _Bits(1, 26, 1, "NAME_DISTRIBUTOR: sender numbers its updates (``named_seqno``).")
    dest_session_valid = _Bits(1, 16, 1, "LINK_PROTOCOL ACTIVATE: ``dest_session`` is meaningful.")
    dest_session = _Bits(1, 0, 0xFFFF, "LINK_PROTOCOL ACTIVATE: the peer session being answered.")

    # -- word 2 ------------------------------------------------------------------------------

    ack = _Bits(2, 16, 0xFFFF, "Link-level acknowledge: last in-order seqno received.")
    seqno = _Bits(2, 0, 0xFFFF, "Link-level sequence number.")
    dest_domain = _Bits(2, 0, _U32, "LINK_CONFIG: node the message is for (0 = anyone).")

    # -- words 3..5 --------------------------------------------------------------------------

    prevnode = _Bits(3, 0, _U32, "Node that sent this packet on the link.")
    origport = _Bits(4, 0, _U32, "Originating port.")
    last_bcast = _Bits(4, 16, 0xFFFF, "LINK_PROTOCOL: sender's last sent broadcast seqno.")
    fragm_no = _Bits(4, 16, 0xFFFF, "MSG_FRAGMENTER: 1-based fragment number.")
    next_sent = _Bits(4, 0, 0xFFFF, "LINK_PROTOCOL: sender's ``snd_nxt``.")
    nof_fragms = _Bits(4, 0, 0xFFFF, "MSG_FRAGMENTER (tipc_msg_fragment only): fragment count.")
    named_seqno = _Bits(4, 0, 0xFFFF, "NAME_DISTRIBUTOR: per-sender sequence number of updates.")
    bc_netid = _Bits(4, 0, _U32, "LINK_CONFIG: the cluster id (netid).")
    destport = _Bits(5, 0, _U32, "Destination port (multicast: 0).")
    session = _Bits(5, 16, 0xFFFF, "LINK_PROTOCOL: the sender's link session.")
    bc_ack_invalid = _Bits(5, 14, 1, "``bcast_ack`` is not valid (sender's broadcast rcv link down).")
    peer_stopping = _Bits(5, 13, 1, "LINK_PROTOCOL RESET: the sender is going down.")
    redundant_link = _Bits(5, 12, 1, "LINK_PROTOCOL: the sender still has the node up.")
    bearer_id = _Bits(5, 9, 0x7, "LINK_PROTOCOL: sender's bearer id.")
    linkprio = _Bits(5, 4, 0x1F, "LINK_PROTOCOL: requested link priority (0 = no change).")
    net_plane = _Bits(5, 1, 0x7, "LINK_PROTOCOL: network plane, 0 = 'A'.")
    probe = _Bits(5, 0, 1, "LINK_PROTOCOL STATE: the sender wants a reply.")

    # -- words 6..14 -------------------------------------------------------------------------

    @property
    def orignode(self) -> int:
        """Word 6, or ``prevnode`` for 24-byte headers (``msg_orignode``)."""
        if len(self.w) <= 6:
            return self.w[3]
        return self.w[6]

    @orignode.setter
    def orignode(self, v: int) -> None:
        self.set_word(6, v)

    destnode = _Bits(7, 0, _U32, "Destination node.")
    nametype = _Bits(8, 0, _U32, "Service type of a named/multicast message.")
    bc_gap = _Bits(8, 0, 0x3FF, "LINK_PROTOCOL STATE: gap in broadcast reception.")
    nameinst = _Bits(9, 0, _U32, "Service instance (named) or range lower bound (multicast).")
    namelower = nameinst
    nameupper = _Bits(10, 0, _U32, "Range upper bound (multicast).")
    msgcnt = _Bits(9, 16, 0xFFFF, "MSG_BUNDLER: number of bundled messages.")
    conn_ack = _Bits(9, 16, 0xFFFF, "CONN_MANAGER: acknowledged messages/blocks.")
    link_tolerance = _Bits(9, 0, 0xFFFF, "LINK_PROTOCOL: requested tolerance in ms (0 = no change).")
    adv_win = _Bits(9, 0, 0xFFFF, "CONN_MANAGER: advertised window.")
    peer_net_hash = _Bits(13, 0, _U32, "LINK_CONFIG: peer-net hash (same-host detection).")
    sugg_node_addr = _Bits(14, 0, _U32, "LINK_CONFIG TRIAL_FAIL: suggested node address.")

    @property
    def max_pkt(self) -> int:
        """LINK_PROTOCOL RESET/ACTIVATE: the sender's MTU in bytes (stored divided by 4)."""
        return self.get_bits(9, 16, 0xFFFF) * 4

    @max_pkt.setter
    def max_pkt(self, v: int) -> None:
        self.set_bits(9, 16, 0xFFFF, v // 4)

    @property
    def importance(self) -> int:
        """``msg_importance``: data user, the carried importance of a fragment/bundle, or 4."""
        usr = self.user
        if usr <= CRITICAL_IMPORTANCE and not self.errcode:
            return usr
        if usr in (MSG_FRAGMENTER, MSG_BUNDLER):
            return self.get_bits(9, 0, 0x7)
        return SYSTEM_IMPORTANCE

    @importance.setter
    def importance(self, v: int) -> None:
        usr = self.user
        if usr in (MSG_FRAGMENTER, MSG_BUNDLER):
            self.set_bits(9, 0, 0x7, v)
        elif v < SYSTEM_IMPORTANCE:
            self.user = v
        else:
            raise LocalProtocolError(f"illegal importance {v} for user {usr}")


# --- fast paths ---------------------------------------------------------------------------


def peek(packet: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """``(user, hsize, size)`` from word 0 without validation beyond length.

    Raises :class:`RemoteProtocolError` if fewer than 4 bytes are given.
    """
    if len(packet) < 4:
        raise RemoteProtocolError(f"TIPC message too short: {len(packet)} bytes")
    w0 = _W0.unpack_from(packet, 0)[0]
    return (w0 >> 25) & 0xF, ((w0 >> 21) & 0xF) << 2, w0 & 0x1FFFF


def validate(packet: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """``tipc_msg_validate``: return ``(user, hsize, size)`` or raise RemoteProtocolError.

    ``len(packet)`` may exceed ``size`` (the kernel ignores trailing bytes, e.g. the filler
    of a link RESET used for MTU discovery).
    """
    n = len(packet)
    if n < MIN_H_SIZE:
        raise RemoteProtocolError(f"TIPC message too short: {n} bytes, need at least {MIN_H_SIZE}")
    w0 = _W0.unpack_from(packet, 0)[0]
    if w0 >> 29 != TIPC_VERSION:
        raise RemoteProtocolError(f"TIPC version {w0 >> 29} not supported (expected {TIPC_VERSION})")
    hsize = ((w0 >> 21) & 0xF) << 2
    size = w0 & 0x1FFFF
    if hsize < MIN_H_SIZE:
        raise RemoteProtocolError(f"TIPC header size {hsize} below minimum {MIN_H_SIZE}")
    if size < hsize:
        raise RemoteProtocolError(f"TIPC message size {size} smaller than its header ({hsize})")
    if size - hsize > MAX_USER_MSG_SIZE:
        raise RemoteProtocolError(f"TIPC message data {size - hsize} exceeds {MAX_USER_MSG_SIZE} bytes")
    if n < size:
        raise RemoteProtocolError(f"TIPC message truncated: header says {size} bytes, got {n}")
    return (w0 >> 25) & 0xF, hsize, size


class DataHeader(NamedTuple):
    """The fields of a payload message (users 0..3), decoded in one unpack.

    ``name_type``/``name_instance``/``name_upper`` are 0 when the header is too short to hold
    them; ``orig_node`` is ``prevnode`` for 24-byte headers (as ``msg_orignode``).
    """

    importance: int
    mtype: int
    errcode: int
    hsize: int
    size: int
    dest_droppable: int
    src_droppable: int
    syn: int
    reroute_cnt: int
    lookup_scope: int
    prevnode: int
    orig_port: int
    dest_port: int
    orig_node: int
    dest_node: int
    name_type: int
    name_instance: int
    name_upper: int


_H6 = struct.Struct(">6I")
_H8 = struct.Struct(">8I")
_H10 = struct.Struct(">10I")
_H11 = struct.Struct(">11I")


def data_header(packet: bytes | bytearray | memoryview) -> DataHeader:
    """Decode a payload message's header (hot path; one ``struct`` unpack).

    Validates like :func:`validate` and raises :class:`RemoteProtocolError` for malformed
    input. Does not check that the user is a data user; callers dispatch on :func:`peek`.
    """
    n = len(packet)
    if n < MIN_H_SIZE:
        raise RemoteProtocolError(f"TIPC message too short: {n} bytes, need at least {MIN_H_SIZE}")
    w0 = _W0.unpack_from(packet, 0)[0]
    hsize = ((w0 >> 21) & 0xF) << 2
    size = w0 & 0x1FFFF
    if w0 >> 29 != TIPC_VERSION or hsize < MIN_H_SIZE or size < hsize or n < size:
        validate(packet)  # raises with the precise reason
    if size - hsize > MAX_USER_MSG_SIZE:
        validate(packet)
    if hsize >= 44:
        w = _H11.unpack_from(packet, 0)
        orig_node, dest_node, ntype, ninst, nupper = w[6], w[7], w[8], w[9], w[10]
    elif hsize >= 40:
        w = _H10.unpack_from(packet, 0)
        orig_node, dest_node, ntype, ninst, nupper = w[6], w[7], w[8], w[9], 0
    elif hsize >= 32:
        w = _H8.unpack_from(packet, 0)
        orig_node, dest_node, ntype, ninst, nupper = w[6], w[7], 0, 0, 0
    else:
        w = _H6.unpack_from(packet, 0)
        orig_node, dest_node, ntype, ninst, nupper = w[3], 0, 0, 0, 0
    w1 = w[1]
    return DataHeader(
        (w0 >> 25) & 0xF,
        w1 >> 29,
        (w1 >> 25) & 0xF,
        hsize,
        size,
        (w0 >> 19) & 1,
        (w0 >> 18) & 1,
        (w0 >> 17) & 1,
        (w1 >> 21) & 0xF,
        (w1 >> 19) & 0x3,
        w[3],
        w[4],
        w[5],
        orig_node,
        dest_node,
        ntype,
        ninst,
        nupper,
    )


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
    if hsize == SHORT_H_SIZE:
        new_h = BASIC_H_SIZE
        words += [0, 0]
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
