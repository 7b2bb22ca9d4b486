"""The first grouping on a fresh install says it is compiling (issue 16)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from casemix import encode_kernel
from casemix.encode_kernel import first_compile


class _Fake:
    """Stands for a numba dispatcher: ``signatures`` and a cache without an index file."""

    def __init__(self, signatures=()):
        self.signatures = list(signatures)

    def __call__(self):
        time.sleep(0.05)
        return 7


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(encode_kernel, "_announced", [])


def test_notice_on_first_compile_with_progress(fresh, capsys):
    fn = _Fake()
    with first_compile(fn, "code lookup"):
        assert fn() == 7
    with first_compile(_Fake(), "grouping kernel"):
        pass
    err = capsys.readouterr().err.splitlines()
    assert "compiling, first run only" in err[0]
    assert err[1].startswith("casemix: [1/3] compiling code lookup ...")
    assert err[1].endswith(" s")
    assert err[2].startswith("casemix: [2/3] compiling grouping kernel ...")


def test_no_notice_once_compiled_or_announced(fresh, capsys):
    with first_compile(_Fake(signatures=["(int64,)"]), "code lookup"):
        pass
    assert capsys.readouterr().err == ""
    with first_compile(_Fake(), "code checks"):
        pass
    capsys.readouterr()
    with first_compile(_Fake(), "code checks"):  # same kernel again in this process
        pass
    assert capsys.readouterr().err == ""


def test_no_notice_when_numba_cache_holds_the_kernel(fresh, capsys, tmp_path):
    index = tmp_path / "k.nbi"
    index.write_bytes(b"")
    fn = _Fake()
    fn._cache = type("C", (), {"_cache_file": type("F", (), {"_index_path": str(index)})()})()
    with first_compile(fn, "code lookup"):
        pass
    assert capsys.readouterr().err == ""


def test_notice_says_every_run_when_cache_is_off(fresh, capsys, monkeypatch):
    monkeypatch.setenv("CASEMIX_NUMBA_CACHE", "0")
    with first_compile(_Fake(), "code lookup"):
        pass
    assert "every run: CASEMIX_NUMBA_CACHE=0" in capsys.readouterr().err


@pytest.mark.slow
def test_cold_cache_prints_notice_then_warm_cache_is_quiet(tmp_path):
    code = (
        "import polars as pl, casemix\n"
        "df = pl.DataFrame({'case_id': ['1'], 'pdx': ['I21.0'], 'sdx': [['E11.9']],"
        " 'pproc': [None], 'oproc': [[]], 'age': [60], 'sex': ['1'], 'los': [5]},"
        " schema_overrides={'pproc': pl.String})\n"
        "print(casemix.group(df).height)\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "CASEMIX_NUMBA_CACHE": "1"}
    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert cold.returncode == 0, cold.stderr
    assert "compiling, first run only" in cold.stderr
    assert "[1/3]" in cold.stderr
    warm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert warm.returncode == 0, warm.stderr
    assert "compiling" not in warm.stderr
