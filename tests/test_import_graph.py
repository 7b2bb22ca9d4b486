"""No import cycles among casemix modules (issue 16).

What counts: every ``import`` / ``from … import`` statement of every module
under ``src/casemix`` that names a casemix module, at module level AND inside
functions (a function-level import that closes a cycle still makes the
order modules are first imported in matter), including those under ``if
TYPE_CHECKING:`` and a package's imports of its own submodules (a package
that re-exports a submodule which imports back from the package is a cycle).
``from pkg import name`` is an edge to ``pkg.name`` when that is a module,
else to ``pkg``.  The one edge not counted is the implicit one: importing
``a.b`` runs ``a/__init__`` first, which no statement says.

Every module is also imported in a fresh interpreter, and the modules of
the cycles that existed are imported first in either order, to show none
depends on another being imported before it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in (SRC / "casemix").rglob("*.py")}


def _package(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _from_base(node: ast.ImportFrom, package: str) -> str:
    """The absolute module a ``from … import`` statement in ``package`` imports from."""
    base = node.module or ""
    if node.level:
        up = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(up + ([base] if base else []))
    return base


def import_graph() -> dict[str, set[str]]:
    """module → casemix modules it imports (``from pkg import mod`` names the module)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = _package(name, path)
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _from_base(node, package)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_sees_a_cycle():
    # a hand-made graph: a → b → c → a is one cycle, d alone is none
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_graph_reads_function_level_imports():
    graph = import_graph()
    # batch.group_parquet imports casemix.errors inside the function
    assert "casemix.errors" in graph["casemix.drg.batch"]
    assert "casemix.encode_kernel" in graph["casemix.encode"]


def test_no_import_cycles():
    found = cycles(import_graph())
    assert found == [], f"import cycles among casemix modules: {found}"


def test_graph_sees_package_and_submodule_edges():
    graph = import_graph()
    # the package re-exports its submodules; they import the grouping module, not the package
    assert "casemix.dip.grouping" in graph["casemix.dip"]
    assert "casemix.dip.grouping" in graph["casemix.dip.build"]
    assert "casemix.dip" not in graph["casemix.dip.build"]


def test_every_module_imports():
    names = sorted(_modules())
    # a module of an optional extra (dask) is left out when the extra is not installed
    code = (
        "import importlib, sys\n"
        "for m in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except ModuleNotFoundError as exc:\n"
        "        if exc.name is None or exc.name.startswith('casemix'):\n"
        "            raise\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "order",
    [
        ["casemix.encode", "casemix.drg.kernel"],
        ["casemix.drg.kernel", "casemix.encode"],
        ["casemix.drg.compile", "casemix.encode"],
        ["casemix.drg.direct", "casemix.drg.batch"],
        ["casemix.drg.batch", "casemix.drg.direct"],
        ["casemix._frames", "casemix.io"],
        ["casemix.io", "casemix._frames"],
        ["casemix.budget", "casemix.payment.policy_file", "casemix.payment.core"],
        ["casemix.payment.monthly", "casemix.payment.core", "casemix.budget"],
        ["casemix.payment.policy_file", "casemix.budget"],
        ["casemix.dip.settle", "casemix.dip.policy_settle"],
        ["casemix.dip.policy_settle", "casemix.dip.settle"],
        ["casemix.dip.build", "casemix.dip"],
        ["casemix.benefits.synth", "casemix.benefits"],
    ],
)
def test_modules_import_first_in_any_order(order):
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in order)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------ private names
# No casemix module imports another module's private names (issue 12, item 10). A private
# *module* (casemix._money, casemix.cases._build) is shared inside the package by design and
# may be imported; a private *name* (_prepare, _KEY) belongs to the module that defines it.
# Shared pieces live in a module of their own under a public name (e.g.
# casemix._case_sets.prepare_cases for the indicators and the monitor).


def private_imports(path: Path, source: str | None = None) -> list[str]:
    """``from X import _name`` in ``path`` (or ``source`` standing at ``path``) where ``X._name`` is not a module."""
    modules = _modules()
    package = _package(_module_name(path), path)
    found = []
    text = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ImportFrom):
            continue
        base = _from_base(node, package)
        if base != "casemix" and not base.startswith("casemix."):
            continue
        for alias in node.names:
            name = alias.name
            if name.startswith("_") and not name.startswith("__") and f"{base}.{name}" not in modules:
                found.append(f"{path.relative_to(SRC)}:{node.lineno}: from {base} import {name}")
    return found


def test_no_module_imports_another_modules_private_names():
    found = [hit for path in sorted(_modules().values()) for hit in private_imports(path)]
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
    hits = [h.split(": ", 1)[1] for h in private_imports(SRC / "casemix" / "cases" / "probe.py", source)]
    assert hits == expected
