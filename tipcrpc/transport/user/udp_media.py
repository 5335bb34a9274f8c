"""The UDP bearer's I/O (mirrors ``net/tipc/udp_media.c``): one TIPC packet per datagram.

* **Unicast socket** bound to ``(local_ip, port)``: link traffic to and from peers' learned
  media addresses, discovery to configured *replicast* peers. Never ``SO_REUSEPORT`` — two
  nodes sharing a unicast address would steal each other's packets.
* **Discovery group** (optional): IPv4 multicast ``228.0.(netid >> 8).(netid & 0xff)`` on the
  discovery port (6118), exactly the group the ``tipc`` tool configures, joined on the
  interface of ``local_ip``. By default only on **loopback**: outgoing multicast leaves
  through ``IP_MULTICAST_IF 127.0.0.1`` with TTL 0, so nothing reaches a real network; with
  ``multicast=True`` on a real address it leaves by that interface with TTL 1 (the bearer's
  own network, where kernel nodes with a multicast UDP bearer listen). Several
  processes on one host share the group port (``SO_REUSEADDR``/``SO_REUSEPORT`` on the
  group socket only; Linux hands every multicast datagram to every member socket).
* **Replicast peers**: a configured list of ``(ip, port)`` that discovery is also sent to
  (other hosts), plus peers learned from unknown unicast senders (``tipc_udp_rcast_disc``).

Reading uses the event loop's reader callbacks and a non-blocking ``recvfrom`` drain loop,
not stream abstractions: one callback per readiness, many datagrams per callback; the loop
asks the socket whether more is queued (``FIONREAD``) instead of ending on ``EAGAIN``.
"""

from __future__ import annotations

import array
import asyncio
import errno
import ipaddress
import socket
from typing import Any, Callable, Iterable, Protocol, cast

try:  # the queued-datagram probe of the drain loop; without it, drain until EAGAIN
    from fcntl import ioctl as _ioctl
    from termios import FIONREAD

    # A variable of its own, not the imported name set to None below: mypyc cannot compile
    # a rebinding of an imported function (``./dev build-compiled``).
    _FIONREAD: int | None = FIONREAD
except ImportError:  # pragma: no cover - not POSIX
    _FIONREAD = None

from ...errors import TransportUnavailable
from .media import BROADCAST, DEFAULT_PORT, MediaAddr

__all__ = [
    "DEFAULT_PORT",
    "MediaAddr",
    "BROADCAST",
    "Bearer",
    "UdpMedia",
    "multicast_group",
]

_RECV_SIZE = 65_535
#: Bodies above this many bytes are sent by scatter-gather (see UdpMedia.send_parts); below
#: it, copying the body behind the header is cheaper (callgrind: 10.0k instructions per
#: packet with a 32-byte body vs 10.6k for sendmsg; 70k vs 10.7k with a 60 000-byte body).
_GATHER_MIN = 2048
_DRAIN_MAX = 256  # datagrams per readiness callback: bounded so timers and other fds run
_SOCK_BUF = 4 * 1024 * 1024


class Bearer(Protocol):
    """What the stack needs from a bearer; :class:`UdpMedia` is the real one.

    Tests substitute in-memory bearers (lossy, delaying) through
    ``UserTransport(bearer_factory=...)``.
    """

    local: MediaAddr
    stats: dict[str, int]

    def open(self, loop: asyncio.AbstractEventLoop) -> MediaAddr: ...

    def send(self, dest: MediaAddr, data: bytes) -> None: ...

    # Optional: ``send_parts(dest, hdr: bytearray, body: bytes)`` sends ``hdr + body`` without
    # the caller joining them (UdpMedia does it by scatter-gather); bearers without it get
    # ``send(dest, bytes(hdr + body))``.

    def learn(self, addr: MediaAddr) -> None: ...

    def close(self) -> None: ...


def multicast_group(netid: int) -> str:
    """The IPv4 discovery group of cluster ``netid`` (as iproute2's ``generate_multicast``)."""
    return f"228.0.{(netid >> 8) & 0xFF}.{netid & 0xFF}"


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class UdpMedia:
    """UDP sockets of one userspace node.

    ``on_packet(data, src)`` is called from the event loop for every datagram received on
    either socket (discovery-group datagrams the node itself sent are filtered out).
    """

    #: :meth:`send` may be called from another thread (the keepalive thread): it only calls
    #: ``sendto`` on the socket (counters may miss an increment in a race; nothing else).
    thread_safe_send = True

    def __init__(
        self,
        *,
        local_ip: str = "127.0.0.1",
        port: int | None = None,
        netid: int = 4711,
        peers: Iterable[MediaAddr] = (),
        multicast: bool | None = None,
        discovery_port: int = DEFAULT_PORT,
        on_packet: Callable[[bytes, MediaAddr], None],
    ) -> None:
        if multicast is None:
            multicast = _is_loopback(local_ip)
        self.local_ip = local_ip
        self.requested_port = port
        self.netid = netid
        self.group = multicast_group(netid)
        self.discovery_port = discovery_port
        self.multicast = multicast
        self.peers: dict[MediaAddr, None] = dict.fromkeys(peers)
        self.learned: dict[MediaAddr, None] = {}
        self.on_packet = on_packet
        self.local: MediaAddr = (local_ip, 0)
        self._ucast: socket.socket | None = None
        self._mcast: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stats = {"udp_tx": 0, "udp_rx": 0, "udp_tx_bytes": 0, "udp_rx_bytes": 0, "udp_tx_errors": 0}
        self._ibuf = array.array("i", [0])
        self._queued: Callable[[int], int] | None = self._fionread if _FIONREAD is not None else None

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self, loop: asyncio.AbstractEventLoop) -> MediaAddr:
        """Create and bind the sockets, start reading; returns the unicast media address.

        With ``port=None`` the discovery port (6118) is tried first and an ephemeral port is
        used if another node on this host holds it (discovery advertises the real port).
        Raises :class:`TransportUnavailable` when binding fails.
        """
        self._loop = loop
        try:
            self._ucast = self._open_unicast()
            if self.multicast:
                self._mcast = self._open_group()
        except OSError as e:
            self.close()
            raise TransportUnavailable(
                f"cannot open the UDP bearer on {self.local_ip}:{self.requested_port or DEFAULT_PORT}: {e}; "
                "pass another local_ip=/port= to UserTransport"
            ) from e
        host, port = self._ucast.getsockname()[:2]
        self.local = (host, port)
        loop.add_reader(self._ucast.fileno(), self._drain, self._ucast)
        if self._mcast is not None:
            loop.add_reader(self._mcast.fileno(), self._drain, self._mcast)
        return self.local

    def _open_unicast(self) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setblocking(False)
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                try:
                    s.setsockopt(socket.SOL_SOCKET, opt, _SOCK_BUF)
                except OSError:
                    pass
            if self.requested_port is None:
                try:
                    s.bind((self.local_ip, self.discovery_port))
                except OSError as e:
                    if e.errno != errno.EADDRINUSE:
                        raise
                    s.bind((self.local_ip, 0))
            else:
                s.bind((self.local_ip, self.requested_port))
            if self.multicast:
                # On loopback, discovery to the group stays on this host (TTL 0). On a real
                # address it leaves by that interface for the bearer's own network (TTL 1),
                # as from a kernel UDP bearer enabled without remoteip.
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.local_ip))
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0 if _is_loopback(self.local_ip) else 1)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            return s
        except BaseException:
            s.close()
            raise

    def _open_group(self) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            # Bound to the group address: receives only this group's datagrams, never unicast.
            s.bind((self.group, self.discovery_port))
            mreq = socket.inet_aton(self.group) + socket.inet_aton(self.local_ip)  # the bearer's interface
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            return s
        except BaseException:
            s.close()
            raise

    def close(self) -> None:
        """Stop reading and close both sockets (idempotent)."""
        for s in (self._ucast, self._mcast):
            if s is None:
                continue
            if self._loop is not None and s.fileno() >= 0:
                try:
                    cast(Any, self._loop).remove_reader(s.fileno())  # uvloop returns None: see fastpath.Timer
                except (ValueError, RuntimeError):  # loop already closed
                    pass
            s.close()
        self._ucast = self._mcast = None

    # -- I/O ---------------------------------------------------------------------------------

    def _drain(self, sock: socket.socket) -> None:
        recvfrom = sock.recvfrom
        on_packet = self.on_packet
        own = self.local
        is_group = sock is self._mcast
        fd = sock.fileno()
        probe = _ioctl if self._queued is not None else None
        ibuf = self._ibuf
        n = 0
        nbytes = 0
        try:
            while n < _DRAIN_MAX:
                try:
                    data, src = recvfrom(_RECV_SIZE)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    if sock.fileno() < 0:
                        break  # closed by a handler
                    # e.g. ECONNREFUSED queued by an ICMP error: not fatal for a datagram socket
                    continue
                n += 1
                nbytes += len(data)
                if is_group and src[0] == own[0] and src[1] == own[1]:
                    continue  # our own discovery looped back
                on_packet(data, src)  # AF_INET: already the (ip, port) pair
                # Ask whether another datagram is queued rather than finding out from a
                # recvfrom that fails: the failure costs a BlockingIOError (~1.7 us), the
                # question ~0.5 us. A 0 can also mean a zero-length datagram: the reader
                # is level-triggered, so the loop calls us again for it. (_fionread,
                # inlined: an fd closed by a handler raises OSError, which ends the drain.)
                if probe is not None:
                    try:
                        probe(fd, FIONREAD, ibuf, True)
                    except OSError:
                        break
                    if not ibuf[0]:
                        break
        finally:
            st = self.stats
            st["udp_rx"] += n
            st["udp_rx_bytes"] += nbytes

    def drain_pending(self, rounds: int = 64) -> None:
        """Read what is queued in both sockets now (after a blocked loop), up to a bound."""
        for sock in (self._ucast, self._mcast):
            for _ in range(rounds):
                if sock is None or sock.fileno() < 0 or (self._queued is not None and not self._queued(sock.fileno())):
                    break
                before = self.stats["udp_rx"]
                self._drain(sock)
                if self.stats["udp_rx"] == before:
                    break

    def _fionread(self, fd: int) -> int:
        """Bytes of the next queued datagram (``FIONREAD``/``SIOCINQ``); 0 if none or closed."""
        try:
            _ioctl(fd, FIONREAD, self._ibuf, True)
        except OSError:
            return 0
        return self._ibuf[0]

    def send(self, dest: MediaAddr, data: bytes) -> None:
        """Send one packet; :data:`BROADCAST` goes to the group and every replicast peer.

        Never raises for transient socket errors (full buffer, unreachable peer): the link
        layer retransmits; the failure is counted in ``udp_tx_errors``.
        """
        s = self._ucast
        if s is None:
            return
        st = self.stats
        if dest[1] != 0:  # hot path: unicast link traffic
            try:
                s.sendto(data, dest)
                st["udp_tx"] += 1
                st["udp_tx_bytes"] += len(data)
            except OSError:
                st["udp_tx_errors"] += 1
            return
        targets: list[MediaAddr] = list(self.peers) + [p for p in self.learned if p not in self.peers]
        if self.multicast:
            targets.append((self.group, self.discovery_port))
        for t in targets:
            try:
                s.sendto(data, t)
                st["udp_tx"] += 1
                st["udp_tx_bytes"] += len(data)
            except OSError:
                st["udp_tx_errors"] += 1

    def send_parts(self, dest: MediaAddr, hdr: bytes | bytearray, body: bytes) -> None:
        """Send one unicast packet given as header and body, without copying a large body.

        ``hdr`` is the caller's scratch buffer (the link's freshly stamped header): a small
        body is appended to it and sent with ``sendto`` — one short copy costs less than
        ``sendmsg``'s argument handling; a larger body goes by scatter-gather ``sendmsg``, so
        the payload is never copied in user space. Errors as :meth:`send`.
        """
        s = self._ucast
        if s is None:
            return
        st = self.stats
        try:
            if len(body) <= _GATHER_MIN:
                hdr += body
                sent = s.sendto(hdr, dest)
            else:
                sent = s.sendmsg((hdr, body), (), 0, dest)
        except OSError:
            st["udp_tx_errors"] += 1
            return
        st["udp_tx"] += 1
        st["udp_tx_bytes"] += sent

    def learn(self, addr: MediaAddr) -> None:
        """Remember a unicast peer that found us, so our discovery reaches it too.

        Peers reached through the loopback discovery group need no replicast copy
        (``tipc_udp_rcast_disc`` likewise learns only when discovery is not multicast).
        """
        if self.multicast and _is_loopback(addr[0]):
            return
        if addr not in self.peers and addr != self.local and addr[0] != self.group:
            self.learned[addr] = None

    def forget(self, addr: MediaAddr) -> None:
        self.learned.pop(addr, None)
