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


def _run(scheme="drg", special=None, new_tech=None, outliers=None, table=None, los=None):
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
        cost=cases["total_cost"].to_numpy(),
        group_mean=np.full(4, 10_000.0),
        coefficient=np.array([1.2, 1.2, 0.9, 0.9]),
        group=np.zeros(4, np.int64),
        level=np.array([1, 1, 0, 0]),
        valid=np.ones(4, bool),
        yuan_per_point=100.0,
        low_k=0.5,
        high_k=np.array([3.0, 3.0, 2.0, 2.0]),
        table_low=None if table is None else table[0],
        table_high=None if table is None else table[1],
        special=special or SpecialCasesConfig(),
        new_tech=new_tech or NewTechConfig(),
        outliers=outliers or OutliersConfig(),
    )


def test_defaults_change_nothing_but_the_reference():
    r = _run()
    assert list(r.rule_cost) == [100_000.0, 150_000.0, 9_000.0, 4_000.0]
    assert list(r.ref_cost) == [12_000.0, 12_000.0, 9_000.0, 9_000.0]  # standard m × f
    assert not r.special_approved.any() and not r.new_tech_fen.any()
    assert list(r.low_k) == [0.5] * 4 and list(r.high_k) == [3.0, 3.0, 2.0, 2.0]


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
