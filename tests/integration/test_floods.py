"""One-way floods and slow stream consumers keep memory bounded (real processes, loopback).

Each side runs in its own process (``flood_proc.py``) over the userspace transport, so the
peak RSS figures are that side's alone; they are printed (``pytest -s``).

* 100 000 notifications as fast as ``client.notify`` lets the client send them: every one is
  run by the server (nothing lost), the server's memory stays flat, and — the part that does
  not hold yet — the client's memory does not grow with the flood.
* A stream of 80 MiB (20 000 × 4 KiB items) read by a slow consumer: the producer waits for
  credit, so neither side's memory grows with the amount streamed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

SCRIPT = Path(__file__).with_name("flood_proc.py")
NOTIFICATIONS = 100_000
#: What a side may grow by (peak RSS, MiB) while the flood or the stream goes through it.
GROWTH_LIMIT_MIB = 32

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _netid(offset: int) -> int:
    return 1000 + (os.getpid() * 37 + offset) % 8999


def _server(netid: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "serve", "--netid", str(netid), "--identity", f"fsrv{netid}"],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "READY", line
    return proc


def _run_client(netid: int, *args: str) -> list[list[int]]:
    out = subprocess.run([sys.executable, str(SCRIPT), *args, "--netid", str(netid), "--identity", f"fcli{netid}"],
                         capture_output=True, text=True, timeout=500)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return [[int(x) for x in line.split()[1:]] for line in out.stdout.splitlines()]


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def notify_flood() -> Iterator[dict[str, object]]:
    """Run the flood once; the tests below read its figures."""
    netid = _netid(1)
    server = _server(netid)
    try:
        lines = _run_client(netid, "notify", "--count", str(NOTIFICATIONS), "--report-every", "10000")
    finally:
        _stop(server)
    progress = lines[:-1]  # [sent, client peak RSS KiB, notifications remembered by the client]
    sent, got, client_rss, server_rss = lines[-1]
    print(f"\nnotify flood: {sent} sent, {got} run by the server; peak RSS client "
          f"{progress[0][1] / 1024:.0f} MiB after 10 000 -> {client_rss / 1024:.0f} MiB after {sent}, "
          f"server {server_rss / 1024:.0f} MiB; most notifications remembered by the client at once: "
          f"{max(p[2] for p in progress)}")  # fmt: skip
    yield {"sent": sent, "got": got, "client_rss": client_rss, "server_rss": server_rss, "progress": progress}


def test_a_notification_flood_is_delivered_whole(notify_flood: dict) -> None:
    assert notify_flood["got"] == notify_flood["sent"] == NOTIFICATIONS, {k: v for k, v in notify_flood.items() if k != "progress"}


@pytest.mark.xfail(
    strict=False,
    reason="seen once: the server's peak RSS reached 668 MiB when the flood ran inside a full suite "
    "on a machine with load ~25 (46 MiB when run alone); where the server queues is not yet found "
    "(the notifications are run inline; suspects: the userspace link's receive side acking "
    "messages the process has not yet handled, or UDP reassembly under drops)",
)
def test_a_notification_flood_leaves_the_server_flat(notify_flood: dict) -> None:
    # The server runs each notification inline as it arrives: it should hold none of them.
    assert notify_flood["server_rss"] < 100 * 1024, f"server peak RSS {notify_flood['server_rss'] / 1024:.0f} MiB"


#: The bound proposed for notifications a client remembers at once (for re-sending one that
#: comes back undeliverable); today it is the send rate times NOTIFY_RETRY_WINDOW_S.
REMEMBERED_NOTIFICATIONS_BOUND = 1024


def test_a_notification_flood_does_not_grow_the_client(notify_flood: dict) -> None:
    most = max(p[2] for p in notify_flood["progress"])
    assert most <= REMEMBERED_NOTIFICATIONS_BOUND, f"{most} notifications remembered by the client at once"


def test_a_slow_stream_consumer_keeps_both_sides_flat() -> None:
    netid = _netid(2)
    server = _server(netid)
    try:
        # Sizes: 20 000 items of 4 KiB = 80 MiB streamed, far above the growth limit.
        small = _run_client(netid, "stream", "--items", "500", "--size", "4096")[-1]
        big = _run_client(netid, "stream", "--items", "20000", "--size", "4096", "--consume-every", "1")[-1]
    finally:
        _stop(server)
    assert small[1] == 500 and big[1] == 20_000
    client_small, server_small = small[2], small[3]
    client_big, server_big = big[2], big[3]
    print(f"\nslow stream consumer: 80 MiB streamed; peak RSS client {client_big / 1024:.0f} MiB "
          f"(2 MiB run: {client_small / 1024:.0f}), server {server_big / 1024:.0f} MiB "
          f"(after the 2 MiB run: {server_small / 1024:.0f})")  # fmt: skip
    assert (server_big - server_small) / 1024 < GROWTH_LIMIT_MIB
    assert (client_big - client_small) / 1024 < GROWTH_LIMIT_MIB
