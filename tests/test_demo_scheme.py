"""The embedded demo scheme: loads, uses every construct, and its hand-worked examples group as written."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from casemix.drg.reference import Case, group_case
from casemix.scheme import load_scheme, tables_root
from casemix.scheme.rules import (
    And,
    Compare,
    InList,
    Not,
    Or,
    OrProc,
    Severity,
    Sites,
    TrueRule,
    walk,
)

EXAMPLES = tables_root() / "casemix-demo" / "examples.csv"
COLUMNS = ["mdc", "adrg", "drg", "status", "reason"]


@pytest.fixture(scope="module")
def demo():
    return load_scheme("casemix-demo")


def _num(text: str):
    return float(text) if text != "" else None


def _case(r: dict) -> Case:
    dx = r["diagnoses"].split("|") if r["diagnoses"] else []
    px = r["procedures"].split("|") if r["procedures"] else []
    return Case(
        pdx=dx[0] or None if dx else None,
        sdx=tuple(c for c in dx[1:] if c),
        pproc=px[0] or None if px else None,
        oproc=tuple(c for c in px[1:] if c),
        sex=_num(r["sex"]),
        age=_num(r["age"]),
        age_days=_num(r["age_days"]),
        birth_weight=_num(r["birth_weight"]),
        los=_num(r["los"]),
        discharge=_num(r["discharge"]),
    )


def test_demo_is_the_default_and_covers_26_mdcs(demo):
    assert demo.id == "casemix-demo" and len(demo.mdcs) == 26
    assert all(demo.adrgs[m.code] for m in demo.mdcs), "every MDC has ADRGs"
    kinds = {a.kind for ads in demo.adrgs.values() for a in ads}
    assert kinds == {"surgical", "procedure", "medical"}


def test_demo_uses_every_construct_of_the_format(demo):
    rules = (
        [m.rule for m in demo.mdcs]
        + [a.rule for v in demo.adrgs.values() for a in v]
        + [d.rule for v in demo.drgs.values() for d in v]
        + [r for c in demo.checks for r in (c.when, c.rule) if r is not None]
    )
    nodes = [n for r in rules for n in walk(r)]
    kinds = {type(n) for n in nodes}
    assert {TrueRule, InList, OrProc, Sites, Compare, Severity, Not, And, Or} <= kinds
    assert {n.target for n in nodes if isinstance(n, InList)} == {"pdx", "sdx", "dx", "pproc", "proc"}
    assert {n.principal_only for n in nodes if isinstance(n, OrProc)} == {True, False}
    assert {n.field for n in nodes if isinstance(n, Compare)} == {
        "sex",
        "age",
        "age_days",
        "birth_weight",
        "los",
        "discharge",
    }
    assert {n.op for n in nodes if isinstance(n, (Compare, Sites))} == {"<", "<=", "==", "!=", ">=", ">"}
    assert {n.level for n in nodes if isinstance(n, Severity)} == {"MCC", "CC"}
    assert demo.ambiguous_group and demo.mdc_fallthrough and demo.never_excluded_table
    assert any(t == demo.never_excluded_table for _, t in demo.cc.values())
    assert demo.malformed_reason and demo.checks and all(demo.reasons.values())


def test_hand_worked_examples(demo):
    with open(EXAMPLES, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 30
    wrong = []
    for r in rows:
        got = group_case(_case(r), demo)
        if [getattr(got, c) for c in COLUMNS] != [r[c] for c in COLUMNS]:
            wrong.append((r["case_id"], [r[c] for c in COLUMNS], got))
    assert wrong == []
    # the examples reach every MDC, the QY group, exclusions and all three statuses
    assert {r["mdc"] for r in rows if r["mdc"]} == {m.code for m in demo.mdcs}
    assert any(r["adrg"].endswith("QY") for r in rows)
    assert {r["status"] for r in rows} == set(demo.status.values())


def test_tables_ship_inside_the_package():
    assert (tables_root() / "casemix-demo" / "scheme.toml").is_file()
    assert (Path(__file__).resolve().parents[1] / "src" / "casemix" / "grouping_tables").exists()


def test_hand_worked_examples_on_the_batch_engine_with_severity(demo):
    """The batch engine groups the examples as written, and its severity is the reference's."""
    import polars as pl

    import casemix

    expected = pl.read_csv(EXAMPLES, infer_schema=False).fill_null("")
    out = casemix.group(expected.drop(COLUMNS), scheme=demo, engine="batch")
    assert out["case_id"].to_list() == expected["case_id"].to_list()
    got = out.select(COLUMNS).fill_null("").rows()
    assert [
        (cid, g)
        for cid, g, e in zip(expected["case_id"], got, expected.select(COLUMNS).rows(), strict=True)
        if g != e
    ] == []
    with open(EXAMPLES, encoding="utf-8") as fh:
        ref = [group_case(_case(r), demo).severity for r in csv.DictReader(fh)]
    sev = out["severity"].fill_null("").to_list()
    assert [(cid, s, r) for cid, s, r in zip(expected["case_id"], sev, ref, strict=True) if s != r] == []
    # the examples reach every severity label, so a wrong level would show
    assert len(set(ref)) >= 3, set(ref)
