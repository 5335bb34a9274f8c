"""Entry point of every benchmark child process.

    python -m bench.proc server SYSTEM '{"variant": ..., "profile": ...}'
    python -m bench.proc client SYSTEM '<ClientSpec json>'
    python -m bench.proc failover tipcrpc-<transport> '<ClientSpec json>'
    python -m bench.proc scale tipcrpc-user '<ClientSpec json>'

SYSTEM is ``raw-<family>``, ``tipcrpc-<transport>``, ``pyro5``, ``zmq`` or ``grpc``; the
variant is ``blocking``/``sync`` or an event-loop kind (``asyncio``/``uvloop``). Modules are
imported lazily so a raw row never pays for importing gRPC.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any, Optional

from bench.common import ClientSpec, emit_result


def _server(system: str, variant: str, profile: Optional[str], extra: dict[str, Any]) -> None:
    if system.startswith("raw-"):
        family = system[4:]
        if variant == "blocking":
            from bench import raw_blocking

            raw_blocking.server(family, profile)
        else:
            from bench import raw_loop

            raw_loop.server(family, variant, profile)
    elif system.startswith("tipcrpc-"):
        from bench import tipcrpc_rows

        tipcrpc_rows.server(system[8:], variant, profile, extra)
    elif system == "pyro5":
        from bench.peers import pyro5_peer

        pyro5_peer.server(profile)
    elif system == "zmq":
        from bench.peers import zmq_peer

        zmq_peer.server(variant, profile)
    elif system == "grpc":
        from bench.peers import grpc_peer

        grpc_peer.server(variant, profile)
    else:
        raise SystemExit(f"unknown system {system!r}")


def _client(system: str, variant: str, spec: ClientSpec) -> dict[str, Any]:
    if system.startswith("raw-"):
        if variant == "blocking":
            from bench import raw_blocking

            return raw_blocking.client(spec)
        from bench import raw_loop

        return raw_loop.client(spec)
    if system.startswith("tipcrpc-"):
        from bench import tipcrpc_rows

        return tipcrpc_rows.client(system[8:], spec)
    if system == "pyro5":
        from bench.peers import pyro5_peer

        return pyro5_peer.client(spec)
    if system == "zmq":
        from bench.peers import zmq_peer

        return zmq_peer.client(spec)
    if system == "grpc":
        from bench.peers import grpc_peer

        return grpc_peer.client(spec)
    raise SystemExit(f"unknown system {system!r}")


def main(argv: list[str]) -> int:
    role, system, arg = argv[1], argv[2], argv[3]
    if role == "server":
        d = json.loads(arg)
        try:
            _server(system, d["variant"], d.get("profile"), d.get("extra") or {})
        except Exception as e:  # the parent reads this instead of waiting for READY forever
            traceback.print_exc()
            sys.stdout.write(f"FAILED {type(e).__name__}: {e}".replace("\n", " ") + "\n")
            sys.stdout.flush()
            return 1
        return 0
    spec = ClientSpec.from_json(arg)
    if role == "failover":
        from bench import tipcrpc_rows

        tipcrpc_rows.failover_client(system[8:], spec)
        return 0
    if role == "scale":
        from bench import scale

        scale.observer_main(spec)
        return 0
    variant = spec.extra.get("variant", spec.loop or "sync")
    emit_result(_client(system, variant, spec), spec.extra.get("result_path"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
