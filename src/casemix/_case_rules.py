"""Per-case rules: which rule settles a case, and its adjusted points.

Notation (docs/payment-settlement.md): P base points (RW × points per
RW, or given), c the case cost, m the group's reference mean cost, k the
high-cost multiple of the hospital's level, f the hospital coefficient.

Precedence, first match wins:

1. ``special``    approved 特例单议 case (regional cap, ``casemix.payment.special_cases``)
                  → by item (cost × fund ratio) or cost-converted points
2. ``ungroupable`` / ``no_weight`` → per ``Policy.ungroupable``
3. ``short_stay`` death/transfer with LOS <= max → P × min(c/m, 1) (or LOS basis);
                  no hospital coefficient unless ``short_stay.coefficient`` (Jinhua 2017)
4. ``high_cost``  c > k·m → per ``HighCost.rule``
5. ``low_cost``   c < ratio·m → P × c/m
6. ``normal``     P

Adjusted points = rule points × f × (readmission penalty if flagged);
cost-converted points of ungroupable cases take no coefficient, since
the hospital's own cost already reflects its level.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from casemix.budget import Policy

#: rows per slice of :func:`assign_rules`: the rule expressions' temporaries (a dozen columns,
#: and polars' copy of a frame whose columns are chunked unevenly) exist for one slice at a
#: time, not for 10M cases at once
SLICE_ROWS = 1 << 18

# rule codes: index into RULES; the first four are paid by points
RULES = ("normal", "high_cost", "low_cost", "short_stay", "special", "ungroupable", "no_weight")
R = {name: i for i, name in enumerate(RULES)}
PAY_POINTS, PAY_COST, PAY_NONE = 0, 1, 2


def assign_rules(
    w: pl.DataFrame, policy: Policy, *, short_stay_ok: bool, all_case_cost: float
) -> pl.DataFrame:
    """Add ``rule`` (code into ``RULES``), ``pay`` (``PAY_*``), ``adjusted_points``.

    ``w`` carries: base_points, cost, los, discharge, ref_cost, ref_los, k,
    coefficient, special (accepted special case), ungroupable, has_weight and
    readmission; ``all_case_cost`` is M (yuan per RW).  The rules are
    row by row, so large frames are done slice by slice (:data:`SLICE_ROWS`).
    """
    if w.height <= SLICE_ROWS:
        return _assign(w, policy, short_stay_ok=short_stay_ok, all_case_cost=all_case_cost)
    # each slice's results written into one array per column: no list of parts beside their
    # concatenation (10M cases: 100 MB twice); from a slice with a null on, the frames' way
    out: dict[str, np.ndarray] = {}
    filled = 0
    parts: list[pl.DataFrame] = []
    for a in range(0, w.height, SLICE_ROWS):
        part = _assign(
            w.slice(a, SLICE_ROWS), policy, short_stay_ok=short_stay_ok, all_case_cost=all_case_cost
        ).select("rule", "pay", "adjusted_points")
        if parts or any(part[c].null_count() for c in part.columns):
            parts.append(part.rechunk())
            continue
        for c in part.columns:
            x = part[c].to_numpy()
            if c not in out:
                out[c] = np.empty(w.height, dtype=x.dtype)
            out[c][a : a + x.size] = x
        filled = a + part.height
    done = pl.DataFrame([pl.Series(c, x[:filled] if parts else x) for c, x in out.items()])
    if parts:
        done = pl.concat([done, *parts] if filled else parts, rechunk=True)
    return w.hstack(done.get_columns())


def _assign(w: pl.DataFrame, policy: Policy, *, short_stay_ok: bool, all_case_cost: float) -> pl.DataFrame:
    hc, lc, ss = policy.high_cost, policy.low_cost, policy.short_stay
    # the outlier rules see the cost less any new-technology cost paid or scored apart
    c, m, p = pl.col("rule_cost"), pl.col("ref_cost"), pl.col("base_points")
    ratio = c / m
    short = pl.lit(False)
    if ss.enabled and short_stay_ok:
        short = (
            pl.col("discharge").is_in([float(x) for x in ss.discharge]) & (pl.col("los") <= ss.max_los)
        ).fill_null(False)
    high = (c > pl.col("k") * m).fill_null(False)
    low = (c < pl.col("low_ratio") * m).fill_null(False) if lc.rule != "none" else pl.lit(False)

    def code(name: str) -> pl.Expr:
        return pl.lit(R[name], pl.UInt8)

    rule = (
        pl.when("special")
        .then(code("special"))
        .when("ungroupable")
        .then(code("ungroupable"))
        .when(~pl.col("has_weight"))
        .then(code("no_weight"))
        .when(short)
        .then(code("short_stay"))
        .when(high)
        .then(code("high_cost"))
        .when(low)
        .then(code("low_cost"))
        .otherwise(code("normal"))
    )
    w = w.with_columns(rule.alias("rule"))

    if ss.basis == "los":
        short_pts = p * pl.min_horizontal(pl.col("los") / pl.col("ref_los"), pl.lit(1.0))
        short_pts = short_pts.fill_nan(None).fill_null(p)
    elif ss.coefficient:
        short_pts = p * pl.min_horizontal(ratio, pl.lit(1.0))
    else:
        # without the coefficient the stay is priced against the group's own mean (m), not m × f
        short_pts = p * pl.min_horizontal(c / pl.col("group_mean"), pl.lit(1.0))
    if hc.rule == "excess":
        high_pts = p + hc.factor * (ratio - pl.col("k")) * p
    elif hc.rule == "pro_rata":
        high_pts = p * ratio
    else:
        high_pts = p
    r = pl.col("rule")
    unweighted = r >= R["ungroupable"]
    unweighted_pay = {"cost": PAY_COST, "points": PAY_POINTS, "none": PAY_NONE}[policy.ungroupable]
    rule_points = (
        pl.when(r == R["short_stay"])
        .then(short_pts)
        .when(r == R["high_cost"])
        .then(high_pts)
        .when(r == R["low_cost"])
        .then(p * ratio)
        .when(r == R["normal"])
        .then(p)
        .when(unweighted & pl.lit(unweighted_pay == PAY_POINTS))
        .then(c / all_case_cost * policy.points_per_rw)
        .otherwise(pl.lit(0.0))
    )
    # approved 特例单议: by item (at cost × fund ratio) or cost-converted points
    special_pay = PAY_POINTS if policy.special.pay == "points" else PAY_COST
    rule_points = pl.when(r == R["special"]).then(pl.col("special_points")).otherwise(rule_points)
    pay = (
        pl.when(r <= R["short_stay"])
        .then(pl.lit(PAY_POINTS, pl.UInt8))
        .when(r == R["special"])
        .then(pl.lit(special_pay, pl.UInt8))
        .otherwise(pl.lit(unweighted_pay, pl.UInt8))
    )
    penalty = pl.when(pl.col("readmission")).then(pl.lit(policy.readmission.penalty)).otherwise(1.0)
    # cost-converted points (ungroupable, special) take no coefficient: the cost is the hospital's own
    # Jinhua 2017 (short_stay.coefficient = false): the cost coefficient applies to complete stays only
    incomplete = (r == R["short_stay"]) if not ss.coefficient else pl.lit(False)
    coef = (
        pl.when(unweighted | (r == R["special"]) | incomplete)
        .then(pl.lit(1.0))
        .otherwise(pl.col("coefficient"))
    )
    # DIP 新药新技术加成分值: added to the points, no coefficient (cost-converted too)
    return w.with_columns(
        pay.alias("pay"),
        pl.when(pay == PAY_POINTS)
        .then(rule_points * coef * penalty + pl.col("addon_points"))
        .otherwise(pl.lit(0.0))
        .alias("adjusted_points"),
    )
