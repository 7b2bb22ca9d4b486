"""Fuzz: data going in and coming out (issue 15 classes 1, 2, 5, 7, 8).

Nothing lost (rows in = rows out, inputs never overwritten), nothing
silently wrong (bad files and bad values give a casemix error or a warning,
never a raw exception), and both engines agree on odd values.
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import strategies as st
from tests.fuzz import fuzz

import casemix
from casemix.cases import read_cases
from casemix.cli import main
from casemix.errors import CasemixError, InputError
from casemix.synth import synth_cases

RESULT = ["mdc", "adrg", "drg", "severity", "status", "reason", "warnings"]


@pytest.fixture(scope="module")
def good():
    return synth_cases("casemix-demo", 30, seed=21)


# --------------------------------------------------- class 5: bad files, clean errors
def _bytes_as_cases_give_input_error_or_every_row(tmp_path_factory, raw, suffix):
    path = tmp_path_factory.mktemp("f") / f"cases{suffix}"
    path.write_bytes(raw)
    try:
        out = casemix.group(path)
    except InputError as exc:
        # a file fault names the file; a content fault names the column or value
        assert path.name in str(exc) or "column" in str(exc), str(exc)
        return
    assert out.height == read_cases(path).height  # nothing dropped


_CSV_HEAD = b"case_id,pdx,sdx,age,sex\n"
test_bad_files, test_bad_files_long = fuzz(
    _bytes_as_cases_give_input_error_or_every_row,
    raw=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=100).map(lambda b: _CSV_HEAD + b),
        st.lists(
            st.sampled_from([b"1,A00,,3,1", b'2,"B01', b"3,C00,a|b,x,2,9", b"", b"\xff\xfe", b",,,,"]),
            max_size=8,
        ).map(lambda rows: _CSV_HEAD + b"\n".join(rows)),
        st.binary(max_size=60).map(lambda b: b"PAR1" + b + b"PAR1"),
    ),
    suffix=st.sampled_from([".csv", ".parquet", ".tsv"]),
)


def _cli_never_shows_a_traceback(tmp_path_factory, raw, command):
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "in.csv"
    path.write_bytes(raw)
    args = {
        "group": ["group", str(path), "-o", str(folder / "o.parquet"), "--quiet"],
        "weights": ["weights", str(path), "-o", str(folder / "w.csv"), "--quiet"],
        "benefits": ["benefits", str(path), "--policy", "illustrative"],
        "dip": ["dip", "group", str(path), "-o", str(folder / "d.parquet")],
    }[command]
    res = CliRunner().invoke(main, args, catch_exceptions=True)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    if res.exit_code != 0:
        assert res.exit_code == 2, res.output
        assert [ln for ln in res.output.splitlines() if ln.startswith("Error:")], res.output


test_cli_errors, test_cli_errors_long = fuzz(
    _cli_never_shows_a_traceback,
    quick=12,
    long=300,
    raw=st.one_of(st.binary(max_size=120), st.binary(max_size=60).map(lambda b: _CSV_HEAD + b)),
    command=st.sampled_from(["group", "weights", "benefits", "dip"]),
)


def _api_misuse_is_input_error(good, mapping, scheme):
    with pytest.raises(InputError):
        casemix.group(good, mapping=mapping, scheme=scheme)


def test_loaders_refuse_what_is_not_a_name_or_path(good):
    from casemix import benefits, dip
    from casemix.errors import PolicyError

    for bad in (None, 5, "", [1]):
        with pytest.raises(InputError, match="catalog must be a shipped catalog name"):
            dip.group(good, bad)
        with pytest.raises(PolicyError, match="a benefit policy is a BenefitPolicy"):
            benefits.load_policy(bad)


test_api_misuse, test_api_misuse_long = fuzz(
    _api_misuse_is_input_error,
    mapping=st.one_of(
        st.lists(st.text(max_size=3), max_size=2),
        st.integers(),
        st.text(max_size=4),
        st.dictionaries(st.integers(), st.text(max_size=3), min_size=1),
    ),
    scheme=st.one_of(st.just("casemix-demo"), st.none(), st.integers(), st.floats(allow_nan=False)),
)


# --------------------------------------------- class 7: implausible values, engines agree
def _implausible_values_are_warned_and_engines_agree(good, ages, days):
    n = min(len(ages), len(days), good.height)
    assume_rows = good.head(n).with_columns(
        pl.Series("age", ages[:n], dtype=pl.Float64), pl.Series("age_days", days[:n], dtype=pl.Float64)
    )
    batch = casemix.group(assume_rows)
    ref = casemix.group(assume_rows, engine="reference")
    assert batch.select(RESULT).equals(ref.select(RESULT))
    for age, d, w in zip(ages[:n], days[:n], batch["warnings"].to_list(), strict=True):
        bad_age = age is not None and math.isfinite(age) and not 0 <= age <= 150
        bad_days = (
            d is not None
            and math.isfinite(d)
            and (not 0 <= d <= 365 or (age is not None and math.isfinite(age) and age >= 1 and d > 0))
        )
        assert ("implausible:age" in w.split(";")) == bad_age, (age, d, w)
        assert ("implausible:age_days" in w.split(";")) == bad_days, (age, d, w)


_AGE = st.one_of(
    st.none(),
    st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False),
    st.sampled_from([-5.0, 0.0, 1.0, 150.0, 150.5, 1e300, -0.5, 0.5]),
)
_DAYS = st.one_of(
    st.none(),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([-5.0, 0.0, 10.0, 28.0, 365.0, 366.0]),
)
test_implausible, test_implausible_long = fuzz(
    _implausible_values_are_warned_and_engines_agree,
    quick=15,
    long=300,
    ages=st.lists(_AGE, min_size=1, max_size=12),
    days=st.lists(_DAYS, min_size=12, max_size=12),
)


# ------------------------------------------------------- class 8: one date parser
def _every_spelling_of_a_date_reads_the_same(day):
    from casemix.cases import parse_dates

    spellings = pl.Series(
        [
            day.strftime("%Y%m%d"),
            day.isoformat(),
            day.strftime("%Y/%m/%d"),
            f"{day.year}年{day.month}月{day.day}日",
        ]
    )
    assert parse_dates(spellings).to_list() == [day] * 4
    assert parse_dates(pl.Series([int(day.strftime("%Y%m%d"))])).to_list() == [day]


test_dates, test_dates_long = fuzz(
    _every_spelling_of_a_date_reads_the_same, day=st.dates(dt.date(1990, 1, 1), dt.date(2099, 12, 31))
)


# -------------------------------------------------- class 2: outputs never lose data
def _writing_never_destroys_an_input_or_existing_file(tmp_path_factory, good, target, force, suffix):
    from casemix.io import write_table

    folder = tmp_path_factory.mktemp("w")
    src = folder / f"in{suffix}"
    write_table(good, src)
    before = src.read_bytes()
    other = folder / f"other{suffix}"
    other.write_bytes(b"keep me")
    path = {"input": src, "existing": other, "new": folder / f"new{suffix}"}[target]
    try:
        write_table(good.head(3), path, force=force, inputs=[src])
        assert target == "new" or (target == "existing" and force)
    except InputError:
        assert target == "input" or (target == "existing" and not force)
    assert src.read_bytes() == before
    if target == "existing" and not force:
        assert other.read_bytes() == b"keep me"
    assert not [p for p in folder.iterdir() if p.name not in (src.name, other.name, f"new{suffix}")]


test_outputs, test_outputs_long = fuzz(
    _writing_never_destroys_an_input_or_existing_file,
    quick=15,
    long=200,
    target=st.sampled_from(["input", "existing", "new"]),
    force=st.booleans(),
    suffix=st.sampled_from([".csv", ".parquet"]),
)


# ------------------------------------------------ class 1: weights that would pay wrong
def _bad_weights_are_refused(good, bad):
    from casemix.budget import Policy
    from casemix.settle import settle

    grouped = casemix.group(good)
    drgs = grouped["drg"].unique().sort()
    weights = pl.DataFrame({"drg": drgs, "rw": [1.0] * len(drgs)})
    weights = weights.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(bad).otherwise(pl.col("rw")).alias("rw")
    )
    with pytest.raises(CasemixError):
        settle(grouped, Policy(budget="100000"), weights=weights)


test_bad_weights, test_bad_weights_long = fuzz(
    _bad_weights_are_refused, quick=6, long=40, bad=st.sampled_from([0.0, -1.0, math.nan, math.inf, 1e308])
)
