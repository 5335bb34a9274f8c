"""Fragmentation, reassembly and bundles (``net/tipc/msg.c``), pure.

A message longer than the link's packet limit travels as MSG_FRAGMENTER packets, each a
40-byte internal header followed by the next slice of the *whole* original message (its
header included), exactly as ``tipc_msg_build`` cuts it::

    FIRST_FRAGMENT (fragm_no 1) | FRAGMENT (2) | ... | LAST_FRAGMENT (n)

The fragment header copies ``prevnode``/``destnode`` from the message and carries its
importance in word 9 bits 0..2. Fragments travel on one reliable link in order, so the
receiver keeps a single reassembly buffer per link (``tipc_buf_append``); an out-of-place
fragment means the stream is corrupt, and the kernel resets the link.

A MSG_BUNDLER packet carries several small messages back to back, each padded to a 4-byte
boundary (``tipc_msg_bundle``/``tipc_msg_extract``); :func:`unbundle` splits one.
:func:`bundle_parts` builds one from messages known to be well formed (the link's own
bundling, :meth:`.link.Link.flush_bundle`); :func:`bundle` checks them first.
"""

from __future__ import annotations

import struct

from ...errors import LocalProtocolError, RemoteProtocolError
from .msg import (
    FIRST_FRAGMENT,
    FRAGMENT,
    INT_H_SIZE,
    LAST_FRAGMENT,
    MAX_MSG_SIZE,
    MIN_H_SIZE,
    MSG_BUNDLER,
    MSG_FRAGMENTER,
    Header,
    msg_size,
    msg_type,
    validate,
)

__all__ = ["fragment", "Reassembler", "bundle", "bundle_parts", "unbundle"]

_W = struct.Struct(">I")
# The 40-byte MSG_BUNDLER header as tipc_msg_init + tipc_msg_try_bundle leave it: words 0, 3
# (prevnode), 6 (orignode), 7 (destnode) and 9 (msgcnt << 16 | importance); seqno and acks
# (words 1 and 2) are written when the link sends it.
_BUNDLE_HDR = struct.Struct(">I8xI8xII4xI")
_BUNDLE_W0 = (2 << 29) | (MSG_BUNDLER << 25) | ((INT_H_SIZE >> 2) << 21)


def _align4(n: int) -> int:
    return (n + 3) & ~3


def fragment(msg: bytes, pktmax: int) -> list[bytes]:
    """Cut a complete message into packets of at most ``pktmax`` bytes.

    Returns ``[msg]`` unchanged when it fits. Otherwise MSG_FRAGMENTER packets laid out as
    ``tipc_msg_build`` does (the link fills in seqno/ack later). Raises
    :class:`LocalProtocolError` if ``msg`` is malformed or ``pktmax`` leaves no room.
    """
    user, hsize, size = validate(msg)
    if size != len(msg):
        raise LocalProtocolError(f"message length {len(msg)} differs from its header size {size}")
    if size <= pktmax:
        return [msg]
    chunk = pktmax - INT_H_SIZE
    if chunk <= 0:
        raise LocalProtocolError(f"packet limit {pktmax} leaves no room after the fragment header")
    inner = Header.decode(msg)
    h = Header(MSG_FRAGMENTER, FIRST_FRAGMENT, INT_H_SIZE, own_node=inner.prevnode, dest_node=inner.destnode)
    h.importance = inner.importance
    out: list[bytes] = []
    pos = 0
    no = 1
    while pos < size:
        part = msg[pos : pos + chunk]
        pos += len(part)
        h.mtype = FIRST_FRAGMENT if no == 1 else (LAST_FRAGMENT if pos >= size else FRAGMENT)
        h.fragm_no = no
        out.append(h.build(part))
        no += 1
    return out


class Reassembler:
    """One in-progress fragmented message (a link's ``reasm_buf``).

    :meth:`append` takes each MSG_FRAGMENTER packet in link order and returns the complete
    message after the LAST_FRAGMENT. A fragment out of place (FIRST while one is open,
    FRAGMENT/LAST with none open), a message growing past the TIPC maximum, or a
    reassembled message that fails validation raises :class:`RemoteProtocolError` and
    discards the partial message.
    """

    __slots__ = ("_parts", "_len")

    def __init__(self) -> None:
        self._parts: list[bytes] | None = None
        self._len = 0

    @property
    def in_progress(self) -> bool:
        return self._parts is not None

    def reset(self) -> None:
        self._parts = None
        self._len = 0

    def append(self, packet: bytes) -> bytes | None:
        _user, hsize, size = validate(packet)
        mtype = msg_type(_W.unpack_from(packet, 4)[0])
        data = packet[hsize:size]
        if mtype == FIRST_FRAGMENT:
            if self._parts is not None:
                self.reset()
                raise RemoteProtocolError("FIRST_FRAGMENT while a fragmented message is still open")
            self._parts = [data]
            self._len = len(data)
            return None
        if self._parts is None:
            raise RemoteProtocolError(f"fragment of type {mtype} without a FIRST_FRAGMENT")
        self._parts.append(data)
        self._len += len(data)
        if self._len > MAX_MSG_SIZE:
            self.reset()
            raise RemoteProtocolError(f"reassembled message exceeds {MAX_MSG_SIZE} bytes")
        if mtype == FRAGMENT:
            return None
        if mtype != LAST_FRAGMENT:
            self.reset()
            raise RemoteProtocolError(f"unknown fragment type {mtype}")
        msg = b"".join(self._parts)
        self.reset()
        _u, _h, msize = validate(msg)  # raises RemoteProtocolError if the result is malformed
        return msg if msize == len(msg) else msg[:msize]


def bundle(msgs: list[bytes], *, prevnode: int, destnode: int, importance: int = 0) -> bytes:
    """A MSG_BUNDLER packet carrying ``msgs`` (``tipc_msg_try_bundle`` layout).

    Raises :class:`LocalProtocolError` if there is no message or one is malformed."""
    if not msgs:
        raise LocalProtocolError("a bundle needs at least one message")
    h = Header(MSG_BUNDLER, 0, INT_H_SIZE, own_node=prevnode, dest_node=destnode)
    h.importance = importance
    h.msgcnt = len(msgs)
    body = bytearray()
    for m in msgs:
        validate(m)
        body += b"\0" * (_align4(len(body)) - len(body))
        body += m
    return h.build(body)


def bundle_parts(msgs: list[bytes], *, prevnode: int, destnode: int, importance: int) -> tuple[bytes, bytes]:
    """``(header, body)`` of the MSG_BUNDLER packet :func:`bundle` would build from ``msgs``.

    For the link's own bundling: the messages are well formed by construction, so none is
    validated, and the body is one join (each message but the last padded to 4 bytes, as
    ``tipc_msg_bundle`` appends them).
    """
    padded = [m + b"\0" * (-len(m) & 3) for m in msgs[:-1]]
    padded.append(msgs[-1])
    body = b"".join(padded)
    hdr = _BUNDLE_HDR.pack(_BUNDLE_W0 | (INT_H_SIZE + len(body)), prevnode, prevnode, destnode,
                           (len(msgs) << 16) | importance)  # fmt: skip
    return hdr, body


def unbundle(packet: bytes) -> list[bytes]:
    """The messages inside a MSG_BUNDLER packet, as ``tipc_msg_extract`` walks them.

    Like the kernel, stops at the first inner message that does not fit or fails
    validation and keeps the ones before it. Raises :class:`RemoteProtocolError` if the
    bundle itself is malformed or holds no valid message at all.
    """
    _user, hsize, size = validate(packet)
    data = memoryview(packet)[hsize:size]
    out: list[bytes] = []
    pos = 0
    dsz = len(data)
    while pos <= dsz - MIN_H_SIZE:
        isize = msg_size(_W.unpack_from(data, pos)[0])
        if isize < MIN_H_SIZE or pos + isize > dsz:
            break
        inner = bytes(data[pos : pos + isize])
        try:
            validate(inner)
        except RemoteProtocolError:
            break
        out.append(inner)
        pos += _align4(isize)
    if not out and dsz:
        raise RemoteProtocolError("bundle holds no valid message")
    return out
