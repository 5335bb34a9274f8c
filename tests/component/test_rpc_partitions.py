"""Partitions under load heal, and the client's view of the service reconverges (memory transport).

Three servers and a client node; 16 callers keep idempotent and non-idempotent calls going
(unique tokens) while the client is cut off from one server and from another, each for longer
than the link tolerance, and healed again. Executions are recorded per token across all
servers. Checked: no idempotent call lost, no non-idempotent call run twice anywhere; while
cut off, a server's instance leaves the client's view, and after the heal it is back (the
name tables reconverge) and serves calls again.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import anyio

import tipcrpc
from rpc_helpers import nodes
from tipcrpc.testing import MemoryCluster

NAME = "test.partitions"
WORKERS = 16


def _service(label: str, seen: Counter[tuple[str, int]], served: Counter[str]) -> tipcrpc.Service:
    svc = tipcrpc.Service(NAME)

    @svc.method(idempotent=True)
    async def idem(token: int) -> list[object]:
        seen[("idem", token)] += 1
        served[label] += 1
        await asyncio.sleep(0)
        return [label, token]

    @svc.method
    async def once(token: int) -> list[object]:
        seen[("once", token)] += 1
        served[label] += 1
        await asyncio.sleep(0)
        return [label, token]

    return svc


async def test_partitions_under_load_heal_and_the_view_reconverges() -> None:
    cluster = MemoryCluster(seed=31, tolerance=0.2)
    seen: Counter[tuple[str, int]] = Counter()
    served: Counter[str] = Counter()
    outcomes: dict[tuple[str, int], object] = {}
    async with nodes(cluster, "s1", "s2", "s3", "cli") as (s1, s2, s3, cli):
        async with tipcrpc.serve(_service("s1", seen, served), transport=s1), \
                tipcrpc.serve(_service("s2", seen, served), transport=s2), \
                tipcrpc.serve(_service("s3", seen, served), transport=s3), \
                tipcrpc.connect(cli) as client, client.watch(NAME) as watch:  # fmt: skip
            await client.wait_for(NAME, 3, timeout=10.0)
            caller = client.options(timeout=10.0)
            tokens = iter(range(1, 10**9))
            stop = False
            completed = 0
            progress = asyncio.Event()

            async def worker(w: int) -> None:
                nonlocal completed
                i = 0
                while not stop:
                    token = next(tokens)
                    method = "idem" if (w + i) % 2 else "once"
                    i += 1
                    try:
                        outcomes[(method, token)] = await caller.call(NAME, method, token)
                    except tipcrpc.TipcRpcError as exc:
                        outcomes[(method, token)] = exc
                    completed += 1
                    if completed % 200 == 0:
                        progress.set()

            async def more_calls() -> None:
                for _ in range(2):  # at least 200 further calls complete
                    progress.clear()
                    await progress.wait()

            tasks = [asyncio.create_task(worker(w)) for w in range(WORKERS)]
            try:
                with anyio.fail_after(60):
                    await more_calls()
                    for victim in (s1, s2):
                        label = victim.own_node.identity
                        cluster.partition(cli, victim)
                        # After the tolerance the client's view drops the cut-off instance.
                        async for ev in watch:
                            if isinstance(ev, tipcrpc.ServiceDown) and ev.node == victim.own_node.addr:
                                break
                        before = served[label]
                        await more_calls()
                        assert served[label] == before, f"{label} served calls while cut off"
                        cluster.heal(cli, victim)
                        await client.wait_for(NAME, 3, timeout=10.0)  # reconverged
                        await more_calls()
                        assert served[label] > before, f"{label} serves no call after the heal"
            finally:
                stop = True
                await asyncio.gather(*tasks)
    await cluster.aclose()

    idem = {tok: r for (m, tok), r in outcomes.items() if m == "idem"}
    once = {tok: r for (m, tok), r in outcomes.items() if m == "once"}
    lost = [tok for tok, r in idem.items() if not (isinstance(r, list) and r[1] == tok)]
    twice = [tok for tok in once if seen[("once", tok)] > 1]
    failed = Counter(type(r).__name__ for r in once.values() if isinstance(r, Exception))
    print(f"\npartitions under load: {len(outcomes)} calls, idempotent lost {len(lost)}, "
          f"non-idempotent run twice {len(twice)}, non-idempotent failed {dict(failed)}")
    assert lost == [] and twice == []
    assert all(seen[("once", tok)] == 1 for tok, r in once.items() if isinstance(r, list))
    assert all(isinstance(r, (list, tipcrpc.TipcRpcError)) for r in once.values())
