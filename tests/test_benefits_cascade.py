"""Hand-computed benefit cascades, checked to the fen on both engines."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import polars as pl
import pytest

from casemix.benefits import OUTPUT_COLUMNS, compare, policy_from_documents, simulate, summarize
from casemix.errors import InputError

ENGINES = ("reference", "batch")


def basic(ded=0, rate=0.0, cap="none", ded3=None, rate3=None):
    """A basic-insurance section: the same numbers for every insured type and level
    unless level-3 values are given."""
    d3 = ded if ded3 is None else ded3
    r3 = rate if rate3 is None else rate3
    levels = lambda v, v3: {"1": v, "2": v, "3": v3}  # noqa: E731
    return {
        "deductible": {"employee": levels(ded, d3), "resident": levels(ded, d3)},
        "rate": {"employee": levels(rate, r3), "resident": levels(rate, r3)},
        "cap": {"employee": cap, "resident": cap},
    }


def doc(effective="2023-01-01", **sections):
    return {"document": {"effective": effective, "source": "hand-made test policy"}, **sections}


def case(
    person="p1",
    date="2023-03-01",
    insured="居民",
    status="普通",
    level=3,
    P=0.0,
    B=0.0,
    S=0.0,
    F=0.0,
    T=None,
    referral=False,
    major=False,
):
    return {
        "patient_id": person,
        "discharge_date": dt.date.fromisoformat(date),
        "insurance_type": insured,
        "assist_status": status,
        "hosp_level": level,
        "inscp_scp_amt": P,
        "preselfpay_amt": B,
        "special_drug_amt": S,
        "fulamt_ownpay_amt": F,
        "total_cost": P + B + S + F if T is None else T,
        "referral": referral,
        "major_disease": major,
    }


def run(cases, docs, engine):
    out = simulate(pl.DataFrame(cases), policy_from_documents(docs), engine=engine)
    return [dict(zip(OUTPUT_COLUMNS, row, strict=True)) for row in out.select(OUTPUT_COLUMNS).iter_rows()]


@pytest.mark.parametrize("engine", ENGINES)
def test_basic_deductible_rate_and_cap(engine):
    docs = [doc(basic=basic(ded=1000, rate=0.6, cap=6000))]
    r = run([case(P=10000, date="2023-01-05"), case(P=10000, date="2023-02-05")], docs, engine)
    assert r[0]["hifp_pay"] == 540000  # 0.6 × (10,000 − 1,000) yuan
    assert r[1]["hifp_pay"] == 60000  # 5,400 owed, 600 left under the 6,000 cap
    assert r[0]["psn_part_amt"] == 1000000 - 540000


@pytest.mark.parametrize("engine", ENGINES)
def test_basic_rounds_half_up_per_case(engine):
    docs = [doc(basic=basic(rate=0.5))]
    r = run([case(P=0.01), case(P=0.03, person="p2"), case(P=1000.01, person="p3")], docs, engine)
    assert [x["hifp_pay"] for x in r] == [1, 2, 50001]  # 0.5→1, 1.5→2, 50000.5→50001 fen


@pytest.mark.parametrize("engine", ENGINES)
def test_referral_deductible_counted_continuously(engine):
    docs = [doc(basic=basic(ded=300, rate=0.85, ded3=900))]
    cases = [case(level=1, P=200, date="2023-04-01"), case(level=3, P=5000, date="2023-04-03", referral=True)]
    r = run(cases, docs, engine)
    assert r[0]["hifp_pay"] == 0  # 200 all within the 300 deductible
    assert r[1]["hifp_pay"] == 85 * (5000 - 700)  # 900 − 200 already borne = 700
    # not referred: the full deductible again
    cases[1]["referral"] = False
    assert run(cases, docs, engine)[1]["hifp_pay"] == 85 * (5000 - 900)
    # switched off in the policy
    docs2 = [doc(basic={**basic(ded=300, rate=0.85, ded3=900), "referral_continuous": False})]
    cases[1]["referral"] = True
    assert run(cases, docs2, engine)[1]["hifp_pay"] == 85 * (5000 - 900)


CAT = {
    "covers": ["policy"],
    "default": {"deductible": 10000, "rates": [0.5, 0.6], "band_upper": [30000], "cap": 20000},
}


@pytest.mark.parametrize("engine", ENGINES)
def test_catastrophic_bands_cumulate_over_the_year_and_cap(engine):
    docs = [doc(basic=basic(), catastrophic=CAT)]
    cases = [
        case(P=15000, date="2023-01-10"),
        case(P=25000, date="2023-05-10"),
        case(P=20000, date="2023-09-10"),
    ]
    r = run(cases, docs, engine)
    # cumulative 15,000: 0.5 × 5,000; 40,000: 0.5 × 20,000 + 0.6 × 10,000 = 16,000;
    # 60,000: 28,000 owed in all, but the cap of 20,000 leaves 20,000 − 16,000
    assert [x["hifmi_pay"] for x in r] == [250000, 1350000, 400000]
    # a new year starts from zero
    r = run([*cases, case(P=15000, date="2024-01-02")], docs, engine)
    assert r[3]["hifmi_pay"] == 250000


@pytest.mark.parametrize("engine", ENGINES)
def test_cases_run_in_date_order_not_row_order(engine):
    docs = [doc(basic=basic(), catastrophic=CAT)]
    cases = [
        case(P=20000, date="2023-09-10"),
        case(P=15000, date="2023-01-10"),
        case(P=25000, date="2023-05-10"),
    ]
    r = run(cases, docs, engine)
    assert [x["hifmi_pay"] for x in r] == [400000, 250000, 1350000]


@pytest.mark.parametrize("engine", ENGINES)
def test_annual_layer_rounds_year_to_date(engine):
    docs = [doc(basic=basic(), catastrophic={"default": {"deductible": 0, "rates": [0.5], "cap": "none"}})]
    r = run(
        [case(P=0.01, date="2023-01-01"), case(P=0.01, date="2023-01-02"), case(P=0.01, date="2023-01-03")],
        docs,
        engine,
    )
    # year to date 0.5, 1.0, 1.5 fen → 1, 1, 2: cases get 1, 0, 1
    assert [x["hifmi_pay"] for x in r] == [1, 0, 1]


@pytest.mark.parametrize("engine", ENGINES)
def test_special_drug_line(engine):
    docs = [
        doc(
            basic=basic(rate=0.9),
            catastrophic_drug={"default": {"deductible": 0, "rates": [0.6], "cap": 20000}},
        )
    ]
    r = run([case(P=1000, S=50000)], docs, engine)
    assert r[0]["hifp_pay"] == 90000  # basic never touches special drugs
    assert r[0]["hifmi_drug_pay"] == 2000000  # 0.6 × 50,000 = 30,000, capped at 20,000
    assert r[0]["psn_part_amt"] == 100000 - 90000 + 5000000 - 2000000


@pytest.mark.parametrize("engine", ENGINES)
def test_assistance_by_status(engine):
    docs = [
        doc(
            basic=basic(rate=0.5),
            assistance={
                "default": {"eligible": False},
                "extreme_poor": {"eligible": True, "deductible": 0, "rates": [1.0], "cap": "none"},
                "subsistence": {"eligible": True, "deductible": 0, "rates": [0.8], "cap": 3000},
                "marginal": {"eligible": True, "deductible": 0, "rates": [0.7], "cap": "none"},
            },
        )
    ]
    cases = [case(person=s, status=s, P=10000) for s in ("特困", "低保", "低边", "普通")]
    r = run(cases, docs, engine)
    assert [x["maf_pay"] for x in r] == [500000, 300000, 350000, 0]  # 低保: 4,000 capped at 3,000
    assert r[0]["psn_part_amt"] == 0


LAYERED = dict(
    basic=basic(ded=1000, rate=0.6),
    catastrophic={
        "covers": ["policy"],
        "default": {"eligible": False},
        "resident": {"eligible": True, "deductible": 5000, "rates": [0.6], "cap": "none"},
    },
    local_supplement={
        "covers": ["policy"],
        "default": {"eligible": False},
        "employee": {"eligible": True, "deductible": 4000, "rates": [0.8], "cap": "none"},
    },
    assistance={
        "default": {"eligible": False},
        "subsistence": {"eligible": True, "deductible": 0, "rates": [0.8], "cap": "none"},
    },
    supplement={
        "covers": ["policy", "preselfpay", "special_drug", "selfpay"],
        "default": {"deductible": 0, "rates": [0.5], "cap": "none"},
    },
    waiver={
        "covers": ["policy", "preselfpay", "selfpay"],
        "default": {"eligible": False},
        "poor": {"eligible": True, "deductible": 0, "rates": [0.1], "cap": "none"},
    },
    reassistance={
        "covers": ["policy", "preselfpay", "selfpay"],
        "default": {"eligible": False},
        "poor": {"eligible": True, "deductible": 2000, "rates": [0.7], "cap": "none"},
    },
)


@pytest.mark.parametrize("engine", ENGINES)
def test_every_layer_in_order(engine):
    r = run([case(status="低保", P=20000, B=2000, F=3000, T=26000)], [doc(**LAYERED)], engine)[0]
    # basic 0.6 × 19,000 = 11,400; 大病 (residents) 0.6 × (8,600 − 5,000) = 2,160;
    # 救助 0.8 × 6,440 = 5,152; 惠民保 0.5 × (1,288 + 2,000 + 3,000) = 3,144, taken off
    # policy 1,288 then 乙类 1,856 (144 left); hospital waiver 0.1 × (144 + 3,000) = 314.40
    # (乙类 144, then 170.40 of self-pay); 再救助 last, on what is left after all of them:
    # 0.7 × (2,829.60 − 2,000) = 580.72; the patient 2,248.88 + the 1,000 over-limit part
    assert r == {
        "hifp_pay": 1140000,
        "hifmi_pay": 216000,
        "hifob_pay": 0,
        "hifmi_drug_pay": 0,
        "maf_pay": 515200,
        "hmb_pay": 314400,
        "hosp_part_amt": 31440,
        "reassist_pay": 58072,
        "psn_part_amt": 324888,
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_employees_get_the_local_supplement_not_catastrophic(engine):
    r = run([case(insured="职工", P=20000)], [doc(**LAYERED)], engine)[0]
    # basic 0.6 × 19,000 = 11,400; no 大病 for employees; 地方附加 0.8 × (8,600 − 4,000)
    # = 3,680; 惠民保 0.5 × 4,920 = 2,460; not poor: no waiver, no 再救助
    assert r == {
        "hifp_pay": 1140000,
        "hifmi_pay": 0,
        "hifob_pay": 368000,
        "hifmi_drug_pay": 0,
        "maf_pay": 0,
        "hmb_pay": 246000,
        "hosp_part_amt": 0,
        "reassist_pay": 0,
        "psn_part_amt": 246000,
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_disease_list_variant(engine):
    docs = [
        doc(
            basic=basic(ded=0, rate=0.5),
            catastrophic={
                "major_disease_only": True,
                "default": {"deductible": 0, "rates": [0.6], "cap": "none"},
            },
        )
    ]
    r = run([case(P=10000, major=True), case(person="p2", P=10000)], docs, engine)
    assert [x["hifmi_pay"] for x in r] == [300000, 0]  # 60% of the 5,000 left after basic


@pytest.mark.parametrize("engine", ENGINES)
def test_value_used_only_from_its_date(engine):
    cat = {
        "default": {
            "deductible": [{"value": 10000, "from": "2023-01-01"}, {"value": 5000, "from": "2023-07-01"}],
            "rates": [0.5],
            "cap": "none",
        }
    }
    docs = [doc(basic=basic(), catastrophic=cat)]
    r = run([case(P=8000, date="2023-06-30"), case(P=1000, date="2023-07-01")], docs, engine)
    # June: 8,000 < 10,000 pays nothing; July: under the 5,000 deductible the
    # year to date owes 0.5 × 4,000 against 0.5 × 3,000 before the case
    assert [x["hifmi_pay"] for x in r] == [0, 50000]


def test_pandas_in_pandas_out_rows_kept():
    docs = [doc(basic=basic(ded=100, rate=0.5))]
    cases = pd.DataFrame(
        [case(P=1000, person=str(i % 3), date=f"2023-01-{i + 1:02d}") for i in range(7)], index=range(10, 17)
    )
    out = simulate(cases, policy_from_documents(docs))
    assert isinstance(out, pd.DataFrame) and list(out.index) == list(range(10, 17))
    assert list(out.columns[: len(cases.columns)]) == list(cases.columns)
    assert (out["hifp_pay"] == 45000).all()


def test_input_errors_name_column_and_row():
    docs = [doc(basic=basic())]
    pol = policy_from_documents(docs)
    bad = pl.DataFrame([case(P=100), case(P=100, T=50)])
    with pytest.raises(InputError, match=r"exceed total_cost at row 1"):
        simulate(bad, pol)
    with pytest.raises(InputError, match=r"'assist_status'.*'poor'.*row 0"):
        simulate(pl.DataFrame([case(status="poor")]), pol)
    with pytest.raises(InputError, match=r"needs column 'inscp_scp_amt'"):
        simulate(pl.DataFrame([case()]).drop("inscp_scp_amt"), pol)
    # a negative amount: the case is left out (the bad-value rule of docs/cases.md)
    out = simulate(pl.DataFrame([case(P=-1, T=0), case(P=100)]), pol)
    assert out["left_out"].to_list() == ["negative:inscp_scp_amt", None]
    assert out["hifp_pay"][0] is None and out["hifp_pay"][1] is not None
    with pytest.raises(InputError, match=r"before the first date"):
        simulate(pl.DataFrame([case(date="2022-12-31")]), pol)


def test_string_dates_and_aliases_accepted():
    docs = [doc(basic=basic(rate=0.5))]
    df = pl.DataFrame([case(P=100)]).rename({"patient_id": "psn_no", "total_cost": "medfee_sumamt"})
    df = df.with_columns(pl.col("discharge_date").cast(pl.String), pl.lit("390").alias("insurance_type"))
    out = simulate(df, policy_from_documents(docs))
    assert out["hifp_pay"].to_list() == [5000]
    df = df.with_columns(
        pl.lit("三级甲等").alias("hosp_level"),
        pl.lit("城镇职工").alias("insurance_type"),
        pl.lit("低保对象").alias("assist_status"),
    )
    assert simulate(df, policy_from_documents(docs))["hifp_pay"].to_list() == [5000]


def test_summarize_by_group_by_hand():
    docs = [doc(basic=basic(ded=100, rate=0.5))]
    cases = [
        case(person="a", P=1100, insured="职工", level=1),
        case(person="a", P=2100, insured="职工", level=3, date="2023-05-01"),
        case(person="b", P=300, F=100, level=3),
    ]
    res = simulate(pl.DataFrame(cases), policy_from_documents(docs))
    s = summarize(res, by=["insured_type", "hosp_level"], oop_threshold=1000)
    rows = {(r["insured_type"], r["hosp_level"]): r for r in s.iter_rows(named=True)}
    assert set(rows) == {("居民", 3), ("职工", 1), ("职工", 3)}
    e1 = rows[("职工", 1)]
    assert (e1["cases"], e1["person_years"], e1["hifp_pay"], e1["psn_part_amt"]) == (1, 1, 500.0, 600.0)
    # person a pays 600 + 1,100 = 1,700 in the year (> 1,000), counted in both of a's groups
    assert rows[("职工", 3)]["person_years_over"] == 1 and e1["share_over"] == 1.0
    b = rows[("居民", 3)]
    assert b["hifp_pay"] == 100.0 and b["combined_ratio"] == pytest.approx(100 / 400)
    assert b["inscp_ratio"] == pytest.approx(100 / 300) and b["share_over"] == 0.0
    total = summarize(res, by=())
    assert total["cases"].to_list() == [3] and total["person_years"].to_list() == [2]
    assert total["fund_pay"].to_list() == [500.0 + 1000.0 + 100.0]


def test_compare_reports_change_by_group():
    cases = pl.DataFrame(
        [case(person=str(i), P=5000, status=s) for i, s in enumerate(["普通", "低保", "低保"])]
    )
    a = policy_from_documents([doc(basic=basic(rate=0.5))])
    b = policy_from_documents([doc(basic=basic(rate=0.7))])
    c = compare(cases, a, b, by=["assist_status"])
    row = {r["assist_status"]: r for r in c.iter_rows(named=True)}
    assert row["低保"]["hifp_pay_change"] == pytest.approx(2 * 1000.0)
    assert row["低保"]["psn_part_amt_change"] == pytest.approx(-2 * 1000.0)
    assert row["普通"]["fund_pay_a"] == 2500.0 and row["普通"]["fund_pay_b"] == 3500.0


def test_summaries_of_pandas_are_pandas_and_empty_input_works():
    from casemix.benefits import synthetic_cases

    cases = synthetic_cases(200, seed=2)
    s = summarize(simulate(cases.to_pandas(), "illustrative"))
    assert isinstance(s, pd.DataFrame) and s["cases"].sum() == 200
    c = compare(cases.to_pandas(), "illustrative", "illustrative-whatif-poor", by=())
    assert isinstance(c, pd.DataFrame) and len(c) == 1
    empty = simulate(cases.head(0), "illustrative")
    assert empty.height == 0 and set(OUTPUT_COLUMNS) <= set(empty.columns)
    assert summarize(empty).height == 0


def test_synthetic_cases_deterministic_and_consistent():
    from casemix.benefits import synthetic_cases

    a, b = synthetic_cases(2000, seed=5), synthetic_cases(2000, seed=5)
    assert a.equals(b) and not a.equals(synthetic_cases(2000, seed=6))
    parts = a["inscp_scp_amt"] + a["preselfpay_amt"] + a["fulamt_ownpay_amt"] + a["special_drug_amt"]
    assert ((parts * 100).round() <= (a["total_cost"] * 100).round()).all()
    assert set(a["assist_status"].cast(pl.String)) <= {"特困", "低保", "低边", "普通"}


def test_person_with_many_cases_sorted_by_date():
    # more rows than the insertion-sort limit, in reverse date order, some on one day
    days = [dt.date(2023, 1, 1) + dt.timedelta(days=(300 - i) // 2) for i in range(150)]
    cases = [case(P=100 + i, date=d.isoformat()) for i, d in enumerate(days)]
    docs = [doc(basic=basic(), catastrophic={"default": {"deductible": 5000, "rates": [0.5], "cap": 2000}})]
    assert run(cases, docs, "batch") == run(cases, docs, "reference")


def test_add_benefit_fields_to_drg_like_cases():
    from casemix.benefits import add_benefit_fields

    drg = pd.DataFrame(
        {
            "case_id": ["1", "2", "3", "4"],
            "hospital_id": ["H1", "H1", "H2", None],
            "total_cost": [12000.5, 800.0, None, 56000.0],
        }
    )
    out = add_benefit_fields(drg, seed=3)
    assert isinstance(out, pd.DataFrame) and list(out["case_id"]) == ["1", "2", "3", "4"]
    assert out.loc[0, "hosp_level"] == out.loc[1, "hosp_level"]  # one level per hospital
    assert out.equals(add_benefit_fields(drg, seed=3))
    res = simulate(out.fillna({"total_cost": 0.0}), "illustrative")
    assert (
        res[list(OUTPUT_COLUMNS[:-1])].sum(axis=1) + res["psn_part_amt"]
        == (res["total_cost"] * 100).round().astype("int64")
    ).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_supplement_covers_self_pay_only_when_told(engine):
    hmb = {"default": {"deductible": 1000, "rates": [0.5], "cap": 3000}}
    cases = [case(P=2000, F=4000, date="2023-02-01"), case(P=0, F=6000, date="2023-03-01")]
    with_selfpay = [doc(basic=basic(), supplement={**hmb, "covers": ["policy", "selfpay"]})]
    without = [doc(basic=basic(), supplement={**hmb, "covers": ["policy"]})]
    # with self-pay: year to date 6,000 → 0.5 × 5,000; then 12,000 → 5,500 owed, cap 3,000 leaves 500
    assert [x["hmb_pay"] for x in run(cases, with_selfpay, engine)] == [250000, 50000]
    # policy range only: 2,000 → 0.5 × 1,000; the second case brings nothing in range
    assert [x["hmb_pay"] for x in run(cases, without, engine)] == [50000, 0]


@pytest.mark.parametrize("engine", ENGINES)
def test_reassistance_threshold_counts_the_years_burden(engine):
    docs = [
        doc(
            basic=basic(rate=0.5),
            reassistance={
                "covers": ["policy", "preselfpay"],
                "default": {"eligible": False},
                "poor": {"eligible": True, "deductible": 5000, "rates": [0.7], "cap": "none"},
            },
        )
    ]
    cases = [
        case(status="低边", P=6000, B=1000, date="2023-01-01"),
        case(status="低边", P=6000, date="2023-02-01"),
        case(person="o", status="普通", P=60000),
    ]
    r = run(cases, docs, engine)
    # burden after basic: 3,000 + 1,000 = 4,000 (below 5,000); then 3,000 more: 0.7 × 2,000
    assert [x["reassist_pay"] for x in r] == [0, 140000, 0]
