"""End to end in Chinese: a 200-case GBK-encoded CSV with 医保结算清单 column names and
one user column mapped by ``--map``, grouped by the shipped national scheme, through ``casemix group → weights → settle →
report`` on the command line, without renaming a column (issue 14 item 2)."""

from __future__ import annotations

import re

import polars as pl
from click.testing import CliRunner

from casemix.budget import shipped_policy
from casemix.cli import main
from casemix.synth import synth_cases

# canonical name -> the 医保结算清单 / 病案首页 name the extract uses
CHINESE = {
    "case_id": "病案号",
    "hospital_id": "定点医疗机构代码",
    "hospital_level": "医院等级",
    "sex": "性别",
    "age": "年龄",
    "age_days": "年龄(天)",
    "birth_weight": "新生儿出生体重(克)",
    "los": "实际住院天数",
    "discharge": "离院方式",
    "pdx": "主要诊断编码",
    "sdx": "其他诊断编码",
    "pproc": "主要手术操作编码",
    "oproc": "其他手术操作编码",
}
MINE = "医疗费用合计(元)"  # the user's own name for total_cost: only --map knows it


def chinese_extract(n: int = 200) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the extract as written to CSV, the synthetic cases it came from)."""
    cases = synth_cases("chs-drg-1.1", n, seed=14)  # the shipped national scheme
    sexes = {1.0: "男", 2.0: "女"}
    text = cases.with_columns(
        pl.col("sex").replace_strict(sexes, default=None, return_dtype=pl.String),
        pl.col("sdx").list.join("|"),
        pl.col("oproc").list.join("|"),
        # money as an extract writes it: thousands separators, two decimals
        pl.col("total_cost").map_elements(lambda x: f"{x:,.2f}", return_dtype=pl.String),
    )
    # two bad costs the steps must leave out and count
    text = text.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.lit("待补录"))
        .when(pl.int_range(pl.len()) == 7)
        .then(pl.lit("-120.00"))
        .otherwise(pl.col("total_cost"))
        .alias("total_cost")
    )
    return text.rename({**CHINESE, "total_cost": MINE}), cases


def test_chinese_extract_group_weights_settle_report(tmp_path):
    extract, cases = chinese_extract()
    src = tmp_path / "结算清单.csv"
    src.write_bytes(extract.write_csv().encode("gbk"))  # as many Chinese exports are
    (tmp_path / "map.toml").write_text(f'[columns]\n"{MINE}" = "total_cost"\n', encoding="utf-8")
    budget = round(cases["total_cost"].sum() * 0.9)
    policy = tmp_path / "policy.toml"
    policy.write_text(
        re.sub(
            r"total_yuan = \d+", f"total_yuan = {budget}", shipped_policy("demo").read_text(encoding="utf-8")
        ),
        encoding="utf-8",
    )
    mp = ["--map", str(tmp_path / "map.toml")]
    run = CliRunner().invoke

    # no --scheme: the shipped national scheme (CHS-DRG 1.1) is the default
    r = run(main, ["group", str(src), "-o", str(tmp_path / "grouped.csv"), "--quiet", *mp])
    assert r.exit_code == 0, r.output
    grouped = pl.read_csv(tmp_path / "grouped.csv", infer_schema=False)
    # the caller's columns, names and order, then the results
    assert grouped.columns[: len(extract.columns)] == extract.columns
    assert grouped[MINE].to_list() == extract[MINE].to_list()
    assert grouped["病案号"].to_list() == cases["case_id"].to_list()
    assert (grouped["drg"].is_not_null() & (grouped["drg"] != "0000")).sum() > 150

    r = run(main, ["weights", str(tmp_path / "grouped.csv"), "-o", str(tmp_path / "w.csv"), *mp])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "malformed:total_cost: 1 row(s) left out" in out
    assert "negative:total_cost: 1 row(s) left out" in out
    weights = pl.read_csv(tmp_path / "w.csv")
    assert weights.height > 5 and (weights["rw"] > 0).all()

    r = run(
        main,
        [
            "settle",
            str(tmp_path / "grouped.csv"),
            "--weights",
            str(tmp_path / "w.csv"),
            "--policy",
            str(policy),
            "-o",
            str(tmp_path / "settle"),
            *mp,
        ],
    )
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "exact to the fen" in out and "malformed:total_cost: 1 row(s) left out" in out
    settled = pl.read_csv(tmp_path / "settle" / "cases.csv", infer_schema=False)
    assert settled.height == 200
    assert settled.columns[: len(grouped.columns)] == grouped.columns
    assert settled[MINE].to_list() == extract[MINE].to_list()
    assert settled["left_out"][3] == "malformed:total_cost"
    assert settled["left_out"][7] == "negative:total_cost"
    assert settled["payment_fen"][3] is None and settled["payment_fen"][7] is None
    paid = settled["payment_fen"].cast(pl.Int64).sum()
    assert paid == budget * 100
    hospitals = pl.read_csv(tmp_path / "settle" / "hospitals.csv")
    assert hospitals["cases"].sum() == 198
    # the hospital levels came from 医院等级: level coefficients 1.0 / 0.9 / 0.8
    assert set(hospitals["level"].cast(pl.String).to_list()) == {"1", "2", "3"}

    r = run(
        main,
        [
            "report",
            str(tmp_path / "grouped.csv"),
            "--weights",
            str(tmp_path / "w.csv"),
            "--policy",
            str(policy),
            "-o",
            str(tmp_path / "report"),
            *mp,
        ],
    )
    assert r.exit_code == 0, r.output
    html = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "malformed:total_cost: 1 row(s) left out" in html
    assert "H001" in html


def test_map_file_errors_are_one_line(tmp_path):
    extract, _ = chinese_extract(20)
    extract.write_csv(tmp_path / "x.csv")
    (tmp_path / "map.toml").write_text('[columns]\n"x" = "totalcost"\n', encoding="utf-8")
    r = CliRunner().invoke(
        main,
        [
            "weights",
            str(tmp_path / "x.csv"),
            "-o",
            str(tmp_path / "w.csv"),
            "--map",
            str(tmp_path / "map.toml"),
        ],
    )
    assert r.exit_code == 2
    assert "line 2: mapping 'x' -> 'totalcost'" in " ".join(r.output.split())


def test_dip_commands_read_chinese_names_and_a_map(tmp_path):
    from casemix.cli.dip_cmd import dip as dip_cli
    from casemix.dip import synth

    h = synth.history(600, years=(2022, 2023), seed=7).drop("malformed", "intake_warnings")
    names = {
        "case_id": "病案号",
        "hospital_id": "定点医疗机构代码",
        "year": "结算年度",
        "pdx": "主要诊断编码",
        "sdx": "其他诊断编码",
        "pproc": "主要手术操作编码",
        "oproc": "其他手术操作编码",
        "discharge_date": "出院日期",
        "total_cost": MINE,
    }
    text = h.with_columns(
        pl.col("sdx").list.join("|"),
        pl.col("oproc").list.join("|"),
        pl.col("discharge_date").dt.strftime("%Y%m%d"),  # 20230105: the one date rule
        pl.when(pl.int_range(pl.len()) == 2)
        .then(pl.lit("-1"))
        .otherwise(pl.col("total_cost").map_elements(lambda x: f"{x:,.2f}", return_dtype=pl.String))
        .alias("total_cost"),
    ).rename(names)
    src = tmp_path / "history.csv"
    text.write_csv(src)
    (tmp_path / "map.toml").write_text(f'[columns]\n"{MINE}" = "total_cost"\n', encoding="utf-8")
    mp = ["--map", str(tmp_path / "map.toml")]
    run = CliRunner().invoke

    r = run(dip_cli, ["build", str(src), "-o", str(tmp_path / "cat"), "--threshold", "10", *mp])
    assert r.exit_code == 0, r.output
    assert "negative:total_cost: 1 row(s) left out" in " ".join(r.output.split())

    r = run(
        dip_cli,
        ["group", str(src), "--catalog", str(tmp_path / "cat"), "-o", str(tmp_path / "grouped.csv"), *mp],
    )
    assert r.exit_code == 0, r.output
    grouped = pl.read_csv(tmp_path / "grouped.csv", infer_schema=False)
    assert grouped.columns[: len(text.columns)] == text.columns
    assert grouped["病案号"].to_list() == h["case_id"].to_list()
    assert (grouped["status"] == "grouped").sum() > 300

    r = run(
        dip_cli,
        [
            "settle",
            str(tmp_path / "grouped.csv"),
            "--fund",
            "1000000",
            "--catalog",
            str(tmp_path / "cat"),
            "-o",
            str(tmp_path / "settled"),
            *mp,
        ],
    )
    assert r.exit_code == 0, r.output
    assert "negative:total_cost: 1 row(s) left out" in " ".join(r.output.split())
    cases = pl.read_parquet(tmp_path / "settled" / "cases.parquet")
    assert cases.height == h.height and cases["left_out"][2] == "negative:total_cost"
    assert cases["payment_fen"][2] is None
    hosp = pl.read_csv(tmp_path / "settled" / "hospitals.csv")
    assert hosp["point_payment_fen"].sum() == 100_000_000
    monthly = pl.read_csv(tmp_path / "settled" / "monthly.csv")
    assert set(monthly["month"].to_list()) - {None} <= set(range(1, 13))  # dates were read
    assert monthly["month"].n_unique() > 1
