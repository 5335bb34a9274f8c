"""Generate docs/api.md, the API reference, from the package's docstrings (stdlib only).

    python tools/apidoc.py --write docs/api.md     # what `./dev docs` runs
    python tools/apidoc.py --check docs/api.md     # exit 1 if the file is out of date

Documents the names in ``tipcrpc.__all__`` under the module that defines them, then the
whole ``__all__`` of the modules in :data:`EXTRA_MODULES`. For each: the signature (from
``inspect``, annotations as written in the source), the docstring, and for classes their
public methods and properties defined in the class itself. Output is deterministic: the same
code gives the same bytes, so a test can compare it with the committed file.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import inspect
import re
import sys
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Modules documented in full (their ``__all__``) after the package root's names.
EXTRA_MODULES = ["tipcrpc.codec", "tipcrpc.rpc.remote_errors", "tipcrpc.testing.plugin", "tipcrpc.rpc.reflection",
                 "tipcrpc.metrics", "tipcrpc.client_metrics", "tipcrpc.exporter", "tipcrpc.logs"]
HEADER = """\
# API reference

Generated from the docstrings by `./dev docs` (`tools/apidoc.py`); do not edit by hand —
`tests/integration/test_docs.py` fails when this file is out of date. The guide
([guide.md](guide.md)) explains how the pieces fit together.
"""


def _annotation(a: Any) -> str:
    if a is inspect.Parameter.empty:
        return ""
    if isinstance(a, str):
        return a  # postponed annotations: exactly as written in the source
    return inspect.formatannotation(a)


def _default(v: Any) -> str:
    if isinstance(v, enum.Enum):
        return f"{type(v).__name__}.{v.name}"
    if isinstance(v, (types.FunctionType, type)):
        return v.__qualname__
    text = repr(v)
    return "..." if " at 0x" in text else text  # object reprs with addresses are not stable


def signature(obj: Any, name: str) -> str:
    """``name(params) -> ret`` with annotations as written; ``name(...)`` if not inspectable."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return f"{name}(...)"
    parts: list[str] = []
    kinds = inspect.Parameter
    seen_kw_only = False
    params = list(sig.parameters.values())
    for i, p in enumerate(params):
        if p.kind is kinds.KEYWORD_ONLY and not seen_kw_only:
            parts.append("*")
        if p.kind in (kinds.KEYWORD_ONLY, kinds.VAR_POSITIONAL):
            seen_kw_only = True
        text = {kinds.VAR_POSITIONAL: "*", kinds.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        ann = _annotation(p.annotation)
        if ann:
            text += f": {ann}"
        if p.default is not inspect.Parameter.empty:
            text += f" = {_default(p.default)}" if ann else f"={_default(p.default)}"
        parts.append(text)
        nxt = params[i + 1] if i + 1 < len(params) else None
        if p.kind is kinds.POSITIONAL_ONLY and (nxt is None or nxt.kind is not kinds.POSITIONAL_ONLY):
            parts.append("/")
    ret = _annotation(sig.return_annotation)
    return f"{name}({', '.join(parts)})" + (f" -> {ret}" if ret else "")


_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`~?([^`]+)`")


def markdown(doc: str) -> str:
    """The docstrings' reST inline markup as Markdown: ``x`` and :class:`~a.B` become `x`, `B`."""
    doc = _ROLE.sub(lambda m: "`" + (m.group(1).rsplit(".", 1)[-1] if m.group(0).count("~") else m.group(1)) + "`", doc)
    lines: list[str] = []
    rules = 0
    for line in doc.split("\n"):
        if line.startswith("===="):  # a reST simple table: shown as preformatted text
            rules += 1
            if rules % 3 == 1:
                lines.append("```text")
            lines.append(line)
            if rules % 3 == 0:
                lines.append("```")
            continue
        if rules % 3 == 0:
            line = line.replace("``", "`")
            if line.endswith("::"):
                line = line[:-1]  # an indented literal block follows: Markdown shows it as code
        lines.append(line)
    return "\n".join(lines)


def _doc(obj: Any) -> str:
    doc = inspect.getdoc(obj)
    return markdown(doc.strip()) if doc else ""


def _own_doc(cls: type) -> str:
    # inspect.getdoc inherits docstrings; a class without its own says so by showing nothing.
    return markdown(inspect.cleandoc(cls.__doc__)) if cls.__dict__.get("__doc__") else ""


def _members(cls: type) -> list[str]:
    out: list[str] = []
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            out.append(f"- **`{name}`** (property)" + (f" — {_first_para(_doc(member))}" if _doc(member) else ""))
        elif isinstance(member, (staticmethod, classmethod)):
            func = member.__func__
            out.append(f"- **`{signature(getattr(cls, name), name)}`**" + _tail(func))
        elif inspect.isfunction(member):
            out.append(f"- **`{signature(member, name)}`**" + _tail(member))
    return out


def _first_para(text: str) -> str:
    return " ".join(text.split("\n\n", 1)[0].split())


def _tail(func: Any) -> str:
    doc = _doc(func)
    return f" — {_first_para(doc)}" if doc else ""


def document(name: str, obj: Any) -> str:
    """The Markdown section of one public object."""
    lines: list[str] = []
    if isinstance(obj, type) and issubclass(obj, enum.Enum):
        lines.append(f"### `class {name}` ({', '.join(b.__name__ for b in obj.__bases__)})")
        doc = _own_doc(obj)
        if doc:
            lines += ["", doc]
        lines += ["", "Members: " + ", ".join(f"`{m.name}` = {m.value!r}" for m in obj)]
    elif isinstance(obj, type):
        bases = ", ".join(b.__qualname__ for b in obj.__bases__ if b is not object and not b.__name__.startswith("_"))
        lines.append(f"### `class {name}`" + (f" ({bases})" if bases else ""))
        if not issubclass(obj, BaseException):
            lines += ["", f"`{signature(obj, name)}`"]
        doc = _own_doc(obj)
        if doc:
            lines += ["", doc]
        members = _members(obj)
        if members:
            lines += ["", *members]
    elif callable(obj):
        lines.append(f"### `{signature(obj, name)}`")
        doc = _doc(obj)
        if doc:
            lines += ["", doc]
    else:
        lines.append(f"### `{name}`")
        lines += ["", f"A constant: `{_default(obj)}`."]
    return "\n".join(lines) + "\n"


def _module_doc(module: types.ModuleType) -> str:
    return _first_para(markdown(inspect.getdoc(module) or ""))


def generate() -> str:
    """The whole reference, as one Markdown string."""
    sys.path.insert(0, str(ROOT))
    pkg = importlib.import_module("tipcrpc")
    by_module: dict[str, list[tuple[str, Any]]] = {}
    for name in pkg.__all__:
        if name == "__version__":
            continue
        obj = getattr(pkg, name)
        home = getattr(obj, "__module__", None) or "tipcrpc"
        if not isinstance(obj, (type, types.FunctionType)) or home.startswith("builtins"):
            home = _defining_module(name)
        by_module.setdefault(home, []).append((name, obj))
    out = [HEADER, "## `tipcrpc`", "", _module_doc(pkg), "",
           "Every name below is importable from `tipcrpc` directly:", ""]
    for home in sorted(by_module):
        names = ", ".join(f"`{n}`" for n, _ in by_module[home])
        out.append(f"- `{home}`: {names}")
    out.append("")
    for home in sorted(by_module):
        module = importlib.import_module(home)
        out += [f"## `{home}`", ""]
        doc = _module_doc(module)
        if doc:
            out += [doc, ""]
        for name, obj in by_module[home]:
            out.append(document(name, obj))
    for modname in EXTRA_MODULES:
        module = importlib.import_module(modname)
        out += [f"## `{modname}`", "", markdown(inspect.getdoc(module) or ""), ""]
        names = getattr(module, "__all__", None)
        if names is None:  # a pytest plugin: its fixtures
            names = [n for n, v in vars(module).items() if not n.startswith("_") and hasattr(v, "_fixture_function_marker")
                     or n in ("memory_cluster", "memory_transport")]
        for name in names:
            obj = getattr(module, name)
            if modname != "tipcrpc.testing.plugin" and getattr(obj, "__module__", modname) != modname:
                continue  # re-exported from elsewhere: documented there
            out.append(document(name, obj))
    text = "\n".join(out)
    return text.rstrip() + "\n"


def _defining_module(name: str) -> str:
    """For constants (no ``__module__``): the tipcrpc module whose ``__all__`` lists it."""
    import tipcrpc

    for modname in ("tipcrpc.events", "tipcrpc.errors", "tipcrpc.addr", "tipcrpc.codec"):
        if name in getattr(importlib.import_module(modname), "__all__", ()):
            return modname
    return tipcrpc.__name__


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="PATH", help="write the reference to PATH")
    group.add_argument("--check", metavar="PATH", help="exit 1 if PATH differs from what would be written")
    args = ap.parse_args(argv)
    text = generate()
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
        print(f"apidoc: wrote {args.write} ({len(text.splitlines())} lines)")
        return 0
    current = Path(args.check).read_text(encoding="utf-8") if Path(args.check).exists() else ""
    if current != text:
        print(f"apidoc: {args.check} is out of date: run ./dev docs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
