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
from typing import NamedTuple

from ...errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "TIPC_VERSION",
    # users
    "LOW_IMPORTANCE",
    "MEDIUM_IMPORTANCE",
    "HIGH_IMPORTANCE",
    "CRITICAL_IMPORTANCE",
    "SYSTEM_IMPORTANCE",
    "BCAST_PROTOCOL",
    "MSG_BUNDLER",
    "LINK_PROTOCOL",
    "CONN_MANAGER",
    "GROUP_PROTOCOL",
    "TUNNEL_PROTOCOL",
    "NAME_DISTRIBUTOR",
    "MSG_FRAGMENTER",
    "LINK_CONFIG",
    "MSG_CRYPTO",
    # data message types
    "TIPC_CONN_MSG",
    "TIPC_MCAST_MSG",
    "TIPC_NAMED_MSG",
    "TIPC_DIRECT_MSG",
    "TIPC_GRP_MEMBER_EVT",
    "TIPC_GRP_BCAST_MSG",
    "TIPC_GRP_MCAST_MSG",
    "TIPC_GRP_UCAST_MSG",
    # internal message types
    "CONN_PROBE",
    "CONN_PROBE_REPLY",
    "CONN_ACK",
    "PUBLICATION",
    "WITHDRAWAL",
    "FIRST_FRAGMENT",
    "FRAGMENT",
    "LAST_FRAGMENT",
    "STATE_MSG",
    "RESET_MSG",
    "ACTIVATE_MSG",
    "SYNCH_MSG",
    "FAILOVER_MSG",
    "DSC_REQ_MSG",
    "DSC_RESP_MSG",
    "DSC_TRIAL_MSG",
    "DSC_TRIAL_FAIL_MSG",
    # sizes
    "SHORT_H_SIZE",
    "BASIC_H_SIZE",
    "NAMED_H_SIZE",
    "MCAST_H_SIZE",
    "GROUP_H_SIZE",
    "INT_H_SIZE",
    "MIN_H_SIZE",
    "MAX_H_SIZE",
    "LINK_CONFIG_H_SIZE",
    "NODE_ID_LEN",
    "MAX_USER_MSG_SIZE",
    "MAX_MSG_SIZE",
    "MAX_FORWARD_SIZE",
    "DISTR_ITEM_SIZE",
    # error codes
    "TIPC_OK",
    "TIPC_ERR_NO_NAME",
    "TIPC_ERR_NO_PORT",
    "TIPC_ERR_NO_NODE",
    "TIPC_ERR_OVERLOAD",
    "TIPC_CONN_SHUTDOWN",
    # capabilities
    "TIPC_SYN_BIT",
    "TIPC_BCAST_SYNCH",
    "TIPC_BCAST_STATE_NACK",
    "TIPC_BLOCK_FLOWCTL",
    "TIPC_BCAST_RCAST",
    "TIPC_NODE_ID128",
    "TIPC_LINK_PROTO_SEQNO",
    "TIPC_MCAST_RBCTL",
    "TIPC_GAP_ACK_BLOCK",
    "TIPC_TUNNEL_ENHANCED",
    "TIPC_NAGLE",
    "TIPC_NAMED_BCAST",
    "TIPC_NODE_CAPABILITIES",
    # API
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

TIPC_VERSION = 2

# --- users (word 0 bits 28..25) -------------------------------------------------------------
LOW_IMPORTANCE = 0
MEDIUM_IMPORTANCE = 1
HIGH_IMPORTANCE = 2
CRITICAL_IMPORTANCE = 3
SYSTEM_IMPORTANCE = 4  #: importance the kernel assigns to internal messages (not a user)
BCAST_PROTOCOL = 5
MSG_BUNDLER = 6
LINK_PROTOCOL = 7
CONN_MANAGER = 8
GROUP_PROTOCOL = 9
TUNNEL_PROTOCOL = 10
NAME_DISTRIBUTOR = 11
MSG_FRAGMENTER = 12
LINK_CONFIG = 13
MSG_CRYPTO = 14

# --- payload message types (word 1 bits 31..29) ---------------------------------------------
TIPC_CONN_MSG = 0
TIPC_MCAST_MSG = 1
TIPC_NAMED_MSG = 2
TIPC_DIRECT_MSG = 3
TIPC_GRP_MEMBER_EVT = 4
TIPC_GRP_BCAST_MSG = 5
TIPC_GRP_MCAST_MSG = 6
TIPC_GRP_UCAST_MSG = 7

# --- internal message types -----------------------------------------------------------------
CONN_PROBE = 0
CONN_PROBE_REPLY = 1
CONN_ACK = 2
PUBLICATION = 0
WITHDRAWAL = 1
FIRST_FRAGMENT = 0
FRAGMENT = 1
LAST_FRAGMENT = 2
STATE_MSG = 0
RESET_MSG = 1
ACTIVATE_MSG = 2
SYNCH_MSG = 0
FAILOVER_MSG = 1
DSC_REQ_MSG = 0
DSC_RESP_MSG = 1
DSC_TRIAL_MSG = 2
DSC_TRIAL_FAIL_MSG = 3

# --- sizes ----------------------------------------------------------------------------------
SHORT_H_SIZE = 24  #: in-cluster connection message (orignode = prevnode)
BASIC_H_SIZE = 32  #: direct message
NAMED_H_SIZE = 40  #: named (anycast) message
MCAST_H_SIZE = 44  #: multicast message
GROUP_H_SIZE = 44
INT_H_SIZE = 40  #: internal messages
MIN_H_SIZE = 24
MAX_H_SIZE = 60
LINK_CONFIG_H_SIZE = 60  #: discovery messages use the largest header
NODE_ID_LEN = 16
MAX_USER_MSG_SIZE = 66000  #: TIPC_MAX_USER_MSG_SIZE
MAX_MSG_SIZE = MAX_H_SIZE + MAX_USER_MSG_SIZE
MAX_FORWARD_SIZE = 1024  #: data returned with a rejected message (msg.c)
DISTR_ITEM_SIZE = 20  #: struct distr_item {type, lower, upper, port, key}

# --- error codes (uapi linux/tipc.h) --------------------------------------------------------
TIPC_OK = 0
TIPC_ERR_NO_NAME = 1
TIPC_ERR_NO_PORT = 2
TIPC_ERR_NO_NODE = 3
TIPC_ERR_OVERLOAD = 4
TIPC_CONN_SHUTDOWN = 5

# --- node capabilities (node.h), advertised in LINK_CONFIG word 1 bits 27..15 -----------
TIPC_SYN_BIT = 1 << 0
TIPC_BCAST_SYNCH = 1 << 1
TIPC_BCAST_STATE_NACK = 1 << 2
TIPC_BLOCK_FLOWCTL = 1 << 3
TIPC_BCAST_RCAST = 1 << 4
TIPC_NODE_ID128 = 1 << 5
TIPC_LINK_PROTO_SEQNO = 1 << 6
TIPC_MCAST_RBCTL = 1 << 7
TIPC_GAP_ACK_BLOCK = 1 << 8
TIPC_TUNNEL_ENHANCED = 1 << 9
TIPC_NAGLE = 1 << 10
TIPC_NAMED_BCAST = 1 << 11
TIPC_NODE_CAPABILITIES = 0xFFF  #: what a current kernel advertises (all of the above)

_U32 = 0xFFFF_FFFF
_WORDS = [struct.Struct(f">{n}I") for n in range(16)]  # _WORDS[n] packs n words
_W0 = struct.Struct(">I")


def is_data_user(user: int) -> bool:
    """``msg_isdata``: users 0..3 are payload messages of that importance."""
    return user <= CRITICAL_IMPORTANCE


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
        n = len(data)
        if n < MIN_H_SIZE:
            raise RemoteProtocolError(f"TIPC message too short: {n} bytes, need at least {MIN_H_SIZE}")
        w0 = _W0.unpack_from(data, 0)[0]
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

    @property
    def version(self) -> int:
        return self.w[0] >> 29

    @property
    def user(self) -> int:
        return (self.w[0] >> 25) & 0xF

    @user.setter
    def user(self, v: int) -> None:
        self.set_bits(0, 25, 0xF, v)

    @property
    def hsize(self) -> int:
        return ((self.w[0] >> 21) & 0xF) << 2

    @property
    def non_seq(self) -> int:
        return (self.w[0] >> 20) & 1

    @non_seq.setter
    def non_seq(self, v: int) -> None:
        self.set_bits(0, 20, 1, v)

    @property
    def dest_droppable(self) -> int:
        """Also ``keepalive`` on CONN_MANAGER messages."""
        return (self.w[0] >> 19) & 1

    @dest_droppable.setter
    def dest_droppable(self, v: int) -> None:
        self.set_bits(0, 19, 1, v)

    @property
    def src_droppable(self) -> int:
        """Also ``ack_required`` / ``nagle_ack`` / ``is_rcast`` depending on the user."""
        return (self.w[0] >> 18) & 1

    @src_droppable.setter
    def src_droppable(self, v: int) -> None:
        self.set_bits(0, 18, 1, v)

    @property
    def syn(self) -> int:
        return (self.w[0] >> 17) & 1

    @syn.setter
    def syn(self, v: int) -> None:
        self.set_bits(0, 17, 1, v)

    @property
    def size(self) -> int:
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

    @property
    def mtype(self) -> int:
        return self.w[1] >> 29

    @mtype.setter
    def mtype(self, v: int) -> None:
        self.set_bits(1, 29, 0x7, v)

    @property
    def errcode(self) -> int:
        return (self.w[1] >> 25) & 0xF

    @errcode.setter
    def errcode(self, v: int) -> None:
        self.set_bits(1, 25, 0xF, v)

    @property
    def reroute_cnt(self) -> int:
        return (self.w[1] >> 21) & 0xF

    @reroute_cnt.setter
    def reroute_cnt(self, v: int) -> None:
        self.set_bits(1, 21, 0xF, v)

    @property
    def lookup_scope(self) -> int:
        return (self.w[1] >> 19) & 0x3

    @lookup_scope.setter
    def lookup_scope(self, v: int) -> None:
        self.set_bits(1, 19, 0x3, v)

    @property
    def bcast_ack(self) -> int:
        return self.w[1] & 0xFFFF

    @bcast_ack.setter
    def bcast_ack(self, v: int) -> None:
        self.set_bits(1, 0, 0xFFFF, v)

    # internal reuse of word 1
    @property
    def seq_gap(self) -> int:
        """LINK_PROTOCOL STATE: number of missing packets after ``ack`` (a NACK)."""
        return (self.w[1] >> 16) & 0x1FFF

    @seq_gap.setter
    def seq_gap(self, v: int) -> None:
        self.set_bits(1, 16, 0x1FFF, v)

    @property
    def node_sig(self) -> int:
        """LINK_CONFIG: the sender's random 16-bit node signature."""
        return self.w[1] & 0xFFFF

    @node_sig.setter
    def node_sig(self, v: int) -> None:
        self.set_bits(1, 0, 0xFFFF, v)

    @property
    def capabilities(self) -> int:
        """LINK_CONFIG: node capability bits (13 bits at 27..15; bit 15 overlaps node_sig)."""
        return (self.w[1] >> 15) & 0x1FFF

    @capabilities.setter
    def capabilities(self, v: int) -> None:
        self.set_bits(1, 15, 0x1FFF, v)

    @property
    def bulk(self) -> int:
        """NAME_DISTRIBUTOR: part of the bulk dump sent at link-up."""
        return (self.w[1] >> 28) & 1

    @bulk.setter
    def bulk(self, v: int) -> None:
        self.set_bits(1, 28, 1, v)

    @property
    def last_bulk(self) -> int:
        return (self.w[1] >> 27) & 1

    @last_bulk.setter
    def last_bulk(self, v: int) -> None:
        self.set_bits(1, 27, 1, v)

    @property
    def non_legacy(self) -> int:
        """NAME_DISTRIBUTOR: sender numbers its updates (``named_seqno``)."""
        return (self.w[1] >> 26) & 1

    @non_legacy.setter
    def non_legacy(self, v: int) -> None:
        self.set_bits(1, 26, 1, v)

    @property
    def dest_session_valid(self) -> int:
        """LINK_PROTOCOL ACTIVATE: ``dest_session`` is meaningful."""
        return (self.w[1] >> 16) & 1

    @dest_session_valid.setter
    def dest_session_valid(self, v: int) -> None:
        self.set_bits(1, 16, 1, v)

    @property
    def dest_session(self) -> int:
        """LINK_PROTOCOL ACTIVATE: the peer session this ACTIVATE answers (word 1 low half)."""
        return self.w[1] & 0xFFFF

    @dest_session.setter
    def dest_session(self, v: int) -> None:
        self.set_bits(1, 0, 0xFFFF, v)

    # -- word 2 ------------------------------------------------------------------------------

    @property
    def ack(self) -> int:
        return self.w[2] >> 16

    @ack.setter
    def ack(self, v: int) -> None:
        self.set_bits(2, 16, 0xFFFF, v)

    @property
    def seqno(self) -> int:
        return self.w[2] & 0xFFFF

    @seqno.setter
    def seqno(self, v: int) -> None:
        self.set_bits(2, 0, 0xFFFF, v)

    @property
    def dest_domain(self) -> int:
        """LINK_CONFIG: node the message is for (0 = anyone)."""
        return self.w[2]

    @dest_domain.setter
    def dest_domain(self, v: int) -> None:
        self.w[2] = v & _U32

    # -- word 3 ------------------------------------------------------------------------------

    @property
    def prevnode(self) -> int:
        return self.w[3]

    @prevnode.setter
    def prevnode(self, v: int) -> None:
        self.w[3] = v & _U32

    # -- word 4 ------------------------------------------------------------------------------

    @property
    def origport(self) -> int:
        return self.w[4]

    @origport.setter
    def origport(self, v: int) -> None:
        self.w[4] = v & _U32

    @property
    def last_bcast(self) -> int:
        """LINK_PROTOCOL: the sender's last sent broadcast seqno (``bc_snd_nxt - 1``)."""
        return self.w[4] >> 16

    @last_bcast.setter
    def last_bcast(self, v: int) -> None:
        self.set_bits(4, 16, 0xFFFF, v)

    @property
    def fragm_no(self) -> int:
        """MSG_FRAGMENTER: 1-based fragment number."""
        return self.w[4] >> 16

    @fragm_no.setter
    def fragm_no(self, v: int) -> None:
        self.set_bits(4, 16, 0xFFFF, v)

    @property
    def next_sent(self) -> int:
        """LINK_PROTOCOL: the sender's ``snd_nxt``."""
        return self.w[4] & 0xFFFF

    @next_sent.setter
    def next_sent(self, v: int) -> None:
        self.set_bits(4, 0, 0xFFFF, v)

    @property
    def nof_fragms(self) -> int:
        """MSG_FRAGMENTER (tipc_msg_fragment only): number of fragments."""
        return self.w[4] & 0xFFFF

    @nof_fragms.setter
    def nof_fragms(self, v: int) -> None:
        self.set_bits(4, 0, 0xFFFF, v)

    @property
    def named_seqno(self) -> int:
        """NAME_DISTRIBUTOR: per-sender sequence number of name updates."""
        return self.w[4] & 0xFFFF

    @named_seqno.setter
    def named_seqno(self, v: int) -> None:
        self.set_bits(4, 0, 0xFFFF, v)

    @property
    def bc_netid(self) -> int:
        """LINK_CONFIG: the cluster id (netid)."""
        return self.w[4]

    @bc_netid.setter
    def bc_netid(self, v: int) -> None:
        self.w[4] = v & _U32

    # -- word 5 ------------------------------------------------------------------------------

    @property
    def destport(self) -> int:
        return self.w[5]

    @destport.setter
    def destport(self, v: int) -> None:
        self.w[5] = v & _U32

    @property
    def session(self) -> int:
        return self.w[5] >> 16

    @session.setter
    def session(self, v: int) -> None:
        self.set_bits(5, 16, 0xFFFF, v)

    @property
    def bc_ack_invalid(self) -> int:
        return (self.w[5] >> 14) & 1

    @bc_ack_invalid.setter
    def bc_ack_invalid(self, v: int) -> None:
        self.set_bits(5, 14, 1, v)

    @property
    def peer_stopping(self) -> int:
        return (self.w[5] >> 13) & 1

    @peer_stopping.setter
    def peer_stopping(self, v: int) -> None:
        self.set_bits(5, 13, 1, v)

    @property
    def redundant_link(self) -> int:
        return (self.w[5] >> 12) & 1

    @redundant_link.setter
    def redundant_link(self, v: int) -> None:
        self.set_bits(5, 12, 1, v)

    @property
    def bearer_id(self) -> int:
        return (self.w[5] >> 9) & 0x7

    @bearer_id.setter
    def bearer_id(self, v: int) -> None:
        self.set_bits(5, 9, 0x7, v)

    @property
    def linkprio(self) -> int:
        return (self.w[5] >> 4) & 0x1F

    @linkprio.setter
    def linkprio(self, v: int) -> None:
        self.set_bits(5, 4, 0x1F, v)

    @property
    def net_plane(self) -> int:
        """0 = 'A', 1 = 'B', ..."""
        return (self.w[5] >> 1) & 0x7

    @net_plane.setter
    def net_plane(self, v: int) -> None:
        self.set_bits(5, 1, 0x7, v)

    @property
    def probe(self) -> int:
        return self.w[5] & 1

    @probe.setter
    def probe(self, v: int) -> None:
        self.set_bits(5, 0, 1, v)

    # -- words 6..10 -------------------------------------------------------------------------

    @property
    def orignode(self) -> int:
        """Word 6, or ``prevnode`` for 24-byte headers (``msg_orignode``)."""
        if len(self.w) <= 6:
            return self.w[3]
        return self.w[6]

    @orignode.setter
    def orignode(self, v: int) -> None:
        self.set_word(6, v)

    @property
    def destnode(self) -> int:
        return self.get_word(7)

    @destnode.setter
    def destnode(self, v: int) -> None:
        self.set_word(7, v)

    @property
    def nametype(self) -> int:
        return self.get_word(8)

    @nametype.setter
    def nametype(self, v: int) -> None:
        self.set_word(8, v)

    @property
    def bc_gap(self) -> int:
        """LINK_PROTOCOL: gap in the broadcast link reception."""
        return self.get_bits(8, 0, 0x3FF)

    @bc_gap.setter
    def bc_gap(self, v: int) -> None:
        self.set_bits(8, 0, 0x3FF, v)

    @property
    def nameinst(self) -> int:
        """Also ``namelower``."""
        return self.get_word(9)

    @nameinst.setter
    def nameinst(self, v: int) -> None:
        self.set_word(9, v)

    namelower = nameinst

    @property
    def nameupper(self) -> int:
        return self.get_word(10)

    @nameupper.setter
    def nameupper(self, v: int) -> None:
        self.set_word(10, v)

    @property
    def msgcnt(self) -> int:
        """MSG_BUNDLER: number of bundled messages."""
        return self.get_bits(9, 16, 0xFFFF)

    @msgcnt.setter
    def msgcnt(self, v: int) -> None:
        self.set_bits(9, 16, 0xFFFF, v)

    @property
    def max_pkt(self) -> int:
        """LINK_PROTOCOL: the sender's MTU in bytes (stored divided by 4)."""
        return self.get_bits(9, 16, 0xFFFF) * 4

    @max_pkt.setter
    def max_pkt(self, v: int) -> None:
        self.set_bits(9, 16, 0xFFFF, v // 4)

    @property
    def conn_ack(self) -> int:
        return self.get_bits(9, 16, 0xFFFF)

    @conn_ack.setter
    def conn_ack(self, v: int) -> None:
        self.set_bits(9, 16, 0xFFFF, v)

    @property
    def link_tolerance(self) -> int:
        """LINK_PROTOCOL: requested tolerance in ms (0 = no change)."""
        return self.get_bits(9, 0, 0xFFFF)

    @link_tolerance.setter
    def link_tolerance(self, v: int) -> None:
        self.set_bits(9, 0, 0xFFFF, v)

    @property
    def adv_win(self) -> int:
        """CONN_MANAGER / connection: advertised window."""
        return self.get_bits(9, 0, 0xFFFF)

    @adv_win.setter
    def adv_win(self, v: int) -> None:
        self.set_bits(9, 0, 0xFFFF, v)

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

    # -- words 13..14 (LINK_CONFIG) ----------------------------------------------------------

    @property
    def peer_net_hash(self) -> int:
        return self.get_word(13)

    @peer_net_hash.setter
    def peer_net_hash(self, v: int) -> None:
        self.set_word(13, v)

    @property
    def sugg_node_addr(self) -> int:
        return self.get_word(14)

    @sugg_node_addr.setter
    def sugg_node_addr(self, v: int) -> None:
        self.set_word(14, v)


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
