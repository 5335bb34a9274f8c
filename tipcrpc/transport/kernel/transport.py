"""``KernelTransport``: the Transport contract over the Linux kernel's ``AF_TIPC``.

One transport = this process's view of one kernel TIPC node (the node of the network
namespace it runs in, or of ``netns=``). Endpoints are ``SOCK_RDM`` sockets
(:mod:`.socket`), subscriptions share one topology-server connection (:mod:`.topsrv`).

``netns="n1"`` creates every socket inside network namespace ``n1`` (``setns`` around
socket creation; a socket keeps its namespace for life), so one test process can drive
several nodes of a netns cluster. Configuration (identity, bearers, tolerance) is done
with :mod:`.netlink`.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Dict, Mapping, Optional, Set

from ...addr import Importance, NodeInfo, ServiceRange, SocketAddr
from ...errors import AddressError, ClosedError, KernelError, TransportUnavailable
from ...events import SubFilter
from ..base import MAX_MESSAGE, MessageHandler
from . import netns as _netns
from . import wire
from .probe import MODULE_HINT, own_node_of
from .socket import Counters, KernelEndpoint
from .topsrv import KernelSubscription, TopologyClient

__all__ = ["KernelTransport"]

log = logging.getLogger("tipcrpc.transport.kernel")
_warned_no_bearer: Set[Optional[str]] = set()


class KernelTransport:
    """The kernel ``AF_TIPC`` transport (``kind == "kernel"``).

    Args:
        netns: network namespace to create every socket in (a name under
            ``/var/run/netns`` or a path); ``None`` = the caller's own.
        importance: the importance of datagrams whose ``send`` passes none (TIPC grants
            higher levels a larger receive budget: 2/4/8/16 MiB).
        warn_duplicates: warn (:class:`~.socket.DuplicatePublicationWarning`) when two
            endpoints of this process publish the same name on the same node.

    Use ``async with KernelTransport() as t:``. Raises
    :class:`~tipcrpc.errors.TransportUnavailable` on open if ``AF_TIPC`` is unusable.
    """

    kind = "kernel"

    def __init__(self, *, netns: Optional[str] = None, importance: Importance = Importance.LOW,
                 warn_duplicates: bool = True) -> None:
        try:
            self.importance = Importance(importance)
        except ValueError:
            raise AddressError(f"importance must be an Importance (0..3), got {importance!r}") from None
        self.netns = netns
        self.warn_duplicates = warn_duplicates
        self._counters = Counters()
        self._endpoints: Set[KernelEndpoint] = set()
        self._topology: Optional[TopologyClient] = None
        self._probe_sock: Optional[socket.socket] = None
        self._node: Optional[NodeInfo] = None
        self._state = "new"

    def __repr__(self) -> str:
        where = f" netns={self.netns}" if self.netns else ""
        return f"<KernelTransport{where} {self._node or self._state}>"

    # ------------------------------------------------------------------ lifecycle

    def _socket(self, type: int) -> socket.socket:
        try:
            sock = _netns.create_socket(self.netns, wire.AF_TIPC, type)
        except TransportUnavailable:
            raise
        except OSError as exc:
            if exc.errno == errno.EAFNOSUPPORT:
                raise TransportUnavailable(MODULE_HINT) from None
            raise KernelError(exc.errno or errno.EIO, f"socket(AF_TIPC): {exc.strerror}") from None
        sock.setblocking(False)
        return sock

    async def open(self) -> "KernelTransport":
        """Open the transport (what ``async with`` does)."""
        if self._state != "new":
            raise ClosedError(f"a KernelTransport opens once (state: {self._state})")
        self._state = "opening"
        try:
            self._probe_sock = self._socket(socket.SOCK_RDM)
            self._refresh_node()
            topo = TopologyClient(self._socket, self._counters)
            await topo.open()
            self._topology = topo
        except BaseException:
            self._state = "closed"
            self._close_sockets()
            raise
        self._state = "open"
        if self._node is not None and self._node.addr == 0 and self.netns not in _warned_no_bearer:
            _warned_no_bearer.add(self.netns)
            from .probe import BEARER_HINT

            log.warning("%s", BEARER_HINT)
        return self

    async def __aenter__(self) -> "KernelTransport":
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every endpoint (withdrawing names) and the topology connection; idempotent."""
        if self._state in ("closed", "new"):
            self._state = "closed"
            return
        self._state = "closing"
        for ep in list(self._endpoints):
            await ep.aclose(linger=1.0)
        self._close_sockets()
        self._state = "closed"

    def abort(self) -> None:
        """Close every socket at once, without flushing or withdrawing first (a crash)."""
        self._state = "closed"
        self._close_sockets()

    def _close_sockets(self) -> None:
        for ep in list(self._endpoints):
            ep.abort()
        self._endpoints.clear()
        if self._topology is not None:
            self._topology.abort()
        if self._probe_sock is not None:
            self._probe_sock.close()
            self._probe_sock = None

    def _require_open(self) -> None:
        if self._state != "open":
            raise ClosedError(f"the transport is not open (state: {self._state})")

    # ------------------------------------------------------------------ node

    def _refresh_node(self) -> NodeInfo:
        sock = self._probe_sock
        if sock is None:
            raise ClosedError("the transport is closed")
        addr, identity = own_node_of(sock)
        self._node = NodeInfo(addr, identity)
        return self._node

    @property
    def own_node(self) -> NodeInfo:
        """This node's address and identity (re-read while the address is still 0)."""
        node = self._node
        if node is None:
            raise ClosedError("the transport is not open")
        if node.addr == 0 and self._probe_sock is not None:
            node = self._refresh_node()
        return node

    @property
    def max_message(self) -> int:
        return MAX_MESSAGE

    # ------------------------------------------------------------------ endpoints

    async def open_endpoint(self, handler: MessageHandler) -> KernelEndpoint:
        """A new ``SOCK_RDM`` endpoint delivering to ``handler``."""
        self._require_open()
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}")
        sock = self._socket(socket.SOCK_RDM)
        try:
            addr = wire.socket_addr_from(sock.getsockname())
            if addr.node == 0:
                addr = SocketAddr(self.own_node.addr, addr.port)
            ep = KernelEndpoint(self, sock, handler, addr)
        except BaseException:
            sock.close()
            raise
        self._endpoints.add(ep)
        self._counters.endpoints_opened += 1
        return ep

    def _endpoint_closed(self, ep: KernelEndpoint) -> None:
        self._endpoints.discard(ep)

    # ------------------------------------------------------------------ topology

    async def subscribe(self, target: ServiceRange, *, filter: SubFilter = SubFilter.PORTS) -> KernelSubscription:
        """Subscribe to publications overlapping ``target`` (type 0: nodes, 2: links)."""
        self._require_open()
        assert self._topology is not None
        return await self._topology.subscribe(target, filter)

    # ------------------------------------------------------------------ statistics

    def statistics(self) -> Mapping[str, int]:
        """Counters: datagrams/bytes sent and received, returned, queued, topology events."""
        stats: Dict[str, int] = self._counters.as_dict()
        stats["endpoints"] = len(self._endpoints)
        stats["queued_now"] = sum(ep.queued for ep in self._endpoints)
        stats["subscriptions"] = self._topology.subscriptions if self._topology is not None else 0
        return stats
