"""The link endpoint protocol (``net/tipc/link.c``): RESET/ACTIVATE/STATE, supervision; pure.

:class:`LinkProtocol` is the half of :class:`~.link.Link` that brings a link up, keeps it
under supervision and carries acknowledgements and NACKs: the state predicates and the FSM
event entry (transitions themselves are tables in :mod:`.link_fsm`), the building of
LINK_PROTOCOL messages, the link timer (``tipc_link_timeout``) and the reception of
protocol messages (``tipc_link_proto_rcv``). The reliable packet stream — sending,
retransmission, in-order reception, fragments and bundles — is the other half, in
:mod:`.link`, which subclasses this one. Functions keep the kernel's names and order of
operations.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .fragment import Reassembler
from .link_fsm import (
    LINK_ESTABLISHED,
    LINK_ESTABLISHING,
    LINK_FAILINGOVER,
    LINK_FAILURE_EVT,
    LINK_PEER_RESET,
    LINK_PEER_RESET_EVT,
    LINK_RESET,
    LINK_RESETTING,
    LINK_SYNCHING,
    TIPC_LINK_UP_EVT,
    less,
    link_fsm,
    more,
)
from .msg import (
    ACTIVATE_MSG,
    BCAST_PROTOCOL,
    INT_H_SIZE,
    LINK_PROTOCOL,
    MAX_H_SIZE,
    RESET_MSG,
    STATE_MSG,
    TIPC_LINK_PROTO_SEQNO,
    Header,
)

__all__ = [
    "LinkProtocol",
    "TIPC_MIN_LINK_WIN",
    "TIPC_MAX_LINK_WIN",
    "TIPC_DEF_LINK_WIN",
    "TIPC_MIN_LINK_TOL",
    "TIPC_MAX_LINK_TOL",
    "TIPC_MAX_LINK_PRI",
    "TIPC_MAX_IF_NAME",
    "MIN_MTU",
]

TIPC_MIN_LINK_WIN = 16  #: ack after this many unacknowledged received packets
TIPC_DEF_LINK_WIN = 50
TIPC_MAX_LINK_WIN = 8191  #: receive window: packets further ahead are dropped
TIPC_MIN_LINK_TOL = 50
TIPC_MAX_LINK_TOL = 30000
TIPC_MAX_LINK_PRI = 31
TIPC_MAX_IF_NAME = 16
MIN_MTU = MAX_H_SIZE + INT_H_SIZE  #: RESET/ACTIVATE advertising less are ignored


class LinkProtocol:
    """Link establishment, supervision and acknowledgement (see the module docstring).

    State lives in the attributes below, set up by :class:`~.link.Link`'s constructor.
    """

    own_addr: int
    addr: int
    session: int
    peer_session: int
    in_session: bool
    unaddressed_activate: bool
    state: int
    tolerance_ms: int
    abort_limit: int
    silent_intv_cnt: int
    rst_cnt: int
    priority: int
    net_plane: int
    bearer_id: int
    peer_bearer_id: int
    if_name: bytes
    peer_if_name: bytes
    advertised_mtu: int
    mtu: int
    peer_caps: int
    snd_nxt: int
    snd_nxt_state: int
    checkpoint: int
    transmq: deque[list[Any]]
    rcv_nxt: int
    rcv_nxt_state: int
    rcv_unacked: int
    deferdq: dict[int, bytes]
    reasm: Reassembler
    bc_snd_nxt: int
    bc_rcv_nxt: int
    bc_up: bool
    failure_reason: str
    stats: dict[str, int]

    # -- provided by the packet stream (link.py) --------------------------------------------

    def xmit(self, packets: list[bytes], orig: bytes | None, now: float, xmitq: list[Any]) -> None:
        raise NotImplementedError

    def _advance_transmq(self, acked: int, gap: int, now: float, xmitq: list[Any] | None) -> tuple[int, bool, int]:
        raise NotImplementedError

    def _advance_backlog(self, now: float, xmitq: list[Any]) -> None:
        raise NotImplementedError

    # -- state predicates (link.c) -----------------------------------------------------------

    @property
    def is_up(self) -> bool:
        return bool(self.state & (LINK_ESTABLISHED | LINK_SYNCHING))

    @property
    def is_reset(self) -> bool:
        return bool(self.state & (LINK_RESET | LINK_FAILINGOVER | LINK_ESTABLISHING))

    @property
    def is_establishing(self) -> bool:
        return self.state == LINK_ESTABLISHING

    @property
    def peer_is_down(self) -> bool:
        return self.state == LINK_PEER_RESET

    @property
    def is_blocked(self) -> bool:
        return bool(self.state & (LINK_RESETTING | LINK_PEER_RESET | LINK_FAILINGOVER))

    @property
    def mss(self) -> int:
        """Largest packet a message may occupy (``tipc_link_mss``: room for a tunnel header)."""
        return self.mtu - INT_H_SIZE

    def fsm(self, evt: int) -> int:
        """``tipc_link_fsm_evt``: apply ``evt``; return result bits."""
        self.state, rc, legal = link_fsm(self.state, evt)
        if not legal:
            self.stats["illegal_fsm_evt"] += 1
        return rc

    def set_abort_limit(self, limit: int) -> None:
        self.abort_limit = limit

    # -- protocol messages -------------------------------------------------------------------

    def build_proto_msg(
        self,
        mtyp: int,
        xmitq: list[Any],
        *,
        probe: bool = False,
        probe_reply: bool = False,
        rcvgap: int = 0,
        tolerance: int = 0,
        priority: int = 0,
        peer_stopping: bool = False,
        addressed: bool = True,
    ) -> None:
        """``tipc_link_build_proto_msg``: a STATE, RESET or ACTIVATE message.

        ``addressed=False`` leaves an ACTIVATE's destination session unset (see
        :meth:`build_start_msgs`).
        """
        if self.is_blocked:
            return
        if not self.is_up and mtyp == STATE_MSG:
            return
        if (probe or probe_reply) and self.deferdq:
            rcvgap = (self._first_deferred() - self.rcv_nxt) & 0xFFFF
        h = Header(LINK_PROTOCOL, mtyp, INT_H_SIZE, own_node=self.own_addr, dest_node=self.addr)
        h.session = self.session
        h.bearer_id = self.bearer_id
        h.net_plane = self.net_plane
        h.next_sent = self.snd_nxt
        h.ack = self.rcv_nxt - 1
        h.bcast_ack = self.bc_rcv_nxt - 1
        h.bc_ack_invalid = not self.bc_up
        h.last_bcast = self.bc_snd_nxt - 1
        h.link_tolerance = tolerance
        h.linkprio = priority
        h.redundant_link = self.bc_up
        h.seqno = self.snd_nxt + 0x7FFF  # U16_MAX / 2: never mistaken for a data seqno
        if mtyp == STATE_MSG:
            if self.peer_caps & TIPC_LINK_PROTO_SEQNO:
                h.seqno = self.snd_nxt_state
                self.snd_nxt_state = (self.snd_nxt_state + 1) & 0xFFFF
            h.seq_gap = rcvgap
            h.probe = probe
            h.dest_droppable = probe or probe_reply  # msg_set_is_keepalive
            data = b""
            self.stats["sent_states"] += 1
            self.rcv_unacked = 0
        else:
            if mtyp == ACTIVATE_MSG and addressed:
                h.dest_session_valid = 1
                h.dest_session = self.peer_session
            h.max_pkt = self.advertised_mtu
            data = self.if_name.ljust(TIPC_MAX_IF_NAME, b"\0")
            if peer_stopping:
                h.peer_stopping = 1
        if probe:
            self.stats["sent_probes"] += 1
        if rcvgap:
            self.stats["sent_nacks"] += 1
        xmitq.append(h.build(data))

    def build_state_msg(self, xmitq: list[Any]) -> None:
        """``tipc_link_build_state_msg`` (unicast): an explicit ack."""
        self.rcv_unacked = 0
        self.stats["sent_acks"] += 1
        self.build_proto_msg(STATE_MSG, xmitq)

    def build_reset_msg(self, xmitq: list[Any]) -> None:
        """``tipc_link_build_reset_msg``: RESET (``peer_stopping`` if we are going down) or ACTIVATE."""
        if self.state == LINK_ESTABLISHING:
            self.build_proto_msg(ACTIVATE_MSG, xmitq)
        else:
            self.build_proto_msg(RESET_MSG, xmitq, peer_stopping=self.state == LINK_RESET)

    def build_start_msgs(self, xmitq: list[Any]) -> None:
        """RESET, then an ACTIVATE without destination session: a new link's first words.

        Not in the kernel, which only ever sends these from its link timer. A kernel link
        answers nothing to a RESET (``tipc_link_proto_rcv`` moves it to ESTABLISHING and its
        ACTIVATE waits for the next node tick, tolerance/4 = 375 ms by default), but an
        ACTIVATE that names no destination session brings it up at once ("ACTIVATE_MSG
        serves as PEER_RESET if link is already down"; "ACTIVATE_MSG takes up link if it
        was already locally reset"), and a link that comes up sends a STATE first
        (``__tipc_node_link_up``). That STATE carries the peer's session, which we have not
        seen yet: :meth:`accept_peer_up` takes it as the peer's activation. Link set-up is
        then one round trip after discovery instead of one kernel tick.
        """
        self.build_proto_msg(RESET_MSG, xmitq)
        if self.state == LINK_RESET and not self.in_session:
            self.build_proto_msg(ACTIVATE_MSG, xmitq, addressed=False)
            self.unaddressed_activate = True

    def accept_peer_up(self, h: Header) -> bool:
        """Is ``h`` the STATE of a peer that came up on our unaddressed ACTIVATE? Then adopt it.

        Only while we wait in RESET, out of session, after :meth:`build_start_msgs`, and only
        a STATE acknowledging nothing (``ack`` 0): a link that ever received a packet from us
        (our broadcast init is the first one after link-up) acknowledges it, so probes of a
        stale link to an earlier incarnation of this node never match. On a match the link
        takes the peer's session and moves to ESTABLISHING; the caller reports link-up.
        """
        if not (self.unaddressed_activate and self.state == LINK_RESET and not self.in_session):
            return False
        if h.user != LINK_PROTOCOL or h.mtype != STATE_MSG or h.ack:
            return False
        self.peer_session = h.session
        self.in_session = True
        self.unaddressed_activate = False
        self.rcv_nxt_state = (h.seqno + 1) & 0xFFFF
        self.silent_intv_cnt = 0
        self.fsm(LINK_PEER_RESET_EVT)
        return self.state == LINK_ESTABLISHING

    def build_bc_init_msg(self, now: float, xmitq: list[Any]) -> None:
        """``tipc_link_build_bc_init_msg``: tell the peer where our broadcast stream starts.

        Sent as the first sequenced packet after link-up, like the kernel (capture frame 31).
        """
        h = Header(BCAST_PROTOCOL, STATE_MSG, INT_H_SIZE, own_node=self.own_addr, dest_node=self.addr)
        h.last_bcast = self.bc_snd_nxt - 1
        h.bcast_ack = self.bc_rcv_nxt - 1
        h.bc_ack_invalid = 1
        self.xmit([h.build()], None, now, xmitq)

    def _build_nack_msg(self, xmitq: list[Any]) -> None:
        """``tipc_link_build_nack_msg``: NACK at 3, 19, 35, ... deferred packets."""
        self.stats["deferred_recv"] += 1
        n = len(self.deferdq)
        if n >= 3 and not (n - 3) % 16:
            self.build_proto_msg(STATE_MSG, xmitq, rcvgap=(self._first_deferred() - self.rcv_nxt) & 0xFFFF)

    def _first_deferred(self) -> int:
        base = self.rcv_nxt
        return min(self.deferdq, key=lambda s: (s - base) & 0xFFFF)

    # -- timer -------------------------------------------------------------------------------

    def timeout(self, now: float, xmitq: list[Any]) -> int:
        """``tipc_link_timeout``: supervision, probes, RESET/ACTIVATE repetition."""
        mtyp = STATE_MSG
        state = probe = setup = False
        if self.state == LINK_ESTABLISHED:
            if self.silent_intv_cnt > self.abort_limit:
                self.failure_reason = f"no traffic from peer for {self.tolerance_ms} ms (link tolerance)"
                return self.fsm(LINK_FAILURE_EVT)
            state = bool(self.rcv_unacked or self.transmq)
            probe = bool(self.silent_intv_cnt)
            # Below the monitor threshold the kernel's monitor says "monitoring", so the
            # silence counter advances every interval and any reception clears it.
            self.silent_intv_cnt += 1
            probe = probe or bool(self.deferdq)
            if self.snd_nxt == self.checkpoint:
                probe = True
            self.checkpoint = self.snd_nxt
        elif self.state == LINK_RESET:
            setup = self.rst_cnt <= 4
            self.rst_cnt += 1
            setup = setup or not self.rst_cnt % 16
            mtyp = RESET_MSG
            if setup and self.unaddressed_activate and not self.in_session:
                self.build_start_msgs(xmitq)  # the first pair may have been lost
                return 0
        elif self.state == LINK_ESTABLISHING:
            setup = True
            mtyp = ACTIVATE_MSG
        if state or probe or setup:
            self.build_proto_msg(mtyp, xmitq, probe=probe)
        return 0

    # -- receiving ---------------------------------------------------------------------------

    def validate_msg(self, h: Header) -> bool:
        """``tipc_link_validate_msg``: is this protocol message for the current session?"""
        if h.user != LINK_PROTOCOL:
            return True
        mtyp = h.mtype
        session = h.session
        curr = self.peer_session
        if mtyp == RESET_MSG:
            return not self.in_session or more(session, curr)
        if mtyp == ACTIVATE_MSG:
            return not self.in_session or not less(session, curr)
        if mtyp == STATE_MSG:
            if not self.in_session or session != curr:
                return False
            if not self.is_up and h.ack:
                return False
            if not self.peer_caps & TIPC_LINK_PROTO_SEQNO:
                return True
            return not less(h.seqno, self.rcv_nxt_state)
        return False

    def _bc_init_rcv(self, pkt: bytes) -> None:
        """``tipc_link_bc_init_rcv``: learn where the peer's broadcast stream starts."""
        if self.bc_up:
            return
        h = Header.decode(pkt)
        self.bc_rcv_nxt = (h.last_bcast + 1) & 0xFFFF
        self.bc_up = True

    def _proto_rcv(self, packet: bytes, now: float, xmitq: list[Any]) -> int:
        """``tipc_link_proto_rcv``: RESET, ACTIVATE or STATE from the peer."""
        h = Header.decode(packet)
        rc = 0
        if self.is_blocked:
            return rc
        if self.own_addr > h.prevnode:
            self.net_plane = h.net_plane  # the node with the lowest address decides the plane
        if not self.validate_msg(h):
            self.stats["proto_invalid"] += 1
            return rc
        mtyp = h.mtype
        peers_tol = h.link_tolerance
        peers_prio = h.linkprio
        if mtyp in (RESET_MSG, ACTIVATE_MSG):
            msg_max = h.max_pkt
            data = packet[h.hsize : h.size]
            if msg_max < MIN_MTU or len(data) < TIPC_MAX_IF_NAME:
                return rc
            self.peer_if_name = data[:TIPC_MAX_IF_NAME].split(b"\0", 1)[0]
            if TIPC_MIN_LINK_TOL <= peers_tol <= TIPC_MAX_LINK_TOL:
                self.tolerance_ms = peers_tol
            if self.priority + 1 <= peers_prio <= TIPC_MAX_LINK_PRI:
                self.priority = peers_prio
            if h.peer_stopping:  # peer is going down: full re-establish cycle
                self.failure_reason = "peer is stopping"
                return self.fsm(LINK_FAILURE_EVT)
            if mtyp == ACTIVATE_MSG and h.dest_session_valid and self.session != h.dest_session:
                # We were re-created while the peer was ESTABLISHING: force re-synch.
                if less(self.session, h.dest_session):
                    self.session = (h.dest_session + 1) & 0xFFFF
                return rc
            if mtyp == RESET_MSG or not self.is_up:
                if self.is_up:
                    self.failure_reason = "peer reset the link"
                rc = self.fsm(LINK_PEER_RESET_EVT)
            if mtyp == ACTIVATE_MSG and self.state == LINK_ESTABLISHING:
                rc = TIPC_LINK_UP_EVT
            self.peer_session = h.session
            self.in_session = True
            self.unaddressed_activate = False
            self.peer_bearer_id = h.bearer_id
            if self.mtu > msg_max:
                self.mtu = msg_max
            return rc
        if mtyp != STATE_MSG:
            return rc
        self.rcv_nxt_state = (h.seqno + 1) & 0xFFFF
        if TIPC_MIN_LINK_TOL <= peers_tol <= TIPC_MAX_LINK_TOL:
            self.tolerance_ms = peers_tol
        if peers_prio != self.priority and 1 <= peers_prio <= TIPC_MAX_LINK_PRI:
            self.priority = peers_prio
            self.failure_reason = "peer changed link priority"
            rc = self.fsm(LINK_FAILURE_EVT)
        self.silent_intv_cnt = 0
        self.stats["recv_states"] += 1
        reply = bool(h.probe)
        if reply:
            self.stats["recv_probes"] += 1
        if not self.is_up:
            if self.state == LINK_ESTABLISHING:
                rc = TIPC_LINK_UP_EVT
            return rc
        rcvgap = 0
        if (reply or h.dest_droppable) and more(h.next_sent, self.rcv_nxt) and not self.deferdq:
            rcvgap = (h.next_sent - self.rcv_nxt) & 0xFFFF  # peer sent packets we never saw
        if rcvgap or reply:
            self.build_proto_msg(STATE_MSG, xmitq, probe_reply=reply, rcvgap=rcvgap)
        gap = h.seq_gap
        released, _retransmitted, rc2 = self._advance_transmq(h.ack, gap, now, xmitq)
        rc |= rc2
        if gap:
            self.stats["recv_nacks"] += 1
        if released:
            self._advance_backlog(now, xmitq)
        return rc
