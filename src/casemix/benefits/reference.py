"""The benefit cascade, one person-year at a time, written to be read like the rules.

This is the specification's voice; :mod:`casemix.benefits.kernel` is the
engine and is tested equal to it.  Sources of each rule are in
``docs/benefits.md`` and ``../shared/benefit-notes.md``.

Amounts are integer fen, rates integer basis points (1/10,000).  The one
rounding rule: ROUND_HALF_UP to the fen, once per layer —

- basic insurance rounds each case's payment;
- an annual layer (大病, special drugs, 救助, 再救助, 惠民保) rounds the
  person's year-to-date payment, and the case is paid the increment, so a
  person's annual total is rounded exactly once.

The patient's share is what is left: total cost minus every payment, so
payments plus patient share equal the total cost to the fen.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from casemix.benefits.policy import (
    BP,
    LAYER_COLUMNS,
    LAYERS,
    NO_CAP,
    PART_BIT,
    PARTS,
    Band,
    BenefitPolicy,
    Version,
)


@dataclass(frozen=True)
class Case:
    """One inpatient case as the cascade sees it (money in fen)."""

    row: int
    person: object
    day: _dt.date
    insured: str  # employee | resident
    status: str  # extreme_poor | subsistence | marginal | ordinary
    level: str  # "1" | "2" | "3"
    referral: bool
    major_disease: bool
    policy_amt: int  # 政策范围内费用 (inscp_scp_amt)
    preselfpay: int  # 乙类先行自付 (preselfpay_amt)
    special_drug: int  # 大病特药 cost outside the basic list
    selfpay: int  # 全自费 (fulamt_ownpay_amt)
    total: int  # 医疗费总额 (medfee_sumamt); ≥ the four parts


@dataclass
class BasicYear:
    """A person's basic-insurance running totals for one year."""

    paid: int = 0  # fund payments so far, against the annual cap
    referral_deductible: int = 0  # deductible borne along the current referral chain


@dataclass
class AnnualYear:
    """A person's running totals in one annual layer for one year."""

    base: int = 0  # cumulative amount that reached the layer (deductible counts against it)
    paid: int = 0  # cumulative payment (the cap counts against it)


@dataclass
class PersonYear:
    basic: BasicYear = field(default_factory=BasicYear)
    annual: dict[str, AnnualYear] = field(default_factory=lambda: {layer: AnnualYear() for layer in LAYERS})


def round_half_up(amount_fen_bp: int) -> int:
    """Fen × basis points → fen, ROUND_HALF_UP (amounts are never negative here)."""
    return (amount_fen_bp + BP // 2) // BP


def banded_amount(band: Band, cumulative: int) -> int:
    """What a layer owes on a cumulative annual amount, in fen × basis points (unrounded).

    Nothing below the deductible; above it, band k's rate on the part of the
    amount between ``max(deductible, upper[k-1])`` and ``upper[k]``.
    """
    owed = 0
    lower = band.deductible
    for k, rate in enumerate(band.rates):
        upper = band.upper[k] if k < len(band.upper) else None
        top = cumulative if upper is None else min(cumulative, upper)
        if top > lower:
            owed += rate * (top - lower)
        if upper is not None:
            lower = max(lower, upper)
    return owed


def basic_insurance(case: Case, v: Version, year: BasicYear) -> int:
    """基本医保 pooled-fund payment (hifp_pay) of one case.

    pay = rate(insured, level) × (policy-range cost − deductible borne),
    rounded half up, limited by what is left under the annual cap.  A
    referred patient bears only the part of this hospital's deductible not
    already borne along the referral chain (起付线连续计算, Shanghai).
    """
    deductible = v.basic_deductible[(case.insured, case.level)]
    if case.referral and v.referral_continuous:
        due = max(0, deductible - year.referral_deductible)
    else:
        due = deductible
        year.referral_deductible = 0
    borne = min(case.policy_amt, due)
    year.referral_deductible += borne
    pay = round_half_up(v.basic_rate[(case.insured, case.level)] * (case.policy_amt - borne))
    cap = v.basic_cap[case.insured]
    if cap != NO_CAP:
        pay = min(pay, max(0, cap - year.paid))
    year.paid += pay
    return pay


def annual_layer(case: Case, v: Version, layer: str, year: AnnualYear, remaining: dict[str, int]) -> int:
    """Payment of one annual layer for one case.

    The layer's base is what is left of the cost parts it covers; it adds to
    the person's cumulative annual base.  The layer owes the banded amount
    on the new cumulative base minus that on the old one (each rounded half
    up), limited by what is left under its annual cap.
    """
    mask = v.covers[layer]
    if mask == 0:
        return 0
    if v.major_disease_only[layer] and not case.major_disease:
        return 0
    band = v.bands[(layer, case.insured, case.status)]
    if not band.eligible:
        return 0
    base = sum(remaining[p] for p in PARTS if mask & PART_BIT[p])
    before, after = year.base, year.base + base
    year.base = after
    pay = round_half_up(banded_amount(band, after)) - round_half_up(banded_amount(band, before))
    if band.cap != NO_CAP:
        pay = min(pay, max(0, band.cap - year.paid))
    year.paid += pay
    take_off(remaining, mask, pay)
    return pay


def take_off(remaining: dict[str, int], mask: int, pay: int) -> None:
    """Reduce the covered parts by a payment, in the fixed order of PARTS."""
    for p in PARTS:
        if mask & PART_BIT[p] and pay > 0:
            used = min(pay, remaining[p])
            remaining[p] -= used
            pay -= used


def simulate_person_year(cases: list[Case], policy: BenefitPolicy) -> list[dict[str, int]]:
    """Run one person's cases of one year, in discharge order, through every layer.

    Returns one dict per case: the payment of each layer under its output
    column name, and ``psn_part_amt``, the patient's share.
    """
    year = PersonYear()
    results = []
    for case in cases:
        v = policy.version_on(case.day)
        remaining = {
            "policy": case.policy_amt,
            "preselfpay": case.preselfpay,
            "special_drug": case.special_drug,
            "selfpay": case.selfpay,
        }
        paid = {}
        paid[LAYER_COLUMNS["basic"]] = basic_insurance(case, v, year.basic)
        take_off(remaining, PART_BIT["policy"], paid[LAYER_COLUMNS["basic"]])
        for layer in LAYERS:
            paid[LAYER_COLUMNS[layer]] = annual_layer(case, v, layer, year.annual[layer], remaining)
        paid["psn_part_amt"] = case.total - sum(paid.values())
        results.append(paid)
    return results


def simulate_cases(cases: list[Case], policy: BenefitPolicy) -> dict[int, dict[str, int]]:
    """All cases, grouped into person-years (sorted by person, date, row); row -> result."""
    ordered = sorted(cases, key=lambda c: (_sort_key(c.person), c.day, c.row))
    out: dict[int, dict[str, int]] = {}
    start = 0
    while start < len(ordered):
        end = start + 1
        while (
            end < len(ordered)
            and ordered[end].person == ordered[start].person
            and ordered[end].day.year == ordered[start].day.year
        ):
            end += 1
        group = ordered[start:end]
        for case, res in zip(group, simulate_person_year(group, policy), strict=True):
            out[case.row] = res
        start = end
    return out


def _sort_key(person: object) -> tuple:
    # persons may be numbers or strings; keep each kind in its natural order
    return (0, person, "") if isinstance(person, (int, float)) else (1, 0, str(person))
