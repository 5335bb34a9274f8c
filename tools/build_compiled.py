"""Build or remove tipcrpc's optional compiled fast path (mypyc), in place.

    python tools/build_compiled.py build    # compile tipcrpc.fastpath.MODULES next to their .py
    python tools/build_compiled.py clean    # remove what build made; the .py files remain

Used by ``./dev build-compiled`` / ``./dev clean-compiled`` and, with TIPCRPC_COMPILE=1, by
setup.py. Needs mypy (which ships mypyc) and a C compiler; without them it says so and
builds nothing. The default install never runs it: tipcrpc stays pure Python.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: The one shared library holding all compiled modules (each module gets a small shim
#: extension that imports it); inside the package so that any install layout finds it.
GROUP = "tipcrpc._fastpath"
BUILD_DIR = ROOT / "build" / "mypyc"


def fastpath_modules() -> tuple[str, ...]:
    """tipcrpc.fastpath.MODULES, read without importing tipcrpc (its dependencies may be absent)."""
    spec = importlib.util.spec_from_file_location("_tipcrpc_fastpath", ROOT / "tipcrpc" / "fastpath.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    modules: tuple[str, ...] = module.MODULES
    return modules


def missing_tools() -> str | None:
    """Why the build cannot run here, or None when mypyc and a C compiler are present."""
    if importlib.util.find_spec("mypyc") is None:
        return "mypy (which ships mypyc) is not installed: pip install 'mypy>=2.4,<2.5'"
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(os.environ.get("CC", cc).split()[0]) is None:
        return f"no C compiler ({cc}) found: on Debian, sudo apt-get install gcc python3-dev"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "Python.h not found: on Debian, sudo apt-get install python3-dev"
    return None


def extensions() -> list[Any]:
    """The setuptools Extensions mypyc generates for the fast-path modules (C code in build/mypyc)."""
    from mypyc.build import mypycify

    paths = [str(ROOT / (name.replace(".", "/") + ".py")) for name in fastpath_modules()]
    # The package's own mypy configuration (strict; untyped third-party modules ignored).
    return mypycify(
        ["--config-file", str(ROOT / "pyproject.toml"), *paths],
        opt_level="3",
        group_name=GROUP,
        target_dir=str(BUILD_DIR),
    )


def build() -> int:
    why = missing_tools()
    if why is not None:
        print(f"build-compiled: not built: {why}", file=sys.stderr)
        return 1
    from setuptools import Distribution

    os.chdir(ROOT)
    # A bare Distribution, not setup(): it must not read pyproject.toml's [project] table
    # (the venv's setuptools may predate its format); only build_ext runs.
    dist = Distribution({"name": "tipcrpc-fastpath", "ext_modules": extensions()})
    cmd = dist.get_command_obj("build_ext")
    cmd.inplace = True  # type: ignore[attr-defined]
    cmd.build_temp = str(BUILD_DIR / "temp")  # type: ignore[attr-defined]
    cmd.parallel = os.cpu_count() or 1  # type: ignore[attr-defined]
    dist.run_command("build_ext")
    print(f"build-compiled: {len(fastpath_modules())} modules compiled in place (remove with ./dev clean-compiled)")
    return 0


def built_files() -> list[Path]:
    """The extension files a build put into the package."""
    suffixes = tuple(s for s in (sysconfig.get_config_var("EXT_SUFFIX"), ".so", ".pyd") if s)
    return sorted(p for p in (ROOT / "tipcrpc").rglob("*") if p.name.endswith(suffixes))


def clean() -> int:
    files = built_files()
    for path in files:
        path.unlink()
    shutil.rmtree(BUILD_DIR, ignore_errors=True)
    print(f"clean-compiled: removed {len(files)} extension files; tipcrpc runs as pure Python")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["build", "clean"])
    args = parser.parse_args(argv)
    return build() if args.action == "build" else clean()


if __name__ == "__main__":
    raise SystemExit(main())
