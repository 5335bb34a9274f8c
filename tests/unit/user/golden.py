"""Golden TIPC packets captured from real kernels (Debian 6.1) over the UDP bearer.

Source: ``shared/reference/captures/`` (see its README): two kernel nodes, identities
``nodea`` (192.0.2.1, address 0x0f6f6465) and ``nodeb`` (192.0.2.2, address 0x0c6f6465),
netid 4711, UDP port 6118. Each constant is the UDP payload (= one TIPC packet) of the
named frame; the comment gives file and frame number as ``tshark``/the ``*.summary.txt``
files number them.
"""

from __future__ import annotations

NODE_A = 0x0F6F6465  # hash128to32(b"nodea" + 11 zero bytes)
NODE_B = 0x0C6F6465  # hash128to32(b"nodeb" + ...)
ID_A = b"nodea".ljust(16, b"\0")
ID_B = b"nodeb".ljust(16, b"\0")
MEDIA_A = ("192.0.2.1", 6118)
MEDIA_B = ("192.0.2.2", 6118)
NETID = 4711
SESSION_A = 0xC3B3  # a's link session in udp-replicast
SESSION_B = 0xAC31  # b's link session in udp-replicast

# udp-replicast.pcap frame 1: a -> b, LINK_CONFIG DSC_TRIAL_MSG (address trial), sig 0xd4f3
DISC_TRIAL_A = bytes.fromhex(
    "5bf0004c47ffd4f3000000000f6f64650000126700000003080017e6c0000201"
    "0000000000000000000000000000000000000000f07fe259000000006e6f6465"
    "610000000000000000000000"
)
# udp-replicast.pcap frame 17: a -> b, LINK_CONFIG DSC_REQ_MSG
DISC_REQ_A = bytes.fromhex(
    "5bf0004c07ffd4f3000000000f6f64650000126700000003080017e6c0000201"
    "0000000000000000000000000000000000000000f07fe259000000006e6f6465"
    "610000000000000000000000"
)
# udp-replicast.pcap frame 19: a -> b, LINK_CONFIG DSC_RESP_MSG, dest domain = b
DISC_RESP_A = bytes.fromhex(
    "5bf0004c27ffd4f30c6f64650f6f64650000126700000003080017e6c0000201"
    "0000000000000000000000000000000000000000f07fe259000000006e6f6465"
    "610000000000000000000000"
)
# udp-multicast.pcap frame 17: a -> 228.0.18.103, DSC_REQ_MSG (multicast discovery), sig 0xdd06
DISC_REQ_A_MCAST = bytes.fromhex(
    "5bf0004c07ffdd06000000000f6f64650000126700000003080017e6c0000201"
    "00000000000000000000000000000000000000008342e315000000006e6f6465"
    "610000000000000000000000"
)
# udp-replicast.pcap frame 24: a -> b, LINK_PROTOCOL RESET_MSG, session 0xc3b3, max_pkt 14000
RESET_A = bytes.fromhex(
    "4f40003820000000000080000f6f646500000001c3b340000f6f64650c6f6465"
    "000000000dac000062310000000000000000000000000000"
)
# udp-replicast.pcap frame 25: b -> a, LINK_PROTOCOL RESET_MSG, session 0xac31
RESET_B = bytes.fromhex(
    "4f40003820000000000080000c6f646500000001ac3140000c6f64650f6f6465"
    "000000000dac000062310000000000000000000000000000"
)
# udp-replicast.pcap frame 28: a -> b, LINK_PROTOCOL ACTIVATE_MSG, dest_session 0xac31
ACTIVATE_A = bytes.fromhex(
    "4f4000384001ac31000080000f6f646500000001c3b340000f6f64650c6f6465"
    "000000000dac000062310000000000000000000000000000"
)
# udp-replicast.pcap frame 29: b -> a, LINK_PROTOCOL ACTIVATE_MSG, dest_session 0xc3b3
ACTIVATE_B = bytes.fromhex(
    "4f4000384001c3b3000080000c6f646500000001ac3140000c6f64650f6f6465"
    "000000000dac000062310000000000000000000000000000"
)
# udp-replicast.pcap frame 32: a -> b, NAME_DISTRIBUTOR bulk PUBLICATION {0, a, a}, link seqno 2
NAME_BULK_A = bytes.fromhex(
    "5740003c1c000000000000020f6f646500000001000040000f6f64650c6f6465"
    "0000000000000000000000000f6f64650f6f6465000000000f6f6465"
)
# udp-replicast.pcap frame 33: b -> a, first LINK_PROTOCOL STATE_MSG after link-up
STATE_B_FIRST = bytes.fromhex(
    "4f40002c00000000000000010c6f646500000001ac3140000c6f64650f6f6465"
    "000000000000000000040000"
)
# udp-replicast.pcap frame 34: b -> a, BCAST_PROTOCOL broadcast init, link seqno 1
BCAST_INIT_B = bytes.fromhex(
    "4b40002800000000000000010c6f646500000000000040000c6f64650f6f6465"
    "0000000000000000"
)
# udp-replicast.pcap frame 30: a -> b, first LINK_PROTOCOL STATE_MSG after link-up
# (4 data bytes: an empty Gap ACK block record, since b advertises TIPC_GAP_ACK_BLOCK)
STATE_A_FIRST = bytes.fromhex(
    "4f40002c00000000000000010f6f646500000001c3b340000f6f64650c6f6465"
    "000000000000000000040000"
)
# udp-replicast.pcap frame 31: a -> b, BCAST_PROTOCOL broadcast init, link seqno 1
BCAST_INIT_A = bytes.fromhex(
    "4b40002800000000000000010f6f646500000000000040000f6f64650c6f6465"
    "0000000000000000"
)
# udp-replicast.pcap frame 35: b -> a, NAME_DISTRIBUTOR bulk PUBLICATION {0, b, b}, link seqno 2
NAME_BULK_B = bytes.fromhex(
    "5740003c1c000000000000020c6f646500000001000040000c6f64650f6f6465"
    "0000000000000000000000000c6f64650c6f6465000000000c6f6465"
)
# udp-replicast.pcap frame 37: a -> b, LINK_PROTOCOL STATE_MSG, ack 2, seqno 2, redundant_link
STATE_A = bytes.fromhex(
    "4f40002c00000000000200020f6f646500000003c3b310000f6f64650c6f6465"
    "000000000000000000040000"
)
# udp-replicast.pcap frame 61: b -> a, NAME_DISTRIBUTOR PUBLICATION {18888,17,17} on the
# broadcast link (non_seq), named_seqno 1
NAME_PUBL_B = bytes.fromhex(
    "5750003c04000000000000010c6f646500000001000012670c6f646500000000"
    "0000000000000000000049c80000001100000011da54939dda54939e"
)
# udp-replicast.pcap frame 181: b -> a, LINK_PROTOCOL RESET_MSG with peer_stopping (bearer disabled)
RESET_B_STOPPING = bytes.fromhex(
    "4f40003820000000000080000c6f646500040001ac3230000c6f64650f6f6465"
    "000000000dac000062310000000000000000000000000000"
)
