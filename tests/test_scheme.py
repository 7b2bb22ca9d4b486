"""Scheme loading: the tiny scheme loads; each kind of fault names file, line and column."""

import pytest
from tests.tiny_scheme import FILES, write

from casemix.errors import SchemeError
from casemix.scheme import load_scheme, schemes
from casemix.scheme.model import adrg_kind


def test_tiny_scheme_loads(tmp_path):
    s = load_scheme(write(tmp_path))
    assert s.id == "tiny" and s.mdc_fallthrough and s.ambiguous_group
    assert [m.code for m in s.mdcs] == ["MDCA", "MDCP", "MDCZ", "MDCM", "MDCF"]
    assert [a.code for a in s.adrgs["MDCF"]] == ["FA1", "FK1", "FR1", "FT1"]
    assert s.cc["J96.000"] == ("MCC", "5") and s.exclusions["I50.000"] == "7"
    assert s.list_attrs["MDCZ.pdx"]["S27.100"] == "chest"
    assert s.status["grouped"] == "ok" and s.reasons["no_mdc"] == "no mdc"
    assert s.never_excluded_table == "99"
    assert len(s.checks) == 5 and s.malformed_reason == "malformed"


def test_order_follows_seq_not_file_order(tmp_path):
    mdc = (
        "seq,mdc,name,rule\n2,MDCF,c,pdx in MDCF.pdx\n1,MDCA,p,pproc_or\n"
        "3,MDCP,n,true\n4,MDCZ,z,true\n5,MDCM,m,true\n"
    )
    s = load_scheme(write(tmp_path, **{"mdc.csv": mdc}))
    assert [m.code for m in s.mdcs][:2] == ["MDCA", "MDCF"]


def test_loading_is_cached_and_sees_edits(tmp_path):
    folder = write(tmp_path)
    assert load_scheme(folder) is load_scheme(str(folder))
    import os
    import time

    (folder / "cc.csv").write_text(FILES["cc.csv"] + "E11.900,CC,3\n", encoding="utf-8")
    later = time.time() + 5
    os.utime(folder / "cc.csv", (later, later))
    assert "E11.900" in load_scheme(folder).cc


@pytest.mark.parametrize(
    "file, text, line, column, fragment",
    [
        (
            "adrg.csv",
            FILES["adrg.csv"] + "MDCF,5,FX1,bad,pdx in NOPE.pdx\n",
            11,
            "rule",
            "unknown list 'NOPE.pdx'",
        ),
        ("adrg.csv", FILES["adrg.csv"] + "MDCF,5,FX1,bad,pdx in (\n", 11, "rule", "expected a list name"),
        ("adrg.csv", FILES["adrg.csv"] + "MDCF,5,FA1,dup,true\n", 11, "adrg", "duplicate ADRG 'FA1'"),
        ("adrg.csv", FILES["adrg.csv"] + "MDCQ,5,QX1,x,true\n", 11, "mdc", "MDC 'MDCQ' is not in mdc.csv"),
        ("adrg.csv", FILES["adrg.csv"] + "MDCF,five,FX1,x,true\n", 11, "seq", "not a whole number"),
        ("adrg.csv", FILES["adrg.csv"] + "MDCF,5,FX1,x,mcc\n", 11, "rule", "only in drg.csv"),
        ("drg.csv", FILES["drg.csv"] + "FA1,4,FA11,dup,true\n", 16, "drg", "duplicate DRG 'FA11'"),
        ("drg.csv", FILES["drg.csv"] + "XX1,1,XX19,x,true\n", 16, "adrg", "ADRG 'XX1' is not in adrg.csv"),
        ("cc.csv", FILES["cc.csv"] + "K35.800,SEVERE,1\n", 6, "level", "must be MCC or CC"),
        ("cc.csv", FILES["cc.csv"] + "J96.000,CC,1\n", 6, "code", "duplicate CC code"),
        ("mdc.csv", FILES["mdc.csv"] + "6,MDCF,again,true\n", 7, "mdc", "duplicate MDC"),
        ("exclusions.csv", FILES["exclusions.csv"] + "I50.000,8\n", 4, "pdx", "two exclusion tables"),
        ("lists.csv", FILES["lists.csv"] + "MDCZ.pdx,S06.000,chest\n", 19, "attr", "different attr"),
        ("mdc.csv", "seq,mdc,rule\n1,MDCA,true\n", 1, None, "header lacks column(s) name"),
    ],
)
def test_faults_name_file_line_and_column(tmp_path, file, text, line, column, fragment):
    with pytest.raises(SchemeError) as info:
        load_scheme(write(tmp_path, **{file: text}))
    err = info.value
    assert err.file.endswith(file) and err.line == line and err.column == column
    assert fragment in str(err)
    assert f"line {line}" in str(err)


def test_bad_toml_and_bad_checks(tmp_path):
    with pytest.raises(SchemeError, match="TOML syntax error"):
        load_scheme(write(tmp_path / "a", **{"scheme.toml": "id = 'x\n"}))
    bad_field = FILES["scheme.toml"].replace('field = "age"', 'field = "height"')
    with pytest.raises(SchemeError, match="unknown field 'height'") as info:
        load_scheme(write(tmp_path / "b", **{"scheme.toml": bad_field}))
    assert info.value.column == "validity.check[3].field"
    bad_rule = FILES["scheme.toml"].replace('rule = "sex == 1 | sex == 2"', 'rule = "sex == "')
    with pytest.raises(SchemeError, match="validity.check\\[2\\].rule"):
        load_scheme(write(tmp_path / "c", **{"scheme.toml": bad_rule}))
    flipped = FILES["scheme.toml"].replace("mdc_fallthrough = true", 'mdc_fallthrough = "yes"')
    with pytest.raises(SchemeError, match="'mdc_fallthrough' must be true or false, got 'yes'") as info:
        load_scheme(write(tmp_path / "d", **{"scheme.toml": flipped}))
    assert info.value.line == 4 and info.value.column == "mdc_fallthrough"


def test_missing_folder_and_unknown_name(tmp_path):
    with pytest.raises(SchemeError, match="no scheme named 'nope'"):
        load_scheme("nope")
    (tmp_path / "scheme.toml").write_text('id = "x"\n')
    with pytest.raises(SchemeError, match="lists.csv.*required table is missing"):
        load_scheme(tmp_path)


def test_adrg_kind_from_second_letter():
    assert [adrg_kind(c) for c in ("FA1", "FJ1", "FK1", "FQ1", "FR1", "FZ1")] == [
        "surgical",
        "surgical",
        "procedure",
        "procedure",
        "medical",
        "medical",
    ]


def test_shipped_schemes_listed():
    # exactly the shipped DRG scheme folders, sorted; dip-demo beside them is a DIP catalog
    # (no scheme.toml) and is not listed
    assert schemes() == ["casemix-demo", "chs-drg-1.1"]


def test_national_scheme_loads_with_its_counts(chs):
    assert len(chs.mdcs) == 26
    assert sum(len(v) for v in chs.adrgs.values()) == 376
    assert sum(len(v) for v in chs.drgs.values()) == 628
    assert len(chs.cc) == 21246 and len(chs.or_procedures) == 10251
    assert len(chs.diagnoses) == 33308 and len(chs.procedures) == 13686


def test_deeply_nested_rule_names_file_and_line(tmp_path):
    deep = "(" * 2000 + "true" + ")" * 2000
    with pytest.raises(SchemeError, match="nested deeper than") as info:
        load_scheme(write(tmp_path, **{"adrg.csv": FILES["adrg.csv"] + f"MDCF,5,FX1,x,{deep}\n"}))
    assert info.value.file.endswith("adrg.csv") and info.value.line == 11


def test_unterminated_quote_is_reported_on_its_own_line(tmp_path):
    lines = FILES["mdc.csv"].lstrip("\n").splitlines()
    text = "\n".join(lines[:2] + ['9,MDCX,"unterminated,true'] + lines[2:]) + "\n"
    with pytest.raises(SchemeError, match="quoted value is not closed on its line") as info:
        load_scheme(write(tmp_path, **{"mdc.csv": text}))
    assert (info.value.line, info.value.column) == (3, "name")


def test_table_linking_outside_the_folder_is_refused_without_echo(tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("seq,mdc,name,rule\nTOP-SECRET,x,y,z\n", encoding="utf-8")
    folder = write(tmp_path / "s")
    (folder / "mdc.csv").unlink()
    (folder / "mdc.csv").symlink_to(secret)
    with pytest.raises(SchemeError, match="link to a file outside the folder") as info:
        load_scheme(folder)
    assert "TOP-SECRET" not in str(info.value) and info.value.file.endswith("mdc.csv")
    inside = folder / "lists_copy.csv"
    inside.write_text(FILES["lists.csv"].lstrip("\n"), encoding="utf-8")
    (folder / "lists.csv").unlink()
    (folder / "lists.csv").symlink_to(inside)  # a link inside the folder is fine
    (folder / "mdc.csv").unlink()
    (folder / "mdc.csv").write_text(FILES["mdc.csv"].lstrip("\n"), encoding="utf-8")
    assert load_scheme(folder).id == "tiny"


def test_non_utf8_table_names_offset_and_line(tmp_path):
    folder = write(tmp_path)
    (folder / "cc.csv").write_bytes(b"code,level,exclusion_table\nJ96.000,MCC,5\n\xb2\xe2,CC,1\n")
    with pytest.raises(SchemeError, match="byte 0xb2 at offset 41") as info:
        load_scheme(folder)
    assert info.value.line == 3
