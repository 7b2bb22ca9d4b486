"""Settlement: the worked examples of docs/payment-settlement.md to the fen, and properties."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casemix._money import yuan_to_fen
from casemix.budget import Elastic, HighCost, LowCost, Policy, Pool, Readmission, ShortStay, SpecialCases
from casemix.errors import InputError, PolicyError
from casemix.payment.core import CaseHooks
from casemix.payment.monthly import MonthlyConfig
from casemix.payment.outliers import OutliersConfig
from casemix.settle import compare, run_demo_settlement, settle

# --- worked example S1 (docs/payment-settlement.md) ----------------------------

WEIGHTS = pl.DataFrame({"drg": ["A1", "B1"], "rw": [1.0, 2.0], "mean_cost": [10_000.0, 20_000.0]})


def s1_cases() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "case_id": ["C1", "C2", "C3", "C4", "C5", "C6", "C7"],
            "hospital_id": ["H1", "H1", "H1", "H2", "H2", "H2", "H2"],
            "hospital_level": ["3", "3", "3", "2", "2", "2", "2"],
            "drg": ["A1", "B1", "A1", "A1", "B1", "0000", "B1"],
            "total_cost": [9_000.0, 70_000.0, 3_000.0, 25_000.0, 8_000.0, 1_234.56, 19_000.0],
            "los": [5.0, 12.0, 3.0, 9.0, 1.0, 2.0, 6.0],
            "discharge": [1, 1, 1, 1, 5, 1, 1],
        }
    )


def s1_policy(**changes) -> Policy:
    # S1 compares outliers with the regional group mean (the example predates the DIP 3.0
    # default, the case's own standard; see example O2 in docs/payment-settlement.md) and
    # applies the hospital coefficient to short stays (it predates the Jinhua default,
    # example J in tests/test_payment_jinhua.py)
    p = Policy(
        budget="100000",
        name="S1",
        points_per_rw=100,
        quality_reserve=0.03,
        prepayment_share=0.85,
        level_coefficients={"3": 1.0, "2": 0.9},
        outliers=OutliersConfig(reference="group_mean"),
        short_stay=ShortStay(coefficient=True),
    )
    return p.replace(**changes) if changes else p


def test_example_s1_cases_to_the_fen():
    s = settle(s1_cases(), s1_policy(), weights=WEIGHTS)
    c = s.cases
    assert c["rule"].to_list() == [
        "normal",
        "high_cost",
        "low_cost",
        "high_cost",
        "short_stay",
        "ungroupable",
        "normal",
    ]
    assert c["adjusted_points"].to_list() == pytest.approx([100, 300, 30, 135, 72, 0, 180])
    # the weight of the DRG; the ungroupable C6 has none: null, not NaN
    assert c["rw"].to_list() == [1.0, 2.0, 1.0, 1.0, 2.0, None, 2.0]
    assert c["payment_fen"].to_list() == [
        1_208_879,
        3_626_638,
        362_664,
        1_631_987,
        870_393,
        123_456,
        2_175_983,
    ]
    assert c.height == 7 and c["case_id"].to_list() == s1_cases()["case_id"].to_list()


def test_example_s1_hospitals_and_region():
    s = settle(s1_cases(), s1_policy(), weights=WEIGHTS)
    # money is integer fen in every table, not floats that happen to be whole
    for table in (s.cases, s.hospitals, s.region, s.pool_hospitals, s.pool_region):
        fen = {c: t for c, t in table.schema.items() if c.endswith("_fen")}
        assert fen and set(fen.values()) == {pl.Int64}, fen
    h = s.hospitals.to_dicts()
    assert [r["hospital_id"] for r in h] == ["H1", "H2"]
    assert [r["points"] for r in h] == pytest.approx([430, 387])
    assert [r["point_payment_fen"] for r in h] == [5_198_181, 4_678_363]
    assert [r["payment_fen"] for r in h] == [5_198_181, 4_801_819]
    assert [r["reserve_fen"] for r in h] == [155_945, 144_055]
    # prepaid = ROUND_HALF_UP(0.85 × fund payment): 4_418_453.85 → 4_418_454, 4_081_546.15 → 4_081_546
    assert [r["prepaid_fen"] for r in h] == [4_418_454, 4_081_546]
    assert [r["clearing_fen"] for r in h] == [623_782, 576_218]
    assert [r["cost_fen"] for r in h] == [8_200_000, 5_323_456]
    assert [r["surplus_fen"] for r in h] == [-3_001_819, -521_637]
    assert [r["cmi"] for r in h] == pytest.approx([4 / 3, 5 / 3])
    # levels "2" and "3" (codes 0 and 1): each hospital's own, the first code too
    assert [r["level"] for r in h] == ["3", "2"]
    r = s.region.row(0, named=True)
    assert r["budget_fen"] == 10_000_000 and r["payment_fen"] == 10_000_000 and r["budget_check"]
    assert r["prepaid_fen"] == 4_418_454 + 4_081_546
    assert r["at_cost_fen"] == 123_456 and r["point_budget_fen"] == 9_876_544
    # one point value without elastic: base = floating = final
    assert r["pv_final"] == pytest.approx(9_876_544 / 100 / 817)
    assert r["pv_base"] == r["pv_floating"] == r["pv_final"]
    assert r["retained_fen"] == 0 and r["patient_fen"] == 0 and r["settled_fen"] == 10_000_000
    assert s.point_value == pytest.approx(120.887931456548)


def test_example_s2_special_case_within_cap():
    # regional cap ⌊0.15 × 7⌋ = 1: C2 (cost 3.5 × its standard) before C1 (0.9 ×)
    p = s1_policy(special=SpecialCases(case_ids=("C2", "C1"), cap_share=0.15))
    s = settle(s1_cases(), p, weights=WEIGHTS)
    c = s.cases
    assert c["rule"].to_list()[:3] == ["normal", "special", "low_cost"]
    assert c["payment_fen"].to_list() == [556_392, 7_000_000, 166_917, 751_128, 400_602, 123_456, 1_001_505]
    assert s.region["pv_final"][0] == pytest.approx(2_876_544 / 100 / 517)
    assert s.hospitals["point_payment_fen"].to_list() == [723_309, 2_153_235]
    assert s.hospitals["n_special"].to_list() == [1, 0]
    assert int(c["payment_fen"].sum()) == 10_000_000


def readmission_cases() -> pl.DataFrame:
    d = dt.date
    return pl.DataFrame(
        {
            "case_id": ["R1", "R2", "R3", "R4"],
            "hospital_id": ["H1"] * 4,
            "patient_id": ["P1", "P1", "P1", "P2"],
            "drg": ["A1", "A1", "A1", "A1"],
            "adrg": ["A1x"] * 4,
            "total_cost": [10_000.0] * 4,
            "admission_date": [d(2024, 3, 1), d(2024, 3, 15), d(2024, 4, 10), d(2024, 3, 16)],
            "discharge_date": [d(2024, 3, 5), d(2024, 3, 20), d(2024, 4, 12), d(2024, 3, 18)],
        }
    )


def test_example_r_readmission_halves_earlier_stay():
    p = Policy(budget="40000")
    s = settle(readmission_cases(), p, weights=WEIGHTS)
    assert s.cases["readmission"].to_list() == [True, False, False, False]
    assert s.cases["adjusted_points"].to_list() == pytest.approx([50, 100, 100, 100])
    assert s.cases["payment_fen"].to_list() == [571_429, 1_142_857, 1_142_857, 1_142_857]
    later = settle(readmission_cases(), p.replace(readmission=Readmission(apply_to="later")), weights=WEIGHTS)
    assert later.cases["readmission"].to_list() == [False, True, False, False]
    eleven = settle(readmission_cases(), p.replace(readmission=Readmission(days=9)), weights=WEIGHTS)
    assert not any(eleven.cases["readmission"].to_list())
    exempt = settle(
        readmission_cases(), p.replace(readmission=Readmission(exempt_adrg=("A1x",))), weights=WEIGHTS
    )
    assert not any(exempt.cases["readmission"].to_list())


def test_readmission_dates_as_text_and_skip_note():
    cases = readmission_cases().with_columns(pl.col("admission_date", "discharge_date").cast(pl.String))
    s = settle(cases, Policy(budget="40000"), weights=WEIGHTS)
    assert s.cases["readmission"].to_list() == [True, False, False, False]
    s2 = settle(cases.drop("patient_id"), Policy(budget="40000"), weights=WEIGHTS)
    assert not any(s2.cases["readmission"].to_list())
    assert any("readmission rule skipped" in n for n in s2.notes)


# --- options ----------------------------------------------------------------------


def test_ungroupable_rules():
    cases = s1_cases()
    by_points = settle(cases, s1_policy(ungroupable="points"), weights=WEIGHTS)
    # cost-converted points: 1234.56 / 10000 (M from mean_cost / rw) × 100, no coefficient
    assert by_points.cases["adjusted_points"][5] == pytest.approx(12.3456)
    assert by_points.region["at_cost_fen"][0] == 0
    unpaid = settle(cases, s1_policy(ungroupable="none"), weights=WEIGHTS)
    assert unpaid.cases["payment_fen"][5] == 0
    assert int(unpaid.cases["payment_fen"].sum()) == 10_000_000


def test_unknown_drg_is_no_weight_and_high_cost_rules():
    cases = s1_cases().with_columns(
        pl.when(pl.col("case_id") == "C7").then(pl.lit("Z9")).otherwise(pl.col("drg")).alias("drg")
    )
    s = settle(cases, s1_policy(), weights=WEIGHTS)
    assert s.cases["rule"][6] == "no_weight" and s.cases["payment_fen"][6] == 1_900_000
    pro = settle(s1_cases(), s1_policy(high_cost=HighCost(rule="pro_rata")), weights=WEIGHTS)
    assert pro.cases["adjusted_points"][1] == pytest.approx(700)  # 200 × 70000 / 20000
    none = settle(s1_cases(), s1_policy(high_cost=HighCost(rule="none")), weights=WEIGHTS)
    assert none.cases["adjusted_points"][1] == pytest.approx(200)
    # group means of the settled cases instead of the weight table: B1 mean (70000+8000+19000)/3
    cur = settle(s1_cases(), s1_policy(high_cost=HighCost(mean="cases")), weights=WEIGHTS)
    assert cur.cases["ref_cost"][1] == pytest.approx(97_000 / 3)
    assert cur.cases["rule"][1] == "normal"


def test_group_without_reference_cost_is_not_an_outlier():
    # NaN must not compare as "above everything": B1 without mean_cost has no high/low rule
    weights = WEIGHTS.with_columns(
        pl.when(pl.col("drg") == "B1").then(None).otherwise(pl.col("mean_cost")).alias("mean_cost")
    )
    s = settle(s1_cases(), s1_policy(), weights=weights)
    assert s.cases["rule"].to_list() == [
        "normal",
        "normal",
        "low_cost",
        "high_cost",
        "short_stay",
        "ungroupable",
        "normal",
    ]
    assert s.cases["adjusted_points"].to_list() == pytest.approx([100, 200, 30, 135, 180, 0, 180])
    assert s.cases["ref_cost"][1] is None
    # without mean_cost at all, a group's reference cost is rw × (Σ cost / Σ rw) of this year
    bare = settle(s1_cases(), s1_policy(), weights=WEIGHTS.drop("mean_cost"))
    m = (9_000 + 70_000 + 3_000 + 25_000 + 8_000 + 19_000) / (1 + 2 + 1 + 1 + 2 + 2)
    assert bare.cases["ref_cost"].to_list()[:2] == pytest.approx([m, 2 * m])
    with pytest.raises(InputError, match="cannot be converted into points"):
        settle(
            s1_cases().filter(pl.col("drg") == "0000"),
            s1_policy(ungroupable="points"),
            weights=WEIGHTS.drop("mean_cost"),
        )


def test_points_column_entry_gives_the_same_settlement():
    cases = s1_cases().with_columns(
        pl.col("drg").replace_strict({"A1": 100.0, "B1": 200.0}, default=None).alias("points")
    )
    a = settle(s1_cases(), s1_policy(), weights=WEIGHTS)
    b = settle(cases, s1_policy(), weights=WEIGHTS, points="points")
    assert a.cases["payment_fen"].to_list() == b.cases["payment_fen"].to_list()
    # without a weight table, group means come from the cases themselves
    c = settle(cases, s1_policy(), points="points")
    assert int(c.cases["payment_fen"].sum()) == 10_000_000
    assert c.cases["ref_cost"][1] == pytest.approx(97_000 / 3)


def test_hospital_coefficient_beats_level_and_policy_levels():
    p = s1_policy(hospital_coefficients={"H2": 1.2})
    s = settle(s1_cases(), p, weights=WEIGHTS)
    assert s.cases["coefficient"].to_list() == [1.0, 1.0, 1.0, 1.2, 1.2, 1.2, 1.2]
    p2 = s1_policy(hospital_levels={"H1": "3", "H2": "2"})
    s2 = settle(s1_cases().drop("hospital_level"), p2, weights=WEIGHTS)
    assert (
        s2.cases["payment_fen"].to_list()
        == settle(s1_cases(), s1_policy(), weights=WEIGHTS).cases["payment_fen"].to_list()
    )


def test_example_s1_hospital_sums_and_cases_without_case_id():
    h = settle(s1_cases(), s1_policy(), weights=WEIGHTS).hospitals
    # base points 100 + 200 + 100 and 100 + 200 + 200 (C6 has none); 3 grouped cases each (Int64)
    assert h["base_points"].to_list() == [400.0, 500.0]
    assert h["grouped_cases"].to_list() == [3, 3] and h.schema["grouped_cases"] == pl.Int64
    # without case_id the messages name the row and its number from 1 as the case
    bad = s1_cases().drop("case_id").with_columns(patient_share=pl.Series([0.0, 0.0, -1.0, 0, 0, 0, 0]))
    with pytest.raises(
        InputError, match=r"^patient_share \(个人负担, yuan\) is negative at row 2 \(case_id '3'\)"
    ):
        settle(bad, s1_policy(), weights=WEIGHTS)


def test_example_s1_with_a_special_case_approved_by_hook():
    # C2 approved region-wide (CaseHooks.approved_special): paid at its cost, 70,000 yuan (fund
    # ratio 1); C6 at cost as before; the other 517 points share 10,000,000 − 7,000,000 −
    # 123,456 = 2,876,544 fen: C1 100 / 517 of it = 556,391.9 → 556,392
    hooks = CaseHooks(approved_special=np.array([False, True, False, False, False, False, False]))
    c = settle(s1_cases(), s1_policy(), weights=WEIGHTS, hooks=hooks).cases
    assert c["rule"].to_list()[:2] == ["normal", "special"]
    assert c["payment_fen"].to_list()[:2] == [556_392, 7_000_000]
    assert c["payment_fen"].sum() == 10_000_000


def test_pandas_in_pandas_out_and_compare():
    pdf = s1_cases().to_pandas()
    pdf.index = pd.RangeIndex(10, 17)
    s = settle(pdf, s1_policy(), weights=WEIGHTS.to_pandas())
    assert isinstance(s.cases, pd.DataFrame) and list(s.cases.index) == list(range(10, 17))
    assert isinstance(s.hospitals, pd.DataFrame) and isinstance(s.region, pd.DataFrame)
    assert s.cases["payment_fen"].sum() == 10_000_000
    t = compare(pdf, s1_policy(), s1_policy(level_coefficients={"3": 1.0, "2": 1.0}), weights=WEIGHTS)
    assert isinstance(t, pd.DataFrame)
    assert list(t["payment_a_fen"]) == [5_198_181, 4_801_819]
    assert (t["payment_b_fen"].sum()) == 10_000_000
    assert (t["diff_fen"] == t["payment_b_fen"] - t["payment_a_fen"]).all()
    assert t["diff_fen"].iloc[1] > 0  # H2 gains when its level coefficient rises to 1.0
    assert list(t.columns) == [
        "hospital_id",
        "cases",
        "points_a",
        "points_b",
        "payment_a_fen",
        "payment_b_fen",
        "diff_fen",
        "diff_pct",
        "surplus_a_fen",
        "surplus_b_fen",
    ]
    assert list(t["surplus_a_fen"]) == [-3_001_819, -521_637]  # example S1's surpluses


def test_compare_diff_pct_of_a_and_null_without_a_payment():
    # H1 earns every point: 100 yuan of budget under a, 300 under b → +20,000 fen, +200% of a;
    # H2 earns none: 0 fen under a and b, no percentage of 0
    cases = pl.DataFrame(
        {
            "case_id": ["a", "b"],
            "hospital_id": ["H1", "H2"],
            "drg": ["A", "B"],
            "pts": [100.0, 0.0],
            "total_cost": [500.0, 300.0],
        }
    )
    plain = dict(
        high_cost=HighCost(rule="none"), low_cost=LowCost(rule="none"), short_stay=ShortStay(enabled=False)
    )
    t = compare(cases, Policy(budget=100, **plain), Policy(budget=300, **plain), points="pts")
    assert t.select("payment_a_fen", "payment_b_fen", "diff_fen", "diff_pct").rows() == [
        (10_000, 30_000, 20_000, 200.0),
        (0, 0, 0, None),
    ]


def test_monthly_tables_through_settle_are_worked_example_m():
    # test_payment_monthly's example M (10.5 yuan per point given), its cases settled: the monthly
    # table takes each case's patient share from the settlement's inputs (1,234.56 yuan → fen)
    cases = pl.DataFrame(
        {
            "case_id": ["a", "b", "c", "d"],
            "hospital_id": ["H1", "H1", "H1", "H2"],
            "discharge_date": ["2024-01-10", "2024-01-31", "2024-02-01", "2024-01-15"],
            "audit_deduction": [500.0, None, 0.0, 12.34],
            "drg": ["A", "A", "A", "A"],
            "pts": [1_000.0, 500.5, 800.0, 333.3],
            "total_cost": [5_000.0, 2_000.0, 3_000.0, 100.0],
            "patient_share": [3_000.0, 1_234.56, 2_000.0, 0.0],
        }
    )
    cfg = MonthlyConfig(
        enabled=True,
        prepay_ratio=0.9,
        deposit_share=0.05,
        scores={"H1": 90, "H2": 55},
        pass_score=60,
        point_value=10.5,
    )
    plain = dict(
        high_cost=HighCost(rule="none"), low_cost=LowCost(rule="none"), short_stay=ShortStay(enabled=False)
    )
    m = settle(cases, Policy(budget=30_000, monthly=cfg, **plain), points="pts").monthly
    assert m["patient_share_fen"].to_list() == [423_456, 200_000, 0]
    assert m["base_fen"].to_list() == [1_152_069, 640_000, 349_965]
    assert m["monthly_fen"].to_list() == [986_862, 576_000, 313_735]


def test_summary_share_from_one_fen_of_cost_and_cmi_null_without_grouped_cases():
    # H1: one A1 case (100 points) costing 0.01 yuan; H2: one case without a group
    cases = pl.DataFrame(
        {
            "case_id": ["a", "b"],
            "hospital_id": ["H1", "H2"],
            "drg": ["A1", None],
            "total_cost": [0.01, 50.0],
        }
    )
    s = settle(cases, Policy(budget="100", ungroupable="cost"), weights=WEIGHTS)
    h = s.hospitals
    assert h["cost_fen"].to_list() == [1, 5_000] and h["grouped_cases"].to_list() == [1, 0]
    assert h["cmi"].to_list() == [1.0, None]  # null, not NaN, for no grouped case
    surplus = h["surplus_fen"].to_list()
    share = s.summary()["surplus_share"].to_list()
    assert share == pytest.approx([surplus[0] / 1, surplus[1] / 5_000])
    # S1: surplus ÷ cost, −3,001,819 ÷ 8,200,000 and −521,637 ÷ 5,323,456 fen
    s1 = settle(s1_cases(), s1_policy(), weights=WEIGHTS)
    assert s1.summary()["surplus_share"].to_list() == pytest.approx(
        [-3_001_819 / 8_200_000, -521_637 / 5_323_456]
    )


def test_errors_name_row_and_column():
    bad = s1_cases().with_columns(
        pl.when(pl.col("case_id") == "C3").then(-1.0).otherwise(pl.col("total_cost")).alias("total_cost")
    )
    # a negative cost: the case is left out (docs/cases.md, bad-value rule), counted in notes
    s = settle(bad, s1_policy(), weights=WEIGHTS)
    cases = s.cases
    assert cases["left_out"].to_list() == [None, None, "negative:total_cost", *[None] * 4]
    assert cases["payment_fen"][2] is None and cases["total_cost"][2] == -1.0
    assert cases["payment_fen"].sum() == 10_000_000
    assert "negative:total_cost: 1 row(s) left out" in s.notes
    with pytest.raises(InputError, match="hospital_id"):
        settle(s1_cases().drop("hospital_id"), s1_policy(), weights=WEIGHTS)
    with pytest.raises(InputError, match="weights="):
        settle(s1_cases(), s1_policy())
    with pytest.raises(PolicyError, match="exceed the budget"):
        settle(s1_cases(), s1_policy(budget="1000"), weights=WEIGHTS)
    with pytest.raises(InputError, match="drg and rw"):
        settle(s1_cases(), s1_policy(), weights=pl.DataFrame({"drg": ["A1"]}))
    # a weight table's optional number read as text (a city table's CSV): a number or a blank is
    # read as before, text that is no number is refused (read as null it would have been
    # "the table gives no threshold / mean for this DRG", silently)
    as_text = WEIGHTS.with_columns(pl.col("mean_cost").cast(pl.String), high_k=pl.Series(["3", None]))
    as_numbers = WEIGHTS.with_columns(high_k=pl.Series([3.0, None]))
    assert settle(s1_cases(), s1_policy(), weights=as_text).cases.equals(
        settle(s1_cases(), s1_policy(), weights=as_numbers).cases
    )
    for col, value in (("high_k", "3 times"), ("low_k", "abc"), ("mean_cost", "20,000"), ("mean_los", "n/a")):
        bad_w = WEIGHTS.with_columns(pl.Series(col, ["1", value]))
        with pytest.raises(
            InputError, match=rf"weight table: {col} of DRG 'B1' \(row 1\) is '{value}', which is no number"
        ):
            settle(s1_cases(), s1_policy(), weights=bad_w)


def test_demo_settlement_sums_to_budget():
    rng = np.random.default_rng(7)
    n = 2000
    grouped = pl.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(n)],
            "hospital_id": rng.choice(["H01", "H02", "H03", "H04"], n),
            "hospital_level": rng.choice(["3", "2"], n),
            "drg": rng.choice(["FR25", "HC25", "OR19", "IC29", "0000"], n, p=[0.3, 0.3, 0.2, 0.18, 0.02]),
            "total_cost": np.round(rng.lognormal(9, 0.7, n), 2),
            "los": rng.integers(1, 20, n).astype(float),
            "discharge": rng.choice([1, 2, 5], n, p=[0.94, 0.03, 0.03]),
        }
    )
    # one case without a cost: left out, and counted as 0 yuan in the demo budget (as 1 yuan it
    # would add 0.92 yuan to 92% of the costs, 18,976,958.10 yuan: 18,976,959 once rounded)
    grouped = grouped.with_columns(
        pl.when(pl.col("case_id") == "c1").then(None).otherwise(pl.col("total_cost")).alias("total_cost")
    )
    s = run_demo_settlement(grouped)
    r = s.region.row(0, named=True)
    assert r["budget_check"] and int(s.hospitals["payment_fen"].sum()) == r["budget_fen"]
    assert r["budget_fen"] == yuan_to_fen(round(grouped["total_cost"].sum() * 0.92))
    assert r["policy"] == "demo (budget = 92% of the cases' cost)"
    assert s.cases["left_out"].to_list()[:2] == [None, "missing:total_cost"]
    assert r["budget_fen"] == 1_897_695_800


# --- properties ------------------------------------------------------------------------


@st.composite
def settlement_inputs(draw):
    n = draw(st.integers(1, 40))
    hosp = draw(st.lists(st.sampled_from(["H1", "H2", "H3", "H4"]), min_size=n, max_size=n))
    drg = draw(st.lists(st.sampled_from(["A1", "B1", "C1", "0000", "Z9"]), min_size=n, max_size=n))
    cost = draw(st.lists(st.floats(0.0, 500_000.0).map(lambda x: round(x, 2)), min_size=n, max_size=n))
    los = draw(st.lists(st.integers(0, 40), min_size=n, max_size=n))
    dis = draw(st.lists(st.sampled_from([1, 2, 5, 9]), min_size=n, max_size=n))
    lvl = draw(st.lists(st.sampled_from(["1", "2", "3"]), min_size=n, max_size=n))
    cases = pl.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(n)],
            "hospital_id": hosp,
            "drg": drg,
            "total_cost": cost,
            "los": [float(x) for x in los],
            "discharge": dis,
            "hospital_level": lvl,
        }
    )
    factor = draw(st.floats(0.2, 3.0))
    budget = round(sum(cost) * factor + draw(st.integers(0, 10_000)), 2)
    if draw(st.booleans()):  # patient shares, up to the whole cost (and a little above)
        share = draw(st.lists(st.floats(0, 1.1), min_size=n, max_size=n))
        cases = cases.with_columns(
            pl.Series("patient_share", [round(c * f, 2) for c, f in zip(cost, share, strict=True)])
        )
    pools = {}
    if draw(st.booleans()):
        cases = cases.with_columns(
            pl.Series(
                "insurance_type",
                draw(st.lists(st.sampled_from(["职工", "居民", "310", "resident"]), min_size=n, max_size=n)),
            )
        )
        part = draw(st.floats(0, 1))
        pools = {
            "职工": Pool(budget=str(round(budget * part, 2))),
            "居民": Pool(budget=str(round(budget * (1 - part), 2))),
        }
    elastic = Elastic(enabled=draw(st.booleans()), base_share=draw(st.floats(0, 1)), cap=draw(st.booleans()))
    policy = Policy(
        budget=None if pools else str(budget),
        pools=pools,
        elastic=elastic,
        point_form=draw(st.sampled_from(["actual", "ratio"])),
        fund_ratio=draw(st.floats(0.3, 1)),
        quality_reserve=draw(st.floats(0, 0.1)),
        prepayment_share=draw(st.floats(0, 1)),
        ungroupable=draw(st.sampled_from(["cost", "points", "none"])),
        level_coefficients={"3": draw(st.floats(0.5, 1.5)), "2": draw(st.floats(0.5, 1.5))},
        high_cost=HighCost(
            rule=draw(st.sampled_from(["excess", "pro_rata", "none"])), factor=draw(st.floats(0, 2))
        ),
        special=SpecialCases(
            case_ids=tuple(draw(st.lists(st.sampled_from([f"c{i}" for i in range(n)]), max_size=3))),
            cap_share=draw(st.floats(0, 1)),
        ),
    )
    volume = {h: draw(st.floats(0, 2000)) for h in ["H1", "H2", "H3", "H4"]}
    weights = pl.DataFrame(
        {"drg": ["A1", "B1", "C1"], "rw": [0.5, 1.0, 3.7], "mean_cost": [5_000.0, 10_000.0, 37_000.0]}
    )
    if draw(st.booleans()):
        weights = weights.drop("mean_cost")
    return cases, policy, weights, volume


def test_subnormal_base_volumes_are_a_policy_error_not_nan():
    # found by hypothesis in test_budget_conservation_for_any_input: base share 0 and a base
    # volume total of 2.2e-309 points made the base point value inf and inf x 0 = NaN fen
    cases = pl.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(9)],
            "hospital_id": ["H1"] * 3 + ["H3"] + ["H1"] * 5,
            "drg": ["A1"] * 9,
            "total_cost": [0.0] * 8 + [1.0],
            "los": [0.0] * 9,
            "discharge": [1] * 9,
            "hospital_level": ["1"] * 9,
        }
    )
    weights = pl.DataFrame({"drg": ["A1"], "rw": [0.5], "mean_cost": [5_000.0]})
    policy = Policy.demo().replace(
        budget=Decimal("1.0"),
        elastic=Elastic(enabled=True, base_share=0.0, cap=False),
        quality_reserve=0.0,
        prepayment_share=0.0,
    )
    tiny = {"H1": 0.0, "H3": 2.225073858507203e-309}
    with pytest.raises(PolicyError, match=r"base volumes too small.*2\.225073858507203e-309 points"):
        settle(cases, policy, weights=weights, base_volume=tiny)
    # a small but normal total still settles, the whole budget to the fen
    s = settle(cases, policy, weights=weights, base_volume={"H1": 0.0, "H3": 1e-300})
    assert int(s.hospitals["payment_fen"].sum()) + int(s.region["retained_fen"][0]) == 100


def _settle(cases, policy, weights, volume):
    return settle(cases, policy, weights=weights, base_volume=volume)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(settlement_inputs())
def test_budget_conservation_for_any_input(inp):
    """Point method, any policy: Σ fund payments + retained = the fund budget, per pool, to the fen."""
    cases, policy, weights, volume = inp
    try:
        s = _settle(cases, policy, weights, volume)
    except PolicyError as exc:  # at-cost payments above the budget, or nothing earns points
        assert (
            "exceed the budget" in str(exc)
            or "no case earns points" in str(exc)
            or "none is positive" in str(exc)
            or "base volumes too small" in str(exc)
        )
        return
    except InputError as exc:  # ungroupable cases to convert into points, no reference cost
        assert "cannot be converted into points" in str(exc)
        return
    h, c = s.hospitals, s.cases
    assert c.height == cases.height
    retained = int(s.region["retained_fen"][0])
    assert int(h["payment_fen"].sum()) + retained == policy.budget_fen
    assert int(c["payment_fen"].sum()) + retained == policy.budget_fen
    if not policy.elastic.enabled:
        assert retained == 0
    for pool, budget in ((t, p.budget) for t, p in policy.pools.items()):
        pr = s.pool_region.filter(pl.col("pool") == pool).row(0, named=True)
        assert pr["fund_fen"] + pr["retained_fen"] == yuan_to_fen(budget)
        assert int(c.filter(pl.col("pool") == pool)["payment_fen"].sum()) == pr["fund_fen"]
    assert h["payment_fen"].to_list() == (
        c.group_by("hospital_id")
        .agg(pl.col("payment_fen").sum())
        .sort("hospital_id")["payment_fen"]
        .to_list()
    )
    # the fund pays the settled amount minus the patient share, case by case
    assert (c["payment_fen"] == c["settled_fen"] - c["patient_fen"]).all()
    if policy.point_form == "ratio" or "patient_share" not in cases.columns:
        assert (c["payment_fen"] >= 0).all()
    assert (h["clearing_fen"] == h["final_fund_fen"] - h["reserve_fen"] - h["prepaid_fen"]).all()
    assert s.region["budget_check"][0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(settlement_inputs())
def test_more_points_never_less_payment_at_one_point_value(inp):
    """At one point value, more points never mean less point money: exact, ties included.

    The split is largest remainder with each case's exact share computed as
    points × (money ÷ points of the hospital), monotone in points, and equal
    fractional parts ordered by points first (``casemix._money.allocate_grouped``);
    so no tolerance is needed even for float near-ties.
    """
    cases, policy, weights, _ = inp
    policy = policy.replace(elastic=Elastic(), pools={}, budget=policy.budget)
    cases = cases.drop("insurance_type", strict=False)
    try:
        s = settle(cases, policy, weights=weights)
    except (PolicyError, InputError):
        return
    h = s.hospitals.sort("points", "point_payment_fen")
    assert _ties_only(h["points"], h["point_payment_fen"])
    for _, g in s.cases.group_by("hospital_id"):
        # equal points may differ by the one leftover fen: ordered by pay among equals
        g = g.filter(pl.col("adjusted_points") > 0).sort("adjusted_points", "settled_fen")
        pay = g["settled_fen"].to_numpy()  # point-paid cases: settled = their point money
        assert all(pay[i] <= pay[i + 1] for i in range(len(pay) - 1))
    # every hospital's point money is its points at the final point value, within 1 fen
    # (ratio form: the money for points is the fund's, points × PV × ratio)
    pv = s.point_value
    if pv is not None:
        ratio = policy.fund_ratio if policy.point_form == "ratio" else 1.0
        exact = s.hospitals["points"].to_numpy() * pv * ratio * 100
        assert np.all(np.abs(s.hospitals["point_payment_fen"].to_numpy() - exact) < 1 + 1e-6)


def _ties_only(points: pl.Series, pay: pl.Series) -> bool:
    p, f = points.to_numpy(), pay.to_numpy()
    return all(f[i] <= f[i + 1] or p[i] == p[i + 1] for i in range(len(f) - 1))


# --- command line -------------------------------------------------------------------------


def test_cli_weights_then_settle(tmp_path):
    from click.testing import CliRunner

    from casemix.cli.settle_cmd import settle as settle_cmd
    from casemix.cli.settle_cmd import weights as weights_cmd

    rng = np.random.default_rng(3)
    n = 400
    cases = pl.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(n)],
            "hospital_id": rng.choice(["H1", "H2"], n),
            "drg": rng.choice(["A1", "B1", "0000"], n, p=[0.6, 0.38, 0.02]),
            "total_cost": np.round(rng.lognormal(8, 0.5, n), 2),
            "los": rng.integers(1, 9, n).astype(float),
            "discharge": rng.choice([1, 5], n),
        }
    )
    cases.write_csv(tmp_path / "cases.csv")
    policy = tmp_path / "p.toml"
    policy.write_text("name = 'p'\n[budget]\ntotal_yuan = 1000000.01\n", encoding="utf-8")
    r = CliRunner().invoke(
        weights_cmd, [str(tmp_path / "cases.csv"), "-o", str(tmp_path / "w.csv"), "--trim", "iqr"]
    )
    assert r.exit_code == 0, r.output
    assert pl.read_csv(tmp_path / "w.csv")["drg"].to_list() == ["A1", "B1"]
    r = CliRunner().invoke(
        settle_cmd,
        [
            str(tmp_path / "cases.csv"),
            "--weights",
            str(tmp_path / "w.csv"),
            "--policy",
            str(policy),
            "-o",
            str(tmp_path / "out"),
            "--compare",
            "demo",
        ],
    )
    assert r.exit_code == 0, r.output
    h = pl.read_csv(tmp_path / "out" / "hospitals.csv")
    assert h["payment_fen"].sum() == 100_000_001
    assert pl.read_csv(tmp_path / "out" / "cases.csv").height == n
    assert (tmp_path / "out" / "compare.csv").exists()
    assert "exact" in r.output


def test_write_and_summary(tmp_path):
    cases = s1_cases().with_columns(pl.lit(["x", "y"]).alias("sdx"))  # a list column
    s = settle(cases, s1_policy(), weights=WEIGHTS)
    paths = s.write(tmp_path / "csv")
    assert pl.read_csv(paths["cases"])["sdx"].to_list() == ["x|y"] * 7
    assert pl.read_csv(paths["hospitals"])["payment_fen"].to_list() == [5_198_181, 4_801_819]
    # the tables for people (all but cases) get a yuan column beside each fen one and a BOM for
    # Excel; the per-case table is a machine table, written as it is
    hosp = pl.read_csv(paths["hospitals"], infer_schema=False)
    assert hosp["payment_yuan"].to_list() == ["51981.81", "48018.19"]
    assert hosp.columns.index("payment_yuan") == hosp.columns.index("payment_fen") + 1
    assert paths["hospitals"].read_bytes()[:3] == b"\xef\xbb\xbf"
    assert "payment_yuan" not in pl.read_csv(paths["cases"]).columns
    assert paths["cases"].read_bytes()[:3] != b"\xef\xbb\xbf"
    (tmp_path / "pq").mkdir()  # a directory that exists already is written into
    pq = s.write(tmp_path / "pq", fmt="parquet")
    assert pl.read_parquet(pq["cases"])["payment_fen"].sum() == 10_000_000
    with pytest.raises(InputError, match="csv, parquet or xlsx"):
        s.write(tmp_path / "x", fmt="json")
    summary = s.summary()
    assert summary["payment"].to_list() == pytest.approx([51_981.81, 48_018.19])
    assert summary["surplus"].to_list() == pytest.approx([-30_018.19, -5_216.37])


def test_negative_points_named():
    cases = s1_cases().with_columns(pl.Series("points", [100.0, -1, 30, 1, 1, None, 1]))
    with pytest.raises(InputError, match=r"points \(base points\) negative or infinite at row 1"):
        settle(cases, s1_policy(), points="points")


def test_hospital_level_column_is_text_without_levels():
    # no hospital_level: the hospital table's level is a String column of nulls, not Null-typed
    s = settle(s1_cases().drop("hospital_level"), s1_policy(), weights=WEIGHTS)
    assert s.hospitals.schema["level"] == pl.String and s.hospitals["level"].to_list() == [None, None]


def test_integer_hospital_levels_stay_integer_and_summary_columns():
    # an integer hospital_level column comes back as the input's integers in the case table
    c = s1_cases().with_columns(pl.col("hospital_level").cast(pl.Int64))
    s = settle(c, s1_policy(), weights=WEIGHTS)
    assert s.cases.schema["hospital_level"] == pl.Int64
    assert s.cases["hospital_level"].to_list() == c["hospital_level"].to_list()
    summary = s.summary()
    assert summary.columns == [
        "hospital_id",
        "level",
        "cases",
        "cmi",
        "points",
        "payment",
        "cost",
        "surplus",
        "surplus_share",
    ]
    assert summary["points"].to_list() == [430.0, 387.0]
