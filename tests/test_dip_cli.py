"""``casemix dip …`` commands and the DIP demo, end to end on small synthetic data."""

from __future__ import annotations

import polars as pl
import pytest
from click.testing import CliRunner

import casemix.dip as dip
from casemix.cli.dip_cmd import dip as dip_cli
from casemix.cli.dip_cmd import run_dip_demo
from casemix.dip import synth


def test_build_group_settle_commands(tmp_path):
    h = synth.history(600, years=(2022, 2023), seed=7)
    hist = tmp_path / "history.parquet"
    h.write_parquet(hist)
    runner = CliRunner()
    r = runner.invoke(
        dip_cli,
        ["build", str(hist), "-o", str(tmp_path / "cat"), "--threshold", "10", "--scheme", "casemix-demo"],
    )
    assert r.exit_code == 0, r.output
    cat = dip.load_catalog(tmp_path / "cat")
    assert any(g.type == "core" for g in cat.groups)
    assert (tmp_path / "cat" / "NOTICE").is_file()

    r = runner.invoke(
        dip_cli,
        ["group", str(hist), "--catalog", str(tmp_path / "cat"), "-o", str(tmp_path / "grouped.parquet")],
    )
    assert r.exit_code == 0, r.output
    out = pl.read_parquet(tmp_path / "grouped.parquet")
    assert out.height == h.height
    assert out["case_id"].to_list() == h["case_id"].to_list()

    r = runner.invoke(
        dip_cli,
        [
            "settle",
            str(tmp_path / "grouped.parquet"),
            "--fund",
            "1000000",
            "--fund-ratio",
            "0.7",
            "--catalog",
            str(tmp_path / "cat"),
            "-o",
            str(tmp_path / "settled"),
        ],
    )
    assert r.exit_code == 0, r.output
    hosp = pl.read_csv(tmp_path / "settled" / "hospitals.csv")
    assert hosp["point_payment_fen"].sum() == 100_000_000


def test_catalogs_command_lists_the_demo():
    r = CliRunner().invoke(dip_cli, ["catalogs"])
    assert r.exit_code == 0 and "dip-demo" in r.output


def test_run_dip_demo(tmp_path):
    res = run_dip_demo(seed=3, n=1_500, out_dir=tmp_path, threshold=15, quiet=True)
    hosp = res.hospitals
    assert hosp.height == 8
    # the fund is paid out exactly at the settlement point value
    assert hosp["point_payment_fen"].sum() == res.region["fund_fen"][0]
    assert (tmp_path / "dip-catalog" / "groups.csv").is_file()
    assert (tmp_path / "dip-hospitals.csv").is_file()
    # same seed, same answer
    again = run_dip_demo(seed=3, n=1_500, threshold=15, quiet=True)
    assert again.hospitals["payment_fen"].to_list() == hosp["payment_fen"].to_list()


POLICY_TOML = """
name = "dip-pools"

[pools."职工"]
budget_yuan = 25000

[pools."居民"]
budget_yuan = 20000

[new_tech]
enabled = true

[monthly]
enabled = true
prepay_ratio = 0.9
"""


def test_dip_settle_command_reads_the_policy_file(tmp_path):
    # the policy's pools, new-technology add-on and monthly pre-settlement reach DIP through
    # --policy; the CLI settles as the Python entry point does, each pool's budget to the fen
    from casemix.budget import Policy

    cases = pl.DataFrame(
        {
            "case_id": ["1", "2", "3", "4", "5"],
            "hospital_id": ["H1", "H1", "H2", "H2", "H1"],
            "dip_group": ["G1", "G2", "G1", "G1", "G2"],
            "dip_type": ["core"] * 5,
            "dip_score": [1000.0, 500.0, 1000.0, 1000.0, 500.0],
            "total_cost": [10_000.0, 5_000.0, 12_000.0, 30_000.0, 4_200.0],
            "insurance_type": ["职工", "职工", "职工", "居民", "居民"],
            "new_tech_cost": [None, None, None, None, 1_200.0],
            "discharge_date": ["2024-01-05", "2024-02-01", "2024-01-20", "2024-03-03", "2024-03-09"],
        }
    )
    cases.write_parquet(tmp_path / "grouped.parquet")
    (tmp_path / "policy.toml").write_text(POLICY_TOML, encoding="utf-8")
    r = CliRunner().invoke(
        dip_cli,
        [
            "settle",
            str(tmp_path / "grouped.parquet"),
            "--policy",
            str(tmp_path / "policy.toml"),
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "pool 职工" in r.output and "pool 居民" in r.output
    got = pl.read_csv(tmp_path / "out" / "cases.csv")
    want = dip.settle(cases, policy=Policy.from_toml(tmp_path / "policy.toml"), catalog="dip-demo")
    assert got["payment_fen"].to_list() == want.cases["payment_fen"].to_list()
    assert sum(got["payment_fen"].to_list()[:3]) == 2_500_000  # 职工: 25,000 yuan
    assert sum(got["payment_fen"].to_list()[3:]) == 2_000_000  # 居民: 20,000 yuan
    monthly = pl.read_csv(tmp_path / "out" / "monthly.csv")
    assert sorted(monthly["month"].to_list()) == ["2024-01", "2024-01", "2024-02", "2024-03", "2024-03"]

    both = CliRunner().invoke(
        dip_cli,
        [
            "settle",
            str(tmp_path / "grouped.parquet"),
            "--fund",
            "1000",
            "--policy",
            str(tmp_path / "policy.toml"),
        ],
    )
    assert both.exit_code != 0 and "one of them" in both.output


def test_dip_settle_command_two_dimensional_optimal_interval(tmp_path):
    # --hospital-costs makes the 优值区间 two-dimensional, as hospital_costs= does in Python
    cases = pl.DataFrame(
        {
            "case_id": [str(i) for i in range(6)],
            "hospital_id": ["H1", "H2", "H3", "H3", "H4", "H5"],
            "dip_group": ["G1"] * 6,
            "dip_type": ["core"] * 6,
            "dip_score": [1000.0] * 6,
            "total_cost": [9_000.0, 8_000.0, 15_000.0, 15_000.0, 8_600.0, 9_400.0],
        }
    )
    cases.write_parquet(tmp_path / "grouped.parquet")
    costs = {"H1": 7_000, "H2": 7_600, "H3": 28_000, "H4": 7_300, "H5": 9_000}
    (tmp_path / "costs.csv").write_bytes(
        ("医疗机构编码,住院总成本\n" + "".join(f"{h},{c}\n" for h, c in costs.items())).encode("gbk")
    )
    args = [
        "settle",
        str(tmp_path / "grouped.parquet"),
        "--fund",
        "10000",
        "--point-value",
        "optimal_interval",
    ]
    r = CliRunner().invoke(
        dip_cli, [*args, "--hospital-costs", str(tmp_path / "costs.csv"), "-o", str(tmp_path / "o")]
    )
    assert r.exit_code == 0, r.output
    want = dip.settle(cases, 10000, point_value="optimal_interval", hospital_costs=costs)
    one_d = dip.settle(cases, 10000, point_value="optimal_interval")
    assert want.point_value != pytest.approx(one_d.point_value)  # the second dimension matters here
    region = pl.read_csv(tmp_path / "o" / "region.csv")
    assert region["pv_optimal_interval"][0] == pytest.approx(want.point_value)
    hosp = pl.read_csv(tmp_path / "o" / "hospitals.csv")
    assert hosp["payment_fen"].to_list() == want.hospitals["payment_fen"].to_list()
    wrong = CliRunner().invoke(dip_cli, [*args[:-2], "--hospital-costs", str(tmp_path / "costs.csv")])
    assert wrong.exit_code != 0 and "optimal_interval" in wrong.output
