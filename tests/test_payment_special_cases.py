"""特例单议 across the 统筹区 (casemix.payment.special_cases): worked example SC in
docs/payment-settlement.md, reproduced by hand, and properties of the approval."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemix.errors import PolicyError
from casemix.payment.special_cases import (
    SpecialCasesConfig,
    applications,
    approval_notes,
    approve,
    cap,
    cost_points,
    item_payment_fen,
)
from strategies import rule_cases


def _region():
    """SC: 60 cases, H1 50 and H2 10; every case's standard 10,000 yuan.

    Costs: H1-01 35,000 (3.5×), H1-02 40,000 (4.0×), H2-01 50,000 (5.0×),
    H2-02 32,000 (3.2×), H2-07 10,000 (1.0×, listed), the rest 9,000.
    """
    ids = [f"H1-{i:02d}" for i in range(1, 51)] + [f"H2-{i:02d}" for i in range(1, 11)]
    cost = np.full(60, 9_000.0)
    special = {"H1-01": 35_000, "H1-02": 40_000, "H2-01": 50_000, "H2-02": 32_000, "H2-07": 10_000}
    for cid, c in special.items():
        cost[ids.index(cid)] = c
    return np.array(ids), cost, np.full(60, 10_000.0)


def test_worked_example_sc_region_cap_and_cost_ratio_order():
    ids, cost, std = _region()
    cfg = SpecialCasesConfig(case_ids=("H2-07",), cost_multiple=3.0)
    applied = applications(ids, cost, std, None, cfg)
    assert sorted(ids[applied]) == ["H1-01", "H1-02", "H2-01", "H2-02", "H2-07"]
    n = cap(60, cfg.share("drg"))
    assert n == 3  # ⌊0.05 × 60⌋, across the region
    ok = approve(applied, cost, std, ids, n, order=cfg.order)
    # 5.0× H2-01, 4.0× H1-02, 3.5× H1-01 — H2 gets one although a per-hospital cap
    # (⌊0.05 × 10⌋ = 0) would have given it none
    assert sorted(ids[ok]) == ["H1-01", "H1-02", "H2-01"]
    listed = approve(applied, cost, std, ids, n, order="listed", listed=cfg.case_ids)
    assert sorted(ids[listed]) == ["H1-02", "H2-01", "H2-07"]


def test_dip_cap_is_five_per_mille_of_the_region():
    cfg = SpecialCasesConfig(cost_multiple=2.0)
    assert cap(60, cfg.share("dip")) == 0  # ⌊0.3⌋
    assert cap(400, cfg.share("dip")) == 2
    assert cap(100, 0.05) == 5 and cap(99, 0.05) == 4
    assert cap(1000, SpecialCasesConfig(cap_share=0.029).share("dip")) == 29


def test_ties_by_case_id_then_no_standard_last():
    ids = np.array(["B", "A", "C", "D"])
    cost = np.array([30.0, 30.0, 90.0, 1e9])
    std = np.array([10.0, 10.0, 30.0, np.nan])  # B, A, C all 3×; D has no standard
    applied = np.ones(4, bool)
    assert list(ids[approve(applied, cost, std, ids, 2)]) == ["B", "A"]  # row order kept
    order = [ids[approve(applied, cost, std, ids, k)] for k in range(1, 5)]
    assert [sorted(o) for o in order] == [["A"], ["A", "B"], ["A", "B", "C"], ["A", "B", "C", "D"]]


def test_no_approval_when_the_cap_is_zero_or_negative():
    ids = np.array(["A", "B", "C"])
    applied, cost, std = np.ones(3, bool), np.array([30.0, 20.0, 10.0]), np.full(3, 10.0)
    for n in (0, -1):
        assert not approve(applied, cost, std, ids, n).any()


def test_standards_of_zero_or_below_one():
    # a standard of 0 counts as none (last); one of 0.5 doubles the cost's ratio
    ids = np.array(["A", "B", "C"])
    cost, std = np.array([1_000.0, 10.0, 15.0]), np.array([0.0, 0.5, 1.0])  # ratios none, 20, 15
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a standard of 0 is never divided by
        order = [ids[approve(np.ones(3, bool), cost, std, ids, k)] for k in (1, 2)]
    assert [list(o) for o in order] == [["B"], ["B", "C"]]


def test_infinite_cost_and_standard_rank_last_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = approve(np.ones(2, bool), np.array([np.inf, 5.0]), np.array([np.inf, 1.0]), ["A", "B"], 1)
    assert list(ok) == [False, True]


def test_ties_by_case_id_in_text_order_for_numeric_ids():
    ids = np.array([10, 9])  # as text "10" < "9"
    ok = approve(np.ones(2, bool), np.array([20.0, 20.0]), np.array([10.0, 10.0]), ids, 1)
    assert list(ok) == [True, False]


def test_criteria_add_to_the_listed_cases():
    # a listed case with a short stay still applies when min_los is set, as does a costly one
    # (E: a cost of exactly 2 x its standard and a stay of exactly 30 days exceed neither)
    ids = np.array(["A", "B", "C", "D", "E"])
    cost, std = np.array([10.0, 50.0, 10.0, 10.0, 20.0]), np.full(5, 10.0)
    los = np.array([2.0, 2.0, 40.0, 2.0, 30.0])
    cfg = SpecialCasesConfig(case_ids=("A",), cost_multiple=2.0, min_los=30)
    assert list(applications(ids, cost, std, los, cfg)) == [True, True, True, False, False]


def test_listed_numeric_case_ids_match_numeric_id_columns():
    cfg = SpecialCasesConfig(case_ids=(17,))  # a TOML integer: the id "17"
    ids = np.array([17, 18])
    assert list(applications(ids, np.ones(2), np.ones(2), None, cfg)) == [True, False]


def test_unknown_approval_order_is_named():
    with pytest.raises(ValueError, match=r"^unknown approval order 'random'$"):
        approve(np.ones(1, bool), np.ones(1), np.ones(1), ["A"], 1, order="random")


def test_stay_criterion_needs_los():
    ids, cost, std = _region()
    cfg = SpecialCasesConfig(min_los=60)
    with pytest.raises(
        PolicyError,
        match=r"^special_cases\.min_los needs the column los \(实际住院天数\), which the cases lack; "
        "add it or remove min_los$",
    ):
        applications(ids, cost, std, None, cfg)
    los = np.zeros(60)
    los[5] = 61
    los[6] = 60
    assert list(np.flatnonzero(applications(ids, cost, std, los, cfg))) == [5]


def test_item_payment_and_cost_points_to_the_fen():
    # 43,210.57 yuan × 0.85 = 36,728.9845 → 3,672,898 fen; 12,345.67 × 0.5 = 6,172.835 → 617,284
    assert list(item_payment_fen(np.array([4_321_057, 1_234_567]), 0.85)) == [3_672_898, 1_049_382]
    assert list(item_payment_fen(np.array([1_234_567]), 0.5)) == [617_284]
    # M = 10,000 yuan per RW, 100 points per RW → 100 yuan per point
    assert list(cost_points(np.array([30_000.0, 12_345.0]), 100.0)) == [300.0, 123.45]
    with pytest.raises(PolicyError, match="pay = 'item'"):
        cost_points(np.array([1.0]), float("nan"))


def test_float32_amounts_are_computed_in_float64():
    # 8,690,252 fen × 0.7 = 6,083,176.4 → 6,083,176; in float32 the product rounds to 6,083,177
    assert list(item_payment_fen(np.array([8_690_252], dtype=np.float32), 0.7)) == [6_083_176]
    points = cost_points(np.array([0.1], dtype=np.float32), 3.0)
    assert points.dtype == np.float64 and points[0] == float(np.float32(0.1)) / 3.0


@pytest.mark.parametrize("bad", [0.0, -100.0, float("inf"), float("nan")])
def test_cost_points_needs_a_positive_finite_cost_per_point(bad):
    with pytest.raises(
        PolicyError,
        match=r"^special_cases\.pay = 'points' needs a positive all-case reference cost per point, "
        rf"got {bad!r}; give mean_cost in the weights or use pay = 'item'$",
    ):
        cost_points(np.array([1.0]), bad)


def test_cost_points_below_one_yuan_per_point():
    assert list(cost_points(np.array([3.0, 1.0]), 0.5)) == [6.0, 2.0]


def test_approval_notes_count_the_listed_cases_not_found():
    cfg = SpecialCasesConfig(case_ids=("A", "B", "C", "B"))  # 3 distinct listed cases
    cap_note = "special_cases: 2 of 5 application(s) approved (cap ⌊0.05 × 40⌋ = 2)"
    kw = dict(n_cases=40, n_applied=5, n_approved=2)
    assert approval_notes(cfg, "drg", listed_found=1, **kw) == [
        "2 listed special case(s) not among the cases",
        cap_note,
    ]
    assert approval_notes(cfg, "drg", listed_found=3, **kw) == [cap_note]


def test_share_names_an_unknown_scheme():
    assert SpecialCasesConfig().share("dip") == 0.005 and SpecialCasesConfig(cap_share=0.1).share("x") == 0.1
    with pytest.raises(PolicyError, match=r"^special_cases: scheme must be 'drg' or 'dip', got 'drgs'$"):
        SpecialCasesConfig().share("drgs")


def test_config_errors_name_the_table_and_key():
    with pytest.raises(PolicyError, match=r"p\.toml, key special_cases\.cap_share"):
        SpecialCasesConfig.from_table({"cap_share": 1.5}, source="p.toml")
    # without a source the message says where the table came from: a policy object
    with pytest.raises(
        PolicyError,
        match=r"^<policy>, key special_cases\.capshare: unknown key .special_cases.capshare.; did you mean .cap_share.",
    ):
        SpecialCasesConfig.from_table({"capshare": 0.05})
    with pytest.raises(PolicyError, match="order"):
        SpecialCasesConfig.from_table({"order": "random"})
    assert not SpecialCasesConfig().active and SpecialCasesConfig(min_los=30).active


@settings(max_examples=60, deadline=None)
@given(rule_cases(), st.floats(0, 0.5), st.floats(0.5, 4))
def test_approval_properties(r, share, k):
    ids = np.array(r["case_id"])
    cost, std = np.array(r["cost"]), np.array(r["standard"])
    applied = applications(ids, cost, std, None, SpecialCasesConfig(cost_multiple=k))
    n = cap(len(ids), share)
    ok = approve(applied, cost, std, ids, n)
    assert ok.sum() == min(int(applied.sum()), n)  # the cap binds, nothing more
    assert not (ok & ~applied).any()  # only applications
    ratio = cost / std
    if ok.any() and (applied & ~ok).any():  # the stated order
        assert ratio[ok].min() >= ratio[applied & ~ok].max()
    perm = np.random.default_rng(0).permutation(len(ids))  # row order does not matter
    ok2 = approve(applied[perm], cost[perm], std[perm], ids[perm], n)
    assert set(ids[perm][ok2]) == set(ids[ok])
