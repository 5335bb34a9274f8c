"""A :class:`~tipcrpc.testing.harness.ClusterHarness` whose nodes are real processes.

Each node is a child process (``user_proc_child.py``) running a
:class:`~tipcrpc.transport.user.UserTransport`; in this process a :class:`ProcTransport`
proxy implements the Transport contract by forwarding every call over the child's pipes.
Requests are answered synchronously (the parent blocks until the child replies, so
``Endpoint.send`` can raise ``ServiceUnreachable`` at once, as the contract demands), while
deliveries and topology events stream back asynchronously and are dispatched from the
event loop, never from inside a call. ``kill`` is a real SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import struct
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Mapping

import msgpack
from user_proc_child import dec_addr, enc_addr

from tipcrpc import errors
from tipcrpc.addr import Importance, NodeInfo, Scope, ServiceRange, SocketAddr
from tipcrpc.events import (
    SNAPSHOT_COMPLETE,
    LinkDown,
    LinkUp,
    NodeDown,
    NodeUp,
    Published,
    SubFilter,
    TopologyEvent,
    Withdrawn,
)
from tipcrpc.transport.base import MAX_MESSAGE, Delivery, DeliveryFailure, MessageHandler, Returned, Transport

CHILD = Path(__file__).with_name("user_proc_child.py")
_LEN = struct.Struct(">I")
REQUEST_TIMEOUT = 15.0


def _dec_event(v: list[Any]) -> TopologyEvent:
    name = v[0]
    if name == "Published":
        return Published(dec_addr(v[1]), dec_addr(v[2]))
    if name == "Withdrawn":
        return Withdrawn(dec_addr(v[1]), dec_addr(v[2]))
    if name == "NodeUp":
        return NodeUp(v[1])
    if name == "NodeDown":
        return NodeDown(v[1])
    if name == "LinkUp":
        return LinkUp(v[1], v[2])
    if name == "LinkDown":
        return LinkDown(v[1], v[2])
    return SNAPSHOT_COMPLETE


class ProcSubscription:
    def __init__(self, owner: ProcTransport, sub_id: int) -> None:
        self._owner = owner
        self._id = sub_id
        self._queue: deque[TopologyEvent] = deque()
        self._ended = False
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    def _push(self, ev: TopologyEvent | None) -> None:
        if ev is None:
            self._ended = True
        else:
            self._queue.append(ev)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> ProcSubscription:
        return self

    async def __anext__(self) -> TopologyEvent:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._queue:
                return self._queue.popleft()
            if self._ended:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._owner._subs.pop(self._id, None)
        if self._owner._alive:
            await self._owner._arequest("sub_close", self._id)
        self._push(None)

    async def __aenter__(self) -> ProcSubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class ProcEndpoint:
    def __init__(self, owner: ProcTransport, ep_id: int, address: SocketAddr, handler: MessageHandler) -> None:
        self._owner = owner
        self._id = ep_id
        self._address = address
        self._handler = handler
        self._closed = False

    @property
    def address(self) -> SocketAddr:
        return self._address

    async def publish(self, name: Any, scope: Scope = Scope.CLUSTER) -> None:
        await self._owner._arequest("publish", self._id, enc_addr(name), int(scope))

    async def withdraw(self, name: Any, scope: Scope = Scope.CLUSTER) -> None:
        await self._owner._arequest("withdraw", self._id, enc_addr(name), int(scope))

    def send(self, dest: Any, data: bytes, *, importance: Importance = Importance.LOW) -> None:
        if self._closed:
            raise errors.ClosedError(f"endpoint {self._address} is closed")
        if len(data) > MAX_MESSAGE:  # checked here too: no need to ship 66 kB to learn it
            raise errors.FrameTooLarge(f"{len(data)}-byte message exceeds the {MAX_MESSAGE}-byte limit")
        self._owner._request("send", self._id, enc_addr(dest), bytes(data), int(importance))

    async def drain(self) -> None:
        await self._owner._arequest("drain", self._id)

    async def aclose(self) -> None:
        if self._closed:
            return
        if self._owner._alive:
            await self._owner._arequest("ep_close", self._id)
        self._closed = True


class ProcTransport:
    """Proxy of a UserTransport living in a child process."""

    kind = "user"

    def __init__(self, netid: int, identity: str, tolerance_ms: int) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(CHILD), "--netid", str(netid), "--identity", identity,
             "--tolerance-ms", str(tolerance_ms)],  # fmt: skip
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in = self._proc.stdin.fileno()
        self._out = self._proc.stdout.fileno()
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)
        self._buf = bytearray()
        self._frames: deque[list[Any]] = deque()
        self._next_req = 1
        self._alive = True
        self._eps: dict[int, ProcEndpoint] = {}
        self._subs: dict[int, ProcSubscription] = {}
        self._info: NodeInfo | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatch_scheduled = False

    # -- pipe plumbing -------------------------------------------------------------------

    def _read_some(self) -> bool:
        try:
            chunk = os.read(self._out, 1 << 20)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        buf = self._buf
        buf.extend(chunk)
        while len(buf) >= 4:
            (n,) = _LEN.unpack_from(buf, 0)
            if len(buf) < 4 + n:
                break
            self._frames.append(msgpack.unpackb(bytes(buf[4 : 4 + n]), raw=False))
            del buf[: 4 + n]
        return True

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while view:
            r, w, _ = select.select([self._out], [self._in], [], max(0.0, deadline - time.monotonic()))
            if not r and not w:
                raise errors.TransportError("child process does not read its requests")
            if r and not self._read_some():
                raise errors.TransportError("child process exited")
            if w:
                try:
                    n = os.write(self._in, view)
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    raise errors.TransportError("child process exited") from None
                view = view[n:]

    def _request(self, op: str, *args: Any) -> Any:
        if not self._alive:
            raise errors.ClosedError("the transport's process is gone")
        req_id = self._next_req
        self._next_req += 1
        body = msgpack.packb([req_id, op, *args], use_bin_type=True)
        self._write_all(_LEN.pack(len(body)) + body)
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while True:
            for i, f in enumerate(self._frames):
                if f[0] == "r" and f[1] == req_id:
                    del self._frames[i]
                    self._schedule_dispatch()
                    if f[2]:
                        return f[3]
                    cls_name, message = f[3]
                    cls = getattr(errors, cls_name, None)
                    if isinstance(cls, type) and issubclass(cls, errors.TipcRpcError):
                        raise cls(message)
                    raise errors.TransportError(f"{cls_name}: {message}")
            r, _, _ = select.select([self._out], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                raise errors.TransportError(f"child process did not answer {op!r}")
            if not self._read_some():
                raise errors.TransportError("child process exited")

    async def _arequest(self, op: str, *args: Any) -> Any:
        """:meth:`_request` for async methods: frames that arrived before the reply (e.g.
        deliveries preceding an endpoint's close) are dispatched before returning."""
        result = self._request(op, *args)
        await asyncio.sleep(0)  # runs the dispatch _request scheduled
        return result

    def _on_readable(self) -> None:
        if not self._read_some():
            self._gone()
        self._dispatch()

    def _schedule_dispatch(self) -> None:
        if self._frames and not self._dispatch_scheduled and self._loop is not None:
            self._dispatch_scheduled = True
            self._loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        frames = self._frames
        keep: deque[list[Any]] = deque()
        while frames:
            f = frames.popleft()
            kind = f[0]
            if kind == "d":
                ep = self._eps.get(f[1])
                if ep is None or ep._closed:
                    continue
                d = f[2]
                item: Delivery | Returned
                if d[0] == "D":
                    item = Delivery(d[1], dec_addr(d[2]), dec_addr(d[3]))
                else:
                    item = Returned(d[1], dec_addr(d[2]), DeliveryFailure(d[3]))
                ep._handler(item)
            elif kind == "e":
                sub = self._subs.get(f[1])
                if sub is not None:
                    sub._push(_dec_event(f[2]))
            elif kind == "end":
                sub = self._subs.get(f[1])
                if sub is not None:
                    sub._push(None)
            else:
                keep.append(f)  # a reply nobody waits for yet (cannot happen) or "ready"
        frames.extend(keep)

    def _gone(self) -> None:
        if not self._alive:
            return
        self._alive = False
        if self._loop is not None:
            try:
                self._loop.remove_reader(self._out)
            except (ValueError, RuntimeError):
                pass
        for ep in self._eps.values():
            ep._closed = True
        for sub in list(self._subs.values()):
            sub._push(None)

    # -- Transport -----------------------------------------------------------------------

    @property
    def own_node(self) -> NodeInfo:
        assert self._info is not None
        return self._info

    @property
    def max_message(self) -> int:
        return MAX_MESSAGE

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while not any(f[0] == "ready" for f in self._frames):
            r, _, _ = select.select([self._out], [], [], max(0.0, deadline - time.monotonic()))
            if not r or not self._read_some():
                raise errors.TransportUnavailable("child node failed to start")
        self._frames = deque(f for f in self._frames if f[0] != "ready")
        addr, identity = self._request("info")
        self._info = NodeInfo(addr, identity)
        self._loop.add_reader(self._out, self._on_readable)

    async def __aenter__(self) -> ProcTransport:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def open_endpoint(self, handler: MessageHandler) -> ProcEndpoint:
        ep_id, node, port = await self._arequest("open_endpoint")
        ep = self._eps[ep_id] = ProcEndpoint(self, ep_id, SocketAddr(node, port), handler)
        return ep

    async def subscribe(self, target: ServiceRange, *, filter: SubFilter = SubFilter.PORTS) -> ProcSubscription:
        sub_id = self._request("subscribe", enc_addr(target), int(filter))
        sub = self._subs[sub_id] = ProcSubscription(self, sub_id)
        self._schedule_dispatch()  # events that came with the reply
        return sub

    def statistics(self) -> Mapping[str, int]:
        return self._request("stats")

    def kill(self) -> None:
        """SIGKILL the node's process."""
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait()
        self._gone()

    async def aclose(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.close()  # the child closes its transport gracefully and exits
            except BrokenPipeError:
                pass
            loop = asyncio.get_running_loop()
            try:
                await asyncio.wait_for(loop.run_in_executor(None, self._proc.wait), 10)
            except asyncio.TimeoutError:
                self._proc.kill()
                self._proc.wait()
        self._gone()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


class ProcHarness:
    """Conformance harness of child-process nodes (see the module docstring)."""

    max_message = MAX_MESSAGE
    timeout = 15.0

    def __init__(self, netid: int, *, tolerance_ms: int = 1500) -> None:
        self.netid = netid
        self.tolerance_ms = tolerance_ms
        self.nodes: list[ProcTransport] = []

    async def start(self, n: int) -> list[Transport]:
        from tipcrpc.addr import NODE_STATE, U32_MAX

        # Spawn every child first: their interpreters start in parallel.
        self.nodes = [ProcTransport(self.netid, f"proc{self.netid}-{i}", self.tolerance_ms) for i in range(n)]
        for t in self.nodes:
            await t.open()
        addrs = {t.own_node.addr for t in self.nodes}
        for t in self.nodes:
            sub = await t.subscribe(ServiceRange(NODE_STATE, 0, U32_MAX))
            seen: set[int] = set()
            async for ev in sub:
                if isinstance(ev, NodeUp):
                    seen.add(ev.node)
                if seen >= addrs:
                    break
            await sub.aclose()
        return list(self.nodes)  # type: ignore[arg-type]

    async def kill(self, t: Transport) -> None:
        assert isinstance(t, ProcTransport)
        t.kill()

    async def aclose(self) -> None:
        for t in self.nodes:
            await t.aclose()
        self.nodes.clear()

