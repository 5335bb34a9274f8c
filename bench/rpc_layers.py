"""Per-call cost of the RPC layers, without a transport or an event loop.

Run: ``.venv/bin/python -m bench.rpc_layers [--layer L] [-n N] [--measure-instructions]``

Each layer is driven synchronously with what one ``add(1, 2)`` call gives it:

* ``client`` — the client's :class:`~tipcrpc.rpc.call_table.CallTable`: ``new`` (the CALL
  frame encoded and put in the outbox) and ``frame`` of its REPLY (decoded, the call
  completed in the outbox); codec included;
* ``serve`` — the server's :class:`~tipcrpc.rpc.serve_table.ServeTable`: ``frame`` of a
  CALL (decoded, checked, handed out to run) and ``result`` (the REPLY encoded and put in
  the outbox); codec included;
* ``encode_call`` / ``decode_call`` / ``encode_reply`` / ``decode_reply`` — the frame
  functions of :mod:`tipcrpc.rpc.frames` with the codec, alone;
* ``metrics`` — what both sides record per call: the server's
  :meth:`~tipcrpc.metrics.MethodMetrics.add` and the client's
  :meth:`~tipcrpc.client_metrics.ClientMetrics.observe` of a one-call outbox.

An iteration's own loop overhead (an empty iteration) is subtracted. The shells' share of a
call is what is left of ``python -m bench.callpath`` (end to end) after the transport alone
(``bench.callpath --echo``) and these layers. ``--callgrind`` runs exactly ``-n``
iterations after a fixed warm-up and prints nothing, so that ``valgrind --tool=callgrind``
at two values of ``-n`` gives instructions per call as ``(I(n2) − I(n1)) / (n2 − n1)``;
``--measure-instructions`` does that for every layer.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable

from bench.callgrind import instructions_per_repeat

LAYERS = ("client", "serve", "encode_call", "decode_call", "encode_reply", "decode_reply", "metrics", "empty")
WARM = 300
MAX_N = 20_000  # the client layer pre-builds this many replies (the same set at every -n)


def _loop(layer: str) -> Callable[[int], None]:
    """A function running ``n`` iterations of ``layer``."""
    from tipcrpc.addr import Importance, ServiceRange, SocketAddr
    from tipcrpc.client_metrics import ClientMetrics
    from tipcrpc.codec import Codec
    from tipcrpc.metrics import Metrics
    from tipcrpc.rpc import frames as F
    from tipcrpc.rpc.call_table import UNARY, CallTable
    from tipcrpc.rpc.membership import Membership
    from tipcrpc.rpc.serve_table import ServeTable
    from tipcrpc.rpc.service import Service

    codec = Codec()
    svc: Service[Any] = Service("bench.rpc_layers")

    @svc.method
    def add(a: int, b: int) -> int:
        return a + b

    stype = svc.type
    server, client = SocketAddr(1, 10), SocketAddr(2, 20)
    args = (1, 2)
    flags = F.method_flags(False, Importance.LOW)
    call_frame = F.encode_call(codec, 7, stype, "add", args, None, None)
    reply_frame = F.encode_reply(codec, 7, 3, flags)

    if layer == "client":
        m = Membership(stype)
        m.published(ServiceRange(stype, 1, 1), server)
        m.ready = True
        table = CallTable(codec, lambda t: m, first_id=1)
        replies = [F.encode_reply(codec, cid, 3, flags) for cid in range(MAX_N + WARM + 2)]
        out = table.out

        def run(n: int) -> None:
            new, frame = table.new, table.frame
            for _ in range(n):
                call = new(UNARY, stype, "add", args, None, now=1.0, to=server)
                frame(server, replies[call.id], 1.0)
                out.sends.clear()
                out.done.clear()

        return run
    if layer == "serve":
        st = ServeTable(codec, [svc])
        sout = st.out

        def run(n: int) -> None:
            frame, result = st.frame, st.result
            for _ in range(n):
                frame(client, call_frame, 1.0)
                s = sout.run.pop()
                result(s, 3)
                sout.sends.clear()
                sout.done.clear()

        return run
    if layer == "encode_call":

        def run(n: int) -> None:
            enc = F.encode_call
            for _ in range(n):
                enc(codec, 7, stype, "add", args, None, None)

        return run
    if layer == "decode_call":

        def run(n: int) -> None:
            dec = F.decode_call
            for _ in range(n):
                dec(codec, call_frame)

        return run
    if layer == "encode_reply":

        def run(n: int) -> None:
            enc = F.encode_reply
            for _ in range(n):
                enc(codec, 7, 3, flags)

        return run
    if layer == "decode_reply":

        def run(n: int) -> None:
            dec = F.decode_value
            for _ in range(n):
                dec(codec, reply_frame)

        return run
    if layer == "metrics":
        from tipcrpc.rpc.call_table import Call, Outbox

        server_metrics = Metrics("server").method((svc.name, "add"))  # what the server keeps per method
        client_metrics = ClientMetrics({})
        box = Outbox()
        done = Call(7, UNARY, stype, "add", call_frame, False, Importance.LOW, None, None)
        done.started = 1.0

        def run(n: int) -> None:
            add, observe, pending = server_metrics.add, client_metrics.observe, box.done
            for _ in range(n):
                add(2e-5, None)
                pending.append((done, 3, None))
                observe(box, 1.00004)
                pending.clear()

        return run

    def run(n: int) -> None:  # "empty": the iteration's own cost
        for _ in range(n):
            pass

    return run


def time_layer(layer: str, n: int) -> float:
    """Microseconds per iteration (wall clock; noisy on a busy machine)."""
    run = _loop(layer)
    run(WARM)
    t0 = time.perf_counter()
    run(n)
    return (time.perf_counter() - t0) / n * 1e6


def callgrind_instructions(layer: str, n1: int, n2: int) -> float:
    """Instructions per iteration: callgrind at two iteration counts."""
    return instructions_per_repeat(
        lambda n: [sys.executable, "-m", "bench.rpc_layers", "--callgrind", "--layer", layer, "-n", str(n)], n1, n2
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layer", choices=LAYERS, action="append")
    ap.add_argument("-n", type=int, default=MAX_N, help=f"iterations (at most {MAX_N})")
    ap.add_argument("--callgrind", action="store_true", help="run -n iterations once, print nothing")
    ap.add_argument("--measure-instructions", action="store_true", help="also run callgrind (slow)")
    ap.add_argument("--no-timing", action="store_true", help="skip the wall-clock timing (busy machine)")
    args = ap.parse_args()
    if not 0 < args.n <= MAX_N:
        ap.error(f"-n must be in 1..{MAX_N}")
    layers = args.layer or list(LAYERS)
    if args.callgrind:
        run = _loop(layers[0])
        run(WARM)  # the same warm-up at every n: caches filled, code paths specialised
        run(args.n)
        return
    empty_us = time_layer("empty", args.n) if not args.no_timing else 0.0
    empty_ins = callgrind_instructions("empty", 1000, 4000) if args.measure_instructions else 0.0
    print("one add(1, 2) call per iteration; an empty iteration's cost subtracted")
    print(f"{'layer':<13} {'us/call':>8} {'instr/call':>11}")
    for layer in layers:
        if layer == "empty":
            continue
        us = float("nan") if args.no_timing else time_layer(layer, args.n) - empty_us
        ins = callgrind_instructions(layer, 1000, 4000) - empty_ins if args.measure_instructions else float("nan")
        print(f"{layer:<13} {us:8.2f} {ins:11.0f}", flush=True)


if __name__ == "__main__":
    main()
