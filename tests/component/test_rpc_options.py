"""Per-call method options and what a client calling by name learns from servers.

A client that calls a service by name, without the module that defines it, does not know
which methods are idempotent: these tests run the client as if it had no definition (the
process-wide Service registry is hidden from it) and check that a per-call
``idempotent=True``, or what the server's answers say about the method, makes failover move
an interrupted call instead of failing it with PeerLost.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

import tipcrpc
from tipcrpc.addr import Importance
from tipcrpc.rpc import client as client_module
from tipcrpc.transport.memory import MemoryCluster

from rpc_helpers import nodes, wait_instances

NAME = "test.rpc.options"


@pytest.fixture
def by_name_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client process has no Service definitions (as if it never imported them)."""
    monkeypatch.setattr(client_module, "lookup_service", lambda _type: None)


def define(who: str, gate: asyncio.Event | None, started: asyncio.Queue[str]) -> tipcrpc.Service:
    svc = tipcrpc.Service(NAME)

    @svc.method(idempotent=True, importance="high")
    async def work(i: int) -> str:
        await started.put(who)
        if gate is not None:
            await gate.wait()
        return who

    @svc.method
    def plain() -> str:
        return who

    @svc.method(idempotent=True)
    async def items(n: int):  # noqa: ANN202
        for i in range(n):
            yield i

    return svc


async def run_two_calls_and_kill_a(cluster: MemoryCluster, warm_up: bool, **options: object) -> list[object]:
    """Two servers, a (instance 1, blocks) and b (instance 2); two calls round-robin over
    both, one lands on a; kill a. Returns both outcomes."""
    gate, started = asyncio.Event(), asyncio.Queue()
    async with nodes(cluster, "a", "b", "cli") as (a, b, cli):
        async with tipcrpc.serve(define("b", None, started), instance=2, transport=b), \
                tipcrpc.connect(cli) as client:  # fmt: skip
            server_a = tipcrpc.serve(define("a", gate, started), instance=1, transport=a)
            await server_a.__aenter__()
            await wait_instances(client, NAME, 2)
            if warm_up:  # one answer from b teaches the client the method's options
                assert await client.options(instance=2).call(NAME, "work", 0) == "b"
                assert await started.get() == "b"

            async def one(i: int) -> object:
                try:
                    return await client.options(timeout=5.0, **options).call(NAME, "work", i)
                except tipcrpc.PeerLost as exc:
                    return exc

            with anyio.fail_after(5.0):
                tasks = [asyncio.create_task(one(i)) for i in (1, 2)]
                assert sorted([await started.get(), await started.get()]) == ["a", "b"]
                cluster.kill(a)
                results = await asyncio.gather(*tasks)
            gate.set()
            return results


async def test_by_name_a_method_is_not_known_to_be_idempotent(memory_cluster: MemoryCluster, by_name_only: None) -> None:
    results = await run_two_calls_and_kill_a(memory_cluster, warm_up=False)
    assert sorted(map(str, results)).count("b") == 1
    assert sum(isinstance(r, tipcrpc.PeerLost) for r in results) == 1


async def test_per_call_idempotent_moves_the_call(memory_cluster: MemoryCluster, by_name_only: None) -> None:
    results = await run_two_calls_and_kill_a(memory_cluster, warm_up=False, idempotent=True)
    assert results == ["b", "b"]


async def test_the_client_learns_the_method_options_from_an_answer(memory_cluster: MemoryCluster, by_name_only: None) -> None:
    results = await run_two_calls_and_kill_a(memory_cluster, warm_up=True)
    assert results == ["b", "b"]


async def test_options_learned_overridden_and_local(memory_cluster: MemoryCluster, by_name_only: None) -> None:
    started: asyncio.Queue[str] = asyncio.Queue()
    async with nodes(memory_cluster, "a") as (a,):
        async with tipcrpc.serve(define("a", None, started), transport=a), tipcrpc.connect(a) as client:
            assert client._method_meta(NAME, "work")[2:4] == (False, Importance.LOW)
            assert await client.call(NAME, "work", 1) == "a"
            assert client._method_meta(NAME, "work")[2:4] == (True, Importance.HIGH)
            assert tipcrpc.CallOptions(idempotent=False, importance="critical").importance == Importance.CRITICAL
            async with client.stream(NAME, "items", 2) as items:  # STREAM_END teaches as well
                assert [i async for i in items] == [0, 1]
            assert client._method_meta(NAME, "items")[2:4] == (True, Importance.LOW)
            assert await client.options(importance=2).call(NAME, "plain") == "a"  # learned from the answer
            assert client._method_meta(NAME, "plain")[2:4] == (False, Importance.LOW)
            stub = client.stub(NAME).with_options(idempotent=True, importance="high")
            assert await stub.plain() == "a"
            with pytest.raises(TypeError):
                await client.options(idempotent="yes").call(NAME, "plain")
            with pytest.raises(ValueError):
                await client.options(importance="urgent").call(NAME, "plain")


async def test_a_local_definition_wins_over_what_servers_say(memory_cluster: MemoryCluster) -> None:
    local = tipcrpc.Service("test.rpc.options.local")

    @local.method(name="work")
    def work_local(i: int) -> str:  # not idempotent here
        return "local"

    remote = tipcrpc.Service("test.rpc.options.local")

    @remote.method(name="work", idempotent=True)
    def work_remote(i: int) -> str:
        return "remote"

    async with nodes(memory_cluster, "a") as (a,):
        async with tipcrpc.serve(remote, transport=a), tipcrpc.connect(a) as client:
            assert await client.call(local, "work", 1) == "remote"
            assert client._method_meta(local, "work")[2] is False


async def test_a_calls_importance_option_overrides_the_methods(memory_cluster: MemoryCluster) -> None:
    """The importance a CALL goes out with: the method's, unless the call's options set one
    (on the synchronous start of a known method, on the general start and in call_all)."""
    started: asyncio.Queue[str] = asyncio.Queue()
    async with nodes(memory_cluster, "a") as (a,):
        svc = define("a", None, started)
        async with tipcrpc.serve(svc, transport=a), tipcrpc.connect(a) as client:
            await client.wait_for(svc)
            sent: list[Importance] = []

            class Spy:  # the client's endpoint, recording the importance of every send
                def __init__(self, ep: object) -> None:
                    self.ep = ep

                def send(self, dest: object, data: bytes, *, importance: Importance = Importance.LOW) -> None:
                    sent.append(importance)
                    self.ep.send(dest, data, importance=importance)  # type: ignore[attr-defined]

                def __getattr__(self, name: str) -> object:
                    return getattr(self.ep, name)

            client._link.endpoint = Spy(client._link.endpoint)  # type: ignore[assignment]
            assert await client.call(svc, "work", 1) == "a"  # the method's: high
            assert await client.options(importance="critical").call(svc, "work", 1) == "a"
            assert await client.call(svc, "plain") == "a"  # the method's: low
            assert await client.options(importance="high").call(svc, "plain") == "a"
            assert await client.options(importance="medium", instance=0).call(svc, "plain") == "a"  # routed: _start
            assert [r.value for r in await client.options(importance="critical").call_all(svc, "plain")] == ["a"]
            assert sent == [Importance.HIGH, Importance.CRITICAL, Importance.LOW, Importance.HIGH,
                            Importance.MEDIUM, Importance.CRITICAL]  # fmt: skip
