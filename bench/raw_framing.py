"""Length-prefixed framing for the stream (TCP) floor; shared by blocking and event-loop code."""

from __future__ import annotations

import socket
import struct

LEN = struct.Struct("<I")
RECV_CHUNK = 1 << 20


class FrameParser:
    """Incremental parser: feed received bytes, get whole frames (without the prefix) back."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while n - pos >= 4:
            (size,) = LEN.unpack_from(buf, pos)
            if n - pos - 4 < size:
                break
            out.append(bytes(buf[pos + 4:pos + 4 + size]))
            pos += 4 + size
        if pos:
            del buf[:pos]
        return out


def frame(data: bytes) -> bytes:
    return LEN.pack(len(data)) + data


def send_frame_blocking(sock: socket.socket, data: bytes) -> None:
    if len(data) <= 65536:
        sock.sendall(LEN.pack(len(data)) + data)
    else:  # avoid copying multi-megabyte payloads just to prepend four bytes
        sock.sendall(LEN.pack(len(data)))
        sock.sendall(data)


class BlockingFrameReader:
    """Reads whole frames from a blocking stream socket, one recv per chunk."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._parser = FrameParser()
        self._ready: list[bytes] = []

    def read(self) -> bytes:
        while not self._ready:
            chunk = self._sock.recv(RECV_CHUNK)
            if not chunk:
                raise ConnectionError("peer closed the stream")
            self._ready.extend(self._parser.feed(chunk))
        return self._ready.pop(0)
