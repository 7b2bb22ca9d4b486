"""casemix.payment.city_tables: the 22 published city tables, read through one alias table."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from casemix.errors import InputError
from casemix.payment.city_tables import read_city_table, recognise
from conftest import SHARED, needs_shared

CITY = SHARED / "reference-data" / "city-drg-tables" if SHARED else None

# Figures read from the files themselves (csv module, `iconv -f gb18030`, counting by
# hand-written filters), not from the code under test:
#   rows     data rows
#   rw       rows whose RW cell is a number > 0
#   flags    rows with the flag set (稳定 = stable, 不稳定 = unstable, 未覆盖组 = uncovered)
#   checked  rows × standard columns with RW > 0, 支付标准 > 0 and, for a per-level
#            standard, that level's coefficient filled (where the table publishes one)
#   unrec    headers no alias covers
EXPECTED = {
    "临汾2022.csv": dict(rows=666, rw=666, base_group=11),
    "临沂2022.csv": dict(rows=629, rw=610, checked=2440),
    "乌鲁木齐2022.csv": dict(rows=718, rw=709),
    "云南2022.csv": dict(rows=677, rw=677),
    "兰州2022.csv": dict(rows=792, rw=783, base_group=36, stable=649, unstable=98, uncovered=9, checked=783),
    "兰州2023.csv": dict(rows=794, rw=772, base_group=35, stable=555, unstable=182, uncovered=22),
    "北京2022.csv": dict(rows=696, rw=647, rw_text=49, checked=647),
    "南平2023.csv": dict(rows=795, rw=795, stable=688, unstable=107),
    "常州2022.csv": dict(rows=740, rw=740, base_group=20, stable=720),
    "广西2022.csv": dict(rows=984, rw=979, stable=945, unstable=39),
    "新疆兵团2022.csv": dict(rows=635, rw=635, base_group=10),
    "无锡2022.csv": dict(rows=602, rw=602, base_group=25, tcm_advantage=5, checked=1806),
    "泰州2022.csv": dict(rows=759, rw=759, stable=706, unstable=53, checked=353),
    "烟台2023.csv": dict(rows=649, rw=649, same_rate=23, volume_control=26, unrec=["总控人次"]),
    "盐城2022.csv": dict(rows=628, rw=592, special_review=24, checked=557 + 580),
    "盐城2023.csv": dict(rows=628, rw=538, special_review=24, checked=432 + 516),
    "福州2022.csv": dict(rows=563, rw=563),
    "聊城2022.csv": dict(rows=683, rw=683),
    "苏州2022.csv": dict(rows=648, rw=648, base_group=21, checked=3 * 648),
    "西安2020.csv": dict(rows=618, rw=597, checked=597),
    "铜川2022.csv": dict(rows=628, rw=596, checked=2 * 596),
    "长沙2023.csv": dict(rows=737, rw=734, rw_text=3, base_group=14, stable=693, unstable=44),
}
ZERO = (
    "rw_text",
    "base_group",
    "special_review",
    "same_rate",
    "tcm_advantage",
    "volume_control",
    "uncovered",
    "stable",
    "unstable",
    "checked",
)


# the columns to_weights gives a weights table, in order
WEIGHT_COLUMNS = [
    "drg",
    "rw",
    "name",
    "same_rate",
    "base_group",
    "special_review",
    "stable",
    "low_k",
    "high_k",
]


def test_all_22_files_are_listed():
    if CITY is None:
        pytest.skip("../shared is absent")
    assert sorted(p.name for p in CITY.glob("*.csv")) == sorted(EXPECTED)


@needs_shared
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_city_table_is_recognised(name):
    city = read_city_table(CITY / name)
    want = {**dict.fromkeys(ZERO, 0), **EXPECTED[name]}
    unrec = want.pop("unrec", [])
    got = city.counts()
    assert {k: got[k] for k in want} == want
    assert city.unrecognised == unrec
    # no published table disagrees with RW × rate × coefficient beyond its rounding
    assert got["mismatches"] == 0
    w = city.to_weights()
    t = w.table
    assert t["drg"].is_unique().all() and (t["rw"] > 0).all()
    excluded = w.quality["excluded"]
    assert t.height + len(excluded["no_positive_rw"]) + len(excluded["repeated_drg"]) == want["rows"]
    assert set(WEIGHT_COLUMNS) <= set(t.columns)


@needs_shared
def test_pools_levels_rates_and_coefficients_are_read():
    c = read_city_table(CITY / "常州2022.csv")
    assert c.rates == {"rate_职工": 11519.0, "rate_居民": 9849.0}
    assert c.coefficients == {"coefficient_3": 1.01, "coefficient_2": 0.91}
    l23 = read_city_table(CITY / "兰州2023.csv")
    assert l23.rates == {"rate_职工": 9986.9352}
    assert set(l23.coefficients) == {"coefficient_省3甲", "coefficient_3甲", "coefficient_3", "coefficient_2"}
    ly = read_city_table(CITY / "临沂2022.csv")
    assert [h.column for h in ly.headers][3:] == [
        "standard_职工_3",
        "standard_居民_3",
        "standard_职工_2",
        "standard_居民_2",
    ]
    # 0000 未入组: RW 0.2, 支付标准（三级职工）1973 → 9865 per RW, the table's implied rate
    assert ly.implied_rates["standard_职工_3"] == pytest.approx(1973 / 0.2)
    gx = read_city_table(CITY / "广西2022.csv")
    assert [h.column for h in gx.headers][3:] == ["mean_cost_玉林", "stable_玉林"]


@needs_shared
def test_beijing_implied_rate_explains_every_row():
    # RW has 2 decimals, so 支付标准 / RW scatters; the median (about 20,427.5) would leave
    # e.g. BD29 (RW 10.72, 218,875) 108 yuan off, beyond 0.005 × 20,427.5 + 0.5 = 102.6.
    # A rate of 20,425.1 explains all 647 rows: 10.72 × 20425.1 = 218,957.1, and RW could
    # be 10.716 (218,875 / 20425.1 = 10.7160): within the rounding of 10.72.
    bj = read_city_table(CITY / "北京2022.csv")
    rate = bj.implied_rates["standard"]
    assert 20424.27 < rate < 20425.93  # every row's interval holds this stretch
    assert bj.counts()["mismatches"] == 0
    row = bj.standards.filter(pl.col("drg") == "BD29").row(0, named=True)
    assert abs(row["standard"] / rate - 10.72) <= 0.005


@needs_shared
def test_wuxi_base_groups_are_paid_the_first_level_rate_at_every_level():
    wx = read_city_table(CITY / "无锡2022.csv")
    base = wx.standards.filter(
        pl.col("drg").is_in(wx.table.filter("base_group")["drg"].implode())
        & (pl.col("column") == "standard_3")
    )
    assert base.height == 25
    # e.g. a base group with RW r has 三级 standard r × 7,782 (一级's rate), not r × 13,060
    assert ((base["standard"] - base["rw"] * 7782).abs() < 0.01).all()
    assert not base["mismatch"].any()


def _table(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    p = tmp_path / "city.csv"
    p.write_bytes(text.encode(encoding))
    return p


HAND = """DRG编码,DRG名称,RW,费率（职工）,等级系数（三级）,支付标准（三级职工）,基础病组
AA11,甲,2.0000,10000,1.1000,22000.00,
BB11,乙,1.5000,10000,1.1000,16600.00,
CC11,丙,1.0000,10000,1.1000,11000.50,
DD11,丁,0.5000,10000,1.1000,5000.00,是
"""


def test_hand_checked_mismatch(tmp_path):
    # published rate and coefficient: the literal check 支付标准 = RW × 费率 × 系数.
    # 费率 and 系数 are exact policy parameters; RW (4 decimals) and 支付标准 (2 decimals)
    # are rounded, so the tolerance is 0.00005 × 10000 × 1.1 + 0.005 = 0.555 yuan
    # (+ 10⁻⁹ × 支付标准 for floating-point error).
    # AA11: 2 × 10000 × 1.1 = 22000 exactly.
    # BB11: 1.5 × 10000 × 1.1 = 16500; 16600 is 100 off → mismatch.
    # CC11: 11000 expected; 11000.50 is 0.50 off, within 0.555 → fine.
    # DD11: a base group: 0.5 × 10000 = 5000 (coefficient 1, same rate at every level).
    city = read_city_table(_table(tmp_path, HAND, "gbk"))
    assert city.encoding == "gb18030"
    s = city.standards.sort("row")
    assert s["expected"].to_list() == pytest.approx([22000, 16500, 11000, 5000])
    assert s["tolerance"].to_list() == pytest.approx(
        [0.555 + 1e-9 * std for std in (22000, 16600, 11000.5, 5000)]
    )
    assert s["mismatch"].to_list() == [False, True, False, False]
    m = city.mismatches.row(0, named=True)
    assert (m["drg"], m["difference"], m["rate_source"]) == ("BB11", pytest.approx(100), "published")
    w = city.to_weights()
    assert w.table.filter(pl.col("drg") == "DD11")["same_rate"].item() is True
    assert w.quality["rates"] == {"rate_职工": 10000.0}


@needs_shared
def test_real_table_with_one_standard_changed_is_caught(tmp_path):
    # 苏州 AA19: RW 29.7, 一级系数 0.75, 一级支付标准 210170.1938 = 29.7 × 0.75 × 9435.25;
    # the same row with 210270.1938 is 100 yuan off
    src = (CITY / "苏州2022.csv").read_bytes().decode("gb18030")
    assert "210170.1938,285831.4635" in src
    changed = _table(
        tmp_path, src.replace("210170.1938,285831.4635", "210270.1938,285831.4635", 1), "gb18030"
    )
    m = read_city_table(changed).mismatches
    assert m.select("drg", "column").rows() == [("AA19", "standard_1")]
    assert m["difference"].item() == pytest.approx(100, abs=0.01)


def test_headers_through_the_alias_table():
    r = recognise("支付标准（三级职工）")
    assert (r.role, r.pool, r.level, r.column) == ("standard", "职工", "3", "standard_职工_3")
    assert recognise("二级医院系数").column == "coefficient_2"
    assert recognise("等级系数(省三甲)").column == "coefficient_省3甲"
    assert recognise("ＲＷ").role == "rw"  # full-width letters
    assert recognise("总控人次").role is None


def test_not_a_drg_table(tmp_path):
    with pytest.raises(InputError, match="not a DRG table"):
        read_city_table(_table(tmp_path, "姓名,年龄\n张三,3\n"))


def test_unreadable_flag_values_are_reported(tmp_path):
    city = read_city_table(_table(tmp_path, "DRG编码,RW,基础病组\nAA11,1,是\nBB11,1,可能\n"))
    assert city.problems["unreadable_values"] == {"基础病组": ["可能"]}
    assert city.table["base_group"].to_list() == [True, False]


@needs_shared
def test_cli_weights_import(tmp_path):
    from casemix.cli import main

    out = tmp_path / "w.csv"
    src = tmp_path / "北京2022.csv"
    shutil.copy(CITY / "北京2022.csv", src)
    res = CliRunner().invoke(main, ["weights", "import", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "696 rows, 647 with a positive RW" in res.output
    assert "647 checked, 0 mismatch" in res.output
    assert "按项目据实支付" in res.output and "unrecognised columns: none" in res.output
    back = pl.read_csv(out)
    assert back.height == 647 and back["drg"][0] == "AE19" and back["rw"][0] == 5.8
    res = CliRunner().invoke(main, ["weights", "import", str(src), "-o", str(out)])
    assert res.exit_code == 2 and "exists; pass --force" in res.output
    res = CliRunner().invoke(main, ["weights", "import", str(src), "-o", str(src), "--force"])
    assert res.exit_code == 2 and "the output is the input" in res.output
    assert src.read_bytes() == (CITY / "北京2022.csv").read_bytes()


def test_a_table_without_names_read_by_hand(tmp_path):
    # RW as text (a note), with a thousands separator, 0, and repeated; 高倍率/低倍率 and a
    # category column (病组类型) whose words set base_group, stable/unstable and uncovered
    city = read_city_table(
        _table(
            tmp_path,
            "病组编码,权重,高倍率,低倍率,病组类型\nAA11,1.5,3,0.4,基础组\nBB11,按项目付费,,,稳定组\n"
            'CC11,"1,234.5",2.5,0.3,不稳定组\nDD11,0,,,未覆盖组\nAA11,2,,,\n',
        )
    )
    assert city.encoding == "utf_8"
    assert [(h.role, h.column) for h in city.headers] == [
        ("drg", "drg"),
        ("rw", "rw"),
        ("high_k", "high_k"),
        ("low_k", "low_k"),
        ("category", "category"),
    ]
    t = city.table
    assert t.columns[:8] == ["drg", "name", "rw", "rw_note", "high_k", "high_k_note", "low_k", "low_k_note"]
    assert t["name"].dtype == pl.String and t["name"].null_count() == 5
    assert t["rw"].to_list() == [1.5, None, 1234.5, 0.0, 2.0]
    assert t["rw_note"].to_list() == [None, "按项目付费", None, None, None]
    assert t["high_k"].to_list() == [3.0, None, 2.5, None, None]
    assert t["low_k"].to_list() == [0.4, None, 0.3, None, None]
    assert t["base_group"].to_list() == [True, False, False, False, False]
    assert t["stable"].to_list() == [None, True, False, None, None]
    assert t["uncovered"].to_list() == [False, False, False, True, False]
    assert city.problems == {"unreadable_values": {}}
    assert city.counts() == {
        "rows": 5,
        "rw": 3,
        "rw_text": 1,
        "base_group": 1,
        "special_review": 0,
        "same_rate": 0,
        "tcm_advantage": 0,
        "volume_control": 0,
        "uncovered": 1,
        "stable": 1,
        "unstable": 1,
        "checked": 0,
        "mismatches": 0,
    }
    # no standard column: an empty check with its full schema
    assert city.standards.height == 0 and city.standards.columns[-1] == "mismatch"
    assert (city.rates, city.implied_rates, city.coefficients) == ({}, {}, {})
    w = city.to_weights()
    assert w.table.columns == WEIGHT_COLUMNS
    # the first AA11 (RW 1.5) is kept; a base group pays one rate at every level (same_rate)
    assert w.table.select("drg", "rw", "same_rate", "stable", "low_k", "high_k").rows() == [
        ("AA11", 1.5, True, None, 0.4, 3.0),
        ("CC11", 1234.5, False, False, 0.3, 2.5),
    ]
    assert w.quality == {
        "source": "city.csv",
        "encoding": "utf_8",
        "rates": {},
        "implied_rates": {},
        "coefficients": {},
        "excluded": {"no_positive_rw": ["BB11", "DD11"], "repeated_drg": ["AA11"]},
        "text_cells": {},
        "n_input": 5,
        "groups": 2,
    }


def test_text_in_a_standard_low_k_or_high_k_cell_is_kept_as_a_note(tmp_path):
    # as an RW cell that is no number: null in the numbers, the text beside it by row and
    # column (a blank cell is no note); the weights name the DRG and column of each
    c = read_city_table(
        _table(
            tmp_path,
            "DRG编码,RW,支付标准（三级）,低倍率,高倍率\n"
            "AA11,1,100,0.4, 无 \nBB11,2,按项目付费,不设,3\nCC11,3,300,,\nDD11,0,x,y,z\n",
        )
    )
    t = c.table
    assert t.columns[2:10] == [
        "rw",
        "rw_note",
        "standard_3",
        "standard_3_note",
        "low_k",
        "low_k_note",
        "high_k",
        "high_k_note",
    ]
    assert t["standard_3"].to_list() == [100.0, None, 300.0, None]
    assert t["standard_3_note"].to_list() == [None, "按项目付费", None, "x"]
    assert t["low_k"].to_list() == [0.4, None, None, None]
    assert t["low_k_note"].to_list() == [None, "不设", None, "y"]
    assert t["high_k"].to_list() == [None, 3.0, None, None]
    assert t["high_k_note"].to_list() == ["无", None, None, "z"]
    # the check skips the text standard (no row for BB11) and DD11 (no standard)
    assert c.standards["drg"].to_list() == ["AA11", "CC11"]
    w = c.to_weights()
    assert w.table.columns == [*WEIGHT_COLUMNS, "standard_3"]
    assert w.table.select("drg", "low_k", "high_k", "standard_3").rows() == [
        ("AA11", 0.4, None, 100.0),
        ("BB11", None, 3.0, None),
        ("CC11", None, None, 300.0),
    ]
    # DD11 (RW 0) is excluded, its text cells too
    assert w.quality["text_cells"] == {
        "standard_3": {"BB11": "按项目付费"},
        "low_k": {"BB11": "不设"},
        "high_k": {"AA11": "无"},
    }
    from casemix.cli import main

    res = CliRunner().invoke(main, ["weights", "import", str(c.path)])
    assert res.exit_code == 0, res.output
    assert "text that is no number in low_k, null in the weights: 1 (BB11 '不设')" in res.output


def test_rows_without_a_positive_rw_or_standard_are_listed_not_checked(tmp_path):
    # a published rate 100: AA11 is checked (1 x 100 = 100); BB11 (RW 0) and CC11 (standard
    # 0) are in the check's frame with a null verdict, not mismatches of 50 and 200
    c = read_city_table(
        _table(tmp_path, "DRG编码,RW,费率,支付标准\nAA11,1,100,100\nBB11,0,100,50\nCC11,2,100,0\n")
    )
    s = c.standards
    # the columns and types of the empty check (a table without standards), header included;
    # the coefficient is a null float where the table publishes none
    assert s.schema == read_city_table(_table(tmp_path, "DRG编码,RW\nAA11,1\n")).standards.schema
    assert "header" in s.columns and s.schema["coefficient"] == pl.Float64
    assert s.select("row", "drg", "header", "rate_source", "expected", "mismatch").rows() == [
        (0, "AA11", "支付标准", "published", 100.0, False),
        (1, "BB11", "支付标准", "published", 0.0, None),
        (2, "CC11", "支付标准", "published", 200.0, None),
    ]
    assert (c.counts()["checked"], c.mismatches.height) == (1, 0)


def test_the_rate_of_the_standard_s_own_area(tmp_path):
    # two areas' rates: 玉林's standard is checked against 玉林's rate (100), not the first
    # rate column's (桂林, 200)
    c = read_city_table(
        _table(tmp_path, "DRG编码,RW,费率（桂林）,费率（玉林）,支付标准（玉林）\nAA11,1,200,100,100\n")
    )
    assert c.standards.select("column", "rate", "expected", "mismatch").rows() == [
        ("standard_玉林", 100.0, 100.0, False)
    ]


def test_implied_rate_from_ordinary_rows_only(tmp_path):
    # three ordinary rows at 100 a weight; four base groups at 70 (one standard at every
    # level) do not vote for the implied rate, though they outnumber the ordinary rows
    c = read_city_table(
        _table(
            tmp_path,
            "DRG编码,RW,支付标准,基础病组\nA1,1.00,100,\nB1,2.00,200,\nC1,3.00,300,\n"
            "D1,1.00,70,是\nE1,2.00,140,是\nF1,3.00,210,是\nG1,4.00,280,是\n",
        )
    )
    assert c.implied_rates == {"standard": 100.0}
    # the base groups are paid 70 a weight: mismatches at the implied rate (RW ± 0.005)
    assert c.standards["mismatch"].to_list() == [False] * 3 + [True] * 4


def test_implied_rate_allows_the_rounding_of_rw_scaled_by_the_coefficient(tmp_path):
    # coefficient 2, RW with 1 decimal (±0.05), standards in whole yuan (±0.5); the rates each
    # row allows, [S - 0.5, S + 0.5] / (2 RW ± 0.05 x 2):
    #   RW 1.0, S 208: [207.5 / 2.1, 208.5 / 1.9] = [98.81, 109.74]
    #   RW 2.0, S 392: [391.5 / 4.1, 392.5 / 3.9] = [95.49, 100.64]
    #   RW 3.0, S 600: [599.5 / 6.1, 600.5 / 5.9] = [98.28, 101.78]
    # all three meet in [98.81, 100.64], where the median of S / (2 RW) (104, 98, 100) lies: 100.
    # (RW's rounding divided by the coefficient, ±0.025 each, leaves no rate that all three
    # allow, and the middle of the first row's stretch, 98.0, would be taken.)
    c = read_city_table(
        _table(
            tmp_path,
            "DRG编码,RW,等级系数（三级）,支付标准（三级）\nA1,1.0,2,208\nB1,2.0,2,392\nC1,3.0,2,600\n",
        )
    )
    assert c.implied_rates == {"standard_3": 100.0}
    assert c.standards["mismatch"].to_list() == [False, False, False]


def test_a_same_rate_row_may_carry_another_level_s_product(tmp_path):
    # rate 1,000; 三级 × 1.2, 二级 × 0.9.  The base group AA11 is paid the 二级 standard, 900,
    # at both levels: 900 is 1.00 × 1,000 × 0.9, the other level's product with its own
    # coefficient (the bare rate would give 1,000, the 三级 product 1,200).  BB11 is ordinary.
    c = read_city_table(
        _table(
            tmp_path,
            "DRG编码,RW,费率,等级系数（三级）,等级系数（二级）,支付标准（三级）,支付标准（二级）,基础病组\n"
            "AA11,1.00,1000,1.2,0.9,900,900,是\nBB11,2.00,1000,1.2,0.9,2400,1800,\n",
        )
    )
    assert c.standards.select("drg", "column", "expected", "mismatch").rows() == [
        ("AA11", "standard_3", 900.0, False),
        ("BB11", "standard_3", 2400.0, False),
        ("AA11", "standard_2", 900.0, False),
        ("BB11", "standard_2", 1800.0, False),
    ]


def test_a_tsv_file_s_encoding_and_the_encoding_given(tmp_path):
    p = tmp_path / "city.tsv"
    p.write_text("DRG编码\tRW\nAA11\t1.5\n", encoding="utf-8")
    c = read_city_table(p)
    assert (c.encoding, c.table["rw"].to_list()) == ("utf_8", [1.5])
    # the encoding given is the one read with, not the detected one: UTF-8 read as GBK gives
    # a header of mojibake
    p = _table(tmp_path, "DRG编码,RW\nAA11,1\n")
    assert read_city_table(p).encoding == "utf_8"
    with pytest.raises(InputError, match=r"city\.csv: not a DRG table: .* among DRG缂栫爜, RW;"):
        read_city_table(p, encoding="gbk")


def test_the_pool_s_own_rate_first_and_names_and_a_standard_of_one_yuan(tmp_path):
    # a rate for every pool (100) and one for 职工 (200): the 职工 standard takes its pool's;
    # the DRG names are read; a standard of 1 yuan (RW 0.005 x 200) is
    # checked like any other above 0
    c = read_city_table(
        _table(
            tmp_path,
            "DRG编码,DRG名称,RW,费率,费率（职工）,支付标准（职工）\n"
            "AA11,阑尾切除术,1.000,100,200,200\nBB11,胆囊切除术,0.005,100,200,1\n",
        )
    )
    assert c.table["name"].to_list() == ["阑尾切除术", "胆囊切除术"]
    assert c.standards.select("drg", "rate", "expected", "mismatch").rows() == [
        ("AA11", 200.0, 200.0, False),
        ("BB11", 200.0, 1.0, False),
    ]
    # two name columns are one too many, as two RW columns are
    with pytest.raises(InputError) as info:
        read_city_table(_table(tmp_path, "DRG编码,DRG名称,病组名称,RW\nAA11,甲,乙,1\n"))
    assert str(info.value).endswith(": columns 'DRG名称' and '病组名称' both read as name; keep one")


def test_category_words_in_latin_letters_match_in_any_case(tmp_path, monkeypatch):
    # the alias table's category words are Chinese today; a Latin one (data, not code) is
    # matched as the headers and flag words are, after NFKC and upper-casing
    import casemix.payment.city_tables as ct

    terms, values = ct._aliases()
    latin = values.model_copy(update={"base_group": [*values.base_group, "Basic"]})
    monkeypatch.setattr(ct, "_aliases", lambda: (terms, latin))
    c = read_city_table(
        _table(tmp_path, "DRG编码,RW,病组类型\nAA11,1,basic\nBB11,1,ＢＡＳＩＣ\nCC11,1,other\n")
    )
    assert c.table["base_group"].to_list() == [True, True, False]
    assert c.problems == {"unreadable_values": {"病组类型": ["other"]}}


def test_not_a_drg_table_and_two_rw_columns_are_named(tmp_path):
    p = _table(tmp_path, "DRG编码,名称,支付\nAA11,甲,3\n")
    with pytest.raises(InputError) as info:
        read_city_table(p)
    assert str(info.value) == (
        f"{p}: not a DRG table: no DRG code column or no RW/支付标准 column recognised among "
        "DRG编码, 名称, 支付; add the wording to casemix/data/city_table_headers.toml"
    )
    # an RW but no DRG code column
    with pytest.raises(InputError, match=r"not a DRG table: .* among 名称, RW;"):
        read_city_table(_table(tmp_path, "名称,RW\n甲,1\n"))
    with pytest.raises(InputError) as info:
        read_city_table(_table(tmp_path, "DRG编码,RW,权重\nAA11,1,1\n"))
    assert str(info.value).endswith(": columns 'RW' and '权重' both read as rw; keep one")
    # two standards of one pool and level: named too (polars' duplicate-column error before)
    with pytest.raises(InputError) as info:
        read_city_table(_table(tmp_path, "DRG编码,RW,支付标准（三级）,付费标准(三级)\nAA11,1,5,5\n"))
    assert str(info.value).endswith(
        ": columns '支付标准（三级）' and '付费标准(三级)' both read as standard_3; keep one"
    )
    # two flag columns of one role are or-ed
    c = read_city_table(_table(tmp_path, "DRG编码,RW,基础病组,基础组\nAA11,1,是,\nBB11,1,,\nCC11,1,,是\n"))
    assert c.table["base_group"].to_list() == [True, False, True]


def test_implied_rate_from_three_rows_ties_blank_rw_and_the_weights_columns(tmp_path):
    # three ordinary rows are enough for an implied rate: 100 / 1 = 200 / 2 = 300 / 3 = 100
    c = read_city_table(_table(tmp_path, "DRG编码,RW,支付标准\nA1,1.0,100\nB1,2.0,200\nC1,3.0,300\n"))
    assert c.implied_rates == {"standard": 100.0}
    assert c.standards["rate_source"].to_list() == ["implied"] * 3
    assert c.standards["mismatch"].to_list() == [False] * 3
    # a base group's standard 11,000 lies as far from 1 x 10,000 x 1.2 as from the bare rate
    # 1 x 10,000: the level's product stays the expected one (the other must be nearer)
    c = read_city_table(
        _table(
            tmp_path,
            "DRG编码,RW,费率（职工）,等级系数（三级）,支付标准（三级职工）,例均费用,基础病组\n"
            "AA11,1.0000,10000,1.2,11000.00,9000,是\nBB11,  ,10000,1.2,,,\nCC11,2.0000,10000,1.2,24000.00,20000,\n",
        )
    )
    s = c.standards
    assert s.select("drg", "expected", "difference", "mismatch").rows() == [
        ("AA11", 12000.0, -1000.0, True),
        ("CC11", 24000.0, 0.0, False),
    ]
    # an RW cell of blanks is no RW and no note
    assert c.table["rw"].to_list() == [1.0, None, 2.0] and c.table["rw_note"].to_list() == [None] * 3
    # the published rate, coefficient, standard and mean cost columns go to the weights
    assert c.to_weights().table.columns[-4:] == ["rate_职工", "coefficient_3", "standard_职工_3", "mean_cost"]


def test_a_table_without_rw_and_a_sheet_of_a_workbook(tmp_path):
    c = read_city_table(_table(tmp_path, "DRG编码,支付标准\nAA11,100\nBB11,abc\n"))
    assert c.table.schema["rw"] == pl.Float64 and c.table.schema["rw_note"] == pl.String
    assert c.table["rw_note"].to_list() == [None, None] and c.table["standard"].to_list() == [100.0, None]
    assert c.counts()["rw"] == 0 and c.to_weights().table.height == 0
    # the sheet asked for, not the first
    import xlsxwriter

    path = tmp_path / "city.xlsx"
    with xlsxwriter.Workbook(str(path)) as book:
        book.add_worksheet("说明").write_row(0, 0, ["说明", "无"])
        sheet = book.add_worksheet("病组")
        for i, row in enumerate([["DRG编码", "RW"], ["AA11", 1.5], ["BB11", 0.5]]):
            sheet.write_row(i, 0, row)
    c = read_city_table(path, sheet="病组")
    assert c.encoding is None and c.table.select("drg", "rw").rows() == [("AA11", 1.5), ("BB11", 0.5)]
