"""casemix.payment.case_rules: the three rules together, their precedence."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from casemix.errors import InputError
from casemix.payment.case_rules import apply_case_rules
from casemix.payment.new_tech import NewTechConfig
from casemix.payment.outliers import OutliersConfig
from casemix.payment.special_cases import SpecialCasesConfig


def _run(
    scheme="drg",
    special=None,
    new_tech=None,
    outliers=None,
    table=None,
    los=None,
    valid=None,
    cost=None,
    approved=None,
):
    # four cases of one group, m = 10,000, f = 1.2 / 0.9; A is new-tech heavy, B very costly
    cases = pl.DataFrame(
        {
            "case_id": ["A", "B", "C", "D"],
            "total_cost": [100_000.0, 150_000.0, 9_000.0, 4_000.0],
            "new_tech_cost": [80_000.0, 0.0, None, 0.0],
            "los": [10.0, 70.0, 5.0, 3.0] if los is None else los,
        }
    )
    return apply_case_rules(
        cases,
        scheme=scheme,
        case_id=cases["case_id"],
        cost=cases["total_cost"].to_numpy() if cost is None else cost,
        group_mean=np.full(4, 10_000.0),
        coefficient=np.array([1.2, 1.2, 0.9, 0.9]),
        group=np.zeros(4, np.int64),
        level=np.array([1, 1, 0, 0]),
        valid=np.ones(4, bool) if valid is None else valid,
        yuan_per_point=100.0,
        low_k=0.5,
        high_k=np.array([3.0, 3.0, 2.0, 2.0]),
        table_low=None if table is None else table[0],
        table_high=None if table is None else table[1],
        special=special or SpecialCasesConfig(),
        new_tech=new_tech or NewTechConfig(),
        outliers=outliers or OutliersConfig(),
        approved=approved,
    )


def test_defaults_change_nothing_but_the_reference():
    r = _run()
    assert list(r.rule_cost) == [100_000.0, 150_000.0, 9_000.0, 4_000.0]
    assert list(r.ref_cost) == [12_000.0, 12_000.0, 9_000.0, 9_000.0]  # standard m × f
    assert not r.special_approved.any() and not r.new_tech_fen.any()
    assert list(r.low_k) == [0.5] * 4 and list(r.high_k) == [3.0, 3.0, 2.0, 2.0]
    # the standard reference is the standard array itself (no second copy at 10M cases)
    assert np.shares_memory(r.ref_cost, r.standard)
    assert not np.shares_memory(_run(outliers=OutliersConfig(reference="group_mean")).ref_cost, r.standard)


def test_new_tech_then_special_takes_the_whole_case():
    nt = NewTechConfig(enabled=True)
    r = _run(new_tech=nt)
    # A: 100,000 > 2 × 12,000 and 80% > 64% → 80,000 yuan outside, 20,000 left to the rules
    assert list(r.new_tech_fen) == [8_000_000, 0, 0, 0]
    assert list(r.rule_cost) == [20_000.0, 150_000.0, 9_000.0, 4_000.0]
    # with a 50% cap over 4 cases (2) and cost > 5 × standard: A (8.3×) and B (12.5×) approved
    # A is then paid wholly by item: no new-technology payment on top
    sp = SpecialCasesConfig(cost_multiple=5.0, cap_share=0.5, fund_ratio=0.5)
    r = _run(new_tech=nt, special=sp)
    assert list(r.special_approved) == [True, True, False, False]
    assert list(r.special_fen) == [5_000_000, 7_500_000, 0, 0]
    assert list(r.new_tech_fen) == [0, 0, 0, 0]
    assert list(r.rule_cost[:2]) == [100_000.0, 150_000.0]
    r = _run(special=SpecialCasesConfig(min_los=60, cap_share=0.25, pay="points"))
    assert list(r.special_approved) == [False, True, False, False]
    assert list(r.special_points) == [0.0, 1_500.0, 0.0, 0.0] and not r.special_fen.any()


def test_dip_addon_and_city_thresholds():
    r = _run(scheme="dip", new_tech=NewTechConfig(enabled=True))
    assert list(r.addon_points) == [800.0, 0.0, 0.0, 0.0]  # 80,000 ÷ 100 yuan per point
    assert list(r.rule_cost) == [20_000.0, 150_000.0, 9_000.0, 4_000.0]
    assert not r.new_tech_fen.any()
    r = _run(
        table=(np.array([0.4, np.nan, 0.4, 0.4]), np.array([1.8, np.nan, 1.8, 1.8])),
        outliers=OutliersConfig(reference="group_mean"),
    )
    assert list(r.ref_cost) == [10_000.0] * 4
    assert list(r.standard) == [12_000.0, 12_000.0, 9_000.0, 9_000.0]  # m × f whatever the reference
    assert list(r.low_k) == [0.4, 0.5, 0.4, 0.4] and list(r.high_k) == [1.8, 3.0, 1.8, 1.8]
    r = _run(table=(np.full(4, 0.4), np.full(4, 1.8)), outliers=OutliersConfig(table_thresholds=False))
    assert list(r.high_k) == [3.0, 3.0, 2.0, 2.0]


def test_los_text_that_is_no_number_is_refused_not_read_as_missing():
    sp = SpecialCasesConfig(min_los=60, cap_share=0.25, pay="points")
    # los as text: numbers and blanks read as before (B's 70 days make it a special case)
    r = _run(special=sp, los=["10", "70", None, "3"])
    assert list(r.special_approved) == [False, True, False, False]
    # "seventy" would have been a missing stay, so B no special case, without a word
    with pytest.raises(
        InputError, match=r"los \(住院天数\) is not a number at row 1 \(case_id 'B'\): 'seventy'"
    ):
        _run(special=sp, los=["10", "seventy", None, "3"])


def test_listed_order_and_listed_cases_reach_the_approval_and_the_notes():
    # A (100,000 > 5 × 12,000) and B (150,000 > 5 × 12,000) apply by cost, D because it is
    # listed; Z is listed but no case.  Cap ⌊0.25 × 4⌋ = 1.
    sp = SpecialCasesConfig(case_ids=["D", "Z"], cost_multiple=5.0, cap_share=0.25)
    r = _run(special=sp)
    # by cost ratio: B (12.5×) before A (8.3×) and D (0.44×)
    assert list(r.special_applied) == [True, True, False, True]
    assert list(r.special_approved) == [False, True, False, False]
    assert r.notes == [
        "1 listed special case(s) not among the cases",
        "special_cases: 1 of 3 application(s) approved (cap ⌊0.25 × 4⌋ = 1)",
    ]
    # listed first: D takes the one place although its cost is below its standard
    r = _run(special=sp.model_copy(update={"order": "listed"}))
    assert list(r.special_approved) == [False, False, False, True]
    assert list(r.special_fen) == [0, 0, 0, 400_000]  # 4,000 yuan by item, fund ratio 1


def test_dip_case_without_weight_gets_no_addon_and_keeps_its_cost():
    nt = NewTechConfig(enabled=True)
    r = _run(scheme="dip", new_tech=nt, valid=np.array([False, True, True, True]))
    # A has 80,000 yuan of new technology but no weight: no add-on, its whole cost to the rules
    assert list(r.addon_points) == [0.0, 0.0, 0.0, 0.0]
    assert list(r.rule_cost) == [100_000.0, 150_000.0, 9_000.0, 4_000.0]
    assert list(r.new_tech_cost) == [80_000.0, 0.0, 0.0, 0.0]


def test_result_dtypes_and_new_tech_cost_as_documented():
    # integer costs and 0/1 approvals of a direct caller: costs float, fen int64, flags bool
    r = _run(cost=np.array([100_000, 150_000, 9_000, 4_000]))
    assert r.ref_cost.tolist() == [12_000.0, 12_000.0, 9_000.0, 9_000.0]
    assert r.rule_cost.dtype == np.float64 and r.standard.dtype == np.float64
    assert r.special_applied.dtype == bool and r.special_approved.dtype == bool
    assert r.special_fen.dtype == np.int64 and r.new_tech_fen.dtype == np.int64
    assert list(r.new_tech_cost) == [0.0] * 4  # rule off
    r = _run(new_tech=NewTechConfig(enabled=True), approved=[0, 1, 0, 0])
    assert r.special_approved.dtype == bool
    assert list(r.special_approved) == [False, True, False, False]
    assert list(r.special_fen) == [0, 15_000_000, 0, 0]  # 150,000 yuan by item, fund ratio 1
    assert list(r.new_tech_cost) == [80_000.0, 0.0, 0.0, 0.0]
    assert list(r.new_tech_fen) == [8_000_000, 0, 0, 0]
    assert r.special_fen.dtype == np.int64 and r.new_tech_fen.dtype == np.int64


def test_zero_cases():
    cases = pl.DataFrame(
        {"case_id": [], "total_cost": [], "new_tech_cost": [], "los": []},
        schema={
            "case_id": pl.String,
            "total_cost": pl.Float64,
            "new_tech_cost": pl.Float64,
            "los": pl.Float64,
        },
    )
    empty = np.zeros(0)
    r = apply_case_rules(
        cases,
        scheme="drg",
        case_id=cases["case_id"],
        cost=empty,
        group_mean=empty,
        coefficient=empty,
        group=np.zeros(0, np.int64),
        level=np.zeros(0, np.int64),
        valid=np.zeros(0, bool),
        yuan_per_point=100.0,
        low_k=0.5,
        high_k=empty,
        table_low=empty,
        table_high=empty,
        special=SpecialCasesConfig(cost_multiple=5.0, min_los=60),
        new_tech=NewTechConfig(enabled=True),
        outliers=OutliersConfig(),
    )
    for a in (r.rule_cost, r.ref_cost, r.low_k, r.high_k, r.special_approved, r.special_fen):
        assert a.shape == (0,)
    assert r.notes == [
        "new_tech: 0 case(s) with new-technology cost paid outside the points",
        "special_cases: 0 of 0 application(s) approved (cap ⌊0.05 × 0⌋ = 0)",
    ]


def test_approvals_given_by_the_caller_replace_the_policys_review():
    # the policy would approve A and B (cost > 5 × standard, cap 2); the caller approved C only
    sp = SpecialCasesConfig(cost_multiple=5.0, cap_share=0.5, fund_ratio=0.5)
    assert list(_run(special=sp).special_approved) == [True, True, False, False]
    r = _run(special=sp, approved=np.array([False, False, True, False]))
    assert list(r.special_approved) == [False, False, True, False]
    assert list(r.special_fen) == [0, 0, 450_000, 0]  # 9,000 yuan × 0.5
    assert not r.special_applied.any() and r.notes == []
