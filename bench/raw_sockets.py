"""Socket families for the raw echo floors: how to bind, connect and frame each one.

Families:

* ``udp`` — UDP over 127.0.0.1 (the floor for the userspace TIPC transport, which rides UDP);
* ``unix-dgram`` / ``unix-seqpacket`` — Unix-domain sockets, for reference;
* ``tcp`` — TCP over 127.0.0.1 with a 4-byte length prefix (the floor under Pyro5/pyzmq/gRPC,
  and the only raw row that carries multi-megabyte payloads);
* ``tipc-rdm`` — kernel AF_TIPC reliable datagrams, node-local (guest only; the floor for the
  kernel transport).

Every request is ``id (8 bytes, little endian) + payload`` and the server echoes it unchanged.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import socket
import struct
from dataclasses import dataclass
from typing import Any, Optional

from bench.common import NotAvailable

#: Kernel TIPC service type used by the raw TIPC floor (≥ 64, node scope only).
RAW_TIPC_TYPE = 20_901
#: 4 MiB socket buffers (the kernel clamps to its r/wmem_max; we never change sysctls).
SOCK_BUF = 4 << 20
LEN = struct.Struct("<I")


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # "dgram" (one message per recv, unconnected) | "seqpacket" | "stream"
    #: (max payload bytes excluding the 8-byte id, reason) or None when unlimited.
    limit: Optional[tuple[int, str]]


FAMILIES: dict[str, Family] = {
    "udp": Family("udp", "dgram", (65_507 - 8, "above the 65 507-byte UDP datagram")),
    # Unix messages are bounded by the sender's SO_SNDBUF (see message_limit).
    "unix-dgram": Family("unix-dgram", "dgram", None),
    "unix-seqpacket": Family("unix-seqpacket", "seqpacket", None),
    "tcp": Family("tcp", "stream", None),
    "tipc-rdm": Family("tipc-rdm", "dgram", (66_000 - 8, "above the 66 000-byte TIPC datagram")),
}


def _bufs(s: socket.socket) -> None:
    for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        try:
            s.setsockopt(socket.SOL_SOCKET, opt, SOCK_BUF)
        except OSError:
            pass


def _new(family: str) -> socket.socket:
    if family == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    elif family == "unix-dgram":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    elif family == "unix-seqpacket":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    elif family == "tcp":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    elif family == "tipc-rdm":
        try:
            s = socket.socket(socket.AF_TIPC, socket.SOCK_RDM)  # type: ignore[attr-defined]
        except (OSError, AttributeError) as e:
            raise NotAvailable(f"AF_TIPC unavailable: {e}") from None
    else:
        raise ValueError(f"unknown family {family!r}")
    _bufs(s)
    return s


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def prepare_accepted(family: str, conn: socket.socket) -> None:
    """Accepted sockets do not inherit buffer sizes: give them the same as every other socket."""
    _bufs(conn)
    if family == "tcp":
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def server_sockets(family: str, count: int, tmpdir: str) -> tuple[list[socket.socket], list[Any]]:
    """Bind ``count`` server sockets (listening for connection families); their addresses."""
    socks: list[socket.socket] = []
    addrs: list[Any] = []
    for i in range(count):
        s = _new(family)
        if family in ("udp", "tcp"):
            s.bind(("127.0.0.1", 0))
            addr: Any = list(s.getsockname())
        elif family.startswith("unix"):
            # Unique per process start (pids get reused; a SIGKILLed server leaves its file).
            path = os.path.join(tmpdir, f"tipcrpc-bench-{os.getpid()}-{secrets.token_hex(4)}-{i}.sock")
            s.bind(path)
            atexit.register(_unlink, path)
            addr = path
        else:  # tipc-rdm: publish {type, instance} at node scope; clients send to the name
            inst = os.getpid() * 16 + i
            s.bind((socket.TIPC_ADDR_NAMESEQ, RAW_TIPC_TYPE, inst, inst, socket.TIPC_NODE_SCOPE))  # type: ignore[attr-defined]
            addr = [inst]
        if FAMILIES[family].kind != "dgram":
            s.listen(16)
        socks.append(s)
        addrs.append(addr)
    return socks, addrs


def dest_of(family: str, addr: Any) -> Any:
    """The sendto/connect address for a server address from the READY line."""
    if family in ("udp", "tcp"):
        return (addr[0], addr[1])
    if family.startswith("unix"):
        return addr
    return (socket.TIPC_ADDR_NAME, RAW_TIPC_TYPE, addr[0], 0)  # type: ignore[attr-defined]


def client_socket(family: str, addr: Any) -> socket.socket:
    """A client socket connected (or, for unconnected datagrams, bound) to reach ``addr``."""
    s = _new(family)
    if family == "unix-dgram":
        s.bind("")  # Linux autobind: an abstract address so the server can reply
    if family in ("udp", "unix-dgram"):
        s.connect(dest_of(family, addr))
    elif FAMILIES[family].kind != "dgram":
        s.connect(dest_of(family, addr))
    return s


def message_limit(family: str, sock: socket.socket) -> Optional[tuple[int, str]]:
    """Largest payload (after the 8-byte id) one message of ``family`` carries here."""
    fam = FAMILIES[family]
    if fam.limit is not None or fam.kind == "stream":
        return fam.limit
    # Unix datagram/seqpacket: the kernel refuses messages above sk_sndbuf - 32 (EMSGSIZE);
    # SO_SNDBUF reads back doubled and is capped by net.core.wmem_max.
    snd = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    limit = snd - 64 - 8
    return (limit, f"above the {family} message limit ({snd} B SO_SNDBUF)")


def recv_buffer(family: str, sock: socket.socket) -> memoryview:
    """A preallocated receive buffer one byte larger than the largest message (truncation check)."""
    lim = message_limit(family, sock)
    size = (lim[0] + 8 + 64) if lim is not None else (1 << 20)
    return memoryview(bytearray(size + 1))


class Truncated(Exception):
    """A datagram filled the whole receive buffer: it may have been cut (never silently)."""
