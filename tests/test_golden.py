"""Golden file: the national CHS-DRG 1.1 scheme reproduces every graded case of ../shared.

The file is read in place (never copied).  Two routes: the reference
grouper fed directly, and ``casemix.group`` end to end (intake included)
on both engines.
"""

from __future__ import annotations

import csv

import polars as pl
import pytest
from tests.conftest import GOLDEN, needs_shared

COLUMNS = ["mdc", "adrg", "drg", "status", "reason"]


def _rows():
    with open(GOLDEN, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _num(text):
    return float(text) if text != "" else None


@needs_shared
def test_reference_grouper_reproduces_golden_file(chs):
    from casemix.drg.reference import Case, group_case

    rows = _rows()
    assert len(rows) == 5000
    mismatches = []
    for r in rows:
        dx = r["diagnoses"].split("|") if r["diagnoses"] else []
        px = r["procedures"].split("|") if r["procedures"] else []
        case = Case(
            pdx=dx[0] if dx else None,
            sdx=tuple(dx[1:]),
            pproc=px[0] if px else None,
            oproc=tuple(px[1:]),
            sex=_num(r["sex"]),
            age=_num(r["age"]),
            age_days=_num(r["age_days"]),
            birth_weight=_num(r["birth_weight"]),
            los=_num(r["los"]),
            discharge=_num(r["discharge"]),
        )
        got = group_case(case, chs)
        if [getattr(got, c) for c in COLUMNS] != [r[c] for c in COLUMNS]:
            mismatches.append((r["case_id"], [r[c] for c in COLUMNS], got))
    assert mismatches == []


_OUT: dict = {}


def _grouped(chs, engine):
    """casemix.group on the golden cases, once per engine for the module."""
    import casemix

    if engine not in _OUT:
        inp = pl.read_csv(GOLDEN, infer_schema=False).fill_null("").drop(COLUMNS)
        _OUT[engine] = casemix.group(inp, scheme=chs, engine=engine)
    return _OUT[engine]


@needs_shared
@pytest.mark.parametrize("engine", ["reference", "batch"])
def test_group_end_to_end_reproduces_golden_file(chs, engine):
    pytest.importorskip("casemix.cases")
    if engine == "batch":
        pytest.importorskip("casemix.drg.batch")
    expected = pl.read_csv(GOLDEN, infer_schema=False).fill_null("")
    out = _grouped(chs, engine)
    assert out.height == 5000
    assert out["case_id"].to_list() == expected["case_id"].to_list()
    got = out.select(COLUMNS).fill_null("")
    diff = (
        expected.select("case_id", *COLUMNS)
        .with_row_index()
        .join(got.with_row_index(), on="index", suffix="_got")
    )
    bad = diff.filter(pl.any_horizontal(pl.col(c) != pl.col(f"{c}_got") for c in COLUMNS))
    assert bad.height == 0, bad.head(10)


@needs_shared
def test_engines_agree_on_severity_over_the_golden_cases(chs):
    """The golden file has no severity column: the batch engine's is compared with the reference's."""
    pytest.importorskip("casemix.drg.batch")
    ref = _grouped(chs, "reference")["severity"].fill_null("")
    bat = _grouped(chs, "batch")["severity"].fill_null("")
    assert bat.len() == ref.len() == 5000
    assert (bat != ref).sum() == 0, (
        pl.DataFrame({"ref": ref, "batch": bat}).filter(pl.col("ref") != pl.col("batch")).head(10)
    )
    assert ref.n_unique() >= 3  # MCC, CC and none all occur
