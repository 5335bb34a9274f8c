"""Interval indexes of the name table, pure: service ranges of one type, and subscriptions.

:class:`RangeIndex` keeps the service ranges of one type in the kernel's tree order (sorted by
``lower``; a newer range before an older one with the same ``lower``) and answers "the first
range containing instance *i*" and "every range overlapping ``[lo, hi]``, in order". The
kernel uses an RB tree augmented with the largest ``upper`` of each subtree
(``net/tipc/name_table.c``: ``sr->max``); a balanced tree walked in Python costs a dozen
attribute-chasing steps per operation, so this is the usual Python substitute — a *blocked*
sorted list (blocks of at most :data:`BLOCK_MAX` entries, bisected twice), with the same
augmentation kept as running maxima:

* per block, the running maximum of ``upper`` in block order (``_bpre``);
* across blocks, the running maximum of the blocks' maxima (``_top``).

Both are brought up to date lazily — a mutation only marks what it may have changed — so a
burst of publications or withdrawals costs O(log n) each (plus a memmove inside one block),
and the first lookup after it pays for the blocks it touches once. Appending in order (the
usual way names are published) and removing the newest keep everything valid as they go.

:class:`Subscribers` holds the subscriptions of one type and finds the ones overlapping a
publication without trying each: sorted by ``lower`` with running maxima of ``upper``,
rebuilt when a subscription comes or goes (rare next to publications).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate
from typing import Any, Generic, Iterator, Protocol, TypeVar

__all__ = ["BLOCK_MAX", "Ranged", "RangeIndex", "Subscribers"]

#: Most entries in one block of a :class:`RangeIndex` (a full block is split in two).
BLOCK_MAX = 512
#: Sort key = ``lower << _SEQ_BITS | (_SEQ_MASK - seq)``: by lower, newest range first.
_SEQ_BITS = 40
_SEQ_MASK = (1 << _SEQ_BITS) - 1
#: Up to this many subscriptions per type are matched by trying each (no index).
_FEW_SUBSCRIBERS = 8


class Ranged(Protocol):
    """What a :class:`RangeIndex` holds: a ``[lower, upper]`` and a slot for its sort key."""

    lower: int
    upper: int
    order: int


R = TypeVar("R", bound=Ranged)


class RangeIndex(Generic[R]):
    """Ranges of one type in tree order; see the module docstring."""

    __slots__ = ("_keys", "_items", "_uppers", "_firsts", "_bpre", "_top", "_valid", "_len", "_seq", "_block_max")

    def __init__(self, block_max: int | None = None) -> None:
        if block_max is None:
            block_max = BLOCK_MAX  # read at call time: tests shrink it to exercise many blocks
        if block_max < 2:
            raise ValueError("block_max must be at least 2")
        self._block_max = block_max
        self._keys: list[list[int]] = []  # per block: sort keys, ascending
        self._items: list[list[R]] = []  # per block, parallel to _keys
        self._uppers: list[list[int]] = []  # per block, parallel to _keys
        self._firsts: list[int] = []  # first key of each block
        self._bpre: list[list[int] | None] = []  # per block: running max of uppers, None = stale
        self._top: list[int] = []  # running max over blocks of their max upper; valid for [:_valid]
        self._valid = 0
        self._len = 0
        self._seq = 0

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[R]:
        """Every range, in tree order."""
        for items in self._items:
            yield from items

    # -- mutation -------------------------------------------------------------------------

    def add(self, item: R) -> None:
        """Insert ``item`` before every range with the same ``lower`` (it is the newest)."""
        key = item.lower << _SEQ_BITS | (_SEQ_MASK - self._seq)
        self._seq += 1
        item.order = key
        upper = item.upper
        self._len += 1
        if not self._keys:
            self._keys.append([key])
            self._items.append([item])
            self._uppers.append([upper])
            self._firsts.append(key)
            self._bpre.append([upper])
            self._top.append(upper)
            self._valid = 0
            return
        b = bisect_right(self._firsts, key) - 1
        if b < 0:
            b = 0
        keys = self._keys[b]
        i = bisect_left(keys, key)
        keys.insert(i, key)
        self._items[b].insert(i, item)
        self._uppers[b].insert(i, upper)
        if i == 0:
            self._firsts[b] = key
        bpre = self._bpre[b]
        if bpre is not None:
            # Running maxima after position i grow to at least `upper`; in the two common
            # cases the list stays valid without a rebuild.
            if i == len(bpre):
                bpre.append(upper if not bpre or upper > bpre[-1] else bpre[-1])
            elif i > 0 and upper <= bpre[i - 1]:
                bpre.insert(i, bpre[i - 1])
            else:
                self._bpre[b] = None
        if b < self._valid and upper > self._top[b]:
            self._valid = b
        if len(keys) > self._block_max:
            self._split(b)

    def remove(self, item: R) -> None:
        """Remove ``item`` (which must be in the index)."""
        key = item.order
        b = bisect_right(self._firsts, key) - 1
        keys = self._keys[b] if b >= 0 else []
        i = bisect_left(keys, key)
        if i == len(keys) or keys[i] != key:
            raise KeyError(f"range [{item.lower}, {item.upper}] is not in the index")
        self._len -= 1
        del keys[i]
        del self._items[b][i]
        upper = self._uppers[b].pop(i)
        if not keys:
            for lst in (self._keys, self._items, self._uppers, self._firsts, self._bpre, self._top):
                del lst[b]
            if b < self._valid:
                self._valid = b
            return
        if i == 0:
            self._firsts[b] = keys[0]
        bpre = self._bpre[b]
        if bpre is not None:
            if i == len(bpre) - 1:
                bpre.pop()  # the maxima before the last entry do not depend on it
            else:
                self._bpre[b] = None
        if b < self._valid and upper >= self._top[b]:
            self._valid = b  # it may have been the maximum

    def _split(self, b: int) -> None:
        half = len(self._keys[b]) // 2
        lists: tuple[list[Any], ...] = (self._keys, self._items, self._uppers)
        for lst in lists:
            whole = lst[b]
            lst.insert(b + 1, whole[half:])
            del whole[half:]
        self._firsts.insert(b + 1, self._keys[b + 1][0])
        self._bpre[b] = None
        self._bpre.insert(b + 1, None)
        self._top.insert(b + 1, 0)
        if b < self._valid:
            self._valid = b

    # -- queries --------------------------------------------------------------------------

    def _block_prefix(self, b: int) -> list[int]:
        bpre = self._bpre[b]
        if bpre is None:
            bpre = self._bpre[b] = list(accumulate(self._uppers[b], max))
        return bpre

    def _ensure(self, nblocks: int) -> None:
        """Make ``_top[:nblocks]`` valid."""
        v = self._valid
        if v >= nblocks:
            return
        top = self._top
        acc = top[v - 1] if v else -1
        bpre = self._bpre
        for b in range(v, nblocks):
            p = bpre[b]
            m = p[-1] if p is not None else max(self._uppers[b])
            if m > acc:
                acc = m
            top[b] = acc
        self._valid = nblocks

    def first_containing(self, instance: int) -> R | None:
        """The first range (tree order) with ``lower <= instance <= upper``, or ``None``."""
        limit = instance << _SEQ_BITS | _SEQ_MASK  # the largest key with lower == instance
        nb = bisect_right(self._firsts, limit)  # blocks starting at or below instance
        if not nb:
            return None
        self._ensure(nb)
        b = bisect_left(self._top, instance, 0, nb)
        if b == nb:
            return None
        bpre = self._block_prefix(b)
        k = bisect_right(self._keys[b], limit) if b == nb - 1 else len(bpre)
        i = bisect_left(bpre, instance, 0, k)
        return self._items[b][i] if i < k else None

    def overlapping(self, lo: int, hi: int) -> Iterator[R]:
        """Ranges overlapping ``[lo, hi]``, in tree order."""
        limit = hi << _SEQ_BITS | _SEQ_MASK
        nb = bisect_right(self._firsts, limit)
        if not nb:
            return
        self._ensure(nb)
        for b in range(bisect_left(self._top, lo, 0, nb), nb):
            bpre = self._block_prefix(b)
            k = bisect_right(self._keys[b], limit) if b == nb - 1 else len(bpre)
            items = self._items[b]
            for i in range(bisect_left(bpre, lo, 0, k), k):
                r = items[i]
                if r.upper >= lo:
                    yield r

    def check(self) -> None:
        """Assert every internal invariant (for tests)."""
        assert len(self._keys) == len(self._items) == len(self._uppers) == len(self._firsts)
        assert len(self._firsts) == len(self._bpre) == len(self._top)
        flat = [k for keys in self._keys for k in keys]
        assert flat == sorted(flat) and len(set(flat)) == len(flat) == self._len
        for b, keys in enumerate(self._keys):
            assert 0 < len(keys) <= self._block_max
            assert self._firsts[b] == keys[0]
            assert [r.order for r in self._items[b]] == keys
            assert [r.upper for r in self._items[b]] == self._uppers[b]
            if self._bpre[b] is not None:
                assert self._bpre[b] == list(accumulate(self._uppers[b], max))
        acc = -1
        for b in range(self._valid):
            acc = max(acc, max(self._uppers[b]))
            assert self._top[b] == acc


class _Subscriber(Protocol):
    lower: int
    upper: int


S = TypeVar("S", bound=_Subscriber)


class Subscribers(Generic[S]):
    """The subscriptions of one type, in attach order; see the module docstring."""

    __slots__ = ("members", "_index")

    def __init__(self) -> None:
        #: The subscriptions, in attach order (test ``if subs.members`` on hot paths: a
        #: dict's truth value costs no Python call).
        self.members: dict[S, None] = {}
        # (lowers, running max of uppers, subscriptions, their attach ranks), sorted by lower
        self._index: tuple[list[int], list[int], list[S], list[int]] | None = None

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[S]:
        return iter(list(self.members))

    def add(self, sub: S) -> None:
        self.members[sub] = None
        self._index = None

    def remove(self, sub: S) -> bool:
        """Detach ``sub``; False if it was not attached."""
        if sub not in self.members:
            return False
        del self.members[sub]
        self._index = None
        return True

    def overlapping(self, lower: int, upper: int) -> list[S]:
        """The subscriptions whose range overlaps ``[lower, upper]``, in attach order."""
        subs = self.members
        if len(subs) <= _FEW_SUBSCRIBERS:
            return [s for s in subs if s.lower <= upper and s.upper >= lower]
        index = self._index
        if index is None:
            ranked = sorted(((s.lower, rank, s) for rank, s in enumerate(subs)), key=lambda e: (e[0], e[1]))
            index = self._index = (
                [e[0] for e in ranked],
                list(accumulate((e[2].upper for e in ranked), max)),
                [e[2] for e in ranked],
                [e[1] for e in ranked],
            )
        lowers, maxes, ordered, ranks = index
        hi = bisect_right(lowers, upper)
        found = [(ranks[i], ordered[i]) for i in range(bisect_left(maxes, lower, 0, hi), hi)
                 if ordered[i].upper >= lower]
        if len(found) > 1:
            found.sort(key=_rank)
        return [s for _r, s in found]


def _rank(e: tuple[int, object]) -> int:
    return e[0]
