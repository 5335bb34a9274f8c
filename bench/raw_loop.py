"""Raw echo floor on an event loop: non-blocking sockets driven by ``loop.add_reader``.

This is the floor an asyncio RPC can hope to reach on a transport: a drain loop per readable
event and, on the client, one future per call — held in a single slot while it is the only
one outstanding (the sequential workload: no dict at all, as in the review's lean floor),
in a dict of call id → future when more are; nothing else. It is what tipcrpc's
"seq p50 ≤ 1.3× raw" and "conc64 ≥ 0.8× raw" targets compare against.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import tempfile
from typing import Any, Callable, Optional

from bench import raw_sockets as rs
from bench.common import (FANOUT_INSTANCES, AsyncAdapter, ClientSpec, NotAvailable, Profiler,
                          announce_ready, announce_unavailable, run_async, run_async_client,
                          wait_for_stop)
from bench.raw_framing import RECV_CHUNK, FrameParser, frame

SEQ_PAYLOAD = b"a" * 32


class Conn:
    """One non-blocking socket: drains on readable, queues on EAGAIN (never drops)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, family: str,
                 on_msg: Callable[[bytes, Any], None], dest: Any = None, copy: bool = True) -> None:
        kind = rs.FAMILIES[family].kind
        self.loop = loop
        self.sock = sock
        self.kind = kind
        self.on_msg = on_msg
        self.dest = dest
        self.copy = copy
        self.parser = FrameParser() if kind == "stream" else None
        self.buf = rs.recv_buffer(family, sock)
        self.outq: collections.deque[tuple[bytes, Any]] = collections.deque()
        self.stream_out = bytearray()
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        sock, on_msg = self.sock, self.on_msg
        if self.parser is not None:
            try:
                chunk = sock.recv(RECV_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            if not chunk:
                self.close()
                return
            for m in self.parser.feed(chunk):
                on_msg(m, None)
            return
        # Servers echo straight from the receive buffer (copy=False): the send happens before
        # the next recv overwrites it. Clients copy the reply out.
        buf, copy, size = self.buf, self.copy, len(self.buf)
        if self.kind == "seqpacket":
            recv_into = sock.recv_into
            while True:
                try:
                    n = recv_into(buf)
                except (BlockingIOError, InterruptedError):
                    return
                if not n:
                    self.close()
                    return
                if n >= size:
                    raise rs.Truncated(f"{n}-byte message filled the receive buffer")
                on_msg(bytes(buf[:n]) if copy else buf[:n], None)
        recvfrom_into = sock.recvfrom_into
        while True:
            try:
                n, peer = recvfrom_into(buf)
            except (BlockingIOError, InterruptedError):
                return
            if n >= size:
                raise rs.Truncated(f"{n}-byte message filled the receive buffer")
            on_msg(bytes(buf[:n]) if copy else buf[:n], peer)

    def send(self, data: bytes, peer: Any = None) -> None:
        if self.parser is not None:
            self._send_stream(frame(data))
            return
        if self.outq:
            self.outq.append((bytes(data), peer))
            return
        try:
            self._send1(data, peer)
        except (BlockingIOError, InterruptedError):
            self.outq.append((bytes(data), peer))  # own it: the receive buffer gets reused
            self.loop.add_writer(self.sock.fileno(), self._on_writable)

    def _send1(self, data: bytes, peer: Any) -> None:
        if peer is not None:
            self.sock.sendto(data, peer)
        elif self.dest is not None:
            self.sock.sendto(data, self.dest)
        else:
            self.sock.send(data)

    def _on_writable(self) -> None:
        if self.parser is not None:
            self._flush_stream()
            return
        while self.outq:
            data, peer = self.outq[0]
            try:
                self._send1(data, peer)
            except (BlockingIOError, InterruptedError):
                return
            self.outq.popleft()
        self.loop.remove_writer(self.sock.fileno())

    def _send_stream(self, framed: bytes) -> None:
        if self.stream_out:
            self.stream_out += framed
            return
        try:
            n = self.sock.send(framed)
        except (BlockingIOError, InterruptedError):
            n = 0
        if n < len(framed):
            self.stream_out += memoryview(framed)[n:]
            self.loop.add_writer(self.sock.fileno(), self._on_writable)

    def _flush_stream(self) -> None:
        try:
            n = self.sock.send(self.stream_out)
        except (BlockingIOError, InterruptedError):
            return
        del self.stream_out[:n]
        if not self.stream_out:
            self.loop.remove_writer(self.sock.fileno())

    def close(self) -> None:
        try:
            self.loop.remove_reader(self.sock.fileno())
            self.loop.remove_writer(self.sock.fileno())
        except (ValueError, OSError):
            pass
        self.sock.close()


# --------------------------------------------------------------------------- server


async def _serve(family: str, profile: Optional[str]) -> None:
    loop = asyncio.get_running_loop()
    kind = rs.FAMILIES[family].kind
    try:
        socks, addrs = rs.server_sockets(family, FANOUT_INSTANCES, tempfile.gettempdir())
    except NotAvailable as e:
        announce_unavailable(str(e))
        return
    conns: list[Conn] = []

    def echo_on(conn_ref: list[Conn]) -> Callable[[bytes, Any], None]:
        def on_msg(data: bytes, peer: Any) -> None:
            conn_ref[0].send(data, peer)
        return on_msg

    def add_conn(sock: socket.socket) -> None:
        ref: list[Conn] = []
        ref.append(Conn(loop, sock, family, echo_on(ref), copy=False))
        conns.append(ref[0])

    for s in socks:
        if kind == "dgram":
            add_conn(s)
        else:
            s.setblocking(False)

            def on_accept(ls: socket.socket = s) -> None:
                try:
                    c, _ = ls.accept()
                except (BlockingIOError, InterruptedError):
                    return
                rs.prepare_accepted(family, c)
                add_conn(c)

            loop.add_reader(s.fileno(), on_accept)
    prof = Profiler(profile)
    announce_ready({"family": family, "addrs": addrs})
    prof.arm()
    try:
        await wait_for_stop()
    finally:
        prof.stop()


def server(family: str, loop_kind: Optional[str], profile: Optional[str]) -> None:
    run_async(loop_kind, lambda: _serve(family, profile))


# --------------------------------------------------------------------------- client


class LoopClient(AsyncAdapter):
    def __init__(self, family: str, addrs: list[Any]) -> None:
        self.family = family
        self.addrs = addrs
        self.kind = rs.FAMILIES[family].kind
        self.pending: dict[int, Any] = {}
        self.next_id = 0
        self.one_id = 0  # the single-slot call (see the module docstring)
        self.one_fut: Any = None
        self.conns: list[Conn] = []

    async def open(self) -> None:
        self.loop = asyncio.get_running_loop()
        for a in self.addrs:
            sock = rs.client_socket(self.family, a)
            dest = rs.dest_of(self.family, a) if self.family == "tipc-rdm" else None
            self.conns.append(Conn(self.loop, sock, self.family, self._on_msg, dest))
        self.payload_limit = rs.message_limit(self.family, self.conns[0].sock)

    def _on_msg(self, data: bytes, peer: Any) -> None:
        cid = int.from_bytes(data[:8], "little")
        if cid == self.one_id and self.one_fut is not None:
            fut, self.one_fut = self.one_fut, None
        else:
            fut = self.pending.pop(cid, None)
        if fut is not None and not fut.done():
            fut.set_result(data)

    async def add(self) -> Any:
        self.next_id = i = self.next_id + 1
        fut = self.loop.create_future()
        if self.one_fut is None:
            self.one_id, self.one_fut = i, fut
        else:
            self.pending[i] = fut
        self.conns[0].send(i.to_bytes(8, "little") + SEQ_PAYLOAD)
        return await fut

    async def echo(self, data: bytes) -> bytes:
        self.next_id = i = self.next_id + 1
        fut = self.loop.create_future()
        self.pending[i] = fut
        try:
            self.conns[0].send(i.to_bytes(8, "little") + data)
        except OSError as e:
            del self.pending[i]
            if e.errno == 90:  # EMSGSIZE
                raise NotAvailable(f"EMSGSIZE above the {self.family} message limit") from None
            raise
        return memoryview(await fut)[8:]  # type: ignore[return-value]

    async def fanout(self) -> Any:
        """One request to each of the 8 instances; done when all 8 replies are in."""
        loop = self.loop
        done = loop.create_future()
        left = [len(self.conns)]

        def one(f: asyncio.Future[Any]) -> None:
            left[0] -= 1
            if not left[0] and not done.done():
                done.set_result(None)

        for c in self.conns:
            self.next_id = i = self.next_id + 1
            fut = loop.create_future()
            fut.add_done_callback(one)
            self.pending[i] = fut
            c.send(i.to_bytes(8, "little") + SEQ_PAYLOAD)
        return await done

    async def close(self) -> None:
        for c in self.conns:
            c.close()


def client(spec: ClientSpec) -> dict[str, Any]:
    adapter = LoopClient(spec.server["family"], spec.server["addrs"])
    return run_async(spec.loop, lambda: run_async_client(adapter, spec))
