"""A client's per-method metrics (statistics()["methods"], the exporter) and its failover log."""

from __future__ import annotations

import asyncio
import logging

import anyio
import pytest

import tipcrpc
from tipcrpc.exporter import start_exporter
from tipcrpc.transport.memory import MemoryCluster

from rpc_helpers import nodes, wait_instances

calc = tipcrpc.Service("test.cmetrics.calc")
gate = asyncio.Event()  # never set: `stuck` waits until the caller's deadline


@calc.method
async def add(a: int, b: int) -> int:
    return a + b


@calc.method
def boom(key: str) -> int:
    return {}[key]  # KeyError on the server: RemoteException at the client


@calc.method
async def stuck() -> None:
    await gate.wait()


@calc.method
def note(x: int) -> None:
    pass


async def _scrape(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data.decode()


async def test_calls_errors_and_latency_per_method(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "a", "cli") as (a, cli):
        async with tipcrpc.serve(calc, instance=1, transport=a), tipcrpc.connect(cli) as client:
            with anyio.fail_after(10):
                c = client.options(timeout=5)
                assert await c.call(calc, "add", 1, 2) == 3
                assert await c.call("test.cmetrics.calc", "add", 2, 2) == 4  # by name: same row
                assert await c.call(calc.type, "add", 3, 2) == 5  # by type number: same row
                with pytest.raises(tipcrpc.RemoteException):
                    await c.call(calc, "boom", "x")
                with pytest.raises(tipcrpc.DeadlineExceeded):
                    await client.options(timeout=0.2).call(calc, "stuck")
                await c.notify(calc, "note", 1)  # nothing answers: not in the metrics
                methods = client.statistics()["methods"]
                exporter = await start_exporter([client], port=0)
                try:
                    text = await _scrape(exporter.port)
                finally:
                    await exporter.aclose()
    assert sorted(methods) == ["test.cmetrics.calc.add", "test.cmetrics.calc.boom", "test.cmetrics.calc.stuck"]
    adds, booms, stucks = (methods[f"test.cmetrics.calc.{m}"] for m in ("add", "boom", "stuck"))
    assert (adds["calls"], adds["errors"], adds["buckets"][-1]) == (3, 0, ["+Inf", 3])
    assert (booms["calls"], booms["by_error"]) == (1, {"RemoteKeyError": 1})  # the class the caller catches
    assert (stucks["calls"], stucks["by_error"]) == (1, {"DeadlineExceeded": 1})
    # the deadline call took its whole timeout: it is above the 0.1 s bucket, the others below 1 s
    assert stucks["sum_seconds"] >= 0.19
    assert dict((str(b), n) for b, n in stucks["buckets"])["0.1"] == 0
    assert adds["sum_seconds"] < 1.0
    assert 'tipcrpc_client_calls_total{service="test.cmetrics.calc",method="add"} 3' in text
    assert 'tipcrpc_client_errors_total{service="test.cmetrics.calc",method="boom",error="RemoteKeyError"} 1' in text
    assert 'tipcrpc_client_latency_seconds_count{service="test.cmetrics.calc",method="stuck"} 1' in text
    assert "tipcrpc_client_calls 6\n" in text  # statistics() counters become gauges (6 made, the notification too)


async def test_a_failover_is_logged_once_for_the_whole_batch(memory_cluster: MemoryCluster,
                                                             caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    held = asyncio.Event()
    started = asyncio.Queue[int]()
    slow, fast = tipcrpc.Service("test.cmetrics.move"), tipcrpc.Service("test.cmetrics.move")

    @slow.method(name="work", idempotent=True)
    async def work_a(i: int) -> str:
        started.put_nowait(i)
        await held.wait()
        return "a"

    @fast.method(name="work", idempotent=True)
    async def work_b(i: int) -> str:
        return "b"

    async with nodes(memory_cluster, "a", "b", "cli") as (a, b, cli):
        async with tipcrpc.serve(slow, instance=1, transport=a) as server_a, tipcrpc.connect(cli) as client:
            await wait_instances(client, "test.cmetrics.move", 1)
            with anyio.fail_after(10), caplog.at_level(logging.INFO, logger="tipcrpc.client"):
                tasks = [asyncio.create_task(client.options(timeout=8).call("test.cmetrics.move", "work", i))
                         for i in range(20)]  # fmt: skip
                for _ in range(20):
                    await started.get()  # all 20 are in a's handler
                async with tipcrpc.serve(fast, instance=2, transport=b) as server_b:
                    await wait_instances(client, "test.cmetrics.move", 2)
                    memory_cluster.kill(a)
                    assert await asyncio.gather(*tasks) == ["b"] * 20
                    to = server_b.address
            from_ = server_a.address
            held.set()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("failover:")]
    assert lines == [f"failover: 20 calls of test.cmetrics.move.work from {from_} to {to} "
                     "(its instance was lost or withdrawn)"]  # fmt: skip
    assert all(r.levelno == logging.INFO for r in caplog.records if r.getMessage().startswith("failover:"))
