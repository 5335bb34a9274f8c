"""SIGKILL of server processes under sustained load, userspace transport on loopback.

Three server processes, 32 callers; three times a live server is SIGKILLed and a
replacement started. Counted per call across all servers (``tests/faultload.py``): no
idempotent call lost, no non-idempotent call run twice anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

import faultload
import tipcrpc
from tipcrpc.transport.user import UserTransport

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


async def test_sigkill_of_servers_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    netid = 1000 + (os.getpid() * 61) % 8999
    fleet = faultload.Fleet(tmp_path, lambda n: ["--netid", str(netid), "--identity", f"flt{netid}-{n}"])
    kill_at = (400, 1200, 2000)
    try:
        with anyio.fail_after(400):
            for _ in range(3):
                await fleet.start()
            async with UserTransport(identity=f"fltcli{netid}", netid=netid, discovery_wait=0.0) as t, \
                    tipcrpc.connect(t) as client:  # fmt: skip
                await client.wait_for(faultload.SERVICE, 3, timeout=30.0)
                outcomes = await faultload.run(client, fleet, workers=32, kill_at=kill_at, total=2800, timeout=20.0)
                stats = client.statistics()
                moved = stats["retries"] + stats["failovers"]
    finally:
        fleet.stop()
    faultload.check(outcomes, fleet.executions(), len(kill_at), "user transport", moved)
