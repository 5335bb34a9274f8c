"""The optional compiled fast path (tipcrpc.fastpath, ``./dev build-compiled``).

Whether a build is present or not, the package must say truthfully which modules run
compiled, ``TIPCRPC_PURE=1`` must bring back the ``.py`` files, and the module list must
name real modules. ``TIPCRPC_EXPECT_COMPILED=1`` (set when the suite is run against a
build, docs/compiled.md) turns a silently pure run into a failure.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import tipcrpc
from tipcrpc import fastpath

ROOT = Path(__file__).resolve().parents[2]
_EXTENSION = tuple(importlib.machinery.EXTENSION_SUFFIXES)

# What a fresh interpreter reports about the hot-path modules once it has imported them.
_PROBE = """
import json, sys
import tipcrpc
from tipcrpc import fastpath
for name in fastpath.MODULES:
    __import__(name)
print(json.dumps({"files": {n: sys.modules[n].__file__ for n in fastpath.MODULES},
                  "compiled": tipcrpc.compiled(), "describe": fastpath.describe()}))
"""


def _probe(**env: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True,
                          cwd=ROOT, env={**os.environ, **env})
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_the_module_lists_name_real_source_files() -> None:
    assert not set(fastpath.MODULES) & set(fastpath.EXCLUDED)
    for name in (*fastpath.MODULES, *fastpath.EXCLUDED):
        path = ROOT / (name.replace(".", "/") + ".py")
        assert path.is_file(), f"{name} is listed in tipcrpc/fastpath.py but {path} does not exist"
    for name, why in fastpath.EXCLUDED.items():
        assert why, f"{name} is excluded without a reason"


def test_every_module_of_the_hot_path_packages_is_classified() -> None:
    """A new module of the userspace node, the name table or the RPC core is compiled or excluded with a reason."""
    listed = set(fastpath.MODULES) | set(fastpath.EXCLUDED)
    for package in ("transport/user", "nametable"):
        for path in sorted((ROOT / "tipcrpc" / package).glob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if path.name != "__init__.py":
                assert name in listed, f"{name}: add it to MODULES or EXCLUDED in tipcrpc/fastpath.py"


def test_the_report_matches_the_files_python_loads() -> None:
    result = _probe(TIPCRPC_PURE="0")
    files = result["files"]
    assert isinstance(files, dict)
    compiled = sorted(n for n, f in files.items() if f.endswith(_EXTENSION))
    assert sorted(fastpath.compiled_modules()) == compiled
    assert result["compiled"] is (len(compiled) == len(fastpath.MODULES))
    if not compiled:
        assert result["describe"] == "pure Python"
    elif result["compiled"]:
        assert result["describe"] == f"compiled (mypyc, {len(compiled)} modules)"
    if os.environ.get("TIPCRPC_EXPECT_COMPILED", "") not in ("", "0"):
        assert result["compiled"], f"TIPCRPC_EXPECT_COMPILED is set but Python loads these as source: " \
                                   f"{sorted(set(fastpath.MODULES) - set(compiled))} (run ./dev build-compiled)"
        assert tipcrpc.compiled()


def test_pure_env_loads_every_module_from_its_py_file() -> None:
    result = _probe(TIPCRPC_PURE="1")
    files = result["files"]
    assert isinstance(files, dict)
    for name, path in files.items():
        assert path.endswith(".py"), f"TIPCRPC_PURE=1 but {name} was loaded from {path}"
        assert Path(path).resolve() == (ROOT / (name.replace(".", "/") + ".py")).resolve()
    assert result["compiled"] is False and result["describe"] == "pure Python"


def test_mypyc_attr_leaves_a_class_unchanged_at_run_time() -> None:
    class Plain:
        pass

    assert fastpath.mypyc_attr(native_class=False)(Plain) is Plain
