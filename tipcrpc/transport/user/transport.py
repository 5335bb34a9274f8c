"""``UserTransport``: the userspace TIPC node as a :class:`~tipcrpc.transport.base.Transport`.

Each :class:`UserTransport` is one TIPC node speaking TIPC's v2 wire protocol over the UDP
bearer (see :mod:`.stack`). Typical use::

    async with UserTransport() as t:             # joins every tipcrpc node on this host
        ep = await t.open_endpoint(handler)
        await ep.publish(ServiceAddr(18888, 17))

Discovery and timing:

* Nodes on the same host find each other by IPv4 multicast on **loopback only**
  (group ``228.0.(netid>>8).(netid&0xff)``, port 6118, TTL 0). Nodes on other hosts are
  reached through ``peers=[("10.0.0.2", 6118), ...]`` (replicast) with a real ``local_ip``.
* Opening waits only briefly for discovery (``discovery_wait``, default 0.1 s, returning
  earlier once links have settled). Other nodes appear as their links come up; to wait for a
  particular peer or service, subscribe (``type 0`` for nodes, or the service's range) and
  wait for the event — do not rely on the open delay.
* A peer that stops gracefully resets its links: its publications disappear at once. A peer
  *process* that dies on the same host is noticed through its liveness socket within about a
  millisecond (see :mod:`.liveness`); elsewhere, after ``tolerance_ms`` (link tolerance).

Identity: by default ``"<hostname>-<pid>-<8 random hex>"``, unique per process and per
transport. The 16-byte TIPC node id is the identity's UTF-8 bytes when they fit (zero padded,
as ``tipc node set identity``), else its 16-byte BLAKE2b digest; the 32-bit node address is
the kernel's hash of the node id.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import secrets
import socket
import time
from types import TracebackType
from typing import Any, Callable, Iterable, Mapping, Union

from ...addr import Importance, NodeInfo, Scope, ServiceAddr, ServiceRange, SocketAddr
from ...errors import AddressError, ClosedError
from ...events import SubFilter
from ...nametable.endpoint import IMPORTANCES, EndpointBase, alloc_port, check_payload
from ...nametable.table import Publication
from ...nametable.topsrv import TopologySubscription
from ..base import MAX_MESSAGE, Destination, MessageHandler
from .crypto import ClusterKey, KeyedBearer
from .keepalive import DEFAULT_STALL_LIMIT
from .node_api import PeerInfo
from .stack import Stack
from .udp_media import DEFAULT_PORT, Bearer, MediaAddr, UdpMedia

__all__ = ["UserTransport", "UserEndpoint", "UserSubscription", "default_identity", "node_id_of"]

#: Topology subscriptions of a :class:`UserTransport` (the shared implementation).
UserSubscription = TopologySubscription

_NEW, _OPEN, _CLOSED = 0, 1, 2
#: Packets queued in the links (sent window + backlog, all peers) above which
#: :meth:`UserEndpoint.drain` waits: about 1.4 MB at the default MTU.
DRAIN_HIGH_WATER = 1024
#: Default link MTU on loopback: below the 65 507-byte UDP limit with room for headers.
LOOPBACK_MTU = 60_000
#: Default link MTU elsewhere: one Ethernet frame after IP/UDP headers, no IP fragmentation.
WIRE_MTU = 1400


def default_identity() -> str:
    """``<hostname>-<pid>-<8 random hex digits>``: unique per process and per call."""
    host = socket.gethostname().split(".")[0] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


def node_id_of(identity: str) -> bytes:
    """The 16-byte TIPC node id for an identity string (see the module docstring)."""
    raw = identity.encode("utf-8")
    if len(raw) <= 16:
        return raw.ljust(16, b"\0")
    return hashlib.blake2b(raw, digest_size=16).digest()


class UserEndpoint(EndpointBase):
    """A reliable-datagram socket of a :class:`UserTransport` (kernel ``SOCK_RDM``)."""

    __slots__ = ("_transport", "_stack", "_sockets", "_send", "_port")

    def __init__(self, transport: UserTransport, port: int, handler: MessageHandler) -> None:
        super().__init__(SocketAddr(transport._stack.own, port), handler)
        self._transport = transport
        self._stack = transport._stack
        self._sockets = transport._stack.sockets
        self._send = transport._stack.fast.send  # the common case, else the socket layer
        self._port = port

    def send(self, dest: Destination, data: bytes, *, importance: Importance = Importance.LOW) -> None:
        """Queue ``data`` for ``dest`` (anycast, multicast or direct); see the contract."""
        if self._closed:
            raise ClosedError(f"endpoint {self._address} is closed")
        if data.__class__ is not bytes or importance not in IMPORTANCES or not 0 < len(data) <= MAX_MESSAGE:
            data = check_payload(data, MAX_MESSAGE, importance)
        self._send(self._port, dest, data, importance)

    async def drain(self) -> None:
        """Wait until the node's link send queues are below the high-water mark."""
        self._check_open()
        await self._transport._drain()

    async def aclose(self) -> None:
        """Withdraw every publication and close; idempotent."""
        if self._release():
            self._sockets.ports.pop(self._port, None)

    def _bind(self, r: ServiceRange, scope: Scope, key: int) -> None:
        self._stack.publish(r, scope, self._port, key)

    def _unbind(self, r: ServiceRange, key: int) -> None:
        self._stack.withdraw(r, self._port, key)

    def _report(self, context: dict[str, Any]) -> None:
        loop = self._stack.loop
        if loop is not None:
            loop.call_exception_handler(context)


class UserTransport:
    """A userspace TIPC node over UDP (``kind = "user"``); see the module docstring.

    Options:

    * ``identity`` — node identity string (default: :func:`default_identity`).
    * ``local_ip`` — IPv4 address of the UDP bearer (default ``127.0.0.1``).
    * ``port`` — UDP port of the bearer; ``None`` (default) = 6118 if free on ``local_ip``,
      else an ephemeral port (several nodes per host; discovery advertises the real port).
    * ``peers`` — replicast peers ``(ip, port)`` or ``"ip[:port]"`` that discovery is also
      sent to (nodes on other hosts).
    * ``multicast`` — loopback multicast discovery; default: on iff ``local_ip`` is loopback.
    * ``netid`` — cluster id (1..9999, default 4711): only nodes with the same id link up.
    * ``tolerance_ms`` — link tolerance (failure detection for peers not on this host).
    * ``window`` / ``mtu`` — link send window (packets) and maximum packet size; the link
      uses the smaller of both ends' ``mtu``. Default: 60 000 bytes on loopback (fewer
      fragments: a 1 MiB payload costs ~3 ms instead of ~22 ms at 1 400), else 1 400 (fits an
      Ethernet frame, no IP fragmentation).
    * ``bundling`` — while a link has packets in flight, small messages sent in one turn of
      the event loop share MSG_BUNDLER packets, sent at the end of the turn or as soon as
      32 have gathered (default on; see :mod:`.fast_path`). An idle link sends at once
      either way; off, every message is its own packet (more packets and system calls
      under load, no wait to the end of a turn).
    * ``liveness`` — same-host fast failure detection (default on, Linux only).
    * ``keepalive`` — keep the links alive from a daemon thread while the event loop is
      blocked (default on; see :mod:`.keepalive`), for at most ``stall_limit`` seconds of one
      stall (default 60; ``None``: as long as the process lives, like the kernel).
    * ``cluster_key`` — admit only nodes with this key: every packet is sealed with
      AES-GCM in the kernel's TIPC encryption format (``tipc node set key``); ``"0x"`` + hex
      (or bytes), 20/28/36 bytes = AES key + 4-byte salt. Needs ``tipcrpc[crypto]``. See
      :mod:`.crypto` and the threat model in docs/transports.md.
    * ``discovery_wait`` — the most :meth:`open` waits for links to settle (seconds).
    * ``bearer_factory`` — testing hook: called with the packet callback, returns a bearer
      object with :class:`~.udp_media.Bearer`'s interface to use instead of UDP sockets.
    """

    kind = "user"

    def __init__(
        self,
        *,
        identity: str | None = None,
        local_ip: str = "127.0.0.1",
        port: int | None = None,
        peers: Iterable[Union[tuple[str, int], str]] = (),
        multicast: bool | None = None,
        netid: int = 4711,
        tolerance_ms: int = 1500,
        window: int = 50,
        mtu: int | None = None,
        bundling: bool = True,
        liveness: bool = True,
        keepalive: bool = True,
        stall_limit: float | None = DEFAULT_STALL_LIMIT,
        cluster_key: str | bytes | None = None,
        discovery_wait: float = 0.1,
        discovery_port: int = DEFAULT_PORT,
        bearer_factory: Callable[[Callable[[bytes, MediaAddr], None]], Bearer] | None = None,
    ) -> None:
        if not 1 <= netid <= 9999:
            raise AddressError(f"netid must be in 1..9999, got {netid}")
        if not 50 <= tolerance_ms <= 30_000:
            raise AddressError(f"tolerance_ms must be in 50..30000, got {tolerance_ms}")
        if stall_limit is not None and not stall_limit > 0:
            raise AddressError(f"stall_limit must be a positive number of seconds or None, got {stall_limit!r}")
        self._identity = identity if identity is not None else default_identity()
        if not self._identity:
            raise AddressError("identity must be a non-empty string")
        self._node_id = node_id_of(self._identity)
        self._discovery_wait = discovery_wait
        if mtu is None:
            mtu = LOOPBACK_MTU if ipaddress.ip_address(local_ip).is_loopback else WIRE_MTU
        # Cluster key: sequence numbers start at the clock (µs), so a restarted node reusing
        # identity and key never reuses a GCM nonce.
        key = (
            ClusterKey(cluster_key, node_id=self._node_id, first_seqno=time.time_ns() // 1000)
            if cluster_key is not None
            else None
        )
        self._rx: Callable[[bytes, MediaAddr], None] | None = None
        media: Bearer
        if bearer_factory is not None:
            media = bearer_factory(self._on_packet)
        else:
            media = UdpMedia(
                local_ip=local_ip,
                port=port,
                netid=netid,
                peers=[_parse_peer(p) for p in peers],
                multicast=multicast,
                discovery_port=discovery_port,
                on_packet=self._on_packet,
            )
        inner = media
        if key is not None:
            media = KeyedBearer(inner, key)  # type: ignore[assignment]
        self._stack = Stack(
            node_id=self._node_id,
            media=media,
            netid=netid,
            signature=secrets.randbits(16) or 1,
            tolerance_ms=tolerance_ms,
            window=window,
            mtu=mtu,
            liveness=liveness,
            keepalive=keepalive,
            stall_limit=stall_limit,
            bundling=bundling,
        )
        if isinstance(media, KeyedBearer):
            media.on_packet = self._stack.fast.rcv
            self._rx = media.receive
        else:
            self._rx = self._stack.fast.rcv
        if isinstance(inner, UdpMedia):
            inner.on_packet = self._rx  # one call less per datagram
        self._state = _NEW
        # Kernel-like port numbers: random start, then sequential (ports are never 0).
        self._next_port = secrets.randbelow(0x7FFF_0000) + 0x10000
        self._info: NodeInfo | None = None

    def _on_packet(self, data: bytes, src: tuple[str, int]) -> None:
        self._rx(data, src)  # type: ignore[misc]

    # ------------------------------------------------------------------ Transport protocol

    @property
    def own_node(self) -> NodeInfo:
        """This node's 32-bit address and identity (valid once open)."""
        if self._info is None:
            raise ClosedError("the transport is not open yet")
        return self._info

    @property
    def max_message(self) -> int:
        return MAX_MESSAGE

    @property
    def local_media(self) -> tuple[str, int]:
        """The bearer's bound UDP address (valid once open)."""
        return self._stack.media.local

    async def open(self) -> None:
        """Open the bearer and start discovery; see ``discovery_wait``."""
        if self._state != _NEW:
            raise ClosedError("a UserTransport can be opened once")
        loop = asyncio.get_running_loop()
        try:
            self._stack.start(loop)
        except BaseException:
            self._state = _CLOSED
            raise
        self._info = NodeInfo(self._stack.own, self._identity)
        self._state = _OPEN
        await self._settle(loop)

    async def _settle(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait up to ``discovery_wait`` for links; stop early once they stop appearing."""
        deadline = loop.time() + self._discovery_wait
        quiet = min(0.02, self._discovery_wait)
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            wait = remaining if not self._stack.up else min(remaining, quiet)
            try:
                await asyncio.wait_for(self._stack.wait_peer_up(), wait)
            except asyncio.TimeoutError:
                return  # no (new) link within the wait: settled
            if self._stack.closed:
                return

    async def __aenter__(self) -> UserTransport:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Graceful close: withdraw every publication, reset the links (peers see it at once)."""
        if self._state == _CLOSED:
            return
        was_open = self._state == _OPEN
        self._state = _CLOSED
        if not was_open:
            return
        for ep in list(self._endpoints.values()):
            await ep.aclose()
        self._stack.stop()
        self._close_endpoints()

    async def abort(self) -> None:
        """Close abruptly, as if the process had died: no withdrawals, no link RESET.

        Peers on this host notice through liveness at once, others after link tolerance.
        Meant for failure tests.
        """
        if self._state == _CLOSED:
            return
        self._state = _CLOSED
        self._stack.abort()
        self._close_endpoints()

    @property
    def _endpoints(self) -> dict[int, UserEndpoint]:
        """The open endpoints by port: the socket layer's port table (kept once)."""
        return self._stack.sockets.ports  # type: ignore[return-value]

    def _close_endpoints(self) -> None:
        for ep in self._endpoints.values():
            ep._closed = True
        self._endpoints.clear()

    async def open_endpoint(self, handler: MessageHandler) -> UserEndpoint:
        """Open a new endpoint whose received/returned datagrams go to ``handler``."""
        if self._state != _OPEN:
            raise ClosedError("the transport is not open")
        port, self._next_port = alloc_port(self._next_port, self._endpoints)
        ep = UserEndpoint(self, port, handler)
        self._endpoints[port] = ep
        return ep

    async def subscribe(
        self, target: ServiceRange | ServiceAddr, *, filter: SubFilter = SubFilter.PORTS
    ) -> TopologySubscription:
        """Subscribe to publications overlapping ``target`` (type 0: nodes, type 2: links)."""
        if self._state != _OPEN or self._stack.topsrv is None:
            raise ClosedError("the transport is not open")
        return self._stack.topsrv.subscribe(target, filter)

    def name_table(self) -> list[Publication]:
        """Every publication this node knows, by type then age (``tipc nametable show``)."""
        table = self._stack.table
        return table.publications() if table is not None and self._state == _OPEN else []

    def peers(self) -> dict[int, PeerInfo]:
        """Every peer node this node knows (up, or down and not yet forgotten) by address:
        its identity (the 16-byte node id its discovery messages carry), media address, link
        state and counters (``tipc node list`` / ``tipc link list``)."""
        node = self._stack.node
        return node.peers() if node is not None and self._state == _OPEN else {}

    def statistics(self) -> Mapping[str, int]:
        """Counters: messages/bytes sent and received, returned, UDP datagrams, links..."""
        return self._stack.statistics()

    async def _drain(self) -> None:
        await self._stack.wait_drained(DRAIN_HIGH_WATER)
        await asyncio.sleep(0)  # always yield, like a stream's drain()

    def __repr__(self) -> str:
        state = ("new", "open", "closed")[self._state]
        addr = f" {self._stack.own:08x}" if self._stack.own else ""
        return f"<UserTransport {self._identity}{addr} {state}>"


def _parse_peer(p: Union[tuple[str, int], str]) -> tuple[str, int]:
    if isinstance(p, tuple):
        host, port = p
    elif isinstance(p, str):
        host, _, port_s = p.partition(":")
        try:
            port = int(port_s) if port_s else DEFAULT_PORT
        except ValueError:
            raise AddressError(f"bad peer address {p!r}: expected 'ip[:port]'") from None
    else:
        raise AddressError(f"bad peer address {p!r}: expected (ip, port) or 'ip[:port]'")
    try:
        socket.inet_aton(host)
    except OSError:
        raise AddressError(f"bad peer address {p!r}: not an IPv4 address") from None
    if not 0 < int(port) < 65536:
        raise AddressError(f"bad peer port in {p!r}")
    return (host, int(port))

