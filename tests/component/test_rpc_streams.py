"""Streaming methods over the memory transport: order, flow control, early exit, errors."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Iterator

import anyio
import pytest

import tipcrpc
from tipcrpc.transport.memory import MemoryCluster

from rpc_helpers import nodes

svc = tipcrpc.Service("test.rpc.streams")
produced: list[int] = []
closed: asyncio.Queue[str] | None = None


@svc.method
async def count(n: int, start: int = 0) -> AsyncIterator[int]:
    try:
        for i in range(start, start + n):
            produced.append(i)
            yield i
    finally:
        if closed is not None:
            closed.put_nowait("count")


@svc.method
async def forever() -> AsyncIterator[int]:
    i = 0
    try:
        while True:
            yield i
            i += 1
            await asyncio.sleep(0)
    finally:
        if closed is not None:
            closed.put_nowait("forever")


@svc.method(idempotent=True)
def squares(n: int) -> Iterator[int]:
    for i in range(n):
        yield i * i


@svc.method
async def explode_after(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i
    raise ValueError(f"exploded after {n}")


@svc.method
def plain() -> int:
    return 1


@svc.method
async def big_items(n: int, size: int) -> AsyncIterator[bytes]:
    for i in range(n):
        yield bytes([i]) * size


@pytest.fixture(autouse=True)
def _reset() -> None:
    global closed
    produced.clear()
    closed = asyncio.Queue()


async def test_stream_items_in_order(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(svc, transport=a) as server, tipcrpc.connect(b) as client:
            assert [x async for x in client.stream(svc, "count", 500)] == list(range(500))
            async with client.stream(svc, "squares", 5) as s:
                assert [x async for x in s] == [0, 1, 4, 9, 16]
            assert [x async for x in client.stub(svc).count(3, start=10)] == [10, 11, 12]
            assert [x async for x in client.stream(svc, "count", 0)] == []
            assert server.statistics()["streams"] == 4
            assert client.statistics()["outstanding"] == 0


async def test_credit_bounds_how_far_the_server_runs_ahead(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(svc, transport=a), tipcrpc.connect(b) as client:
            async with client.options(credit=8).stream(svc, "count", 1000) as s:
                got = []
                async for x in s:
                    got.append(x)
                    for _ in range(20):
                        await asyncio.sleep(0)  # give the server every chance to run ahead
                    assert len(produced) <= len(got) + 8 + 1
                assert got == list(range(1000))


async def test_early_break_cancels_the_server_handler(memory_cluster: MemoryCluster) -> None:
    assert closed is not None
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(svc, transport=a) as server, tipcrpc.connect(b) as client:
            async for x in client.stream(svc, "forever"):
                if x == 5:
                    break
            with anyio.fail_after(2.0):
                assert await closed.get() == "forever"
            async with client.stream(svc, "forever") as s:
                async for x in s:
                    if x == 3:
                        break
            with anyio.fail_after(2.0):
                assert await closed.get() == "forever"
                while server.statistics()["active"]:
                    await asyncio.sleep(0)
            assert server.statistics()["cancelled"] == 2


async def test_stream_errors_and_argument_checks(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(svc, transport=a), tipcrpc.connect(b) as client:
            got = []
            with pytest.raises(tipcrpc.RemoteException, match="exploded after 3") as info:
                async for x in client.stream(svc, "explode_after", 3):
                    got.append(x)
            assert got == [0, 1, 2] and info.value.remote_type == "ValueError"
            with pytest.raises(tipcrpc.InvalidArguments, match="use stream"):
                await client.call(svc, "count", 3)
            with pytest.raises(tipcrpc.InvalidArguments, match="use call"):
                async for _ in client.stream(svc, "plain"):
                    pass  # pragma: no cover
            with pytest.raises(tipcrpc.MethodNotFound):
                async for _ in client.stream(svc, "nope"):
                    pass  # pragma: no cover


async def test_stream_timeout_bounds_the_whole_stream(memory_cluster: MemoryCluster) -> None:
    assert closed is not None
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(svc, transport=a), tipcrpc.connect(b) as client:
            with anyio.fail_after(3.0):
                with pytest.raises(tipcrpc.DeadlineExceeded):
                    async with client.options(timeout=0.1).stream(svc, "forever") as s:
                        async for _ in s:
                            await asyncio.sleep(0.001)
                assert await closed.get() == "forever"


async def test_large_stream_items_are_chunked(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(svc, transport=a), tipcrpc.connect(b) as client:
            items = [x async for x in client.stream(svc, "big_items", 4, 200_000)]
            assert [len(x) for x in items] == [200_000] * 4
            assert [x[0] for x in items] == [0, 1, 2, 3]
