"""What one socket has published (the bookkeeping of ``tipc_sk_publish``/``tipc_sk_withdraw``), pure.

Every endpoint of every transport keeps the same record: which ``(range, scope)`` pairs it
has bound, in publication order, and the *key* of each binding. The key is what makes a
publication unique in the cluster's name tables; the kernel computes it as ``portid +
pub_count + 1`` (``socket.c``), so do we.
"""

from __future__ import annotations

from ..addr import Scope, ServiceAddr, ServiceRange, check_publishable
from ..errors import AddressError
from .trusted import range_of

__all__ = ["as_range", "check_scope", "Bindings"]

_U32 = 0xFFFF_FFFF


def as_range(name: object) -> ServiceRange:
    """``name`` as a :class:`ServiceRange` (a :class:`ServiceAddr` is a one-instance range).

    Raises :class:`AddressError` for anything else.
    """
    r = range_of(name)
    if r is not None:
        return r
    if isinstance(name, ServiceRange):  # a subclass
        return name
    if isinstance(name, ServiceAddr):
        return name.as_range()
    raise AddressError(f"expected a ServiceAddr or ServiceRange, got {name!r}")


def check_scope(scope: object) -> Scope:
    """``scope`` as a :class:`Scope`; raises :class:`AddressError` if it is not one."""
    if scope is Scope.CLUSTER or scope is Scope.NODE:
        return scope
    if isinstance(scope, int):
        try:
            return Scope(scope)
        except ValueError:
            pass
    raise AddressError(f"scope must be Scope.NODE or Scope.CLUSTER, got {scope!r}")


class Bindings:
    """The publications of the socket with port ``port``: ``(range, scope) -> key``."""

    __slots__ = ("port", "_keys", "_pub_count")

    def __init__(self, port: int) -> None:
        self.port = port
        self._keys: dict[tuple[ServiceRange, Scope], int] = {}  # publication order
        self._pub_count = 0

    @staticmethod
    def check(name: object, scope: object) -> tuple[ServiceRange, Scope]:
        """Validate a name to publish: a range or address of a non-reserved type, a scope.

        Raises :class:`AddressError`.
        """
        r = as_range(name)
        check_publishable(r)
        return r, check_scope(scope)

    def bind(self, r: ServiceRange, scope: Scope) -> int | None:
        """Record a new binding and return its key; ``None`` if already bound at that scope."""
        if (r, scope) in self._keys:
            return None
        self._pub_count += 1
        key = self._keys[(r, scope)] = (self.port + self._pub_count) & _U32
        return key

    def unbind(self, name: object, scope: object) -> tuple[ServiceRange, int] | None:
        """Forget a binding; ``(range, key)``, or ``None`` if it was not bound.

        Raises :class:`AddressError` for a malformed name or scope.
        """
        r = as_range(name)
        key = self._keys.pop((r, check_scope(scope)), None)
        return None if key is None else (r, key)

    def take_all(self) -> list[tuple[ServiceRange, Scope, int]]:
        """Forget every binding; returns them in publication order (socket release)."""
        out = [(r, scope, key) for (r, scope), key in self._keys.items()]
        self._keys.clear()
        return out

    def __contains__(self, item: tuple[ServiceRange, Scope]) -> bool:
        return item in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def names(self) -> list[tuple[ServiceRange, Scope]]:
        """The bound ``(range, scope)`` pairs, in publication order."""
        return list(self._keys)
