"""A stub built from a Service with an interface is typed from its signatures: mypy infers
``int`` for ``await client.stub(calc).add(1, 2)`` (tests/typing/typed_stub.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api", reason="mypy is in the test extra (pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_infers_the_interface_types(tmp_path: Path) -> None:
    out, err, _status = mypy_api.run(
        ["--no-error-summary", "--cache-dir", str(tmp_path), "--follow-imports", "silent", str(ROOT / "tests/typing/typed_stub.py")]
    )
    revealed = re.findall(r'typed_stub\.py:(\d+): note: Revealed type is "([^"]+)"', out)
    assert [t for _line, t in revealed] == ["int", "int", "tipcrpc.rpc.stub.Stub"], out + err
    assert "typed_stub.py" not in "".join(line for line in out.splitlines() if "error" in line), out
