"""An RDM echo server process for the kernel round-trip measurement.

    python echo_proc.py --netns NS --type T --mode raw|transport

``raw``: a blocking ``SOCK_RDM`` socket, ``recvfrom``/``sendto`` in a loop (the floor).
``transport``: a :class:`KernelTransport` endpoint whose handler sends each datagram back.
Binds ``{T, 1}`` (cluster scope) inside network namespace NS, prints ``READY``, echoes
until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

from tipcrpc.addr import ServiceAddr
from tipcrpc.transport.base import Delivery, Returned
from tipcrpc.transport.kernel import KernelTransport
from tipcrpc.transport.kernel import netns as knetns
from tipcrpc.transport.kernel import wire


def raw(netns: str, stype: int) -> None:
    sock = knetns.create_socket(netns, wire.AF_TIPC, socket.SOCK_RDM)
    sock.bind((wire.TIPC_ADDR_NAMESEQ, stype, 1, 1, 2))
    print("READY", flush=True)
    while True:
        data, peer = sock.recvfrom(66000)
        sock.sendto(data, peer)


async def transport(netns: str, stype: int) -> None:
    async with KernelTransport(netns=netns) as t:
        def echo(item: Delivery | Returned) -> None:
            if isinstance(item, Delivery):
                ep.send(item.source, item.data)

        ep = await t.open_endpoint(echo)
        await ep.publish(ServiceAddr(stype, 1))
        print("READY", flush=True)
        await asyncio.Event().wait()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--netns", required=True)
    parser.add_argument("--type", type=int, required=True)
    parser.add_argument("--mode", choices=("raw", "transport"), required=True)
    args = parser.parse_args()
    if args.mode == "raw":
        raw(args.netns, args.type)
    else:
        asyncio.run(transport(args.netns, args.type))
    return 0


if __name__ == "__main__":
    sys.exit(main())
