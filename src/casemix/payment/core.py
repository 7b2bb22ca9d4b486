"""The settlement core: from each case's points to fen for the fund and the patient.

Pure functions on numpy arrays, shared by DRG (:func:`casemix.settle.settle`),
DIP (:func:`casemix.dip.settle`) and Dask (:func:`casemix.dask.settle`).
The work is split into the three steps a distributed settlement needs:

1. per hospital (:func:`hospital_sums`): points, money settled outside the
   points, patient share — sums over the hospital's own cases;
2. per pool, region-wide (:func:`point_values`): the point value(s) and
   each hospital's point money, from the per-hospital sums only;
3. per hospital again (:func:`case_amounts`): the hospital's point money
   split over its cases, and each case's settled amount, fund payment and
   patient share.

Money rule: fen, ROUND_HALF_UP (``casemix._money``); a fixed total is
split by the largest-remainder method, so under the point method the
fund payments add up to the pool's fund budget to the fen (minus what
an elastic point value's cap leaves with the fund, reported as
``retained``).  Formulas and sources: ``docs/payment-settlement.md``.

Hook points for rules computed elsewhere (``casemix.payment.special_cases``,
``new_tech``, ``outliers``): a case's *outside* amount (settled outside
the points: by item, 除外支付), passed in ``outside_fen``; the
case-level hooks of :class:`CaseHooks` for :func:`casemix.settle.settle`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from casemix._money import FEN_PER_YUAN, allocate_grouped, round_half_up
from casemix.budget import POOL_VALUES, Corridors, Policy
from casemix.errors import PolicyError
from casemix.payment.sums import int_sums

__all__ = [
    "CaseHooks",
    "PoolTerms",
    "PoolValues",
    "case_amounts",
    "corridor_adjustment",
    "fund_of_outside",
    "hospital_sums",
    "int_sums",
    "point_values",
    "pool_codes",
    "pool_terms",
]

#: the pool name used when the policy defines no pools
ALL = "all"


@dataclass(frozen=True)
class CaseHooks:
    """Case-level inputs computed by other rules, one entry per case in input order.

    Attributes
    ----------
    paid_outside_yuan
        Amount settled outside the points, on top of the case's points
        (除外支付 new-technology cost, by-item payment of an approved special
        case whose points are set to 0 by ``approved_special``), yuan.
    approved_special
        Region-wide approved 特例单议 cases (bool): settled at cost outside
        the points, instead of the policy's per-hospital list.
    outlier_ref_cost
        Reference cost (yuan) the high/low-cost rules compare each case
        with, instead of the weight table's group mean (NaN = none).
    """

    paid_outside_yuan: np.ndarray | None = None
    approved_special: np.ndarray | None = None
    outlier_ref_cost: np.ndarray | None = None


@dataclass(frozen=True)
class PoolTerms:
    """What the money step needs to know of one pool, from the policy."""

    name: str
    budget_fen: int
    method: str = "point"  # point | rate
    form: str = "actual"  # actual | ratio
    fund_ratio: float = 1.0
    fen_per_point: float | None = None  # rate method: rate × 100 / points per RW
    elastic: bool = False
    base_share: float = 1.0
    cap: bool = False
    reserve_share: float = 0.0
    values: tuple[str, ...] = ()


def pool_terms(policy: Policy) -> list[PoolTerms]:
    """One :class:`PoolTerms` per pool of ``policy`` (a single pool ``"all"`` without pools)."""
    from casemix._money import yuan_to_fen

    el = policy.elastic

    def terms(
        name: str, budget_fen: int, rate: float | None, reserve_share: float, values: tuple[str, ...] = ()
    ) -> PoolTerms:
        return PoolTerms(
            name=name,
            budget_fen=budget_fen,
            method=policy.method,
            form=policy.point_form,
            fund_ratio=policy.fund_ratio,
            fen_per_point=None if rate is None else float(rate) * FEN_PER_YUAN / policy.points_per_rw,
            elastic=el.enabled,
            base_share=el.base_share,
            cap=el.cap,
            reserve_share=reserve_share,
            values=values,
        )

    if not policy.pools:
        return [terms(ALL, policy.budget_fen, policy.rate_yuan, policy.quality_reserve)]
    return [
        terms(
            name,
            yuan_to_fen(pool.budget) if pool.budget is not None else 0,
            pool.rate_yuan if pool.rate_yuan is not None else policy.rate_yuan,
            pool.quality_reserve if pool.quality_reserve is not None else policy.quality_reserve,
            tuple(pool.values or POOL_VALUES.get(name, ())),
        )
        for name, pool in policy.pools.items()
    ]


def pool_codes(insurance_type: Sequence[str | None] | np.ndarray, terms: list[PoolTerms]) -> np.ndarray:
    """Pool index per case from its ``insurance_type`` value (−1 if no pool takes it)."""
    lookup = {v: i for i, t in enumerate(terms) for v in t.values}
    return np.array([-1 if v is None else lookup.get(str(v), -1) for v in insurance_type], dtype=np.int64)


@dataclass(frozen=True)
class HospitalSums:
    """Per-hospital sums of one pool (arrays indexed by hospital code)."""

    points: np.ndarray
    outside_fen: np.ndarray
    outside_fund_fen: np.ndarray
    patient_fen: np.ndarray


def fund_of_outside(terms: PoolTerms, outside_fen: np.ndarray) -> np.ndarray:
    """The fund's part of amounts settled outside the points (ratio form: × 医保支付比例).

    Under the ``actual`` form the patient share is subtracted case by case
    in :func:`case_amounts` instead, so this is the amount itself.
    """
    o = np.asarray(outside_fen, dtype=np.int64)
    if terms.form == "ratio":
        return round_half_up(o * terms.fund_ratio)
    return o


def hospital_sums(
    terms: PoolTerms,
    hosp: np.ndarray,
    n_hosp: int,
    points: np.ndarray,
    outside_fen: np.ndarray,
    patient_fen: np.ndarray,
) -> HospitalSums:
    """Step 1: a pool's per-hospital sums (points in float, money in exact Int64 fen)."""
    # astype: bincount of no cases is Int64 even with float weights
    return HospitalSums(
        points=np.bincount(hosp, weights=points, minlength=n_hosp).astype(np.float64),
        outside_fen=int_sums(hosp, outside_fen, n_hosp),
        outside_fund_fen=int_sums(hosp, fund_of_outside(terms, outside_fen), n_hosp),
        patient_fen=int_sums(hosp, patient_fen, n_hosp),
    )


@dataclass(frozen=True)
class PoolValues:
    """Step 2's result for one pool.

    ``money_fen`` is the point money M: settled amounts (``actual`` form)
    or fund payments (``ratio`` form) to be paid for points;
    ``hospital_fen`` its split over hospitals; ``retained_fen`` the part an
    elastic cap (or a year without increments) leaves with the fund.  Point
    values are yuan of settled amount per point.
    """

    money_fen: int
    hospital_fen: np.ndarray
    retained_fen: int
    total_points: float
    pv_final: float | None
    pv_base: float | None
    pv_floating: float | None
    base_points: np.ndarray = field(repr=False)
    incremental_points: np.ndarray = field(repr=False)


def point_values(
    terms: PoolTerms, sums: HospitalSums, base_volume: np.ndarray | None = None, *, source: str = "<Policy>"
) -> PoolValues:
    """Step 2: point value(s) of a pool and each hospital's point money.

    Point method [Z; A §7]:

    - ``actual``: M = B + Σ patient share − Σ outside;
      PV = M ÷ Σ points (settled yuan per point);
    - ``ratio``: M = B − Σ fund part of outside (fund fen);
      PV = M ÷ ratio ÷ Σ points.

    Single point value: M is split over hospitals by points.  Elastic
    (弹性点值, [A §4.3]) with base volumes ``V_h``: ``PV_base = s × M / ΣV``,
    ``b_h = min(P_h, V_h)``, ``i_h = P_h − b_h``, ``PV_float = (M −
    PV_base Σb) / Σi`` (≤ PV_base with ``cap``), hospital h's money
    ``PV_base b_h + PV_float i_h`` split exactly (largest remainder) over
    hospitals from the total actually paid; a cap that binds, or a year in
    which no hospital exceeds its base volume, leaves ``retained`` with the
    fund.

    Rate method: no region step is needed; this returns the point values
    implied by the rate (``fen_per_point``) and zero point money.
    """
    p = np.asarray(sums.points, dtype=np.float64)
    n = p.size
    total_points = float(p.sum())
    zeros = np.zeros(n, dtype=np.int64)
    if terms.method == "rate":
        pv = terms.fen_per_point / FEN_PER_YUAN if terms.fen_per_point is not None else None
        return PoolValues(0, zeros, 0, total_points, pv, pv, pv, p, np.zeros(n))
    patient = int(sums.patient_fen.sum())
    if terms.form == "actual":
        money = terms.budget_fen + patient - int(sums.outside_fen.sum())
        outside = int(sums.outside_fen.sum())
        if money < 0:
            raise PolicyError(
                f"{source}: pool {terms.name}: at-cost payments ({outside} fen) exceed the budget "
                f"({terms.budget_fen} fen) plus the patients' share ({patient} fen); raise the "
                "budget or settle fewer cases at cost"
            )
        to_pv = 1.0
    else:
        outside = int(sums.outside_fund_fen.sum())
        money = terms.budget_fen - outside
        if money < 0:
            raise PolicyError(
                f"{source}: pool {terms.name}: at-cost payments ({outside} fen of "
                f"fund) exceed the budget ({terms.budget_fen} fen); raise the budget "
                "or settle fewer cases at cost"
            )
        to_pv = 1.0 / terms.fund_ratio
    if total_points <= 0:
        if money > 0:
            raise PolicyError(
                f"{source}: pool {terms.name}: no case earns points, so the point "
                f"budget ({money} fen) cannot be paid out"
            )
        return PoolValues(money, zeros, 0, 0.0, None, None, None, p, np.zeros(n))
    single = money / total_points * to_pv / FEN_PER_YUAN
    if not terms.elastic:
        hosp = allocate_grouped(np.array([money]), np.zeros(n, dtype=np.int64), p)
        return PoolValues(money, hosp, 0, total_points, single, single, single, p, np.zeros(n))

    v = np.zeros(n) if base_volume is None else np.asarray(base_volume, dtype=np.float64)
    if v.shape != p.shape or np.any(v < 0) or not np.isfinite(v).all():
        raise PolicyError(
            f"{source}: pool {terms.name}: base volumes must be finite points >= 0, one per hospital"
        )
    if v.sum() <= 0:
        raise PolicyError(
            f"{source}: pool {terms.name}: elastic point value needs base volumes "
            "(prior-year points per hospital): none is positive; give "
            "elastic.base_volume or a prior-year frame"
        )
    # v is each hospital's prior-year volume; the base share of that volume (7-8成) is paid at
    # the base value, so PV_base = share × M ÷ (share × Σ v) = M ÷ Σ v: with the region's volume
    # unchanged both values equal the single one, and growth beyond it floats below the base
    base = terms.base_share * v
    b = np.minimum(p, base)
    i = p - b
    pv_b = money / float(v.sum())
    if not np.isfinite(pv_b):
        # a base volume total so small (subnormal) that M ÷ ΣV overflows: no base point value
        # exists, and inf × 0 would turn the base payments into NaN
        raise PolicyError(
            f"{source}: pool {terms.name}: base volumes too small to price a point: they add up "
            f"to {float(v.sum())!r} points, and the base point value (budget ÷ that) overflows; "
            "give base volumes in points (prior-year points per hospital)"
        )
    base_pay = pv_b * float(b.sum())
    inc = float(i.sum())
    pv_f = (money - base_pay) / inc if inc > 0 else 0.0
    capped = terms.cap and pv_f > pv_b
    if capped:
        pv_f = pv_b
    # one value for every point when the two agree up to float noise (base share 1 with base
    # volumes adding up to the points): then the split is by the points themselves, the very
    # shares of the single value, so the same fen go to the same hospitals.  pv_f comes from
    # money - base_pay, whose rounding error is ~eps x money, so the noise is judged on the
    # money the increments would move, (pv_f - pv_b) x inc, against the whole pool's
    a = pv_b * b + pv_f * i
    same = inc > 0 and abs(pv_f - pv_b) * inc <= 1e-12 * abs(pv_b) * total_points
    shares = p if same else a
    paid = money if inc > 0 and not capped else min(money, int(round_half_up(np.array([a.sum()]))[0]))
    hosp = (
        allocate_grouped(np.array([paid]), np.zeros(n, dtype=np.int64), shares)
        if paid > 0
        else np.zeros(n, dtype=np.int64)
    )
    f = to_pv / FEN_PER_YUAN
    return PoolValues(
        money, hosp, money - paid, total_points, paid / total_points * f, pv_b * f, pv_f * f, b, i
    )


@dataclass(frozen=True)
class CaseAmounts:
    """Step 3's per-case amounts in fen (Int64): settled, fund, patient, point part."""

    point_fen: np.ndarray
    settled_fen: np.ndarray
    fund_fen: np.ndarray
    patient_fen: np.ndarray


def case_amounts(
    terms: PoolTerms,
    hosp: np.ndarray,
    points: np.ndarray,
    outside_fen: np.ndarray,
    patient_fen: np.ndarray,
    hospital_fen: np.ndarray,
    point_fen: np.ndarray | None = None,
) -> CaseAmounts:
    """Step 3: each hospital's point money over its cases, then settled / fund / patient.

    - point method: case point money = the hospital's money split by points
      (largest remainder, :func:`casemix._money.allocate_grouped`);
    - rate method: ROUND_HALF_UP(points × rate ÷ points per RW), i.e.
      RW × rate × coefficient (× the case rule's factor);
    - ``actual`` form: settled = point part + outside, fund = settled −
      patient share.  A patient share above the settled amount gives a
      negative fund amount for that case, netted within the hospital's
      fund payment: the hospital keeps what the patient paid and the fund
      pays the hospital's total settled amount minus its patients' total
      (Zhejiang 2019: 年度结算 = 总点数 × 点值 − 个人负担 [Z]);
    - ``ratio`` form: fund = point part × 1 (point method: the money is
      fund money) or ROUND_HALF_UP(settled × ratio) (rate method); settled =
      point part ÷ ratio; patient = settled − fund (the notional share).

    ``point_fen``, when given, is the point method's split already made
    elsewhere (a distributed settlement allocates it across partitions,
    ``casemix.dask``); ``hospital_fen`` is then not read.
    """
    pts = np.asarray(points, dtype=np.float64)
    o = np.asarray(outside_fen, dtype=np.int64)
    if terms.method == "rate":
        fpp = terms.fen_per_point or 0.0
        point = round_half_up(pts * fpp)
        settled = point + o
        if terms.form == "ratio":
            fund = round_half_up(settled * terms.fund_ratio)
            return CaseAmounts(point, settled, fund, settled - fund)
        q = np.asarray(patient_fen, dtype=np.int64)
        return CaseAmounts(point, settled, settled - q, q)
    point = (
        allocate_grouped(hospital_fen, hosp, pts) if point_fen is None else np.asarray(point_fen, np.int64)
    )
    if terms.form == "ratio":
        fund = point + fund_of_outside(terms, o)
        settled = round_half_up(point / terms.fund_ratio) + o
        return CaseAmounts(point, settled, fund, settled - fund)
    q = np.asarray(patient_fen, dtype=np.int64)
    settled = point + o
    return CaseAmounts(point, settled, settled - q, q)


def corridor_adjustment(fund_fen: np.ndarray, fund_cost_fen: np.ndarray, corridors: Corridors) -> np.ndarray:
    """结余留用 / 超支分担: the fund's adjustment to each hospital's settled fund payment, fen.

    With ``F`` the settled fund payment and ``C`` the itemised fund cost
    (记账): a surplus ``F − C > 0`` is cut into bands of ``C``; the hospital
    keeps ``share`` of each band's part and nothing beyond the last band, so
    the fund pays ``C + kept`` (adjustment ``kept − (F − C)`` ≤ 0).  An
    overspend ``C − F > 0`` likewise: the hospital bears ``share`` of each
    band's part and all beyond the last band; the fund adds the rest
    (adjustment ≥ 0).  A side without bands is off (the settled payment
    stands), as is a hospital with ``C <= 0``.  Kept and borne amounts are
    rounded ROUND_HALF_UP to the fen.  [A §7.3, A-规 §33; the bands are
    local policy]
    """
    F = np.asarray(fund_fen, dtype=np.int64)
    C = np.asarray(fund_cost_fen, dtype=np.int64)
    d = (F - C).astype(np.float64)
    cf = C.astype(np.float64)
    adj = np.zeros(F.size, dtype=np.int64)

    def banded(excess: np.ndarray, bands: Sequence, beyond: float) -> np.ndarray:
        total = np.zeros(excess.size)
        lo = 0.0
        for band in bands:
            part = np.clip(excess - lo * cf, 0.0, (band.upto - lo) * cf)
            total += band.share * part
            lo = band.upto
        return total + beyond * np.maximum(excess - lo * cf, 0.0)

    ok = C > 0
    if corridors.surplus:
        s = ok & (d > 0)
        kept = round_half_up(banded(np.where(s, d, 0.0), corridors.surplus, 0.0))
        adj = np.where(s, kept - (F - C), adj)
    if corridors.overspend:
        o = ok & (d < 0)
        borne = round_half_up(banded(np.where(o, -d, 0.0), corridors.overspend, 1.0))
        adj = np.where(o, (C - F) - borne, adj)
    return adj.astype(np.int64)


def base_volume_array(
    table: Mapping[tuple[str, str], float], hospitals: Sequence[str], pool: str
) -> np.ndarray:
    """Base volume per hospital code of one pool from ``{(hospital_id, pool): points}``.

    A pool name of ``"all"`` in the table applies to every pool; hospitals
    absent have 0 (all their points are incremental).
    """
    return np.array([table.get((h, pool), table.get((h, ALL), 0.0)) for h in hospitals], dtype=np.float64)
