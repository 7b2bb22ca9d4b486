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

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl

from casemix._case_rules import PAY_COST, RULES, assign_rules
from casemix._frames import FrameLike, like, summary_like, to_polars
from casemix._money import FEN_PER_YUAN, allocate, round_half_up, yuan_array_to_fen
from casemix._points import Work, prepare
from casemix.budget import Policy
from casemix.cases import canonical
from casemix.errors import InputError, PolicyError
from casemix.io import write_table
from casemix.weights import Weights, compute_weights

__all__ = ["Settlement", "compare", "run_demo_settlement", "settle"]

CASE_COLUMNS = ("rw", "base_points", "ref_cost", "coefficient", "rule", "readmission",
                "adjusted_points", "payment_fen", "left_out")


@dataclass(frozen=True)
class Settlement:
    """Result of :func:`settle`; frames in the caller's type.

    Attributes
    ----------
    cases
        The input rows, same order, plus ``rw``, ``base_points``,
        ``ref_cost`` (group mean cost the outlier rules compare with, yuan),
        ``coefficient``, ``rule``, ``readmission``, ``adjusted_points``,
        ``payment_fen`` (Int64), ``left_out`` (why a case was left out, by
        the bad-value rule of ``docs/cases.md``; null when settled).
    hospitals
        One row per hospital, sorted by ``hospital_id``; money columns are
        Int64 fen: ``point_payment_fen``, ``at_cost_fen``, ``payment_fen``,
        ``reserve_fen``, ``prepaid_fen``, ``clearing_fen``, ``cost_fen``,
        ``surplus_fen`` (> 0 结余, < 0 超支).
    region
        One row: ``budget_fen``, ``at_cost_fen``, ``point_budget_fen``,
        ``total_points``, ``forecast_points``, ``pv_base``, ``pv_floating``,
        ``pv_final`` (yuan per point), ``payment_fen``, ``budget_check``
        (payments == budget), ``reserve_fen``, ``prepaid_fen``, case counts.
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

    @property
    def point_value(self) -> float | None:
        """Final point value, yuan per point."""
        return to_polars(self.region)["pv_final"][0]

    def summary(self) -> pl.DataFrame:
        """The per-hospital table for people: amounts in yuan (fen / 100), the key columns only.

        Yuan here are for display; the exact amounts are the ``*_fen``
        columns of :attr:`hospitals`.
        """
        h = to_polars(self.hospitals)
        yuan = {"payment_fen": "payment", "cost_fen": "cost", "surplus_fen": "surplus"}
        return h.select(
            "hospital_id", "level", "cases", pl.col("cmi").round(4), pl.col("points").round(2),
            *[(pl.col(c) / FEN_PER_YUAN).alias(n) for c, n in yuan.items()],
            pl.when(pl.col("cost_fen") > 0).then(pl.col("surplus_fen") / pl.col("cost_fen"))
            .alias("surplus_share"))

    def write(self, folder: str | Path, *, fmt: str = "csv", force: bool = False,
              bom: bool | None = None, inputs: Sequence[str | Path | None] = ()) -> dict[str, Path]:
        """Write ``cases``, ``hospitals`` and ``region`` to ``folder`` (``csv``, ``parquet``, ``xlsx``).

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
        for name in ("cases", "hospitals", "region"):
            frame = to_polars(getattr(self, name))
            path = out / f"{name}.{fmt}"
            paths[name] = write_table(frame, path, force=force, bom=bom, inputs=inputs,
                                      human=name != "cases" and fmt != "parquet")
        return paths


def settle(cases: FrameLike, policy: Policy, *, weights: Weights | FrameLike | None = None,
           points: str | None = None, group_col: str = "drg",
           mapping: dict[str, str] | None = None) -> Settlement:
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
    mapping
        ``{your column: canonical name}`` besides the aliases of
        ``docs/cases.md`` (医保结算清单 Chinese names are known).

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
        Missing columns; negative or infinite precomputed points.
    PolicyError
        At-cost payments exceed the budget, or no case earns points.
    """
    if not isinstance(policy, Policy):
        raise PolicyError(f"policy must be a casemix.budget.Policy, got {type(policy).__name__}")
    c = canonical(cases, mapping, need=("hospital_id", "total_cost", group_col,
                                        *([points] if points else [])),
                  optional=("case_id", "adrg", "los", "discharge", "hospital_level", "patient_id",
                            "admission_date", "discharge_date"), step="settle")
    df = c.used
    work = prepare(df, policy, weights, points, group_col)
    w = assign_rules(work.frame, policy, short_stay_ok={"los", "discharge"} <= set(df.columns),
                     all_case_cost=work.all_case_cost)
    hospitals, region, payment = _pay(w, work, policy)
    out = c.restore(df.with_columns(
        w["rw"], w["base_points"], w["ref_cost"], w["coefficient"], w["rule"].cast(pl.UInt32).cat.to(pl.Enum(RULES)), w["readmission"],
        w["adjusted_points"], pl.Series("payment_fen", payment, pl.Int64)), CASE_COLUMNS)
    return Settlement(cases=like(out, cases), hospitals=summary_like(hospitals, cases),
                      region=summary_like(region, cases), policy=policy,
                      notes=(*work.notes, *c.notes()))


def compare(cases: FrameLike, policy_a: Policy, policy_b: Policy, *,
            weights: Weights | FrameLike | None = None, points: str | None = None,
            group_col: str = "drg", mapping: dict[str, str] | None = None) -> FrameLike:
    """Per-hospital what-if table: the same cases settled under two policies.

    Returns one row per hospital: ``hospital_id``, ``cases``,
    ``points_a``/``points_b``, ``payment_a_fen``/``payment_b_fen``,
    ``diff_fen`` (b − a), ``diff_pct`` (of a's payment),
    ``surplus_a_fen``/``surplus_b_fen``.  ``a`` is ``policy_a``.
    """
    df = to_polars(cases)
    a = to_polars(settle(df, policy_a, weights=weights, points=points, group_col=group_col,
                         mapping=mapping).hospitals)
    b = to_polars(settle(df, policy_b, weights=weights, points=points, group_col=group_col,
                         mapping=mapping).hospitals)
    cols = ["hospital_id", "points", "payment_fen", "surplus_fen"]
    t = (a.select("hospital_id", "cases", *cols[1:])
         .join(b.select(cols), on="hospital_id", how="left", suffix="_b")
         .rename({"points": "points_a", "payment_fen": "payment_a_fen",
                  "surplus_fen": "surplus_a_fen", "payment_fen_b": "payment_b_fen",
                  "surplus_fen_b": "surplus_b_fen"}))
    t = t.with_columns((pl.col("payment_b_fen") - pl.col("payment_a_fen")).alias("diff_fen"))
    t = t.with_columns(pl.when(pl.col("payment_a_fen") != 0)
                       .then(pl.col("diff_fen") / pl.col("payment_a_fen") * 100.0)
                       .otherwise(None).alias("diff_pct"))
    t = t.select("hospital_id", "cases", "points_a", "points_b", "payment_a_fen",
                 "payment_b_fen", "diff_fen", "diff_pct", "surplus_a_fen", "surplus_b_fen")
    return summary_like(t, cases)


def run_demo_settlement(grouped: pl.DataFrame, policy: Policy | None = None) -> Settlement:
    """Weights from ``grouped`` itself, then its settlement: what ``casemix demo`` shows.

    With ``policy=None`` the shipped demo policy is used with its budget
    replaced by 92% of the cases' total cost, rounded to the yuan (a budget
    in the policy file cannot know the size of the demo data).
    """
    df = to_polars(grouped)
    weights = compute_weights(df)
    if policy is None:
        total = float(df["total_cost"].cast(pl.Float64, strict=False).fill_null(0).sum())
        policy = Policy.demo().replace(budget=Decimal(round(total * 0.92)),
                                       name="demo (budget = 92% of the cases' cost)")
    return settle(df, policy, weights=weights)


# --- money ---------------------------------------------------------------------

def _segments(hosp: np.ndarray, n_hosp: int) -> tuple[np.ndarray, np.ndarray]:
    """Case indices sorted by hospital, and each hospital's start in that order."""
    # a 16-bit key lets numpy use its radix sort for the stable argsort
    key = hosp.astype(np.uint16) if n_hosp <= np.iinfo(np.uint16).max else hosp
    order = np.argsort(key, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(hosp, minlength=n_hosp))])
    return order, starts


def _pay(w: pl.DataFrame, work: Work, policy: Policy) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    n, n_hosp = w.height, len(work.hospitals)
    cost_fen = yuan_array_to_fen(w["cost"].to_numpy())
    pay_code = w["pay"].to_numpy()
    at_cost = np.where(pay_code == PAY_COST, cost_fen, 0)
    budget_fen = policy.budget_fen
    at_cost_total = int(at_cost.sum())
    point_budget = budget_fen - at_cost_total
    if point_budget < 0:
        raise PolicyError(f"{policy.source}: at-cost payments ({at_cost_total} fen) exceed the "
                          f"budget ({budget_fen} fen); raise budget.total_yuan or settle fewer "
                          "cases at cost")
    pts = w["adjusted_points"].to_numpy().astype(np.float64)
    total_points = float(pts.sum())
    if total_points <= 0 and point_budget > 0:
        raise PolicyError(f"{policy.source}: no case earns points, so the point budget "
                          f"({point_budget} fen) cannot be paid out")

    # largest remainder twice: the point budget over hospitals, each hospital's share over its cases
    hosp = work.hosp
    order, starts = _segments(hosp, n_hosp)
    hosp_points = np.bincount(hosp, weights=pts, minlength=n_hosp)
    hosp_fen = (allocate(point_budget, hosp_points) if total_points > 0
                else np.zeros(n_hosp, np.int64))
    case_fen = np.zeros(n, np.int64)
    for h in np.flatnonzero(hosp_fen):
        idx = order[starts[h]:starts[h + 1]]
        case_fen[idx] = allocate(int(hosp_fen[h]), pts[idx])
    payment = case_fen + at_cost

    pv_final = point_budget / FEN_PER_YUAN / total_points if total_points > 0 else None
    forecast = policy.forecast_points if policy.forecast_points is not None else total_points
    pv_base = (policy.base_share * float(policy.budget) / forecast) if forecast else None
    pv_floating = pv_final - pv_base if pv_final is not None and pv_base is not None else None

    def per_hosp(x: np.ndarray) -> np.ndarray:
        # float sums of integers are exact below 2**53 fen (90 trillion yuan)
        if np.abs(x).sum() < 2 ** 53:
            return np.rint(np.bincount(hosp, weights=x, minlength=n_hosp)).astype(np.int64)
        return np.add.reduceat(x[order], starts[:-1])

    grouped = w["has_weight"].to_numpy()
    n_grouped = np.bincount(hosp, weights=grouped, minlength=n_hosp).astype(np.int64)
    rw = np.where(grouped, w["rw"].to_numpy(), 0.0)
    base = np.where(grouped, w["base_points"].to_numpy(), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cmi = np.bincount(hosp, weights=rw, minlength=n_hosp) / np.where(n_grouped > 0, n_grouped, np.nan)
    rule = w["rule"].to_numpy().astype(np.int64)
    rule_counts = np.bincount(hosp * len(RULES) + rule,
                              minlength=n_hosp * len(RULES)).reshape(n_hosp, len(RULES))
    first = order[starts[:-1]]
    level = [work.levels[i] if i >= 0 else None for i in work.level[first]]
    pay_h = per_hosp(payment)
    reserve = round_half_up(pay_h * policy.quality_reserve)
    at_cost_h = per_hosp(at_cost)
    prepaid = round_half_up(policy.prepayment_share
                            * (hosp_points * (pv_base or 0.0) * FEN_PER_YUAN + at_cost_h))
    cost_h = per_hosp(cost_fen)
    h = pl.DataFrame({
        "hospital_id": work.hospitals, "level": pl.Series(level, dtype=pl.String),
        "coefficient": w["coefficient"].to_numpy()[first],
        "cases": np.bincount(hosp, minlength=n_hosp).astype(np.int64),
        "grouped_cases": n_grouped, "cmi": pl.Series(cmi, nan_to_null=True),
        "base_points": np.bincount(hosp, weights=base, minlength=n_hosp),
        "points": hosp_points, "point_payment_fen": per_hosp(case_fen),
        "at_cost_fen": at_cost_h, "payment_fen": pay_h, "cost_fen": cost_h,
        **{f"n_{r}": rule_counts[:, i] for i, r in enumerate(RULES)},
        "n_readmission": np.bincount(hosp, weights=w["readmission"].to_numpy(),
                                     minlength=n_hosp).astype(np.int64),
        "reserve_fen": reserve, "prepaid_fen": prepaid,
        "clearing_fen": pay_h - reserve - prepaid, "surplus_fen": pay_h - cost_h,
    })
    h = h.with_columns(pl.col(pl.Int32, pl.UInt32, pl.UInt64, pl.Int64).cast(pl.Int64))
    paid = int(payment.sum())
    totals = rule_counts.sum(0)
    region = pl.DataFrame({
        "policy": [policy.name], "budget_fen": [budget_fen], "at_cost_fen": [at_cost_total],
        "point_budget_fen": [point_budget], "total_points": [total_points],
        "forecast_points": [float(forecast)], "pv_base": [pv_base], "pv_floating": [pv_floating],
        "pv_final": [pv_final], "payment_fen": [paid], "budget_check": [paid == budget_fen],
        "reserve_fen": [int(reserve.sum())], "prepaid_fen": [int(prepaid.sum())],
        "cases": [n], "hospitals": [n_hosp],
        **{f"n_{r}": [int(totals[i])] for i, r in enumerate(RULES)},
        "n_readmission": [int(w["readmission"].sum())],
    }, schema_overrides={"pv_base": pl.Float64, "pv_floating": pl.Float64,
                         "pv_final": pl.Float64})
    return h, region, payment
