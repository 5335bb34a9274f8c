"""A server process for the SIGKILL-under-load tests: records every execution it starts.

Usage: ``python fault_server_proc.py --netid N --identity ID --record PATH`` (userspace
transport), or ``--netns NS`` instead of ``--netid``: the kernel transport inside netns NS.

Serves ``test.faults`` at instance 1:

* ``idem(token)`` — idempotent; the client may re-send it to another server after a crash;
* ``once(token)`` — not idempotent: must never run twice anywhere.

Each handler appends ``"<method> <token>\\n"`` to ``PATH`` with one ``os.write`` on an
``O_APPEND`` descriptor *before* doing anything else, so the record survives a SIGKILL at
any later point (the kernel has the bytes once ``write`` returns). The handler then yields to
the loop a few times — calls are in flight when the process dies — and returns the token.
Prints ``READY <node hex> <port>``; SIGTERM closes gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import tipcrpc

svc = tipcrpc.Service("test.faults")
_fd = -1


def _record(method: str, token: int) -> None:
    os.write(_fd, f"{method} {token}\n".encode())


@svc.method(idempotent=True)
async def idem(token: int) -> int:
    _record("idem", token)
    for _ in range(3):
        await asyncio.sleep(0)
    return token


@svc.method
async def once(token: int) -> int:
    _record("once", token)
    for _ in range(3):
        await asyncio.sleep(0)
    return token


async def main() -> None:
    global _fd
    ap = argparse.ArgumentParser()
    ap.add_argument("--netid", type=int)
    ap.add_argument("--netns")
    ap.add_argument("--identity", default="")
    ap.add_argument("--record", required=True)
    args = ap.parse_args()
    _fd = os.open(args.record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if args.netns:
        from tipcrpc.transport.kernel import KernelTransport

        transport = KernelTransport(netns=args.netns)
    else:
        from tipcrpc.transport.user import UserTransport

        transport = UserTransport(identity=args.identity, netid=args.netid, discovery_wait=0.0)
    async with transport as t, tipcrpc.serve(svc, instance=1, transport=t) as server:
        print(f"READY {t.own_node.addr:08x} {server.address.port}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
