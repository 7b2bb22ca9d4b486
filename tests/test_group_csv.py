"""CSV → Parquet in batches (``casemix.drg.batch.group_csv``, ``casemix group x.csv -o y.parquet``).

The file written must be the one ``group_table`` writes for the frame
``read_table`` reads (values, types, row groups), whatever the batches;
files the batched reader does not take (GBK, a bad byte or a ragged row
past the start, a header alone, a repeated name) are read whole, with the
same answers and the same errors.
"""

from __future__ import annotations

import polars as pl
import pyarrow.parquet as pq
import pytest

import casemix
import casemix.drg.batch as batch
from casemix.errors import InputError, LowGroupingRateWarning
from casemix.io import read_table
from casemix.synth import synth_cases

SCHEME = "casemix-demo"


@pytest.fixture(scope="module")
def cases():
    df = synth_cases(SCHEME, 1_000, seed=5, layout="strings")
    # a few rows intake must read: lower case, padding, an unknown code
    return df.with_columns(
        df["diagnoses"].scatter([3, 400, 999], ["i10.x00", " J18.900 | I10.x00", "ZZZ.999|I10.x00"])
    )


def _row_groups(path) -> list[int]:
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def test_batches_write_the_file_group_table_writes(cases, tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "ROW_GROUP_ROWS", 64)
    src = tmp_path / "in.csv"
    cases.write_csv(src)
    frame = read_table(src)
    # batches of about 100 rows: row groups of 64 are cut across batches
    info = batch.group_csv(src, tmp_path / "out.parquet", SCHEME, batch_rows=100)
    batch.group_table(frame, tmp_path / "whole.parquet", SCHEME)
    got = read_table(tmp_path / "out.parquet")
    want = casemix.group(frame, scheme=SCHEME)
    assert info["rows"] == 1_000 and info["grouped"] == int(
        (want["status"] == casemix.load_scheme(SCHEME).status["grouped"]).sum()
    )
    assert got.equals(want)
    assert got.equals(read_table(tmp_path / "whole.parquet"))
    assert (
        _row_groups(tmp_path / "out.parquet") == [64] * 15 + [40] == _row_groups(tmp_path / "whole.parquet")
    )
    assert pq.read_schema(tmp_path / "out.parquet") == pq.read_schema(tmp_path / "whole.parquet")
    # the CLI takes this path and writes the same file
    from click.testing import CliRunner

    from casemix.cli import main

    res = CliRunner().invoke(
        main, ["group", str(src), "-o", str(tmp_path / "cli.parquet"), "--scheme", SCHEME, "--quiet"]
    )
    assert res.exit_code == 0, res.output
    assert read_table(tmp_path / "cli.parquet").equals(want)


def test_files_the_batches_do_not_take_are_read_whole(cases, tmp_path):
    cases.write_csv(tmp_path / "utf8.csv")
    want = casemix.group(read_table(tmp_path / "utf8.csv"), scheme=SCHEME)
    # GBK: read whole, detected as GB18030
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(cases.with_columns(cases["hospital_id"] + "医院").write_csv().encode("gbk"))
    batch.group_csv(gbk, tmp_path / "gbk.parquet", SCHEME, batch_rows=100)
    got = read_table(tmp_path / "gbk.parquet")
    assert got.height == 1_000 and got.drop("hospital_id").equals(want.drop("hospital_id"))
    assert got["hospital_id"].str.ends_with("医院").all()
    # a bad byte past the first MiB the batches read: the line and column named
    big = synth_cases(SCHEME, 8_000, seed=6, layout="strings")
    data = big.write_csv().encode()
    assert len(data) > 1 << 20
    lines = data.split(b"\n")
    line = 7_500  # 1-based line of the file (the header is line 1)
    cells = lines[line - 1].split(b",")
    at = big.columns.index("diagnoses")
    cells[at] = cells[at] + b"\xff"
    lines[line - 1] = b",".join(cells)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\n".join(lines))
    with pytest.raises(InputError, match=rf"line {line}, column 'diagnoses'"):
        batch.group_csv(bad, tmp_path / "bad.parquet", SCHEME, batch_rows=1_000)
    # a ragged row at the end: read_table's message, by line
    ragged = tmp_path / "ragged.csv"
    ragged.write_bytes(data + b"a," * 19 + b"b\n")
    with pytest.raises(InputError, match="line 8002 has 20 fields"):
        batch.group_csv(ragged, tmp_path / "ragged.parquet", SCHEME, batch_rows=1_000)
    # a header alone: an empty file with the result columns
    head = tmp_path / "head.csv"
    head.write_text(",".join(cases.columns) + "\n")
    assert batch.group_csv(head, tmp_path / "head.parquet", SCHEME)["rows"] == 0
    empty = read_table(tmp_path / "head.parquet")
    assert empty.height == 0 and empty.columns == want.columns
    # a repeated column name: read_table names it
    dup = tmp_path / "dup.csv"
    dup.write_text("diagnoses,diagnoses\nI10.x00,I10.x00\n")
    with pytest.raises(InputError, match="duplicate column name .diagnoses."):
        batch.group_csv(dup, tmp_path / "dup.parquet", SCHEME)


def test_low_grouping_rate_is_reported_over_all_batches(cases, tmp_path):
    src = tmp_path / "unknown.csv"
    cases.with_columns(cases["diagnoses"].str.replace(r"^[^|]*", "QQQ.000")).write_csv(src)
    with pytest.warns(LowGroupingRateWarning, match="QQQ.000"):
        info = batch.group_csv(src, tmp_path / "out.parquet", SCHEME, batch_rows=100)
    assert info["rows"] == 1_000 and info["grouped"] < 500


@pytest.mark.parametrize("path", ["csv", "parquet"])
def test_low_grouping_rate_without_unknown_codes_lists_the_outcomes(cases, tmp_path, path):
    # every row without its principal diagnosis: no code is unknown, so the warning names
    # the outcomes by status and reason, read back from the file written in batches
    # (it read only status and warnings: polars' ColumnNotFoundError "reason")
    src = tmp_path / f"none.{path}"
    frame = cases.with_columns(pl.lit(None, pl.String).alias("diagnoses"))
    frame.write_csv(src) if path == "csv" else frame.write_parquet(src)
    run = batch.group_csv if path == "csv" else batch.group_parquet
    with pytest.warns(LowGroupingRateWarning, match="No code was unknown; most frequent outcomes: ") as seen:
        info = run(src, tmp_path / "out.parquet", SCHEME)
    assert info["rows"] == 1_000 and info["grouped"] == 0
    assert seen[0].filename == __file__  # the caller's line, not batch.py


@pytest.mark.parametrize("share", ["one", "all"])
def test_grouping_threads_share_the_callers_numba_thread_count(cases, tmp_path, monkeypatch, share):
    import os

    import numba

    from casemix._threads import threads

    src = tmp_path / "in.csv"
    cases.write_csv(src)
    seen = []
    group_input = batch.group_input

    def spy(frame, sch, mapping=None):
        seen.append(threads())
        return group_input(frame, sch, mapping=mapping)

    monkeypatch.setattr(batch, "group_input", spy)
    before = numba.get_num_threads()
    want = 1 if share == "one" else numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(want)
    try:
        batch.group_csv(src, tmp_path / "out.parquet", SCHEME, batch_rows=100)
    finally:
        numba.set_num_threads(before)
    # each of the batches grouped at once gets its share of the caller's threads, at least one
    at_once = max(1, min(batch.GROUPING_THREADS, os.cpu_count() or 1))
    assert len(seen) >= 2 and set(seen) == {max(1, want // at_once)}


def test_grouping_a_csv_does_not_import_pandas(cases, tmp_path):
    # pyarrow's Array.to_numpy imports pandas (0.3-0.5 CPU-s once per process): the code
    # lists of the rows intake reads (here a full-width separator) were converted so
    import subprocess
    import sys

    src = tmp_path / "in.csv"
    cases.with_columns(cases["diagnoses"].scatter([7], ["J18.900｜I10.x00"])).write_csv(src)
    code = (
        "import sys; from casemix.drg.batch import group_csv; "
        f"info = group_csv({str(src)!r}, {str(tmp_path / 'out.parquet')!r}, {SCHEME!r}, batch_rows=300); "
        "print(info['rows'], 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1000", "False"]


RESULTS = ["mdc", "adrg", "drg", "severity", "status", "reason", "warnings"]


@pytest.mark.parametrize("keep", [["case_id"], ["hospital_id", "case_id"], "none"])
def test_keep_writes_those_input_columns_and_the_results(cases, tmp_path, keep):
    src = tmp_path / "in.csv"
    cases.write_csv(src)
    want = casemix.group(read_table(src), scheme=SCHEME)
    names = [] if keep == "none" else keep
    # batches of 100 rows, row groups of 64 cut across them: the streamed path
    batch.group_csv(src, tmp_path / "out.parquet", SCHEME, batch_rows=100, keep=keep)
    assert read_table(tmp_path / "out.parquet").equals(want.select(*names, *RESULTS))
    # GBK: read whole, group_table's text path
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(cases.write_csv().encode("gbk"))
    batch.group_csv(gbk, tmp_path / "gbk.parquet", SCHEME, keep=keep)
    assert read_table(tmp_path / "gbk.parquet").equals(want.select(*names, *RESULTS))
    # a typed frame: encoded by polars while grouped, the results added as chunks
    batch.group_table(cases, tmp_path / "typed.parquet", SCHEME, keep=keep)
    typed = casemix.group(cases, scheme=SCHEME).select(*names, *RESULTS)
    assert read_table(tmp_path / "typed.parquet").equals(typed)


def test_keep_naming_a_column_the_file_lacks_is_an_error(cases, tmp_path):
    src = tmp_path / "in.csv"
    cases.write_csv(src)
    with pytest.raises(
        InputError, match=r"keep names columns not in in.csv: \['caseid'\]; it has \['case_id'"
    ):
        batch.group_csv(src, tmp_path / "out.parquet", SCHEME, keep=["caseid"])
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(cases.write_csv().encode("gbk"))
    with pytest.raises(InputError, match=r"keep names columns not in gbk.csv: \['caseid'\]"):
        batch.group_csv(gbk, tmp_path / "out.parquet", SCHEME, keep=["caseid"])
    with pytest.raises(InputError, match=r"keep names columns not in the frame: \['caseid'\]"):
        batch.group_table(cases, tmp_path / "out.parquet", SCHEME, keep=["caseid"])


def test_cli_keep_on_a_csv(cases, tmp_path):
    from click.testing import CliRunner

    from casemix.cli import main

    src = tmp_path / "in.csv"
    cases.write_csv(src)
    want = casemix.group(read_table(src), scheme=SCHEME).select("case_id", *RESULTS)
    out = tmp_path / "out.parquet"
    args = ["group", str(src), "-o", str(out), "--scheme", SCHEME, "--quiet", "--keep", "case_id"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert read_table(out).equals(want)
    # a CSV output writes every column: --keep there is refused, not ignored
    res = CliRunner().invoke(main, [*args[:3], str(tmp_path / "out.csv"), *args[4:]])
    assert res.exit_code == 2 and "--keep applies to a Parquet output" in res.output
