"""Sharding: two servers split a shard space, clients route by key, fan-out reaches both.

    python examples/sharding.py

A key-value service owns the shard space 0..1023 (TIPC instances). Server A publishes
``{type, 0, 511}``, server B ``{type, 512, 1023}``; each holds the keys of its shards.
The client computes a key's shard and passes it as ``key=`` (an int key *is* the instance),
so every call lands on the server that owns the key, then uses ``call_all`` to ask every
shard server for its key count.

Everything runs in this process on an in-process TIPC cluster (``MemoryCluster``) with three
nodes; on a real cluster each server would be its own process and ``transport=`` would be
left at its default.
"""

from __future__ import annotations

import asyncio
import hashlib

import anyio

import tipcrpc
from tipcrpc.transport.memory import MemoryCluster

NAME = "example.kv"
SHARDS = 1024


def shard_of(key: str) -> int:
    """The shard (instance) owning ``key``: SHA-256 of the key modulo the shard count."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % SHARDS


def make_shard_service(label: str) -> tipcrpc.Service:
    """One server's definition of the service, with its own storage.

    (Two definitions of one service only because both servers live in this process; a
    real shard server defines the service once, at module level.)
    """
    kv = tipcrpc.Service(NAME)
    data: dict[str, str] = {}

    @kv.method(idempotent=True)
    def put(key: str, value: str) -> str:
        data[key] = value
        return label

    @kv.method(idempotent=True)
    def get(key: str) -> tuple[str, str | None]:
        return label, data.get(key)

    @kv.method(idempotent=True)
    def size() -> int:
        return len(data)

    return kv


async def wait_for_sockets(client: tipcrpc.Client, service: str, count: int) -> None:
    """Wait until ``count`` sockets publish ``service`` as seen from the client's node."""
    sockets: set[tipcrpc.SocketAddr] = set()
    with anyio.fail_after(5):  # TimeoutError if they do not show up
        async with client.watch(service) as events:
            async for ev in events:
                if isinstance(ev, tipcrpc.ServiceUp):
                    sockets.add(ev.socket)
                elif isinstance(ev, tipcrpc.ServiceDown):
                    sockets.discard(ev.socket)
                if len(sockets) >= count:
                    return


async def main() -> None:
    cluster = MemoryCluster(seed=1)
    async with cluster.node("shard-a") as node_a, cluster.node("shard-b") as node_b, cluster.node("client") as node_c:
        async with (
            tipcrpc.serve(make_shard_service("A"), instances=range(0, 512), transport=node_a),
            tipcrpc.serve(make_shard_service("B"), instances=range(512, 1024), transport=node_b),
            tipcrpc.connect(node_c) as client,
        ):
            print("shard server A publishes instances 0..511, shard server B 512..1023")
            await wait_for_sockets(client, NAME, 2)

            users = [f"user{i}" for i in range(12)]
            for user in users:
                owner = await client.options(key=shard_of(user)).call(NAME, "put", user, f"profile of {user}")
                print(f"put {user:7} -> shard {shard_of(user):4} on server {owner}")

            # While the whole shard space 0..1023 is published, a string key hashes to the same
            # instance as shard_of(); an int key keeps that mapping even if a server is down.
            assert await client.options(key="user3").call(NAME, "get", "user3") == await client.options(key=shard_of("user3")).call(NAME, "get", "user3")

            results = await client.options(timeout=2.0).call_all(NAME, "size")
            print("fan-out: keys per shard server:",
                  ", ".join(f"{{{r.range.lower}..{r.range.upper}}} -> {r.unwrap()}" for r in results))  # fmt: skip
            assert sum(r.unwrap() for r in results) == len(users)

            for user in users:
                label, value = await client.options(key=shard_of(user)).call(NAME, "get", user)
                assert value == f"profile of {user}"
                assert label == ("A" if shard_of(user) < 512 else "B")
            print("every key reached its owner")


if __name__ == "__main__":
    asyncio.run(main())
