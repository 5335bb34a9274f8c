"""Call bookkeeping and error mapping shared by client and server (layer L1, pure).

* :class:`CallIds` hands out 64-bit call ids (never 0).
* :class:`PendingTable` maps call ids to in-flight state and tracks their deadlines as plain
  numbers: the I/O shell passes ``now`` in and arms one timer for :meth:`next_deadline`.
* :func:`failure_to_exception` / :func:`exception_to_failure` translate between Python
  exceptions and FAILURE frames; they live in :mod:`tipcrpc.rpc.remote_errors` and are
  re-exported here.

The frame layout itself lives in :mod:`tipcrpc.rpc.frames`, chunking in
:mod:`tipcrpc.rpc.chunks`; both are re-exported here.
"""

from __future__ import annotations

import heapq
from typing import Any, Generic, Iterator, TypeVar

from .chunks import *  # noqa: F401,F403
from .chunks import __all__ as _chunks_all
from .frames import *  # noqa: F401,F403
from .frames import __all__ as _frames_all
from .remote_errors import exception_to_failure, failure_to_exception

__all__ = [
    "CallIds",
    "PendingTable",
    "remaining",
    "failure_to_exception",
    "exception_to_failure",
    *_frames_all,
    *_chunks_all,
]

V = TypeVar("V")
_U64 = 0xFFFF_FFFF_FFFF_FFFF


class CallIds:
    """A 64-bit call-id counter starting at ``start`` (pass a random seed), skipping 0."""

    __slots__ = ("_next",)

    def __init__(self, start: int = 1) -> None:
        self._next = (start & _U64) or 1

    def __call__(self) -> int:
        cid = self._next
        nxt = (cid + 1) & _U64
        self._next = nxt or 1
        return cid


class PendingTable(Generic[V]):
    """In-flight entries keyed by call id, each with an optional absolute deadline.

    Deadlines live in a heap with lazy deletion: removing an entry is O(1) and its heap slot
    is skipped (and periodically compacted) later, so the hot path — add then pop — costs one
    dict insert, one dict delete and at most one heap push.
    """

    __slots__ = ("_entries", "_deadlines", "_heap")

    def __init__(self) -> None:
        self._entries: dict[int, V] = {}
        self._deadlines: dict[int, float] = {}
        self._heap: list[tuple[float, int]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._entries

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._entries))

    def values(self) -> list[V]:
        return list(self._entries.values())

    def items(self) -> list[tuple[int, V]]:
        return list(self._entries.items())

    def get(self, call_id: int) -> V | None:
        return self._entries.get(call_id)

    def add(self, call_id: int, entry: V, deadline: float | None = None) -> None:
        """Insert ``entry``; raises :class:`KeyError` if ``call_id`` is already present."""
        if call_id in self._entries:
            raise KeyError(f"call id {call_id} already pending")
        self._entries[call_id] = entry
        if deadline is not None:
            self._deadlines[call_id] = deadline
            heapq.heappush(self._heap, (deadline, call_id))

    def set_deadline(self, call_id: int, deadline: float | None) -> None:
        """Change (or clear) the deadline of a present entry."""
        if call_id not in self._entries:
            return
        if deadline is None:
            self._deadlines.pop(call_id, None)
            return
        self._deadlines[call_id] = deadline
        heapq.heappush(self._heap, (deadline, call_id))
        self._maybe_compact()

    def pop(self, call_id: int) -> V | None:
        """Remove and return the entry, or ``None`` if absent (e.g. already completed)."""
        entry = self._entries.pop(call_id, None)
        if entry is not None:
            self._deadlines.pop(call_id, None)
            if len(self._heap) > 64 and len(self._heap) > 4 * len(self._deadlines):
                self._maybe_compact()
        return entry

    def _maybe_compact(self) -> None:
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._deadlines):
            self._heap = [(d, c) for d, c in self._heap if self._deadlines.get(c) == d]
            heapq.heapify(self._heap)

    def _clean_top(self) -> None:
        heap, deadlines = self._heap, self._deadlines
        while heap:
            d, c = heap[0]
            if deadlines.get(c) == d:
                return
            heapq.heappop(heap)

    def next_deadline(self) -> float | None:
        """The earliest deadline among present entries, or ``None``."""
        self._clean_top()
        return self._heap[0][0] if self._heap else None

    def expire(self, now: float) -> list[tuple[int, V]]:
        """Remove and return every entry whose deadline is ``<= now``, earliest first."""
        out: list[tuple[int, V]] = []
        heap, deadlines = self._heap, self._deadlines
        while heap:
            d, c = heap[0]
            if deadlines.get(c) != d:
                heapq.heappop(heap)
                continue
            if d > now:
                break
            heapq.heappop(heap)
            del deadlines[c]
            out.append((c, self._entries.pop(c)))
        return out


def remaining(deadline: float | None, now: float) -> float | None:
    """Seconds left until ``deadline`` (never negative), or ``None`` for no deadline."""
    if deadline is None:
        return None
    left = deadline - now
    return left if left > 0.0 else 0.0
