"""Implausible case values are warned, never refused or regrouped (issue 15, class 7)."""

from __future__ import annotations

import polars as pl
import pytest

import casemix
from casemix.cases import read_cases
from casemix.drg.batch import group_frame
from casemix.synth import synth_cases

RESULT = ["mdc", "adrg", "drg", "severity", "status", "reason"]


@pytest.fixture(scope="module")
def odd():
    base = synth_cases("casemix-demo", 8, seed=11)
    return base.with_columns(
        pl.Series("age", [-5.0, 1e300, 5.0, 30.0, 0.0, 40.0, 0.0, 0.5]),
        pl.Series("age_days", [None, None, 10.0, -5.0, 400.0, 0.0, 20.0, None]),
        pl.Series("birth_weight", [None, None, None, None, None, None, 20_000.0, None]),
    )


def test_hand_cases_get_their_warning_codes(odd):
    for engine in ("batch", "reference"):
        got = casemix.group(odd, engine=engine)["warnings"].to_list()
        codes = [[w for w in s.split(";") if w.startswith("implausible")] for s in got]
        assert codes == [
            ["implausible:age"],
            ["implausible:age"],
            ["implausible:age_days"],
            ["implausible:age_days"],
            ["implausible:age_days"],
            [],
            ["implausible:birth_weight"],
            [],
        ], engine


def test_warnings_do_not_change_the_group(odd):
    grouped = casemix.group(odd)
    canonical = read_cases(odd)
    silent = canonical.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias("intake_warnings"))
    assert grouped.select(RESULT).equals(group_frame(silent, casemix.load_scheme()).select(RESULT))
    assert grouped.select(RESULT).equals(casemix.group(odd, engine="reference").select(RESULT))
    assert grouped.height == odd.height
