"""The first call on a fresh install says it is compiling, with progress (issue 16).

The notice is a listener on numba's ``numba:compile`` event
(:mod:`casemix._first_run`): the unit tests compile real (tiny) numba
functions that pass for casemix kernels; the slow ones run ``casemix.group``,
``casemix group`` and ``casemix demo`` in fresh processes on an empty
``NUMBA_CACHE_DIR`` (the notice appears), then again on the filled cache (it
does not).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numba
import pytest

from casemix import _first_run


def _kernel(name: str, module: str = "casemix.fake_kernels"):
    """A numba function that passes for the casemix kernel ``module.name`` (not yet compiled)."""

    def f(x):
        return x + 1

    f.__module__, f.__name__, f.__qualname__ = module, name, name
    return numba.njit(cache=False)(f)


@pytest.fixture
def fresh(monkeypatch):
    """A process in which no kernel has been announced yet."""
    _first_run.listen()
    monkeypatch.setattr(_first_run._NOTICE, "shown", False)
    monkeypatch.setattr(_first_run._NOTICE, "done", {})
    monkeypatch.delenv("CASEMIX_NUMBA_CACHE", raising=False)


def test_notice_then_one_line_per_kernel_with_its_seconds(fresh, capsys):
    k = _kernel("k_one")
    assert k(1) == 2
    assert k(2) == 3  # compiled: nothing more
    _kernel("k_two")(1)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("casemix: compiling, first run only (numba kernels")
    assert err[1].startswith("casemix: compiling fake_kernels.k_one ... ")
    assert err[1].endswith(" s")
    float(err[1].split(" ... ")[1].removesuffix(" s"))
    assert err[2].startswith("casemix: compiling fake_kernels.k_two ... ")
    assert len(err) == 3


def test_kernels_of_a_step_are_numbered(fresh, capsys, monkeypatch):
    step = {"casemix.fake_kernels.look": "code lookup", "casemix.fake_kernels.group": "grouping kernel"}
    monkeypatch.setitem(_first_run.STEPS, "fake step", step)
    for name, label in step.items():
        monkeypatch.setitem(_first_run._LABEL, name, ("fake step", label))
    _kernel("look")(1)
    _kernel("group")(1)
    err = capsys.readouterr().err.splitlines()
    assert err[1].startswith("casemix: [1/2] compiling code lookup ... ")
    assert err[2].startswith("casemix: [2/2] compiling grouping kernel ... ")


def test_a_step_of_alternative_kernels_counts_those_it_compiles(fresh, capsys, monkeypatch):
    """A grouping compiles the code lookup or the |-string lookup: [k/3], [4/4] when both."""
    step = {f"casemix.fake_kernels.{k}": k for k in ("look", "split", "checks", "group")}
    monkeypatch.setitem(_first_run.STEPS, "fake step", step)
    monkeypatch.setitem(_first_run.SIZES, "fake step", 3)
    for name, label in step.items():
        monkeypatch.setitem(_first_run._LABEL, name, ("fake step", label))
    for name in ("split", "checks", "group", "look"):
        _kernel(name)(1)
    err = [line.split(" ... ")[0] for line in capsys.readouterr().err.splitlines()[1:]]
    assert err == [
        "casemix: [1/3] compiling split",
        "casemix: [2/3] compiling checks",
        "casemix: [3/3] compiling group",
        "casemix: [4/4] compiling look",
    ]


def test_grouping_steps_name_every_lookup_kernel():
    from casemix import encode_kernel, split_kernel
    from casemix.drg import kernel

    names = set(_first_run.STEPS["grouping"])
    for k in (encode_kernel.encode_views, split_kernel.split_codes, kernel._bad_rows, kernel.group_kernel):
        assert f"{k.py_func.__module__}.{k.py_func.__qualname__}" in names
    assert _first_run.SIZES["grouping"] == len(names) - 1


def test_helpers_compiled_inside_a_kernel_count_towards_it(fresh, capsys):
    helper = _kernel("helper")

    def outer(x):
        return helper(x) * 2

    outer.__module__, outer.__qualname__ = "casemix.fake_kernels", "outer"
    assert numba.njit(cache=False)(outer)(1) == 4
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" ... ")[0] for line in err[1:]] == ["casemix: compiling fake_kernels.outer"]


def test_no_notice_for_functions_outside_casemix(fresh, capsys):
    assert _kernel("theirs", module="somebody_else")(1) == 2
    assert capsys.readouterr().err == ""


def test_notice_says_every_run_when_the_cache_is_off(fresh, capsys, monkeypatch):
    monkeypatch.setenv("CASEMIX_NUMBA_CACHE", "0")
    _kernel("k_nocache")(1)
    assert "compiling, every run: CASEMIX_NUMBA_CACHE=0" in capsys.readouterr().err


def test_the_header_once_per_process(fresh, capsys):
    _kernel("k_a")(1)
    capsys.readouterr()
    _kernel("k_b")(1)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("casemix: compiling fake_kernels.k_b ... ")


# -- fresh processes on an empty numba cache, then on the filled one ---------------------

_CASES = (
    "import polars as pl\n"
    "df = pl.DataFrame({'case_id': ['1', '2'], 'pdx': ['I21.0', 'XX'], 'sdx': [['E11.9'], []],"
    " 'pproc': [None, None], 'oproc': [[], []], 'age': [60, 50], 'sex': ['1', '2'], 'los': [5, 3]},"
    " schema_overrides={'pproc': pl.String})\n"
)


def _twice(tmp_path, args: list[str]) -> tuple[str, str]:
    """stderr of a cold run (empty numba cache) and of a warm one (the same cache)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "CASEMIX_NUMBA_CACHE": "1"}
    out = []
    for _ in range(2):
        done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        out.append(done.stderr)
    return out[0], out[1]


@pytest.mark.slow
def test_casemix_group_cold_then_warm(tmp_path):
    cold, warm = _twice(tmp_path, ["-c", _CASES + "import casemix\nprint(casemix.group(df).height)\n"])
    assert "casemix: compiling, first run only" in cold
    for line in (
        "[1/3] compiling code lookup",
        "[2/3] compiling code checks",
        "[3/3] compiling grouping kernel",
    ):
        assert line in cold
    assert "compiling" not in warm


@pytest.mark.slow
def test_cli_group_cold_then_warm(tmp_path):
    make = _CASES + "df.write_parquet('cases.parquet')\n"
    subprocess.run([sys.executable, "-c", make], check=True, cwd=tmp_path)
    cli = [
        "-c",
        "from casemix.cli import main; main()",
        "group",
        "cases.parquet",
        "-o",
        "out.parquet",
        "--force",
    ]
    cold, warm = _twice(tmp_path, cli)
    assert "casemix: compiling, first run only" in cold
    assert "[3/3] compiling grouping kernel" in cold
    assert "compiling" not in warm


@pytest.mark.slow
def test_cli_demo_cold_then_warm(tmp_path):
    demo = ["-c", "from casemix.cli import main; main()", "demo", "-n", "3000", "-o", "demo", "--force"]
    cold, warm = _twice(tmp_path, demo)
    assert "casemix: compiling, first run only" in cold
    assert "compiling synthetic cases: codes" in cold
    assert "/3] compiling grouping kernel" in cold  # the grouping's kernels come in the order used
    assert "compiling benefits.kernel." in cold
    assert "compiling" not in warm
