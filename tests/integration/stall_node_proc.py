"""A userspace node whose RPC service can block its own event loop (for test_loop_stall.py).

Usage: ``python stall_node_proc.py --netid N --identity ID --name SERVICE [--no-liveness]
[--no-keepalive] [--tolerance-ms MS] [--key HEX]``.

Serves ``SERVICE`` at instance 1 with ``block(seconds)`` (a *sync* handler that calls
``time.sleep``: the whole event loop stops), ``whoami()`` and ``stats()`` (the node's
link counters), prints ``READY <node addr hex> <port>`` and runs until SIGTERM/SIGKILL.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

import tipcrpc
from tipcrpc.transport.user import UserTransport

_STATS = ("peers_lost_total", "peers_up_total", "keepalive_sent", "keepalive_stalls",
          "keepalive_longest_stall_ms", "liveness_watched", "peers_up", "crypto_rx_ok", "crypto_rx_unkeyed",
          "crypto_rx_badauth", "crypto_rx_replayed")  # fmt: skip


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--netid", type=int, required=True)
    ap.add_argument("--identity", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--tolerance-ms", type=int, default=1500)
    ap.add_argument("--no-liveness", action="store_true")
    ap.add_argument("--no-keepalive", action="store_true")
    ap.add_argument("--key", default=None, help="cluster key (hex)")
    args = ap.parse_args()

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    opts: dict[str, object] = {}
    if args.key is not None:
        opts["cluster_key"] = args.key
    t = UserTransport(
        identity=args.identity,
        netid=args.netid,
        tolerance_ms=args.tolerance_ms,
        liveness=not args.no_liveness,
        keepalive=not args.no_keepalive,
        **opts,  # type: ignore[arg-type]
    )
    svc = tipcrpc.Service(args.name)

    @svc.method
    def block(seconds: float) -> str:
        time.sleep(seconds)  # blocks the event loop on purpose
        return args.identity

    @svc.method(idempotent=True)
    def whoami() -> str:
        return args.identity

    @svc.method(idempotent=True)
    def stats() -> dict[str, int]:
        s = t.statistics()
        return {k: int(s.get(k, 0)) for k in _STATS}

    async with t, tipcrpc.serve(svc, instance=1, transport=t) as server:
        print(f"READY {t.own_node.addr:08x} {server.address.port}", flush=True)
        await stop.wait()
    print("CLOSED", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
