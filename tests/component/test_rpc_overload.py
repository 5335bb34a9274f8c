"""Receiver overload: every Nth datagram comes back ``Returned(OVERLOAD)``, truncated to
1024 bytes like the kernel's; nothing may be lost, duplicated or reordered for the caller."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Mapping

import anyio

import tipcrpc
from tipcrpc.addr import Importance, NodeInfo, Scope, ServiceRange, SocketAddr
from tipcrpc.events import SubFilter
from tipcrpc.transport.base import RETURNED_DATA_MAX, DeliveryFailure, Destination, Endpoint, MessageHandler, Name, Returned, Subscription
from tipcrpc.transport.memory import MemoryCluster, MemoryTransport

from rpc_helpers import nodes, wait_instances


class OverloadEndpoint:
    """Refuses every ``every``-th direct datagram, as a full kernel receive queue would."""

    def __init__(self, inner: Endpoint, handler: MessageHandler, every: int) -> None:
        self._inner = inner
        self._handler = handler
        self._every = every
        self._n = 0
        self.refused = 0

    @property
    def address(self) -> SocketAddr:
        return self._inner.address

    async def publish(self, name: Name, scope: Scope = Scope.CLUSTER) -> None:
        await self._inner.publish(name, scope)

    async def withdraw(self, name: Name, scope: Scope = Scope.CLUSTER) -> None:
        await self._inner.withdraw(name, scope)

    def send(self, dest: Destination, data: bytes, *, importance: Importance = Importance.LOW) -> None:
        self._n += 1
        if isinstance(dest, SocketAddr) and self._n % self._every == 0:
            self.refused += 1
            back = Returned(bytes(data[:RETURNED_DATA_MAX]), dest, DeliveryFailure.OVERLOAD)
            asyncio.get_running_loop().call_soon(self._handler, back)
            return
        self._inner.send(dest, data, importance=importance)

    async def drain(self) -> None:
        await self._inner.drain()

    async def aclose(self) -> None:
        await self._inner.aclose()


class OverloadTransport:
    """Wraps an open memory node; its endpoints refuse every ``every``-th datagram."""

    kind = "memory"

    def __init__(self, inner: MemoryTransport, every: int) -> None:
        self._inner = inner
        self._every = every
        self.endpoints: list[OverloadEndpoint] = []

    @property
    def own_node(self) -> NodeInfo:
        return self._inner.own_node

    @property
    def max_message(self) -> int:
        return self._inner.max_message

    async def __aenter__(self) -> OverloadTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        pass

    async def open_endpoint(self, handler: MessageHandler) -> OverloadEndpoint:
        ep = OverloadEndpoint(await self._inner.open_endpoint(handler), handler, self._every)
        self.endpoints.append(ep)
        return ep

    async def subscribe(self, target: ServiceRange, *, filter: SubFilter = SubFilter.PORTS) -> Subscription:
        return await self._inner.subscribe(target, filter=filter)

    def statistics(self) -> Mapping[str, int]:
        return self._inner.statistics()


svc = tipcrpc.Service("test.rpc.overload")


@svc.method
async def echo(data: Any) -> Any:
    return data


@svc.method
async def items(n: int, size: int) -> AsyncIterator[bytes]:
    for i in range(n):
        yield i.to_bytes(4, "big") * (size // 4)


async def test_nothing_is_lost_under_receiver_overload(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "a", "b") as (a, b):
        ta, tb = OverloadTransport(a, every=3), OverloadTransport(b, every=4)
        async with tipcrpc.serve(svc, transport=ta) as server, tipcrpc.connect(tb) as client:
            await wait_instances(client, svc, 1)
            with anyio.fail_after(10.0):
                small = await asyncio.gather(*(client.call(svc, "echo", i) for i in range(100)))
                assert small == list(range(100))
                medium = [bytes([i]) * 5000 for i in range(50)]  # > 1024: re-sent from the cache
                assert await asyncio.gather(*(client.call(svc, "echo", m) for m in medium)) == medium
                big = bytes(range(256)) * 32768  # 8 MiB: chunks and acks refused too
                assert await client.call(svc, "echo", big) == big
                got = [x async for x in client.options(credit=4).stream(svc, "items", 60, 3000)]
                assert got == [i.to_bytes(4, "big") * 750 for i in range(60)]
            assert sum(ep.refused for ep in ta.endpoints + tb.endpoints) > 50
            assert client.statistics()["overload_resends"] > 0
            assert server.statistics()["overload_resends"] > 0
            assert client.statistics()["outstanding"] == 0
