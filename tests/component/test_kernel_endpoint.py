"""KernelEndpoint's I/O shell with a scripted socket (runs everywhere, no AF_TIPC needed).

The real kernel rarely returns ``EAGAIN`` between namespaces of one host (data takes the
"wormhole"), so the outbox path — park on ``EAGAIN``, flush on writability, keep order,
never drop, ``drain`` above the high-water mark, queued failures reported as
``Returned`` — is exercised here against a fake socket whose readiness comes from a real
Unix socketpair.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from typing import Any, Callable, List, Optional, Tuple, Union

import pytest

from tipcrpc.addr import Importance, ServiceAddr, ServiceRange, SocketAddr
from tipcrpc.errors import ClosedError, FrameTooLarge, KernelError, LocalProtocolError, ServiceUnreachable
from tipcrpc.transport.base import Delivery, DeliveryFailure, Returned
from tipcrpc.transport.kernel import socket as ksocket
from tipcrpc.transport.kernel import wire
from tipcrpc.transport.kernel.socket import Counters, KernelEndpoint

ME = SocketAddr(0x1001, 7)
PEER = SocketAddr(0x1002, 9)


class FakeSock:
    """Just enough of a TIPC RDM socket; ``script(data, addr)`` decides each sendto."""

    def __init__(self) -> None:
        self._a, self._b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._a.setblocking(False)
        self.options: List[Tuple[int, int, int]] = []
        self.sent: List[Tuple[bytes, Tuple[int, ...], int]] = []
        self.script: Callable[[bytes, Tuple[int, ...]], Optional[int]] = lambda d, a: None
        self.incoming: List[Tuple[bytes, list, Tuple[int, ...]]] = []
        self.closed = False
        self.importance = 0

    def fileno(self) -> int:
        return self._a.fileno()

    def setsockopt(self, level: int, opt: int, value: int) -> None:
        self.options.append((level, opt, value))
        if opt == wire.TIPC_IMPORTANCE:
            self.importance = value

    def sendto(self, data: bytes, addr: Tuple[int, ...]) -> int:
        err = self.script(data, addr)
        if err == errno.EAGAIN:
            raise BlockingIOError(errno.EAGAIN, "congested")
        if err:
            raise OSError(err, "scripted")
        self.sent.append((bytes(data), addr, self.importance))
        return len(data)

    def push(self, data: bytes, anc: list, addr: Tuple[int, ...]) -> None:
        """Queue a datagram for recvmsg_into and make the fd readable."""
        self.incoming.append((data, anc, addr))
        self._b.send(b"!")

    def recvmsg_into(self, bufs: list, ancbufsize: int) -> Tuple[int, list, int, Tuple[int, ...]]:
        if not self.incoming:
            raise BlockingIOError(errno.EAGAIN, "empty")
        self._a.recv(1)
        data, anc, addr = self.incoming.pop(0)
        bufs[0][: len(data)] = data
        return len(data), anc, 0, addr

    def bind(self, addr: Any) -> None:
        pass

    def close(self) -> None:
        self.closed = True
        self._a.close()
        self._b.close()


class FakeTransport:
    def __init__(self) -> None:
        self._counters = Counters()
        self.importance = Importance.LOW
        self.warn_duplicates = False
        self.netns = None
        self.closed: List[KernelEndpoint] = []

    def _endpoint_closed(self, ep: KernelEndpoint) -> None:
        self.closed.append(ep)


Item = Union[Delivery, Returned]


async def _endpoint() -> Tuple[KernelEndpoint, FakeSock, List[Item], FakeTransport]:
    t = FakeTransport()
    sock = FakeSock()
    got: List[Item] = []
    ep = KernelEndpoint(t, sock, got.append, ME)  # type: ignore[arg-type]
    assert (wire.SOL_TIPC, wire.TIPC_DEST_DROPPABLE, 0) in sock.options  # returned, never dropped
    return ep, sock, got, t


async def _until(cond: Callable[[], bool]) -> None:
    """Let the event loop run its callbacks until ``cond`` holds (bounded number of turns)."""
    for _ in range(1000):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def test_eagain_parks_in_order_and_flushes() -> None:
    ep, sock, got, t = await _endpoint()
    blocked = {"on": True}
    sock.script = lambda d, a: errno.EAGAIN if blocked["on"] else None
    for i in range(5):
        ep.send(PEER, b"%d" % i, importance=Importance.HIGH if i == 3 else Importance.LOW)
    assert sock.sent == [] and ep.queued == 5
    blocked["on"] = False  # the fd is writable: the next loop turn flushes
    await _until(lambda: ep.queued == 0)
    assert [d for d, _, _ in sock.sent] == [b"0", b"1", b"2", b"3", b"4"]
    assert [imp for _, _, imp in sock.sent] == [0, 0, 0, 2, 0]  # importance per message
    stats = t._counters.as_dict()
    assert stats["sent"] == 5 and stats["send_queued"] == 5
    await ep.aclose()
    assert sock.closed and t.closed == [ep]


async def test_drain_waits_above_high_water(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ksocket, "HIGH_WATER_COUNT", 3)
    ep, sock, _, _ = await _endpoint()
    blocked = {"on": True}
    sock.script = lambda d, a: errno.EAGAIN if blocked["on"] else None
    for i in range(4):
        ep.send(PEER, b"x%d" % i)
    drained = asyncio.ensure_future(ep.drain())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not drained.done()
    blocked["on"] = False
    await asyncio.wait_for(drained, 5)
    assert len(sock.sent) == 4
    await ep.aclose()


async def test_queued_failure_comes_back_as_returned() -> None:
    ep, sock, got, _ = await _endpoint()
    state = {"n": 0}

    def script(data: bytes, addr: Tuple[int, ...]) -> Optional[int]:
        state["n"] += 1
        if state["n"] == 1:
            return errno.EAGAIN
        return errno.EHOSTUNREACH if data.startswith(b"lost") else None

    sock.script = script
    name = ServiceAddr(100, 1)
    ep.send(name, b"first")
    ep.send(name, b"lost" + bytes(2000))
    ep.send(PEER, b"lost-direct")
    ep.send(name, b"last")
    await _until(lambda: ep.queued == 0 and len(got) == 2)
    assert [d for d, _, _ in sock.sent] == [b"first", b"last"]
    assert got[0] == Returned(b"lost" + bytes(1020), name, DeliveryFailure.NO_NAME)  # capped like RETDATA
    assert got[1] == Returned(b"lost-direct", PEER, DeliveryFailure.NO_NODE)
    await ep.aclose()


async def test_send_errors_are_typed_and_synchronous() -> None:
    ep, sock, _, _ = await _endpoint()
    for code, exc in [(errno.EHOSTUNREACH, ServiceUnreachable), (errno.EMSGSIZE, FrameTooLarge),
                      (errno.ENOBUFS, KernelError)]:
        sock.script = lambda d, a, code=code: code
        with pytest.raises(exc):
            ep.send(ServiceRange(100, 0, 9), b"x")
    with pytest.raises(FrameTooLarge):
        ep.send(PEER, bytes(66_001))
    with pytest.raises(LocalProtocolError):
        ep.send(PEER, b"")
    await ep.aclose()
    with pytest.raises(ClosedError):
        ep.send(PEER, b"x")


async def test_receive_delivery_returned_and_handler_errors() -> None:
    t = FakeTransport()
    sock = FakeSock()
    got: List[Item] = []

    def handler(item: Item) -> None:
        got.append(item)
        if isinstance(item, Delivery) and item.data == b"boom":
            raise RuntimeError("handler bug")

    ep = KernelEndpoint(t, sock, handler, ME)  # type: ignore[arg-type]
    src = (wire.TIPC_ADDR_ID, PEER.node, PEER.port, 0, 0)
    destname = (wire.SOL_TIPC, wire.TIPC_DESTNAME, struct.pack("=III", 100, 2, 4))
    errinfo = (wire.SOL_TIPC, wire.TIPC_ERRINFO, struct.pack("=II", wire.TIPC_ERR_OVERLOAD, 5))
    retdata = (wire.SOL_TIPC, wire.TIPC_RETDATA, b"hello")
    sock.push(b"direct", [], src)
    sock.push(b"boom", [], src)
    sock.push(b"multi", [destname], src)
    sock.push(b"", [errinfo, retdata, destname], src)
    await _until(lambda: len(got) == 4)
    assert got[0] == Delivery(b"direct", PEER, ME)
    assert got[2] == Delivery(b"multi", PEER, ServiceRange(100, 2, 4))
    assert got[3] == Returned(b"hello", ServiceRange(100, 2, 4), DeliveryFailure.OVERLOAD)
    stats = t._counters.as_dict()
    assert stats["handler_errors"] == 1 and stats["received"] == 3 and stats["returned"] == 1
    await ep.aclose()
