"""The payment rules through the public settle API and `casemix settle`: worked example W
in docs/payment-settlement.md, reproduced to the fen."""

from __future__ import annotations

import polars as pl
import pytest
from click.testing import CliRunner

from casemix.budget import Policy
from casemix.errors import PolicyError
from casemix.payment.monthly import MonthlyConfig
from casemix.payment.new_tech import NewTechConfig
from casemix.payment.outliers import OutliersConfig
from casemix.payment.special_cases import SpecialCasesConfig
from casemix.settle import settle

WEIGHTS = pl.DataFrame({"drg": ["A1", "B1"], "rw": [1.0, 2.0], "mean_cost": [10_000.0, 20_000.0]})


def w_cases() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "case_id": ["N1", "N2", "N3", "N4"],
            "hospital_id": ["H1", "H1", "H2", "H2"],
            "drg": ["A1", "B1", "B1", "A1"],
            "total_cost": [9_000.0, 80_000.0, 90_000.0, 45_000.0],
            "new_tech_cost": [0.0, 56_000.0, 0.0, 0.0],
            "discharge_date": ["2024-01-20", "2024-02-03", "2024-01-05", "2024-01-28"],
            "audit_deduction": [0.0, 100.0, 0.0, 0.0],
        }
    )


def w_policy(**changes) -> Policy:
    p = Policy(
        budget="300000",
        name="W",
        points_per_rw=100,
        special=SpecialCasesConfig(cost_multiple=4.0, cap_share=0.25, fund_ratio=0.9),
        new_tech=NewTechConfig(enabled=True),
        monthly=MonthlyConfig(
            enabled=True, point_value=250.0, prepay_ratio=0.9, deposit_share=0.05, scores={"H2": 80}
        ),
    )
    return p.replace(**changes) if changes else p


def test_worked_example_w_rules_and_money():
    s = settle(w_cases(), w_policy(), weights=WEIGHTS)
    c = s.cases
    # N2: 80,000 > 2 × 20,000 and new tech 70% → 5,600,000 fen outside; 24,000 left: normal
    # N3 (4.5×) and N4 (4.5×) apply (N2 at 4.0× does not), cap ⌊0.25 × 4⌋ = 1, tie → case
    # id: N3 by item × 0.9
    assert c["rule"].to_list() == ["normal", "normal", "special", "high_cost"]
    assert c["adjusted_points"].to_list() == pytest.approx([100, 200, 0, 250])
    # point money 30,000,000 − 5,600,000 − 8,100,000 = 16,300,000 over 550 points
    assert c["payment_fen"].to_list() == [2_963_636, 11_527_273, 8_100_000, 7_409_091]
    assert int(c["payment_fen"].sum()) == 30_000_000
    assert any("1 of 2 application(s) approved" in n for n in s.notes)


def test_worked_example_w_monthly_and_clearing():
    s = settle(w_cases(), w_policy(), weights=WEIGHTS)
    m = s.monthly
    assert m.select("hospital_id", "month").rows() == [
        ("H1", "2024-01"),
        ("H1", "2024-02"),
        ("H2", "2024-01"),
    ]
    # 100 × 250 = 25,000 yuan → 2,250,000 prepaid; 200 × 250 → 4,500,000 − 10,000 audit;
    # H2: N3 has no points (paid by item), N4 250 × 250 → 5,625,000
    assert m["monthly_fen"].to_list() == [2_250_000, 4_490_000, 5_625_000]
    a = s.annual
    assert a["settled_fen"].to_list() == [14_490_909, 15_509_091]
    assert a["annual_fen"].to_list() == [14_480_909, 15_509_091]  # H1 less 10,000 audit
    assert a["deposit_fen"].to_list() == [724_045, 775_455]  # 724,045.45; 775,454.55
    assert a["clearing_fen"].to_list() == [7_016_864, 9_108_636]
    assert a["deposit_returned_fen"].to_list() == [724_045, 620_364]  # H2 scores 80


def test_monthly_point_value_defaults_to_the_pools_point_value():
    # no monthly.point_value: the pool's base (here = final) value, 16,300,000 fen ÷ 550 points
    # = 29,636.36 fen a point.  H1 Jan 100 points → 2,963,636.36 → 2,963,636 fen, × 0.9 =
    # 2,667,272.4 → 2,667,272; Feb 200 → 5,927,273, × 0.9 → 5,334,546, − 10,000 audit;
    # H2 Jan 250 → 7,409,091, × 0.9 → 6,668,182
    monthly = MonthlyConfig(enabled=True, prepay_ratio=0.9, deposit_share=0.05, scores={"H2": 80})
    s = settle(w_cases(), w_policy(monthly=monthly), weights=WEIGHTS)
    assert s.pool_region["pv_base"].to_list() == pytest.approx([16_300_000 / 550 / 100])
    assert s.monthly["base_fen"].to_list() == [2_963_636, 5_927_273, 7_409_091]
    assert s.monthly["monthly_fen"].to_list() == [2_667_272, 5_324_546, 6_668_182]


def test_outlier_reference_default_is_the_standard():
    # H2 at level 2 with coefficient 0.9: N4 (A1, 45,000 = 5 × 9,000) — with the group mean
    # as reference 4.5×; both high-cost, but the excess differs
    p = w_policy(
        special=SpecialCasesConfig(),
        new_tech=NewTechConfig(),
        monthly=MonthlyConfig(),
        level_coefficients={"2": 0.9},
        hospital_levels={"H1": "3", "H2": "2"},
    )
    std = settle(w_cases(), p, weights=WEIGHTS).cases
    grp = settle(w_cases(), p.replace(outliers=OutliersConfig(reference="group_mean")), weights=WEIGHTS).cases
    # k = 2 at level 2: standard 9,000 → (100 + (5 − 2) × 100) × 0.9 = 360;
    # group mean 10,000 → (100 + (4.5 − 2) × 100) × 0.9 = 315
    assert std["adjusted_points"][3] == pytest.approx(360)
    assert grp["adjusted_points"][3] == pytest.approx(315)
    assert std["ref_cost"].to_list()[2:] == pytest.approx([18_000, 9_000])


def test_city_thresholds_on_the_weights_take_precedence():
    wt = WEIGHTS.with_columns(pl.Series("high_k", [6.0, None]))
    p = w_policy(special=SpecialCasesConfig(), new_tech=NewTechConfig(), monthly=MonthlyConfig())
    c = settle(w_cases(), p, weights=wt).cases
    assert c["rule"].to_list()[3] == "normal"  # 4.5 × is below A1's published 6 ×
    off = p.replace(outliers=OutliersConfig(table_thresholds=False))
    assert settle(w_cases(), off, weights=wt).cases["rule"].to_list()[3] == "high_cost"


def test_dip_cap_and_score_addon():
    cases = (
        w_cases()
        .rename({"drg": "dip_group"})
        .with_columns(pl.Series("score", [1000.0, 2000.0, 2000.0, 1000.0]))
    )
    p = w_policy(points_per_rw=1000, monthly=MonthlyConfig())
    s = settle(cases, p, weights=WEIGHTS.rename({"drg": "drg"}), points="score", group_col="dip_group")
    c = s.cases
    # DIP: cap ⌊0.25 × 4⌋ = 1 as given; N2's 56,000 of new technology is a score add-on:
    # 56,000 ÷ (10,000 ÷ 1000) = 5,600 points, its remaining 24,000 normal
    assert c["rule"].to_list() == ["normal", "normal", "special", "high_cost"]
    assert c["adjusted_points"].to_list()[:2] == pytest.approx([1000, 7600])
    assert int(c["payment_fen"].sum()) == 30_000_000
    default_cap = settle(
        cases,
        p.replace(special=SpecialCasesConfig(cost_multiple=4.0)),
        weights=WEIGHTS,
        points="score",
        group_col="dip_group",
    )
    assert "special" not in default_cap.cases["rule"].to_list()  # ⌊0.005 × 4⌋ = 0


def test_missing_columns_name_the_rule():
    with pytest.raises(PolicyError, match="new_tech.*new_tech_cost"):
        settle(w_cases().drop("new_tech_cost"), w_policy(), weights=WEIGHTS)
    with pytest.raises(PolicyError, match="monthly.*discharge_date"):
        settle(w_cases().drop("discharge_date"), w_policy(), weights=WEIGHTS)
    with pytest.raises(PolicyError, match="min_los.*los"):
        settle(w_cases(), w_policy(special=SpecialCasesConfig(min_los=30)), weights=WEIGHTS)


def test_cli_reads_the_sections(tmp_path):
    from casemix.cli import main

    w_cases().write_csv(tmp_path / "cases.csv")
    WEIGHTS.write_csv(tmp_path / "weights.csv")
    (tmp_path / "policy.toml").write_text(
        """
name = "W"
[budget]
total_yuan = 300000
[special_cases]
cost_multiple = 4.0
cap_share = 0.25
fund_ratio = 0.9
[new_tech]
enabled = true
[monthly]
enabled = true
point_value = 250.0
scores = { H2 = 80 }
""",
        encoding="utf-8",
    )
    r = CliRunner().invoke(
        main,
        [
            "settle",
            str(tmp_path / "cases.csv"),
            "--weights",
            str(tmp_path / "weights.csv"),
            "--policy",
            str(tmp_path / "policy.toml"),
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert r.exit_code == 0, r.output
    cases = pl.read_csv(tmp_path / "out" / "cases.csv")
    assert cases["payment_fen"].to_list() == [2_963_636, 11_527_273, 8_100_000, 7_409_091]
    monthly = pl.read_csv(tmp_path / "out" / "monthly.csv")
    assert monthly["monthly_fen"].to_list() == [2_250_000, 4_490_000, 5_625_000]
    annual = pl.read_csv(tmp_path / "out" / "annual.csv")
    assert annual["deposit_returned_fen"].to_list() == [724_045, 620_364]


def test_chinese_column_names():
    c = w_cases().rename(
        {"new_tech_cost": "新药新技术费用", "audit_deduction": "审核扣款", "discharge_date": "出院日期"}
    )
    s = settle(c, w_policy(), weights=WEIGHTS)
    assert s.cases["payment_fen"].to_list() == [2_963_636, 11_527_273, 8_100_000, 7_409_091]
    assert s.monthly["monthly_fen"].to_list() == [2_250_000, 4_490_000, 5_625_000]


def test_level_mean_reference_through_settle():
    # A1 at level-3 hospitals: 10,000 and 50,000 yuan → mean 30,000; at level 2: 20,000
    cases = pl.DataFrame(
        {
            "case_id": ["a", "b", "c"],
            "hospital_id": ["H1", "H1", "H2"],
            "drg": ["A1", "A1", "A1"],
            "total_cost": [10_000.0, 50_000.0, 20_000.0],
        }
    )
    p = Policy(
        budget="30000",
        hospital_levels={"H1": "3", "H2": "2"},
        outliers=OutliersConfig(reference="level_mean"),
    )
    s = settle(cases, p, weights=WEIGHTS)
    assert s.cases["ref_cost"].to_list() == pytest.approx([30_000, 30_000, 20_000])
