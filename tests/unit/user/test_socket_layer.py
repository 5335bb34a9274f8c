"""The socket layer's receive fast path builds the same objects as the general path."""

from __future__ import annotations

import dataclasses

import pytest

from tipcrpc import fastpath
from tipcrpc.addr import ServiceAddr, SocketAddr
from tipcrpc.transport.base import Delivery, DeliveryFailure, Returned
from tipcrpc.transport.user import msg as m
from tipcrpc.transport.user.socket_layer import SocketLayer

pytestmark = pytest.mark.skipif(
    "tipcrpc.transport.user.socket_layer" in fastpath.compiled_modules(),  # docs/compiled.md
    reason="subclasses SocketLayer and hands it a stand-in stack, which a compiled class does not allow: "
    "TIPCRPC_PURE=1 runs it",
)


class _Port:
    def __init__(self, address: SocketAddr) -> None:
        self._address = address
        self.got: list[object] = []

    def _deliver(self, item: object) -> None:
        self.got.append(item)


class _Stack:
    """What a SocketLayer needs from its stack; nothing leaves (no peer is up)."""

    closed = False
    _names_pending = False

    def _xmit_parts(self, peer: int, hdr: bytes, body: bytes) -> None:
        raise AssertionError("nothing is sent in these tests")

    def _xmit_internal(self, peer: int, m: bytes) -> bool:
        raise AssertionError("nothing is sent in these tests")


class _Layer(SocketLayer):
    """The real socket layer, its rejections recorded instead of sent back."""

    def __init__(self, own: int) -> None:
        stats = dict.fromkeys(
            ("messages_received", "bytes_received", "malformed_dropped", "unsupported_dropped",
             "messages_rejected", "returns_dropped", "messages_returned", "multicast_unmatched"), 0)
        super().__init__(_Stack(), stats)  # type: ignore[arg-type]
        self.own = own
        self.rejected: list[bytes] = []

    def _reject(self, msg: bytes, err: int) -> None:
        self.rejected.append(msg)


def test_direct_fast_path_and_general_path_deliver_alike() -> None:
    layer = _Layer(0x1111)
    port = _Port(SocketAddr(0x1111, 7))
    layer.ports[7] = port  # type: ignore[assignment]
    for payload in (b"", b"x", b"0123456789" * 10):
        layer.dispatch(0x2222, m.direct_msg(2, 0x2222, 9, 0x1111, 7, payload))
        # A named message: same delivery, its dest is the name it was sent to.
        layer.dispatch(0x2222, m.named_msg(2, 0x2222, 9, 0x1111, 7, 100, 5, payload, 2))
    got = port.got
    want = [Delivery(p, SocketAddr(0x2222, 9), SocketAddr(0x1111, 7)) for p in (b"", b"x", b"0123456789" * 10)]
    assert got[0::2] == want
    assert got[1::2] == [Delivery(p, SocketAddr(0x2222, 9), ServiceAddr(100, 5)) for p in (b"", b"x", b"0123456789" * 10)]
    # The fast path builds Delivery through its slot descriptors: the object must be a
    # complete Delivery (every field set: equal, same hash, same repr, same type).
    for d, w in zip(got[0::2], want):
        assert type(d) is Delivery and hash(d) == hash(w) and repr(d) == repr(w)
        assert [getattr(d, f.name) for f in dataclasses.fields(Delivery)] == [getattr(w, f.name) for f in dataclasses.fields(Delivery)]
    assert layer.messages_received == 6


def test_named_message_for_a_missing_port_takes_the_general_path() -> None:
    layer = _Layer(0x1111)
    msg = m.named_msg(0, 0x2222, 9, 0x1111, 8, 100, 5, b"x", 2)
    layer._reroute = lambda h, m: False  # type: ignore[method-assign,assignment]  # no second chance
    layer.dispatch(0x2222, msg)
    assert layer.rejected == [msg]


def test_direct_fast_path_leaves_returns_and_unknown_ports_to_the_general_path() -> None:
    layer = _Layer(0x1111)
    port = _Port(SocketAddr(0x1111, 7))
    layer.ports[7] = port  # type: ignore[assignment]
    msg = m.direct_msg(0, 0x2222, 9, 0x1111, 8, b"to nobody")
    layer.dispatch(0x2222, msg)
    assert layer.rejected == [msg] and port.got == []
    # A direct message of ours that 0x2222 returned (error code set): a Returned, not data.
    ours = m.direct_msg(0, 0x1111, 7, 0x2222, 9, b"lost")
    back = m.rejected(ours, m.TIPC_ERR_NO_PORT, 0x2222)
    assert back is not None
    layer.dispatch(0x2222, back)
    assert port.got == [Returned(b"lost", SocketAddr(0x2222, 9), DeliveryFailure.NO_PORT)]
