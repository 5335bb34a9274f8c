"""The unvalidated builders of tipcrpc.nametable.trusted make the same objects as the constructors."""

from __future__ import annotations

import dataclasses

from tipcrpc.addr import ServiceAddr, ServiceRange, SocketAddr
from tipcrpc.events import Published, Withdrawn
from tipcrpc.nametable.bindings import as_range
from tipcrpc.nametable.trusted import (
    FIELDS,
    range_of,
    trusted_published,
    trusted_range,
    trusted_socket,
    trusted_withdrawn,
)


def test_field_lists_unchanged() -> None:
    # A new field would be left unset by the builders: this fails first.
    for cls, fields in FIELDS.items():
        names = cls._fields if issubclass(cls, tuple) else tuple(f.name for f in dataclasses.fields(cls))
        assert names == fields, cls


def test_builders_equal_constructors() -> None:
    r = trusted_range(100, 3, 9)
    s = trusted_socket(0x1001, 77)
    assert r == ServiceRange(100, 3, 9) and hash(r) == hash(ServiceRange(100, 3, 9))
    assert s == SocketAddr(0x1001, 77) and hash(s) == hash(SocketAddr(0x1001, 77))
    assert trusted_published(r, s) == Published(ServiceRange(100, 3, 9), SocketAddr(0x1001, 77))
    assert trusted_withdrawn(r, s) == Withdrawn(ServiceRange(100, 3, 9), SocketAddr(0x1001, 77))
    assert type(trusted_published(r, s)) is Published and type(trusted_withdrawn(r, s)) is Withdrawn


def test_range_of_names() -> None:
    rng = ServiceRange(100, 1, 5)
    assert range_of(rng) is rng
    assert range_of(ServiceAddr(100, 4)) == ServiceRange(100, 4, 4)
    assert range_of("svc") is None
    assert as_range(ServiceAddr(100, 4)) == ServiceRange(100, 4, 4)
