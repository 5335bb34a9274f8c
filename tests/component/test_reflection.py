"""Every server answers describe/health (tipcrpc.rpc.reflection) and keeps per-method metrics."""

from __future__ import annotations

import logging
from typing import AsyncIterator

import anyio
import pytest

import tipcrpc
from tipcrpc.rpc.reflection import DESCRIBE, HEALTH, REFLECTION, REFLECTION_TYPE
from tipcrpc.transport.memory import MemoryCluster

calc = tipcrpc.Service("test.reflect.calc")
other = tipcrpc.Service("test.reflect.other")


@calc.method
async def add(a: int, b: int = 0) -> int:
    """Add two numbers.

    More text that describe() leaves out."""
    return a + b


@calc.method(idempotent=True, importance="high")
def boom(key: str) -> int:
    return {}[key]  # KeyError: a handler bug


@calc.method
async def count(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


@other.method
def hello() -> str:
    return "hi"


async def test_describe_lists_every_server_and_its_methods(memory_cluster: MemoryCluster) -> None:
    async with memory_cluster.node("a") as a, memory_cluster.node("b") as b:
        # the node-scope server's reflection name is node scope too: seen from its own node only
        async with tipcrpc.serve(calc, instances=range(0, 8), transport=a) as s1, \
                tipcrpc.serve(other, instance=3, scope="node", transport=b) as s2, \
                tipcrpc.connect(b) as client:  # fmt: skip
            with anyio.fail_after(5):
                await client.wait_for(REFLECTION, 2, timeout=5)
                results = await client.options(timeout=2).call_all(REFLECTION, "describe")
    assert [r.error for r in results] == [None, None]
    by_port = {r.value["port"]: r.value for r in results}
    d1, d2 = by_port[s1.address.port], by_port[s2.address.port]
    assert (d1["node"], d1["status"], d1["identity"]) == (s1.address.node, "serving", a.own_node.identity)
    (svc,) = d1["services"]  # the reflection service does not list itself
    assert (svc["service"], svc["type"], svc["instances"], svc["scope"]) == (calc.name, calc.type, [[0, 7]], "cluster")
    methods = {m["name"]: m for m in svc["methods"]}
    assert sorted(methods) == ["add", "boom", "count"]
    assert methods["add"] == {"name": "add", "signature": "(a: int, b: int = 0) -> int", "kind": "async",
                              "streaming": False, "idempotent": False, "importance": "low",
                              "doc": "Add two numbers."}  # fmt: skip
    assert (methods["boom"]["idempotent"], methods["boom"]["importance"]) == (True, "high")
    assert methods["count"]["streaming"] is True and methods["count"]["kind"] == "async_stream"
    assert d2["services"][0]["scope"] == "node" and d2["services"][0]["instances"] == [[3, 3]]


async def test_reserved_methods_answer_on_every_served_type(memory_cluster: MemoryCluster) -> None:
    async with memory_cluster.node("a") as a, memory_cluster.node("c") as c:
        async with tipcrpc.serve(calc, other, transport=a) as server, tipcrpc.connect(c) as client:
            with anyio.fail_after(5):
                await client.wait_for(calc.name, timeout=5)
                d = await client.options(timeout=2).call(calc.name, DESCRIBE)  # by name only: no Service here
                h = await client.options(timeout=2).call("test.reflect.other", HEALTH)
                only = await client.options(timeout=2).call(REFLECTION_TYPE, "describe", "test.reflect.other")
    assert d["service"] == calc.name and d["port"] == server.address.port
    assert [m["name"] for m in d["methods"]] == ["add", "boom", "count"]
    # active: the health call itself is in progress while it answers
    assert h == {"node": server.address.node, "port": server.address.port, "identity": a.own_node.identity,
                 "status": "serving", "active": 1, "queued": 0, "services": [calc.name, other.name]}  # fmt: skip
    assert [s["service"] for s in only["services"]] == [other.name]


async def test_health_says_draining_once_the_drain_began(memory_cluster: MemoryCluster) -> None:
    async with memory_cluster.node("a") as a:
        async with tipcrpc.serve(calc, transport=a) as server:
            reflect = server._reflection
            assert reflect.health()["status"] == "serving"
            await server.drain(timeout=1)
            assert server.draining and reflect.health()["status"] == "draining"
            assert reflect.describe()["status"] == "draining"


async def test_metrics_count_calls_errors_and_latency(memory_cluster: MemoryCluster,
                                                      caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    async with memory_cluster.node("a") as a:
        async with tipcrpc.serve(calc, transport=a) as server, tipcrpc.connect(a) as client:
            with anyio.fail_after(5), caplog.at_level(logging.INFO, logger="tipcrpc.server"):
                for i in range(3):
                    assert await client.options(timeout=2).call(calc, "add", i, 1) == i + 1
                with pytest.raises(tipcrpc.RemoteException):
                    await client.options(timeout=2).call(calc, "boom", "x")
                assert [x async for x in client.options(timeout=2).stream(calc, "count", 4)] == [0, 1, 2, 3]
            methods = server.statistics()["methods"]
    assert methods[f"{calc.name}.add"]["calls"] == 3 and methods[f"{calc.name}.add"]["errors"] == 0
    assert methods[f"{calc.name}.add"]["buckets"][-1] == ["+Inf", 3]
    assert methods[f"{calc.name}.boom"]["by_error"] == {"KeyError": 1}
    assert methods[f"{calc.name}.count"]["calls"] == 1 and methods[f"{calc.name}.count"]["errors"] == 0
    text = tipcrpc.metrics.render_prometheus([server.metrics])
    assert f'tipcrpc_server_calls_total{{service="{calc.name}",method="add"}} 3' in text
    assert f'tipcrpc_server_errors_total{{service="{calc.name}",method="boom",error="KeyError"}} 1' in text
    # a handler bug is logged once, as a WARNING with its traceback
    (rec,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "boom" in rec.getMessage() and "KeyError" in rec.getMessage()
    assert rec.exc_info is not None and rec.exc_info[0] is KeyError


async def test_a_deliberate_rpc_error_is_not_logged_as_a_warning(
    memory_cluster: MemoryCluster, caplog: pytest.LogCaptureFixture
) -> None:
    svc = tipcrpc.Service("test.reflect.refuse")

    @svc.method
    def refuse() -> None:
        raise tipcrpc.InvalidArguments("no")

    async with memory_cluster.node("a") as a:
        async with tipcrpc.serve(svc, transport=a), tipcrpc.connect(a) as client:
            with anyio.fail_after(5), caplog.at_level(logging.INFO, logger="tipcrpc.server"):
                with pytest.raises(tipcrpc.InvalidArguments):
                    await client.options(timeout=2).call(svc, "refuse")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records
