"""The report's and the settlement's CMI and RIV: which case set each is over (issue 13 item 6).

For the same cases and weights the report showed one hospital's CMI as
0.973 and the settlement 1.02, RIV 0.796 against 0.963.  The CMIs differ
by case set — the indicators leave out cases with LOS > 60 days or cost <
5 yuan, the settlement counts every case it gave a weight — and the RIVs
by trimming (all grouped cases vs the weights' trimmed cases).  Each number
is now labelled with its set, and each equals the other computed over the
same set.
"""

from __future__ import annotations

import math
import re

import polars as pl
import pytest

from casemix.budget import Policy
from casemix.indicators import grouping_riv, hospital_indicators
from casemix.report import build_report
from casemix.settle import settle

WEIGHTS = pl.DataFrame({"drg": ["X", "Y"], "rw": [1.0, 2.0], "mean_cost": [10_000.0, 20_000.0]})


def cases() -> pl.DataFrame:
    # H1's Y stay lasts 70 days: excluded from the indicators, paid by the settlement
    return pl.DataFrame(
        {
            "case_id": ["1", "2", "3", "4", "5"],
            "hospital_id": ["H1", "H1", "H1", "H2", "H2"],
            "drg": ["X", "X", "Y", "X", "Y"],
            "total_cost": [9_000.0, 11_000.0, 30_000.0, 10_000.0, 20_000.0],
            "los": [5.0, 6.0, 70.0, 5.0, 9.0],
            "discharge": [1, 1, 1, 1, 1],
        }
    )


def test_cmi_sets_by_hand():
    s = settle(cases(), Policy(budget="80000"), weights=WEIGHTS)
    settled = dict(zip(s.hospitals["hospital_id"], s.hospitals["cmi"], strict=True))
    ind = hospital_indicators(cases(), WEIGHTS)
    report = dict(zip(ind["hospital_id"], ind["cmi"], strict=True))
    # H1: settlement (1 + 1 + 2) / 3 = 1.333; indicators (1 + 1) / 2 = 1.0 (case 3 excluded)
    assert settled["H1"] == pytest.approx(4 / 3) and report["H1"] == pytest.approx(1.0)
    # H2 has no excluded case: the same number
    assert settled["H2"] == pytest.approx(1.5) == report["H2"]
    # over the same set they agree
    same = hospital_indicators(cases(), WEIGHTS, max_los=math.inf, min_cost=0)
    assert same["cmi"].to_list() == pytest.approx([settled["H1"], settled["H2"]])


def test_report_labels_each_number(tmp_path):
    weights = pytest.importorskip("casemix.weights").compute_weights(
        pl.concat([cases()] * 3).with_columns(
            total_cost=pl.col("total_cost") * pl.Series([1.0] * 5 + [1.1] * 5 + [0.8] * 5)
        )
    )
    s = settle(cases(), Policy(budget="80000"), weights=weights)
    index = build_report(cases(), weights=weights, settlement=s, out_dir=tmp_path)
    page = index.read_text(encoding="utf-8")
    assert "CMI (LOS ≤ 60 d, cost ≥ 5 yuan)" in page
    assert "CMI in the settlement (all cases with a weight)" in page
    rw = dict(zip(weights.table["drg"], weights.table["rw"], strict=True))
    hospitals = pl.read_csv(tmp_path / "hospitals.csv")
    h1 = hospitals.filter(pl.col("hospital_id") == "H1")["cmi"].item()
    assert h1 == pytest.approx(rw["X"])  # cases 1 and 2; case 3 (70 days) left out
    settled = s.hospitals.filter(pl.col("hospital_id") == "H1")["cmi"].item()
    assert settled == pytest.approx((2 * rw["X"] + rw["Y"]) / 3)
    assert re.search(rf"<td[^>]*>{settled:.3f}</td>", page)
    riv = grouping_riv(cases())
    trimmed = weights.quality["riv"]
    assert f"{riv:.3f}</b>RIV (cost, all grouped cases)" in page
    assert re.search(
        re.escape(f"{trimmed:.3f}</b>RIV (cost, the weights") + ".{0,6}" + re.escape(" trimmed cases)"), page
    )
