"""Outlier reference cost (casemix.payment.outliers): worked example O in
docs/payment-settlement.md, reproduced by hand."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemix.errors import InputError, PolicyError
from casemix.payment.outliers import (
    HIGH,
    LOW,
    NORMAL,
    OutliersConfig,
    case_thresholds,
    classify,
    fen_mean,
    level_group_mean,
    reference_cost,
    table_thresholds,
)
from strategies import rule_cases

# O: one group, m = 10,000 yuan; X1, X4 at level 3 (f = 1.2), X2, X3 at level 2 (f = 0.9);
# DIP 3.0 multiples: high 2, low 0.5
COST = np.array([22_000.0, 19_000.0, 4_800.0, 5_500.0])
M = np.full(4, 10_000.0)
F = np.array([1.2, 0.9, 0.9, 1.2])
GROUP = np.zeros(4, dtype=np.int64)
LEVEL = np.array([1, 0, 0, 1])  # codes: 0 = level 2, 1 = level 3
VALID = np.ones(4, dtype=bool)


def _classes(reference: str, low=0.5, high=2.0, table_low=None, table_high=None):
    ref = reference_cost(reference, M, F, group=GROUP, level=LEVEL, cost=COST, valid=VALID)
    lo, hi = case_thresholds(low, high, table_low, table_high)
    return ref, list(classify(COST, ref, lo, hi))


def test_worked_example_o_three_references():
    ref, c = _classes("group_mean")
    assert list(ref) == [10_000.0] * 4
    assert c == [HIGH, NORMAL, LOW, NORMAL]  # 2.2×, 1.9×, 0.48×, 0.55×
    ref, c = _classes("standard")
    np.testing.assert_allclose(ref, [12_000, 9_000, 9_000, 12_000])
    assert c == [NORMAL, HIGH, NORMAL, LOW]  # 22k ≤ 24k; 19k > 18k; 4.8k ≥ 4.5k; 5.5k < 6k
    ref, c = _classes("level_mean")
    assert list(ref) == [13_750.0, 11_900.0, 11_900.0, 13_750.0]
    assert c == [NORMAL, NORMAL, LOW, LOW]  # 4.8k < 5.95k; 5.5k < 6.875k


def test_worked_example_o_city_thresholds_take_precedence():
    # 吉林-style per-DRG 低倍/高倍临界值 0.4 / 1.8 for this DRG
    _, c = _classes("standard", table_low=np.full(4, 0.4), table_high=np.full(4, 1.8))
    assert c == [HIGH, HIGH, NORMAL, NORMAL]  # 22k > 21.6k; 19k > 16.2k; 4.8k ≥ 3.6k; 5.5k ≥ 4.8k
    # a DRG without table values keeps the policy's multiples
    lo, hi = case_thresholds(0.5, np.array([3.0, 2.0]), np.array([0.4, np.nan]), np.array([np.nan, 1.8]))
    assert list(lo) == [0.4, 0.5] and list(hi) == [3.0, 1.8]


def test_default_is_the_dip3_standard():
    assert OutliersConfig().reference == "standard"
    with pytest.raises(PolicyError, match=r"key outliers\.reference"):
        OutliersConfig.from_table({"reference": "median"})


def test_table_thresholds_checked():
    t = table_thresholds(
        pl.DataFrame({"drg": ["A", "B"], "rw": [1.0, 2.0], "low_k": [0.4, None], "high_k": [1.8, 3.0]})
    )
    assert t.to_dicts() == [
        {"drg": "A", "low_k": 0.4, "high_k": 1.8},
        {"drg": "B", "low_k": None, "high_k": 3.0},
    ]
    assert table_thresholds(pl.DataFrame({"drg": ["A"], "rw": [1.0]}))["high_k"].null_count() == 1
    with pytest.raises(InputError, match="low_k is not below high_k for DRG 'B'"):
        table_thresholds(pl.DataFrame({"drg": ["A", "B"], "low_k": [0.4, 2.0], "high_k": [1.8, 2.0]}))


def test_table_thresholds_text_that_is_no_number_is_refused_not_read_as_no_threshold():
    # a city table read as text: numbers and blanks are fine, "abc" names its DRG, row and value
    t = table_thresholds(pl.DataFrame({"drg": ["A", "B"], "low_k": ["0.4", None], "high_k": ["1.8", "3"]}))
    assert t.to_dicts() == [
        {"drg": "A", "low_k": 0.4, "high_k": 1.8},
        {"drg": "B", "low_k": None, "high_k": 3.0},
    ]
    with pytest.raises(InputError, match=r"low_k of DRG 'B' \(row 1\) is 'abc', which is no number"):
        table_thresholds(pl.DataFrame({"drg": ["A", "B"], "low_k": ["0.4", "abc"], "high_k": [1.8, 3.0]}))
    with pytest.raises(InputError, match=r"high_k of DRG 'A' \(row 0\) is '1,8', which is no number"):
        table_thresholds(pl.DataFrame({"drg": ["A", "B"], "low_k": [0.4, 0.5], "high_k": ["1,8", "3"]}))


def test_level_mean_without_level_or_group():
    # the case without a group (and one left out: not valid, NaN cost) is not counted, and
    # leaving it out raises no numpy warning (no NaN or None cast to fen)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = level_group_mean(
            np.array([0, 0, 0, 1, -1, 0]),
            np.array([0, 1, 0, -1, 0, 0]),
            np.array([10.0, 20, 30, 40, 50, np.nan]),
            np.array([True, True, True, True, True, False]),
        )
    np.testing.assert_array_equal(got, [20.0, 20.0, 20.0, 40.0, np.nan, 20.0])


def test_classify_gives_int8_classes_and_thresholds_are_checked_by_name():
    got = classify(np.array([1.0, 5.0, 30.0]), np.array([10.0, 10.0, 10.0]), 0.5, 2.0)
    assert got.tolist() == [LOW, NORMAL, HIGH] and got.dtype == np.int8
    # a high multiple below 1 is allowed (only <= 0 is refused); a negative low one is named
    t = table_thresholds(pl.DataFrame({"drg": ["A"], "low_k": [0.4], "high_k": [0.9]}))
    assert t.row(0) == ("A", 0.4, 0.9)
    with pytest.raises(
        InputError,
        match=r"^weight table: low_k \(低倍临界值\) is negative for DRG 'B' \(low_k=-0\.1, high_k=2\.0\); "
        r"fix the city table's 低倍/高倍临界值$",
    ):
        table_thresholds(pl.DataFrame({"drg": ["A", "B"], "low_k": [0.4, -0.1], "high_k": [1.8, 2.0]}))
    with pytest.raises(InputError, match=r"^weight table: high_k \(高倍临界值\) is not positive for DRG 'A'"):
        table_thresholds(pl.DataFrame({"drg": ["A"], "low_k": [None], "high_k": [0.0]}))


@settings(max_examples=60, deadline=None)
@given(rule_cases(), st.floats(1.0, 4.0), st.floats(0.0, 0.5))
def test_standard_with_coefficient_one_is_the_group_mean_and_raising_k_removes_highs(r, k, low):
    cost, m = np.array(r["cost"]), np.array(r["standard"])
    one = np.ones(len(cost))
    a = reference_cost("standard", m, one)
    np.testing.assert_array_equal(a, reference_cost("group_mean", m, one))
    c1 = classify(cost, a, np.full(len(cost), low), np.full(len(cost), k))
    c2 = classify(cost, a, np.full(len(cost), low), np.full(len(cost), k + 0.5))
    assert not ((c2 == HIGH) & (c1 != HIGH)).any()
    assert ((c1 == LOW) == (cost < low * m)).all()


@settings(max_examples=60, deadline=None)
@given(rule_cases(), st.randoms(use_true_random=False))
def test_level_mean_does_not_depend_on_the_order_of_the_cases(r, rnd):
    # costs are added in whole fen, so a region's parts can be added up in any order (Dask)
    n = len(r["cost"])
    group = np.array([int(h[1]) % 2 for h in r["hospital_id"]])
    level = np.array([m % 3 - 1 for m in r["month"]])  # −1 = no level
    cost = np.array(r["cost"]) + 0.001  # not whole fen: rounded half up before adding
    valid = np.array([los % 5 != 0 for los in r["los"]])
    got = level_group_mean(group, level, cost, valid)
    order = list(range(n))
    rnd.shuffle(order)
    again = level_group_mean(group[order], level[order], cost[order], valid[order])
    assert np.array_equal(got[order], again, equal_nan=True)
    # the mean of a cell is its whole-fen sum over its count
    ok = valid & (level == level[0]) & (group == group[0])
    if level[0] >= 0 and ok.any():
        fen = np.floor(cost[ok] * 100 + 0.5)
        assert got[0] == fen.sum() / ok.sum() / 100


def test_level_mean_reference_needs_its_inputs():
    with pytest.raises(ValueError, match=r"^reference 'level_mean' needs group, level, cost and valid$"):
        reference_cost("level_mean", np.array([1.0]), np.array([1.0]))
    # any one of them missing is enough (here valid, then cost)
    for missing in ("valid", "cost", "group", "level"):
        given = dict(group=GROUP, level=LEVEL, cost=COST, valid=VALID) | {missing: None}
        with pytest.raises(ValueError, match=r"^reference 'level_mean' needs group, level, cost and valid$"):
            reference_cost("level_mean", M, F, **given)


def test_fen_mean_of_integer_sums_without_a_division_by_zero():
    # 3 costs adding up to 1,000 fen, none, and 1 of 250 fen; integer sums, as Dask's parts add
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        got = fen_mean(np.array([1_000, 0, 250]), np.array([3, 0, 1]))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [1_000 / 3 / 100, np.nan, 2.5])


def test_thresholds_of_integer_multiples_are_float_and_classes_of_integer_costs_agree():
    lo, hi = case_thresholds(1, np.array([2, 3]))
    assert lo.dtype == np.float64 and hi.dtype == np.float64
    assert lo.tolist() == [1.0, 1.0] and hi.tolist() == [2.0, 3.0]
    # integer table multiples where given (the policy's elsewhere), float64 all the same
    lo, hi = case_thresholds(0.5, 2.0, np.array([1, 0]), np.array([np.nan, 4.0]))
    assert lo.dtype == np.float64 and lo.tolist() == [1.0, 0.0] and hi.tolist() == [2.0, 4.0]
    # integer costs and references compare as their float values: 5 < 0.5 × 11 ≤ 22 = 2 × 11 < 23
    got = classify(np.array([5, 6, 22, 23]), np.array([11, 11, 11, 11]), 0.5, 2.0)
    assert got.tolist() == [LOW, NORMAL, NORMAL, HIGH]


def test_references_of_integer_means_cases_without_a_reference_and_an_unknown_name():
    # integer group means (a direct caller's) give float64 references, all three ways
    for name in ("standard", "group_mean", "level_mean"):
        ref = reference_cost(name, [10_000] * 4, F, group=GROUP, level=LEVEL, cost=COST, valid=VALID)
        assert ref.dtype == np.float64, name
    # level_mean: X2 has a group but no reference of its own (m NaN, e.g. no weight): none,
    # though its group has a level mean (19,000 and 4,800 at level 2: 11,900)
    m = np.array([10_000.0, np.nan, 10_000.0, 10_000.0])
    ref = reference_cost("level_mean", m, F, group=GROUP, level=LEVEL, cost=COST, valid=VALID)
    np.testing.assert_array_equal(ref, [13_750.0, np.nan, 11_900.0, 13_750.0])
    with pytest.raises(ValueError, match=r"^unknown outlier reference 'median'$"):
        reference_cost("median", M, F)


def test_table_thresholds_without_the_columns_are_float_nulls():
    t = table_thresholds(pl.DataFrame({"drg": ["A", "B"], "rw": [1.0, 2.0]}))
    assert t.schema == pl.Schema({"drg": pl.String, "low_k": pl.Float64, "high_k": pl.Float64})
    assert t["low_k"].null_count() == 2 and t["high_k"].null_count() == 2


def test_level_mean_reads_0_1_flags_and_whole_number_float_codes():
    # the flags of a direct caller as 0/1 and the codes as floats (to_numpy of a filled
    # integer column can give them): the same means as bool flags and integer codes
    got = level_group_mean(
        [0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, -1.0], [10.0, 20.0, 30.0, 40.0], [1, 1, 0, 1]
    )
    np.testing.assert_array_equal(got, [10.0, 20.0, 10.0, 40.0])
