"""The API reference (``docs/api/*.md``) has an entry for every public function and class.

``mkdocs build --strict`` (run by ``.ci/run``) fails when an entry no longer
resolves (a renamed or removed function); this test fails when a public name
is added without an entry, and when a ``docs/*.md`` page is missing from the
site's navigation.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
API = REPO / "docs" / "api"

#: package -> its API page
PAGES = {
    "casemix": "casemix.md",
    "casemix.dip": "dip.md",
    "casemix.benefits": "benefits.md",
    "casemix.dask": "dask.md",
    "casemix.synth": "synth.md",
}


def _targets(page: str) -> set[str]:
    """The objects a page documents: the ``::: dotted.path`` entries, less those without members.

    An entry with ``members: false`` in its indented options shows a module's
    docstring only, so it documents nothing else of the module.
    """
    text = (API / page).read_text(encoding="utf-8")
    entries = re.findall(r"^::: ([\w.]+)[ \t]*\n((?:[ \t]+.*\n?)*)", text, flags=re.MULTILINE)
    return {t for t, options in entries if not re.search(r"^\s*members:\s*false\s*$", options, re.MULTILINE)}


def _documented(target: str, name: str, obj: object) -> bool:
    # an entry documents ``name`` when it ends with it, or when it is the defining module
    # itself documented with its members (casemix.errors)
    return target.rsplit(".", 1)[-1] == name or target == getattr(obj, "__module__", None)


@pytest.mark.parametrize("package", sorted(PAGES))
def test_every_public_callable_has_an_entry(package):
    module = importlib.import_module(package)
    targets = _targets(PAGES[package])
    public = {n: getattr(module, n) for n in module.__all__}
    callables = {n: o for n, o in public.items() if inspect.isclass(o) or inspect.isfunction(o)}
    assert callables, f"{package}.__all__ has no function or class"
    missing = [n for n, o in callables.items() if not any(_documented(t, n, o) for t in targets)]
    assert not missing, f"docs/api/{PAGES[package]} has no `::: ...` entry for {package}.{missing}"


def test_every_payment_module_has_an_entry():
    modules = {p.stem for p in (REPO / "src" / "casemix" / "payment").glob("*.py")}
    public = {m for m in modules if not m.startswith("_")}
    targets = _targets("payment.md")
    missing = sorted(m for m in public if f"casemix.payment.{m}" not in targets)
    assert not missing, f"docs/api/payment.md has no `::: casemix.payment.<module>` entry for {missing}"


def test_every_page_is_in_the_nav():
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    pages = [p.relative_to(REPO / "docs").as_posix() for p in (REPO / "docs").rglob("*.md")]
    missing = sorted(p for p in pages if f": {p}" not in nav)
    assert not missing, f"mkdocs.yml nav lacks {missing}"
