"""Only nodes with the cluster key are admitted (real processes on loopback).

Three server processes share one netid: ``A`` has the right key, ``B`` none, ``C`` another
key. This process runs a node with the right key (``K``) and one without (``U``). Every
node hears every other's discovery, but:

* ``K`` links with ``A`` only and calls it; ``B``'s plain packets and ``C``'s and ``U``'s
  are dropped and counted (``crypto_rx_unkeyed``, ``crypto_rx_badauth``), on ``A`` too;
* ``U`` links with ``B`` only (the unkeyed cluster goes on working); keyed packets are
  malformed to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import tipcrpc
from tipcrpc.transport.user import UserTransport

pytest.importorskip("cryptography", reason="the cluster key needs the optional 'cryptography' package")

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("stall_node_proc.py")
KEY = "0x" + "5e" * 16 + "c0ffee01"
WRONG = "0x" + "5f" * 16 + "c0ffee01"


async def _start(netid: int, identity: str, name: str, key: str | None) -> subprocess.Popen[str]:
    args = [sys.executable, str(SCRIPT), "--netid", str(netid), "--identity", identity, "--name", name]
    if key is not None:
        args += ["--key", key]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = await anyio.to_thread.run_sync(proc.stdout.readline)
    assert line.startswith("READY"), f"{identity} failed to start: {line!r}"
    return proc


async def _until(cond, what: str) -> None:  # type: ignore[no-untyped-def]
    while not cond():
        await anyio.sleep(0.02)  # polling a counter: there is no event for "a packet was dropped"


async def test_only_nodes_with_the_key_are_admitted() -> None:
    netid = 1000 + (os.getpid() * 7919 + 17) % 8999
    tag = os.getpid()
    names = {n: f"test.key.{n}.{tag}" for n in "ABC"}
    procs: list[subprocess.Popen[str]] = []
    try:
        with anyio.fail_after(60):
            procs.append(await _start(netid, "key-srv-A", names["A"], KEY))
            procs.append(await _start(netid, "key-srv-B", names["B"], None))
            procs.append(await _start(netid, "key-srv-C", names["C"], WRONG))
            async with UserTransport(identity="key-cli-K", netid=netid, cluster_key=KEY) as k, \
                    UserTransport(identity="key-cli-U", netid=netid) as u, \
                    tipcrpc.connect(k) as kc, tipcrpc.connect(u) as uc:  # fmt: skip
                # Keyed: A answers. Unkeyed: B answers.
                assert await kc.options(timeout=10, wait_ready=True).call(names["A"], "whoami") == "key-srv-A"
                assert await uc.options(timeout=10, wait_ready=True).call(names["B"], "whoami") == "key-srv-B"
                ks = k.statistics
                # Several discovery rounds of B, C and U reached K and were dropped.
                await _until(lambda: ks()["crypto_rx_unkeyed"] >= 4 and ks()["crypto_rx_badauth"] >= 2, "drops on K")
                await _until(lambda: u.statistics()["malformed"] >= 4, "keyed packets dropped on U")
                srv_a = await kc.options(timeout=5).call(names["A"], "stats")
                k_stats, u_stats = ks(), u.statistics()
            assert k_stats["peers_up"] == 1 and k_stats["peers_up_total"] == 1, k_stats  # A only
            assert u_stats["peers_up"] == 1 and u_stats["peers_up_total"] == 1, u_stats  # B only
            assert k_stats["crypto_rx_ok"] > 0 and k_stats["crypto_tx"] > 0
            # A admitted K only and dropped the others' packets too.
            assert srv_a["peers_up"] == 1, srv_a
            assert srv_a["crypto_rx_unkeyed"] > 0 and srv_a["crypto_rx_badauth"] > 0, srv_a
            print(f"\nK dropped {k_stats['crypto_rx_unkeyed']} plain and {k_stats['crypto_rx_badauth']} "
                  f"wrong-key packets; A dropped {srv_a['crypto_rx_unkeyed']} and {srv_a['crypto_rx_badauth']}")  # fmt: skip
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
