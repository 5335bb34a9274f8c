"""The public surface: serve()/connect(), transport selection and sharing."""

from __future__ import annotations

import sys
from typing import Iterator

import pytest

import tipcrpc
from tipcrpc import api
from tipcrpc.transport.memory import MemoryCluster, reset_default_cluster

from rpc_helpers import wait_instances

svc = tipcrpc.Service("test.rpc.api")


@svc.method(idempotent=True)
def hello(name: str) -> str:
    return f"hello {name}"


@pytest.fixture(autouse=True)
def fresh_default_cluster() -> Iterator[None]:
    reset_default_cluster()
    yield
    reset_default_cluster()


async def test_serve_and_connect_meet_on_the_shared_memory_transport() -> None:
    async with tipcrpc.serve(svc, transport="memory") as server:
        async with tipcrpc.connect("memory") as client:
            assert client.transport is server.transport  # one transport per kind
            assert await client.options(timeout=1.0).call("test.rpc.api", "hello", "you") == "hello you"
            assert server.address.node == client.address.node
        stats = server.statistics()
        assert stats["completed"] == 1
    assert not any(api._SHARED.values()), "the shared transport is closed after the last user"


async def test_env_var_selects_the_auto_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIPCRPC_TRANSPORT", "memory")
    assert api.resolve_transport_kind("auto") == "memory"
    async with tipcrpc.serve(svc), tipcrpc.connect() as client:
        assert client.transport.kind == "memory"
        assert await client.call(svc, "hello", "env") == "hello env"
    monkeypatch.setenv("TIPCRPC_TRANSPORT", "carrier-pigeon")
    with pytest.raises(tipcrpc.TransportUnavailable, match="carrier-pigeon"):
        api.resolve_transport_kind("auto")


def test_auto_falls_back_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIPCRPC_TRANSPORT", raising=False)
    monkeypatch.setattr(api, "_kernel_usable", lambda: True)
    assert api.resolve_transport_kind("auto") == "kernel"
    monkeypatch.setattr(api, "_kernel_usable", lambda: False)
    monkeypatch.setattr(api, "_user_available", lambda: True)
    assert api.resolve_transport_kind("auto") == "user"
    monkeypatch.setattr(api, "_user_available", lambda: False)
    assert api.resolve_transport_kind("auto") == "memory"
    with pytest.raises(tipcrpc.TransportUnavailable, match="unknown transport"):
        api.resolve_transport_kind("quantum")


@pytest.mark.parametrize("kind,module", [("kernel", "tipcrpc.transport.kernel"), ("user", "tipcrpc.transport.user")])
async def test_missing_transport_module_is_transport_unavailable(monkeypatch: pytest.MonkeyPatch, kind: str, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(tipcrpc.TransportUnavailable, match=kind):
        async with tipcrpc.connect(kind):
            pass  # pragma: no cover
    assert not api._user_available() if kind == "user" else not api._kernel_usable()


async def test_caller_owned_transport_stays_open(memory_cluster: MemoryCluster) -> None:
    async with memory_cluster.node("own") as node:
        async with tipcrpc.serve(svc, instances=range(10, 20), scope="node", transport=node) as server:
            async with tipcrpc.connect(node) as client:
                await wait_instances(client, svc, 1)
                [result] = await client.call_all(svc, "hello", "r")
                assert result.range == tipcrpc.ServiceRange(svc.type, 10, 19)
                assert await client.options(key=15).call(svc, "hello", "x") == "hello x"
            assert server.scope is tipcrpc.Scope.NODE
        assert node.is_open
        ep = await node.open_endpoint(lambda m: None)  # still usable
        await ep.aclose()


async def test_default_instance_is_zero(memory_cluster: MemoryCluster) -> None:
    async with memory_cluster.node("n") as node:
        async with tipcrpc.serve(svc, transport=node), tipcrpc.connect(node) as client:
            await wait_instances(client, svc, 1)
            assert await client.options(instance=0).call(svc, "hello", "0") == "hello 0"


async def test_argument_validation() -> None:
    with pytest.raises(ValueError, match="at least one"):
        async with tipcrpc.serve():
            pass  # pragma: no cover
    with pytest.raises(ValueError, match="either instance"):
        async with tipcrpc.serve(svc, instance=1, instances=range(3)):
            pass  # pragma: no cover
    with pytest.raises(tipcrpc.AddressError, match="scope"):
        async with tipcrpc.serve(svc, scope="galaxy"):
            pass  # pragma: no cover
    with pytest.raises(tipcrpc.AddressError, match="reserved"):
        tipcrpc.Service("x", type=10)
    with pytest.raises(ValueError):
        async with tipcrpc.connect("memory", policy="random"):
            pass  # pragma: no cover
    assert not any(api._SHARED.values())


async def test_misuse_raises_typed_errors(memory_cluster: MemoryCluster) -> None:
    """Bad values: UsageError (also a ValueError) or AddressError; wrong types: TypeError."""
    for bad in ({"instance": 1, "instances": range(3)}, {}):
        with pytest.raises(tipcrpc.UsageError):
            async with tipcrpc.serve(*([svc] if bad else []), transport=memory_cluster.node(), **bad):
                pass  # pragma: no cover
    with pytest.raises(tipcrpc.UsageError, match="round_robin"):
        async with tipcrpc.connect(memory_cluster.node(), policy="bogus"):
            pass  # pragma: no cover
    with pytest.raises(tipcrpc.UsageError, match="max_concurrency"):
        async with tipcrpc.serve(svc, transport=memory_cluster.node(), max_concurrency=0):
            pass  # pragma: no cover
    with pytest.raises(tipcrpc.UsageError, match="importance"):
        tipcrpc.Service("test.rpc.api.bad").method(importance="urgent")
    async with memory_cluster.node() as node, tipcrpc.connect(node, policy="LOCAL_FIRST") as client:
        assert client.policy is tipcrpc.Policy.LOCAL_FIRST
        for reserved in (0, 1, 5, 63, 2**32):
            with pytest.raises(tipcrpc.AddressError, match="reserved"):
                await client.call(reserved, "m")
        with pytest.raises(tipcrpc.AddressError):
            await client.call("", "m")
        with pytest.raises(tipcrpc.UsageError, match="either key"):
            await client.options(key="k", instance=1).call(svc, "hello", "x")
        with pytest.raises(tipcrpc.AddressError, match="instance"):
            await client.options(instance=-1).call(svc, "hello", "x")
        with pytest.raises(tipcrpc.AddressError, match="instance"):
            await client.options(instance=2**32).call_all(svc, "hello", "x")
        with pytest.raises(TypeError):
            await client.options(instance="1").call(svc, "hello", "x")
        with pytest.raises(TypeError):
            await client.call(1.5, "m")  # type: ignore[arg-type]
        with pytest.raises(tipcrpc.UsageError, match="credit"):
            client.options(credit=0).stream(svc, "hello")
        with pytest.raises(tipcrpc.UsageError, match="count"):
            await client.wait_for(svc, count=0)
        with pytest.raises(tipcrpc.UsageError, match="importance"):
            await client.options(importance="urgent").call(svc, "hello", "x")
        assert issubclass(tipcrpc.UsageError, ValueError) and issubclass(tipcrpc.UsageError, tipcrpc.TipcRpcError)


def test_public_names() -> None:
    for name in ("Service", "serve", "connect", "Client", "Server", "Stub", "FanoutResult", "CallStream",
                 "Watch", "Policy", "register_ext", "PeerLost", "ServiceUnreachable", "RemoteException",
                 "ServiceUp", "SNAPSHOT_COMPLETE", "ServiceAddr", "Scope", "Importance", "UsageError"):  # fmt: skip
        assert hasattr(tipcrpc, name), name


def test_user_transport_options_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "TIPCRPC_USER_PEERS": " 10.0.0.2, 10.0.0.3:7000 ,",
        "TIPCRPC_USER_LOCAL_IP": "10.0.0.1",
        "TIPCRPC_USER_PORT": "6119",
        "TIPCRPC_NETID": "42",
        "TIPCRPC_TOLERANCE_MS": "500",
        "TIPCRPC_USER_IDENTITY": " db-primary ",
        "TIPCRPC_USER_MULTICAST": "Yes",
        "TIPCRPC_USER_BUNDLING": "off",
    }
    assert api.user_options_from_env(env) == {
        "peers": [("10.0.0.2", 6118), ("10.0.0.3", 7000)],
        "local_ip": "10.0.0.1",
        "port": 6119,
        "netid": 42,
        "tolerance_ms": 500,
        "identity": "db-primary",
        "multicast": True,
        "bundling": False,
    }
    assert api.user_options_from_env({"TIPCRPC_USER_MULTICAST": "0"}) == {"multicast": False}
    assert api.user_options_from_env({"TIPCRPC_NETID": " "}) == {}
    for var, value in [("TIPCRPC_USER_PEERS", "10.0.0.2:http"), ("TIPCRPC_USER_PEERS", "example.org"),
                       ("TIPCRPC_USER_PEERS", "10.0.0.2:0"), ("TIPCRPC_USER_LOCAL_IP", "::1"),
                       ("TIPCRPC_USER_PORT", "70000"), ("TIPCRPC_NETID", "0"), ("TIPCRPC_NETID", "x"),
                       ("TIPCRPC_TOLERANCE_MS", "10"), ("TIPCRPC_USER_MULTICAST", "maybe"),
                       ("TIPCRPC_USER_BUNDLING", "2"),
                       ("TIPCRPC_USER_IDENTITY", "x" * 256)]:  # fmt: skip
        with pytest.raises(tipcrpc.UsageError, match=var):
            api.user_options_from_env({var: value})

    # _make_transport hands them to UserTransport
    import tipcrpc.transport.user as user_pkg

    got: dict[str, object] = {}
    monkeypatch.setattr(user_pkg, "UserTransport", lambda **kw: got.update(kw) or "made")
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert api._make_transport("user") == "made"
    assert got == api.user_options_from_env(env)
    monkeypatch.setenv("TIPCRPC_NETID", "10000")
    with pytest.raises(tipcrpc.UsageError, match=r"\$TIPCRPC_NETID: 10000 is outside 1..9999"):
        api._make_transport("user")


async def test_shared_user_transport_configured_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import socket

    pytest.importorskip("tipcrpc.transport.user")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free a moment ago; the transport binds it next
    monkeypatch.setenv("TIPCRPC_USER_PORT", str(port))
    monkeypatch.setenv("TIPCRPC_NETID", str(1000 + os.getpid() % 8999))  # a private cluster
    monkeypatch.setenv("TIPCRPC_TOLERANCE_MS", "800")
    async with tipcrpc.serve(svc, transport="user"), tipcrpc.connect("user") as client:
        assert client.transport.local_media == ("127.0.0.1", port)  # type: ignore[attr-defined]
        assert await client.options(timeout=5.0).call(svc, "hello", "env") == "hello env"


async def test_a_stub_typed_by_an_interface(memory_cluster) -> None:  # type: ignore[no-untyped-def]
    """Client side, only the interface is known: its methods are the stub's (streaming ones
    return streams); a server-side definition that disagrees with it is refused."""
    from typing import AsyncIterator, Protocol

    class ShopAPI(Protocol):
        async def price(self, item: str) -> int: ...

        def items(self, n: int) -> AsyncIterator[str]: ...

    served = tipcrpc.Service("test.rpc.api.shop")

    @served.method
    def price(item: str) -> int:
        return len(item)

    @served.method
    async def items(n: int) -> AsyncIterator[str]:
        for i in range(n):
            yield f"item{i}"

    async with tipcrpc.serve(served, transport="memory"), tipcrpc.connect("memory") as client:
        await client.wait_for(served)
        # a client that knows only the interface (a Service with no methods of its own)
        client_side = tipcrpc.Service("test.rpc.api.shop.client", type=served.type, interface=ShopAPI)
        stub = client.stub(client_side)
        assert await stub.price("abc") == 3
        assert [x async for x in stub.items(2)] == ["item0", "item1"]
        with pytest.raises(AttributeError):
            stub.nothing  # noqa: B018
        wrong = tipcrpc.Service("test.rpc.api.shop.wrong", interface=ShopAPI)

        @wrong.method
        def price(item: str) -> int:  # noqa: F811
            return 0

        with pytest.raises(tipcrpc.UsageError, match="items is not a method"):
            client.stub(wrong)
