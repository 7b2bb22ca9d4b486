"""DIP scores, coefficients, high/low-cost rules, point values and settlement, checked to the fen."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import casemix.dip as dip
from casemix.dip.scores import subtype_coefficients, subtype_labels, year_weights_for
from casemix.dip.settle import (
    CostRules,
    case_scores,
    high_cost_score,
    low_cost_score,
    optimal_interval_point_value,
    optimised_point_value,
    settlement_point_value,
    year_start_point_value,
)
from casemix.errors import InputError, PolicyError


def grouped(rows, **extra):
    """(hospital, group, type, score, cost) rows → a grouped frame."""
    d = {
        "case_id": [str(i + 1) for i in range(len(rows))],
        "hospital_id": [r[0] for r in rows],
        "dip_group": [r[1] for r in rows],
        "dip_type": [r[2] for r in rows],
        "dip_score": [r[3] for r in rows],
        "total_cost": [float(r[4]) for r in rows],
        **extra,
    }
    return pl.DataFrame(
        d, schema_overrides={"dip_group": pl.String, "dip_type": pl.String, "dip_score": pl.Float64}
    )


MEANS = pl.DataFrame({"dip_group": ["G1", "G2"], "mean_cost": [10_000.0, 5_000.0]})


# ------------------------------------------------------------------ high/low cost
def test_high_low_cost_formulas_by_hand():
    # DIP 1.0: cost 3 x mean -> score x ((3 - 2) + 1) = 2 x score
    assert high_cost_score(1000, 30_000, 10_000) == 2000
    assert high_cost_score(1000, 25_000, 10_000) == 1500
    # continuous at the threshold
    assert high_cost_score(1000, 20_000, 10_000) == 1000
    assert low_cost_score(1000, 4_000, 10_000) == 400
    assert high_cost_score(800, 45_000, 10_000, high=3.0) == pytest.approx(800 * 2.5)


def test_case_scores_classes():
    g = grouped(
        [
            ("H1", "G1", "core", 1000.0, 30_000),
            ("H1", "G1", "core", 1000.0, 4_000),
            ("H1", "G1", "core", 1000.0, 10_000),
            ("H1", "G1", "core", 1000.0, 60_000),
            ("H1", "G2", "core", 500.0, 10_000),
            ("H1", "G1", "core", 1000.0, 20_000),
            ("H1", "G1", "core", 1000.0, 5_000),
            ("H1", None, None, None, 777),
        ]
    )
    out = case_scores(g, group_means=MEANS)
    assert out["dip_cost_class"].to_list() == [
        "high",
        "low",
        "normal",
        "review",
        "normal",
        "normal",
        "normal",
        "ungrouped",
    ]
    assert out["dip_case_score"].to_list() == [2000.0, 400.0, 1000.0, 5000.0, 500.0, 1000.0, 1000.0, 0.0]
    assert out["dip_ref_cost"].to_list()[:2] == [10_000.0, 10_000.0]
    # thresholds are parameters
    out = case_scores(g, group_means=MEANS, rules=CostRules(high=3.0, low=0.3, review=None))
    assert out["dip_cost_class"].to_list()[:4] == ["normal", "normal", "normal", "high"]
    assert out["dip_case_score"][3] == pytest.approx(1000 * ((6 - 3) + 1))


def test_coefficients_skip_primary_groups():
    g = grouped(
        [
            ("H1", "G1", "core", 1000.0, 10_000),
            ("H1", "G2", "primary", 500.0, 5_000),
            ("H2", "G1", "core", 1000.0, 10_000),
        ]
    )
    out = case_scores(g, group_means=MEANS, hospital_coefficients={"H1": 1.1})
    assert out["dip_coefficient"].to_list() == [1.1, 1.0, 1.0]
    assert out["dip_case_score"].to_list() == pytest.approx([1100.0, 500.0, 1000.0])


def test_same_level_means():
    g = grouped(
        [("H1", "G1", "core", 1000.0, 25_000), ("H2", "G1", "core", 1000.0, 25_000)], level=["3", "2"]
    )
    means = pl.DataFrame({"dip_group": ["G1", "G1"], "level": ["3", "2"], "mean_cost": [15_000.0, 10_000.0]})
    out = case_scores(g, group_means=means, level_col="level")
    assert out["dip_cost_class"].to_list() == ["normal", "high"]
    assert out["dip_case_score"].to_list() == [1000.0, 1500.0]


def test_case_scores_leave_out_a_bad_cost():
    # the bad-value rule of docs/cases.md: a negative cost is left out, not scored
    g = grouped([("H1", "G1", "core", 1000.0, 1), ("H1", "G1", "core", 1000.0, -5)])
    out = case_scores(g, group_means=MEANS)
    assert out["left_out"].to_list() == [None, "negative:total_cost"]
    assert out["dip_case_score"][1] is None and out["dip_case_score"][0] is not None


# ------------------------------------------------------------------ point values
def test_point_values_by_hand():
    # (1x100 + 2x200 + 7x300) / (1x10 + 2x20 + 7x25) = 2600 / 225
    assert year_start_point_value([100, 200, 300], [10, 20, 25]) == pytest.approx(2600 / 225)
    # two years: weights 2:7
    assert year_start_point_value([200, 300], [20, 25]) == pytest.approx(2500 / 215)
    assert settlement_point_value(10_000, 0.8, 3400) == pytest.approx(10_000 / 0.8 / 3400)
    # point values 1..41 with score 1: 2.5% / 97.5% quantiles are 2 and 40
    assert optimised_point_value(np.arange(1, 42), np.ones(41)) == pytest.approx(21.0)
    # two cases cannot be trimmed: both kept
    assert optimised_point_value([10.0, 30.0], [1.0, 1.0]) == pytest.approx(20.0)


def test_point_value_trims_on_cost_by_hand():
    # DIP 3.0 draft §5.4 二(1): trim on the cost (住院费用) at 2.5% / 97.5%.
    # costs 10, 20, 30, 40, scores 1, 1, 4, 1: quantiles 10.75 and 39.25 drop the
    # 10 and 40 cases -> (20 + 30) / (1 + 4) = 10
    costs, scores = [10.0, 20.0, 30.0, 40.0], [1.0, 1.0, 4.0, 1.0]
    assert optimised_point_value(costs, scores) == pytest.approx(10.0)
    # trimming the case point values (10, 20, 7.5, 40) drops 7.5 and 40 instead: 30 / 2
    assert optimised_point_value(costs, scores, trim_on="point_value") == pytest.approx(15.0)
    with pytest.raises(ValueError, match="trim_on"):
        optimised_point_value(costs, scores, trim_on="score")


def test_optimal_interval_point_values_by_hand():
    # DIP 3.0 draft §5.4 二(2). Per hospital income / score: A 9, B 11, C 8; region
    # 39,000 / 4,000 = 9.75; one dimension: A and C lie below -> 17,000 / 2,000 = 8.5
    assert optimal_interval_point_value([9_000, 22_000, 8_000], [1_000, 2_000, 1_000]) == pytest.approx(8.5)
    # two dimensions: point value and cost per point of A (9, 8), B (11, 10.5), C (8, 8.5),
    # D (9.5, 9), E (9.2, 8.3); region (57,700 / 6,000, 54,800 / 6,000) = (9.617, 9.133).
    # In the interval (both below, income covering cost): A, D, E (C's income < cost).
    # E's angle is over 120 degrees, so E is the geometric median -> 9.2
    inc = [9_000, 22_000, 8_000, 9_500, 9_200]
    sc = [1_000, 2_000, 1_000, 1_000, 1_000]
    co = [8_000, 21_000, 8_500, 9_000, 8_300]
    assert optimal_interval_point_value(inc, sc, co) == pytest.approx(9.2)
    # three points forming an equilateral triangle: the median is its centre
    h = 3**0.5 / 2
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, h]])
    from casemix.dip.settle import _geometric_median

    assert _geometric_median(pts) == pytest.approx([0.5, h / 3], abs=1e-9)
    with pytest.raises(ValueError, match="optimal interval"):
        optimal_interval_point_value([10, 10], [1, 1], [12, 12])
    with pytest.raises(ValueError):
        settlement_point_value(1, 0, 1)


def test_settle_at_the_optimal_interval_point_value_by_hand(tmp_path):
    # DIP 3.0 draft §5.4 二(2) as a settle option. One case of G1 (score 1000, mean
    # 10,000) per 1000 points; per hospital Σ cost / Σ score: H1 9,000/1,000 = 9,
    # H2 8, H3 30,000/2,000 = 15, H4 8.6; region 55,600 / 5,000 = 11.12.
    g = grouped(
        [
            ("H1", "G1", "core", 1000.0, 9_000),
            ("H2", "G1", "core", 1000.0, 8_000),
            ("H3", "G1", "core", 1000.0, 15_000),
            ("H3", "G1", "core", 1000.0, 15_000),
            ("H4", "G1", "core", 1000.0, 8_600),
            ("H4", None, None, None, 50),
        ]
    )
    # one dimension: H1, H2, H4 lie below -> 25,600 / 3,000 = 8.5333
    r = dip.settle(g, "10000.00", fund_ratio=0.8, group_means=MEANS, point_value="optimal_interval")
    assert r.point_value == pytest.approx(25_600 / 3_000)
    assert r.region["pv_optimal_interval"][0] == pytest.approx(25_600 / 3_000)
    # point money 5,000 x 8.5333 x 0.8 = 34,133.33 yuan -> 3,413,333 fen; per hospital
    # 682,666.67 / 682,666.67 / 1,365,333.33 / 682,666.67: floors leave 2 fen, to the
    # largest fractions (H1, H2, H4 tie: by row)
    assert r.region["point_money_fen"][0] == 3_413_333
    assert r.hospitals["point_payment_fen"].to_list() == [682_667, 682_667, 1_365_333, 682_666]
    assert r.cases["payment_fen"].to_list() == [682_667, 682_667, 682_667, 682_666, 682_666, 0]
    # two dimensions with 住院总成本: cost per point H1 7, H2 7.6, H3 14, H4 7.3; region
    # 49,900 / 5,000 = 9.98. H1 (9, 7), H2 (8, 7.6), H4 (8.6, 7.3) are in the interval;
    # the angle at H4 is about 170 degrees (> 120), so H4 is the geometric median -> 8.6
    costs = {"H1": 7_000, "H2": 7_600, "H3": 28_000, "H4": 7_300}
    r2 = dip.settle(
        g,
        "10000.00",
        fund_ratio=0.8,
        group_means=MEANS,
        point_value="optimal_interval",
        hospital_costs=costs,
    )
    assert r2.point_value == pytest.approx(8.6)
    # 5,000 x 8.6 x 0.8 = 34,400 yuan; 688,000 fen per case
    assert r2.region["point_money_fen"][0] == 3_440_000
    assert r2.cases["payment_fen"].to_list()[:5] == [688_000] * 5
    # the same costs as a GBK CSV with Chinese headers (as a 医保局 export arrives), and a frame
    table = tmp_path / "costs.csv"
    table.write_bytes('医疗机构编码,住院总成本\nH1,"7,000"\nH2,7600\nH3,28000\nH4,7300.00\n'.encode("gbk"))
    frame = pl.DataFrame({"hospital_id": list(costs), "cost": list(costs.values())})
    for source in (table, str(table), frame, frame.to_pandas()):
        r3 = dip.settle(
            g,
            "10000.00",
            fund_ratio=0.8,
            group_means=MEANS,
            point_value="optimal_interval",
            hospital_costs=source,
        )
        assert r3.point_value == pytest.approx(8.6)
        assert r3.cases["payment_fen"].to_list() == r2.cases["payment_fen"].to_list()
    with pytest.raises(InputError, match="H4"):
        dip.settle(g, 1, group_means=MEANS, point_value="optimal_interval", hospital_costs={"H1": 1})
    bad_tables = [
        ("hospital_id,cost\nH1,7000\nH2,lots\n", r"row 1 \(hospital 'H2', cost 'lots'\)"),
        ("hospital_id,cost\nH1,7000\nH1,-3\n", r"row 1 \(hospital 'H1', cost '-3'\).*>= 0"),
        ("hospital_id,cost\nH1,7000\nH1,7000\n", r"row 1 .*listed twice"),
        ("hospital_id,amount\nH1,7000\n", r"cost column named one of hospital_cost, cost, 住院总成本"),
    ]
    for text, message in bad_tables:
        table.write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=message):
            dip.settle(g, 1, group_means=MEANS, point_value="optimal_interval", hospital_costs=table)
    with pytest.raises(InputError, match=r"hospital 'H2'.*>= 0"):
        dip.settle(
            g, 1, group_means=MEANS, point_value="optimal_interval", hospital_costs={"H1": 1, "H2": "x"}
        )
    with pytest.raises(PolicyError, match="optimal_interval"):
        dip.settle(g, 1, group_means=MEANS, hospital_costs=costs)
    # no hospital covers its cost below the regional means: a clear error
    dear = dict.fromkeys(costs, 10**6)
    with pytest.raises(PolicyError, match="optimal interval"):
        dip.settle(g, 1, group_means=MEANS, point_value="optimal_interval", hospital_costs=dear)


# ------------------------------------------------------------------ settlement to the fen
def _settle_example(**kw):
    g = grouped(
        [
            ("H1", "G1", "core", 1000.0, 10_000),
            ("H1", "G1", "core", 1000.0, 30_000),
            ("H2", "G1", "core", 1000.0, 4_000),
            ("H2", None, None, None, 50),
        ],
        discharge_date=[dt.date(2024, 1, 5), dt.date(2024, 2, 5), dt.date(2024, 1, 9), dt.date(2024, 3, 1)],
    )
    # this example prices low cost by the group mean (the 1.0 reading); the draft's
    # payment-standard reading has its own tests below
    kw.setdefault("low_reference", "mean")
    return dip.settle(g, "10000.00", fund_ratio=0.8, group_means=MEANS, **kw)


def test_very_low_cost_against_the_payment_standard_by_hand():
    # DIP 3.0 draft §5.3 二.1: standard = score x point value x hospital coefficient
    # = 1000 x 10 x 1.2 = 12,000; cost 5,500 < 50% of it (6,000) -> very-low-cost,
    # score = 1000 x 1.2 x 5,500 / 12,000 = 550
    g = grouped(
        [
            ("H1", "G1", "core", 1000.0, 5_500),
            ("H1", "G1", "core", 1000.0, 6_500),
            ("H2", "G1", "core", 1000.0, 5_500),
        ]
    )
    out = case_scores(g, group_means=MEANS, hospital_coefficients={"H1": 1.2}, point_value=10.0)
    assert out["dip_low_ref_cost"].to_list() == pytest.approx([12_000, 12_000, 10_000])
    assert out["dip_cost_class"].to_list() == ["low", "normal", "normal"]
    assert out["dip_case_score"].to_list() == pytest.approx([550.0, 1200.0, 1000.0])
    # the 1.0 reading compares with the group mean (10,000) without the coefficient
    old = case_scores(
        g, group_means=MEANS, hospital_coefficients={"H1": 1.2}, point_value=10.0, low_reference="mean"
    )
    assert old["dip_cost_class"].to_list() == ["normal"] * 3
    # without a point value the standard is priced at the scores' own point value
    # (group mean x hospital coefficient): 10,000 x 1.2 = 12,000 here too
    same = case_scores(g, group_means=MEANS, hospital_coefficients={"H1": 1.2})
    assert same["dip_case_score"].to_list() == pytest.approx([550.0, 1200.0, 1000.0])
    with pytest.raises(PolicyError):
        case_scores(g, group_means=MEANS, low_reference="median")


def test_settle_prices_the_low_cost_standard_at_the_year_start_value():
    g = grouped([("H1", "G1", "core", 1000.0, 10_000), ("H2", "G1", "core", 1000.0, 4_000)])
    # year-start value 3.5: standard 3,500, 4,000 is not below 1,750 -> full score
    r = dip.settle(g, "10000.00", group_means=MEANS, year_start_value=3.5)
    assert r.cases["dip_case_score"].to_list() == [1000.0, 1000.0]
    # year-start value 10: standard 10,000, 4,000 < 5,000 -> 1000 x 4,000 / 10,000 = 400
    r = dip.settle(g, "10000.00", group_means=MEANS, year_start_value=10.0)
    assert r.cases["dip_case_score"].to_list() == [1000.0, 400.0]


def test_settlement_to_the_fen():
    r = _settle_example(year_start_value=3.5)
    h = r.hospitals
    # scores: H1 1000 + 2000 (high cost), H2 400 (low cost); total 3400
    assert h["total_score"].to_list() == [3000.0, 400.0]
    assert r.region["total_score"][0] == 3400.0
    assert r.point_value == pytest.approx(10_000 / 0.8 / 3400)
    # 1,000,000 fen by score: 882,352.94 and 117,647.06 -> largest remainder gives H1 the fen
    assert h["point_payment_fen"].to_list() == [882_353, 117_647]
    assert h["payment_fen"].sum() == 1_000_000
    assert bool(r.region["fund_paid_out"][0])
    # monthly pre-payment: score x 3.5 x 0.8 x 90%
    assert r.monthly.filter(pl.col("hospital_id") == "H1")["prepaid_fen"].to_list() == [252_000, 504_000]
    assert h["prepaid_fen"].to_list() == [756_000, 100_800]
    assert h["clearing_fen"].to_list() == [882_353 - 756_000, 117_647 - 100_800]
    cases = r.cases
    assert cases["payment_fen"].to_list() == [294_118, 588_235, 117_647, 0]
    assert cases["payment_fen"].sum() == 1_000_000


def test_assessment_deductions_deposit():
    r = _settle_example(assessment={"H1": 0.95}, deductions={"H2": "100.50"}, deposit=0.05)
    h = r.hospitals
    # 882,353 x 0.95 = 838,235.35 -> 838,235; 117,647 - 10,050
    assert h["payment_fen"].to_list() == [838_235, 107_597]
    assert h["deposit_fen"].to_list() == [41_912, 5_380]  # 41,911.75 and 5,379.85 rounded half up
    with pytest.raises(PolicyError, match="deposit"):
        _settle_example(deposit=0.06)


def test_fixed_point_value():
    r = _settle_example(point_value=3.0)
    # Σ score x PV x ratio = 3400 x 3 x 0.8 = 8160.00 yuan
    assert r.region["point_money_fen"][0] == 816_000
    assert r.hospitals["point_payment_fen"].to_list() == [720_000, 96_000]


def test_settle_keeps_frame_type():
    g = grouped([("H1", "G1", "core", 1000.0, 10_000), ("H2", "G2", "core", 500.0, 5_000)])
    out = dip.settle(g.to_pandas(), 1000, group_means=MEANS)
    assert isinstance(out.cases, pd.DataFrame)
    assert out.cases["payment_fen"].sum() == 100_000


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["H1", "H2", "H3"]), st.sampled_from(["G1", "G2"]), st.floats(1, 100_000)),
        min_size=1,
        max_size=40,
    ),
    st.decimals(1, 10_000_000, places=2),
    st.floats(0.3, 1.0),
)
def test_settlement_pays_out_the_fund_exactly(rows, fund, ratio):
    g = grouped([(h, gid, "core", 1000.0 if gid == "G1" else 500.0, c) for h, gid, c in rows])
    r = dip.settle(g, fund, fund_ratio=ratio, group_means=MEANS)
    fen = int(fund * 100)
    assert r.hospitals["point_payment_fen"].sum() == fen
    assert r.cases["payment_fen"].sum() == fen
    # each hospital's share is its score share, within one fen
    share = r.hospitals["total_score"].to_numpy() / r.hospitals["total_score"].sum() * fen
    assert np.all(np.abs(r.hospitals["point_payment_fen"].to_numpy() - share) < 1)


# ------------------------------------------------------------------ scores
def test_scores_average_cost_method():
    g = grouped(
        [
            ("H1", "G1", "core", 0.0, 100),
            ("H1", "G1", "core", 0.0, 300),
            ("H1", "G2", "core", 0.0, 600),
            ("H1", None, None, None, 9_999),
        ]
    )
    s = dip.scores(g)
    # M = 1000 / 3; G1 = 200 / M x 1000 = 600; G2 = 1800
    assert s["score"].to_list() == pytest.approx([600.0, 1800.0])
    assert s["n"].to_list() == [2, 1]
    assert s["cv"][0] == pytest.approx(0.5)
    s = dip.scores(g, method="benchmark", benchmark="G2")
    assert s["score"].to_list() == pytest.approx([1000 / 3, 1000.0])


def test_scores_three_year_blend_both_readings():
    g = grouped([("H1", "G1", "core", 0.0, c) for c in (100, 200, 400, 300)], year=[2021, 2022, 2022, 2023])
    by_sum = dip.scores(g, blend="sum", scale=1.0, method="benchmark", benchmark="G1")
    assert by_sum["mean_cost"][0] == pytest.approx((100 + 2 * 600 + 7 * 300) / (1 + 4 + 7))
    by_mean = dip.scores(g, blend="mean")
    assert by_mean["mean_cost"][0] == pytest.approx((100 + 2 * 300 + 7 * 300) / 10)
    assert year_weights_for([2023, 2022], (1, 2, 7)) == {2022: 2.0, 2023: 7.0}
    assert year_weights_for([2020, 2021, 2022, 2023], (1, 2, 7)) == {
        2020: 0.0,
        2021: 1.0,
        2022: 2.0,
        2023: 7.0,
    }


def test_scores_average_method_blend_of_yearly_means_by_hand():
    # blend="mean" (DIP 3.0 draft §5.1: 1:2:7 over the years, here the latest two: 2:7).
    # 2022: G1 100, G2 300 (all cases 200); 2023: G1 200, 200, G2 500 (all cases 300).
    # M = (2·200 + 7·300) / 9 = 2,500 / 9; G1 m = (2·100 + 7·200) / 9 = 1,600 / 9 -> 640;
    # G2 m = (2·300 + 7·500) / 9 = 4,100 / 9 -> 1,640
    g = grouped(
        [
            ("H1", grp, "core", 0.0, c)
            for grp, c in [("G1", 100), ("G2", 300), ("G1", 200), ("G1", 200), ("G2", 500)]
        ],
        year=[2022, 2022, 2023, 2023, 2023],
    )
    s = dip.scores(g, blend="mean")
    assert s["mean_cost"].to_list() == pytest.approx([1_600 / 9, 4_100 / 9])
    assert s["score"].to_list() == pytest.approx([640.0, 1_640.0])


def test_scores_years_outside_the_blend_standard_quota_and_errors():
    # four years, 1:2:7 on the latest three: 2020 weighs 0
    g = grouped(
        [("H1", "G3", "core", 0.0, 1000), *[("H1", "G1", "core", 0.0, c) for c in (100, 200, 300)]],
        year=[2020, 2021, 2022, 2023],
    )
    s = dip.scores(g)
    # M = (1·100 + 2·200 + 7·300) / (1 + 2 + 7) = 260 = G1's mean; G3's only year weighs 0: no score
    assert s["dip_group"].to_list() == ["G1"]
    assert s["mean_cost"].to_list() == pytest.approx([260.0])
    assert s["score"].to_list() == pytest.approx([1000.0])
    assert s["n"].to_list() == [3]
    # 标准定额法: M is the region's fixed cost, a group costing M scores 1 (scale 1 by default)
    assert dip.scores(g, method="standard", standard_cost=130.0)["score"].to_list() == pytest.approx([2.0])
    assert dip.scores(g, method="standard", standard_cost=130.0, scale=1000.0)["score"].to_list() == (
        pytest.approx([2000.0])
    )
    for bad in (None, 0.0, -5.0, float("inf"), float("nan")):
        with pytest.raises(
            PolicyError, match=r"^scores: method='standard' needs a positive standard_cost \(the "
        ):
            dip.scores(g, method="standard", standard_cost=bad)
    with pytest.raises(InputError, match=r"^scores needs column\(s\) dip_group, total_cost$"):
        dip.scores(pl.DataFrame({"x": [1]}))
    with pytest.raises(InputError, match=r"^scores: no grouped case with a cost$"):
        dip.scores(g.with_columns(pl.lit(None, pl.String).alias("dip_group")))
    with pytest.raises(InputError, match=r"^scores: benchmark group 'G9' has no case in the history$"):
        dip.scores(g, method="benchmark", benchmark="G9")
    with pytest.raises(
        ValueError, match=r"^method must be 'average', 'benchmark' or 'standard', not 'median'$"
    ):
        dip.scores(g, method="median")
    with pytest.raises(ValueError, match=r"^blend must be 'sum' or 'mean', not 'median'$"):
        dip.scores(g, blend="median")


def test_hospital_coefficients():
    g = grouped(
        [
            ("H1", "G1", "core", 0, 12_000),
            ("H1", "G2", "core", 0, 6_000),
            ("H2", "G1", "core", 0, 8_000),
            ("H2", "G2", "primary", 0, 50_000),
        ]
    )
    # the case-mix-adjusted alternative: Σ cost / Σ group mean; primary groups left out
    hc = dip.hospital_coefficients(g, MEANS, by="hospital_id", method="case_mix")
    assert hc["coefficient"].to_list() == pytest.approx([18_000 / 15_000, 0.8])
    assert hc["n"].to_list() == [2, 1]
    with pytest.raises(PolicyError, match="group_scores"):
        dip.hospital_coefficients(g, by="hospital_id", method="case_mix")


def _level_history():
    # level 3: 10,000 / 12,000 / 15,000 and level 2: 5,000 / 6,000 / 7,000 in 2021-2023
    rows = [("H3", "G1", "core", 0, c) for c in (10_000, 12_000, 15_000)]
    rows += [("H2", "G1", "core", 0, c) for c in (5_000, 6_000, 7_000)]
    return grouped(rows, hospital_level=["3"] * 3 + ["2"] * 3, year=[2021, 2022, 2023] * 2)


def test_hospital_level_coefficient_of_the_draft_by_hand():
    # DIP 3.0 draft §5.2 一(一)1: level's 1:2:7-weighted mean cost per case / the city's.
    # level 3: (10,000 + 2 x 12,000 + 7 x 15,000) / 10 = 13,900; level 2: 6,600;
    # city: (15,000 + 2 x 18,000 + 7 x 22,000) / (2 + 4 + 14) = 10,250
    hc = dip.hospital_coefficients(_level_history())
    assert hc["hospital_level"].to_list() == ["2", "3"]
    assert hc["coefficient"].to_list() == pytest.approx([6_600 / 10_250, 13_900 / 10_250])
    assert hc["n"].to_list() == [3, 3]
    # by group (§5.2 一(二)): one group here, so the same figures, keyed by group too
    bg = dip.hospital_coefficients(_level_history(), method="by_group")
    assert bg.columns == ["hospital_level", "dip_group", "n", "coefficient"]
    assert bg["coefficient"].to_list() == pytest.approx([6_600 / 10_250, 13_900 / 10_250])


def test_coefficient_per_unit_and_group_takes_precedence():
    # a by-group coefficient (3.0 draft §5.2 一(二)) beats the unit's own; a group the
    # table does not list takes the unit's (null-group row); primary groups none
    g = grouped(
        [
            ("H1", "G1", "core", 100.0, 10_000),
            ("H1", "G2", "core", 100.0, 5_000),
            ("H2", "G1", "core", 100.0, 10_000),
            ("H1", "G3", "primary", 100.0, 10),
        ],
        hospital_level=["3", "3", "2", "3"],
    )
    table = pl.DataFrame(
        {"hospital_level": ["3", "3", "2"], "dip_group": ["G1", None, "G2"], "coefficient": [1.5, 1.2, 0.8]}
    )
    out = case_scores(g, hospital_coefficients=table, by="hospital_level", low_reference="mean")
    assert out["dip_coefficient"].to_list() == pytest.approx([1.5, 1.2, 1.0, 1.0])
    dup = pl.concat([table, table.head(1)])
    with pytest.raises(InputError, match="twice"):
        case_scores(g, hospital_coefficients=dup, by="hospital_level")


def test_subtypes_age_and_cv_rule():
    g = grouped(
        [("H1", "G1", "core", 0, c) for c in (100, 100, 300, 300)],
        age=[30.0, 40.0, 70.0, 80.0],
        age_days=[None] * 4,
    )
    sc = subtype_coefficients(g, dimensions=("age",))
    # 18-64 is the reference band (coefficient 1, no row); 65+: 300 / 200 = 1.5
    assert sc["subtype"].to_list() == ["65+"]
    assert sc["coefficient"].to_list() == pytest.approx([1.5])
    assert sc["cv_before"][0] == pytest.approx(0.5) and sc["cv_after"][0] == pytest.approx(0.0)
    assert sc["used"].all()
    # no CV gain -> not used
    g2 = grouped(
        [("H1", "G1", "core", 0, c) for c in (100, 300, 100, 300)],
        age=[30.0, 40.0, 70.0, 80.0],
        age_days=[None] * 4,
    )
    assert not subtype_coefficients(g2, dimensions=("age",))["used"].any()


def test_subtype_labels():
    f = pl.DataFrame(
        {
            "pdx": ["C34.900", "C34.900", "C34.900", "J18.900", "J18.900", "J18.900"],
            "sdx": [["C78.000"], [], [], [], [], []],
            "pproc": [None, "99.2500", None, None, None, None],
            "oproc": [[], [], [], [], [], []],
            "age": [70.0, 50.0, 60.0, 0.0, 0.0, 5.0],
            "age_days": [None, None, None, 10.0, 200.0, None],
            "discharge": [1.0, 1.0, 5.0, 1.0, 1.0, 1.0],
            "los": [4.0, 5.0, 1.0, 4.0, 4.0, 4.0],
            "icu_days": [None, 1.0, 2.0, 7.0, 8.0, 31.0],
        },
        schema_overrides={"sdx": pl.List(pl.String), "oproc": pl.List(pl.String), "pproc": pl.String},
    )
    lab = subtype_labels(f)
    assert lab["subtype_age"].to_list() == ["65+", "18-64", "18-64", "0-28d", "29d-1y", "1-6"]
    # death needs no stay length (draft: "死亡病例"); the others a stay over 3 days
    assert lab["subtype_tumour"].to_list() == ["metastasis", "radio_chemo", "death", "none", "none", "none"]
    assert lab["subtype_severity"].null_count() == 6
    # ICU-day bands 2-7, 8-14, 15-30, 31+ (draft §5.2 二(四)3); under 2 days none
    assert lab["subtype_icu"].to_list() == ["none", "none", "2-7", "2-7", "8-14", "31+"]
    # a stay of 3 days or less (or unknown) triggers no metastasis / radio-chemo sub-type
    short = subtype_labels(f.with_columns(los=pl.Series([3.0, None, 1.0, 4.0, 4.0, 4.0])))
    assert short["subtype_tumour"].to_list()[:3] == ["none", "none", "death"]
    assert subtype_labels(f.drop("los"))["subtype_tumour"].to_list()[:3] == ["none", "none", "death"]


def test_severity_from_a_drg_scheme_cc_table():
    class FakeScheme:  # the two dicts of casemix.scheme.Scheme that severity reads
        cc = {"J96.000": ("MCC", "7"), "E11.900": ("CC", "3"), "I10.x00": ("CC", "9")}
        exclusions = {"J18.900": "9"}

    f = pl.DataFrame(
        {
            "pdx": ["J18.900"] * 4,
            "sdx": [["E11.900", "J96.000"], ["E11.900"], ["I10.x00"], []],
            "los": [5.0] * 4,
        },
        schema_overrides={"sdx": pl.List(pl.String)},
    )
    lab = subtype_labels(f, scheme=FakeScheme())
    # I10.x00 shares the principal diagnosis's exclusion table 9: excluded
    assert lab["subtype_severity"].to_list() == ["MCC", "CC", "none", "none"]
    # a 3-day stay takes no severity sub-type (draft: "住院天数 3 天以上")
    lab3 = subtype_labels(f.with_columns(los=pl.lit(3.0)), scheme=FakeScheme())
    assert lab3["subtype_severity"].to_list() == ["none"] * 4


def test_scores_need_columns():
    with pytest.raises(InputError, match="dip_group"):
        dip.scores(pl.DataFrame({"total_cost": [1.0]}))


def test_severity_with_a_loaded_drg_scheme():
    import casemix

    scheme = casemix.load_scheme("casemix-demo")
    level, table = scheme.cc["J96.000"]
    assert scheme.exclusions["J18.900"] != table  # so J96.000 counts for a J18.900 case
    f = pl.DataFrame(
        {
            "pdx": ["J18.900", "J18.900", "I63.900"],
            "sdx": [["J96.000"], ["J18.000"], []],
            "los": [4.0, 4.0, 4.0],
        },
        schema_overrides={"sdx": pl.List(pl.String)},
    )
    lab = subtype_labels(f, scheme=scheme)
    # J18.000 shares J18.900's exclusion table 1: excluded
    assert scheme.exclusions["J18.900"] == scheme.cc["J18.000"][1]
    assert lab["subtype_severity"].to_list() == [level, "none", "none"]


def test_summaries_come_back_as_pandas_for_pandas_input():
    g = grouped([("H1", "G1", "core", 1000.0, 10_000), ("H2", "G2", "core", 500.0, 5_000)])
    r = dip.settle(g.to_pandas(), 1000, group_means=MEANS)
    assert isinstance(r.hospitals, pd.DataFrame) and isinstance(r.region, pd.DataFrame)
    assert r.point_value == pytest.approx(1000 / 1500)
    assert isinstance(dip.scores(g.to_pandas()), pd.DataFrame)
    assert isinstance(
        dip.hospital_coefficients(g.to_pandas(), MEANS, by="hospital_id", method="case_mix"), pd.DataFrame
    )


def test_one_subtype_applies_the_highest_that_triggers():
    # DIP 3.0 draft §5.2 二(二): a case meeting several sub-type rules takes the one with
    # the highest coefficient (issue 13.2: not the product of them)
    import dataclasses

    demo = dip.load_catalog("dip-demo")
    cat = dataclasses.replace(
        demo,
        subtypes={
            ("D0029", "tumour", "metastasis"): 1.25,
            ("D0029", "icu", "8-14"): 1.6,
            ("D0029", "age", "65+"): 1.1,
            ("D0029", "age", "7-17"): 0.9,
        },
    )
    g = grouped(
        [("H1", "D0029", "core", 1000.0, 20_000)] * 5,
        age=[70.0, 70.0, 70.0, 40.0, 12.0],
        los=[5.0, 5.0, 2.0, 5.0, 5.0],
        icu_days=[10.0, None, None, 3.0, None],
        sdx=[["C78.000"], ["C78.000"], ["C78.000"], [], []],
    )
    out = case_scores(
        g, catalog=cat, group_means=pl.DataFrame({"dip_group": ["D0029"], "mean_cost": [20_000.0]})
    )
    # 1.6 (ICU 8-14) beats 1.25 and 1.1; metastasis beats 65+; a 2-day stay has no
    # metastasis sub-type; an adult in ICU 2-7 (no coefficient) takes 1; a child 0.9
    assert out["dip_subtype_coefficient"].to_list() == [1.6, 1.25, 1.1, 1.0, 0.9]
    assert out["dip_case_score"].to_list() == pytest.approx([1600.0, 1250.0, 1100.0, 1000.0, 900.0])


def test_catalog_refuses_a_reference_band_row(tmp_path):
    import shutil

    from casemix.errors import SchemeError

    folder = tmp_path / "cat"
    shutil.copytree(dip.load_catalog("dip-demo").path, folder)
    with open(folder / "subtypes.csv", "a", encoding="utf-8") as fh:
        fh.write("D0011,age,18-64,0.857,\n")
    with pytest.raises(SchemeError, match="no sub-type"):
        dip.load_catalog(folder)


def test_standard_quota_scores_by_hand():
    # DIP 3.0 draft §5.1 三 标准定额法: RW_i = m_i / M with a fixed M (M = score 1)
    g = grouped([("H1", "G1", "core", 0, c) for c in (14_000, 16_000)] + [("H1", "G2", "core", 0, 5_000)])
    sc = dip.scores(g, method="standard", standard_cost=5_000)
    assert sc["score"].to_list() == pytest.approx([3.0, 1.0])
    assert dip.scores(g, method="standard", standard_cost=5_000, scale=1000)["score"][0] == pytest.approx(
        3000.0
    )
    with pytest.raises(PolicyError, match="standard_cost"):
        dip.scores(g, method="standard")


def test_bonus_scores_by_group_and_code_list_by_hand():
    # DIP 3.0 draft §5.1 四(三) / §7.3 一(二): add-on points after the coefficients
    from casemix.dip.settle import Bonus

    g = grouped(
        [
            ("H1", "G1", "core", 1000.0, 10_000),
            ("H1", "G2", "core", 500.0, 5_000),
            ("H1", "G2", "core", 500.0, 5_000),
            ("H1", None, None, None, 50),
        ],
        pdx=["I63.900", "K35.300", "K35.300", "R50.900"],
        sdx=[[], [], ["Z99.000"], []],
        pproc=[None, "47.0100", "99.1000", None],
        oproc=[["99.1000"], [], [], []],
    )
    tcm = Bonus("中医优势病种", 200.0, groups=("G1",))
    new_tech = Bonus("新药新技术", 50.0, codes=("99.10",))  # e.g. thrombolysis
    out = case_scores(g, group_means=MEANS, hospital_coefficients={"H1": 1.2}, bonus=[tcm, new_tech])
    # G1: 1000 x 1.2 + 200 + 50 (99.1000 in oproc); G2: 500 x 1.2; 600 + 50; ungrouped 0
    assert out["dip_bonus_score"].to_list() == [250.0, 0.0, 50.0, 0.0]
    assert out["dip_case_score"].to_list() == pytest.approx([1450.0, 600.0, 650.0, 0.0])
    with pytest.raises(PolicyError, match="groups or codes"):
        Bonus("nothing", 10.0)
    with pytest.raises(PolicyError, match="points"):
        Bonus("negative", -1.0, groups=("G1",))
    # settle carries the bonus into the total score
    r = dip.settle(g, "1000.00", group_means=MEANS, bonus=[tcm], low_reference="mean")
    assert r.region["total_score"][0] == pytest.approx(1000 + 500 + 500 + 200)


def _subtype_by_hand(age, los, icu, metastasis, dead, table):
    """One case's sub-type coefficient, stated plainly (the rules of docs/dip-rules.md §6.2)."""
    band = (
        None
        if age is None
        else ("1-6" if age <= 6 else "7-17" if age <= 17 else "18-64" if age < 65 else "65+")
    )
    if age is not None and age < 1:
        band = "29d-1y"
    long = los is not None and los > 3
    tumour = "death" if dead else ("metastasis" if long and metastasis else "none")
    icu_band = (
        None
        if icu is None or icu < 2
        else "2-7"
        if icu <= 7
        else "8-14"
        if icu <= 14
        else "15-30"
        if icu <= 30
        else "31+"
    )
    hits = [table[k] for k in (("age", band), ("tumour", tumour), ("icu", icu_band)) if k in table]
    return max(hits) if hits else 1.0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 99)),
            st.one_of(st.none(), st.integers(0, 10)),
            st.one_of(st.none(), st.integers(0, 40)),
            st.booleans(),
            st.booleans(),
        ),
        min_size=1,
        max_size=30,
    ),
    st.dictionaries(
        st.sampled_from(
            [
                ("age", "65+"),
                ("age", "7-17"),
                ("age", "29d-1y"),
                ("tumour", "death"),
                ("tumour", "metastasis"),
                ("icu", "2-7"),
                ("icu", "8-14"),
                ("icu", "15-30"),
                ("icu", "31+"),
            ]
        ),
        st.floats(0.5, 3.0),
        max_size=9,
    ),
)
def test_case_subtype_equals_the_plain_statement(rows, table):
    import dataclasses

    cat = dataclasses.replace(
        dip.load_catalog("dip-demo"), subtypes={("D0029", d, s): v for (d, s), v in table.items()}
    )
    g = grouped(
        [("H1", "D0029", "core", 1000.0, 20_000)] * len(rows),
        age=[None if r[0] is None else float(r[0]) for r in rows],
        age_days=[None if r[0] is None or r[0] >= 1 else 100.0 for r in rows],
        los=[None if r[1] is None else float(r[1]) for r in rows],
        icu_days=[None if r[2] is None else float(r[2]) for r in rows],
        sdx=[["C78.000"] if r[3] else [] for r in rows],
        discharge=[5.0 if r[4] else 1.0 for r in rows],
    )
    g = g.with_columns(
        pl.col("age").cast(pl.Float64),
        pl.col("age_days").cast(pl.Float64),
        pl.col("los").cast(pl.Float64),
        pl.col("icu_days").cast(pl.Float64),
        pl.col("sdx").cast(pl.List(pl.String)),
    )
    out = case_scores(g, catalog=cat, low_reference="mean")
    want = [_subtype_by_hand(*r, dict(table)) for r in rows]
    assert out["dip_subtype_coefficient"].to_list() == pytest.approx(want)


# ------------------------------------------------------------------ DIP under a payment policy
def _policy_cases():
    """Five DIP cases in two pools; case 5 has a 中医优势病种 bonus code and new-technology cost."""
    g = grouped(
        [
            ("H1", "G1", "core", 1000.0, 10_000),
            ("H1", "G2", "core", 500.0, 5_000),
            ("H2", "G1", "core", 1000.0, 12_000),
            ("H2", "G1", "core", 1000.0, 30_000),
            ("H1", "G2", "core", 500.0, 4_200),
        ],
        insurance_type=["职工", "职工", "职工", "居民", "居民"],
        pdx=["A01", "A01", "A01", "A01", "U66.001"],
        new_tech_cost=[None, None, None, None, 1_200.0],
    )
    return g


def _pools_policy(**changes):
    from decimal import Decimal

    from casemix.budget import Policy, Pool
    from casemix.payment.new_tech import NewTechConfig

    changes.setdefault("new_tech", NewTechConfig(enabled=True))
    return Policy(
        budget=None,
        pools={"职工": Pool(budget=Decimal("25000")), "居民": Pool(budget=Decimal("20000"))},
        **changes,
    )


TCM = dip.Bonus(name="中医优势病种", points=100.0, codes=("U66",))


def test_dip_settle_under_a_policy_by_hand():
    # DIP scores: 1000, 500, 1000; case 4 costs 3 x its mean -> high: 1000 x ((3 - 2) + 1) = 2000;
    # case 5: 500 + 100 (bonus) = 600, its cost rules see 4,200 - 1,200 = 3,000 (normal).
    # New-technology add-on (DIP 3.0 §5.1 四(三)): yuan per point = Σ cost / Σ score =
    # 61,200 / 5,100 = 12, so 1,200 / 12 = 100 points; both add-ons add, each once: 700 points.
    # 职工: H1 1,500 + H2 1,000 = 2,500 points, budget 25,000 yuan -> 10 yuan/point exactly:
    # cases 1,000,000 / 500,000 / 1,000,000 fen.  居民: H2 2,000 + H1 700 = 2,700 points, budget
    # 20,000: H1 700/2,700 x 2,000,000 = 518,518.52, H2 1,481,481.48 -> floors leave 1 fen, to
    # H1 (larger fraction): 518,519 and 1,481,481.
    s = dip.settle(_policy_cases(), policy=_pools_policy(), group_means=MEANS, bonus=[TCM])
    c = s.cases
    assert c["dip_case_score"].to_list() == [1000.0, 500.0, 1000.0, 2000.0, 600.0]
    assert c["dip_bonus_score"].to_list() == [0.0, 0.0, 0.0, 0.0, 100.0]
    assert c["adjusted_points"].to_list() == pytest.approx([1000, 500, 1000, 2000, 700], abs=1e-9)
    assert c["pool"].to_list() == ["职工", "职工", "职工", "居民", "居民"]
    assert c["payment_fen"].to_list() == [1_000_000, 500_000, 1_000_000, 1_481_481, 518_519]
    pr = s.pool_region.sort("pool")
    assert pr["budget_check"].to_list() == [True, True]
    assert s.hospitals.sort("hospital_id")["payment_fen"].to_list() == [2_018_519, 2_481_481]
    assert s.region["payment_fen"].item() == 4_500_000
    assert any("DIP: case scores by DIP's rules" in n for n in s.notes)


def test_dip_settle_under_a_policy_calls_the_core():
    # the same payments as the core settling the DIP scores as points, with the DRG case rules off
    from casemix.dip.policy_settle import dip_policy
    from casemix.payment.core import CaseHooks
    from casemix.settle import settle as core_settle

    policy = _pools_policy()
    s = dip.settle(_policy_cases(), policy=policy, group_means=MEANS, bonus=[TCM])
    scored = case_scores(
        _policy_cases().with_columns(total_cost=pl.col("total_cost") - pl.col("new_tech_cost").fill_null(0)),
        group_means=MEANS,
        bonus=[TCM],
    ).with_columns(_policy_cases()["total_cost"])
    core = core_settle(
        scored,
        dip_policy(policy, 2.0),
        points="dip_case_score",
        group_col="dip_group",
        hooks=CaseHooks(outlier_ref_cost=scored["dip_ref_cost"].to_numpy()),
        scheme="dip",
    )
    assert s.cases["payment_fen"].to_list() == core.cases["payment_fen"].to_list()


def test_dip_cost_rules_see_the_cost_less_new_technology():
    # case 4 again, 30,000 with 12,000 of new technology: its cost rules see 18,000 (1.8 x the
    # mean: normal, 1000 points), not 30,000 (high, 2000); the 12,000 earns the add-on instead
    g = _policy_cases().with_columns(new_tech_cost=pl.Series([None, None, None, 12_000.0, 1_200.0]))
    s = dip.settle(g, policy=_pools_policy(), group_means=MEANS, bonus=[TCM])
    assert s.cases["dip_cost_class"].to_list()[3] == "normal"
    assert s.cases["dip_case_score"].to_list()[3] == 1000.0


def test_dip_settle_policy_refusals():
    from casemix.payment.new_tech import NewTechConfig

    with pytest.raises(PolicyError, match="fund= and policy= both given"):
        dip.settle(_policy_cases(), 1000, policy=_pools_policy(), group_means=MEANS)
    with pytest.raises(PolicyError, match="deposit= and policy= both given"):
        dip.settle(_policy_cases(), policy=_pools_policy(), group_means=MEANS, deposit=0.03)
    with pytest.raises(PolicyError, match="needs fund="):
        dip.settle(_policy_cases(), group_means=MEANS)
    twice = _pools_policy(new_tech=NewTechConfig(enabled=True, codes={"U66.001": 1200.0}))
    with pytest.raises(PolicyError, match="twice"):
        dip.settle(_policy_cases().drop("new_tech_cost"), policy=twice, group_means=MEANS, bonus=[TCM])


def test_subtype_labels_one_row_per_case_without_any_subtype_column():
    # no age, los, discharge or icu_days column: every label is a literal, still one per case
    out = subtype_labels(pl.DataFrame({"hospital_id": ["H1", "H2", "H3"]}))
    assert out.height == 3
    assert out["subtype_tumour"].to_list() == ["none"] * 3


@pytest.mark.parametrize(
    "months",
    [
        ["2024-01-05", "2024-02-03", "2024/03/01"],  # text by the one date rule
        [20240105, 20240203, 20240301],  # YYYYMMDD numbers
        [1, 2, 3],  # month numbers
    ],
)
def test_monthly_prepayment_reads_text_dates_and_month_numbers(months):
    g = pl.DataFrame(
        {
            "case_id": ["a", "b", "c"],
            "hospital_id": ["H1", "H1", "H2"],
            "total_cost": [1000.0, 2000.0, 1500.0],
            "dip_group": ["G1"] * 3,
            "dip_score": [100.0] * 3,
            "dis": months,
        }
    )
    r = dip.settle(g, 3000, month_col="dis")
    # each case 100 points at PV 3000 / 0.8 / 300 = 12.5 yuan; prepaid x 0.8 x 90% = 900 yuan
    assert r.monthly.select("hospital_id", "month", "prepaid_fen").rows() == [
        ("H1", 1, 90_000),
        ("H1", 2, 90_000),
        ("H2", 3, 90_000),
    ]


def test_monthly_prepayment_names_the_row_without_a_month():
    g = pl.DataFrame(
        {
            "case_id": ["a", "b"],
            "hospital_id": ["H1", "H1"],
            "total_cost": [1000.0, 2000.0],
            "dip_group": ["G1"] * 2,
            "dip_score": [100.0] * 2,
            "dis": ["2024-01-05", "soon"],
        }
    )
    with pytest.raises(InputError, match=r"dis at row 1 \(case_id 'b'\) is 'soon'"):
        dip.settle(g, 3000, month_col="dis")


# ------------------------------------------------------------------ mutation survivors (issue 20)
def test_severity_never_excluded_table_does_not_exclude():
    # FORMAT.md step 4: a secondary diagnosis in the principal's exclusion table does not
    # count, unless that table is the scheme's never_excluded_table
    class FakeScheme:
        cc = {"E11.900": ("CC", "0"), "I10.x00": ("CC", "9")}
        exclusions = {"J18.900": "0", "K35.800": "9"}
        never_excluded_table = "0"

    f = pl.DataFrame(
        {"pdx": ["J18.900", "K35.800"], "sdx": [["E11.900"], ["I10.x00"]], "los": [5.0, 5.0]},
        schema_overrides={"sdx": pl.List(pl.String)},
    )
    assert subtype_labels(f, scheme=FakeScheme())["subtype_severity"].to_list() == ["CC", "none"]


def test_hospital_level_coefficient_is_one_row_per_level_over_groups():
    # DIP 3.0 draft §5.2 一(一)1 with two groups: the level's mean over all its cases.
    # level 3: G1 10,000 and G2 2,000 -> 6,000; level 2: G1 6,000 -> 6,000 / city 6,000;
    # city (one year): 18,000 / 3 = 6,000.  By group (§5.2 一(二)): G1 level 3
    # 10,000 / city G1 8,000 = 1.25, level 2 0.75; G2 2,000 / 2,000 = 1
    g = grouped(
        [("H3", "G1", "core", 0, 10_000), ("H3", "G2", "core", 0, 2_000), ("H2", "G1", "core", 0, 6_000)],
        hospital_level=["3", "3", "2"],
    )
    hc = dip.hospital_coefficients(g)
    assert hc.columns == ["hospital_level", "n", "coefficient"]
    assert hc["hospital_level"].to_list() == ["2", "3"]
    assert hc["n"].to_list() == [1, 2]
    assert hc["coefficient"].to_list() == pytest.approx([1.0, 1.0])
    bg = dip.hospital_coefficients(g, method="by_group")
    assert bg.rows() == [
        ("2", "G1", 1, pytest.approx(0.75)),
        ("3", "G1", 1, pytest.approx(1.25)),
        ("3", "G2", 1, 1.0),
    ]


#: subtype_coefficients' columns, as its docstring lists them
SUBTYPE_COLUMNS = "dip_group dimension subtype n mean_cost coefficient cv_before cv_after used".split()


def _subtype_history():
    # group G1: ages 30, 40 (reference band) at 100 and 70, 80 (65+) at 300; ICU days 3
    # on the 65+ cases (band 2-7), none on the others
    return grouped(
        [("H1", "G1", "core", 0, c) for c in (100, 100, 300, 300)],
        age=[30.0, 40.0, 70.0, 80.0],
        age_days=[None] * 4,
        icu_days=[None, None, 3.0, 3.0],
    )


def test_subtype_coefficients_columns_and_order_by_dimension_then_subtype():
    sc = subtype_coefficients(_subtype_history(), dimensions=("icu", "age"))
    assert sc.columns == SUBTYPE_COLUMNS
    # sorted by dimension before sub-type: age/65+ before icu/2-7 ("2-7" < "65+")
    assert sc.select("dimension", "subtype").rows() == [("age", "65+"), ("icu", "2-7")]
    assert sc["mean_cost"].to_list() == pytest.approx([300.0, 300.0])
    assert sc["coefficient"].to_list() == pytest.approx([1.5, 1.5])


def test_subtype_coefficients_without_any_label_is_an_empty_frame_of_the_callers_type():
    # severity needs a DRG scheme: without one no case has a severity label
    labels = subtype_labels(_subtype_history())
    assert labels["subtype_severity"].null_count() == 4
    assert labels.schema["subtype_severity"] == pl.String  # text, as with a scheme
    empty = subtype_coefficients(_subtype_history().to_pandas(), dimensions=("severity",))
    assert isinstance(empty, pd.DataFrame) and len(empty) == 0
    assert list(empty.columns) == SUBTYPE_COLUMNS


def test_subtype_used_at_exactly_the_required_cv_cut():
    # "lowers the CV by at least 20%": a cut of exactly the threshold is used (<=, with
    # the 1e-12 tolerance). min_cv_reduction is searched near its real value so that the
    # threshold equals cv_after to the last bit (these costs admit one), then one step
    # stricter the sub-type is not used
    g = grouped(
        [("H1", "G1", "core", 0, c) for c in (100, 141, 300, 340)],
        age=[30.0, 40.0, 70.0, 80.0],
        age_days=[None] * 4,
    )
    row = subtype_coefficients(g, dimensions=("age",)).row(0, named=True)
    before, after = row["cv_before"], row["cv_after"]
    r0 = 1 - (after - 1e-12) / before
    exact = [r0 + i * 2**-53 for i in range(-300, 300) if (1 - (r0 + i * 2**-53)) * before + 1e-12 == after]
    assert exact, "no reduction puts the threshold exactly on cv_after"
    r = exact[0]
    assert subtype_coefficients(g, dimensions=("age",), min_cv_reduction=r)["used"].to_list() == [True]
    stricter = r
    while (1 - stricter) * before + 1e-12 >= after:
        stricter = float(np.nextafter(stricter, 1.0))
    assert subtype_coefficients(g, dimensions=("age",), min_cv_reduction=stricter)["used"].to_list() == [
        False
    ]
