"""Implausible case values: warned (``implausible:<field>``), never changing a group.

A value outside these ranges is almost surely a data-entry or export error
(age −5, age 1e300, age in days −5, age 5 *with* an age in days of 10); it is
grouped as written — only the scheme's own validity checks may refuse a case —
but the ``warnings`` column names it, so an analyst sees what to check
(issue 15, class 7).

Ranges (inclusive):

- ``age``: 0–150 years;
- ``age_days``: 0–365 days, and only for an infant: a positive ``age_days``
  with ``age`` ≥ 1 contradicts it (病案首页: 年龄不足1周岁的年龄(天));
  ``age_days = 0`` beside an adult age is the usual export of "not given";
- ``birth_weight``: 0–10,000 g.

The intake (``cases._build``) and the direct grouping path both use
:data:`RANGES` and :func:`implausible_mask`, so both engines warn alike.
"""

from __future__ import annotations

import numpy as np
import polars as pl

#: field -> (lowest, highest) plausible value
RANGES: dict[str, tuple[float, float]] = {
    "age": (0.0, 150.0),
    "age_days": (0.0, 365.0),
    "birth_weight": (0.0, 10_000.0),
}


def implausible_exprs(col) -> list[tuple[str, pl.Expr]]:
    """(warning code, condition) per field; ``col(name)`` gives the field's Float64 expression."""
    out = []
    for name, (low, high) in RANGES.items():
        cond = (col(name) < low) | (col(name) > high)
        if name == "age_days":
            cond = cond | ((col("age") >= 1) & (col("age_days") > 0))
        out.append((f"implausible:{name}", cond))
    return out


def implausible_mask(values: dict[str, np.ndarray]) -> np.ndarray:
    """Rows with any implausible value (numpy twin of :func:`implausible_exprs`; NaN is fine)."""
    n = len(next(iter(values.values())))
    out = np.zeros(n, dtype=bool)
    with np.errstate(invalid="ignore"):
        for name, (low, high) in RANGES.items():
            x = values.get(name)
            if x is not None:
                out |= (x < low) | (x > high)
        age, days = values.get("age"), values.get("age_days")
        if age is not None and days is not None:
            out |= (age >= 1) & (days > 0)
    return out
