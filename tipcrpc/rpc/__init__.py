"""The RPC layer: service definitions, the wire protocol, and the client/server runtime.

Pure modules (no event loop): :mod:`.frames` (frame layout), :mod:`.chunks` (large frames),
:mod:`.call_table` (every rule about a call in flight: failover, deadlines, probes),
:mod:`.serve_table` (every rule about a call being served: validation, limits, deadlines,
duplicates, drain), :mod:`.remote_errors` (exceptions <-> FAILURE), :mod:`.options` (call
options), :mod:`.membership` (instance choice), :mod:`.service` (service definitions). The
event-loop shells — :mod:`.server`, :mod:`.client`, :mod:`.resolver` — feed them and do what
their outboxes say, over any :class:`~tipcrpc.transport.base.Transport`.
Runtime names are imported lazily so the pure modules load without anyio.
"""

from __future__ import annotations

from typing import Any

from .membership import Policy
from .service import MethodInfo, MethodKind, Service

__all__ = ["Service", "MethodInfo", "MethodKind", "Policy", "Client", "Server", "Stub", "FanoutResult"]

_LAZY = {
    "Client": ".client",
    "FanoutResult": ".client",
    "Server": ".server",
    "Stub": ".stub",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)
