"""Settlement of a year's cases under a global budget (point method).

Per case: base points, the rule that settles it, adjusted points, payment
in fen.  Per hospital: cases, CMI, points, payment, withheld reserve,
pre-payments, clearing balance, actual cost and surplus/deficit (结余/超支).
Per region: point values (base, floating, final) and the budget check.

Money rule (the one place it is stated): costs become fen ROUND_HALF_UP;
the point budget (budget − at-cost payments) is split over hospitals by
points with the largest-remainder method, and each hospital's share over
its cases the same way, so cases add up to hospitals and hospitals to the
budget, to the fen.  Formulas and worked examples:
``docs/payment-settlement.md``.

Generic over points: a case's base points come from a weight table
(RW × points per RW) or, for DIP or any other scheme, from a column of
precomputed points (``settle(cases, policy, points="points",
group_col="dip_group")``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from casemix._case_rules import PAY_COST, RULES, R, assign_rules
from casemix._frames import FrameLike, like, number, read_path, summary_like, to_polars
from casemix._memory import release_free_memory
from casemix._money import FEN_PER_YUAN, MAX_YUAN, round_half_up, yuan_array_to_fen
from casemix._points import Work, prepare
from casemix.budget import Corridors, Policy, shipped_policy
from casemix.cases import Canonical, canonical
from casemix.errors import InputError, PolicyError
from casemix.io import write_table
from casemix.payment.core import ALL, CaseHooks, PoolValues, int_sums, pool_terms
from casemix.payment.inputs import fund_cost_fen, patient_share_fen, pool_index
from casemix.payment.money import Money, settle_money
from casemix.payment.monthly import annual_clearing, monthly_presettlement
from casemix.payment.sums import BLOCK_ROWS, float_sums, pool_sums
from casemix.weights import Weights, compute_weights

__all__ = [
    "RULES",
    "CaseHooks",
    "CasePoints",
    "Paid",
    "Settlement",
    "base_volume_table",
    "base_volumes",
    "case_columns",
    "case_points",
    "compare",
    "pay_cases",
    "region_table",
    "run_demo_settlement",
    "monthly_tables",
    "settle",
    "settlement_scheme",
]

CASE_COLUMNS = (
    "rw",
    "base_points",
    "ref_cost",
    "coefficient",
    "rule",
    "readmission",
    "adjusted_points",
    "pool",
    "settled_fen",
    "patient_fen",
    "payment_fen",
    "left_out",
)


@dataclass(frozen=True)
class Settlement:
    """Result of :func:`settle`; frames in the caller's type.

    Attributes
    ----------
    cases
        The input rows, same order, plus ``rw``, ``base_points``,
        ``ref_cost`` (group mean cost the outlier rules compare with, yuan),
        ``coefficient``, ``rule``, ``readmission``, ``adjusted_points``,
        ``pool`` (an Enum of the pool names, ``all`` without pools),
        ``settled_fen``, ``patient_fen`` and ``payment_fen`` (the
        fund's payment), Int64 fen; ``left_out`` (why a case was left out,
        by the bad-value rule of ``docs/cases.md``; null when settled).
    hospitals
        One row per hospital (all pools), sorted by ``hospital_id``; money
        columns are Int64 fen: ``point_payment_fen`` (money for points:
        settled amount under the ``actual`` form, fund payment under ``ratio``),
        ``at_cost_fen``, ``outside_fen`` (settled outside the points),
        ``settled_fen`` (the hospital's settled amount), ``patient_fen``,
        ``payment_fen`` (the fund's settled payment), ``fund_cost_fen``
        (itemised fund cost), ``corridor_fen`` (结余留用/超支分担
        adjustment), ``final_fund_fen``, ``reserve_fen``, ``prepaid_fen``,
        ``clearing_fen`` (final − reserve − prepaid), ``cost_fen``,
        ``surplus_fen`` (settled − cost: > 0 结余, < 0 超支).
    region
        One row, all pools together: ``budget_fen``, ``at_cost_fen``,
        ``patient_fen``, ``settled_fen``, ``point_budget_fen``,
        ``total_points``, ``pv_base``, ``pv_floating``, ``pv_final`` (yuan
        per point; one pool only), ``payment_fen`` (fund payments),
        ``retained_fen`` (left with the fund by an elastic cap),
        ``budget_check`` (point method: payments + retained == budget, to
        the fen; None under the rate method), ``corridor_fen``,
        ``fund_outlay_fen`` (the fund's real outlay after corridors),
        ``outlay_minus_budget_fen``, ``reserve_fen``, ``prepaid_fen``,
        case counts.
    pool_hospitals, pool_region
        The same per fund pool: one row per pool × hospital, one per pool
        (pool ``all`` when the policy has no pools).
    monthly, annual
        With ``[monthly] enabled``: the hospital × month pre-settlement
        table and the per-hospital annual clearing
        (:mod:`casemix.payment.monthly`); otherwise ``None``.
    policy
        The policy settled under.
    notes
        Rules skipped for want of columns, listed special cases not found,
        rows left out by the bad-value rule of ``docs/cases.md`` (one line
        per reason: ``missing:total_cost: 2 row(s) left out``).
    """

    cases: FrameLike
    hospitals: FrameLike
    region: FrameLike
    policy: Policy
    notes: tuple[str, ...] = ()
    pool_hospitals: FrameLike | None = None
    pool_region: FrameLike | None = None
    monthly: FrameLike | None = None
    annual: FrameLike | None = None

    @property
    def point_value(self) -> float | None:
        """Final point value, yuan per point (None with several pools: see :attr:`pool_region`)."""
        return number(to_polars(self.region)["pv_final"][0])

    def pool(self, name: str) -> pl.DataFrame:
        """The per-hospital table of one fund pool (``职工``, ``居民``; ``all`` without pools)."""
        t = to_polars(self.pool_hospitals)
        if name not in t["pool"].unique().to_list():
            raise InputError(f"no pool {name!r}; pools: {', '.join(t['pool'].unique().sort())}")
        return t.filter(pl.col("pool") == name)

    def summary(self) -> pl.DataFrame:
        """The per-hospital table for people: amounts in yuan (fen / 100), the key columns only.

        Yuan here are for display; the exact amounts are the ``*_fen``
        columns of :attr:`hospitals`.
        """
        h = to_polars(self.hospitals)
        yuan = {"payment_fen": "payment", "cost_fen": "cost", "surplus_fen": "surplus"}
        return h.select(
            "hospital_id",
            "level",
            "cases",
            pl.col("cmi").round(4),
            pl.col("points").round(2),
            *[(pl.col(c) / FEN_PER_YUAN).alias(n) for c, n in yuan.items()],
            pl.when(pl.col("cost_fen") > 0)
            .then(pl.col("surplus_fen") / pl.col("cost_fen"))
            .alias("surplus_share"),
        )

    def write(
        self,
        folder: str | Path,
        *,
        fmt: str = "csv",
        force: bool = False,
        bom: bool | None = None,
        inputs: Sequence[str | Path | None] = (),
    ) -> dict[str, Path]:
        """Write ``cases``, ``hospitals``, ``region`` and the pool tables to ``folder``.

        Formats ``csv``, ``parquet``, ``xlsx``.

        Through :func:`casemix.io.write_table`: atomic, an existing file
        replaced only with ``force``, never over one of ``inputs``;
        ``hospitals`` and ``region`` are tables for people (``*_yuan``
        beside every ``*_fen``, a BOM in CSV). Returns the paths written,
        by table name.
        """
        if fmt not in ("csv", "parquet", "xlsx"):
            raise InputError(f"settlement output format must be csv, parquet or xlsx, got {fmt!r}")
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("cases", "hospitals", "region", "pool_hospitals", "pool_region", "monthly", "annual"):
            if getattr(self, name) is None:
                continue
            frame = to_polars(getattr(self, name))
            path = out / f"{name}.{fmt}"
            paths[name] = write_table(
                frame, path, force=force, bom=bom, inputs=inputs, human=name != "cases" and fmt != "parquet"
            )
        return paths


def settle(
    cases: FrameLike,
    policy: Policy,
    *,
    weights: Weights | FrameLike | None = None,
    points: str | None = None,
    group_col: str = "drg",
    base_volume: Any = None,
    hooks: CaseHooks | None = None,
    mapping: dict[str, str] | None = None,
    scheme: str | None = None,
) -> Settlement:
    """Settle grouped cases under ``policy``.

    Parameters
    ----------
    cases
        Grouped cases (pandas/polars/Arrow/path): ``hospital_id``,
        ``total_cost`` (yuan), ``group_col``; optional ``case_id``, ``adrg``
        (else the first 3 characters of the group code), ``los``,
        ``discharge`` (离院方式; 5 = death), ``hospital_level``,
        ``patient_id``, ``admission_date``, ``discharge_date``.
    policy
        The payment policy.
    weights
        A :class:`~casemix.weights.Weights`, or a frame/path with ``drg``
        and ``rw`` (optional ``mean_cost``, ``mean_los``).  Base points =
        rw × ``policy.points_per_rw`` [city: fqjz1, Jinhua].
    points
        Name of a column of precomputed base points (DIP scores, …); used
        instead of weights for the points (weights, if given, then only
        supply reference costs).
    group_col
        Column holding the group code (``drg``; ``dip_group`` for DIP).
    base_volume
        Elastic point value: each hospital's base volume, a frame/path with
        ``hospital_id``, ``points`` (optional ``pool`` or ``insurance_type``;
        see :func:`base_volumes` for a prior-year frame) or a mapping
        ``hospital_id → points``; default the policy's ``elastic.base_volume``.
    hooks
        Case-level results of other rules (:class:`CaseHooks`): amounts paid
        outside the points, region-wide approved special cases, outlier
        reference costs (one entry per case kept, i.e. not left out).
    mapping
        ``{your column: canonical name}`` besides the aliases of
        ``docs/cases.md`` (医保结算清单 Chinese names are known).
    scheme
        ``"drg"`` or ``"dip"``: the 特例单议 cap (5% / 5‰) and the
        新药新技术 rule (除外支付 / score add-on) differ; default ``"dip"``
        when ``group_col`` is ``"dip_group"``, else ``"drg"``.

    Returns
    -------
    Settlement
        A case whose ``total_cost`` or ``hospital_id`` is missing or
        malformed, or whose cost is negative, is left out (the bad-value rule
        of ``docs/cases.md``): it keeps its row with null results and the
        reason in ``left_out``; ``notes`` count the rows per reason.

    Raises
    ------
    InputError
        Missing columns; a cost that is missing, negative or not a number
        (naming the row); a hospital_id missing.
    PolicyError
        At-cost payments exceed the budget, or no case earns points.
    """
    # the lean form: the per-case cost, at-cost and fund-cost fen are summed at once (only their
    # sums are read), no rw (made again with the per-case columns, case_columns), pool codes in
    # a byte; pay_cases, step by step: the per-case frame is made last, once the money's working
    # arrays are freed (10M cases: 80 MB each; docs/payment-settlement.md, "Memory")
    cp = case_points(
        cases,
        policy,
        weights=weights,
        points=points,
        group_col=group_col,
        hooks=hooks,
        mapping=mapping,
        scheme=scheme,
        lean=True,
    )
    empty = np.zeros(0, dtype=np.int64)
    cost_sums = cp.cost_sums
    release_free_memory()
    money, pts = _money(cp, policy, base_volume=base_volume, values=None)
    # the money's per-case inputs are spent (the monthly tables read points, patient shares
    # and hospital codes)
    cp = dataclasses.replace(cp, outside_fen=empty, fund_cost_fen=None)
    release_free_memory()
    hospitals = _hospital_table(cp, policy, money, pts, cost_sums)
    del pts
    release_free_memory()
    paid = Paid(pl.DataFrame(), hospitals, money.pool_hospitals, money.pool_region, {})
    pool_region = paid.region()
    region = region_table(policy, paid.hospitals, pool_region)
    monthly = annual = None
    if policy.monthly.enabled:
        monthly, annual = monthly_tables(cp, paid, policy)
    settled_fen, patient_fen = money.settled_fen, money.patient_fen
    # under the actual form the fund's amount is settled − patient share (case_amounts), made
    # only now that the money's working arrays are gone
    fund_fen = money.fund_fen if money.fund_fen is not None else settled_fen - patient_fen
    del money
    cp = dataclasses.replace(cp, hosp=empty, patient_fen=empty)
    release_free_memory()
    paid = dataclasses.replace(paid, cases=_case_frame(cp, policy, settled_fen, patient_fen, fund_fen))
    del settled_fen, patient_fen, fund_fen
    return Settlement(
        cases=like(paid.cases, cases),
        hospitals=summary_like(paid.hospitals, cases),
        region=summary_like(region, cases),
        policy=policy,
        notes=cp.notes,
        pool_hospitals=summary_like(paid.pool_hospitals, cases),
        pool_region=summary_like(pool_region, cases),
        monthly=None if monthly is None else summary_like(monthly, cases),
        annual=None if annual is None else summary_like(annual, cases),
    )


def monthly_tables(cp: CasePoints, paid: Paid, policy: Policy) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Monthly pre-settlement and annual clearing (:mod:`casemix.payment.monthly`).

    The provisional point value is ``monthly.point_value``, else each pool's
    base (year-start) point value, else its final one; the annual amount is
    the hospital's final fund payment (after 结余留用/超支分担).  Both tables
    are per hospital, so a distributed settlement makes them part by part
    (``paid`` then has the region's point values in ``values`` and no
    ``pool_region``).
    """
    cfg = policy.monthly
    codes = None
    pv: float | np.ndarray
    if cfg.point_value is not None:
        pv = float(cfg.point_value)
    else:
        if paid.pool_region is not None:
            rows = paid.pool_region.iter_rows(named=True)
            by_pool = {r["pool"]: (r["pv_base"] if r["pv_base"] is not None else r["pv_final"]) for r in rows}
        else:
            by_pool = {
                n: (v.pv_base if v.pv_base is not None else v.pv_final) for n, v in paid.values.items()
            }
        names = [t.name for t in pool_terms(policy)]
        # one value per pool, gathered by pool code where the cases' amounts are made
        pv, codes = np.array([by_pool.get(n) or 0.0 for n in names], dtype=np.float64), cp.pool
    points = np.asarray(cp.rules["adjusted_points"].to_numpy(), dtype=np.float64)
    monthly = monthly_presettlement(
        cp.cases,
        points,
        pv,
        cfg,
        patient_share_fen=cp.patient_fen,
        hospital_codes=(cp.hosp, cp.hospitals),
        pool_codes=codes,
    )
    settled = paid.hospitals.select("hospital_id", pl.col("final_fund_fen").alias("settled_fen"))
    return monthly, annual_clearing(settled, monthly, cfg)


@dataclass(frozen=True)
class CasePoints:
    """Cases with their rules and points, and the money inputs: settlement before the money.

    Made by :func:`case_points`; the money is :func:`pay_cases`.  Everything
    here depends only on the case and its hospital (and the weights), never
    on other hospitals, so a distributed settlement computes it per
    hospital.
    """

    cases: pl.DataFrame  # the rows settled (not left out), input order: LATER_COLUMNS
    rules: pl.DataFrame  # RULE_COLUMNS: rw, base_points, …, adjusted_points, has_weight
    hosp: np.ndarray  # hospital code per case
    hospitals: list[str]  # hospital_id per code, sorted
    levels: list[str | None]  # level per hospital code
    pool: np.ndarray  # pool index per case (into pool_terms(policy))
    cost_fen: np.ndarray
    at_cost_fen: np.ndarray  # settled at cost (special, ungroupable)
    outside_fen: np.ndarray  # settled outside the points: at cost + hooks.paid_outside_yuan
    patient_fen: np.ndarray
    fund_cost_fen: np.ndarray | None
    notes: tuple[str, ...]
    restore: Any = None  # puts left-out rows back (casemix.cases.Canonical.restore)
    #: settle's own lean form (``cost_fen``, ``at_cost_fen`` and ``fund_cost_fen`` empty, no
    #: ``rw`` in ``rules``, pool codes Int8): per hospital Σ cost and Σ at-cost fen, and per pool
    #: × hospital Σ fund cost fen (None without a fund cost)
    cost_sums: tuple[np.ndarray, np.ndarray] | None = None
    fund_cost_sums: np.ndarray | None = None


#: the columns of :attr:`CasePoints.rules` (the case rules' working columns are dropped)
RULE_COLUMNS = (*CASE_COLUMNS[: CASE_COLUMNS.index("adjusted_points") + 1], "has_weight")

#: kept in :attr:`CasePoints.rules` when the policy has 特例单议 applications: whether a case
#: applied and its standard (m × f, yuan), which a distributed settlement ranks region-wide
SPECIAL_COLUMNS = ("special_applied", "standard")

#: kept with ``outliers.reference = "level_mean"``: the cost the mean adds and the case's level,
#: which a distributed settlement sums region-wide per group and level
LEVEL_COLUMNS = ("rule_cost", "level")

#: the canonical columns :attr:`CasePoints.cases` keeps (the monthly tables and messages read them)
LATER_COLUMNS = ("case_id", "hospital_id", "discharge_date", "audit_deduction")

#: the canonical columns the money's inputs read (:func:`_money_inputs`)
MONEY_COLUMNS = ("insurance_type", "patient_share", "deductible", "copay", "self_pay", "fund_paid")

#: optional columns settlement reads (besides the required ones)
OPTIONAL_COLUMNS = (
    "case_id",
    "adrg",
    "los",
    "discharge",
    "hospital_level",
    "patient_id",
    "admission_date",
    "discharge_date",
    "insurance_type",
    "patient_share",
    "deductible",
    "copay",
    "self_pay",
    "fund_paid",
    "new_tech_cost",
    "audit_deduction",
)


def case_points(
    cases: FrameLike,
    policy: Policy,
    *,
    weights: Weights | FrameLike | None = None,
    points: str | None = None,
    group_col: str = "drg",
    hooks: CaseHooks | None = None,
    mapping: dict[str, str] | None = None,
    scheme: str | None = None,
    lean: bool = False,
) -> CasePoints:
    """Step 0 of a settlement: each case's rule and adjusted points, and its money inputs.

    Parameters are those of :func:`settle`.  Raises the same errors for bad
    rows and columns.  ``lean`` (what :func:`settle` uses): the per-case
    cost, at-cost and fund-cost fen are summed at once and not kept
    (:attr:`CasePoints.cost_sums`, ``fund_cost_sums``), ``rules`` has no
    ``rw`` and pool codes are Int8; :func:`pay_cases` takes either form.
    """
    if not isinstance(policy, Policy):
        raise PolicyError(f"policy must be a casemix.budget.Policy, got {type(policy).__name__}")
    c = canonical(
        cases,
        mapping,
        need=("hospital_id", "total_cost", group_col, *([points] if points else [])),
        optional=OPTIONAL_COLUMNS,
        step="settle",
    )
    df = c.used
    canonical_notes = c.notes()
    # Canonical.restore reads the input, the reasons and the names of the columns only
    restore = dataclasses.replace(c, frame=c.frame.clear()).restore
    # prepare reads hospital_level for its codes only: an integer column as given, not the text
    # canonical made of it (10M cases: 160 MB alive through prepare, its peak); same codes, as
    # an integer's text is str() of it
    df = _integer_levels(c, df)
    del c
    work = prepare(
        df,
        policy,
        weights,
        points,
        group_col,
        approved_special=None if hooks is None else hooks.approved_special,
        outlier_ref_cost=None if hooks is None else hooks.outlier_ref_cost,
        scheme=settlement_scheme(scheme, group_col),
    )
    short_stay_ok = {"los", "discharge"} <= set(df.columns)
    # from here on only what the money and the later tables read: a column canonical made (a
    # hospital_level read as text: 160 MB at 10M cases) is not kept alive through the money
    df = _columns(df, [x for x in (*LATER_COLUMNS, *MONEY_COLUMNS) if x in df.columns])
    w = assign_rules(work.frame, policy, short_stay_ok=short_stay_ok, all_case_cost=work.all_case_cost)
    # only what the money and the tables read stays alive (10M cases: each column is 80 MB),
    # the working columns freed before the money's arrays are made
    # (columns taken one by one: DataFrame.select would rechunk the whole frame, whose input
    # columns are chunked as the input was read)
    # a dict: _money_inputs takes the cost out of it, freed once it is in fen (80 MB at 10M)
    money_cols = {c: w.get_column(c) for c in ("cost", "pay", "rule", "special_fen", "new_tech_fen")}
    work = dataclasses.replace(work, frame=pl.DataFrame())
    # rw = base points ÷ points per RW, as prepare derives the points (null where they are);
    # numpy's division, as before: polars divides by a constant through its reciprocal
    w = _columns(
        w if lean else w.with_columns(_rw(w, policy)),
        (
            *(c for c in RULE_COLUMNS if not (lean and c == "rw")),
            *(SPECIAL_COLUMNS if policy.special.active else ()),
            *(LEVEL_COLUMNS if policy.outliers.reference == "level_mean" else ()),
        ),
    )
    n_hosp = len(work.hospitals)
    release_free_memory()
    m = _money_inputs(df, money_cols, work, policy, hooks, n_hosp=n_hosp if lean else None)
    del money_cols
    first = _first_rows(work.hosp, n_hosp)
    levels = [work.levels[work.level[i]] if i >= 0 and work.level[i] >= 0 else None for i in first]
    return CasePoints(
        cases=_columns(df, [c for c in LATER_COLUMNS if c in df.columns]),
        rules=w,
        hosp=work.hosp,
        hospitals=work.hospitals.to_list(),
        levels=levels,
        pool=m["pool"],
        cost_fen=m["cost_fen"],
        at_cost_fen=m["at_cost"],
        outside_fen=m["outside"],
        patient_fen=m["patient"],
        fund_cost_fen=m["fund_cost"],
        notes=(*work.notes, *canonical_notes),
        restore=restore,
        cost_sums=m["cost_sums"],
        fund_cost_sums=m["fund_cost_sums"],
    )


def _first_rows(hosp: np.ndarray, n_hosp: int) -> np.ndarray:
    """Each hospital code's first row (−1 without a case).

    Slice by slice from the last, so that the earliest row is written last: no row index per
    case (10M cases: 80 MB, and as much again for the reversed codes).
    """
    first = np.full(n_hosp, -1, dtype=np.int64)
    for a in reversed(range(0, hosp.size, BLOCK_ROWS)):
        h = hosp[a : a + BLOCK_ROWS]
        first[h[::-1]] = np.arange(a, a + h.size)[::-1]
    return first


def _integer_levels(c: Canonical, df: pl.DataFrame) -> pl.DataFrame:
    """``df`` (:attr:`Canonical.used`) with ``hospital_level`` as the input's integer column, if it is one."""
    col = c.columns.get("hospital_level")
    if col is None or "hospital_level" not in df.columns or not c.original[col].dtype.is_integer():
        return df
    given = c.original[col]
    if c.n_left_out:
        given = given.filter(c.left_out.is_null())
    given = given.alias("hospital_level")
    return pl.DataFrame(
        [given if x == "hospital_level" else df.get_column(x) for x in df.columns], height=df.height
    )


def _rw(rules: pl.DataFrame, policy: Policy) -> pl.Series:
    """rw = base points ÷ points per RW, as prepare derives the points (null where they are).

    numpy's division, as prepare's: polars divides by a constant through its reciprocal,
    which can differ in the last bit.  With nulls, the column's numpy copy is divided in place
    and taken with the base points' validity (no masked copy: 10M cases, 160 MB at the
    per-case frame, the end of a settlement).
    """
    bp = rules["base_points"]
    x = bp.to_numpy()
    if not x.flags.writeable or not bp.null_count():  # a view of the column: no null
        return pl.Series("rw", x / policy.points_per_rw, nan_to_null=True)
    import pyarrow as pa

    x /= policy.points_per_rw
    valid = bp.is_not_null().to_arrow()
    if valid.offset or int(np.count_nonzero(np.isnan(x))) != bp.null_count():
        return pl.Series("rw", x, nan_to_null=True)
    # arrow takes the numpy buffer and the validity bits as they are; polars imports them
    arr = pa.Array.from_buffers(
        pa.float64(), x.size, [valid.buffers()[1], pa.py_buffer(x)], null_count=bp.null_count()
    )
    return pl.Series("rw", pl.from_arrow(arr))


def _columns(frame: pl.DataFrame, names: Sequence[str]) -> pl.DataFrame:
    """``frame.select(names)`` without the copy ``select`` makes of a frame chunked unevenly."""
    return pl.DataFrame([frame.get_column(c) for c in names], height=frame.height)


def settlement_scheme(scheme: str | None, group_col: str) -> str:
    """``"drg"`` or ``"dip"``: ``scheme`` checked, by default ``"dip"`` for ``dip_group``."""
    if scheme is None:
        return "dip" if group_col == "dip_group" else "drg"
    if scheme not in ("drg", "dip"):
        raise PolicyError(f"scheme must be 'drg' or 'dip', got {scheme!r}")
    return scheme


@dataclass(frozen=True)
class Paid:
    """:func:`pay_cases`'s result (polars): cases with their money, hospital and pool tables."""

    cases: pl.DataFrame
    hospitals: pl.DataFrame
    pool_hospitals: pl.DataFrame
    pool_region: pl.DataFrame | None
    values: dict[str, PoolValues]

    def region(self) -> pl.DataFrame:
        """:attr:`pool_region`, which :func:`pay_cases` computes unless given the pools' values."""
        if self.pool_region is None:
            raise ValueError("no pool_region: pay_cases was given the pools' values (computed elsewhere)")
        return self.pool_region


def pay_cases(
    cp: CasePoints, policy: Policy, *, base_volume: Any = None, values: Mapping[str, PoolValues] | None = None
) -> Paid:
    """Steps 1–3: the money of :func:`case_points`' cases under ``policy``.

    ``values`` (per pool, aligned with ``cp.hospitals``) gives the region's
    step 2 computed elsewhere (Dask); ``pool_region`` is then ``None``.
    """
    money, hospitals = _pay(cp, policy, base_volume=base_volume, values=values)
    return Paid(
        cases=_case_frame(
            cp,
            policy,
            money.settled_fen,
            money.patient_fen,
            money.fund_fen if money.fund_fen is not None else money.settled_fen - money.patient_fen,
        ),
        hospitals=hospitals,
        pool_hospitals=money.pool_hospitals,
        pool_region=money.pool_region,
        values=dict(values or {}),
    )


def _pay(
    cp: CasePoints, policy: Policy, *, base_volume: Any, values: Mapping[str, PoolValues] | None
) -> tuple[Money, pl.DataFrame]:
    """:func:`pay_cases`' money (all pools) and hospital table, without the per-case frame."""
    money, pts = _money(cp, policy, base_volume=base_volume, values=values)
    return money, _hospital_table(cp, policy, money, pts)


def _money(
    cp: CasePoints, policy: Policy, *, base_volume: Any, values: Mapping[str, PoolValues] | None
) -> tuple[Money, np.ndarray]:
    """:func:`settle_money` on :func:`case_points`' cases, and the points it settled."""
    terms = pool_terms(policy)
    pts = np.asarray(cp.rules["adjusted_points"].to_numpy(), dtype=np.float64)
    money = settle_money(
        policy,
        terms,
        pool=cp.pool,
        hosp=cp.hosp,
        hospitals=cp.hospitals,
        points=pts,
        outside_fen=cp.outside_fen,
        patient_fen=cp.patient_fen,
        fund_cost_fen=cp.fund_cost_fen,
        base_volume=base_volume_table(base_volume, policy) if values is None else None,
        values=values,
        keep_point_fen=False,  # the cases' point parts are summed per hospital, never shown
        fund_cost_sums=cp.fund_cost_sums,
        keep_fund_fen=cp.cost_sums is None,  # settle's lean form makes it with the case frame
    )
    return money, pts


def _case_frame(
    cp: CasePoints, policy: Policy, settled_fen: np.ndarray, patient_fen: np.ndarray, fund_fen: np.ndarray
) -> pl.DataFrame:
    """The per-case result: the input rows (left-out ones restored) and :data:`CASE_COLUMNS`."""
    out = cp.cases.with_columns(*case_columns(cp, policy, settled_fen, patient_fen, fund_fen))
    return cp.restore(out, CASE_COLUMNS) if cp.restore is not None else out


def case_columns(
    cp: CasePoints, policy: Policy, settled_fen: np.ndarray, patient_fen: np.ndarray, fund_fen: np.ndarray
) -> list[pl.Series]:
    """The per-case result columns (:data:`CASE_COLUMNS` but ``left_out``) of ``cp``'s cases."""
    w = cp.rules
    names = [t.name for t in pool_terms(policy)]
    # an Enum of the pool names from the pool codes: one byte per case, no string per case
    pool = pl.Series("pool", np.zeros(cp.cases.height, dtype=np.int8) if len(names) == 1 else cp.pool).cat.to(
        pl.Enum(names)
    )
    return [
        w["rw"] if "rw" in w.columns else _rw(w, policy),
        w["base_points"],
        w["ref_cost"],
        w["coefficient"],
        w["rule"].cat.to(pl.Enum(RULES)),  # from the UInt8 codes: no wider copy
        w["readmission"],
        w["adjusted_points"],
        pool,
        pl.Series("settled_fen", settled_fen, pl.Int64),
        pl.Series("patient_fen", patient_fen, pl.Int64),
        pl.Series("payment_fen", fund_fen, pl.Int64),
    ]


def compare(
    cases: FrameLike,
    policy_a: Policy,
    policy_b: Policy,
    *,
    weights: Weights | FrameLike | None = None,
    points: str | None = None,
    group_col: str = "drg",
    mapping: dict[str, str] | None = None,
) -> FrameLike:
    """Per-hospital what-if table: the same cases settled under two policies.

    Returns one row per hospital: ``hospital_id``, ``cases``,
    ``points_a``/``points_b``, ``payment_a_fen``/``payment_b_fen``,
    ``diff_fen`` (b − a), ``diff_pct`` (of a's payment),
    ``surplus_a_fen``/``surplus_b_fen``.  ``a`` is ``policy_a``.
    """
    df = to_polars(cases)
    a = to_polars(
        settle(df, policy_a, weights=weights, points=points, group_col=group_col, mapping=mapping).hospitals
    )
    b = to_polars(
        settle(df, policy_b, weights=weights, points=points, group_col=group_col, mapping=mapping).hospitals
    )
    cols = ["hospital_id", "points", "payment_fen", "surplus_fen"]
    t = (
        a.select("hospital_id", "cases", *cols[1:])
        .join(b.select(cols), on="hospital_id", how="left", suffix="_b")
        .rename(
            {
                "points": "points_a",
                "payment_fen": "payment_a_fen",
                "surplus_fen": "surplus_a_fen",
                "payment_fen_b": "payment_b_fen",
                "surplus_fen_b": "surplus_b_fen",
            }
        )
    )
    t = t.with_columns((pl.col("payment_b_fen") - pl.col("payment_a_fen")).alias("diff_fen"))
    t = t.with_columns(
        pl.when(pl.col("payment_a_fen") != 0)
        .then(pl.col("diff_fen") / pl.col("payment_a_fen") * 100.0)
        .otherwise(None)
        .alias("diff_pct")
    )
    t = t.select(
        "hospital_id",
        "cases",
        "points_a",
        "points_b",
        "payment_a_fen",
        "payment_b_fen",
        "diff_fen",
        "diff_pct",
        "surplus_a_fen",
        "surplus_b_fen",
    )
    return summary_like(t, cases)


def run_demo_settlement(
    grouped: pl.DataFrame, policy: Policy | None = None, *, prior: pl.DataFrame | None = None
) -> Settlement:
    """Weights from ``grouped`` itself, then its settlement: what ``casemix demo`` shows.

    With ``policy=None``: when the cases carry ``insurance_type``,
    ``patient_share`` and ``fund_paid`` (as ``casemix.synth`` makes them)
    and a ``prior`` year is given, the shipped ``demo_pools`` policy — the
    职工 and 居民 pools, the elastic point value (base share 0.75, base
    volumes = each hospital's points in ``prior``) and corridors — with
    each pool's budget replaced by 98% of its cases' itemised fund cost
    (Σ ``fund_paid``, rounded to the yuan); otherwise the shipped ``demo``
    policy with its budget replaced by 92% of the cases' total cost.  A
    budget in a policy file cannot know the size of the demo data.
    """
    df = to_polars(grouped)
    weights = compute_weights(df)
    base_volume = None
    pooled = {"insurance_type", "patient_share", "fund_paid"} <= set(df.columns)
    if policy is None and pooled and prior is not None:
        policy = Policy.from_toml(shipped_policy("demo_pools"))
        terms = {t.name: t for t in pool_terms(policy)}
        fund = (
            df.with_columns(pl.Series("pool", _pool_of(df, policy)))
            .group_by("pool")
            .agg(pl.col("fund_paid").cast(pl.Float64).sum())
        )
        budgets = {p: Decimal(round(v * 0.98)) for p, v in fund.iter_rows()}
        pools = {
            n: dataclasses.replace(p, budget=budgets.get(n, Decimal(0)))
            for n, p in policy.pools.items()
            if n in terms
        }
        policy = policy.replace(
            pools=pools, budget=None, name="demo-pools (pool budgets = 98% of their fund cost)"
        )
        base_volume = base_volumes(prior, policy, weights=weights)
    elif policy is None:
        total = float(df["total_cost"].cast(pl.Float64, strict=False).fill_null(0).sum())
        policy = Policy.demo().replace(
            budget=Decimal(round(total * 0.92)), name="demo (budget = 92% of the cases' cost)"
        )
    return settle(df, policy, weights=weights, base_volume=base_volume)


def _pool_of(df: pl.DataFrame, policy: Policy) -> list[str]:
    terms = pool_terms(policy)
    codes = pool_index(df, [t.values for t in terms], [t.name for t in terms], _case_ids(df))
    return [terms[i].name for i in codes]


# --- money ----------------------------------------------------------------------


def _case_ids(df: pl.DataFrame) -> pl.Series:
    return (
        df["case_id"].cast(pl.String)
        if "case_id" in df.columns
        else pl.int_range(1, df.height + 1, eager=True).cast(pl.String).alias("case_id")
    )


def base_volume_table(base_volume: Any, policy: Policy) -> dict[tuple[str, str], float] | None:
    """``{(hospital_id, pool): points}`` from a frame/path/mapping, or the policy's file.

    ``None`` when neither is given.  Pool ``all`` applies to every pool.
    """
    if base_volume is None and policy.elastic.base_volume:
        base_volume = Path(policy.elastic.base_volume)
        if not base_volume.exists():
            raise PolicyError(f"{policy.source}: elastic.base_volume file not found: {base_volume}")
    if base_volume is None:
        return None
    if isinstance(base_volume, Mapping):
        return {
            (str(h), ALL) if not isinstance(h, tuple) else (str(h[0]), str(h[1])): float(v)
            for h, v in base_volume.items()
        }
    bv = to_polars(read_path(base_volume) if isinstance(base_volume, (str, Path)) else base_volume)
    if not {"hospital_id", "points"} <= set(bv.columns):
        raise InputError(
            f"base volume table needs columns hospital_id and points; has {', '.join(bv.columns)}"
        )
    pool = (
        pl.col("pool")
        if "pool" in bv.columns
        else pl.col("insurance_type")
        if "insurance_type" in bv.columns
        else pl.lit(ALL)
    )
    bv = bv.select(
        pl.col("hospital_id").cast(pl.String),
        pool.cast(pl.String).alias("pool"),
        pl.col("points").cast(pl.Float64, strict=False),
    )
    bad = bv.filter(pl.col("points").is_null() | ~pl.col("points").is_finite() | (pl.col("points") < 0))
    if bad.height:
        raise InputError(
            f"base volume of hospital {bad['hospital_id'][0]!r} is "
            f"{bad['points'][0]!r}; it must be points >= 0"
        )
    if policy.pools:
        # insurance_type values → pool names
        to_pool = {v: name for name, t in policy.pools.items() for v in t.values}
        to_pool.update({name: name for name in policy.pools})
        bv = bv.with_columns(pl.col("pool").replace(to_pool))
    agg = bv.group_by("hospital_id", "pool").agg(pl.col("points").sum())
    return {(h, p): v for h, p, v in agg.iter_rows()}


def base_volumes(
    prior: FrameLike,
    policy: Policy,
    *,
    weights: Weights | FrameLike | None = None,
    points: str | None = None,
    group_col: str = "drg",
) -> pl.DataFrame:
    """Each hospital's base volume from a prior year's cases: its points under ``policy``.

    The prior-year frame is settled with the elastic point value off (the
    points do not depend on it); the result (``hospital_id``, ``pool``,
    ``points``) is what :func:`settle` takes as ``base_volume``.
    """
    flat = policy.replace(
        elastic=dataclasses.replace(policy.elastic, enabled=False, base_volume=None), corridors=Corridors()
    )
    s = settle(prior, flat, weights=weights, points=points, group_col=group_col)
    return to_polars(s.pool_hospitals).select("hospital_id", "pool", "points")


def _money_inputs(
    df: pl.DataFrame,
    w: dict[str, pl.Series],
    work: Work,
    policy: Policy,
    hooks: CaseHooks | None,
    *,
    n_hosp: int | None = None,
) -> dict[str, Any]:
    """Per-case arrays of the money step, checked (errors name row and case id).

    With ``n_hosp`` (settle's lean form): the cost, at-cost and fund-cost amounts come back as
    their sums per hospital (``cost_sums``) and per pool × hospital (``fund_cost_sums``) in
    place of the per-case arrays (80 MB each at 10M cases), and pool codes are Int8.  ``w``
    holds the rule columns ``cost``, ``pay``, ``rule``, ``special_fen``, ``new_tech_fen``;
    ``cost`` is taken out of it (its array freed once converted to fen).
    """
    case_id = _case_ids(df)
    terms = pool_terms(policy)
    small = n_hosp is not None and len(terms) < 128
    # the pool codes first: their text and Enum temporaries come before the per-case fen arrays
    pool = (
        pool_index(df, [t.values for t in terms], [t.name for t in terms], case_id, small=small)
        if policy.pools
        else np.zeros(df.height, dtype=np.int8 if small else np.int64)
    )
    cost = w.pop("cost").to_numpy()
    if (cost >= MAX_YUAN).any():
        i = int(np.flatnonzero(cost >= MAX_YUAN)[0])
        raise InputError(
            f"total_cost at row {i} (case_id {case_id[i]!r}) is outside the supported range (< 10^13 yuan)"
        )
    cost_fen = yuan_array_to_fen(cost)
    del cost
    patient, _ = patient_share_fen(df, case_id, cost_fen)
    if patient is None:
        if policy.point_form == "actual":
            work.notes.append(
                "no patient_share column: the fund is taken to pay every bill in full (patient share 0)"
            )
        patient = np.zeros(df.height, dtype=np.int64)
    cost_h = None if n_hosp is None else int_sums(work.hosp, cost_fen, n_hosp)
    by_cost = w["pay"].to_numpy() == PAY_COST
    if by_cost.any():
        # approved special cases by item: cost × fund ratio (casemix.payment.special_cases); the
        # lean form turns the cost's own array into the at-cost amounts (one array per case)
        at_cost = cost_fen if n_hosp is not None else cost_fen.copy()
        special = w["rule"].to_numpy() == R["special"]
        at_cost[special] = w["special_fen"].to_numpy()[special]
        del special
        at_cost[~by_cost] = 0
    else:
        at_cost = np.zeros(df.height, dtype=np.int64)
    del by_cost
    # DRG 新药新技术除外支付: the new-technology cost paid outside the points
    new_tech = w["new_tech_fen"].to_numpy()
    outside = at_cost + new_tech if new_tech.any() else at_cost
    if hooks is not None and hooks.paid_outside_yuan is not None:
        extra = np.asarray(hooks.paid_outside_yuan, dtype=np.float64)
        if extra.shape != (df.height,) or not np.isfinite(extra).all() or (extra < 0).any():
            raise InputError("paid_outside_yuan: one finite amount >= 0 per case is needed")
        outside = outside + yuan_array_to_fen(extra)
    sums = None
    if n_hosp is not None and cost_h is not None:
        # the lean form keeps the sums only, made before the fund cost's array exists
        sums = cost_h, int_sums(work.hosp, at_cost, n_hosp)
        cost_fen = at_cost = np.zeros(0, dtype=np.int64)
    rule = "corridors (结余留用/超支分担)" if policy.corridors.enabled else "fund_paid"
    fund_cost = fc_sums = None
    if policy.corridors.enabled or "fund_paid" in df.columns:
        if n_hosp is not None:
            fc_sums = _fund_cost_sums(df, case_id, pool, work.hosp, len(terms), n_hosp, rule=rule)
        else:
            fund_cost = fund_cost_fen(df, case_id, rule=rule)
    return {
        "terms": terms,
        "pool": pool,
        "cost_fen": cost_fen,
        "at_cost": at_cost,
        "outside": outside,
        "patient": patient,
        "fund_cost": fund_cost,
        "cost_sums": sums,
        "fund_cost_sums": fc_sums,
    }


def _fund_cost_sums(
    df: pl.DataFrame,
    case_id: pl.Series,
    pool: np.ndarray,
    hosp: np.ndarray,
    n_pools: int,
    n_hosp: int,
    *,
    rule: str,
) -> np.ndarray:
    """Σ fund cost fen (``fund_paid``) per pool × hospital, read slice by slice.

    The same exact sums as :func:`pool_sums` of the whole column, without its Int64 array per
    case (10M cases: 80 MB at the money inputs' peak); errors name the row as
    :func:`fund_cost_fen` does (a missing column: the slice of no row raises it too).
    """
    out = np.zeros((n_pools, n_hosp), dtype=np.int64)
    for a in range(0, max(df.height, 1), BLOCK_ROWS):
        fen = fund_cost_fen(df.slice(a, BLOCK_ROWS), case_id.slice(a, BLOCK_ROWS), rule=rule, offset=a)
        out += pool_sums(pool[a : a + fen.size], hosp[a : a + fen.size], fen, n_pools, n_hosp)
    return out


def _hospital_table(
    cp: CasePoints,
    policy: Policy,
    money: Money,
    pts: np.ndarray,
    cost_sums: tuple[np.ndarray, np.ndarray] | None = None,
) -> pl.DataFrame:
    """One row per hospital (all pools): counts, CMI, points, money in fen, rule counts."""
    w, hosp, n_hosp = cp.rules, cp.hosp, len(cp.hospitals)
    # rw and base points are null exactly where a case has no weight (never NaN): 0 there;
    # rw = base points ÷ points per RW (_rw): the sums of the null-filled columns
    base, rw = _base_sums(w["base_points"], hosp, n_hosp, policy.points_per_rw)
    rule_counts, n_grouped, readmission, first = _hospital_counts(
        hosp, n_hosp, w["rule"].to_numpy(), w["has_weight"].to_numpy(), w["readmission"].to_numpy()
    )
    # per hospital: cost and at-cost fen (given when the per-case arrays are already freed)
    cost_h, at_cost_h = (
        cost_sums
        or cp.cost_sums
        or (
            int_sums(hosp, cp.cost_fen, n_hosp),
            int_sums(hosp, cp.at_cost_fen, n_hosp),
        )
    )
    return hospital_frame(
        policy,
        money.hospital,
        hospitals=cp.hospitals,
        levels=cp.levels,
        coefficient=w["coefficient"].to_numpy()[first] if hosp.size else np.zeros(n_hosp),
        cases=rule_counts.sum(axis=1),  # every case has one rule: no bincount's copy of hosp
        grouped=n_grouped,
        rw=rw,
        base=base,
        points=float_sums(hosp, pts, n_hosp),
        at_cost=at_cost_h,
        cost=cost_h,
        rules=rule_counts,
        readmission=readmission,
    )


def _base_sums(
    base_points: pl.Series, hosp: np.ndarray, n_hosp: int, points_per_rw: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per hospital Σ base points and Σ rw (= base points ÷ points per RW), nulls as 0.

    Slice by slice with ``np.add.at``, which adds in row order as ``np.bincount`` over all the
    cases does: the same float sums to the bit, with per-slice temporaries only (no copy of the
    column: 80 MB at 10M cases).
    """
    base = np.zeros(n_hosp, dtype=np.float64)
    rw = np.zeros(n_hosp, dtype=np.float64)
    for a in range(0, hosp.size, BLOCK_ROWS):
        x = base_points.slice(a, BLOCK_ROWS).to_numpy()
        if not x.flags.writeable:
            x = x.copy()
        x[np.isnan(x)] = 0.0
        h = hosp[a : a + x.size]
        np.add.at(base, h, x)
        x /= points_per_rw
        np.add.at(rw, h, x)
    return base, rw


def _hospital_counts(
    hosp: np.ndarray, n_hosp: int, rule: np.ndarray, grouped: np.ndarray, readmission: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per hospital: cases per rule ``(n_hosp, len(RULES))``, grouped cases, readmissions, first row.

    Exact integer counts slice by slice (no gather of the hospital codes of 90% of the cases: 72 MB
    at 10M); the slices from the last, so that each hospital's first row is written last.
    """
    n_rules = len(RULES)
    rules = np.zeros(n_hosp * n_rules, dtype=np.int64)
    n_grouped = np.zeros(n_hosp, dtype=np.int64)
    n_readmission = np.zeros(n_hosp, dtype=np.int64)
    first = np.zeros(n_hosp, dtype=np.int64)
    for a in reversed(range(0, hosp.size, BLOCK_ROWS)):
        s = slice(a, a + BLOCK_ROWS)
        h = hosp[s].astype(np.int64)
        rules += np.bincount(h * n_rules + rule[s], minlength=n_hosp * n_rules)
        n_grouped += np.bincount(h[grouped[s]], minlength=n_hosp)
        n_readmission += np.bincount(h[readmission[s]], minlength=n_hosp)
        first[h[::-1]] = np.arange(a, a + h.size)[::-1]
    return rules.reshape(n_hosp, n_rules), n_grouped, n_readmission, first


def hospital_frame(
    policy: Policy,
    c: Mapping[str, np.ndarray],
    *,
    hospitals: Sequence[str],
    levels: Any,
    coefficient: np.ndarray,
    cases: np.ndarray,
    grouped: np.ndarray,
    rw: np.ndarray,
    base: np.ndarray,
    points: np.ndarray,
    at_cost: np.ndarray,
    cost: np.ndarray,
    rules: np.ndarray,
    readmission: np.ndarray,
) -> pl.DataFrame:
    """The hospital table from per-hospital sums (one process and ``casemix.dask`` alike).

    ``c`` holds the all-pool money per hospital in fen (point, outside, settled, fund,
    patient, fund_cost, corridor, reserve); ``rw`` is Σ rw of the grouped cases (CMI =
    rw ÷ grouped), ``rules`` one column per rule of ``RULES``.  Final fund = fund +
    corridor; prepaid = final × prepayment share; clearing = final − reserve − prepaid;
    surplus = settled − cost (docs/payment-settlement.md).
    """
    final = c["fund"] + c["corridor"]
    prepaid = round_half_up(np.maximum(final, 0) * policy.prepayment_share)
    with np.errstate(invalid="ignore", divide="ignore"):
        cmi = rw / np.where(grouped > 0, grouped, np.nan)
    h = pl.DataFrame(
        {
            "hospital_id": pl.Series(hospitals, dtype=pl.String),
            "level": pl.Series(levels, dtype=pl.String),
            "coefficient": coefficient,
            "cases": cases,
            "grouped_cases": grouped,
            "cmi": pl.Series(cmi, nan_to_null=True, dtype=pl.Float64),
            "base_points": base,
            "points": points,
            "point_payment_fen": c["point"],
            "at_cost_fen": at_cost,
            "outside_fen": c["outside"],
            "settled_fen": c["settled"],
            "patient_fen": c["patient"],
            "payment_fen": c["fund"],
            "fund_cost_fen": c["fund_cost"],
            "corridor_fen": c["corridor"],
            "final_fund_fen": final,
            "cost_fen": cost,
            **{f"n_{r}": rules[:, i] for i, r in enumerate(RULES)},
            "n_readmission": readmission,
            "reserve_fen": c["reserve"],
            "prepaid_fen": prepaid,
            "clearing_fen": final - c["reserve"] - prepaid,
            "surplus_fen": c["settled"] - cost,
        }
    )
    return h.with_columns(pl.col(pl.Int32, pl.UInt32, pl.UInt64, pl.Int64).cast(pl.Int64))


def region_table(policy: Policy, hospitals: pl.DataFrame, pool_region: pl.DataFrame) -> pl.DataFrame:
    """The one-row region table (all pools) from the hospital and pool tables."""
    h, pr = hospitals, pool_region
    one = pr.height == 1

    def tot(c: str) -> int:
        return int(h[c].sum())

    checks = [x for x in pr["budget_check"].to_list() if x is not None]
    budget = int(pr["budget_fen"].sum())
    return pl.DataFrame(
        {
            "policy": [policy.name],
            "method": [policy.method],
            "point_form": [policy.point_form],
            "pools": [pr.height],
            "budget_fen": [budget],
            "at_cost_fen": [tot("at_cost_fen")],
            "outside_fen": [tot("outside_fen")],
            "patient_fen": [tot("patient_fen")],
            "settled_fen": [tot("settled_fen")],
            "point_budget_fen": [int(pr["point_money_fen"].sum())],
            "total_points": [float(pr["total_points"].sum())],
            "pv_base": [pr["pv_base"][0] if one else None],
            "pv_floating": [pr["pv_floating"][0] if one else None],
            "pv_final": [pr["pv_final"][0] if one else None],
            "payment_fen": [tot("payment_fen")],
            "retained_fen": [int(pr["retained_fen"].sum())],
            "budget_check": [all(checks) if checks else None],
            "corridor_fen": [tot("corridor_fen")],
            "fund_outlay_fen": [tot("final_fund_fen")],
            "outlay_minus_budget_fen": [tot("final_fund_fen") - budget],
            "fund_cost_fen": [tot("fund_cost_fen")],
            "reserve_fen": [tot("reserve_fen")],
            "prepaid_fen": [tot("prepaid_fen")],
            "cases": [tot("cases")],
            "hospitals": [h.height],
            **{f"n_{r}": [tot(f"n_{r}")] for r in RULES},
            "n_readmission": [tot("n_readmission")],
        },
        schema_overrides={
            "pv_base": pl.Float64,
            "pv_floating": pl.Float64,
            "pv_final": pl.Float64,
            "budget_check": pl.Boolean,
        },
    )
