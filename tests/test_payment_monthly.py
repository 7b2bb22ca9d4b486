"""Monthly pre-settlement and annual clearing (casemix.payment.monthly): worked
example M in docs/payment-settlement.md, reproduced to the fen."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings

from casemix.errors import InputError, PolicyError
from casemix.payment.monthly import MonthlyConfig, annual_clearing, discharge_months, monthly_presettlement
from casemix.payment.sums import BLOCK_ROWS
from strategies import rule_cases

CFG = MonthlyConfig(
    enabled=True, prepay_ratio=0.9, deposit_share=0.05, scores={"H1": 90, "H2": 55}, pass_score=60
)


def _cases() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "case_id": ["a", "b", "c", "d"],
            "hospital_id": ["H1", "H1", "H1", "H2"],
            "discharge_date": ["2024-01-10", "2024-01-31", "2024-02-01", "2024-01-15"],
            "audit_deduction": [500.0, None, 0.0, 12.34],
        }
    )


POINTS = np.array([1_000.0, 500.5, 800.0, 333.3])
PATIENT = np.array([300_000, 123_456, 200_000, 0])


def test_worked_example_m_monthly_table():
    t = monthly_presettlement(_cases(), POINTS, 10.5, CFG, patient_share_fen=PATIENT)
    assert t.select("hospital_id", "month", "cases").rows() == [
        ("H1", "2024-01", 2),
        ("H1", "2024-02", 1),
        ("H2", "2024-01", 1),
    ]
    assert t["gross_fen"].to_list() == [1_575_525, 840_000, 349_965]
    assert t["patient_share_fen"].to_list() == [423_456, 200_000, 0]
    assert t["base_fen"].to_list() == [1_152_069, 640_000, 349_965]
    assert t["prepaid_fen"].to_list() == [1_036_862, 576_000, 314_969]  # 314,968.5 → up
    assert t["audit_fen"].to_list() == [50_000, 0, 1_234]
    assert t["monthly_fen"].to_list() == [986_862, 576_000, 313_735]


def test_worked_example_m_annual_clearing():
    t = monthly_presettlement(_cases(), POINTS, 10.5, CFG, patient_share_fen=PATIENT)
    c = annual_clearing(
        pl.DataFrame({"hospital_id": ["H1", "H2"], "settled_fen": [1_700_000, 400_001]}), t, CFG
    )
    assert c.rows(named=True) == [
        {
            "hospital_id": "H1",
            "settled_fen": 1_700_000,
            "audit_fen": 50_000,
            "annual_fen": 1_650_000,
            "monthly_fen": 1_562_862,
            "deposit_fen": 82_500,
            "clearing_fen": 4_638,
            "score": 90.0,
            "deposit_returned_fen": 74_250,
            "total_paid_fen": 1_641_750,
        },
        {
            "hospital_id": "H2",
            "settled_fen": 400_001,
            "audit_fen": 1_234,
            "annual_fen": 398_767,
            "monthly_fen": 313_735,
            "deposit_fen": 19_938,
            "clearing_fen": 65_094,
            "score": 55.0,
            "deposit_returned_fen": 0,
            "total_paid_fen": 378_829,
        },
    ]


def test_dates_of_any_type_and_bad_dates():
    assert discharge_months(pl.DataFrame({"discharge_date": [dt.date(2024, 3, 1)]})).to_list() == ["2024-03"]
    assert discharge_months(
        pl.DataFrame({"discharge_date": [dt.datetime(2024, 12, 31, 23, 59)]})
    ).to_list() == ["2024-12"]
    assert discharge_months(pl.DataFrame({"discharge_date": ["20240705"]})).to_list() == ["2024-07"]
    # text and numbers by the intake's one date rule (docs/cases.md), as every other step reads them
    assert discharge_months(
        pl.DataFrame({"discharge_date": ["2024/03/01", "2024年11月3日", "2024-02-29 08:30"]})
    ).to_list() == ["2024-03", "2024-11", "2024-02"]
    assert discharge_months(pl.DataFrame({"discharge_date": [20240705, 45292]})).to_list() == [
        "2024-07",
        "2024-01",  # Excel serial day 45292 = 2024-01-01
    ]
    with pytest.raises(PolicyError, match="monthly.*discharge_date"):
        discharge_months(pl.DataFrame({"x": [1]}))
    with pytest.raises(InputError, match=r"row 1 \(case_id 'b'\)"):
        discharge_months(pl.DataFrame({"case_id": ["a", "b"], "discharge_date": ["2024-01-01", "soon"]}))
    bad = _cases().with_columns(pl.Series("audit_deduction", [1.0, -1.0, 0.0, 0.0]))
    with pytest.raises(InputError, match=r"audit_deduction.*row 1 \(case_id 'b'\)"):
        monthly_presettlement(bad, POINTS, 10.5, CFG)


def test_config_limits():
    with pytest.raises(PolicyError, match=r"key monthly\.deposit_share"):
        MonthlyConfig.from_table({"deposit_share": 0.1})  # at most 5% [A-规 §26]
    with pytest.raises(PolicyError, match="prepay_ratio"):
        MonthlyConfig.from_table({"prepay_ratio": 1.2})


@settings(max_examples=60, deadline=None)
@given(rule_cases())
def test_clearing_conserves_the_annual_settlement(r):
    cases = pl.DataFrame(
        {
            "case_id": r["case_id"],
            "hospital_id": r["hospital_id"],
            "discharge_date": [f"2024-{m:02d}-15" for m in r["month"]],
            "audit_deduction": r["audit_yuan"],
        }
    )
    t = monthly_presettlement(
        cases, np.array(r["points"]), 12.34, CFG, patient_share_fen=np.array(r["patient_fen"])
    )
    assert t["cases"].sum() == len(r["case_id"])  # every case in one month
    hosp = sorted(set(r["hospital_id"]))
    settled = pl.DataFrame(
        {"hospital_id": hosp, "settled_fen": [10_000_000 * (i + 1) for i in range(len(hosp))]}
    )
    c = annual_clearing(settled, t, CFG)
    assert (c["monthly_fen"] + c["clearing_fen"] + c["deposit_fen"] == c["annual_fen"]).all()
    assert (c["total_paid_fen"] == c["annual_fen"] - c["deposit_fen"] + c["deposit_returned_fen"]).all()
    assert (c["deposit_returned_fen"] <= c["deposit_fen"]).all()
    assert c["monthly_fen"].sum() == t["monthly_fen"].sum()


def test_a_bad_date_without_case_ids_names_the_row_number_from_1():
    cases = pl.DataFrame({"discharge_date": ["2024-01-20", "not a date"]})
    with pytest.raises(
        InputError, match=r"^discharge_date missing or not a date at row 1 \(case_id '2'\): 'not a date'"
    ):
        discharge_months(cases)


def test_worked_example_m_without_patient_shares():
    # no patient_share_fen: the base is the gross amount; 1,575,525 × 0.9 = 1,417,972.5 → up
    t = monthly_presettlement(_cases(), POINTS, 10.5, CFG)
    assert t["patient_share_fen"].to_list() == [0, 0, 0]
    assert t["base_fen"].to_list() == [1_575_525, 840_000, 349_965]
    assert t["prepaid_fen"].to_list() == [1_417_973, 756_000, 314_969]
    assert t["monthly_fen"].to_list() == [1_367_973, 756_000, 313_735]


def test_every_message_in_full():
    with pytest.raises(PolicyError) as info:
        discharge_months(pl.DataFrame({"x": [1]}))
    assert str(info.value) == (
        "monthly pre-settlement needs the column discharge_date (出院日期), which the cases lack; "
        "add it or set monthly.enabled = false"
    )
    with pytest.raises(InputError) as info:
        discharge_months(pl.DataFrame({"case_id": ["a", "b"], "discharge_date": ["2024-01-01", None]}))
    assert str(info.value) == (
        "discharge_date missing or not a date at row 1 (case_id 'b'): None; "
        "monthly pre-settlement assigns each case to its discharge month"
    )
    for column, shown in (
        (pl.Series("audit_deduction", ["1", "abc", "0", "0"]), "'abc'"),
        (pl.Series("audit_deduction", [1.0, -0.01, 0.0, 0.0]), "-0.01"),
        (pl.Series("audit_deduction", [1.0, float("nan"), 0.0, 0.0]), "nan"),
    ):
        with pytest.raises(InputError) as info:
            monthly_presettlement(_cases().with_columns(column), POINTS, 10.5, CFG)
        assert str(info.value) == (
            f"audit_deduction (审核扣款, yuan) is negative or not a number at row 1 (case_id 'b'): {shown}"
        )
    # a missing hospital: its row and case id (the first of two), not only "missing"
    hosp = pl.Series("hospital_id", ["H1", "H1", None, None])
    with pytest.raises(InputError) as info:
        monthly_presettlement(_cases().with_columns(hosp), POINTS, 10.5, CFG)
    assert str(info.value) == (
        "hospital_id missing at row 2 (case_id 'c'); monthly pre-settlement sums each "
        "hospital's cases by month: fill it or drop the case"
    )
    with pytest.raises(InputError, match=r"^hospital_id missing at row 0 \(case_id '1'\);"):
        monthly_presettlement(_cases().drop("case_id").with_columns(hosp.reverse()), POINTS, 10.5, CFG)


def test_months_past_the_first_slice_of_a_million_cases():
    # _month_numbers converts BLOCK_ROWS (2^20) cases at a time: the cases of the second
    # slice keep their own months (2023-12-31 and 2024-03-01 after 2^20 cases of 2024-01-15)
    n = BLOCK_ROWS
    d = pl.concat(
        [
            pl.repeat(dt.date(2024, 1, 15), n, eager=True),
            pl.Series([dt.date(2023, 12, 31), dt.date(2024, 3, 1)]),
        ]
    )
    months = discharge_months(pl.DataFrame({"discharge_date": d}))
    assert months.len() == n + 2
    assert months.slice(n - 1).to_list() == ["2024-01", "2023-12", "2024-03"]
    assert dict(months.value_counts().rows()) == {"2024-01": n, "2023-12": 1, "2024-03": 1}


def test_gross_amounts_past_the_first_slice_of_a_million_cases():
    # the gross amounts are summed BLOCK_ROWS (2^20) cases at a time: each case once, 1 point
    # at 1 yuan is 100 fen (the two cases after the first slice in months of their own)
    n = BLOCK_ROWS
    d = pl.concat(
        [
            pl.repeat(dt.date(2024, 1, 15), n, eager=True),
            pl.Series([dt.date(2023, 12, 31), dt.date(2024, 3, 1)]),
        ]
    )
    cases = pl.DataFrame({"hospital_id": pl.repeat("H1", n + 2, eager=True), "discharge_date": d})
    t = monthly_presettlement(cases, np.ones(n + 2), 1.0, CFG)
    assert t.select("month", "cases", "gross_fen").rows() == [
        ("2023-12", 1, 100),
        ("2024-01", n, 100 * n),
        ("2024-03", 1, 100),
    ]


def test_no_cases_give_an_empty_table():
    cases = pl.DataFrame(schema={"case_id": pl.String, "hospital_id": pl.String, "discharge_date": pl.Date})
    t = monthly_presettlement(cases, np.zeros(0), 10.5, CFG)
    assert t.height == 0 and t.columns[:2] == ["hospital_id", "month"]


def test_a_score_of_exactly_the_pass_score_returns_its_share():
    # pass_score 60: 60 passes (60 / 100 of the deposit back), 59.9 does not
    from casemix.payment.monthly import deposit_return_fraction

    assert deposit_return_fraction(np.array([59.9, 60.0, 120.0]), CFG).tolist() == [0.0, 0.6, 1.0]


def test_no_deposit_from_an_annual_settlement_of_zero_or_below():
    # H1: 0 settled; H2: 100,000 settled less 300,000 audit deductions = -200,000 fen. No
    # deposit is held (5% of nothing), so none is returned; H2's clearing is -200,000 − 50,000
    monthly = pl.DataFrame(
        {"hospital_id": ["H2"], "monthly_fen": [50_000], "audit_fen": [300_000]},
        schema_overrides={"monthly_fen": pl.Int64, "audit_fen": pl.Int64},
    )
    settled = pl.DataFrame({"hospital_id": ["H1", "H2"], "settled_fen": [0, 100_000]})
    c = annual_clearing(settled, monthly, CFG)
    assert c.select(
        "hospital_id", "annual_fen", "deposit_fen", "clearing_fen", "deposit_returned_fen", "total_paid_fen"
    ).rows() == [("H1", 0, 0, 0, 0, 0), ("H2", -200_000, 0, -250_000, 0, -200_000)]


def test_types_without_an_audit_column_and_integer_point_values_per_pool():
    assert discharge_months(_cases()).name == "month"
    cases = _cases().drop("audit_deduction")
    t = monthly_presettlement(cases, POINTS, 10.5, CFG, patient_share_fen=PATIENT)
    fen = ("gross_fen", "patient_share_fen", "base_fen", "prepaid_fen", "audit_fen", "monthly_fen")
    assert dict(t.schema) == {
        "hospital_id": pl.String,
        "month": pl.String,
        "cases": pl.Int64,
        "points": pl.Float64,
        **dict.fromkeys(fen, pl.Int64),
    }
    assert t["audit_fen"].to_list() == [0, 0, 0] and t["monthly_fen"].equals(
        t["prepaid_fen"], check_names=False
    )
    # point values per pool given as integers (10 and 11 yuan a point), cases' pools 0, 1, 1, 0
    codes = np.array([0, 1, 1, 0])
    a = monthly_presettlement(cases, POINTS, np.array([10, 11]), CFG, pool_codes=codes)
    b = monthly_presettlement(cases, POINTS, np.array([10.0, 11.0])[codes], CFG)
    assert a.equals(b)
    # H1 January: 1,000 × 10 + 500.5 × 11 = 15,505.5 yuan = 1,550,550 fen; × 0.9 = 1,395,495
    assert a.row(0) == ("H1", "2024-01", 2, 1_500.5, 1_550_550, 0, 1_550_550, 1_395_495, 0, 1_395_495)
