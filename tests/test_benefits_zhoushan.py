"""Regression: the 舟惠保 liver-cancer case of the Zhoushan 2022 report, under both editions.

The report (``../shared/benefit-notes.md``): 510k yuan inpatient cost plus
170k yuan of self-paid drugs; the 2022 edition of 舟惠保 paid about 190k,
about 110k more than the 2021 edition would have.  Before issue 13
casemix paid the same in both years (a zero deductible on every part).

Published terms we have: maximum payout 1.5 M (2021) and 1.8 M (2022);
"零门槛" = no enrolment limits.  Assumed (stated in the policy files and
``docs/benefits.md``): an annual deductible of 20,000 yuan and 60 % in both
editions; the 2021 edition pays the in-list burden (policy range + 乙类)
only, the 2022 edition also self-paid costs and drugs.  Assumed case: a
resident at a tertiary hospital, not assisted; the 510k split as 410k
policy range, 80k 乙类, 20k self-paid items.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from casemix import benefits as bf

ENGINES = ("reference", "batch")


def liver_cancer(year: int) -> dict:
    return {
        "patient_id": f"zs{year}",
        "discharge_date": dt.date(year, 6, 30),
        "insurance_type": "居民",
        "assist_status": "普通",
        "hosp_level": 3,
        "inscp_scp_amt": 410_000.0,
        "preselfpay_amt": 80_000.0,
        "special_drug_amt": 0.0,
        "fulamt_ownpay_amt": 20_000.0 + 170_000.0,
        "total_cost": 510_000.0 + 170_000.0,
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_zhoushan_case_both_editions(engine):
    out = bf.simulate(pl.DataFrame([liver_cancer(2021), liver_cancer(2022)]), "illustrative", engine=engine)
    r = out.select(bf.OUTPUT_COLUMNS).to_dicts()
    # basic (resident, level 3): 0.6 × (410,000 − 1,000) = 245,400, policy range left 164,600
    # 大病: 0.6 × (100,000 − 12,000) + 0.7 × 64,600 = 98,020, left 66,580
    # 舟惠保 2021: 0.6 × (66,580 + 80,000 − 20,000) = 75,948
    # 舟惠保 2022: 0.6 × (66,580 + 80,000 + 190,000 − 20,000) = 189,948
    for x in r:
        assert (x["hifp_pay"], x["hifmi_pay"]) == (24_540_000, 9_802_000)
    assert [x["hmb_pay"] for x in r] == [7_594_800, 18_994_800]
    assert [x["psn_part_amt"] for x in r] == [26_063_200, 14_663_200]
    # the report: about 190k in 2022, about 110k more than 2021
    assert r[1]["hmb_pay"] / 100 == pytest.approx(190_000, rel=0.05)
    gain = (r[1]["hmb_pay"] - r[0]["hmb_pay"]) / 100
    assert gain == pytest.approx(110_000, rel=0.05)
    # the gain is 60 % of the self-paid part the 2022 edition adds, whatever the in-list split
    assert gain == 0.6 * 190_000


@pytest.mark.parametrize("engine", ENGINES)
def test_hmb_deductible_is_real(engine):
    # an in-list burden below the 20,000 deductible: nothing from 舟惠保 ("零门槛" is about
    # who may enrol, not a zero deductible)
    small = {
        **liver_cancer(2022),
        "patient_id": "s",
        "inscp_scp_amt": 20_000.0,
        "preselfpay_amt": 2_000.0,
        "fulamt_ownpay_amt": 3_000.0,
        "total_cost": 25_000.0,
    }
    r = bf.simulate(pl.DataFrame([small]), "illustrative", engine=engine).row(0, named=True)
    # basic 0.6 × 19,000 = 11,400; left 8,600 + 2,000 + 3,000 = 13,600 < 20,000
    assert r["hifp_pay"] == 1_140_000 and r["hifmi_pay"] == 0 and r["hmb_pay"] == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_shanghai_like_catastrophic_for_residents_local_supplement_for_employees(engine):
    cases = [
        {
            **liver_cancer(2021),
            "patient_id": pid,
            "insurance_type": ins,
            "inscp_scp_amt": 100_000.0,
            "preselfpay_amt": 0.0,
            "fulamt_ownpay_amt": 0.0,
            "total_cost": 100_000.0,
            "major_disease": True,
        }
        for pid, ins in (("e", "职工"), ("r", "居民"))
    ]
    e, r = bf.simulate(pl.DataFrame(cases), "illustrative-disease-list", engine=engine).to_dicts()
    # employee: basic 0.85 × 99,100 = 84,235; no 大病; 地方附加 0.5 × 15,765 = 7,882.50
    assert (e["hifp_pay"], e["hifmi_pay"], e["hifob_pay"]) == (8_423_500, 0, 788_250)
    # resident: basic 0.6 × 99,000 = 59,400; 大病 0.6 × 40,600 = 24,360; no 地方附加
    assert (r["hifp_pay"], r["hifmi_pay"], r["hifob_pay"]) == (5_940_000, 2_436_000, 0)
    # both in-list remainders (7,882.50 and 16,240) are below 舟惠保's 20,000 deductible
    assert e["hmb_pay"] == r["hmb_pay"] == 0
