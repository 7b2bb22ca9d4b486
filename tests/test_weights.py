"""Weights: the worked examples of docs/payment-weights.md, and properties."""

from __future__ import annotations

from fractions import Fraction

import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casemix.errors import InputError
from casemix.weights import Trim, compute_weights


def rw_of(w) -> dict[str, float]:
    return w.rw()


# --- W1: no trimming, one year -------------------------------------------------------


def w1() -> pl.DataFrame:
    return pl.DataFrame(
        {"drg": ["A1", "A1", "A1", "B1", "B1"], "total_cost": [1000.0, 2000.0, 3000.0, 4000.0, 6000.0]}
    )


def test_example_w1_rw_riv_cv():
    w = compute_weights(w1(), trim="none")
    assert rw_of(w) == pytest.approx({"A1": 0.625, "B1": 1.5625})
    q = w.quality
    assert q["all_case_mean"] == pytest.approx(3200.0)
    assert q["riv"] == pytest.approx(1 - 4.0e6 / 14.8e6)
    t = w.table
    assert t["cv"].to_list() == pytest.approx([0.5, 2**0.5 * 1000 / 5000])
    assert t["median"].to_list() == pytest.approx([2000.0, 5000.0])
    assert t["mean_cost"].to_list() == pytest.approx([2000.0, 5000.0])
    assert q["share_cv_ge_1"] == 0.0


# --- W2: trimming methods on one skewed group ----------------------------------------------


def w2() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "drg": ["X1"] * 5 + ["Y1"] * 3,
            "total_cost": [100.0, 200.0, 300.0, 400.0, 10000.0, 600.0, 600.0, 600.0],
        }
    )


@pytest.mark.parametrize(
    "kwargs, x_mean, m_all",
    [
        ({"trim": "none"}, 2200.0, 1600.0),
        ({"trim": "percentile"}, 300.0, 450.0),  # keeps 200, 300, 400
        ({"trim": "percentile", "percentiles": (0.01, 0.99)}, 300.0, 450.0),
        ({"trim": "iqr"}, 250.0, 400.0),  # fences 100 .. 700
        ({"trim": "iqr", "iqr": (0.0, 1.5)}, 300.0, 450.0),  # fences 200 .. 700
        ({"trim": "sd", "sd_k": 1.0}, 250.0, 400.0),  # 2200 ± 4361.8
        ({"trim": "sd", "sd_k": 3.0}, 2200.0, 1600.0),
        # the fences differ: b = 49 puts the upper IQR fence at 400 + 49·200 = 10200, keeping 10000
        ({"trim": "iqr", "iqr": (0.5, 49.0)}, 2200.0, 1600.0),
        # sample SD (ddof 1) 4361.8: 2200 + 1.9·4361.8 = 10487 keeps 10000; with ddof 0
        # (3901.3) the fence 9612.5 would drop it
        ({"trim": "sd", "sd_k": 1.9}, 2200.0, 1600.0),
        ({"trim": "sd", "sd_k": 1.7}, 250.0, 400.0),  # 2200 + 7415 = 9615 drops 10000
    ],
)
def test_example_w2_trimming(kwargs, x_mean, m_all):
    w = compute_weights(w2(), **kwargs)
    t = w.table
    assert t["trimmed_mean"].to_list() == pytest.approx([x_mean, 600.0])
    assert w.quality["all_case_mean"] == pytest.approx(m_all)
    assert rw_of(w) == pytest.approx({"X1": x_mean / m_all, "Y1": 600.0 / m_all})


def test_trim_object_and_describe():
    assert Trim("iqr", a=0.5, b=1.5).describe() == "Q1 − 0.5·IQR, Q3 + 1.5·IQR"
    w = compute_weights(w2(), trim=Trim("percentile", lower=0.025, upper=0.975))
    assert w.quality["trim"] == "percentile 2.5/97.5"
    with pytest.raises(InputError, match="trim method"):
        Trim("winsor")
    with pytest.raises(InputError, match="lower < upper"):
        compute_weights(w2(), percentiles=(0.9, 0.1))


def test_example_w2_group_that_would_vanish_is_kept_and_reported():
    df = pl.concat([w2(), pl.DataFrame({"drg": ["Z1", "Z1"], "total_cost": [5.0, 7.0]})])
    w = compute_weights(df)  # P2.5 = 5.05, P97.5 = 6.95: both cases outside the fences
    t = w.table.filter(pl.col("drg") == "Z1")
    assert t["n_kept"][0] == 2 and t["trim_kept_whole"][0]
    assert t["trimmed_mean"][0] == pytest.approx(6.0)
    assert w.kept_whole.to_dicts() == [{"drg": "Z1", "year": 0, "n": 2}]
    # the year as the cleaned history reads it (Int32), one schema with or without rows
    assert w.kept_whole.schema == {"drg": pl.String, "year": pl.Int32, "n": pl.Int64}
    assert compute_weights(w2()).kept_whole.schema == w.kept_whole.schema
    assert w.quality["groups_kept_whole"] == 1


# --- W3: blending years 1:2:7, both readings --------------------------------------------------


def w3() -> pl.DataFrame:
    rows = (
        [("A1", 2021, 100), ("A1", 2021, 300), ("A1", 2022, 300)]
        + [("A1", 2023, 400)] * 4
        + [("B1", 2021, 500), ("B1", 2022, 600), ("B1", 2023, 800), ("B1", 2023, 1000)]
    )
    return pl.DataFrame(
        rows, schema={"drg": pl.String, "year": pl.Int64, "total_cost": pl.Float64}, orient="row"
    )


def test_example_w3_blend_of_means():
    w = compute_weights(w3(), trim="none", blend="means")
    assert w.quality["years"] == {2021: 1.0, 2022: 2.0, 2023: 7.0}
    assert w.table["trimmed_mean"].to_list() == pytest.approx([360.0, 800.0])
    assert w.quality["all_case_mean"] == pytest.approx(1550 / 3)
    assert rw_of(w) == pytest.approx({"A1": 360 / (1550 / 3), "B1": 800 / (1550 / 3)})
    assert rw_of(w)["A1"] == pytest.approx(0.696774, abs=5e-7)


def test_example_w3_blend_of_sums():
    w = compute_weights(w3(), trim="none", blend="sums")
    assert w.table["trimmed_mean"].to_list() == pytest.approx([381.25, 14300 / 17])
    assert w.quality["all_case_mean"] == pytest.approx(26500 / 49)
    assert rw_of(w) == pytest.approx({"A1": float(Fraction(2989, 4240)), "B1": float(Fraction(7007, 4505))})


def test_blend_uses_most_recent_years():
    older = pl.DataFrame({"drg": ["A1"], "year": [2019], "total_cost": [99999.0]})
    w = compute_weights(pl.concat([older, w3()]), trim="none")
    assert w.quality["excluded"]["year_outside_blend"] == 1
    assert rw_of(w)["A1"] == pytest.approx(360 / (1550 / 3))
    two = compute_weights(w3().filter(pl.col("year") >= 2022), trim="none")
    assert two.quality["years"] == {2022: 2.0, 2023: 7.0}
    # A1: (2·300 + 7·400) / 9
    assert two.table["trimmed_mean"][0] == pytest.approx((600 + 2800) / 9)


# --- fallback for small groups -----------------------------------------------------------


def w4() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "drg": ["X11"] * 5 + ["X13"] * 2 + ["Y11"] * 3,
            "adrg": ["X1"] * 7 + ["Y1"] * 3,
            "total_cost": [100.0, 200.0, 300.0, 400.0, 10000.0, 500.0, 700.0, 600.0, 600.0, 600.0],
        }
    )


def test_min_cases_fallback_adrg_override_none():
    m = 14000 / 10
    w = compute_weights(w4(), trim="none", min_cases=3)
    t = {r["drg"]: r for r in w.table.to_dicts()}
    assert t["X13"]["source"] == "adrg"
    assert t["X13"]["rw"] == pytest.approx(12200 / 7 / m)
    assert t["X13"]["mean_cost"] == pytest.approx(12200 / 7)
    assert t["X11"]["source"] == "own" and t["X11"]["rw"] == pytest.approx(2200 / m)
    ov = compute_weights(w4(), trim="none", min_cases=3, overrides={"X13": 0.9})
    assert ov.table.filter(pl.col("drg") == "X13")["rw"][0] == 0.9
    assert ov.quality["fallback_counts"] == {"override": 1, "own": 2}
    ov_frame = compute_weights(
        w4(), trim="none", min_cases=3, overrides=pd.DataFrame({"drg": ["X13"], "rw": [0.8]})
    )
    assert ov_frame.rw()["X13"] == 0.8
    own = compute_weights(w4(), trim="none", min_cases=3, fallback="none")
    assert own.table.filter(pl.col("drg") == "X13")["source"][0] == "own_few"
    assert own.rw()["X13"] == pytest.approx(600 / m)
    # without an adrg column the ADRG is the first 3 characters of the CHS-DRG code
    coded = (
        w4().drop("adrg").with_columns(pl.col("drg").replace({"X11": "XA11", "X13": "XA13", "Y11": "YA11"}))
    )
    adrg_from_code = compute_weights(coded, trim="none", min_cases=3)
    assert adrg_from_code.table["adrg"].to_list() == ["XA1", "XA1", "YA1"]
    assert adrg_from_code.table["source"].to_list() == ["own", "adrg", "own"]


def test_cleaning_counts_and_frame_types():
    df = pd.DataFrame(
        {
            "drg": ["A1", "A1", "0000", None, "B1", "B1", "B1"],
            "total_cost": [100.0, 200.0, 50.0, 60.0, -1.0, None, 300.0],
            "los": [1.0, 0.0, 2.0, 2.0, 2.0, 2.0, 3.0],
        }
    )
    w = compute_weights(df, trim="none")
    assert isinstance(w.table, pd.DataFrame)
    ex = w.quality["excluded"]
    # -1 and None: the bad-value rule of docs/cases.md, before weights' own reasons
    assert (
        ex["ungroupable"],
        ex["negative:total_cost"],
        ex["missing:total_cost"],
        ex["los_nonpositive"],
        ex["cost_nonpositive"],
    ) == (2, 1, 1, 1, 0)
    assert w.quality["n_used"] == 2
    assert w.rw() == pytest.approx({"A1": 0.5, "B1": 1.5})
    keep_los0 = compute_weights(df, trim="none", drop_nonpositive_los=False)
    assert keep_los0.quality["n_used"] == 3


def test_errors():
    with pytest.raises(InputError, match="total_cost"):
        compute_weights(pl.DataFrame({"drg": ["A1"]}))
    with pytest.raises(InputError, match="no case left"):
        compute_weights(pl.DataFrame({"drg": ["0000"], "total_cost": [1.0]}))
    with pytest.raises(InputError, match="blend"):
        compute_weights(w1(), blend="median")
    with pytest.raises(InputError, match=r"^fallback must be 'adrg' or 'none'; got 'drg'$"):
        compute_weights(w1(), fallback="drg")


def test_chinese_column_names_of_adrg_los_and_year_are_read():
    # docs/cases.md aliases: ADRG编码 -> adrg, 住院天数 -> los, 年度 -> year.  W4 with
    # the last Y11 case at 0 days (left out: los_nonpositive), trim none, min_cases 3:
    # M = 13,400 / 9; X11 own 2,200 / M; X13 (2 cases) takes ADRG X1's 12,200 / 7 / M;
    # Y11 (2 cases left, ADRG Y1 too) keeps its own 600 / M
    h = w4().rename({"adrg": "ADRG编码", "total_cost": "住院总费用"})
    h = h.with_columns(住院天数=pl.Series([1.0] * 9 + [0.0]), 年度=pl.lit(2023))
    w = compute_weights(h, trim="none", min_cases=3)
    m = 13_400 / 9
    assert w.quality["excluded"]["los_nonpositive"] == 1
    assert w.quality["years"] == {2023: 7.0}
    assert w.table["source"].to_list() == ["own", "adrg", "own_few"]
    assert w.table["rw"].to_list() == pytest.approx([2_200 / m, 12_200 / 7 / m, 600 / m])
    assert w.table["mean_los"].to_list() == pytest.approx([1.0, 1.0, 1.0])


def test_override_table_rw_that_is_no_number_is_named():
    # the override table's rw is read leniently, so text is reported as the DRG's bad rw
    # (an InputError naming the DRG), not as a polars conversion error
    bad = pl.DataFrame({"drg": ["X11", "X13"], "rw": ["1.2", "abc"]})
    with pytest.raises(InputError, match=r"^override table: rw of DRG 'X13' is missing or not > 0$"):
        compute_weights(w4(), trim="none", min_cases=3, overrides=bad)


# --- properties ---------------------------------------------------------------------------

TRIMS = st.one_of(
    st.just(Trim("none")),
    st.tuples(st.floats(0, 0.2), st.floats(0.8, 1)).map(lambda p: Trim("percentile", p[0], p[1])),
    st.floats(0, 4).map(lambda k: Trim("sd", k=k)),
    st.tuples(st.floats(0, 3), st.floats(0, 3)).map(lambda ab: Trim("iqr", a=ab[0], b=ab[1])),
)


@st.composite
def histories(draw):
    n = draw(st.integers(1, 60))
    drg = draw(st.lists(st.sampled_from(["A11", "A13", "B11", "C19"]), min_size=n, max_size=n))
    cost = draw(
        st.lists(st.one_of(st.floats(1, 1e6), st.sampled_from([100.0, 250.0])), min_size=n, max_size=n)
    )
    year = draw(st.lists(st.sampled_from([2021, 2022, 2023]), min_size=n, max_size=n))
    return pl.DataFrame({"drg": drg, "total_cost": cost, "year": year})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    histories(), TRIMS, st.sampled_from(["means", "sums"]), st.sampled_from([0.5, 3.0, 1e-3, 7.0, 123.456])
)
def test_scaling_costs_leaves_rw_unchanged(h, t, blend, c):
    a = compute_weights(h, trim=t, blend=blend, min_cases=2)
    b = compute_weights(h.with_columns(pl.col("total_cost") * c), trim=t, blend=blend, min_cases=2)
    assert a.table["drg"].to_list() == b.table["drg"].to_list()
    assert b.table["rw"].to_list() == pytest.approx(a.table["rw"].to_list(), rel=1e-9)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), TRIMS)
def test_trimming_never_removes_a_group_silently(h, t):
    w = compute_weights(h, trim=t)
    t_ = w.table
    assert sorted(t_["drg"].to_list()) == sorted(h["drg"].unique().to_list())
    assert (t_["n_kept"] >= 1).all()
    assert t_["rw"].is_not_null().all() and (t_["rw"] > 0).all()
    # every (group, year) cell keeps at least one case; cells kept whole are reported
    whole = set(map(tuple, w.kept_whole.select("drg", "year").rows()))
    assert set(t_.filter("trim_kept_whole")["drg"]) == {d for d, _ in whole}
