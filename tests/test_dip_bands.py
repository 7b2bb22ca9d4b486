"""DIP auxiliary sub-type bands at their boundaries (DIP 3.0 draft §5.2 二(四)): age, newborn days, ICU days."""

from __future__ import annotations

import polars as pl
import pytest

from casemix.dip.scores import subtype_labels

# (age in years, age in days, expected band); 18-64 is the reference band
AGES = [
    (65.0, None, "65+"),
    (64.0, None, "18-64"),
    (64.99, None, "18-64"),
    (66.0, None, "65+"),
    (18.0, None, "18-64"),
    (17.0, None, "7-17"),
    (7.0, None, "7-17"),
    (6.0, None, "1-6"),
    (6.5, None, "7-17"),
    (1.0, None, "1-6"),
    (0.0, 0.0, "0-28d"),
    (0.0, 28.0, "0-28d"),
    (0.0, 29.0, "29d-1y"),
    (0.0, 364.0, "29d-1y"),
    (None, 28.0, "0-28d"),
    (None, 29.0, "29d-1y"),
    (0.5, None, "29d-1y"),
    # days beside an age of a year or more (0 is the usual export of "not given"): the age decides
    (40.0, 0.0, "18-64"),
    (5.0, 10.0, "1-6"),
    (1.0, 28.0, "1-6"),
    (None, None, None),
]
# ICU days -> band: under 2 none; 2-7, 8-14, 15-30, 31+
ICU = [
    (None, "none"),
    (0.0, "none"),
    (1.0, "none"),
    (2.0, "2-7"),
    (7.0, "2-7"),
    (8.0, "8-14"),
    (14.0, "8-14"),
    (15.0, "15-30"),
    (30.0, "15-30"),
    (31.0, "31+"),
    (200.0, "31+"),
]


def _frame(n, **cols):
    base = {
        "pdx": ["J18.900"] * n,
        "sdx": [[] for _ in range(n)],
        "pproc": [None] * n,
        "oproc": [[] for _ in range(n)],
        "age": [40.0] * n,
        "age_days": [None] * n,
        "discharge": [1.0] * n,
        "los": [4.0] * n,
        "icu_days": [None] * n,
    }
    base.update(cols)
    return pl.DataFrame(
        base,
        schema_overrides={
            "sdx": pl.List(pl.String),
            "oproc": pl.List(pl.String),
            "pproc": pl.String,
            "age": pl.Float64,
            "age_days": pl.Float64,
            "icu_days": pl.Float64,
        },
    )


def test_age_and_newborn_band_boundaries():
    f = _frame(len(AGES), age=[a for a, _, _ in AGES], age_days=[d for _, d, _ in AGES])
    got = subtype_labels(f)["subtype_age"].to_list()
    assert list(zip(AGES, got, strict=True)) == [(r, r[2]) for r in AGES]


def test_icu_day_band_boundaries():
    f = _frame(len(ICU), icu_days=[d for d, _ in ICU])
    got = subtype_labels(f)["subtype_icu"].to_list()
    assert list(zip(ICU, got, strict=True)) == [(r, r[1]) for r in ICU]


@pytest.mark.parametrize("los, tumour", [(3.0, "none"), (4.0, "metastasis"), (3.5, "metastasis")])
def test_tumour_subtype_needs_a_stay_over_3_days(los, tumour):
    f = _frame(1, pdx=["C34.900"], sdx=[["C78.000"]], los=[los])
    assert subtype_labels(f)["subtype_tumour"].to_list() == [tumour]
