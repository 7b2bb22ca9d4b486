"""Monitoring flags against hand counts, plus the readmission property."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemix.errors import InputError
from casemix.monitor import FLAGS, MonitorParams, describe_flags, flags

D = dt.date
WEIGHTS = pl.DataFrame({"drg": ["X", "Y", "Z"], "rw": [0.4, 1.0, 2.0]})
LOOSE = dict(min_count=1, min_peers=1)


def stays() -> pl.DataFrame:
    """Two hospitals.  Hospital A: patient p1 comes back twice (3 and 20 days after
    discharge), patient p2 comes back after 5 days in another MDC."""
    rows = [
        # case, hosp, patient, admission, discharge, los, drg, mdc, adrg, cost, disch, severity
        ("a1", "A", "p1", D(2024, 1, 1), D(2024, 1, 5), 4, "X", "MDCA", "XA1", 100.0, 1, "none"),
        ("a2", "A", "p1", D(2024, 1, 8), D(2024, 1, 10), 2, "X", "MDCA", "XA1", 120.0, 1, "CC"),
        ("a3", "A", "p1", D(2024, 1, 30), D(2024, 2, 4), 5, "Y", "MDCA", "YA1", 500.0, 1, "MCC"),
        ("a4", "A", "p2", D(2024, 3, 1), D(2024, 3, 2), 1, "Y", "MDCB", "YB1", 400.0, 5, "none"),
        ("a5", "A", "p2", D(2024, 3, 7), D(2024, 3, 17), 10, "Z", "MDCC", "ZC1", 5000.0, 1, "none"),
        ("b1", "B", "p1", D(2024, 1, 12), D(2024, 1, 20), 8, "Y", "MDCA", "YA1", 600.0, 2, "CC"),
        ("b2", "B", "p3", D(2024, 2, 1), D(2024, 2, 11), 10, "Z", "MDCC", "ZC1", 900.0, 1, "none"),
        ("b3", "B", "p4", D(2024, 2, 1), D(2024, 2, 3), 2, "Y", "MDCA", "YA1", 500.0, 1, "none"),
    ]
    return pl.DataFrame(
        rows,
        orient="row",
        schema=[
            "case_id",
            "hospital_id",
            "patient_id",
            "admission_date",
            "discharge_date",
            "los",
            "drg",
            "mdc",
            "adrg",
            "total_cost",
            "discharge",
            "severity",
        ],
    )


def get(table: pl.DataFrame, hospital: str, flag: str) -> dict:
    t = table.filter((pl.col("hospital_id") == hospital) & (pl.col("flag") == flag))
    assert t.height == 1
    return t.row(0, named=True)


def test_one_row_per_hospital_and_flag():
    t = flags(stays(), WEIGHTS, **LOOSE)
    assert t.height == 2 * len(FLAGS)
    assert t["flag"].to_list() == list(FLAGS) * 2
    assert set(describe_flags()) == set(FLAGS)


def test_readmissions_by_hand():
    t = flags(stays(), WEIGHTS, **LOOSE)
    r = get(t, "A", "readmission")
    # a2 starts 3 days after a1; a5 5 days after a4; a3 starts 10 days after b1 (p1 at
    # hospital B) and 20 days after a2: a readmission, since any hospital counts
    assert (r["numerator"], r["denominator"]) == (3, 5)
    assert r["case_ids"] == ["a2", "a3", "a5"]
    assert r["figure"] == pytest.approx(3 / 5)
    # b1 starts 2 days after a2 (hospital A)
    assert get(t, "B", "readmission")["case_ids"] == ["b1"]
    # p1's stays are all MDCA; ADRG / DRG: a1, a2 in X (XA1); b1, a3 in Y (YA1)
    assert get(t, "A", "readmission_same_mdc")["case_ids"] == ["a2", "a3"]
    assert get(t, "B", "readmission_same_mdc")["case_ids"] == ["b1"]
    for name in ("readmission_same_adrg", "readmission_same_drg"):
        assert get(t, "A", name)["case_ids"] == ["a2", "a3"]
        assert get(t, "B", name)["numerator"] == 0
    # the old rule: one hospital only
    one = flags(stays(), WEIGHTS, readmission_same_hospital=True, **LOOSE)
    assert get(one, "A", "readmission")["case_ids"] == ["a2", "a5"]
    assert get(one, "A", "readmission_same_drg")["case_ids"] == ["a2"]
    assert get(one, "B", "readmission")["numerator"] == 0
    # a 30-day window at one hospital also catches a3 (20 days after a2)
    t30 = flags(stays(), WEIGHTS, readmission_days=30, readmission_same_hospital=True, **LOOSE)
    assert get(t30, "A", "readmission")["case_ids"] == ["a2", "a3", "a5"]


def test_readmission_exemptions():
    # a3 is a chemotherapy course by its principal diagnosis: it takes no part
    cases = stays().with_columns(
        pdx=pl.when(pl.col("case_id") == "a3").then(pl.lit("Z51.100")).otherwise(pl.lit("K35.800"))
    )
    t = flags(cases, WEIGHTS, **LOOSE)
    assert get(t, "A", "readmission")["case_ids"] == ["a2", "a5"]
    assert get(t, "A", "readmission")["denominator"] == 5
    # ... or by its ADRG (RE1, CHS-DRG 1.1 chemotherapy)
    t = flags(
        stays().with_columns(
            adrg=pl.when(pl.col("case_id") == "a3").then(pl.lit("RE1")).otherwise(pl.col("adrg"))
        ),
        WEIGHTS,
        **LOOSE,
    )
    assert get(t, "A", "readmission")["case_ids"] == ["a2", "a5"]
    t = flags(cases, WEIGHTS, readmission_exempt_diagnoses=(), **LOOSE)
    assert get(t, "A", "readmission")["case_ids"] == ["a2", "a3", "a5"]


def test_admission_date_derived_from_los():
    t = flags(stays().drop("admission_date"), WEIGHTS, **LOOSE)
    assert get(t, "A", "readmission")["case_ids"] == ["a2", "a3", "a5"]


def test_other_flags_by_hand():
    t = flags(stays(), WEIGHTS, **LOOSE)
    # short stays: LOS <= 2 with a regular discharge (a4 is a death)
    assert get(t, "A", "short_stay")["case_ids"] == ["a2"]
    assert get(t, "B", "short_stay")["case_ids"] == ["b3"]
    # CC/MCC share: A 2/5, B 1/3; pooled 3/8
    s = get(t, "A", "severity_share")
    assert s["figure"] == pytest.approx(2 / 5) and s["peer_figure"] == pytest.approx(3 / 8)
    # low weight (RW < 0.5): DRG X
    assert get(t, "A", "low_weight")["case_ids"] == ["a1", "a2"]
    # high cost: Z mean (5000 + 900) / 2 = 2950; 3 × 2950 > 5000, so none at factor 3 …
    assert get(t, "A", "high_cost_outlier")["numerator"] == 0
    # … but 5000 > 1.5 × 2950 = 4425
    t15 = flags(stays(), WEIGHTS, high_cost_factor=1.5, **LOOSE)
    assert get(t15, "A", "high_cost_outlier")["case_ids"] == ["a5"]
    # deaths / transfers with LOS <= 2: a4 (death, 1 day); b1 is a transfer after 8 days
    assert get(t, "A", "early_death_transfer")["case_ids"] == ["a4"]
    assert get(t, "B", "early_death_transfer")["numerator"] == 0


def test_high_cost_factor_by_level():
    cases = stays().with_columns(
        hospital_level=pl.when(pl.col("hospital_id") == "A").then(pl.lit("2")).otherwise(pl.lit("3"))
    )
    t = flags(cases, WEIGHTS, high_cost_factor_by_level={"2": 1.5, "3": 3.0}, **LOOSE)
    assert get(t, "A", "high_cost_outlier")["case_ids"] == ["a5"]
    assert get(t, "A", "high_cost_outlier")["hospital_level"] == "2"


def test_peer_percentile_rule():
    # five hospitals with short-stay rates 0.1 .. 0.5 (10 cases each): the 80th percentile
    # (linear) of (0.1, 0.2, 0.3, 0.4, 0.5) is 0.4 + 0.2·0.1 = 0.42 → only H5 is flagged
    rows = []
    for h in range(1, 6):
        for i in range(10):
            rows.append((f"H{h}-{i}", f"H{h}", "X", 1.0 if i < h else 5.0))
    cases = pl.DataFrame(rows, orient="row", schema=["case_id", "hospital_id", "drg", "los"])
    t = flags(cases, min_count=1).filter(pl.col("flag") == "short_stay")
    assert t["threshold"].to_list() == pytest.approx([0.42] * 5)
    assert t["flagged"].to_list() == [False] * 4 + [True]
    assert t["peer_figure"].to_list() == pytest.approx([0.3] * 5)
    assert t["n_peers"].to_list() == [5] * 5
    # PEPPER-like minimum count: H5 has 5 short stays
    assert not flags(cases, min_count=6).filter(pl.col("flag") == "short_stay")["flagged"].any()
    # too few peers: nothing flagged
    assert not flags(cases, min_count=1, min_peers=6)["flagged"].any()


def test_peers_are_hospitals_of_the_same_level():
    rows = []
    for h, level, short in (("H1", "3", 1), ("H2", "3", 2), ("H3", "2", 8), ("H4", "2", 9)):
        rows += [(f"{h}-{i}", h, level, "X", 1.0 if i < short else 5.0) for i in range(10)]
    cases = pl.DataFrame(
        rows, orient="row", schema=["case_id", "hospital_id", "hospital_level", "drg", "los"]
    )
    t = flags(cases, min_count=1, min_peers=2).filter(pl.col("flag") == "short_stay")
    assert t["flagged"].to_list() == [False, True, False, True]
    assert t["peer_figure"].to_list() == pytest.approx([0.15, 0.15, 0.85, 0.85])


def test_severity_shift_against_the_previous_period():
    cases = pl.concat(
        [
            stays().with_columns(year=pl.lit(2023), severity=pl.lit("none")),
            stays().with_columns(year=pl.lit(2024), case_id=pl.col("case_id") + "'"),
        ]
    )
    t = flags(cases, WEIGHTS, **LOOSE)
    a = get(t, "A", "severity_shift")
    assert a["figure"] == pytest.approx(2 / 5)  # 2024: 2/5 with CC/MCC; 2023: none
    assert a["case_ids"] == ["a2'", "a3'"]
    assert a["peer_figure"] == pytest.approx(3 / 8)
    assert a["note"] == "2024 vs 2023"
    one = flags(stays().drop("admission_date", "discharge_date"), WEIGHTS, **LOOSE)
    assert get(one, "A", "severity_shift")["figure"] is None


def test_missing_columns_give_rows_with_a_note():
    t = flags(stays().drop("patient_id"), None, **LOOSE)
    r = get(t, "A", "readmission")
    assert r["figure"] is None and not r["flagged"] and "patient_id" in r["note"]
    assert "weights" in get(t, "A", "low_weight")["note"]


def test_pandas_in_pandas_out():
    t = flags(stays().to_pandas(), WEIGHTS.to_pandas(), **LOOSE)
    assert isinstance(t, pd.DataFrame)
    assert list(t.loc[(t.hospital_id == "A") & (t.flag == "readmission"), "case_ids"].item()) == [
        "a2",
        "a3",
        "a5",
    ]


def test_params():
    with pytest.raises(InputError, match="percentile"):
        MonitorParams(percentile=80)
    with pytest.raises(InputError, match="readmision_days"):
        flags(stays(), params={"readmision_days": 3})
    t = flags(stays(), params={"readmission_days": 30, "readmission_same_hospital": True, **LOOSE})
    assert get(t, "A", "readmission")["numerator"] == 3


def test_params_from_policy():
    budget = pytest.importorskip("casemix.budget")
    policy = budget.Policy(budget=1_000_000)
    p = MonitorParams.from_policy(policy, min_count=1)
    assert p.readmission_days == policy.readmission.days
    assert p.readmission_same_hospital is policy.readmission.same_hospital is False
    assert p.readmission_exempt_adrg == policy.readmission.exempt_adrg
    assert p.high_cost_factor_by_level == {str(k): float(v) for k, v in policy.high_cost.k.items()}
    assert p.min_count == 1


# --------------------------------------------------------------------------- property

patients = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2", "p3"]),
        st.sampled_from(["A", "B"]),
        st.integers(0, 200),
        st.integers(0, 30),
    ),
    min_size=0,
    max_size=25,
)


@settings(max_examples=75, deadline=None)
@given(
    patients,
    st.sampled_from(["p1", "p2", "p3", "p9"]),
    st.sampled_from(["A", "B"]),
    st.integers(0, 15),
    st.integers(0, 40),
    st.booleans(),
)
def test_adding_a_readmission_adds_one(rows, patient, hospital, gap, los, same_hospital):
    cases = pl.DataFrame(
        [
            (
                f"c{i}",
                h,
                p,
                D(2024, 1, 1) + dt.timedelta(days=s),
                D(2024, 1, 1) + dt.timedelta(days=s + n),
                "X",
            )
            for i, (p, h, s, n) in enumerate(rows)
        ],
        orient="row",
        schema={
            "case_id": pl.String,
            "hospital_id": pl.String,
            "patient_id": pl.String,
            "admission_date": pl.Date,
            "discharge_date": pl.Date,
            "drg": pl.String,
        },
    )
    # the new stay starts `gap` days after the discharge of the patient's latest stay
    # (at this hospital when `same_hospital`; latest by admission, then discharge, then
    # input order), so it comes last in that patient's history and changes no other
    # stay's predecessor
    where = pl.col("patient_id") == patient
    if same_hospital:
        where = where & (pl.col("hospital_id") == hospital)
    mine = cases.with_row_index("row").filter(where).sort("admission_date", "discharge_date", "row")
    start = (mine["discharge_date"][-1] if mine.height else D(2024, 1, 1)) + dt.timedelta(days=gap)
    new = pl.DataFrame(
        [("new", hospital, patient, start, start + dt.timedelta(days=los), "X")],
        orient="row",
        schema=cases.schema,
    )

    def count(frame: pl.DataFrame) -> int:
        t = flags(frame, params=dict(readmission_days=15, readmission_same_hospital=same_hospital, **LOOSE))
        return t.filter(pl.col("flag") == "readmission")["numerator"].sum()

    before, after = count(cases), count(pl.concat([cases, new]))
    assert after == before + (1 if mine.height else 0)
