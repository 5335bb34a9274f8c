"""The tipcrpc demo: two instances of a service, calls by name, one instance killed mid-load.

    ./dev demo                      # transport "auto": kernel AF_TIPC if usable, else the userspace node
    ./dev demo --transport memory   # everything in one process, on the in-process cluster

With a multi-process transport ("user" or "kernel") each server is a real process
(``examples/calc_server.py``) and the kill is a SIGKILL; with "memory" the servers are nodes
of an in-process cluster and the kill is ``cluster.kill(node)``. Either way the client
watches ``demo.calc`` (up/down events are printed as they arrive), calls by name, streams,
fans out to every instance, then runs 64 concurrent callers while one instance dies: every
call must complete (``add``/``whoami`` are idempotent, so in-flight calls move to the
surviving instance at once).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Awaitable, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import tipcrpc  # noqa: E402
from calc import calc  # noqa: E402
from tipcrpc.api import resolve_transport_kind  # noqa: E402

TOTAL_CALLS = 3000
CONCURRENCY = 64
KILL_AFTER = 1000


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def watch(client: tipcrpc.Client, up: asyncio.Event, down_at: list[float]) -> None:
    seen: set[tipcrpc.SocketAddr] = set()
    async for ev in client.watch("demo.calc"):
        if isinstance(ev, tipcrpc.ServiceUp):
            seen.add(ev.socket)
            say(f"watch: ServiceUp   {ev.service} {{{ev.type},{ev.lower},{ev.upper}}} at node {ev.node:08x} port {ev.port}")
        elif isinstance(ev, tipcrpc.ServiceDown):
            seen.discard(ev.socket)
            down_at.append(time.perf_counter())
            say(f"watch: ServiceDown {ev.service} {{{ev.type},{ev.lower},{ev.upper}}} at node {ev.node:08x} port {ev.port}")
        else:
            say("watch: snapshot complete")
        if len(seen) >= 2:
            up.set()


async def exercise(client: tipcrpc.Client, kill: Callable[[], Awaitable[None]]) -> bool:
    up, down_at = asyncio.Event(), []
    watcher = asyncio.create_task(watch(client, up, down_at))
    await asyncio.wait_for(up.wait(), 30)

    say(f"call by name: demo.calc add(1, 2) = {await client.options(timeout=5).call('demo.calc', 'add', 1, 2)}")
    stub = client.stub(calc)
    say(f"typed stub:   add(40, 2) = {await stub.add(40, 2)}")
    items = [i async for i in client.stream("demo.calc", "count", 5)]
    say(f"stream:       count(5) -> {items}")
    results = await client.options(timeout=5).call_all("demo.calc", "whoami")
    say("fan-out:      whoami on every instance -> " + ", ".join(f"{r.socket}: pid {r.value}" for r in results))

    say(f"load: {CONCURRENCY} concurrent callers, {TOTAL_CALLS} idempotent calls; one instance dies after {KILL_AFTER}")
    started, done, failures, by_pid = 0, 0, [], {}
    killed_at: list[float] = []
    first_after_kill: list[float] = []
    killing = asyncio.Event()

    async def caller() -> None:
        nonlocal started, done
        while started < TOTAL_CALLS:
            started += 1
            try:
                pid = await stub.whoami()
            except tipcrpc.TipcRpcError as exc:
                failures.append(exc)
                continue
            done += 1
            by_pid[pid] = by_pid.get(pid, 0) + 1
            if killed_at and not first_after_kill:
                first_after_kill.append(time.perf_counter())
            if done == KILL_AFTER:
                killing.set()

    async def killer() -> None:
        await killing.wait()
        killed_at.append(time.perf_counter())
        await kill()

    t0 = time.perf_counter()
    await asyncio.gather(killer(), *(caller() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - t0
    say(f"load done: {done} completed, {len(failures)} failed in {elapsed:.2f} s; answers per server pid: {by_pid}")
    if killed_at and down_at:
        say(f"instance loss seen by watch {1000 * (down_at[0] - killed_at[0]):.1f} ms after the kill")
    for exc in failures[:5]:
        say(f"failure: {type(exc).__name__}: {exc}")
    watcher.cancel()
    return not failures and done == TOTAL_CALLS


async def in_process() -> bool:
    from tipcrpc.transport.memory import MemoryCluster

    cluster = MemoryCluster(seed=1)
    async with AsyncExitStack() as stack:
        nodes = [await stack.enter_async_context(cluster.node(f"node{i}")) for i in (1, 2, 3)]
        for i, node in enumerate(nodes[:2], start=1):
            await stack.enter_async_context(tipcrpc.serve(calc, instance=i, transport=node))
        say("serving demo.calc instance 1 on node1 and instance 2 on node2 (in-process memory cluster)")
        client = await stack.enter_async_context(tipcrpc.connect(nodes[2]))

        async def kill() -> None:
            say("killing node1 (crash)")
            cluster.kill(nodes[0])

        return await exercise(client, kill)


async def processes(kind: str) -> bool:
    procs: list[asyncio.subprocess.Process] = []
    try:
        for i in (1, 2):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(HERE / "calc_server.py"), str(i), kind, stdout=asyncio.subprocess.PIPE
            )
            procs.append(proc)
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()  # type: ignore[union-attr]
            say(f"server process {proc.pid} serving demo.calc instance {i} over {kind}: {line}")
        async with tipcrpc.connect(kind) as client:

            async def kill() -> None:
                say(f"SIGKILL server process {procs[0].pid}")
                os.kill(procs[0].pid, signal.SIGKILL)

            ok = await exercise(client, kill)
            say(f"stopping server process {procs[1].pid} gracefully (SIGTERM: withdraw, drain, close)")
            procs[1].send_signal(signal.SIGTERM)
            await asyncio.wait_for(procs[1].wait(), 30)
            return ok
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transport", default="auto", help="auto (default), kernel, user or memory")
    args = parser.parse_args(argv)
    kind = resolve_transport_kind(args.transport)
    say(f"transport: {kind} (asked for {args.transport!r})")
    ok: Any = asyncio.run(in_process() if kind == "memory" else processes(kind))
    say("demo OK: every call completed" if ok else "demo FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
