"""The policy's case-level payment rules, applied together before the points.

One pure function, :func:`apply_case_rules`, runs the rules of
:mod:`~casemix.payment.new_tech`, :mod:`~casemix.payment.outliers` and
:mod:`~casemix.payment.special_cases` over a settlement's arrays and
returns what the settlement core needs per case.  Order and precedence:

1. new technology: the cost t (column or code list); DRG eligible cases
   have t paid outside the points, DIP cases earn add-on points; either
   way the cost the outlier rules see is c − t;
2. outlier reference and thresholds (on that cost);
3. 特例单议: applications are judged on the whole cost c against the
   case's standard m × f; approved cases are settled wholly by item or by
   cost-converted points, so they take no new-technology payment or
   add-on (no money paid twice).

"The standard" of a case in cost terms is m × f: its group's reference
mean cost times its hospital coefficient (the payment standard before
the point value is known).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from casemix._frames import require_numbers
from casemix._money import yuan_array_to_fen
from casemix.payment.new_tech import (
    NewTechConfig,
    dip_addon,
    drg_exclusion,
    new_tech_cost,
    outside_payment_fen,
)
from casemix.payment.outliers import OutliersConfig, case_thresholds, reference_cost
from casemix.payment.special_cases import (
    SpecialCasesConfig,
    applications,
    approval_notes,
    approve,
    cap,
    cost_points,
    item_payment_fen,
)

__all__ = ["CaseRuleResult", "apply_case_rules"]


@dataclass(frozen=True)
class CaseRuleResult:
    """Per-case results of the rules, one entry per case in input order.

    Costs, multiples and points are float64 arrays, fen int64, flags bool.

    Attributes
    ----------
    rule_cost
        The cost the outlier rules see, yuan (c − new-technology cost where
        that is paid or scored apart).
    ref_cost
        The outlier reference r, yuan (NaN = none).
    low_k, high_k
        The case's low/high multiples (city table, else the policy's).
    standard
        The case's standard in cost terms, m × f, yuan (NaN = none): what
        特例单议 applications are judged and ranked against.
    special_applied, special_approved
        特例单议 applications and approvals (region-wide cap).
    special_fen
        By-item payment of approved cases (``pay = "item"``), fen.
    special_points
        Cost-converted points of approved cases (``pay = "points"``).
    new_tech_cost
        The case's new-technology cost, yuan (0 where none or rule off).
    new_tech_fen
        DRG: new-technology cost paid outside the points, fen.
    addon_points
        DIP: new-technology add-on points (before any coefficient).
    notes
        What the rules did, for :attr:`Settlement.notes`.
    """

    rule_cost: np.ndarray
    ref_cost: np.ndarray
    low_k: np.ndarray
    high_k: np.ndarray
    standard: np.ndarray
    special_applied: np.ndarray
    special_approved: np.ndarray
    special_fen: np.ndarray
    special_points: np.ndarray
    new_tech_cost: np.ndarray
    new_tech_fen: np.ndarray
    addon_points: np.ndarray
    notes: list[str] = field(default_factory=list)


def apply_case_rules(
    cases: pl.DataFrame,
    *,
    scheme: str,
    case_id: pl.Series,
    cost: np.ndarray,
    group_mean: np.ndarray,
    coefficient: np.ndarray,
    group: np.ndarray,
    level: np.ndarray,
    valid: np.ndarray,
    yuan_per_point: float,
    low_k: np.ndarray | float,
    high_k: np.ndarray | float,
    table_low: np.ndarray | None,
    table_high: np.ndarray | None,
    special: SpecialCasesConfig,
    new_tech: NewTechConfig,
    outliers: OutliersConfig,
    approved: np.ndarray | None = None,
) -> CaseRuleResult:
    """Apply new technology, outlier references and 特例单议 (module docstring).

    Parameters
    ----------
    cases
        The input frame (for ``los``, ``new_tech_cost``, procedures).
    scheme
        ``"drg"`` or ``"dip"`` (the special-case cap and the new-technology
        rule differ).
    case_id, cost, group_mean, coefficient, group, level, valid
        Per case: id, cost (yuan), the group's reference mean m, the
        hospital coefficient f, group and level codes (−1 none) and
        whether the case has a weight.
    yuan_per_point
        The all-case reference cost per point (M ÷ points per RW).
    low_k, high_k
        The policy's multiples (scalar or per case).
    table_low, table_high
        The case's DRG's ``low_k``/``high_k`` from the weight table (NaN
        where none), or ``None``.
    approved
        Approved special cases decided elsewhere (bool per case), instead of
        the policy's applications and cap; paid as ``special.pay`` says.
    """
    n = len(cost)
    cost = np.asarray(cost, dtype=np.float64)
    # float64 whatever group_mean's number type: np.where with the float NaN promotes it
    m = np.where(np.asarray(valid, dtype=bool), group_mean, np.nan)
    if outliers.reference == "standard":
        # m is read no further (the reference is the standard): m × f in its own buffer, 80 MB
        # less at 10M cases
        standard = m
        standard *= coefficient  # in place in float64 m: the product is float64, whatever f's dtype
    else:
        standard = m * coefficient
    notes: list[str] = []

    zeros_f, zeros_i = np.zeros(n), np.zeros(n, dtype=np.int64)
    tech, tech_fen, addon, rule_cost = zeros_f, zeros_i, zeros_f, cost
    if new_tech.enabled:
        tech = new_tech_cost(cases, new_tech)
        if scheme == "dip":
            addon, rule_cost = dip_addon(cost, tech, yuan_per_point, new_tech)
            addon = np.where(valid, addon, 0.0)
            rule_cost = np.where(valid, rule_cost, cost)
        else:
            eligible, rule_cost = drg_exclusion(cost, tech, standard, new_tech)
            tech_fen = outside_payment_fen(tech, eligible, new_tech.fund_ratio)
            notes.append(
                f"new_tech: {int(eligible.sum())} case(s) with new-technology cost paid outside the points"
            )

    # the standard reference is m × f, the very array computed above (10M cases: 80 MB saved)
    ref = (
        standard
        if outliers.reference == "standard"
        else reference_cost(
            outliers.reference, m, coefficient, group=group, level=level, cost=rule_cost, valid=valid
        )
    )
    if outliers.table_thresholds:
        lo, hi = case_thresholds(low_k, high_k, table_low, table_high)
    else:
        lo, hi = case_thresholds(low_k, high_k)

    applied = np.zeros(n, dtype=bool)
    if approved is None and special.active:
        los = None
        if "los" in cases.columns:
            require_numbers(cases, "los", case_id, what="住院天数")  # never "abc" read as no stay
            # strict: require_numbers has refused every value the cast could not read
            los = cases["los"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        ids = case_id.to_numpy().astype(str)
        applied = applications(ids, cost, standard, los, special)
        n_cap = cap(n, special.share(scheme))
        approved = approve(applied, cost, standard, ids, n_cap, order=special.order, listed=special.case_ids)
        notes.extend(
            approval_notes(
                special,
                scheme,
                n_cases=n,
                n_applied=int(applied.sum()),
                n_approved=int(approved.sum()),
                listed_found=int(np.isin(np.asarray(special.case_ids, dtype=str), ids).sum()),
            )
        )
    elif approved is None:
        approved = applied
    approved = np.asarray(approved, dtype=bool)  # a caller's 0/1 flags read as bool
    special_fen, special_points = zeros_i, zeros_f
    if approved.any() and special.pay == "points":
        special_points = np.where(approved, cost_points(cost, yuan_per_point), 0.0)
    elif approved.any():
        special_fen = np.where(approved, item_payment_fen(yuan_array_to_fen(cost), special.fund_ratio), 0)
    if approved.any():
        rule_cost = np.where(approved, cost, rule_cost)
        tech_fen = np.where(approved, 0, tech_fen)
        addon = np.where(approved, 0.0, addon)
    # (without an approved case the arrays stay as they are: each a copy of 80 MB at 10M cases)
    return CaseRuleResult(
        rule_cost=rule_cost,
        ref_cost=ref,
        low_k=lo,
        high_k=hi,
        standard=standard,
        special_applied=applied,
        special_approved=approved,
        special_fen=special_fen,
        special_points=special_points,
        new_tech_cost=tech,
        new_tech_fen=tech_fen,
        addon_points=addon,
        notes=notes,
    )
