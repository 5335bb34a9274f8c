"""Failover: what happens to a call whose server dies, or stops, while it runs.

    python examples/failover.py

Three scenes on an in-process cluster (``MemoryCluster``):

1. An **idempotent** call is running on node ``s1-slow`` when that node crashes: the client
   re-sends it to the instance on node ``s1-fast`` at once; the caller just gets the answer.
2. A **non-idempotent** call is running on ``s2-slow`` when it crashes: it may have had an
   effect, so it is not repeated even though ``s2-fast`` could serve it — the caller gets
   ``PeerLost`` immediately (no timeout).
3. A non-idempotent call is running on ``s3`` when that server stops **gracefully**: the
   name is withdrawn, the client probes the socket, learns the call is still in progress,
   keeps waiting, and gets the answer once the drain lets the handler finish.
"""

from __future__ import annotations

import asyncio

import anyio

import tipcrpc
from tipcrpc.transport.memory import MemoryCluster

NAME = "example.jobs"


def define(label: str, gate: asyncio.Event | None, started: asyncio.Event) -> tipcrpc.Service:
    """One server's definition: its handlers wait for ``gate`` (if given) before answering.

    (Several definitions of one service only because every server lives in this process.)
    """
    svc = tipcrpc.Service(NAME)

    @svc.method(idempotent=True)
    async def render(page: int) -> str:
        started.set()
        if gate is not None:
            await gate.wait()
        return f"page {page} rendered by {label}"

    @svc.method  # not idempotent: charging twice would be wrong
    async def charge(amount: int) -> str:
        started.set()
        if gate is not None:
            await gate.wait()
        return f"charged {amount} on {label}"

    return svc


async def wait_for_sockets(client: tipcrpc.Client, count: int) -> None:
    """Wait until ``count`` sockets publish the service as seen from the client's node."""
    sockets: set[tipcrpc.SocketAddr] = set()
    with anyio.fail_after(5):
        async with client.watch(NAME) as events:
            async for ev in events:
                if isinstance(ev, tipcrpc.ServiceUp):
                    sockets.add(ev.socket)
                elif isinstance(ev, tipcrpc.ServiceDown):
                    sockets.discard(ev.socket)
                if len(sockets) >= count:
                    return


async def call_while_only(client: tipcrpc.Client, method: str, arg: int, started: asyncio.Event) -> asyncio.Task[str]:
    """Start a call while one server is up, so it lands there; return once its handler runs."""
    task = asyncio.create_task(client.options(timeout=5.0).call(NAME, method, arg))
    with anyio.fail_after(5):
        await started.wait()
    return task


async def crash_scene(client: tipcrpc.Client, cluster: MemoryCluster, method: str, arg: int, tag: str) -> str:
    """Run ``method`` on node ``<tag>-slow``, start a second server, crash the first node."""
    gate, started = asyncio.Event(), asyncio.Event()
    async with cluster.node(f"{tag}-slow") as slow, cluster.node(f"{tag}-fast") as fast:
        async with tipcrpc.serve(define(slow.own_node.identity, gate, started), transport=slow):
            await wait_for_sockets(client, 1)
            task = await call_while_only(client, method, arg, started)
            async with tipcrpc.serve(define(fast.own_node.identity, None, asyncio.Event()), transport=fast):
                await wait_for_sockets(client, 2)  # another instance is available now
                cluster.kill(slow)
                try:
                    return await task
                except tipcrpc.TipcRpcError as exc:
                    return f"{type(exc).__name__}: {exc}"
                finally:
                    # In this one process the crashed server object is still there, its handler
                    # blocked on the gate; let it finish (its reply goes nowhere) so that
                    # leaving its `serve` block does not wait for the drain timeout.
                    gate.set()


async def main() -> None:
    cluster = MemoryCluster(seed=1)
    async with cluster.node("client") as cnode, tipcrpc.connect(cnode) as client:
        # 1. idempotent call, server node crashes
        outcome = await crash_scene(client, cluster, "render", 7, "s1")
        print("crashed the node running an idempotent call; the call moved:", outcome)

        # 2. non-idempotent call, server node crashes
        outcome = await crash_scene(client, cluster, "charge", 1, "s2")
        print("crashed the node running a non-idempotent call; it failed at once:", outcome)
        assert outcome.startswith("PeerLost")

        # 3. non-idempotent call, server stops gracefully
        async with cluster.node("s3") as s3:
            started, finish = asyncio.Event(), asyncio.Event()
            server = tipcrpc.serve(define("s3", finish, started), transport=s3, drain_timeout=5.0)
            await server.__aenter__()
            await wait_for_sockets(client, 1)
            task = await call_while_only(client, "charge", 3, started)
            stopping = asyncio.create_task(server.__aexit__(None, None, None))  # withdraw, drain, close
            await wait_for_sockets_gone(client)
            print("s3 withdrew its name while the call runs; the client keeps waiting")
            finish.set()  # let the handler finish inside the drain
            print("graceful stop:", await task)
            await stopping
        print("client statistics:", {k: v for k, v in client.statistics().items() if v})
    print("failover example done")


async def wait_for_sockets_gone(client: tipcrpc.Client) -> None:
    """Wait until nothing publishes the service any more."""
    sockets: set[tipcrpc.SocketAddr] = set()
    with anyio.fail_after(5):
        async with client.watch(NAME) as events:
            async for ev in events:
                if isinstance(ev, tipcrpc.ServiceUp):
                    sockets.add(ev.socket)
                elif isinstance(ev, tipcrpc.ServiceDown):
                    sockets.discard(ev.socket)
                if ev is tipcrpc.SNAPSHOT_COMPLETE or isinstance(ev, tipcrpc.ServiceDown):
                    if not sockets:
                        return


if __name__ == "__main__":
    asyncio.run(main())
