"""Settlement on Dask, equal to :func:`casemix.settle.settle` to the fen.

Every step is a public function of the settlement core, the same code
the in-memory settlement runs (:func:`casemix.settle.case_points`,
:func:`casemix.payment.core.point_values`, :func:`casemix.settle.pay_cases`,
:func:`casemix.payment.money.pool_region`, :func:`casemix.settle.region_table`):

1. *narrow* (per input partition): only the columns settlement reads, a
   sort key ``_gkey`` = (partition, row) that restores input order,
   validation naming the row;
2. *shuffle by hospital* — the one wide data movement: every rule that
   looks across cases (special-case cap, readmissions — one hospital only:
   cross-hospital pairs are refused —, the split of a hospital's money
   over its cases) stays within a hospital;
3. per partition (whole hospitals, rows back in input order): the cases'
   rules and points, once (``case_points``), kept in cluster memory, and
   the per-hospital sums of each pool (points, money outside the points,
   patient share) → a reduction of one row per hospital and pool;
4. on the client, per pool: the point values and each hospital's point
   money (``point_values``: largest remainder over the hospitals sorted by
   id, as in memory);
5. per partition: the money of its cases (``pay_cases`` with the region's
   values), hospital and pool rows;
6. the per-case columns go back to the input partitions (``set_index`` on
   ``_gkey`` with the input's partition boundaries) and are attached to the
   input rows; the pool and region tables are built from the hospital rows.

A hospital's points are summed over its own cases in input order, as in
memory, and the pool totals over the per-hospital sums in hospital order,
so the split and the point values are reproduced bit for bit.

Limits: every reference cost must be case-independent across hospitals,
i.e. come from the weight table (``mean_cost``, ``mean_los``) — which is
what :func:`casemix.compute_weights` gives and ``HighCost.mean =
"weights"`` (the default) uses.  Policies that compare cases with the
settled year's own group means are refused with a clear message.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from casemix._frames import to_polars
from casemix.budget import Policy
from casemix.dask._rows import KEY, attach, home, keys, partition_of
from casemix.errors import InputError, PolicyError
from casemix.payment.core import (
    HospitalSums,
    PoolValues,
    base_volume_array,
    hospital_sums,
    point_values,
    pool_terms,
)
from casemix.payment.inputs import PATIENT_PARTS
from casemix.payment.money import pool_region
from casemix.settle import (
    CASE_COLUMNS,
    RULES,
    CasePoints,
    Settlement,
    base_volume_table,
    case_points,
    pay_cases,
    region_table,
)
from casemix.weights import Weights

_OPTIONAL = (
    "case_id",
    "adrg",
    "los",
    "discharge",
    "hospital_level",
    "patient_id",
    "admission_date",
    "discharge_date",
    "pdx",
    "insurance_type",
    "patient_share",
    *PATIENT_PARTS,
    "fund_paid",
)
_SPECIAL_NOTE = "listed special case"
#: columns the payment rules read when present (new technology, monthly)
_RULE_COLUMNS = ("new_tech_cost", "audit_deduction")


def _pd(df: pl.DataFrame) -> pd.DataFrame:
    # Arrow-backed columns: the same dtypes for an empty and a full partition
    return df.to_pandas(use_pyarrow_extension_array=True)


# --- 1. narrow ----------------------------------------------------------------------


def _narrow(
    part: pd.DataFrame, cols: list[str], offsets: list[int] | None, partition_info: dict | None = None
) -> pd.DataFrame:
    i = partition_info["number"] if partition_info else 0
    df = to_polars(part[cols])
    # categorical columns as text: Dask's Arrow-based shuffle cannot rebuild dictionary dtypes
    df = df.with_columns(
        pl.col(c).cast(pl.String) for c, t in df.schema.items() if isinstance(t, (pl.Categorical, pl.Enum))
    )
    n = df.height
    local = pl.int_range(n, dtype=pl.Int64, eager=True)
    df = df.with_columns(pl.Series(KEY, keys(i, n)))
    if "case_id" not in df.columns:
        # in memory, cases without a case_id are numbered "1".."n" over all rows
        df = df.with_columns((local + (offsets[i] if offsets else 0) + 1).cast(pl.String).alias("case_id"))
    df = df.with_columns(pl.col("case_id").cast(pl.String), pl.col("hospital_id").cast(pl.String))

    def where(j: int) -> str:
        row = f"row {offsets[i] + j}" if offsets else f"row {j} of partition {i}"
        return f"{row} (case_id {df['case_id'][j]!r})"

    cost = df["total_cost"].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
    bad = ~np.isfinite(cost) | (cost < 0)
    if bad.any():
        raise InputError(
            f"total_cost missing, negative or not a number at "
            f"{where(int(np.flatnonzero(bad)[0]))}; settlement needs every case's "
            "cost in yuan"
        )
    missing = df["hospital_id"].is_null()
    if missing.any():
        raise InputError(f"hospital_id missing at {where(int(missing.arg_true()[0]))}")
    return _pd(df)


class _Settler:
    """The steps of one partition (whole hospitals), with the caller's arguments."""

    def __init__(
        self, policy: Policy, weights: pl.DataFrame | None, points: str | None, group_col: str
    ) -> None:
        self.policy, self.weights, self.points, self.group_col = policy, weights, points, group_col
        self.terms = pool_terms(policy)

    def points_of(self, part: pd.DataFrame, nparts: int) -> dict[str, Any]:
        """Step 3: rules and points of the partition's cases, and per-hospital pool sums."""
        df = to_polars(part)
        came_from = (
            partition_of(df[KEY].to_numpy().astype(np.int64)) if df.height else np.zeros(0, dtype=np.int64)
        )
        counts = np.bincount(came_from, minlength=nparts)
        if df.height == 0:
            return {"cp": None, "key": None, "sums": {}, "notes": None, "found": set(), "counts": counts}
        df = df.sort(KEY)
        key = df[KEY]
        cp = case_points(
            df.drop(KEY), self.policy, weights=self.weights, points=self.points, group_col=self.group_col
        )
        pts = cp.rules["adjusted_points"].to_numpy().astype(np.float64)
        sums = {}
        for k, t in enumerate(self.terms):
            idx = np.flatnonzero(cp.pool == k) if len(self.terms) > 1 else np.arange(pts.size)
            sums[t.name] = hospital_sums(
                t, cp.hosp[idx], len(cp.hospitals), pts[idx], cp.outside_fen[idx], cp.patient_fen[idx]
            )
        ids = set(self.policy.special.case_ids)
        found = set(df.filter(pl.col("case_id").is_in(list(ids)))["case_id"].to_list()) if ids else set()
        notes = tuple(n for n in cp.notes if _SPECIAL_NOTE not in n)
        return {
            "cp": cp,
            "key": key,
            "sums": sums,
            "hospitals": cp.hospitals,
            "notes": notes,
            "found": found,
            "counts": counts,
        }

    def pay(
        self, first: dict[str, Any], values: dict[str, PoolValues], index: dict[str, int]
    ) -> tuple[pd.DataFrame, pl.DataFrame | None, pl.DataFrame | None]:
        """Step 5: the money of the partition's cases with the region's values."""
        cp: CasePoints | None = first["cp"]
        if cp is None:
            return _empty_cases().to_pandas(), None, None
        rows = np.array([index[h] for h in cp.hospitals], dtype=np.int64)
        local = {name: _subset(v, rows) for name, v in values.items()}
        paid = pay_cases(cp, self.policy, values=local)
        per_case = paid.cases.select(*CASE_COLUMNS).with_columns(first["key"])
        return per_case.to_pandas(), paid.hospitals, paid.pool_hospitals


def _subset(v: PoolValues, rows: np.ndarray) -> PoolValues:
    """The region's values of one pool restricted to some hospitals (global row numbers)."""
    return PoolValues(
        v.money_fen,
        v.hospital_fen[rows],
        v.retained_fen,
        v.total_points,
        v.pv_final,
        v.pv_base,
        v.pv_floating,
        v.base_points[rows],
        v.incremental_points[rows],
    )


def _points_of(settler: _Settler, part: pd.DataFrame, nparts: int) -> dict[str, Any]:
    return settler.points_of(part, nparts)


def _pay(
    settler: _Settler, first: dict[str, Any], values: dict[str, PoolValues], index: dict[str, int]
) -> tuple[pd.DataFrame, Any, Any]:
    return settler.pay(first, values, index)


def _case_frame(first: tuple[pd.DataFrame, Any, Any]) -> pd.DataFrame:
    return first[0].astype({KEY: "int64"})


def _check_policy(policy: Policy, wt: pl.DataFrame | None, points: str | None) -> None:
    """Refuse the policies whose reference costs are means over the whole region's cases."""
    why = None
    has = set(wt.columns) if wt is not None else set()
    if policy.high_cost.mean != "weights":
        why = "HighCost.mean = 'cases' compares each case with the settled year's group means"
    elif "mean_cost" not in has:
        why = (
            "the reference costs would come from the settled cases themselves (the weight "
            "table has no mean_cost)"
            if wt is not None
            else "without a weight table the reference costs are the settled cases' group means"
        )
    elif policy.short_stay.enabled and policy.short_stay.basis == "los" and "mean_los" not in has:
        why = "short stays on a LOS basis need mean_los in the weight table"
    elif policy.ungroupable == "points":
        # M (yuan per RW) for cost-converted points: the weight table's median mean_cost / rw,
        # else the settled cases' own cost per RW, a region-wide sum
        ratio = (
            (wt["mean_cost"].cast(pl.Float64) / wt["rw"].cast(pl.Float64))
            .filter(wt["rw"].cast(pl.Float64) > 0)
            .drop_nans()
        )
        m = ratio.median() if ratio.len() else None
        if m is None or not math.isfinite(m):
            why = (
                "ungroupable = 'points' would convert costs at the settled cases' own cost "
                "per RW (the weight table gives no finite median mean_cost / rw)"
            )
    if why:
        raise InputError(
            f"casemix.dask.settle: {why}, a region-wide mean this version does not "
            "reduce across partitions; pass weights with mean_cost (and mean_los) "
            "as casemix.compute_weights gives them, or settle in memory"
        )


def settle(
    ddf: Any,
    policy: Policy,
    *,
    weights: Weights | Any = None,
    points: str | None = None,
    group_col: str = "drg",
    persist: bool = True,
    base_volume: Any = None,
) -> Settlement:
    """Settle grouped cases of a Dask DataFrame; equal to :func:`casemix.settle.settle` to the fen.

    Parameters
    ----------
    ddf
        A ``dask.dataframe.DataFrame`` of grouped cases with the columns
        :func:`casemix.settle.settle` reads.
    policy, weights, points, group_col, base_volume
        As for :func:`casemix.settle.settle`.  ``weights`` (a
        :class:`~casemix.weights.Weights` or a small table) is sent to every
        worker and must carry ``mean_cost`` (see the module's limits).
    persist
        Keep the hospital-sorted cases and their points in cluster memory
        between the two passes; ``False`` recomputes them instead.

    Returns
    -------
    Settlement
        ``cases`` is a lazy Dask DataFrame: the input partitions, rows and
        columns, plus ``rw`` … ``payment_fen`` as in memory.  ``hospitals``,
        ``region``, ``pool_hospitals`` and ``pool_region`` are small pandas
        frames, already computed.

    Raises
    ------
    InputError
        As :func:`casemix.settle.settle` (a bad row is named by its row
        number over all partitions when ``case_id`` is absent, else within
        its partition, and its case_id); a policy whose reference costs are
        region-wide case means.
    PolicyError
        As :func:`casemix.settle.settle`.
    """
    import dask
    import dask.dataframe as dd

    if not isinstance(policy, Policy):
        raise PolicyError(f"policy must be a casemix.budget.Policy, got {type(policy).__name__}")
    if weights is None and points is None:
        raise InputError(
            "settle needs weights= (a weight table) or points= (a column of precomputed base points)"
        )
    columns = list(ddf.columns)
    need = ["hospital_id", "total_cost", group_col] + ([points] if points else [])
    missing = [c for c in need if c not in columns]
    if missing:
        raise InputError(
            f"cases lack column(s) {', '.join(missing)}; settlement needs a grouped "
            "frame with hospital_id, total_cost and the group code"
        )
    wt = None
    if weights is not None:
        wt = to_polars(weights.table if isinstance(weights, Weights) else weights)
    _check_policy(policy, wt, points)
    ra = policy.readmission
    if ra.enabled and not ra.same_hospital and "patient_id" in columns:
        # cases are settled hospital by hospital, so a pair across hospitals is not seen
        raise InputError(
            "casemix.dask.settle: readmissions pair across hospitals "
            "(readmission.same_hospital = false), which this version does not "
            "reduce across partitions; set readmission.same_hospital = true or "
            "readmission.enabled = false, or settle in memory"
        )
    if policy.special.active or policy.outliers.reference == "level_mean":
        # both look across hospitals: the 特例单议 cap is the region's, the same-level mean
        # is taken over every hospital of a level
        what = (
            "special_cases (the 特例单议 cap is region-wide)"
            if policy.special.active
            else "outliers.reference = 'level_mean' (a mean over hospitals)"
        )
        raise PolicyError(
            f"casemix.dask.settle: {what} needs the whole region at once, which "
            "this version does not reduce across partitions; settle in memory "
            "(casemix.settle.settle) or leave the rule out"
        )
    if policy.monthly.enabled:
        # the hospital × month tables are built in memory only; never drop them silently
        raise PolicyError(
            "casemix.dask.settle: monthly pre-settlement ([monthly] enabled) is not "
            "computed on Dask in this version; settle in memory "
            "(casemix.settle.settle) or set monthly.enabled = false"
        )
    if policy.new_tech.enabled and "new_tech_cost" not in columns:
        # a code list reads the procedure lists, which the shuffle by hospital does not carry
        raise PolicyError(
            "new_tech on casemix.dask needs the column new_tech_cost "
            "(新药新技术费用), which the cases lack (new_tech.codes works in memory)"
        )
    cols = list(
        dict.fromkeys(
            need + [c for c in _OPTIONAL if c in columns] + [c for c in _RULE_COLUMNS if c in columns]
        )
    )
    # Optimise once, now: dask may fuse small Parquet partitions when columns are projected,
    # which would change the partition count between the pass that numbers the rows and the
    # pass that attaches the results.  An optimised frame keeps its partitions.
    ddf = ddf.optimize()
    offsets = None
    if "case_id" not in columns:
        lengths = ddf.map_partitions(len).compute()
        offsets = [0, *np.cumsum(list(lengths)).tolist()]
    nparts = ddf.npartitions
    settler = _Settler(policy, wt, points, group_col)
    terms = settler.terms

    # 1. narrow, 2. shuffle by hospital (the one shuffle)
    meta_in = _narrow(ddf._meta[cols], cols, offsets)
    # not ddf[cols]: a column projection lets dask fuse small Parquet partitions, and the
    # partition numbers in _gkey must be those of ddf itself, which the results go back to
    narrow = ddf.map_partitions(_narrow, cols, offsets, meta=meta_in)
    by_hosp = narrow.shuffle("hospital_id", npartitions=nparts)
    parts = by_hosp.to_delayed()

    # 3. each hospital's rules and points, once; per-hospital sums to the client
    settler_d = dask.delayed(settler, pure=True)  # one graph key, not a copy per task
    first_d = [dask.delayed(_points_of)(settler_d, p, nparts) for p in parts]
    if persist:
        first_d = list(dask.persist(*first_d))
    summary = dask.compute(*[dask.delayed(_summary)(f) for f in first_d])
    hospitals = sorted(h for s_ in summary for h in s_["hospitals"])
    if len(set(hospitals)) < len(hospitals):
        raise InputError("internal: a hospital was split over two partitions by the shuffle")
    index = {h: i for i, h in enumerate(hospitals)}

    # 4. the region, per pool: point values and each hospital's point money
    volume = base_volume_table(base_volume, policy)
    values = {}
    for t in terms:
        n = len(hospitals)
        arrays = {
            f: np.zeros(n, dtype=np.float64 if f == "points" else np.int64)
            for f in ("points", "outside_fen", "outside_fund_fen", "patient_fen")
        }
        for s_ in summary:
            if not s_["hospitals"]:
                continue
            rows = np.array([index[h] for h in s_["hospitals"]], dtype=np.int64)
            for f in arrays:
                arrays[f][rows] = getattr(s_["sums"][t.name], f)
        vol = base_volume_array(volume or {}, hospitals, t.name) if t.elastic else None
        values[t.name] = point_values(t, HospitalSums(**arrays), vol, source=policy.source)

    # 5. the money of every case, per partition
    values_d = dask.delayed(values, pure=True)
    index_d = dask.delayed(index, pure=True)
    second = [dask.delayed(_pay, nout=3)(settler_d, f, values_d, index_d) for f in first_d]
    if persist:
        second = list(dask.persist(*second))

    # 6. per-case columns back to the input partitions
    meta_cases = _empty_cases().to_pandas()
    per_case = dd.from_delayed(
        [dask.delayed(_case_frame)(s_) for s_ in second], meta=meta_cases, verify_meta=False
    )
    back = home(per_case, nparts)
    meta_out = attach(ddf._meta, meta_cases, CASE_COLUMNS)
    cases_out = ddf.map_partitions(attach, back, CASE_COLUMNS, meta=meta_out, align_dataframes=False)

    tables = dask.compute(*[(s_[1], s_[2]) for s_ in second])
    h = pl.concat([x[0] for x in tables if x[0] is not None], how="vertical_relaxed").sort("hospital_id")
    order = {t.name: i for i, t in enumerate(terms)}
    ph = (
        pl.concat([x[1] for x in tables if x[1] is not None], how="vertical_relaxed")
        .with_columns(pl.col("pool").replace_strict(order, return_dtype=pl.Int64).alias("_o"))
        .sort("_o", "hospital_id")
        .drop("_o")
    )
    pr = pool_region(policy, terms, values, ph)
    region = region_table(policy, h, pr)

    listed = len(dict.fromkeys(policy.special.case_ids))
    found = set().union(*[s_["found"] for s_ in summary]) if summary else set()
    notes = next((s_["notes"] for s_ in summary if s_["notes"] is not None), ())
    if listed and len(found) < listed:
        notes = (f"{listed - len(found)} listed special case(s) not among the cases", *notes)
    return Settlement(
        cases=cases_out,
        hospitals=h.to_pandas(),
        region=region.to_pandas(),
        policy=policy,
        notes=tuple(notes),
        pool_hospitals=ph.to_pandas(),
        pool_region=pr.to_pandas(),
    )


def _summary(first: dict[str, Any]) -> dict[str, Any]:
    """What the client needs of step 3: small, per hospital (not the cases)."""
    return {
        "hospitals": first.get("hospitals", []),
        "sums": first["sums"],
        "notes": first["notes"],
        "found": first["found"],
    }


def _empty_cases() -> pl.DataFrame:
    """The per-case result columns with their types, no rows (meta, empty partitions)."""
    return pl.DataFrame(
        {
            "rw": pl.Series([], dtype=pl.Float64),
            "base_points": pl.Series([], dtype=pl.Float64),
            "ref_cost": pl.Series([], dtype=pl.Float64),
            "coefficient": pl.Series([], dtype=pl.Float64),
            "rule": pl.Series([], dtype=pl.Enum(_rules())),
            "readmission": pl.Series([], dtype=pl.Boolean),
            "adjusted_points": pl.Series([], dtype=pl.Float64),
            "pool": pl.Series([], dtype=pl.String),
            "settled_fen": pl.Series([], dtype=pl.Int64),
            "patient_fen": pl.Series([], dtype=pl.Int64),
            "payment_fen": pl.Series([], dtype=pl.Int64),
            "left_out": pl.Series([], dtype=pl.String),
            KEY: pl.Series([], dtype=pl.Int64),
        }
    ).select(*CASE_COLUMNS, KEY)


def _rules() -> tuple[str, ...]:
    return RULES
