"""Readmission pairing (casemix.readmission), shared by settlement and monitoring.

Hand-built stays: window edges (gap 0, ``days``, ``days + 1``), overlapping
stays, returns to another hospital, DRG vs ADRG matching and the tumour
radio-/chemotherapy exemptions; then the same pairs through ``settle`` with a
penalty of 0.7 (so penalising the wrong stay of a pair would show).
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemix.budget import Policy, Readmission
from casemix.errors import InputError
from casemix.readmission import EXEMPT_ADRG, pair_stays
from casemix.settle import settle

D = dt.date


def stays() -> pl.DataFrame:
    rows = [
        # case, hospital, patient, drg, adrg, pdx, admission, discharge
        ("R1", "H1", "P1", "A1", "A1x", "K35.800", D(2024, 3, 1), D(2024, 3, 5)),
        ("R2", "H2", "P1", "A1", "A1x", "K35.800", D(2024, 3, 10), D(2024, 3, 12)),  # 5 d, H2
        ("R3", "H2", "P2", "A1", "A1x", "K35.800", D(2024, 3, 1), D(2024, 3, 3)),
        ("R4", "H2", "P2", "A1", "A1x", "K35.800", D(2024, 3, 18), D(2024, 3, 20)),  # 15 d
        ("R5", "H1", "P3", "A1", "A1x", "K35.800", D(2024, 3, 1), D(2024, 3, 2)),
        ("R6", "H1", "P3", "A1", "A1x", "K35.800", D(2024, 3, 18), D(2024, 3, 20)),  # 16 d
        ("R7", "H1", "P4", "A1", "A1x", "K35.800", D(2024, 4, 1), D(2024, 4, 1)),
        ("R8", "H1", "P4", "A1", "A1x", "K35.800", D(2024, 4, 1), D(2024, 4, 5)),  # 0 d
        ("R9", "H2", "P5", "A1", "A1x", "Z51.100", D(2024, 5, 1), D(2024, 5, 3)),  # chemo
        ("R10", "H2", "P5", "A1", "A1x", "Z51.100", D(2024, 5, 6), D(2024, 5, 8)),
        ("R11", "H1", "P6", "A1", "ABx", "K35.800", D(2024, 6, 1), D(2024, 6, 3)),
        ("R12", "H1", "P6", "B1", "ABx", "K35.800", D(2024, 6, 5), D(2024, 6, 7)),  # other DRG
    ]
    return pl.DataFrame(
        rows,
        orient="row",
        schema=[
            "case_id",
            "hospital_id",
            "patient_id",
            "drg",
            "adrg",
            "pdx",
            "admission_date",
            "discharge_date",
        ],
    )


def ids(frame: pl.DataFrame, flags: pl.Series) -> list[str]:
    return frame.filter(flags)["case_id"].to_list()


def test_published_defaults_by_hand():
    s = stays()
    pairs = pair_stays(s, days=15)
    # R1→R2 at another hospital (5 days), R3→R4 exactly 15 days, R7→R8 the same day;
    # R5→R6 is 16 days; R9/R10 are chemotherapy (Z51.1); R11/R12 differ in DRG
    assert ids(s, pairs["earlier"]) == ["R1", "R3", "R7"]
    assert ids(s, pairs["later"]) == ["R2", "R4", "R8"]


def test_window_edges():
    s = stays()
    assert ids(s, pair_stays(s, days=16)["earlier"]) == ["R1", "R3", "R5", "R7"]
    assert ids(s, pair_stays(s, days=14)["earlier"]) == ["R1", "R7"]
    assert ids(s, pair_stays(s, days=0)["earlier"]) == ["R7"]


def test_options():
    s = stays()
    assert ids(s, pair_stays(s, days=15, same_hospital=True)["earlier"]) == ["R3", "R7"]
    assert ids(s, pair_stays(s, days=15, match="adrg")["earlier"]) == ["R1", "R3", "R7", "R11"]
    assert ids(s, pair_stays(s, days=15, exempt_diagnoses=())["earlier"]) == ["R1", "R3", "R7", "R9"]
    # exempt by ADRG: CHS-DRG 1.1 RE1 (chemotherapy), whatever the diagnosis
    chemo = s.with_columns(
        adrg=pl.when(pl.col("case_id") == "R1").then(pl.lit("RE1")).otherwise(pl.col("adrg"))
    )
    assert "RE1" in EXEMPT_ADRG
    assert ids(chemo, pair_stays(chemo, days=15)["earlier"]) == ["R3", "R7"]
    # without an adrg column the ADRG is the DRG's first 3 characters
    no_adrg = s.drop("adrg").with_columns(
        drg=pl.when(pl.col("case_id") == "R3").then(pl.lit("RC19")).otherwise(pl.col("drg"))
    )
    assert ids(no_adrg, pair_stays(no_adrg, days=15)["earlier"]) == ["R1", "R7"]
    elig = pl.Series([c != "R2" for c in s["case_id"]])
    assert ids(s, pair_stays(s, days=15, eligible=elig)["earlier"]) == ["R3", "R7"]


def test_overlap_is_not_a_readmission_and_rows_keep_order():
    s = pl.DataFrame(
        {
            "case_id": ["b", "a", "c"],
            "patient_id": ["P", "P", "P"],
            "drg": ["A1"] * 3,
            "admission_date": [D(2024, 1, 3), D(2024, 1, 1), D(2024, 1, 20)],
            "discharge_date": [D(2024, 1, 8), D(2024, 1, 5), D(2024, 1, 25)],
        }
    )
    pairs = pair_stays(s, days=15)
    # a (1/1–1/5) then b (1/3, overlapping: not a pair), then c 12 days after b
    assert pairs["earlier"].to_list() == [True, False, False]
    assert pairs["later"].to_list() == [False, False, True]


def test_bad_input_is_named():
    with pytest.raises(InputError, match="patient_id"):
        pair_stays(stays().drop("patient_id"), days=15)
    with pytest.raises(InputError, match="match"):
        pair_stays(stays(), days=15, match="hospital")
    with pytest.raises(InputError, match="admission_date"):
        pair_stays(stays().with_columns(pl.col("admission_date").cast(pl.Int64)), days=15)


# --------------------------------------------------------------------------- settlement

WEIGHTS = pl.DataFrame({"drg": ["A1", "B1"], "rw": [1.0, 2.0], "mean_cost": [10_000.0, 20_000.0]})


def settled(readmission: Readmission) -> dict[str, float]:
    cases = stays().with_columns(total_cost=pl.when(pl.col("drg") == "B1").then(20_000.0).otherwise(10_000.0))
    s = settle(cases, Policy(budget="1000000", readmission=readmission), weights=WEIGHTS)
    return dict(zip(s.cases["case_id"], s.cases["adjusted_points"], strict=True))


def test_settlement_penalises_the_earlier_stay_across_hospitals():
    pts = settled(Readmission(penalty=0.7))
    # base points 100 per RW; the earlier stay of each pair × 0.7
    assert pts == pytest.approx(
        {
            "R1": 70,
            "R2": 100,
            "R3": 70,
            "R4": 100,
            "R5": 100,
            "R6": 100,
            "R7": 70,
            "R8": 100,
            "R9": 100,
            "R10": 100,
            "R11": 100,
            "R12": 200,
        }
    )
    later = settled(Readmission(penalty=0.7, apply_to="later"))
    assert [k for k, v in later.items() if v == 70] == ["R2", "R4", "R8"]
    one = settled(Readmission(penalty=0.7, same_hospital=True))
    assert [k for k, v in one.items() if v == 70] == ["R3", "R7"]
    adrg = settled(Readmission(penalty=0.7, match="adrg"))
    assert adrg["R11"] == pytest.approx(70) and adrg["R12"] == pytest.approx(200)
    jinhua = settled(Readmission(penalty=0.7, days=10))
    assert [k for k, v in jinhua.items() if v == 70] == ["R1", "R7"]


# --------------------------------------------------------------------------- properties

random_stays = st.lists(
    st.tuples(
        st.sampled_from(["H1", "H2", "H3"]),
        st.sampled_from(["P1", "P2"]),
        st.sampled_from(["A1", "B1", "RE1x"]),
        st.integers(0, 120),
        st.integers(0, 20),
    ),
    min_size=0,
    max_size=30,
)


def frame(rows) -> pl.DataFrame:
    return pl.DataFrame(
        [
            (f"c{i}", h, p, d, D(2024, 1, 1) + dt.timedelta(days=s), D(2024, 1, 1) + dt.timedelta(days=s + n))
            for i, (h, p, d, s, n) in enumerate(rows)
        ],
        orient="row",
        schema={
            "case_id": pl.String,
            "hospital_id": pl.String,
            "patient_id": pl.String,
            "drg": pl.String,
            "admission_date": pl.Date,
            "discharge_date": pl.Date,
        },
    )


@settings(max_examples=60, deadline=None)
@given(random_stays, st.integers(0, 20))
def test_same_hospital_pairs_are_found_hospital_by_hospital(rows, days):
    # what casemix.dask.settle relies on: with same_hospital, each hospital alone
    # gives the pairs the whole region gives
    s = frame(rows)
    whole = pair_stays(s, days=days, same_hospital=True).with_columns(s["case_id"])
    parts = (
        pl.concat(
            [
                pair_stays(part, days=days, same_hospital=True).with_columns(part["case_id"])
                for part in s.partition_by("hospital_id", maintain_order=True)
            ]
        )
        if s.height
        else whole
    )
    assert whole.sort("case_id").equals(parts.sort("case_id"))


@settings(max_examples=60, deadline=None)
@given(random_stays, st.integers(0, 20), st.booleans())
def test_every_pair_is_within_the_window_and_never_exempt(rows, days, same_hospital):
    s = frame(rows)
    pairs = pair_stays(s, days=days, same_hospital=same_hospital)
    # RE1x: the CHS-DRG chemotherapy ADRG RE1 by its first 3 characters
    assert not (pairs["earlier"] | pairs["later"]).filter(s["drg"] == "RE1x").any()
    later = s.filter(pairs["later"])
    assert later.height == int(pairs["earlier"].sum())  # every pair has two ends
    for r in later.iter_rows(named=True):
        prev = s.filter(
            (pl.col("patient_id") == r["patient_id"])
            & (pl.col("drg") == r["drg"])
            & (pl.col("case_id") != r["case_id"])
            & (pl.col("discharge_date") <= r["admission_date"])
            & (pl.col("admission_date") <= r["admission_date"])
        )
        if same_hospital:
            prev = prev.filter(pl.col("hospital_id") == r["hospital_id"])
        gaps = [(r["admission_date"] - d).days for d in prev["discharge_date"]]
        assert any(0 <= g <= days for g in gaps)


def edge_stays() -> pl.DataFrame:
    """Three pairs at one hospital, one DRG (RW 1, 100 points): gaps 0, ``days`` (10), 11."""
    rows = [
        ("Q1", "P1", D(2024, 3, 1), D(2024, 3, 5)),
        ("Q2", "P1", D(2024, 3, 5), D(2024, 3, 8)),  # gap 0
        ("Q3", "P2", D(2024, 3, 1), D(2024, 3, 5)),
        ("Q4", "P2", D(2024, 3, 15), D(2024, 3, 17)),  # gap 10 = days
        ("Q5", "P3", D(2024, 3, 1), D(2024, 3, 5)),
        ("Q6", "P3", D(2024, 3, 16), D(2024, 3, 18)),  # gap 11 = days + 1
    ]
    return pl.DataFrame(
        rows, orient="row", schema=["case_id", "patient_id", "admission_date", "discharge_date"]
    ).with_columns(hospital_id=pl.lit("H1"), drg=pl.lit("A1"), adrg=pl.lit("A1x"), total_cost=10_000.0)


@pytest.mark.parametrize("apply_to", ["earlier", "later"])
def test_window_edges_to_the_fen_with_penalty_0_3(apply_to):
    # penalty 0.3, not 0.5, so p and 1 − p differ (0.7 would give 70 points)
    policy = Policy(budget="40000", readmission=Readmission(days=10, penalty=0.3, apply_to=apply_to))
    s = settle(edge_stays(), policy, weights=WEIGHTS)
    hit = ["Q1", "Q3"] if apply_to == "earlier" else ["Q2", "Q4"]
    c = s.cases
    assert [r for r, f in zip(c["case_id"], c["readmission"], strict=True) if f] == hit
    want_points = {k: 30.0 if k in hit else 100.0 for k in c["case_id"]}
    assert dict(zip(c["case_id"], c["adjusted_points"], strict=True)) == pytest.approx(want_points)
    # 4,000,000 fen over 460 points = 8,695.652… fen a point: 30 points 260,869.57 fen,
    # 100 points 869,565.22; the floors leave 2 fen, to the two largest remainders (.57)
    want_fen = {k: 260_870 if k in hit else 869_565 for k in c["case_id"]}
    assert dict(zip(c["case_id"], c["payment_fen"], strict=True)) == want_fen
    assert int(c["payment_fen"].sum()) == 4_000_000
