"""Settlement on Dask, equal to :func:`casemix.settle.settle` to the fen.

Every step is a public function of the settlement core, the same code
the in-memory settlement runs (:func:`casemix.cases.canonical`,
:func:`casemix.settle.case_points`, :func:`casemix.payment.core.point_values`,
:func:`casemix.settle.pay_cases`, :func:`casemix.settle.monthly_tables`,
:func:`casemix.payment.special_cases.approve`,
:func:`casemix.payment.money.pool_region`, :func:`casemix.settle.region_table`).

**In place** (:func:`_settle_in_place`; unless the readmission rule pairs
stays or ``[monthly] enabled``): no case leaves its input partition.  Each
partition's rules and points once (``case_points`` on the partition as it
is, which is kept with them and gets the results at the end — the input is
read once; narrowed first, with step 3 below, when a region-wide case rule
applies or the cases have no ``case_id``); the hospitals' integer sums per
partition, added on the client, the float ones by a chain of small tasks in
partition order, continued bit for bit (:func:`_add`); the point values on
the client; each hospital's money over its cases by the largest remainder
placed across partitions (:mod:`casemix.dask._allocate`); the money per case
attached to the partition's own rows; the tables from the per pool ×
hospital fen sums.  What a partition keeps between the passes (:class:`_Part`)
tells Dask its size, so that a distributed cluster runs each pass where the
partition is.

**With an exchange by hospital** (readmission pairs, monthly tables):

1. *narrow* (per input partition): the input read in casemix's vocabulary
   (:func:`~casemix.cases.canonical`, with the caller's ``mapping``), only
   the fields settlement reads, a sort key ``_gkey`` = (partition, row)
   that restores input order; a row with a bad needed value is kept with
   its reason (``_left``) and settles to nulls, as in memory; each
   partition's counts of bad values ride on its first row (``_counts``);
2. *exchange by hospital* — the one wide data movement of the cases:
   each narrowed partition is cut by hash(hospital_id) into one piece per
   hospital partition (a task per pair of partitions, polars frames, no
   shuffle service), so every rule that looks across cases of one
   hospital (readmissions — one hospital only: cross-hospital pairs are
   refused —, the split of a hospital's money over its cases) stays
   within a partition;
3. region-wide 特例单议 (when the policy has applications): each partition
   lists its applications (case id, cost, standard, ``_gkey``) and its
   settled-case count; the client ranks them all with the in-memory
   ``approve`` under the region's cap, and the approvals go back to the
   partitions as :class:`~casemix.payment.core.CaseHooks`;
4. per partition (whole hospitals, rows back in input order): the cases'
   rules and points, once (``case_points``), kept in cluster memory, and
   the per-hospital sums of each pool (points, money outside the points,
   patient share) → a reduction of one row per hospital and pool;
5. on the client, per pool: the point values and each hospital's point
   money (``point_values``: largest remainder over the hospitals sorted by
   id, as in memory);
6. per partition: the money of its cases (``pay_cases`` with the region's
   values), hospital and pool rows, and — with ``[monthly] enabled`` — its
   hospitals' monthly pre-settlement and annual clearing (both per
   hospital);
7. the per-case columns go back to their input partitions the same way
   (cut by the partition number in ``_gkey``) and are attached to the
   input rows, sorted by ``_gkey``; the pool and region tables are built
   from the hospital rows.

The exchanges make a graph of partitions² small tasks, fine for the
hundreds of partitions of a province's data (0.5–2 M cases each).

A hospital's points are summed over its own cases in input order, as in
memory, and the pool totals over the per-hospital sums in hospital order,
so the split and the point values are reproduced bit for bit.

Limits: every reference cost must be case-independent across hospitals,
i.e. come from the weight table (``mean_cost``, ``mean_los``) — which is
what :func:`casemix.compute_weights` gives and ``HighCost.mean =
"weights"`` (the default) uses.  Policies that compare cases with the
settled year's own group means (``high_cost.mean = "cases"``,
``outliers.reference = "level_mean"``) are refused with a clear message.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from dask.sizeof import sizeof

from casemix._frames import number, to_polars
from casemix.budget import Policy
from casemix.cases import Canonical, canonical
from casemix.dask import _allocate as allocate
from casemix.dask._allocate import Shares
from casemix.dask._rows import KEY, attach, keys, optimised, partition_of
from casemix.errors import InputError, PolicyError
from casemix.payment.core import (
    CaseHooks,
    HospitalSums,
    PoolValues,
    base_volume_array,
    case_amounts,
    fund_of_outside,
    hospital_sums,
    int_sums,
    point_values,
    pool_terms,
)
from casemix.payment.money import pool_region, pool_rows
from casemix.payment.outliers import cost_fen, fen_mean
from casemix.payment.special_cases import approval_notes, approve, cap
from casemix.readmission import missing_columns
from casemix.settle import (
    CASE_COLUMNS,
    OPTIONAL_COLUMNS,
    RULES,
    CasePoints,
    Settlement,
    base_volume_table,
    case_columns,
    case_points,
    hospital_frame,
    monthly_tables,
    pay_cases,
    region_table,
    settlement_scheme,
)
from casemix.weights import Weights

#: per row: why it is left out (null = settled); per partition, on its first row: bad-value counts
LEFT, COUNTS = "_left", "_counts"
#: procedure columns a new-technology code list reads (casemix.payment.new_tech)
_PROCEDURES = ("pproc", "oproc", "procedures")
#: the order of a field's bad-value reasons in casemix.cases.canonical's counts
_CHECKS = ("missing", "malformed", "negative")
#: casemix.cases.canonical's note of rows with a bad value (``malformed:los: 1 row(s) read as absent``)
_BAD_NOTE = re.compile(
    r"^((?:missing|malformed|negative):[^:]+): (\d+) row\(s\) (?:left out|read as absent)$"
)
#: a note that counts cases (``new_tech: 3 case(s) …``): summed over the partitions
_COUNT_NOTE = re.compile(r"^(.*?): (\d+) (\D.*)$")


# --- what a partition's task keeps in cluster memory -------------------------------------


class _Part(dict):
    """A partition's cases and points between the passes (a dict), with their real size.

    Dask places a task where the bytes of its inputs are, as ``dask.sizeof``
    measures them; it knows neither polars frames nor :class:`CasePoints`
    and would count a partition's cases as a few hundred bytes, so that a
    pass taking the partition and the small running sums would ship the
    partition to the sums (measured: most of a distributed settlement's time
    went to such transfers).  :func:`_nbytes` counts what is held.
    """


def _nbytes(x: Any) -> int:
    """Bytes held by ``x``: numpy, polars and pandas data, containers, dataclasses."""
    if isinstance(x, np.ndarray):
        return int(x.nbytes)
    if isinstance(x, (pl.DataFrame, pl.Series)):
        return int(x.estimated_size())
    if isinstance(x, (pd.DataFrame, pd.Series)):
        return int(x.memory_usage(deep=False, index=True).sum() if isinstance(x, pd.DataFrame) else x.nbytes)
    if isinstance(x, dict):
        return sum(_nbytes(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return sum(_nbytes(v) for v in x) if len(x) < 1000 else 8 * len(x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return sum(_nbytes(getattr(x, f.name)) for f in dataclasses.fields(x))
    if inspect.ismethod(x):  # CasePoints.restore: the partition's input, kept to restore rows
        return _nbytes(x.__self__)
    return 64


@sizeof.register(_Part)
def _sizeof_part(part: _Part) -> int:
    return _nbytes(dict(part))


# --- 1. narrow ----------------------------------------------------------------------


def _narrow(part: pd.DataFrame, spec: dict[str, Any], offsets: list[int] | None, i: int) -> pl.DataFrame:
    """The fields settlement reads, in casemix's names, with the row key and bad-value reasons."""
    c = canonical(
        to_polars(part), spec["mapping"], need=spec["need"], optional=OPTIONAL_COLUMNS, step="settle"
    )
    df = c.frame.select(*spec["fields"], *spec["raw"])
    # categorical columns as text: Dask's Arrow-based shuffle cannot rebuild dictionary dtypes
    df = df.with_columns(
        pl.col(c_).cast(pl.String) for c_, t in df.schema.items() if isinstance(t, (pl.Categorical, pl.Enum))
    )
    # procedure lists as "|"-strings (what new_tech reads as well): no list dtype through the shuffle
    df = df.with_columns(
        pl.col(c_).list.join("|")
        for c_, t in df.schema.items()
        if c_ in _PROCEDURES and isinstance(t, pl.List)
    )
    n = df.height
    left = c.left_out
    df = df.with_columns(pl.Series(KEY, keys(i, n)), left.alias(LEFT))
    if "case_id" not in df.columns:
        # in memory, cases without a case_id are numbered "1".."n" over the settled rows
        kept = left.is_null()
        number = kept.cast(pl.Int64).cum_sum() + (offsets[i] if offsets else 0)
        df = df.with_columns(pl.when(kept).then(number.cast(pl.String)).alias("case_id"))
    df = df.with_columns(pl.col("case_id").cast(pl.String), pl.col("hospital_id").cast(pl.String))
    counts = json.dumps(list(c.counts.items())) if c.counts else None
    return df.with_columns(pl.Series(COUNTS, [counts] + [None] * (n - 1) if n else [], dtype=pl.String))


def _split(df: pl.DataFrame, dest: np.ndarray, n: int) -> tuple[pl.DataFrame, ...]:
    """The rows of ``df`` by destination ``0 … n−1``, each part in the rows' order."""
    parts = df.with_columns(pl.Series("_dest", dest, dtype=pl.Int64)).partition_by(
        "_dest", maintain_order=True, include_key=False, as_dict=True
    )
    empty = df.clear()
    return tuple(parts.get((j,), empty) for j in range(n))


def _narrow_split(
    part: pd.DataFrame, spec: dict[str, Any], offsets: list[int] | None, i: int, where: dict[str, int], n: int
) -> tuple[pl.DataFrame, ...]:
    """Step 1 and the sending half of step 2: the narrowed rows by hospital partition.

    ``where`` gives each hospital's partition (:func:`_placement`); a row without a
    hospital (left out) goes to partition 0.
    """
    df = _narrow(part, spec, offsets, i)
    dest = df["hospital_id"].replace_strict(where, default=0, return_dtype=pl.Int64).to_numpy()
    return _split(df, dest, n)


def _hospital_counts(part: pd.DataFrame, mapping: Any) -> pl.DataFrame:
    """Cases per hospital of one partition, hospital ids read as settlement reads them."""
    c = canonical(to_polars(part), mapping, need=("hospital_id",), step="settle")
    return c.frame.group_by(pl.col("hospital_id").cast(pl.String)).agg(pl.len().alias("n"))


def _placement(counts: list[pl.DataFrame], n: int) -> dict[str, int]:
    """Each hospital's partition: the largest hospitals first, each to the partition with the
    fewest cases so far, so that the partitions (the work of each task) are about even."""
    t = pl.concat(counts).drop_nulls("hospital_id").group_by("hospital_id").agg(pl.col("n").sum())
    load = np.zeros(n, dtype=np.int64)
    where = {}
    for h, k in t.sort(["n", "hospital_id"], descending=[True, False]).iter_rows():
        j = int(np.argmin(load))
        where[h] = j
        load[j] += k
    return where


def _hospital_part(*pieces: pl.DataFrame) -> pl.DataFrame:
    """The receiving half of step 2: whole hospitals, rows in input order.

    The pieces come in input-partition order, each in row order, so their concatenation is
    sorted by ``_gkey`` already.
    """
    return pl.concat(pieces, how="vertical_relaxed")


def _results_home(first: tuple[Any, ...], n: int) -> tuple[pl.DataFrame, ...]:
    """The sending half of step 7: a partition's per-case results by input partition."""
    res = first[0]
    return _split(res, partition_of(res[KEY].to_numpy()), n)


def _attach_home(part: pd.DataFrame, *pieces: pl.DataFrame) -> pd.DataFrame:
    """The receiving half of step 7: the input partition with the result columns of its rows."""
    res = pl.concat(pieces, how="vertical_relaxed").sort(KEY)
    # Arrow-backed: fen stay integers where left-out rows are null, the same dtypes in every part
    return attach(part, res.to_pandas(use_pyarrow_extension_array=True), CASE_COLUMNS)


def _kept(part: pd.DataFrame, mapping: Any, need: tuple[str, ...]) -> int:
    """Rows of a partition that are settled (not left out): numbers the cases without a case_id."""
    c = canonical(to_polars(part), mapping, need=need, optional=OPTIONAL_COLUMNS, step="settle")
    return c.frame.height - c.n_left_out


class _Settler:
    """The steps of one partition (whole hospitals), with the caller's arguments."""

    def __init__(
        self, policy: Policy, weights: pl.DataFrame | None, points: str | None, group_col: str, scheme: str
    ) -> None:
        self.policy, self.weights, self.points, self.group_col = policy, weights, points, group_col
        self.scheme = scheme
        self.terms = pool_terms(policy)
        #: the pool names, the categories of the per-case ``pool`` column
        self.pools = tuple(t.name for t in self.terms)

    def _case_points(self, df: pl.DataFrame, policy: Policy, hooks: CaseHooks | None = None) -> CasePoints:
        return case_points(
            df.drop(KEY, LEFT, COUNTS),
            policy,
            weights=self.weights,
            points=self.points,
            group_col=self.group_col,
            scheme=self.scheme,
            hooks=hooks,
        )

    def region_inputs(self, part: pd.DataFrame) -> dict[str, Any]:
        """Step 3: what the region-wide rules need of the partition, small.

        特例单议: the applications (key, case id, cost, standard) and the
        settled-case count — the rules run with a cap of 0, nothing is
        approved here: an application and its standard depend only on the
        case, the approval on the region.  ``level_mean``: per group and
        level, and per group, the fen sum and count of the valid cases'
        costs (``cells``, ``groups``); each case's group and level stay in
        ``case_cells`` (not sent to the client).
        """
        df = to_polars(part)
        df = df.filter(pl.col(LEFT).is_null())
        out: dict[str, Any] = {"n": df.height, "found": set()}
        none = np.zeros(0)
        out.update(key=none.astype(np.int64), id=[], cost=none, standard=none, cells=None, groups=None)
        if df.height == 0:
            return out
        sp = self.policy.special
        review = self.policy.replace(special=sp.model_copy(update={"cap_share": 0.0}))
        cp = self._case_points(df, review)
        if sp.active:
            applied = cp.rules["special_applied"].to_numpy()
            ids = df["case_id"]
            listed = set(sp.case_ids)
            out.update(
                key=df[KEY].to_numpy()[applied],
                id=ids.filter(pl.Series(applied)).to_list(),
                cost=df["total_cost"].cast(pl.Float64).to_numpy()[applied],
                standard=cp.rules["standard"].to_numpy()[applied],
                found=set(ids.filter(ids.is_in(list(listed))).to_list()) if listed else set(),
            )
        if self.policy.outliers.reference == "level_mean":
            cells = pl.DataFrame(
                {
                    "group": df[self.group_col].cast(pl.String),
                    "level": cp.rules["level"],
                    "fen": cost_fen(cp.rules["rule_cost"].to_numpy()).astype(np.int64),
                    "ok": cp.rules["has_weight"] & cp.rules["rule_cost"].is_finite(),
                }
            )
            out["case_cells"] = cells.select("group", "level")
            valid = cells.filter("ok")
            out["cells"] = valid.group_by("group", "level").agg(pl.col("fen").sum(), pl.len().alias("n"))
            out["groups"] = valid.group_by("group").agg(pl.col("fen").sum(), pl.len().alias("n"))
        return out

    def points_here(self, part: pd.DataFrame, i: int, mapping: dict[str, str] | None) -> dict[str, Any]:
        """Step 4 on an input partition as it is (no 特例单议 or same-level means to apply):
        one reading of its columns, as in memory; left-out rows stay where they are."""
        cp = case_points(
            to_polars(part),
            self.policy,
            weights=self.weights,
            points=self.points,
            group_col=self.group_col,
            scheme=self.scheme,
            mapping=mapping,
        )
        n = len(part)
        key = pl.Series(KEY, keys(i, n))
        if cp.cases.height < n:
            pos = cp.restore(pl.DataFrame({KEY: np.arange(cp.cases.height)}), [KEY])[KEY]
            key = key.filter(pos.is_not_null())
        # the bad-value counts go with the other partitions' (ordered as in memory by _notes)
        bad = [m for m in map(_BAD_NOTE.match, cp.notes) if m]
        notes = tuple(x for x in cp.notes if not _BAD_NOTE.match(x))
        empty = None
        if not cp.cases.height:
            empty = cp.restore(_empty_cases(self.pools).drop(KEY, "left_out"), CASE_COLUMNS).select(
                CASE_COLUMNS
            )
        return _Part(
            empty=empty,
            cp=cp if cp.cases.height else None,
            key=key,
            hospitals=cp.hospitals if cp.cases.height else [],
            notes=notes,
            bad=[[(m.group(1), int(m.group(2))) for m in bad]],
            out=None,
            # the input partition itself, the results attached to it in the last pass: the input
            # is read once (a second reading would also run again whatever made the partition)
            part=part,
        )

    def points_of(
        self, part: pd.DataFrame, nparts: int, region: dict[str, Any] | None, local: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Step 4: rules and points of the partition's cases, and per-hospital pool sums.

        ``region`` carries the region-wide results of step 3 (approved keys,
        same-level means), ``local`` this partition's step 3.
        """
        df = to_polars(part)
        came_from = (
            partition_of(df[KEY].to_numpy().astype(np.int64)) if df.height else np.zeros(0, dtype=np.int64)
        )
        counts = np.bincount(came_from, minlength=nparts)
        bad = [json.loads(x) for x in df[COUNTS].drop_nulls().to_list()] if df.height else []
        if not df[KEY].is_sorted():
            raise InputError("internal: a hospital partition's rows are not in input order")
        out = df.filter(pl.col(LEFT).is_not_null()).select(KEY, LEFT)
        df = df.filter(pl.col(LEFT).is_null())
        empty: dict[str, Any] = {"cp": None, "key": None, "sums": {}, "hospitals": [], "notes": None}
        if df.height == 0:
            return _Part(**empty, counts=counts, bad=bad, out=out)
        key = df[KEY]
        hooks = None
        if region is not None:
            approved = region["approved"]
            ref = None
            if region["means"] is not None:
                # each case's same-level mean (its group's mean without a level), from the region
                means, by_group = region["means"]
                if local is None:
                    raise ValueError("the same-level means need the partition's own step 3 (local)")
                cells = local["case_cells"]
                ref = (
                    cells.join(
                        means, on=["group", "level"], how="left", nulls_equal=True, maintain_order="left"
                    )
                    .join(by_group, on="group", how="left", maintain_order="left")
                    .select(
                        pl.when(pl.col("level").is_null())
                        .then(pl.col("group_mean"))
                        .otherwise(pl.col("mean"))
                    )
                    .to_series()
                    .fill_null(np.nan)
                    .to_numpy()
                )
            hooks = CaseHooks(
                approved_special=None if approved is None else np.isin(key.to_numpy(), approved),
                outlier_ref_cost=ref,
            )
        cp = self._case_points(df, self.policy, hooks)
        pts = cp.rules["adjusted_points"].to_numpy().astype(np.float64)
        sums = {}
        for k, t in enumerate(self.terms):
            idx = np.flatnonzero(cp.pool == k) if len(self.terms) > 1 else np.arange(pts.size)
            sums[t.name] = hospital_sums(
                t, cp.hosp[idx], len(cp.hospitals), pts[idx], cp.outside_fen[idx], cp.patient_fen[idx]
            )
        return _Part(
            cp=cp, key=key, sums=sums, hospitals=cp.hospitals, notes=cp.notes, counts=counts, bad=bad, out=out
        )

    def pay(
        self, first: dict[str, Any], values: dict[str, PoolValues], index: dict[str, int]
    ) -> tuple[pl.DataFrame, Any, Any, Any, Any]:
        """Step 6: the money of the partition's cases with the region's values."""
        cp: CasePoints | None = first["cp"]
        left = _left_out_rows(first["out"], self.pools)
        if cp is None:
            return left, None, None, None, None
        rows = np.array([index[h] for h in cp.hospitals], dtype=np.int64)
        local = {name: _subset(v, rows) for name, v in values.items()}
        paid = pay_cases(cp, self.policy, values=local)
        monthly = annual = None
        if self.policy.monthly.enabled:
            monthly, annual = monthly_tables(cp, paid, self.policy)
        per_case = paid.cases.select(*CASE_COLUMNS).with_columns(first["key"])
        per_case = pl.concat([per_case, left], how="vertical_relaxed") if left.height else per_case
        return per_case, paid.hospitals, paid.pool_hospitals, monthly, annual


def _left_out_rows(out: pl.DataFrame, pools: tuple[str, ...]) -> pl.DataFrame:
    """The result rows of left-out cases: null results and the reason, as in memory."""
    empty = _empty_cases(pools)
    return pl.DataFrame(
        {
            **{c: pl.Series(c, [None] * out.height, dtype=empty.schema[c]) for c in CASE_COLUMNS},
            "left_out": out[LEFT],
            KEY: out[KEY].cast(pl.Int64),
        }
    ).select(empty.columns)


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


def _region_inputs(settler: _Settler, part: pd.DataFrame) -> dict[str, Any]:
    return settler.region_inputs(part)


def _small(inputs: dict[str, Any]) -> dict[str, Any]:
    """Step 3's part for the client (not the per-case cells)."""
    return {k: v for k, v in inputs.items() if k != "case_cells"}


def _points_of(
    settler: _Settler,
    part: pd.DataFrame,
    nparts: int,
    region: dict[str, Any] | None,
    local: dict[str, Any] | None,
) -> dict[str, Any]:
    return settler.points_of(part, nparts, region, local)


def _points_here(settler: _Settler, part: pd.DataFrame, i: int, mapping: dict[str, str] | None) -> dict:
    return settler.points_here(part, i, mapping)


def _level_means(found: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The region's same-level means per group and level, and per group, from the partitions'
    fen sums: the exact sums and the division (:func:`~casemix.payment.outliers.fen_mean`) of
    :func:`~casemix.payment.outliers.level_group_mean` in memory."""

    def merged(name: str, by: list[str]) -> pl.DataFrame:
        sums: list[pl.DataFrame] = [f[name] for f in found if f[name] is not None and f[name].height]
        if not sums:  # no valid case anywhere: no mean
            return pl.DataFrame(schema={**dict.fromkeys(by, pl.String), "mean": pl.Float64})
        t = pl.concat(sums).group_by(by).agg(pl.col("fen").sum(), pl.col("n").sum())
        mean = fen_mean(t["fen"].to_numpy(), t["n"].to_numpy())
        return t.with_columns(pl.Series("mean", mean)).select(*by, "mean")

    return merged("cells", ["group", "level"]), merged("groups", ["group"]).rename({"mean": "group_mean"})


def _pay(
    settler: _Settler, first: dict[str, Any], values: dict[str, PoolValues], index: dict[str, int]
) -> tuple[pd.DataFrame, Any, Any, Any, Any]:
    return settler.pay(first, values, index)


def _approved(found: list[dict[str, Any]], policy: Policy, scheme: str) -> tuple[np.ndarray, list[str]]:
    """Step 3 on the client: the approved applications' keys under the region's cap, and the notes.

    The applications come in input order (sorted by ``_gkey``), so ``approve``
    breaks its last ties by input row exactly as in memory.
    """
    sp = policy.special
    n = sum(f["n"] for f in found)
    key = np.concatenate([f["key"] for f in found]) if found else np.zeros(0, dtype=np.int64)
    order = np.argsort(key, kind="stable")
    ids = np.array([x for f in found for x in f["id"]], dtype=str)[order]
    cost = np.concatenate([f["cost"] for f in found])[order] if found else np.zeros(0)
    standard = np.concatenate([f["standard"] for f in found])[order] if found else np.zeros(0)
    n_cap = cap(n, sp.share(scheme))
    ok = approve(
        np.ones(key.size, dtype=bool), cost, standard, ids, n_cap, order=sp.order, listed=sp.case_ids
    )
    seen = set().union(*[f["found"] for f in found]) if found else set()
    notes = approval_notes(
        sp,
        scheme,
        n_cases=n,
        n_applied=int(key.size),
        n_approved=int(ok.sum()),
        listed_found=sum(1 for x in sp.case_ids if x in seen),
    )
    return key[order][ok], notes


def _notes(
    summary: list[dict[str, Any]], special: list[str], fields: list[str], need: tuple[str, ...]
) -> tuple[str, ...]:
    """The settlement's notes as in memory: the rules' (counts summed over the partitions), the
    region's 特例单议 review after the new-technology count, then the bad values per reason."""
    notes: list[str] = []
    totals: dict[tuple[str, str], int] = {}
    for s_ in summary:
        for note in s_["notes"] or ():
            m = _COUNT_NOTE.match(note)
            if m:
                k = (m.group(1), m.group(3))
                if k not in totals:
                    notes.append(note)
                totals[k] = totals.get(k, 0) + int(m.group(2))
            elif note not in notes:
                notes.append(note)
    merged = []
    for note in notes:
        m = _COUNT_NOTE.match(note)
        merged.append(f"{m.group(1)}: {totals[(m.group(1), m.group(3))]} {m.group(3)}" if m else note)
    at = next((i + 1 for i, x in enumerate(merged) if x.startswith("new_tech:")), 0)
    merged[at:at] = special
    bad: dict[str, int] = {}
    for s_ in summary:
        for part in s_["bad"]:
            for reason, k in part:
                bad[reason] = bad.get(reason, 0) + int(k)

    def order(reason: str) -> tuple[int, int]:
        kind, field = reason.split(":", 1)
        return (
            fields.index(field) if field in fields else len(fields),
            _CHECKS.index(kind) if kind in _CHECKS else 3,
        )

    counts = {r: bad[r] for r in sorted(bad, key=order)}
    c = Canonical(
        frame=pl.DataFrame(), columns={}, left_out=pl.Series([], dtype=pl.String), counts=counts, need=need
    )
    return (*merged, *c.notes())


def _check_policy(policy: Policy, wt: pl.DataFrame | None, points: str | None) -> None:
    """Refuse the policies whose reference costs are means over the whole region's cases."""
    why = None
    has = set(wt.columns) if wt is not None else set()
    if policy.high_cost.mean != "weights":
        why = "HighCost.mean = 'cases' compares each case with the settled year's group means"
    elif wt is None or "mean_cost" not in has:
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
        m = number(ratio.median()) if ratio.len() else None
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
    mapping: dict[str, str] | None = None,
    scheme: str | None = None,
) -> Settlement:
    """Settle grouped cases of a Dask DataFrame; equal to :func:`casemix.settle.settle` to the fen.

    Parameters
    ----------
    ddf
        A ``dask.dataframe.DataFrame`` of grouped cases with the columns
        :func:`casemix.settle.settle` reads (under any name it knows, or
        named by ``mapping``).
    policy, weights, points, group_col, base_volume, mapping, scheme
        As for :func:`casemix.settle.settle`.  ``weights`` (a
        :class:`~casemix.weights.Weights` or a small table) is sent to every
        worker and must carry ``mean_cost`` (see the module's limits).
    persist
        Keep the hospital-sorted cases and their points in cluster memory
        between the passes; ``False`` recomputes them instead.

    Returns
    -------
    Settlement
        ``cases`` is a lazy Dask DataFrame: the input partitions, rows and
        columns, plus ``rw`` … ``left_out`` as in memory (a row with a bad
        needed value keeps null results and its reason; ``notes`` count
        them per reason).  ``hospitals``, ``region``, ``pool_hospitals``,
        ``pool_region`` and, with ``[monthly] enabled``, ``monthly`` and
        ``annual`` are small pandas frames, already computed.

    Raises
    ------
    InputError
        As :func:`casemix.settle.settle` (a bad row is named within its
        partition, with its case_id); a policy whose reference costs are
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
    scheme = settlement_scheme(scheme, group_col)
    need = ("hospital_id", "total_cost", group_col, *([points] if points else []))
    # the columns as in memory (missing ones raise here, naming the aliases looked for)
    meta = canonical(to_polars(ddf._meta), mapping, need=need, optional=OPTIONAL_COLUMNS, step="settle")
    fields = list(meta.columns)
    raw = [c for c in _PROCEDURES if c in ddf.columns and c not in fields]
    wt = None
    if weights is not None:
        wt = to_polars(weights.table if isinstance(weights, Weights) else weights)
    _check_policy(policy, wt, points)
    ra = policy.readmission
    if ra.enabled and not ra.same_hospital and "patient_id" in fields:
        # cases are settled hospital by hospital, so a pair across hospitals is not seen
        raise InputError(
            "casemix.dask.settle: readmissions pair across hospitals "
            "(readmission.same_hospital = false), which this version does not "
            "reduce across partitions; set readmission.same_hospital = true or "
            "readmission.enabled = false, or settle in memory"
        )
    spec = {"mapping": mapping, "need": need, "fields": fields, "raw": raw}
    ddf = optimised(ddf)
    offsets = None
    if "case_id" not in fields:
        kept = ddf.map_partitions(_kept, mapping, need, meta=(None, "int64")).compute()
        offsets = [0, *np.cumsum(list(kept)).tolist()]
    nparts = ddf.npartitions
    settler = _Settler(policy, wt, points, group_col, scheme)
    terms = settler.terms

    inputs_d = ddf.to_delayed()
    spec_d = dask.delayed(spec, pure=True)
    in_place = not (policy.monthly.enabled or _pairs_readmissions(policy, meta.frame, group_col))
    level_mean = policy.outliers.reference == "level_mean"
    # the simplest case: no region-wide case rule, case ids given: each partition read once
    direct = in_place and not (policy.special.active or level_mean) and offsets is None
    if direct:
        parts = inputs_d
    elif in_place:
        # 1. narrow, each input partition where it is: no case moves (steps 4–7 of
        # _settle_in_place reduce the hospitals' sums across partitions instead)
        parts = [dask.delayed(_narrow, pure=True)(p, spec_d, offsets, i) for i, p in enumerate(inputs_d)]
    else:
        # 1. narrow, 2. the cases to their hospital's partition: the one exchange of the cases, a
        # task per (input partition, hospital partition) pair of small polars frames (no shuffle
        # service, no pandas round trip).  Not ddf[cols]: a column projection lets dask fuse small
        # Parquet partitions, and the partition numbers in _gkey must be those of ddf itself.
        # hospitals spread over the partitions by their number of cases (one column read)
        col = meta.columns["hospital_id"]
        only = {k: v for k, v in (mapping or {}).items() if k == col} or None
        counts = dask.compute(*[dask.delayed(_hospital_counts)(p, only) for p in ddf[[col]].to_delayed()])
        where = _placement(list(counts), nparts)
        where_d = dask.delayed(where, pure=True)
        sent = [
            dask.delayed(_narrow_split, nout=nparts, pure=True)(p, spec_d, offsets, i, where_d, nparts)
            for i, p in enumerate(inputs_d)
        ]
        parts = [dask.delayed(_hospital_part, pure=True)(*[s_[j] for s_ in sent]) for j in range(nparts)]
    settler_d = dask.delayed(settler, pure=True)  # one graph key, not a copy per task

    # 3. the region-wide rules from small per-partition aggregates: the 特例单议 review
    # (applications ranked together under the region's cap) and the same-level means
    region: dict[str, Any] | None = None
    special_notes: list[str] = []
    inputs = [None] * len(parts)
    if policy.special.active or level_mean:
        if persist:
            parts = list(dask.persist(*parts))
        inputs = [dask.delayed(_region_inputs)(settler_d, p) for p in parts]
        if persist and level_mean:
            inputs = list(dask.persist(*inputs))
        found = list(dask.compute(*[dask.delayed(_small)(x) for x in inputs]))
        region = {"approved": None, "means": _level_means(found) if level_mean else None}
        if policy.special.active:
            region["approved"], special_notes = _approved(found, policy, scheme)
        if not level_mean:
            inputs = [None] * len(parts)

    if in_place:
        return _settle_in_place(
            ddf,
            policy,
            settler,
            parts,
            region,
            inputs,
            special_notes,
            base_volume,
            persist,
            fields,
            meta.need,
            mapping if direct else False,
        )

    # 4. each hospital's rules and points, once; per-hospital sums to the client
    region_d = dask.delayed(region, pure=True)
    first_d = [
        dask.delayed(_points_of)(settler_d, p, nparts, region_d, x)
        for p, x in zip(parts, inputs, strict=True)
    ]
    if persist:
        first_d = list(dask.persist(*first_d))
    summary = dask.compute(*[dask.delayed(_summary)(f) for f in first_d])
    hospitals = sorted(h for s_ in summary for h in s_["hospitals"])
    if len(set(hospitals)) < len(hospitals):
        raise InputError("internal: a hospital was split over two partitions by the shuffle")
    index = {h: i for i, h in enumerate(hospitals)}

    # 5. the region, per pool: point values and each hospital's point money
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

    # 6. the money of every case, per partition
    values_d = dask.delayed(values, pure=True)
    index_d = dask.delayed(index, pure=True)
    second = [dask.delayed(_pay, nout=5)(settler_d, f, values_d, index_d) for f in first_d]
    if persist:
        second = list(dask.persist(*second))

    # 7. per-case columns back to the input partitions (the same exchange, the other way)
    meta_out = attach(
        ddf._meta, _empty_cases(settler.pools).to_pandas(use_pyarrow_extension_array=True), CASE_COLUMNS
    )
    back = [dask.delayed(_results_home, nout=nparts, pure=True)(s_, nparts) for s_ in second]
    homes = [dask.delayed(_attach_home, pure=True)(p, *[b[i] for b in back]) for i, p in enumerate(inputs_d)]
    cases_out = dd.from_delayed(homes, meta=meta_out, verify_meta=False)

    tables = dask.compute(*[s_[1:] for s_ in second])

    def concat(j: int, *by: str) -> pl.DataFrame | None:
        found = [x[j] for x in tables if x[j] is not None]
        return pl.concat(found, how="vertical_relaxed").sort(*by) if found else None

    h = concat(0, "hospital_id")
    if h is None:
        raise PolicyError("no case earns points: every case was left out (see the notes of settle in memory)")
    order = {t.name: i for i, t in enumerate(terms)}
    ph = (
        pl.concat([x[1] for x in tables if x[1] is not None], how="vertical_relaxed")
        .with_columns(pl.col("pool").replace_strict(order, return_dtype=pl.Int64).alias("_o"))
        .sort("_o", "hospital_id")
        .drop("_o")
    )
    pr = pool_region(policy, terms, values, ph)
    region_frame = region_table(policy, h, pr)
    monthly, annual = concat(2, "hospital_id", "month"), concat(3, "hospital_id")
    return Settlement(
        cases=cases_out,
        hospitals=h.to_pandas(),
        region=region_frame.to_pandas(),
        policy=policy,
        notes=_notes(list(summary), special_notes, fields, meta.need),
        pool_hospitals=ph.to_pandas(),
        pool_region=pr.to_pandas(),
        monthly=None if monthly is None else monthly.to_pandas(),
        annual=None if annual is None else annual.to_pandas(),
    )


def _summary(first: dict[str, Any]) -> dict[str, Any]:
    """What the client needs of step 4: small, per hospital (not the cases)."""
    return {
        "hospitals": first["hospitals"],
        "sums": first.get("sums"),
        "notes": first["notes"],
        "bad": first["bad"],
    }


def _empty_cases(pools: tuple[str, ...]) -> pl.DataFrame:
    """The per-case result columns with their types, no rows (meta, empty partitions).

    ``pools`` are the policy's pool names: :func:`casemix.settle.case_columns` gives ``pool`` as
    an Enum of them, and every partition and the meta must agree.
    """
    return pl.DataFrame(
        {
            "rw": pl.Series([], dtype=pl.Float64),
            "base_points": pl.Series([], dtype=pl.Float64),
            "ref_cost": pl.Series([], dtype=pl.Float64),
            "coefficient": pl.Series([], dtype=pl.Float64),
            "rule": pl.Series([], dtype=pl.Enum(_rules())),
            "readmission": pl.Series([], dtype=pl.Boolean),
            "adjusted_points": pl.Series([], dtype=pl.Float64),
            "pool": pl.Series([], dtype=pl.Enum(pools)),
            "settled_fen": pl.Series([], dtype=pl.Int64),
            "patient_fen": pl.Series([], dtype=pl.Int64),
            "payment_fen": pl.Series([], dtype=pl.Int64),
            "left_out": pl.Series([], dtype=pl.String),
            KEY: pl.Series([], dtype=pl.Int64),
        }
    ).select(*CASE_COLUMNS, KEY)


def _rules() -> tuple[str, ...]:
    return RULES


# --- settlement in place: no case leaves its input partition ---------------------------


def _pairs_readmissions(policy: Policy, frame: pl.DataFrame, group_col: str) -> bool:
    """Whether the readmission rule will pair stays: it then needs a hospital's cases together."""
    ra = policy.readmission
    return ra.enabled and not missing_columns(
        frame, match=ra.match, same_hospital=ra.same_hospital, group_col=group_col
    )


def _add(init: np.ndarray, code: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``init`` plus the sums of ``x`` per code, added case by case in order after ``init``.

    ``np.bincount`` adds its weights one by one in array order, so putting each code's running
    total in front continues the in-memory sum of the earlier partitions bit for bit.
    """
    n = init.size
    return np.bincount(np.concatenate([np.arange(n), code]), weights=np.concatenate([init, x]), minlength=n)


#: integer sums per hospital, and per pool × hospital: exact in any order, added on the client
_PER_HOSPITAL = ("cases", "grouped", "readmission", "at_cost", "cost")
_PER_POOL = ("pool_cases", "outside", "patient", "outside_fund", "fund_cost")


def _summary_in_place(settler: _Settler, first: dict[str, Any]) -> dict[str, Any]:
    """Step 4's small part of a partition, made where it is: :func:`_summary` and the integer
    sums by the partition's own hospital codes (counts and fen, exact in any order, so the
    client adds them up), with each hospital's level and coefficient of its first case here."""
    out = _summary(first)
    cp: CasePoints | None = first["cp"]
    if cp is None:
        return out
    n, pools = len(cp.hospitals), len(settler.terms)
    w, g = cp.rules, cp.hosp
    grp = cp.pool * n + g if pools > 1 else g
    m = pools * n
    fund_out = np.zeros(cp.outside_fen.size, dtype=np.int64)
    for k, t in enumerate(settler.terms):
        at = cp.pool == k if pools > 1 else slice(None)
        fund_out[at] = fund_of_outside(t, cp.outside_fen[at])
    first_row = np.full(n, -1, dtype=np.int64)
    first_row[g[::-1]] = np.arange(g.size)[::-1]
    rule = w["rule"].to_numpy().astype(np.int64)
    out["local"] = {
        "cases": np.bincount(g, minlength=n),
        "grouped": np.bincount(g, weights=w["has_weight"].to_numpy(), minlength=n).astype(np.int64),
        "readmission": np.bincount(g, weights=w["readmission"].to_numpy(), minlength=n).astype(np.int64),
        "at_cost": int_sums(g, cp.at_cost_fen, n),
        "cost": int_sums(g, cp.cost_fen, n),
        "rules": np.bincount(g * len(RULES) + rule, minlength=n * len(RULES)).reshape(n, len(RULES)),
        "pool_cases": np.bincount(grp, minlength=m),
        "outside": int_sums(grp, cp.outside_fen, m),
        "patient": int_sums(grp, cp.patient_fen, m),
        "outside_fund": int_sums(grp, fund_out, m),
        "fund_cost": (
            np.zeros(m, dtype=np.int64) if cp.fund_cost_fen is None else int_sums(grp, cp.fund_cost_fen, m)
        ),
        "coefficient": w["coefficient"].to_numpy()[first_row],
        "level": list(cp.levels),
    }
    return out


def _merge_in_place(summary: list[dict[str, Any]], index: dict, pools: int) -> dict[str, Any]:
    """On the client: the partitions' integer sums in the region's hospital order, and each
    hospital's level and coefficient from the first partition that has its cases."""
    n_h = len(index)
    st: dict[str, Any] = {k: np.zeros(n_h, dtype=np.int64) for k in _PER_HOSPITAL}
    st.update({k: np.zeros(pools * n_h, dtype=np.int64) for k in _PER_POOL})
    st.update(rules=np.zeros((n_h, len(RULES)), dtype=np.int64), coefficient=np.full(n_h, np.nan))
    st["level"] = [None] * n_h
    seen = np.zeros(n_h, dtype=bool)
    for s_ in summary:
        loc = s_.get("local")
        if loc is None:
            continue
        rows = np.array([index[h] for h in s_["hospitals"]], dtype=np.int64)
        # a partition's hospital codes are distinct: a fancy-indexed += adds each once
        for k in _PER_HOSPITAL:
            st[k][rows] += loc[k]
        st["rules"][rows] += loc["rules"]
        at = (np.arange(pools)[:, None] * n_h + rows[None, :]).ravel()  # local pool × hospital
        for k in _PER_POOL:
            st[k][at] += loc[k]
        new = ~seen[rows]
        seen[rows] = True
        st["coefficient"][rows[new]] = loc["coefficient"][new]
        for j in np.flatnonzero(new):
            st["level"][rows[j]] = loc["level"][j]
    return st


def _running(settler: _Settler, state: dict[str, Any] | None, first: dict[str, Any]) -> dict:
    """Step 4 in input order: a partition's cases added to the region's float sums per hospital.

    The points per pool and per hospital, base points and RW continue the previous
    partitions' running sums, as one pass over all cases in input order would (:func:`_add`);
    a task per partition, chained, each small next to the partition's other passes.  The
    sums are keyed by the hospital ids seen so far (``ids``, sorted), so the chain needs no
    region-wide hospital list and runs while later partitions are still being read.
    """
    pools = len(settler.terms)
    if state is None:
        state = {"ids": np.array([], dtype=str), **{k: np.zeros(0) for k in _RUNNING}}
    cp: CasePoints | None = first["cp"]
    if cp is None:
        return state
    ids, before, here = _rekey(state["ids"], cp.hospitals)
    n_h = ids.size

    def grown(x: np.ndarray, width: int) -> np.ndarray:
        return _grown(x, before, width, n_h)

    w = cp.rules
    g = here[cp.hosp]
    grp = cp.pool * n_h + g if pools > 1 else g
    pts = w["adjusted_points"].to_numpy().astype(np.float64)
    grouped = w["has_weight"].to_numpy()
    return {
        "ids": ids,
        "pool_points": _add(grown(state["pool_points"], pools), grp, pts),
        "points": _add(grown(state["points"], 1), g, pts),
        "base": _add(grown(state["base"], 1), g, np.where(grouped, w["base_points"].to_numpy(), 0.0)),
        "rw": _add(grown(state["rw"], 1), g, np.where(grouped, w["rw"].to_numpy(), 0.0)),
    }


def _rekey(ids: np.ndarray, local: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sorted union of the ids so far and a partition's hospitals, with the new row of each
    id so far (``before``) and of each of the partition's hospitals (``here``)."""
    local_ids = np.asarray(local, dtype=str)
    new = np.union1d(ids, local_ids)
    return new, np.searchsorted(new, ids), np.searchsorted(new, local_ids)


def _grown(x: np.ndarray, before: np.ndarray, width: int, n: int) -> np.ndarray:
    """Running sums (``width`` blocks, one row per id so far) at their new rows of ``n``; 0 for
    hospitals first seen (adding 0.0 in front changes no sum)."""
    out = np.zeros((width, n))
    out[:, before] = x.reshape(width, -1)
    return out.ravel()


#: the float sums per hospital (and per pool × hospital) that run on in input order
_RUNNING = ("pool_points", "points", "base", "rw")


def _in_order(running: dict[str, Any], index: dict[str, int], pools: int) -> dict[str, np.ndarray]:
    """The chain's sums (rows: its sorted ids) in the rows of the region's hospital list ``index``."""
    n_h = len(index)
    if running["ids"].size != n_h:
        raise InputError("internal: the running sums saw other hospitals than the partitions' sums")
    rows = np.array([index[h] for h in running["ids"].tolist()], dtype=np.int64)
    out = {}
    for k in _RUNNING:
        width = pools if k == "pool_points" else 1
        x = np.zeros((width, n_h))
        x[:, rows] = running[k].reshape(width, n_h)
        out[k] = x.ravel()
    return out


def _shares(first: dict[str, Any], index: dict, pools: int) -> Shares | None:
    """A partition's settled cases as the groups (pool × hospital) the point money is split over."""
    cp: CasePoints | None = first["cp"]
    if cp is None:
        return None
    n_h = len(index)
    rows = np.array([index[h] for h in cp.hospitals], dtype=np.int64)
    g = rows[cp.hosp]
    return Shares(
        group=cp.pool * n_h + g if pools > 1 else g,
        share=cp.rules["adjusted_points"].to_numpy().astype(np.float64),
        key=first["key"].to_numpy().astype(np.int64),
    )


def _split_first(first: dict[str, Any], index: dict, pools: int, totals: np.ndarray, sums: np.ndarray) -> Any:
    s = _shares(first, index, pools)
    return None if s is None else allocate.first_pass(s, totals, sums)


def _split_candidates(
    first: dict[str, Any], index: dict, pools: int, totals: np.ndarray, sums: np.ndarray, cut: allocate.Cut
) -> Any:
    s = _shares(first, index, pools)
    return None if s is None else allocate.candidates(s, totals, sums, cut)


def _pay_in_place(
    settler: _Settler,
    first: dict[str, Any],
    index: dict,
    values: dict[str, PoolValues],
    split: tuple[np.ndarray, np.ndarray, allocate.Cut] | None,
) -> tuple[pl.DataFrame, dict[str, np.ndarray] | None]:
    """Steps 6: the money of a partition's cases; per pool × hospital fen sums."""
    cp: CasePoints | None = first["cp"]
    gone = first["out"]  # left-out rows, in the exchange path
    left = _empty_cases(settler.pools) if gone is None else _left_out_rows(gone, settler.pools)
    if cp is None:
        if first["out"] is None:  # an input partition without a settled case
            return attach(
                first["part"], first["empty"].to_pandas(use_pyarrow_extension_array=True), CASE_COLUMNS
            ), None
        return left, None
    terms, n_h = settler.terms, len(index)
    pools, m = len(terms), len(terms) * len(index)
    s = _shares(first, index, pools)
    assert s is not None
    point = allocate.final_pass(s, *split) if split is not None else None
    n = cp.hosp.size
    out = {k: np.zeros(n, dtype=np.int64) for k in ("settled", "fund", "patient", "point")}
    g = s.group % n_h
    for k, t in enumerate(terms):
        idx = np.flatnonzero(cp.pool == k) if pools > 1 else np.arange(n)
        v = values[t.name]
        a = case_amounts(
            t,
            g[idx],
            s.share[idx],
            cp.outside_fen[idx],
            cp.patient_fen[idx],
            v.hospital_fen,
            point_fen=None if point is None else point[idx],
        )
        out["point"][idx], out["settled"][idx] = a.point_fen, a.settled_fen
        out["fund"][idx], out["patient"][idx] = a.fund_fen, a.patient_fen
    sums = {k: int_sums(s.group, x, m) for k, x in out.items()}
    sums["negative"] = np.bincount(s.group, weights=out["fund"] < 0, minlength=m).astype(np.int64)
    per_case = pl.DataFrame(case_columns(cp, settler.policy, out["settled"], out["patient"], out["fund"]))
    per_case = per_case.with_columns(
        pl.repeat(None, n, dtype=pl.String, eager=True).alias("left_out"), pl.Series(KEY, s.key, pl.Int64)
    )
    if first["out"] is None:
        # the input partition itself: left-out rows put back in place, the results attached to
        # the partition kept since the first pass (Arrow-backed: fen stay integers where
        # left-out rows are null, the same dtypes in every part)
        per_case = cp.restore(per_case.drop(KEY, "left_out"), CASE_COLUMNS).select(CASE_COLUMNS)
        return attach(first["part"], per_case.to_pandas(use_pyarrow_extension_array=True), CASE_COLUMNS), sums
    if left.height:
        per_case = pl.concat([per_case, left], how="vertical_relaxed").sort(KEY)
    return per_case, sums


def _second(paid: tuple[Any, Any]) -> Any:
    return paid[1]


def _first(paid: tuple[Any, Any]) -> Any:
    return paid[0]


def _attach_own(part: pd.DataFrame, paid: tuple[pl.DataFrame, Any]) -> pd.DataFrame:
    """Step 7: the input partition with its own rows' result columns (they never left it)."""
    return attach(part, paid[0].to_pandas(use_pyarrow_extension_array=True), CASE_COLUMNS)


def _settle_in_place(
    ddf: Any,
    policy: Policy,
    settler: _Settler,
    parts: list[Any],
    region: dict[str, Any] | None,
    inputs: list[Any],
    special_notes: list[str],
    base_volume: Any,
    persist: bool,
    fields: list[str],
    need: tuple[str, ...],
    direct: dict[str, str] | None | bool,
) -> Settlement:
    """Steps 4–7 when no rule pairs a hospital's cases across partitions (see the module doc).

    ``direct`` is ``False`` when ``parts`` are narrowed partitions, else the caller's
    ``mapping`` and ``parts`` are the input partitions themselves.
    """
    import dask
    import dask.dataframe as dd

    settler_d = dask.delayed(settler, pure=True)
    terms, pools, nparts = settler.terms, len(settler.terms), len(parts)
    region_d = dask.delayed(region, pure=True)
    if direct is False:
        first_d = [
            dask.delayed(_points_of)(settler_d, p, nparts, region_d, x)
            for p, x in zip(parts, inputs, strict=True)
        ]
    else:
        first_d = [dask.delayed(_points_here)(settler_d, p, i, direct) for i, p in enumerate(parts)]
    # 4. the per-hospital sums: the integer ones by each partition, added up here, the float ones
    # partition after partition in input order (a chain of small tasks, keyed by hospital id so
    # that it runs on as the partitions' points come, in the same graph: no wait in between)
    summary_d = [dask.delayed(_summary_in_place)(settler_d, f) for f in first_d]
    state = None
    for f in first_d:
        state = dask.delayed(_running, pure=True)(settler_d, state, f)
    if persist:
        kept = dask.persist(*first_d, *summary_d, state)
        first_d, summary_d, state = list(kept[:nparts]), list(kept[nparts:-1]), kept[-1]
    *summary, running = dask.compute(*summary_d, state)
    hospitals = sorted({h for s_ in summary for h in s_["hospitals"]})
    if not hospitals:
        raise PolicyError("no case earns points: every case was left out (see the notes of settle in memory)")
    index = {h: i for i, h in enumerate(hospitals)}
    index_d = dask.delayed(index, pure=True)
    n_h = len(hospitals)
    st = _merge_in_place(list(summary), index, pools)
    st.update(_in_order(running, index, pools))

    # 5. the region, per pool: point values and each hospital's point money
    volume = base_volume_table(base_volume, policy)
    values = {}
    for k, t in enumerate(terms):
        at = slice(k * n_h, (k + 1) * n_h)
        sums = HospitalSums(
            st["pool_points"][at], st["outside"][at], st["outside_fund"][at], st["patient"][at]
        )
        vol = base_volume_array(volume or {}, hospitals, t.name) if t.elastic else None
        values[t.name] = point_values(t, sums, vol, source=policy.source)

    # 6. each hospital's point money over its cases (largest remainder across partitions), then
    # the money of every case
    split = None
    if policy.method == "point":
        totals = np.concatenate([values[t.name].hospital_fen for t in terms]).astype(np.int64)
        shares = st["pool_points"]
        args = (index_d, pools, dask.delayed(totals, pure=True), dask.delayed(shares, pure=True))
        got = [x for x in dask.compute(*[dask.delayed(_split_first)(f, *args) for f in first_d]) if x]
        floors = np.sum([x[0] for x in got], axis=0)
        hist = np.sum([x[1] for x in got], axis=0)
        cut = allocate.thresholds(totals, floors, hist)
        found = []
        if (cut.sign != 0).any():
            cut_d = dask.delayed(cut, pure=True)
            found = [
                x
                for x in dask.compute(*[dask.delayed(_split_candidates)(f, *args, cut_d) for f in first_d])
                if x
            ]
        split = (totals, shares, allocate.choose(cut, totals, floors, hist, found))
    values_d, split_d = dask.delayed(values, pure=True), dask.delayed(split, pure=True)
    paid = [dask.delayed(_pay_in_place, pure=True)(settler_d, f, index_d, values_d, split_d) for f in first_d]
    if persist:
        paid = list(dask.persist(*paid))
    parts_sums = [x for x in dask.compute(*[dask.delayed(_second)(p) for p in paid]) if x is not None]
    money = {k: np.sum([x[k] for x in parts_sums], axis=0) for k in parts_sums[0]}

    # 7. the tables from the sums; each partition's results attached to its own rows
    ph, h = _tables(policy, terms, hospitals, values, st, money)
    pr = pool_region(policy, terms, values, ph)
    meta_out = attach(
        ddf._meta, _empty_cases(settler.pools).to_pandas(use_pyarrow_extension_array=True), CASE_COLUMNS
    )
    if direct is False:
        homes = [
            dask.delayed(_attach_own, pure=True)(p, x) for p, x in zip(ddf.to_delayed(), paid, strict=True)
        ]
    else:  # the input partitions were kept with their cases: no second reading
        homes = [dask.delayed(_first, pure=True)(x) for x in paid]
    return Settlement(
        cases=dd.from_delayed(homes, meta=meta_out, verify_meta=False),
        hospitals=h.to_pandas(),
        region=region_table(policy, h, pr).to_pandas(),
        policy=policy,
        notes=_notes(list(summary), special_notes, fields, need),
        pool_hospitals=ph.to_pandas(),
        pool_region=pr.to_pandas(),
    )


def _tables(
    policy: Policy,
    terms: list[Any],
    hospitals: list[str],
    values: dict[str, PoolValues],
    st: dict[str, Any],
    money: dict[str, np.ndarray],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The pool × hospital and hospital tables of :func:`casemix.settle.settle` from the sums."""
    n_h = len(hospitals)
    combined = {
        k: np.zeros(n_h, dtype=np.int64)
        for k in ("point", "outside", "settled", "fund", "patient", "fund_cost", "corridor", "reserve")
    }
    rows = []
    for k, t in enumerate(terms):
        at = slice(k * n_h, (k + 1) * n_h)
        per, frame = pool_rows(
            policy,
            t,
            values[t.name],
            hospitals,
            cases=st["pool_cases"][at],
            points=st["pool_points"][at],
            point=money["point"][at],
            outside=st["outside"][at],
            settled=money["settled"][at],
            fund=money["fund"][at],
            patient=money["patient"][at],
            fund_cost=st["fund_cost"][at],
            negative=money["negative"][at],
        )
        for name, x in per.items():
            combined[name] += x
        rows.append(frame)
    h = hospital_frame(
        policy,
        combined,
        hospitals=hospitals,
        levels=st["level"],
        coefficient=st["coefficient"],
        cases=st["cases"],
        grouped=st["grouped"],
        rw=st["rw"],
        base=st["base"],
        points=st["points"],
        at_cost=st["at_cost"],
        cost=st["cost"],
        rules=st["rules"],
        readmission=st["readmission"],
    )
    return pl.concat(rows), h
