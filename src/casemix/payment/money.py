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
    fund_fen: np.ndarray
    patient_fen: np.ndarray
    pool_hospitals: pl.DataFrame
    pool_region: pl.DataFrame | None
    hospital: dict[str, np.ndarray]


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
    """
    n, n_hosp = points.size, len(hospitals)
    # under the actual form every case's patient share is the one given: no copy of it
    given = all(t.form == "actual" for t in terms)
    kept = ("settled", "fund", *(() if given else ("patient",)), *(("point",) if keep_point_fen else ()))
    out = {k: np.zeros(n, dtype=np.int64) for k in kept}
    if policy.corridors.enabled and fund_cost_fen is None:
        raise PolicyError("corridors (结余留用/超支分担) need column fund_paid")
    h_rows, found = [], {}
    combined = {
        k: np.zeros(n_hosp, dtype=np.int64)
        for k in ("point", "outside", "settled", "fund", "patient", "fund_cost", "corridor", "reserve")
    }
    for k, t in enumerate(terms):
        idx = np.flatnonzero(pool == k) if len(terms) > 1 else np.arange(n)
        # the fund cost's sums first: its gather is gone before the cases' amounts are made
        fc_h = (
            int_sums(hosp[idx], fund_cost_fen[idx], n_hosp)
            if fund_cost_fen is not None
            else np.zeros(n_hosp, dtype=np.int64)
        )
        h, p, o, q = hosp[idx], points[idx], outside_fen[idx], patient_fen[idx]
        sums = hospital_sums(t, h, n_hosp, p, o, q)
        if values is not None:
            v = values[t.name]
        else:
            vol = base_volume_array(base_volume or {}, hospitals, t.name) if t.elastic else None
            v = point_values(t, sums, vol, source=policy.source)
        found[t.name] = v
        amounts = case_amounts(t, h, p, o, q, v.hospital_fen)
        out["settled"][idx], out["fund"][idx] = amounts.settled_fen, amounts.fund_fen
        if keep_point_fen:
            out["point"][idx] = amounts.point_fen
        if not given:
            out["patient"][idx] = amounts.patient_fen
        per, rows = pool_rows(
            policy,
            t,
            v,
            hospitals,
            cases=np.bincount(h, minlength=n_hosp),
            points=sums.points,
            point=int_sums(h, amounts.point_fen, n_hosp),
            outside=sums.outside_fen,
            settled=int_sums(h, amounts.settled_fen, n_hosp),
            fund=int_sums(h, amounts.fund_fen, n_hosp),
            patient=int_sums(h, amounts.patient_fen, n_hosp),
            fund_cost=fc_h,
            negative=np.bincount(h[amounts.fund_fen < 0], minlength=n_hosp).astype(np.int64),
        )
        for name, x in per.items():
            combined[name] += x
        h_rows.append(rows)
        # this pool's per-case arrays go before the next pool's are made (10M cases: 40 MB each)
        del idx, h, p, o, q, amounts
    ph = pl.concat(h_rows)  # one frame per pool; pool_terms gives at least one
    pr = pool_region(policy, terms, found, ph) if values is None else None
    return Money(
        point_fen=out.get("point"),
        settled_fen=out["settled"],
        fund_fen=out["fund"],
        patient_fen=np.asarray(patient_fen, dtype=np.int64) if given else out["patient"],
        pool_hospitals=ph,
        pool_region=pr,
        hospital=combined,
    )


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
