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

import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from casemix._case_rules import assign_rules
from casemix._frames import FrameLike, like, to_polars
from casemix._money import FEN_PER_YUAN, allocate, round_half_up, yuan_array_to_fen
from casemix._output import summary_like
from casemix._readmit import flag_readmissions
from casemix.budget import Policy
from casemix.errors import InputError, PolicyError
from casemix.weights import Weights

__all__ = ["Settlement", "compare", "run_demo_settlement", "settle"]

RULES = ("normal", "high_cost", "low_cost", "short_stay", "special", "ungroupable", "no_weight")

CASE_COLUMNS = ("rw", "base_points", "ref_cost", "coefficient", "rule", "readmission",
                "adjusted_points", "payment_fen")


@dataclass(frozen=True)
class Settlement:
    """Result of :func:`settle`; frames in the caller's type.

    Attributes
    ----------
    cases
        The input rows, same order, plus ``rw``, ``base_points``,
        ``ref_cost`` (group mean cost the outlier rules compare with, yuan),
        ``coefficient``, ``rule``, ``readmission``, ``adjusted_points``,
        ``payment_fen`` (Int64).
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
        Rules skipped for want of columns, listed special cases not found.
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
        yuan = {"payment_fen": "payment", "cost_fen": "cost", "surplus_fen": "surplus",
                "clearing_fen": "clearing"}
        return h.select(
            "hospital_id", "level", "cases", pl.col("cmi").round(4), pl.col("points").round(2),
            *[(pl.col(c) / FEN_PER_YUAN).alias(n) for c, n in yuan.items()],
            pl.when(pl.col("cost_fen") > 0).then(pl.col("surplus_fen") / pl.col("cost_fen"))
            .alias("surplus_share"))

    def write(self, folder: str | Path, *, fmt: str = "csv") -> dict[str, Path]:
        """Write ``cases``, ``hospitals`` and ``region`` to ``folder`` (``csv`` or ``parquet``).

        Returns the paths written, by table name.
        """
        if fmt not in ("csv", "parquet"):
            raise InputError(f"settlement output format must be csv or parquet, got {fmt!r}")
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("cases", "hospitals", "region"):
            frame = to_polars(getattr(self, name))
            path = out / f"{name}.{fmt}"
            if fmt == "csv":
                frame.select(pl.col(c).list.join("|") if isinstance(t, pl.List) else pl.col(c)
                             for c, t in frame.schema.items()).write_csv(path)
            else:
                frame.write_parquet(path)
            paths[name] = path
        return paths


def settle(cases: FrameLike, policy: Policy, *, weights: Weights | FrameLike | None = None,
           points: str | None = None, group_col: str = "drg") -> Settlement:
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

    Returns
    -------
    Settlement

    Raises
    ------
    InputError
        Missing columns; a cost that is missing, negative or not a number
        (naming the row); a hospital_id missing.
    PolicyError
        At-cost payments exceed the budget, or no case earns points.
    """
    if not isinstance(policy, Policy):
        raise PolicyError(f"policy must be a casemix.budget.Policy, got {type(policy).__name__}")
    df = to_polars(cases)
    w, notes = _prepare(df, policy, weights, points, group_col)
    w = assign_rules(w, policy, short_stay_ok={"los", "discharge"} <= set(df.columns))
    hospitals, region, payment = _pay(w, policy)
    out = df.with_columns(
        w["rw"], w["base_points"], w["ref_cost"], w["coefficient"], w["rule"],
        w["readmission"], w["adjusted_points"], pl.Series("payment_fen", payment, pl.Int64))
    return Settlement(cases=like(out, cases), hospitals=summary_like(hospitals, cases),
                      region=summary_like(region, cases), policy=policy, notes=tuple(notes))


def compare(cases: FrameLike, policy_a: Policy, policy_b: Policy, *,
            weights: Weights | FrameLike | None = None, points: str | None = None,
            group_col: str = "drg") -> FrameLike:
    """Per-hospital what-if table: the same cases settled under two policies.

    Returns one row per hospital: ``hospital_id``, ``cases``,
    ``points_a``/``points_b``, ``payment_a_fen``/``payment_b_fen``,
    ``diff_fen`` (b − a), ``diff_pct`` (of a's payment),
    ``surplus_a_fen``/``surplus_b_fen``.  ``a`` is ``policy_a``.
    """
    df = to_polars(cases)
    a = to_polars(settle(df, policy_a, weights=weights, points=points, group_col=group_col).hospitals)
    b = to_polars(settle(df, policy_b, weights=weights, points=points, group_col=group_col).hospitals)
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
    from casemix.weights import compute_weights

    df = to_polars(grouped)
    weights = compute_weights(df)
    if policy is None:
        total = float(df["total_cost"].cast(pl.Float64, strict=False).fill_null(0).sum())
        policy = Policy.demo().replace(budget=Decimal(round(total * 0.92)),
                                       name="demo (budget = 92% of the cases' cost)")
    return settle(df, policy, weights=weights)


# --- preparation ------------------------------------------------------------

def _require(df: pl.DataFrame, cols: list[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"cases lack column(s) {', '.join(missing)}; settlement needs a grouped "
                         "frame with hospital_id, total_cost and the group code")


def _first_bad(df: pl.DataFrame, mask: pl.Series, case_id: pl.Series) -> str:
    i = int(mask.arg_true()[0])
    return f"row {i} (case_id {case_id[i]!r})"


def _levels(df: pl.DataFrame, hosp: pl.Expr, policy: Policy) -> pl.Expr:
    from_policy = (hosp.replace_strict(dict(policy.hospital_levels), default=None,
                                       return_dtype=pl.String)
                   if policy.hospital_levels else pl.lit(None, pl.String))
    if "hospital_level" not in df.columns:
        return from_policy
    lv = pl.col("hospital_level")
    if df.schema["hospital_level"].is_float():
        # 3.0 from a pandas column with gaps must match the policy key "3"
        lv = lv.cast(pl.Int64, strict=False)
    return lv.cast(pl.String).fill_null(from_policy)


def _lookup(expr: pl.Expr, mapping: dict[str, float]) -> pl.Expr:
    if not mapping:
        return pl.lit(None, pl.Float64)
    return expr.replace_strict(mapping, default=None, return_dtype=pl.Float64)


def _weight_table(weights: Any) -> pl.DataFrame:
    wt = to_polars(weights.table if isinstance(weights, Weights) else weights)
    if not {"drg", "rw"} <= set(wt.columns):
        raise InputError(f"weight table needs columns drg and rw; has {', '.join(wt.columns)}")
    cols = [pl.col("drg").cast(pl.String).alias("_group"),
            pl.col("rw").cast(pl.Float64, strict=False).alias("_rw")]
    for c in ("mean_cost", "mean_los"):
        if c in wt.columns:
            cols.append(pl.col(c).cast(pl.Float64, strict=False).alias(f"_w_{c}"))
    wt = wt.select(cols)
    dup = wt.filter(pl.col("_group").is_duplicated())
    if dup.height:
        raise InputError(f"weight table lists DRG {dup['_group'][0]!r} more than once")
    bad = wt.filter(pl.col("_rw").is_null() | (pl.col("_rw") < 0) | pl.col("_rw").is_nan())
    if bad.height:
        raise InputError(f"weight table: rw of DRG {bad['_group'][0]!r} is missing or negative")
    return wt


def _prepare(df: pl.DataFrame, policy: Policy, weights: Any, points: str | None,
             group_col: str) -> tuple[pl.DataFrame, list[str]]:
    """The working frame: one row per case, in order, with everything the rules read."""
    _require(df, ["hospital_id", "total_cost", group_col] + ([points] if points else []))
    if weights is None and points is None:
        raise InputError("settle needs weights= (a weight table) or points= (a column of "
                         "precomputed base points)")
    n = df.height
    notes: list[str] = []
    case_id = (df["case_id"].cast(pl.String) if "case_id" in df.columns
               else pl.Series("case_id", [str(i) for i in range(1, n + 1)], pl.String))
    cost = df["total_cost"].cast(pl.Float64, strict=False)
    bad = cost.is_null() | cost.is_nan() | (cost < 0) | cost.is_infinite()
    if bad.any():
        raise InputError(f"total_cost missing, negative or not a number at {_first_bad(df, bad, case_id)}; "
                         "settlement needs every case's cost in yuan")
    hosp_missing = df["hospital_id"].is_null()
    if hosp_missing.any():
        raise InputError(f"hospital_id missing at {_first_bad(df, hosp_missing, case_id)}")

    hosp = pl.col("hospital_id").cast(pl.String)
    group = pl.col(group_col).cast(pl.String)
    adrg = pl.col("adrg").cast(pl.String) if "adrg" in df.columns else group.str.slice(0, 3)
    num = {c: (pl.col(c).cast(pl.Float64, strict=False) if c in df.columns
               else pl.lit(None, pl.Float64)) for c in ("los", "discharge")}
    w = df.select(
        case_id.alias("case_id"), hosp.alias("hosp"), group.alias("_group"), adrg.alias("adrg"),
        cost.alias("cost"), num["los"].alias("los"), num["discharge"].alias("discharge"),
        _levels(df, hosp, policy).alias("level"),
        *([pl.col(points).cast(pl.Float64, strict=False).alias("_points")] if points else []))
    hc = policy.high_cost
    w = w.with_columns(
        _lookup(pl.col("hosp"), dict(policy.hospital_coefficients))
        .fill_null(_lookup(pl.col("level"), dict(policy.level_coefficients)))
        .fill_null(policy.coefficient_default).alias("coefficient"),
        _lookup(pl.col("level"), dict(hc.k)).fill_null(hc.k_default).alias("k"),
        (pl.col("_group").is_null() | (pl.col("_group").str.strip_chars() == "")
         | pl.col("_group").is_in(list(policy.ungroupable_codes))).alias("ungroupable"))

    wt = _weight_table(weights) if weights is not None else None
    if wt is not None:
        w = w.join(wt, on="_group", how="left", maintain_order="left")
    if points:
        w = w.with_columns(pl.col("_points").alias("base_points"))
        w = w.with_columns((pl.col("base_points") / policy.points_per_rw).alias("rw"))
    else:
        w = w.with_columns((pl.col("_rw") * policy.points_per_rw).alias("base_points"),
                           pl.col("_rw").alias("rw"))
    w = w.with_columns((pl.col("base_points").is_not_null() & ~pl.col("ungroupable"))
                       .alias("has_weight"))
    w = w.with_columns(pl.when("has_weight").then(pl.col("rw")).alias("rw"),
                       pl.when("has_weight").then(pl.col("base_points")).alias("base_points"))
    w = _reference_costs(w, policy, wt)
    w = _special(w, policy, notes)
    flags, note = flag_readmissions(df, w["has_weight"] & ~w["special"], w["adrg"],
                                    policy.readmission)
    if note:
        notes.append(note)
    if policy.short_stay.enabled and not {"los", "discharge"} <= set(df.columns):
        notes.append("short-stay rule skipped: no column los/discharge")
    return w.with_columns(flags), notes


def _reference_costs(w: pl.DataFrame, policy: Policy, wt: pl.DataFrame | None) -> pl.DataFrame:
    """``ref_cost`` (group mean m), ``ref_los`` and ``all_case_cost`` (M, yuan per RW)."""
    grouped = w.filter("has_weight")
    rw_sum = float(grouped["rw"].sum() or 0.0)
    m_cur = float(grouped["cost"].sum()) / rw_sum if rw_sum > 0 else float("nan")
    has_mc = wt is not None and "_w_mean_cost" in w.columns
    if has_mc:
        m_ref = w.filter(pl.col("has_weight") & (pl.col("_rw") > 0)).select(
            (pl.col("_w_mean_cost") / pl.col("_rw")).median()).item()
        all_case = m_ref if m_ref is not None and math.isfinite(m_ref) else m_cur
    else:
        all_case = m_cur
    case_mean = pl.col("cost").filter("has_weight").mean().over("_group")
    if policy.high_cost.mean == "weights" and wt is not None:
        ref = pl.col("_w_mean_cost") if has_mc else pl.col("rw") * m_cur
    else:
        ref = case_mean
    ref_los = (pl.col("_w_mean_los") if wt is not None and "_w_mean_los" in w.columns
               else pl.col("los").filter("has_weight").mean().over("_group"))
    return w.with_columns(pl.when("has_weight").then(ref).alias("ref_cost"),
                          ref_los.alias("ref_los"), pl.lit(all_case).alias("all_case_cost"))


def _special(w: pl.DataFrame, policy: Policy, notes: list[str]) -> pl.DataFrame:
    """``special``: listed cases within ``floor(cap_share × hospital cases)``, list order first."""
    ids = policy.special.case_ids
    if not ids:
        return w.with_columns(pl.lit(False).alias("special"))
    sp = (pl.DataFrame({"case_id": list(ids), "_order": np.arange(len(ids))},
                       schema={"case_id": pl.String, "_order": pl.Int64})
          .unique("case_id", keep="first"))
    w = w.join(sp, on="case_id", how="left", maintain_order="left")
    found = int(w["_order"].is_not_null().sum())
    if found < sp.height:
        notes.append(f"{sp.height - found} listed special case(s) not among the cases")
    # 1e-9: 0.29 × 100 is 28.999… in binary and must give a cap of 29
    cap = (policy.special.cap_share * pl.len().over("hosp") + 1e-9).floor()
    rank = pl.col("_order").rank("ordinal").over("hosp")
    return w.with_columns((pl.col("_order").is_not_null() & (rank <= cap)).alias("special"))


# --- money ---------------------------------------------------------------------

def _pay(w: pl.DataFrame, policy: Policy) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    n = w.height
    cost_fen = yuan_array_to_fen(w["cost"].to_numpy())
    at_cost = np.where((w["pay"] == "cost").to_numpy(), cost_fen, 0)
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

    per_h = (w.with_row_index("_row").group_by("hosp")
             .agg(pl.col("_row"), pl.col("adjusted_points").sum()).sort("hosp"))
    hosp_points = per_h["adjusted_points"].to_numpy()
    hosp_fen = (allocate(point_budget, hosp_points) if total_points > 0
                else np.zeros(per_h.height, np.int64))
    case_fen = np.zeros(n, np.int64)
    for rows, h_fen in zip(per_h["_row"], hosp_fen, strict=True):
        if h_fen:
            idx = rows.to_numpy()
            case_fen[idx] = allocate(int(h_fen), pts[idx])
    payment = case_fen + at_cost

    pv_final = point_budget / FEN_PER_YUAN / total_points if total_points > 0 else None
    forecast = policy.forecast_points if policy.forecast_points is not None else total_points
    pv_base = (policy.base_share * float(policy.budget) / forecast) if forecast else None
    pv_floating = pv_final - pv_base if pv_final is not None and pv_base is not None else None

    w = w.with_columns(pl.Series("_pay_fen", payment), pl.Series("_at_cost", at_cost),
                       pl.Series("_point_fen", case_fen), pl.Series("_cost_fen", cost_fen))
    grouped = pl.col("has_weight")
    h = w.group_by("hosp").agg(
        pl.col("level").first(), pl.col("coefficient").first(),
        pl.len().alias("cases"), grouped.sum().alias("grouped_cases"),
        pl.col("rw").filter(grouped).mean().alias("cmi"),
        pl.col("base_points").filter(grouped).sum().alias("base_points"),
        pl.col("adjusted_points").sum().alias("points"),
        pl.col("_point_fen").sum().alias("point_payment_fen"),
        pl.col("_at_cost").sum().alias("at_cost_fen"),
        pl.col("_pay_fen").sum().alias("payment_fen"),
        pl.col("_cost_fen").sum().alias("cost_fen"),
        *[(pl.col("rule") == r).sum().alias(f"n_{r}") for r in RULES],
        pl.col("readmission").sum().alias("n_readmission"),
    ).sort("hosp").rename({"hosp": "hospital_id"})
    pay_h = h["payment_fen"].to_numpy()
    reserve = round_half_up(pay_h * policy.quality_reserve)
    base_valued = h["points"].to_numpy() * (pv_base or 0.0) * FEN_PER_YUAN
    prepaid = round_half_up(policy.prepayment_share * (base_valued + h["at_cost_fen"].to_numpy()))
    h = h.with_columns(
        pl.Series("reserve_fen", reserve, pl.Int64), pl.Series("prepaid_fen", prepaid, pl.Int64))
    h = h.with_columns(
        (pl.col("payment_fen") - pl.col("reserve_fen") - pl.col("prepaid_fen")).alias("clearing_fen"),
        (pl.col("payment_fen") - pl.col("cost_fen")).alias("surplus_fen"))
    money = ["point_payment_fen", "at_cost_fen", "payment_fen", "reserve_fen", "prepaid_fen",
             "clearing_fen", "cost_fen", "surplus_fen"]
    h = h.with_columns(pl.col(money).cast(pl.Int64), pl.col("cases", "grouped_cases").cast(pl.Int64),
                       pl.col("^n_.*$").cast(pl.Int64))
    paid = int(payment.sum())
    region = pl.DataFrame({
        "policy": [policy.name], "budget_fen": [budget_fen], "at_cost_fen": [at_cost_total],
        "point_budget_fen": [point_budget], "total_points": [total_points],
        "forecast_points": [float(forecast)], "pv_base": [pv_base], "pv_floating": [pv_floating],
        "pv_final": [pv_final], "payment_fen": [paid], "budget_check": [paid == budget_fen],
        "reserve_fen": [int(reserve.sum())], "prepaid_fen": [int(prepaid.sum())],
        "cases": [n], "hospitals": [h.height],
        **{f"n_{r}": [int((w["rule"] == r).sum())] for r in RULES},
        "n_readmission": [int(w["readmission"].sum())],
    }, schema_overrides={"pv_base": pl.Float64, "pv_floating": pl.Float64,
                         "pv_final": pl.Float64})
    return h, region, payment
