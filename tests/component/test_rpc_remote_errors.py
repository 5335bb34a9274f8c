"""Remote exceptions end to end (memory transport): callers catch them by their own class."""

from __future__ import annotations

import pytest

import tipcrpc
from tipcrpc.transport.memory import MemoryCluster

from rpc_helpers import nodes

shop = tipcrpc.Service("test.rpc.shop")


@tipcrpc.remote_exception("tests.shop.OutOfStock")
class OutOfStock(Exception):
    def __init__(self, item: str, left: int) -> None:
        super().__init__(item, left)
        self.item, self.left = item, left


class NotRegistered(Exception):
    pass


STOCK = {"apple": 0, "banana": 3}


@shop.method
def buy(item: str) -> int:
    left = STOCK[item]  # KeyError for an unknown item
    if left == 0:
        raise OutOfStock(item, left)
    return left


@shop.method
async def weird(kind: str) -> None:
    if kind == "unregistered":
        raise NotRegistered("nobody knows me")
    if kind == "value":
        raise ValueError(f"bad {kind}")
    if kind == "unencodable":
        raise ValueError(object())  # args cannot be encoded
    raise PermissionError(13, "Permission denied", "/vault")


@shop.method
def stream_then_fail() -> object:
    yield 1
    raise OutOfStock("pear", 0)


async def test_handlers_exceptions_arrive_as_their_classes(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "srv", "cli") as (srv, cli):
        async with tipcrpc.serve(shop, transport=srv), tipcrpc.connect(cli) as client:
            with pytest.raises(OutOfStock) as info:
                await client.call(shop, "buy", "apple")
            assert (info.value.item, info.value.left) == ("apple", 0)
            assert isinstance(info.value, tipcrpc.RemoteException)
            assert info.value.remote_type == "tests.shop.OutOfStock"

            with pytest.raises(KeyError) as key_info:
                await client.call(shop, "buy", "durian")
            assert key_info.value.args == ("durian",)
            assert isinstance(key_info.value, tipcrpc.RemoteException)  # old handlers still catch it

            with pytest.raises(ValueError, match="bad value"):
                await client.call(shop, "weird", "value")
            with pytest.raises(PermissionError) as perm:
                await client.call(shop, "weird", "permission")
            assert (perm.value.errno, perm.value.filename) == (13, "/vault")

            with pytest.raises(tipcrpc.RemoteException) as opaque:
                await client.call(shop, "weird", "unregistered")
            assert type(opaque.value) is tipcrpc.RemoteException
            assert opaque.value.remote_type == f"{__name__}.NotRegistered"

            with pytest.raises(tipcrpc.RemoteException) as unenc:
                await client.call(shop, "weird", "unencodable")
            assert type(unenc.value) is tipcrpc.RemoteException and unenc.value.remote_type == "ValueError"

            assert await client.call(shop, "buy", "banana") == 3  # the server keeps serving


async def test_a_stream_that_raises_mid_way(memory_cluster: MemoryCluster) -> None:
    async with nodes(memory_cluster, "srv", "cli") as (srv, cli):
        async with tipcrpc.serve(shop, transport=srv), tipcrpc.connect(cli) as client:
            got = []
            with pytest.raises(OutOfStock):
                async for item in client.stream(shop, "stream_then_fail"):
                    got.append(item)
            assert got == [1]


async def test_tracebacks_travel_only_when_the_server_opts_in(memory_cluster) -> None:  # type: ignore[no-untyped-def]
    svc = tipcrpc.Service("test.rpc.remote_errors.tb")

    @svc.method
    def boom() -> None:
        raise RuntimeError("deep inside")

    for opt_in in (False, True):
        async with tipcrpc.serve(svc, transport="memory", send_tracebacks=opt_in), tipcrpc.connect("memory") as client:
            await client.wait_for(svc)
            with pytest.raises(tipcrpc.RemoteException) as info:
                await client.call(svc, "boom")
            text = info.value.remote_traceback
            if opt_in:
                assert text is not None and "deep inside" in text and "boom" in text
            else:
                assert text is None
