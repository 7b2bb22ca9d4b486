"""Settlement done in parts gives the same results as done at once (docs/payment-settlement.md, "Memory").

The memory-saving steps of ``settle`` work on parts of the cases: the money
pool by pool in ranges of whole hospitals (``casemix.payment.money.PART_CASES``),
the case rules in slices of rows (``casemix._case_rules.SLICE_ROWS``), yuan
columns read slice by slice (``casemix.payment.inputs.SLICE_ROWS``), monthly
point values gathered per pool.  Each is checked here against the same
computation in one piece, to the fen and to the bit.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import casemix._case_rules as case_rules
import casemix.payment.inputs as inputs
import casemix.payment.money as money
from casemix.budget import Band, Corridors, Elastic, Policy, Pool
from casemix.errors import InputError, PolicyError
from casemix.payment.monthly import MonthlyConfig, monthly_presettlement
from casemix.payment.sums import pool_sums
from casemix.settle import case_points, pay_cases, settle

TABLES = ("cases", "hospitals", "region", "pool_hospitals", "pool_region", "monthly", "annual")


def _region(data, n: int) -> pl.DataFrame:
    cost = data.draw(st.lists(st.integers(0, 10**7).map(lambda f: f / 100), min_size=n, max_size=n))
    share = data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    return pl.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(n)],
            "hospital_id": data.draw(
                st.lists(st.sampled_from(["H1", "H2", "H3", "H4"]), min_size=n, max_size=n)
            ),
            "insurance_type": data.draw(st.lists(st.sampled_from(["职工", "居民"]), min_size=n, max_size=n)),
            "drg": data.draw(st.lists(st.sampled_from(["A", "B", "0000"]), min_size=n, max_size=n)),
            "pts": data.draw(st.lists(st.floats(0, 1e4), min_size=n, max_size=n)),
            "total_cost": cost,
            "patient_share": [round(c * f, 2) for c, f in zip(cost, share, strict=True)],
            "fund_paid": [round(c * (1 - f), 2) for c, f in zip(cost, share, strict=True)],
            "discharge_date": data.draw(
                st.lists(
                    st.dates(min_value=date(2024, 1, 1), max_value=date(2024, 12, 31)),
                    min_size=n,
                    max_size=n,
                )
            ),
        }
    )


def _same(a, b) -> None:
    for name in TABLES:
        x, y = getattr(a, name), getattr(b, name)
        assert x.columns == y.columns, name
        for c in x.columns:
            # floats to the bit: the parts add the same numbers in the same order
            assert x[c].equals(y[c]), f"{name}.{c}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_money_in_parts_of_whole_hospitals_is_the_money_at_once(data):
    n = data.draw(st.integers(1, 40))
    cases = _region(data, n)
    policy = Policy(
        pools={
            "职工": Pool(budget=data.draw(st.integers(0, 10**8))),
            "居民": Pool(budget=data.draw(st.integers(0, 10**8))),
        },
        point_form=data.draw(st.sampled_from(["actual", "ratio"])),
        fund_ratio=data.draw(st.floats(0.1, 1)),
        elastic=Elastic(enabled=data.draw(st.booleans()), base_share=0.75, cap=data.draw(st.booleans())),
        corridors=Corridors(surplus=(Band(0.1, 0.5),), overspend=(Band(0.1, 0.3),)),
        monthly=MonthlyConfig(enabled=True, prepay_ratio=0.9, deposit_share=0.05),
    )
    vol = {h: data.draw(st.floats(1, 1e5)) for h in ("H1", "H2", "H3", "H4")}
    part = data.draw(st.integers(1, 8))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(money, "PART_CASES", 10**9)
        try:
            whole = settle(cases, policy, points="pts", base_volume=vol)
        except Exception as exc:  # the same error either way
            mp.setattr(money, "PART_CASES", part)
            with pytest.raises(type(exc), match="^" + __import__("re").escape(str(exc)) + "$"):
                settle(cases, policy, points="pts", base_volume=vol)
            return
        mp.setattr(money, "PART_CASES", part)
        parts = settle(cases, policy, points="pts", base_volume=vol)
    _same(whole, parts)


def test_money_parts_cover_every_case_once():
    # 3 hospitals × 2 pools, PART_CASES 2: a part begins at each hospital whose cases before it
    # (in its pool) pass a multiple of 2
    pool = np.array([0, 1, 0, 0, 1, 1, 0, 0, 0], dtype=np.int8)
    hosp = np.array([0, 0, 1, 1, 2, 2, 2, 0, 1])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(money, "PART_CASES", 2)
        part, ranges = money._parts(pool, hosp, 2, 3)
    # pool 0: hospitals 0, 1, 2 have 2, 3, 1 cases, before them 0, 2, 5 → parts {0}, {1}, {2};
    # pool 1: 1, 0, 2 cases, before them 0, 1, 1 → one part {0, 1, 2}
    assert ranges == [[(0, (0, 1)), (1, (1, 2)), (2, (2, 3))], [(3, (0, 3))]]
    assert part is not None
    assert part.tolist() == [0, 3, 1, 1, 3, 3, 2, 0, 1]
    # one pool in one part: no part codes, every case at once
    assert money._parts(np.zeros(4, dtype=np.int8), np.array([0, 1, 0, 1]), 1, 2) == (None, [[(0, (0, 2))]])
    # H0's one case comes in the second slice of 2 cases: counted once (1, 2 cases: one part)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(money, "PART_CASES", 2)
        assert money._parts(np.zeros(3, dtype=np.int8), np.array([1, 1, 0]), 1, 2) == (None, [[(0, (0, 2))]])


def test_rules_in_slices_are_the_rules_at_once():
    rng = np.random.default_rng(3)
    n = 50
    m = rng.uniform(100, 1000, n)
    w = pl.DataFrame(
        {
            "rule_cost": m * rng.choice([0.2, 1.0, 5.0], n),
            "ref_cost": m,
            "group_mean": m,
            "base_points": rng.uniform(10, 300, n),
            "discharge": rng.choice([1.0, 5.0], n),
            "los": rng.integers(1, 20, n).astype(np.float64),
            "k": np.full(n, 3.0),
            "low_ratio": np.full(n, 0.4),
            "special": rng.random(n) < 0.1,
            "ungroupable": rng.random(n) < 0.1,
            "has_weight": rng.random(n) < 0.9,
            "special_points": rng.uniform(0, 100, n),
            "readmission": rng.random(n) < 0.1,
            # a null coefficient gives null points: from that slice on the frames' way
            "coefficient": pl.Series([*rng.uniform(0.8, 1.2, 30), None, *rng.uniform(0.8, 1.2, n - 31)]),
            "addon_points": np.zeros(n),
        }
    )
    policy = Policy(budget=1000)
    kw = dict(short_stay_ok=True, all_case_cost=500.0)
    once = case_rules.assign_rules(w, policy, **kw)
    assert once["adjusted_points"].null_count() == 1
    for rows, frame in ((7, w), (7, w.with_columns(pl.col("coefficient").fill_null(1.0))), (5, w.head(5))):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(case_rules, "SLICE_ROWS", rows)
            got = case_rules.assign_rules(frame, policy, **kw)
        want = case_rules.assign_rules(frame, policy, **kw)
        assert got.columns == want.columns
        for c in got.columns:
            assert got[c].equals(want[c]), c


def test_yuan_columns_slice_by_slice():
    ids = pl.Series([f"c{i}" for i in range(7)])
    df = pl.DataFrame({"fund_paid": [1.005, 2.0, 0.125, 3.0, 4.5, 0.0, 12.345]})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(inputs, "SLICE_ROWS", 3)
        assert inputs.yuan_column_fen(df, "fund_paid", ids, what="x").tolist() == [
            101,
            200,
            13,
            300,
            450,
            0,
            1235,
        ]
        # a bad value in a later slice is named by its row in the whole column
        bad = df.with_columns(pl.Series("fund_paid", [1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 1.0]))
        with pytest.raises(InputError, match=r"is negative at row 14 \(case_id 'c4'\)"):
            inputs.yuan_column_fen(bad, "fund_paid", ids, what="x", offset=10)
        # so are a missing and an out-of-range one (each check names rows the same way)
        for value, message in ((None, "missing or not a number at"), (1e13, "at")):
            bad = df.with_columns(pl.Series("fund_paid", [1.0, 2.0, 3.0, 4.0, value, 0.0, 1.0]))
            with pytest.raises(InputError, match=rf"^fund_paid \(x\) {message} row 14 \(case_id 'c4'\)"):
                inputs.yuan_column_fen(bad, "fund_paid", ids, what="x", offset=10)


def test_pool_sums_are_exact_per_pool_and_group():
    rng = np.random.default_rng(5)
    pool = rng.integers(0, 3, 1000).astype(np.int8)
    group = rng.integers(0, 7, 1000)
    fen = rng.integers(0, 10**12, 1000)
    want = np.zeros((3, 7), dtype=np.int64)
    np.add.at(want, (pool.astype(np.int64), group), fen)
    assert (pool_sums(pool, group, fen, 3, 7) == want).all()


def test_monthly_point_value_per_pool_is_the_per_case_value():
    cases = pl.DataFrame(
        {
            "hospital_id": ["H1", "H1", "H2", "H2"],
            "discharge_date": [
                date(2024, 1, 5),
                date(2024, 2, 1),
                date(2024, 1, 9),
                date(2024, 1, 30),
            ],
        }
    )
    points = np.array([100.0, 37.5, 12.25, 80.0])
    pv = np.array([9.87, 11.3])
    codes = np.array([0, 1, 1, 0], dtype=np.int8)
    cfg = MonthlyConfig(enabled=True, prepay_ratio=0.9)
    patient = np.array([1000, 0, 250, 99])
    a = monthly_presettlement(cases, points, pv[codes], cfg, patient_share_fen=patient)
    b = monthly_presettlement(cases, points, pv, cfg, patient_share_fen=patient, pool_codes=codes)
    assert a.equals(b)
    # by hand, H1 January: 100 points × 9.87 = 987 yuan = 98,700 fen − 1,000 patient = 97,700; × 0.9
    assert a.row(0, named=True)["prepaid_fen"] == 87_930


def test_lean_case_points_pay_as_the_full_ones():
    rng = np.random.default_rng(11)
    n = 60
    cost = np.round(rng.uniform(100, 9000, n), 2)
    cases = pl.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(n)],
            "hospital_id": rng.choice(["H1", "H2", "H3"], n),
            "insurance_type": rng.choice(["职工", "居民"], n),
            "drg": rng.choice(["A", "B", "0000"], n),
            "pts": rng.uniform(0, 500, n),
            "total_cost": cost,
            "patient_share": np.round(cost * 0.2, 2),
            "fund_paid": np.round(cost * 0.8, 2),
        }
    )
    policy = Policy(
        pools={"职工": Pool(budget=200_000), "居民": Pool(budget=150_000)},
        corridors=Corridors(surplus=(Band(0.1, 0.5),), overspend=(Band(0.1, 0.3),)),
    )
    full = case_points(cases, policy, points="pts")
    lean = case_points(cases, policy, points="pts", lean=True)
    assert lean.cost_fen.size == 0 and lean.fund_cost_fen is None and "rw" not in lean.rules.columns
    assert lean.pool.dtype == np.int8 and full.pool.dtype == np.int64
    # amounts are fen as int64 in either form, even the lean form's empty per-case arrays
    for cp in (full, lean):
        assert cp.cost_fen.dtype == cp.at_cost_fen.dtype == np.int64
    # the full form reads fund_paid per case; without it the corridors name themselves
    with pytest.raises(PolicyError, match=r"^corridors \(结余留用/超支分担\) needs column fund_paid"):
        case_points(cases.drop("fund_paid"), policy, points="pts")
    a, b = pay_cases(full, policy), pay_cases(lean, policy)
    for name in ("cases", "hospitals", "pool_hospitals", "pool_region"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.columns == y.columns, name
        for c in x.columns:
            assert x[c].equals(y[c]), f"{name}.{c}"
    # and settle (the lean form) gives those cases
    s = settle(cases, policy, points="pts")
    assert s.cases.drop("left_out").equals(a.cases.drop("left_out"))
    # case points with no rows to restore (a Dask partition's): the cases as kept, no left_out
    bare = pay_cases(dataclasses.replace(lean, restore=None), policy).cases
    assert "left_out" not in bare.columns
    assert bare.equals(a.cases.select(bare.columns))


def test_month_numbers_from_the_day_numbers_are_polars_calendar_months():
    from casemix.payment.monthly import _month_numbers

    days = [date(1969, 12, 31), date(1600, 2, 29), date(2024, 12, 31), date(2400, 3, 1), date(1970, 1, 1)]
    cases = pl.DataFrame({"discharge_date": days})
    d = pl.col("discharge_date")
    want = cases.select(d.dt.year().cast(pl.Int32) * 12 + d.dt.month().cast(pl.Int32) - 1).to_series()
    got = _month_numbers(cases)
    assert got.dtype == pl.Int32
    assert (
        got.to_list()
        == want.to_list()
        == [1969 * 12 + 11, 1600 * 12 + 1, 2024 * 12 + 11, 2400 * 12 + 2, 1970 * 12]
    )


def test_integer_hospital_levels_settle_as_their_text():
    # prepare reads an integer hospital_level column as given (no text copy of it): the same
    # levels, coefficients and money as the same levels given as text; a left-out row keeps
    # the rows aligned
    n = 30
    rng = np.random.default_rng(2)
    cases = pl.DataFrame(
        {
            "hospital_id": rng.choice(["H1", "H2", "H3"], n),
            "hospital_level": pl.Series(rng.choice([1, 2, 3], n), dtype=pl.Int8),
            "drg": rng.choice(["A", "B"], n),
            "pts": rng.uniform(1, 300, n),
            "total_cost": [None, *np.round(rng.uniform(100, 5000, n - 1), 2)],
        }
    )
    policy = Policy(budget=50_000, level_coefficients={"3": 1.2, "2": 1.0, "1": 0.8})
    as_int = settle(cases, policy, points="pts")
    as_text = settle(cases.with_columns(pl.col("hospital_level").cast(pl.String)), policy, points="pts")
    assert as_int.cases["coefficient"].to_list()[1:] == as_text.cases["coefficient"].to_list()[1:]
    assert sorted(set(as_int.cases["coefficient"].drop_nulls().to_list())) == [0.8, 1.0, 1.2]
    for name in ("hospitals", "pool_hospitals"):
        assert getattr(as_int, name).equals(getattr(as_text, name)), name
    assert as_int.cases.drop("hospital_level").equals(as_text.cases.drop("hospital_level"))
