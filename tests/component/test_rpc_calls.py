"""RPC over the memory transport: calls, stubs, errors, routing, fan-out, watch."""

from __future__ import annotations

import asyncio
import inspect

import anyio
import pytest

import tipcrpc
from tipcrpc.rpc.frames import HEADER, Kind, encode_call
from tipcrpc.transport.memory import MemoryCluster

from rpc_helpers import nodes, wait_instances

calc = tipcrpc.Service("test.rpc.calc")


@calc.method
async def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@calc.method(idempotent=True, importance="high")
def whoami(tag: str = "") -> str:
    return tag


@calc.method
def fail(message: str) -> None:
    raise KeyError(message)


@calc.method
async def echo(data: bytes) -> bytes:
    return data


async def test_call_by_name_type_service_and_stub(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "srv", "cli") as (srv, cli):
        async with tipcrpc.serve(calc, instance=1, transport=srv) as server, tipcrpc.connect(cli) as client:
            assert await client.options(timeout=1.0).call("test.rpc.calc", "add", 1, 2) == 3
            assert await client.call(calc.type, "add", 2, b=3) == 5
            assert await client.call(calc, "add", 3, 4) == 7
            stub = client.stub(calc)
            assert await stub.add(5, 6) == 11
            assert await stub.with_options(timeout=2.0, instance=1).add(1, 1) == 2
            assert inspect.signature(stub.add) == inspect.signature(add)
            assert stub.add.__doc__ == "Add two integers."
            assert "add" in dir(stub)
            with pytest.raises(AttributeError, match="no method 'sub'"):
                stub.sub  # noqa: B018
            with pytest.raises(TypeError):
                stub.with_options(retries=3)
            stats = server.statistics()
            assert stats["received"] == 5 and stats["completed"] == 5
            assert client.statistics()["replies"] == 5


async def test_typed_errors(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "srv", "cli") as (srv, cli):
        async with tipcrpc.serve(calc, transport=srv) as server, tipcrpc.connect(cli) as client:
            with pytest.raises(tipcrpc.MethodNotFound):
                await client.call(calc, "nope")
            with pytest.raises(tipcrpc.InvalidArguments, match="missing a required argument"):
                await client.call(calc, "add", 1)
            with pytest.raises(tipcrpc.InvalidArguments, match="unexpected keyword"):
                await client.call(calc, "add", 1, 2, c=3)
            with pytest.raises(tipcrpc.RemoteException) as info:
                await client.call(calc, "fail", "boom")
            assert info.value.remote_type == "KeyError"
            assert info.value.details["message"] == "'boom'"
            with pytest.raises(tipcrpc.CodecError):
                await client.call(calc, "echo", object())
            # the server keeps serving after all of that
            assert await client.call(calc, "add", 1, 1) == 2
            assert server.statistics()["failed"] == 4


async def test_absent_service_is_unreachable_at_once(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "cli") as (cli,):
        async with tipcrpc.connect(cli) as client:
            with anyio.fail_after(1.0):  # no waiting for the (absent) timeout
                with pytest.raises(tipcrpc.ServiceUnreachable):
                    await client.call("test.rpc.absent", "x")
            async with tipcrpc.serve(calc, instance=3, transport=cli):
                await wait_instances(client, calc, 1)
                with pytest.raises(tipcrpc.ServiceUnreachable):
                    await client.options(instance=4).call(calc, "add", 1, 2)
                assert await client.options(instance=3).call(calc, "add", 1, 2) == 3


async def test_two_instances_both_used_and_policies(memory_cluster: MemoryCluster) -> None:
    a_svc = tipcrpc.Service("test.rpc.who")
    b_svc = tipcrpc.Service("test.rpc.who")
    a_svc.method(name="who", idempotent=True)(lambda: "a")
    b_svc.method(name="who", idempotent=True)(lambda: "b")
    async with nodes(memory_cluster, "a", "b", "cli") as (a, b, cli):
        async with tipcrpc.serve(a_svc, instance=1, transport=a), tipcrpc.serve(b_svc, instance=2, transport=b):
            async with tipcrpc.connect(cli) as client:
                await wait_instances(client, "test.rpc.who", 2)
                seen = [await client.call("test.rpc.who", "who") for _ in range(6)]
                assert sorted(seen) == ["a", "a", "a", "b", "b", "b"]  # round robin: turn about
                assert await client.options(instance=2).call("test.rpc.who", "who") == "b"
                assert await client.options(key=1).call("test.rpc.who", "who") == "a"
                # a method already called (its per-call fast path warm) still honours routing
                for want in "aabba":
                    assert await client.options(instance=1 if want == "a" else 2).call("test.rpc.who", "who") == want
                    assert await client.options(key=1 if want == "a" else 2).call("test.rpc.who", "who") == want
            async with tipcrpc.connect(a, policy="local_first") as client:
                await wait_instances(client, "test.rpc.who", 2)
                assert {await client.call("test.rpc.who", "who") for _ in range(6)} == {"a"}
            async with tipcrpc.connect(cli, policy="least_outstanding") as client:
                await wait_instances(client, "test.rpc.who", 2)
                results = await asyncio.gather(*(client.call("test.rpc.who", "who") for _ in range(10)))
                assert set(results) == {"a", "b"}


async def test_key_routing_over_a_sharded_range(memory_cluster: MemoryCluster) -> None:
    lo_svc = tipcrpc.Service("test.rpc.shard")
    hi_svc = tipcrpc.Service("test.rpc.shard")
    lo_svc.method(name="owner")(lambda key: ("lo", key))
    hi_svc.method(name="owner")(lambda key: ("hi", key))
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(lo_svc, instances=range(0, 512), transport=a), \
                tipcrpc.serve(hi_svc, instances=range(512, 1024), transport=b):  # fmt: skip
            async with tipcrpc.connect(a) as client:
                await wait_instances(client, "test.rpc.shard", 2)
                from tipcrpc.rpc.membership import key_to_instance

                for key in ("alice", "bob", "carol", b"dave", 7, 900):
                    inst = key_to_instance(key, [(0, 511), (512, 1023)])
                    where, _ = await client.options(key=key).call("test.rpc.shard", "owner", str(key))
                    assert where == ("lo" if inst < 512 else "hi")


async def test_call_all_with_one_failing_instance(memory_cluster: MemoryCluster) -> None:
    ok_svc = tipcrpc.Service("test.rpc.fan")
    bad_svc = tipcrpc.Service("test.rpc.fan")
    ok_svc.method(name="status")(lambda: "fine")

    @bad_svc.method(name="status")
    def broken() -> str:
        raise RuntimeError("disk full")

    async with nodes(memory_cluster, "a", "b", "cli") as (a, b, cli):
        async with tipcrpc.serve(ok_svc, instance=1, transport=a) as sa, tipcrpc.serve(bad_svc, instance=2, transport=b) as sb:
            async with tipcrpc.connect(cli) as client:
                await wait_instances(client, "test.rpc.fan", 2)
                results = await client.options(timeout=2.0).call_all("test.rpc.fan", "status")
                by_socket = {r.socket: r for r in results}
                assert set(by_socket) == {sa.address, sb.address}
                good, bad = by_socket[sa.address], by_socket[sb.address]
                assert good.ok and good.value == "fine" and good.range.lower == 1
                assert not bad.ok and isinstance(bad.error, tipcrpc.RemoteException)
                assert bad.error.remote_type == "RuntimeError"
                with pytest.raises(tipcrpc.RemoteException):
                    bad.unwrap()
                only = await client.options(instance=1).call_all("test.rpc.fan", "status")
                assert [r.value for r in only] == ["fine"]
                with pytest.raises(tipcrpc.ServiceUnreachable):
                    await client.options(instance=9).call_all("test.rpc.fan", "status")


async def test_watch_snapshot_then_live(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "a", "b") as (a, b):
        # the client shares the server's node, so the publication is in its snapshot
        async with tipcrpc.serve(calc, instance=1, transport=a) as first, tipcrpc.connect(a) as client:
            async with client.watch(calc) as w:
                it = w.__aiter__()
                with anyio.fail_after(2.0):
                    up = await it.__anext__()
                    assert isinstance(up, tipcrpc.ServiceUp)
                    assert (up.service, up.lower, up.socket) == ("test.rpc.calc", 1, first.address)
                    assert await it.__anext__() is tipcrpc.SNAPSHOT_COMPLETE
                    async with tipcrpc.serve(calc, instance=2, transport=b) as second:
                        up2 = await it.__anext__()
                        assert isinstance(up2, tipcrpc.ServiceUp) and up2.socket == second.address
                    down = await it.__anext__()
                    assert isinstance(down, tipcrpc.ServiceDown) and down.socket == second.address
            async with client.watch_nodes() as wn:
                seen = set()
                async for ev in wn:
                    if ev is tipcrpc.SNAPSHOT_COMPLETE:
                        break
                    assert isinstance(ev, tipcrpc.NodeUp)
                    seen.add(ev.node)
                assert seen == {a.own_node.addr, b.own_node.addr}


async def test_an_abandoned_watch_cancels_its_subscription(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "a") as (a,):
        async with tipcrpc.serve(calc, instance=1, transport=a), tipcrpc.connect(a) as client:
            assert await client.call(calc, "whoami", "x") == "x"  # the client's own subscriptions are in place
            base = a.statistics()["subscriptions"]
            with anyio.fail_after(2.0):
                async for ev in client.watch(calc):  # no `async with`: leaving the loop drops it
                    assert isinstance(ev, tipcrpc.ServiceUp)
                    break
                while a.statistics()["subscriptions"] > base:
                    await asyncio.sleep(0)  # the subscription is cancelled by a task
                kept = client.watch(calc)  # held in a variable: may be resumed after a break
                async for _ev in kept:
                    break
                assert await anext(kept) is tipcrpc.SNAPSHOT_COMPLETE
                assert a.statistics()["subscriptions"] == base + 1
                del kept, ev
                while a.statistics()["subscriptions"] > base:
                    await asyncio.sleep(0)


async def test_notify_runs_on_the_server(memory_cluster: MemoryCluster) -> None:
    svc = tipcrpc.Service("test.rpc.notify")
    got: asyncio.Queue[str] = asyncio.Queue()

    @svc.method
    async def log(line: str) -> None:
        await got.put(line)

    @svc.method
    def boom() -> None:
        raise ValueError("ignored")

    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(svc, transport=a) as server, tipcrpc.connect(b) as client:
            await client.notify(svc, "boom")  # errors of notifications stay on the server
            await client.notify(svc, "log", "hello")
            with anyio.fail_after(2.0):
                assert await got.get() == "hello"
            assert server.statistics()["notifications"] == 2
            assert server.statistics()["failed"] == 1


async def test_big_payload_round_trip(memory_cluster: MemoryCluster) -> None:
    payload = bytes(range(256)) * (64 * 4096)  # 64 MiB
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(calc, transport=a), tipcrpc.connect(b) as client:
            with anyio.fail_after(10.0):
                assert await client.options(timeout=10.0).call(calc, "echo", payload) == payload
            with pytest.raises(tipcrpc.FrameTooLarge):
                await client.call(calc, "echo", bytes(129 << 20))
    del payload


async def test_frame_too_large_on_the_server_side(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(calc, transport=a, max_frame=1 << 20), tipcrpc.connect(b) as client:
            with pytest.raises(tipcrpc.FrameTooLarge):
                await client.options(timeout=5.0).call(calc, "echo", bytes(2 << 20))
            assert await client.call(calc, "echo", b"small") == b"small"


async def test_malformed_datagrams_do_not_stop_the_server(memory_cluster: MemoryCluster) -> None:
    from tipcrpc.codec import Codec
    from tipcrpc.transport.inbox import Inbox

    async with nodes(memory_cluster, "a", "b") as (a, b):
        async with tipcrpc.serve(calc, transport=a) as server, tipcrpc.connect(b) as client:
            inbox = Inbox()
            raw = await b.open_endpoint(inbox)
            codec = Codec()
            junk = [
                b"\x01",
                b"\xff" * 40,
                HEADER.pack(9, Kind.CALL, 0, 0, calc.type, 1) + b"\x90",  # future version
                HEADER.pack(1, Kind.CALL, 0, 0, calc.type, 2) + b"\xc1\xc1",  # bad msgpack
                HEADER.pack(1, Kind.CALL, 0, 0, calc.type, 3) + codec.encode(["add", "notalist", None, None]),
                HEADER.pack(1, Kind.CHUNK, 0, 0, 1, 4) + b"\x00" * 40,  # nonsense chunk
                HEADER.pack(1, Kind.REPLY, 0, 0, 0, 5) + b"\x01",  # a reply sent to a server
                HEADER.pack(1, 200, 0, 0, 0, 6),
            ]
            for data in junk:
                raw.send(server.address, data)
            raw.send(server.address, encode_call(codec, 77, calc.type, "add", [2, 2], None, None))
            with anyio.fail_after(2.0):
                replies = {}
                while 77 not in replies:
                    msg = await inbox.get_delivery()
                    _v, kind, _f, _r, _aux, cid = HEADER.unpack_from(msg.data)
                    replies[cid] = kind
            assert replies[77] == Kind.REPLY
            # calls that could be recognised were answered with a typed failure
            assert replies[1] == replies[2] == replies[3] == Kind.FAILURE
            assert server.statistics()["malformed"] >= 6
            assert await client.call(calc, "add", 1, 2) == 3
            await raw.aclose()


async def test_sequential_calls_leave_nothing_behind(memory_cluster: MemoryCluster) -> None:
    """One record per call, and nothing kept after it: the call table is empty between
    sequential calls, and so is the least-outstanding count of the socket."""
    async with nodes(memory_cluster, "srv", "cli") as (srv, cli):
        async with tipcrpc.connect(cli, policy="least_outstanding") as client:
            async with tipcrpc.serve(calc, transport=srv) as server:
                await wait_instances(client, calc, 1)
                for i in range(10):
                    assert await client.call(calc, "whoami", str(i)) == str(i)
                    assert len(client._table) == 0
                    assert client._table.outstanding == {}
                assert server.statistics()["active"] == 0 and not server._table.active
