"""The in-process TIPC cluster: node membership, links, partitions and fault injection."""

from __future__ import annotations

import asyncio
import random
from typing import Callable, Union

from ...addr import node_addr_from_id
from ...errors import AddressError, ClosedError, TransportError
from ..base import MAX_MESSAGE, RETURNED_DATA_MAX, DeliveryFailure
from .faults import LinkFaults
from .link import DATA_KINDS, DISTR, LEAVE, MCAST, RETURNED, Link, Message
from .node import _BULK, _NEW as _NEW_STATE, MemoryTransport

__all__ = ["MemoryCluster", "NodeRef", "default_cluster", "reset_default_cluster"]

#: A node given as its transport or its 32-bit address.
NodeRef = Union[MemoryTransport, int]

_IDENTITY_MAX = 16  # TIPC_NODEID_LEN


class MemoryCluster:
    """An in-process TIPC cluster whose nodes are :class:`MemoryTransport` objects.

    ``seed`` drives every random choice (first port numbers, fault decisions), so a test
    that performs the same operations sees the same outcome. All nodes of a cluster must
    run on one event loop.

    Args:
        seed: seed for :class:`random.Random`.
        max_message: largest datagram, inclusive (TIPC: 66 000).
        tolerance: seconds between a silent link failure (partition, crashed peer) and
            the link being declared down — TIPC's link tolerance (1.5 s by default in
            the kernel; 0 here, i.e. immediate). Messages sent meanwhile are held and
            either delivered on :meth:`heal` or returned ``NO_NODE``.
        faults: default :class:`LinkFaults` for every inter-node link.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        max_message: int = MAX_MESSAGE,
        tolerance: float = 0.0,
        faults: LinkFaults | None = None,
    ) -> None:
        if not isinstance(max_message, int) or max_message < RETURNED_DATA_MAX:
            raise ValueError(f"max_message must be an int >= {RETURNED_DATA_MAX}, got {max_message!r}")
        self.seed = seed
        self.max_message = max_message
        self.tolerance = tolerance
        #: Default faults for links without a per-link setting (``None`` = perfect links).
        self.faults: LinkFaults | None = faults
        self._fault_rng = random.Random(f"tipcrpc-memory:{seed}:faults")
        self._port_rng = random.Random(f"tipcrpc-memory:{seed}:ports")
        self._auto_id = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nodes: dict[int, MemoryTransport] = {}  # every node not yet forgotten
        self._identities: dict[str, MemoryTransport] = {}
        self._alive: dict[int, MemoryTransport] = {}  # open and not crashed, join order
        self._links: dict[tuple[int, int], Link] = {}
        self._link_faults: dict[frozenset[int], LinkFaults | None] = {}
        self._partitions: set[frozenset[int]] = set()
        self._pending_down: dict[frozenset[int], asyncio.TimerHandle] = {}

    # ------------------------------------------------------------------ nodes

    def node(self, identity: str | None = None) -> MemoryTransport:
        """Create a node (not yet open: use ``async with``).

        Its address is the kernel's hash of the identity (UTF-8, at most 16 bytes).
        Raises :class:`~tipcrpc.errors.AddressError` if the identity or its address is
        already in use in this cluster.
        """
        if self._loop is not None and self._loop.is_closed():
            self._drop_stale()
        if identity is None:
            while True:
                self._auto_id += 1
                identity = f"mem{self._auto_id}"
                if identity not in self._identities and self._addr_of(identity) not in self._nodes:
                    break
        if not isinstance(identity, str) or not identity:
            raise AddressError(f"node identity must be a non-empty string, got {identity!r}")
        if identity in self._identities:
            raise AddressError(f"node identity {identity!r} is already in use in this cluster")
        addr = self._addr_of(identity)
        other = self._nodes.get(addr)
        if other is not None:
            raise AddressError(
                f"node identity {identity!r} hashes to address {addr:08x}, already used by {other.own_node.identity!r}"
            )
        first_port = self._port_rng.randrange(1, 1 << 31)
        node = MemoryTransport(self, identity, addr, first_port)
        self._nodes[addr] = node
        self._identities[identity] = node
        return node

    @staticmethod
    def _addr_of(identity: str) -> int:
        raw = identity.encode("utf-8")
        if len(raw) > _IDENTITY_MAX:
            raise AddressError(f"node identity {identity!r} is longer than {_IDENTITY_MAX} bytes")
        addr = node_addr_from_id(raw)
        if addr == 0:
            raise AddressError(f"node identity {identity!r} hashes to the invalid address 0")
        return addr

    @property
    def nodes(self) -> list[MemoryTransport]:
        """Nodes that are open and alive, in join order."""
        return list(self._alive.values())

    def __getitem__(self, addr: int) -> MemoryTransport:
        """The node with 32-bit address ``addr``."""
        return self._nodes[addr]

    async def aclose(self) -> None:
        """Close every open node gracefully (nodes never opened are just forgotten)."""
        for node in list(self._nodes.values()):
            await node.aclose()

    # ------------------------------------------------------------------ fault injection

    def kill(self, node: NodeRef) -> None:
        """Crash ``node``: its endpoints and subscriptions vanish without notice.

        Peers declare their links to it down after :attr:`tolerance`: they purge its
        publications (``Withdrawn``), see ``LinkDown``/``NodeDown``, and get messages
        still on the way to it back as ``Returned(NO_NODE)``.
        """
        n = self._resolve(node)
        if n._addr not in self._alive:
            return
        del self._alive[n._addr]
        n._crash()
        loopback = self._links.pop((n._addr, n._addr), None)
        if loopback is not None:
            loopback.shut()  # whatever it was sending itself dies with it
        n._out.pop(n._addr, None)
        peers = [dst for (src, dst) in self._links if src == n._addr]
        for peer in peers:
            self._link_fail(n._addr, peer)
        self._maybe_forget(n)

    def partition(self, a: NodeRef, b: NodeRef) -> None:
        """Cut the link between ``a`` and ``b`` (both directions) until :meth:`heal`.

        After :attr:`tolerance` each side purges the other's publications and sees
        ``LinkDown``/``NodeDown``; messages in flight come back ``Returned(NO_NODE)``.
        """
        x, y = self._resolve(a)._addr, self._resolve(b)._addr
        if x == y:
            raise AddressError("cannot partition a node from itself")
        self._partitions.add(frozenset((x, y)))
        if (x, y) in self._links:
            self._link_fail(x, y)

    def heal(self, a: NodeRef, b: NodeRef) -> None:
        """Restore the link between ``a`` and ``b``.

        Within the tolerance the held messages simply flow again; afterwards the link
        comes back up with ``LinkUp``/``NodeUp`` and a bulk exchange of publications.
        """
        x, y = self._resolve(a)._addr, self._resolve(b)._addr
        key = frozenset((x, y))
        self._partitions.discard(key)
        if x not in self._alive or y not in self._alive:
            return
        handle = self._pending_down.pop(key, None)
        if handle is not None:
            handle.cancel()
            self._links[(x, y)].unblock()
            self._links[(y, x)].unblock()
        elif (x, y) not in self._links:
            self._link_up(self._alive[x], self._alive[y])

    def partitioned(self, a: NodeRef, b: NodeRef) -> bool:
        """True if :meth:`partition` was called for this pair and not healed."""
        return frozenset((self._resolve(a)._addr, self._resolve(b)._addr)) in self._partitions

    def set_faults(self, a: NodeRef, b: NodeRef, faults: LinkFaults | None) -> None:
        """Set the faults of the link between ``a`` and ``b`` (both directions).

        ``None`` makes that link perfect regardless of :attr:`faults`; use
        :meth:`clear_faults` to fall back to the cluster default again.
        """
        x, y = self._resolve(a)._addr, self._resolve(b)._addr
        self._link_faults[frozenset((x, y))] = faults

    def clear_faults(self, a: NodeRef | None = None, b: NodeRef | None = None) -> None:
        """Forget the per-link setting for ``a``–``b``, or every per-link setting."""
        if a is None or b is None:
            self._link_faults.clear()
        else:
            self._link_faults.pop(frozenset((self._resolve(a)._addr, self._resolve(b)._addr)), None)

    def faults_between(self, a: NodeRef, b: NodeRef) -> LinkFaults | None:
        """The faults currently applied between ``a`` and ``b``."""
        x, y = self._resolve(a)._addr, self._resolve(b)._addr
        return self._link_faults.get(frozenset((x, y)), self.faults) if x != y else None

    def _resolve(self, node: NodeRef) -> MemoryTransport:
        if isinstance(node, MemoryTransport):
            if node._cluster is not self:
                raise AddressError(f"{node!r} belongs to another cluster")
            return node
        if isinstance(node, int) and node in self._nodes:
            return self._nodes[node]
        raise AddressError(f"no node {node!r} in this cluster")

    # ------------------------------------------------------------------ membership internals

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._alive or self._links:
                if self._loop is not None and not self._loop.is_closed():
                    raise TransportError("this MemoryCluster is in use by another running event loop")
                self._drop_stale()
            self._loop = loop
        return loop

    def _drop_stale(self) -> None:
        """The cluster's loop is closed (e.g. an earlier test ended with nodes open).

        Nodes that were open can never run again: drop them as if they had crashed, and
        free their identities. Nodes created but never opened are kept.
        """
        for node in list(self._nodes.values()):
            if node._state == _NEW_STATE:
                continue
            node._crash()
            del self._nodes[node._addr]
            self._identities.pop(node.own_node.identity, None)
        self._alive.clear()
        self._links.clear()
        self._pending_down.clear()
        self._loop = None

    def _join(self, node: MemoryTransport) -> None:
        loop = self._bind_loop()
        if self._nodes.get(node._addr) is not node:
            raise ClosedError(f"memory node {node.own_node} no longer belongs to its cluster")
        addr = node._addr
        loopback = Link(addr, addr, loop, node._receive, _no_faults, self._fault_rng)
        self._links[(addr, addr)] = loopback
        node._out[addr] = loopback
        node._node_up(addr)
        peers = list(self._alive.values())
        self._alive[addr] = node
        for peer in peers:
            if frozenset((addr, peer._addr)) not in self._partitions:
                self._link_up(node, peer)

    def _leave(self, node: MemoryTransport) -> None:
        """Graceful leave: tell every peer, behind whatever was already sent to it."""
        addr = node._addr
        self._alive.pop(addr, None)
        loopback = self._links.pop((addr, addr), None)
        if loopback is not None:
            loopback.shut()  # only messages between its own, now closed, endpoints
        node._out.pop(addr, None)
        for (src, dst), link in list(self._links.items()):
            if src != addr:
                continue
            if link.blocked:
                # Nothing gets through a failed link: do not make the caller of aclose()
                # wait out the tolerance; the peer learns now.
                self._link_down(addr, dst)
            else:
                link.send((LEAVE, addr, None, None, 0, None))
        self._maybe_forget(node)

    def _link_up(self, a: MemoryTransport, b: MemoryTransport) -> None:
        loop = self._loop
        assert loop is not None
        x, y = a._addr, b._addr
        ab = Link(x, y, loop, b._receive, self._faults_fn(x, y), self._fault_rng)
        ba = Link(y, x, loop, a._receive, self._faults_fn(x, y), self._fault_rng)
        self._links[(x, y)] = ab
        self._links[(y, x)] = ba
        a._out[y] = ab
        b._out[x] = ba
        for here, there in ((a, b), (b, a)):
            here._link_up(there._addr)
        # Bulk name distribution, ahead of any later incremental update on the same link.
        for src, link in ((a, ab), (b, ba)):
            items = src._bulk_items()
            if items:
                link.send((DISTR, src._addr, None, None, _BULK, items))

    def _faults_fn(self, x: int, y: int) -> Callable[[], LinkFaults | None]:
        key = frozenset((x, y))
        per_link = self._link_faults

        def faults() -> LinkFaults | None:
            return per_link.get(key, self.faults)

        return faults

    def _link_fail(self, x: int, y: int) -> None:
        """The link x–y stopped working; declare it down after the tolerance."""
        key = frozenset((x, y))
        if key in self._pending_down:
            return
        for pair in ((x, y), (y, x)):
            link = self._links.get(pair)
            if link is not None:
                link.block()
        if self.tolerance <= 0:
            self._link_down(x, y)
        else:
            assert self._loop is not None
            self._pending_down[key] = self._loop.call_later(self.tolerance, self._link_down, x, y)

    def _link_down(self, x: int, y: int) -> None:
        handle = self._pending_down.pop(frozenset((x, y)), None)
        if handle is not None:
            handle.cancel()
        undelivered: list[Message] = []
        for src, dst in ((x, y), (y, x)):
            link = self._links.pop((src, dst), None)
            if link is not None:
                undelivered.extend(link.shut())
            node = self._nodes.get(src)
            if link is not None and node is not None and node._out.get(dst) is link:
                del node._out[dst]
        for here, there in ((x, y), (y, x)):
            node = self._alive.get(here)
            if node is not None:
                node._link_down(there)
        for msg in undelivered:
            self._bounce(msg, DeliveryFailure.NO_NODE)
        for addr in (x, y):
            node = self._nodes.get(addr)
            if node is not None and addr not in self._alive:
                self._maybe_forget(node)

    def _bounce(self, msg: Message, reason: DeliveryFailure) -> None:
        """Return a data message to its sender from the sender's own node.

        Used when the destination node is gone (the sender's node detects the loss).
        Multicast and non-data messages are dropped, as the kernel does.
        """
        kind = msg[0]
        if kind not in DATA_KINDS or kind == MCAST:
            return
        src = msg[1]
        node = self._alive.get(src.node)
        if node is None:
            return
        loopback = node._out.get(src.node)
        if loopback is None:
            return
        loopback.send((RETURNED, src, msg[2], msg[3][:RETURNED_DATA_MAX], src.port, reason))

    def _maybe_forget(self, node: MemoryTransport) -> None:
        addr = node._addr
        if addr in self._alive:
            return
        if any(addr in pair for pair in self._links):
            return
        self._forget(node)

    def _forget(self, node: MemoryTransport) -> None:
        if self._nodes.get(node._addr) is node:
            del self._nodes[node._addr]
            self._identities.pop(node.own_node.identity, None)
        gone = node._gone
        if gone is not None and not gone.done():
            gone.set_result(None)

    def __repr__(self) -> str:
        return f"<MemoryCluster seed={self.seed} nodes={len(self._alive)}>"


def _no_faults() -> None:
    return None


_default: MemoryCluster | None = None


def default_cluster() -> MemoryCluster:
    """The process-wide cluster that ``serve()`` and ``connect()`` meet in by default."""
    global _default
    if _default is None:
        _default = MemoryCluster()
    return _default


def reset_default_cluster(cluster: MemoryCluster | None = None) -> MemoryCluster:
    """Replace the process-wide default cluster (a fresh one if ``cluster`` is None)."""
    global _default
    _default = cluster if cluster is not None else MemoryCluster()
    return _default

