"""The connectionless socket layer of the userspace node (``net/tipc/socket.c``).

What happens between a port and the node's links:

* **sending** (``__tipc_sendmsg``): a named message is looked up in the local name table
  (anycast, ``EHOSTUNREACH`` if nothing matches), a multicast message goes once to every node
  with a matching publication, a direct message to its node; messages for this node never
  touch the bearer — they are queued and delivered from the event loop, never from inside
  :meth:`SocketLayer.send`;
* **receiving**: data messages go to the addressed port; a named message whose socket
  vanished is looked up once more at the destination (``tipc_msg_lookup_dest``), else it is
  returned to its sender (``tipc_msg_reverse``) with ``NO_NAME``/``NO_PORT``; a multicast
  message reaches each matching local socket once;
* **returned messages** come back to the sending port as :class:`Returned`, including the
  ones a link never transmitted (provably undelivered).

:class:`SocketLayer` owns the local ports (the one record of which endpoints exist) and
the caches of the receive path; the :class:`~.stack.Stack` that holds it provides the way
down (``_xmit_parts``/``_xmit_internal``), the name table and the peers that are up.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, Protocol, Union, cast

from ...addr import Scope, ServiceAddr, ServiceRange, SocketAddr
from ...errors import AddressError, RemoteProtocolError, ServiceUnreachable
from ..base import RETURNED_DATA_MAX, Delivery, DeliveryFailure, Destination, Returned
from . import msg as M
from .header import DATA_WORDS_SIZE, buf_user, payload_words
from .msg import direct_hdr, direct_msg_trusted, named_hdr, named_msg_trusted

if TYPE_CHECKING:
    from ...nametable.table import NameTable
    from .name_distr import NameDistributor
    from .stack import Stack

__all__ = ["Port", "SocketLayer"]

_CLUSTER = int(Scope.CLUSTER)
_NODE = int(Scope.NODE)
_NAMED = M.TIPC_NAMED_MSG
_DIRECT = M.TIPC_DIRECT_MSG
_MCAST = M.TIPC_MCAST_MSG
_CACHE_MAX = 4096
#: Named messages rerouted to another node that we remember, to pass returns on.
REROUTE_MEMORY = 1024

_FAILURES = {int(f): f for f in DeliveryFailure}

# Delivery is a frozen slots dataclass: its __init__ sets each field through
# object.__setattr__. Setting the slots through their descriptors makes the same object at
# half the cost; this runs once per message received. (tests/unit/user/test_socket_layer.py
# checks that what the fast path delivers equals, hashes and prints as Delivery(...), which
# fails if Delivery gains a field this does not set.)
_new = object.__new__
_set_data = vars(Delivery)["data"].__set__
_set_source = vars(Delivery)["source"].__set__
_set_dest = vars(Delivery)["dest"].__set__


class Port(Protocol):
    """What the stack needs from a local endpoint."""

    _address: SocketAddr

    def _deliver(self, item: Union[Delivery, Returned]) -> None: ...


class SocketLayer:
    """Send to names, ranges and sockets; deliver, reroute, reject and return messages.

    Held by ``stack``, whose counters ``stats`` it updates; :meth:`start` gives it what
    exists once the node runs.
    """

    def __init__(self, stack: Stack, stats: dict[str, int]) -> None:
        self._stack = stack
        self.stats = stats
        # Messages and bytes sent and received: attributes rather than ``stats`` keys, as
        # the stack's fast path counts them too (an attribute costs half as much to
        # increment); the stack's statistics() reports them.
        self.messages_sent = 0
        self.bytes_sent = 0
        self.messages_received = 0
        self.bytes_received = 0
        #: Local endpoints by port number: the only record of them (the transport's too).
        self.ports: dict[int, Port] = {}
        self.own = 0
        self.table: NameTable | None = None
        self.distr: NameDistributor | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.up: dict[int, Any] = {}
        self._xmit_parts = stack._xmit_parts
        self._xmit_internal = stack._xmit_internal
        self._local: deque[bytes] = deque()
        self._local_scheduled = False
        self._src_cache: dict[tuple[int, int], SocketAddr] = {}
        self._name_cache: dict[tuple[int, int], ServiceAddr] = {}
        self._range_cache: dict[tuple[int, int, int], ServiceRange] = {}
        # (sender port, type, instance) -> sender node of named messages we rerouted to
        # another node: a return from there comes back to us (its prevnode) and must be
        # passed on to the original sender.
        self._rerouted: OrderedDict[tuple[int, int, int], int] = OrderedDict()

    def start(
        self, *, own: int, table: NameTable, distr: NameDistributor, loop: asyncio.AbstractEventLoop, up: dict[int, Any]
    ) -> None:
        """The node runs: its address, name table and distributor, loop, and peers up."""
        self.own = own
        self.table = table
        self.distr = distr
        self.loop = loop
        self.up = up

    def close(self) -> None:
        """The stack is closed: messages queued for local ports are dropped."""
        self._local.clear()

    # ------------------------------------------------------------------------- send

    def send(self, port: int, dest: Destination, data: bytes, importance: int) -> None:
        """Send a datagram from local ``port`` (see :meth:`Endpoint.send`).

        The endpoint has checked that it is open, and a transport closes its endpoints
        before its stack: the closed state is not checked again here. Messages to other
        nodes go as header + payload, the payload never copied (:meth:`_xmit_parts`).
        """
        stack = self._stack
        if stack._names_pending:
            stack.flush_names()  # a publication made before this message must not be overtaken
        own = self.own
        if type(dest) is SocketAddr:
            node = dest.node
            # Every value is checked already (endpoint, SocketAddr): no re-check.
            if node != own:
                # tipc_node_xmit: NoLink (ServiceUnreachable, EHOSTUNREACH) without a link
                self._xmit_parts(node, direct_hdr(importance, own, port, node, dest.port, len(data)), data)
            else:
                self._local_put(direct_msg_trusted(importance, own, port, node, dest.port, data))
        elif type(dest) is ServiceAddr:
            found = self.table.lookup_anycast(dest.type, dest.instance, 0)  # type: ignore[union-attr]
            if found is None:
                raise ServiceUnreachable(f"no publication matches {dest}")
            node, dport = found
            # Every value is checked already (endpoint, ServiceAddr, name table): no re-check.
            if node != own:
                hdr = named_hdr(importance, own, port, node, dport, dest.type, dest.instance, len(data), _CLUSTER)
                self._xmit_parts(node, hdr, data)
            else:
                self._local_put(
                    named_msg_trusted(importance, own, port, node, dport, dest.type, dest.instance, data, _CLUSTER)
                )
        elif type(dest) is ServiceRange:
            t, lo, hi = dest.type, dest.lower, dest.upper
            nodes = self.table.lookup_mcast_nodes(t, lo, hi)  # type: ignore[union-attr]
            if not nodes:
                raise ServiceUnreachable(f"no publication overlaps {dest}")
            for node in nodes:
                m = M.mcast_msg(importance, own, port, t, lo, hi, data, _CLUSTER, dest_node=node)
                if node == own:
                    self._local_put(m)
                elif node in self.up:
                    self._xmit_internal(node, m)
        else:
            raise AddressError(f"destination must be a ServiceAddr, ServiceRange or SocketAddr, got {dest!r}")
        self.messages_sent += 1
        self.bytes_sent += len(data)

    def _local_put(self, m: bytes) -> None:
        self._local.append(m)
        if not self._local_scheduled:
            self._local_scheduled = True
            cast(Any, self.loop).call_soon(self._local_flush)  # uvloop's handle: see fastpath.Timer

    def _local_flush(self) -> None:
        self._local_scheduled = False
        q = self._local
        own = self.own
        # Only what is queued now: messages sent by handlers run here wait for the next round.
        for _ in range(len(q)):
            if self._stack.closed:
                return
            self.dispatch(own, q.popleft())

    # ------------------------------------------------------------------------- receive

    def dispatch(self, peer: int, m: bytes) -> None:
        """A complete message arrived from ``peer`` (or from this node).

        Messages come from the link (validated there) or from this node's own builders.
        """
        f = payload_words(m) if len(m) >= DATA_WORDS_SIZE else None
        if f is not None:
            # Fast path: a direct or named data message without error code, for a port
            # that exists — nearly all traffic (RPC calls go to socket addresses).
            hsize, size, orig_port, dest_port, orig_node, name_type, name_instance = f
            ep = self.ports.get(dest_port)
            if ep is not None:
                if name_type < 0:
                    dest: Destination = ep._address
                else:
                    dest = self._name_cache.get((name_type, name_instance))  # type: ignore[assignment]
                    if dest is None:
                        dest = self._name(name_type, name_instance)
                data = m[hsize:size]
                src = self._src_cache.get((orig_node, orig_port))
                if src is None:
                    src = self._src(orig_node, orig_port)
                self.messages_received += 1
                self.bytes_received += len(data)
                # Delivery(data, src, dest) without the frozen dataclass __init__.
                d = _new(Delivery)
                _set_data(d, data)
                _set_source(d, src)
                _set_dest(d, dest)
                ep._deliver(d)
                return
        user = buf_user(m)
        if user <= M.CRITICAL_IMPORTANCE:
            try:
                h = M.data_header(m)
            except RemoteProtocolError:
                self.stats["malformed_dropped"] += 1
                return
            self._data(h, m)
        elif user == M.NAME_DISTRIBUTOR:
            try:
                self.distr.receive(peer, m)  # type: ignore[union-attr]
            except RemoteProtocolError:
                self.stats["malformed_dropped"] += 1
        else:
            # CONN_MANAGER and others: connections are not implemented by this node.
            self.stats["unsupported_dropped"] += 1

    def _src(self, node: int, port: int) -> SocketAddr:
        key = (node, port)
        s = self._src_cache.get(key)
        if s is None:
            if len(self._src_cache) >= _CACHE_MAX:
                self._src_cache.clear()
            s = self._src_cache[key] = SocketAddr(node, port)
        return s

    def _name(self, type: int, instance: int) -> ServiceAddr:
        key = (type, instance)
        s = self._name_cache.get(key)
        if s is None:
            if len(self._name_cache) >= _CACHE_MAX:
                self._name_cache.clear()
            s = self._name_cache[key] = ServiceAddr(type, instance)
        return s

    def _range(self, type: int, lower: int, upper: int) -> ServiceRange:
        key = (type, lower, upper)
        s = self._range_cache.get(key)
        if s is None:
            if len(self._range_cache) >= _CACHE_MAX:
                self._range_cache.clear()
            s = self._range_cache[key] = ServiceRange(type, lower, upper)
        return s

    def _data(self, h: M.DataHeader, m: bytes) -> None:
        data = m[h.hsize : h.size]
        mtype = h.mtype
        if h.errcode:
            self._returned(h, data, m)
            return
        if mtype == _NAMED or mtype == _DIRECT:
            port = self.ports.get(h.dest_port)
            if port is not None:
                self.messages_received += 1
                self.bytes_received += len(data)
                dest: Destination = (
                    self._name(h.name_type, h.name_instance) if mtype == _NAMED else self._src(self.own, h.dest_port)
                )
                port._deliver(Delivery(data, self._src(h.orig_node, h.orig_port), dest))
                return
            if mtype == _NAMED and h.reroute_cnt == 0:
                if self._reroute(h, m):
                    return
                self._reject(m, M.TIPC_ERR_NO_NAME)
            else:
                self._reject(m, M.TIPC_ERR_NO_NAME if mtype == _NAMED else M.TIPC_ERR_NO_PORT)
        elif mtype == _MCAST:
            ports = self.table.lookup_mcast_sockets(  # type: ignore[union-attr]
                h.name_type, h.name_instance, h.name_upper, local_origin=h.orig_node == self.own
            )
            if not ports:
                self.stats["multicast_unmatched"] += 1  # the kernel drops it too
                return
            src = self._src(h.orig_node, h.orig_port)
            rng = self._range(h.name_type, h.name_instance, h.name_upper)
            n = 0
            for p in ports:
                ep = self.ports.get(p)
                if ep is not None:
                    ep._deliver(Delivery(data, src, rng))
                    n += 1
            self.messages_received += n
            self.bytes_received += n * len(data)
        else:
            self._reject(m, M.TIPC_ERR_NO_PORT)

    def _reroute(self, h: M.DataHeader, m: bytes) -> bool:
        """Second-chance anycast lookup at the destination node (``tipc_msg_lookup_dest``)."""
        domain = self.own if h.lookup_scope == _NODE else 0
        found = self.table.lookup_anycast(h.name_type, h.name_instance, domain)  # type: ignore[union-attr]
        if found is None or (found[0] == self.own and found[1] not in self.ports):
            return False
        node, dport = found
        hdr = M.Header.decode(m)
        hdr.reroute_cnt = h.reroute_cnt + 1
        hdr.destnode = node
        hdr.destport = dport
        if node != self.own:
            hdr.prevnode = self.own
        fwd = hdr.encode() + m[h.hsize : h.size]
        self.stats["messages_rerouted"] += 1
        if node == self.own:
            self._local_put(fwd)
            return True
        if h.orig_node != self.own:
            rr = self._rerouted
            rr[(h.orig_port, h.name_type, h.name_instance)] = h.orig_node
            if len(rr) > REROUTE_MEMORY:
                rr.popitem(last=False)
        return self._xmit_internal(node, fwd)

    def _reject(self, m: bytes, err: int) -> None:
        """Return an undeliverable message to its sender (``tipc_msg_reverse``)."""
        try:
            back = M.rejected(m, err, self.own)
        except RemoteProtocolError:
            self.stats["malformed_dropped"] += 1
            return
        if back is None:  # dest_droppable, or already an error: the kernel drops it
            self.stats["returns_dropped"] += 1
            return
        self.stats["messages_rejected"] += 1
        dnode = int.from_bytes(back[28:32], "big")
        if dnode == self.own:
            self._local_put(back)
        elif not self._xmit_internal(dnode, back):
            self.stats["returns_dropped"] += 1

    def _returned(self, h: M.DataHeader, data: bytes, m: bytes) -> None:
        ep = self.ports.get(h.dest_port)
        if ep is None:
            sender = self._rerouted.pop((h.dest_port, h.name_type, h.name_instance), None)
            if h.mtype == _NAMED and sender is not None and sender != self.own:
                # The second chance failed too: hand the return on to the original sender.
                if self._xmit_internal(sender, m):
                    return
            self.stats["returns_dropped"] += 1
            return
        dest = self._sent_to(h, h.orig_node, h.orig_port)  # a return's ports are swapped
        self.stats["messages_returned"] += 1
        ep._deliver(Returned(data, dest, _FAILURES.get(h.errcode, DeliveryFailure.NO_PORT)))

    def _sent_to(self, h: M.DataHeader, node: int, port: int) -> Destination:
        """What a message of ours was addressed to: its name, its range, or ``<node:port>``."""
        if h.mtype == _NAMED:
            return self._name(h.name_type, h.name_instance)
        if h.mtype == _MCAST:
            return self._range(h.name_type, h.name_instance, h.name_upper)
        return self._src(node, port)

    def undeliverable(self, m: bytes, reason: DeliveryFailure) -> None:
        """A message of ours the link could not deliver: return it to its port locally."""
        if buf_user(m) > M.CRITICAL_IMPORTANCE:
            return  # name distribution and other internal traffic: nothing to report
        try:
            h = M.data_header(m)
        except RemoteProtocolError:
            return
        if h.errcode:
            return  # a return we were sending back: dropped, as the kernel would
        ep = self.ports.get(h.orig_port) if h.orig_node == self.own else None
        if ep is None:
            self.stats["returns_dropped"] += 1
            return
        data = m[h.hsize : h.size][:RETURNED_DATA_MAX]
        self.stats["messages_returned"] += 1
        ep._deliver(Returned(data, self._sent_to(h, h.dest_node, h.dest_port), reason))
