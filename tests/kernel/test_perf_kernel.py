"""Round-trip cost of the kernel transport against raw RDM sockets (guest only).

Between two netns nodes of the session cluster, 64-byte datagrams, one in flight:

* raw blocking: a thread echoes with ``recvfrom``/``sendto`` on a blocking RDM socket,
  the client does the same (the floor: two syscalls per hop, no event loop);
* raw asyncio: ``loop.sock_recvfrom``/``sock_sendto`` on both sides (what the ktipc
  example does);
* KernelTransport: an echo endpoint (handler calls ``send``) and a client endpoint.

The figures and the transport/raw ratios are printed. Python in the guest is ~10x slower
than native, so only the ratios mean anything; the assertion is a loose sanity bound.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Tuple

from tipcrpc.addr import Scope, ServiceAddr, service_type
from tipcrpc.transport.base import Delivery, Returned
from tipcrpc.transport.kernel import KernelTransport
from tipcrpc.transport.kernel import netns as knetns
from tipcrpc.transport.kernel import wire

from ktipc_cluster import EthCluster, wait_published

N = 2000
PAYLOAD = b"x" * 64


def _raw_blocking(client_ns: str, server_ns: str, stype: int) -> float:
    server = knetns.create_socket(server_ns, wire.AF_TIPC, socket.SOCK_RDM)
    server.bind((wire.TIPC_ADDR_NAMESEQ, stype, 1, 1, int(Scope.CLUSTER)))
    client = knetns.create_socket(client_ns, wire.AF_TIPC, socket.SOCK_RDM)
    dest = (wire.TIPC_ADDR_NAME, stype, 1, 0)

    def echo() -> None:
        for _ in range(N + 1):
            data, peer = server.recvfrom(100)
            server.sendto(data, peer)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    try:
        client.settimeout(10)
        wait_published(client_ns, stype, {1}, 10)  # the publication has reached the client's node
        client.sendto(PAYLOAD, dest)
        client.recvfrom(100)
        t0 = time.perf_counter()
        for _ in range(N):
            client.sendto(PAYLOAD, dest)
            data, _ = client.recvfrom(100)
            assert data == PAYLOAD
        return (time.perf_counter() - t0) / N
    finally:
        thread.join(10)
        server.close()
        client.close()


async def _raw_asyncio(client_ns: str, server_ns: str, stype: int) -> float:
    loop = asyncio.get_running_loop()
    server = knetns.create_socket(server_ns, wire.AF_TIPC, socket.SOCK_RDM)
    server.setblocking(False)
    server.bind((wire.TIPC_ADDR_NAMESEQ, stype, 1, 1, int(Scope.CLUSTER)))
    client = knetns.create_socket(client_ns, wire.AF_TIPC, socket.SOCK_RDM)
    client.setblocking(False)
    dest = (wire.TIPC_ADDR_NAME, stype, 1, 0)

    async def echo() -> None:
        while True:
            data, peer = await loop.sock_recvfrom(server, 100)
            await loop.sock_sendto(server, data, peer)

    task = asyncio.ensure_future(echo())
    try:
        t0 = time.perf_counter()
        for _ in range(N):
            await loop.sock_sendto(client, PAYLOAD, dest)
            data, _ = await loop.sock_recvfrom(client, 100)
            assert data == PAYLOAD
        return (time.perf_counter() - t0) / N
    finally:
        task.cancel()
        server.close()
        client.close()


async def _transport(client_ns: str, server_ns: str, stype: int) -> Tuple[float, dict]:
    async with KernelTransport(netns=client_ns) as tc, KernelTransport(netns=server_ns) as ts:
        def echo(item: Delivery | Returned) -> None:
            assert isinstance(item, Delivery)
            server_ep.send(item.source, item.data)

        server_ep = await ts.open_endpoint(echo)
        name = ServiceAddr(stype, 1)
        await server_ep.publish(name)
        done = asyncio.get_running_loop().create_future()
        count = 0

        def on_reply(item: Delivery | Returned) -> None:
            nonlocal count
            assert isinstance(item, Delivery) and item.data == PAYLOAD
            count += 1
            if count < N:
                client_ep.send(name, PAYLOAD)
            elif not done.done():
                done.set_result(None)

        client_ep = await tc.open_endpoint(on_reply)
        from tipcrpc.testing.conformance import wait_published

        await wait_published(tc, name, server_ep.address)
        t0 = time.perf_counter()
        client_ep.send(name, PAYLOAD)
        await asyncio.wait_for(done, 60)
        return (time.perf_counter() - t0) / N, dict(tc.statistics())


async def test_round_trip_transport_vs_raw(eth_cluster: EthCluster) -> None:
    eth_cluster.restore_all()
    a, b = eth_cluster.nodes[0].netns, eth_cluster.nodes[1].netns
    base = service_type("tipcrpc.kernel.perf")
    raw_blocking = await asyncio.to_thread(_raw_blocking, a, b, base)
    raw_async = await _raw_asyncio(a, b, base + 1)
    ours, stats = await _transport(a, b, base + 2)
    print(
        f"\n[kernel perf, {N} round trips of 64 B between two netns nodes, guest]\n"
        f"  raw RDM blocking echo : {raw_blocking * 1e6:8.1f} us/rt\n"
        f"  raw RDM asyncio echo  : {raw_async * 1e6:8.1f} us/rt\n"
        f"  KernelTransport       : {ours * 1e6:8.1f} us/rt\n"
        f"  ratio transport / raw blocking = {ours / raw_blocking:.2f}, "
        f"transport / raw asyncio = {ours / raw_async:.2f}"
    )
    assert stats["sent"] == N and stats["received"] == N
    assert ours < 20 * raw_blocking
