"""SIGKILL of kernel-transport server processes under sustained load (ktipc guest).

The userspace scenario of ``tests/integration/test_kill_under_load.py`` on real AF_TIPC:
servers on two netns nodes of ``eth_cluster``, the client on the third; two kills, each
followed by a replacement (fewer calls than natively: Python in the emulated guest is ~10x
slower, and a server process takes seconds to start there). Counted per call across all servers (``tests/faultload.py``): no
idempotent call lost, no non-idempotent call run twice anywhere.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

import faultload
import tipcrpc
from ktipc_cluster import EthCluster
from tipcrpc.transport.kernel import KernelTransport


@pytest.mark.timeout(600)
async def test_sigkill_of_kernel_servers_under_load(eth_cluster: EthCluster, tmp_path: Path) -> None:
    await anyio.to_thread.run_sync(eth_cluster.restore_all)
    client_node, a, b = eth_cluster.nodes
    fleet = faultload.Fleet(tmp_path, lambda n: ["--netns", (a, b)[n % 2].netns])
    kill_at = (50, 120)
    try:
        with anyio.fail_after(540):
            for _ in range(2):  # process start-up is slow in the guest: one per node
                await fleet.start()
            async with KernelTransport(netns=client_node.netns) as t, tipcrpc.connect(t) as client:
                await client.wait_for(faultload.SERVICE, 2, timeout=60.0)
                outcomes = await faultload.run(client, fleet, workers=8, kill_at=kill_at, total=200, timeout=60.0)
                stats = client.statistics()
                moved = stats["retries"] + stats["failovers"]
    finally:
        fleet.stop()
    faultload.check(outcomes, fleet.executions(), len(kill_at), "kernel transport", moved)
