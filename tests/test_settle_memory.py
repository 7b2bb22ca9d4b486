"""The memory-saving forms of settlement's steps give what the plain forms gave, to the bit."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemix._memory import release_free_memory
from casemix._points import _codes, _int_codes
from casemix.budget import Policy
from casemix.errors import InputError, PolicyError
from casemix.payment.inputs import fund_cost_fen
from casemix.payment.sums import BLOCK_ROWS, float_sums, pool_sums
from casemix.settle import _base_sums, _first_rows, _fund_cost_sums, _rw


def _read_only(x: np.ndarray) -> np.ndarray:
    v = x.view()
    v.flags.writeable = False
    return v


def test_float_sums_are_bincounts_bit_for_bit_over_several_slices():
    rng = np.random.default_rng(7)
    n = BLOCK_ROWS + 12_345  # two slices
    g = rng.integers(0, 37, n)
    x = rng.lognormal(0.0, 3.0, n)  # magnitudes far apart: a different order would show
    want = np.bincount(g, weights=x, minlength=40)
    got = float_sums(_read_only(g), _read_only(x), 40)
    assert got.view(np.int64).tolist() == want.view(np.int64).tolist()
    # one pass per slice summed afterwards would differ in the last bits somewhere
    per_slice = np.bincount(g[:BLOCK_ROWS], weights=x[:BLOCK_ROWS], minlength=40) + np.bincount(
        g[BLOCK_ROWS:], weights=x[BLOCK_ROWS:], minlength=40
    )
    assert not np.array_equal(per_slice, want)
    assert float_sums(np.zeros(0, dtype=np.int64), np.zeros(0), 3).tolist() == [0.0, 0.0, 0.0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=30),
    st.sampled_from([pl.Int8, pl.Int32, pl.Int64]),
)
def test_int_codes_are_the_codes_of_replace_strict(values, dtype):
    lo = {pl.Int8: -128, pl.Int32: -(2**31), pl.Int64: -(2**31)}[dtype]
    hi = {pl.Int8: 127, pl.Int32: 2**31 - 1, pl.Int64: 2**31 - 1}[dtype]
    s = pl.Series([min(max(v, lo), hi) for v in values], dtype=dtype)
    got = _int_codes(s)
    if int(s.max()) - int(s.min()) >= 1 << 16:
        assert got is None  # too wide for a lookup table: polars' way
        return
    assert got is not None
    codes, u = got
    want_codes, want_u = _codes(s, pl.Int32)
    assert codes.dtype == np.int32
    assert codes.tolist() == want_codes.tolist()
    assert u.to_list() == want_u.to_list()


def test_int_codes_leave_nulls_and_text_to_polars():
    assert _int_codes(pl.Series([1, None, 3], dtype=pl.Int8)) is None
    assert _int_codes(pl.Series(["1", "3"])) is None
    assert _int_codes(pl.Series([], dtype=pl.Int32)) is None
    assert _int_codes(pl.Series([2**64 - 1, 2**64 - 2], dtype=pl.UInt64)) is None
    codes, u = _int_codes(pl.Series([2**40 + 3, 2**40], dtype=pl.UInt64)) or (None, None)
    assert codes is not None and codes.tolist() == [1, 0] and u.to_list() == [2**40, 2**40 + 3]


def test_rw_with_nulls_is_the_masked_division():
    policy = Policy.demo()
    base = np.array([150.0, np.nan, 33.3, np.nan, 1e-3] * 7)
    rules = pl.DataFrame([pl.Series("base_points", base, nan_to_null=True)])
    got = _rw(rules, policy)
    want = pl.Series("rw", base / policy.points_per_rw, nan_to_null=True)
    assert got.name == "rw" and got.dtype == pl.Float64
    assert got.null_count() == 14
    assert got.equals(want)
    # without a null: a plain division of the column
    full = pl.DataFrame([pl.Series("base_points", [100.0, 250.0])])
    assert _rw(full, policy).to_list() == [100.0 / policy.points_per_rw, 250.0 / policy.points_per_rw]


def test_base_sums_are_the_bincounts_of_the_null_filled_column():
    rng = np.random.default_rng(3)
    n = BLOCK_ROWS + 999
    x = rng.lognormal(5.0, 1.0, n)
    x[rng.random(n) < 0.05] = np.nan
    hosp = rng.integers(0, 11, n)
    s = pl.Series("base_points", x, nan_to_null=True)
    base, rw = _base_sums(s, _read_only(hosp), 11, 100.0)
    filled = np.where(np.isnan(x), 0.0, x)
    assert (
        base.view(np.int64).tolist()
        == np.bincount(hosp, weights=filled, minlength=11).view(np.int64).tolist()
    )
    want_rw = np.bincount(hosp, weights=filled / 100.0, minlength=11)
    assert rw.view(np.int64).tolist() == want_rw.view(np.int64).tolist()


def test_fund_cost_sums_slice_by_slice_equal_the_whole_column():
    rng = np.random.default_rng(5)
    n = BLOCK_ROWS + 77
    df = pl.DataFrame({"fund_paid": np.round(rng.lognormal(7.0, 1.0, n), 2)})
    case_id = pl.int_range(n, eager=True).cast(pl.String)
    pool = rng.integers(0, 2, n).astype(np.int8)
    hosp = rng.integers(0, 9, n)
    got = _fund_cost_sums(df, case_id, pool, hosp, 2, 9, rule="corridors")
    want = pool_sums(pool, hosp, fund_cost_fen(df, case_id, rule="corridors"), 2, 9)
    assert got.tolist() == want.tolist()
    # a bad amount in the second slice is named by its row in the whole frame
    bad = df.with_columns(
        pl.when(pl.int_range(n) == n - 3).then(-1.0).otherwise(pl.col("fund_paid")).alias("fund_paid")
    )
    with pytest.raises(InputError, match=f"row {n - 3} \\(case_id '{n - 3}'\\)"):
        _fund_cost_sums(bad, case_id, pool, hosp, 2, 9, rule="corridors")
    with pytest.raises(PolicyError, match="corridors needs column fund_paid"):
        _fund_cost_sums(pl.DataFrame({"x": [1.0]}), case_id[:1], pool[:1], hosp[:1], 2, 9, rule="corridors")
    with pytest.raises(PolicyError, match="needs column fund_paid"):
        _fund_cost_sums(pl.DataFrame({"x": []}), case_id[:0], pool[:0], hosp[:0], 2, 9, rule="corridors")


def test_release_free_memory_returns():
    release_free_memory()
    release_free_memory()


def test_first_rows_over_several_slices():
    rng = np.random.default_rng(11)
    n = 2 * BLOCK_ROWS + 5
    hosp = rng.integers(0, 50, n)
    hosp[: 2 * BLOCK_ROWS] = np.where(
        hosp[: 2 * BLOCK_ROWS] == 49, 48, hosp[: 2 * BLOCK_ROWS]
    )  # 49 only in the last slice
    want = np.full(52, -1)
    want[hosp[::-1]] = np.arange(n)[::-1]
    got = _first_rows(_read_only(hosp), 52)
    assert got.tolist() == want.tolist()
    assert got[49] >= 2 * BLOCK_ROWS and got[50] == -1 == got[51]
