"""``casemix dip …`` commands and the DIP demo, end to end on small synthetic data."""

from __future__ import annotations

import polars as pl
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
