"""Three real processes on loopback form a userspace TIPC cluster.

This process is the client node; two subprocesses (``user_node_proc.py``) serve the same
service name. Calls by name round-robin over both; after one server is SIGKILLed its
publication disappears on the client within milliseconds (the liveness socket sees the
dead process's EOF — no link tolerance wait) and calls fail over to the survivor; a
graceful stop (SIGTERM) withdraws the survivor's name at once. The second test runs the
same scenario through the public RPC API (``tipcrpc.serve``/``tipcrpc.connect``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

import tipcrpc
from tipcrpc.addr import NODE_STATE, U32_MAX, ServiceAddr, ServiceRange, SocketAddr
from tipcrpc.errors import ServiceUnreachable
from tipcrpc.events import NodeDown, Published, Withdrawn
from tipcrpc.transport.base import Delivery
from tipcrpc.transport.inbox import Inbox
from tipcrpc.transport.user import UserTransport

SCRIPT = Path(__file__).with_name("user_node_proc.py")
STYPE = 0x7C0FFEE0
#: The brief's target is "withdrawn on survivors within 10 ms"; asserted with headroom for
#: loaded CI machines. The measured figure is printed (pytest -s).
KILL_DETECTION_LIMIT_S = 0.050


def _netid() -> int:
    return 1000 + (os.getpid() * 7919) % 8999


async def _start_server(netid: int, identity: str) -> tuple[subprocess.Popen[str], SocketAddr]:
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--netid", str(netid), "--identity", identity, "--serve", f"{STYPE}:1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = await anyio.to_thread.run_sync(proc.stdout.readline)
    fields = line.split()
    assert fields and fields[0] == "READY", f"server {identity} failed to start: {line!r}"
    return proc, SocketAddr(int(fields[1], 16), int(fields[2]))


async def _call(ep: object, inbox: Inbox, n: int) -> list[bytes]:
    replies = []
    for i in range(n):
        ep.send(ServiceAddr(STYPE, 1), b"req%d" % i)  # type: ignore[attr-defined]
        got = await inbox.get()
        assert isinstance(got, Delivery), got
        replies.append(got.data)
    return replies


async def test_kill_and_graceful_stop_across_processes() -> None:
    netid = _netid()
    procs: list[subprocess.Popen[str]] = []
    try:
        with anyio.fail_after(30):
            p1, s1 = await _start_server(netid, "srv-one")
            procs.append(p1)
            p2, s2 = await _start_server(netid, "srv-two")
            procs.append(p2)
            async with UserTransport(identity="client", netid=netid) as client:
                name = ServiceRange(STYPE, 1, 1)
                sub = await client.subscribe(name)
                nodes = await client.subscribe(ServiceRange(NODE_STATE, 0, U32_MAX))
                present: set[SocketAddr] = set()
                async for ev in sub:
                    if isinstance(ev, Published):
                        present.add(ev.socket)
                    if present >= {s1, s2}:
                        break
                inbox = Inbox()
                ep = await client.open_endpoint(inbox)

                # Calls by name: kernel-style round-robin over both servers.
                replies = await _call(ep, inbox, 10)
                assert {r.split(b"|")[0] for r in replies} == {b"srv-one", b"srv-two"}

                # SIGKILL one server: its publication is withdrawn on the client at once.
                t0 = time.perf_counter()
                p1.send_signal(signal.SIGKILL)
                async for ev in sub:
                    if ev == Withdrawn(name, s1):
                        break
                dt = time.perf_counter() - t0
                print(f"\nSIGKILL -> Withdrawn on the client: {dt * 1000:.2f} ms")
                assert dt < KILL_DETECTION_LIMIT_S
                async for ev in nodes:
                    if ev == NodeDown(s1.node):
                        break

                # Calls fail over: every one now reaches the survivor.
                replies = await _call(ep, inbox, 6)
                assert {r.split(b"|")[0] for r in replies} == {b"srv-two"}

                # Graceful stop: the name goes away at once, then sends fail synchronously.
                t0 = time.perf_counter()
                p2.send_signal(signal.SIGTERM)
                async for ev in sub:
                    if ev == Withdrawn(name, s2):
                        break
                dt_graceful = time.perf_counter() - t0
                print(f"SIGTERM (graceful close) -> Withdrawn on the client: {dt_graceful * 1000:.2f} ms")
                assert dt_graceful < 1.0
                with pytest.raises(ServiceUnreachable):
                    ep.send(ServiceAddr(STYPE, 1), b"anyone?")
                await sub.aclose()
                await nodes.aclose()
            assert p2.stdout is not None
            rest = await anyio.to_thread.run_sync(p2.stdout.read)
            assert "CLOSED" in rest
            assert await anyio.to_thread.run_sync(p2.wait) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


RPC_NAME = "test.integration.user.rpc"


async def _start_rpc_server(netid: int, identity: str) -> tuple[subprocess.Popen[str], SocketAddr]:
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--netid", str(netid), "--identity", identity, "--rpc", RPC_NAME],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = await anyio.to_thread.run_sync(proc.stdout.readline)
    fields = line.split()
    assert fields and fields[0] == "READY", f"server {identity} failed to start: {line!r}"
    return proc, SocketAddr(int(fields[1], 16), int(fields[2]))


async def test_rpc_failover_across_processes() -> None:
    """The same scenario through the public RPC API (tipcrpc.connect over UserTransport)."""
    netid = _netid() + 1
    procs: list[subprocess.Popen[str]] = []
    try:
        with anyio.fail_after(30):
            p1, s1 = await _start_rpc_server(netid, "rpc-one")
            procs.append(p1)
            p2, s2 = await _start_rpc_server(netid, "rpc-two")
            procs.append(p2)
            async with UserTransport(identity="rpc-client", netid=netid) as t, tipcrpc.connect(t) as client:
                watch = client.watch(RPC_NAME)
                up: set[SocketAddr] = set()
                async for ev in watch:
                    if isinstance(ev, tipcrpc.ServiceUp):
                        up.add(ev.socket)
                    if up >= {s1, s2}:
                        break
                whos = {await client.options(timeout=5.0).call(RPC_NAME, "whoami") for _ in range(10)}
                assert whos == {"rpc-one", "rpc-two"}

                # Long non-idempotent calls in flight on both servers, then SIGKILL one.
                slow = [asyncio.create_task(client.options(timeout=10.0).call(RPC_NAME, "slow", 0.5)) for _ in range(4)]
                await asyncio.sleep(0.05)  # let the calls reach the servers (no sync point exists)
                t0 = time.perf_counter()
                p1.send_signal(signal.SIGKILL)
                async for ev in watch:
                    if isinstance(ev, tipcrpc.ServiceDown) and ev.socket == s1:
                        break
                dt = time.perf_counter() - t0
                print(f"\nRPC: SIGKILL -> ServiceDown on the client: {dt * 1000:.2f} ms")
                assert dt < KILL_DETECTION_LIMIT_S
                results = await asyncio.gather(*slow, return_exceptions=True)
                # Calls held by the dead server fail typed (never started again: not
                # idempotent); the others complete on the survivor.
                assert all(r == "rpc-two" or isinstance(r, tipcrpc.PeerLost) for r in results), results
                assert any(isinstance(r, tipcrpc.PeerLost) for r in results), results

                # New calls go to the survivor only.
                whos = {await client.options(timeout=5.0).call(RPC_NAME, "whoami") for _ in range(6)}
                assert whos == {"rpc-two"}

                p2.send_signal(signal.SIGTERM)
                async for ev in watch:
                    if isinstance(ev, tipcrpc.ServiceDown) and ev.socket == s2:
                        break
                with pytest.raises(tipcrpc.TipcRpcError):
                    await client.options(timeout=0.5).call(RPC_NAME, "whoami")
                await watch.aclose()
            assert await anyio.to_thread.run_sync(p2.wait) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
