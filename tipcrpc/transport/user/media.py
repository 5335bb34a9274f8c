"""The UDP media address inside TIPC discovery messages (``net/tipc/udp_media.c``), pure.

A LINK_CONFIG message carries the sender's bearer address in a 32-byte *media info* area
starting at header word 5 (``TIPC_MEDIA_INFO_OFFSET``)::

    byte 3        media type (3 = UDP)
    bytes 4..     struct udp_media_addr { be16 proto; be16 port; in_addr | in6_addr }

``proto`` is the ethertype of the IP version (0x0800 IPv4, 0x86DD IPv6). Kernel peers send
link traffic to this advertised address, not to the UDP source address of the datagram, so
the node must advertise an address its peers can reach.
"""

from __future__ import annotations

import ipaddress
import struct

from ...addr import TIPC_UDP_PORT
from ...errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "MediaAddr",
    "BROADCAST",
    "DEFAULT_PORT",
    "MEDIA_INFO_SIZE",
    "MEDIA_TYPE_OFFSET",
    "MEDIA_ADDR_OFFSET",
    "MEDIA_TYPE_UDP",
    "ETH_P_IP",
    "ETH_P_IPV6",
    "encode_media_addr",
    "decode_media_addr",
]

MediaAddr = tuple[str, int]  #: (IP address text, UDP port)
#: Destination meaning "every node on the bearer": the shell sends it to its discovery
#: group and to every replicast peer it knows (discovery requests).
BROADCAST: MediaAddr = ("<broadcast>", 0)
#: IANA port of TIPC over UDP: the discovery group's port and the default bearer port.
DEFAULT_PORT = TIPC_UDP_PORT

MEDIA_INFO_SIZE = 32
MEDIA_TYPE_OFFSET = 3
MEDIA_ADDR_OFFSET = 4
MEDIA_TYPE_UDP = 3
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD

_PROTO_PORT = struct.Struct(">HH")


def encode_media_addr(addr: MediaAddr) -> bytes:
    """The 32-byte media info area for ``(ip, port)`` (``tipc_udp_addr2msg``)."""
    ip_text, port = addr
    try:
        ip = ipaddress.ip_address(ip_text)
    except ValueError as e:
        raise LocalProtocolError(f"bad UDP media address {addr!r}: {e}") from None
    if not 0 <= port <= 0xFFFF:
        raise LocalProtocolError(f"bad UDP port {port} in media address {addr!r}")
    proto = ETH_P_IP if ip.version == 4 else ETH_P_IPV6
    info = bytearray(MEDIA_INFO_SIZE)
    info[MEDIA_TYPE_OFFSET] = MEDIA_TYPE_UDP
    _PROTO_PORT.pack_into(info, MEDIA_ADDR_OFFSET, proto, port)
    packed = ip.packed
    info[MEDIA_ADDR_OFFSET + 4 : MEDIA_ADDR_OFFSET + 4 + len(packed)] = packed
    return bytes(info)


def decode_media_addr(info: bytes | bytearray | memoryview) -> tuple[MediaAddr, bool]:
    """``((ip, port), is_multicast)`` from a media info area (``tipc_udp_msg2addr``).

    Raises :class:`RemoteProtocolError` if the area is short, not UDP, or has an unknown
    protocol. The kernel rejects discovery messages whose address is multicast ("corrupt
    discovery message"); callers check the flag.
    """
    if len(info) < MEDIA_ADDR_OFFSET + 20:
        raise RemoteProtocolError(f"media info area too short: {len(info)} bytes")
    if info[MEDIA_TYPE_OFFSET] != MEDIA_TYPE_UDP:
        raise RemoteProtocolError(f"media type {info[MEDIA_TYPE_OFFSET]} is not UDP ({MEDIA_TYPE_UDP})")
    proto, port = _PROTO_PORT.unpack_from(info, MEDIA_ADDR_OFFSET)
    start = MEDIA_ADDR_OFFSET + 4
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    if proto == ETH_P_IP:
        ip = ipaddress.IPv4Address(bytes(info[start : start + 4]))
    elif proto == ETH_P_IPV6:
        ip = ipaddress.IPv6Address(bytes(info[start : start + 16]))
    else:
        raise RemoteProtocolError(f"UDP media address has unknown protocol 0x{proto:04x}")
    return (str(ip), port), ip.is_multicast
