"""Same-host failure detection faster than link tolerance.

A kernel TIPC node learns that a local socket died the moment its owner exits; a userspace
node on the same host would otherwise wait for link tolerance (1.5 s by default) to notice a
peer *process* died. The operating system already knows: when a process dies — even by
SIGKILL — every file descriptor it held is closed, and the other end of a Unix stream socket
sees EOF (or ``ECONNRESET``) at once.

So each node listens on an abstract Unix socket named after its cluster and address,
``"\\0tipcrpc/<netid>/<addr as 8 hex digits>"``. When a link to a peer on the same host comes
up, the node connects to the peer's name; the peer answers by writing its 16-byte node
identity, which the connector checks against the link's identity (a stale or foreign name
is ignored). EOF on that connection means the peer process is gone: ``on_peer_lost(addr)``
is called at once, and the stack resets the link (publications withdrawn within a
millisecond or so instead of 1.5 s).

Best effort, Linux only (abstract names are a Linux feature): if anything fails — no such
name (a kernel node or a node on another host), a full backlog — the peer is simply not
watched and link tolerance remains the detector.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any, Callable, cast

__all__ = ["Liveness", "liveness_name", "SUPPORTED"]

#: Abstract Unix socket names exist on Linux only.
SUPPORTED = sys.platform.startswith("linux")

_ID_LEN = 16


def liveness_name(netid: int, addr: int) -> str:
    """The abstract socket name of node ``addr`` in cluster ``netid``."""
    return f"\0tipcrpc/{netid}/{addr:08x}"


class _Watch:
    __slots__ = ("peer", "identity", "sock", "buf", "verified")

    def __init__(self, peer: int, identity: bytes, sock: socket.socket) -> None:
        self.peer = peer
        self.identity = identity
        self.sock = sock
        self.buf = b""
        self.verified = False


class Liveness:
    """Listener for our own name plus one watched connection per same-host peer."""

    def __init__(self, *, netid: int, own_addr: int, node_id: bytes, on_peer_lost: Callable[[int], None]) -> None:
        self.netid = netid
        self.own_addr = own_addr
        self.node_id = node_id.ljust(_ID_LEN, b"\0")[:_ID_LEN]
        self.on_peer_lost = on_peer_lost
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: socket.socket | None = None
        self._accepted: dict[int, socket.socket] = {}  # fd -> socket
        self._watches: dict[int, _Watch] = {}  # peer addr -> watch
        self.stats = {"liveness_watched": 0, "liveness_lost": 0}

    @property
    def active(self) -> bool:
        return self._listener is not None

    def open(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Start listening; ``False`` (and inactive) if unsupported or the name is taken."""
        self._loop = loop
        if not SUPPORTED:
            return False
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.setblocking(False)
            s.bind(liveness_name(self.netid, self.own_addr))
            s.listen(128)
        except OSError:
            s.close()
            return False
        self._listener = s
        loop.add_reader(s.fileno(), self._accept)
        return True

    def _accept(self) -> None:
        lst = self._listener
        if lst is None:
            return
        while True:
            try:
                conn, _ = lst.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            conn.setblocking(False)
            try:
                conn.send(self.node_id)
            except OSError:
                conn.close()
                continue
            fd = conn.fileno()
            self._accepted[fd] = conn
            assert self._loop is not None
            self._loop.add_reader(fd, self._on_accepted_readable, fd)

    def _on_accepted_readable(self, fd: int) -> None:
        # The connector never writes: readable means EOF or error. Either way, drop it.
        conn = self._accepted.get(fd)
        if conn is None:
            return
        try:
            data = conn.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop_accepted(fd)

    def _drop_accepted(self, fd: int) -> None:
        conn = self._accepted.pop(fd, None)
        if conn is None:
            return
        if self._loop is not None:
            cast(Any, self._loop).remove_reader(fd)  # uvloop returns None: see fastpath.Timer
        conn.close()

    def watch(self, peer: int, identity: bytes) -> bool:
        """Connect to ``peer``'s name; ``True`` if it is now watched."""
        if self._listener is None or self._loop is None:
            return False
        self.unwatch(peer)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.setblocking(False)
            s.connect(liveness_name(self.netid, peer))
        except OSError:
            # No such name (not a tipcrpc node on this host), or backlog full: not watched.
            s.close()
            return False
        w = _Watch(peer, identity.ljust(_ID_LEN, b"\0")[:_ID_LEN], s)
        self._watches[peer] = w
        self._loop.add_reader(s.fileno(), self._on_watch_readable, w)
        self.stats["liveness_watched"] += 1
        return True

    def _on_watch_readable(self, w: _Watch) -> None:
        try:
            data = w.sock.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data and not w.verified:
            w.buf += data
            if len(w.buf) < _ID_LEN:
                return
            if w.buf[:_ID_LEN] != w.identity:
                # Someone else answers under that name (stale address reuse): not our peer.
                self.unwatch(w.peer)
                return
            w.verified = True
            return
        if data:
            return  # unexpected chatter: ignore
        # EOF / reset: the peer process is gone (or closed its node).
        verified = w.verified
        self.unwatch(w.peer)
        if verified:
            self.stats["liveness_lost"] += 1
            self.on_peer_lost(w.peer)

    def unwatch(self, peer: int) -> None:
        """Stop watching ``peer`` (link went down by other means)."""
        w = self._watches.pop(peer, None)
        if w is None:
            return
        if self._loop is not None:
            try:
                cast(Any, self._loop).remove_reader(w.sock.fileno())
            except (ValueError, RuntimeError):
                pass
        w.sock.close()

    def watched(self) -> list[int]:
        return [p for p, w in self._watches.items() if w.verified]

    def close(self) -> None:
        """Close every socket (peers watching us see EOF)."""
        for peer in list(self._watches):
            self.unwatch(peer)
        for fd in list(self._accepted):
            self._drop_accepted(fd)
        if self._listener is not None:
            if self._loop is not None:
                try:
                    cast(Any, self._loop).remove_reader(self._listener.fileno())
                except (ValueError, RuntimeError):
                    pass
            self._listener.close()
            self._listener = None
