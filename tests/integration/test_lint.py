"""Static checks as tests, so every landing runs them: ruff and ``mypy --strict`` of the package.

Both read their configuration from pyproject.toml (``./dev lint`` runs the same two
commands). Skipped, with the reason, when the ``test`` extra's tools are not installed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from ci_policy import require, requires

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


RUFF = (importlib.util.find_spec("ruff") is not None, "ruff not installed: pip install -e .[test]")
MYPY = (importlib.util.find_spec("mypy") is not None, "mypy not installed: pip install -e .[test]")


@requires(*RUFF)
def test_ruff_is_clean() -> None:
    require(*RUFF)
    proc = _run("ruff", "check", "tipcrpc", "tests", "bench", "examples", "tools")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


@requires(*MYPY)
def test_mypy_strict_is_clean() -> None:
    require(*MYPY)
    proc = _run("mypy")  # files and strictness: [tool.mypy] in pyproject.toml
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "Success" in proc.stdout
