"""What a missing piece means: a skip on a developer's machine, a failure under CI.

A plain module (not ``conftest``): several test directories have their own ``conftest.py``,
so ``from conftest import ...`` resolves to whichever one pytest imported first.
"""

from __future__ import annotations

import os

import pytest


def require(ok: bool, reason: str) -> None:
    """Skip with ``reason`` when ``ok`` is false, but fail under CI (``CI=true``): there
    ``./dev test`` installs every extra and runs beside ``../shared``, so a missing piece is
    a broken set-up, not a reason to pass quietly."""
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: this must not be skipped)")
        pytest.skip(reason)
