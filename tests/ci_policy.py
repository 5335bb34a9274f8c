"""What a missing piece means: a skip on a developer's machine, a failure under CI.

A plain module (not ``conftest``): several test directories have their own ``conftest.py``,
so ``from conftest import ...`` resolves to whichever one pytest imported first.
"""

from __future__ import annotations

import os

import pytest


#: Under CI (``CI=true``) ``./dev test`` installs every extra and runs beside ``../shared``,
#: so a missing piece is a broken set-up, not a reason to pass quietly.
CI = os.environ.get("CI") == "true"


def requires(ok: bool, reason: str) -> pytest.MarkDecorator:
    """Mark a test that needs something: skipped with ``reason`` where ``ok`` is false, except
    under CI, where the test runs and its :func:`require` fails with ``reason``."""
    return pytest.mark.skipif(not ok and not CI, reason=reason)


def require(ok: bool, reason: str) -> None:
    """Inside a test marked :func:`requires`: fail with ``reason`` when ``ok`` is false
    (reached only where the mark did not skip, i.e. under CI)."""
    if not ok:
        pytest.fail(f"{reason} (CI=true: this must not be skipped)")
