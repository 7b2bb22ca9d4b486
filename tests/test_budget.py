"""Policy: TOML loading, defaults, validation errors that name the file and key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from casemix.budget import HighCost, Policy, shipped_policy
from casemix.errors import PolicyError

FULL = """
name = "full"
[budget]
total_yuan = 1234567.891
points_per_rw = 100
base_share = 0.8
forecast_points = 5000
quality_reserve = 0.05
prepayment_share = 0.9
[coefficients]
default = 0.95
level = { "3" = 1.1, "2" = 0.9 }
hospital = { H9 = 1.3 }
[hospital_levels]
H9 = 3
[high_cost]
rule = "pro_rata"
k = { "3" = 3.0, "2" = 2.0 }
k_default = 2.5
factor = 0.8
mean = "cases"
[low_cost]
ratio = 0.3
[short_stay]
enabled = false
max_los = 3
discharge = [5]
basis = "los"
[special_cases]
case_ids = ["a", 17]
cap_share = 0.05
[readmission]
days = 10
penalty = 0.5
apply_to = "later"
exempt_adrg = ["RE1"]
[ungroupable]
rule = "points"
codes = ["0000", "QY"]
"""


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_full_toml_round_trip(tmp_path):
    p = Policy.from_toml(write(tmp_path, FULL))
    assert p.name == "full"
    assert p.budget == Decimal("1234567.891") and p.budget_fen == 123456789
    assert p.base_share == 0.8 and p.forecast_points == 5000
    assert p.level_coefficients == {"3": 1.1, "2": 0.9}
    assert p.hospital_coefficients == {"H9": 1.3} and p.hospital_levels == {"H9": "3"}
    assert p.high_cost == HighCost(rule="pro_rata", k={"3": 3.0, "2": 2.0}, k_default=2.5,
                                   factor=0.8, mean="cases")
    assert p.short_stay.discharge == (5,) and not p.short_stay.enabled
    assert p.special.case_ids == ("a", "17")
    assert p.readmission.days == 10 and p.readmission.exempt_adrg == ("RE1",)
    assert p.ungroupable == "points" and p.ungroupable_codes == ("0000", "QY")


def test_demo_policy_ships_and_loads():
    p = Policy.demo()
    assert p.name == "demo" and p.points_per_rw == 100 and p.base_share == 0.75
    assert p.high_cost.k == {"3": 3.0, "2": 2.0}
    assert shipped_policy("demo").name == "demo.toml"
    with pytest.raises(PolicyError, match="shipped: demo"):
        shipped_policy("nowhere")


def test_defaults_and_replace():
    p = Policy(budget=1000)
    assert p.budget_fen == 100000 and p.points_per_rw == 100 and p.ungroupable == "cost"
    q = p.replace(base_share=0.5)
    assert q.base_share == 0.5 and p.base_share == 0.75
    with pytest.raises(PolicyError, match="budget.base_share"):
        p.replace(base_share=1.5)


@pytest.mark.parametrize("text, message", [
    ("[budget]\ntotal_yuan = 1\nbase_shar = 0.5\n", r"unknown key budget.'base_shar'"),
    ("[budget]\nbase_share = 0.5\n", r"budget.total_yuan is required"),
    ("[budget]\ntotal_yuan = 'lots'\n", r"budget.total_yuan must be a number"),
    ("[budget]\ntotal_yuan = -5\n", r"budget.total_yuan must be a finite amount >= 0"),
    ("[budget]\ntotal_yuan = 1\npoints_per_rw = 0\n", r"budget.points_per_rw must be > 0"),
    ("[budget]\ntotal_yuan = 1\n[high_cost]\nrule = 'triple'\n", r"high_cost.rule must be one of"),
    ("[budget]\ntotal_yuan = 1\n[high_cost]\nk = { '3' = -1 }\n", r"high_cost.k.3 must be > 0"),
    ("[budget]\ntotal_yuan = 1\n[high_cost]\nfator = 1\n", r"unknown key high_cost.'fator'"),
    ("[budget]\ntotal_yuan = 1\n[coefficients]\nlevel = { '2' = 'x' }\n",
     r"coefficients.level.2 must be a number"),
    ("[budget]\ntotal_yuan = 1\n[readmission]\ndays = 1.5\n", r"readmission.days must be a whole"),
    ("[budget]\ntotal_yuan = 1\n[short_stay]\ndischarge = ['5']\n", r"short_stay.discharge"),
    ("[budget]\ntotal_yuan = 1\n[low_cost]\nratio = 0.5\n[high_cost]\nk_default = 0.4\nk = {}\n",
     r"low_cost.ratio must be below every high_cost k"),
    ("[budget]\ntotal_yuan = 1\n[ungroupable]\nrule = 'drop'\n", r"ungroupable.rule"),
    ("[budgets]\ntotal_yuan = 1\n", r"unknown key 'budgets'"),
    ("[budget\n", r"not valid TOML"),
])
def test_errors_name_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text, "bad.toml")
    with pytest.raises(PolicyError, match=message) as info:
        Policy.from_toml(path)
    assert "bad.toml" in str(info.value)


def test_missing_file():
    with pytest.raises(PolicyError, match="not found"):
        Policy.from_toml("/nonexistent/policy.toml")


def test_derive_coefficients_by_level_and_hospital():
    import polars as pl

    from casemix.budget import derive_coefficients

    weights = pl.DataFrame({"drg": ["A1", "B1"], "rw": [1.0, 2.0], "mean_cost": [10_000.0, 20_000.0]})
    cases = pl.DataFrame({
        "hospital_id": ["H1", "H1", "H2", "H2"], "hospital_level": [3.0, 3.0, 2.0, 2.0],
        "drg": ["A1", "B1", "A1", "0000"], "total_cost": [12_000.0, 30_000.0, 8_000.0, 500.0]})
    # level 3: (12000 + 30000) / (10000 + 20000); level 2: 8000 / 10000; 0000 has no weight
    assert derive_coefficients(cases, weights) == pytest.approx({"3": 1.4, "2": 0.8})
    assert derive_coefficients(cases, weights, by="hospital_id") == pytest.approx(
        {"H1": 1.4, "H2": 0.8})
    p = Policy(budget=1, level_coefficients=derive_coefficients(cases, weights))
    assert p.level_coefficients["3"] == pytest.approx(1.4)
    from casemix.errors import InputError
    with pytest.raises(InputError, match="mean_cost"):
        derive_coefficients(cases, weights.drop("mean_cost"))
