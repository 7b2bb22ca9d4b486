"""No casemix module imports another module's private names (issue 12, item 10).

A private *module* (``casemix._money``, ``casemix.cases._build``) is shared inside the
package by design and may be imported; a private *name* (``_prepare``, ``_KEY``) belongs
to the module that defines it. Shared pieces live in a module of their own, under a
public name (e.g. ``casemix._case_sets.prepare_cases`` for the indicators and the monitor).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "casemix"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    path = SRC.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _absolute(node: ast.ImportFrom, path: Path) -> str:
    if not node.level:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def private_imports(path: Path, source: str | None = None) -> list[str]:
    """``from X import _name`` in ``path`` (or ``source`` standing at ``path``) where ``X._name`` is not a module."""
    found = []
    text = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ImportFrom):
            continue
        base = _absolute(node, path)
        if base != "casemix" and not base.startswith("casemix."):
            continue
        for alias in node.names:
            name = alias.name
            if name.startswith("_") and not name.startswith("__") and not _is_module(f"{base}.{name}"):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}: from {base} import {name}")
    return found


def test_no_module_imports_another_modules_private_names():
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in private_imports(path)]
    assert found == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "from casemix.indicators import DEATH_CODE, _prepare\n",
            ["from casemix.indicators import _prepare"],
        ),
        ("from casemix.cases import _normalise as N\n", []),  # a private module: allowed
        ("from ._build import text_number, _helper\n", ["from casemix.cases._build import _helper"]),
        ("from numpy import _globals\n", []),  # not casemix's
    ],
)
def test_the_check_sees_private_names_and_allows_private_modules(source, expected):
    # the source is judged as if it were a module of casemix.cases (not written anywhere)
    hits = [h.split(": ", 1)[1] for h in private_imports(PACKAGE / "cases" / "probe.py", source)]
    assert hits == expected
