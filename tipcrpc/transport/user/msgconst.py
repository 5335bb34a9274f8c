"""TIPC v2 wire constants (``net/tipc/msg.h``, ``node.h``, uapi ``linux/tipc.h``), pure.

Re-exported by :mod:`tipcrpc.transport.user.msg`; import them from there.
"""

from __future__ import annotations

__all__ = [
    "TIPC_VERSION",
    # users
    "LOW_IMPORTANCE",
    "MEDIUM_IMPORTANCE",
    "HIGH_IMPORTANCE",
    "CRITICAL_IMPORTANCE",
    "SYSTEM_IMPORTANCE",
    "BCAST_PROTOCOL",
    "MSG_BUNDLER",
    "LINK_PROTOCOL",
    "CONN_MANAGER",
    "GROUP_PROTOCOL",
    "TUNNEL_PROTOCOL",
    "NAME_DISTRIBUTOR",
    "MSG_FRAGMENTER",
    "LINK_CONFIG",
    "MSG_CRYPTO",
    # data message types
    "TIPC_CONN_MSG",
    "TIPC_MCAST_MSG",
    "TIPC_NAMED_MSG",
    "TIPC_DIRECT_MSG",
    "TIPC_GRP_MEMBER_EVT",
    "TIPC_GRP_BCAST_MSG",
    "TIPC_GRP_MCAST_MSG",
    "TIPC_GRP_UCAST_MSG",
    # internal message types
    "CONN_PROBE",
    "CONN_PROBE_REPLY",
    "CONN_ACK",
    "PUBLICATION",
    "WITHDRAWAL",
    "FIRST_FRAGMENT",
    "FRAGMENT",
    "LAST_FRAGMENT",
    "STATE_MSG",
    "RESET_MSG",
    "ACTIVATE_MSG",
    "SYNCH_MSG",
    "FAILOVER_MSG",
    "DSC_REQ_MSG",
    "DSC_RESP_MSG",
    "DSC_TRIAL_MSG",
    "DSC_TRIAL_FAIL_MSG",
    # sizes
    "SHORT_H_SIZE",
    "BASIC_H_SIZE",
    "NAMED_H_SIZE",
    "MCAST_H_SIZE",
    "GROUP_H_SIZE",
    "INT_H_SIZE",
    "MIN_H_SIZE",
    "MAX_H_SIZE",
    "LINK_CONFIG_H_SIZE",
    "NODE_ID_LEN",
    "MAX_USER_MSG_SIZE",
    "MAX_MSG_SIZE",
    "MAX_FORWARD_SIZE",
    "DISTR_ITEM_SIZE",
    # error codes
    "TIPC_OK",
    "TIPC_ERR_NO_NAME",
    "TIPC_ERR_NO_PORT",
    "TIPC_ERR_NO_NODE",
    "TIPC_ERR_OVERLOAD",
    "TIPC_CONN_SHUTDOWN",
    # capabilities
    "TIPC_SYN_BIT",
    "TIPC_BCAST_SYNCH",
    "TIPC_BCAST_STATE_NACK",
    "TIPC_BLOCK_FLOWCTL",
    "TIPC_BCAST_RCAST",
    "TIPC_NODE_ID128",
    "TIPC_LINK_PROTO_SEQNO",
    "TIPC_MCAST_RBCTL",
    "TIPC_GAP_ACK_BLOCK",
    "TIPC_TUNNEL_ENHANCED",
    "TIPC_NAGLE",
    "TIPC_NAMED_BCAST",
    "TIPC_NODE_CAPABILITIES",
]

TIPC_VERSION = 2

# --- users (word 0 bits 28..25) -------------------------------------------------------------
LOW_IMPORTANCE = 0
MEDIUM_IMPORTANCE = 1
HIGH_IMPORTANCE = 2
CRITICAL_IMPORTANCE = 3
SYSTEM_IMPORTANCE = 4  #: importance the kernel assigns to internal messages (not a user)
BCAST_PROTOCOL = 5
MSG_BUNDLER = 6
LINK_PROTOCOL = 7
CONN_MANAGER = 8
GROUP_PROTOCOL = 9
TUNNEL_PROTOCOL = 10
NAME_DISTRIBUTOR = 11
MSG_FRAGMENTER = 12
LINK_CONFIG = 13
MSG_CRYPTO = 14

# --- payload message types (word 1 bits 31..29) ---------------------------------------------
TIPC_CONN_MSG = 0
TIPC_MCAST_MSG = 1
TIPC_NAMED_MSG = 2
TIPC_DIRECT_MSG = 3
TIPC_GRP_MEMBER_EVT = 4
TIPC_GRP_BCAST_MSG = 5
TIPC_GRP_MCAST_MSG = 6
TIPC_GRP_UCAST_MSG = 7

# --- internal message types -----------------------------------------------------------------
CONN_PROBE = 0
CONN_PROBE_REPLY = 1
CONN_ACK = 2
PUBLICATION = 0
WITHDRAWAL = 1
FIRST_FRAGMENT = 0
FRAGMENT = 1
LAST_FRAGMENT = 2
STATE_MSG = 0
RESET_MSG = 1
ACTIVATE_MSG = 2
SYNCH_MSG = 0
FAILOVER_MSG = 1
DSC_REQ_MSG = 0
DSC_RESP_MSG = 1
DSC_TRIAL_MSG = 2
DSC_TRIAL_FAIL_MSG = 3

# --- sizes ----------------------------------------------------------------------------------
SHORT_H_SIZE = 24  #: in-cluster connection message (orignode = prevnode)
BASIC_H_SIZE = 32  #: direct message
NAMED_H_SIZE = 40  #: named (anycast) message
MCAST_H_SIZE = 44  #: multicast message
GROUP_H_SIZE = 44
INT_H_SIZE = 40  #: internal messages
MIN_H_SIZE = 24
MAX_H_SIZE = 60
LINK_CONFIG_H_SIZE = 60  #: discovery messages use the largest header
NODE_ID_LEN = 16
MAX_USER_MSG_SIZE = 66000  #: TIPC_MAX_USER_MSG_SIZE
MAX_MSG_SIZE = MAX_H_SIZE + MAX_USER_MSG_SIZE
MAX_FORWARD_SIZE = 1024  #: data returned with a rejected message (msg.c)
DISTR_ITEM_SIZE = 20  #: struct distr_item {type, lower, upper, port, key}

# --- error codes (uapi linux/tipc.h) --------------------------------------------------------
TIPC_OK = 0
TIPC_ERR_NO_NAME = 1
TIPC_ERR_NO_PORT = 2
TIPC_ERR_NO_NODE = 3
TIPC_ERR_OVERLOAD = 4
TIPC_CONN_SHUTDOWN = 5

# --- node capabilities (node.h), advertised in LINK_CONFIG word 1 bits 27..15 -----------
TIPC_SYN_BIT = 1 << 0
TIPC_BCAST_SYNCH = 1 << 1
TIPC_BCAST_STATE_NACK = 1 << 2
TIPC_BLOCK_FLOWCTL = 1 << 3
TIPC_BCAST_RCAST = 1 << 4
TIPC_NODE_ID128 = 1 << 5
TIPC_LINK_PROTO_SEQNO = 1 << 6
TIPC_MCAST_RBCTL = 1 << 7
TIPC_GAP_ACK_BLOCK = 1 << 8
TIPC_TUNNEL_ENHANCED = 1 << 9
TIPC_NAGLE = 1 << 10
TIPC_NAMED_BCAST = 1 << 11
TIPC_NODE_CAPABILITIES = 0xFFF  #: what a current kernel advertises (all of the above)
