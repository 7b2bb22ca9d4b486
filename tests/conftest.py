"""Shared fixtures: where ../shared is, and the national scheme when it is there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

if os.environ.get("MUTANT_UNDER_TEST"):
    # a mutation run (benchmarks/mutation.py, mutmut): the same examples every run and no
    # deadline, so a verdict depends on the mutant, not on the draw or the machine's load
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("mutation", derandomize=True, deadline=None)
    _hypothesis_settings.load_profile("mutation")


def _find_shared() -> Path | None:
    for candidate in (os.environ.get("CASEMIX_SHARED"), REPO.parent / "shared"):
        if candidate and (Path(candidate) / "schemes" / "chs-drg-1.1" / "scheme.toml").is_file():
            return Path(candidate)
    return None


SHARED = _find_shared()
CHS = SHARED / "schemes" / "chs-drg-1.1" if SHARED else None
GOLDEN = CHS / "expected" / "cases.csv" if CHS else None

needs_shared = pytest.mark.skipif(
    SHARED is None,
    reason="../shared (national CHS-DRG 1.1 scheme and golden file) is absent beside the checkout; "
    "CI has it. Set CASEMIX_SHARED to its path to run these tests.",
)


@pytest.fixture(scope="session")
def chs():
    """The national scheme as shipped (``grouping_tables/chs-drg-1.1``); the golden file is in ../shared."""
    from casemix.scheme import load_scheme

    return load_scheme("chs-drg-1.1")


@pytest.fixture(scope="session")
def tiny_grey(tmp_path_factory):
    """The tiny test scheme with grey lists (``tests/tiny_scheme.py``, ``GREY``)."""
    from tests.tiny_scheme import write_grey

    from casemix.scheme import load_scheme

    return load_scheme(write_grey(tmp_path_factory.mktemp("tiny-grey")))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` (the long fuzz runs) run only when asked for: ``pytest -m slow``."""
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="long run: select it with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
