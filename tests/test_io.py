"""casemix.io: reading the files people have, writing outputs that survive failure."""

from __future__ import annotations

import os
import shutil
import warnings
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casemix.errors import InputError, PolicyError, SchemeError
from casemix.io import LossyDecodingWarning, atomic_path, detect_encoding, read_table, read_text, write_table
from conftest import SHARED, needs_shared
from strategies import fen_amounts, intake_cases, pipe_layout

CITY = SHARED / "reference-data" / "city-drg-tables" if SHARED else None

# the GBK files of the city tables, their first header cell and data rows, read by eye
# (`iconv -f gb18030 FILE | head`, `wc -l` minus the header)
GBK_FILES = {
    "北京2022.csv": ("DRG编码", 696, ("AE19", "肾移植", "5.8", "118507")),
    "无锡2022.csv": ("DRG编码", 602, ("0", "未入组", "0.2")),
    "泰州2022.csv": ("分组编码", 759, ("AA19", "心脏移植", "否", "1")),
    "盐城2022.csv": ("分组编码", 628, ("AA19", "心脏移植", "", "是")),
    "苏州2022.csv": ("DRG编码", 648, ("AA19", "心脏移植", "29.7")),
}


# ----------------------------------------------------------------- encodings


@needs_shared
@pytest.mark.parametrize("name", sorted(GBK_FILES))
def test_real_gbk_city_tables_are_detected_and_read(name):
    path = CITY / name
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # the premise: these files are not UTF-8
    assert detect_encoding(path) == "gb18030"
    head, rows, first = GBK_FILES[name]
    df = read_table(path)
    assert df.columns[0] == head
    assert df.height == rows
    row = tuple("" if v is None else v for v in df.row(0))
    assert row[: len(first)] == first


@needs_shared
def test_utf8_bom_city_table_has_a_clean_header():
    df = read_table(CITY / "常州2022.csv")
    assert (CITY / "常州2022.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert df.columns[:3] == ["DRG编码", "DRG名称", "RW"]
    assert df.height == 740


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_gb18030_only_characters_survive(tmp_path):
    # 㐀 (U+3400) is not in GBK: a file detected as GBK must still be decoded as GB18030
    text = "姓名,诊断\n" + "".join(f"张{i},急性阑尾炎㐀\n" for i in range(50))
    p = _write(tmp_path, "g.csv", text.encode("gb18030"))
    assert detect_encoding(p) == "gb18030"
    df = read_table(p)
    assert df.columns == ["姓名", "诊断"] and df.height == 50
    assert df["诊断"][0] == "急性阑尾炎㐀"


def test_forced_encoding_and_bad_bytes_name_the_offset(tmp_path):
    data = "医保编号,住院总费用\n张三,1\n".encode("gbk")
    p = _write(tmp_path, "g.csv", data + b"\x80\xff,2\n")
    with pytest.raises(InputError, match=rf"byte offset {len(data)} \(line 3\)"):
        read_table(p, encoding="gbk")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        df = read_table(p, encoding="gbk:replace")
    assert df.height == 2 and "\ufffd" in df["医保编号"][1]
    lossy = [w for w in seen if issubclass(w.category, LossyDecodingWarning)]
    assert len(lossy) == 1 and "2 undecodable" in str(lossy[0].message)


def test_utf8_file_with_one_bad_byte_is_an_error_not_garbage(tmp_path):
    body = "".join(f"K{i},急性阑尾炎,{i}\n" for i in range(30)).encode()
    p = _write(tmp_path, "u.csv", "case_id,诊断,cost\n".encode() + body + b"K30,\xff,1\n")
    offset = len("case_id,诊断,cost\n".encode() + body) + 4
    with pytest.raises(InputError, match=f"byte offset {offset} is not valid UTF-8"):
        read_table(p)
    with pytest.warns(LossyDecodingWarning, match="1 undecodable"):
        df = read_table(p, encoding="utf-8", errors="replace")
    assert df.height == 31 and df["诊断"][30] == "\ufffd"


def test_a_bad_byte_is_named_by_line_and_column(tmp_path):
    # polars reads valid UTF-8 without a Python check first; a bad byte anywhere — a
    # field, a quoted field, the header polars itself would patch — still stops the read
    head = "case_id,诊断,cost\n".encode()
    body = "".join(f"K{i},急性阑尾炎,{i}\n" for i in range(30)).encode()
    p = _write(tmp_path, "u.csv", head + body + b'K30,"a,\xff",1\n')
    with pytest.raises(InputError, match=r"u.csv, line 32, column '诊断': byte offset"):
        read_table(p)
    with pytest.raises(InputError, match=r"line 32, column '诊断': byte offset \d+ is not valid UTF-8"):
        read_table(p, encoding="utf-8")
    p = _write(tmp_path, "h.csv", "case_id,诊断".encode() + b"\xff,cost\n" + body)
    with pytest.raises(InputError, match=r"h.csv, line 1, column \(the header line\)"):
        read_table(p)
    data = "医保编号,住院总费用\n张三,1\n".encode("gbk")
    p = _write(tmp_path, "g.csv", data + b"1,\x80\xff\n")
    with pytest.raises(InputError, match=r"\(line 3\) is not valid gb18030 .*in column '住院总费用'"):
        read_table(p, encoding="gbk")


def test_read_text_accepts_a_bom_and_names_a_bad_byte(tmp_path):
    p = _write(tmp_path, "p.toml", b'\xef\xbb\xbfname = "x"\n')
    assert read_text(p) == 'name = "x"\n'
    p = _write(tmp_path, "q.toml", b'name = "x"\nnote = "\xb1\xb1"\n')
    with pytest.raises(PolicyError, match=r"q.toml, line 2: not UTF-8: byte 0xb1 at offset 19"):
        read_text(p, what="policy", error=PolicyError)
    with pytest.raises(SchemeError, match=r"line 2: not UTF-8: byte 0xb1 at offset 19") as info:
        read_text(p, what="scheme.toml", error=SchemeError)
    assert info.value.line == 2


def test_loaders_use_read_text(tmp_path):
    from casemix.budget import Policy
    from casemix.scheme import load_scheme

    demo = Path(__file__).resolve().parent.parent / "src/casemix/data/policies/demo.toml"
    bom = _write(tmp_path, "demo.toml", b"\xef\xbb\xbf" + demo.read_bytes())
    assert Policy.from_toml(bom).name == "demo"  # a BOM is accepted
    bad = _write(tmp_path, "bad.toml", demo.read_bytes().replace(b'name = "demo"', b'name = "d\xb1\xb1"'))
    with pytest.raises(PolicyError, match="bad.toml, line 6: not UTF-8: byte 0xb1 at offset"):
        Policy.from_toml(bad)
    # a scheme table with a GBK byte: SchemeError with file and line, no UnicodeDecodeError
    shipped = Path(__file__).resolve().parent.parent / "src/casemix/grouping_tables/casemix-demo"
    folder = tmp_path / "scheme"
    shutil.copytree(shipped, folder)
    table = next(p for p in sorted(folder.glob("*.csv")) if p.stat().st_size > 100)
    lines = table.read_bytes().split(b"\n")
    lines[1] = lines[1] + "中".encode("gbk")
    table.write_bytes(b"\n".join(lines))
    with pytest.raises(SchemeError, match=rf"{table.name}, line 2: not UTF-8: byte 0x"):
        load_scheme(folder)


# ----------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("e.csv", b"", "empty"),
        ("h.csv", b"\xef\xbb\xbf", "empty"),
        ("r.csv", b"a,b\n1,2\n3,4,5\n", "line 3 has 3 fields where the header has 2"),
        (
            "q.csv",
            b'a,b\n1,2\n"3,4\n' + b"5,6\n" * 300,
            "line 3: a quote opened on this line is never closed",
        ),
        ("d.csv", b"a,a\n1,2\n", "line 1: duplicate column name 'a' \\(columns 1 and 2\\)"),
        ("z.parquet", b"", "file is empty \\(0 bytes\\)"),
        ("c.parquet", b"PAR1garbage", "cannot be read as Parquet"),
        ("x.xlsx", b"garbage", "not a readable Excel"),
        ("x.json", b"{}", "unknown file type"),
    ],
)
def test_bad_files_are_input_errors_naming_the_file(tmp_path, name, data, message):
    p = _write(tmp_path, name, data)
    with pytest.raises(InputError, match=message) as info:
        read_table(p)
    assert name in str(info.value)


def test_folder_without_parquet(tmp_path):
    with pytest.raises(InputError, match="folder holds no .parquet files"):
        read_table(tmp_path)


# ----------------------------------------------------------------- writing


def test_human_output_shows_yuan_with_two_decimals(tmp_path):
    df = pl.DataFrame(
        {
            "hospital_id": ["H1", "H2"],
            "payment_fen": [2848715, -5],
            "cmi": [28487.150000000005, 1 / 3],
            "状态": ["分组成功", "未入组"],
        }
    )
    csv = write_table(df, tmp_path / "h.csv", human=True)
    raw = csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # human CSV: BOM by default
    assert raw.decode("utf-8-sig").splitlines() == [
        "hospital_id,payment_fen,payment_yuan,cmi,状态",
        "H1,2848715,28487.15,28487.15,分组成功",
        "H2,-5,-0.05,0.333333333333,未入组",
    ]
    machine = write_table(df, tmp_path / "m.csv")
    assert not machine.read_bytes().startswith(b"\xef\xbb\xbf")
    assert "H1,2848715," in machine.read_text()
    xlsx = write_table(df, tmp_path / "h.xlsx", human=True)
    back = read_table(xlsx, infer_schema=True)
    assert back.columns == ["hospital_id", "payment_fen", "payment_yuan", "cmi", "状态"]
    assert back["payment_yuan"].to_list() == [28487.15, -0.05]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(fen_amounts, min_size=1, max_size=20))
def test_yuan_is_exact_for_any_fen(tmp_path, fens):
    out = write_table(
        pl.DataFrame({"x_fen": fens}, schema={"x_fen": pl.Int64}), tmp_path / "y.csv", human=True, force=True
    )
    shown = [line.split(",")[1] for line in out.read_text(encoding="utf-8-sig").splitlines()[1:]]
    assert [Decimal(s) * 100 for s in shown] == [Decimal(f) for f in fens]
    assert all(len(s.split(".")[1]) == 2 for s in shown)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(intake_cases(max_size=8), st.sampled_from(["csv", "xlsx", "parquet"]), st.booleans())
def test_round_trip_keeps_every_row_and_value(tmp_path, cases, suffix, bom):
    df = pipe_layout(cases).with_columns(pl.all().cast(pl.String))
    out = write_table(df, tmp_path / f"t.{suffix}", bom=bom, force=True)
    back = read_table(out)
    assert back.height == df.height
    if suffix == "parquet":
        assert back.equals(df)
    else:  # text formats: an empty string and a missing value are one thing
        norm = [pl.col(c).fill_null("") for c in df.columns]
        assert back.select(norm).equals(df.select(norm))


def test_existing_output_needs_force_and_input_is_refused(tmp_path):
    df = pl.DataFrame({"a": [1]})
    out = write_table(df, tmp_path / "o.parquet")
    with pytest.raises(InputError, match="exists; pass --force"):
        write_table(df, out)
    write_table(pl.DataFrame({"a": [2]}), out, force=True)
    assert pl.read_parquet(out)["a"].to_list() == [2]
    with pytest.raises(InputError, match="the output is the input"):
        write_table(df, tmp_path / "." / "o.parquet", force=True, inputs=[out])
    link = tmp_path / "link.parquet"
    os.symlink(out, link)
    with pytest.raises(InputError, match="the output is the input"):
        write_table(df, link, force=True, inputs=[out])
    with pytest.raises(InputError, match="must end in"):
        write_table(df, tmp_path / "o.json")


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, RuntimeError])
def test_failed_write_leaves_the_old_file_and_no_partial_file(tmp_path, monkeypatch, interrupt):
    out = tmp_path / "o.csv"
    out.write_text("old\n")
    real = pl.DataFrame.write_csv

    def half_then_fail(self, fh, **kw):
        real(self.head(1), fh, **kw)  # some bytes reach the file, then the failure
        raise interrupt()

    monkeypatch.setattr(pl.DataFrame, "write_csv", half_then_fail)
    with pytest.raises(interrupt):
        write_table(pl.DataFrame({"a": range(1000)}), out, force=True)
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv"]


def test_atomic_path_for_path_writers(tmp_path):
    target = tmp_path / "sub" / "x.parquet"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and not target.exists()
        pl.DataFrame({"a": [1]}).write_parquet(tmp)
    assert pl.read_parquet(target)["a"].to_list() == [1]
    assert [p.name for p in target.parent.iterdir()] == ["x.parquet"]


def test_xlsx_has_frozen_header_and_widths(tmp_path):
    import zipfile

    out = write_table(
        pl.DataFrame({"drg": ["AB19"], "name": ["有创呼吸机支持，96小时或ECMO"]}), tmp_path / "w.xlsx"
    )
    sheet = zipfile.ZipFile(out).read("xl/worksheets/sheet1.xml").decode()
    assert 'state="frozen"' in sheet and 'ySplit="1"' in sheet
    assert "<cols>" in sheet and 'customWidth="1"' in sheet


# ----------------------------------------------------------------- the command line


def _cli(*args):
    from click.testing import CliRunner

    from casemix.cli import main

    res = CliRunner().invoke(main, [str(a) for a in args])
    return res, res.output + ("" if res.exception is None else str(res.exception))


def test_cli_group_reads_gbk_and_xlsx_and_guards_its_output(tmp_path):
    from casemix.synth import synth_cases

    cases = synth_cases("casemix-demo", 120, seed=7, layout="strings").with_columns(
        pl.lit("急诊入院，医保结算").alias("备注")
    )
    src = tmp_path / "in.csv"
    src.write_bytes(cases.write_csv().encode("gbk"))
    out = tmp_path / "out.csv"
    res, text = _cli("group", src, "-o", out, "--quiet")
    assert res.exit_code == 0, text
    back = read_table(out)
    assert back.height == 120 and back["备注"].unique().to_list() == ["急诊入院，医保结算"]
    res, text = _cli("group", src, "-o", out, "--quiet")
    assert res.exit_code != 0 and "exists; pass --force" in text
    assert _cli("group", src, "-o", out, "--quiet", "--force")[0].exit_code == 0
    before = src.read_bytes()
    res, text = _cli("group", src, "-o", src, "--quiet", "--force")
    assert res.exit_code != 0 and "the output is the input" in text
    assert src.read_bytes() == before
    # forced encoding, Excel in and out
    res, text = _cli("group", src, "-o", tmp_path / "o2.csv", "--encoding", "gbk", "--quiet")
    assert res.exit_code == 0, text
    xlsx = write_table(cases, tmp_path / "in.xlsx")
    res, text = _cli("group", xlsx, "-o", tmp_path / "out.xlsx", "--quiet")
    assert res.exit_code == 0, text
    assert read_table(tmp_path / "out.xlsx").height == 120


def test_cli_streaming_parquet_output_is_guarded(tmp_path):
    from casemix.synth import synth_cases

    src = tmp_path / "in.parquet"
    synth_cases("casemix-demo", 200, seed=8).write_parquet(src)
    out = tmp_path / "out.parquet"
    assert _cli("group", src, "-o", out, "--quiet")[0].exit_code == 0
    res, text = _cli("group", src, "-o", out, "--quiet")
    assert res.exit_code != 0 and "exists; pass --force" in text
    before = src.read_bytes()
    res, text = _cli("group", src, "-o", src, "--quiet", "--force")
    assert res.exit_code != 0 and "the output is the input" in text
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.parquet"]


def test_settlement_tables_for_people_and_machines(tmp_path):
    import casemix
    from casemix.settle import run_demo_settlement
    from casemix.synth import synth_cases

    grouped = casemix.group(synth_cases("casemix-demo", 600, seed=9), scheme="casemix-demo")
    s = run_demo_settlement(grouped)
    paths = s.write(tmp_path, fmt="xlsx")
    hosp = read_table(paths["hospitals"], infer_schema=True)
    # people see yuan with 2 decimals beside the exact fen
    assert (hosp["payment_fen"] == (hosp["payment_yuan"] * 100).round(0).cast(pl.Int64)).all()
    assert hosp["payment_fen"].sum() == s.region["budget_fen"][0]
    with pytest.raises(InputError, match="exists; pass --force"):
        s.write(tmp_path, fmt="xlsx")
    csv = s.write(tmp_path, fmt="csv")
    assert csv["hospitals"].read_bytes().startswith(b"\xef\xbb\xbf")  # for people
    assert not csv["cases"].read_bytes().startswith(b"\xef\xbb\xbf")  # for programs
    assert "payment_yuan" not in read_table(csv["cases"]).columns


def test_chinese_gbk_extract_through_excel_group_weights_settle_report(tmp_path):
    """Issue 14's flow on the files people have: a GBK CSV with 医保结算清单 names in,
    Excel between the steps, no column renamed and no encoding named."""
    import re

    from casemix.budget import shipped_policy
    from test_vocab_cli import MINE, chinese_extract

    extract, cases = chinese_extract()
    src = tmp_path / "结算清单.csv"
    src.write_bytes(extract.write_csv().encode("gbk"))
    assert detect_encoding(src) == "gb18030"
    (tmp_path / "map.toml").write_text(f'[columns]\n"{MINE}" = "total_cost"\n', encoding="utf-8")
    budget = round(cases["total_cost"].sum() * 0.9)
    policy = tmp_path / "policy.toml"
    policy.write_text(
        re.sub(
            r"total_yuan = \d+", f"total_yuan = {budget}", shipped_policy("demo").read_text(encoding="utf-8")
        ),
        encoding="utf-8",
    )
    mp = ("--map", tmp_path / "map.toml")
    grouped, weights = tmp_path / "grouped.xlsx", tmp_path / "w.xlsx"

    res, text = _cli("group", src, "-o", grouped, "--scheme", "casemix-demo", "--quiet", *mp)
    assert res.exit_code == 0, text
    g = read_table(grouped)
    assert g.columns[: len(extract.columns)] == extract.columns
    assert g["病案号"].to_list() == cases["case_id"].to_list()
    res, text = _cli("weights", grouped, "-o", weights, *mp)
    assert res.exit_code == 0, text
    res, text = _cli(
        "settle",
        grouped,
        "--weights",
        weights,
        "--policy",
        policy,
        "-o",
        tmp_path / "settle",
        "--format",
        "xlsx",
        *mp,
    )
    assert res.exit_code == 0, text
    settled = read_table(tmp_path / "settle" / "cases.xlsx", infer_schema=True)
    assert settled.height == 200 and settled["payment_fen"].sum() == budget * 100
    hosp = read_table(tmp_path / "settle" / "hospitals.xlsx", infer_schema=True)
    assert hosp["payment_yuan"].sum() == pytest.approx(budget)
    res, text = _cli(
        "report", grouped, "--weights", weights, "--policy", policy, "-o", tmp_path / "report", *mp
    )
    assert res.exit_code == 0, text
    assert "H001" in (tmp_path / "report" / "index.html").read_text(encoding="utf-8")


def test_dask_csv_input_uses_the_same_encoding_rule(tmp_path):
    pytest.importorskip("dask.dataframe")
    from casemix.cli.dask_opts import read_dataset

    rows = "".join(f"K{i},急性阑尾炎,{i}\n" for i in range(40))
    for name, data in (
        ("g.csv", ("病案号,诊断,费用\n" + rows).encode("gbk")),
        ("b.csv", ("\ufeff病案号,诊断,费用\n" + rows).encode("utf-8")),
    ):
        df = read_dataset(_write(tmp_path, name, data)).compute()
        assert list(df.columns) == ["病案号", "诊断", "费用"] and len(df) == 40
        assert set(df["诊断"]) == {"急性阑尾炎"}


def test_short_repetitive_gbk_file_is_read_as_gb18030(tmp_path):
    # charset-normalizer alone calls this file iso8859_5; it decodes strictly as GB18030
    # into Chinese, so it is GB18030
    rows = "".join(f"K{i},急性阑尾炎,{i}\n" for i in range(40))
    p = _write(tmp_path, "g.csv", ("病案号,诊断,费用\n" + rows).encode("gbk"))
    assert detect_encoding(p) == "gb18030"
    assert read_table(p)["诊断"].unique().to_list() == ["急性阑尾炎"]
    # a stray byte that no Chinese encoding reads stays an error
    with pytest.raises(InputError, match="byte offset 4 is not valid UTF-8"):
        read_table(_write(tmp_path, "x.csv", b"a,b\n\xff,1\n"))


def test_dask_output_folders_are_guarded_before_any_work(tmp_path):
    pytest.importorskip("dask.dataframe")
    from casemix.cli.dask_opts import group_on_dask, settle_on_dask

    data = tmp_path / "in"
    data.mkdir()
    part = data / "part.00000.parquet"
    pl.DataFrame({"case_id": ["a"]}).write_parquet(part)
    before = part.read_bytes()
    # the spec is never reached: the folder check comes first
    for out in (data, data / "sub"):
        with pytest.raises(InputError, match="would destroy the input"):
            group_on_dask(data, out, "casemix-demo", "batch", "no-such-spec")
    with pytest.raises(InputError, match="would destroy the input"):
        settle_on_dask(data, data, None, "no-such-spec")
    done = tmp_path / "out"
    done.mkdir()
    (done / "part.00000.parquet").write_bytes(before)
    with pytest.raises(InputError, match="already holds output .*pass --force"):
        group_on_dask(data, done, "casemix-demo", "batch", "no-such-spec")
    assert part.read_bytes() == before
