"""Issue 18 item 8: Jinhua 2017 DRG point rules — a cost coefficient per hospital and per
DRG, no coefficient on incomplete stays (docs/payment-settlement.md, worked example J)."""

from __future__ import annotations

import polars as pl
import pytest

from casemix.budget import Policy, ShortStay, derive_hospital_drg_coefficients
from casemix.errors import PolicyError
from casemix.payment.policy_template import template
from casemix.settle import settle

WEIGHTS = pl.DataFrame({"drg": ["A1", "B1"], "rw": [1.0, 2.0], "mean_cost": [10_000.0, 20_000.0]})


def j_cases() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "case_id": ["J1", "J2", "J3", "J4", "J5"],
            "hospital_id": ["H1", "H1", "H1", "H2", "H2"],
            "hospital_level": ["3", "3", "3", "2", "2"],
            "drg": ["A1", "B1", "B1", "A1", "A1"],
            "total_cost": [11_000.0, 28_000.0, 25_000.0, 9_500.0, 9_000.0],
            "los": [6.0, 8.0, 2.0, 1.0, 5.0],
            "discharge": [1, 1, 2, 5, 1],
        }
    )


def j_policy(**changes) -> Policy:
    p = Policy(
        budget="10000",
        name="J",
        level_coefficients={"3": 1.2, "2": 0.9},
        hospital_drg_coefficients={"H1": {"B1": 1.5}},
    )
    return p.replace(**changes) if changes else p


def test_example_j_to_the_fen():
    s = settle(j_cases(), j_policy(), weights=WEIGHTS)
    c = s.cases
    assert c["rule"].to_list() == ["normal", "normal", "short_stay", "short_stay", "normal"]
    # J1: H1 has no A1 entry -> level 3's 1.2; J2, J3: H1 x B1 = 1.5; H2: level 2's 0.9
    assert c["coefficient"].to_list() == [1.2, 1.5, 1.5, 0.9, 0.9]
    # J1 100 x 1.2; J2 200 x 1.5 (cost 28,000 within its standard 30,000's fences);
    # J3 transfer after 2 days: 200 x min(25,000 / 20,000, 1) = 200, no coefficient;
    # J4 death after 1 day: 100 x min(9,500 / 10,000, 1) = 95; J5 100 x 0.9
    assert c["adjusted_points"].to_list() == pytest.approx([120, 300, 200, 95, 90])
    # 1,000,000 fen over 805 points: H1 620 -> 770,186.34, H2 185 -> 229,813.66; the
    # leftover fen to H2 (larger fraction). H1's cases 149,068.26 / 372,670.65 /
    # 248,447.10 (+1 fen to J2); H2's 118,012.59 / 111,801.41 (+1 fen to J4)
    assert s.hospitals["payment_fen"].to_list() == [770_186, 229_814]
    assert c["payment_fen"].to_list() == [149_068, 372_671, 248_447, 118_013, 111_801]
    assert c["payment_fen"].sum() == 1_000_000


def test_incomplete_stays_with_the_coefficient_the_earlier_rule():
    # short_stay.coefficient = true: P x min(c / (m x f), 1) x f against the standard m x f
    # J3 200 x min(25,000 / 30,000, 1) x 1.5 = 250; J4 100 x min(9,500 / 9,000, 1) x 0.9 = 90
    s = settle(j_cases(), j_policy(short_stay=ShortStay(coefficient=True)), weights=WEIGHTS)
    assert s.cases["adjusted_points"].to_list() == pytest.approx([120, 300, 250, 90, 90])
    # without the per-DRG table J2 and J3 take H1's level coefficient 1.2
    s = settle(j_cases(), j_policy(hospital_drg_coefficients={}), weights=WEIGHTS)
    assert s.cases["coefficient"].to_list() == [1.2, 1.2, 1.2, 0.9, 0.9]
    assert s.cases["adjusted_points"].to_list() == pytest.approx([120, 240, 200, 95, 90])


def test_per_drg_coefficient_beats_the_hospital_but_not_a_same_rate_group():
    p = j_policy(hospital_coefficients={"H1": 1.1}, same_rate_groups=("A1",))
    c = settle(j_cases(), p, weights=WEIGHTS).cases
    assert c["coefficient"].to_list() == [1.0, 1.5, 1.5, 1.0, 1.0]
    # an entry for a DRG or hospital absent from the cases changes nothing
    q = j_policy(hospital_drg_coefficients={"H1": {"B1": 1.5, "Z9": 3.0}, "H9": {"A1": 2.0}})
    assert settle(j_cases(), q, weights=WEIGHTS).cases["coefficient"].to_list() == [1.2, 1.5, 1.5, 0.9, 0.9]


def test_policy_file_keys_and_the_template(tmp_path):
    (tmp_path / "drg.csv").write_text("hospital_id,drg,coefficient\nH1,B1,1.4\nH2,A1,0.7\n", encoding="utf-8")
    f = tmp_path / "p.toml"
    f.write_text(
        '[budget]\ntotal_yuan = 10000\n[coefficients]\nlevel = { "3" = 1.2, "2" = 0.9 }\n'
        'hospital_drg_file = "drg.csv"\nhospital_drg = { H1 = { B1 = 1.5 } }\n'
        "[short_stay]\ncoefficient = false\n",
        encoding="utf-8",
    )
    p = Policy.from_toml(f)
    # the file's entries, then the inline ones (H1 x B1: 1.5 wins over the file's 1.4)
    assert p.hospital_drg_coefficients == {"H1": {"B1": 1.5}, "H2": {"A1": 0.7}}
    assert p.short_stay.coefficient is False
    c = settle(j_cases(), p, weights=WEIGHTS).cases
    assert c["coefficient"].to_list() == [1.2, 1.5, 1.5, 0.7, 0.7]
    # J5 is normal at 100 x 0.7 = 70; J4 (short stay) is still 95
    assert c["adjusted_points"].to_list() == pytest.approx([120, 300, 200, 95, 70])
    t = template()
    assert "hospital_drg = {  }" in t and "# hospital_drg_file = ..." in t
    assert "coefficient = false" in t and "Jinhua" in t
    # the template is itself a valid policy file with the published default
    (tmp_path / "t.toml").write_text(t.replace("# total_yuan = ...", "total_yuan = 1"), encoding="utf-8")
    assert Policy.from_toml(tmp_path / "t.toml").short_stay.coefficient is False


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (
            "hospital_id,drg,coefficient\nH1,B1,1.4\nH1,B1,1.5\n",
            r"row 3: hospital 'H1' and DRG 'B1' .*more than once",
        ),
        ("hospital_id,drg,coefficient\nH1,B1,0\n", r"row 2: .*coefficient > 0"),
        ("hospital_id,drg,coefficient\nH1,B1,x\n", r"row 2: .*coefficient > 0"),
        ("hospital,drg,coefficient\nH1,B1,1\n", r"needs columns hospital_id, drg, coefficient"),
    ],
)
def test_a_bad_coefficient_file_names_the_row(tmp_path, body, match):
    (tmp_path / "drg.csv").write_text(body, encoding="utf-8")
    f = tmp_path / "p.toml"
    f.write_text(
        '[budget]\ntotal_yuan = 1\n[coefficients]\nhospital_drg_file = "drg.csv"\n', encoding="utf-8"
    )
    with pytest.raises(PolicyError, match=match):
        Policy.from_toml(f)


def test_bad_inline_values_are_policy_errors(tmp_path):
    with pytest.raises(PolicyError, match=r"coefficients.hospital_drg.H1.B1"):
        Policy(budget=1, hospital_drg_coefficients={"H1": {"B1": -1.0}})
    with pytest.raises(PolicyError, match="short_stay.coefficient"):
        Policy.from_dict({"budget": {"total_yuan": 1}, "short_stay": {"coefficient": "no"}})
    with pytest.raises(PolicyError, match="not found"):
        Policy.from_dict(
            {"budget": {"total_yuan": 1}, "coefficients": {"hospital_drg_file": str(tmp_path / "x.csv")}}
        )


def test_derive_hospital_drg_coefficients_by_hand():
    # A1: H1 12,000 and 8,000 (mean 10,000), H2 4,000; region 24,000 / 3 = 8,000 ->
    # H1 1.25, H2 0.5. B1: H1 alone -> 1.0
    hist = pl.DataFrame(
        {
            "hospital_id": ["H1", "H1", "H2", "H1"],
            "drg": ["A1", "A1", "A1", "B1"],
            "total_cost": [12_000.0, 8_000.0, 4_000.0, 30_000.0],
        }
    )
    t = derive_hospital_drg_coefficients(hist)
    assert t.rows() == [("H1", "A1", 2, 1.25), ("H1", "B1", 1, 1.0), ("H2", "A1", 1, 0.5)]
    assert derive_hospital_drg_coefficients(hist, min_cases=2)["coefficient"].to_list() == [1.25]
