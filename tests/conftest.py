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


#: hypothesis examples per test in a mutation run (``MUTANT_UNDER_TEST`` set);
#: ``CASEMIX_MUTATION_EXAMPLES=0`` leaves the tests' own settings (to time the difference)
MUTATION_MAX_EXAMPLES = int(os.environ.get("CASEMIX_MUTATION_EXAMPLES", "10"))


def _mutation_settings(items) -> None:
    """A mutation run: every hypothesis test at most ``MUTATION_MAX_EXAMPLES`` examples, no shrinking.

    Set on each collected test, not by the profile above: a test's own
    ``@settings(max_examples=60)`` wins over any profile, and mutmut's fork server may have
    imported the test modules before ``MUTANT_UNDER_TEST`` was set.  Still honest: a mutant
    only a rarer example would kill is reported survived, and then gets an example-based
    test.  Shrinking only beautifies the example of a kill.  (If hypothesis renames this
    attribute, the cap stops applying: slower runs, the same verdicts.)
    """
    from hypothesis import Phase, settings

    for item in items:
        fn = getattr(getattr(item, "obj", None), "__func__", getattr(item, "obj", None))
        own = getattr(fn, "_hypothesis_internal_use_settings", None)
        if own is not None:
            fn._hypothesis_internal_use_settings = settings(
                own,
                max_examples=min(own.max_examples, MUTATION_MAX_EXAMPLES),
                derandomize=True,
                database=None,
                deadline=None,
                phases=(Phase.explicit, Phase.generate),
            )
    # with -x, the quick example-based tests first: most mutants are killed by one of them
    items.sort(key=lambda item: hasattr(getattr(item, "obj", None), "hypothesis"))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` (the long fuzz runs) run only when asked for: ``pytest -m slow``."""
    if os.environ.get("MUTANT_UNDER_TEST") and MUTATION_MAX_EXAMPLES:
        _mutation_settings(items)
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="long run: select it with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
