"""A userspace TIPC node in its own process, for the multi-process integration tests.

Usage: ``python user_node_proc.py --netid N --identity ID --serve TYPE:INSTANCE [...]``
or ``python user_node_proc.py --netid N --identity ID --rpc SERVICE_NAME``.

It opens a :class:`~tipcrpc.transport.user.UserTransport`, then either

* (``--serve``) opens one raw endpoint that answers every datagram with ``<identity>|<data>``
  to the sender and publishes the given names, or
* (``--rpc``) serves a tipcrpc service with ``whoami()`` (idempotent, returns the identity)
  and ``slow(seconds)`` (not idempotent) at instance 1 through ``tipcrpc.serve``,

prints ``READY <node addr hex> <port>`` and runs until SIGTERM (graceful close: withdrawals
and link RESET, then ``CLOSED``) or SIGKILL (nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import tipcrpc
from tipcrpc.addr import ServiceAddr
from tipcrpc.transport.base import Delivery, Returned
from tipcrpc.transport.user import UserEndpoint, UserTransport


async def serve_raw(t: UserTransport, identity: str, names: list[str], stop: asyncio.Event) -> None:
    prefix = identity.encode() + b"|"
    ep: UserEndpoint | None = None

    def handler(item: Delivery | Returned) -> None:
        if isinstance(item, Delivery) and ep is not None:
            ep.send(item.source, prefix + item.data)

    ep = await t.open_endpoint(handler)
    for spec in names:
        type_s, inst_s = spec.split(":")
        await ep.publish(ServiceAddr(int(type_s), int(inst_s)))
    print(f"READY {t.own_node.addr:08x} {ep.address.port}", flush=True)
    await stop.wait()


async def serve_rpc(t: UserTransport, name: str, identity: str, stop: asyncio.Event) -> None:
    svc = tipcrpc.Service(name)

    @svc.method(idempotent=True)
    def whoami() -> str:
        return identity

    @svc.method
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return identity

    async with tipcrpc.serve(svc, instance=1, transport=t) as server:
        print(f"READY {t.own_node.addr:08x} {server.address.port}", flush=True)
        await stop.wait()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--netid", type=int, required=True)
    ap.add_argument("--identity", required=True)
    ap.add_argument("--serve", action="append", default=[], help="raw endpoint name TYPE:INSTANCE")
    ap.add_argument("--rpc", default=None, help="serve a tipcrpc service of this name")
    ap.add_argument("--tolerance-ms", type=int, default=1500)
    args = ap.parse_args()

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with UserTransport(identity=args.identity, netid=args.netid, tolerance_ms=args.tolerance_ms) as t:
        if args.rpc is not None:
            await serve_rpc(t, args.rpc, args.identity, stop)
        else:
            await serve_raw(t, args.identity, args.serve, stop)
    print("CLOSED", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
