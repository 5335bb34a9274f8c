"""The documentation cannot rot: its examples and code blocks are executed.

* Every ``examples/*.py`` except the demo and its helpers (``demo.py``, ``calc.py``,
  ``calc_server.py``, run by ``./dev demo``) runs as a subprocess and must exit 0 within its
  timeout, printing the lines listed in :data:`EXPECTED_OUTPUT`.
* In ``docs/*.md``, a ```` ```python ```` block preceded by ``<!-- run -->`` is a complete
  program: it runs as a subprocess with ``TIPCRPC_TRANSPORT=memory`` and must exit 0. A block
  preceded by ``<!-- run: pytest -->`` is a test module: it runs under pytest (with the
  tipcrpc plugin's fixtures, ``asyncio_mode=auto``) and must pass. Every other python block
  must start with ``# fragment`` so a reader knows it is an excerpt.
* Relative links between the docs, the README and the examples must point at files that exist.
* ``docs/api.md`` is what ``./dev docs`` (``tools/apidoc.py``) generates from the docstrings.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tipcrpc import fastpath

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
#: Run by ``./dev demo`` (multi-process, slower): not part of this module.
DEMO_FILES = {"demo.py", "calc.py", "calc_server.py"}
#: Bound for one script; everything here runs in-process on the memory transport.
TIMEOUT_S = 20.0

#: Lines (substrings) each example must print; a new example needs an entry here.
EXPECTED_OUTPUT: dict[str, list[str]] = {
    "sharding.py": ["shard server A publishes", "fan-out:", "every key reached its owner"],
    "watch.py": ["SNAPSHOT_COMPLETE", "ServiceUp", "ServiceDown", "NodeDown", "watch example done"],
    "streaming.py": ["first 5 squares", "left early", "handler closed", "streaming example done"],
    "errors.py": [
        "MethodNotFound",
        "InvalidArguments",
        "RemoteException",
        "DeadlineExceeded",
        "ServiceUnreachable",
        "errors example done",
    ],
    "failover.py": ["the call moved: page 7 rendered by s1-fast", "PeerLost", "graceful stop: charged 3 on s3",
                    "failover example done"],
}

_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!--\s*run(?::\s*(\w+))?\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced python block of a Markdown file."""

    path: Path
    line: int  #: 1-based line of the opening fence
    mode: str | None  #: "script", "pytest", or None (a fragment)
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of ``path`` with the run marker that precedes each (if any)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if lang == "python":
            mode = None
            k = start - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            marker = _MARKER.match(lines[k]) if k >= 0 else None
            if marker is not None:
                mode = marker.group(1) or "script"
            blocks.append(Block(path, start + 1, mode, "\n".join(lines[start + 1 : j]) + "\n"))
        i = j + 1
    return blocks


def doc_files() -> list[Path]:
    return [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]


def all_blocks() -> list[Block]:
    return [b for path in doc_files() for b in python_blocks(path)]


def example_scripts() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.py") if p.name not in DEMO_FILES and not p.name.startswith("_"))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["TIPCRPC_TRANSPORT"] = "memory"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(args)} did not finish within {TIMEOUT_S} s; output so far:\n{exc.stdout}\n{exc.stderr}")


# ---------------------------------------------------------------------- examples


@pytest.mark.parametrize("script", example_scripts(), ids=lambda p: p.name)
def test_example_runs(script: Path) -> None:
    assert script.name in EXPECTED_OUTPUT, f"add the expected output of {script.name} to EXPECTED_OUTPUT"
    proc = _run([sys.executable, str(script)], cwd=ROOT)
    assert proc.returncode == 0, f"{script.name} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    for expected in EXPECTED_OUTPUT[script.name]:
        assert expected in proc.stdout, f"{script.name} did not print {expected!r}:\n{proc.stdout}"
    assert "Traceback" not in proc.stderr, proc.stderr


def test_every_expected_example_exists() -> None:
    names = {p.name for p in example_scripts()}
    assert set(EXPECTED_OUTPUT) <= names, f"missing examples: {sorted(set(EXPECTED_OUTPUT) - names)}"


# ---------------------------------------------------------------------- doc blocks


@pytest.mark.parametrize("block", [b for b in all_blocks() if b.mode == "script"], ids=lambda b: b.id)
def test_doc_block_runs(block: Block, tmp_path: Path) -> None:
    script = tmp_path / f"{block.path.stem}_{block.line}.py"
    script.write_text(block.code, encoding="utf-8")
    proc = _run([sys.executable, str(script)], cwd=tmp_path)
    assert proc.returncode == 0, f"{block.id} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("block", [b for b in all_blocks() if b.mode == "pytest"], ids=lambda b: b.id)
def test_doc_test_module_passes(block: Block, tmp_path: Path) -> None:
    module = tmp_path / f"test_{block.path.stem}_{block.line}.py"
    module.write_text(block.code, encoding="utf-8")
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto",
            "-o", "asyncio_default_fixture_loop_scope=function", "--rootdir", str(tmp_path), str(module)]  # fmt: skip
    proc = _run(args, cwd=tmp_path)
    assert proc.returncode == 0, f"{block.id} failed\n{proc.stdout}\n{proc.stderr}"
    assert re.search(r"\d+ passed", proc.stdout), proc.stdout


def test_doc_blocks_are_marked() -> None:
    """Every python block is either run by this module or visibly a fragment."""
    unmarked = [b.id for b in all_blocks() if b.mode is None and not b.code.lstrip().startswith("# fragment")]
    assert not unmarked, f"python blocks neither preceded by <!-- run --> nor starting with '# fragment': {unmarked}"
    modes = {b.mode for b in all_blocks()}
    assert modes <= {None, "script", "pytest"}, f"unknown run marker in {modes}"
    assert any(b.mode == "script" for b in all_blocks()), "no runnable doc blocks found"


# ---------------------------------------------------------------------- links

_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in _LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue  # http:, https:, mailto:
        if not (doc.parent / target).exists():
            broken.append(target)
    assert not broken, f"{doc.name} links to missing files: {broken}"


# ---------------------------------------------------------------------- API reference


@pytest.mark.skipif(bool(fastpath.compiled_modules()), reason="docs/api.md is generated from the Python modules; "
                    "compiled functions show their signatures and defining modules differently (docs/compiled.md)")
def test_api_reference_is_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("apidoc", ROOT / "tools" / "apidoc.py")
    assert spec is not None and spec.loader is not None
    apidoc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(apidoc)
    committed = (DOCS / "api.md").read_text(encoding="utf-8")
    generated = apidoc.generate()
    assert committed == generated, "docs/api.md is out of date with the docstrings: run ./dev docs and commit it"
    assert "### `class Client`" in generated and "### `remote_exception(" in generated
