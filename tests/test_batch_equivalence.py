"""The batch engine gives the reference grouper's answer, column by column.

Properties over generated cases (``tests/strategies_drg.py``) for three
schemes: the tiny hand-made scheme (QY groups, a never-excluded table,
sites, LOS/discharge/age splits), the shipped demo scheme and the national
CHS-DRG 1.1 scheme of ../shared; then the golden file on the batch engine.
"""

from __future__ import annotations

import csv

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests import strategies_drg as S
from tests.conftest import GOLDEN, needs_shared
from tests.tiny_scheme import write

from casemix.drg import reference_frame
from casemix.drg.batch import RESULT_NAMES, group_frame

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from casemix.scheme import load_scheme

    return load_scheme(write(tmp_path_factory.mktemp("tiny-batch")))


@pytest.fixture(scope="module")
def demo():
    from casemix.errors import SchemeError
    from casemix.scheme import load_scheme

    try:
        return load_scheme("casemix-demo")
    except SchemeError as exc:
        pytest.skip(f"the shipped demo scheme is not there yet: {exc}")


def assert_same(canonical: pl.DataFrame, scheme) -> None:
    got = group_frame(canonical, scheme)
    want = reference_frame(canonical, scheme)
    assert got.columns == list(RESULT_NAMES)
    assert got.schema == want.schema
    bad = pl.concat(
        [canonical.with_row_index(), got, want.rename(lambda c: "want_" + c)], how="horizontal"
    ).filter(pl.any_horizontal(pl.col(c) != pl.col("want_" + c) for c in RESULT_NAMES))
    assert bad.height == 0, bad.head(5).to_dicts()


def _property(scheme_fixture):
    @SETTINGS
    @given(data=st.data())
    def check(request, data):
        scheme = request.getfixturevalue(scheme_fixture)
        pools = _pools(scheme)
        rows = data.draw(st.lists(S.cases(pools), min_size=1, max_size=40))
        assert_same(S.frame(rows), scheme)

    return check


_POOLS: dict[int, S.Pools] = {}


def _pools(scheme) -> S.Pools:
    if id(scheme) not in _POOLS:
        _POOLS[id(scheme)] = S.pools(scheme)
    return _POOLS[id(scheme)]


test_batch_equals_reference_tiny = _property("tiny")
test_batch_equals_reference_tiny_grey = _property("tiny_grey")
test_batch_equals_reference_demo = _property("demo")
test_batch_equals_reference_chs = _property("chs")


def test_tiny_hand_cases(tiny):
    """A few cases worked by hand on the tiny scheme, checked on the batch engine itself."""
    rows = [
        # FR1 heart failure, MCC N17.900 is in the never-excluded table 99
        dict(pdx="I50.000", sdx=["N17.900"], pproc=None, oproc=[], sex=1.0, age=60.0),
        # I50.000 is its own table 7 principal: the CC I50.000 as secondary is excluded
        dict(pdx="I50.000", sdx=["I50.000"], pproc=None, oproc=[], sex=2.0, age=85.0, discharge=1.0),
        # medical ADRG with an OR principal procedure: FQY (ambiguous_group = true)
        dict(pdx="I50.000", sdx=[], pproc="47.0100", oproc=[], sex=1.0, age=50.0),
        # two trauma sites (head, chest) → MDCZ
        dict(pdx="S06.000", sdx=["S27.100"], pproc=None, oproc=[], sex=1.0, age=30.0),
        # one site only → no MDC → ungroupable, reason "no mdc"
        dict(pdx="S27.000", sdx=["S27.100"], pproc=None, oproc=[], sex=1.0, age=30.0),
        # sex 3 → invalid
        dict(pdx="I50.000", sdx=[], pproc=None, oproc=[], sex=3.0, age=30.0),
        # age malformed → the malformed reason (the field check on age reads it first)
        dict(pdx="I50.000", sdx=[], pproc=None, oproc=[], sex=1.0, age=None, malformed=["age"]),
    ]
    canonical = S.frame([{**dict.fromkeys(S.CANONICAL_TYPES), "malformed": [], **r} for r in rows])
    got = group_frame(canonical, tiny)
    assert got["drg"].to_list() == ["FR11", "FR15", "FQY9", "ZZ19", "0000", "0000", "0000"]
    assert got["adrg"].to_list() == ["FR1", "FR1", "FQY", "ZZ1", "", "", ""]
    assert got["severity"].to_list() == ["MCC", "none", "none", "none", "none", "", ""]
    assert got["status"].to_list() == ["ok", "ok", "ok", "ok", "none", "bad", "bad"]
    assert got["reason"].to_list() == ["", "", "", "", "no mdc", "sex 1 or 2", "malformed"]
    assert_same(canonical, tiny)


def test_empty_frame(tiny):
    got = group_frame(S.frame([]), tiny)
    assert got.height == 0 and got.columns == list(RESULT_NAMES)


def _golden_canonical() -> tuple[pl.DataFrame, list[dict]]:
    with open(GOLDEN, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))

    def num(text):
        try:
            return float(text) if text != "" else None
        except ValueError:
            return None

    def bad(r):
        out = []
        for f in ("sex", "age", "age_days", "birth_weight", "los", "discharge"):
            if r[f] != "" and num(r[f]) is None:
                out.append(f)
        return out

    cases = []
    for r in rows:
        dx = r["diagnoses"].split("|") if r["diagnoses"] else []
        px = r["procedures"].split("|") if r["procedures"] else []
        cases.append(
            dict(
                pdx=(dx[0] or None) if dx else None,
                sdx=dx[1:],
                pproc=(px[0] or None) if px else None,
                oproc=px[1:],
                **{f: num(r[f]) for f in ("sex", "age", "age_days", "birth_weight", "los", "discharge")},
                malformed=bad(r),
            )
        )
    return S.frame(cases), rows


@needs_shared
def test_golden_file_on_batch_engine(chs):
    canonical, rows = _golden_canonical()
    got = group_frame(canonical, chs)
    assert got.height == len(rows) == 5000
    for col in ("mdc", "adrg", "drg", "status", "reason"):
        want = [r[col] for r in rows]
        mismatches = [
            (rows[i]["case_id"], w, g)
            for i, (w, g) in enumerate(zip(want, got[col].to_list(), strict=True))
            if w != g
        ]
        assert mismatches == [], (col, mismatches[:5])


# -- warnings and streaming -------------------------------------------------------------


@SETTINGS
@given(data=st.data(), grey=st.booleans())
def test_warnings_fast_equals_findings(tiny, tiny_grey, data, grey):
    """The batch warnings column equals casemix.drg.findings.warnings_column (grey codes too)."""
    from casemix.drg.batch import warnings_fast
    from casemix.drg.findings import warnings_column
    from casemix.encode import encode_cases

    tiny = tiny_grey if grey else tiny

    rows = data.draw(st.lists(S.cases(_pools(tiny)), min_size=1, max_size=20))
    iw = data.draw(
        st.lists(
            st.lists(st.sampled_from(["negative_cost", "malformed:age"]), max_size=2),
            min_size=len(rows),
            max_size=len(rows),
        )
    )
    canonical = S.frame(rows).with_columns(pl.Series("intake_warnings", iw, dtype=pl.List(pl.String)))
    got = warnings_fast(canonical, encode_cases(canonical, tiny), tiny)
    assert got.to_list() == warnings_column(canonical, tiny).to_list()


def test_group_parquet_streams_batches(tiny, tmp_path):
    pytest.importorskip("casemix.cases")
    import casemix
    from casemix.drg.batch import group_parquet

    rows = [
        dict(pdx="I50.000", sdx=["N17.900"], pproc=None, oproc=[], sex=1.0, age=60.0),
        dict(pdx="S06.000", sdx=["S27.100", "BAD.1"], pproc=None, oproc=[], sex=2.0, age=30.0),
        dict(pdx="I50.000", sdx=[], pproc="47.0100", oproc=[], sex=1.0, age=50.0),
        dict(pdx=None, sdx=[], pproc=None, oproc=[], sex=1.0, age=50.0),
    ] * 5
    src = pl.DataFrame([{"case_id": f"c{i}", **r} for i, r in enumerate(rows)])
    src.write_parquet(tmp_path / "in.parquet", row_group_size=7)
    info = group_parquet(
        tmp_path / "in.parquet", tmp_path / "out.parquet", tiny, batch_size=3, progress=False
    )
    # row groups of 7, 7 and 6 rows, each cut in batches of at most 3
    assert info["rows"] == 20 and info["batches"] == 8
    out = pl.read_parquet(tmp_path / "out.parquet")
    want = casemix.group(src, scheme=tiny, engine="reference")
    assert out.columns == want.columns
    assert out.equals(want)
    group_parquet(tmp_path / "in.parquet", tmp_path / "key.parquet", tiny, progress=False, keep=["case_id"])
    key = pl.read_parquet(tmp_path / "key.parquet")
    assert key.equals(want.select("case_id", *want.columns[-7:]))
    with pytest.raises(casemix.InputError, match="nope"):
        group_parquet(tmp_path / "in.parquet", tmp_path / "x.parquet", tiny, keep=["nope"])


def test_batch_ranges_keep_row_groups_whole():
    from casemix.drg.batch import _batch_ranges

    assert _batch_ranges([250, 250, 250, 250], 600) == [(0, 500), (500, 500)]
    assert _batch_ranges([100, 100, 500], 250) == [(0, 200), (200, 250), (450, 250)]
    assert _batch_ranges([], 10) == []
    sizes = [13, 1, 40, 7, 7, 2]
    for batch in (1, 5, 14, 100):
        ranges = _batch_ranges(sizes, batch)
        assert all(0 < r <= batch for _, r in ranges)
        assert [o for o, _ in ranges] == list(np.cumsum([0] + [r for _, r in ranges[:-1]]))
        assert sum(r for _, r in ranges) == sum(sizes)


def test_group_parquet_empty_file(tiny, tmp_path):
    pytest.importorskip("casemix.cases")
    from casemix.drg.batch import group_parquet

    src = S.frame([]).with_columns(pl.lit("x").alias("case_id"))
    src.write_parquet(tmp_path / "in.parquet")
    info = group_parquet(tmp_path / "in.parquet", tmp_path / "out.parquet", tiny, progress=False)
    out = pl.read_parquet(tmp_path / "out.parquet")
    assert info["rows"] == 0 and out.height == 0
    assert out.columns[-7:] == ["mdc", "adrg", "drg", "severity", "status", "reason", "warnings"]


def test_chunked_grouping_equals_one_pass(tiny):
    rows = [
        dict(
            pdx=p,
            sdx=s,
            pproc=None,
            oproc=[],
            sex=1.0,
            age=a,
            age_days=None,
            birth_weight=None,
            los=3.0,
            discharge=1.0,
            malformed=[],
        )
        for p, s, a in [
            ("I50.000", ["N17.900"], 60.0),
            ("S06.000", ["S27.100"], 30.0),
            ("I21.000", [], 85.0),
            (None, [], 40.0),
            ("I99.x00", ["x"], None),
        ]
        * 3
    ]
    canonical = S.frame(rows)
    whole = group_frame(canonical, tiny, warnings=True)
    for size in (1, 2, 4, 15, 100):
        assert group_frame(canonical, tiny, warnings=True, chunk_rows=size).equals(whole)


def test_numba_cache_switch(monkeypatch):
    """CASEMIX_NUMBA_CACHE=0 compiles in memory only (numba issues #4807, #10128)."""
    import subprocess
    import sys

    from casemix.drg.kernel import cache_enabled

    for value, expected in (("0", False), ("false", False), ("off", False), ("1", True), ("", True)):
        monkeypatch.setenv("CASEMIX_NUMBA_CACHE", value)
        assert cache_enabled() is expected
    # every kernel module reads the switch the same way (benefits and DIP included)
    code = (
        "from casemix.drg import kernel; from casemix.benefits import kernel as b; "
        "from casemix.dip import kernel as d; "
        "print(*(type(k._cache).__name__ for k in "
        "(kernel.group_kernel, kernel.encode_views, b._cascade, d._kernel())))"
    )
    for value, names in (
        ("0", "NullCache " * 4),
        ("off", "NullCache " * 4),
        ("1", "FunctionCache " * 4),
    ):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**__import__("os").environ, "CASEMIX_NUMBA_CACHE": value},
        )
        assert out.stdout.split() == names.split()


def test_import_casemix_compiles_nothing():
    import subprocess
    import sys

    code = "import sys, casemix; print('numba' in sys.modules, 'casemix.drg.kernel' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_progress_bar_is_quiet_off_a_terminal():
    from casemix.drg.batch import _progress

    # pytest captures stderr, so it is not a terminal: no bar, with or without progress=True
    assert _progress(10, True) is None
    assert _progress(10, False) is None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_validity_without_truth_table(tmp_path_factory, data):
    """The interpreted validity checks (used when a scheme has too many atoms) equal the reference."""
    from casemix.drg import compile as C
    from casemix.scheme import load_scheme

    if not hasattr(test_validity_without_truth_table, "scheme"):
        limit = C.MAX_VALIDITY_ATOMS
        C.MAX_VALIDITY_ATOMS = 0
        try:
            scheme = load_scheme(write(tmp_path_factory.mktemp("tiny-no-table")))
            assert len(C.compile_scheme(scheme).atom_kind) == 0
        finally:
            C.MAX_VALIDITY_ATOMS = limit
        test_validity_without_truth_table.scheme = scheme
    scheme = test_validity_without_truth_table.scheme
    rows = data.draw(st.lists(S.cases(_pools(scheme)), min_size=1, max_size=30))
    assert_same(S.frame(rows), scheme)
