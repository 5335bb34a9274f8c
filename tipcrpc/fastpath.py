"""The optional compiled fast path: which modules it covers and whether it is active.

tipcrpc is pure Python. ``./dev build-compiled`` (or ``TIPCRPC_COMPILE=1 pip install
--no-build-isolation .``) compiles the modules of one call's hot path with mypyc into
extension modules next to their ``.py`` files; Python then imports the extension instead
of the source. Nothing else changes: same API, same behaviour, and the ``.py`` files stay
the fallback (``./dev clean-compiled`` removes the build). See docs/compiled.md.

``TIPCRPC_PURE=1`` in the environment makes a process import the ``.py`` files even where
a build is present (to compare the two, or to rule the build out when chasing a bug).

This module has no imports from the package so that the build (tools/build_compiled.py,
setup.py) can read :data:`MODULES` without importing tipcrpc or its dependencies.

:func:`mypyc_attr` is mypyc's class decorator (``mypyc_attr(native_class=False)`` keeps a
class an ordinary Python class inside a compiled module, for what a native class cannot
be: a generic dataclass, a subclass of ``list``, a class with descriptors). Without mypy
installed it is a no-op, so the pure-Python package does not depend on mypy.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from typing import Callable, Protocol, Sequence, TypeVar

__all__ = [
    "MODULES", "EXCLUDED", "PURE_ENV", "Timer", "compiled_modules", "compiled", "describe", "honour_pure_env", "mypyc_attr",
]

#: Set to a non-empty value other than ``0``: import the pure-Python modules even where compiled ones exist.
PURE_ENV = "TIPCRPC_PURE"

_C = TypeVar("_C")

try:  # mypy's runtime helpers: present wherever mypy (and so mypyc) is installed
    from mypy_extensions import mypyc_attr as mypyc_attr
except ImportError:  # pure Python without mypy: the decorator changes nothing

    def mypyc_attr(*attrs: str, **kwattrs: object) -> Callable[[_C], _C]:
        """mypyc's class options; a no-op when the package runs as pure Python."""
        return lambda cls: cls


class Timer(Protocol):
    """A loop's timer handle (``call_at``/``call_later``), as compiled modules declare it.

    Compiled code checks declared types at run time, and uvloop's handles are not
    ``asyncio.TimerHandle`` instances (nor is its ``remove_reader`` result a bool): compiled
    modules call those loop methods through ``cast(Any, loop)`` and keep the handle as this
    protocol, which is not checked.
    """

    def cancel(self) -> None: ...


#: The modules the compiled build compiles (a call's hot path on the userspace transport,
#: the RPC core, the codec, the name table and the metrics they update).
MODULES: tuple[str, ...] = (
    "tipcrpc.codec",
    "tipcrpc.metrics",
    "tipcrpc.client_metrics",
    "tipcrpc.rpc.call_table",
    "tipcrpc.rpc.context",
    "tipcrpc.rpc.frames",
    "tipcrpc.rpc.membership",
    "tipcrpc.rpc.runtime",
    "tipcrpc.rpc.serve_table",
    "tipcrpc.nametable.bindings",
    "tipcrpc.nametable.endpoint",
    "tipcrpc.nametable.ranges",
    "tipcrpc.nametable.subscr",
    "tipcrpc.nametable.table",
    "tipcrpc.nametable.topsrv",
    "tipcrpc.nametable.trusted",
    "tipcrpc.transport.user.discover",
    "tipcrpc.transport.user.fast_path",
    "tipcrpc.transport.user.fragment",
    "tipcrpc.transport.user.link",
    "tipcrpc.transport.user.link_fsm",
    "tipcrpc.transport.user.link_proto",
    "tipcrpc.transport.user.liveness",
    "tipcrpc.transport.user.media",
    "tipcrpc.transport.user.msg",
    "tipcrpc.transport.user.msgconst",
    "tipcrpc.transport.user.name_distr",
    "tipcrpc.transport.user.node",
    "tipcrpc.transport.user.node_api",
    "tipcrpc.transport.user.node_peers",
    "tipcrpc.transport.user.socket_layer",
    "tipcrpc.transport.user.stack",
    "tipcrpc.transport.user.transport",
    "tipcrpc.transport.user.udp_media",
)

#: Hot-path modules left as Python, and why.
EXCLUDED: dict[str, str] = {
    "tipcrpc.rpc.resolver": "its background coroutines leave anyio cancel scopes with the CancelledError of their "
    "own cancellation still raised when compiled (client and server close failed)",
    "tipcrpc.rpc.server": "as tipcrpc.rpc.resolver: anyio cancel scopes in its background coroutines",
    "tipcrpc.rpc.client": "mypyc does not let a keyword argument share the name of a positional-only parameter: "
    "client.call(svc, 'put', service=1) would fail compiled",
    "tipcrpc.transport.user.header": "a native class cannot hold Header's bit-field descriptors, and an ordinary "
    "class in a compiled module cannot have its property setters",
    "tipcrpc.rpc.service": "mypyc fails on its overloaded, self-typed methods (an internal mypyc error); "
    "it runs when services are defined, not per call",
    "tipcrpc.transport.user.keepalive": "mypyc names the C field of its _thread attribute __thread, a C keyword",
    "tipcrpc.transport.user.crypto": "its functions check their argument types themselves (UsageError); "
    "compiled, mypyc's TypeError would come first",
}


def compiled_modules() -> tuple[str, ...]:
    """The modules of :data:`MODULES` that Python loads from a compiled extension.

    Found without importing them: the import system prefers an extension module to the
    ``.py`` file next to it, so the module's spec says which one an import loads.
    """
    found = []
    for name in MODULES:
        spec = importlib.util.find_spec(name)
        if spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            found.append(name)
    return tuple(found)


def compiled() -> bool:
    """Whether the compiled fast path is active (every module of :data:`MODULES` compiled)."""
    return len(compiled_modules()) == len(MODULES)


def describe() -> str:
    """``"pure Python"``, ``"compiled (mypyc, N modules)"`` or a partial build's count."""
    n = len(compiled_modules())
    if n == 0:
        return "pure Python"
    if n == len(MODULES):
        return f"compiled (mypyc, {n} modules)"
    return f"partly compiled ({n} of {len(MODULES)} modules; rebuild with ./dev build-compiled)"


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Finds the ``.py`` file of each module of :data:`MODULES`, ahead of an extension next to it."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for entry in path or ():
            source = os.path.join(entry, leaf)
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def honour_pure_env() -> None:
    """With :data:`PURE_ENV` set, make this process import the pure-Python modules.

    Runs when this module is imported, which tipcrpc's ``__init__`` does before it imports
    any of :data:`MODULES`.
    """
    if os.environ.get(PURE_ENV, "") not in ("", "0") and not any(isinstance(f, _SourceFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFirst())


honour_pure_env()
