"""A userspace TIPC node in its own process, for the multi-process integration tests.

Usage: ``python user_node_proc.py --netid N --identity ID --serve TYPE:INSTANCE [...]``

It opens a :class:`~tipcrpc.transport.user.UserTransport`, opens one endpoint that answers
every datagram with ``<identity>|<data>`` to the sender, publishes the given names, prints
``READY <node addr hex> <port>`` and runs until SIGTERM (graceful close: withdrawals and
link RESET, then ``CLOSED``) or SIGKILL (nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from tipcrpc.addr import ServiceAddr
from tipcrpc.transport.base import Delivery, Returned
from tipcrpc.transport.user import UserTransport


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--netid", type=int, required=True)
    ap.add_argument("--identity", required=True)
    ap.add_argument("--serve", action="append", default=[])
    ap.add_argument("--tolerance-ms", type=int, default=1500)
    args = ap.parse_args()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async with UserTransport(identity=args.identity, netid=args.netid, tolerance_ms=args.tolerance_ms) as t:
        prefix = args.identity.encode() + b"|"
        ep = None

        def handler(item: Delivery | Returned) -> None:
            if isinstance(item, Delivery) and ep is not None:
                ep.send(item.source, prefix + item.data)

        ep = await t.open_endpoint(handler)
        for spec in args.serve:
            type_s, inst_s = spec.split(":")
            await ep.publish(ServiceAddr(int(type_s), int(inst_s)))
        print(f"READY {t.own_node.addr:08x} {ep.address.port}", flush=True)
        await stop.wait()
    print("CLOSED", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
