"""The cluster key (transport/user/crypto.py): TIPC's AEAD encryption message format.

Golden vectors are built two ways: from the format as ``net/tipc/crypto.c`` lays it out
(encryption header, nonce = salt XOR header bytes 12..15 || sequence number, the header as
AAD, the message padded to 4 bytes) with the AES-GCM primitive directly, and as fixed bytes.
Tampering anywhere, the wrong key, plain packets and replays are dropped and counted.
"""

from __future__ import annotations

import struct
import sys

import pytest

pytest.importorskip("cryptography", reason="the cluster key needs the optional 'cryptography' package")
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from tipcrpc.errors import UsageError  # noqa: E402
from tipcrpc.transport.user import msg as m  # noqa: E402
from tipcrpc.transport.user.crypto import (  # noqa: E402
    EHDR_CFG_SIZE,
    EHDR_SIZE,
    REPLAY_WINDOW,
    TAG_SIZE,
    ClusterKey,
    parse_cluster_key,
)

import golden as g  # noqa: E402

KEY_HEX = "0x" + bytes(range(16)).hex() + "a1b2c3d4"  # AES-128 key 00..0f, salt a1b2c3d4
KEY = parse_cluster_key(KEY_HEX)
OTHER = parse_cluster_key("0x" + bytes(range(1, 17)).hex() + "a1b2c3d4")


def _data(payload: bytes = b"hello, keyed world") -> bytes:
    return m.direct_msg(0, g.NODE_A, 7, g.NODE_B, 9, payload)


def _expected(packet: bytes, seq: int, ehdr_w0: bytes, sender: bytes) -> bytes:
    """The encryption message built straight from the kernel's description."""
    ehdr = ehdr_w0 + struct.pack(">Q", seq) + sender
    salt = KEY[16:]
    nonce = bytes(a ^ b for a, b in zip(salt, sender[:4])) + struct.pack(">Q", seq)
    padded = packet + bytes(-len(packet) % 4)
    return ehdr + AESGCM(KEY[:16]).encrypt(nonce, padded, ehdr)


def test_data_packet_matches_the_kernel_layout() -> None:
    ck = ClusterKey(KEY, node_id=g.ID_A, first_seqno=5)
    pkt = _data()
    assert len(pkt) % 4 != 0  # exercises the padding
    sealed = ck.seal(pkt)
    # w0: version 7, user 0, not destined; tx key slot 1; sender = prevnode (word 3).
    assert sealed == _expected(pkt, 5, bytes((0xE0, 0x40, 0, 0)), pkt[12:16])
    assert len(sealed) == EHDR_SIZE + len(pkt) + (-len(pkt) % 4) + TAG_SIZE
    assert sealed[12:16] == g.NODE_A.to_bytes(4, "big")


def test_golden_bytes() -> None:
    """Pinned: a change to the format shows up here (checked against a kernel in tests/kernel)."""
    sealed = ClusterKey(KEY, node_id=g.ID_A, first_seqno=1).seal(g.DISC_REQ_A)
    assert sealed.hex() == GOLDEN_DISC_REQ_A


def test_discovery_carries_the_node_id_and_state_the_keepalive_bit() -> None:
    ck = ClusterKey(KEY, node_id=g.ID_A, first_seqno=1)
    sealed = ck.seal(g.DISC_REQ_A)
    # LINK_CONFIG: user 13 in the header, the 16-byte node id instead of prevnode.
    assert sealed == _expected(g.DISC_REQ_A, 1, bytes((0xE0 | 13 << 1, 0x40, 0, 0)), g.ID_A)
    assert len(sealed) == EHDR_CFG_SIZE + len(g.DISC_REQ_A) + TAG_SIZE
    # A STATE message: user LINK_PROTOCOL; a probe (dest_droppable = keepalive) sets K.
    state = bytearray(g.STATE_A)
    plain = ck.seal(bytes(state))
    assert plain[0] == 0xE0 | 7 << 1 and plain[1] & 0x08 == 0
    state[1] |= 0x08  # w0 bit 19: msg_is_keepalive
    probe = ck.seal(bytes(state))
    assert probe[1] & 0x08 and probe[4:12] == struct.pack(">Q", 3)
    # RESET/ACTIVATE are user 0 in the encryption header, like every other message.
    assert ck.seal(g.RESET_A)[0] == 0xE0


def test_round_trip_trims_the_padding_and_counts() -> None:
    tx = ClusterKey(KEY, node_id=g.ID_A)
    rx = ClusterKey(KEY, node_id=g.ID_B)
    for pkt in (_data(), _data(b"x" * 1000), g.DISC_REQ_A, g.STATE_A, g.NAME_BULK_A):
        assert rx.open(tx.seal(pkt)) == pkt
    assert rx.stats["crypto_rx_ok"] == 5 and tx.stats["crypto_tx"] == 5


@pytest.mark.parametrize("where", ["w0", "seqno", "sender", "ciphertext", "tag"])
def test_tampering_anywhere_is_dropped_and_counted(where: str) -> None:
    tx = ClusterKey(KEY, node_id=g.ID_A)
    rx = ClusterKey(KEY, node_id=g.ID_B)
    sealed = bytearray(tx.seal(_data()))
    at = {"w0": 1, "seqno": 9, "sender": 13, "ciphertext": EHDR_SIZE + 20, "tag": len(sealed) - 1}[where]
    sealed[at] ^= 0x01
    assert rx.open(bytes(sealed)) is None
    assert rx.stats["crypto_rx_badauth"] == 1 and rx.stats["crypto_rx_ok"] == 0


def test_wrong_key_plain_and_short_packets_are_dropped_and_counted() -> None:
    rx = ClusterKey(KEY, node_id=g.ID_B)
    assert rx.open(ClusterKey(OTHER, node_id=g.ID_A).seal(_data())) is None
    assert rx.open(_data()) is None  # a plain TIPC v2 packet: an unkeyed node
    assert rx.open(g.DISC_REQ_A) is None
    assert rx.open(bytes((0xE0, 0x40, 0, 0)) + bytes(20)) is None  # header, no room for a tag
    assert rx.open(b"") is None
    assert rx.stats == {"crypto_tx": 0, "crypto_rx_ok": 0, "crypto_rx_unkeyed": 3, "crypto_rx_malformed": 1,
                        "crypto_rx_badauth": 1, "crypto_rx_replayed": 0}  # fmt: skip


def test_replays_are_dropped_within_and_behind_the_window() -> None:
    tx = ClusterKey(KEY, node_id=g.ID_A)
    rx = ClusterKey(KEY, node_id=g.ID_B)
    first = tx.seal(_data())
    later = [tx.seal(_data()) for _ in range(10)]
    assert rx.open(later[5]) is not None
    assert rx.open(later[5]) is None  # the same datagram again
    assert rx.open(first) is not None  # reordered, but new: accepted once
    assert rx.open(first) is None
    assert all(rx.open(d) is not None for d in later[:5] + later[6:])
    for _ in range(REPLAY_WINDOW):
        rx.open(tx.seal(_data()))
    assert rx.open(later[9]) is None  # fell behind the window
    assert rx.stats["crypto_rx_replayed"] == 3
    # Discovery has its own window (keyed by node id) and forgetting a peer resets both.
    disc = tx.seal(g.DISC_REQ_A)
    assert rx.open(disc) is not None and rx.open(disc) is None
    rx.forget(g.NODE_A, g.ID_A)
    assert rx.open(disc) is not None and rx.open(later[9]) is not None


def test_a_restarted_sender_with_a_higher_start_is_accepted_without_forgetting() -> None:
    rx = ClusterKey(KEY, node_id=g.ID_B)
    assert rx.open(ClusterKey(KEY, node_id=g.ID_A, first_seqno=1_000).seal(_data())) is not None
    assert rx.open(ClusterKey(KEY, node_id=g.ID_A, first_seqno=2_000).seal(_data())) is not None


def test_parse_cluster_key() -> None:
    assert parse_cluster_key(KEY_HEX) == bytes(range(16)) + bytes.fromhex("a1b2c3d4")
    assert parse_cluster_key("0X" + "ab" * 36) == bytes([0xAB]) * 36  # AES-256
    assert parse_cluster_key("twenty-byte-secret!!") == b"twenty-byte-secret!!"  # as `tipc node set key`
    assert parse_cluster_key(bytes(28)) == bytes(28)
    with pytest.raises(UsageError, match="20, 28 or 36"):
        parse_cluster_key("0x" + "00" * 16)  # no salt
    with pytest.raises(UsageError, match="not hexadecimal"):
        parse_cluster_key("0xzz")
    with pytest.raises(UsageError, match="str or bytes"):
        parse_cluster_key(1234)  # type: ignore[arg-type]


#: DISC_REQ_A sealed with KEY, sequence number 1 (the kernel's first): ehdr fa40 0000,
#: seqno 1, node id "nodea"; then ciphertext and tag.
GOLDEN_DISC_REQ_A = (
    "fa40000000000000000000016e6f6465610000000000000000000000"
    "ac050081186a1cfd7320f0c7cb39bc2198ce333d7e79749ca7504894dd2f8b51"
    "ef0e27dc54a069ed0a04c3fbf5b18fc18ed94424a171b5493a9ec6501d9ea6ca"
    "9dc54496d5e39f8b0c885be2500f56f2d44f222336284c31f1440e61"
)


def test_env_var_and_missing_package_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from tipcrpc.api import user_options_from_env
    from tipcrpc.errors import TransportUnavailable

    assert user_options_from_env({"TIPCRPC_CLUSTER_KEY": KEY_HEX})["cluster_key"] == KEY
    with pytest.raises(UsageError, match=r"\$TIPCRPC_CLUSTER_KEY: .*20, 28 or 36"):
        user_options_from_env({"TIPCRPC_CLUSTER_KEY": "0x1234"})
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(TransportUnavailable, match=r"tipcrpc\[crypto\]"):
        ClusterKey(KEY, node_id=g.ID_A)
