"""Pure kernel-TIPC formats: topology structs, socket addresses, ancillary data (layer L1).

Everything here is bytes and tuples in, values out — no sockets, no event loop — so it is
tested everywhere, including on machines without ``AF_TIPC``.

* ``struct tipc_subscr`` (28 bytes) and ``struct tipc_event`` (48 bytes) of the topology
  service, packed in network or native byte order. The topology server infers the order of
  each subscription from its ``filter`` field and answers in the same order. We send
  **network order** by default: the 6.1 kernel clears ``TIPC_SUB_CANCEL`` with
  ``s->filter &= ntohl(~TIPC_SUB_CANCEL)`` before ``memcmp``-ing the stored subscription,
  so on a little-endian host a *native-order* cancel never matches and the subscription
  leaks (verified in the ktipc guest). Network-order cancels work.
* Validation of a subscription before it is sent: a malformed one closes the whole
  topology connection, killing every other subscription on it.
* Socket addresses as CPython's ``AF_TIPC`` tuples. CPython orders a socket address as
  ``(TIPC_ADDR_ID, node, ref, 0, scope)`` — node *before* ref, unlike ``struct
  sockaddr_tipc`` (verified in the guest: ``getsockname()`` → ``(3, node, port, 0, 0)``).
* Ancillary data of ``recvmsg``: ``TIPC_ERRINFO`` (error code, returned length),
  ``TIPC_RETDATA`` (≤ 1024 bytes of the returned payload) and ``TIPC_DESTNAME``
  (the name the sender used).
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple, Optional, Sequence, Tuple, Union

from ...addr import (
    LINK_STATE,
    NODE_STATE,
    TOP_SRV,
    U32_MAX,
    Scope,
    ServiceAddr,
    ServiceRange,
    SocketAddr,
)
from ...errors import AddressError, LocalProtocolError, RemoteProtocolError
from ...events import (
    LinkDown,
    LinkUp,
    NodeDown,
    NodeUp,
    Published,
    TopologyEvent,
    Withdrawn,
)

__all__ = [
    "AF_TIPC",
    "SOL_TIPC",
    "TIPC_ADDR_NAMESEQ",
    "TIPC_ADDR_NAME",
    "TIPC_ADDR_ID",
    "TIPC_IMPORTANCE",
    "TIPC_SRC_DROPPABLE",
    "TIPC_DEST_DROPPABLE",
    "TIPC_CONN_TIMEOUT",
    "TIPC_SOCK_RECVQ_DEPTH",
    "TIPC_ERRINFO",
    "TIPC_RETDATA",
    "TIPC_DESTNAME",
    "TIPC_ERR_NO_NAME",
    "TIPC_ERR_NO_PORT",
    "TIPC_ERR_NO_NODE",
    "TIPC_ERR_OVERLOAD",
    "TIPC_CONN_SHUTDOWN",
    "TIPC_SUB_PORTS",
    "TIPC_SUB_SERVICE",
    "TIPC_SUB_CANCEL",
    "TIPC_WAIT_FOREVER",
    "TIPC_PUBLISHED",
    "TIPC_WITHDRAWN",
    "TIPC_SUBSCR_TIMEOUT",
    "SIOCGETNODEID",
    "NODEID_REQ",
    "MAX_USER_MSG_SIZE",
    "SUBSCR_SIZE",
    "EVENT_SIZE",
    "CONN_TIMEOUT_MIN_MS",
    "ByteOrder",
    "Subscr",
    "Event",
    "Ancillary",
    "wait_forever",
    "clamp_conn_timeout",
    "validate_subscr",
    "pack_subscr",
    "pack_cancel",
    "unpack_subscr",
    "unpack_event",
    "detect_order",
    "handle_for",
    "handle_id",
    "event_to_topology",
    "sockaddr",
    "bind_sockaddr",
    "topsrv_sockaddr",
    "socket_addr_from",
    "parse_ancillary",
    "decode_errinfo",
    "decode_destname",
    "dest_from_destname",
    "failure_from_code",
    "nodeid_to_identity",
    "identity_to_nodeid",
    "NODE_ID_LEN",
]

# --- constants (linux/tipc.h); CPython lacks several of them, so all are spelled out here ---

AF_TIPC = 30
SOL_TIPC = 271

TIPC_ADDR_NAMESEQ = 1  #: TIPC_SERVICE_RANGE
TIPC_ADDR_NAME = 2  #: TIPC_SERVICE_ADDR
TIPC_ADDR_ID = 3  #: TIPC_SOCKET_ADDR

TIPC_IMPORTANCE = 127
TIPC_SRC_DROPPABLE = 128
TIPC_DEST_DROPPABLE = 129
TIPC_CONN_TIMEOUT = 130
TIPC_SOCK_RECVQ_DEPTH = 132

TIPC_ERRINFO = 1  #: cmsg: u32 error code, u32 returned data length
TIPC_RETDATA = 2  #: cmsg: the returned payload (≤ 1024 bytes)
TIPC_DESTNAME = 3  #: cmsg: u32 type, lower, upper the sender addressed

TIPC_OK = 0
TIPC_ERR_NO_NAME = 1
TIPC_ERR_NO_PORT = 2
TIPC_ERR_NO_NODE = 3
TIPC_ERR_OVERLOAD = 4
TIPC_CONN_SHUTDOWN = 5

TIPC_SUB_PORTS = 0x01
TIPC_SUB_SERVICE = 0x02
TIPC_SUB_CANCEL = 0x04
_FILTER_ALLOWED = TIPC_SUB_PORTS | TIPC_SUB_SERVICE | TIPC_SUB_CANCEL

TIPC_WAIT_FOREVER = U32_MAX  #: CPython exposes it as -1; on the wire it is 0xFFFFFFFF

TIPC_PUBLISHED = 1
TIPC_WITHDRAWN = 2
TIPC_SUBSCR_TIMEOUT = 3

SIOCGETNODEID = 0x89E1  #: ioctl: struct tipc_sioc_nodeid_req {u32 peer; char node_id[16]}
NODEID_REQ = struct.Struct("=I16s")

MAX_USER_MSG_SIZE = 66_000

#: The kernel divides by ``conn_timeout / 4``; values below 4 ms crash unpatched kernels
#: (CVE-2026-43411). We never set less than this.
CONN_TIMEOUT_MIN_MS = 100


class ByteOrder(str, enum.Enum):
    """Byte order of a topology subscription (and of the events answering it)."""

    NETWORK = "!"
    NATIVE = "="


_SUBSCR = {o: struct.Struct(o.value + "5I8s") for o in ByteOrder}
_EVENT = {o: struct.Struct(o.value + "10I8s") for o in ByteOrder}
SUBSCR_SIZE = 28
EVENT_SIZE = 48
_HANDLE = struct.Struct("!Q")
_ERRINFO = struct.Struct("=II")
_DESTNAME = struct.Struct("=III")


class Subscr(NamedTuple):
    """``struct tipc_subscr``: a subscription as it goes on the wire."""

    type: int
    lower: int
    upper: int
    timeout: int  #: milliseconds; :data:`TIPC_WAIT_FOREVER` = never expires
    filter: int
    handle: bytes  #: ``usr_handle[8]``, echoed back in every event

    @property
    def range(self) -> ServiceRange:
        return ServiceRange(self.type, self.lower, self.upper)


class Event(NamedTuple):
    """``struct tipc_event`` decoded."""

    event: int  #: TIPC_PUBLISHED / TIPC_WITHDRAWN / TIPC_SUBSCR_TIMEOUT
    found_lower: int
    found_upper: int
    port_ref: int
    port_node: int
    sub: Subscr


def wait_forever(timeout_ms: Optional[int]) -> int:
    """Normalise a subscription timeout: ``None`` and CPython's ``-1`` become 0xFFFFFFFF."""
    if timeout_ms is None or timeout_ms == -1:
        return TIPC_WAIT_FOREVER
    if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or not 0 <= timeout_ms <= U32_MAX:
        raise LocalProtocolError(f"subscription timeout must be None, -1 or 0..{U32_MAX} ms, got {timeout_ms!r}")
    return timeout_ms


def clamp_conn_timeout(ms: int) -> int:
    """A safe ``TIPC_CONN_TIMEOUT`` value: at least :data:`CONN_TIMEOUT_MIN_MS`."""
    return max(CONN_TIMEOUT_MIN_MS, min(int(ms), U32_MAX))


def _u32(what: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= U32_MAX:
        raise LocalProtocolError(f"subscription {what} must be an integer in 0..{U32_MAX}, got {value!r}")
    return value


def validate_subscr(sub: Subscr, *, allow_cancel: bool = False) -> Subscr:
    """Check ``sub`` against every rule the topology server enforces; return it normalised.

    A subscription the server rejects closes the *whole* topology connection, so reject
    it here with :class:`~tipcrpc.errors.LocalProtocolError` instead.
    """
    _u32("type", sub.type)
    _u32("lower", sub.lower)
    _u32("upper", sub.upper)
    timeout = wait_forever(sub.timeout)
    filt = sub.filter
    if not isinstance(filt, int) or isinstance(filt, bool):
        raise LocalProtocolError(f"subscription filter must be an integer, got {filt!r}")
    if filt & ~_FILTER_ALLOWED:
        raise LocalProtocolError(f"subscription filter {filt:#x} has bits outside PORTS|SERVICE|CANCEL")
    if filt & TIPC_SUB_CANCEL and not allow_cancel:
        raise LocalProtocolError("TIPC_SUB_CANCEL is set by pack_cancel() only")
    kind = filt & (TIPC_SUB_PORTS | TIPC_SUB_SERVICE)
    if kind == TIPC_SUB_PORTS | TIPC_SUB_SERVICE:
        raise LocalProtocolError("subscription filter may not combine PORTS and SERVICE")
    if kind == 0:
        # The server detects the byte order from these bits; without one it misreads everything.
        raise LocalProtocolError("subscription filter needs PORTS or SERVICE")
    if sub.lower > sub.upper:
        raise LocalProtocolError(f"subscription lower {sub.lower} exceeds upper {sub.upper}")
    handle = sub.handle
    if not isinstance(handle, (bytes, bytearray)) or len(handle) != 8:
        raise LocalProtocolError(f"usr_handle must be exactly 8 bytes, got {handle!r}")
    if timeout != sub.timeout or not isinstance(handle, bytes):
        sub = sub._replace(timeout=timeout, handle=bytes(handle))
    return sub


def pack_subscr(sub: Subscr, order: ByteOrder = ByteOrder.NETWORK) -> bytes:
    """Validate and pack a subscription (28 bytes)."""
    sub = validate_subscr(sub)
    return _SUBSCR[order].pack(sub.type, sub.lower, sub.upper, sub.timeout, sub.filter, sub.handle)


def pack_cancel(sub: Subscr, order: ByteOrder = ByteOrder.NETWORK) -> bytes:
    """The cancel request for ``sub``: byte-identical to the original with CANCEL OR-ed in.

    Use :attr:`ByteOrder.NETWORK` (see the module docstring: native-order cancels do not
    work on little-endian 6.1 kernels).
    """
    sub = validate_subscr(sub)
    return _SUBSCR[order].pack(sub.type, sub.lower, sub.upper, sub.timeout, sub.filter | TIPC_SUB_CANCEL, sub.handle)


def detect_order(data: bytes) -> ByteOrder:
    """The byte order of a packed subscription, decided like the kernel's ``tipc_sub_read``.

    The 4-byte ``filter`` at offset 16 holds PORTS/SERVICE/CANCEL in its low bits; if they
    read as zero in native order, the peer used the other order. Events start with the
    same 28-byte subscription at offset 20.
    """
    if len(data) < 20:
        raise RemoteProtocolError(f"too short to carry a subscription filter: {len(data)} bytes")
    native = _SUBSCR[ByteOrder.NATIVE].unpack_from(data.ljust(SUBSCR_SIZE, b"\0")[:SUBSCR_SIZE])[4]
    if native & 0x7:
        # Native and network coincide on big-endian hosts; report the native order then.
        return ByteOrder.NATIVE
    return ByteOrder.NETWORK


def unpack_subscr(data: bytes, order: ByteOrder | None = None) -> Subscr:
    """Decode a 28-byte subscription (order auto-detected if not given)."""
    if len(data) != SUBSCR_SIZE:
        raise RemoteProtocolError(f"a tipc_subscr is {SUBSCR_SIZE} bytes, got {len(data)}")
    order = order or detect_order(data)
    return Subscr(*_SUBSCR[order].unpack(data))


def unpack_event(data: bytes, order: ByteOrder = ByteOrder.NETWORK) -> Event:
    """Decode a 48-byte topology event sent in answer to a subscription of ``order``."""
    if len(data) != EVENT_SIZE:
        raise RemoteProtocolError(f"a tipc_event is {EVENT_SIZE} bytes, got {len(data)}")
    f = _EVENT[order].unpack(data)
    return Event(f[0], f[1], f[2], f[3], f[4], Subscr(f[5], f[6], f[7], f[8], f[9], f[10]))


def handle_for(sub_id: int) -> bytes:
    """An 8-byte ``usr_handle`` carrying a 64-bit subscription id."""
    return _HANDLE.pack(sub_id)


def handle_id(handle: bytes) -> int:
    """The subscription id carried by a handle made with :func:`handle_for`."""
    sub_id: int = _HANDLE.unpack(handle)[0]
    return sub_id


def event_to_topology(ev: Event) -> TopologyEvent | None:
    """Map a kernel event to a tipcrpc topology event (``None`` for a timeout).

    Type 0 (node state) → :class:`NodeUp`/:class:`NodeDown` with the node address in
    ``found_lower``; type 2 (link state) → :class:`LinkUp`/:class:`LinkDown` with the peer
    in ``found_lower`` and the link id (``local_bearer | remote_bearer << 16``) in
    ``port.ref``; any other type → :class:`Published`/:class:`Withdrawn`.
    """
    kind = ev.event
    if kind == TIPC_SUBSCR_TIMEOUT:
        return None
    if kind not in (TIPC_PUBLISHED, TIPC_WITHDRAWN):
        raise RemoteProtocolError(f"unknown topology event code {kind}")
    up = kind == TIPC_PUBLISHED
    stype = ev.sub.type
    if stype == NODE_STATE:
        return NodeUp(ev.found_lower) if up else NodeDown(ev.found_lower)
    if stype == LINK_STATE:
        return LinkUp(ev.found_lower, ev.port_ref) if up else LinkDown(ev.found_lower, ev.port_ref)
    if ev.found_lower > ev.found_upper:
        raise RemoteProtocolError(f"event range lower {ev.found_lower} exceeds upper {ev.found_upper}")
    rng = ServiceRange(stype, ev.found_lower, ev.found_upper)
    sock = SocketAddr(ev.port_node, ev.port_ref)
    return Published(rng, sock) if up else Withdrawn(rng, sock)


# --- socket addresses as CPython tuples ---

SockaddrTuple = Tuple[int, ...]
Destination = Union[ServiceAddr, ServiceRange, SocketAddr]


def sockaddr(dest: Destination) -> SockaddrTuple:
    """The CPython ``sendto`` address for a destination.

    :class:`ServiceAddr` → ``(TIPC_ADDR_NAME, type, instance, 0)`` (lookup domain 0: the
    whole cluster); :class:`ServiceRange` → ``(TIPC_ADDR_NAMESEQ, type, lower, upper)``
    (multicast); :class:`SocketAddr` → ``(TIPC_ADDR_ID, node, port, 0)``.
    """
    if type(dest) is ServiceAddr:
        return (TIPC_ADDR_NAME, dest.type, dest.instance, 0)
    if type(dest) is SocketAddr:
        return (TIPC_ADDR_ID, dest.node, dest.port, 0)
    if type(dest) is ServiceRange:
        return (TIPC_ADDR_NAMESEQ, dest.type, dest.lower, dest.upper)
    raise AddressError(f"not a TIPC destination: {dest!r}")


def bind_sockaddr(name: Union[ServiceAddr, ServiceRange], scope: Scope, *, withdraw: bool = False) -> SockaddrTuple:
    """The ``bind`` address publishing (or, with ``withdraw``, unbinding) ``name``.

    The kernel withdraws a name when it is bound again with the *negated* scope.
    """
    rng = name.as_range() if isinstance(name, ServiceAddr) else name
    if not isinstance(rng, ServiceRange):
        raise AddressError(f"only a ServiceAddr or ServiceRange can be published, got {name!r}")
    scope = Scope(scope)
    return (TIPC_ADDR_NAMESEQ, rng.type, rng.lower, rng.upper, -int(scope) if withdraw else int(scope))


def topsrv_sockaddr(node: int = 0) -> SockaddrTuple:
    """Address of the topology server of ``node`` (0 = this node)."""
    return (TIPC_ADDR_NAME, TOP_SRV, TOP_SRV, node)


def socket_addr_from(addr: Sequence[int]) -> SocketAddr:
    """A :class:`SocketAddr` from CPython's ``(TIPC_ADDR_ID, node, ref, 0, scope)``."""
    if len(addr) < 3 or addr[0] != TIPC_ADDR_ID:
        raise RemoteProtocolError(f"expected a TIPC socket address tuple, got {addr!r}")
    return SocketAddr(addr[1], addr[2])


# --- ancillary data ---


class Ancillary(NamedTuple):
    """The TIPC control messages of one received datagram."""

    errinfo: Optional[Tuple[int, int]]  #: (error code, returned data length)
    retdata: Optional[bytes]
    destname: Optional[Tuple[int, int, int]]  #: (type, lower, upper)


_NO_ANC = Ancillary(None, None, None)


def parse_ancillary(ancdata: Sequence[Tuple[int, int, bytes]]) -> Ancillary:
    """Pick the ``SOL_TIPC`` control messages out of ``recvmsg``'s ancillary data."""
    if not ancdata:
        return _NO_ANC
    errinfo = retdata = destname = None
    for level, ctype, cdata in ancdata:
        if level != SOL_TIPC:
            continue
        if ctype == TIPC_ERRINFO:
            errinfo = decode_errinfo(cdata)
        elif ctype == TIPC_RETDATA:
            retdata = bytes(cdata)
        elif ctype == TIPC_DESTNAME:
            destname = decode_destname(cdata)
    return Ancillary(errinfo, retdata, destname)


def decode_errinfo(data: bytes) -> Tuple[int, int]:
    """``TIPC_ERRINFO``: ``(error code, returned data length)``."""
    if len(data) < _ERRINFO.size:
        raise RemoteProtocolError(f"TIPC_ERRINFO needs {_ERRINFO.size} bytes, got {len(data)}")
    return _ERRINFO.unpack_from(data)


def decode_destname(data: bytes) -> Tuple[int, int, int]:
    """``TIPC_DESTNAME``: ``(type, lower, upper)``."""
    if len(data) < _DESTNAME.size:
        raise RemoteProtocolError(f"TIPC_DESTNAME needs {_DESTNAME.size} bytes, got {len(data)}")
    return _DESTNAME.unpack_from(data)


def dest_from_destname(destname: Tuple[int, int, int]) -> Union[ServiceAddr, ServiceRange]:
    """The name a datagram was sent to, from its ``TIPC_DESTNAME``.

    The kernel reports an anycast to ``{t, i}`` as ``(t, i, i)`` and a multicast to
    ``{t, l, u}`` as ``(t, l, u)``: a multicast to a *singleton* range is therefore
    indistinguishable from an anycast and is reported as a :class:`ServiceAddr`.
    """
    t, lower, upper = destname
    if lower == upper:
        return ServiceAddr(t, lower)
    if lower > upper:
        raise RemoteProtocolError(f"TIPC_DESTNAME lower {lower} exceeds upper {upper}")
    return ServiceRange(t, lower, upper)


_FAILURE_CODES = frozenset((TIPC_ERR_NO_NAME, TIPC_ERR_NO_PORT, TIPC_ERR_NO_NODE, TIPC_ERR_OVERLOAD))


def failure_from_code(code: int) -> int:
    """Check a returned message's ``TIPC_ERR_*`` code and return it.

    The codes equal :class:`tipcrpc.transport.base.DeliveryFailure`'s values (layer L2
    converts). Unknown codes — including ``TIPC_OK`` and ``TIPC_CONN_SHUTDOWN``, which
    never come back on a datagram — raise :class:`~tipcrpc.errors.RemoteProtocolError`.
    """
    if code not in _FAILURE_CODES:
        raise RemoteProtocolError(f"unknown TIPC error code {code} on a returned message")
    return code


_ID_CHARS = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.:_-@")
NODE_ID_LEN = 16


def nodeid_to_identity(node_id: bytes) -> str:
    """Render a 16-byte node identity as the kernel's ``tipc_nodeid2string`` does.

    Identities made of ``[0-9A-Za-z.:_@-]`` and NULs (``tipc node set identity node1``)
    come back as that string; anything else (MAC- or IP-derived identities) as hex with
    trailing zero digits stripped.
    """
    raw = bytes(node_id).ljust(NODE_ID_LEN, b"\0")[:NODE_ID_LEN]
    if all(b == 0 or b in _ID_CHARS for b in raw):
        return raw.split(b"\0", 1)[0].decode("ascii")
    return raw.hex().rstrip("0")


def identity_to_nodeid(identity: str | bytes) -> bytes:
    """The 16-byte node id for an identity, as ``tipc node set identity`` builds it.

    Up to 16 characters (or bytes) are used as they are, NUL-padded; 17..32 characters
    are read as hex digits. Raises :class:`~tipcrpc.errors.AddressError` otherwise.
    """
    if isinstance(identity, (bytes, bytearray)):
        raw = bytes(identity)
        if not 0 < len(raw) <= NODE_ID_LEN:
            raise AddressError(f"a node id is 1..{NODE_ID_LEN} bytes, got {len(raw)}")
        return raw.ljust(NODE_ID_LEN, b"\0")
    if not isinstance(identity, str) or not identity:
        raise AddressError(f"a node identity must be a non-empty string, got {identity!r}")
    if len(identity) <= NODE_ID_LEN:
        try:
            return identity.encode("ascii").ljust(NODE_ID_LEN, b"\0")
        except UnicodeEncodeError:
            raise AddressError(f"node identity {identity!r} is not ASCII") from None
    if len(identity) > 2 * NODE_ID_LEN:
        raise AddressError(f"node identity {identity!r} is longer than 32 hex digits")
    try:
        return bytes.fromhex(identity.ljust(2 * NODE_ID_LEN, "0"))
    except ValueError:
        raise AddressError(f"node identity {identity!r}: over 16 characters must be hex digits") from None
