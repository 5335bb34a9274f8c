"""Import the generic-netlink part of pyroute2 without the rest of the library (L3).

``import pyroute2.netlink`` first runs ``pyroute2/__init__.py``, which imports all of
pyroute2 (IPRoute, NDB, IPDB, nftables, WireGuard, ...: about 160 modules). Generic netlink
needs 16 of them. Natively the difference is ~0.2 s; in the emulated test guest it is
~20 s of every ``tipcrpc node|bearer|link|nametable`` command, which made a command take
longer than its test's timeout (the "hang" of ``tipcrpc bearer enable`` in the guest).

:func:`install` puts a stand-in ``pyroute2`` package into :data:`sys.modules` before the
first pyroute2 import: its submodules import as usual (it has the real ``__path__``), and
the first time anyone asks the package itself for a name (``from pyroute2 import IPRoute``,
``pyroute2.__version__``) it runs the real ``__init__`` in place, so code that uses the
whole library still gets it.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

__all__ = ["install"]


def install() -> None:
    """Install the stand-in unless ``pyroute2`` is imported already (or not installed)."""
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        return  # not installed: the import that follows fails with the usual message
    package = types.ModuleType("pyroute2")
    package.__spec__ = spec
    package.__loader__ = spec.loader
    package.__file__ = spec.origin
    package.__package__ = "pyroute2"
    package.__path__ = list(spec.submodule_search_locations)

    def __getattr__(name: str) -> Any:  # PEP 562: only names the module does not have yet
        # `from pyroute2 import config` inside pyroute2 asks for a submodule: import just it
        if not name.startswith("__") and importlib.util.find_spec(f"pyroute2.{name}") is not None:
            return importlib.import_module(f"pyroute2.{name}")
        namespace = package.__dict__
        if namespace.pop("__getattr__", None) is None:  # already loading: a real miss
            raise AttributeError(f"module 'pyroute2' has no attribute {name!r}")
        assert spec.loader is not None
        spec.loader.exec_module(package)  # the real __init__, in this module's namespace
        try:
            return namespace[name]
        except KeyError:
            raise AttributeError(f"module 'pyroute2' has no attribute {name!r}") from None

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules["pyroute2"] = package
