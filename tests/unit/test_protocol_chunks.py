"""Chunking and reassembly, driven by hand with explicit acks (no event loop)."""

from __future__ import annotations

import os
import random

import pytest

from tipcrpc.codec import Codec
from tipcrpc.errors import FrameTooLarge, LocalProtocolError, RemoteProtocolError
from tipcrpc.rpc import frames as F
from tipcrpc.rpc.chunks import ACK_INTERVAL, ChunkSender, Reassembler

MAX_MESSAGE = 66_000
PEER = ("node", 1)


def feed(r: Reassembler, chunk: bytes, now: float = 0.0, peer: object = PEER) -> tuple[bytearray | None, int | None]:
    kind, _flags, msg_id, call_id = F.parse_header(chunk)
    assert kind == F.Kind.CHUNK
    total, index, size, payload = F.decode_chunk(chunk)
    return r.feed(peer, call_id, msg_id, total, index, size, payload, now)


def transfer(frame: bytes, *, window: int = 1 << 20, shuffle: random.Random | None = None, overload_every: int = 0) -> bytes:
    """Move ``frame`` through a sender and a reassembler; return what was reassembled."""
    sender = ChunkSender(frame, call_id=7, msg_id=1, max_message=MAX_MESSAGE, window=window)
    r = Reassembler(max_frame=128 << 20)
    result = None
    sent = 0
    batch = sender.take()
    max_in_flight = 0
    while batch:
        if shuffle:
            shuffle.shuffle(batch)
        for chunk in batch:
            assert len(chunk) <= MAX_MESSAGE
            sent += 1
            if overload_every and sent % overload_every == 0:
                sender.on_returned(F.decode_chunk(chunk)[1])  # the "kernel" bounced it
                continue
            out, ack = feed(r, chunk)
            if ack is not None:
                sender.on_ack(ack)
            if out is not None:
                result = out
        max_in_flight = max(max_in_flight, sent * sender.chunk_size - sender.acked)
        batch = sender.take()
    assert sender.done
    assert r.buffered == 0 and len(r) == 0
    assert result is not None
    return bytes(result)


def test_64_mib_round_trip_with_window() -> None:
    frame = F.encode_reply(Codec(), 1, b"\xab" * (64 << 20))
    assert transfer(frame) == frame


def test_window_bounds_bytes_in_flight() -> None:
    frame = bytes(16) + os.urandom(5 << 20)
    sender = ChunkSender(frame, call_id=1, msg_id=1, max_message=MAX_MESSAGE, window=1 << 20)
    first = sender.take()
    assert sum(len(c) - F.CHUNK_HEADER_SIZE for c in first) <= (1 << 20) + sender.chunk_size
    assert sender.take() == []  # nothing more until acked
    sender.on_ack(ACK_INTERVAL)
    assert sender.take()  # window opened


def test_reordered_and_overloaded_chunks_still_reassemble() -> None:
    frame = bytes(16) + os.urandom(3 << 20)
    assert transfer(frame, shuffle=random.Random(3), overload_every=7) == frame


def test_small_window_is_raised_to_avoid_deadlock() -> None:
    frame = bytes(16) + os.urandom(2 << 20)
    assert transfer(frame, window=1) == frame


def test_duplicate_chunk_is_ignored_and_reacked() -> None:
    frame = bytes(16) + os.urandom(200_000)
    chunks = ChunkSender(frame, call_id=1, msg_id=9, max_message=MAX_MESSAGE).take()
    r = Reassembler()
    assert feed(r, chunks[0]) == (None, None)
    out, ack = feed(r, chunks[0])
    assert out is None and ack == len(chunks[0]) - F.CHUNK_HEADER_SIZE
    for c in chunks[1:-1]:
        feed(r, c)
    out, ack = feed(r, chunks[-1])
    assert bytes(out) == frame and ack == len(frame)


def test_too_large_frame_is_rejected_then_ignored() -> None:
    frame = bytes(16) + bytes(300_000)
    chunks = ChunkSender(frame, call_id=1, msg_id=2, max_message=MAX_MESSAGE).take()
    r = Reassembler(max_frame=100_000)
    with pytest.raises(FrameTooLarge):
        feed(r, chunks[0])
    assert feed(r, chunks[1]) == (None, None)  # rest of the message dropped quietly
    assert r.buffered == 0


def test_reassembly_budget() -> None:
    r = Reassembler(max_frame=1 << 20, max_buffered=1 << 20)
    a = ChunkSender(bytes(700_000), call_id=1, msg_id=1, max_message=MAX_MESSAGE).take()
    b = ChunkSender(bytes(700_000), call_id=2, msg_id=2, max_message=MAX_MESSAGE).take()
    feed(r, a[0])
    with pytest.raises(FrameTooLarge, match="budget"):
        feed(r, b[0])


@pytest.mark.parametrize(
    "total,index,size,payload_len,match",
    [
        (200_000, 4, 65_968, 65_968, "out of range"),
        (200_000, 0, 65_968, 10, "expected"),
        (10, 0, 5, 5, "bad chunked"),
        (200_000, 0, 0, 0, "bad chunked"),
        (200_000, 0, 300_000, 10, "bad chunked"),
    ],
)
def test_malformed_chunks_are_typed_errors(total: int, index: int, size: int, payload_len: int, match: str) -> None:
    r = Reassembler()
    with pytest.raises(RemoteProtocolError, match=match):
        r.feed(PEER, 1, 1, total, index, size, b"z" * payload_len, 0.0)
    assert r.buffered == 0


def test_inconsistent_chunk_discards_message() -> None:
    r = Reassembler()
    r.feed(PEER, 1, 1, 200_000, 0, 65_968, b"a" * 65_968, 0.0)
    with pytest.raises(RemoteProtocolError, match="disagrees"):
        r.feed(PEER, 1, 1, 300_000, 1, 65_968, b"a" * 65_968, 0.0)
    assert r.buffered == 0 and len(r) == 0


def test_expire_and_drop_peer() -> None:
    r = Reassembler(ttl=5.0)
    r.feed(("a", 1), 11, 1, 200_000, 0, 65_968, b"a" * 65_968, now=0.0)
    r.feed(("b", 2), 22, 1, 200_000, 0, 65_968, b"a" * 65_968, now=4.0)
    assert r.next_expiry() == 5.0
    assert r.expire(4.9) == []
    assert r.expire(5.1) == [(("a", 1), 11)]
    assert r.drop_peer(lambda p: p[0] == "b") == [(("b", 2), 22)]
    assert r.buffered == 0 and r.next_expiry() is None


def test_sender_validation() -> None:
    with pytest.raises(LocalProtocolError):
        ChunkSender(bytes(100), call_id=1, msg_id=1, max_message=32)
    with pytest.raises(LocalProtocolError):
        ChunkSender(b"short", call_id=1, msg_id=1, max_message=1000)
