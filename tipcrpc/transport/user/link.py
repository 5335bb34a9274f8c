"""A unicast link endpoint (``net/tipc/link.c``), pure.

One :class:`Link` per peer node: the RESET/ACTIVATE/STATE protocol that brings the link up
and supervises it, and the reliable in-order packet stream on top (16-bit seqnos, acks
piggy-backed on every packet, NACKs in STATE messages, retransmission, send window with an
unbounded backlog). Functions follow the kernel's names and order of operations so the two
can be read side by side. This module holds the packet stream; the protocol half (state
predicates, RESET/ACTIVATE/STATE messages, the link timer) is
:class:`~.link_proto.LinkProtocol`, and the state transitions themselves are tables in
:mod:`.link_fsm`.

The stack's fast path (:mod:`.fast_path`) repeats what :meth:`Link.rcv_in_seq` and
:meth:`Link.xmit_one` do for the common packet, on these same fields: change both together
(``tests/component/test_user_fast_path.py`` compares them).

Time (``now``, seconds) is an argument. Packets to send are appended to a caller-supplied
``xmitq`` list; complete messages received in order are appended to ``delivered``; calls
return the kernel's result bits (``TIPC_LINK_UP_EVT``/``TIPC_LINK_DOWN_EVT``) for the node
to act on.

Deliberately not implemented (single bearer, small clusters): failover/synch tunnelling
(TUNNEL_PROTOCOL packets are counted and dropped), Gap ACK blocks (we do not advertise
``TIPC_GAP_ACK_BLOCK``, so peers send none and expect none), the overlapping-ring monitor
(peers only add monitor records above 32 nodes; ours carry none), congestion-window growth
(the window is fixed at ``window``), and the broadcast link (see ``bc_*`` below: we only
track the peer's broadcast sequence enough to send a correct ``bcast_ack``).
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Any

from ...errors import RemoteProtocolError
from .fragment import Reassembler, bundle_parts, unbundle
from .link_fsm import (
    LINK_ESTABLISHED,
    LINK_ESTABLISHING,
    LINK_FAILURE_EVT,
    LINK_RESETTING,
    TIPC_LINK_DOWN_EVT,
    TIPC_LINK_UP_EVT,
    less,
    less_eq,
    more,
)
from .header import buf_user, msg_ack, msg_seqno, msg_user
from .link_proto import (
    MIN_MTU,
    TIPC_DEF_LINK_WIN,
    TIPC_MAX_IF_NAME,
    TIPC_MAX_LINK_TOL,
    TIPC_MAX_LINK_WIN,
    TIPC_MIN_LINK_TOL,
    TIPC_MIN_LINK_WIN,
    LinkProtocol,
)
from .msg import (
    INT_H_SIZE,
    BCAST_PROTOCOL,
    CONN_MANAGER,
    CRITICAL_IMPORTANCE,
    GROUP_PROTOCOL,
    LINK_PROTOCOL,
    MSG_BUNDLER,
    MSG_FRAGMENTER,
    NAME_DISTRIBUTOR,
    TUNNEL_PROTOCOL,
)

__all__ = [
    "Link",
    "TIPC_MIN_LINK_WIN",
    "TIPC_MAX_LINK_WIN",
    "TIPC_DEF_LINK_WIN",
    "TIPC_MIN_LINK_TOL",
    "TIPC_MAX_LINK_TOL",
    "TIPC_MAX_IF_NAME",
    "MIN_MTU",
]

UC_RETR_TIME = 0.001  #: a packet is retransmitted at most once per millisecond

_W012 = struct.Struct(">III")
_W12 = struct.Struct(">II")
_ACK_SEQ = struct.Struct(">HI")  # at byte 6: bcast_ack (word 1 low half), word 2

# transmq/backlog entry fields (a list per packet: cheaper than an object). A packet is
# ``_BUF`` (its header, or the whole packet) followed by ``_BODY`` (the caller's payload,
# kept apart so that it is never copied: the shell sends header and body with one
# scatter-gather sendmsg). ``_ORIG`` says which caller message ends with this packet:
# None (none: a fragment before the last, or link-internal), _WHOLE (the packet is the
# message), _BUNDLE (the packet is a MSG_BUNDLER of whole messages) or the original message
# (the last fragment of a fragmented one).
_SEQ, _BUF, _ORIG, _NXT_RETR, _RETR_CNT, _RETR_STAMP, _BODY = range(7)
_WHOLE = True
_BUNDLE = False


def _messages(entry: list[Any]) -> list[bytes]:
    """The caller's messages that ``entry`` ends (see the entry fields above)."""
    orig = entry[_ORIG]
    if orig is _WHOLE:
        return [entry[_BUF] + entry[_BODY]]
    if orig is _BUNDLE:
        return unbundle(bytes(entry[_BUF]) + entry[_BODY])
    return [orig]


class Link(LinkProtocol):
    """One link endpoint to ``peer_addr`` (``struct tipc_link``).

    Created in state RESETTING like the kernel; the node calls :meth:`reset` and
    :meth:`fsm` (``LINK_RESET_EVT``) right after, as ``tipc_node_check_dest`` does.
    """

    def __init__(
        self,
        *,
        own_addr: int,
        peer_addr: int,
        session: int,
        mtu: int,
        tolerance_ms: int,
        window: int,
        peer_caps: int,
        if_name: bytes = b"tipcrpc",
        priority: int = 10,
    ) -> None:
        self.own_addr = own_addr
        self.addr = peer_addr
        self.session = session & 0xFFFF
        self.peer_session = 0
        self.in_session = False
        self.unaddressed_activate = False  #: sent by build_start_msgs; see accept_peer_up
        self.state = LINK_RESETTING
        self.tolerance_ms = tolerance_ms
        self.abort_limit = 4
        self.silent_intv_cnt = 0
        self.rst_cnt = 0
        self.priority = priority
        self.net_plane = 0
        self.bearer_id = 0
        self.peer_bearer_id = 0
        self.if_name = if_name[: TIPC_MAX_IF_NAME - 1]
        self.peer_if_name = b""
        self.advertised_mtu = mtu
        self.mtu = mtu
        self.window = window
        self.peer_caps = peer_caps
        # sending
        self.snd_nxt = 1
        self.snd_nxt_state = 1
        self.checkpoint = 1
        self.transmq: deque[list[Any]] = deque()
        self.backlogq: deque[list[Any]] = deque()
        #: Whole messages waiting to go out together in one MSG_BUNDLER packet (see
        #: :meth:`flush_bundle`); every other send flushes them first, so order holds.
        self.bundleq: list[bytes] = []
        # receiving
        self.rcv_nxt = 1
        self.rcv_nxt_state = 1
        self.rcv_unacked = 0
        self.deferdq: dict[int, bytes] = {}
        self.reasm = Reassembler()
        # Broadcast: we send no broadcast packets (our bc snd_nxt stays 1) and accept none,
        # but keep the peer's broadcast sequence from its BCAST_PROTOCOL init message so
        # that our bcast_ack is the value a kernel expects from a peer that received
        # nothing of its broadcasts.
        self.bc_snd_nxt = 1
        self.bc_rcv_nxt = 1
        self.bc_up = False
        self.failure_reason = ""
        self.stats: dict[str, int] = dict.fromkeys(_STAT_KEYS, 0)

    def queued(self) -> int:
        """Packets accepted and not yet acknowledged (transmit queue, backlog and the
        messages waiting to be bundled)."""
        return len(self.transmq) + len(self.backlogq) + len(self.bundleq)

    def reset(self) -> tuple[list[bytes], list[bytes]]:
        """``tipc_link_reset``: new session, empty queues, counters back to 1.

        Returns the original messages accepted by :meth:`xmit` and not acknowledged, in
        send order, as ``(unacked, unsent)``: *unacked* were transmitted (their fate is
        unknown: acks are delayed and piggy-backed, so the peer may well have them);
        *unsent* never left — the packet carrying the end of the message was still in the
        backlog, or the message still waited to be bundled — so the peer provably never
        received them.
        """
        unacked = [m for e in self.transmq if e[_ORIG] is not None for m in _messages(e)]
        unsent = [m for e in self.backlogq if e[_ORIG] is not None for m in _messages(e)]
        unsent += self.bundleq
        self.bundleq = []
        self.in_session = False
        self.unaddressed_activate = False
        self.peer_session = (self.peer_session - 1) & 0xFFFF  # force re-synch of the session
        self.session = (self.session + 1) & 0xFFFF
        self.mtu = self.advertised_mtu
        self.transmq.clear()
        self.backlogq.clear()
        self.deferdq.clear()
        self.reasm.reset()
        self.rcv_unacked = 0
        self.snd_nxt = self.rcv_nxt = 1
        self.snd_nxt_state = self.rcv_nxt_state = 1
        self.checkpoint = 1
        self.silent_intv_cnt = 0
        self.rst_cnt = 0
        self.bc_rcv_nxt = 1
        self.bc_up = False
        return unacked, unsent

    # -- sending -----------------------------------------------------------------------------

    def _stamp(self, entry: list[Any], seqno: int) -> bytes | tuple[bytearray, bytes]:
        """A queued packet with seqno, ack and bcast_ack written in, to send.

        A copy of the header (or whole packet); a packet with a body is returned as
        ``(header, body)``, the body not copied (see the entry fields above).
        """
        buf = bytearray(entry[_BUF])
        # Word 1's low half (bcast_ack) and word 2 (ack, seqno); word 1's high half stays.
        _ACK_SEQ.pack_into(buf, 6, (self.bc_rcv_nxt - 1) & 0xFFFF, (((self.rcv_nxt - 1) & 0xFFFF) << 16) | seqno)
        body = entry[_BODY]
        return (buf, body) if body else bytes(buf)

    def xmit_one(self, hdr: bytes, body: bytes, now: float, xmitq: list[Any], orig: Any = _WHOLE) -> None:
        """:meth:`xmit` for a message ``hdr + body`` that fits one packet (no fragments).

        The packet goes to ``xmitq`` as ``(stamped header, body)`` — ``body`` itself, never
        copied — or as bytes when ``body`` is empty (``hdr`` is then the whole message).
        ``orig`` is ``_BUNDLE`` for a bundle of :meth:`flush_bundle`.
        """
        if self.bundleq:
            self.flush_bundle(now, xmitq)
        transmq = self.transmq
        if self.backlogq or len(transmq) >= self.window:
            self.backlogq.append([0, hdr, orig, 0.0, 0, 0.0, body])
            self._advance_backlog(now, xmitq)
            n = len(transmq) + len(self.backlogq)
            if n > self.stats["max_queue_sz"]:
                self.stats["max_queue_sz"] = n
            return
        # _send_new, inlined: this runs once per message sent.
        seqno = self.snd_nxt
        transmq.append([seqno, hdr, orig, now + UC_RETR_TIME, 0, 0.0, body])
        buf = bytearray(hdr)  # _stamp, inlined
        _ACK_SEQ.pack_into(buf, 6, (self.bc_rcv_nxt - 1) & 0xFFFF, (((self.rcv_nxt - 1) & 0xFFFF) << 16) | seqno)
        xmitq.append((buf, body) if body else bytes(buf))
        self.rcv_unacked = 0
        self.snd_nxt = (seqno + 1) & 0xFFFF
        st = self.stats
        st["sent_pkts"] += 1
        if len(transmq) > st["max_queue_sz"]:
            st["max_queue_sz"] = len(transmq)

    def xmit(self, packets: list[bytes], orig: bytes | None, now: float, xmitq: list[Any]) -> None:
        """``tipc_link_xmit``: queue one message's packets (all ``<= mtu``).

        ``orig`` (the message as the caller gave it) rides on the last packet, so
        :meth:`reset` can return it if it is never acknowledged. Packets beyond the send
        window wait in the backlog, which is never limited or dropped.
        """
        if self.bundleq:
            self.flush_bundle(now, xmitq)
        last = len(packets) - 1
        if last > 0:
            self.stats["sent_fragmented"] += 1
            self.stats["sent_fragments"] += last + 1
        for i, pkt in enumerate(packets):
            entry = [0, pkt, orig if i == last else None, 0.0, 0, 0.0, b""]
            if len(self.transmq) < self.window and not self.backlogq:
                self._send_new(entry, now, xmitq)
            else:
                self.backlogq.append(entry)
        n = len(self.transmq) + len(self.backlogq)
        if n > self.stats["max_queue_sz"]:
            self.stats["max_queue_sz"] = n

    def flush_bundle(self, now: float, xmitq: list[Any]) -> None:
        """Send the messages of :attr:`bundleq`, bundled (``tipc_msg_try_bundle``).

        The shell fills :attr:`bundleq` with the small whole messages it sends while the
        link has packets in flight, and calls this once its turn of work is done (or any
        other send on the link does, first): consecutive messages go out in MSG_BUNDLER
        packets of at most ``mtu - INT_H_SIZE`` bytes, one sequence number each, which a
        kernel peer unpacks as its own (``tipc_msg_extract``). A message that has no
        neighbour to share a packet with goes out as itself.
        """
        msgs = self.bundleq
        if not msgs:
            return
        self.bundleq = []
        limit = self.mtu - INT_H_SIZE
        group: list[bytes] = []
        size = INT_H_SIZE
        for m in msgs:
            if group and size + len(m) > limit:
                self._send_group(group, now, xmitq)
                group = []
                size = INT_H_SIZE
            group.append(m)
            size += (len(m) + 3) & ~3
        self._send_group(group, now, xmitq)

    def _send_group(self, group: list[bytes], now: float, xmitq: list[Any]) -> None:
        """One packet of :meth:`flush_bundle`: the message itself, or a bundle of them."""
        if len(group) == 1:
            self.xmit_one(group[0], b"", now, xmitq)
            return
        # The bundle carries its first message's importance, as the kernel's does (a data
        # message's user field, word 0 bits 28..25, is its importance: bundleq holds data only).
        imp = (group[0][0] >> 1) & 3
        hdr, body = bundle_parts(group, prevnode=self.own_addr, destnode=self.addr, importance=imp)
        st = self.stats
        st["sent_bundles"] += 1
        st["sent_bundled"] += len(group)
        self.xmit_one(hdr, body, now, xmitq, _BUNDLE)

    def _send_new(self, entry: list[Any], now: float, xmitq: list[Any]) -> None:
        seqno = self.snd_nxt
        entry[_SEQ] = seqno
        entry[_NXT_RETR] = now + UC_RETR_TIME
        self.transmq.append(entry)
        xmitq.append(self._stamp(entry, seqno))
        self.rcv_unacked = 0
        self.stats["sent_pkts"] += 1
        self.snd_nxt = (seqno + 1) & 0xFFFF

    def _advance_backlog(self, now: float, xmitq: list[Any]) -> None:
        """``tipc_link_advance_backlog``: move backlog into the window."""
        while self.backlogq and len(self.transmq) < self.window:
            self._send_new(self.backlogq.popleft(), now, xmitq)

    def _retransmit_failure(self, now: float) -> bool:
        """``link_retransmit_failure``: the head packet has been retransmitted for 10×tolerance."""
        head = self.transmq[0]
        if not head[_RETR_CNT]:
            return False
        if now <= head[_RETR_STAMP] + self.tolerance_ms * 10 / 1000:
            return False
        self.failure_reason = f"retransmission failure (seqno {head[_SEQ]})"
        return True

    def _advance_transmq(self, acked: int, gap: int, now: float, xmitq: list[Any] | None) -> tuple[int, bool, int]:
        """``tipc_link_advance_transmq`` (unicast, no Gap ACK blocks).

        Releases packets up to ``acked``; retransmits ``acked+1 .. acked+gap``.
        Returns ``(released, retransmitted, rc)``.
        """
        q = self.transmq
        released = 0
        while q and less_eq(q[0][_SEQ], acked):
            q.popleft()
            released += 1
        retransmitted = False
        rc = 0
        if gap and xmitq is not None:
            last = (acked + gap) & 0xFFFF
            for entry in q:
                seqno = entry[_SEQ]
                if not less_eq(seqno, last):
                    break
                if seqno == ((acked + 1) & 0xFFFF) and self._retransmit_failure(now):
                    rc |= self.fsm(LINK_FAILURE_EVT)
                    break
                if now < entry[_NXT_RETR]:
                    continue
                entry[_NXT_RETR] = now + UC_RETR_TIME
                xmitq.append(self._stamp(entry, seqno))
                self.stats["retransmitted"] += 1
                retransmitted = True
                if not entry[_RETR_CNT]:
                    entry[_RETR_STAMP] = now
                entry[_RETR_CNT] += 1
        return released, retransmitted, rc

    # -- receiving ---------------------------------------------------------------------------

    def rcv(self, packet: bytes, now: float, xmitq: list[Any], delivered: list[bytes]) -> int:
        """``tipc_link_rcv``: one validated packet from the peer. Returns result bits."""
        w0, _w1, w2 = _W012.unpack_from(packet, 0)
        user = msg_user(w0)
        if user == LINK_PROTOCOL:
            return self._proto_rcv(packet, now, xmitq)
        if user <= CRITICAL_IMPORTANCE:
            sent = self.rcv_in_seq(w2, now)
            if sent is not None:
                delivered.append(packet)
                if sent:
                    xmitq.extend(sent)
                return 0
        self.silent_intv_cnt = 0
        rc = 0
        released = 0
        pkt: bytes | None = packet
        while pkt is not None:
            w0, _w1, w2 = _W012.unpack_from(pkt, 0)
            seqno = msg_seqno(w2)
            rcv_nxt = self.rcv_nxt
            if not self.is_up:
                if self.state == LINK_ESTABLISHING:
                    rc = TIPC_LINK_UP_EVT
                break
            if less(seqno, rcv_nxt) or more(seqno, rcv_nxt + TIPC_MAX_LINK_WIN):
                self.stats["duplicates"] += 1
                break
            n, _r, _rc = self._advance_transmq(msg_ack(w2), 0, now, None)
            released += n
            if seqno != rcv_nxt:
                if seqno in self.deferdq:
                    self.stats["duplicates"] += 1
                else:
                    self.deferdq[seqno] = pkt
                self._build_nack_msg(xmitq)
                break
            self.rcv_nxt = (rcv_nxt + 1) & 0xFFFF
            self.stats["recv_pkts"] += 1
            rc |= self._input(pkt, msg_user(w0), now, delivered)
            self.rcv_unacked += 1
            if self.rcv_unacked >= TIPC_MIN_LINK_WIN:
                self.build_state_msg(xmitq)
            if rc & TIPC_LINK_DOWN_EVT:
                break
            pkt = self.deferdq.pop(self.rcv_nxt, None)
        if released:
            self._advance_backlog(now, xmitq)
        return rc

    def rcv_in_seq(self, w2: int, now: float) -> list[Any] | tuple[()] | None:
        """The fast path of :meth:`rcv` for a payload packet whose word 2 is ``w2``.

        When the packet is the next in sequence on an established link with nothing
        deferred — nearly every packet — do what :meth:`rcv` would (release what it
        acknowledges, advance the backlog, count it for the next ack) and return the packets
        to send (usually none); the caller delivers the packet. Otherwise change nothing and
        return ``None``: the caller uses :meth:`rcv`.
        """
        if (w2 & 0xFFFF) != self.rcv_nxt or self.state != LINK_ESTABLISHED or self.deferdq:
            return None
        self.silent_intv_cnt = 0
        xmitq: list[Any] | tuple[()] = ()
        transmq = self.transmq
        if transmq:
            acked = w2 >> 16
            if ((acked - transmq[0][0]) & 0xFFFF) < 32768:  # less_eq(head seqno, acked)
                transmq.popleft()
                while transmq and ((acked - transmq[0][0]) & 0xFFFF) < 32768:
                    transmq.popleft()
                if self.backlogq:
                    xmitq = []
                    self._advance_backlog(now, xmitq)
        self.rcv_nxt = (self.rcv_nxt + 1) & 0xFFFF
        self.stats["recv_pkts"] += 1
        self.rcv_unacked += 1
        if self.rcv_unacked >= TIPC_MIN_LINK_WIN:
            if not xmitq:
                xmitq = []
            self.build_state_msg(xmitq)
        return xmitq

    def _input(self, pkt: bytes, user: int, now: float, delivered: list[bytes]) -> int:
        """``tipc_data_input`` + ``tipc_link_input``: hand a sequenced packet upwards."""
        if user <= CRITICAL_IMPORTANCE or user in (CONN_MANAGER, GROUP_PROTOCOL):
            delivered.append(pkt)
        elif user == NAME_DISTRIBUTOR:
            self.bc_up = True  # the kernel marks the broadcast rcv link up on name updates
            delivered.append(pkt)
        elif user == MSG_FRAGMENTER:
            self.stats["recv_fragments"] += 1
            try:
                msg = self.reasm.append(pkt)
            except RemoteProtocolError:
                # Fragments arrive in order on a reliable link, so a broken sequence means
                # the stream is corrupt: the kernel resets the link.
                self.stats["reasm_errors"] += 1
                self.failure_reason = "fragment reassembly failed"
                return self.fsm(LINK_FAILURE_EVT)
            if msg is not None:
                self.stats["recv_fragmented"] += 1
                return self._input(msg, buf_user(msg), now, delivered)
        elif user == MSG_BUNDLER:
            self.stats["recv_bundles"] += 1
            try:
                inner = unbundle(pkt)
            except RemoteProtocolError:
                self.stats["malformed_bundles"] += 1
                return 0
            self.stats["recv_bundled"] += len(inner)
            for m in inner:
                iu = buf_user(m)
                if iu in (MSG_BUNDLER, MSG_FRAGMENTER, BCAST_PROTOCOL, TUNNEL_PROTOCOL, LINK_PROTOCOL):
                    self.stats["dropped_users"] += 1  # tipc_data_input does not take these
                    continue
                self._input(m, iu, now, delivered)
        elif user == BCAST_PROTOCOL:
            self._bc_init_rcv(pkt)
        else:
            self.stats["dropped_users"] += 1  # TUNNEL_PROTOCOL (no failover), crypto, unknown
        return 0


_STAT_KEYS = (
    "sent_pkts",
    "recv_pkts",
    "sent_states",
    "recv_states",
    "sent_probes",
    "recv_probes",
    "sent_nacks",
    "recv_nacks",
    "sent_acks",
    "retransmitted",
    "duplicates",
    "deferred_recv",
    "sent_fragmented",
    "sent_fragments",
    "recv_fragments",
    "recv_fragmented",
    "sent_bundles",
    "sent_bundled",
    "recv_bundles",
    "recv_bundled",
    "max_queue_sz",
    "proto_invalid",
    "illegal_fsm_evt",
    "reasm_errors",
    "malformed_bundles",
    "dropped_users",
)
