"""Topology events: past-tense frozen dataclasses.

Transports report name-table changes as :class:`Published` / :class:`Withdrawn` (one per
publication, like the kernel's ``TIPC_SUB_PORTS``), node membership as :class:`NodeUp` /
:class:`NodeDown` (subscriptions to type 0) and links as :class:`LinkUp` / :class:`LinkDown`
(type 2). Every subscription first replays the current state, then yields
:data:`SNAPSHOT_COMPLETE` once, then live changes.

The RPC client's ``watch(service)`` turns publications into :class:`ServiceUp` /
:class:`ServiceDown`, which also carry the service name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

from .addr import ServiceRange, SocketAddr

__all__ = [
    "SubFilter",
    "Published",
    "Withdrawn",
    "NodeUp",
    "NodeDown",
    "LinkUp",
    "LinkDown",
    "SnapshotComplete",
    "SNAPSHOT_COMPLETE",
    "ServiceUp",
    "ServiceDown",
    "TopologyEvent",
    "WatchEvent",
]


class SubFilter(enum.IntEnum):
    """Subscription filter (values as in ``linux/tipc.h``)."""

    PORTS = 0x01  #: one event per matching publication
    SERVICE = 0x02  #: first-up / last-down per published range


@dataclass(frozen=True, slots=True)
class Published:
    """A publication matching the subscription exists (replayed or new).

    ``range`` is the publication's own range (not clipped to the subscription);
    ``socket`` is the publishing socket (its ``node`` is the publishing node).
    """

    range: ServiceRange
    socket: SocketAddr

    @property
    def node(self) -> int:
        return self.socket.node


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """A publication matching the subscription was withdrawn (unbind, socket close, node loss)."""

    range: ServiceRange
    socket: SocketAddr

    @property
    def node(self) -> int:
        return self.socket.node


@dataclass(frozen=True, slots=True)
class NodeUp:
    """A node joined (or, in a snapshot, is present in) the cluster; own node included."""

    node: int


@dataclass(frozen=True, slots=True)
class NodeDown:
    """A node left the cluster (all its links went down)."""

    node: int


@dataclass(frozen=True, slots=True)
class LinkUp:
    """A link to ``node`` came up; ``link_id`` is ``local_bearer | remote_bearer << 16``."""

    node: int
    link_id: int


@dataclass(frozen=True, slots=True)
class LinkDown:
    """A link to ``node`` went down."""

    node: int
    link_id: int


@dataclass(frozen=True, slots=True)
class SnapshotComplete:
    """Marker: every event before this one described state that existed at subscribe time."""


SNAPSHOT_COMPLETE = SnapshotComplete()


@dataclass(frozen=True, slots=True)
class ServiceUp:
    """An instance range of a service became available at ``node``/``port``."""

    service: str
    type: int
    lower: int
    upper: int
    node: int
    port: int

    @property
    def socket(self) -> SocketAddr:
        return SocketAddr(self.node, self.port)


@dataclass(frozen=True, slots=True)
class ServiceDown:
    """An instance range of a service went away from ``node``/``port``."""

    service: str
    type: int
    lower: int
    upper: int
    node: int
    port: int

    @property
    def socket(self) -> SocketAddr:
        return SocketAddr(self.node, self.port)


TopologyEvent = Union[Published, Withdrawn, NodeUp, NodeDown, LinkUp, LinkDown, SnapshotComplete]
WatchEvent = Union[ServiceUp, ServiceDown, SnapshotComplete]
