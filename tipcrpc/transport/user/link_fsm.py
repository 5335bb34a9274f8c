"""Link and node state machines of ``net/tipc/link.c`` / ``node.c``, as tables; pure.

Everything that decides a *state transition* lives here (the h11 rule): the link endpoint
FSM (``tipc_link_fsm_evt``), the node FSM (``tipc_node_fsm_evt``) and TIPC's 16-bit
sequence-number arithmetic (``core.h``). State and event values are the kernel's, so traces
compare directly with ``tipc link`` / ftrace output.

Only the events a single-bearer node can generate are listed: link failover/synch (two
links to one peer) is not implemented, so ``FAILINGOVER``/``SYNCHING`` never occur.
"""

from __future__ import annotations

__all__ = [
    "less_eq",
    "less",
    "more",
    # link states
    "LINK_ESTABLISHED",
    "LINK_ESTABLISHING",
    "LINK_RESET",
    "LINK_RESETTING",
    "LINK_PEER_RESET",
    "LINK_FAILINGOVER",
    "LINK_SYNCHING",
    "LINK_STATE_NAMES",
    # link events
    "LINK_ESTABLISH_EVT",
    "LINK_PEER_RESET_EVT",
    "LINK_FAILURE_EVT",
    "LINK_RESET_EVT",
    # link results
    "TIPC_LINK_UP_EVT",
    "TIPC_LINK_DOWN_EVT",
    "TIPC_LINK_SND_STATE",
    "link_fsm",
    # node states/events
    "SELF_DOWN_PEER_DOWN",
    "SELF_UP_PEER_UP",
    "SELF_DOWN_PEER_LEAVING",
    "SELF_UP_PEER_COMING",
    "SELF_COMING_PEER_UP",
    "SELF_LEAVING_PEER_DOWN",
    "NODE_STATE_NAMES",
    "SELF_ESTABL_CONTACT_EVT",
    "SELF_LOST_CONTACT_EVT",
    "PEER_ESTABL_CONTACT_EVT",
    "PEER_LOST_CONTACT_EVT",
    "node_fsm",
]


# --- 16-bit sequence numbers (core.h) -----------------------------------------------------


def less_eq(left: int, right: int) -> bool:
    """``left <= right`` modulo 2**16 (within half the number space)."""
    return ((right - left) & 0xFFFF) < 32768


def more(left: int, right: int) -> bool:
    return not less_eq(left, right)


def less(left: int, right: int) -> bool:
    return less_eq(left, right) and (left & 0xFFFF) != (right & 0xFFFF)


# --- link endpoint FSM (link.c) ---------------------------------------------------------

LINK_ESTABLISHED = 0xE
LINK_ESTABLISHING = 0xE << 4
LINK_RESET = 0x1 << 8
LINK_RESETTING = 0x2 << 12
LINK_PEER_RESET = 0xD << 16
LINK_FAILINGOVER = 0xF << 20
LINK_SYNCHING = 0xC << 24

LINK_STATE_NAMES = {
    LINK_ESTABLISHED: "ESTABLISHED",
    LINK_ESTABLISHING: "ESTABLISHING",
    LINK_RESET: "RESET",
    LINK_RESETTING: "RESETTING",
    LINK_PEER_RESET: "PEER_RESET",
    LINK_FAILINGOVER: "FAILINGOVER",
    LINK_SYNCHING: "SYNCHING",
}

LINK_ESTABLISH_EVT = 0xEC1AB1E
LINK_PEER_RESET_EVT = 0x9EED0E
LINK_FAILURE_EVT = 0xFA110E
LINK_RESET_EVT = 0x10CA1D0E

#: Results a link reports to its node (link.h).
TIPC_LINK_UP_EVT = 1
TIPC_LINK_DOWN_EVT = 1 << 1
TIPC_LINK_SND_STATE = 1 << 2

#: (state, event) -> (new state, result bits). Pairs the kernel treats as no-ops are listed
#: with the same state; pairs missing here are illegal (the kernel logs and ignores them).
_LINK_TABLE: dict[tuple[int, int], tuple[int, int]] = {
    (LINK_RESETTING, LINK_PEER_RESET_EVT): (LINK_PEER_RESET, 0),
    (LINK_RESETTING, LINK_RESET_EVT): (LINK_RESET, 0),
    (LINK_RESET, LINK_PEER_RESET_EVT): (LINK_ESTABLISHING, 0),
    (LINK_RESET, LINK_FAILURE_EVT): (LINK_RESET, 0),
    (LINK_RESET, LINK_RESET_EVT): (LINK_RESET, 0),
    (LINK_RESET, LINK_ESTABLISH_EVT): (LINK_RESET, 0),
    (LINK_PEER_RESET, LINK_RESET_EVT): (LINK_ESTABLISHING, 0),
    (LINK_PEER_RESET, LINK_PEER_RESET_EVT): (LINK_PEER_RESET, 0),
    (LINK_PEER_RESET, LINK_ESTABLISH_EVT): (LINK_PEER_RESET, 0),
    (LINK_PEER_RESET, LINK_FAILURE_EVT): (LINK_PEER_RESET, 0),
    (LINK_ESTABLISHING, LINK_ESTABLISH_EVT): (LINK_ESTABLISHED, 0),
    (LINK_ESTABLISHING, LINK_RESET_EVT): (LINK_RESET, 0),
    (LINK_ESTABLISHING, LINK_FAILURE_EVT): (LINK_ESTABLISHING, 0),
    (LINK_ESTABLISHING, LINK_PEER_RESET_EVT): (LINK_ESTABLISHING, 0),
    (LINK_ESTABLISHED, LINK_PEER_RESET_EVT): (LINK_PEER_RESET, TIPC_LINK_DOWN_EVT),
    (LINK_ESTABLISHED, LINK_FAILURE_EVT): (LINK_RESETTING, TIPC_LINK_DOWN_EVT),
    (LINK_ESTABLISHED, LINK_RESET_EVT): (LINK_RESET, 0),
    (LINK_ESTABLISHED, LINK_ESTABLISH_EVT): (LINK_ESTABLISHED, 0),
}


def link_fsm(state: int, evt: int) -> tuple[int, int, bool]:
    """``(new_state, result_bits, legal)`` for ``evt`` in ``state``."""
    r = _LINK_TABLE.get((state, evt))
    if r is None:
        return state, 0, False
    return r[0], r[1], True


# --- node FSM (node.c) ------------------------------------------------------------------

SELF_DOWN_PEER_DOWN = 0xDD
SELF_UP_PEER_UP = 0xAA
SELF_DOWN_PEER_LEAVING = 0xD1
SELF_UP_PEER_COMING = 0xAC
SELF_COMING_PEER_UP = 0xCA
SELF_LEAVING_PEER_DOWN = 0x1D

NODE_STATE_NAMES = {
    SELF_DOWN_PEER_DOWN: "SELF_DOWN_PEER_DOWN",
    SELF_UP_PEER_UP: "SELF_UP_PEER_UP",
    SELF_DOWN_PEER_LEAVING: "SELF_DOWN_PEER_LEAVING",
    SELF_UP_PEER_COMING: "SELF_UP_PEER_COMING",
    SELF_COMING_PEER_UP: "SELF_COMING_PEER_UP",
    SELF_LEAVING_PEER_DOWN: "SELF_LEAVING_PEER_DOWN",
}

SELF_ESTABL_CONTACT_EVT = 0xECE
SELF_LOST_CONTACT_EVT = 0x1CE
PEER_ESTABL_CONTACT_EVT = 0x9ECE
PEER_LOST_CONTACT_EVT = 0x91CE

_S, _P = SELF_ESTABL_CONTACT_EVT, PEER_ESTABL_CONTACT_EVT
_SL, _PL = SELF_LOST_CONTACT_EVT, PEER_LOST_CONTACT_EVT

_NODE_TABLE: dict[tuple[int, int], int] = {
    (SELF_DOWN_PEER_DOWN, _S): SELF_UP_PEER_COMING,
    (SELF_DOWN_PEER_DOWN, _P): SELF_COMING_PEER_UP,
    (SELF_DOWN_PEER_DOWN, _SL): SELF_DOWN_PEER_DOWN,
    (SELF_DOWN_PEER_DOWN, _PL): SELF_DOWN_PEER_DOWN,
    (SELF_UP_PEER_UP, _SL): SELF_DOWN_PEER_LEAVING,
    (SELF_UP_PEER_UP, _PL): SELF_LEAVING_PEER_DOWN,
    (SELF_UP_PEER_UP, _S): SELF_UP_PEER_UP,
    (SELF_UP_PEER_UP, _P): SELF_UP_PEER_UP,
    (SELF_DOWN_PEER_LEAVING, _PL): SELF_DOWN_PEER_DOWN,
    (SELF_DOWN_PEER_LEAVING, _S): SELF_DOWN_PEER_LEAVING,
    (SELF_DOWN_PEER_LEAVING, _P): SELF_DOWN_PEER_LEAVING,
    (SELF_DOWN_PEER_LEAVING, _SL): SELF_DOWN_PEER_LEAVING,
    (SELF_UP_PEER_COMING, _P): SELF_UP_PEER_UP,
    (SELF_UP_PEER_COMING, _SL): SELF_DOWN_PEER_DOWN,
    (SELF_UP_PEER_COMING, _S): SELF_UP_PEER_COMING,
    (SELF_UP_PEER_COMING, _PL): SELF_UP_PEER_COMING,
    (SELF_COMING_PEER_UP, _S): SELF_UP_PEER_UP,
    (SELF_COMING_PEER_UP, _PL): SELF_DOWN_PEER_DOWN,
    (SELF_COMING_PEER_UP, _SL): SELF_COMING_PEER_UP,
    (SELF_COMING_PEER_UP, _P): SELF_COMING_PEER_UP,
    (SELF_LEAVING_PEER_DOWN, _SL): SELF_DOWN_PEER_DOWN,
    (SELF_LEAVING_PEER_DOWN, _S): SELF_LEAVING_PEER_DOWN,
    (SELF_LEAVING_PEER_DOWN, _P): SELF_LEAVING_PEER_DOWN,
    (SELF_LEAVING_PEER_DOWN, _PL): SELF_LEAVING_PEER_DOWN,
}


def node_fsm(state: int, evt: int) -> tuple[int, bool]:
    """``(new_state, legal)`` for node event ``evt`` in ``state``."""
    r = _NODE_TABLE.get((state, evt))
    if r is None:
        return state, False
    return r, True
