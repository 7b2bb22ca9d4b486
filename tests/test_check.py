"""``casemix.check`` / ``casemix check``: the per-hospital data check, worked by hand and at scale."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest
from click.testing import CliRunner
from tests.conftest import GOLDEN, needs_shared

import casemix
from casemix.check import ALL, COLUMNS, check

# six cases of three hospitals on the tiny scheme with grey lists (tests/tiny_scheme.py)
HAND = pl.DataFrame(
    {
        "case_id": ["1", "2", "2", "4", "5", "6"],
        "hospital_id": ["A", "A", "A", "B", "B", None],
        "diagnoses": ["I50.000", "I99.x00", "QQ9.999", "I99.x00", "I50.000", ""],
        "procedures": ["", "", "", "89.4600", "", ""],
        "sex": ["1", "1", "2", "1", "1", "2"],
        "age": ["85", "60", "60", "60", "abc", "40"],
        "los": ["5"] * 6,
        "discharge": ["1"] * 6,
        "total_cost": ["100", "", "-5", "20", "10", "50"],
    }
)
# 1: FR15; 2: FT19, grey pdx, no cost; 3: no MDC, unknown pdx, cost < 0, case id 2 again;
# 4: invalid (grey principal procedure), grey pdx and pproc; 5: invalid (age unreadable);
# 6: invalid (no diagnosis), no hospital
HAND_COUNTS = {
    #          rows grp rate  inv ungr unk gpdx gpp malf nopdx nocost neg dup
    "(none)": (1, 0, 0.0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0),
    "A": (3, 2, 2 / 3, 0, 1, 1, 1, 0, 0, 0, 1, 1, 2),
    "B": (2, 0, 0.0, 2, 0, 0, 1, 1, 1, 0, 0, 0, 0),
    ALL: (6, 2, 2 / 6, 3, 1, 1, 2, 1, 1, 1, 1, 1, 2),
}


def test_hand_worked_check(tiny_grey):
    got = check(HAND, scheme=tiny_grey)
    assert got.scheme == "tiny"
    assert got.hospitals.columns == ["hospital_id", *COLUMNS]
    rows = {r[0]: r[1:] for r in got.hospitals.iter_rows()}
    assert list(rows) == list(HAND_COUNTS)  # sorted ids, the whole file last
    for hospital, want in HAND_COUNTS.items():
        assert rows[hospital] == pytest.approx(want), hospital
    assert got.unknown_codes.rows() == [
        ("A", "unknown_pdx", "QQ9.999", 1),
        (ALL, "unknown_pdx", "QQ9.999", 1),
    ]
    assert got.grey_codes.rows() == [
        ("A", "grey_pdx", "I99.x00", 1),
        ("B", "grey_pdx", "I99.x00", 1),
        ("B", "grey_pproc", "89.4600", 1),
        (ALL, "grey_pdx", "I99.x00", 2),
        (ALL, "grey_pproc", "89.4600", 1),
    ]
    assert got.malformed.rows() == [("B", "age", 1), (ALL, "age", 1)]


def test_check_agrees_with_group_on_synthetic_data(chs):
    cases = casemix.synth_cases(chs, 3000, seed=3, n_hospitals=5, layout="strings")
    i = pl.int_range(pl.len())
    cases = cases.with_columns(  # every 10th principal diagnosis unknown (4 codes), every 11th grey
        pl.when(i % 10 == 0)
        .then(pl.format("QQ{}.000", i // 10 % 4))
        .when(i % 11 == 0)
        .then(pl.lit(sorted(chs.lists["grey.pdx"])[0]))
        .otherwise(pl.col("diagnoses").str.split("|").list.first())
        .alias("pdx"),
        pl.col("diagnoses").str.split("|").list.slice(1).list.join("|").alias("sdx"),
    ).drop("diagnoses")
    got = check(cases, scheme=chs, top=3)
    grouped = casemix.group(cases, scheme=chs)
    per = got.hospitals.filter(pl.col("hospital_id") != ALL)
    assert per.height == 5 and got.total["rows"] == 3000
    # every row is counted once in its hospital and once in the whole
    for col in COLUMNS:
        if col != "grouping_rate":
            assert per[col].sum() == got.total[col], col
    assert got.total["grouped"] == int((grouped["status"] == "分组成功").sum())
    assert got.total["invalid"] == int((grouped["status"] == "信息校验不通过").sum())
    want_grey = int(grouped["warnings"].str.contains("grey_pdx:", literal=True).sum())
    assert got.total["grey_pdx"] == want_grey >= 3000 // 11 - 3000 // 110
    listed = dict(got.unknown_codes.group_by("hospital_id").len().iter_rows())
    distinct = dict(
        cases.filter(pl.col("pdx").str.starts_with("QQ"))
        .group_by("hospital_id")
        .agg(pl.col("pdx").n_unique())
        .iter_rows()
    )
    assert listed == {**{h: min(3, k) for h, k in distinct.items()}, ALL: 3}  # top 3 per hospital
    whole = got.unknown_codes.filter(pl.col("hospital_id") == ALL)
    assert whole["cases"].to_list() == [75, 75, 75]  # 300 unknown principals, 4 codes


@needs_shared
def test_check_on_the_golden_cases(chs, tmp_path):
    """The golden file as an extract of three hospitals, a seventh of the costs missing."""
    golden = pl.read_csv(GOLDEN, infer_schema=False).drop("mdc", "adrg", "drg", "status", "reason")
    path = tmp_path / "golden.csv"
    golden.with_columns(
        pl.format("H{}", pl.int_range(pl.len()) % 3).alias("hospital_id"),
        pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise(pl.lit("1,234.50")).alias("总费用"),
    ).write_csv(path)
    got = check(path, scheme=chs)
    t = got.total
    assert (t["rows"], t["grouped"], t["invalid"], t["ungroupable"]) == (5000, 4580, 211, 209)
    assert (t["grey_pdx"], t["grey_pproc"]) == (37, 311)
    assert t["missing_cost"] == 715 and t["duplicate_case_id"] == 0
    assert got.hospitals["rows"].to_list() == [1667, 1667, 1666, 5000]


def test_cli_check_prints_and_writes(tiny_grey, tmp_path):
    from casemix.cli import main

    src = tmp_path / "cases.csv"
    HAND.write_csv(src)
    runner = CliRunner()
    res = runner.invoke(
        main,
        ["check", str(src), "--scheme", str(tiny_grey.path), "-o", str(tmp_path / "check.json")],
        env={"COLUMNS": "160"},
    )
    assert res.exit_code == 0, res.output
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", res.output).split())  # no colour, no wrapping
    assert "6 cases, 3 hospital(s), scheme tiny; 2 grouped (33.3%)" in text
    assert "QQ9.999" in text and "89.4600" in text and "age" in text
    assert "B: only 0 of 2 cases grouped" in text and "(all): only 2 of 6 cases" in text
    assert "A: only" not in text and "1 case(s) have no total cost" in text
    doc = json.loads((tmp_path / "check.json").read_text("utf-8"))
    assert doc["scheme"] == "tiny" and doc["hospitals"][-1]["rows"] == 6
    for out in ("check.xlsx", "check.csv"):
        res = runner.invoke(
            main, ["check", str(src), "--scheme", str(tiny_grey.path), "-o", str(tmp_path / out)]
        )
        assert res.exit_code == 0, res.output
    assert pl.read_excel(tmp_path / "check.xlsx", sheet_name="grey_codes").height == 5
    assert pl.read_csv(tmp_path / "check.csv")["rows"].to_list() == [1, 3, 2, 6]
    assert pl.read_csv(tmp_path / "check.malformed.csv").rows() == [("B", "age", 1), (ALL, "age", 1)]
    bad = runner.invoke(
        main, ["check", str(src), "--scheme", str(tiny_grey.path), "-o", str(tmp_path / "check.txt")]
    )
    assert bad.exit_code == 2 and "Error:" in bad.output and ".xlsx, .json or .csv" in bad.output


def test_casemix_check_is_callable_as_function_and_module(tiny_grey):
    import casemix.check as module

    assert casemix.check(HAND, scheme=tiny_grey).total["rows"] == 6
    assert module(HAND, tiny_grey).total["rows"] == 6


def test_cli_check_takes_a_column_map(tiny_grey, tmp_path):
    from casemix.cli import main

    src = tmp_path / "cases.csv"
    HAND.rename({"hospital_id": "院区", "diagnoses": "诊断串"}).write_csv(src)
    (tmp_path / "map.toml").write_text(
        '[columns]\n"院区" = "hospital_id"\n"诊断串" = "diagnoses"\n', encoding="utf-8"
    )
    res = CliRunner().invoke(
        main,
        [
            "check",
            str(src),
            "--scheme",
            str(tiny_grey.path),
            "--map",
            str(tmp_path / "map.toml"),
            "-o",
            str(tmp_path / "c.csv"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert pl.read_csv(tmp_path / "c.csv")["rows"].to_list() == [1, 3, 2, 6]
