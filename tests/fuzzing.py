"""Shared driver and strategies of the slow fuzz tier.

``fuzz(strategy, check)`` returns how many inputs ``check`` was given, so each test can
assert that it really tried at least :data:`CASES` (hypothesis stops early if a strategy's
space is exhausted, which would silently weaken the tier) and print the figure
(``pytest -s -m slow`` shows them). Runs are derandomized: the same inputs every run.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Callable

import msgpack
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tipcrpc.rpc import frames as F

#: Cases per decoder in the slow tier (issue 12 asks for at least 10 000). A quick local
#: check of the tier's plumbing may lower it: TIPCRPC_FUZZ_CASES=200 pytest -m slow ...
CASES = int(os.environ.get("TIPCRPC_FUZZ_CASES", "10000"))


def fuzz(strategy: st.SearchStrategy[Any], check: Callable[[Any], None], cases: int = CASES) -> int:
    """Feed ``cases`` generated inputs to ``check``; return the number of calls made."""
    tried = 0

    @settings(
        max_examples=cases,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(data: Any) -> None:
        nonlocal tried
        tried += 1
        check(data)

    run()
    return tried


def generate(strategy: st.SearchStrategy[Any], n: int = CASES) -> list[Any]:
    """``n`` derandomized hypothesis examples, collected (sending them needs the event loop)."""
    out: list[Any] = []
    fuzz(strategy, out.append, n)
    assert len(out) >= n
    return out


class LoopErrors:
    """Records every call of the loop's exception handler while installed."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self._loop = asyncio.get_running_loop()
        self._old = self._loop.get_exception_handler()

    def __enter__(self) -> LoopErrors:
        self._loop.set_exception_handler(lambda _loop, ctx: self.seen.append(ctx))
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.set_exception_handler(self._old)


def shorter_than_a_header(items: list[bytes]) -> int:
    """How many of ``items`` are shorter than an RPC frame header: whatever else a receiver
    does with the rest, each of these must be counted ``malformed``."""
    return sum(1 for f in items if len(f) < F.HEADER_SIZE)


def report(name: str, tried: int) -> None:
    print(f"\nfuzz {name}: {tried} cases")
    assert tried >= CASES, f"{name}: only {tried} of {CASES} cases were tried"


# -- RPC frame strategies (unit fuzzing and the live-socket floods share them) ------------------

# A valid header of any kind with any flags/aux/call id, then a random body.
headers = st.builds(
    lambda version, kind, flags, aux, cid: F.HEADER.pack(version, kind, flags, 0, aux, cid),
    st.sampled_from([F.VERSION, F.VERSION, F.VERSION, 0, 2, 255]),
    st.sampled_from([int(k) for k in F.Kind] + [0, 200]),
    st.integers(0, 255),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**64 - 1),
)
# msgpack of arbitrary structure, so body decoders see well-formed msgpack of the wrong shape.
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=6,
)
packed = values.map(lambda v: msgpack.packb(v, use_bin_type=True))
bodies = st.one_of(st.binary(max_size=300), packed)
frames = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda h, b: h + b, headers, bodies),
    st.builds(lambda h, n: h[:n], headers, st.integers(0, F.HEADER_SIZE - 1)),  # truncated header
)
