"""Topology subscriptions (mirrors ``net/tipc/subscr.c``), producing :mod:`tipcrpc.events`.

A subscription watches a range ``{type, lower, upper}`` of the local name table:

* ``SubFilter.PORTS`` — one event per matching publication, published or withdrawn;
* ``SubFilter.SERVICE`` — only when a published *range* gets its first publication or loses
  its last one ("first up / last down" per exact range, not per instance).

Events carry the publication's own range, never clipped to the subscription. On subscribe
the current state is replayed oldest publication first (``SERVICE``: the oldest publication
of each range), then :data:`~tipcrpc.events.SNAPSHOT_COMPLETE` marks the end of the replay —
tipcrpc's addition; the kernel has no marker.

Type 0 (``TIPC_NODE_STATE``: every node publishes ``{0, own_addr}`` cluster-wide) is reported
as :class:`~tipcrpc.events.NodeUp`/``NodeDown`` and type 2 (``TIPC_LINK_STATE``: one node-scope
``{2, peer}`` publication per working link, port = link id) as ``LinkUp``/``LinkDown``.

Pure (layer L1): events are handed to an ``emit`` callback, in order, synchronously.
"""

from __future__ import annotations

from typing import Callable

from ..addr import LINK_STATE, NODE_STATE, ServiceRange
from ..errors import LocalProtocolError
from ..events import (
    SNAPSHOT_COMPLETE,
    LinkDown,
    LinkUp,
    NodeDown,
    NodeUp,
    SubFilter,
    TopologyEvent,
)
from .table import PUBLISHED, NameTable, Publication
from .trusted import trusted_published, trusted_range, trusted_socket, trusted_withdrawn

__all__ = ["Subscription", "subscribe", "make_event"]

Emit = Callable[[TopologyEvent], None]


def make_event(event: int, publ: Publication) -> TopologyEvent:
    """The :mod:`tipcrpc.events` object for a ``TIPC_PUBLISHED``/``TIPC_WITHDRAWN`` of ``publ``."""
    up = event == PUBLISHED
    t = publ.type
    if t == NODE_STATE:
        return NodeUp(publ.lower) if up else NodeDown(publ.lower)
    if t == LINK_STATE:
        return LinkUp(publ.lower, publ.port) if up else LinkDown(publ.lower, publ.port)
    # Values the table validated on insert: no second validation per event.
    rng = trusted_range(t, publ.lower, publ.upper)
    sock = trusted_socket(publ.node, publ.port)
    return trusted_published(rng, sock) if up else trusted_withdrawn(rng, sock)


class Subscription:
    """One subscription attached to a :class:`~.table.NameTable`.

    Create with :func:`subscribe`; :meth:`cancel` detaches it (idempotent). ``emit`` is
    called synchronously from inside name-table mutations, so it must not mutate the table.
    """

    __slots__ = ("type", "lower", "upper", "filter", "_emit", "_table", "active")

    def __init__(self, target: ServiceRange, filter: SubFilter, emit: Emit) -> None:
        try:
            f = SubFilter(filter)
        except ValueError:
            raise LocalProtocolError(
                f"illegal subscription filter {filter!r}: use SubFilter.PORTS or SubFilter.SERVICE"
            ) from None
        self.type = target.type
        self.lower = target.lower
        self.upper = target.upper
        self.filter = f
        self._emit = emit
        self._table: NameTable | None = None
        self.active = False

    @property
    def target(self) -> ServiceRange:
        return ServiceRange(self.type, self.lower, self.upper)

    def report_overlap(self, publ: Publication, event: int, must: bool) -> None:
        """Called by the name table (kernel ``tipc_sub_report_overlap``)."""
        if not self.active:
            return
        if publ.lower > self.upper or publ.upper < self.lower:
            return
        if not must and self.filter != SubFilter.PORTS:
            return
        self._emit(make_event(event, publ))

    def cancel(self) -> None:
        """Detach from the name table; no event is emitted after this returns."""
        if self._table is not None:
            self._table.unsubscribe(self, self.type)
            self._table = None
        self.active = False


def subscribe(table: NameTable, target: ServiceRange, filter: SubFilter, emit: Emit) -> Subscription:
    """Attach a subscription: replay the current state into ``emit``, then the snapshot marker.

    Live events follow as the table changes, until :meth:`Subscription.cancel`.
    """
    sub = Subscription(target, filter, emit)
    sub.active = True
    sub._table = table
    table.subscribe(sub, sub.type, ports=sub.filter == SubFilter.PORTS)
    emit(SNAPSHOT_COMPLETE)
    return sub
