"""The userspace node's fast path: the common packet, end to end, in one call each way.

Nearly every packet an RPC sends or receives is the same case: a direct data message (32-byte
header, no error code) to or from a peer whose link is established, in sequence, unfragmented,
for a port that exists. The general path handles it through five layers (stack, node, link,
socket layer, endpoint), each re-reading the header and building or clearing intermediate
results. :class:`FastPath` does exactly what those layers do *for this case* and nothing
else, like the kernel's ``tipc_rcv`` fast path:

* :meth:`FastPath.rcv` — the bearer's packet callback. One unpack of the 8 header words,
  then every condition of the common case; if one fails, nothing has been changed and the
  packet goes to the general path (:meth:`.stack.Stack._on_packet`). Otherwise it does what
  :meth:`.node.Node.rcv` + :meth:`.link.Link.rcv_in_seq` + the stack + the socket layer's
  ``dispatch`` would: count the packet, release what it acknowledges (and let the backlog
  into the window), advance ``rcv_nxt``, ask for an ack after
  :data:`~.link_proto.TIPC_MIN_LINK_WIN` unacknowledged packets, deliver ``Delivery(data,
  source, port address)`` to the endpoint, wake senders waiting for the queues to drain.
  A MSG_BUNDLER packet whose messages are all such direct messages is the same case, its
  messages delivered in order.
* :meth:`FastPath.send` — the endpoints' send: a direct message that fits one packet, to
  a peer with an established link, is sent here — the header built once with seqno and
  acks already in it (the general path builds it, then copies and stamps it), queued on
  the link for retransmission, handed to the bearer — or, with the send window full,
  queued in the link's backlog. Anything else goes to the socket layer
  (:meth:`.socket_layer.SocketLayer.send`).

**Bundling** (Nagle's rule, bounded by the event loop's turn). A message sent while the
link has packets in flight — the peer has not acknowledged everything yet, so it is busy or
the answer is on its way — does not go out on its own: it waits in the link's
:attr:`~.link.Link.bundleq` until the end of the current turn of the event loop, when
:meth:`.stack.Stack.flush_bundles` sends everything that gathered as MSG_BUNDLER packets
(:meth:`.link.Link.flush_bundle`) — or as soon as :data:`BUNDLE_BATCH` messages have
gathered, so that the peer starts on them while this side goes on. A lone request/response
exchange never waits (the reply acknowledges the request, so the link is idle when the next
one is sent); under load, up to 32 messages share one datagram, one sequence number and one
system call each way, which is how the kernel bundles a congested link. ``UserTransport(bundling=False)``
sends every message at once.

Both paths read and write the link's state (:mod:`.link` documents the fields and its
transmit-queue entries) because the point is to do it in one function; a change to what
``Link.rcv_in_seq`` or ``Link.xmit_one`` do must be made here too.
``tests/component/test_user_fast_path.py`` runs the same traffic through both paths and
checks that they leave the wire, the links, the counters and the deliveries identical, and
that every other case falls back.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Callable

from ...addr import SocketAddr
from ..base import Delivery, Destination
from .link import _WHOLE, UC_RETR_TIME
from .link_fsm import LINK_ESTABLISHED, LINK_SYNCHING, SELF_UP_PEER_UP
from .link_proto import TIPC_MIN_LINK_WIN
from .msgconst import BASIC_H_SIZE, INT_H_SIZE, MAX_USER_MSG_SIZE, MSG_BUNDLER, TIPC_DIRECT_MSG, TIPC_VERSION
from .socket_layer import _new, _set_data, _set_dest, _set_source

if TYPE_CHECKING:
    from .stack import Stack

__all__ = ["FastPath"]

_H8 = struct.Struct(">8I")
# Word 0 of a direct data message as the fast path takes it: version 2 (bits 31..29), a data
# user (importance 0..3: bits 28..27 clear), a 32-byte header (bits 24..21 = 8 words),
# sequenced (bit 20 clear). The importance (bits 26..25) and the flags (19..17) may be anything.
_RX_W0_MASK = 0xF9F00000
_W0_DIRECT = (TIPC_VERSION << 29) | ((BASIC_H_SIZE >> 2) << 21)
# Word 1: message type DIRECT (bits 31..29) and no error code (bits 28..25).
_RX_W1_MASK = 0xFE000000
_W1_DIRECT = TIPC_DIRECT_MSG << 29
# Word 0 of a MSG_BUNDLER packet: version 2, user MSG_BUNDLER, a 40-byte header, sequenced.
_RX_BUNDLE_MASK = 0xFFF00000
_W0_BUNDLE = (TIPC_VERSION << 29) | (MSG_BUNDLER << 25) | ((INT_H_SIZE >> 2) << 21)
_LINK_UP = LINK_ESTABLISHED | LINK_SYNCHING
#: Largest message (header included) that waits to be bundled: copying it into the bundle
#: costs less than a packet of its own; a larger one goes out alone (after the bundle).
BUNDLE_MAX = 2048
#: Messages after which a bundle leaves without waiting for the end of the turn. 32 messages
#: share one packet's cost well enough; holding more back only keeps the peer idle: with 64
#: callers and client and server on separate CPUs, one bundle per turn made the two
#: processes take turns (53 k calls/s), two let them overlap (~110 k/s); on one CPU it
#: costs ~3 % (65 → 63 k/s).
BUNDLE_BATCH = 32
_MAX_SIZE = BASIC_H_SIZE + MAX_USER_MSG_SIZE


class FastPath:
    """The fused common case of one :class:`~.stack.Stack` (see the module docstring).

    Created with the stack; :meth:`start` arms it once the node runs, :meth:`stop` disarms it.
    Unarmed, it knows no peer, so every packet takes the general path (which drops them
    once the stack is closed).
    """

    __slots__ = ("_stack", "_general", "own", "up", "ports", "_src_cache", "_src", "_node",
                 "_sockets", "_send_parts", "_time", "_sockets_send", "bundling", "_cork")  # fmt: skip

    def __init__(self, stack: Stack, *, bundling: bool = True) -> None:
        self._stack = stack
        self._general: Callable[[bytes, Any], None] = stack._on_packet
        self.own = 0
        self.up: dict[int, Any] = {}
        self.ports: dict[int, Any] = {}
        self._src_cache: dict[tuple[int, int], Any] = {}
        self._src: Callable[[int, int], Any] = SocketAddr
        self._node: Any = None
        self._sockets = stack.sockets
        self._send_parts: Callable[[Any, Any, bytes], None] = stack._join_and_send
        self._time: Callable[[], float] = float
        self._sockets_send = stack.sockets.send
        #: Bundle what is sent while a link has packets in flight (module docstring).
        self.bundling = bundling
        self._cork: Callable[[Any], None] = stack._cork

    def start(self) -> None:
        """The node runs: bind its address, peers, ports, counters, bearer and clock."""
        stack = self._stack
        node = stack.node
        assert node is not None and stack.loop is not None
        self.own = node.own_addr
        self.up = node.up
        self.ports = stack.sockets.ports
        self._src_cache = stack.sockets._src_cache
        self._src = stack.sockets._src
        self._node = node
        self._send_parts = stack._send_parts
        self._time = stack.loop.time

    def stop(self) -> None:
        """The stack is closing: everything takes the general path from now on."""
        self.up = {}  # no peer matches: both paths fall back

    # ------------------------------------------------------------------------- receive

    def rcv(self, data: bytes, src: Any) -> None:
        """The bearer's packet callback: the common case here, anything else to the general path."""
        n = len(data)
        if n >= BASIC_H_SIZE:
            w0, w1, w2, w3, w4, w5, w6, w7 = _H8.unpack_from(data, 0)
            if w0 & 0x1FFFF == n and n <= _MAX_SIZE and w7 == self.own:  # one whole message, nothing trailing
                if w0 & _RX_W0_MASK == _W0_DIRECT and w1 & _RX_W1_MASK == _W1_DIRECT:
                    ep = self.ports.get(w5)
                    inner = None
                elif w0 & _RX_BUNDLE_MASK == _W0_BUNDLE:
                    inner = self._bundled(data, n)
                    ep = inner
                else:
                    ep = None
                p = self.up.get(w3)
                if p is not None and ep is not None and p.state == SELF_UP_PEER_UP:
                    link = p.link
                    if link.state == LINK_ESTABLISHED and w2 & 0xFFFF == link.rcv_nxt and not link.deferdq:
                        # Node.rcv + Link.rcv_in_seq: the next packet of an established link.
                        self._node.rx_packets += 1
                        link.silent_intv_cnt = 0
                        xmitq: list[Any] | None = None
                        released = False
                        transmq = link.transmq
                        if transmq:
                            acked = w2 >> 16
                            if ((acked - transmq[0][0]) & 0xFFFF) < 32768:  # less_eq(head seqno, acked)
                                transmq.popleft()
                                while transmq and ((acked - transmq[0][0]) & 0xFFFF) < 32768:
                                    transmq.popleft()
                                released = True
                                if link.backlogq:
                                    xmitq = []
                                    link._advance_backlog(self._time(), xmitq)
                        link.rcv_nxt = (w2 + 1) & 0xFFFF
                        lst = link.stats
                        lst["recv_pkts"] += 1
                        link.rcv_unacked += 1
                        if link.rcv_unacked >= TIPC_MIN_LINK_WIN:
                            if xmitq is None:
                                xmitq = []
                            link.build_state_msg(xmitq)
                        if xmitq:
                            self._stack._send_packets([(p.media, pkt) for pkt in xmitq])
                        if inner is None:
                            self._deliver(data, w6, w4, ep, BASIC_H_SIZE, n)
                        else:
                            # Link._input of a MSG_BUNDLER, then dispatch of each message.
                            lst["recv_bundles"] += 1
                            lst["recv_bundled"] += len(inner)
                            deliver = self._deliver
                            for orig, sport, iep, start, end in inner:
                                deliver(data, orig, sport, iep, start, end)
                        if released and self._stack._drain_waiters:
                            self._stack._wake_drained()
                        return
        self._general(data, src)

    def _deliver(self, data: bytes, orig: int, sport: int, ep: Any, start: int, end: int) -> None:
        """SocketLayer.dispatch of the message whose payload is ``data[start:end]``:
        ``Delivery(payload, <orig node:orig port>, port address)`` to ``ep``."""
        src = self._src_cache.get((orig, sport))
        if src is None:
            src = self._src(orig, sport)
        sk = self._sockets
        sk.messages_received += 1
        sk.bytes_received += end - start
        d = _new(Delivery)  # built as the socket layer does, without the frozen dataclass __init__
        _set_data(d, data[start:end])
        _set_source(d, src)
        _set_dest(d, ep._address)
        ep._deliver(d)

    def _bundled(self, data: bytes, n: int) -> list[tuple[int, int, Any, int, int]] | None:
        """The messages of a MSG_BUNDLER packet as ``(orig node, orig port, endpoint, start,
        end of payload)``, if every one is a direct message for a port of this node and
        they fill the packet exactly (as :func:`.fragment.unbundle` walks it); else None,
        and the packet takes the general path. (Like ``tipc_data_input``, a bundled
        message goes to its port whatever destination node it names: the bundle's was
        checked.)"""
        ports = self.ports
        out = []
        pos = INT_H_SIZE
        while pos + BASIC_H_SIZE <= n:
            w0, w1, _w2, _w3, w4, w5, w6, _w7 = _H8.unpack_from(data, pos)
            size = w0 & 0x1FFFF
            end = pos + size
            if (
                w0 & _RX_W0_MASK != _W0_DIRECT
                or w1 & _RX_W1_MASK != _W1_DIRECT
                or size < BASIC_H_SIZE
                or end > n
            ):
                return None
            ep = ports.get(w5)
            if ep is None:
                return None
            out.append((w6, w4, ep, pos + BASIC_H_SIZE, end))
            pos = (end + 3) & ~3
        return out if out and end == n else None

    # ------------------------------------------------------------------------- send

    def send(self, port: int, dest: Destination, data: bytes, importance: int) -> None:
        """Send from local ``port``: what :meth:`.socket_layer.SocketLayer.send` does.

        The endpoint has checked every value. A direct message to another node whose link
        is up, that fits one packet, with no name change waiting to go first, is sent here
        (or backlogged if the window is full, or left to be bundled if the link has packets
        in flight); anything else goes to the socket layer (which also raises NoLink
        without a link).
        """
        p = self.up.get(dest.node) if dest.__class__ is SocketAddr else None
        if p is not None:
            link = p.link
            size = BASIC_H_SIZE + len(data)
            if (
                link.state & _LINK_UP
                and size <= link.mtu - INT_H_SIZE
                and not self._stack._names_pending  # a publication must not be overtaken
            ):
                transmq = link.transmq
                queued = len(transmq)
                own = self.own
                dport: int = dest.port  # type: ignore[union-attr]  # a SocketAddr (above)
                bundleq = link.bundleq
                if (queued or bundleq) and size <= BUNDLE_MAX and self.bundling:
                    # Packets in flight: bundle it with what else is sent this turn.
                    if not bundleq:
                        self._cork(p)
                    bundleq.append(
                        _H8.pack(_W0_DIRECT | (importance << 25) | size, _W1_DIRECT, 0, own, port, dport, own, p.addr)
                        + data
                    )
                    if len(bundleq) >= BUNDLE_BATCH:
                        self._stack.flush_peer(p, self._time())
                elif bundleq:  # too large to bundle: the general path sends the bundle first
                    self._sockets_send(port, dest, data, importance)
                    return
                elif queued < link.window and not link.backlogq:
                    # Link.xmit_one, the header built with seqno, ack and bcast_ack in it.
                    seqno = link.snd_nxt
                    hdr = _H8.pack(
                        _W0_DIRECT | (importance << 25) | size,
                        _W1_DIRECT | ((link.bc_rcv_nxt - 1) & 0xFFFF),
                        (((link.rcv_nxt - 1) & 0xFFFF) << 16) | seqno,
                        own, port, dport, own, p.addr,
                    )  # fmt: skip
                    transmq.append([seqno, hdr, _WHOLE, self._time() + UC_RETR_TIME, 0, 0.0, data])
                    link.rcv_unacked = 0
                    link.snd_nxt = (seqno + 1) & 0xFFFF
                    lst = link.stats
                    lst["sent_pkts"] += 1
                    queued += 1
                    if queued > lst["max_queue_sz"]:
                        lst["max_queue_sz"] = queued
                    self._send_parts(p.media, hdr, data)
                elif queued >= link.window:
                    # Link.xmit_one with the window full: the message waits in the backlog
                    # (seqno and acks are stamped when the window lets it out).
                    backlogq = link.backlogq
                    hdr = _H8.pack(_W0_DIRECT | (importance << 25) | size, _W1_DIRECT, 0, own, port, dport, own, p.addr)
                    backlogq.append([0, hdr, _WHOLE, 0.0, 0, 0.0, data])
                    queued += len(backlogq)
                    lst = link.stats
                    if queued > lst["max_queue_sz"]:
                        lst["max_queue_sz"] = queued
                else:  # a backlog with room in the window: only the general path's order of events
                    self._sockets_send(port, dest, data, importance)
                    return
                sk = self._sockets
                sk.messages_sent += 1
                sk.bytes_sent += size - BASIC_H_SIZE
                return
        self._sockets_send(port, dest, data, importance)
