"""Direct encoding of typed input equals intake followed by the batch engine.

``casemix.drg.direct.group_direct`` skips the canonical frame for clean
rows; whatever the rows hold (messy codes that intake rewrites, unknown
codes, codes of the wrong kind, empty and null codes, null lists and
elements, infinite, NaN and negative numbers, fractional years) its seven
columns must equal ``group_frame(read_cases(df), warnings=True)``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests import strategies_drg as S
from tests.strategies import messy

import casemix
from casemix.cases import read_cases
from casemix.drg.batch import group_frame
from casemix.drg.direct import clean_ids, group_direct
from casemix.encode import code_index

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
ODD_NUMBERS = (math.inf, -math.inf, math.nan, -1.0, -0.5)


@pytest.fixture(scope="module")
def demo():
    return casemix.load_scheme("casemix-demo")


_COST = st.sampled_from((1200.5, 0.0, None))
_YEAR = st.sampled_from((2024.0, None))
_N_CHANGES = st.integers(0, 2)
_KIND = st.sampled_from(("messy", "unknown", "empty", "null", "null-list", "number", "year", "swap"))
_COLUMN = st.sampled_from(("pdx", "sdx", "pproc", "oproc"))
_LIST_COLUMN = st.sampled_from(("sdx", "oproc"))
_NUMBER_COLUMN = st.sampled_from((*S.FIELDS, "total_cost"))
_ODD = st.sampled_from(ODD_NUMBERS)
_ODD_YEAR = st.sampled_from((2024.5, math.inf))
_UNKNOWN = st.sampled_from(S.UNKNOWN_CODES)


@st.composite
def typed_case(draw, p: S.Pools) -> dict:
    """A clean case (known codes, plain numbers), then at most two things intake would see."""
    # strategies over the pools are built once per scheme (S.built): building them per case was
    # most of the cost of this test
    dx = S.built(p, "clean dx", lambda: S.code(p.cc, p.dx, p.sites, p.dictionary_dx, unknown=False))
    px = S.built(p, "clean proc", lambda: S.code(p.proc, p.dictionary_proc, unknown=False))
    case = {
        "pdx": draw(S.built(p, "clean pdx", lambda: S.code(p.dx, p.sites, p.dictionary_dx, unknown=False))),
        "sdx": draw(S.built(p, "clean sdx", lambda: st.lists(dx, max_size=8))),
        "pproc": draw(S.built(p, "clean pproc", lambda: st.one_of(st.none(), px))),
        "oproc": draw(S.built(p, "clean oproc", lambda: st.lists(px, max_size=4))),
        **{
            f: draw(S.built(p, f"clean {f}", lambda f=f: st.one_of(st.sampled_from(p.numbers[f]), st.none())))
            for f in S.FIELDS
        },
        "total_cost": draw(_COST),
        "year": draw(_YEAR),
    }
    for _ in range(draw(_N_CHANGES)):
        kind = draw(_KIND)
        col = draw(_COLUMN)
        if kind == "null-list":
            case[draw(_LIST_COLUMN)] = None
        elif kind == "number":
            case[draw(_NUMBER_COLUMN)] = draw(_ODD)
        elif kind == "year":
            case["year"] = draw(_ODD_YEAR)
        elif kind == "swap":  # a procedure as a diagnosis or the other way round
            if col in ("pproc", "oproc"):
                swapped = S.built(p, "proc as dx", lambda: S.code(p.dictionary_proc, unknown=False))
            else:
                swapped = S.built(p, "dx as proc", lambda: S.code(p.dictionary_dx, unknown=False))
            case["pdx" if col in ("pproc", "oproc") else "pproc"] = draw(swapped)
        else:
            value = {
                "unknown": lambda c: draw(_UNKNOWN),
                "empty": lambda c: "",
                "null": lambda c: None,
                "messy": lambda c: draw(messy(c)) if c else c,
            }[kind]
            if col in ("pdx", "pproc"):
                case[col] = value(case[col] or draw(dx))
            elif case[col]:
                i = draw(st.integers(0, len(case[col]) - 1))
                case[col] = [value(c) if j == i else c for j, c in enumerate(case[col])]
    return case


TYPES = {
    "pdx": pl.String,
    "sdx": pl.List(pl.String),
    "pproc": pl.String,
    "oproc": pl.List(pl.String),
    **dict.fromkeys(S.FIELDS, pl.Float64),
    "total_cost": pl.Float64,
    "year": pl.Float64,
}


def assert_direct_equal(df: pl.DataFrame, scheme, **kw) -> None:
    got = group_direct(df, scheme, **kw)
    assert got is not None, "this layout should take the direct path"
    want = group_frame(read_cases(df), scheme, warnings=True)
    assert got.schema == want.schema
    diff = pl.concat([df.with_row_index(), got, want.rename(lambda c: "want_" + c)], how="horizontal").filter(
        pl.any_horizontal(pl.col(c).ne_missing(pl.col("want_" + c)) for c in want.columns)
    )
    assert diff.height == 0, diff.head(3).to_dicts()


def _pipes(e: pl.Expr) -> pl.Expr:
    # a list as its "|"-string; a null list stays null
    return e.list.join("|", ignore_nulls=True)


#: the same cases in each layout the direct path takes
LAYOUTS = {
    "lists": lambda df: df,
    "pipe-strings": lambda df: df.with_columns(_pipes(pl.col("sdx")), _pipes(pl.col("oproc"))),
    "combined-lists": lambda df: df.select(
        pl.concat_list(pl.col("pdx"), pl.col("sdx")).alias("diagnoses"),
        pl.concat_list(pl.col("pproc"), pl.col("oproc")).alias("procedures"),
        pl.exclude("pdx", "sdx", "pproc", "oproc"),
    ),
    "combined-strings": lambda df: df.select(
        _pipes(pl.concat_list(pl.col("pdx").fill_null(""), pl.col("sdx"))).alias("diagnoses"),
        _pipes(pl.concat_list(pl.col("pproc").fill_null(""), pl.col("oproc"))).alias("procedures"),
        pl.exclude("pdx", "sdx", "pproc", "oproc"),
    ),
}


def _property(scheme_fixture: str):
    @SETTINGS
    @given(
        data=st.data(), chunk_rows=st.sampled_from((3, 1_000_000)), layout=st.sampled_from(sorted(LAYOUTS))
    )
    def check(request, data, chunk_rows, layout):
        scheme = request.getfixturevalue(scheme_fixture)
        pools = S.pools(scheme)  # one per scheme
        rows = data.draw(st.lists(typed_case(pools), min_size=1, max_size=30))
        df = LAYOUTS[layout](pl.DataFrame(rows, schema=TYPES))
        assert_direct_equal(df, scheme, chunk_rows=chunk_rows)

    return check


test_direct_equals_canonical_demo = _property("demo")
test_direct_equals_canonical_chs = _property("chs")
test_direct_equals_canonical_tiny_grey = _property("tiny_grey")


def _in_parts(df: pl.DataFrame, cuts: list[int]) -> pl.DataFrame:
    """``df`` as ``pl.concat`` of slices at ``cuts``, not rechunked (as a frame built from parts)."""
    bounds = sorted({0, df.height, *(c for c in cuts if 0 < c < df.height)})
    return pl.concat([df.slice(a, b - a) for a, b in zip(bounds, bounds[1:], strict=False)], rechunk=False)


def _pipes_equal_lists(scheme_fixture: str):
    @SETTINGS
    @given(data=st.data(), cuts=st.lists(st.integers(1, 29), max_size=6))
    def check(request, data, cuts):
        """``|``-string input groups as list input, whatever its dirty codes and chunks."""
        scheme = request.getfixturevalue(scheme_fixture)
        pools = S.pools(scheme)  # one per scheme
        rows = data.draw(st.lists(typed_case(pools), min_size=1, max_size=30))
        lists = pl.DataFrame(rows, schema=TYPES)
        pipes = _in_parts(LAYOUTS["pipe-strings"](lists), cuts)
        assert pipes.schema["sdx"] == pl.String
        got = casemix.group(pipes, scheme=scheme).drop(pipes.columns)
        want = casemix.group(lists, scheme=scheme).drop(lists.columns)
        assert got.equals(want), pl.concat([lists, got, want.rename(lambda c: "want_" + c)], how="horizontal")

    return check


test_pipe_strings_group_as_lists_chs = _pipes_equal_lists("chs")
test_pipe_strings_group_as_lists_tiny_grey = _pipes_equal_lists("tiny_grey")


#: codes no scheme has, as intake writes them or not: upper / lower case, an "x", a dagger pair
_PLAIN_UNKNOWN = st.text(alphabet="AQZxX09.+*", min_size=1, max_size=14).filter(lambda c: not c.endswith("+"))


@st.composite
def _unknown_heavy_case(draw, p: S.Pools) -> dict:
    """A typed case, then one to three codes replaced by unknown or messy ones (principal included)."""
    case = draw(typed_case(p))
    for _ in range(draw(st.integers(1, 3))):
        col = draw(_COLUMN)
        code = draw(_PLAIN_UNKNOWN | _UNKNOWN | st.sampled_from(["", " zzz.9 ", "A 1", "Q+"]))
        if col in ("pdx", "pproc"):
            case[col] = code
        else:
            case[col] = [*(case[col] or []), code][-draw(st.integers(1, 3)) :]
    return case


def _strings_with_unknown_codes(scheme_fixture: str):
    @SETTINGS
    @given(
        data=st.data(),
        cuts=st.lists(st.integers(1, 29), max_size=4),
        layout=st.sampled_from(("pipe-strings", "combined-strings")),
    )
    def check(request, data, cuts, layout):
        """Unknown codes in ``|``-strings keep their rows on the direct path (only codes intake
        may read otherwise go its way) and the answer, warnings included, is intake's."""
        scheme = request.getfixturevalue(scheme_fixture)
        pools = S.pools(scheme)
        rows = data.draw(st.lists(_unknown_heavy_case(pools), min_size=1, max_size=30))
        df = _in_parts(LAYOUTS[layout](pl.DataFrame(rows, schema=TYPES)), cuts)
        assert_direct_equal(df, scheme, chunk_rows=data.draw(st.sampled_from((4, 1_000_000))))

    return check


test_strings_with_unknown_codes_chs = _strings_with_unknown_codes("chs")
test_strings_with_unknown_codes_tiny_grey = _strings_with_unknown_codes("tiny_grey")


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=st.data(), layout=st.sampled_from(("pipe-strings", "combined-strings")))
def test_strings_cut_into_two_chunks_at_every_position(chs, data, layout):
    """One chunk, or two chunks meeting after any row: the same answer, intake's, warnings included.

    (``pl.concat`` keeps the two chunks, except that it joins parts of a row or two.)"""
    rows = data.draw(st.lists(_unknown_heavy_case(S.pools(chs)), min_size=2, max_size=12))
    df = LAYOUTS[layout](pl.DataFrame(rows, schema=TYPES))
    want = group_frame(read_cases(df), chs, warnings=True)
    assert group_direct(df, chs).equals(want)
    for cut in range(1, df.height):
        parts = _in_parts(df, [cut])
        assert group_direct(parts, chs).equals(want), cut


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    data=st.data(),
    cuts=st.lists(st.integers(1, 39), max_size=3),
    layout=st.sampled_from(("pipe-strings", "combined-strings")),
)
def test_one_chunk_split_into_row_ranges_for_the_threads(chs, data, cuts, layout):
    """The split, lookup and grouping kernels cut the rows of one chunk into ranges run on
    several threads (``casemix._threads.run_ranges``, from 16,384 rows on); with ranges of a
    few rows here, every range boundary falls inside generated |-strings with dirty and unknown
    codes, and the answer is still intake's."""
    from casemix import _threads

    rows = data.draw(st.lists(_unknown_heavy_case(S.pools(chs)), min_size=1, max_size=40))
    df = LAYOUTS[layout](pl.DataFrame(rows, schema=TYPES))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_threads, "MIN_ROWS_PER_THREAD", 1)
        mp.setattr(_threads, "threads", lambda: 3)  # ranges on 3 threads even on one core
        assert_direct_equal(df, chs)
        assert_direct_equal(_in_parts(df, cuts), chs)


def test_unknown_codes_in_strings_are_not_read_by_intake(chs, monkeypatch):
    """Rows whose only fault is an unknown code stay on the direct path: intake reads none of
    them, and each gets intake's warning; a code with white space inside goes to intake."""
    import casemix.cases

    df = pl.DataFrame(
        {
            "case_id": ["a", "b", "c", "d", "e"],
            "diagnoses": [
                "I10.x00|ZZZ.999",
                "zz1.x|E11.900",
                "Q99.QQ+R1*|I10.x00",
                "|E11.900||",
                "I10.x00|A 1",
            ],
            "procedures": ["", "QQ.99", None, "|", "00.5500x008"],
            "age": [60.0, 50.0, 40.0, 30.0, 20.0],
        }
    )
    seen: list[int] = []
    real = casemix.cases.read_cases

    def spy(frame, *args, **kw):
        seen.append(frame.height)
        return real(frame, *args, **kw)

    monkeypatch.setattr(casemix.cases, "read_cases", spy)
    got = group_direct(df.head(3), chs)
    assert seen == []
    warnings = got["warnings"].to_list()
    assert warnings[0].startswith("unknown_sdx:ZZZ.999")  # then grey_pdx:I10.x00 (a grey code of CHS-DRG)
    assert warnings[1].startswith("unknown_pdx:ZZ1.x;unknown_proc:QQ.99")
    assert warnings[2].startswith("unknown_pdx:Q99.QQ+R1*")
    # a principal code column beside |-strings is read by the same kernel: case, padding, unknown
    split = pl.DataFrame(
        {
            "pdx": [" i10.X00", "ZZ1.x", None, "I10.x00|E11.900", None],
            "sdx": ["E11.900", "", "", "", "E11.900"],
        }
    )
    got = group_direct(split.head(3), chs)
    assert seen == []
    assert got.equals(group_frame(real(split.head(3)), chs, warnings=True))
    assert got["warnings"][1] == "unknown_pdx:ZZ1.x"
    got = group_direct(split, chs)
    assert seen == [2]  # a "|" in a principal code; missing_pdx
    assert got.equals(group_frame(real(split), chs, warnings=True))
    seen.clear()
    got = group_direct(df, chs)
    assert seen == [2]  # "|E11.900||": no principal diagnosis; "A 1": white space inside
    monkeypatch.undo()
    want = group_frame(read_cases(df), chs, warnings=True)
    assert got.equals(want)


def _all_dictionary_codes_clean(scheme) -> None:
    ok_dx, ok_px = clean_ids(scheme)
    index = code_index(scheme)
    assert ok_dx[:-1].sum() == index.is_diagnosis.sum() and not ok_dx[-1]
    assert ok_px[:-1].sum() == index.is_procedure.sum() and not ok_px[-1]


def test_demo_codes_are_fixed_points_of_intake(demo):
    """Every dictionary code of the shipped scheme passes as clean as it is written."""
    _all_dictionary_codes_clean(demo)


def test_national_codes_are_fixed_points_of_intake(chs):
    _all_dictionary_codes_clean(chs)


def test_multi_chunk_input_and_dirty_rows_in_every_chunk(demo):
    """Frames read from Parquet come in chunks; slices follow them and dirty rows stay in place."""
    pools = S.pools(demo)
    dx, px = list(pools.dictionary_dx[:50]), list(pools.dictionary_proc[:20])
    rng = np.random.default_rng(5)
    parts = []
    for k in range(5):
        n = 700 + 300 * k
        pdx = [dx[i] for i in rng.integers(0, len(dx), n)]
        pdx[k * 7] = pdx[k * 7].lower()  # intake rewrites it
        pdx[k * 7 + 1] = "ZZZ.999"  # unknown
        parts.append(
            pl.DataFrame(
                {
                    "pdx": pdx,
                    "sdx": [[dx[j] for j in rng.integers(0, len(dx), rng.integers(0, 5))] for _ in range(n)],
                    "pproc": [px[i] if i < len(px) else None for i in rng.integers(0, 2 * len(px), n)],
                    "oproc": [[] for _ in range(n)],
                    "sex": rng.integers(1, 3, n).astype(float),
                    "age": rng.integers(0, 90, n).astype(float),
                    "los": rng.integers(1, 30, n).astype(float),
                    "discharge": np.ones(n),
                }
            )
        )
    df = pl.concat(parts, rechunk=False)
    assert df["sdx"].n_chunks() == 5
    assert_direct_equal(df, demo, chunk_rows=1000)
    assert_direct_equal(df, demo)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda df: df.select(
                pl.col("pdx").alias("dx1"), pl.col("sdx").list.first().alias("dx2"), pl.col("age")
            ),
            id="wide",
        ),
        pytest.param(lambda df: df.with_columns(pl.col("pdx").cast(pl.Categorical)), id="categorical"),
    ],
)
def test_other_layouts_take_the_canonical_path(demo, change):
    df = pl.DataFrame(
        {"pdx": ["I10.x00"], "sdx": [["E11.900"]], "pproc": [None], "oproc": [[]], "age": [60.0]},
        schema_overrides={"pproc": pl.String},
    )
    assert group_direct(df, demo) is not None
    assert group_direct(change(df), demo) is None


def test_text_numbers_and_dates_take_the_direct_path(demo):
    """A CSV read as text: numbers and dates are read by intake's own expressions, and a
    row whose text intake would report (malformed, negative, implausible) goes its way."""
    ages = ["60", " 45 ", "1,2", "abc", "", None, "inf", "nan", "-3", "150", "7.5", "６０"]
    n = len(ages)
    df = pl.DataFrame(
        {
            "pdx": ["I10.x00"] * n,
            "sdx": [["E11.900"]] * n,
            "pproc": [None] * n,
            "oproc": [[]] * n,
            "age": ages,
            "sex": ["1", "男", "2", "女", "", "9", "1", "2", "1", "2", "1", "1"],
            "los": ["5", "0", "-1", "3", "4.5", "1,200", "2", "3", "4", "5", "6", "7"],
            "total_cost": ["1200.5", "1,234.50", "-5", "x", "0", "1e3", "", None, "7", "8", "9", "10"],
            "year": [
                "2024",
                "2024.5",
                "",
                "2024",
                "2024",
                "2024",
                "2024",
                "2024",
                "2024",
                "1e9",
                "2024",
                "2024",
            ],
            "admission_date": ["2024-01-05", "20240105", "bad", "", None, "2024/1/5", "2024-02-30"]
            + ["2024-01-05"] * (n - 7),
        },
        schema_overrides={"pproc": pl.String},
    )
    assert df.schema["age"] == pl.String and df.schema["admission_date"] == pl.String
    assert_direct_equal(df, demo)
    assert_direct_equal(df, demo, chunk_rows=3)


def test_group_takes_the_direct_path_and_agrees_for_pandas_and_polars(demo):
    """``casemix.group`` output is the same whichever path it takes, in the caller's type."""
    df = pl.DataFrame(
        {
            "case_id": ["a", "b", "c"],
            "pdx": ["I10.x00", "i10.X00 ", None],
            "sdx": [["E11.900"], None, ["E11.900"]],
            "pproc": [None, None, ""],
            "oproc": [[], [], []],
            "age": [60.0, -math.inf, 3.0],
            "sex": [1, 2, 1],
            "total_cost": [100.0, -5.0, 1.0],
        },
        schema_overrides={"pproc": pl.String},
    )
    got = casemix.group(df, scheme=demo)
    want = group_frame(read_cases(df), demo, warnings=True)
    assert got.select(want.columns).equals(want)
    assert got["warnings"][0] == "" and "negative_cost" in got["warnings"][1]
    assert "missing_pdx" in got["warnings"][2]
    pdf = casemix.group(df.to_pandas(), scheme=demo)
    assert isinstance(pdf, pd.DataFrame)
    assert pdf["drg"].tolist() == want["drg"].to_list()


def test_empty_frame_has_typed_result(demo):
    df = pl.DataFrame(schema=TYPES)
    out = casemix.group(df, scheme=demo)
    assert out.height == 0 and out.schema["drg"] == pl.String
