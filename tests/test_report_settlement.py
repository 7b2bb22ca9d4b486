"""The report's settlement parts: what it is about, names, P&L by DRG, case lists, what-if."""

from __future__ import annotations

import re
from decimal import Decimal

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from casemix.budget import Policy, shipped_policy
from casemix.report import build_report
from casemix.settle import settle
from test_report import check_page, small_region

# the test region's codes recoded to CHS-DRG 1.1 codes (names from grouping_tables/chs-drg-1.1)
RECODE = {"AA11": "AA19", "BB13": "EC11", "CC15": "EC15", "DD19": "EB19", "EE21": "ED13"}
NAMES = {"AA19": "心脏移植", "EB19": "肺大手术", "EC15": "纵隔、气管、胸壁大手术，不伴并发症或合并症"}
WEIGHTS = pl.DataFrame({"drg": ["AA19", "EC11", "EC15", "EB19", "ED13"], "rw": [3.0, 0.8, 0.4, 1.2, 0.2]})


def national_region() -> pl.DataFrame:
    return small_region().with_columns(pl.col("drg").replace(RECODE))


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep")
    cases = national_region()
    pfile = shipped_policy("demo")
    a = settle(cases, Policy.from_toml(pfile), weights=WEIGHTS)
    b = settle(
        cases, Policy.from_toml(pfile).replace(name="double", budget=Decimal(200_000_000)), weights=WEIGHTS
    )
    index = build_report(
        cases, WEIGHTS, a, out_dir=out, policy_file=pfile, compare=b, period="2025-01-01 – 2025-12-31"
    )
    return index, check_page(index), a, b


def test_about_states_scheme_policy_budget_point_value_period_counts(made):
    index, html, a, b = made
    about = text_of(html[html.index("About this report") : html.index("Overview 概览")])
    assert "chs-drg-1.1" in about and "CHS-DRG" in about
    import hashlib

    digest = hashlib.sha256(shipped_policy("demo").read_bytes()).hexdigest()[:12]
    assert f"file demo.toml, sha256 {digest}" in about
    assert "100,000,000.00 yuan" in about and "200,000,000.00 yuan" in about
    pv = a.region["pv_final"][0] if isinstance(a.region, pl.DataFrame) else None
    assert f"{pv:.4f} yuan/point" in about
    assert "2025-01-01 – 2025-12-31" in about
    assert "Cases in the input 输入病例 600" in about and "Cases settled 结算病例 600" in about
    n_high = int((a.cases["rule"].cast(pl.String) == "high_cost").sum())
    assert f"settled by rule high_cost {n_high}" in about
    # exclusions: the settlement's notes are repeated
    assert "readmission rule skipped" in about


def test_chinese_names_next_to_codes(made):
    _, html, _, _ = made
    drg_section = html[html.index("DRG statistics") :]
    for code, name in NAMES.items():
        assert re.search(rf">{code}</td><td[^>]*>{re.escape(name)}</td>", drg_section), code
    assert "先期分组疾病及相关操作" in drg_section  # MDCA's name


def test_pnl_by_drg_adds_up_to_each_hospital_surplus(made):
    index, html, a, _ = made
    pnl = pl.read_csv(index.parent / "pnl_by_drg.csv")
    per_h = pnl.group_by("hospital_id").agg(pl.col("profit_fen").sum()).sort("hospital_id")
    h = a.hospitals.sort("hospital_id")
    assert per_h["profit_fen"].to_list() == h["surplus_fen"].to_list()
    # one cell by hand: payment = Σ settled_fen, cost = Σ cost in fen of that hospital's DRG cases
    cs = a.cases.filter((pl.col("hospital_id") == "H2") & (pl.col("drg") == "EB19"))
    row = pnl.filter((pl.col("hospital_id") == "H2") & (pl.col("drg") == "EB19")).row(0, named=True)
    assert row["cases"] == cs.height
    assert row["payment_fen"] == int(cs["settled_fen"].sum())
    assert row["cost_fen"] == sum(round(float(x) * 100) for x in cs["total_cost"])
    assert row["profit_fen"] == row["payment_fen"] - row["cost_fen"]
    assert row["drg_name"] == "肺大手术" and row["mdc"] == "MDCE"
    assert f"{row['profit_fen'] / 100:.2f}" == f"{row['profit_yuan']:.2f}"
    assert "Profit and loss by DRG" in html
    assert pl.read_excel(index.parent / "pnl_by_drg.xlsx").height == pnl.height


def test_case_lists_beside_the_page(made):
    index, html, a, _ = made
    rules = a.cases["rule"].cast(pl.String)
    expected = {
        "outlier_cases": int(rules.is_in(["high_cost", "low_cost", "short_stay"]).sum()),
        "special_cases": int((rules == "special").sum()),
        "ungroupable_cases": int(rules.is_in(["ungroupable", "no_weight"]).sum()),
        "readmission_cases": int(a.cases["readmission"].sum()),
    }
    assert expected["outlier_cases"] > 0 and expected["ungroupable_cases"] > 0
    for name, n in expected.items():
        csv = index.parent / f"{name}.csv"
        assert csv.read_bytes()[:3] == b"\xef\xbb\xbf"  # BOM for Excel
        t = pl.read_csv(csv, infer_schema_length=0) if n else pl.read_csv(csv)
        assert t.height == n, name
        assert pl.read_excel(index.parent / f"{name}.xlsx").height == n if n else True
        assert f'href="{name}.csv"' in html
    out = pl.read_csv(index.parent / "outlier_cases.csv")
    ids = set(a.cases.filter(rules.is_in(["high_cost", "low_cost", "short_stay"]))["case_id"].to_list())
    assert set(out["case_id"].to_list()) == ids


def test_what_if_is_b_minus_a(made):
    index, html, a, b = made
    wi = pl.read_csv(index.parent / "what_if.csv").sort("hospital_id")
    ha, hb = a.hospitals.sort("hospital_id"), b.hospitals.sort("hospital_id")
    assert wi["diff_fen"].to_list() == (hb["settled_fen"] - ha["settled_fen"]).to_list()
    assert "What-if: policy B against A" in html and "double" in html


def test_no_scheme_no_names(tmp_path):
    cases = national_region()
    html = check_page(build_report(cases, WEIGHTS, out_dir=tmp_path, scheme=None))
    assert "肺大手术" not in html and "not given (no DRG names)" in html


def test_unknown_codes_are_named_in_the_notes(tmp_path):
    html = check_page(build_report(small_region(), out_dir=tmp_path))
    assert "are not in the scheme" in html and "AA11" in html


def test_cli_compare(tmp_path):
    from casemix.cli import main

    national_region().write_parquet(tmp_path / "g.parquet")
    WEIGHTS.write_csv(tmp_path / "w.csv")
    pfile = shipped_policy("demo")
    b = tmp_path / "b.toml"
    b.write_text(pfile.read_text(encoding="utf-8").replace("total_yuan", "total_yuan", 1), encoding="utf-8")
    r = CliRunner().invoke(
        main,
        [
            "report",
            str(tmp_path / "g.parquet"),
            "--weights",
            str(tmp_path / "w.csv"),
            "--policy",
            str(pfile),
            "--compare",
            str(b),
            "--period",
            "2025",
            "-o",
            str(tmp_path / "rep"),
        ],
    )
    assert r.exit_code == 0, r.output
    html = check_page(tmp_path / "rep" / "index.html")
    assert "file b.toml" in html and "What-if" in html
    wi = pl.read_csv(tmp_path / "rep" / "what_if.csv")
    assert wi["diff_fen"].to_list() == [0] * wi.height  # the same policy twice: no change
    bad = CliRunner().invoke(
        main, ["report", str(tmp_path / "g.parquet"), "--compare", str(b), "-o", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2 and "--compare needs --policy" in bad.output


def test_bundled_cjk_font_draws_every_chinese_label(tmp_path):
    """Chinese hospital names, DRG names and chart labels: matplotlib reports no missing glyph."""
    import warnings

    from casemix.report import _plots

    font = _plots.cjk_font()
    assert font == "Droid Sans Fallback"
    from matplotlib import font_manager

    assert any(f.fname.endswith(_plots.BUNDLED_FONT) for f in font_manager.fontManager.ttflist)
    cases = national_region().with_columns(
        pl.col("hospital_id").replace({"H1": "市第一人民医院", "H2": "县中医院", "H3": "妇幼保健院"})
    )
    a = settle(cases, Policy.from_toml(shipped_policy("demo")), weights=WEIGHTS)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        html = check_page(build_report(cases, WEIGHTS, a, out_dir=tmp_path))
    missing = [
        str(w.message) for w in seen if "missing from font" in str(w.message) or "Glyph" in str(w.message)
    ]
    assert not missing, missing
    assert "Labels in the pictures" not in html  # no codes needed: the names are drawn


def test_a_missing_glyph_is_caught(tmp_path):
    """The check above can fail: without the CJK font a Chinese label warns."""
    import warnings

    from casemix.report import _plots

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _plots.png_bytes(
            _plots.top_drgs(["EB19 肺大手术"], np.array([1.0]), np.array([1]), np.array([0.5]), None),
            "Droid Sans Fallback",
        )
    assert any("missing from font" in str(w.message) for w in seen)
