"""Serve ``demo.calc`` at one instance: ``python examples/calc_server.py INSTANCE [TRANSPORT]``.

Prints ``ready <socket address>`` once published; SIGTERM/SIGINT withdraw the name, drain
in-flight calls and exit.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tipcrpc  # noqa: E402
from calc import calc  # noqa: E402


async def main(instance: int, transport: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with tipcrpc.serve(calc, instance=instance, transport=transport) as server:
        print(f"ready {server.address}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "auto"))
