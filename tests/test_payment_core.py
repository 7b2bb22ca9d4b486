"""Settlement core (casemix.payment): the worked examples of docs/payment-settlement.md to the fen.

P1 fund and patient (actual and ratio forms, patient share above the
settled amount), P2 pools, P3 rate method and same-rate groups, P4 elastic
point value, P5 corridors; the settlement items of issue 20 (excess
factor, readmission penalty, default coefficient); properties.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from casemix._money import yuan_to_fen
from casemix.budget import (
    Band,
    Corridors,
    Elastic,
    HighCost,
    LowCost,
    Policy,
    Pool,
    Readmission,
    ShortStay,
)
from casemix.errors import InputError, PolicyError
from casemix.payment.core import (
    CaseHooks,
    PoolTerms,
    case_amounts,
    corridor_adjustment,
    hospital_sums,
    point_values,
    pool_codes,
    pool_terms,
)
from casemix.payment.inputs import fund_cost_fen, patient_share_fen, pool_index, yuan_column_fen
from casemix.payment.money import pool_region, settle_money
from casemix.settle import base_volumes, settle

# rules that would move points switched off: the money step alone is under test
PLAIN = dict(
    high_cost=HighCost(rule="none"),
    low_cost=LowCost(rule="none"),
    short_stay=ShortStay(enabled=False),
    readmission=Readmission(enabled=False),
)


def p1_cases(**extra) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "case_id": ["c1", "c2", "c3"],
            "hospital_id": ["H1", "H1", "H2"],
            "drg": ["A", "B", "C"],
            "pts": [100.0, 50.0, 150.0],
            "total_cost": [500.0, 300.0, 700.0],
            **extra,
        }
    )


def pay(s) -> list[int]:
    return s.cases["payment_fen"].to_list()


# --- P1 fund and patient --------------------------------------------------------------


def test_p1_actual_form():
    # S = 100000 + (10000 + 4000 + 6000) = 120000 fen over 300 points: PV = 4 yuan
    s = settle(p1_cases(patient_share=[100.0, 40.0, 60.0]), Policy(budget=1000, **PLAIN), points="pts")
    assert s.cases["settled_fen"].to_list() == [40_000, 20_000, 60_000]
    assert s.cases["patient_fen"].to_list() == [10_000, 4_000, 6_000]
    assert pay(s) == [30_000, 16_000, 54_000]
    r = s.region.row(0, named=True)
    assert r["pv_final"] == pytest.approx(4.0) and r["payment_fen"] == 100_000
    assert r["patient_fen"] == 20_000 and r["settled_fen"] == 120_000 and r["budget_check"]
    h = s.hospitals
    assert h["settled_fen"].to_list() == [60_000, 60_000]
    assert h["patient_fen"].to_list() == [14_000, 6_000]
    assert h["payment_fen"].to_list() == [46_000, 54_000]


def test_p1_components_are_summed():
    c = p1_cases(deductible=[60.0, 0.0, 60.0], copay=[30.0, 40.0, 0.0], self_pay=[10.0, 0, 0])
    s = settle(c, Policy(budget=1000, **PLAIN), points="pts")
    assert s.cases["patient_fen"].to_list() == [10_000, 4_000, 6_000]
    assert pay(s) == [30_000, 16_000, 54_000]


def test_p1_ratio_form():
    # fund money 100000 fen by points: H1 50000 (c1 33333.33 → 33333, c2 16666.67 → 16667), H2 50000;
    # settled = fund / 0.8 ROUND_HALF_UP: 41666.25 → 41666, 20833.75 → 20834, 62500
    s = settle(p1_cases(), Policy(budget=1000, point_form="ratio", fund_ratio=0.8, **PLAIN), points="pts")
    assert pay(s) == [33_333, 16_667, 50_000]
    assert s.cases["settled_fen"].to_list() == [41_666, 20_834, 62_500]
    assert s.cases["patient_fen"].to_list() == [8_333, 4_167, 12_500]
    assert s.point_value == pytest.approx(1000 / 0.8 / 300)
    assert "no patient_share" not in " ".join(s.notes)


def test_p1_ratio_form_with_an_amount_outside_the_points():
    # c3 also has 100 yuan paid outside the points: its fund part 10000 × 0.8 = 8000 fen comes
    # off the fund budget first, M = 100000 − 8000 = 92000 by points: H1 46000 (c1 30666.67 →
    # 30667, c2 15333), H2 46000 + 8000; settled = point fund ÷ 0.8 (+ the outside amount)
    p = Policy(budget=1000, point_form="ratio", fund_ratio=0.8, **PLAIN)
    s = settle(p1_cases(), p, points="pts", hooks=CaseHooks(paid_outside_yuan=np.array([0.0, 0.0, 100.0])))
    assert pay(s) == [30_667, 15_333, 54_000]
    assert s.cases["settled_fen"].to_list() == [38_334, 19_166, 67_500]  # 38333.75, 19166.25, 57500 + 10000
    assert s.cases["patient_fen"].to_list() == [7_667, 3_833, 13_500]


def test_p1_patient_share_above_settled_nets_within_the_hospital():
    # c2's patient paid 250 yuan, more than its settled 235: S = 100000 + 41000 = 141000 fen,
    # PV = 4.7; c2's fund amount is −1500 fen, netted in H1's fund payment (Zhejiang 2019)
    s = settle(p1_cases(patient_share=[100.0, 250.0, 60.0]), Policy(budget=1000, **PLAIN), points="pts")
    assert s.cases["settled_fen"].to_list() == [47_000, 23_500, 70_500]
    assert pay(s) == [37_000, -1_500, 64_500]
    h = s.pool_hospitals
    assert h["fund_fen"].to_list() == [35_500, 64_500]
    assert h["n_patient_above_settled"].to_list() == [1, 0]
    assert sum(pay(s)) == 100_000


def test_money_columns_name_the_row_of_the_whole_file_in_a_batch():
    # a batch starting at row 100 of the file names rows from 100
    df = pl.DataFrame({"case_id": ["a", "b"], "fund_paid": [1.0, -2.0]})
    with pytest.raises(
        InputError, match=r"^fund_paid \(统筹基金支付, yuan\) is negative at row 101 \(case_id 'b'\)"
    ):
        fund_cost_fen(df, df["case_id"], rule="corridors", offset=100)
    assert list(fund_cost_fen(df.head(1), df["case_id"], rule="corridors", offset=100)) == [100]
    df = pl.DataFrame({"case_id": ["a", "b"], "patient_share": [1.0, -2.0]})
    with pytest.raises(
        InputError, match=r"^patient_share \(个人负担, yuan\) is negative at row 101 \(case_id 'b'\)"
    ):
        patient_share_fen(df, df["case_id"], np.array([500, 500]), offset=100)
    # without patient_share, a part of it (起付线 + 自付 + 自费) is named the same way
    df = pl.DataFrame({"case_id": ["a", "b"], "deductible": [1.0, 2.0], "copay": [3.0, -2.0]})
    with pytest.raises(
        InputError,
        match=r"^copay \(part of 个人负担, yuan\) is negative at row 101 \(case_id 'b'\); amounts paid are >= 0 yuan$",
    ):
        patient_share_fen(df, df["case_id"], np.array([500, 500]), offset=100)


def test_patient_share_equal_to_the_cost_is_no_warning_and_above_names_the_file_row():
    df = pl.DataFrame({"case_id": ["a", "b", "c"], "patient_share": [5.0, 4.0, 6.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a share equal to the cost is no warning
        q, _ = patient_share_fen(df.head(2), df["case_id"], np.array([500, 500]), offset=100)
    assert q.tolist() == [500, 400] and q.dtype == np.int64
    with pytest.warns(
        UserWarning, match=r"^patient_share above total_cost at row 102 \(case_id 'c'\) \(1 case"
    ):
        patient_share_fen(df, df["case_id"], np.array([500, 500, 500]), offset=100)


def test_patient_share_warning_names_the_caller_through_an_unnormalised_sys_path(tmp_path):
    # casemix imported through the relative sys.path entry "./": Python makes the modules'
    # file names absolute but keeps the "/./" in them; the warning still points at the
    # caller's line, not into casemix
    import os
    import subprocess
    import sys
    from pathlib import Path

    import casemix
    from casemix.payment.inputs import patient_share_fen

    if hasattr(patient_share_fen, "__wrapped__"):
        pytest.skip("mutmut's trampolines sit between casemix's frames (test_p1_bad_money_rows_are_named)")
    call = "    patient_share_fen(df, df['case_id'], np.array([500]))"
    lines = [
        "import sys, warnings",
        "sys.path.insert(0, './')",
        "import numpy as np, polars as pl",
        "import casemix",
        "from casemix.payment.inputs import patient_share_fen",
        "df = pl.DataFrame({'case_id': ['a'], 'patient_share': [6.0]})",
        "with warnings.catch_warnings(record=True) as got:",
        "    warnings.simplefilter('always')",
        call,
        "print(casemix.__file__)",
        "print(got[0].filename, got[0].lineno)",
    ]
    user = tmp_path / "user.py"
    user.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # run from the folder that holds the casemix package, wherever it is installed
    here = Path(casemix.__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, str(user)], cwd=here, capture_output=True, text=True, check=True)
    imported, warned = run.stdout.splitlines()
    if os.path.normpath(imported) == imported:
        pytest.skip(f"this Python normalises the file names of modules found through './' ({imported})")
    assert warned == f"{user} {lines.index(call) + 1}"


def test_yuan_column_errors_name_the_first_bad_row():
    ids = pl.Series(["a", "b", "c"])
    # text that is no number reads as missing; the row is counted from the batch's offset
    df = pl.DataFrame({"fund_paid": ["1.5", "abc", "2"]})
    with pytest.raises(
        InputError,
        match=r"^fund_paid \(统筹基金支付, yuan\) missing or not a number at row 6 \(case_id 'b'\); "
        "give 0 where nothing was paid$",
    ):
        yuan_column_fen(df, "fund_paid", ids, what="统筹基金支付, yuan", offset=5)
    # the first negative amount, not the first zero or amount below 1 yuan; rows from 0
    df = pl.DataFrame({"fund_paid": [0.0, 0.5, -1.0]})
    with pytest.raises(InputError, match=r"is negative at row 2 \(case_id 'c'\)"):
        yuan_column_fen(df, "fund_paid", ids, what="x")
    fen = yuan_column_fen(df.head(2), "fund_paid", ids, what="x")
    assert list(fen) == [0, 50] and fen.dtype == np.int64  # integer fen, not floats
    # 10^13 yuan itself is out of range
    df = pl.DataFrame({"fund_paid": [1.0, 1e13, 5.0]})
    with pytest.raises(
        InputError,
        match=r"^fund_paid \(x\) at row 4 \(case_id 'b'\) is outside the supported range \(< 10\^13 yuan\)$",
    ):
        yuan_column_fen(df, "fund_paid", ids, what="x", offset=3)


def test_p1_bad_money_rows_are_named():
    with pytest.raises(InputError, match=r"patient_share .* negative at row 1 \(case_id 'c2'\)"):
        settle(p1_cases(patient_share=[1.0, -2.0, 0.0]), Policy(budget=1000, **PLAIN), points="pts")
    with pytest.raises(
        InputError,
        match=r"^fund_paid \(统筹基金支付, yuan\) is negative at row 2 \(case_id 'c3'\); amounts paid are >= 0 yuan$",
    ):
        settle(p1_cases(fund_paid=[1.0, 2.0, -3.0]), Policy(budget=1000, **PLAIN), points="pts")
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        s = settle(p1_cases(patient_share=[100.0, 400.0, 60.0]), Policy(budget=1000, **PLAIN), points="pts")
    assert [str(w.message) for w in got] == [
        "patient_share above total_cost at row 1 (case_id 'c2') (1 case(s)); kept as given"
    ]
    # the warning points at the caller's line, not into casemix.  (Not in a mutation run,
    # clean run included: mutmut's trampolines, functools.wraps wrappers, sit between every
    # two casemix frames, so "the first frame outside casemix" is one of them.)
    if not hasattr(settle, "__wrapped__"):
        assert got[0].filename == __file__
    assert s.cases.height == 3  # nothing dropped
    with pytest.raises(InputError, match="outside the supported range"):
        settle(p1_cases(total_cost=[1e13, 1.0, 1.0]), Policy(budget=1000, **PLAIN), points="pts")


# --- P2 pools --------------------------------------------------------------------------


def p2_cases() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "case_id": ["c1", "c2", "c3", "c4"],
            "hospital_id": ["H1", "H1", "H2", "H2"],
            "insurance_type": ["职工", "居民", "310", "resident"],
            "drg": ["A", "B", "C", "D"],
            "pts": [100.0, 50.0, 50.0, 100.0],
            "total_cost": [500.0, 300.0, 700.0, 100.0],
        }
    )


def p2_policy(**budgets) -> Policy:
    b = {"职工": 600, "居民": 300} | budgets
    return Policy(pools={k: Pool(budget=v) for k, v in b.items()}, **PLAIN)


def test_p2_pools_settle_apart():
    # 职工: 60000 fen over 150 points (PV 4); 居民: 30000 fen over 150 points (PV 2)
    s = settle(p2_cases(), p2_policy(), points="pts")
    assert pay(s) == [40_000, 10_000, 20_000, 20_000]
    assert s.cases["pool"].to_list() == ["职工", "居民", "职工", "居民"]
    pr = s.pool_region
    assert pr["pool"].to_list() == ["职工", "居民"]
    assert pr["pv_final"].to_list() == pytest.approx([4.0, 2.0])
    assert pr["fund_fen"].to_list() == [60_000, 30_000]
    assert s.pool("居民")["fund_fen"].to_list() == [10_000, 20_000]
    assert s.hospitals["payment_fen"].to_list() == [50_000, 40_000]
    r = s.region.row(0, named=True)
    assert r["budget_fen"] == 90_000 and r["pv_final"] is None and r["pools"] == 2
    assert Policy(pools={"职工": Pool(budget=600), "居民": Pool(budget=300)}).budget == 900


def test_p2_insurance_type_as_numbers_nan_or_null():
    # Excel gives the codes 310/390 as floats: they name the pools as the text "310"/"390"
    df = pl.DataFrame({"case_id": ["a", "b", "c"], "insurance_type": [310.0, 390.0, 310.0]})
    values = [("职工", "310"), ("居民", "390")]
    assert list(pool_index(df, values, ["职工", "居民"], df["case_id"])) == [0, 1, 0]
    # a NaN code is no pool: an InputError naming the row, not a polars cast error
    df = pl.DataFrame({"case_id": ["a", "b"], "insurance_type": [310.0, float("nan")]})
    with pytest.raises(InputError, match=r"^insurance_type nan at row 8 \(case_id 'b'\) belongs to no pool"):
        pool_index(df, values, ["职工", "居民"], df["case_id"], offset=7)
    # a fraction is no code either: 310.5 is not truncated into the 职工 pool
    df = pl.DataFrame({"case_id": ["a", "b"], "insurance_type": [310.0, 310.5]})
    with pytest.raises(
        InputError, match=r"^insurance_type 310\.5 at row 1 \(case_id 'b'\) belongs to no pool"
    ):
        pool_index(df, values, ["职工", "居民"], df["case_id"])
    # ... it keeps its own text, which a pool may list (whole floats give the integer's text)
    assert list(pool_index(df, [("310",), ("310.5",)], ["a", "b"], df["case_id"])) == [0, 1]
    # a missing code (null) is no pool either, nor a column of nulls only
    df = pl.DataFrame({"case_id": ["a", "b"], "insurance_type": ["310", None]})
    with pytest.raises(
        InputError,
        match=r"^insurance_type None at row 1 \(case_id 'b'\) belongs to no pool \(pools take 职工: 职工, 310; "
        r"居民: 居民, 390\); fix the value or list it in pools\.NAME\.values$",
    ):
        pool_index(df, values, ["职工", "居民"], df["case_id"])
    df = pl.DataFrame(
        {"case_id": ["a", "b"], "insurance_type": [None, None]},
        schema_overrides={"insurance_type": pl.String},
    )
    with pytest.raises(InputError, match=r"^insurance_type None at row 0 \(case_id 'a'\) belongs to no pool"):
        pool_index(df, values, ["职工", "居民"], df["case_id"])


def test_p2_pools_need_insurance_type_and_known_values():
    with pytest.raises(
        PolicyError,
        match=r"^pools \(职工, 居民\) need column insurance_type \(险种类型: 职工/居民, employee/resident, 310/390\); "
        "the cases lack it$",
    ):
        settle(p2_cases().drop("insurance_type"), p2_policy(), points="pts")
    bad = p2_cases().with_columns(pl.Series("insurance_type", ["职工", "其他", "310", "390"]))
    with pytest.raises(InputError, match=r"insurance_type '其他' at row 1 \(case_id 'c2'\)"):
        settle(bad, p2_policy(), points="pts")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pts=st.lists(st.floats(0.5, 500), min_size=4, max_size=4),
    a=st.integers(1, 10**7),
    b=st.integers(1, 10**7),
    b2=st.integers(1, 10**7),
    elastic=st.booleans(),
)
def test_pools_are_independent(pts, a, b, b2, elastic):
    """Changing one pool's budget changes no payment in the other."""
    cases = p2_cases().with_columns(pl.Series("pts", pts))
    el = Elastic(enabled=elastic, base_share=0.75)
    vol = {"H1": 60.0, "H2": 200.0}
    one = settle(cases, p2_policy(职工=a, 居民=b).replace(elastic=el), points="pts", base_volume=vol)
    two = settle(cases, p2_policy(职工=a, 居民=b2).replace(elastic=el), points="pts", base_volume=vol)
    worker = one.cases["pool"] == "职工"
    assert one.cases.filter(worker)["payment_fen"].equals(two.cases.filter(worker)["payment_fen"])
    assert one.pool("职工").equals(two.pool("职工"))


# --- P3 rate method, same-rate groups ---------------------------------------------------

RATE_WEIGHTS = pl.DataFrame(
    {"drg": ["GB1", "JC1"], "rw": [1.5, 0.5], "mean_cost": [15_000.0, 5_000.0], "same_rate": [False, True]}
)


def test_p3_rate_method():
    # standard = RW × rate × level coefficient: 1.5 × 10000 × 0.9 = 13500 yuan (level 2);
    # JC1 is a same-rate group: 0.5 × 10000 × 1 = 5000 at any level; fund = standard − patient
    cases = pl.DataFrame(
        {
            "case_id": ["a", "b", "c"],
            "hospital_id": ["H2", "H2", "H3"],
            "hospital_level": ["2", "2", "3"],
            "drg": ["GB1", "JC1", "GB1"],
            "total_cost": [14_000.0, 5_200.0, 16_000.0],
            "patient_share": [2_000.0, 700.0, 3_000.0],
        }
    )
    policy = Policy(budget=30_000, method="rate", rate_yuan=10_000, level_coefficients={"2": 0.9, "3": 1.1})
    s = settle(cases, policy, weights=RATE_WEIGHTS)
    assert s.cases["settled_fen"].to_list() == [1_350_000, 500_000, 1_650_000]
    assert pay(s) == [1_150_000, 430_000, 1_350_000]
    r = s.region.row(0, named=True)
    assert r["budget_check"] is None  # the rate method has no budget identity to check
    assert s.region.schema["budget_check"] == pl.Boolean  # a null Boolean, not a Null column
    # ... still a Boolean column (and the point values Float64), as under the point method
    schema = s.pool_region.schema
    assert (schema["budget_check"], schema["pv_final"], schema["total_points"]) == (
        pl.Boolean,
        pl.Float64,
        pl.Float64,
    )
    assert r["fund_outlay_fen"] == 2_930_000
    assert r["outlay_minus_budget_fen"] == 2_930_000 - 3_000_000
    # the rate method's point value is the rate's (10000 yuan ÷ 100 points per RW), no point money
    pr = s.pool_region.row(0, named=True)
    assert pr["pv_final"] == pytest.approx(100.0) and pr["point_money_fen"] == 0
    # ratio form: fund = settled × 0.8 ROUND_HALF_UP, the patient the rest (the column unused)
    ratio = settle(cases, policy.replace(point_form="ratio", fund_ratio=0.8), weights=RATE_WEIGHTS)
    assert ratio.cases["settled_fen"].to_list() == [1_350_000, 500_000, 1_650_000]
    assert pay(ratio) == [1_080_000, 400_000, 1_320_000]
    assert ratio.cases["patient_fen"].to_list() == [270_000, 100_000, 330_000]
    # the same, with the group listed in the policy instead of flagged in the weights
    s2 = settle(cases, policy.replace(same_rate_groups=("JC1",)), weights=RATE_WEIGHTS.drop("same_rate"))
    assert pay(s2) == pay(s)


def test_no_points_and_no_money_gives_no_point_value_as_a_float_null():
    s = settle(p1_cases().with_columns(pts=pl.lit(0.0)), Policy(budget=0, **PLAIN), points="pts")
    assert pay(s) == [0, 0, 0]
    pr = s.pool_region
    assert pr.select("pv_base", "pv_floating", "pv_final").row(0) == (None, None, None)
    assert {pr.schema[c] for c in ("pv_base", "pv_floating", "pv_final", "total_points")} == {pl.Float64}


def test_point_values_refuse_bad_base_volumes_and_at_cost_above_the_budget():
    el = Policy(budget=100, elastic=Elastic(enabled=True, base_share=0.75))
    t = pool_terms(el)[0]
    hosp, points, zero = np.array([0, 1]), np.array([1.0, 3.0]), np.zeros(2, dtype=np.int64)
    sums = hospital_sums(t, hosp, 2, points, zero, zero)
    assert point_values(t, sums, np.array([1.0, 3.0])).hospital_fen.tolist() == [2_500, 7_500]
    for bad in ([-1.0, 5.0], [np.inf, 5.0], [1.0]):
        with pytest.raises(
            PolicyError, match=r"^<Policy>: pool all: base volumes must be finite points >= 0"
        ):
            point_values(t, sums, np.array(bad))
    # actual form: 10,000 fen budget + 0 patient share < 12,000 fen paid at cost
    plain = pool_terms(Policy(budget=100))[0]
    over = hospital_sums(plain, hosp, 2, points, np.array([12_000, 0]), zero)
    with pytest.raises(
        PolicyError,
        match=r"^<Policy>: pool all: at-cost payments \(12000 fen\) exceed the budget \(10000 fen\) plus "
        r"the patients' share \(0 fen\); raise the budget or settle fewer cases at cost$",
    ):
        point_values(plain, over)
    # ratio form: the fund's part of it, 12,000 × 0.9 = 10,800 fen > 10,000
    ratio = pool_terms(Policy(budget=100, point_form="ratio", fund_ratio=0.9))[0]
    over = hospital_sums(ratio, hosp, 2, points, np.array([12_000, 0]), zero)
    with pytest.raises(
        PolicyError,
        match=r"^<Policy>: pool all: at-cost payments \(10800 fen of fund\) exceed the budget \(10000 fen\); "
        r"raise the budget or settle fewer cases at cost$",
    ):
        point_values(ratio, over)
    # ... and exactly the budget: no point money left, no error (only a negative M is refused)
    exact = hospital_sums(ratio, hosp, 2, points, np.array([11_111, 0]), zero)  # 9,999.9 → 10,000
    v = point_values(ratio, exact)
    assert (v.money_fen, v.hospital_fen.tolist(), v.pv_final) == (0, [0, 0], 0.0)
    # elastic with no point money (budget 0): nothing to split, every hospital 0 fen, values 0
    none = point_values(pool_terms(el.replace(budget=0))[0], sums, np.array([1.0, 3.0]))
    assert (none.hospital_fen.tolist(), none.retained_fen, none.pv_base, none.pv_final) == (
        [0, 0],
        0,
        0.0,
        0.0,
    )
    # elastic without base volumes: none is positive (not "must be finite": no array was given)
    with pytest.raises(
        PolicyError,
        match=r"^<Policy>: pool all: elastic point value needs base volumes \(prior-year points per "
        r"hospital\): none is positive; give elastic\.base_volume or a prior-year frame$",
    ):
        point_values(t, sums, None)
    # base volumes adding up to a subnormal number: M ÷ ΣV overflows
    with pytest.raises(
        PolicyError,
        match=r"base volumes too small to price a point: they add up to 5e-324 points, and the base "
        r"point value \(budget ÷ that\) overflows; give base volumes in points \(prior-year points "
        r"per hospital\)$",
    ):
        point_values(t, sums, np.array([5e-324, 0.0]))


def test_settle_money_called_directly_with_values_fund_cost_per_case_or_summed():
    # one pool of 10,000 fen; H1 has 1 + 3 points, H2 4: 5,000 fen each, H1's split 1,250 / 3,750
    policy = Policy(budget=100)
    terms = pool_terms(policy)
    hosp, points = np.array([0, 0, 1]), np.array([1.0, 3.0, 4.0])
    zero = np.zeros(3, dtype=np.int64)
    args = dict(
        pool=zero, hosp=hosp, hospitals=["H1", "H2"], points=points, outside_fen=zero, patient_fen=zero
    )
    per_case = settle_money(policy, terms, fund_cost_fen=np.array([100, 200, 300]), **args)
    assert per_case.point_fen.tolist() == [1_250, 3_750, 5_000]
    assert per_case.fund_fen.tolist() == [1_250, 3_750, 5_000]
    # per-case amounts are Int64 fen, as Money says
    for x in (per_case.point_fen, per_case.settled_fen, per_case.fund_fen, per_case.patient_fen):
        assert x.dtype == np.int64
    # a patient share equal to the settled amount (fund 0) is not "above" it; 1 fen more is.
    # Budget 10,003 fen + shares 2,501 + 7,504 = M = 20,008 fen over 8 points: 2,501, 7,503, 10,004
    odd = Policy(budget="100.03")
    shares = settle_money(
        odd, pool_terms(odd), fund_cost_fen=None, **(args | {"patient_fen": np.array([2_501, 7_504, 0])})
    )
    assert shares.settled_fen.tolist() == [2_501, 7_503, 10_004]
    assert shares.fund_fen.tolist() == [0, -1, 10_004]
    assert shares.pool_hospitals["n_patient_above_settled"].to_list() == [1, 0]
    h = per_case.pool_hospitals
    assert h["fund_cost_fen"].to_list() == [300, 300] and h["point_fen"].to_list() == [5_000, 5_000]
    assert per_case.pool_region["fund_fen"].to_list() == [10_000]
    summed = settle_money(policy, terms, fund_cost_fen=None, fund_cost_sums=np.array([[300, 300]]), **args)
    assert summed.pool_hospitals.equals(h)
    # step 2 done elsewhere (Dask): the same cases' fen from the values given, no region row
    values = {"all": point_values(terms[0], hospital_sums(terms[0], hosp, 2, points, zero, zero))}
    given = settle_money(policy, terms, fund_cost_fen=None, values=values, **args)
    assert given.point_fen.tolist() == [1_250, 3_750, 5_000] and given.pool_region is None
    assert given.pool_hospitals["fund_fen"].to_list() == [5_000, 5_000]
    # the budget identity checked per pool: a fen too many is an internal error, never a quiet row
    off = h.with_columns(pl.Series("fund_fen", [5_001, 5_000]))
    with pytest.raises(
        PolicyError,
        match=r"^pool all: fund payments 10001 \+ retained 0 fen differ from the budget 10000 fen "
        r"\(an internal error; please report it\)$",
    ):
        pool_region(policy, terms, values, off)


def test_case_amounts_rate_method_adds_the_outside_amount_and_a_given_split_is_used_as_is():
    # rate method, actual form: 100 yuan per point (10,000 fen); a has 123.45 yuan settled at
    # cost outside its points: settled = point part + outside, fund = settled − patient share
    rate = PoolTerms("all", 0, method="rate", fen_per_point=10_000.0)
    hosp, pts = np.array([0, 0]), np.array([150.0, 50.0])
    a = case_amounts(
        rate, hosp, pts, np.array([12_345, 0]), np.array([200_000, 70_000]), np.zeros(1, np.int64)
    )
    assert a.point_fen.tolist() == [1_500_000, 500_000]
    assert a.settled_fen.tolist() == [1_512_345, 500_000]
    assert a.fund_fen.tolist() == [1_312_345, 430_000] and a.patient_fen.tolist() == [200_000, 70_000]
    # point method with the split made elsewhere (casemix.dask): point_fen is taken as given and
    # the hospital's money (here a figure that would split otherwise) is not read
    point = PoolTerms("all", 0)
    a = case_amounts(
        point,
        hosp,
        pts,
        np.array([5, 0]),
        np.array([100, 0]),
        np.array([999_999]),
        point_fen=np.array([700, 300]),
    )
    assert a.point_fen.tolist() == [700, 300] and a.settled_fen.tolist() == [705, 300]
    assert a.fund_fen.tolist() == [605, 300]


def test_pool_codes_from_insurance_type_values():
    terms = pool_terms(p2_policy())  # 职工 and 居民 with their default values
    assert terms[0].values == ("职工", "employee", "310", "城镇职工", "职工基本医疗保险")
    got = pool_codes(["310", "居民", None, "other", "employee", 390], terms)
    assert got.tolist() == [0, 1, -1, -1, 0, 1] and got.dtype == np.int64


def test_p3_rate_per_pool():
    cases = pl.DataFrame(
        {
            "case_id": ["a", "b"],
            "hospital_id": ["H1", "H1"],
            "insurance_type": ["职工", "居民"],
            "drg": ["GB1", "GB1"],
            "total_cost": [15_000.0, 15_000.0],
        }
    )
    policy = Policy(
        method="rate",
        pools={"职工": Pool(budget=1, rate_yuan=12_252.70), "居民": Pool(budget=1, rate_yuan=9_649.24)},
    )
    s = settle(cases, policy, weights=RATE_WEIGHTS)
    # 1.5 × 12252.70 = 18379.05 yuan; 1.5 × 9649.24 = 14473.86 yuan (Harbin 2024 rates)
    assert s.cases["settled_fen"].to_list() == [1_837_905, 1_447_386]


def test_weights_must_be_finite_and_positive():
    for rw in (0.0, float("inf"), -1.0):
        bad = RATE_WEIGHTS.with_columns(pl.Series("rw", [rw, 0.5]))
        with pytest.raises(InputError, match="rw of DRG 'GB1'"):
            settle(p1_cases().with_columns(pl.lit("GB1").alias("drg")), Policy(budget=1), weights=bad)


def test_per_drg_outlier_multiples_from_weights():
    # high_k 1.2 for GB1: 20000 > 1.2 × 15000 is high cost (the policy's k would be 3)
    w = RATE_WEIGHTS.with_columns(pl.Series("high_k", [1.2, None]), pl.Series("low_k", [None, 0.9]))
    cases = pl.DataFrame(
        {
            "case_id": ["a", "b"],
            "hospital_id": ["H1", "H1"],
            "drg": ["GB1", "JC1"],
            "total_cost": [20_000.0, 4_000.0],
        }
    )
    s = settle(cases, Policy(budget=1000, high_cost=HighCost(rule="pro_rata")), weights=w)
    assert s.cases["rule"].to_list() == ["high_cost", "low_cost"]
    assert s.cases["adjusted_points"].to_list() == pytest.approx([150 * 20 / 15, 50 * 0.8])


# --- P4 elastic point value ----------------------------------------------------------------


def p4_cases(points=(400.0, 500.0, 300.0)) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "case_id": ["a", "b", "c"],
            "hospital_id": ["H1", "H2", "H3"],
            "drg": ["A", "B", "C"],
            "pts": list(points),
            "total_cost": [1.0, 1.0, 1.0],
        }
    )


VOLUME = {"H1": 400.0, "H2": 200.0, "H3": 400.0}


def test_p4_elastic_point_value():
    # M = 1000000 fen, prior-year volumes 400/200/400 (Σ 1000); base share 0.75 → base volumes
    # 300/150/300 at PV_base = 0.75 M / 750 = 1000 fen; base points 300, 150, 300 → 750000 fen;
    # increments 100 + 350 = 450 points at (1000000 − 750000) / 450 = 555.56 fen:
    # H1 300000 + 55555.56, H2 150000 + 194444.44, H3 300000 → largest remainder 355556/344444
    p = Policy(budget=10_000, elastic=Elastic(enabled=True, base_share=0.75), **PLAIN)
    s = settle(p4_cases(), p, points="pts", base_volume=VOLUME)
    assert pay(s) == [355_556, 344_444, 300_000]
    r = s.region.row(0, named=True)
    assert (r["pv_base"], r["pv_floating"]) == (pytest.approx(10.0), pytest.approx(2500 / 450))
    assert r["retained_fen"] == 0
    ph = s.pool_hospitals
    assert ph["base_points"].to_list() == [300, 150, 300]
    assert ph["incremental_points"].to_list() == [100, 350, 0]
    # the grower (H2) gets less, the hospital below its base volume (H3) more than at one value
    single = pay(settle(p4_cases(), Policy(budget=10_000, **PLAIN), points="pts"))
    assert single == [333_333, 416_667, 250_000]


def test_p4_elastic_cap_leaves_the_rest_with_the_fund():
    # region shrinks to 800 points: base points 300, 100, 300 → 700000 fen; H1's 100 increment
    # points would float at 300000 / 100 = 3000 fen; capped at 1000 → 200000 fen retained
    shrink = p4_cases((400.0, 100.0, 300.0))
    free = Policy(budget=10_000, elastic=Elastic(enabled=True, base_share=0.75), **PLAIN)
    assert pay(settle(shrink, free, points="pts", base_volume=VOLUME)) == [600_000, 100_000, 300_000]
    p = Policy(budget=10_000, elastic=Elastic(enabled=True, base_share=0.75, cap=True), **PLAIN)
    s = settle(shrink, p, points="pts", base_volume=VOLUME)
    assert pay(s) == [400_000, 100_000, 300_000]
    r = s.region.row(0, named=True)
    assert r["pv_floating"] == pytest.approx(10.0) and r["retained_fen"] == 200_000
    assert r["payment_fen"] + r["retained_fen"] == r["budget_fen"] and r["budget_check"]


def test_p4_base_volume_from_a_prior_year_frame_and_errors(tmp_path):
    p = Policy(budget=10_000, elastic=Elastic(enabled=True, base_share=0.75), **PLAIN)
    prior = p4_cases((400.0, 200.0, 400.0))
    vol = base_volumes(prior, p, points="pts")
    assert vol.sort("hospital_id")["points"].to_list() == [400, 200, 400]
    assert pay(settle(p4_cases(), p, points="pts", base_volume=vol)) == [355_556, 344_444, 300_000]
    vol.write_csv(tmp_path / "base.csv")
    from_file = p.replace(
        elastic=Elastic(enabled=True, base_share=0.75, base_volume=str(tmp_path / "base.csv"))
    )
    assert pay(settle(p4_cases(), from_file, points="pts")) == [355_556, 344_444, 300_000]
    with pytest.raises(PolicyError, match="needs base volumes"):
        settle(p4_cases(), p, points="pts")
    # a bad volume names the first bad hospital and its value
    bad = pl.DataFrame({"hospital_id": ["H1", "H2", "H3"], "points": [400.0, -5.0, float("nan")]})
    with pytest.raises(InputError, match=r"^base volume of hospital 'H2' is -5\.0; it must be points >= 0$"):
        settle(p4_cases(), p, points="pts", base_volume=bad)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pts=st.lists(st.floats(0, 1000), min_size=3, max_size=3).filter(lambda x: sum(x) > 1),
    shares=st.lists(st.floats(0.01, 1), min_size=3, max_size=3),
    budget=st.integers(1, 10**8),
)
# near-ties hypothesis found: equal fractional parts that float noise ordered differently on the
# two paths, and a tiny increment whose floating value carried cancellation noise
@example(pts=[1.0, 1.0, 0.55], shares=[1.0, 1.0, 1.0], budget=17)
@example(pts=[1.0, 0.99999, 1.0], shares=[1.0, 1.0, 0.99999], budget=1)
def test_elastic_with_base_share_1_and_no_cap_is_the_single_point_value(pts, shares, budget):
    """Base share 1.0, no cap, base volumes adding up to the year's points → the single PV."""
    cases = p4_cases().with_columns(pl.Series("pts", pts))
    vol = dict(zip(["H1", "H2", "H3"], (np.array(shares) / sum(shares) * sum(pts)).tolist(), strict=True))
    single = settle(cases, Policy(budget=budget, **PLAIN), points="pts")
    el = settle(
        cases,
        Policy(budget=budget, elastic=Elastic(enabled=True, base_share=1.0), **PLAIN),
        points="pts",
        base_volume=vol,
    )
    assert pay(el) == pay(single)
    r = el.region.row(0, named=True)
    assert r["pv_base"] == pytest.approx(single.point_value, rel=1e-9)


# --- P5 corridors --------------------------------------------------------------------------

CORRIDORS = Corridors(surplus=(Band(0.05, 1.0), Band(0.15, 0.5)), overspend=(Band(0.1, 0.5),))


def test_p5_corridor_bands_by_hand():
    # H1: F 110000, C 100000: surplus 10000 = 5000 kept whole + 5000 kept half → 7500 kept;
    # H2: F 80000, C 100000: overspend 20000 = 10000 half borne + 10000 borne whole → fund adds 5000
    adj = corridor_adjustment(
        np.array([110_000, 80_000, 130_000]), np.array([100_000, 100_000, 100_000]), CORRIDORS
    )
    # H3: surplus 30000: 5000 + 0.5 × 10000 kept, nothing beyond 15% → kept 10000
    assert adj.tolist() == [-2_500, 5_000, -20_000]


def test_p5_corridors_in_a_settlement():
    cases = p1_cases(fund_paid=[280.0, 170.0, 700.0])
    s = settle(cases, Policy(budget=1000, corridors=CORRIDORS, **PLAIN), points="pts")
    # F: H1 50000 (C 45000: surplus 5000 = 11.1%: 2250 kept + 0.5 × 2750 = 3625 kept),
    #    H2 50000 (C 70000: overspend 20000 = 28.6%: 0.5 × 7000 + 13000 = 16500 borne)
    h = s.hospitals
    assert h["payment_fen"].to_list() == [50_000, 50_000]
    assert h["corridor_fen"].to_list() == [-1_375, 3_500]
    assert h["final_fund_fen"].to_list() == [48_625, 53_500]
    r = s.region.row(0, named=True)
    assert r["fund_outlay_fen"] == 102_125 and r["outlay_minus_budget_fen"] == 2_125
    # the pool's own tables: final = fund + corridor per hospital, their sums per pool
    assert s.pool_hospitals["final_fund_fen"].to_list() == [48_625, 53_500]
    pr = s.pool_region.row(0, named=True)
    assert (pr["cases"], pr["fund_outlay_fen"], pr["fund_cost_fen"]) == (3, 102_125, 115_000)
    with pytest.raises(
        PolicyError,
        match=r"corridors .* needs column fund_paid \(统筹基金支付, the fund's itemised payment per case, yuan\); "
        "the cases lack it$",
    ):
        settle(p1_cases(), Policy(budget=1000, corridors=CORRIDORS, **PLAIN), points="pts")


# --- issue 20: non-default values of the case rules --------------------------------------

W20 = pl.DataFrame({"drg": ["A1"], "rw": [1.0], "mean_cost": [10_000.0]})


def test_excess_factor_penalty_and_default_coefficient():
    cases = pl.DataFrame(
        {
            "case_id": ["x", "y", "z"],
            "hospital_id": ["H1", "H1", "H9"],
            "hospital_level": ["3", "3", None],
            "drg": ["A1", "A1", "A1"],
            "total_cost": [50_000.0, 10_000.0, 10_000.0],
            "patient_id": ["p", "p", "q"],
            "admission_date": ["2024-01-01", "2024-01-20", "2024-01-01"],
            "discharge_date": ["2024-01-10", "2024-01-25", "2024-01-05"],
        }
    )
    p = Policy(
        budget=1000,
        high_cost=HighCost(rule="excess", factor=0.5),
        readmission=Readmission(days=15, penalty=0.3),
        coefficient_default=0.8,
        level_coefficients={"3": 1.0},
    )
    s = settle(cases, p, weights=W20)
    # x: 100 + 0.5 × (50000/10000 − 3) × 100 = 200 points, × 0.3 (readmitted within 10 days);
    # y: 100; z: level unknown → default coefficient 0.8 → 80
    assert s.cases["adjusted_points"].to_list() == pytest.approx([60.0, 100.0, 80.0])


# --- fund conservation under the point method, any pools / forms / elastic ----------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fund_conservation_to_the_fen(data):
    n = data.draw(st.integers(1, 25))
    pts = data.draw(st.lists(st.floats(0, 1e4), min_size=n, max_size=n))
    cost = data.draw(st.lists(st.floats(0, 1e5).map(lambda x: round(x, 2)), min_size=n, max_size=n))
    share = data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    hosp = data.draw(st.lists(st.sampled_from(["H1", "H2", "H3"]), min_size=n, max_size=n))
    ins = data.draw(st.lists(st.sampled_from(["职工", "居民"]), min_size=n, max_size=n))
    cases = pl.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(n)],
            "hospital_id": hosp,
            "insurance_type": ins,
            "drg": ["A"] * n,
            "pts": pts,
            "total_cost": cost,
            "patient_share": [round(c * f, 2) for c, f in zip(cost, share, strict=True)],
        }
    )
    budgets = {"职工": data.draw(st.integers(0, 10**9)) / 100, "居民": data.draw(st.integers(0, 10**9)) / 100}
    policy = Policy(
        pools={k: Pool(budget=v) for k, v in budgets.items()},
        point_form=data.draw(st.sampled_from(["actual", "ratio"])),
        fund_ratio=data.draw(st.floats(0.1, 1)),
        elastic=Elastic(
            enabled=data.draw(st.booleans()),
            base_share=data.draw(st.floats(0, 1)),
            cap=data.draw(st.booleans()),
        ),
        **PLAIN,
    )
    vol = {h: data.draw(st.floats(0.1, 1e4)) for h in ["H1", "H2", "H3"]}
    try:
        s = settle(cases, policy, points="pts", base_volume=vol)
    except PolicyError as exc:
        assert "no case earns points" in str(exc)
        return
    for row in s.pool_region.iter_rows(named=True):
        assert row["fund_fen"] + row["retained_fen"] == yuan_to_fen(budgets[row["pool"]])
        got = int(s.cases.filter(pl.col("pool") == row["pool"])["payment_fen"].sum())
        assert got == row["fund_fen"]
        if not policy.elastic.enabled or not policy.elastic.cap:
            # without a cap the whole budget is paid (unless no hospital passed its volume)
            assert (
                row["retained_fen"] == 0
                or not policy.elastic.cap
                and (s.pool(row["pool"])["incremental_points"].sum() == 0)
            )


def test_demo_settlement_with_pools_elastic_and_corridors():
    import casemix
    from casemix.settle import run_demo_settlement
    from casemix.synth import synth_cases

    grouped = casemix.group(synth_cases("casemix-demo", 3000, seed=5), scheme="casemix-demo")
    prior = casemix.group(synth_cases("casemix-demo", 3000, seed=6), scheme="casemix-demo")
    s = run_demo_settlement(grouped, prior=prior)
    pr = s.pool_region
    assert pr["pool"].to_list() == ["职工", "居民"]
    assert pr["budget_check"].all()
    # two pools, two point values: the region table gives none of them
    assert s.region.select("pv_base", "pv_floating", "pv_final").row(0) == (None, None, None)
    assert (pr["fund_fen"] + pr["retained_fen"] == pr["budget_fen"]).all()
    assert s.policy.elastic.enabled and s.policy.elastic.base_share == 0.75
    assert s.policy.corridors.enabled and (s.hospitals["corridor_fen"] != 0).any()
    assert pr["pv_base"].is_not_null().all() and pr["pv_floating"].is_not_null().all()
    # each pool's budget is 98% of its cases' fund cost, rounded to the yuan
    fund_yuan = dict(grouped.group_by("insurance_type").agg(pl.col("fund_paid").sum()).iter_rows())
    want = [yuan_to_fen(round(fund_yuan[p] * 0.98)) for p in ("职工", "居民")]
    assert pr["budget_fen"].to_list() == want
    # a pool without cases gets a budget of 0 (not none: the policy needs one for every pool)
    one = run_demo_settlement(grouped.filter(pl.col("insurance_type") == "职工"), prior=prior)
    assert one.policy.pools["居民"].budget == 0
    assert one.pool_region["budget_fen"].to_list() == [want[0], 0]
    # a case of no pool: named with the pools' values before any budget is drawn
    other = grouped.with_columns(pl.lit("其他").alias("insurance_type"))
    with pytest.raises(
        InputError,
        match=r"insurance_type '其他' at row 0 .* belongs to no pool \(pools take 职工: 职工, employee",
    ):
        run_demo_settlement(other, prior=prior)
