"""Only the opt-in compiled build; everything else about the package is in pyproject.toml.

A plain ``pip install .`` builds nothing here: tipcrpc stays pure Python. With
``TIPCRPC_COMPILE=1`` the hot-path modules (tipcrpc/fastpath.py) are compiled with mypyc as
well (docs/compiled.md); that needs mypy and a C compiler in the build environment:

    pip install 'setuptools>=77' 'mypy>=2.4,<2.5' msgpack anyio pyroute2
    TIPCRPC_COMPILE=1 pip install --no-build-isolation .
"""

import os
import sys
from pathlib import Path

from setuptools import setup

ext_modules = []
if os.environ.get("TIPCRPC_COMPILE", "") not in ("", "0"):
    sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
    import build_compiled

    why = build_compiled.missing_tools()
    if why is not None:
        raise SystemExit(f"TIPCRPC_COMPILE is set but {why}; unset it for the pure-Python install. "
                         "The compiled build needs --no-build-isolation (see docs/compiled.md).")
    ext_modules = build_compiled.extensions()

setup(ext_modules=ext_modules)
