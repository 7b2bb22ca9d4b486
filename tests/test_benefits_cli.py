"""``casemix benefits`` on synthetic cases and on a file."""

from __future__ import annotations

import polars as pl
from click.testing import CliRunner

from casemix.benefits import OUTPUT_COLUMNS, synthetic_cases
from casemix.cli.benefits_cmd import benefits


def test_whatif_on_synthetic_cases_prints_change_by_group(tmp_path):
    res = CliRunner().invoke(
        benefits,
        [
            "--synthetic",
            "3000",
            "--policy",
            "illustrative",
            "--compare",
            "illustrative-whatif-poor",
            "-o",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "ILLUSTRATIVE" in res.output and "ΔOOP" in res.output and "低保" in res.output
    diff = pl.read_csv(tmp_path / "compare.csv")
    overall = diff.row(0, named=True)
    assert overall["cases"] == 3000
    # the what-if only changes 大病 for poor people: ordinary people are untouched
    ordinary = diff.filter(pl.col("assist_status") == "普通")
    assert (ordinary["psn_part_amt_change"] == 0).all() and (ordinary["fund_pay_change"] == 0).all()
    assert overall["hifmi_pay_change"] > 0
    assert overall["psn_part_amt_change"] <= 0


def test_cases_file_in_cases_and_summary_out(tmp_path):
    src = tmp_path / "cases.csv"
    synthetic_cases(500, seed=4).write_csv(src)
    res = CliRunner().invoke(
        benefits, [str(src), "--policy", "illustrative", "-o", str(tmp_path / "out"), "--by", "hosp_level"]
    )
    assert res.exit_code == 0, res.output
    out = pl.read_parquet(tmp_path / "out" / "cases.parquet")
    assert out.height == 500 and set(OUTPUT_COLUMNS) <= set(out.columns)
    summary = pl.read_csv(tmp_path / "out" / "summary.csv")
    assert summary["hosp_level"].to_list() == [1, 2, 3] and summary["cases"].sum() == 500


def test_usage_errors():
    runner = CliRunner()
    res = runner.invoke(benefits, ["--policy", "illustrative"])
    assert res.exit_code != 0 and "either CASES or --synthetic" in res.output
    res = runner.invoke(benefits, ["--synthetic", "10", "--policy", "illustrative", "--by", "city"])
    assert res.exit_code != 0 and "unknown group column" in res.output
