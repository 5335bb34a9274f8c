"""A handler that blocks its event loop for 10 s does not get its node declared dead.

Real processes on loopback: ``stall_node_proc.py`` serves a sync ``block(seconds)`` that
calls ``time.sleep`` — the server's whole event loop stops. The client (this process) sends
``block(10)`` and five calls queued behind it on the same link. The server's keepalive
thread (``transport/user/keepalive.py``) keeps its link alive, so:

* every call completes (the blocked one and the ones queued behind it);
* no ``ServiceDown`` is seen, no peer is lost on either side (the server does not declare
  the client dead after its own stall either);
* a SIGKILLed server is still detected: at once on the same host (liveness socket), within
  link tolerance across hosts.

Two scenarios run at the same time: *same host* (liveness sockets on) and *cross host*
(liveness off on both nodes — different identities on loopback, as two hosts would be), so
the same-host shortcut cannot be what keeps the cross-host node alive. A control with the
keepalive thread disabled shows the failure this fixes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

import tipcrpc
from tipcrpc.transport.user import UserTransport

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("stall_node_proc.py")
BLOCK_S = 10.0
TOLERANCE_MS = 1500


def _netid(offset: int) -> int:
    return 1000 + (os.getpid() * 7919 + offset * 131) % 8999


async def _start(netid: int, identity: str, name: str, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--netid", str(netid), "--identity", identity, "--name", name,
         "--tolerance-ms", str(TOLERANCE_MS), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await anyio.to_thread.run_sync(proc.stdout.readline)
    assert line.startswith("READY"), f"server {identity} failed to start: {line!r}"
    return proc


class _Recorder:
    """Every watch event of one service, from a background task."""

    def __init__(self, client: tipcrpc.Client, name: str) -> None:
        self.events: list[object] = []
        self.up = asyncio.Event()
        self.down = asyncio.Event()
        self.down_at: float | None = None
        self._watch = client.watch(name)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for ev in self._watch:
            self.events.append(ev)
            if isinstance(ev, tipcrpc.ServiceUp):
                self.up.set()
            elif isinstance(ev, tipcrpc.ServiceDown):
                self.down_at = time.perf_counter()
                self.down.set()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._watch.aclose()


async def _blocked_server_survives(tag: str, *, liveness: bool, offset: int) -> dict[str, float]:
    netid = _netid(offset)
    name = f"test.stall.{tag}.{os.getpid()}"
    identity = f"stall-srv-{tag}"
    extra = () if liveness else ("--no-liveness",)
    proc = await _start(netid, identity, name, *extra)
    try:
        async with UserTransport(
            identity=f"stall-cli-{tag}", netid=netid, liveness=liveness, tolerance_ms=TOLERANCE_MS
        ) as t, tipcrpc.connect(t) as client:
            rec = _Recorder(client, name)
            await rec.up.wait()
            t0 = time.perf_counter()
            # Same link, in order: block() runs first and stops the server's loop; the
            # whoami() calls wait in its socket behind it.
            blocked = asyncio.create_task(client.options(timeout=BLOCK_S + 20).call(name, "block", BLOCK_S))
            queued = [asyncio.create_task(client.options(timeout=BLOCK_S + 20).call(name, "whoami")) for _ in range(5)]
            results = await asyncio.gather(blocked, *queued, return_exceptions=True)
            elapsed = time.perf_counter() - t0
            assert results == [identity] * 6, results
            assert elapsed >= BLOCK_S, elapsed
            assert not rec.down.is_set(), rec.events
            assert t.statistics()["peers_lost_total"] == 0
            srv = await client.options(timeout=5.0).call(name, "stats")
            assert srv["peers_lost_total"] == 0, srv  # the server did not judge us by its own stall
            assert srv["keepalive_sent"] > 0, srv
            assert srv["keepalive_longest_stall_ms"] >= BLOCK_S * 1000 * 0.8, srv
            if not liveness:
                # Nothing same-host helped: neither side watched the other's process.
                assert t.statistics().get("liveness_watched", 0) == 0
                assert srv["liveness_watched"] == 0, srv

            # A dead process is still detected: SIGKILL (the keepalive thread dies with it).
            t_kill = time.perf_counter()
            proc.kill()
            with anyio.fail_after(10):
                await rec.down.wait()
            assert rec.down_at is not None
            detect = rec.down_at - t_kill
            await rec.close()
            return {"elapsed": elapsed, "detect": detect, "keepalive_sent": srv["keepalive_sent"]}
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def test_a_10s_blocked_loop_is_not_a_dead_node_same_host_and_cross_host() -> None:
    with anyio.fail_after(90):
        same, cross = await asyncio.gather(
            _blocked_server_survives("samehost", liveness=True, offset=1),
            _blocked_server_survives("crosshost", liveness=False, offset=2),
        )
    print(f"\nsame host:  {BLOCK_S:.0f} s block survived, all 6 calls in {same['elapsed']:.2f} s; "
          f"SIGKILL detected in {same['detect'] * 1000:.1f} ms (liveness socket)")  # fmt: skip
    print(f"cross host: {BLOCK_S:.0f} s block survived ({cross['keepalive_sent']} keepalives), "
          f"all 6 calls in {cross['elapsed']:.2f} s; SIGKILL detected in {cross['detect'] * 1000:.0f} ms "
          f"(link tolerance {TOLERANCE_MS} ms)")  # fmt: skip
    assert same["detect"] < 0.5
    # Across hosts only link tolerance can tell: not before it, and not much after it.
    tol = TOLERANCE_MS / 1000
    assert 0.75 * tol < cross["detect"] < 2.0 * tol


async def test_control_without_keepalive_a_blocked_loop_is_declared_dead() -> None:
    """The failure the keepalive thread fixes: the blocked call fails, watchers see ServiceDown."""
    netid = _netid(3)
    name = f"test.stall.control.{os.getpid()}"
    proc = await _start(netid, "stall-srv-control", name, "--no-liveness", "--no-keepalive")
    try:
        with anyio.fail_after(60):
            async with UserTransport(
                identity="stall-cli-control", netid=netid, liveness=False, tolerance_ms=TOLERANCE_MS
            ) as t, tipcrpc.connect(t) as client:
                rec = _Recorder(client, name)
                await rec.up.wait()
                blocked = asyncio.create_task(client.options(timeout=30).call(name, "block", 4.0))
                await rec.down.wait()
                with pytest.raises(tipcrpc.PeerLost):
                    await blocked
                assert t.statistics()["peers_lost_total"] >= 1
                await rec.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
