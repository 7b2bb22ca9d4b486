"""Policy: TOML loading, defaults, validation errors that name the file and key."""

from __future__ import annotations

import dataclasses
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel

from casemix.budget import (
    POOL_VALUES,
    Band,
    Corridors,
    Elastic,
    HighCost,
    LowCost,
    Policy,
    Pool,
    Readmission,
    ShortStay,
    SpecialCases,
    shipped_policy,
)
from casemix.errors import PolicyError
from casemix.payment.monthly import MonthlyConfig
from casemix.payment.new_tech import NewTechConfig
from casemix.payment.outliers import OutliersConfig

FULL = """
name = "full"
[budget]
total_yuan = 1234567.891
points_per_rw = 10
method = "point"
point_form = "ratio"
fund_ratio = 0.85
rate_yuan = 12252.70
quality_reserve = 0.05
prepayment_share = 0.9
[coefficients]
default = 0.95
level = { "3" = 1.1, "2" = 0.9 }
hospital = { H9 = 1.3 }
hospital_drg = { H9 = { A1 = 1.2 } }
hospital_drg_file = "drg.csv"
same_rate_groups = ["GZ1", "RE1"]
[hospital_levels]
H9 = 3
[high_cost]
rule = "pro_rata"
k = { "3" = 3.5, "2" = 2.5 }
k_default = 2.5
factor = 0.8
mean = "cases"
[low_cost]
ratio = 0.3
rule = "none"
[short_stay]
enabled = false
max_los = 3
discharge = [5]
basis = "los"
coefficient = true
[special_cases]
case_ids = ["a", 17]
cost_multiple = 2.5
min_los = 60
cap_share = 0.02
order = "listed"
pay = "points"
fund_ratio = 0.9
[new_tech]
enabled = true
cost_multiple = 3
min_share = 0.5
fund_ratio = 0.8
dip_factor = 0.7
codes = { "00.1234" = 50000.0 }
[outliers]
reference = "level_mean"
table_thresholds = false
[monthly]
enabled = true
point_value = 10.5
prepay_ratio = 0.85
deposit_share = 0.03
scores = { H9 = 88 }
default_score = 90
full_score = 95
pass_score = 60
[readmission]
enabled = false
days = 10
penalty = 0.3
apply_to = "later"
match = "adrg"
same_hospital = true
exempt_adrg = ["RE1"]
exempt_diagnoses = ["Z51"]
[ungroupable]
rule = "points"
codes = ["0000", "QY"]
[pools."职工"]
budget_yuan = 1000000.891
rate_yuan = 12252.70
quality_reserve = 0.04
[pools."居民"]
budget_yuan = 234567
rate_yuan = 9649.24
values = ["居民", "390", "R"]
[elastic]
enabled = true
base_share = 0.8
cap = true
base_volume = "base.csv"
[corridors]
surplus = [{ upto = 0.1, share = 1.0 }, { upto = 0.2, share = 0.5 }]
overspend = [{ upto = 0.1, share = 0.5 }]
"""


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    # FULL's coefficients.hospital_drg_file, beside the policy file
    (tmp_path / "drg.csv").write_text("hospital_id,drg,coefficient\nH9,B1,0.8\n", encoding="utf-8")
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_full_toml_round_trip(tmp_path):
    p = Policy.from_toml(write(tmp_path, FULL))
    assert p.name == "full"
    assert p.budget == Decimal("1234567.891") and p.budget_fen == 123456789
    assert (p.points_per_rw, p.method, p.point_form, p.fund_ratio, p.rate_yuan) == (
        10,
        "point",
        "ratio",
        0.85,
        12252.70,
    )
    assert (p.quality_reserve, p.prepayment_share, p.coefficient_default) == (0.05, 0.9, 0.95)
    assert p.level_coefficients == {"3": 1.1, "2": 0.9}
    assert p.hospital_coefficients == {"H9": 1.3} and p.hospital_levels == {"H9": "3"}
    assert p.hospital_drg_coefficients == {"H9": {"B1": 0.8, "A1": 1.2}}
    assert p.same_rate_groups == ("GZ1", "RE1")
    assert p.high_cost == HighCost(
        rule="pro_rata", k={"3": 3.5, "2": 2.5}, k_default=2.5, factor=0.8, mean="cases"
    )
    assert p.low_cost == LowCost(ratio=0.3, rule="none")
    assert p.short_stay == ShortStay(enabled=False, max_los=3, discharge=(5,), basis="los", coefficient=True)
    assert p.special == SpecialCases(
        case_ids=("a", "17"),
        cost_multiple=2.5,
        min_los=60,
        cap_share=0.02,
        order="listed",
        pay="points",
        fund_ratio=0.9,
    )
    assert p.new_tech == NewTechConfig(
        enabled=True,
        cost_multiple=3,
        min_share=0.5,
        fund_ratio=0.8,
        dip_factor=0.7,
        codes={"00.1234": 50000.0},
    )
    assert p.outliers == OutliersConfig(reference="level_mean", table_thresholds=False)
    assert p.monthly == MonthlyConfig(
        enabled=True,
        point_value=10.5,
        prepay_ratio=0.85,
        deposit_share=0.03,
        scores={"H9": 88},
        default_score=90,
        full_score=95,
        pass_score=60,
    )
    assert p.readmission == Readmission(
        enabled=False,
        days=10,
        penalty=0.3,
        apply_to="later",
        match="adrg",
        same_hospital=True,
        exempt_adrg=("RE1",),
        exempt_diagnoses=("Z51",),
    )
    assert p.ungroupable == "points" and p.ungroupable_codes == ("0000", "QY")
    assert p.pools["职工"] == Pool(
        budget=Decimal("1000000.891"), rate_yuan=12252.70, quality_reserve=0.04, values=POOL_VALUES["职工"]
    )
    assert p.pools["居民"] == Pool(budget=Decimal("234567"), rate_yuan=9649.24, values=("居民", "390", "R"))
    assert p.elastic == Elastic(
        enabled=True, base_share=0.8, cap=True, base_volume=str(tmp_path / "base.csv")
    )
    assert p.corridors == Corridors(surplus=(Band(0.1, 1.0), Band(0.2, 0.5)), overspend=(Band(0.1, 0.5),))


def test_full_file_sets_every_key_away_from_its_default(tmp_path):
    """Every key of the policy file (the pydantic model) is in FULL with a non-default value."""
    from casemix.payment.policy_file import PolicyFile

    data = tomllib.loads(FULL)
    for table, field in PolicyFile.model_fields.items():
        assert table in data, table
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            assert set(data[table]) == set(sub.model_fields), table
    p, d = Policy.from_toml(write(tmp_path, FULL)), Policy(budget=1)
    # method stays "point" here (elastic needs it); "rate" is read in test_payment_rate.py
    for f in dataclasses.fields(Policy):
        if f.name not in ("source", "method"):
            assert getattr(p, f.name) != getattr(d, f.name), f.name
    for sub in (
        "high_cost",
        "low_cost",
        "short_stay",
        "special",
        "readmission",
        "elastic",
        "new_tech",
        "outliers",
        "monthly",
    ):
        obj = getattr(p, sub)
        names = (
            list(type(obj).model_fields)
            if isinstance(obj, BaseModel)
            else [f.name for f in dataclasses.fields(obj)]
        )
        for name in names:
            assert getattr(obj, name) != getattr(getattr(d, sub), name), (sub, name)


def test_template_loads_to_the_defaults(tmp_path):
    from casemix.payment.policy_template import template

    text = template()
    path = write(tmp_path, text.replace("# total_yuan = ...", "total_yuan = 1"))
    assert Policy.from_toml(path) == Policy(budget=1)
    for table in __import__("casemix.payment.policy_file", fromlist=["x"]).PolicyFile.model_fields:
        assert f"[{table}" in text or f"{table} =" in text, table


def test_demo_policy_ships_and_loads():
    p = Policy.demo()
    assert p.name == "demo" and p.points_per_rw == 100 and p.elastic.base_share == 0.75
    assert p.high_cost.k == {"3": 3.0, "2": 2.0}
    assert shipped_policy("demo").name == "demo.toml"
    with pytest.raises(PolicyError, match="shipped: demo"):
        shipped_policy("nowhere")


def test_defaults_and_replace():
    p = Policy(budget=1000)
    assert p.budget_fen == 100000 and p.points_per_rw == 100 and p.ungroupable == "cost"
    q = p.replace(elastic=Elastic(base_share=0.5))
    assert q.elastic.base_share == 0.5 and p.elastic.base_share == 0.75
    with pytest.raises(PolicyError, match="elastic.base_share"):
        p.replace(elastic=Elastic(base_share=1.5))


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "[budget]\ntotal_yuan = 1\nfund_ration = 0.5\n",
            r"line 3: unknown key 'budget.fund_ration'; did you mean 'fund_ratio'\?",
        ),
        ("[budget]\npoints_per_rw = 5\n", r"budget.total_yuan is required"),
        ("[budget]\ntotal_yuan = 'lots'\n", r"line 2: budget.total_yuan: Input should be"),
        ("[budget]\ntotal_yuan = -5\n", r"budget.total_yuan must be an amount in \[0, 10\^13\)"),
        ("[budget]\ntotal_yuan = 1\npoints_per_rw = 0\n", r"budget.points_per_rw must be > 0"),
        (
            "[budget]\ntotal_yuan = 1\n[high_cost]\nrule = 'triple'\n",
            r"line 4: high_cost.rule: Input should be 'excess', 'pro_rata' or 'none'",
        ),
        ("[budget]\ntotal_yuan = 1\n[high_cost]\nk = { '3' = -1 }\n", r"high_cost.k.3 must be > 0"),
        (
            "[budget]\ntotal_yuan = 1\n[high_cost]\nfator = 1\n",
            r"line 4: unknown key 'high_cost.fator'; did you mean 'factor'",
        ),
        (
            "[budget]\ntotal_yuan = 1\n[coefficients]\nlevel = { '2' = 'x' }\n",
            r"coefficients.level.2: Input should be",
        ),
        ("[budget]\ntotal_yuan = 1\n[readmission]\ndays = 1.5\n", r"readmission.days: Input should be"),
        (
            '[budget]\ntotal_yuan = 1\n[pools."职工"]\nbudget = 5\n',
            r"line 4: unknown key 'pools.职工.budget'; did you mean 'budget_yuan'",
        ),
        (
            '[budget]\ntotal_yuan = 1\n[pools."职工"]\nbudget_yuan = 5\n',
            r"budget.total_yuan \(1\) is not the sum of the pools",
        ),
        ('[pools."其他"]\nbudget_yuan = 5\n', r"pools.其他.values must list"),
        ("[budget]\nmethod = 'rate'\n", r"method = 'rate' needs budget.rate_yuan"),
        ("[budget]\ntotal_yuan = 1\n[elastic]\nbase_share = 1.2\n", r"elastic.base_share must be <= 1"),
        (
            "[budget]\ntotal_yuan = 1\n[corridors]\nsurplus = [{ upto = 0.2, share = 1 }, "
            "{ upto = 0.1, share = 0.5 }]\n",
            r"corridors.surplus\[1\].upto must be > 0.2",
        ),
        (
            "[budget]\ntotal_yuan = 1\n[corridors]\noverspend = [{ upto = 0.2 }]\n",
            r"corridors.overspend\[0\].share: Field required",
        ),
        ("[budget]\ntotal_yuan = 1e14\n", r"budget.total_yuan must be an amount in \[0, 10\^13\)"),
        ("[budget]\ntotal_yuan = 1\n[short_stay]\ndischarge = ['5']\n", r"short_stay.discharge"),
        (
            "[budget]\ntotal_yuan = 1\n[low_cost]\nratio = 0.5\n[high_cost]\nk_default = 0.4\nk = {}\n",
            r"low_cost.ratio must be below every high_cost k",
        ),
        ("[budget]\ntotal_yuan = 1\n[ungroupable]\nrule = 'drop'\n", r"ungroupable.rule"),
        ("[budgets]\ntotal_yuan = 1\n", r"line 1: unknown key 'budgets'; did you mean 'budget'"),
        # keys that read as pydantic's union branch names are the user's: kept in the message
        (
            "[budget]\ntotal_yuan = 1\nbool = 1\n",
            r"bad.toml, line 3: unknown key 'budget.bool' \(allowed here: fund_ratio, method,",
        ),
        (
            "[budget]\ntotal_yuan = 1\n[pools.int]\nbudget_yuan = 'x'\n",
            r"bad.toml, line 4: pools.int.budget_yuan: Input should be a valid integer \(got 'x'\)$",
        ),
        # a top-level key before any table: its line (the section is "" there)
        ("name = 5\n", r"bad.toml, line 1: name: Input should be a valid string \(got 5\)$"),
        # an unknown key named like a union branch ('int') is the user's key, kept whole
        (
            "[budget]\ntotal_yuan = 1\nint = 1\n",
            r"bad.toml, line 3: unknown key 'budget.int' \(allowed here: fund_ratio, method,",
        ),
        # a table where a number belongs: the line of its two-part header
        (
            "[budget]\ntotal_yuan = 1\n[budget.fund_ratio]\nx = 1\n",
            r"bad.toml, line 3: budget.fund_ratio: Input should be a valid integer \(got \{'x': 1\}\)$",
        ),
        ("[budget\n", r"not valid TOML"),
    ],
)
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
    cases = pl.DataFrame(
        {
            "hospital_id": ["H1", "H1", "H2", "H2"],
            "hospital_level": [3.0, 3.0, 2.0, 2.0],
            "drg": ["A1", "B1", "A1", "0000"],
            "total_cost": [12_000.0, 30_000.0, 8_000.0, 500.0],
        }
    )
    # level 3: (12000 + 30000) / (10000 + 20000); level 2: 8000 / 10000; 0000 has no weight
    assert derive_coefficients(cases, weights) == pytest.approx({"3": 1.4, "2": 0.8})
    assert derive_coefficients(cases, weights, by="hospital_id") == pytest.approx({"H1": 1.4, "H2": 0.8})
    p = Policy(budget=1, level_coefficients=derive_coefficients(cases, weights))
    assert p.level_coefficients["3"] == pytest.approx(1.4)
    from casemix.errors import InputError

    with pytest.raises(InputError, match="mean_cost"):
        derive_coefficients(cases, weights.drop("mean_cost"))


def test_cli_policy_init_writes_the_template(tmp_path):
    from click.testing import CliRunner

    from casemix.cli.settle_cmd import policy

    out = tmp_path / "p.toml"
    r = CliRunner().invoke(policy, ["init", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    assert Policy.from_toml(
        write(tmp_path, text.replace("# total_yuan = ...", "total_yuan = 5"), "q.toml")
    ) == Policy(budget=5)
    again = CliRunner().invoke(policy, ["init", str(out)])
    assert again.exit_code != 0 and "--force" in again.output
    assert CliRunner().invoke(policy, ["init"]).output.startswith("# casemix payment policy")


def _drg_file_policy(tmp_path: Path, body: bytes | str, name: str = "drg.csv") -> Path:
    data = body.encode("utf-8") if isinstance(body, str) else body
    (tmp_path / name).write_bytes(data)
    f = tmp_path / "p.toml"
    f.write_text(
        f'[budget]\ntotal_yuan = 1\n[coefficients]\nhospital_drg_file = "{name}"\n', encoding="utf-8"
    )
    return f


HEAD = "hospital_id,drg,coefficient\n"


@pytest.mark.parametrize(
    ("rows", "got"),
    [
        # the first bad row is named, by its line in the file (row 1 is the header)
        (
            "H1,B1,1.4\n,B2,1.1\n",
            "row 3: hospital_id, drg and a coefficient > 0 are needed (got None, 'B2', 1.1)",
        ),
        ("H1,,1.1\n", "row 2: hospital_id, drg and a coefficient > 0 are needed (got 'H1', None, 1.1)"),
        ("H1,B1,\n", "row 2: hospital_id, drg and a coefficient > 0 are needed (got 'H1', 'B1', None)"),
        (
            "H1,B1,abc\nH2,B1,-1\n",
            "row 2: hospital_id, drg and a coefficient > 0 are needed (got 'H1', 'B1', None)",
        ),
        (
            "H1,B1,1\nH2,B1,-0.5\n",
            "row 3: hospital_id, drg and a coefficient > 0 are needed (got 'H2', 'B1', -0.5)",
        ),
        ("H1,B1,inf\n", "row 2: hospital_id, drg and a coefficient > 0 are needed (got 'H1', 'B1', inf)"),
        ("H1,B1,NaN\n", "row 2: hospital_id, drg and a coefficient > 0 are needed (got 'H1', 'B1', nan)"),
        ("H1,B1,0.0\n", "row 2: hospital_id, drg and a coefficient > 0 are needed (got 'H1', 'B1', 0.0)"),
        (
            "H1,B1,1.4\nH1,B2,1.4\nH2,B1,1.4\nH1,B2,1.5\n",
            "row 5: hospital 'H1' and DRG 'B2' are listed more than once (keep one row)",
        ),
    ],
)
def test_hospital_drg_file_names_the_first_bad_row_and_its_values(tmp_path, rows, got):
    f = _drg_file_policy(tmp_path, HEAD + rows)
    with pytest.raises(PolicyError) as info:
        Policy.from_toml(f)
    msg = str(info.value)
    assert msg == f"{f}: coefficients.hospital_drg_file {tmp_path / 'drg.csv'}, {got}"


def test_hospital_drg_file_columns_missing_and_unreadable_files(tmp_path):
    f = _drg_file_policy(tmp_path, "hospital_id,DRG,coef\nH1,B1,1\n")
    with pytest.raises(PolicyError) as info:
        Policy.from_toml(f)
    assert str(info.value) == (
        f"{f}: coefficients.hospital_drg_file {tmp_path / 'drg.csv'} needs columns "
        "hospital_id, drg, coefficient; has hospital_id, DRG, coef"
    )
    # a file casemix cannot read: the reader's message, behind the key and path
    f = _drg_file_policy(tmp_path, b"PK\x03\x04 not a workbook", "drg.xlsx")
    with pytest.raises(PolicyError, match=r"p\.toml: coefficients\.hospital_drg_file \S+drg\.xlsx: ") as info:
        Policy.from_toml(f)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    f = tmp_path / "q.toml"
    f.write_text(
        '[budget]\ntotal_yuan = 1\n[coefficients]\nhospital_drg_file = "sub/none.csv"\n', encoding="utf-8"
    )
    with pytest.raises(PolicyError) as info:
        Policy.from_toml(f)
    assert (
        str(info.value) == f"{f}: coefficients.hospital_drg_file not found: {tmp_path / 'sub' / 'none.csv'}"
    )


def test_hospital_drg_file_values_and_paths(tmp_path, monkeypatch):
    # coefficients as text in the CSV become floats
    f = _drg_file_policy(tmp_path, HEAD + "H1,B1,1.25\nH1,A1,2\nH2,B1,0.5\n")
    assert Policy.from_toml(f).hospital_drg_coefficients == {"H1": {"B1": 1.25, "A1": 2.0}, "H2": {"B1": 0.5}}
    # Parquet with integer hospital ids and coefficients: ids as text, coefficients as floats
    import polars as pl

    pl.DataFrame({"hospital_id": [7, 8], "drg": ["A1", "A1"], "coefficient": [2, 3]}).write_parquet(
        tmp_path / "drg.parquet"
    )
    (tmp_path / "p2.toml").write_text(
        '[budget]\ntotal_yuan = 1\n[coefficients]\nhospital_drg_file = "drg.parquet"\n', encoding="utf-8"
    )
    got = Policy.from_toml(tmp_path / "p2.toml").hospital_drg_coefficients
    assert got == {"7": {"A1": 2.0}, "8": {"A1": 3.0}}
    assert all(isinstance(v, float) for per in got.values() for v in per.values())
    # without a policy folder (a dict), a relative path is the working directory's
    monkeypatch.chdir(tmp_path)
    p = Policy.from_dict({"budget": {"total_yuan": 1}, "coefficients": {"hospital_drg_file": "drg.csv"}})
    assert p.hospital_drg_coefficients == {"H1": {"B1": 1.25, "A1": 2.0}, "H2": {"B1": 0.5}}
    # inline entries of a hospital the file does not list (or without a file) are its own
    p = Policy.from_dict(
        {
            "budget": {"total_yuan": 1},
            "coefficients": {"hospital_drg_file": "drg.csv", "hospital_drg": {"H3": {"A1": 1.5}}},
        }
    )
    assert p.hospital_drg_coefficients == {
        "H1": {"B1": 1.25, "A1": 2.0},
        "H2": {"B1": 0.5},
        "H3": {"A1": 1.5},
    }
    p = Policy.from_dict({"budget": {"total_yuan": 1}, "coefficients": {"hospital_drg": {"H3": {"A1": 1.5}}}})
    assert p.hospital_drg_coefficients == {"H3": {"A1": 1.5}}


def test_policy_errors_from_a_dict_in_full():
    # no TOML text, so no line; a hint down to difflib's similarity 0.5 ('fund' ~ 'fund_ratio'
    # 0.57); the keys allowed inside a corridor band (a model in a list)
    cases = [
        (
            {"short_stay": {"coefficient": "no"}},
            "short_stay.coefficient: Input should be a valid boolean (got 'no')",
        ),
        # a union's failed branch ('str' of str | int) is not part of the key
        ({"hospital_levels": {"H1": 1.5}}, "hospital_levels.H1: Input should be a valid string (got 1.5)"),
        (
            {"budget": {"total_yuan": 1, "fund": 0.5}},
            "unknown key 'budget.fund'; did you mean 'fund_ratio'? (allowed here: fund_ratio, method, "
            "point_form, points_per_rw, prepayment_share, quality_reserve, rate_yuan, total_yuan)",
        ),
        (
            {"corridors": {"surplus": [{"upto": 0.1, "share": 1, "shares": 2}]}},
            "unknown key 'corridors.surplus[0].shares'; did you mean 'share'? (allowed here: share, upto)",
        ),
    ]
    for extra, message in cases:
        data = {"budget": {"total_yuan": 1}} | extra
        with pytest.raises(PolicyError) as info:
            Policy.from_dict(data)
        assert str(info.value) == f"<dict>: {message}"
