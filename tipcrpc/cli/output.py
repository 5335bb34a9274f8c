"""Printing for the ``tipcrpc`` command: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any, Sequence, TextIO

__all__ = ["hexaddr", "table", "emit_json", "json_line"]


def hexaddr(addr: int) -> str:
    """A node address as ``tipc`` prints hashes: 8 lower-case hex digits, no prefix."""
    return f"{addr:08x}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO | None = None) -> None:
    """Print ``rows`` under ``headers``, columns left-aligned and padded to the widest cell."""
    out = out or sys.stdout
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for r in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")


def emit_json(value: Any, out: TextIO | None = None) -> None:
    """One JSON document (sorted keys, no NaN) followed by a newline."""
    out = out or sys.stdout
    out.write(json.dumps(value, sort_keys=True, default=_default) + "\n")
    out.flush()


def json_line(value: Any) -> str:
    """One compact JSON line (for streams of events or items)."""
    return json.dumps(value, sort_keys=True, default=_default, separators=(",", ":"))


def _default(value: Any) -> Any:
    # msgpack results may hold bytes or tuples-as-lists; bytes have no JSON form.
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return repr(value)
