"""An RPC server process for the kernel cluster tests (one per netns node).

    python kernel_node_proc.py --netns NS --label LABEL --service NAME [--instance N]

Every socket is created inside network namespace NS (``KernelTransport(netns=...)``:
``setns`` around socket creation, no ``ip netns exec``). Prints ``READY <node hex> <port>``
once the service is published, serves until SIGTERM (graceful drain: the name is
withdrawn first) or SIGKILL, and prints ``CLOSED`` after a graceful stop.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import tipcrpc
from tipcrpc.transport.kernel import KernelTransport


def build_service(name: str, label: str) -> tipcrpc.Service:
    svc = tipcrpc.Service(name)

    @svc.method(idempotent=True)
    def whoami() -> str:
        return label

    @svc.method(idempotent=True)
    async def slow(seconds: float) -> str:
        print(f"STARTED {label}", flush=True)  # the tests' sync point: a call is in progress
        await asyncio.sleep(seconds)
        return label

    @svc.method(idempotent=True)
    def echo(data: bytes) -> bytes:
        return data

    @svc.method(idempotent=True)
    def size(data: bytes) -> int:
        return len(data)

    return svc


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--netns", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--instance", type=int, default=0)
    args = parser.parse_args()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    svc = build_service(args.service, args.label)
    async with KernelTransport(netns=args.netns) as transport:
        async with tipcrpc.serve(svc, instance=args.instance, transport=transport, drain_timeout=2.0) as server:
            addr = server.address
            print(f"READY {addr.node:08x} {addr.port}", flush=True)
            await stop.wait()
    print("CLOSED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
