"""The UDP bearer's drain loop: bursts, zero-length datagrams, all on loopback."""

from __future__ import annotations

import asyncio
import socket

import anyio

from tipcrpc.transport.user.udp_media import UdpMedia


async def test_drain_reads_bursts_and_zero_length_datagrams() -> None:
    got: list[bytes] = []
    enough = asyncio.Event()
    expected = [b"one", b"", b"three", b"x" * 1400, b"", b"six"]

    def on_packet(data: bytes, src: tuple[str, int]) -> None:
        got.append(data)
        if len(got) == len(expected):
            enough.set()

    media = UdpMedia(local_ip="127.0.0.1", port=0, multicast=False, on_packet=on_packet)
    local = media.open(asyncio.get_running_loop())
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for data in expected:  # queued back to back: one readiness, several datagrams
            tx.sendto(data, local)
        with anyio.fail_after(5):
            await enough.wait()
        assert got == expected
        assert media.stats["udp_rx"] == len(expected)
        assert media.stats["udp_rx_bytes"] == sum(map(len, expected))
    finally:
        tx.close()
        media.close()


async def test_drain_without_the_queued_probe_still_reads_everything() -> None:
    got: list[bytes] = []
    enough = asyncio.Event()

    def on_packet(data: bytes, src: tuple[str, int]) -> None:
        got.append(data)
        if len(got) == 3:
            enough.set()

    media = UdpMedia(local_ip="127.0.0.1", port=0, multicast=False, on_packet=on_packet)
    media._queued = None  # as on a system without FIONREAD: drain until EAGAIN
    local = media.open(asyncio.get_running_loop())
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for data in (b"a", b"", b"c"):
            tx.sendto(data, local)
        with anyio.fail_after(5):
            await enough.wait()
        assert got == [b"a", b"", b"c"]
    finally:
        tx.close()
        media.close()
