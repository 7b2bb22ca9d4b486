"""DIP grouping: hand-checked cases, catalog validation, and batch == reference."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casemix import dip
from casemix.dip.catalog import Catalog, DipGroup, parse_dx_pattern
from casemix.errors import InputError, SchemeError
from conftest import CHS, needs_shared


def frame(rows):
    """Canonical case frame from (pdx, sdx, pproc, oproc) tuples."""
    return pl.DataFrame(
        {
            "case_id": [str(i + 1) for i in range(len(rows))],
            "pdx": [r[0] for r in rows],
            "sdx": [r[1] for r in rows],
            "pproc": [r[2] for r in rows],
            "oproc": [r[3] for r in rows],
            "total_cost": [1000.0] * len(rows),
        },
        schema_overrides={
            "pdx": pl.String,
            "sdx": pl.List(pl.String),
            "pproc": pl.String,
            "oproc": pl.List(pl.String),
        },
    )


@pytest.fixture(scope="module")
def demo():
    return dip.load_catalog("dip-demo")


HAND = [
    # (pdx, sdx, pproc, oproc) -> (group, warnings)
    (("K35.300", [], "47.0100", []), ("D0001", "")),
    # related procedure present: the related group wins
    (("K35.300", [], "47.0100", ["54.5100"]), ("D0002", "")),
    # a procedure the catalog does not know as related does not matter
    (("K35.301", [], "47.0100", ["99.0400"]), ("D0001", "")),
    # K35.8 lists two main procedures: either one matches
    (("K35.800x001", [], "47.0901", []), ("D0005", "")),
    # conservative: no procedure
    (("K35.300", [], None, []), ("D0004", "")),
    # main procedure listed 'conservative' -> conservative group, surgery in oproc ignored
    (("K35.301", [], "99.1800", ["47.0100"]), ("D0004", "dip_procedure_as_conservative")),
    # main procedure listed 'skip' -> the next one is main; 00.6600 is the related procedure
    (("I25.102", [], "88.5500", ["36.0700", "00.6600"]), ("D0018", "dip_main_procedure_skipped")),
    # principal diagnosis Z51.1 (chemotherapy session) -> the tumour diagnosis
    (("Z51.100", ["C34.900x001"], "99.2500", []), ("D0027", "dip_pdx_replaced")),
    # range key A15-A16, category key N18
    (("A16.200x002", [], None, []), ("D0032", "")),
    (("N18.500", [], None, []), ("D0033", "")),
    # I63.9 + thrombectomy + cerebral angiography: related group
    (("I63.900", [], "39.7400", ["88.4100"]), ("D0016", "")),
    # comprehensive: K35.9 has no core group; the MAIN procedure's attribute counts
    # (诊断性操作, DIP 3.0 draft §3.3 三(三)2), not the other procedure's 相关手术
    (("K35.900", [], "45.2300", ["47.0100"]), ("K35B", "")),
    # comprehensive by the diagnostic procedure only
    (("K35.900", [], "45.2300", []), ("K35B", "")),
    # J18.9 with intubation but no ventilation as main: no core match -> comprehensive 治疗性操作
    (("J18.900", [], "96.0400", []), ("J18C", "")),
    # 基层 group
    (("I10.x00x002", [], None, []), ("D0020", "")),
]


@pytest.mark.parametrize("engine", ["reference", "batch"])
def test_hand_checked_cases(demo, engine):
    out = dip.group(frame([c for c, _ in HAND]), demo, engine=engine)
    assert out["dip_group"].to_list() == [g for _, (g, _) in HAND]
    assert out["warnings"].to_list() == [w for _, (_, w) in HAND]
    assert set(out["status"]) == {"grouped"}
    assert out["dip_score"][0] == 1480.0
    assert out["dip_type"][14] == "primary"
    assert out["dip_type"][11] == "comprehensive"


@pytest.mark.parametrize("engine", ["reference", "batch"])
def test_reasons(demo, engine):
    rows = [
        (None, [], None, []),
        ("R50.900", [], None, []),
        ("Z00.001", [], None, []),
        ("Z51.100", ["Z51.000"], None, []),
        ("123", [], None, []),
        ("Q90.900", [], "47.0100", []),
    ]
    out = dip.group(frame(rows), demo, engine=engine)
    assert out["status"].to_list() == ["ungrouped"] * 6
    assert out["dip_group"].null_count() == 6 and out["dip_score"].null_count() == 6
    reasons = out["reason"].to_list()
    assert reasons[0] == "no principal diagnosis"
    assert "R50.900 may not be principal" in reasons[1]
    assert "Z00.001 may not be principal" in reasons[2]
    assert "no secondary diagnosis" in reasons[3]
    assert "not an ICD-10 code" in reasons[4]
    assert reasons[5].endswith("Q90 × 相关手术")


def test_main_procedure_only_switch(demo):
    # attribute from all procedures (相关手术 in oproc) vs the main one only (诊断性操作)
    # DIP 3.0 draft §3.3 三(三)2: the main procedure's attribute is the default
    rows = [("K35.900", [], "45.2300", ["47.0100"])]
    assert dip.group(frame(rows), demo)["dip_group"][0] == "K35B"
    for engine in ("batch", "reference"):
        out = dip.group(frame(rows), demo, engine=engine, main_procedure_only=False)
        assert out["dip_group"][0] == "K35D"
        assert dip.group(frame(rows), demo, engine=engine)["dip_group"][0] == "K35B"


def test_frame_types_and_order(demo):
    rows = [c for c, _ in HAND]
    pl_out = dip.group(frame(rows), demo)
    pdf = frame(rows).to_pandas()
    pdf.index = pd.RangeIndex(100, 100 + len(rows))
    pd_out = dip.group(pdf, demo)
    assert isinstance(pd_out, pd.DataFrame)
    assert list(pd_out.index) == list(pdf.index)
    assert pd_out["dip_group"].tolist() == pl_out["dip_group"].to_list()
    assert pl_out["case_id"].to_list() == [str(i + 1) for i in range(len(rows))]


def test_intake_warnings_are_kept(demo):
    f = frame([("K35.300", [], "47.0100", []), ("Z51.100", ["C34.900"], None, [])])
    f = f.with_columns(intake_warnings=pl.Series([["negative_los"], ["a", "b"]], dtype=pl.List(pl.String)))
    out = dip.group(f, demo)
    assert out["warnings"].to_list() == ["negative_los", "a;b;dip_pdx_replaced"]


def test_missing_pdx_column_is_an_input_error(demo):
    with pytest.raises(InputError, match="pdx"):
        dip.group(pl.DataFrame({"x": [1]}), demo)


def test_unknown_catalog_names_the_shipped_ones():
    with pytest.raises(SchemeError, match="dip-demo"):
        dip.load_catalog("no-such-catalog")


# ------------------------------------------------------------ catalog validation
def _copy_demo(tmp_path):
    folder = tmp_path / "cat"
    shutil.copytree(dip.load_catalog("dip-demo").path, folder)
    return folder


@pytest.mark.parametrize(
    "file,old,new,line,column",
    [
        ("groups.csv", "D0003,core,K35.3", "D0003,kernel,K35.3", 4, "type"),
        ("groups.csv", "D0003,core,K35.3", "D0003,core,K35.33", 4, "dx_key"),
        ("groups.csv", "D0003,core,K35.3", "D0001,core,K35.3", 4, "group"),
        ("groups.csv", ",,,1310,", ",,,abc,", 4, "score"),
        ("groups.csv", "K35A,comprehensive,K35,,,内科诊疗", "K35A,comprehensive,K35,,,外科", 38, "attribute"),
        ("groups.csv", "K35A,comprehensive,K35,", "K35A,comprehensive,K35.3,", 38, "dx_key"),
        ("groups.csv", "D0032,core,A15-A16", "D0032,core,A16-A15", 33, "dx_key"),
        ("procedure_attributes.csv", "47.0901,相关手术", "47.0901,手术室", 3, "attribute"),
        ("excluded_procedures.csv", "88.5600,skip", "88.5600,drop", 3, "handling"),
        ("excluded_diagnoses.csv", "R50.900,not_grouped", "R50.900,nope", 5, "handling"),
    ],
)
def test_malformed_catalog_names_file_line_column(tmp_path, file, old, new, line, column):
    folder = _copy_demo(tmp_path)
    p = folder / file
    text = p.read_text(encoding="utf-8")
    assert old in text
    p.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(SchemeError) as err:
        dip.load_catalog(folder)
    assert err.value.file.endswith(file)
    assert err.value.line == line
    assert err.value.column == column


def test_missing_column_and_missing_file(tmp_path):
    folder = _copy_demo(tmp_path)
    p = folder / "groups.csv"
    p.write_text(p.read_text(encoding="utf-8").replace(",score,", ",points,", 1), encoding="utf-8")
    with pytest.raises(SchemeError, match="missing column 'score'"):
        dip.load_catalog(folder)
    (folder / "catalog.toml").unlink()
    with pytest.raises(SchemeError, match="catalog.toml"):
        dip.load_catalog(folder)


def test_write_then_load_round_trip(tmp_path, demo):
    folder = dip.write_catalog(demo, tmp_path / "copy")
    back = dip.load_catalog(folder)
    assert [
        (g.group, g.type, g.dx_key.text, g.main, g.related, g.attribute, g.score) for g in back.groups
    ] == [(g.group, g.type, g.dx_key.text, g.main, g.related, g.attribute, g.score) for g in demo.groups]
    assert back.attributes == demo.attributes
    assert back.excluded_procedures == demo.excluded_procedures
    assert [(p.text, h) for p, h in back.excluded_diagnoses] == [
        (p.text, h) for p, h in demo.excluded_diagnoses
    ]


@needs_shared
def test_demo_catalog_uses_real_codes():
    shared = CHS  # ../shared beside the checkout or CASEMIX_SHARED (tests/conftest.py)
    procs = {
        line.split(",", 1)[0]
        for line in (shared / "procedures.csv").read_text(encoding="utf-8").splitlines()[1:]
    }
    dxs = [
        line.split(",", 1)[0]
        for line in (shared / "diagnoses.csv").read_text(encoding="utf-8").splitlines()[1:]
    ]
    demo = dip.load_catalog("dip-demo")
    used = (
        {c for g in demo.groups for c in (*g.main, *g.related)}
        | set(demo.attributes)
        | set(demo.excluded_procedures)
    )
    assert used <= procs, used - procs
    for g in demo.groups:
        assert any(g.dx_key.matches(d) for d in dxs), g.group


# ------------------------------------------------------------ batch == reference
DX_POOL = [
    "K35.300",
    "K35.301",
    "K35.800",
    "K35.800x001",
    "K35.900",
    "K36.x00",
    "K37.x00",
    "A15.000",
    "A16.200",
    "Z51.100",
    "Z51.000",
    "R50.900",
    "C34.900",
    "X",
    "12",
    "K80.100",
    "",
    " K35.300 ",
]
PROC_POOL = ["P1", "P2", "P3", "P4", "P5", "P6", "Q9", "", " P2 "]
KEYS = ["K35.3", "K35.8", "K35", "K36", "K30-K38", "A15-A16", "K35.2-K35.8", "K80.1"]


@st.composite
def catalogs(draw):
    n = draw(st.integers(1, 14))
    groups = []
    for i in range(n):
        comprehensive = draw(st.booleans()) and i % 3 == 0
        if comprehensive:
            key = draw(st.sampled_from(["K35", "K36", "A15", "K80", "Z51"]))
            groups.append(
                DipGroup(
                    f"G{i}",
                    "comprehensive",
                    parse_dx_pattern(key),
                    (),
                    (),
                    draw(st.integers(0, 3)),
                    100.0 + i,
                )
            )
            continue
        main = tuple(draw(st.lists(st.sampled_from(PROC_POOL[:6]), max_size=3, unique=True)))
        related = (
            tuple(draw(st.lists(st.sampled_from(PROC_POOL[:6]), max_size=3, unique=True))) if main else ()
        )
        groups.append(
            DipGroup(
                f"G{i}",
                draw(st.sampled_from(["core", "primary"])),
                parse_dx_pattern(draw(st.sampled_from(KEYS))),
                main,
                related,
                -1,
                100.0 + i,
            )
        )
    attrs = draw(st.dictionaries(st.sampled_from(PROC_POOL[:7]), st.integers(0, 3)))
    excl_p = draw(
        st.dictionaries(st.sampled_from(PROC_POOL[:7]), st.sampled_from(["skip", "conservative"]), max_size=3)
    )
    excl_d = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["Z51.1", "Z51", "R50.900", "A15", "K35.8", "Z00-Z52"]),
                st.sampled_from(["not_grouped", "next_diagnosis"]),
            ),
            max_size=3,
        )
    )
    return Catalog(
        id="h",
        name="h",
        version="",
        source="",
        groups=tuple(groups),
        attributes=attrs,
        excluded_diagnoses=tuple((parse_dx_pattern(p, allow_code=True), h) for p, h in excl_d),
        excluded_procedures=excl_p,
        unlisted_attribute=draw(st.integers(-1, 3)),
    )


case_rows = st.lists(
    st.tuples(
        st.one_of(st.none(), st.sampled_from(DX_POOL)),
        st.lists(st.sampled_from(DX_POOL), max_size=3),
        st.one_of(st.none(), st.sampled_from(PROC_POOL)),
        st.lists(st.one_of(st.none(), st.sampled_from(PROC_POOL)), max_size=4),
    ),
    min_size=1,
    max_size=25,
)


def _same(a: dict, b: dict):
    for k in ("group", "reason", "warnings", "attribute"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert list(a["dx"]) == list(b["dx"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogs(), case_rows, st.booleans())
def test_batch_equals_reference(cat, rows, main_only):
    f = frame(rows)
    ref = dip.outcomes(f, cat, engine="reference", main_procedure_only=main_only)
    bat = dip.outcomes(f, cat, engine="batch", main_procedure_only=main_only)
    _same(ref, bat)
    # every case is in exactly one group or has a reason
    assert ((ref["group"] >= 0) != (ref["reason"] > 0)).all()


@settings(max_examples=40, deadline=None)
@given(case_rows)
def test_batch_equals_reference_on_demo(rows):
    f = frame(rows)
    demo = dip.load_catalog("dip-demo")
    a = dip.group(f, demo, engine="reference")
    b = dip.group(f, demo, engine="batch")
    assert a.equals(b)
    assert (a["dip_group"].is_null() == (a["reason"] != "")).all()
    assert a.height == f.height


def test_demo_subtypes_and_their_validation(tmp_path, demo):
    assert demo.subtypes[("D0011", "age", "0-28d")] == 1.40
    folder = _copy_demo(tmp_path)
    p = folder / "subtypes.csv"
    p.write_text(
        p.read_text(encoding="utf-8").replace("D0029,tumour,death", "D0029,tumour,dead"), encoding="utf-8"
    )
    with pytest.raises(SchemeError) as err:
        dip.load_catalog(folder)
    assert (err.value.line, err.value.column) == (6, "subtype")


def test_casemix_group_dispatches_dip_catalogs_and_raw_layouts(demo):
    import casemix

    raw = pl.DataFrame(
        {
            "主要诊断编码": ["K35.300", "I10.x00"],
            "诊断": ["", ""],
            "手术": ["47.0100|54.5100", ""],
            "总费用": ["30000", "4000"],
        }
    )
    mapping = {"主要诊断编码": "pdx", "诊断": "sdx", "手术": "procedures", "总费用": "total_cost"}
    out = casemix.group(raw, scheme="dip-demo", mapping=mapping)
    assert out.columns[:4] == raw.columns
    assert out["dip_group"].to_list() == ["D0002", "D0020"]


@pytest.mark.parametrize("engine", ["reference", "batch"])
def test_missing_code_columns_count_as_empty(demo, engine):
    f = pl.DataFrame({"pdx": ["K35.300", "K35.300", " "], "pproc": ["47.0100", None, None]})
    out = dip.group(f, demo, engine=engine)
    assert out["dip_group"].to_list() == ["D0001", "D0004", None]
    assert out["reason"][2] == "no principal diagnosis"


@pytest.mark.parametrize("engine", ["reference", "batch"])
def test_empty_input(demo, engine):
    out = dip.group(frame([]), demo, engine=engine)
    assert out.height == 0
    assert {"dip_group", "dip_type", "dip_score", "status", "reason", "warnings"} <= set(out.columns)


@pytest.mark.parametrize(
    "old, new, line, key, fragment",
    [
        ("[grouping]", "[groupings]", 10, "groupings", "did you mean 'grouping'?"),
        (
            "unlisted_procedure_attribute",
            "unlisted_procedure_atribute",
            12,
            "grouping.unlisted_procedure_atribute",
            "did you mean 'unlisted_procedure_attribute'?",
        ),
        ('kind = "dip"', 'kind = "drg"', 4, "kind", "must be one of 'dip'"),
        ('version = "0.1"', "version = 0.1", 7, "version", "'version' must be text, got 0.1 (float)"),
        (
            'unlisted_procedure_attribute = "ignore"',
            'unlisted_procedure_attribute = "sometimes"',
            12,
            "grouping.unlisted_procedure_attribute",
            'use "ignore" or an attribute name',
        ),
    ],
)
def test_catalog_toml_is_strict(tmp_path, old, new, line, key, fragment):
    folder = _copy_demo(tmp_path)
    p = folder / "catalog.toml"
    p.write_text(p.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    with pytest.raises(SchemeError) as err:
        dip.load_catalog(folder)
    assert (err.value.line, err.value.column) == (line, key)
    assert fragment in str(err.value)


def test_write_catalog_escapes_line_breaks_and_quotes(tmp_path, demo):
    from dataclasses import replace

    odd = 'Jinhua 金华 "2024"\nline two\t\\ end\x7f'
    folder = dip.write_catalog(replace(demo, name=odd, source=odd), tmp_path / "odd")
    back = dip.load_catalog(folder)
    assert (back.name, back.source) == (odd, odd)
