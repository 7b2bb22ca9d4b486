"""The HTML report renders without a display and references images that exist."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from casemix.monitor import FLAGS
from casemix.report import build_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def small_region(hospitals=("H1", "H2", "H3", "H4", "H5", "H6"), n=600, seed=7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    drgs = np.array(["AA11", "BB13", "CC15", "DD19", "EE21", "0000"])
    base = np.array([30_000.0, 8_000, 4_000, 12_000, 2_000, 500])
    d = rng.choice(len(drgs), size=n, p=[0.1, 0.25, 0.25, 0.15, 0.2, 0.05])
    h = rng.choice(len(hospitals), size=n)
    cost = base[d] * rng.lognormal(0, 0.35, n) * (1 + 0.1 * h)
    return pl.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(n)],
            "hospital_id": np.array(hospitals, dtype=object)[h].tolist(),
            "hospital_level": np.where(h % 2 == 0, "3", "2").tolist(),
            "drg": drgs[d].tolist(),
            "severity": rng.choice(["none", "CC", "MCC"], size=n).tolist(),
            "total_cost": np.round(cost, 2),
            "los": rng.integers(1, 20, n).astype(float),
            "discharge": rng.choice([1.0, 2.0, 5.0], size=n, p=[0.93, 0.04, 0.03]),
        }
    )


WEIGHTS = pl.DataFrame({"drg": ["AA11", "BB13", "CC15", "DD19", "EE21"], "rw": [3.0, 0.8, 0.4, 1.2, 0.2]})


def fake_settlement(cases: pl.DataFrame) -> pl.DataFrame:
    """The per-hospital shape of casemix.settle (money in fen)."""
    t = cases.group_by("hospital_id").agg(cost=pl.col("total_cost").sum()).sort("hospital_id")
    return t.select(
        "hospital_id",
        payment_fen=(pl.col("cost") * 95).round(0).cast(pl.Int64),
        cost_fen=(pl.col("cost") * 100).round(0).cast(pl.Int64),
    )


def check_page(index: Path) -> str:
    """Every linked PNG exists and is a PNG; every embedded image decodes to a PNG."""
    text = index.read_text(encoding="utf-8")
    linked = re.findall(r'href="([^"]+\.png)"', text)
    assert linked, "the page links no picture"
    for name in linked:
        f = index.parent / name
        assert f.is_file(), name
        assert f.read_bytes()[:8] == PNG_MAGIC
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(embedded) == len(linked)
    for data, name in zip(embedded, linked, strict=True):
        assert base64.b64decode(data) == (index.parent / name).read_bytes()
    assert not re.search(r'src="(?!data:)', text), "an image is not embedded"
    return text


def test_report_with_everything(tmp_path):
    cases = small_region()
    index = build_report(
        cases,
        WEIGHTS,
        fake_settlement(cases),
        out_dir=tmp_path / "r",
        extra_sections=[("Patient burden 患者负担", "<p id='extra'>hello</p>")],
    )
    assert index == tmp_path / "r" / "index.html"
    text = check_page(index)
    assert {"cmi_efficiency.png", "payment_cost.png", "weights.png", "top_drgs.png"} <= set(
        re.findall(r'href="([^"]+\.png)"', text)
    )
    assert "Patient burden 患者负担" in text and "<p id='extra'>hello</p>" in text
    assert text.index("Monitoring flags") < text.index("Patient burden")
    assert "Monitoring flags" in text and "high_cost_outlier" in text
    # the hospitals × flags overview: one row per hospital
    matrix = text[
        text.index("Overview 总览</h3>") : text.index("Flags raised")
        if "Flags raised" in text
        else text.index("No hospital is flagged")
    ]
    assert matrix.count("<tr>") == 1 + 6
    flags_csv = pl.read_csv(tmp_path / "r" / "flags.csv")
    assert flags_csv.height == 6 * len(FLAGS)
    assert pl.read_csv(tmp_path / "r" / "hospitals.csv")["hospital_id"].to_list() == [
        "H1",
        "H2",
        "H3",
        "H4",
        "H5",
        "H6",
    ]


def test_report_without_settlement_says_so(tmp_path):
    text = check_page(build_report(small_region(), WEIGHTS, out_dir=tmp_path))
    assert "No settlement was given" in text
    assert "payment_cost.png" not in text


def test_report_computes_weights_when_missing(tmp_path):
    pytest.importorskip("casemix.weights")
    check_page(build_report(small_region(), out_dir=tmp_path))


def test_text_is_escaped_and_cjk_ids_get_codes(tmp_path, monkeypatch):
    from casemix.report import _plots

    monkeypatch.setattr(_plots, "cjk_font", lambda: None)
    cases = small_region(hospitals=("市一院", "<b>x</b>", "县医院"), n=300)
    text = check_page(build_report(cases, WEIGHTS, out_dir=tmp_path))
    assert "<b>x</b>" not in text and "&lt;b&gt;x&lt;/b&gt;" in text
    # no CJK font: the scatter uses codes and the page explains them
    assert "Labels in the pictures" in text and "市一院" in text


def test_settlement_object_and_bad_settlement(tmp_path):
    from casemix.errors import InputError

    cases = small_region()

    class Settlement:  # the shape of casemix.settle.Settlement
        hospitals = fake_settlement(cases).to_pandas()

    check_page(build_report(cases.to_pandas(), WEIGHTS, Settlement(), out_dir=tmp_path / "a"))
    with pytest.raises(InputError, match="payment_fen"):
        build_report(cases, WEIGHTS, pl.DataFrame({"hospital_id": ["H1"], "x": [1]}), out_dir=tmp_path / "b")


def test_renders_without_a_display(tmp_path):
    """A fresh interpreter with no DISPLAY and an interactive MPLBACKEND still renders."""
    src = tmp_path / "cases.parquet"
    small_region().write_parquet(src)
    WEIGHTS.write_csv(tmp_path / "w.csv")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    script = textwrap.dedent(f"""
        import polars as pl
        from casemix.report import build_report
        p = build_report(pl.read_parquet({str(src)!r}), pl.read_csv({str(tmp_path / "w.csv")!r}),
                         out_dir={str(tmp_path / "out")!r})
        import sys
        assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
        print(p)
    """)
    for backend in (None, "TkAgg"):
        e = dict(env)
        e.pop("MPLBACKEND", None)
        if backend:
            e["MPLBACKEND"] = backend
        r = subprocess.run([sys.executable, "-c", script], env=e, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        check_page(Path(r.stdout.strip()))


def test_cli_report(tmp_path):
    from casemix.cli.report_cmd import report

    cases = small_region()
    cases.with_columns(pl.all().cast(pl.String)).write_csv(tmp_path / "grouped.csv")
    WEIGHTS.write_csv(tmp_path / "w.csv")
    r = CliRunner().invoke(
        report,
        [str(tmp_path / "grouped.csv"), "--weights", str(tmp_path / "w.csv"), "-o", str(tmp_path / "rep")],
    )
    assert r.exit_code == 0, r.output
    assert Path(r.output.strip()) == tmp_path / "rep" / "index.html"
    check_page(tmp_path / "rep" / "index.html")
    cases.drop("drg").write_csv(tmp_path / "ungrouped.csv")
    from casemix.cli import main

    bad = CliRunner().invoke(main, ["report", str(tmp_path / "ungrouped.csv"), "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "no 'drg' column" in bad.output


def test_cli_report_with_policy(tmp_path):
    budget = pytest.importorskip("casemix.budget")
    pytest.importorskip("casemix.settle")
    from casemix.cli.report_cmd import report

    cases = small_region()
    cases.write_parquet(tmp_path / "grouped.parquet")
    policy = budget.shipped_policy("demo")
    r = CliRunner().invoke(
        report, [str(tmp_path / "grouped.parquet"), "--policy", str(policy), "-o", str(tmp_path / "rep")]
    )
    assert r.exit_code == 0, r.output
    text = check_page(tmp_path / "rep" / "index.html")
    assert "payment_cost.png" in text


def test_degenerate_inputs(tmp_path):
    from casemix.errors import InputError

    nothing_grouped = pl.DataFrame(
        {"hospital_id": ["A", "B"], "drg": ["0000", "0000"], "total_cost": [100.0, 200.0]}
    )
    check_page(build_report(nothing_grouped, WEIGHTS, out_dir=tmp_path / "a"))
    with pytest.raises(InputError, match="total_cost"):
        build_report(nothing_grouped.drop("total_cost"), WEIGHTS, out_dir=tmp_path / "b")


def test_plots_log_no_missing_font_weight(tmp_path, caplog):
    # the bundled CJK subset has one weight; asking it for bold logged a findfont line per plot
    import logging

    with caplog.at_level(logging.WARNING, logger="matplotlib.font_manager"):
        cases = small_region()
        build_report(cases, WEIGHTS, fake_settlement(cases), out_dir=tmp_path / "r")
    assert not [r for r in caplog.records if "findfont" in r.getMessage()]
