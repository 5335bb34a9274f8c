"""Enforce the layering of DESIGN.md §2 on every module of the package.

Each module is assigned a layer by the table below; its imports (static, parsed with
``ast``) may only reach the layers and third-party packages that layer allows. Pure
protocol code (L1) must not touch the event loop, sockets, clocks or randomness.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "tipcrpc"

# Layer of each module; the first matching prefix wins (most specific first).
LAYERS: list[tuple[str, int]] = [
    ("tipcrpc.addr", 0),
    ("tipcrpc.errors", 0),
    ("tipcrpc.events", 0),
    ("tipcrpc.logs", 0),
    ("tipcrpc.fastpath", 0),
    ("tipcrpc.transport.base", 2),
    ("tipcrpc.nametable.topsrv", 3),
    ("tipcrpc.nametable", 1),
    ("tipcrpc.transport.kernel.wire", 1),
    ("tipcrpc.transport.kernel", 3),
    ("tipcrpc.transport.user.udp_media", 3),
    ("tipcrpc.transport.user.stack", 3),
    ("tipcrpc.transport.user.socket_layer", 3),
    ("tipcrpc.transport.user.fast_path", 3),
    ("tipcrpc.transport.user.liveness", 3),
    ("tipcrpc.transport.user.keepalive", 3),
    ("tipcrpc.transport.user.transport", 3),
    ("tipcrpc.transport.user.__init__", 3),
    ("tipcrpc.transport.user", 1),
    ("tipcrpc.transport.__init__", 2),
    ("tipcrpc.transport", 3),
    ("tipcrpc.rpc.server", 4),
    ("tipcrpc.rpc.client", 4),
    ("tipcrpc.client_metrics", 4),
    ("tipcrpc.rpc.resolver", 4),
    ("tipcrpc.rpc.stub", 4),
    ("tipcrpc.rpc.context", 4),
    ("tipcrpc.rpc.runtime", 4),
    ("tipcrpc.rpc.__init__", 4),
    ("tipcrpc.rpc", 1),
    ("tipcrpc.codec", 1),
    ("tipcrpc.metrics", 1),
    ("tipcrpc.cli", 5),
    ("tipcrpc.testing", 5),
    ("tipcrpc.api", 5),
    ("tipcrpc.exporter", 5),
    ("tipcrpc.__init__", 5),
    ("tipcrpc.__main__", 5),
]

# Third-party / stdlib modules a layer may import, beyond the stdlib (L0 and L2) rules.
THIRD_PARTY = {"cryptography", "msgpack", "anyio", "pyroute2", "pytest", "pytest_asyncio", "hypothesis", "uvloop", "sniffio"}
# What pure code (L0, L1, L2) must never import: it takes time and randomness as arguments.
IMPURE = {"asyncio", "anyio", "socket", "time", "random", "threading", "selectors", "subprocess",
          "trio", "uvloop", "pyroute2", "signal", "multiprocessing", "concurrent"}
# cryptography (optional, AES-GCM for the cluster key) is pure computation: allowed in L1.
# mypy_extensions (mypyc's class decorator, a no-op when absent): only tipcrpc.fastpath imports it.
ALLOWED_THIRD_PARTY = {0: {"mypy_extensions"}, 1: {"msgpack", "cryptography"}, 2: set(), 3: {"anyio", "pyroute2", "msgpack", "uvloop", "sniffio"},
                       4: {"anyio", "msgpack", "sniffio"}, 5: THIRD_PARTY}


def layer_of(module: str) -> int:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise AssertionError(f"module {module} has no layer: add it to LAYERS in {__file__}")


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts)
        out.append((name, path))
    return out


def imports_of(module: str, path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    found += [(f"{target}.{a.name}", node.lineno) for a in node.names]
                    continue
            else:
                target = node.module or ""
            found.append((target, node.lineno))
    return found


def _is_typing_only(path: Path, lineno: int) -> bool:
    """Imports under ``if TYPE_CHECKING:`` do not create a runtime dependency."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            if any(getattr(n, "lineno", -1) == lineno for n in ast.walk(node)):
                return True
    return False


@pytest.mark.parametrize("module,path", modules(), ids=[m for m, _ in modules()])
def test_module_respects_its_layer(module: str, path: Path) -> None:
    layer = layer_of(module)
    for target, lineno in imports_of(module, path):
        top = target.split(".")[0]
        where = f"{path.relative_to(PKG.parent)}:{lineno} imports {target}"
        if top == "tipcrpc":
            if target == "tipcrpc":
                assert layer == 5, f"{where}: only L5 may import the package root"
                continue
            # `from . import x` resolves to tipcrpc.x; sub-attributes may be names, so walk up.
            probe = target
            while True:
                try:
                    other = layer_of(probe)
                    break
                except AssertionError:
                    probe = probe.rsplit(".", 1)[0]
            if layer == 4 and other == 3:
                raise AssertionError(f"{where}: the RPC runtime (L4) must not import a concrete transport")
            assert other <= layer, f"{where}: L{layer} may not import L{other}"
            continue
        if layer <= 2 and top in IMPURE and not _is_typing_only(path, lineno):
            raise AssertionError(f"{where}: pure code (L{layer}) must not import {top}; pass time/randomness in")
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        assert top in ALLOWED_THIRD_PARTY[layer] or _is_typing_only(path, lineno), (
            f"{where}: L{layer} may not import third-party {top}"
        )
