"""特例单议 (special-case review) across the 统筹区, for DRG and DIP.

Rules [A-办 §20–23; A-规 §20–23; A §6.2 (DIP 3.0 draft 第六章第二节)]:

- Applications: cases "住院时间长、医疗费用高、新药耗新技术使用、复杂危重症
  或多学科联合诊疗" that do not fit the group's standard.  Here an
  application is a case listed in ``case_ids`` and/or a case meeting the
  policy's criteria: cost above ``cost_multiple`` × its standard (DIP 3.0
  §6.2: "超过平均支付标准 2 倍以上的病例，纳入申报范围") or a stay above
  ``min_los`` days.
- Cap: "原则上不超过统筹地区 DRG 出院总病例的 5% 或 DIP 出院总病例的 5‰"
  [A-办 §20]; the 5‰ is of the region's cases, "不能以每家医疗机构的病例数
  为基数计算" [A §6.2].  cap = ⌊share × region's cases⌋.
- Approval order (the sources leave it to the review; casemix states
  one): ``order = "cost_ratio"`` approves the applications with the highest
  cost ÷ standard first, ties by case id (text order); cases without a
  standard come last.  ``order = "listed"`` approves listed cases first in
  list order, then criteria cases by cost ratio.
- Payment of approved cases "按项目付费或调整该病例支付标准" [A-办 §23]:
  ``pay = "item"`` pays cost × ``fund_ratio`` outside the points;
  ``pay = "points"`` converts the cost into points at the all-case
  reference cost (cost ÷ yuan per point), paid at the point value.
  Applications not approved settle by the ordinary rules.

This replaces the per-hospital cap of casemix ≤ 0.1 (``budget.SpecialCases``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from casemix._money import round_half_up
from casemix.errors import PolicyError
from casemix.payment._section import Section

__all__ = [
    "CAP_SHARE",
    "SpecialCasesConfig",
    "applications",
    "approval_notes",
    "approve",
    "cap",
    "cost_points",
    "item_payment_fen",
]

#: default cap by scheme [A-办 §20]: 5% of DRG cases, 5‰ of DIP cases
CAP_SHARE = {"drg": 0.05, "dip": 0.005}


class SpecialCasesConfig(Section):
    """``[special_cases]``: applications, the regional cap, approval order and payment.

    Attributes
    ----------
    case_ids
        Listed applications (case ids).
    cost_multiple
        Apply every case whose cost exceeds this multiple of its standard
        (2.0 in the DIP 3.0 draft §6.2); unset = no cost criterion.
    min_los
        Apply every case whose length of stay exceeds this many days;
        unset = no stay criterion (needs a ``los`` column when set).
    cap_share
        Share of the region's cases that may be approved; unset = 0.05
        for DRG, 0.005 for DIP [A-办 §20].
    order
        ``"cost_ratio"`` or ``"listed"`` (module docstring).
    pay
        ``"item"`` (cost × fund_ratio, outside the points) or ``"points"``
        (cost converted into points).
    fund_ratio
        Share of an approved case's cost the fund pays under ``"item"``.
    """

    TABLE = "special_cases"

    case_ids: tuple[str, ...] = Field(default=(), strict=False)  # TOML arrays are lists
    cost_multiple: float | None = Field(default=None, gt=0)
    min_los: float | None = Field(default=None, ge=0)
    cap_share: float | None = Field(default=None, ge=0, le=1)
    order: Literal["cost_ratio", "listed"] = "cost_ratio"
    pay: Literal["item", "points"] = "item"
    fund_ratio: float = Field(default=1.0, ge=0, le=1)

    @field_validator("case_ids", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        # a case id written as a TOML integer (17) is the id "17"
        if isinstance(value, (list, tuple)):
            return tuple(str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value)
        return value

    @property
    def active(self) -> bool:
        """Whether any application can arise (a list or a criterion)."""
        return bool(self.case_ids) or self.cost_multiple is not None or self.min_los is not None

    def share(self, scheme: str) -> float:
        """The cap share for ``scheme`` (``"drg"`` or ``"dip"``)."""
        if self.cap_share is not None:
            return self.cap_share
        if scheme not in CAP_SHARE:
            raise PolicyError(f"special_cases: scheme must be 'drg' or 'dip', got {scheme!r}")
        return CAP_SHARE[scheme]


def cap(n_cases: int, share: float) -> int:
    """⌊share × n_cases⌋: how many applications the region may approve.

    A tiny tolerance keeps 0.05 × 100 at 5 (binary 5.000000000000001 or
    4.999999999999999 would otherwise flip the floor).
    """
    return int(math.floor(share * n_cases + 1e-9))


def applications(
    case_id: Sequence[str] | np.ndarray,
    cost: np.ndarray,
    standard: np.ndarray,
    los: np.ndarray | None,
    config: SpecialCasesConfig,
) -> np.ndarray:
    """Which cases apply: listed, or cost > cost_multiple × standard, or LOS > min_los.

    Raises
    ------
    PolicyError
        ``min_los`` is set but there is no ``los`` column.
    """
    # ids as text: a listed id is text (a TOML integer 17 is "17"), the column may be numbers.
    # No cast of cost, standard or los: numeric arrays compare alike whatever their dtype (the
    # settlement passes float64), and NaN compares False without a warning
    applied = np.isin(np.asarray(case_id, dtype=str), config.case_ids)
    if config.cost_multiple is not None:
        applied |= cost > config.cost_multiple * standard
    if config.min_los is not None:
        if los is None:
            raise PolicyError(
                "special_cases.min_los needs the column los (实际住院天数), "
                "which the cases lack; add it or remove min_los"
            )
        applied |= los > config.min_los
    return applied


def approve(
    applied: np.ndarray,
    cost: np.ndarray,
    standard: np.ndarray,
    case_id: Sequence[str] | np.ndarray,
    n_approve: int,
    *,
    order: str = "cost_ratio",
    listed: Sequence[str] = (),
) -> np.ndarray:
    """The approved cases: the first ``n_approve`` applications in the stated order.

    ``order = "cost_ratio"``: cost ÷ standard descending (no standard =
    last), ties by case id ascending, then by row.  ``order = "listed"``:
    listed applications first in ``listed`` order, the others after them
    as under ``"cost_ratio"``.
    """
    # no casts of cost and standard: numeric arrays divide and compare alike whatever their
    # dtype (the settlement passes float64), and no early return: with no application or a cap
    # of 0 the ranking is empty or cut to nothing
    rows = np.flatnonzero(applied)
    out = np.zeros(len(applied), dtype=bool)
    c, s = cost[rows], standard[rows]
    # no ratio (NaN: ranked last) without a standard above 0, which is never divided by; ∞ ÷ ∞
    # is NaN too, without a warning
    ratio = np.full(rows.size, np.nan)
    has = s > 0
    with np.errstate(invalid="ignore"):
        ratio[has] = c[has] / s[has]
    ids = np.asarray(case_id, dtype=str)[rows]
    key_ratio = np.where(np.isnan(ratio), np.inf, -ratio)  # descending, NaN last
    keys = [rows, ids, key_ratio]
    if order == "listed":
        position = {cid: i for i, cid in reversed(list(enumerate(listed)))}
        keys.append(np.array([position.get(cid, len(listed)) for cid in ids]))
    elif order != "cost_ratio":
        raise ValueError(f"unknown approval order {order!r}")
    ranked = rows[np.lexsort(keys)]
    out[ranked[: max(n_approve, 0)]] = True
    return out


def approval_notes(
    config: SpecialCasesConfig,
    scheme: str,
    *,
    n_cases: int,
    n_applied: int,
    n_approved: int,
    listed_found: int,
) -> list[str]:
    """The settlement notes of a region's review: listed cases not found, approvals and cap.

    ``listed_found`` counts the entries of ``config.case_ids`` that are
    among the region's cases; ``n_cases`` is the region's settled cases
    (the base of the cap).
    """
    notes = []
    listed = len(set(config.case_ids))
    if listed_found < listed:
        notes.append(f"{listed - listed_found} listed special case(s) not among the cases")
    share = config.share(scheme)
    notes.append(
        f"special_cases: {n_approved} of {n_applied} application(s) approved "
        f"(cap ⌊{share} × {n_cases}⌋ = {cap(n_cases, share)})"
    )
    return notes


def item_payment_fen(cost_fen: np.ndarray, fund_ratio: float) -> np.ndarray:
    """按项目付费 of approved cases: cost (fen) × fund ratio, ROUND_HALF_UP to the fen."""
    return round_half_up(np.asarray(cost_fen, dtype=np.float64) * fund_ratio)


def cost_points(cost: np.ndarray, yuan_per_point: float) -> np.ndarray:
    """Cost-converted points: cost ÷ yuan per point (M ÷ points per RW, the all-case reference)."""
    if not (yuan_per_point > 0 and math.isfinite(yuan_per_point)):
        raise PolicyError(
            "special_cases.pay = 'points' needs a positive all-case reference "
            f"cost per point, got {yuan_per_point!r}; give mean_cost in the weights "
            "or use pay = 'item'"
        )
    return np.asarray(cost, dtype=np.float64) / yuan_per_point
