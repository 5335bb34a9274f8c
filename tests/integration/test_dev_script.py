"""The ./dev script: names no download address, and says which Debian package to install
when Python's venv module is missing (instead of fetching pip from somewhere)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dev_names_no_download_address() -> None:
    text = (ROOT / "dev").read_text()
    assert not re.search(r"https?://|pypi\.org|files\.pythonhosted", text), "dev must not name a download address"


def test_missing_venv_module_is_reported_with_the_debian_package(tmp_path: Path) -> None:
    shutil.copy(ROOT / "dev", tmp_path / "dev")
    # A python3 whose venv module is broken, as on Debian without python3-venv.
    fake = tmp_path / "python3-without-venv"
    fake.write_text('#!/bin/sh\nif [ "$1" = "-m" ] && [ "$2" = "venv" ]; then\n'
                    '  echo "ensurepip is not available" >&2; exit 1\nfi\nexit 0\n')
    fake.chmod(0o755)
    proc = subprocess.run(["sh", str(tmp_path / "dev"), "demo"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": str(fake)}, check=False)
    assert proc.returncode != 0
    assert "python3-venv" in proc.stderr and "apt-get install" in proc.stderr
    assert not (tmp_path / ".venv").exists()


def test_demo_needs_no_extras() -> None:
    text = (ROOT / "dev").read_text()
    demo = text[text.index("\ndemo)"):text.index(";;", text.index("\ndemo)"))]
    assert 'ensure_venv ""' in demo, "./dev demo installs tipcrpc without extras"
