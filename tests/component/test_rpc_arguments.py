"""Arguments and options never share a namespace: every argument reaches the method,
whatever its parameter names (issue: `key=` was taken as the routing key)."""

from __future__ import annotations

import inspect
from typing import Any, AsyncIterator

import pytest

import tipcrpc
from tipcrpc.transport.memory import MemoryCluster

from rpc_helpers import nodes, wait_instances

svc = tipcrpc.Service("test.rpc.arguments")
NAMES = ("key", "instance", "timeout", "service", "method", "wait_ready", "idempotent", "importance",
         "metadata", "credit", "instances")  # fmt: skip
got: list[dict[str, Any]] = []


@svc.method
def put(key: str, value: str, instance: int = -1, timeout: float = -1.0, service: str = "", method: str = "",
        wait_ready: str = "", idempotent: str = "", importance: str = "", metadata: str = "", credit: str = "",
        instances: str = "") -> dict[str, Any]:  # fmt: skip
    return {"key": key, "value": value, "instance": instance, "timeout": timeout, "service": service,
            "method": method, "wait_ready": wait_ready, "idempotent": idempotent, "importance": importance,
            "metadata": metadata, "credit": credit, "instances": instances}  # fmt: skip


@svc.method
async def scan(key: str, timeout: int) -> AsyncIterator[str]:
    for i in range(timeout):
        yield f"{key}{i}"


@svc.method
def note(key: str, service: str) -> None:
    got.append({"key": key, "service": service})


ALL = {"key": "alice", "value": "x", "instance": 7, "timeout": 9.5, "service": "s", "method": "m", "wait_ready": "w",
       "idempotent": "i", "importance": "p", "metadata": "md", "credit": "c", "instances": "r"}  # fmt: skip


async def test_every_keyword_reaches_the_method(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "srv", "cli") as (srv, cli):
        async with tipcrpc.serve(svc, instance=1, transport=srv), tipcrpc.connect(cli) as client:
            await wait_instances(client, svc, 1)
            assert await client.call(svc, "put", **ALL) == ALL
            assert await client.call("test.rpc.arguments", "put", **ALL) == ALL  # by name, too
            assert await client.options(timeout=2.0, key=1).call(svc, "put", **ALL) == ALL
            stub = client.stub(svc)
            assert await stub.put(**ALL) == ALL
            assert await stub.with_options(timeout=2.0, instance=1).put(**ALL) == ALL
            assert await client.options(key="bob").stub(svc).put(key="bob", value="y") == {**put("bob", "y")}
            assert [x async for x in client.stream(svc, "scan", key="k", timeout=2)] == ["k0", "k1"]
            assert [x async for x in stub.scan(key="k", timeout=1)] == ["k0"]
            await client.notify(svc, "note", key="n", service="svc")
            results = await client.call_all(svc, "put", **ALL)
            assert [r.unwrap() for r in results] == [ALL]
            assert await client.call(svc, "note", key="n2", service="s2") is None
            assert got[-2:] == [{"key": "n", "service": "svc"}, {"key": "n2", "service": "s2"}] or \
                {"key": "n", "service": "svc"} in got  # fmt: skip


async def test_the_stub_signature_is_the_methods(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "srv", "cli") as (srv, cli):
        async with tipcrpc.serve(svc, transport=srv), tipcrpc.connect(cli) as client:
            sig = inspect.signature(client.stub(svc).put)
            assert list(sig.parameters)[:2] == ["key", "value"]
            assert set(NAMES) <= set(sig.parameters)
            sig.bind(key="a", value="b", timeout=1.0)  # what the signature promises works


async def test_options_are_checked_before_anything_is_sent(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "cli") as (cli,):
        async with tipcrpc.connect(cli) as client:
            with pytest.raises(TypeError, match="unknown call options: retries"):
                client.options(retries=3)
            with pytest.raises(tipcrpc.UsageError):
                client.options(timeout=-1)
            with pytest.raises(tipcrpc.UsageError):
                client.options(key="a", instance=1)
            with pytest.raises(tipcrpc.UsageError):
                client.options(metadata={1: "x"})
            with pytest.raises(tipcrpc.UsageError):
                client.options(instances=(5, 1))
            assert client.options(instances=range(2, 10)).opts.instances == (2, 9)
            assert client.options(key="a").options(instance=3).opts.key is None  # the later choice wins
            assert client.statistics()["calls"] == 0


async def test_range_fanout_reaches_only_overlapping_publications(memory_cluster: MemoryCluster) -> None:
    shard = tipcrpc.Service("test.rpc.arguments.shards")

    @shard.method
    def whoami() -> object:
        ctx = tipcrpc.current_call()
        return ctx.instance

    async with nodes(memory_cluster, "a", "b", "c", "cli") as (a, b, c, cli):
        async with tipcrpc.serve(shard, instances=range(0, 10), transport=a), \
                tipcrpc.serve(shard, instances=range(10, 20), transport=b), \
                tipcrpc.serve(shard, instance=42, transport=c), tipcrpc.connect(cli) as client:  # fmt: skip
            await wait_instances(client, shard, 3)
            everyone = await client.call_all(shard, "whoami")
            assert len(everyone) == 3
            low = await client.options(instances=(5, 12)).call_all(shard, "whoami")
            assert sorted((r.range.lower, r.range.upper) for r in low) == [(0, 9), (10, 19)]
            one = await client.options(instances=range(42, 43)).call_all(shard, "whoami")
            assert [r.unwrap() for r in one] == [42]
            with pytest.raises(tipcrpc.ServiceUnreachable, match="in instances 100..200"):
                await client.options(instances=(100, 200)).call_all(shard, "whoami")


async def test_call_context_in_handlers(memory_cluster: MemoryCluster) -> None:
    ctxsvc = tipcrpc.Service("test.rpc.arguments.context")

    @ctxsvc.method
    async def info(x: int) -> dict[str, Any]:
        ctx = tipcrpc.current_call()
        return {"instance": ctx.instance, "caller": list(ctx.caller), "deadline": ctx.deadline,
                "metadata": dict(ctx.metadata), "method": ctx.method}  # fmt: skip

    @ctxsvc.method
    def plain() -> object:
        return tipcrpc.current_call().instance

    async with nodes(memory_cluster, "srv", "cli") as (srv, cli):
        async with tipcrpc.serve(ctxsvc, instances=range(0, 100), transport=srv), tipcrpc.connect(cli) as client:
            await wait_instances(client, ctxsvc, 1)
            got = await client.options(instance=33, timeout=5.0, metadata={"trace": "t-1"}).call(ctxsvc, "info", 1)
            assert got["instance"] == 33 and got["metadata"] == {"trace": "t-1"} and got["method"] == "info"
            assert 0 < got["deadline"] <= 5.0
            assert got["caller"] == list(client.address)
            plain_got = await client.call(ctxsvc, "plain")
            assert plain_got is None  # a range server, no instance named: unknown
            assert (await client.call(ctxsvc, "info", 2))["deadline"] is None
    with pytest.raises(tipcrpc.UsageError):
        tipcrpc.current_call()
