"""Test helpers for tipcrpc users and transports (layer L5).

* :class:`MemoryCluster` / :class:`MemoryTransport` — an in-process TIPC cluster with
  fault injection (re-exported from :mod:`tipcrpc.transport.memory`);
* :class:`Inbox` — a message handler that queues deliveries for ``await inbox.get()``;
* :class:`ClusterHarness` / :class:`MemoryHarness` — how the transport conformance suite
  (:mod:`tipcrpc.testing.conformance`) obtains a cluster;
* pytest fixtures ``memory_cluster`` and ``memory_transport`` (:mod:`tipcrpc.testing.plugin`,
  registered automatically).

Exports are resolved lazily so that the pytest plugin, which lives in this package and
is loaded by every pytest run, stays cheap to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..transport.inbox import Inbox
    from ..transport.memory import LinkFaults, MemoryCluster, MemoryTransport
    from .harness import ClusterHarness, MemoryHarness

__all__ = ["MemoryCluster", "MemoryTransport", "LinkFaults", "Inbox", "ClusterHarness", "MemoryHarness"]

_WHERE = {
    "MemoryCluster": "tipcrpc.transport.memory",
    "MemoryTransport": "tipcrpc.transport.memory",
    "LinkFaults": "tipcrpc.transport.memory",
    "Inbox": "tipcrpc.transport.inbox",
    "ClusterHarness": "tipcrpc.testing.harness",
    "MemoryHarness": "tipcrpc.testing.harness",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
