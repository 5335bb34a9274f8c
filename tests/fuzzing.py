"""Shared driver of the slow fuzz tier: run a check on ``cases`` hypothesis examples.

``fuzz(strategy, check)`` returns how many inputs ``check`` was given, so each test can
assert that it really tried at least :data:`CASES` (hypothesis stops early if a strategy's
space is exhausted, which would silently weaken the tier) and print the figure
(``pytest -s -m slow`` shows them). Runs are derandomized: the same inputs every run.
"""

from __future__ import annotations

from typing import Any, Callable

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

#: Cases per decoder in the slow tier (issue 12 asks for at least 10 000).
CASES = 10_000


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


def report(name: str, tried: int) -> None:
    print(f"\nfuzz {name}: {tried} cases")
    assert tried >= CASES, f"{name}: only {tried} of {CASES} cases were tried"
