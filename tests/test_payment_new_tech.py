"""新药新技术除外支付 (casemix.payment.new_tech): worked example NT in
docs/payment-settlement.md, reproduced by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings

from casemix.errors import InputError, PolicyError
from casemix.payment.new_tech import (
    NewTechConfig,
    dip_addon,
    drg_exclusion,
    new_tech_cost,
    outside_payment_fen,
)
from strategies import rule_cases


def test_worked_example_nt_drg_beijing_rule():
    cfg = NewTechConfig(enabled=True)  # 2 × standard, share > 64%
    std = np.full(4, 20_000.0)
    cost = np.array([100_000.0, 100_000.0, 39_000.0, 40_000.0])
    tech = np.array([70_000.0, 60_000.0, 30_000.0, 30_000.0])
    eligible, residual = drg_exclusion(cost, tech, std, cfg)
    # A: 100k > 40k and 70% > 64%; B: 60% ≤ 64%; C: 39k ≤ 40k; D: 40k not above 40k
    assert list(eligible) == [True, False, False, False]
    assert list(residual) == [30_000.0, 100_000.0, 39_000.0, 40_000.0]
    assert list(outside_payment_fen(tech, eligible, 1.0)) == [7_000_000, 0, 0, 0]
    # 12,345.67 yuan × 0.9 = 11,111.103 yuan → 1,111,110 fen
    assert list(outside_payment_fen(np.array([12_345.67]), np.array([True]), 0.9)) == [1_111_110]


def test_worked_example_nt_dip_addon():
    # M = 8,000 yuan, scores RW × 1000 → 8 yuan per point; 12,000 yuan of new technology
    addon, residual = dip_addon(
        np.array([50_000.0, 9_000.0]), np.array([12_000.0, 0.0]), 8.0, NewTechConfig(enabled=True)
    )
    assert list(addon) == [1_500.0, 0.0]
    assert list(residual) == [38_000.0, 9_000.0]
    addon, _ = dip_addon(
        np.array([50_000.0]), np.array([12_000.0]), 8.0, NewTechConfig(enabled=True, dip_factor=0.5)
    )
    assert list(addon) == [750.0]


def test_cost_from_column_or_code_list():
    df = pl.DataFrame(
        {
            "case_id": ["a", "b", "c"],
            "total_cost": [100.0, 50.0, 80.0],
            "pproc": ["X1", "X2", None],
            "oproc": ["X3|X1", "", "X3"],
        }
    )
    cfg = NewTechConfig(enabled=True, codes={"X1": 60.0, "X3": 10.0})
    assert list(new_tech_cost(df, cfg)) == [70.0, 0.0, 10.0]  # X1 counted once
    col = df.with_columns(pl.Series("new_tech_cost", [5.0, None, 80.0]))
    assert list(new_tech_cost(col, cfg)) == [5.0, 0.0, 80.0]  # the column wins


def test_bad_input_names_rule_row_and_case():
    df = pl.DataFrame({"case_id": ["a", "b"], "total_cost": [100.0, 50.0]})
    with pytest.raises(PolicyError, match="new_tech.*new_tech_cost"):
        new_tech_cost(df, NewTechConfig(enabled=True))
    with pytest.raises(PolicyError, match="procedure column"):
        new_tech_cost(df, NewTechConfig(enabled=True, codes={"X": 1.0}))
    bad = df.with_columns(pl.Series("new_tech_cost", [1.0, -2.0]))
    with pytest.raises(InputError, match=r"row 1 \(case_id 'b'\)"):
        new_tech_cost(bad, NewTechConfig(enabled=True))
    over = df.with_columns(pl.Series("new_tech_cost", [101.0, 0.0]))
    with pytest.raises(InputError, match=r"exceeds total_cost.*case_id 'a'"):
        new_tech_cost(over, NewTechConfig(enabled=True))
    with pytest.raises(PolicyError, match=r"key new_tech\.min_share"):
        NewTechConfig.from_table({"min_share": 64})


@settings(max_examples=60, deadline=None)
@given(rule_cases())
def test_residual_plus_excluded_is_the_cost(r):
    cost = np.array(r["cost"])
    tech = cost * np.linspace(0, 1, len(cost))
    cfg = NewTechConfig(enabled=True)
    eligible, residual = drg_exclusion(cost, tech, np.array(r["standard"]), cfg)
    np.testing.assert_allclose(residual + np.where(eligible, tech, 0), cost)
    assert (tech[eligible] > 0.64 * cost[eligible]).all()
    assert (cost[eligible] > 2 * np.array(r["standard"])[eligible]).all()


def test_mutant_edges_ids_code_costs_zero_tech_and_half_a_yuan():
    # without case_id the rows are named by 1-based numbers
    cases = pl.DataFrame({"total_cost": [100.0, 100.0], "new_tech_cost": [1.0, -2.0]})
    with pytest.raises(
        InputError,
        match=r"^new_tech_cost \(新药新技术费用\) is negative or not a number at row 1 \(case_id '2'\)",
    ):
        new_tech_cost(cases, NewTechConfig(enabled=True))
    procs = pl.DataFrame({"case_id": ["a"], "total_cost": [100.0], "pproc": ["X1"]})
    with pytest.raises(PolicyError, match=r"^new_tech\.codes\.X1 must be a cost in yuan >= 0$"):
        new_tech_cost(procs, NewTechConfig(enabled=True, codes={"X1": -5.0}))
    # no new-technology cost at all: no reference cost per point is needed
    addon, residual = dip_addon(np.array([10.0, 20.0]), np.zeros(2), 0.0, NewTechConfig(enabled=True))
    assert addon.tolist() == [0.0, 0.0] and residual.tolist() == [10.0, 20.0]
    # any positive cost counts, half a yuan too (min_share 0): cost 100 > 2 × standard 40
    config = NewTechConfig(enabled=True, min_share=0.0)
    eligible, residual = drg_exclusion(
        np.array([100.0, 100.0]), np.array([0.5, 0.0]), np.array([40.0, 40.0]), config
    )
    assert eligible.tolist() == [True, False] and residual.tolist() == [99.5, 100.0]


def test_code_costs_need_a_procedure_column_and_read_numeric_code_lists():
    cases = pl.DataFrame({"case_id": ["a"], "total_cost": [100.0]})
    with pytest.raises(
        PolicyError,
        match=r"^new_tech\.codes needs a procedure column \(pproc/oproc/procedures\) or the column "
        r"new_tech_cost \(新药新技术费用\), which the cases lack$",
    ):
        new_tech_cost(cases, NewTechConfig(enabled=True, codes={"X1": 5.0}))
    # a list column of numbers is read as the codes' text
    nums = pl.DataFrame({"case_id": ["a", "b"], "total_cost": [100.0, 100.0], "procedures": [[123, 7], [8]]})
    got = new_tech_cost(nums, NewTechConfig(enabled=True, codes={"123": 10.0, "8": 2.5}))
    assert got.tolist() == [10.0, 2.5]


def test_every_message_in_full():
    df = pl.DataFrame({"case_id": ["a", "b"], "total_cost": [100.0, 50.0]})
    with pytest.raises(PolicyError) as info:
        new_tech_cost(df, NewTechConfig(enabled=True))
    assert str(info.value) == (
        "new_tech is enabled but the cases lack the column new_tech_cost (新药新技术费用) "
        "and the policy has no new_tech.codes; add either"
    )
    over = df.with_columns(pl.Series("new_tech_cost", [100.0, 50.5]))
    with pytest.raises(InputError) as info:
        new_tech_cost(over, NewTechConfig(enabled=True))
    assert str(info.value) == (
        "new_tech_cost 50.5 exceeds total_cost 50.0 at row 1 (case_id 'b'); "
        "the new-technology cost is part of the case's cost"
    )
    text = df.with_columns(pl.Series("new_tech_cost", ["1", "abc"]))
    with pytest.raises(InputError) as info:
        new_tech_cost(text, NewTechConfig(enabled=True))
    assert str(info.value) == (
        "new_tech_cost (新药新技术费用) is negative or not a number at row 1 (case_id 'b'): 'abc'"
    )
    nan = df.with_columns(pl.Series("new_tech_cost", [float("nan"), 1.0]))
    with pytest.raises(InputError, match=r"at row 0 \(case_id 'a'\): nan$"):
        new_tech_cost(nan, NewTechConfig(enabled=True))
    for bad in (0.0, -8.0, float("inf"), float("nan")):
        with pytest.raises(PolicyError) as info:
            dip_addon(np.array([10.0]), np.array([1.0]), bad, NewTechConfig(enabled=True))
        assert str(info.value) == (
            "new_tech (DIP add-on) needs a positive all-case reference cost per point, "
            f"got {bad!r}; give mean_cost in the weights"
        )
    for bad in (float("inf"), float("nan")):
        with pytest.raises(PolicyError, match=r"^new_tech\.codes\.X2 must be a cost in yuan >= 0$"):
            new_tech_cost(
                df.with_columns(pproc=pl.lit("X1")), NewTechConfig(enabled=True, codes={"X1": 1.0, "X2": bad})
            )


def test_code_costs_from_every_procedure_column_stripped_and_a_cost_equal_to_the_total():
    # codes from pproc, oproc and procedures (a "|"-string, spaces around codes), each once;
    # a new-technology cost equal to the case's cost is allowed
    df = pl.DataFrame(
        {
            "case_id": ["a", "b", "c"],
            "total_cost": [32.0, 4.0, 100.0],
            "pproc": ["X1", None, "Z9"],
            "oproc": [" X2 | X1", "X4", None],
            "procedures": ["X4", "X4|X4", ""],
        }
    )
    cfg = NewTechConfig(enabled=True, codes={"X1": 1.0, "X2": 10.0, "X4": 4.0, "X8": 100.0})
    assert new_tech_cost(df, cfg).tolist() == [15.0, 4.0, 0.0]
    # only the columns named are read
    assert new_tech_cost(df, cfg, procedure_cols=("procedures",)).tolist() == [4.0, 4.0, 0.0]
    # total_cost as text is read as a number; a cost above it by rounding noise (1e-10) passes
    t = pl.DataFrame({"total_cost": ["10.0"], "new_tech_cost": [10.0 + 1e-10]})
    assert new_tech_cost(t, cfg).tolist() == [10.0 + 1e-10]
    assert new_tech_cost(t, cfg).dtype == np.float64


def test_small_costs_share_at_the_limit_and_no_warnings():
    import warnings

    # code costs of 0 and half a yuan are costs (>= 0)
    cases = pl.DataFrame({"case_id": ["a"], "total_cost": [10.0], "pproc": ["X1|X2"]})
    assert new_tech_cost(cases, NewTechConfig(enabled=True, codes={"X1": 0.0, "X2": 0.5})).tolist() == [0.5]
    # DIP: half a yuan of new technology at 2 yuan a point is 0.25 add-on points
    addon, residual = dip_addon(np.array([10.0]), np.array([0.5]), 2.0, NewTechConfig(enabled=True))
    assert addon.tolist() == [0.25] and residual.tolist() == [9.5]
    # DRG: a share exactly at min_share is not above it (cost 100 > 2 x 40 either way)
    config = NewTechConfig(enabled=True, min_share=0.5)
    eligible, residual = drg_exclusion(
        np.array([100.0, 100.0]), np.array([50.0, 50.5]), np.array([40.0, 40.0]), config
    )
    assert eligible.tolist() == [False, True] and residual.tolist() == [100.0, 49.5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # no new-technology cost: no division by the (zero) cost per point, no warning
        addon, _ = dip_addon(np.array([10.0]), np.zeros(1), 0.0, NewTechConfig(enabled=True))
        assert addon.tolist() == [0.0]
        # an infinite cost: min_share 0 x inf is NaN, compared silently (not eligible)
        eligible, _ = drg_exclusion(
            np.array([np.inf]), np.array([1.0]), np.array([1.0]), NewTechConfig(enabled=True, min_share=0.0)
        )
        assert eligible.tolist() == [False]


def test_integer_inputs_give_float_costs():
    cfg = NewTechConfig(enabled=True, codes={"X1": 3, "X2": 4})
    # integer costs: 100 > 2 × 40 and 70 > 0.64 × 100, so 30 left; float64 either way
    eligible, residual = drg_exclusion(np.array([100, 100]), np.array([70, 10]), np.array([40, 40]), cfg)
    assert eligible.tolist() == [True, False] and residual.tolist() == [30.0, 100.0]
    assert residual.dtype == np.float64
    cases = pl.DataFrame(
        {"case_id": [7, 8], "total_cost": [10, 10], "new_tech_cost": [2, None], "pproc": ["X1", "X2"]}
    )
    got = new_tech_cost(cases, cfg)
    assert got.dtype == np.float64 and got.tolist() == [2.0, 0.0]
    got = new_tech_cost(cases.drop("new_tech_cost"), cfg)
    assert got.dtype == np.float64 and got.tolist() == [3.0, 4.0]
    with pytest.raises(
        InputError, match=r"^new_tech_cost 12\.0 exceeds total_cost 10\.0 at row 1 \(case_id '8'\)"
    ):
        new_tech_cost(cases.with_columns(new_tech_cost=pl.Series([2, 12])), cfg)


def test_dip_addon_at_one_yuan_a_point_or_less_and_total_cost_text_that_is_no_number():
    # any positive reference cost per point is one: 1 yuan, half a yuan
    cfg = NewTechConfig(enabled=True)
    for ypp, want in ((1.0, 30.0), (0.5, 60.0)):
        addon, residual = dip_addon(np.array([100.0]), np.array([30.0]), ypp, cfg)
        assert addon.tolist() == [want] and residual.tolist() == [70.0]
    # a total_cost the intake could not read (text, blank) is no bound to check against
    cases = pl.DataFrame({"case_id": ["a", "b"], "total_cost": ["10.0", ""], "new_tech_cost": [2.0, 3.0]})
    assert new_tech_cost(cases, cfg).tolist() == [2.0, 3.0]
