"""No import cycles among casemix modules (issue 16).

Every ``import`` statement counts, including those inside functions: a
function-level import that closes a cycle still makes the order modules are
first imported in matter.  Each module is also imported first, in a fresh
interpreter, to show none depends on another being imported before it.
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


def import_graph() -> dict[str, set[str]]:
    """module → casemix modules it imports (``from pkg import mod`` names the module)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
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


def _package_free(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # importing a.b runs a/__init__ first, so a package's lazy re-exports of its
    # own submodules are not cycles with them; edges into packages stay
    packages = {m for m, p in _modules().items() if p.name == "__init__.py"}
    return {m: {t for t in e if not (m in packages and t.startswith(m + "."))} for m, e in graph.items()}


#: the grouping path: the encoder, its kernels, the DRG engine and the intake
GROUPING = ("casemix.encode", "casemix.encode_kernel", "casemix.drg", "casemix.cases", "casemix.scheme")


def test_no_import_cycles_on_the_grouping_path():
    found = [
        c
        for c in cycles(_package_free(import_graph()))
        if any(m == p or m.startswith(p + ".") for m in c for p in GROUPING)
    ]
    assert found == [], f"import cycles: {found}"


@pytest.mark.parametrize(
    "order",
    [
        ["casemix.encode", "casemix.drg.kernel"],
        ["casemix.drg.kernel", "casemix.encode"],
        ["casemix.drg.compile", "casemix.encode"],
        ["casemix.drg.direct", "casemix.drg.batch"],
        ["casemix.drg.batch", "casemix.drg.direct"],
    ],
)
def test_modules_import_first_in_any_order(order):
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in order)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
