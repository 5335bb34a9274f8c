"""Suite-wide guards.

Every test runs under a timeout (``timeout`` in pyproject.toml, enforced by pytest-timeout),
so a hang fails the test that hung instead of stalling CI. Without the plugin that setting
would be silently ignored: refuse to run instead.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("timeout"):
        raise pytest.UsageError(
            "pytest-timeout is not installed, so a hanging test would stall the run: "
            "install the test extra (pip install -e '.[test]'; ./dev test does it)"
        )
