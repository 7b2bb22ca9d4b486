"""Building DIP catalogs from history: the worked example, thresholds, and grouping its own history."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemix import dip
from casemix.dip import synth
from casemix.dip.build import case_keys, coverage_threshold, related_gains

SCHEMA = {
    "pdx": pl.String,
    "sdx": pl.List(pl.String),
    "pproc": pl.String,
    "oproc": pl.List(pl.String),
    "total_cost": pl.Float64,
}


def cases(rows):
    """(pdx, pproc, oproc, cost) rows → canonical frame."""
    return pl.DataFrame(
        {
            "pdx": [r[0] for r in rows],
            "sdx": [[] for _ in rows],
            "pproc": [r[1] for r in rows],
            "oproc": [r[2] for r in rows],
            "total_cost": [float(r[3]) for r in rows],
        },
        schema=SCHEMA,
    )


def worked_example(n=20):
    """DIP 技术规范 worked example: base 28,033; +99.0400 28,849; +54.5100 44,003 (means)."""
    rows = [("K35.300", "47.0100", [], 28_033 + d) for d in range(-n // 2, n - n // 2)]
    rows += [("K35.301", "47.0100", ["99.0400"], 28_849 + d) for d in range(-n // 2, n - n // 2)]
    rows += [("K35.300", "47.0100", ["54.5100"], 44_003 + d) for d in range(-n // 2, n - n // 2)]
    return cases(rows)


def test_related_procedure_worked_example():
    h = worked_example()
    gains = related_gains(h, threshold=15)
    by = {tuple(r["others"]): r for r in gains.iter_rows(named=True)}
    assert by[("99.0400",)]["base_mean"] == 28_033 - 0.5
    # the example's percentages (+2.91%, +56.97%), computed by related_gains from the cases
    # (each set's mean is 0.5 below the example's, as is the base's)
    assert round(by[("99.0400",)]["gain"] * 100, 2) == 2.91
    assert round(by[("54.5100",)]["gain"] * 100, 2) == 56.97
    assert by[("54.5100",)]["mean_cost"] == 44_003 - 0.5
    cat = dip.build_catalog(h, threshold=15)
    core = [g for g in cat.groups if g.type != "comprehensive"]
    assert [(g.dx_key.text, g.main, g.related) for g in core] == [
        ("K35.3", ("47.0100",), ()),
        ("K35.3", ("47.0100",), ("54.5100",)),
    ]
    # the +2.91% cases stay in the base group, the +56.97% cases split
    out = dip.group(h, cat)
    base_id, split_id = core[0].group, core[1].group
    assert out["dip_group"].to_list() == [base_id] * 40 + [split_id] * 20
    assert core[0].n == 40 and core[1].n == 20
    assert core[0].mean_cost == pytest.approx((28_033 - 0.5 + 28_849 - 0.5) / 2)
    assert core[1].mean_cost == pytest.approx(44_003 - 0.5)
    # score = m_i / M x 1000 with M the mean of all cases
    big_m = h["total_cost"].mean()
    assert core[1].score == pytest.approx((44_003 - 0.5) / big_m * 1000, abs=1e-4)


def test_gain_threshold_is_a_parameter():
    h = worked_example()
    cat = dip.build_catalog(h, threshold=15, related_gain=0.02)
    assert sorted(g.related for g in cat.groups if g.type == "core") == [(), ("54.5100",), ("99.0400",)]
    cat = dip.build_catalog(h, threshold=15, related_gain=0.60)
    assert [g.related for g in cat.groups if g.type == "core"] == [()]


def test_small_keys_fold_into_comprehensive_groups():
    rows = [("K35.300", "47.0100", [], 20_000)] * 20
    rows += [("K35.900", "47.0100", ["45.2300"], 9_000)] * 3  # rare: main 相关手术
    rows += [("K35.900", "45.2300", [], 7_000)] * 2  # rare: 诊断性操作
    rows += [("R50.900", None, [], 100)]  # may not be principal
    h = cases(rows)
    cat = dip.build_catalog(h, threshold=15)
    comp = {(g.dx_key.text, g.attribute): g for g in cat.groups if g.type == "comprehensive"}
    assert set(comp) == {("K35", 3), ("K35", 1)}
    assert comp[("K35", 3)].n == 3 and comp[("K35", 1)].n == 2
    out = dip.group(h, cat)
    assert out["dip_group"].to_list()[:20] == ["C0001"] * 20
    assert out["dip_group"].to_list()[20:25] == ["K35Z3"] * 3 + ["K35Z1"] * 2
    assert out["status"][25] == "ungrouped"


def test_coverage_threshold():
    assert coverage_threshold([50, 30, 15, 5], 0.95) == 15
    assert coverage_threshold([50, 30, 15, 5], 0.80) == 30
    assert coverage_threshold([50, 30, 15, 5], 1.0) == 5
    h = synth.history(2_000, years=(2023,), seed=5)
    cat = dip.build_catalog(h, coverage=0.95)
    assert "coverage 95%" in cat.source


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=30), st.floats(0.05, 1.0))
def test_coverage_threshold_is_the_largest_that_covers(counts, coverage):
    t = coverage_threshold(counts, coverage)
    total = sum(counts)
    assert sum(n for n in counts if n >= t) >= coverage * total - 1e-9
    assert sum(n for n in counts if n > t) < coverage * total - 1e-9 or t == max(counts)


def test_primary_keys_of_the_base_catalog_stay_primary():
    h = synth.history(1_500, years=(2023,), seed=2)
    cat = dip.build_catalog(h, threshold=15)
    types = {(g.dx_key.text, g.main): g.type for g in cat.groups if g.type != "comprehensive"}
    assert types[("I10.x", ())] == "primary"
    assert types[("K35.3", ("47.0100",))] == "core"


def test_built_catalog_round_trips_through_a_folder(tmp_path):
    h = synth.history(1_500, years=(2022, 2023), seed=4)
    cat = dip.build_catalog(h, threshold=20)
    back = dip.load_catalog(dip.write_catalog(cat, tmp_path / "built"))
    assert [(g.group, g.score, g.n, g.mean_cost, g.cv) for g in back.groups] == [
        (g.group, g.score, g.n, g.mean_cost, g.cv) for g in cat.groups
    ]
    assert dip.group(h, back)["dip_group"].equals(dip.group(h, cat)["dip_group"])


DX = [
    "K35.300",
    "K35.301",
    "K35.800",
    "K80.100",
    "I10.x00",
    "J18.900",
    "Z51.100",
    "R50.900",
    "K35",
    "A16.200",
]
PX = ["47.0100", "47.0901", "54.5100", "99.0400", "88.5500", "99.1800", "36.0700", "X1"]


@st.composite
def histories(draw):
    n = draw(st.integers(5, 120))
    rows = []
    for _ in range(n):
        procs = draw(st.lists(st.sampled_from(PX), max_size=3))
        rows.append(
            (draw(st.sampled_from(DX)), procs[0] if procs else None, procs[1:], draw(st.floats(100, 50_000)))
        )
    h = cases(rows)
    return h.with_columns(
        sdx=pl.Series(
            [draw(st.lists(st.sampled_from(DX), max_size=2)) for _ in range(n)], dtype=pl.List(pl.String)
        )
    )


@settings(max_examples=20, deadline=None)
@given(histories(), st.integers(1, 12), st.sampled_from([0.0, 0.1, 0.5]))
def test_core_keys_group_into_their_own_groups(h, threshold, gain):
    cat = dip.build_catalog(h, threshold=threshold, related_gain=gain)
    keys = case_keys(h, dip.load_catalog("dip-demo"))
    counts = keys.group_by("key", "main").len()
    core = {(k, m) for k, m, n in counts.iter_rows() if k is not None and n >= threshold}
    out = dip.group(h, cat)
    for (key, main), gid, status in zip(
        keys.select("key", "main").iter_rows(), out["dip_group"], out["status"], strict=True
    ):
        # every case is in exactly one group or has a reason; only ungroupable diagnoses fail
        assert (gid is None) == (status == "ungrouped") == (key is None)
        if (key, main) in core:
            g = cat.groups[cat.index[gid]]
            assert g.type in ("core", "primary")
            assert g.dx_key.text == key
            assert g.main == ((main,) if main else ())


def test_subtype_coefficients_kept_where_they_cut_cv():
    # group K35.3 + 47.0100: the old cost three times the young; I10.x: age does not matter
    rows = [("K35.300", "47.0100", [], c) for c in (10_000, 11_000, 9_000, 10_000) * 5]
    rows += [("K35.300", "47.0100", [], c) for c in (30_000, 31_000, 29_000, 30_000) * 5]
    rows += [("I10.x00", None, [], c) for c in (4_000, 6_000) * 20]
    h = cases(rows).with_columns(age=pl.Series([40.0] * 20 + [70.0] * 20 + [40.0, 70.0, 70.0, 40.0] * 10))
    cat = dip.build_catalog(h, threshold=15)
    k35 = next(g.group for g in cat.groups if g.dx_key.text == "K35.3")
    # 18-64 is the reference band: no coefficient is written for it (DIP 3.0 draft §5.2 二)
    assert (k35, "age", "18-64") not in cat.subtypes
    assert cat.subtypes[(k35, "age", "65+")] == pytest.approx(1.5, abs=0.01)
    assert not any(g != k35 for g, _, _ in cat.subtypes)
    # settlement applies them: an old patient's case scores 1.5 x the group score
    from casemix.dip.settle import case_scores

    out = case_scores(dip.group(h, cat), catalog=cat)
    assert out["dip_subtype_coefficient"][0] == 1.0  # an ordinary adult
    assert out["dip_subtype_coefficient"][20] == cat.subtypes[(k35, "age", "65+")]
    assert out["dip_subtype_coefficient"][40] == 1.0
    # the high-cost rule compares a sub-typed case with its sub-type's mean
    assert out["dip_ref_cost"][20] == pytest.approx(k35_mean(cat, k35) * 1.5, abs=200)
    assert out["dip_ref_cost"][0] == pytest.approx(k35_mean(cat, k35))
    # adults against the whole group's mean (20,000): 9,000 < 50% -> very-low-cost,
    # scored score x 9,000 / 20,000 (no hospital coefficient here)
    classes = out["dip_cost_class"].to_list()[:40]
    assert [i for i, c in enumerate(classes) if c == "low"] == [2, 6, 10, 14, 18]
    s = out["dip_base_score"][2]
    assert out["dip_case_score"][2] == pytest.approx(s * 9_000 / k35_mean(cat, k35))
    assert set(classes[20:]) == {"normal"}


def k35_mean(cat, gid):
    return cat.groups[cat.index[gid]].mean_cost


def test_build_from_a_raw_csv_layout(tmp_path):
    h = worked_example()
    raw = h.select(
        pl.col("pdx").alias("主要诊断编码"),
        pl.col("pproc").alias("主要手术操作编码"),
        pl.col("oproc").list.join("|").alias("其他手术操作编码"),
        pl.col("total_cost").cast(pl.String).alias("总费用"),
    )
    path = tmp_path / "history.csv"
    raw.write_csv(path)
    from_csv = dip.build_catalog(path, threshold=15)
    direct = dip.build_catalog(h, threshold=15)
    assert [(g.dx_key.text, g.main, g.related, g.n) for g in from_csv.groups] == [
        (g.dx_key.text, g.main, g.related, g.n) for g in direct.groups
    ]
