"""The in-process "memory" transport: a whole TIPC cluster inside one event loop.

``MemoryCluster`` holds nodes (:class:`MemoryTransport`, one per ``cluster.node()``) that
each keep their own, eventually consistent name-table view, connected by ordered
in-process links. It implements the full :mod:`tipcrpc.transport.base` contract and adds
deterministic fault injection (crash, partition/heal with a link tolerance, per-link
delay/jitter/retransmission/duplication) for fast tests::

    cluster = MemoryCluster(seed=1)
    async with cluster.node("a") as a, cluster.node("b") as b:
        ep = await b.open_endpoint(print)
        await ep.publish(ServiceAddr(1000, 1))
        ...
        cluster.partition(a, b)

:func:`default_cluster` is the process-wide cluster in which ``serve()`` and
``connect()`` meet when no other transport is configured.
"""

from .cluster import MemoryCluster, NodeRef, default_cluster, reset_default_cluster
from .faults import NO_FAULTS, LinkFaults
from .node import MemoryEndpoint, MemorySubscription, MemoryTransport, NameTableView

__all__ = [
    "MemoryCluster",
    "MemoryTransport",
    "MemoryEndpoint",
    "MemorySubscription",
    "NameTableView",
    "LinkFaults",
    "NO_FAULTS",
    "NodeRef",
    "default_cluster",
    "reset_default_cluster",
]
