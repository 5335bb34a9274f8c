"""The client's view of one service type and how it picks an instance (layer L1, pure).

A :class:`Membership` is fed the ``Published``/``Withdrawn`` events of a PORTS subscription
to ``{type, 0, 2**32-1}`` and answers "which socket should this call go to?".

Policies (:class:`Policy`):

* ``round_robin`` (default) — rotate over the candidate sockets;
* ``local_first`` — rotate over candidates on the caller's own node, others only if none;
* ``least_outstanding`` — the candidate with the fewest calls in flight from this client
  (ties broken round-robin).

Routing by key (:func:`key_to_instance`): an ``int`` key *is* the instance (it must fit in
32 bits). Any other key (``str`` — UTF-8 —, ``bytes``) is hashed with SHA-256; the first four
bytes, big-endian, give ``h``, and ``h mod N`` indexes the sorted union of all published
instance ranges (``N`` instances in total). The mapping is stable for a given set of
published ranges — typically a fixed shard space such as ``instances=range(1024)`` split
across servers — and changes only if the union of ranges changes.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Callable, Iterable, Mapping

from ..addr import U32_MAX, ServiceRange, SocketAddr
from ..errors import AddressError, UsageError

__all__ = ["Policy", "policy_of", "Membership", "key_to_instance", "merge_ranges"]


class Policy(str, enum.Enum):
    """How a client picks among the instances that can serve a call."""

    ROUND_ROBIN = "round_robin"
    LOCAL_FIRST = "local_first"
    LEAST_OUTSTANDING = "least_outstanding"


def policy_of(value: Policy | str) -> Policy:
    """Parse a policy name (any case) or :class:`Policy`; :class:`UsageError` if unknown."""
    if isinstance(value, Policy):
        return value
    if isinstance(value, str):
        try:
            return Policy(value.strip().lower())
        except ValueError:
            pass
    else:
        raise TypeError(f"policy must be a Policy or a string, got {value!r}")
    names = ", ".join(p.value for p in Policy)
    raise UsageError(f"unknown policy {value!r}; choose one of {names}")


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, coalesced union of inclusive ``(lower, upper)`` ranges."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def key_to_instance(key: object, ranges: Iterable[tuple[int, int]]) -> int | None:
    """Map a routing key to an instance (see the module docstring).

    Returns ``None`` when a non-integer key must be mapped but nothing is published.
    Raises :class:`AddressError` for negative/oversized int keys and unsupported key types.
    """
    if isinstance(key, bool) or not isinstance(key, (int, str, bytes, bytearray, memoryview)):
        raise AddressError(f"routing keys must be int, str or bytes, got {type(key).__qualname__}")
    if isinstance(key, int):
        if not 0 <= key <= U32_MAX:
            raise AddressError(f"an integer key is an instance and must be in 0..{U32_MAX}, got {key}")
        return key
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    h = int.from_bytes(hashlib.sha256(raw).digest()[:4], "big")
    merged = merge_ranges(ranges)
    size = sum(hi - lo + 1 for lo, hi in merged)
    if size == 0:
        return None
    offset = h % size
    for lo, hi in merged:
        width = hi - lo + 1
        if offset < width:
            return lo + offset
        offset -= width
    raise AssertionError("unreachable")  # pragma: no cover


class Membership:
    """Publications of one service type, as seen through a topology subscription."""

    __slots__ = ("type", "_pubs", "_sockets", "_rr", "ready")

    def __init__(self, type: int) -> None:
        self.type = type
        # socket -> set of (lower, upper) it publishes for this type
        self._pubs: dict[SocketAddr, set[tuple[int, int]]] = {}
        self._sockets: list[SocketAddr] = []  # sorted, for stable round-robin order
        self._rr = 0
        #: Set once the subscription's snapshot has been applied.
        self.ready = False

    # -- updates ------------------------------------------------------------------------------

    def published(self, rng: ServiceRange, socket: SocketAddr) -> None:
        ranges = self._pubs.get(socket)
        if ranges is None:
            self._pubs[socket] = {(rng.lower, rng.upper)}
            self._sockets = sorted(self._pubs, key=lambda s: (s.node, s.port))
        else:
            ranges.add((rng.lower, rng.upper))

    def withdrawn(self, rng: ServiceRange, socket: SocketAddr) -> bool:
        """Apply a withdrawal; ``True`` if ``socket`` now publishes nothing of this type."""
        ranges = self._pubs.get(socket)
        if ranges is None:
            return False
        ranges.discard((rng.lower, rng.upper))
        if ranges:
            return False
        del self._pubs[socket]
        self._sockets = [s for s in self._sockets if s != socket]
        return True

    def node_down(self, node: int) -> list[SocketAddr]:
        """Forget every socket on ``node``; returns them."""
        gone = [s for s in self._pubs if s.node == node]
        for s in gone:
            del self._pubs[s]
        if gone:
            self._sockets = [s for s in self._sockets if s.node != node]
        return gone

    # -- queries ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._sockets)

    def __contains__(self, socket: object) -> bool:
        return socket in self._pubs

    def sockets(self) -> list[SocketAddr]:
        """Every publishing socket, in stable order."""
        return list(self._sockets)

    def publications(self) -> list[tuple[SocketAddr, ServiceRange]]:
        """Every ``(socket, range)``, sorted."""
        return [
            (s, ServiceRange(self.type, lo, hi)) for s in self._sockets for lo, hi in sorted(self._pubs[s])
        ]

    def ranges(self) -> list[tuple[int, int]]:
        """Every published ``(lower, upper)`` (with repetitions)."""
        return [r for rs in self._pubs.values() for r in rs]

    def candidates(self, instance: int | None) -> list[SocketAddr]:
        """Sockets publishing ``instance`` (every socket if ``None``), in stable order."""
        if instance is None:
            return self._sockets
        return [s for s in self._sockets if any(lo <= instance <= hi for lo, hi in self._pubs[s])]

    def route(self, policy: Policy, own_node: int = 0,
              outstanding: Mapping[SocketAddr, int] | None = None) -> tuple[SocketAddr, int] | None:  # fmt: skip
        """The socket for a new call routed by neither key nor instance (as :meth:`pick`
        chooses it) and how many sockets there were to choose from; ``None`` if none."""
        socks = self._sockets
        n = len(socks)
        if n == 1:
            return socks[0], 1  # what pick() returns for a single candidate, without its work
        sock = self.pick(policy, own_node=own_node, outstanding=outstanding) if n else None
        return None if sock is None else (sock, n)

    def pick(
        self,
        policy: Policy,
        *,
        instance: int | None = None,
        exclude: Iterable[SocketAddr] = (),
        own_node: int = 0,
        outstanding: Mapping[SocketAddr, int] | Callable[[SocketAddr], int | None] | None = None,
    ) -> SocketAddr | None:
        """Choose a socket for a call, or ``None`` if no candidate is left.

        ``exclude`` lists sockets already tried by this call; they are used again only when
        nothing else remains. ``outstanding`` gives per-socket in-flight counts for
        ``least_outstanding`` (a mapping to ints, or a function).
        """
        cands = self.candidates(instance)
        if not cands:
            return None
        if exclude:
            excluded = set(exclude)
            fresh = [s for s in cands if s not in excluded]
            if fresh:
                cands = fresh
        n = len(cands)
        if n == 1:
            return cands[0]
        self._rr = rr = (self._rr + 1) & 0x7FFF_FFFF
        if policy is Policy.LOCAL_FIRST:
            local = [s for s in cands if s.node == own_node]
            if local:
                cands = local
                n = len(cands)
            return cands[rr % n]
        if policy is Policy.LEAST_OUTSTANDING and outstanding is not None:
            count = outstanding if callable(outstanding) else outstanding.get
            best = None
            best_n = -1
            for i in range(n):
                s = cands[(rr + i) % n]
                c = count(s) or 0
                if best is None or c < best_n:
                    best, best_n = s, c
                    if c == 0:
                        break
            return best
        return cands[rr % n]
