"""pyzmq peer: ``zmq.asyncio`` DEALER (client) / ROUTER (server) over tcp://127.0.0.1, msgpack.

Request frames: ``[call id (8 bytes), msgpack([method, args])]``; reply: ``[call id,
msgpack(result)]``. One DEALER carries every concurrent call; a reader task resolves futures
by call id — the usual asyncio RPC shape on zmq.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional

import msgpack

from bench.common import (FANOUT_INSTANCES, AsyncAdapter, ClientSpec, Profiler, announce_ready,
                          run_async, run_async_client, wait_for_stop)


async def _serve(profile: Optional[str]) -> None:
    import zmq
    import zmq.asyncio

    ctx = zmq.asyncio.Context()
    socks = []
    ports = []
    for _ in range(FANOUT_INSTANCES):
        s = ctx.socket(zmq.ROUTER)
        s.setsockopt(zmq.LINGER, 0)
        ports.append(s.bind_to_random_port("tcp://127.0.0.1"))
        socks.append(s)
    methods = {"add": lambda a, b: a + b, "echo": lambda data: data}
    packb, unpackb = msgpack.packb, msgpack.unpackb

    async def serve_one(s: Any) -> None:
        while True:
            ident, cid, body = await s.recv_multipart(copy=True)
            name, args = unpackb(body)
            await s.send_multipart([ident, cid, packb(methods[name](*args))])

    tasks = [asyncio.ensure_future(serve_one(s)) for s in socks]
    prof = Profiler(profile)
    announce_ready({"ports": ports})
    prof.arm()
    try:
        await wait_for_stop()
    finally:
        prof.stop()
        for t in tasks:
            t.cancel()
        ctx.destroy(linger=0)


def server(variant: str, profile: Optional[str]) -> None:
    run_async(variant, lambda: _serve(profile))


class ZmqClient(AsyncAdapter):
    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.pending: dict[bytes, asyncio.Future[Any]] = {}
        self.next_id = 0

    async def open(self) -> None:
        import zmq
        import zmq.asyncio

        self.ctx = zmq.asyncio.Context()
        self.socks = []
        for p in self.ports:
            s = self.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(f"tcp://127.0.0.1:{p}")
            self.socks.append(s)
        self.readers = [asyncio.ensure_future(self._read(s)) for s in self.socks]
        self.loop = asyncio.get_running_loop()

    async def _read(self, s: Any) -> None:
        unpackb = msgpack.unpackb
        pending = self.pending
        while True:
            cid, body = await s.recv_multipart(copy=True)
            fut = pending.pop(cid, None)
            if fut is not None and not fut.done():
                fut.set_result(unpackb(body))

    def _call(self, s: Any, name: str, args: list[Any]) -> "asyncio.Future[Any]":
        self.next_id += 1
        cid = self.next_id.to_bytes(8, "little")
        fut = self.loop.create_future()
        self.pending[cid] = fut
        s.send_multipart([cid, msgpack.packb([name, args])])
        return fut

    async def add(self) -> Any:
        return await self._call(self.socks[0], "add", [1, 2])

    async def echo(self, data: bytes) -> bytes:
        return await self._call(self.socks[0], "echo", [data])

    async def fanout(self) -> Any:
        return await asyncio.gather(*[self._call(s, "add", [1, 2]) for s in self.socks])

    async def close(self) -> None:
        for t in self.readers:
            t.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        self.ctx.destroy(linger=0)


def client(spec: ClientSpec) -> dict[str, Any]:
    adapter = ZmqClient(spec.server["ports"])
    return run_async(spec.loop, lambda: run_async_client(adapter, spec))
