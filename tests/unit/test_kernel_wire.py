"""Pure tests of tipcrpc.transport.kernel.wire: golden vectors from a real 6.1 kernel.

The vectors are the raw ``tipc_subscr``/``tipc_event`` bytes recorded in the ktipc guest
(``shared/reference/captures/*.topsrv-events.txt``, x86-64, native byte order). When the
capture files are present next to the checkout they are parsed too.
"""

from __future__ import annotations

import re
import struct
import sys
from pathlib import Path

import pytest
from ci_policy import require, requires
from hypothesis import given
from hypothesis import strategies as st

from tipcrpc.addr import Scope, ServiceAddr, ServiceRange, SocketAddr
from tipcrpc.errors import AddressError, LocalProtocolError, RemoteProtocolError, TipcRpcError
from tipcrpc.events import LinkDown, LinkUp, NodeDown, NodeUp, Published, Withdrawn
from tipcrpc.transport.base import DeliveryFailure
from tipcrpc.transport.kernel import wire
from tipcrpc.transport.kernel.wire import ByteOrder, Event, Subscr

LITTLE = sys.byteorder == "little"
needs_le = pytest.mark.skipif(not LITTLE, reason="golden vectors were captured on x86-64 (little-endian)")

# From udp-multicast.topsrv-events.txt (node a = "nodea" 0x0f6f6465, b = "nodeb" 0x0c6f6465).
SUB_PORTS_18888 = "c849000000000000ffffffffffffffff0100000068616e646c653031"
SUB_NODES = "0000000000000000ffffffffffffffff010000006e6f6465732d2d32"
EV_NODE_UP_A = (
    "0100000065646f0f65646f0f0000000065646f0f"
    "0000000000000000ffffffffffffffff010000006e6f6465732d2d32"
)
EV_PUBLISHED_17 = (
    "01000000110000001100000030c512c365646f0c"
    "c849000000000000ffffffffffffffff0100000068616e646c653031"
)
EV_WITHDRAWN_17 = (
    "02000000110000001100000030c512c365646f0c"
    "c849000000000000ffffffffffffffff0100000068616e646c653031"
)

CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "captures"


def swap_words(data: bytes, words: int) -> bytes:
    """Byte-swap the first ``words`` u32 of ``data`` (native ↔ network on x86)."""
    head = struct.unpack(f"<{words}I", data[: 4 * words])
    return struct.pack(f">{words}I", *head) + data[4 * words :]


# ------------------------------------------------------------------ subscriptions


@needs_le
def test_golden_subscription_native_order() -> None:
    sub = Subscr(18888, 0, 0xFFFFFFFF, -1, wire.TIPC_SUB_PORTS, b"handle01")
    assert wire.pack_subscr(sub, ByteOrder.NATIVE).hex() == SUB_PORTS_18888
    nodes = Subscr(0, 0, 0xFFFFFFFF, None, wire.TIPC_SUB_PORTS, b"nodes--2")  # type: ignore[arg-type]
    assert wire.pack_subscr(nodes, ByteOrder.NATIVE).hex() == SUB_NODES


@needs_le
def test_golden_subscription_network_order_is_the_swap() -> None:
    sub = Subscr(18888, 0, 0xFFFFFFFF, -1, wire.TIPC_SUB_PORTS, b"handle01")
    net = wire.pack_subscr(sub)  # network order is the default
    assert net == swap_words(bytes.fromhex(SUB_PORTS_18888), 5)
    assert net[16:20] == b"\x00\x00\x00\x01"


def test_wait_forever_masked() -> None:
    for forever in (None, -1, 0xFFFFFFFF):
        data = wire.pack_subscr(Subscr(100, 0, 1, forever, wire.TIPC_SUB_SERVICE, b"12345678"))  # type: ignore[arg-type]
        assert data[12:16] == b"\xff\xff\xff\xff"
    assert wire.wait_forever(250) == 250
    with pytest.raises(LocalProtocolError):
        wire.wait_forever(-2)
    with pytest.raises(LocalProtocolError):
        wire.wait_forever(1 << 32)


@pytest.mark.parametrize(
    "sub, message",
    [
        (Subscr(100, 0, 10, -1, wire.TIPC_SUB_PORTS | wire.TIPC_SUB_SERVICE, b"12345678"), "PORTS and SERVICE"),
        (Subscr(100, 0, 10, -1, 0, b"12345678"), "needs PORTS or SERVICE"),
        (Subscr(100, 11, 10, -1, wire.TIPC_SUB_PORTS, b"12345678"), "exceeds upper"),
        (Subscr(100, 0, 10, -1, wire.TIPC_SUB_PORTS, b"1234567"), "8 bytes"),
        (Subscr(100, 0, 10, -1, wire.TIPC_SUB_PORTS, b"123456789"), "8 bytes"),
        (Subscr(100, 0, 10, -1, wire.TIPC_SUB_PORTS, "12345678"), "8 bytes"),  # type: ignore[arg-type]
        (Subscr(100, 0, 10, -1, wire.TIPC_SUB_PORTS | 0x80, b"12345678"), "outside"),
        (Subscr(100, 0, 10, -1, wire.TIPC_SUB_PORTS | wire.TIPC_SUB_CANCEL, b"12345678"), "pack_cancel"),
        (Subscr(-1, 0, 10, -1, wire.TIPC_SUB_PORTS, b"12345678"), "type"),
        (Subscr(100, 0, 1 << 32, -1, wire.TIPC_SUB_PORTS, b"12345678"), "upper"),
        (Subscr(100, 0, 10, -1, True, b"12345678"), "filter"),  # type: ignore[arg-type]
    ],
)
def test_malformed_subscriptions_rejected_before_sending(sub: Subscr, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        wire.pack_subscr(sub)


def test_cancel_is_byte_identical_plus_cancel_bit() -> None:
    sub = Subscr(4242, 3, 9, -1, wire.TIPC_SUB_SERVICE, wire.handle_for(77))
    for order in ByteOrder:
        plain = wire.pack_subscr(sub, order)
        cancel = wire.pack_cancel(sub, order)
        assert plain[:16] == cancel[:16] and plain[20:] == cancel[20:]
        fmt = order.value + "I"
        assert struct.unpack(fmt, cancel[16:20])[0] == wire.TIPC_SUB_SERVICE | wire.TIPC_SUB_CANCEL


def test_byte_order_detection_like_the_kernel() -> None:
    sub = Subscr(4242, 3, 9, 1000, wire.TIPC_SUB_PORTS, b"abcdefgh")
    for order in ByteOrder:
        data = wire.pack_subscr(sub, order)
        assert wire.unpack_subscr(data) == sub
        assert wire.unpack_subscr(data, order) == sub
    with pytest.raises(RemoteProtocolError):
        wire.unpack_subscr(b"\x00" * 27)
    with pytest.raises(RemoteProtocolError):
        wire.detect_order(b"\x00" * 10)


def test_handles_carry_ids() -> None:
    for value in (0, 1, 1 << 63, (1 << 64) - 1):
        h = wire.handle_for(value)
        assert len(h) == 8 and wire.handle_id(h) == value


# ------------------------------------------------------------------ events


@needs_le
def test_golden_events_native_order() -> None:
    node_up = wire.unpack_event(bytes.fromhex(EV_NODE_UP_A), ByteOrder.NATIVE)
    assert node_up == Event(1, 0x0F6F6465, 0x0F6F6465, 0, 0x0F6F6465,
                            Subscr(0, 0, 0xFFFFFFFF, 0xFFFFFFFF, 1, b"nodes--2"))
    assert wire.event_to_topology(node_up) == NodeUp(0x0F6F6465)
    pub = wire.unpack_event(bytes.fromhex(EV_PUBLISHED_17), ByteOrder.NATIVE)
    assert pub.port_ref == 3272787248 and pub.port_node == 0x0C6F6465
    assert wire.event_to_topology(pub) == Published(ServiceRange(18888, 17, 17), SocketAddr(0x0C6F6465, 3272787248))
    wdr = wire.unpack_event(bytes.fromhex(EV_WITHDRAWN_17), ByteOrder.NATIVE)
    assert wire.event_to_topology(wdr) == Withdrawn(ServiceRange(18888, 17, 17), SocketAddr(0x0C6F6465, 3272787248))


@needs_le
def test_golden_events_network_order() -> None:
    raw = swap_words(bytes.fromhex(EV_PUBLISHED_17), 10)
    ev = wire.unpack_event(raw, ByteOrder.NETWORK)
    assert wire.event_to_topology(ev) == Published(ServiceRange(18888, 17, 17), SocketAddr(0x0C6F6465, 3272787248))
    assert ev.sub.handle == b"handle01"
    assert wire.detect_order(raw[20:]) is ByteOrder.NETWORK
    assert wire.detect_order(bytes.fromhex(EV_PUBLISHED_17)[20:]) is ByteOrder.NATIVE


def _event(kind: int, stype: int, lower: int, upper: int, ref: int, node: int) -> Event:
    return Event(kind, lower, upper, ref, node, Subscr(stype, 0, 0xFFFFFFFF, 0xFFFFFFFF, 1, b"h" * 8))


def test_event_mapping_node_link_service() -> None:
    assert wire.event_to_topology(_event(2, 0, 7, 7, 0, 7)) == NodeDown(7)
    assert wire.event_to_topology(_event(1, 2, 9, 9, 0x10001, 5)) == LinkUp(9, 0x10001)
    assert wire.event_to_topology(_event(2, 2, 9, 9, 0x10001, 5)) == LinkDown(9, 0x10001)
    assert wire.event_to_topology(_event(wire.TIPC_SUBSCR_TIMEOUT, 100, 0, 0, 0, 0)) is None
    with pytest.raises(RemoteProtocolError):
        wire.event_to_topology(_event(9, 100, 0, 0, 0, 0))
    with pytest.raises(RemoteProtocolError):
        wire.event_to_topology(_event(1, 100, 5, 4, 1, 1))
    with pytest.raises(RemoteProtocolError):
        wire.unpack_event(b"\x00" * 47)


_CAPTURE_FILES = sorted(CAPTURES.glob("*.topsrv-events.txt")) if CAPTURES.is_dir() else []
CAPTURE_FILES = (bool(_CAPTURE_FILES), f"capture files not found under {CAPTURES} (../shared/reference/captures)")


@requires(*CAPTURE_FILES)
def test_capture_files_decode_if_present() -> None:
    require(*CAPTURE_FILES)
    files = _CAPTURE_FILES
    decoded = 0
    for path in files:
        for line in path.read_text().splitlines():
            m = re.search(r"\| ([0-9a-f]{96})$", line)
            if not m:
                continue
            ev = wire.unpack_event(bytes.fromhex(m.group(1)), ByteOrder.NATIVE if LITTLE else ByteOrder.NETWORK)
            topo = wire.event_to_topology(ev)
            assert isinstance(topo, (NodeUp, Published, Withdrawn))
            decoded += 1
    assert decoded >= 4


@given(st.binary(max_size=64))
def test_event_decoder_never_raises_untyped(data: bytes) -> None:
    try:
        ev = wire.unpack_event(data)
        wire.event_to_topology(ev)
    except TipcRpcError:
        pass


# ------------------------------------------------------------------ addresses


def test_sockaddr_tuples_match_cpython_order() -> None:
    # CPython: (TIPC_ADDR_ID, node, ref, 0, scope) — node first (verified in the guest).
    assert wire.sockaddr(SocketAddr(0x1234, 99)) == (wire.TIPC_ADDR_ID, 0x1234, 99, 0)
    assert wire.sockaddr(ServiceAddr(100, 7)) == (wire.TIPC_ADDR_NAME, 100, 7, 0)
    assert wire.sockaddr(ServiceRange(100, 1, 9)) == (wire.TIPC_ADDR_NAMESEQ, 100, 1, 9)
    assert wire.socket_addr_from((3, 0x1234, 99, 0, 0)) == SocketAddr(0x1234, 99)
    with pytest.raises(AddressError):
        wire.sockaddr((1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(RemoteProtocolError):
        wire.socket_addr_from((2, 100, 7, 0))


def test_bind_and_withdraw_sockaddr() -> None:
    assert wire.bind_sockaddr(ServiceAddr(100, 7), Scope.CLUSTER) == (1, 100, 7, 7, 2)
    assert wire.bind_sockaddr(ServiceRange(100, 0, 9), Scope.NODE) == (1, 100, 0, 9, 3)
    assert wire.bind_sockaddr(ServiceRange(100, 0, 9), Scope.NODE, withdraw=True) == (1, 100, 0, 9, -3)
    assert wire.topsrv_sockaddr() == (wire.TIPC_ADDR_NAME, 1, 1, 0)
    with pytest.raises(ValueError):
        wire.bind_sockaddr(ServiceAddr(100, 7), 5)  # type: ignore[arg-type]


# ------------------------------------------------------------------ ancillary data


def test_ancillary_of_a_returned_message() -> None:
    # Recorded in the guest: NO_PORT, 16 bytes returned, then RETDATA and DESTNAME.
    anc = [
        (wire.SOL_TIPC, wire.TIPC_ERRINFO, bytes.fromhex("0200000010000000") if LITTLE else struct.pack("=II", 2, 16)),
        (wire.SOL_TIPC, wire.TIPC_RETDATA, b"named-then-close"),
        (wire.SOL_TIPC, wire.TIPC_DESTNAME, struct.pack("=III", 5001, 1, 1)),
        (0, 1, b"ignored: other level"),
    ]
    a = wire.parse_ancillary(anc)
    assert a.errinfo == (wire.TIPC_ERR_NO_PORT, 16)
    assert a.retdata == b"named-then-close"
    assert a.destname == (5001, 1, 1)
    assert DeliveryFailure(wire.failure_from_code(a.errinfo[0])) is DeliveryFailure.NO_PORT
    assert wire.parse_ancillary([]) == wire.Ancillary(None, None, None)


def test_destname_anycast_vs_multicast() -> None:
    assert wire.dest_from_destname((100, 5, 5)) == ServiceAddr(100, 5)
    assert wire.dest_from_destname((100, 2, 4)) == ServiceRange(100, 2, 4)
    with pytest.raises(RemoteProtocolError):
        wire.dest_from_destname((100, 4, 2))
    with pytest.raises(RemoteProtocolError):
        wire.decode_destname(b"\x00" * 11)
    with pytest.raises(RemoteProtocolError):
        wire.decode_errinfo(b"\x00" * 7)


def test_error_codes_map_to_delivery_failure() -> None:
    for code, failure in [(1, DeliveryFailure.NO_NAME), (2, DeliveryFailure.NO_PORT),
                          (3, DeliveryFailure.NO_NODE), (4, DeliveryFailure.OVERLOAD)]:
        assert DeliveryFailure(wire.failure_from_code(code)) is failure
    for bad in (0, 5, 99):
        with pytest.raises(RemoteProtocolError):
            wire.failure_from_code(bad)


# ------------------------------------------------------------------ identities, misc


def test_node_identity_round_trip_like_the_kernel() -> None:
    assert wire.identity_to_nodeid("node1") == b"node1" + b"\0" * 11
    assert wire.nodeid_to_identity(wire.identity_to_nodeid("node1")) == "node1"
    mac_like = bytes.fromhex("0a0b0c0d0e0f00000000000000000000")
    assert wire.nodeid_to_identity(mac_like) == "0a0b0c0d0e0f"
    hexid = "0123456789abcdef0123456789abcdef"
    assert wire.identity_to_nodeid(hexid) == bytes.fromhex(hexid)
    assert wire.nodeid_to_identity(b"\0" * 16) == ""
    for bad in ("", "x" * 33, "zz" * 10, "nodé"):
        with pytest.raises(AddressError):
            wire.identity_to_nodeid(bad)


def test_conn_timeout_clamped() -> None:
    assert wire.clamp_conn_timeout(0) == wire.CONN_TIMEOUT_MIN_MS
    assert wire.clamp_conn_timeout(3) >= 100
    assert wire.clamp_conn_timeout(8000) == 8000
