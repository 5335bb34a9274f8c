"""Round trip of a raw endpoint ping-pong over UserTransport vs a raw UDP loopback echo.

Run: ``.venv/bin/python bench/user_transport_rtt.py [--iterations N] [--size BYTES] [--uvloop]``

Both measurements run in one process on one event loop, with the same technique for the
raw floor as the transport uses (non-blocking sockets under ``loop.add_reader``):

* **raw UDP echo** — two UDP sockets on 127.0.0.1; the echo side sends every datagram
  straight back; the client awaits each reply before sending the next;
* **UserTransport** — two userspace TIPC nodes on loopback (each its own UDP socket, full
  link layer: sequence numbers, acks, supervision); endpoint A sends to endpoint B's socket
  address (or by name, ``--named``), B's handler answers at once, A awaits each reply.

Prints median/mean/p99 round trip, the ratio to the raw floor, and the UDP datagrams the
TIPC pair exchanged per round trip (acks piggy-back on data, so the steady state is 2).

The transport's drain loop asks the socket whether another datagram is queued (``FIONREAD``)
instead of reading until ``recvfrom`` fails with ``EAGAIN``; the failure alone costs ~1.7 us
in Python. ``--raw-probe`` gives the raw echo the same loop, so the floor uses the same
technique as the transport; by default the floor is the plain drain-until-EAGAIN echo.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time
from typing import Callable

from tipcrpc.addr import ServiceAddr
from tipcrpc.transport.base import Delivery, Returned
from tipcrpc.transport.user import UserTransport


def _summary(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "median_us": statistics.median(s) * 1e6,
        "mean_us": statistics.fmean(s) * 1e6,
        "p99_us": s[int(len(s) * 0.99) - 1] * 1e6,
    }


def _queued_probe() -> Callable[[int], int] | None:
    try:
        import array
        from fcntl import ioctl
        from termios import FIONREAD
    except ImportError:
        return None
    buf = array.array("i", [0])

    def queued(fd: int) -> int:
        ioctl(fd, FIONREAD, buf, True)
        return buf[0]

    return queued


async def raw_udp_echo(iterations: int, payload: bytes, probe: bool = False) -> list[float]:
    loop = asyncio.get_running_loop()
    queued = _queued_probe() if probe else None
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    echo.setblocking(False)
    cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cli.bind(("127.0.0.1", 0))
    cli.setblocking(False)
    echo_addr = echo.getsockname()
    echo_fd, cli_fd = echo.fileno(), cli.fileno()
    waiter: asyncio.Future[bytes] | None = None

    def on_echo() -> None:
        while True:
            try:
                data, src = echo.recvfrom(65535)
            except BlockingIOError:
                return
            echo.sendto(data, src)
            if queued is not None and not queued(echo_fd):
                return

    def on_reply() -> None:
        while True:
            try:
                data, _ = cli.recvfrom(65535)
            except BlockingIOError:
                return
            if waiter is not None and not waiter.done():
                waiter.set_result(data)
            if queued is not None and not queued(cli_fd):
                return

    loop.add_reader(echo.fileno(), on_echo)
    loop.add_reader(cli.fileno(), on_reply)
    samples = []
    try:
        for _ in range(iterations):
            waiter = loop.create_future()
            t0 = time.perf_counter()
            cli.sendto(payload, echo_addr)
            await waiter
            samples.append(time.perf_counter() - t0)
    finally:
        loop.remove_reader(echo.fileno())
        loop.remove_reader(cli.fileno())
        echo.close()
        cli.close()
    return samples


async def user_pingpong(iterations: int, payload: bytes, named: bool) -> tuple[list[float], float]:
    loop = asyncio.get_running_loop()
    netid = 3000 + (id(loop) >> 4) % 5000
    a = UserTransport(identity="bench-a", netid=netid, discovery_wait=0.0)
    b = UserTransport(identity="bench-b", netid=netid, discovery_wait=0.0)
    await a.open()
    await b.open()
    waiter: asyncio.Future[bytes] | None = None
    ep_b = None

    def on_b(item: Delivery | Returned) -> None:
        if isinstance(item, Delivery):
            ep_b.send(item.source, item.data)  # type: ignore[union-attr]

    def on_a(item: Delivery | Returned) -> None:
        if waiter is not None and not waiter.done():
            if isinstance(item, Delivery):
                waiter.set_result(item.data)
            else:
                waiter.set_exception(RuntimeError(f"returned: {item.reason.name}"))

    try:
        ep_a = await a.open_endpoint(on_a)
        ep_b = await b.open_endpoint(on_b)
        name = ServiceAddr(77777, 1)
        await ep_b.publish(name)
        # Wait until a sees b's publication (links up, bulk applied).
        sub = await a.subscribe(name.as_range())
        async for ev in sub:
            if getattr(ev, "socket", None) == ep_b.address:
                break
        await sub.aclose()
        dest = name if named else ep_b.address
        for _ in range(200):  # warm-up
            waiter = loop.create_future()
            ep_a.send(dest, payload)
            await waiter
        tx0 = a.statistics()["udp_tx"] + b.statistics()["udp_tx"]
        samples = []
        for _ in range(iterations):
            waiter = loop.create_future()
            t0 = time.perf_counter()
            ep_a.send(dest, payload)
            await waiter
            samples.append(time.perf_counter() - t0)
        tx1 = a.statistics()["udp_tx"] + b.statistics()["udp_tx"]
        return samples, (tx1 - tx0) / iterations
    finally:
        await a.aclose()
        await b.aclose()


async def main(iterations: int, size: int, named: bool, probe: bool) -> None:
    payload = b"x" * size
    await raw_udp_echo(500, payload, probe)  # warm-up
    raw = _summary(await raw_udp_echo(iterations, payload, probe))
    samples, dgrams = await user_pingpong(iterations, payload, named)
    user = _summary(samples)
    print(f"payload {size} B, {iterations} round trips, {'named' if named else 'direct'} sends")
    label = "raw UDP echo (FIONREAD)" if probe else "raw UDP echo"
    print(f"{label:<24}: median {raw['median_us']:7.1f} us  mean {raw['mean_us']:7.1f} us  p99 {raw['p99_us']:7.1f} us")
    print(f"{'UserTransport':<24}: median {user['median_us']:7.1f} us  mean {user['mean_us']:7.1f} us  p99 {user['p99_us']:7.1f} us")
    print(f"{'ratio (median)':<24}: {user['median_us'] / raw['median_us']:.2f}x   (mean {user['mean_us'] / raw['mean_us']:.2f}x)")
    print(f"UDP datagrams per round trip (both nodes): {dgrams:.3f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=5000)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--named", action="store_true", help="send by service name (anycast) instead of socket address")
    ap.add_argument("--uvloop", action="store_true")
    ap.add_argument("--raw-probe", action="store_true", help="raw echo drains with FIONREAD, as the transport does")
    args = ap.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(main(args.iterations, args.size, args.named, args.raw_probe))
