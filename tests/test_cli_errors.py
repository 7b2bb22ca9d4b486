"""Bad input at the command line and the API edge: one clear error, never a traceback (issue 15, class 5)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

import casemix
from casemix.cli import main
from casemix.errors import InputError
from casemix.synth import synth_cases


@pytest.fixture(scope="module")
def cases():
    return synth_cases("casemix-demo", 20, seed=4)


def _run(args, **env):
    return CliRunner().invoke(main, args, env=env or None, catch_exceptions=True)


def _one_error_line(res) -> str:
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, res.output
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    res = _run(["group", str(tmp_path / "empty.csv"), "-o", str(tmp_path / "o.parquet")])
    assert res.exit_code == 2
    assert "empty.csv: file is empty (0 bytes)" in _one_error_line(res)


def test_debug_flag_and_env_show_the_traceback(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    args = ["group", str(tmp_path / "empty.csv"), "-o", str(tmp_path / "o.parquet")]
    res = _run(["--debug", *args])
    assert isinstance(res.exception, InputError)
    res = _run(args, CASEMIX_DEBUG="1")
    assert isinstance(res.exception, InputError)
    assert _run(args, CASEMIX_DEBUG="0").exit_code == 2


def test_unexpected_exception_is_an_internal_error_exit_1(tmp_path, monkeypatch, cases):
    path = tmp_path / "c.parquet"
    cases.write_parquet(path)

    def boom(*a, **k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(casemix, "group", boom)
    res = _run(["group", str(path), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 1
    line = _one_error_line(res)
    assert line.startswith("Error: internal error (ZeroDivisionError: division by zero)")
    assert "--debug" in line


def test_report_on_ungrouped_cases_exits_2(tmp_path, cases):
    cases.write_parquet(tmp_path / "c.parquet")
    res = _run(["report", str(tmp_path / "c.parquet"), "-o", str(tmp_path / "rep")])
    assert res.exit_code == 2
    assert "no 'drg' column" in _one_error_line(res)


@pytest.mark.parametrize(
    "name, data, fragment",
    [
        ("empty.csv", b"", "file is empty (0 bytes)"),
        ("zero.parquet", b"", "file is empty (0 bytes)"),
        ("corrupt.parquet", b"PAR1" + b"\x00" * 100, "cannot be read as Parquet"),
        ("ragged.csv", b"a,b\n1,2\n3,4,5\n", "line 3 has 3 fields where the header has 2"),
        ("dup.csv", b"age,pdx,age\n1,A00,2\n", "line 1: duplicate column name 'age' (columns 1 and 3)"),
    ],
)
def test_bad_files_are_input_errors(tmp_path, name, data, fragment):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(InputError) as info:
        casemix.group(tmp_path / name)
    assert name in str(info.value) and fragment in str(info.value)


def test_folder_without_parquet(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    with pytest.raises(InputError, match="folder holds no .parquet files"):
        casemix.group(tmp_path)


def test_api_misuse_is_input_error(cases):
    pdf = cases.to_pandas()
    with pytest.raises(InputError, match="duplicate column name 'age'"):
        casemix.group(pd.concat([pdf, pdf[["age"]]], axis=1))
    table = cases.to_arrow()
    with pytest.raises(InputError, match="Arrow table: duplicate column name 'sex'"):
        casemix.group(table.append_column("sex", pa.array([1] * table.num_rows)))
    for bad in (["pdx"], "pdx", 5):
        with pytest.raises(InputError, match="mapping must be a dict"):
            casemix.group(cases, mapping=bad)
    with pytest.raises(InputError, match="mapping .*both must be"):
        casemix.group(cases, mapping={1: "pdx"})
    for bad in (None, 5, "", 1.5):
        with pytest.raises(InputError, match="scheme must be a shipped scheme name"):
            casemix.group(cases, scheme=bad)
    assert casemix.group(cases).height == cases.height
