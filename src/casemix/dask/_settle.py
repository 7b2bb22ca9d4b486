"""Settlement on Dask, equal to :func:`casemix.settle.settle` to the fen.

Where the in-memory settlement looks across cases
-------------------------------------------------
- *within a hospital*: the cap on special cases (a share of the
  hospital's cases), readmissions (one hospital only: cross-hospital pairs are refused), and
  the split of the hospital's money over its cases (largest remainder over
  its cases' points, in input order);
- *across the region*: the point budget (budget − at-cost payments) split
  over hospitals by their points (largest remainder), the point values.

So the cases are shuffled by hospital, once, and every hospital is settled
by :func:`casemix.settle.settle` itself, twice:

1. *narrow* (per input partition): only the columns settlement reads, a
   sort key ``_gkey`` = (partition, row) that restores input order,
   validation naming the row;
2. *shuffle by hospital* (the one wide data movement), rows sorted back
   into input order inside each hospital;
3. pass 1, per hospital: ``settle`` with a budget that covers every cost,
   read off the hospital's points and at-cost fen (both independent of the
   budget) → a reduction of one row per hospital;
4. on the client, in exact integer fen: the point budget, its split over
   hospitals with :func:`casemix._money.allocate` (hospitals sorted by id,
   as in memory), the point values;
5. pass 2, per hospital: ``settle`` with the hospital's own budget = its
   share of the point budget + its at-cost fen.  One hospital takes its
   whole point budget, and its cases split it exactly as in memory;
6. the per-case columns go back to the input partitions (``set_index`` on
   ``_gkey`` with the input's partition boundaries) and are attached to the
   input rows;
7. the region's total points are added up as numpy adds them in memory
   (``casemix.dask._pairwise``: pairwise summation rebuilt from the
   partitions' leaf sums), which gives the point values and, from the base
   point value, each hospital's pre-payment.

A hospital's points are summed over its own cases in input order, as
``settle`` sums them, and the region's total in numpy's order, so the
split and the point values are reproduced bit for bit and every ``*_fen``
figure equals the in-memory settlement to the fen.

Limits: every reference cost must be case-independent across hospitals,
i.e. come from the weight table (``mean_cost``, ``mean_los``) — which is
what :func:`casemix.compute_weights` gives and ``HighCost.mean =
"weights"`` (the default) uses.  Policies that compare cases with the
settled year's own group means are refused with a clear message.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from casemix._frames import to_polars
from casemix._money import FEN_PER_YUAN, allocate, fen_to_yuan, round_half_up, yuan_array_to_fen
from casemix.budget import Policy
from casemix.dask._pairwise import partition_pieces
from casemix.dask._pairwise import total as pairwise_total
from casemix.dask._rows import KEY, attach, home, keys, partition_of
from casemix.errors import InputError, PolicyError
from casemix.settle import CASE_COLUMNS, Settlement
from casemix.settle import settle as settle_in_memory
from casemix.weights import Weights

_OPTIONAL = ("case_id", "adrg", "los", "discharge", "hospital_level", "patient_id",
             "admission_date", "discharge_date", "pdx")
_SPECIAL_NOTE = "listed special case"
_AT_COST = re.compile(r"at-cost payments \((\d+) fen\)")


def _pd(df: pl.DataFrame) -> pd.DataFrame:
    # Arrow-backed columns: the same dtypes for an empty and a full partition
    return df.to_pandas(use_pyarrow_extension_array=True)


# --- 1. narrow ----------------------------------------------------------------------

def _narrow(part: pd.DataFrame, cols: list[str], offsets: list[int] | None,
            partition_info: dict | None = None) -> pd.DataFrame:
    i = partition_info["number"] if partition_info else 0
    df = to_polars(part[cols])
    # categorical columns as text: Dask's Arrow-based shuffle cannot rebuild dictionary dtypes
    df = df.with_columns(pl.col(c).cast(pl.String) for c, t in df.schema.items()
                         if isinstance(t, (pl.Categorical, pl.Enum)))
    n = df.height
    local = pl.int_range(n, dtype=pl.Int64, eager=True)
    df = df.with_columns(pl.Series(KEY, keys(i, n)))
    if "case_id" not in df.columns:
        # in memory, cases without a case_id are numbered "1".."n" over all rows
        df = df.with_columns((local + (offsets[i] if offsets else 0) + 1).cast(pl.String)
                             .alias("case_id"))
    df = df.with_columns(pl.col("case_id").cast(pl.String), pl.col("hospital_id").cast(pl.String))

    def where(j: int) -> str:
        row = f"row {offsets[i] + j}" if offsets else f"row {j} of partition {i}"
        return f"{row} (case_id {df['case_id'][j]!r})"

    cost = df["total_cost"].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
    bad = ~np.isfinite(cost) | (cost < 0)
    if bad.any():
        raise InputError(f"total_cost missing, negative or not a number at "
                         f"{where(int(np.flatnonzero(bad)[0]))}; settlement needs every case's "
                         "cost in yuan")
    missing = df["hospital_id"].is_null()
    if missing.any():
        raise InputError(f"hospital_id missing at {where(int(missing.arg_true()[0]))}")
    return _pd(df)


def _hospitals(part: pd.DataFrame) -> list[pl.DataFrame]:
    """The partition's hospitals, each as its cases in input order."""
    df = to_polars(part)
    if df.height == 0:
        return []
    return df.sort(KEY).partition_by("hospital_id", maintain_order=True)


class _Settler:
    """``casemix.settle.settle`` of one hospital's cases, with the caller's arguments."""

    def __init__(self, policy: Policy, weights: pl.DataFrame | None, points: str | None,
                 group_col: str) -> None:
        self.policy, self.weights, self.points, self.group_col = policy, weights, points, group_col

    def __call__(self, cases: pl.DataFrame, budget_fen: int) -> Settlement:
        policy = self.policy.replace(budget=fen_to_yuan(budget_fen))
        return settle_in_memory(cases.drop(KEY), policy, weights=self.weights,
                                points=self.points, group_col=self.group_col)

    def pass1(self, part: pd.DataFrame, nparts: int) -> dict[str, Any]:
        """Points and at-cost fen per hospital, the notes, the special cases found, and
        how many of the rows came from each input partition."""
        rows, notes, found = [], None, set()
        came_from = partition_of(part[KEY].to_numpy(dtype=np.int64))
        counts = np.bincount(came_from, minlength=nparts)
        ids = set(self.policy.special.case_ids)
        for cases in _hospitals(part):
            s = self._any_budget(cases)
            h = s.hospitals
            rows.append((h["hospital_id"][0], float(h["points"][0]), int(h["at_cost_fen"][0])))
            if notes is None:
                notes = tuple(n for n in s.notes if _SPECIAL_NOTE not in n)
            if ids:
                found |= set(cases.filter(pl.col("case_id").is_in(list(ids)))["case_id"].to_list())
        return {"rows": rows, "notes": notes, "found": found, "counts": counts}

    def _any_budget(self, cases: pl.DataFrame) -> Settlement:
        # rules and points do not depend on the budget; it only has to cover the at-cost cases
        total = int(yuan_array_to_fen(cases["total_cost"].cast(pl.Float64).to_numpy()).sum())
        try:
            return self(cases, total)
        except PolicyError:
            pass
        # no case of this hospital earns points: settle it with exactly its at-cost fen
        try:
            return self(cases, 0)
        except PolicyError as exc:
            m = _AT_COST.search(str(exc))
            if not m:
                raise
            return self(cases, int(m.group(1)))

    def pass2(self, part: pd.DataFrame, budgets: dict[str, int]) -> tuple[pd.DataFrame, pl.DataFrame]:
        """Per-case columns (with ``_gkey``) and the hospital rows, each hospital on its budget."""
        cases_out, hosp_out = [], []
        for cases in _hospitals(part):
            s = self(cases, budgets[cases["hospital_id"][0]])
            cases_out.append(s.cases.select(*CASE_COLUMNS).with_columns(cases[KEY]))
            hosp_out.append(s.hospitals)
        if not cases_out:  # a partition the shuffle left without hospitals
            s = self(to_polars(part).clear(), 0)
            cases_out.append(s.cases.select(*CASE_COLUMNS).with_columns(
                pl.Series(KEY, [], pl.Int64)))
        per_case = pl.concat(cases_out).to_pandas()
        hospitals = pl.concat(hosp_out, how="vertical_relaxed") if hosp_out else None
        return per_case.astype({KEY: "int64"}), hospitals


def _pass1(settler: _Settler, part: pd.DataFrame, nparts: int) -> dict[str, Any]:
    return settler.pass1(part, nparts)


def _pieces(res: pd.DataFrame, start: int, n: int) -> Any:
    return partition_pieces(res["adjusted_points"].to_numpy(dtype=np.float64), start, n)


def _pass2(settler: _Settler, part: pd.DataFrame,
           budgets: dict[str, int]) -> tuple[pd.DataFrame, pl.DataFrame]:
    return settler.pass2(part, budgets)


def _check_policy(policy: Policy, wt: pl.DataFrame | None, points: str | None) -> None:
    """Refuse the policies whose reference costs are means over the whole region's cases."""
    why = None
    has = set(wt.columns) if wt is not None else set()
    if policy.high_cost.mean != "weights":
        why = "HighCost.mean = 'cases' compares each case with the settled year's group means"
    elif "mean_cost" not in has:
        why = ("the reference costs would come from the settled cases themselves (the weight "
               "table has no mean_cost)" if wt is not None else
               "without a weight table the reference costs are the settled cases' group means")
    elif policy.short_stay.enabled and policy.short_stay.basis == "los" and "mean_los" not in has:
        why = "short stays on a LOS basis need mean_los in the weight table"
    elif policy.ungroupable == "points":
        # M (yuan per RW) for cost-converted points: the weight table's median mean_cost / rw,
        # else the settled cases' own cost per RW, a region-wide sum
        ratio = (wt["mean_cost"].cast(pl.Float64) / wt["rw"].cast(pl.Float64)).filter(
            wt["rw"].cast(pl.Float64) > 0).drop_nans()
        m = ratio.median() if ratio.len() else None
        if m is None or not math.isfinite(m):
            why = ("ungroupable = 'points' would convert costs at the settled cases' own cost "
                   "per RW (the weight table gives no finite median mean_cost / rw)")
    if why:
        raise InputError(f"casemix.dask.settle: {why}, a region-wide mean this version does not "
                         "reduce across partitions; pass weights with mean_cost (and mean_los) "
                         "as casemix.compute_weights gives them, or settle in memory")


def _finish_hospitals(h: pl.DataFrame, policy: Policy, pv_base: float | None) -> pl.DataFrame:
    """Pre-payment and clearing with the region's base point value (as ``settle`` computes them)."""
    h = h.sort("hospital_id")
    hosp_points = h["points"].to_numpy()
    at_cost_h = h["at_cost_fen"].to_numpy()
    prepaid = round_half_up(policy.prepayment_share
                            * (hosp_points * (pv_base or 0.0) * FEN_PER_YUAN + at_cost_h))
    return h.with_columns(pl.Series("prepaid_fen", prepaid, pl.Int64)).with_columns(
        (pl.col("payment_fen") - pl.col("reserve_fen") - pl.col("prepaid_fen"))
        .alias("clearing_fen"))


def settle(ddf: Any, policy: Policy, *, weights: Weights | Any = None, points: str | None = None,
           group_col: str = "drg", persist: bool = True) -> Settlement:
    """Settle grouped cases of a Dask DataFrame; equal to :func:`casemix.settle.settle` to the fen.

    Parameters
    ----------
    ddf
        A ``dask.dataframe.DataFrame`` of grouped cases with the columns
        :func:`casemix.settle.settle` reads.
    policy, weights, points, group_col
        As for :func:`casemix.settle.settle`.  ``weights`` (a
        :class:`~casemix.weights.Weights` or a small table) is sent to every
        worker and must carry ``mean_cost`` (see the module's limits).
    persist
        Keep the hospital-sorted settlement columns (roughly 100 bytes a
        case, spread over the workers) in cluster memory between the two
        passes; ``False`` re-reads and re-shuffles the input instead.

    Returns
    -------
    Settlement
        ``cases`` is a lazy Dask DataFrame: the input partitions, rows and
        columns, plus ``rw`` … ``payment_fen`` as in memory.  ``hospitals``
        and ``region`` are small pandas frames, already computed.

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
        raise InputError("settle needs weights= (a weight table) or points= (a column of "
                         "precomputed base points)")
    columns = list(ddf.columns)
    need = ["hospital_id", "total_cost", group_col] + ([points] if points else [])
    missing = [c for c in need if c not in columns]
    if missing:
        raise InputError(f"cases lack column(s) {', '.join(missing)}; settlement needs a grouped "
                         "frame with hospital_id, total_cost and the group code")
    wt = None
    if weights is not None:
        wt = to_polars(weights.table if isinstance(weights, Weights) else weights)
        wt = wt.select([c for c in ("drg", "rw", "mean_cost", "mean_los") if c in wt.columns])
    _check_policy(policy, wt, points)
    ra = policy.readmission
    if ra.enabled and not ra.same_hospital and "patient_id" in columns:
        # cases are settled hospital by hospital, so a pair across hospitals is not seen
        raise InputError("casemix.dask.settle: readmissions pair across hospitals "
                         "(readmission.same_hospital = false), which this version does not "
                         "reduce across partitions; set readmission.same_hospital = true or "
                         "readmission.enabled = false, or settle in memory")
    cols = list(dict.fromkeys(need + [c for c in _OPTIONAL if c in columns]))
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

    # 1. narrow, 2. shuffle by hospital
    meta_in = _narrow(ddf._meta[cols], cols, offsets)
    # not ddf[cols]: a column projection lets dask fuse small Parquet partitions, and the
    # partition numbers in _gkey must be those of ddf itself, which the results go back to
    narrow = ddf.map_partitions(_narrow, cols, offsets, meta=meta_in)
    by_hosp = narrow.shuffle("hospital_id", npartitions=nparts)
    if persist:
        by_hosp = by_hosp.persist()
    parts = by_hosp.to_delayed()

    # 3. pass 1: one row per hospital
    settler_d = dask.delayed(settler, pure=True)  # one graph key, not a copy per task
    first = dask.compute(*[dask.delayed(_pass1)(settler_d, p, nparts) for p in parts])
    rows = [r for f in first for r in f["rows"]]
    per_h = pl.DataFrame(rows, schema={"hosp": pl.String, "points": pl.Float64,
                                       "at_cost": pl.Int64}, orient="row").sort("hosp")
    if per_h["hosp"].is_duplicated().any():
        raise InputError("internal: a hospital was split over two partitions by the shuffle")

    # 4. the region, in integer fen
    budget_fen = policy.budget_fen
    at_cost_total = int(per_h["at_cost"].sum())
    point_budget = budget_fen - at_cost_total
    if point_budget < 0:
        raise PolicyError(f"{policy.source}: at-cost payments ({at_cost_total} fen) exceed the "
                          f"budget ({budget_fen} fen); raise budget.total_yuan or settle fewer "
                          "cases at cost")
    hosp_points = per_h["points"].to_numpy()
    # points are >= 0, so this sum has the sign of the exact total computed below
    if math.fsum(hosp_points) <= 0 and point_budget > 0:
        raise PolicyError(f"{policy.source}: no case earns points, so the point budget "
                          f"({point_budget} fen) cannot be paid out")
    hosp_fen = (allocate(point_budget, hosp_points) if math.fsum(hosp_points) > 0
                else np.zeros(per_h.height, np.int64))
    budgets = {h: int(f) + int(a) for h, f, a in
               zip(per_h["hosp"].to_list(), hosp_fen.tolist(), per_h["at_cost"].to_list(), strict=True)}

    # 5. pass 2: each hospital on its own budget
    budgets_d = dask.delayed(budgets, pure=True)
    second = [dask.delayed(_pass2, nout=2)(settler_d, p, budgets_d) for p in parts]
    if persist:
        second = list(dask.persist(*second))

    # 6. per-case columns back to the input partitions
    meta_cases = settler.pass2(meta_in, {})[0].iloc[:0]
    per_case = dd.from_delayed([s[0] for s in second], meta=meta_cases, verify_meta=False)
    back = home(per_case, nparts)
    if persist:
        back = back.persist()
    meta_out = attach(ddf._meta, meta_cases, CASE_COLUMNS)
    cases_out = ddf.map_partitions(attach, back, CASE_COLUMNS, meta=meta_out,
                                   align_dataframes=False)

    # the region's total points as numpy sums them in memory: over all cases in input order
    sizes = np.sum([f["counts"] for f in first], axis=0) if first else np.zeros(nparts, int)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n_cases = int(starts[-1])
    pieces = dask.compute(*[dask.delayed(_pieces)(d, int(starts[j]), n_cases)
                            for j, d in enumerate(back.to_delayed())])
    total_points = pairwise_total(n_cases, pieces)
    pv_final = point_budget / FEN_PER_YUAN / total_points if total_points > 0 else None
    forecast = policy.forecast_points if policy.forecast_points is not None else total_points
    pv_base = (policy.base_share * float(policy.budget) / forecast) if forecast else None
    pv_floating = pv_final - pv_base if pv_final is not None and pv_base is not None else None

    hosp_parts = dask.compute(*[s[1] for s in second])
    # relaxed: a hospital without grouped cases comes back with integer-typed point sums
    h = _finish_hospitals(pl.concat([x for x in hosp_parts if x is not None],
                                    how="vertical_relaxed"), policy, pv_base)

    paid = int(h["payment_fen"].sum())
    listed = len(dict.fromkeys(policy.special.case_ids))
    found = set().union(*[f["found"] for f in first]) if first else set()
    notes = next((f["notes"] for f in first if f["notes"] is not None), ())
    if listed and len(found) < listed:
        notes = (f"{listed - len(found)} listed special case(s) not among the cases", *notes)
    rules = [c for c in h.columns if c.startswith("n_") and c != "n_readmission"]
    region = pl.DataFrame({
        "policy": [policy.name], "budget_fen": [budget_fen], "at_cost_fen": [at_cost_total],
        "point_budget_fen": [point_budget], "total_points": [total_points],
        "forecast_points": [float(forecast)], "pv_base": [pv_base], "pv_floating": [pv_floating],
        "pv_final": [pv_final], "payment_fen": [paid], "budget_check": [paid == budget_fen],
        "reserve_fen": [int(h["reserve_fen"].sum())], "prepaid_fen": [int(h["prepaid_fen"].sum())],
        "cases": [int(h["cases"].sum())], "hospitals": [h.height],
        **{r: [int(h[r].sum())] for r in rules},
        "n_readmission": [int(h["n_readmission"].sum())],
    }, schema_overrides={"pv_base": pl.Float64, "pv_floating": pl.Float64,
                         "pv_final": pl.Float64})
    return Settlement(cases=cases_out, hospitals=h.to_pandas(), region=region.to_pandas(),
                      policy=policy, notes=tuple(notes))

