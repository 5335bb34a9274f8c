"""The cluster key: TIPC's AEAD packet format (``net/tipc/crypto.c``), pure.

With a cluster key every UDP datagram a node sends is an *encryption message*, exactly as a
Linux kernel with ``tipc node set key KEY algname "gcm(aes)"`` sends it::

    w0      version 7 | user | destined | tx key | rx active | keepalive | master | no-key
    w1-w2   64-bit sequence number (big-endian)
    w3      prevnode (4 bytes), or for LINK_CONFIG the sender's 16-byte node id
    ...     AES-GCM ciphertext of the whole TIPC packet (padded to 4 bytes)
    ...     16-byte authentication tag

The key the user gives is ``AES key || 4-byte salt`` (20, 28 or 36 bytes: AES-128/192/256),
as the kernel takes it. The 12-byte GCM nonce is ``(salt XOR bytes 12..15 of the header) ||
sequence number`` (cluster-key mode), the additional authenticated data is the encryption
header itself. So discovery, link set-up and all traffic are authenticated and encrypted; a
node without the key — or with another one — can neither join nor inject, and its packets
are dropped and counted.

Deliberate differences from the kernel (both still interoperate):

* **Replay protection**: after a packet authenticates, its sequence number must be new for
  its sender (a sliding window of :data:`REPLAY_WINDOW` numbers per sender node, kept apart
  for discovery, keyed by node id, and for link traffic, keyed by node address); the kernel
  has no such check. The shell forgets a sender's window when its link goes down, so a peer
  restarting with the same identity (whose numbers start again) is admitted after that.
* **Sequence numbers start high**: the shell passes a starting number derived from the wall
  clock (microseconds), so a node restarted with the same identity and key does not reuse a
  GCM nonce (the kernel starts every key at 1 — a restarted kernel node reuses nonces).

Only the cluster-key mode of the kernel is implemented: one key for everybody, sent under
key slot 1; no per-node keys, no master key and no key exchange (``MSG_CRYPTO``), no
rekeying. Received packets are tried with the one key whatever their slot.

Needs the ``cryptography`` package (``pip install 'tipcrpc[crypto]'``): the standard library
has no AES. It is imported only when a key is configured.
"""

from __future__ import annotations

import itertools
import struct
from typing import Any, Callable

from ...errors import TransportUnavailable, UsageError

__all__ = [
    "ClusterKey",
    "KeyedBearer",
    "parse_cluster_key",
    "TIPC_EVERSION",
    "EHDR_SIZE",
    "EHDR_CFG_SIZE",
    "TAG_SIZE",
    "REPLAY_WINDOW",
]

TIPC_EVERSION = 7
TAG_SIZE = 16
SALT_SIZE = 4
EHDR_SIZE = 16  #: w0, 64-bit seqno, prevnode
EHDR_CFG_SIZE = 28  #: w0, 64-bit seqno, 16-byte node id (LINK_CONFIG)
KEY_SLOT = 1  #: the kernel's first cluster key goes to slot 1 (pending, then active)
REPLAY_WINDOW = 1024  #: sequence numbers accepted behind the highest one seen per sender
AES_KEY_SIZES = (16, 24, 32)

_LINK_PROTOCOL = 7
_LINK_CONFIG = 13
_STATE_MSG = 0
_SEQ = struct.Struct(">Q")
_W0 = struct.Struct(">I")
_STAT_KEYS = ("crypto_tx", "crypto_rx_ok", "crypto_rx_unkeyed", "crypto_rx_malformed", "crypto_rx_badauth",
              "crypto_rx_replayed")  # fmt: skip


def parse_cluster_key(key: str | bytes) -> bytes:
    """The key bytes for ``key`` as ``tipc node set key`` reads it.

    A string starting with ``0x`` is hexadecimal; any other string is taken as its UTF-8
    bytes; ``bytes`` are used as they are. The result must be 20, 28 or 36 bytes long: an
    AES-128/192/256 key followed by a 4-byte salt. Raises :class:`UsageError` otherwise.
    """
    if isinstance(key, str):
        text = key.strip()
        if text[:2].lower() == "0x":
            try:
                raw = bytes.fromhex(text[2:])
            except ValueError:
                raise UsageError("the cluster key starts with 0x but is not hexadecimal") from None
        else:
            raw = text.encode("utf-8")
    elif isinstance(key, (bytes, bytearray)):
        raw = bytes(key)
    else:
        raise UsageError(f"the cluster key must be str or bytes, got {type(key).__name__}")
    if len(raw) - SALT_SIZE not in AES_KEY_SIZES:
        raise UsageError(
            f"the cluster key is {len(raw)} bytes; it must be 20, 28 or 36 (an AES-128/192/256 key and a "
            "4-byte salt, as for `tipc node set key`), e.g. 0x followed by 40 hex digits"
        )
    return raw


def _aesgcm(key: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise TransportUnavailable(
            "a cluster key needs the 'cryptography' package (AES-GCM): pip install 'tipcrpc[crypto]'"
        ) from None
    return AESGCM(key)


class _Window:
    """Sliding replay window of one sender: the highest number seen and a bitmap below it."""

    __slots__ = ("top", "bits")

    def __init__(self) -> None:
        self.top = 0
        self.bits = 0  # bit i set: number top - i was seen

    def accept(self, seq: int) -> bool:
        if seq > self.top:
            shift = seq - self.top
            self.bits = ((self.bits << shift) | 1) & ((1 << REPLAY_WINDOW) - 1) if shift < REPLAY_WINDOW else 1
            self.top = seq
            return True
        off = self.top - seq
        if off >= REPLAY_WINDOW or (self.bits >> off) & 1:
            return False
        self.bits |= 1 << off
        return True


class ClusterKey:
    """Seal and open packets with one cluster key (see the module docstring).

    ``node_id`` is this node's 16-byte id (written into sealed LINK_CONFIG messages);
    ``first_seqno`` the sequence number of the first packet sealed (the shell derives it from
    the clock). :meth:`seal` may be called from any thread (the keepalive thread too).
    """

    def __init__(self, key: str | bytes, *, node_id: bytes, first_seqno: int = 1) -> None:
        key = parse_cluster_key(key)
        self._aead = _aesgcm(key[:-SALT_SIZE])
        self._salt = key[-SALT_SIZE:]
        self._node_id = node_id.ljust(16, b"\0")[:16]
        self._seq = itertools.count(max(1, first_seqno))  # next() is atomic under the GIL
        self._windows: dict[bytes, _Window] = {}
        self.stats: dict[str, int] = dict.fromkeys(_STAT_KEYS, 0)

    def _nonce(self, sender: bytes, seq: bytes) -> bytes:
        s = self._salt
        return bytes((s[0] ^ sender[0], s[1] ^ sender[1], s[2] ^ sender[2], s[3] ^ sender[3])) + seq

    def seal(self, packet: bytes) -> bytes:
        """The encryption message carrying ``packet`` (a complete TIPC v2 packet)."""
        w0 = _W0.unpack_from(packet, 0)[0] if len(packet) >= 4 else 0
        user = (w0 >> 25) & 0xF
        keepalive = 0
        if user == _LINK_CONFIG:
            sender = self._node_id
        else:
            sender = packet[12:16] if len(packet) >= 16 else bytes(4)
            if user == _LINK_PROTOCOL and len(packet) >= 8 and (_W0.unpack_from(packet, 4)[0] >> 29) == _STATE_MSG:
                keepalive = (w0 >> 19) & 1  # msg_is_keepalive: the STATE is a probe or probe reply
            else:
                user = 0
        seq = _SEQ.pack(next(self._seq))
        b0 = (TIPC_EVERSION << 5) | (user << 1)  # destined = 0: cluster key, any receiver
        b1 = (KEY_SLOT << 6) | (keepalive << 3)
        ehdr = bytes((b0, b1, 0, 0)) + seq + sender
        pad = -len(packet) % 4  # the kernel encrypts the message padded to 4 bytes
        if pad:
            packet += bytes(pad)
        self.stats["crypto_tx"] += 1
        sealed: bytes = self._aead.encrypt(self._nonce(sender, seq), packet, ehdr)
        return ehdr + sealed

    def open(self, data: bytes) -> bytes | None:
        """The TIPC packet inside encryption message ``data``, or ``None`` (dropped, counted)."""
        st = self.stats
        if not data or data[0] >> 5 != TIPC_EVERSION:
            st["crypto_rx_unkeyed"] += 1  # a plain TIPC packet (version 2) or garbage
            return None
        hsize = EHDR_CFG_SIZE if (data[0] >> 1) & 0xF == _LINK_CONFIG else EHDR_SIZE
        if len(data) <= hsize + TAG_SIZE:
            st["crypto_rx_malformed"] += 1
            return None
        ehdr = data[:hsize]
        sender = data[12:hsize]
        try:
            packet: bytes = self._aead.decrypt(self._nonce(sender, data[4:12]), data[hsize:], ehdr)
        except Exception:  # cryptography's InvalidTag: wrong key, forged or corrupted
            st["crypto_rx_badauth"] += 1
            return None
        win = self._windows.get(sender)
        if win is None:
            win = self._windows[sender] = _Window()
        if not win.accept(_SEQ.unpack_from(data, 4)[0]):
            st["crypto_rx_replayed"] += 1
            return None
        if len(packet) >= 4:  # drop the padding: the header knows the real size
            size = _W0.unpack_from(packet, 0)[0] & 0x1FFFF
            if size < len(packet):
                packet = packet[:size]
        st["crypto_rx_ok"] += 1
        return packet

    def forget(self, addr: int, node_id: bytes | None = None) -> None:
        """Forget the replay windows of a sender whose link went down (it may restart)."""
        self._windows.pop(addr.to_bytes(4, "big"), None)
        if node_id is not None:
            self._windows.pop(node_id.ljust(16, b"\0")[:16], None)


class KeyedBearer:
    """A bearer wrapper that seals every packet sent and opens every datagram received.

    Wraps the real bearer (:class:`~.udp_media.UdpMedia` or a test bearer); the inner
    bearer's packet callback must be :meth:`receive`, and :attr:`on_packet` receives the
    opened TIPC packets. Everything else is the inner bearer's.
    """

    def __init__(self, inner: Any, key: ClusterKey, on_packet: Callable[[bytes, Any], None] | None = None) -> None:
        self.inner = inner
        self.key = key
        self.on_packet = on_packet
        self.thread_safe_send = getattr(inner, "thread_safe_send", False)

    @property
    def local(self) -> Any:
        return self.inner.local

    @property
    def stats(self) -> dict[str, int]:
        return {**self.inner.stats, **self.key.stats}

    def open(self, loop: Any) -> Any:
        return self.inner.open(loop)

    def send(self, dest: Any, data: bytes) -> None:
        self.inner.send(dest, self.key.seal(data))

    def send_parts(self, dest: Any, hdr: bytearray, body: bytes) -> None:
        # Defined here so that __getattr__ never hands out the inner bearer's send_parts,
        # which would send the packet unsealed: sealing needs the whole packet.
        hdr += body
        self.inner.send(dest, self.key.seal(bytes(hdr)))

    def receive(self, data: bytes, src: Any) -> None:
        packet = self.key.open(data)
        if packet is not None and self.on_packet is not None:
            self.on_packet(packet, src)

    def forget_peer(self, addr: int, node_id: bytes | None = None) -> None:
        self.key.forget(addr, node_id)

    def __getattr__(self, name: str) -> Any:  # learn, close, drain_pending, ...
        return getattr(self.inner, name)
