"""Values end to end (memory transport): what the codec round-trips reaches the handler and
back; what it refuses fails on the sending side with a message that says so."""

from __future__ import annotations

import dataclasses
import datetime
import zoneinfo
from typing import Any

import pytest

import tipcrpc
from tipcrpc.transport.memory import MemoryCluster

from rpc_helpers import nodes

values = tipcrpc.Service("test.rpc.values")
SEEN: list[Any] = []


@dataclasses.dataclass
class Point:
    x: int
    y: int


@values.method
def echo(value: Any) -> Any:
    SEEN.append(value)
    return value


@values.method
def give_unencodable() -> object:
    SEEN.append("ran")
    return object()


async def test_tuple_keys_sets_and_zones_travel(memory_cluster: MemoryCluster) -> None:
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    cases: list[Any] = [
        {(1, 2): "v"},
        {"a", (1, "b")},
        frozenset({3}),
        datetime.datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=paris),
    ]
    async with nodes(memory_cluster, "srv", "cli") as (srv, cli):
        async with tipcrpc.serve(values, transport=srv), tipcrpc.connect(cli) as client:
            for value in cases:
                SEEN.clear()
                got = await client.call(values, "echo", value)
                assert got == value and type(got) is type(value) and SEEN == [value]
            got = await client.call(values, "echo", cases[-1])
            assert got.tzinfo is paris and got.fold == 1


async def test_unencodable_values_are_refused_where_they_are_made(memory_cluster: MemoryCluster) -> None:
    class Other(datetime.tzinfo):
        def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta:
            return datetime.timedelta(0)

    async with nodes(memory_cluster, "srv", "cli") as (srv, cli):
        async with tipcrpc.serve(values, transport=srv) as server, tipcrpc.connect(cli) as client:
            SEEN.clear()
            with pytest.raises(tipcrpc.CodecError, match="time zone"):
                await client.call(values, "echo", datetime.datetime(2026, 1, 1, tzinfo=Other()))
            with pytest.raises(tipcrpc.CodecError, match="dataclasses.asdict"):
                await client.call(values, "echo", Point(1, 2))
            assert SEEN == [] and server.statistics()["received"] == 0  # nothing was sent

            with pytest.raises(tipcrpc.RemoteException, match="result cannot be encoded") as info:
                await client.call(values, "give_unencodable")
            assert SEEN == ["ran"]  # the handler ran: the caller is told it was the result
            assert info.value.remote_type == "tipcrpc.errors.CodecError"
            assert not isinstance(info.value, tipcrpc.RemoteProtocolError)

