"""DIP settled under a payment policy: DIP case scores, then the settlement core.

``casemix.dip.settle(grouped, policy=...)`` lands here.  The case scores
are DIP's own (:func:`casemix.dip.settle.case_scores`: catalog score ×
hospital coefficient × sub-type coefficient, the DIP high/low-cost rules
of :class:`~casemix.dip.settle.CostRules`, fixed add-on points of
:class:`~casemix.dip.settle.Bonus`); the money is the settlement core's
(:func:`casemix.settle.settle` with the scores as points and
``scheme="dip"``), the same code as DRG: fund pools (职工/居民), the
point form and budget, the elastic point value, 特例单议 capped at 5‰ of
the region's cases, 新药新技术 add-on scores, 结余留用/超支分担 corridors,
the quality reserve and monthly pre-settlement with annual clearing.

The policy's DRG case rules are not applied to DIP scores, which already
went through DIP's: ``[high_cost]`` (only flags cases, with DIP's high
multiple), ``[low_cost]``, ``[short_stay]`` and the hospital/level
coefficients of ``[coefficients]`` (DIP's come from
``hospital_coefficients``).

One case with both add-ons (docs/payment-settlement.md, "DIP: the two
add-ons on one case"): the DIP 3.0 draft lists them as separate terms of a
hospital's year score (§7.3 一(二) "……+中医优势病种病例分值+……+新药新技术加成
分值"), and §5.1 四(三) scores new drugs and technologies on "相应费用单独
计算": so both add, each once.  Case points = DIP score (after coefficients
and the cost rules, the cost rules seeing the cost less the new-technology
cost) + Bonus points + new-technology add-on (``dip_factor`` × that cost ÷
yuan per point); neither add-on takes a coefficient.  A Bonus that lists a
procedure code of ``[new_tech] codes`` would score the same item twice and
is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from casemix._frames import like, summary_like, to_polars
from casemix.budget import Policy
from casemix.cases import canonical
from casemix.errors import PolicyError
from casemix.payment.core import CaseHooks
from casemix.payment.new_tech import new_tech_cost

__all__ = ["settle_under_policy"]

#: the cost column the DIP cost rules read when new-technology cost is scored apart
_RULE_COST = "\x00casemix:dip_rule_cost"


def dip_policy(policy: Policy, high: float) -> Policy:
    """``policy`` with the DRG case rules off (DIP scores went through DIP's own)."""
    return policy.replace(
        high_cost=dataclasses.replace(policy.high_cost, rule="none", k={}, k_default=high),
        low_cost=dataclasses.replace(policy.low_cost, rule="none"),
        short_stay=dataclasses.replace(policy.short_stay, enabled=False),
        coefficient_default=1.0,
        level_coefficients={},
        hospital_coefficients={},
        hospital_levels={},
    )


def _check_bonus(bonus: Sequence[Any], policy: Policy) -> None:
    listed = set(policy.new_tech.codes) if policy.new_tech.enabled else set()
    for b in bonus:
        both = sorted(c for c in b.codes if any(code.startswith(c) for code in listed))
        if both:
            raise PolicyError(
                f"bonus {b.name!r} lists code {both[0]!r}, which [new_tech] codes also "
                "score: one item would earn add-on points twice; keep it in one of them"
            )


def settle_under_policy(
    grouped: Any,
    policy: Policy,
    *,
    base_volume: Any = None,
    score_options: dict[str, Any],
    cost: str = "total_cost",
    mapping: dict[str, str] | None = None,
) -> Any:
    """Score the DIP cases, then settle them with the core under ``policy``.

    ``score_options`` are :func:`casemix.dip.settle.case_scores`' keyword
    arguments.  Returns a :class:`casemix.settle.Settlement` whose cases
    carry the DIP score columns as well as the core's.
    """
    from casemix.dip.scoring import SCORE_COLUMNS, case_scores
    from casemix.settle import CASE_COLUMNS
    from casemix.settle import settle as core_settle

    if not isinstance(policy, Policy):
        raise PolicyError(f"policy must be a casemix.budget.Policy, got {type(policy).__name__}")
    _check_bonus(score_options.get("bonus", ()), policy)
    by, level_col = score_options.get("by"), score_options.get("level_col")
    c = canonical(
        grouped,
        mapping,
        need=("hospital_id", cost, "dip_group", "dip_score"),
        optional=tuple(
            x
            for x in (by, level_col, "case_id", "discharge_date", "insurance_type", "patient_share")
            if x and x not in ("hospital_id", cost)
        ),
        step="DIP settle",
    )
    df = c.used
    if cost != "total_cost":
        df = df.with_columns(pl.col(cost).alias("total_cost"))
    rule_cost = cost
    if policy.new_tech.enabled:
        # the DIP cost rules see the cost less the new-technology cost scored apart (as DRG's do)
        tech = new_tech_cost(df, policy.new_tech)
        rule_cost = _RULE_COST
        df = df.with_columns((pl.col(cost).cast(pl.Float64) - tech).alias(_RULE_COST))
    scored = to_polars(case_scores(df, cost=rule_cost, **score_options))
    if rule_cost == _RULE_COST:
        scored = scored.drop(_RULE_COST)
    ref = scored["dip_ref_cost"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    s = core_settle(
        scored,
        dip_policy(policy, score_options["rules"].high),
        points="dip_case_score",
        group_col="dip_group",
        base_volume=base_volume,
        hooks=CaseHooks(outlier_ref_cost=ref),
        scheme="dip",
    )
    cases = c.restore(to_polars(s.cases), (*SCORE_COLUMNS, *CASE_COLUMNS))
    notes = (
        *c.notes(),
        *s.notes,
        "DIP: case scores by DIP's rules (catalog, coefficients, high/low cost, add-ons); "
        "the policy's [high_cost], [low_cost], [short_stay] and coefficients are DRG rules, not applied",
    )
    frames: dict[str, Any] = {
        name: None if getattr(s, name) is None else summary_like(to_polars(getattr(s, name)), grouped)
        for name in ("hospitals", "region", "pool_hospitals", "pool_region", "monthly", "annual")
    }
    return dataclasses.replace(s, cases=like(cases, grouped), notes=notes, **frames)
