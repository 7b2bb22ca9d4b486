"""One vocabulary through the pipeline: ``casemix.cases.canonical``, the one number and
date parser, ``mapping=`` / ``--map`` and the bad-value rule (docs/cases.md)."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import polars as pl
import pytest

from casemix.cases import canonical, parse_dates, parse_numbers, read_cases, read_mapping
from casemix.cases._aliases import (
    BENEFIT_ALIASES,
    CODE_ALIASES,
    DISCHARGE_WORDS,
    SCALAR_ALIASES,
    SEX_WORDS,
    STEP_ALIASES,
    WIDE_PREFIXES,
)
from casemix.errors import InputError
from conftest import REPO

DOC = (REPO / "docs" / "cases.md").read_text(encoding="utf-8")

ALL_ALIASES = [
    (f, a)
    for table in (SCALAR_ALIASES, STEP_ALIASES, BENEFIT_ALIASES)
    for f, names in table.items()
    for a in names
]
# one raw value per field and what canonical() reads from it
SAMPLE = {
    "case_id": ("A１", "A1"),
    "hospital_id": (" H01 ", "H01"),
    "sex": ("女", 2.0),
    "age": ("６５", 65.0),
    "age_days": ("12", 12.0),
    "birth_weight": ("3,250", 3250.0),
    "los": ("7", 7.0),
    "discharge": ("死亡", 5.0),
    "total_cost": ("12,345.60", 12345.6),
    "patient_id": ("P1", "P1"),
    "admission_date": ("20240105", dt.date(2024, 1, 5)),
    "discharge_date": ("2024/1/9", dt.date(2024, 1, 9)),
    "insurance_type": ("310", "310"),
    "department": ("心内科", "心内科"),
    "year": ("2024", 2024),
    "drg": ("FR23", "FR23"),
    "adrg": ("FR2", "FR2"),
    "mdc": ("MDCF", "MDCF"),
    "hospital_level": ("3", "3"),
    "icu_days": ("１０", 10.0),
    "assist_status": ("低保", "低保"),
    "inscp_scp_amt": ("1,000.5", 1000.5),
    "preselfpay_amt": ("２０", 20.0),
    "fulamt_ownpay_amt": ("0", 0.0),
    "special_drug_amt": ("5", 5.0),
    "referral": ("是", "是"),
    "major_disease": ("否", "否"),
    "fund_paid": ("8,000.25", 8000.25),
    "patient_share": ("１,200", 1200.0),
    "deductible": ("800", 800.0),
    "copay": ("300.5", 300.5),
    "self_pay": ("99", 99.0),
    "new_tech_cost": ("56,000", 56000.0),
    "audit_deduction": ("12.34", 12.34),
}


def test_step_aliases_are_documented():
    missing = [a for _, a in ALL_ALIASES if f"`{a}`" not in DOC]
    assert not missing, f"docs/cases.md lacks {missing}"


@pytest.mark.parametrize(("field", "alias"), ALL_ALIASES, ids=[f"{f}={a}" for f, a in ALL_ALIASES])
def test_every_alias_reaches_its_field(field, alias):
    raw, want = SAMPLE[field]
    c = canonical(pl.DataFrame({alias: [raw], "other": ["x"]}), need=(field,))
    assert c.columns == {field: alias}
    assert c.frame[field].to_list() == [want]
    # the caller's column comes back under its own name with its own value
    out = c.restore(c.frame.with_columns(result=pl.lit(1)))
    assert out.columns == [alias, "other", "result", "left_out"]
    assert out[alias].to_list() == [raw]


NUMBERS = [
    ("12345.6", 12345.6),
    ("12,345.60", 12345.6),
    ("1,234,567", 1234567.0),
    ("１２３４５．６", 12345.6),
    (" 12345.6 ", 12345.6),
    ("1.23456e4", 12345.6),
    ("-5", -5.0),
    ("－５", -5.0),
    ("0", 0.0),
    ("", None),
    (None, None),
    ("12,34", None),
    ("abc", None),
    ("45元", None),
    ("inf", None),
    ("nan", None),
]


@pytest.mark.parametrize(("text", "want"), NUMBERS, ids=[repr(t) for t, _ in NUMBERS])
def test_number_formats(text, want):
    got = parse_numbers(pl.Series("x", [text], dtype=pl.String)).to_list()[0]
    assert got == pytest.approx(want) if want is not None else got is None
    # intake reads the same value (one parser)
    row = read_cases(
        pl.DataFrame(
            {"pdx": ["A00"], "total_cost": [text]}, schema={"pdx": pl.String, "total_cost": pl.String}
        )
    ).row(0, named=True)
    assert row["total_cost"] == pytest.approx(want) if want is not None else row["total_cost"] is None


D = dt.date(2024, 1, 5)
DATES = [
    ("20240105", D),
    (20240105, D),
    (20240105.0, D),
    ("2024-01-05", D),
    ("2024/01/05", D),
    ("2024/1/5", D),
    ("2024.1.5", D),
    ("2024年1月5日", D),
    ("2024-01-05 08:30:00", D),
    ("2024-01-05T08:30:00", D),
    ("2024/1/5 8:30", D),
    ("２０２４０１０５", D),
    (dt.datetime(2024, 1, 5, 8, 30), D),
    (D, D),
    (45296, D),
    (45296.75, D),
    ("45296", D),  # Excel serial days (1900 date system)
    # the documented range of serial days, 10000 .. 99999 = 1927-05-18 .. 2173-10-13
    (10000, dt.date(1927, 5, 18)),
    ("99999", dt.date(2173, 10, 13)),
    (9999, None),
    (100000, None),
    ("2024-01-05T08:30", D),
    # YYYYMMDD: any whole number of eight digits that is a date
    (10000101, dt.date(1000, 1, 1)),
    (99991231, dt.date(9999, 12, 31)),
    (10000100, None),
    # a whole number outside the eight digits is no YYYYMMDD, even where %Y%m%d would read it
    (1000101, None),
    (-20240105, None),
    ("2024-13-05", None),
    ("20241305", None),
    # years before 1000 are no date, as for YYYYMMDD numbers: year 0 is a placeholder some
    # exports write, and a Date polars can hold but Python's date cannot
    ("0000-01-01", None),
    ("00000101", None),
    ("0999-12-31", None),
    ("1000-01-01", dt.date(1000, 1, 1)),
    ("10000101", dt.date(1000, 1, 1)),
    (20241305, None),
    ("5/1/2024", None),
    ("abc", None),
    (123, None),
    ("", None),
]


@pytest.mark.parametrize(("value", "want"), DATES, ids=[repr(v) for v, _ in DATES])
def test_date_formats(value, want):
    s = pl.Series("d", [value])
    assert parse_dates(s).to_list() == [want]
    row = read_cases(pl.DataFrame({"pdx": ["A00"]}).with_columns(s.alias("discharge_date"))).row(
        0, named=True
    )
    assert row["discharge_date"] == want
    present = value not in ("", None)
    assert ("malformed:discharge_date" in row["intake_warnings"]) == (present and want is None)


def test_bad_value_rule_need_and_optional():
    df = pl.DataFrame(
        {
            "住院总费用": ["100", "12,345.60", "", "abc", "-3", "200"],
            "定点医疗机构代码": ["H1", "H1", "H2", "H2", "H2", None],
            "实际住院天数": ["3", "x", "4", "5", "6", "7"],
            "note": list("abcdef"),
        }
    )
    c = canonical(df, need=("hospital_id", "total_cost"), optional=("los",), step="t")
    assert c.left_out.to_list() == [
        None,
        None,
        "missing:total_cost",
        "malformed:total_cost",
        "negative:total_cost",
        "missing:hospital_id",
    ]
    assert c.counts == {
        "missing:total_cost": 1,
        "malformed:total_cost": 1,
        "negative:total_cost": 1,
        "missing:hospital_id": 1,
        "malformed:los": 1,
    }
    assert c.frame["los"].to_list() == [3.0, None, 4.0, 5.0, 6.0, 7.0]
    assert c.frame["total_cost"].to_list() == [100.0, 12345.6, None, None, None, 200.0]
    assert c.used.height == 2
    assert "malformed:los: 1 row(s) read as absent" in c.notes()
    assert "negative:total_cost: 1 row(s) left out" in c.notes()
    # results of the used rows go back to their rows; left-out rows get nulls
    out = c.restore(c.used.with_columns(pay=pl.col("total_cost") * 2))
    assert out.columns == [*df.columns, "pay", "left_out"]
    assert out["pay"].to_list() == [200.0, 24691.2, None, None, None, None]
    assert out.drop("pay", "left_out").equals(df)


def test_mapping_wins_and_other_columns_step_aside():
    df = pl.DataFrame({"total_cost": ["1"], "我的费用": ["2"], "drg": ["A"]})
    c = canonical(df, {"我的费用": "total_cost"}, need=("total_cost",))
    assert c.frame["total_cost"].to_list() == [2.0]
    out = c.restore(c.frame.with_columns(r=pl.lit(0)))
    assert out.columns == ["total_cost", "我的费用", "drg", "r", "left_out"]
    assert out["total_cost"].to_list() == ["1"]


@pytest.mark.parametrize(
    ("mapping", "match"),
    [
        ([("a", "total_cost")], "must be a dict"),
        ("a=total_cost", "must be a dict"),
        ({"a": "cost_total"}, "not a canonical field"),
        ({"a": 3}, "both must be column/field names"),
        ({"zz": "total_cost"}, "not in the input"),
    ],
)
def test_bad_mapping_is_an_input_error(mapping, match):
    with pytest.raises(InputError, match=match):
        canonical(pl.DataFrame({"a": ["1"]}), mapping, need=("total_cost",))


def test_missing_needed_column_names_aliases_and_map():
    with pytest.raises(
        InputError,
        match=r"settle needs column 'total_cost' \(looked for: "
        r"total_cost, cost.*住院总费用.*--map FILE",
    ):
        canonical(pl.DataFrame({"x": [1]}), need=("total_cost",), step="settle")


def test_pandas_and_numeric_input():
    pdf = pd.DataFrame(
        {"cost": [1.5, float("nan"), float("inf")], "出院日期": [20240105, 45296, 1]}, index=[7, 8, 9]
    )
    c = canonical(pdf, need=("total_cost",), optional=("discharge_date",))
    assert c.left_out.to_list() == [None, "missing:total_cost", "malformed:total_cost"]
    assert c.frame["discharge_date"].to_list() == [D, D, None]
    assert c.counts["malformed:discharge_date"] == 1


def test_mapping_file(tmp_path):
    p = tmp_path / "map.toml"
    p.write_text(
        '\ufeff# mine\n[columns]\n"自费(元)" = "total_cost"\n"机构" = "hospital_id"\n', encoding="utf-8"
    )
    assert read_mapping(p) == {"自费(元)": "total_cost", "机构": "hospital_id"}
    p.write_text('[columns]\n"a" = "total_cost"\n"b" = "cost"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"map.toml, line 3: mapping 'b' -> 'cost'"):
        read_mapping(p)
    p.write_text('[column]\n"a" = "total_cost"\n', encoding="utf-8")
    with pytest.raises(InputError, match="did you mean 'columns'"):
        read_mapping(p)


# --- benefits: the same vocabulary, the same date parser in both engines -------------------


def _benefit_cases(n: int = 60) -> pl.DataFrame:
    from casemix.benefits import synthetic_cases

    return synthetic_cases(n, 25, seed=3)


@pytest.mark.parametrize("engine", ["batch", "reference"])
def test_benefits_integer_dates_and_chinese_names(engine):
    from casemix.benefits import simulate

    base = _benefit_cases()
    assert base["discharge_date"].dtype == pl.Date
    want = simulate(base, "illustrative", engine=engine)
    chinese = base.with_columns(
        pl.col("discharge_date").dt.strftime("%Y%m%d").cast(pl.Int64),  # 20240105
    ).rename({"total_cost": "住院总费用", "discharge_date": "出院日期", "patient_id": "人员编号"})
    got = simulate(chinese, "illustrative", engine=engine)
    assert got.columns[: len(chinese.columns)] == chinese.columns
    assert got["出院日期"].to_list() == chinese["出院日期"].to_list()  # the caller's values
    from casemix.benefits import OUTPUT_COLUMNS

    assert got.select(OUTPUT_COLUMNS).equals(want.select(OUTPUT_COLUMNS))
    assert got["left_out"].null_count() == got.height


def test_benefit_engines_read_20240105_identically():
    from casemix.benefits import OUTPUT_COLUMNS, simulate

    cases = _benefit_cases(30).with_columns(pl.lit(20240105).alias("discharge_date"))
    a = simulate(cases, "illustrative", engine="batch")
    b = simulate(cases, "illustrative", engine="reference")
    assert a.select(OUTPUT_COLUMNS).equals(b.select(OUTPUT_COLUMNS))
    assert a["left_out"].null_count() == a.height  # 20240105 is a date, nothing left out


def test_benefits_leave_out_a_bad_amount_and_summarize_agrees():
    from casemix.benefits import simulate, summarize

    cases = _benefit_cases(40).with_columns(pl.col("total_cost").cast(pl.String))
    cases = cases.with_columns(
        pl.when(pl.int_range(pl.len()) == 5)
        .then(pl.lit("n/a"))
        .otherwise(pl.col("total_cost"))
        .alias("total_cost")
    )
    out = simulate(cases, "illustrative")
    assert out["left_out"].to_list()[5] == "malformed:total_cost"
    assert out["hifp_pay"][5] is None
    assert summarize(out, by=())["cases"].to_list() == [39]


# --- docs/cases.md -> code: every name the docs list is in the tables (the per-alias test
# above then reads each of them); a name dropped from a table fails here, not silently


def _doc_table(heading: str) -> dict[str, set[str]]:
    """{first cell's first `name`: every other `name` of its row} of the table under ``heading``."""
    section = DOC.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    rows = [r for r in section.splitlines() if r.startswith("|")][2:]  # after header and |---|
    out: dict[str, set[str]] = {}
    for r in rows:
        cells = r.strip("|").split(" | ")
        first = re.findall(r"`([^`]+)`", cells[0])
        # wide families are named by a word, the others by their canonical name
        key = first[0] if first else cells[0].strip()
        names = {n.replace("\\|", "|") for c in cells[1:] for n in re.findall(r"`([^`]+)`", c)}
        # "list or `|`-string" describes the format, it is no name
        out[key] = names - {"|"}
    return out


@pytest.mark.parametrize(
    ("heading", "table"),
    [
        ("### Scalar fields", SCALAR_ALIASES),
        ("### Columns of later steps", STEP_ALIASES),
        ("### Columns of the benefit cascade", BENEFIT_ALIASES),
        ("### Code columns", CODE_ALIASES),
    ],
)
def test_every_documented_alias_is_in_its_table(heading, table):
    doc = _doc_table(heading)
    assert set(doc) == set(table)
    for field, names in doc.items():
        assert names == set(table[field]) - {field}, field


def test_every_documented_wide_prefix_is_in_its_table():
    doc = _doc_table("### Wide columns")
    assert {"diagnoses", "procedures", "sdx", "oproc"} == set(doc)
    for family, names in doc.items():
        assert names == set(WIDE_PREFIXES[family]), family


def test_every_documented_sex_and_discharge_word_is_read():
    # docs/cases.md "Sex" and "离院方式": each word and the code it gives
    sex = {
        **dict.fromkeys(["男", "男性", "M", "MALE"], "1"),
        **dict.fromkeys(["女", "女性", "F", "FEMALE"], "2"),
        **dict.fromkeys(["未知", "未知的性别"], "0"),
        **dict.fromkeys(["未说明", "未说明的性别"], "9"),
    }
    discharge = {
        "医嘱离院": "1",
        "医嘱转院": "2",
        "医嘱转社区卫生服务机构/乡镇卫生院": "3",
        "医嘱转社区": "3",
        "非医嘱离院": "4",
        "死亡": "5",
        "其他": "9",
    }
    for word in [*sex, *discharge]:
        assert f"`{word}`" in DOC, word
    assert SEX_WORDS == sex and DISCHARGE_WORDS == discharge
    c = canonical(
        pl.DataFrame({"sex": [w.lower() for w in sex], "discharge": list(discharge)[:1] * len(sex)}),
        need=("sex",),
        optional=("discharge",),
    )
    assert c.frame["sex"].to_list() == [float(v) for v in sex.values()]
    c = canonical(pl.DataFrame({"discharge": list(discharge)}), need=("discharge",))
    assert c.frame["discharge"].to_list() == [float(v) for v in discharge.values()]
