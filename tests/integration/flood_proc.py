"""One side of the flood tests, in its own process so its peak RSS is its own.

Usage::

    python flood_proc.py serve --netid N --identity ID
    python flood_proc.py notify --netid N --identity ID --count C --report-every R
    python flood_proc.py stream --netid N --identity ID --items C --size B --consume-every K

``serve`` serves ``test.flood`` at instance 1 (``note(i)``: a notification handler that
counts; ``received()``: the count and this process's peak RSS; ``items(n, size)``: a stream
of ``n`` byte strings) and prints ``READY``; it stops on SIGTERM. ``notify`` sends ``C``
notifications as fast as ``client.notify`` lets it, printing ``PROGRESS <sent> <peak RSS
KiB>`` every ``R`` and ``DONE ...`` at the end, after asking the server how many it got.
``stream`` consumes a stream slowly (one event-loop turn per ``K`` items, plus a pause
every 1000 items) and prints the peak RSS of both sides.

Peak RSS is ``getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import sys
from typing import AsyncIterator

import tipcrpc
from tipcrpc.transport.user import UserTransport

svc = tipcrpc.Service("test.flood")
_received = 0


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@svc.method
def note(i: int) -> None:
    global _received
    _received += 1


@svc.method(idempotent=True)
def received() -> list[int]:
    return [_received, peak_rss_kib()]


@svc.method
async def items(n: int, size: int) -> AsyncIterator[bytes]:
    chunk = b"x" * size
    for _ in range(n):
        yield chunk


async def serve(t: UserTransport) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with tipcrpc.serve(svc, instance=1, transport=t):
        print("READY", flush=True)
        await stop.wait()


async def notify(t: UserTransport, count: int, every: int) -> None:
    async with tipcrpc.connect(t) as client:
        ready = client.options(timeout=30.0, wait_ready=True)
        await ready.call(svc, "received")
        for i in range(count):
            await client.notify(svc, "note", i)
            if (i + 1) % every == 0:
                print(f"PROGRESS {i + 1} {peak_rss_kib()} {client.statistics()['outstanding']}", flush=True)
        # Notifications travel in order behind each other: once the server has counted them
        # all, none is left anywhere. Poll its count (bounded by the test's timeout).
        while True:
            got, server_rss = await ready.call(svc, "received")
            if got >= count:
                break
            await asyncio.sleep(0.05)
        print(f"DONE {count} {got} {peak_rss_kib()} {server_rss}", flush=True)


async def stream(t: UserTransport, n: int, size: int, every: int) -> None:
    async with tipcrpc.connect(t) as client:
        ready = client.options(timeout=60.0, wait_ready=True, credit=16)
        await ready.call(svc, "received")
        got = 0
        async with ready.stream(svc, "items", n, size) as s:
            async for item in s:
                assert len(item) == size
                got += 1
                if got % every == 0:
                    await asyncio.sleep(0)  # a slow consumer: the producer must wait for credit
                if got % 1000 == 0:
                    await asyncio.sleep(0.01)
        _count, server_rss = await ready.call(svc, "received")
        print(f"DONE {n} {got} {peak_rss_kib()} {server_rss}", flush=True)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("serve", "notify", "stream"))
    ap.add_argument("--netid", type=int, required=True)
    ap.add_argument("--identity", required=True)
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--report-every", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--consume-every", type=int, default=1)
    args = ap.parse_args()
    async with UserTransport(identity=args.identity, netid=args.netid, discovery_wait=0.0) as t:
        if args.mode == "serve":
            await serve(t)
        elif args.mode == "notify":
            await notify(t, args.count, args.report_every)
        else:
            await stream(t, args.items, args.size, args.consume_every)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
