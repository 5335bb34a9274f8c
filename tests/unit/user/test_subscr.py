"""Topology subscription semantics (net/tipc/subscr.c) producing tipcrpc.events."""

from __future__ import annotations

import pytest

from tipcrpc.addr import Scope, ServiceRange, SocketAddr
from tipcrpc.errors import LocalProtocolError
from tipcrpc.events import (
    SNAPSHOT_COMPLETE,
    LinkDown,
    LinkUp,
    NodeDown,
    NodeUp,
    Published,
    SubFilter,
    TopologyEvent,
    Withdrawn,
)
from tipcrpc.nametable.table import NameTable
from tipcrpc.nametable.subscr import subscribe

OWN = 0x1001
N2 = 0x2002
C = Scope.CLUSTER


def sub(t: NameTable, rng: ServiceRange, f: SubFilter = SubFilter.PORTS) -> list[TopologyEvent]:
    events: list[TopologyEvent] = []
    subscribe(t, rng, f, events.append)
    return events


def test_ports_replay_then_marker_then_live() -> None:
    t = NameTable(OWN)
    t.insert(100, 5, 9, C, N2, 7, 8)
    ev = sub(t, ServiceRange(100, 0, 6))
    assert ev == [Published(ServiceRange(100, 5, 9), SocketAddr(N2, 7)), SNAPSHOT_COMPLETE]
    t.insert(100, 6, 6, C, OWN, 1, 2)
    t.insert(100, 7, 7, C, OWN, 1, 3)  # no overlap with 0..6
    t.remove(100, 5, 9, N2, 8)
    # Events carry the publication's own range, not clipped to the subscription.
    assert ev[2:] == [
        Published(ServiceRange(100, 6, 6), SocketAddr(OWN, 1)),
        Withdrawn(ServiceRange(100, 5, 9), SocketAddr(N2, 7)),
    ]


def test_service_first_up_last_down_per_range() -> None:
    t = NameTable(OWN)
    ev = sub(t, ServiceRange(100, 0, 100), SubFilter.SERVICE)
    t.insert(100, 1, 1, C, N2, 7, 8)  # first of range [1,1]: reported
    t.insert(100, 1, 1, C, OWN, 3, 4)  # second: silent
    t.insert(100, 1, 2, C, OWN, 3, 5)  # another range: its own first-up
    t.remove(100, 1, 1, N2, 8)  # not last: silent
    t.remove(100, 1, 1, OWN, 4)  # last: reported, with that publication's socket
    assert ev == [
        SNAPSHOT_COMPLETE,
        Published(ServiceRange(100, 1, 1), SocketAddr(N2, 7)),
        Published(ServiceRange(100, 1, 2), SocketAddr(OWN, 3)),
        Withdrawn(ServiceRange(100, 1, 1), SocketAddr(OWN, 3)),
    ]


def test_node_and_link_state_events() -> None:
    t = NameTable(OWN)
    t.insert(0, OWN, OWN, C, OWN, 0, OWN)
    nodes = sub(t, ServiceRange(0, 0, 0xFFFFFFFF))
    links = sub(t, ServiceRange(2, 0, 0xFFFFFFFF))
    t.insert(0, N2, N2, C, N2, 0, N2)
    t.insert(2, N2, N2, Scope.NODE, N2, 0x10000, 0x10000)
    t.remove(2, N2, N2, N2, 0x10000)
    t.purge_node(N2)
    assert nodes == [NodeUp(OWN), SNAPSHOT_COMPLETE, NodeUp(N2), NodeDown(N2)]
    assert links == [SNAPSHOT_COMPLETE, LinkUp(N2, 0x10000), LinkDown(N2, 0x10000)]


def test_cancel_stops_events() -> None:
    t = NameTable(OWN)
    events: list[TopologyEvent] = []
    s = subscribe(t, ServiceRange(100, 0, 10), SubFilter.PORTS, events.append)
    s.cancel()
    s.cancel()
    t.insert(100, 1, 1, C, N2, 7, 8)
    assert events == [SNAPSHOT_COMPLETE]
    assert s.target == ServiceRange(100, 0, 10)


def test_illegal_filter() -> None:
    with pytest.raises(LocalProtocolError):
        subscribe(NameTable(OWN), ServiceRange(100, 0, 1), 3, lambda e: None)  # type: ignore[arg-type]
