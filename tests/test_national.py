"""The national scheme ships: CHS-DRG 1.1 by name, its grey codes, the low-rate warning.

The shipped folder ``grouping_tables/chs-drg-1.1`` must be the tables of
``../shared/schemes/chs-drg-1.1`` unchanged (its golden file stays there),
plus the 医保版 2.0 grey lists of ``../shared/reference-data/icd-grey-codes``.
"""

from __future__ import annotations

import warnings

import polars as pl
import pytest
from click.testing import CliRunner
from tests.conftest import CHS, GOLDEN, SHARED, needs_shared
from tests.tiny_scheme import FILES, GREY, write

import casemix
from casemix.drg.reference import Case, group_case
from casemix.errors import LowGroupingRateWarning, SchemeError
from casemix.scheme import DEFAULT_SCHEME, load_scheme, tables_root

SHIPPED = tables_root() / "chs-drg-1.1"
#: files copied as they are from ../shared/schemes/chs-drg-1.1
COPIED = (
    "adrg.csv",
    "cc.csv",
    "diagnoses.csv",
    "drg.csv",
    "exclusions.csv",
    "lists.csv",
    "mdc.csv",
    "or_procedures.csv",
    "procedures.csv",
    "LICENSE.Apache-2.0",
)


# -- the shipped folder -------------------------------------------------------------------


def test_national_scheme_is_shipped_and_the_default():
    assert "chs-drg-1.1" in casemix.schemes()
    assert DEFAULT_SCHEME == "chs-drg-1.1"
    s = load_scheme()
    assert s.id == "chs-drg-1.1" and s.path == SHIPPED.resolve()
    assert not (SHIPPED / "expected").exists()  # the golden file stays in ../shared
    for name in ("NOTICE", "LICENSE.Apache-2.0", "README.md", "grey_diagnoses.csv", "grey_procedures.csv"):
        assert (SHIPPED / name).is_file(), name


@needs_shared
@pytest.mark.parametrize("name", COPIED)
def test_shipped_tables_equal_the_shared_ones(name):
    assert (SHIPPED / name).read_bytes() == (CHS / name).read_bytes()


@needs_shared
def test_shipped_toml_and_notice_only_add_to_the_shared_ones():
    """scheme.toml gains the [grey] section, NOTICE the grey lists' origin; nothing else changes."""
    for name in ("scheme.toml", "NOTICE"):
        ours, theirs = (SHIPPED / name).read_text("utf-8"), (CHS / name).read_text("utf-8")
        assert ours.startswith(theirs) and len(ours) > len(theirs)
    assert "[grey]" in (SHIPPED / "scheme.toml").read_text("utf-8")
    assert "DRG_Datas" in (SHIPPED / "NOTICE").read_text("utf-8")


@needs_shared
@pytest.mark.parametrize(
    "ours, published",
    [("grey_diagnoses.csv", "icd10-yb-2.0-grey.txt"), ("grey_procedures.csv", "icd9cm3-yb-2.0-grey.txt")],
)
def test_grey_lists_are_the_published_ones(ours, published):
    text = (SHARED / "reference-data" / "icd-grey-codes" / published).read_text("utf-8-sig")
    codes = [line.strip() for line in text.splitlines() if line.strip()]
    shipped = (SHIPPED / ours).read_text("utf-8").splitlines()
    assert shipped[0] == "code"
    assert shipped[1:] == list(dict.fromkeys(codes))  # de-duplicated, first occurrence kept


def test_grey_lists_counts(chs):
    assert chs.grey == {"pdx": "grey.pdx", "pproc": "grey.pproc"}
    assert len(chs.lists["grey.pdx"]) == 2695 and len(chs.lists["grey.pproc"]) == 2241
    # every grey code is a code of the scheme's dictionaries
    assert chs.lists["grey.pdx"] <= chs.diagnoses.keys()
    assert chs.lists["grey.pproc"] <= chs.procedures.keys()


# -- grey codes: loading ------------------------------------------------------------------


def test_grey_section_loads_as_named_lists(tiny_grey):
    assert tiny_grey.grey == {"pdx": "grey.pdx", "pproc": "grey.pproc"}
    assert tiny_grey.lists["grey.pdx"] == {"I99.x00", "S27.100", "Z99.999"}
    assert tiny_grey.lists["grey.pproc"] == {"89.4600"}
    assert tiny_grey.checks[-1].reason == "grey principal procedure"


@pytest.mark.parametrize(
    "grey, fragment",
    [
        ('[grey]\nsdx = "grey_dx.csv"\n', "column grey.sdx: unknown key 'grey.sdx'; did you mean 'pdx'"),
        ('[grey]\npdx = "../grey_dx.csv"\n', "line 35, column grey.pdx: must name a code file"),
        ("[grey]\npdx = 3\n", "'grey.pdx' must be text"),
        ('[grey]\npdx = "absent.csv"\n', "absent.csv: required table is missing"),
        ("grey = 1\n", "'grey' must be a table"),
    ],
)
def test_grey_section_faults(tmp_path, grey, fragment):
    toml = grey + FILES["scheme.toml"] if not grey.startswith("[") else FILES["scheme.toml"] + grey
    folder = write(tmp_path, **{"scheme.toml": toml, "grey_dx.csv": GREY["grey_dx.csv"]})
    with pytest.raises(SchemeError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        load_scheme(folder)


def test_grey_list_name_clash_and_unknown_list_in_a_check(tmp_path):
    lists = FILES["lists.csv"] + "grey.pdx,I50.000,\n"
    folder = write(tmp_path / "a", **{**GREY, "lists.csv": lists})
    with pytest.raises(SchemeError, match="in lists.csv and in"):
        load_scheme(folder)
    toml = FILES["scheme.toml"] + '[[validity.check]]\nrule = "!(pdx in grey.pdx)"\nreason = "x"\n'
    with pytest.raises(SchemeError, match="unknown list 'grey.pdx'"):
        load_scheme(write(tmp_path / "b", **{"scheme.toml": toml}))


# -- grey codes: grouping and warnings ------------------------------------------------------


def _frame(rows: list[dict]) -> pl.DataFrame:
    base = {
        "case_id": "",
        "pdx": None,
        "sdx": [],
        "pproc": None,
        "oproc": [],
        "sex": 1,
        "age": 50,
        "discharge": 1,
        "los": 5,
    }
    return pl.DataFrame(
        [{**base, **r} for r in rows],
        schema_overrides={
            "sdx": pl.List(pl.String),
            "oproc": pl.List(pl.String),
            "pdx": pl.String,
            "pproc": pl.String,
        },
    )


TINY_GREY_CASES = [
    # grey principal diagnosis: grouped as usual (FT19), a warning
    ({"case_id": "a", "pdx": "I99.x00"}, ("FT19", "ok", "", "grey_pdx:I99.x00")),
    # the same code as a secondary diagnosis: nothing to say
    ({"case_id": "b", "pdx": "I50.000", "sdx": ["I99.x00"], "age": 85}, ("FR15", "ok", "", "")),
    # grey principal procedure: the scheme's last validity check makes it invalid
    (
        {"case_id": "c", "pdx": "I99.x00", "pproc": "89.4600", "oproc": ["89.4500"]},
        ("0000", "bad", "grey principal procedure", "grey_pdx:I99.x00;grey_pproc:89.4600"),
    ),
    # the same procedure in second place: valid, FK1 as without grey lists
    ({"case_id": "d", "pdx": "I50.000", "pproc": "89.4500", "oproc": ["89.4600"]}, ("FK19", "ok", "", "")),
    # a grey code the dictionary lacks: unknown and grey
    ({"case_id": "e", "pdx": "Z99.999"}, ("0000", "none", "no mdc", "unknown_pdx:Z99.999;grey_pdx:Z99.999")),
]


@pytest.mark.parametrize("engine", ["reference", "batch"])
def test_grey_codes_on_the_tiny_scheme(tiny_grey, engine):
    df = _frame([c for c, _ in TINY_GREY_CASES])
    out = casemix.group(df, scheme=tiny_grey, engine=engine)
    got = list(out.select("drg", "status", "reason", "warnings").iter_rows())
    assert got == [want for _, want in TINY_GREY_CASES]


@needs_shared
@pytest.mark.parametrize("engine", ["reference", "batch"])
def test_golden_grey_principal_diagnoses(chs, engine):
    """37 of the 5,000 golden cases have a grey principal diagnosis; their groups do not change."""
    expected = pl.read_csv(GOLDEN, infer_schema=False).fill_null("")
    answer = ["mdc", "adrg", "drg", "status", "reason"]
    out = casemix.group(expected.drop(answer), scheme=chs, engine=engine)
    grey_pdx = out["warnings"].str.contains("grey_pdx:", literal=True)
    assert int(grey_pdx.sum()) == 37
    assert int(out["warnings"].str.contains("grey_pproc:", literal=True).sum()) == 311
    pdx = expected["diagnoses"].str.split("|").list.first()
    assert grey_pdx.to_list() == pdx.is_in(pl.Series(sorted(chs.lists["grey.pdx"])).implode()).to_list()
    assert out.select(answer).fill_null("").equals(expected.select(answer))


@needs_shared
def test_grey_codes_change_no_group(chs):
    """Every grey code as principal groups as with the shared folder, which has no grey lists."""
    plain = load_scheme(CHS)
    assert plain.grey == {}
    cases = [
        Case(pdx=code, sdx=("J96.000",), sex=sex, age=60.0)
        for code in sorted(chs.lists["grey.pdx"])
        for sex in (1.0, 2.0)
    ]
    # grey procedures are no ADRG's principal procedure; 1,597 are OR procedures (MDCA, then fall-through)
    pdx = sorted(chs.lists["BR1.pdx"])[0]
    cases += [Case(pdx=pdx, pproc=code, sex=1.0, age=60.0) for code in sorted(chs.lists["grey.pproc"])]
    got = [group_case(c, chs) for c in cases]
    assert got == [group_case(c, plain) for c in cases]
    assert sum(r.status == "分组成功" for r in got) > 1000  # most reach a group


# -- a run that groups less than half its cases ------------------------------------------------

FOREIGN = pl.DataFrame(
    {
        "case_id": ["1", "2", "3", "4", "5"],
        "diagnoses": ["XX1|Q0", "XX1", "YY2", "XX1", "I50.000"],
        "procedures": ["", "99.99", "", "", ""],
        "sex": [1, 2, 1, 1, 1],
        "age": [40, 50, 60, 70, 80],
    }
)


@pytest.mark.parametrize("engine", ["reference", "batch"])
def test_low_grouping_rate_warns_with_the_unknown_codes(engine):
    with pytest.warns(LowGroupingRateWarning) as caught:
        out = casemix.group(FOREIGN, engine=engine)
    assert out.height == 5 and int((out["status"] == "分组成功").sum()) == 1
    message = str(caught[0].message)
    assert "only 1 of 5 cases (20.0%)" in message and "chs-drg-1.1" in message
    # principal diagnoses first, most frequent first
    assert (
        message.index("Xx1 (unknown_pdx, 3)")
        < message.index("YY2 (unknown_pdx, 1)")
        < message.index("Q0 (unknown_sdx, 1)")
        < message.index("99.99 (unknown_proc, 1)")
    )


def test_half_grouped_is_not_low(chs):
    ok = FOREIGN.with_columns(pl.Series("diagnoses", ["I50.000", "XX1", "I50.000", "XX1", "XX1"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowGroupingRateWarning)
        casemix.group(ok.head(4), scheme=chs)  # 2 of 4: not below half
        casemix.group(ok.head(0), scheme=chs)  # nothing to say about no case
    with pytest.warns(LowGroupingRateWarning, match="only 2 of 5"):
        casemix.group(ok, scheme=chs)


def test_low_rate_without_unknown_codes_names_the_reasons(chs):
    invalid = FOREIGN.with_columns(
        pl.lit("I50.000").alias("diagnoses"), pl.lit("").alias("procedures"), pl.lit(None).alias("sex")
    )
    with pytest.warns(LowGroupingRateWarning, match="No code was unknown.*病人性别为空 \\(5\\)"):
        casemix.group(invalid, scheme=chs)


def test_group_parquet_warns_too(tmp_path):
    from casemix.drg.batch import group_parquet

    FOREIGN.write_parquet(tmp_path / "in.parquet")
    with pytest.warns(LowGroupingRateWarning, match="Xx1"):
        info = group_parquet(tmp_path / "in.parquet", tmp_path / "out.parquet", progress=False)
    assert info["rows"] == 5 and info["grouped"] == 1


@pytest.mark.parametrize("suffix, quiet", [(".csv", False), (".parquet", True)])
def test_cli_group_prints_the_warning_last(tmp_path, suffix, quiet):
    from casemix.cli import main

    src = tmp_path / f"in{suffix}"
    FOREIGN.write_csv(src) if suffix == ".csv" else FOREIGN.write_parquet(src)
    args = ["group", str(src), "-o", str(tmp_path / f"out{suffix}")] + (["--quiet"] if quiet else [])
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # rich wraps long lines
    assert "warning: only 1 of 5 cases" in text and "Xx1 (unknown_pdx, 3)" in text
    assert text.index("warning:") > text.find("Not grouped")  # after the summary


def test_alert_is_a_red_line_on_stderr(monkeypatch, capsys):
    from rich.console import Console

    from casemix.cli import _render

    monkeypatch.setattr(_render, "Console", lambda **kw: Console(force_terminal=True, **kw))
    _render.alert("only 1 of 5 cases", None)
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1
    assert "\x1b[1;31mwarning:" in out.err and "\x1b[31monly 1 of 5 cases" in out.err
