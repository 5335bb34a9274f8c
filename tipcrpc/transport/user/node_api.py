"""The vocabulary of :class:`~tipcrpc.transport.user.node.Node`: what it returns and raises.

Re-exported by :mod:`tipcrpc.transport.user.node`; import from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from ...errors import ServiceUnreachable
from .media import BROADCAST, MediaAddr

__all__ = [
    "MediaAddr",
    "BROADCAST",
    "PeerUp",
    "PeerDown",
    "DuplicateAddress",
    "NodeEvent",
    "Output",
    "PeerInfo",
    "NoLink",
]

@dataclass(frozen=True, slots=True)
class PeerUp:
    """The link to ``addr`` reached ESTABLISHED: messages can be sent to it."""

    addr: int
    identity: bytes
    media: MediaAddr


@dataclass(frozen=True, slots=True)
class PeerDown:
    """The link to ``addr`` went down; ``reason`` says why."""

    addr: int
    reason: str


@dataclass(frozen=True, slots=True)
class DuplicateAddress:
    """Another node claims address ``addr`` (``disc_dupl_alert``); its packets are ignored."""

    addr: int
    identity: bytes
    media: MediaAddr
    detail: str


NodeEvent = Union[PeerUp, PeerDown, DuplicateAddress]


@dataclass(slots=True)
class Output:
    """What the shell must do after a call into the node.

    * ``packets`` — ``(media address, packet)`` to put on the bearer, in order;
    * ``delivered`` — ``(peer, message)`` received in order, for the socket layer;
    * ``events`` — peer up/down, duplicate addresses;
    * ``undelivered`` — ``(peer, message)`` of ours that a failed link had transmitted but
      not seen acknowledged: they may have been delivered, so they must not be returned as
      undeliverable (the peer-down event reports the loss);
    * ``unsent`` — ``(peer, message)`` of ours that a failed link never transmitted (still in
      its backlog): provably not delivered, so the shell returns them to their sender.
    """

    # A packet is bytes, or (header, body) when a message's body is sent without copying it.
    packets: list[tuple[MediaAddr, Any]] = field(default_factory=list)
    delivered: list[tuple[int, bytes]] = field(default_factory=list)
    events: list[NodeEvent] = field(default_factory=list)
    undelivered: list[tuple[int, bytes]] = field(default_factory=list)
    unsent: list[tuple[int, bytes]] = field(default_factory=list)

    def extend(self, other: Output) -> None:
        self.packets.extend(other.packets)
        self.delivered.extend(other.delivered)
        self.events.extend(other.events)
        self.undelivered.extend(other.undelivered)
        self.unsent.extend(other.unsent)

    def __bool__(self) -> bool:
        return bool(self.packets or self.delivered or self.events or self.undelivered or self.unsent)

    def clear(self) -> None:
        """Empty every list (the shell reuses one Output per node)."""
        if self.packets:
            self.packets.clear()
        if self.delivered:
            self.delivered.clear()
        if self.events:
            self.events.clear()
        if self.undelivered:
            self.undelivered.clear()
        if self.unsent:
            self.unsent.clear()


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """A snapshot of one peer as :meth:`Node.peers` reports it."""

    addr: int
    identity: bytes
    media: MediaAddr | None
    up: bool
    link_state: str
    node_state: str
    mtu: int
    tolerance_ms: int
    capabilities: int
    counters: dict[str, int]


class NoLink(ServiceUnreachable):
    """No working link to the peer node (the kernel's ``EHOSTUNREACH`` from ``tipc_node_xmit``)."""
