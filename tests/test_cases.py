"""Case intake (casemix.cases): layouts, names, normalisation, findings, errors."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from casemix.cases import CANONICAL_SCHEMA, attach, read_cases
from casemix.cases._aliases import CODE_ALIASES, SCALAR_ALIASES, WIDE_PREFIXES
from casemix.errors import InputError
from conftest import GOLDEN, REPO, needs_shared
from strategies import (
    JUNK_SCALAR_COLUMNS,
    IntakeCase,
    intake_cases,
    junk_text,
    junk_value,
    list_layout,
    pipe_layout,
    wide_layout,
)

LST = pl.List(pl.String)


def one(frame, **kw) -> dict:
    out = read_cases(frame, **kw)
    assert out.height == 1
    return out.row(0, named=True)


def expected_frame(cases: list[IntakeCase]) -> pl.DataFrame:
    """The canonical frame written by hand from the generated cases."""
    rows = []
    for i, c in enumerate(cases):
        pdx = c.dx[0] if c.dx else None
        sdx = list(c.dx[1:])
        warnings = []
        if c.total_cost is not None and c.total_cost < 0:
            warnings.append("negative_cost")
        if c.los is not None and c.los < 0:
            warnings.append("negative_los")
        # implausible values (docs/errors.md): age 0-150, age_days 0-365 and only below age 1,
        # birth_weight 0-10000 g
        if c.age is not None and not 0 <= c.age <= 150:
            warnings.append("implausible:age")
        if c.age_days is not None and (
            not 0 <= c.age_days <= 365 or (c.age is not None and c.age >= 1 and c.age_days > 0)
        ):
            warnings.append("implausible:age_days")
        if c.birth_weight is not None and not 0 <= c.birth_weight <= 10_000:
            warnings.append("implausible:birth_weight")
        if pdx is None and sdx:
            warnings.append("missing_pdx")
        rows.append(
            {
                "case_id": f"K{i}",
                "hospital_id": None,
                "sex": c.sex,
                "age": c.age,
                "age_days": c.age_days,
                "birth_weight": c.birth_weight,
                "los": c.los,
                "discharge": c.discharge,
                "total_cost": c.total_cost,
                "pdx": pdx,
                "sdx": sdx,
                "pproc": c.procs[0] if c.procs else None,
                "oproc": list(c.procs[1:]),
                "malformed": [],
                "intake_warnings": warnings,
            }
        )
    return pl.DataFrame(rows, schema=CANONICAL_SCHEMA)


# --- layouts ---------------------------------------------------------------------------------


def test_pipe_layout_principal_first_and_empty_elements():
    df = pl.DataFrame(
        {
            "diagnoses": ["A01.000||B02.100|", "|C03.000", "", None, "D04.000"],
            "procedures": ["39.6500|02.0601", None, "", "|", "|88.7700x001|"],
        }
    )
    out = read_cases(df)
    assert out["pdx"].to_list() == ["A01.000", None, None, None, "D04.000"]
    assert out["sdx"].to_list() == [["B02.100"], ["C03.000"], [], [], []]
    assert out["pproc"].to_list() == ["39.6500", None, None, None, None]
    assert out["oproc"].to_list() == [["02.0601"], [], [], [], ["88.7700x001"]]
    assert out["intake_warnings"].to_list() == [[], ["missing_pdx"], [], [], []]


def test_list_layouts_split_and_combined():
    split = pl.DataFrame(
        {
            "pdx": ["A01.000", None],
            "sdx": [["B02", "", None, "C03"], None],
            "pproc": [None, "39.6500"],
            "oproc": [["02.0601"], []],
        },
        schema={"pdx": pl.String, "sdx": LST, "pproc": pl.String, "oproc": LST},
    )
    out = read_cases(split)
    assert out["pdx"].to_list() == ["A01.000", None]
    assert out["sdx"].to_list() == [["B02", "C03"], []]
    assert out["pproc"].to_list() == [None, "39.6500"]
    assert out["oproc"].to_list() == [["02.0601"], []]

    combined = pl.DataFrame(
        {"diagnoses": [["A01.000", "B02"], [None, "C03"], [], None]}, schema={"diagnoses": LST}
    )
    out = read_cases(combined)
    assert out["pdx"].to_list() == ["A01.000", None, None, None]
    assert out["sdx"].to_list() == [["B02"], ["C03"], [], []]
    assert out["pproc"].to_list() == [None] * 4 and out["oproc"].to_list() == [[]] * 4


def test_sdx_as_pipe_string_beside_pdx():
    out = read_cases(pl.DataFrame({"pdx": ["A01"], "sdx": ["B02| c03 "]}))
    assert out["sdx"].to_list() == [["B02", "C03"]]


def test_array_column_of_codes():
    df = pl.DataFrame(
        {"diagnoses": [["A01", "B02"], ["C03", None]]}, schema={"diagnoses": pl.Array(pl.String, 2)}
    )
    out = read_cases(df)
    assert out["pdx"].to_list() == ["A01", "C03"] and out["sdx"].to_list() == [["B02"], []]


def test_wide_columns_ordered_by_number_not_position():
    df = pl.DataFrame(
        {
            "dx10": ["J10"],
            "dx2": ["B02"],
            "dx1": ["A01"],
            "dx9": [None],
            "pr2": ["02.0601"],
            "proc_x": ["ignored"],
            "pr1": ["39.6500"],
            "pr3": [""],
        }
    )
    row = one(df)
    assert row["pdx"] == "A01" and row["sdx"] == ["B02", "J10"]
    assert row["pproc"] == "39.6500" and row["oproc"] == ["02.0601"]


def test_wide_proc_prefix_and_separators():
    row = one(pl.DataFrame({"dx_1": ["A01"], "dx_2": ["B02"], "proc1": ["39.6500"], "proc2": ["88.7700"]}))
    assert (row["pdx"], row["sdx"], row["pproc"], row["oproc"]) == ("A01", ["B02"], "39.6500", ["88.7700"])


def test_wide_first_empty_means_no_principal():
    row = one(pl.DataFrame({"dx1": [None], "dx2": ["B02"]}, schema={"dx1": pl.String, "dx2": pl.String}))
    assert row["pdx"] is None and row["sdx"] == ["B02"] and row["intake_warnings"] == ["missing_pdx"]


def test_chinese_wide_layout():
    df = pl.DataFrame(
        {
            "其他诊断编码2": ["C03"],
            "主要诊断编码": ["A01"],
            "其他诊断编码1": ["B02"],
            "其他手术操作编码1": ["02.0601"],
            "主要手术操作编码": ["39.6500"],
        }
    )
    row = one(df)
    assert (row["pdx"], row["sdx"], row["pproc"], row["oproc"]) == (
        "A01",
        ["B02", "C03"],
        "39.6500",
        ["02.0601"],
    )


def test_chinese_variants_without_code_suffix_and_code_column_wins():
    row = one(
        pl.DataFrame(
            {
                "主要诊断": ["A01"],
                "其他诊断1": ["B02"],
                "主要手术及操作编码": ["39.6500"],
                "其他手术及操作编码1": ["02.0601"],
            }
        )
    )
    assert (row["pdx"], row["sdx"], row["pproc"], row["oproc"]) == ("A01", ["B02"], "39.6500", ["02.0601"])
    # a name column beside the code column: the code column is read
    row = one(pl.DataFrame({"主要诊断": ["急性阑尾炎"], "主要诊断编码": ["K35.800"]}))
    assert row["pdx"] == "K35.800"


def test_layout_precedence_split_over_combined_over_wide():
    df = pl.DataFrame({"pdx": ["A01"], "diagnoses": ["X|Y"], "dx1": ["Z"]})
    assert one(df)["pdx"] == "A01"
    df = pl.DataFrame({"diagnoses": ["X|Y"], "dx1": ["Z"]})
    assert (one(df)["pdx"], one(df)["sdx"]) == ("X", ["Y"])


# --- names and mapping -----------------------------------------------------------------------


def test_chinese_scalar_names():
    df = pl.DataFrame(
        {
            "病案号": ["B1"],
            "定点医疗机构代码": ["H1101"],
            "性别": ["女"],
            "年龄": ["0"],
            "年龄不足1周岁的年龄（天）": ["12"],
            "新生儿出生体重(克)": ["2450"],
            "实际住院天数": ["7"],
            "离院方式": ["医嘱离院"],
            "住院总费用": ["12,345.67"],
            "人员编号": ["P9"],
            "入院时间": ["2024-03-01 08:15:00"],
            "出院时间": ["2024/3/8"],
            "险种类型": ["310"],
            "出院科别": ["新生儿科"],
            "年度": ["2024"],
            "主要诊断编码": ["P07.300"],
        }
    )
    row = one(df)
    assert row == {
        "case_id": "B1",
        "hospital_id": "H1101",
        "sex": 2.0,
        "age": 0.0,
        "age_days": 12.0,
        "birth_weight": 2450.0,
        "los": 7.0,
        "discharge": 1.0,
        "total_cost": 12345.67,
        "pdx": "P07.300",
        "sdx": [],
        "pproc": None,
        "oproc": [],
        "malformed": [],
        "intake_warnings": [],
        "patient_id": "P9",
        "admission_date": dt.date(2024, 3, 1),
        "discharge_date": dt.date(2024, 3, 8),
        "insurance_type": "310",
        "department": "新生儿科",
        "year": 2024,
    }


def test_english_aliases_case_insensitive():
    df = pl.DataFrame(
        {
            "Age_Years": [40],
            "LENGTH_OF_STAY": [3],
            "Charges": [100.5],
            "discharge_mode": [5],
            "Gender": ["M"],
            "DX": ["I10.x00|E11.900"],
        }
    )
    row = one(df)
    assert (row["age"], row["los"], row["total_cost"], row["discharge"], row["sex"]) == (
        40.0,
        3.0,
        100.5,
        5.0,
        1.0,
    )
    assert (row["pdx"], row["sdx"]) == ("I10.x00", ["E11.900"])


def test_first_alias_in_order_wins():
    df = pl.DataFrame({"病案号": ["medrec"], "结算ID": ["settle"], "pdx": ["A01"]})
    assert one(df)["case_id"] == "settle"


def test_user_mapping_takes_precedence():
    df = pl.DataFrame(
        {"age": ["99"], "years_old": ["45"], "codes": ["A01|B02"], "cid": [7], "d3": ["C03"], "d1": ["X01"]}
    )
    row = one(df, mapping={"years_old": "age", "cid": "case_id", "codes": "diagnoses"})
    assert row["age"] == 45.0 and row["case_id"] == "7" and row["pdx"] == "A01"
    row = one(df, mapping={"d3": "dx3", "d1": "dx1"})  # wide names; "codes" is not read
    assert (row["pdx"], row["sdx"]) == ("X01", ["C03"])


def test_mapping_errors_name_the_problem():
    df = pl.DataFrame({"diagnoses": ["A01"]})
    with pytest.raises(InputError, match="'nope'.*not in the input.*'diagnoses'"):
        read_cases(df, mapping={"nope": "age"})
    with pytest.raises(InputError, match="'agge' is not a canonical field"):
        read_cases(df, mapping={"diagnoses": "agge"})


def test_case_id_row_numbers_when_absent():
    out = read_cases(pl.DataFrame({"diagnoses": ["A", "B", "C"]}))
    assert out["case_id"].to_list() == ["1", "2", "3"]


def test_every_alias_is_documented():
    doc = (REPO / "docs" / "cases.md").read_text(encoding="utf-8")
    names = [
        a for v in (*SCALAR_ALIASES.values(), *CODE_ALIASES.values(), *WIDE_PREFIXES.values()) for a in v
    ]
    missing = [n for n in names if f"`{n}`" not in doc]
    assert not missing, f"docs/cases.md lacks {missing}"


def test_aliases_do_not_collide():
    from casemix.cases._resolve import norm_name

    seen = {}
    for field, names in (*SCALAR_ALIASES.items(), *CODE_ALIASES.items()):
        for n in names:
            key = norm_name(n)
            assert seen.setdefault(key, field) == field, f"{n!r} used by {seen[key]} and {field}"


# --- normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, code",
    [
        (" c34.100X001 ", "C34.100x001"),
        ("g35.X03", "G35.x03"),
        ("00.5500X008", "00.5500x008"),
        ("ｃ３４．１００ｘ００１", "C34.100x001"),  # full width
        ("a17.000 † g01 *", "A17.000+G01*"),  # dagger, spaces
        ("A17.000＋g01＊", "A17.000+G01*"),
        ("a18.810+m63.0*", "A18.810+M63.0*"),
        ("x59.900", "X59.900"),  # a code may start with X
        ("e11.x00+x12.3*", "E11.x00+X12.3*"),
        ("A17.000†", "A17.000"),  # dagger mark without its partner
        ("I10.x00", "I10.x00"),  # already canonical: unchanged
        ("\u3000K35.800\t", "K35.800"),
    ],
)
def test_code_normalisation(raw, code):
    assert one(pl.DataFrame({"pdx": [raw]}))["pdx"] == code
    assert one(pl.DataFrame({"diagnoses": [f"Z00|{raw}"]}))["sdx"] == [code]
    assert one(pl.DataFrame({"dx1": ["Z00"], "dx2": [raw]}))["sdx"] == [code]


def test_blank_codes_are_null_or_dropped():
    row = one(pl.DataFrame({"pdx": ["   "], "sdx": [["", " ", "\u3000", "B02"]]}))
    assert row["pdx"] is None and row["sdx"] == ["B02"]


def test_full_width_separator():
    assert one(pl.DataFrame({"diagnoses": ["A01｜B02"]}))["sdx"] == ["B02"]


@pytest.mark.parametrize(
    "raw, value",
    [
        ("1", 1.0),
        (" 2 ", 2.0),
        ("男", 1.0),
        ("女", 2.0),
        ("m", 1.0),
        ("F", 2.0),
        ("Female", 2.0),
        ("9", 9.0),
        ("0", 0.0),
        ("３", 3.0),
        ("未知", 0.0),
        ("未说明", 9.0),
    ],
)
def test_sex_values(raw, value):
    row = one(pl.DataFrame({"sex": [raw], "pdx": ["A01"]}))
    assert row["sex"] == value and row["malformed"] == []


def test_sex_numbers_and_junk():
    out = read_cases(pl.DataFrame({"sex": [1, 2, 9, None], "pdx": ["A"] * 4}))
    assert out["sex"].to_list() == [1.0, 2.0, 9.0, None]
    row = one(pl.DataFrame({"sex": ["x"], "pdx": ["A"]}))
    assert row["sex"] is None and row["malformed"] == ["sex"] and row["intake_warnings"] == ["malformed:sex"]


def test_numbers_parse_or_are_flagged():
    df = pl.DataFrame(
        {
            "age": ["  45 ", "４５", "45岁", "", None, "-0.5", "1e2", "nan"],
            "total_cost": ["1,234.50", "1234.5", "12,34", "inf", "abc", "-3", " ", "0"],
            "pdx": ["A"] * 8,
        }
    )
    out = read_cases(df)
    assert out["age"].to_list() == [45.0, 45.0, None, None, None, -0.5, 100.0, None]
    assert out["total_cost"].to_list() == [1234.5, 1234.5, None, None, None, -3.0, None, 0.0]
    assert out["malformed"].to_list() == [
        [],
        [],
        ["age", "total_cost"],
        ["total_cost"],
        ["total_cost"],
        [],
        [],
        ["age"],
    ]
    assert out["intake_warnings"].to_list()[2] == ["malformed:age", "malformed:total_cost"]
    assert out["intake_warnings"].to_list()[5] == ["negative_cost", "implausible:age"]  # age -0.5


def test_numeric_columns_pass_through_nan_is_missing_inf_malformed():
    df = pl.DataFrame(
        {"age": [45.0, float("nan"), float("inf"), None], "los": [1, -2, 3, None], "pdx": ["A"] * 4}
    )
    out = read_cases(df)
    assert out["age"].to_list() == [45.0, None, None, None]
    assert out["los"].to_list() == [1.0, -2.0, 3.0, None]
    assert out["malformed"].to_list() == [[], [], ["age"], []]
    assert out["intake_warnings"].to_list() == [[], ["negative_los"], ["malformed:age"], []]


def test_discharge_names():
    out = read_cases(
        pl.DataFrame({"离院方式": ["医嘱离院", "死亡", "非医嘱离院", "5", "其他", "?"], "pdx": ["A"] * 6})
    )
    assert out["discharge"].to_list() == [1.0, 5.0, 4.0, 5.0, 9.0, None]
    assert out["malformed"].to_list()[-1] == ["discharge"]


def test_dates_and_year():
    df = pl.DataFrame(
        {
            "admission_date": ["2024-01-05", "20240105", "2024年1月5日", "2024-13-01", ""],
            "year": ["2024", "2024.0", "２０２４", "2024.5", "x"],
            "pdx": ["A"] * 5,
        }
    )
    out = read_cases(df)
    assert out["admission_date"].to_list() == [dt.date(2024, 1, 5)] * 3 + [None, None]
    assert out["year"].to_list() == [2024, 2024, 2024, None, None]
    assert out["malformed"].to_list() == [[], [], [], ["year"], ["year"]]
    assert out["intake_warnings"].to_list()[3] == ["malformed:year", "malformed:admission_date"]
    assert out.schema["year"] == pl.Int32 and out.schema["admission_date"] == pl.Date


def test_date_and_datetime_columns_pass():
    df = pl.DataFrame(
        {"入院日期": [dt.date(2024, 1, 5)], "出院时间": [dt.datetime(2024, 1, 9, 10, 30)], "pdx": ["A"]}
    )
    row = one(df)
    assert (row["admission_date"], row["discharge_date"]) == (dt.date(2024, 1, 5), dt.date(2024, 1, 9))


def test_integer_and_float_ids_become_text():
    out = read_cases(
        pd.DataFrame(
            {"case_id": [12345.0, None, 7.5], "hospital_id": [1, 2, 3], "diagnoses": ["A", "B", "C"]}
        )
    )
    assert out["case_id"].to_list() == ["12345", None, "7.5"]
    assert out["hospital_id"].to_list() == ["1", "2", "3"]


# --- errors ----------------------------------------------------------------------------------


def test_missing_required_column_names_it():
    df = pl.DataFrame({"age": [1], "sex": [1]})
    with pytest.raises(InputError, match=r"required column 'pdx' not found.*'age', 'sex'"):
        read_cases(df)
    with pytest.raises(InputError, match=r"required column 'total_cost' not found.*总费用"):
        read_cases(pl.DataFrame({"diagnoses": ["A"]}), required=("pdx", "total_cost"))
    with pytest.raises(InputError, match=r"required column 'pproc'"):
        read_cases(pl.DataFrame({"diagnoses": ["A"]}), required=("pproc",))
    with pytest.raises(InputError) as e:
        read_cases(pl.DataFrame({"x": [1]}), required=("pdx", "pproc"))
    assert str(e.value) == (
        "required column 'pdx' not found; expected diagnoses: a pdx/sdx pair, a 'diagnoses' list "
        "or '|'-string column, dx1..dxN, or 主要诊断编码 + 其他诊断编码1..N. Columns found: ['x'] "
        "(1 columns). Name yours with mapping={'<column>': 'pdx'}."
    )
    with pytest.raises(InputError) as e:
        read_cases(pl.DataFrame({"diagnoses": ["A"]}), required=("pproc",))
    assert str(e.value) == (
        "required column 'pproc' not found; expected procedures: a pproc/oproc pair, a 'procedures' "
        "list or '|'-string column, pr1..prN, or 主要手术操作编码 + 其他手术操作编码1..N. Columns found: "
        "['diagnoses'] (1 columns). Name yours with mapping={'<column>': 'pproc'}."
    )
    with pytest.raises(InputError, match=r"unknown field 'weight'"):
        read_cases(pl.DataFrame({"diagnoses": ["A"]}), required=("weight",))
    # nothing required: a frame without codes reads, with empty code columns
    out = read_cases(pl.DataFrame({"age": [1]}), required=())
    assert out["pdx"].to_list() == [None] and out["sdx"].to_list() == [[]]


def test_wrong_typed_columns_raise_naming_the_column():
    with pytest.raises(InputError, match=r"column 'age' .*Struct.*columns found: \['age', 'diagnoses'\]"):
        read_cases(pl.DataFrame({"age": [{"y": 1}], "diagnoses": ["A"]}))
    with pytest.raises(InputError, match=r"column .diagnoses. .*Float64.*diagnosis codes.*dtype=str"):
        read_cases(pl.DataFrame({"diagnoses": [1.5]}))
    with pytest.raises(InputError, match=r"column 'dx2' .*Int64"):
        read_cases(pl.DataFrame({"dx1": ["A"], "dx2": [3]}))
    with pytest.raises(InputError, match=r"column 'sdx' .*List\(Int64\)"):
        read_cases(pl.DataFrame({"pdx": ["A"], "sdx": [[1]]}))
    with pytest.raises(InputError, match=r"column 'years' \(mapped to age\) .*Boolean"):
        read_cases(pl.DataFrame({"years": [True], "pdx": ["A"]}), mapping={"years": "age"})


def test_all_empty_numeric_code_column_is_accepted():
    # pandas reads an empty dx column as float NaN
    out = read_cases(pd.DataFrame({"dx1": ["A01", "B02"], "dx2": [float("nan")] * 2}))
    assert out["pdx"].to_list() == ["A01", "B02"] and out["sdx"].to_list() == [[], []]


def test_required_case_id_is_not_satisfied_by_row_numbers():
    with pytest.raises(InputError, match=r"required column 'case_id' not found.*病案号"):
        read_cases(pl.DataFrame({"diagnoses": ["A"]}), required=("case_id", "pdx"))


def test_categorical_and_enum_columns():
    df = pl.DataFrame(
        {
            "sex": ["男", "女"],
            "diagnoses": ["a01|b02", "c03"],
            "dx_unused": ["z", "z"],
            "department": ["内科", "外科"],
        },
        schema={
            "sex": pl.Categorical,
            "diagnoses": pl.Categorical,
            "dx_unused": pl.String,
            "department": pl.Enum(["内科", "外科"]),
        },
    )
    out = read_cases(df)
    assert out["sex"].to_list() == [1.0, 2.0]
    assert out["pdx"].to_list() == ["A01", "C03"] and out["sdx"].to_list() == [["B02"], []]
    assert out["department"].to_list() == ["内科", "外科"]


def test_unaccepted_container_raises():
    with pytest.raises(InputError, match="got list"):
        read_cases([{"pdx": "A"}])


# --- shapes, containers, attach --------------------------------------------------------------


def test_empty_frame_has_canonical_dtypes():
    out = read_cases(
        pl.DataFrame(
            {"diagnoses": [], "age": [], "入院日期": []},
            schema={"diagnoses": pl.String, "age": pl.String, "入院日期": pl.String},
        )
    )
    assert out.height == 0
    assert out.schema == pl.Schema({**CANONICAL_SCHEMA, "admission_date": pl.Date()})
    out = read_cases(pl.DataFrame(schema={"pdx": pl.String}))
    assert out.height == 0 and out.schema == pl.Schema(CANONICAL_SCHEMA)


def test_paths_csv_and_parquet(tmp_path: Path):
    df = pl.DataFrame(
        {
            "case_id": ["a", "b"],
            "age": ["07", "8"],
            "diagnoses": ["a01.000|b02", ""],
            "procedures": ["01.0100", None],
        }
    )
    df.write_csv(tmp_path / "c.csv")
    df.write_parquet(tmp_path / "c.parquet")
    a, b = read_cases(tmp_path / "c.csv"), read_cases(str(tmp_path / "c.parquet"))
    assert_frame_equal(a, b)
    assert a["pproc"].to_list() == ["01.0100", None]  # leading zero kept: CSV read as text
    assert a["pdx"].to_list() == ["A01.000", None]


def test_lazy_frame_input():
    lf = pl.LazyFrame({"diagnoses": ["A|B"]})
    assert read_cases(lf)["sdx"].to_list() == [["B"]]


def test_attach_keeps_container_index_and_overwrites():
    pdf = pd.DataFrame({"x": [1, 2, 3], "drg": ["old"] * 3}, index=[10, 20, 30])
    res = pl.DataFrame({"drg": ["A", "B", "C"], "mdc": ["M1", "M2", "M3"]})
    out = attach(pdf, res)
    assert isinstance(out, pd.DataFrame) and list(out.index) == [10, 20, 30]
    assert list(out.columns) == ["x", "drg", "mdc"] and list(out["drg"]) == ["A", "B", "C"]
    assert list(pdf["drg"]) == ["old"] * 3  # the caller's frame is not modified

    pdf_out = attach(pl.from_pandas(pdf), res)
    assert isinstance(pdf_out, pl.DataFrame) and pdf_out.columns == ["x", "drg", "mdc"]
    tab = attach(pa.table({"x": [1, 2, 3], "drg": ["o"] * 3}), res)
    assert isinstance(tab, pa.Table) and tab.column_names == ["x", "drg", "mdc"]
    assert tab.column("drg").to_pylist() == ["A", "B", "C"]
    # a result column that is the table's first column is replaced in place too
    first = attach(pa.table({"drg": ["o"] * 3, "x": [1, 2, 3]}), res)
    assert first.column_names == ["drg", "x", "mdc"] and first.column("drg").to_pylist() == ["A", "B", "C"]
    lazy = attach(pl.LazyFrame({"x": [1, 2, 3]}), res)
    assert isinstance(lazy, pl.DataFrame) and lazy.rows() == [(1, "A", "M1"), (2, "B", "M2"), (3, "C", "M3")]
    with pytest.raises(InputError, match=r"^cannot attach 2 result rows to an input of 3 rows$"):
        attach(pdf, res.head(2))


def test_attach_by_position_even_with_repeated_index_labels():
    pdf = pd.DataFrame({"diagnoses": ["A01|B02", "C03", ""]}, index=["k", "k", "j"])
    out = attach(pdf, read_cases(pdf).select("pdx", "sdx"))
    assert list(out.index) == ["k", "k", "j"]
    assert list(out["pdx"])[:2] == ["A01", "C03"] and pd.isna(out["pdx"].iloc[2])
    assert [list(v) for v in out["sdx"]] == [["B02"], [], []]


def test_attach_path(tmp_path: Path):
    pl.DataFrame({"x": ["1", "2"]}).write_csv(tmp_path / "a.csv")
    out = attach(tmp_path / "a.csv", pl.DataFrame({"y": [1, 2]}))
    assert out.columns == ["x", "y"]


# --- golden file -----------------------------------------------------------------------------


@needs_shared
def test_golden_file_rows_and_codes_unchanged():
    raw = pl.read_csv(GOLDEN, infer_schema=False)
    out = read_cases(GOLDEN)
    assert out.height == raw.height == 5000
    assert out["case_id"].to_list() == raw["case_id"].to_list()
    dx = raw["diagnoses"].fill_null("").str.split("|")
    px = raw["procedures"].fill_null("").str.split("|")
    assert out["pdx"].fill_null("").to_list() == dx.list.first().to_list()
    assert out["sdx"].to_list() == dx.list.slice(1).to_list()
    assert out["pproc"].fill_null("").to_list() == px.list.first().to_list()
    assert out["oproc"].to_list() == px.list.slice(1).to_list()
    for name in ("sex", "age", "age_days", "birth_weight", "los", "discharge"):
        assert out[name].to_list() == raw[name].cast(pl.Float64).to_list(), name
    assert out["malformed"].list.len().sum() == 0


# --- properties ------------------------------------------------------------------------------

PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(cases=intake_cases(), rnd=st.randoms(use_true_random=False))
def test_layouts_agree_with_hand_expected(cases, rnd):
    want = expected_frame(cases)
    frames = {
        "list-split": list_layout(cases, split=True),
        "list-combined": list_layout(cases, split=False),
        "pipe": pipe_layout(cases),
        "wide": wide_layout(cases, chinese=False, shuffle=rnd),
        "wide-chinese": wide_layout(cases, chinese=True, shuffle=rnd),
    }
    for name, frame in frames.items():
        got = read_cases(frame)
        try:
            assert_frame_equal(got, want)
        except AssertionError as exc:
            raise AssertionError(f"layout {name}: {exc}") from None


@settings(PROPS, max_examples=25)
@given(cases=intake_cases())
def test_containers_agree(cases):
    for frame in (pipe_layout(cases), wide_layout(cases, chinese=True), list_layout(cases, split=True)):
        base = read_cases(frame)
        assert_frame_equal(read_cases(frame.to_arrow()), base)
        assert_frame_equal(read_cases(frame.to_pandas()), base)
        assert_frame_equal(read_cases(frame.lazy()), base)


@st.composite
def junk_pandas(draw):
    n = draw(st.integers(0, 8))
    cols = {}
    for name in draw(st.lists(st.sampled_from(JUNK_SCALAR_COLUMNS), unique=True)):
        cols[name] = draw(st.lists(junk_value, min_size=n, max_size=n))
    layout = draw(st.sampled_from(["pipe", "wide", "split", "chinese"]))
    code_cols = {
        "pipe": ["diagnoses", "procedures"],
        "wide": ["dx1", "dx2", "dx10", "pr1", "pr2"],
        "split": ["pdx", "sdx", "pproc", "oproc"],
        "chinese": ["主要诊断编码", "其他诊断编码1", "主要手术操作编码", "其他手术操作编码3"],
    }[layout]
    for name in code_cols:
        cols[name] = draw(st.lists(junk_text, min_size=n, max_size=n))
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in cols.items()}), n


@PROPS
@given(data=junk_pandas())
def test_junk_never_crashes_and_keeps_rows(data):
    frame, n = data
    ids = [f"r{i}" for i in range(n)]
    frame["case_id"] = ids
    out = read_cases(frame)
    assert out.height == n
    assert out["case_id"].to_list() == ids
    assert out["sdx"].null_count() == 0 and out["oproc"].null_count() == 0
    assert out["malformed"].null_count() == 0 and out["intake_warnings"].null_count() == 0
    # every flagged field is null and every finding is a documented code
    for row in out.iter_rows(named=True):
        for field in row["malformed"]:
            assert row[field] is None
        for w in row["intake_warnings"]:
            assert re.fullmatch(r"negative_cost|negative_los|missing_pdx|malformed:\w+|implausible:\w+", w), w
    # the polars frame of the same junk (as text) holds up too
    as_text = pl.DataFrame(
        {c: [None if v is None else str(v) for v in frame[c]] for c in frame.columns},
        schema=dict.fromkeys(frame.columns, pl.String),
    )
    assert read_cases(as_text).height == n


@settings(PROPS, max_examples=25)
@given(cases=intake_cases(max_size=30), rnd=st.randoms(use_true_random=False))
def test_row_order_kept(cases, rnd):
    frame = pipe_layout(cases)
    order = list(range(frame.height))
    rnd.shuffle(order)
    shuffled = frame[order]
    assert_frame_equal(read_cases(shuffled), read_cases(frame)[order])


@PROPS
@given(cases=intake_cases())
def test_normalised_codes_read_back_unchanged(cases):
    first = read_cases(pipe_layout(cases))
    again = read_cases(
        first.select(
            "case_id",
            "sex",
            "age",
            "age_days",
            "birth_weight",
            "los",
            "discharge",
            "total_cost",
            "pdx",
            "sdx",
            "pproc",
            "oproc",
        )
    )
    assert_frame_equal(again, first)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.sampled_from(["H1", "H2", " H3", "Ｈ4", "", "职工", "居民 ", "\u3000X"]), min_size=1, max_size=30
    ),
    st.lists(st.text("AB12 \t\x0b\x1f", max_size=4) | st.sampled_from(["C1", "C2"]), min_size=1, max_size=30),
    st.booleans(),
    st.lists(st.sampled_from([1.5, 0.0, -2.0, float("nan"), float("inf"), None]), min_size=1, max_size=30),
)
def test_clean_text_shortcut_reads_like_the_full_rule(monkeypatch, few, many, repeat, numbers):
    # the shortcuts for clean identifier and number columns of many rows must read exactly
    # what the full rule (NFKC where non-ASCII, trim, empty -> null; finite numbers) reads
    from casemix.cases import _canonical
    from casemix.cases._canonical import canonical

    n = max(len(few), len(many))
    df = pl.DataFrame(
        {
            "hospital_id": (few * n)[:n] if repeat else few + ["H1"] * (n - len(few)),
            "case_id": (many * n)[:n],
            "insurance_type": ["职工", "居民"] * (n // 2) + ["职工"] * (n % 2),
            "hospital_level": list(range(n)),
            "total_cost": (numbers * n)[:n],
            "los": ([x if x is None else abs(x) for x in numbers] * n)[:n],
        }
    )
    need, optional = ("hospital_id", "total_cost"), ("case_id", "insurance_type", "hospital_level", "los")
    full = canonical(df, need=need, optional=optional)
    monkeypatch.setattr(_canonical, "_SHORTCUT_ROWS", 0)
    for few_values in (1_000, 0):  # the test over distinct values, then over bytes
        monkeypatch.setattr(_canonical, "_FEW", few_values)
        fast = canonical(df, need=need, optional=optional)
        assert_frame_equal(fast.frame, full.frame)
        assert fast.left_out.to_list() == full.left_out.to_list()
        assert fast.counts == full.counts


# --- implausible values at the bounds of docs/errors.md (cases._plausible): intake's polars
# conditions and the numpy twin the direct grouping path uses, on the same hand rows

NAN = float("nan")
# age, age_days, birth_weight -> the implausible:<field> codes
PLAUSIBILITY = [
    ((0.0, None, None), []),
    ((150.0, None, None), []),
    ((-0.01, None, None), ["age"]),
    ((150.01, None, None), ["age"]),
    ((0.5, 0.0, None), []),
    ((0.5, 365.0, None), []),
    ((0.5, 365.5, None), ["age_days"]),
    ((None, -1.0, None), ["age_days"]),
    ((0.99, 1.0, None), []),  # an infant's days
    ((1.0, 1.0, None), ["age_days"]),  # days beside an age of one year or more
    ((1.0, 0.0, None), []),  # 0 days beside an adult age: "not given"
    ((40.0, None, 0.0), []),
    ((40.0, None, 10_000.0), []),
    ((40.0, None, 10_000.5), ["birth_weight"]),
    ((40.0, None, -1.0), ["birth_weight"]),
    ((-5.0, 1.0, 20_000.0), ["age", "birth_weight"]),  # age -5 < 1: the days are an infant's
    ((200.0, 10.0, 3000.0), ["age", "age_days"]),
    ((None, None, None), []),
]


def test_implausible_bounds_intake_and_numpy_twin():
    import numpy as np

    from casemix.cases._plausible import implausible_mask

    cols = {
        name: [r[0][i] for r in PLAUSIBILITY] for i, name in enumerate(("age", "age_days", "birth_weight"))
    }
    df = pl.DataFrame(
        {"pdx": ["A00"] * len(PLAUSIBILITY), **cols}, schema_overrides=dict.fromkeys(cols, pl.Float64)
    )
    got = [
        [w.split(":")[1] for w in ws if w.startswith("implausible:")]
        for ws in read_cases(df)["intake_warnings"]
    ]
    assert got == [want for _, want in PLAUSIBILITY]
    arrays = {k: np.array([NAN if v is None else v for v in vs]) for k, vs in cols.items()}
    assert implausible_mask(arrays).tolist() == [bool(want) for _, want in PLAUSIBILITY]
    # fields the input lacks are no evidence: each alone, and age without age_days
    only_age = implausible_mask({"age": arrays["age"]})
    assert only_age.dtype == bool
    assert only_age.tolist() == ["age" in want for _, want in PLAUSIBILITY]
    only_days = implausible_mask({"age_days": arrays["age_days"]})
    assert only_days.tolist() == [r[1] is not None and not 0 <= r[1] <= 365 for r, _ in PLAUSIBILITY]
    only_weight = implausible_mask({"birth_weight": arrays["birth_weight"]})
    assert only_weight.tolist() == ["birth_weight" in want for _, want in PLAUSIBILITY]


# --- mutation survivors (issue 20) ----------------------------------------------------------


def test_a_null_text_date_is_missing_not_malformed():
    r = read_cases(pl.DataFrame({"pdx": ["A00", "A01"], "discharge_date": ["2024-01-05", None]}))
    assert r["discharge_date"].to_list() == [dt.date(2024, 1, 5), None]
    assert r["intake_warnings"].to_list() == [[], []]


def test_all_null_columns_keep_their_field_types():
    # a column of nulls only (polars type Null) reads as the field's type: year Int32,
    # dates Date, numbers Float64
    from casemix.cases import canonical

    nulls = [None, None]
    c = canonical(
        pl.DataFrame({"drg": ["A", "B"], "year": nulls, "admission_date": nulls, "los": nulls}),
        need=("drg",),
        optional=("year", "admission_date", "los"),
    )
    assert {n: c.frame.schema[n] for n in ("year", "admission_date", "los")} == {
        "year": pl.Int32,
        "admission_date": pl.Date,
        "los": pl.Float64,
    }


def test_code_column_read_as_numbers_message_in_full():
    # 61 columns: the first 60 are listed, then an ellipsis and the count
    df = pl.DataFrame({"pdx": [39.65], **{f"c{i}": [1] for i in range(60)}})
    listed = ", ".join(repr(c) for c in df.columns[:60])
    with pytest.raises(InputError) as e:
        read_cases(df)
    assert str(e.value) == (
        "column 'pdx' (read as diagnoses) has type Float64, which cannot hold diagnosis codes "
        f"(text); columns found: [{listed}, …] (61 columns). Codes read as numbers lose their "
        "form (39.6500 -> 39.65); read the file with dtype=str, or pass its path to casemix, "
        "which reads CSV as text."
    )


def test_parse_dates_names_the_series_of_a_wrong_type():
    from casemix.cases import parse_dates

    with pytest.raises(InputError) as e:
        parse_dates(pl.Series("admitted", [True]))
    assert str(e.value) == (
        "column 'admitted' (read as date) has type Boolean, which cannot hold a date, a number "
        "(20240105) or text; columns: ['admitted']"
    )


def test_float_ids_past_int64_keep_a_text_id():
    # pandas makes an integer id column with gaps float; whole floats read as integers
    # (12345.0 -> "12345"), but one past int64 has no integer form: it stays as written
    # instead of becoming a null id (mutation survivor x_text_id__mutmut_11 showed it)
    ids = [12345.0, -3.0, 2.5, 1e20, float("inf"), float("nan")]
    r = read_cases(pd.DataFrame({"case_id": ids, "pdx": ["A00"] * len(ids)}))
    assert r["case_id"].to_list() == ["12345", "-3", "2.5", "1e+20", "inf", None]


def test_scalar_of_a_wrong_type_is_named_with_the_field_it_was_read_as():
    with pytest.raises(InputError) as e:
        read_cases(pl.DataFrame({"pdx": ["A00"], "年龄": [True]}))
    assert str(e.value) == (
        "column '年龄' (read as age) has type Boolean, which cannot hold age (a number or text); "
        "columns found: ['pdx', '年龄'] (2 columns)."
    )


# --- mutation survivors, session 7 (benchmarks/results/mutation.md) ---------------------


def test_parse_numbers_reads_the_words_of_its_field():
    # parse_numbers(..., "sex") reads 男/女 as 1/2; without the field, words are malformed
    from casemix.cases import parse_numbers

    s = pl.Series("s", ["男", "女", " 2 ", "x"])
    assert parse_numbers(s, "sex").to_list() == [1.0, 2.0, 2.0, None]
    assert parse_numbers(s).to_list() == [None, None, 2.0, None]


def test_parse_dates_of_an_unnamed_series_names_it_values():
    from casemix.cases import parse_dates

    with pytest.raises(InputError) as e:
        parse_dates(pl.Series([True]))
    assert str(e.value) == (
        "column 'values' (read as date) has type Boolean, which cannot hold a date, a number "
        "(20240105) or text; columns: ['values']"
    )


def test_read_cases_all_null_numeric_and_date_columns():
    # polars types a column of nulls only as Null: read as a missing value of the field's type
    nulls = [None, None]
    r = read_cases(pl.DataFrame({"pdx": ["A00", "A01"], "los": nulls, "入院日期": nulls}))
    assert r.schema["los"] == pl.Float64 and r.schema["admission_date"] == pl.Date
    assert r["los"].to_list() == nulls and r["admission_date"].to_list() == nulls
    assert r["malformed"].to_list() == [[], []] and r["intake_warnings"].to_list() == [[], []]


def test_all_empty_numeric_list_columns_read_as_no_codes():
    # pandas writes an all-empty column as float NaN: an sdx / oproc column of that kind
    # holds no codes (not an error, not a typeless column)
    nan = float("nan")
    r = read_cases(
        pd.DataFrame({"pdx": ["A00", "B01"], "sdx": [nan, nan], "pproc": ["x", None], "oproc": [nan, nan]})
    )
    assert r.schema["sdx"] == LST and r.schema["oproc"] == LST
    assert r.select("pdx", "sdx", "pproc", "oproc").rows() == [("A00", [], "X", []), ("B01", [], None, [])]
    assert r["intake_warnings"].to_list() == [[], []]


def test_secondaries_without_a_principal_column():
    r = read_cases(pl.DataFrame({"sdx": [["A00"], []]}))
    assert r.select("pdx", "sdx", "intake_warnings").rows() == [
        (None, ["A00"], ["missing_pdx"]),
        (None, [], []),
    ]


def test_a_zero_los_is_no_warning_a_negative_one_is():
    r = read_cases(pl.DataFrame({"pdx": ["A00"] * 3, "los": [0, -1, 1]}))
    assert r["intake_warnings"].to_list() == [[], ["negative_los"], []]


def test_resolve_names_the_layout_kind_the_direct_path_reads():
    # drg/direct.py picks its fast path from CodeLayout.kind: each layout says which it is
    from casemix.cases._resolve import resolve

    split = resolve(pl.DataFrame({"pdx": ["A00"], "sdx": ["B01"]}), None, ["pdx"])
    combined = resolve(pl.DataFrame({"diagnoses": ["A00|B01"], "procedures": [["X"]]}), None, ["pdx"])
    wide = resolve(pl.DataFrame({"dx2": ["B01"], "dx1": ["A00"], "pr1": ["X"]}), None, ["pdx"])
    assert (split.dx.kind, split.dx.principal, split.dx.others, split.proc) == ("split", "pdx", "sdx", None)
    assert (combined.dx.kind, combined.dx.combined) == ("combined", "diagnoses")
    assert (combined.proc.kind, combined.proc.combined) == ("combined", "procedures")
    assert (wide.dx.kind, wide.dx.wide, wide.proc.kind, wide.proc.wide) == (
        "wide",
        ["dx1", "dx2"],
        "wide",
        ["pr1"],
    )


def test_missing_required_scalar_message_in_full():
    with pytest.raises(InputError) as e:
        read_cases(pl.DataFrame({"diagnoses": ["A"]}), required=("los",))
    assert str(e.value) == (
        "required column 'los' not found (looked for: los, length_of_stay, act_ipt_days, 实际住院天数, "
        "实际住院(天), 住院天数, 住院天数(天)). Columns found: ['diagnoses'] (1 columns). "
        "Name yours with mapping={'<column>': 'los'}."
    )
    assert ", ".join(SCALAR_ALIASES["los"]) in str(e.value)  # the table, as it reads today


def test_procedure_column_of_numbers_message_in_full():
    with pytest.raises(InputError) as e:
        read_cases(pl.DataFrame({"pdx": ["A"], "pproc": [3]}))
    assert str(e.value) == (
        "column 'pproc' (read as procedures) has type Int64, which cannot hold procedure codes "
        "(text); columns found: ['pdx', 'pproc'] (2 columns). Codes read as numbers lose their "
        "form (39.6500 -> 39.65); read the file with dtype=str, or pass its path to casemix, "
        "which reads CSV as text."
    )


def test_clean_text_shortcut_is_taken_for_clean_columns_only(monkeypatch):
    # the shortcut must decide "clean" for clean identifier columns (else every step pays the
    # full text rule on millions of ids), by each of its two tests, and never for one that
    # needs work (reading like the full rule is test_clean_text_shortcut_reads_like_the_full_rule)
    from casemix.cases import _canonical

    monkeypatch.setattr(_canonical, "_SHORTCUT_ROWS", 0)

    def clean(values: list[str]) -> bool:
        return _canonical._clean_text(pl.DataFrame({"c": values}), "c")

    many = [f"C{i}" for i in range(2_000)]  # more than _FEW distinct values: the byte test
    assert clean(many)
    for bad in (" C", "C ", "C\t", "", "Ｃ9"):
        assert not clean([*many, bad]), bad
    # 2 distinct values in the first 10,000 rows: the test over the 2,002 distinct values,
    # which reads Chinese text as clean (the byte test would not: it is not ASCII)
    assert clean(["医院甲", "医院乙"] * 5_000 + many)
    assert not clean(["医院甲", "医院乙 "] * 5_000 + many)


def test_canonical_missing_column_of_no_canonical_name_message_in_full():
    # a name that is no canonical field (dip_group) is looked for under that name only
    from casemix.cases import canonical

    with pytest.raises(InputError) as e:
        canonical(pl.DataFrame({"drg": ["A"]}), need=("drg", "dip_group"), step="DIP settlement")
    assert str(e.value) == (
        "DIP settlement needs column 'dip_group' (looked for: dip_group); columns found: ['drg']. "
        "Name yours with mapping={'<column>': 'dip_group'} (--map FILE on the command line)."
    )


def test_canonical_left_out_is_a_series_named_left_out():
    # Canonical.left_out is public: added to a frame it is the column restore() adds
    from casemix.cases import canonical

    c = canonical(pl.DataFrame({"drg": ["A", None], "cost": [1.0, -1.0]}), need=("drg", "total_cost"))
    assert c.left_out.name == "left_out"
    assert c.frame.with_columns(c.left_out)["left_out"].to_list() == [None, "negative:total_cost"]
    assert c.restore(pl.DataFrame({"w": [1.0]}))["left_out"].to_list() == [None, "negative:total_cost"]


def test_canonical_need_lists_the_fields_whose_values_were_checked():
    # grouping results (drg: a "step" field) and names that are no canonical field
    # (dip_group) are only required to exist: their values are not checked
    from casemix.cases import canonical

    df = pl.DataFrame({"drg": ["A", None], "cost": [1.0, None], "dip_group": ["x", "y"]})
    c = canonical(df, need=("drg", "total_cost", "dip_group"))
    assert c.need == ("total_cost",)
    assert c.left_out.to_list() == [None, "missing:total_cost"]
    assert c.notes() == ["missing:total_cost: 1 row(s) left out"]


def test_canonical_number_of_a_wrong_type_message_in_full():
    from casemix.cases import canonical

    with pytest.raises(InputError) as e:
        canonical(pl.DataFrame({"drg": ["A"], "cost": [True]}), need=("drg", "total_cost"))
    assert str(e.value) == (
        "column 'cost' (read as total_cost) has type Boolean, which cannot hold a number or text; "
        "columns: ['drg', 'cost']"
    )


def test_canonical_numbers_are_float64_past_the_shortcut_rows(monkeypatch):
    # from _SHORTCUT_ROWS rows a Float64 column of finite numbers is its own value; integer
    # and Float32 columns are still read as Float64
    from casemix.cases import _canonical

    monkeypatch.setattr(_canonical, "_SHORTCUT_ROWS", 0)
    for values in (pl.Series([1, 2], dtype=pl.Int64), pl.Series([1.5, 2.0], dtype=pl.Float32)):
        c = _canonical.canonical(pl.DataFrame({"cost": values}), optional=("total_cost",))
        assert c.frame.schema["total_cost"] == pl.Float64
        assert c.frame["total_cost"].to_list() == values.cast(pl.Float64).to_list()


def test_canonical_identifier_of_a_wrong_type_message_in_full():
    from casemix.cases import canonical

    with pytest.raises(InputError) as e:
        canonical(pl.DataFrame({"医疗机构编码": [True]}), need=("hospital_id",))
    assert str(e.value) == (
        "column '医疗机构编码' (read as hospital_id) has type Boolean, which cannot hold an "
        "identifier, text or integer; columns: ['医疗机构编码']"
    )


def test_a_date_in_other_digits_is_malformed_not_an_error():
    # the serial-day pattern's \d also matches Arabic-Indic and Devanagari digits, which
    # NFKC keeps and no number cast reads: malformed (row 1's admission date), not a crash
    from casemix.cases import parse_dates

    r = read_cases(pl.DataFrame({"pdx": ["A00", "A01"], "入院日期": ["٤٥٢٩٢", "45292"]}))
    assert r["admission_date"].to_list() == [None, dt.date(2024, 1, 1)]
    assert r["intake_warnings"].to_list() == [["malformed:admission_date"], []]
    assert parse_dates(pl.Series(["٤٥٢٩٢", "४५२९२", "45292."])).to_list() == [None, None, dt.date(2024, 1, 1)]


def test_restore_of_a_result_with_the_wrong_row_count_names_both_counts():
    from casemix.cases import canonical

    c = canonical(
        pl.DataFrame({"drg": ["A", "B", "C"], "cost": [1.0, -1.0, 2.0]}), need=("drg", "total_cost")
    )
    with pytest.raises(InputError) as e:
        c.restore(pl.DataFrame({"w": [1.0]}))
    assert str(e.value) == "cannot restore 1 result rows to an input of 3 rows"


def test_canonical_counts_bad_optional_values_but_not_missing_ones():
    # an optional field's missing value is simply absent (not counted); a malformed one is
    # read as absent and counted (docs/cases.md, "One vocabulary for every step")
    from casemix.cases import canonical

    c = canonical(
        pl.DataFrame({"drg": ["A", "B", "C"], "los": ["1", None, "x"]}), need=("drg",), optional=("los",)
    )
    assert c.frame["los"].to_list() == [1.0, None, None]
    assert c.counts == {"malformed:los": 1}
    assert c.notes() == ["malformed:los: 1 row(s) read as absent"]
    assert c.left_out.to_list() == [None, None, None]


def test_canonical_negative_costs_are_null_zero_and_fractions_stay():
    from casemix.cases import canonical

    c = canonical(
        pl.DataFrame({"drg": ["A"] * 4, "cost": [0.0, 0.5, -0.01, 2.0]}), need=("drg", "total_cost")
    )
    assert c.frame["total_cost"].to_list() == [0.0, 0.5, None, 2.0]
    assert c.left_out.to_list() == [None, None, "negative:total_cost", None]


def test_canonical_a_column_of_nulls_only_is_missing_not_malformed():
    from casemix.cases import canonical

    c = canonical(pl.DataFrame({"drg": ["A", "B"], "cost": [None, None]}), need=("drg", "total_cost"))
    assert c.left_out.to_list() == ["missing:total_cost"] * 2
    assert c.counts == {"missing:total_cost": 2}


def test_canonical_year_past_int32_is_malformed_not_an_error():
    from casemix.cases import canonical

    c = canonical(
        pl.DataFrame({"drg": ["A", "B", "C"], "year": [2024.0, 1e10, 2023.5]}), need=("drg", "year")
    )
    assert c.frame["year"].to_list() == [2024, None, None]
    assert c.left_out.to_list() == [None, "malformed:year", "malformed:year"]


def test_canonical_blank_text_dates_are_missing_not_malformed():
    from casemix.cases import canonical

    df = pl.DataFrame({"drg": ["A"] * 4, "入院日期": ["2024-01-05", "", "  ", "x"]})
    c = canonical(df, need=("drg",), optional=("admission_date",))
    assert c.frame["admission_date"].to_list() == [dt.date(2024, 1, 5), None, None, None]
    assert c.counts == {"malformed:admission_date": 1}


def test_float_ids_at_and_past_two_to_the_63_keep_their_text():
    # 2^63 and 1e19 have no int64 form (the largest is 2^63 - 1): written as floats, not null
    ids = [2.0**63, 1e19, 2.0**62]
    r = read_cases(pd.DataFrame({"case_id": ids, "pdx": ["A00"] * len(ids)}))
    assert r["case_id"].to_list() == ["9.223372036854776e+18", "1e+19", "4611686018427387904"]
