"""Policy keys with no other test of their effect, each set to a non-default value (issue 20).

Every worked example here is the settlement of docs/payment-settlement.md computed by hand:
P = RW × points_per_rw, m the group's mean cost, f the hospital coefficient.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from casemix.budget import HighCost, Policy, ShortStay
from casemix.payment.monthly import MonthlyConfig, annual_clearing
from casemix.payment.outliers import OutliersConfig
from casemix.settle import settle

W = pl.DataFrame(
    {"drg": ["A1", "B1"], "rw": [1.0, 2.0], "mean_cost": [10_000.0, 20_000.0], "mean_los": [5.0, 4.0]}
)


def _policy(**changes) -> Policy:
    p = Policy(
        budget=100_000,
        points_per_rw=100,
        level_coefficients={"3": 1.0, "2": 0.9},
        outliers=OutliersConfig(reference="group_mean"),
    )
    return p.replace(**changes) if changes else p


def _case(**cols) -> pl.DataFrame:
    base = {
        "case_id": ["c1"],
        "hospital_id": ["H1"],
        "hospital_level": ["2"],
        "drg": ["B1"],
        "total_cost": [8_000.0],
        "los": [1.0],
        "discharge": [5],
    }
    base.update({k: [v] for k, v in cols.items()})
    return pl.DataFrame(base)


def _rule_points(cases: pl.DataFrame, policy: Policy) -> tuple[str, float]:
    c = settle(cases, policy, weights=W).cases
    return c["rule"][0], c["adjusted_points"][0]


def test_high_cost_k_default_prices_a_level_not_listed():
    # level "1" is not in k = {3: 3, 2: 2}: its multiple is k_default. Cost 25,000 in A1
    # (m = 10,000, c/m = 2.5): the default k_default = 3 keeps it normal (P = 100, f = 1 for
    # an unlisted level); k_default = 2 makes it high cost: 100 + 1 × (2.5 − 2) × 100 = 150
    case = _case(hospital_level="1", drg="A1", total_cost=25_000.0, discharge=1)
    assert _rule_points(case, _policy()) == ("normal", pytest.approx(100.0))
    got = _rule_points(case, _policy(high_cost=HighCost(k_default=2.0)))
    assert got == ("high_cost", pytest.approx(150.0))


@pytest.mark.parametrize(
    "short_stay, rule, points",
    [
        # default: discharge 5 (death), LOS 1 <= 2: P × min(c/m, 1) = 200 × 0.4 = 80, no
        # hospital coefficient on an incomplete stay (short_stay.coefficient = false)
        (ShortStay(), "short_stay", 80.0),
        # with the coefficient: × 0.9
        (ShortStay(coefficient=True), "short_stay", 72.0),
        # LOS 1 > max_los 0.5: not a short stay; c = 0.4 m is not below 0.4 m: normal 200 × 0.9
        (ShortStay(max_los=0.5), "normal", 180.0),
        # discharge 5 no longer counts
        (ShortStay(discharge=(2, 3)), "normal", 180.0),
        # LOS basis: P × min(los / mean_los, 1) = 200 × 1/4 = 50
        (ShortStay(basis="los"), "short_stay", 50.0),
        # max_los 10 with LOS 6: 200 × min(6/4, 1) = 200 under the LOS basis, still a short stay
        (ShortStay(max_los=10, basis="los"), "short_stay", 200.0),
    ],
)
def test_short_stay_keys(short_stay, rule, points):
    los = 6.0 if short_stay.max_los == 10 else 1.0
    assert _rule_points(_case(los=los), _policy(short_stay=short_stay)) == (rule, pytest.approx(points))


def test_monthly_default_score_and_full_score():
    # deposits 82,500 (H1) and 19,938 (H2) fen as in worked example M; H1 scored 90, H2 not
    # listed: default_score 80.  Returned = deposit × min(score / full_score, 1) with full 95:
    # H1 82,500 × 90/95 = 78,157.89 → 78,158; H2 19,938 × 80/95 = 16,789.89 → 16,790.
    # With the defaults (default_score 100, full_score 100): H1 90% = 74,250, H2 all of it.
    monthly = pl.DataFrame(
        {
            "hospital_id": ["H1", "H2"],
            "monthly_fen": [1_562_862, 313_735],
            "audit_fen": [50_000, 1_234],
        }
    )
    settled = pl.DataFrame({"hospital_id": ["H1", "H2"], "settled_fen": [1_700_000, 400_001]})
    cfg = MonthlyConfig(enabled=True, deposit_share=0.05, scores={"H1": 90}, pass_score=60)
    c = annual_clearing(settled, monthly, cfg)
    assert c["deposit_fen"].to_list() == [82_500, 19_938]
    assert c["score"].to_list() == [90.0, 100.0]
    assert c["deposit_returned_fen"].to_list() == [74_250, 19_938]
    c = annual_clearing(settled, monthly, cfg.model_copy(update={"default_score": 80, "full_score": 95}))
    assert c["score"].to_list() == [90.0, 80.0]
    assert c["deposit_returned_fen"].to_list() == [78_158, 16_790]
    # a default score below pass_score returns nothing
    c = annual_clearing(settled, monthly, cfg.model_copy(update={"default_score": 59.9}))
    assert c["deposit_returned_fen"].to_list() == [74_250, 0]


# --- DIP settle options (casemix.dip.settle) --------------------------------------------------

DIP_MEANS = pl.DataFrame({"dip_group": ["G1", "G2"], "mean_cost": [10_000.0, 5_000.0]})


def _dip_cases(**extra) -> pl.DataFrame:
    # two normal-cost cases (cost = group mean): score 1000 in G1 (H1), 500 in G2 (H2)
    return pl.DataFrame(
        {
            "case_id": ["1", "2"],
            "hospital_id": ["H1", "H2"],
            "dip_group": ["G1", "G2"],
            "dip_type": ["core", "core"],
            "dip_score": [1000.0, 500.0],
            "total_cost": [10_000.0, 5_000.0],
            "discharge_date": ["2024-01-05", "2024-02-05"],
            **extra,
        }
    )


def _dip(cases: pl.DataFrame, **kw):
    import casemix.dip as dip

    return dip.settle(cases, "1000.00", group_means=DIP_MEANS, low_reference="mean", **kw)


def test_dip_coefficient_by_and_same_rate_groups():
    cases = _dip_cases(unit=["U1", "U2"])
    # coefficients keyed by the hospital (default by): H1 × 1.2 -> 1200, 500
    assert _dip(cases, hospital_coefficients={"H1": 1.2}).cases["dip_case_score"].to_list() == [1200.0, 500.0]
    # keyed by the unit column: U1 × 1.2; the default by (hospital_id) does not know U1
    by_unit = _dip(cases, hospital_coefficients={"U1": 1.2}, coefficient_by="unit")
    assert by_unit.cases["dip_case_score"].to_list() == [1200.0, 500.0]
    assert _dip(cases, hospital_coefficients={"U1": 1.2}).cases["dip_case_score"].to_list() == [1000.0, 500.0]
    # G1 paid alike at every level: coefficient 1
    same = _dip(cases, hospital_coefficients={"H1": 1.2}, same_rate_groups=("G1",))
    assert same.cases["dip_case_score"].to_list() == [1000.0, 500.0]


def test_dip_prepayment_share_and_month_col():
    # year-start value 0.5 yuan/point, fund ratio 1: month value = score × 0.5 × share;
    # 90% (default): 1000 × 0.5 × 0.9 = 450.00 yuan (H1, January), 500 × 0.5 × 0.9 = 225.00 (H2)
    r = _dip(_dip_cases(), year_start_value=0.5)
    assert r.monthly["prepaid_fen"].to_list() == [45_000, 22_500]
    # 50%: 250.00 and 125.00
    r = _dip(_dip_cases(), year_start_value=0.5, prepayment_share=0.5)
    assert r.monthly["prepaid_fen"].to_list() == [25_000, 12_500]
    assert r.hospitals["prepaid_fen"].to_list() == [25_000, 12_500]
    # the month read from another column
    moved = (
        _dip_cases()
        .rename({"discharge_date": "out"})
        .with_columns(pl.Series("out", [dt.date(2024, 3, 1)] * 2))
    )
    r = _dip(moved, year_start_value=0.5, month_col="out")
    assert r.monthly["prepaid_fen"].to_list() == [45_000, 22_500]
    assert r.monthly["month"].to_list() == [3, 3]
    assert _dip(_dip_cases(), year_start_value=0.5).monthly["month"].to_list() == [1, 2]


def test_dip_mapping_names_the_cost_column():
    cases = _dip_cases().rename({"total_cost": "fee"}).with_columns(pl.Series("fee", [30_000.0, 5_000.0]))
    # fee 30,000 read as the cost: 3 × the G1 mean -> high cost, 1000 × ((3 − 2) + 1) = 2000
    r = _dip(cases, mapping={"fee": "total_cost"})
    assert r.cases["dip_case_score"].to_list() == [2000.0, 500.0]


def test_new_tech_cost_multiple_and_min_share():
    from casemix.payment.new_tech import NewTechConfig, drg_exclusion

    # worked example NT: standard 20,000; (cost, new-tech cost) A 100k/70k, B 100k/60k,
    # C 39k/30k, D 40k/30k. Defaults (2 × standard = 40k, share > 64%): only A.
    std = np.full(4, 20_000.0)
    cost = np.array([100_000.0, 100_000.0, 39_000.0, 40_000.0])
    tech = np.array([70_000.0, 60_000.0, 30_000.0, 30_000.0])

    def eligible(**kw):
        return drg_exclusion(cost, tech, std, NewTechConfig(enabled=True, **kw))[0].tolist()

    assert eligible() == [True, False, False, False]
    # share > 50%: B's 60% now counts; C and D still not above 40k
    assert eligible(min_share=0.5) == [True, True, False, False]
    # 1.95 × 20,000 = 39,000: D (40k, 75%) is above it, C (39k) is not
    assert eligible(cost_multiple=1.95) == [True, False, False, True]
