"""The command line: demo end to end, group on CSV and Parquet, schemes."""

from __future__ import annotations

import polars as pl
from click.testing import CliRunner

from casemix.cli import main
from casemix.synth import synth_cases


def test_demo_runs_group_settle_report_and_budget_is_exact(tmp_path):
    res = CliRunner().invoke(main, ["demo", "-n", "3000", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())  # rich wraps lines
    # both pools, each paying its budget to the fen, with base and floating point values
    assert out.count("= the budget to the fen (True)") == 2
    assert "pool 职工" in out and "pool 居民" in out and "floating" in out
    assert "scheme chs-drg-1.1" in res.output  # the shipped national scheme by default
    assert (tmp_path / "report" / "index.html").is_file()
    html = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "Patient burden" in html
    grouped = pl.read_parquet(tmp_path / "grouped.parquet")
    assert grouped.height == 3000
    hospitals = pl.read_csv(tmp_path / "settlement" / "hospitals.csv")
    region = pl.read_csv(tmp_path / "settlement" / "region.csv")
    assert hospitals["payment_fen"].sum() + region["retained_fen"][0] == region["budget_fen"][0]
    # the README's command run twice: the rerun replaces its own outputs, no --force needed
    again = CliRunner().invoke(main, ["demo", "-n", "1000", "-o", str(tmp_path)])
    assert again.exit_code == 0, again.output
    assert "replacing the previous demo run's outputs" in again.output
    assert pl.read_parquet(tmp_path / "grouped.parquet").height == 1000


def test_demo_writes_over_its_own_folder_only(tmp_path):
    from rich.console import Console

    from casemix.cli.demo import MARKER, _own_folder

    quiet = Console(quiet=True)
    fresh = tmp_path / "fresh"
    assert _own_folder(fresh, False, quiet) is False  # nothing to replace yet
    assert (fresh / MARKER).is_file()
    assert _own_folder(fresh, False, quiet) is True  # a previous demo run: replace
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "grouped.parquet").write_text("someone's file")
    assert _own_folder(theirs, False, quiet) is False
    assert not (theirs / MARKER).exists()  # their folder is never claimed without --force
    res = CliRunner().invoke(main, ["demo", "-n", "200", "-o", str(theirs)])
    assert res.exit_code != 0 and "--force" in res.output
    assert (theirs / "grouped.parquet").read_text() == "someone's file"
    assert _own_folder(theirs, True, quiet) is True and (theirs / MARKER).is_file()


def test_group_command_csv_and_parquet_keep_rows(tmp_path):
    cases = synth_cases("casemix-demo", 500, seed=5)
    cases.write_parquet(tmp_path / "in.parquet")
    synth_cases("casemix-demo", 200, seed=6, layout="strings").write_csv(tmp_path / "in.csv")
    runner = CliRunner()
    demo = ["--scheme", "casemix-demo"]  # the cases were drawn from it
    r1 = runner.invoke(
        main, ["group", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "out.parquet"), *demo]
    )
    assert r1.exit_code == 0, r1.output
    out = pl.read_parquet(tmp_path / "out.parquet")
    assert out["case_id"].to_list() == cases["case_id"].to_list()
    assert {"mdc", "adrg", "drg", "severity", "status", "reason", "warnings"} <= set(out.columns)
    r_key = runner.invoke(
        main,
        [
            "group",
            str(tmp_path / "in.parquet"),
            "-o",
            str(tmp_path / "key.parquet"),
            "--keep",
            "case_id,hospital_id",
            "--quiet",
            *demo,
        ],
    )
    assert r_key.exit_code == 0, r_key.output
    key = pl.read_parquet(tmp_path / "key.parquet")
    assert key.columns == [
        "case_id",
        "hospital_id",
        "mdc",
        "adrg",
        "drg",
        "severity",
        "status",
        "reason",
        "warnings",
    ]
    assert key.equals(out.select(key.columns))
    r2 = runner.invoke(
        main,
        [
            "group",
            str(tmp_path / "in.csv"),
            "-o",
            str(tmp_path / "out.csv"),
            "--engine",
            "reference",
            "--quiet",
            *demo,
        ],
    )
    assert r2.exit_code == 0, r2.output
    assert pl.read_csv(tmp_path / "out.csv", infer_schema=False).height == 200


def test_schemes_command_lists_the_demo_and_the_national_scheme():
    res = CliRunner().invoke(main, ["schemes"])
    assert res.exit_code == 0 and "casemix-demo" in res.output
    assert "chs-drg-1.1" in res.output and "376 ADRG, 628 DRG" in res.output


def test_python_m_casemix_runs_the_cli():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "casemix", "--help"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("Usage: casemix ") and "demo" in out.stdout
