"""Address and event objects built from values that were checked already, pure.

:class:`~tipcrpc.addr.ServiceRange` and the topology events are frozen slot dataclasses, and
:class:`~tipcrpc.addr.SocketAddr` a tuple, whose constructors validate every field. The name table reports
each publication it holds to every matching subscription — 200 000 events for 100 000 names
published and withdrawn — from values it validated when the publication was inserted, so it
builds these objects through the slot descriptors instead (a third of the cost).
``tests/unit/test_nametable_trusted.py`` checks the results equal the validated constructors'
and that the field lists have not changed.
"""

from __future__ import annotations

from ..addr import ServiceAddr, ServiceRange, SocketAddr
from ..events import Published, Withdrawn

__all__ = ["trusted_range", "trusted_socket", "trusted_published", "trusted_withdrawn", "range_of", "FIELDS"]

_new = object.__new__
_r_type = vars(ServiceRange)["type"].__set__
_r_lower = vars(ServiceRange)["lower"].__set__
_r_upper = vars(ServiceRange)["upper"].__set__
_p_range = vars(Published)["range"].__set__
_p_socket = vars(Published)["socket"].__set__
_w_range = vars(Withdrawn)["range"].__set__
_w_socket = vars(Withdrawn)["socket"].__set__

#: The dataclass fields these builders set, per class (checked by the tests).
FIELDS = {
    ServiceRange: ("type", "lower", "upper"),
    SocketAddr: ("node", "port"),
    Published: ("range", "socket"),
    Withdrawn: ("range", "socket"),
}


def trusted_range(type: int, lower: int, upper: int) -> ServiceRange:
    """``ServiceRange(type, lower, upper)`` for values known to be valid."""
    r = _new(ServiceRange)
    _r_type(r, type)
    _r_lower(r, lower)
    _r_upper(r, upper)
    return r


_tuple_new = tuple.__new__


def trusted_socket(node: int, port: int) -> SocketAddr:
    """``SocketAddr(node, port)`` for values known to be valid (a tuple underneath)."""
    return _tuple_new(SocketAddr, (node, port))


def trusted_published(rng: ServiceRange, sock: SocketAddr) -> Published:
    """``Published(rng, sock)``."""
    e = _new(Published)
    _p_range(e, rng)
    _p_socket(e, sock)
    return e


def trusted_withdrawn(rng: ServiceRange, sock: SocketAddr) -> Withdrawn:
    """``Withdrawn(rng, sock)``."""
    e = _new(Withdrawn)
    _w_range(e, rng)
    _w_socket(e, sock)
    return e


def range_of(name: object) -> ServiceRange | None:
    """``name`` as a range if it is a :class:`ServiceRange` or :class:`ServiceAddr` (both were
    validated when they were made), else ``None``."""
    cls = name.__class__
    if cls is ServiceRange:
        return name  # type: ignore[return-value]
    if cls is ServiceAddr:
        i = name.instance  # type: ignore[attr-defined]
        return trusted_range(name.type, i, i)  # type: ignore[attr-defined]
    return None
