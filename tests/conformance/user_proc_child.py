"""Child process of the multi-process conformance harness: one UserTransport, driven over pipes.

``python user_proc_child.py --netid N --identity ID`` opens a
:class:`~tipcrpc.transport.user.UserTransport` and serves requests framed as
``<u32 length><msgpack>`` on stdin, answering on stdout in the same framing:

* request ``[req_id, op, *args]`` → reply ``["r", req_id, True, result]`` or
  ``["r", req_id, False, [error class name, message]]``, in request order;
* asynchronous frames: ``["d", ep_id, delivery]`` for every Delivery/Returned an endpoint
  receives, ``["e", sub_id, event]`` for topology events, ``["end", sub_id]`` when a
  subscription ends.

See ``user_proc.py`` for the encodings and the parent side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import sys
from typing import Any

import msgpack

from tipcrpc import errors
from tipcrpc.addr import Importance, Scope, ServiceAddr, ServiceRange, SocketAddr
from tipcrpc.events import SubFilter
from tipcrpc.transport.base import Delivery, Returned
from tipcrpc.transport.user import UserTransport

_LEN = struct.Struct(">I")


def enc_addr(a: Any) -> list[Any]:
    if isinstance(a, ServiceAddr):
        return ["A", a.type, a.instance]
    if isinstance(a, ServiceRange):
        return ["R", a.type, a.lower, a.upper]
    return ["S", a.node, a.port]


def dec_addr(v: list[Any]) -> Any:
    kind = v[0]
    if kind == "A":
        return ServiceAddr(v[1], v[2])
    if kind == "R":
        return ServiceRange(v[1], v[2], v[3])
    return SocketAddr(v[1], v[2])


def enc_event(ev: Any) -> list[Any]:
    name = type(ev).__name__
    if name in ("Published", "Withdrawn"):
        return [name, enc_addr(ev.range), enc_addr(ev.socket)]
    if name in ("NodeUp", "NodeDown"):
        return [name, ev.node]
    if name in ("LinkUp", "LinkDown"):
        return [name, ev.node, ev.link_id]
    return [name]


class Child:
    def __init__(self, t: UserTransport) -> None:
        self.t = t
        self.out = sys.stdout.buffer
        self.eps: dict[int, Any] = {}
        self.subs: dict[int, Any] = {}
        self.next_id = 1
        self.queue: asyncio.Queue[list[Any] | None] = asyncio.Queue()

    def write(self, frame: list[Any]) -> None:
        body = msgpack.packb(frame, use_bin_type=True)
        self.out.write(_LEN.pack(len(body)) + body)
        self.out.flush()

    async def op_info(self) -> Any:
        return [self.t.own_node.addr, self.t.own_node.identity]

    async def op_open_endpoint(self) -> Any:
        ep_id = self.next_id
        self.next_id += 1

        def handler(item: Delivery | Returned) -> None:
            if isinstance(item, Delivery):
                self.write(["d", ep_id, ["D", item.data, enc_addr(item.source), enc_addr(item.dest)]])
            else:
                self.write(["d", ep_id, ["R", item.data, enc_addr(item.dest), int(item.reason)]])

        ep = await self.t.open_endpoint(handler)
        self.eps[ep_id] = ep
        return [ep_id, ep.address.node, ep.address.port]

    async def op_publish(self, ep_id: int, name: list[Any], scope: int) -> Any:
        await self.eps[ep_id].publish(dec_addr(name), Scope(scope))

    async def op_withdraw(self, ep_id: int, name: list[Any], scope: int) -> Any:
        await self.eps[ep_id].withdraw(dec_addr(name), Scope(scope))

    async def op_send(self, ep_id: int, dest: list[Any], data: bytes, importance: int) -> Any:
        self.eps[ep_id].send(dec_addr(dest), data, importance=Importance(importance))

    async def op_drain(self, ep_id: int) -> Any:
        await self.eps[ep_id].drain()

    async def op_ep_close(self, ep_id: int) -> Any:
        await self.eps[ep_id].aclose()

    async def op_subscribe(self, target: list[Any], filter: int) -> Any:
        sub_id = self.next_id
        self.next_id += 1
        sub = await self.t.subscribe(dec_addr(target), filter=SubFilter(filter))
        self.subs[sub_id] = sub

        async def pump() -> None:
            async for ev in sub:
                self.write(["e", sub_id, enc_event(ev)])
            self.write(["end", sub_id])

        asyncio.get_running_loop().create_task(pump())
        return sub_id

    async def op_sub_close(self, sub_id: int) -> Any:
        sub = self.subs.pop(sub_id, None)
        if sub is not None:
            await sub.aclose()

    async def op_stats(self) -> Any:
        return dict(self.t.statistics())

    async def serve(self) -> None:
        while True:
            req = await self.queue.get()
            if req is None:
                return
            req_id, op, *args = req
            try:
                result = await getattr(self, "op_" + op)(*args)
            except Exception as exc:  # sent back and re-raised by the parent
                # The nearest public tipcrpc error class, so the parent can re-raise it.
                name = next((c.__name__ for c in type(exc).__mro__ if getattr(errors, c.__name__, None) is c),
                            type(exc).__name__)  # fmt: skip
                self.write(["r", req_id, False, [name, str(exc)]])
            else:
                self.write(["r", req_id, True, result])


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--netid", type=int, required=True)
    ap.add_argument("--identity", required=True)
    ap.add_argument("--tolerance-ms", type=int, default=1500)
    args = ap.parse_args()
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()
    os.set_blocking(fd, False)
    async with UserTransport(identity=args.identity, netid=args.netid, tolerance_ms=args.tolerance_ms,
                             discovery_wait=0.0) as t:  # fmt: skip
        child = Child(t)
        buf = bytearray()

        def readable() -> None:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                return
            if not chunk:  # parent went away
                loop.remove_reader(fd)
                child.queue.put_nowait(None)
                return
            buf.extend(chunk)
            while len(buf) >= 4:
                (n,) = _LEN.unpack_from(buf, 0)
                if len(buf) < 4 + n:
                    break
                child.queue.put_nowait(msgpack.unpackb(bytes(buf[4 : 4 + n]), raw=False))
                del buf[: 4 + n]

        loop.add_reader(fd, readable)
        child.write(["ready", t.own_node.addr])
        await child.serve()


if __name__ == "__main__":
    asyncio.run(main())
