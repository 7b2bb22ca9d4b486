"""Case-mix indicators against hand arithmetic, plus properties."""

from __future__ import annotations

import math

import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemix.errors import InputError
from casemix.indicators import drg_indicators, grouping_riv, hospital_indicators, low_risk_drgs

WEIGHTS = pl.DataFrame({"drg": ["X", "Y"], "rw": [1.0, 2.0]})


def hand_cases() -> pl.DataFrame:
    """Nine cases, two hospitals; case 4 ungroupable, cases 8 (LOS 70) and 9 (3 yuan) excluded."""
    return pl.DataFrame(
        {
            "case_id": [str(i) for i in range(1, 10)],
            "hospital_id": list("AAAABBBBB"),
            "department": ["med", "surg", "surg", "med", "med", "med", "surg", "med", "med"],
            "discharge_date": [
                "2024-01-05",
                "2024-01-20",
                "2024-02-03",
                "2024-02-09",
                "2024-01-02",
                "2024-02-01",
                "2024-02-11",
                "2024-02-12",
                "2024-02-13",
            ],
            "drg": ["X", "X", "Y", "0000", "X", "Y", "Y", "X", "X"],
            "total_cost": [100.0, 300, 1000, 50, 200, 600, 800, 400, 3],
            "los": [2.0, 4, 10, 3, 3, 6, 8, 70, 1],
            "discharge": [1.0, 1, 5, 1, 1, 1, 5, 1, 1],
            "severity": ["none", "CC", "MCC", "", "none", "CC", "none", "none", "none"],
        }
    )


def row(frame: pl.DataFrame, **key) -> dict:
    f = frame
    for k, v in key.items():
        f = f.filter(pl.col(k) == v)
    assert f.height == 1, key
    return f.row(0, named=True)


def test_hospital_indicators_by_hand():
    out = hospital_indicators(hand_cases(), WEIGHTS)
    assert out["hospital_id"].to_list() == ["A", "B"]
    a, b = row(out, hospital_id="A"), row(out, hospital_id="B")
    # grouping rate: A 3 grouped of 4 (none excluded); B 3 of 5 − 2 excluded
    assert (a["cases"], a["excluded"], a["grouped"]) == (4, 0, 3)
    assert (b["cases"], b["excluded"], b["grouped"]) == (5, 2, 3)
    assert a["grouping_rate"] == pytest.approx(3 / 4)
    assert b["grouping_rate"] == pytest.approx(1.0)
    # CMI: A (1 + 1 + 2) / 3, B (1 + 2 + 2) / 3
    assert a["total_weight"] == pytest.approx(4.0) and a["cmi"] == pytest.approx(4 / 3)
    assert b["total_weight"] == pytest.approx(5.0) and b["cmi"] == pytest.approx(5 / 3)
    assert a["drgs"] == 2 and b["drgs"] == 2
    # regional means over grouped cases: X cost (100+300+200)/3 = 200, LOS 3;
    # Y cost (1000+600+800)/3 = 800, LOS 8.  Efficiency = mean of case / regional mean:
    # A cost (100/200 + 300/200 + 1000/800) / 3 = (0.5 + 1.5 + 1.25) / 3 = 1.0833,
    # B (200/200 + 600/800 + 800/800) / 3 = 2.75 / 3; LOS A (2/3 + 4/3 + 10/8) / 3,
    # B (3/3 + 6/8 + 8/8) / 3
    assert a["cost_efficiency"] == pytest.approx(3.25 / 3)
    assert b["cost_efficiency"] == pytest.approx(2.75 / 3)
    assert a["time_efficiency"] == pytest.approx(3.25 / 3)
    assert b["time_efficiency"] == pytest.approx(2.75 / 3)
    # low risk: X has no death (ln 0 = −inf) → low risk; Y alone has deaths → no z-score
    assert (a["low_risk_cases"], a["low_risk_deaths"], a["low_risk_mortality"]) == (2, 0, 0.0)
    assert (b["low_risk_cases"], b["low_risk_deaths"]) == (1, 0)
    assert a["cc_share"] == pytest.approx(1 / 3) and a["mcc_share"] == pytest.approx(1 / 3)
    assert b["cc_share"] == pytest.approx(1 / 3) and b["mcc_share"] == 0.0


def test_efficiency_ratio_of_sums_is_a_named_option():
    # A's mix is uneven (one cheap X, one dear X, one Y): the ratio of sums weights the
    # expensive Y more, Σc / ΣM = (100 + 300 + 1000) / (200 + 200 + 800) = 1400 / 1200
    out = hospital_indicators(hand_cases(), WEIGHTS, efficiency="ratio_of_sums")
    a, b = row(out, hospital_id="A"), row(out, hospital_id="B")
    assert a["cost_efficiency"] == pytest.approx(1400 / 1200)
    assert b["cost_efficiency"] == pytest.approx(1600 / 1800)
    assert a["time_efficiency"] == pytest.approx(16 / 14)
    assert b["time_efficiency"] == pytest.approx(17 / 19)
    assert a["cost_efficiency"] != pytest.approx(3.25 / 3)
    with pytest.raises(InputError, match="efficiency"):
        hospital_indicators(hand_cases(), WEIGHTS, efficiency="sums")


def test_exclusion_thresholds_are_parameters():
    out = hospital_indicators(hand_cases(), WEIGHTS, max_los=80, min_cost=1)
    b = row(out, hospital_id="B")
    assert (b["excluded"], b["grouped"], b["weighted_cases"]) == (0, 5, 5)
    assert b["cmi"] == pytest.approx((1 + 2 + 2 + 1 + 1) / 5)


def test_by_department_and_month():
    by_dep = hospital_indicators(hand_cases(), WEIGHTS, by=["hospital_id", "department"])
    assert by_dep.height == 4
    a_surg = row(by_dep, hospital_id="A", department="surg")
    assert a_surg["cmi"] == pytest.approx((1 + 2) / 2)
    by_month = hospital_indicators(hand_cases(), WEIGHTS, by=["hospital_id", "month"])
    assert row(by_month, hospital_id="B", month="2024-02")["cmi"] == pytest.approx(2.0)
    assert row(by_month, hospital_id="A", month="2024-01")["cmi"] == pytest.approx(1.0)


def test_pandas_in_pandas_out_and_weights_object():
    class Result:  # the shape of casemix.weights.Weights
        table = WEIGHTS.to_pandas()

    out = hospital_indicators(hand_cases().to_pandas(), Result())
    assert isinstance(out, pd.DataFrame)
    assert out.loc[out.hospital_id == "B", "cmi"].item() == pytest.approx(5 / 3)


def test_numbers_as_strings_from_csv():
    cases = hand_cases().with_columns(pl.col("total_cost", "los", "discharge").cast(pl.String))
    cases = cases.with_columns(
        pl.when(pl.col("case_id") == "1")
        .then(pl.lit("n/a"))
        .otherwise(pl.col("total_cost"))
        .alias("total_cost")
    )
    a = row(hospital_indicators(cases, WEIGHTS), hospital_id="A")
    # case 1's cost is not a number: it leaves the cost means (the regional X mean
    # becomes (300 + 200) / 2 = 250) but stays grouped
    assert a["grouped"] == 3
    assert a["cost_efficiency"] == pytest.approx((300 / 250 + 1000 / 800) / 2)


def test_drg_indicators_and_riv_by_hand():
    d = drg_indicators(hand_cases(), WEIGHTS)
    assert d["drg"].to_list() == ["Y", "X"]  # by total cost
    y, x = row(d, drg="Y"), row(d, drg="X")
    assert (y["n"], y["mean_cost"], y["sd_cost"]) == (3, 800.0, 200.0)
    assert y["cv"] == pytest.approx(0.25) and y["mortality"] == pytest.approx(2 / 3)
    assert x["cv"] == pytest.approx(0.5) and x["low_risk"] and not y["low_risk"]
    assert x["rw"] == 1.0
    # RIV: total SS about 500 = 640000; between = 3·300² + 3·300² = 540000
    assert grouping_riv(hand_cases()) == pytest.approx(540000 / 640000)


def test_low_risk_rule_by_hand():
    # mortality: A 1/100, B, C, D 1/10, E none.  ln m: one value d = ln 10 below three
    # equal ones → z_A = −√3 < −1, z_B..D = 1/√3; E has no death → low risk.
    rows = []
    for drg, n, deaths in (("A", 100, 1), ("B", 10, 1), ("C", 10, 1), ("D", 10, 1), ("E", 5, 0)):
        rows += [(drg, 5.0 if i < deaths else 1.0) for i in range(n)]
    cases = pl.DataFrame(rows, schema=["drg", "discharge"], orient="row")
    assert low_risk_drgs(cases) == ["A", "E"]
    assert low_risk_drgs(cases, z=-2.0) == ["E"]
    # without the log, over all five: mean 0.062, population SD √0.002176 = 0.04665,
    # z_A = −0.052 / 0.04665 = −1.115, z_E = −0.062 / 0.04665 = −1.329
    assert low_risk_drgs(cases, log=False) == ["A", "E"]
    assert low_risk_drgs(cases, log=False, z=-1.2) == ["E"]
    assert low_risk_drgs(cases, z=-1.2) == ["A", "E"]
    # E (5 cases) is not classified below min_cases; with A alone there is no SD at all
    assert low_risk_drgs(cases, min_cases=10) == ["A"]
    assert low_risk_drgs(cases, min_cases=20) == []


def test_errors_name_the_column():
    with pytest.raises(InputError, match="drg"):
        hospital_indicators(hand_cases().drop("drg"), WEIGHTS)
    with pytest.raises(InputError, match="rw"):
        hospital_indicators(hand_cases(), WEIGHTS.rename({"rw": "weight"}))
    with pytest.raises(InputError, match="'X'"):
        hospital_indicators(hand_cases(), pl.concat([WEIGHTS, WEIGHTS.head(1)]))
    with pytest.raises(InputError, match="discharge_date"):
        hospital_indicators(hand_cases().drop("discharge_date"), WEIGHTS, by="month")


def test_empty_hospital_has_null_ratios():
    cases = hand_cases().with_columns(
        drg=pl.when(pl.col("hospital_id") == "A").then(pl.lit("0000")).otherwise(pl.col("drg"))
    )
    a = row(hospital_indicators(cases, WEIGHTS), hospital_id="A")
    assert a["grouped"] == 0 and a["cmi"] is None and a["cost_efficiency"] is None
    assert a["grouping_rate"] == 0.0


# --------------------------------------------------------------------------- properties

DRGS = ["D1", "D2", "D3", "D4", "0000"]
RW = pl.DataFrame({"drg": DRGS[:3], "rw": [0.5, 1.25, 3.0]})  # D4 has no weight

case_rows = st.lists(
    st.tuples(
        st.sampled_from(["H1", "H2", "H3"]),
        st.sampled_from(DRGS),
        st.floats(1, 50_000, allow_nan=False),
        st.integers(0, 90),
    ),
    min_size=1,
    max_size=60,
)


def frame(rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["hospital_id", "drg", "total_cost", "los"], orient="row")


@settings(max_examples=100, deadline=None)
@given(case_rows)
def test_cmi_of_a_set_is_the_weighted_mean_of_its_parts(rows):
    cases = frame(rows)
    parts = hospital_indicators(cases, RW)
    whole = hospital_indicators(cases.with_columns(hospital_id=pl.lit("all")), RW).row(0, named=True)
    n = parts["weighted_cases"].sum()
    assert whole["weighted_cases"] == n
    assert whole["total_weight"] == pytest.approx(parts["total_weight"].sum())
    if n:
        mean = (parts["cmi"].fill_null(0) * parts["weighted_cases"]).sum() / n
        assert whole["cmi"] == pytest.approx(mean)
    else:
        assert whole["cmi"] is None


@settings(max_examples=100, deadline=None)
@given(case_rows, st.floats(0.5, 20), st.sampled_from(["mean_of_ratios", "ratio_of_sums"]))
def test_efficiency_is_unchanged_by_a_common_cost_scale(rows, k, how):
    cases = frame(rows)
    base = hospital_indicators(cases, RW, min_cost=0, efficiency=how)
    scaled = hospital_indicators(cases.with_columns(pl.col("total_cost") * k), RW, min_cost=0, efficiency=how)
    for a, b in zip(base["cost_efficiency"], scaled["cost_efficiency"], strict=True):
        assert (a is None and b is None) or a == pytest.approx(b)


# others: no exclusion (LOS <= 60, cost >= 5); the hospital H0: (DRG, cost, LOS if its DRG
# is not among the others')
others_rows = st.lists(
    st.tuples(
        st.sampled_from(["H1", "H2"]),
        st.sampled_from(DRGS[:4]),
        st.floats(5, 50_000, allow_nan=False),
        st.integers(0, 60),
    ),
    min_size=0,
    max_size=40,
)
own_rows = st.lists(
    st.tuples(st.sampled_from(DRGS[:4]), st.floats(5, 50_000), st.integers(1, 60)), min_size=1, max_size=10
)


@settings(max_examples=100, deadline=None)
@given(others_rows, own_rows)
def test_a_hospital_at_the_regional_means_has_indices_of_one(others, own):
    # every H0 case costs (and stays) its DRG's mean over the other hospitals; a DRG only
    # H0 has gets one cost and LOS for all its cases.  Either way the regional mean of
    # the DRG, H0 included, is that value, so every c_i / M_g(i) is 1.
    mean: dict[str, tuple[float, float]] = {}
    for drg in {d for d, _, _ in own}:
        mine = [(c, n) for h, d, c, n in others if d == drg]
        first = next((c, float(n)) for d, c, n in own if d == drg)
        mean[drg] = (
            (sum(c for c, _ in mine) / len(mine), sum(n for _, n in mine) / len(mine)) if mine else first
        )
    rows = [(h, d, c, float(n)) for h, d, c, n in others]
    rows += [("H0", d, *mean[d]) for d, _, _ in own]
    out = hospital_indicators(frame(rows), RW)
    h0 = row(out, hospital_id="H0")
    assert h0["cost_efficiency"] == pytest.approx(1.0)
    assert h0["time_efficiency"] is None or h0["time_efficiency"] == pytest.approx(1.0)


@settings(max_examples=100, deadline=None)
@given(case_rows)
def test_one_drg_per_hospital_both_forms_agree(rows):
    cases = frame(rows).with_columns(
        drg=pl.col("hospital_id").replace_strict({"H1": "D1", "H2": "D2", "H3": "D3"})
    )
    mean = hospital_indicators(cases, RW)
    sums = hospital_indicators(cases, RW, efficiency="ratio_of_sums")
    for col in ("cost_efficiency", "time_efficiency"):
        for a, b in zip(mean[col], sums[col], strict=True):
            assert (a is None and b is None) or a == pytest.approx(b)


def test_riv_agrees_with_the_weights_module():
    weights = pytest.importorskip("casemix.weights")
    cases = hand_cases().filter(pl.col("drg") != "0000")
    # the same case set on both sides: no excluded case (LOS > 60, cost < 5 yuan)
    kept = cases.filter((pl.col("los") <= 60) & (pl.col("total_cost") >= 5))
    w = weights.compute_weights(kept, trim="none", min_cases=1)
    assert grouping_riv(cases) == pytest.approx(w.quality["riv_untrimmed"])


@settings(max_examples=100, deadline=None)
@given(case_rows)
def test_riv_is_a_share(rows):
    r = grouping_riv(frame(rows))
    assert math.isnan(r) or -1e-9 <= r <= 1 + 1e-9
