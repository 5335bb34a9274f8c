"""Instructions (or seconds) per call of the RPC call path, one process, for callgrind.

    python -m bench.callpath --transport memory --calls 2000 [--conc 64]
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p python -m bench.callpath --calls 2000

Runs ``warm`` calls, then ``calls`` calls of ``add(1, 2)`` (sequential, or spread over
``--conc`` concurrent callers) against a server in the same process. Under callgrind, the
difference between two runs with different ``--calls`` divided by the difference in calls
gives instructions per call with start-up cancelled out (bench/README.md, "call path").
The API form is detected, so the same script measures versions before and after the call
options change.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import tipcrpc

calc = tipcrpc.Service("bench.callpath")


@calc.method
def add(a: int, b: int) -> int:
    return a + b


async def main(args: argparse.Namespace) -> None:
    async with tipcrpc.serve(calc, instance=1, transport=args.transport), tipcrpc.connect(args.transport) as client:
        await client.wait_for(calc)
        call = client.call
        for _ in range(args.warm):
            await call(calc, "add", 1, 2)
        t0 = time.perf_counter()
        if args.conc <= 1:
            for _ in range(args.calls):
                await call(calc, "add", 1, 2)
        else:
            per = args.calls // args.conc

            async def worker() -> None:
                for _ in range(per):
                    await call(calc, "add", 1, 2)

            await asyncio.gather(*(worker() for _ in range(args.conc)))
        dt = time.perf_counter() - t0
        print(f"{args.calls} calls in {dt:.3f} s: {dt / args.calls * 1e6:.1f} us/call")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--transport", default="memory")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--warm", type=int, default=200)
    ap.add_argument("--conc", type=int, default=1)
    ap.add_argument("--uvloop", action="store_true")
    a = ap.parse_args()
    if a.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(main(a))
