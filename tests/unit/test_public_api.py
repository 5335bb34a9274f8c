"""The public surface: ``tipcrpc.__all__`` is complete and exact, modules declare ``__all__``,
the package is marked typed, and the version has one source."""

from __future__ import annotations

import importlib
import types
from pathlib import Path

import tipcrpc
from tipcrpc import errors, events

PKG = Path(tipcrpc.__file__).parent


def test_all_lists_exactly_the_public_names() -> None:
    public = {n for n, v in vars(tipcrpc).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    listed = set(tipcrpc.__all__) - {"__version__"}
    assert public == listed, f"not in __all__: {sorted(public - listed)}; listed but absent: {sorted(listed - public)}"
    assert len(tipcrpc.__all__) == len(set(tipcrpc.__all__))
    assert set(errors.__all__) <= listed and set(events.__all__) <= listed


def test_every_module_declares_all_and_its_names_exist() -> None:
    missing = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        if name in ("tipcrpc.testing.plugin", "tipcrpc.transport", "tipcrpc.__main__"):
            continue  # a pytest plugin (fixtures are found by pytest), a namespace, an entry point
        module = importlib.import_module(name)
        if not hasattr(module, "__all__"):
            missing.append(name)
            continue
        absent = [n for n in module.__all__ if not hasattr(module, n)]
        assert not absent, f"{name}.__all__ lists missing names {absent}"
    assert not missing, f"modules without __all__: {missing}"


def test_typed_and_one_version() -> None:
    assert (PKG / "py.typed").exists()
    pyproject = (PKG.parent / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'attr = "tipcrpc.__version__"' in pyproject
    assert "\nversion =" not in pyproject.split("[tool.")[0], "the version is written only in tipcrpc/__init__.py"
    from importlib.metadata import version

    assert version("tipcrpc") == tipcrpc.__version__
