"""特例单议 across the 统筹区 (casemix.payment.special_cases): worked example SC in
docs/payment-settlement.md, reproduced by hand, and properties of the approval."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemix.errors import PolicyError
from casemix.payment.special_cases import (
    SpecialCasesConfig,
    applications,
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


def test_stay_criterion_needs_los():
    ids, cost, std = _region()
    cfg = SpecialCasesConfig(min_los=60)
    with pytest.raises(PolicyError, match="min_los.*los"):
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


def test_config_errors_name_the_table_and_key():
    with pytest.raises(PolicyError, match=r"p\.toml, key special_cases\.cap_share"):
        SpecialCasesConfig.from_table({"cap_share": 1.5}, source="p.toml")
    with pytest.raises(PolicyError, match="unknown key .special_cases.capshare.; did you mean .cap_share."):
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
