"""One settlement's money, all pools: the three core steps run in memory.

:func:`settle_money` is what :func:`casemix.settle.settle` (DRG) and
:func:`casemix.dip.settle` (DIP) call once their cases have points; the
Dask path runs the same steps of :mod:`casemix.payment.core` per hospital.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from casemix._money import round_half_up
from casemix.budget import Policy
from casemix.errors import PolicyError
from casemix.payment.core import (
    HospitalSums,
    PoolTerms,
    PoolValues,
    base_volume_array,
    case_amounts,
    corridor_adjustment,
    hospital_sums,
    int_sums,
    point_values,
)

__all__ = ["Money", "pool_region", "pool_rows", "settle_money"]


@dataclass(frozen=True)
class Money:
    """Per-case amounts (input order, Int64 fen) and the per-pool tables.

    ``pool_hospitals``: one row per pool × hospital; ``pool_region``: one
    row per pool.  Per-hospital combined arrays (index = hospital code) sum
    the pools.
    """

    point_fen: np.ndarray | None  # None when settle_money was asked not to keep it
    settled_fen: np.ndarray
    fund_fen: np.ndarray | None  # None when settle_money was asked not to keep it
    patient_fen: np.ndarray
    pool_hospitals: pl.DataFrame
    pool_region: pl.DataFrame | None
    hospital: dict[str, np.ndarray]


#: cases per part of the money step (whole hospitals of one pool): its per-case temporaries
#: (gathers, the split's working arrays: about 100 B per case) exist for one part at a time
#: (2^19 cases: ~50 MB, under the per-case arrays that live through a 10M-case settlement)
PART_CASES = 1 << 19


def settle_money(
    policy: Policy,
    terms: list[PoolTerms],
    *,
    pool: np.ndarray,
    hosp: np.ndarray,
    hospitals: list[str],
    points: np.ndarray,
    outside_fen: np.ndarray,
    patient_fen: np.ndarray,
    fund_cost_fen: np.ndarray | None,
    base_volume: Mapping[tuple[str, str], float] | None = None,
    values: Mapping[str, PoolValues] | None = None,
    keep_point_fen: bool = True,
    fund_cost_sums: np.ndarray | None = None,
    keep_fund_fen: bool = True,
) -> Money:
    """Settle every pool: point values, hospitals' money, cases' settled/fund/patient fen.

    Parameters
    ----------
    pool, hosp
        Pool index (into ``terms``) and hospital code (into ``hospitals``) per case.
    points
        Adjusted points per case (0 for cases paid outside the points).
    outside_fen
        Amount settled outside the points per case (at cost, by item, 除外支付).
    patient_fen
        Patient share per case (zeros when the cases carry none).
    fund_cost_fen
        Itemised fund cost per case (``fund_paid``), needed by corridors.
    base_volume
        ``{(hospital_id, pool): points}`` for the elastic point value.
    values
        Step 2 already done elsewhere (Dask: over the whole region): per pool,
        :class:`PoolValues` whose per-hospital arrays align with ``hospitals``.
        ``pool_region`` is then left to the caller (:func:`pool_region`).
    keep_point_fen
        Keep each case's point part (:attr:`Money.point_fen`); ``False``
        spares an Int64 array per case when only the hospitals' sums of it
        are wanted.
    fund_cost_sums
        Instead of ``fund_cost_fen``: its sums per pool × hospital, ``(len(terms), len(hospitals))``.
    keep_fund_fen
        ``False`` under the ``actual`` form: :attr:`Money.fund_fen` is ``None``, the caller
        computes it as settled − patient share (what :func:`case_amounts` does) when it needs it.

    Each pool's cases are settled in parts of whole hospitals (:data:`PART_CASES`): every sum
    and split is per hospital, so the parts give the same fen as the whole pool at once.
    """
    n, n_hosp = points.size, len(hospitals)
    # under the actual form every case's patient share is the one given: no copy of it
    given = all(t.form == "actual" for t in terms)
    keep_fund = keep_fund_fen or not given
    kept = (
        "settled",
        *(("fund",) if keep_fund else ()),
        *(() if given else ("patient",)),
        *(("point",) if keep_point_fen else ()),
    )
    out = {k: np.zeros(n, dtype=np.int64) for k in kept}
    if policy.corridors.enabled and fund_cost_fen is None and fund_cost_sums is None:
        raise PolicyError("corridors (结余留用/超支分担) need column fund_paid")
    part, ranges = _parts(pool, hosp, len(terms), n_hosp)
    h_rows, found = [], {}
    combined = {
        k: np.zeros(n_hosp, dtype=np.int64)
        for k in ("point", "outside", "settled", "fund", "patient", "fund_cost", "corridor", "reserve")
    }
    for k, t in enumerate(terms):
        fc_h = np.zeros(n_hosp, dtype=np.int64) if fund_cost_sums is None else fund_cost_sums[k]
        # step 1, part by part: each hospital's sums come from one part (the others add 0)
        sums = None
        for j, _range in ranges[k]:
            idx = _rows(part, j, n)
            h = hosp[idx]
            got = hospital_sums(t, h, n_hosp, points[idx], outside_fen[idx], patient_fen[idx])
            sums = got if sums is None else _added(sums, got)
            if fund_cost_fen is not None:
                fc_h += int_sums(h, fund_cost_fen[idx], n_hosp)
            del idx, h
        assert sums is not None  # _parts gives every pool at least one part
        if values is not None:
            v = values[t.name]
        else:
            vol = base_volume_array(base_volume or {}, hospitals, t.name) if t.elastic else None
            v = point_values(t, sums, vol, source=policy.source)
        found[t.name] = v
        per_h = {
            x: np.zeros(n_hosp, dtype=np.int64) for x in ("cases", "point", "settled", "fund", "patient")
        }
        negative = np.zeros(n_hosp, dtype=np.int64)
        for j, (a, b) in ranges[k]:
            idx = _rows(part, j, n)
            h = hosp[idx]
            # the part's hospitals' point money only: the others have no case here
            hospital_fen = np.zeros_like(v.hospital_fen)
            hospital_fen[a:b] = v.hospital_fen[a:b]
            amounts = case_amounts(t, h, points[idx], outside_fen[idx], patient_fen[idx], hospital_fen)
            out["settled"][idx] = amounts.settled_fen
            if keep_fund:
                out["fund"][idx] = amounts.fund_fen
            if keep_point_fen:
                out["point"][idx] = amounts.point_fen
            if not given:
                out["patient"][idx] = amounts.patient_fen
            per_h["cases"] += np.bincount(h, minlength=n_hosp)
            for what, fen in (
                ("point", amounts.point_fen),
                ("settled", amounts.settled_fen),
                ("fund", amounts.fund_fen),
                ("patient", amounts.patient_fen),
            ):
                per_h[what] += int_sums(h, fen, n_hosp)
            negative += np.bincount(h[amounts.fund_fen < 0], minlength=n_hosp)
            # this part's per-case arrays go before the next part's are made
            del idx, h, amounts
        per, rows = pool_rows(
            policy,
            t,
            v,
            hospitals,
            cases=per_h["cases"],
            points=sums.points,
            point=per_h["point"],
            outside=sums.outside_fen,
            settled=per_h["settled"],
            fund=per_h["fund"],
            patient=per_h["patient"],
            fund_cost=fc_h,
            negative=negative,
        )
        for name, x in per.items():
            combined[name] += x
        h_rows.append(rows)
    del part
    ph = pl.concat(h_rows)  # one frame per pool; pool_terms gives at least one
    pr = pool_region(policy, terms, found, ph) if values is None else None
    return Money(
        point_fen=out.get("point"),
        settled_fen=out["settled"],
        fund_fen=out.get("fund"),
        patient_fen=np.asarray(patient_fen, dtype=np.int64) if given else out["patient"],
        pool_hospitals=ph,
        pool_region=pr,
        hospital=combined,
    )


def _parts(
    pool: np.ndarray, hosp: np.ndarray, n_pools: int, n_hosp: int
) -> tuple[np.ndarray | None, list[list[tuple[int, tuple[int, int]]]]]:
    """Each case's part and each pool's parts ``(part, (first hospital, end))``.

    A part is a range of whole hospitals of one pool with about :data:`PART_CASES` cases;
    ``None`` for the part codes when the cases are one part.
    """
    counts = np.zeros(n_pools * n_hosp, dtype=np.int64)
    for a in range(0, hosp.size, PART_CASES):
        s = slice(a, a + PART_CASES)
        counts += np.bincount(pool[s].astype(np.int64) * n_hosp + hosp[s], minlength=n_pools * n_hosp)
    ranges: list[list[tuple[int, tuple[int, int]]]] = []
    table = np.zeros(n_pools * n_hosp, dtype=np.int64)
    j = 0
    for k in range(n_pools):
        c = counts[k * n_hosp : (k + 1) * n_hosp]
        cut = (np.cumsum(c) - c) // PART_CASES  # hospitals with the same cut: one part
        starts = [0, *(np.flatnonzero(np.diff(cut)) + 1).tolist()] if n_hosp else [0]
        ends = [*starts[1:], n_hosp]
        ranges.append([(j + i, (a, b)) for i, (a, b) in enumerate(zip(starts, ends, strict=True))])
        for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
            table[k * n_hosp + a : k * n_hosp + b] = j + i
        j += len(starts)
    if j == 1:
        return None, ranges
    part = np.empty(hosp.size, dtype=np.int16 if j < 2**15 else np.int32)
    for a in range(0, hosp.size, PART_CASES):
        s = slice(a, a + PART_CASES)
        part[s] = table[pool[s].astype(np.int64) * n_hosp + hosp[s]]
    return part, ranges


def _rows(part: np.ndarray | None, j: int, n: int) -> np.ndarray | slice:
    """The cases of part ``j``, in input order (every case when there is one part)."""
    return slice(0, n) if part is None else np.flatnonzero(part == j)


def _added(x: HospitalSums, y: HospitalSums) -> HospitalSums:
    """Sums of two parts with no hospital in common (floats: x + 0 is x, exactly)."""
    return HospitalSums(*(getattr(x, f) + getattr(y, f) for f in HospitalSums.__dataclass_fields__))


def pool_rows(
    policy: Policy,
    terms: PoolTerms,
    values: PoolValues,
    hospitals: list[str],
    *,
    cases: np.ndarray,
    points: np.ndarray,
    point: np.ndarray,
    outside: np.ndarray,
    settled: np.ndarray,
    fund: np.ndarray,
    patient: np.ndarray,
    fund_cost: np.ndarray,
    negative: np.ndarray,
) -> tuple[dict[str, np.ndarray], pl.DataFrame]:
    """One pool's per-hospital sums → its 结余留用/超支分担, reserve and rows of ``pool_hospitals``.

    The arrays are indexed like ``hospitals`` (fen sums, case counts,
    ``negative``: cases whose patient share exceeds their settled amount);
    a distributed settlement passes the sums it reduced across partitions.
    Returns the per-hospital amounts (``point`` … ``reserve``) and the rows
    of the hospitals with cases in the pool.
    """
    n_hosp = len(hospitals)
    corridor = (
        corridor_adjustment(fund, fund_cost, policy.corridors)
        if policy.corridors.enabled
        else np.zeros(n_hosp, dtype=np.int64)
    )
    final = fund + corridor
    reserve = round_half_up(np.maximum(final, 0) * terms.reserve_share)
    per = {
        "point": point,
        "outside": outside,
        "settled": settled,
        "fund": fund,
        "patient": patient,
        "fund_cost": fund_cost,
        "corridor": corridor,
        "reserve": reserve,
    }
    rows = pl.DataFrame(
        {
            "pool": pl.Series([terms.name] * n_hosp, dtype=pl.String),
            "hospital_id": pl.Series(hospitals, dtype=pl.String),
            "cases": np.asarray(cases, dtype=np.int64),
            "points": np.asarray(points, dtype=np.float64),
            "base_points": np.asarray(values.base_points, dtype=np.float64),
            "incremental_points": np.asarray(values.incremental_points, dtype=np.float64),
            "point_fen": point,
            "outside_fen": outside,
            "settled_fen": settled,
            "patient_fen": patient,
            "fund_fen": fund,
            "fund_cost_fen": fund_cost,
            "corridor_fen": corridor,
            "final_fund_fen": final,
            "reserve_fen": reserve,
            "n_patient_above_settled": np.asarray(negative, dtype=np.int64),
        }
    ).filter(pl.Series(np.asarray(cases) > 0))
    return per, rows


def pool_region(
    policy: Policy, terms: list[PoolTerms], values: Mapping[str, PoolValues], pool_hospitals: pl.DataFrame
) -> pl.DataFrame:
    """One row per pool from the step-2 values and the per-hospital rows of every hospital.

    Raises
    ------
    PolicyError
        Point method: fund payments + retained differ from the pool's budget
        (the money rule makes this impossible; a check that fails is an
        error, never a quiet "mismatch").
    """
    rows = []
    for t in terms:
        v = values[t.name]
        ph = pool_hospitals.filter(pl.col("pool") == t.name)

        def tot(c: str, ph: pl.DataFrame = ph) -> int:
            return int(ph[c].sum())

        paid = tot("fund_fen")
        check = None
        if t.method == "point":
            check = paid + v.retained_fen == t.budget_fen
            if not check:
                raise PolicyError(
                    f"pool {t.name}: fund payments {paid} + retained "
                    f"{v.retained_fen} fen differ from the budget "
                    f"{t.budget_fen} fen (an internal error; please report it)"
                )
        rows.append(
            {
                "pool": t.name,
                "method": t.method,
                "point_form": t.form,
                "cases": tot("cases"),
                "hospitals": int((ph["cases"] > 0).sum()),
                "budget_fen": t.budget_fen,
                "patient_fen": tot("patient_fen"),
                "outside_fen": tot("outside_fen"),
                "point_money_fen": v.money_fen,
                "total_points": v.total_points,
                "pv_base": v.pv_base,
                "pv_floating": v.pv_floating,
                "pv_final": v.pv_final,
                "settled_fen": tot("settled_fen"),
                "fund_fen": paid,
                "retained_fen": v.retained_fen,
                "budget_check": check,
                "corridor_fen": tot("corridor_fen"),
                "fund_outlay_fen": tot("final_fund_fen"),
                "outlay_minus_budget_fen": tot("final_fund_fen") - t.budget_fen,
                "fund_cost_fen": tot("fund_cost_fen"),
                "reserve_fen": tot("reserve_fen"),
            }
        )
    return pl.DataFrame(
        rows,
        schema_overrides={
            "pv_base": pl.Float64,
            "pv_floating": pl.Float64,
            "pv_final": pl.Float64,
            "budget_check": pl.Boolean,
            "total_points": pl.Float64,
        },
    )
