"""The TIPC v2 header as words with the kernel's field accessors, and the hot-path decoders.

Part of :mod:`tipcrpc.transport.user.msg` (which re-exports everything here); see there.
"""

from __future__ import annotations

import struct
from typing import NamedTuple, overload

from ...errors import LocalProtocolError, RemoteProtocolError
from .msgconst import (
    CRITICAL_IMPORTANCE,
    INT_H_SIZE,
    MAX_H_SIZE,
    MAX_USER_MSG_SIZE,
    MIN_H_SIZE,
    MSG_BUNDLER,
    MSG_FRAGMENTER,
    SHORT_H_SIZE,
    SYSTEM_IMPORTANCE,
    TIPC_VERSION,
)

__all__ = [
    "Header",
    "DataHeader",
    "data_header",
    "peek",
    "validate",
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
    "link_rx_words",
    "payload_words",
    "DATA_WORDS_SIZE",
]

_U32 = 0xFFFF_FFFF
_WORDS = [struct.Struct(f">{n}I") for n in range(16)]  # _WORDS[n] packs n words
_W0 = struct.Struct(">I")


def is_data_user(user: int) -> bool:
    """``msg_isdata``: users 0..3 are payload messages of that importance."""
    return user <= CRITICAL_IMPORTANCE


# --- word accessors -----------------------------------------------------------------------
#
# The kernel's msg.h accessors for the fields the per-packet paths read, on a header word
# already unpacked (``w0`` = word 0, ...). Every module reads header bits through these or
# through the decoders below; only this module knows where a field sits in its word.


def msg_version(w0: int) -> int:
    """``msg_version``: word 0, bits 31..29."""
    return w0 >> 29


def msg_user(w0: int) -> int:
    """``msg_user``: word 0, bits 28..25 (data importance 0..3 or an internal user)."""
    return (w0 >> 25) & 0xF


def msg_hdr_sz(w0: int) -> int:
    """``msg_hdr_sz``: word 0, bits 24..21, in words; returned in bytes."""
    return ((w0 >> 21) & 0xF) << 2


def msg_size(w0: int) -> int:
    """``msg_size``: word 0, bits 16..0, the whole message in bytes."""
    return w0 & 0x1FFFF


def msg_non_seq(w0: int) -> int:
    """``msg_non_seq``: word 0, bit 20 (discovery and broadcast-link packets)."""
    return (w0 >> 20) & 1


def msg_type(w1: int) -> int:
    """``msg_type``: word 1, bits 31..29."""
    return w1 >> 29


def msg_errcode(w1: int) -> int:
    """``msg_errcode``: word 1, bits 28..25."""
    return (w1 >> 25) & 0xF


def msg_ack(w2: int) -> int:
    """``msg_ack``: word 2, bits 31..16."""
    return w2 >> 16


def msg_seqno(w2: int) -> int:
    """``msg_seqno``: word 2, bits 15..0."""
    return w2 & 0xFFFF


def buf_user(m: bytes | bytearray | memoryview) -> int:
    """``msg_user`` of a message buffer (reads byte 0 only; 255 for an empty buffer)."""
    return (m[0] >> 1) & 0xF if m else 255


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

_RX_WORDS = struct.Struct(">I4xII12xI")  # words 0, 2, 3 and 7
_RX_WORDS_SHORT = struct.Struct(">I4xII")  # words 0, 2 and 3, for 24..31-byte packets
_NON_SEQ_BIT = 1 << 20


def link_rx_words(packet: bytes) -> tuple[int, int, int, int, int] | None:
    """What ``tipc_rcv`` reads of a packet, after ``tipc_msg_validate``'s checks, in one unpack.

    Returns ``(user, non_seq, w2, prevnode, destnode)`` — ``w2`` holds ``msg_ack`` and
    ``msg_seqno``; ``destnode`` is -1 for a 24-byte header (which has none) and for a
    25..31-byte header (malformed beyond a short header: the caller drops it) — or ``None``
    if the packet is malformed (short, wrong version, bad sizes).
    """
    n = len(packet)
    if n >= 32:
        w0, w2, w3, w7 = _RX_WORDS.unpack_from(packet, 0)
    elif n >= MIN_H_SIZE:
        w0, w2, w3 = _RX_WORDS_SHORT.unpack_from(packet, 0)
        w7 = -1
    else:
        return None
    hsize = ((w0 >> 21) & 0xF) << 2
    size = w0 & 0x1FFFF
    if w0 >> 29 != TIPC_VERSION or hsize < MIN_H_SIZE or size < hsize or n < size or size - hsize > MAX_USER_MSG_SIZE:
        return None
    if hsize < 32:
        # 24: a short header (no destnode); 28: neither a short header nor one with destnode
        w7 = -1 if hsize == SHORT_H_SIZE else -2
    return (w0 >> 25) & 0xF, w0 & _NON_SEQ_BIT, w2, w3, w7


#: Bytes :func:`payload_words` needs: a 32-byte (basic) header.
DATA_WORDS_SIZE = 32
_DATA_WORDS = struct.Struct(">II8xIII")  # words 0, 1, 4 (orig port), 5 (dest port), 6 (orig node)
_NAME_WORDS = struct.Struct(">II")  # words 8, 9: a named message's type and instance
# A direct or named message with no error code, in two masked compares: word 0's user
# (28..25) <= 3 means bits 28..27 clear, hsize (24..21, in words) >= 8 means bit 24 set;
# word 1's type (31..29) is DIRECT or NAMED and its errcode (28..25) is 0.
_W0_MASK, _W0_DATA = 0x19000000, 0x01000000
_W1_MASK = 0xFE000000
_W1_DIRECT = 3 << 29  # TIPC_DIRECT_MSG
_W1_NAMED = 2 << 29  # TIPC_NAMED_MSG


def payload_words(m: bytes) -> tuple[int, int, int, int, int, int, int] | None:
    """The routing fields of an error-free direct or named data message, in one unpack.

    ``m`` is a complete message (validated by the link) of at least :data:`DATA_WORDS_SIZE`
    bytes. Returns ``(hsize, size, orig_port, dest_port, orig_node, name_type,
    name_instance)`` — the name fields are -1 for a direct message — or ``None`` for any
    other message (multicast, connection, returned with an error code, internal users):
    those take the general path through :func:`data_header`.
    """
    w0, w1, orig_port, dest_port, orig_node = _DATA_WORDS.unpack_from(m, 0)
    if w0 & _W0_MASK != _W0_DATA:
        return None
    hsize = ((w0 >> 21) & 0xF) << 2
    w1 &= _W1_MASK
    if w1 == _W1_DIRECT:
        return hsize, w0 & 0x1FFFF, orig_port, dest_port, orig_node, -1, -1
    if w1 == _W1_NAMED and hsize >= 40:
        t, i = _NAME_WORDS.unpack_from(m, 32)
        return hsize, w0 & 0x1FFFF, orig_port, dest_port, orig_node, t, i
    return None


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


