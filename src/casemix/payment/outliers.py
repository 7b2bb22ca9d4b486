"""High- and low-cost cases (费用极高/极低病例): what a case's cost is compared with.

A case is a high-cost case when its cost exceeds ``high_k`` × its
*reference cost* r, a low-cost case when it is below ``low_k`` × r.  The
reference is chosen by ``[outliers] reference``:

``"standard"`` (default)
    the case's own payment standard in cost terms, after its hospital's
    coefficient: r = m_g × f, with m_g the group's reference mean cost and
    f the hospital (level) coefficient.  This is the DIP 3.0 draft §5.3
    (第五章第三节 "费用异常病例分值调整"): 费用超低病例 = cost below 50% of
    "同级别定点医疗机构 DIP 病种支付标准", with the correction factor
    "该病例医疗总费用 / (该病种的支付标准 × 分值调节系数)"; 费用超高病例 =
    2–3 × the same standard [A §5.3; text copy in the public repository
    LQ-karl/DIP-3.0, ``docs/dip3_full_text.txt``, not the official
    original].  With level coefficients the standard at the hospital's
    level *is* the same-level standard.
``"group_mean"``
    the regional mean cost of the group, m_g (what casemix did before).
``"level_mean"``
    the mean cost of the group over the settled cases of hospitals of the
    same level (the DIP 1.0 wording "同级别医疗机构该病种次均费用",
    quoted by secondary sources); a case without a level falls back to
    the group's mean over all settled cases.  The mean includes the case
    itself, so a group with one case at a level has no outlier there.
    Costs are added in whole fen (exact, in any order).

Per-DRG thresholds published by a city (吉林 publishes 低倍/高倍临界值 per
DRG [C]) are columns ``low_k`` and ``high_k`` of the weight table; where a
DRG has them they take precedence over the policy's multiples
(``table_thresholds = true``, the default).

Only *which* cases are outliers and *what they are compared with* lives
here; the points an outlier earns are the settlement core's rule
(``docs/payment-settlement.md``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

from casemix._frames import require_table_numbers
from casemix._money import FEN_PER_YUAN, yuan_array_to_fen
from casemix.errors import InputError
from casemix.payment._section import Section

__all__ = [
    "HIGH",
    "LOW",
    "NORMAL",
    "OutliersConfig",
    "case_thresholds",
    "classify",
    "cost_fen",
    "fen_mean",
    "level_group_mean",
    "reference_cost",
    "table_thresholds",
]

LOW, NORMAL, HIGH = -1, 0, 1


class OutliersConfig(Section):
    """``[outliers]``: the reference cost of the high/low-cost rules and per-DRG thresholds.

    Attributes
    ----------
    reference
        ``"standard"`` (default, DIP 3.0 draft §5.3), ``"group_mean"`` or
        ``"level_mean"``; see the module docstring.
    table_thresholds
        Use the weight table's ``low_k``/``high_k`` columns, where given,
        instead of the policy's multiples.
    """

    TABLE = "outliers"

    reference: Literal["standard", "group_mean", "level_mean"] = "standard"
    table_thresholds: bool = True


def level_group_mean(group: np.ndarray, level: np.ndarray, cost: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per case, the mean cost of its group over the ``valid`` cases of hospitals of its level.

    ``group`` and ``level`` are integer codes (−1 = none).  A case with no
    level gets its group's mean over all valid cases; a case with no group
    (or a group with no valid case) gets NaN.  The costs are added in
    integer fen (:func:`fen_mean`), so the sum is exact and does not depend
    on the order of the cases: a distributed settlement that adds the sums
    of its parts gets the same mean.
    """
    group = np.asarray(group, dtype=np.int64)
    level = np.asarray(level, dtype=np.int64)
    cost = np.asarray(cost)  # read by isfinite and cost_fen only, which take any number type
    ok = np.asarray(valid, dtype=bool) & (group >= 0) & np.isfinite(cost)
    fen = cost_fen(cost[ok])  # the valid rows' costs: no rounding of a NaN placeholder
    n_group = int(group.max()) + 1 if group.size else 0
    n_level = int(level.max()) + 2 if level.size else 1  # slot 0 = "no level"
    cell = np.where(group >= 0, group, 0) * n_level + (level + 1)
    size = max(n_group * n_level, 1)
    s = np.bincount(cell[ok], weights=fen, minlength=size)
    c = np.bincount(cell[ok], minlength=size)
    gs = np.bincount(group[ok], weights=fen, minlength=max(n_group, 1))
    gc = np.bincount(group[ok], minlength=max(n_group, 1))
    by_cell, by_group = fen_mean(s, c), fen_mean(gs, gc)
    safe_group = np.where(group >= 0, group, 0)
    out = np.where(level >= 0, by_cell[cell], by_group[safe_group])
    return np.where(group >= 0, out, np.nan)


def cost_fen(cost: np.ndarray) -> np.ndarray:
    """Costs in yuan as whole fen (ROUND_HALF_UP), as float64: what :func:`fen_mean` adds.

    Float sums of whole fen are exact below 2^53 fen (9 × 10^13 yuan).
    """
    return yuan_array_to_fen(cost).astype(np.float64)


def fen_mean(sum_fen: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Mean in yuan of ``count`` costs adding up to ``sum_fen`` fen (NaN where ``count`` is 0).

    Float64 whatever the inputs' number types (true division); no division by a zero count
    is done, so numpy warns of none.
    """
    c = np.asarray(count)
    mean: np.ndarray = np.divide(sum_fen, c, out=np.full(c.shape, np.nan), where=c > 0)
    return mean / FEN_PER_YUAN


def reference_cost(
    reference: str,
    group_mean: np.ndarray,
    coefficient: np.ndarray,
    *,
    group: np.ndarray | None = None,
    level: np.ndarray | None = None,
    cost: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """The cost each case is compared with, per ``reference`` (module docstring).

    Parameters
    ----------
    reference
        ``"standard"``: m_g × f; ``"group_mean"``: m_g; ``"level_mean"``:
        :func:`level_group_mean` (needs ``group``, ``level``, ``cost``,
        ``valid``).
    group_mean
        m_g per case (NaN where the case has no group reference).
    coefficient
        The case's hospital coefficient f.
    """
    m = np.asarray(group_mean, dtype=np.float64)
    if reference == "standard":
        standard: np.ndarray = m * np.asarray(coefficient)  # float64 m: float64 whatever f's dtype
        return standard
    if reference == "group_mean":
        return m.copy()
    if reference == "level_mean":
        if group is None or level is None or cost is None or valid is None:
            raise ValueError("reference 'level_mean' needs group, level, cost and valid")
        return np.where(np.isnan(m), np.nan, level_group_mean(group, level, cost, valid))
    raise ValueError(f"unknown outlier reference {reference!r}")


def table_thresholds(weights: pl.DataFrame) -> pl.DataFrame:
    """``drg``, ``low_k``, ``high_k`` of a weight table (nulls where a DRG has none), checked.

    Raises
    ------
    InputError
        A negative ``low_k``, a ``high_k`` that is not positive, a DRG
        whose ``low_k`` is not below its ``high_k``, or a value that is text
        but no number (never read as "no threshold"), naming the DRG.
    """
    cols = [pl.col("drg").cast(pl.String)]
    for name in ("low_k", "high_k"):
        require_table_numbers(
            weights, name, fix="fix the city table's 低倍/高倍临界值 or leave the cell empty"
        )
        cols.append(
            (
                # strict: require_table_numbers has refused every value the cast could not read
                pl.col(name).cast(pl.Float64) if name in weights.columns else pl.lit(None, pl.Float64)
            ).alias(name)
        )
    t = weights.select(cols).with_columns(pl.col("low_k", "high_k").fill_nan(None))
    checks = (
        (pl.col("low_k") < 0, "low_k (低倍临界值) is negative"),
        (pl.col("high_k") <= 0, "high_k (高倍临界值) is not positive"),
        (pl.col("low_k") >= pl.col("high_k"), "low_k is not below high_k"),
    )
    for cond, what in checks:
        bad = t.filter(cond.fill_null(False))
        if bad.height:
            raise InputError(
                f"weight table: {what} for DRG {bad['drg'][0]!r} "
                f"(low_k={bad['low_k'][0]}, high_k={bad['high_k'][0]}); "
                "fix the city table's 低倍/高倍临界值"
            )
    return t


def case_thresholds(
    low_default: float | np.ndarray,
    high_default: float | np.ndarray,
    table_low: np.ndarray | None = None,
    table_high: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-case low and high multiples: the DRG's table value where given, else the policy's.

    ``table_low``/``table_high`` hold the case's DRG's ``low_k``/``high_k``
    (NaN where the table has none); the defaults are the policy's
    multiples (a scalar, or per case, e.g. by hospital level).  Float64
    arrays; without a table read-only views of the defaults.
    """
    hi = np.asarray(high_default, dtype=np.float64)
    lo = np.asarray(low_default, dtype=np.float64)
    # the cases' number from the per-case arrays (a scalar default broadcasts, even to no case)
    per_case = [np.asarray(x) for x in (hi, lo, table_low, table_high) if x is not None]
    sizes = [x.size for x in per_case if x.ndim]
    n = max(sizes) if sizes else 1
    # read-only views where no table value applies: a scalar multiple takes no memory per case
    hi = np.broadcast_to(hi, (n,))
    lo = np.broadcast_to(lo, (n,))
    # (np.where with the float64 defaults gives float64 whatever the table's number type)
    if table_high is not None:
        hi = np.where(np.isfinite(table_high), table_high, hi)
    if table_low is not None:
        lo = np.where(np.isfinite(table_low), table_low, lo)
    return lo, hi


def classify(cost: np.ndarray, reference: np.ndarray, low_k: np.ndarray, high_k: np.ndarray) -> np.ndarray:
    """``HIGH`` (cost > high_k × r), ``LOW`` (cost < low_k × r) or ``NORMAL``, per case (int8).

    A case without a reference (NaN) is ``NORMAL``: there is nothing to
    compare it with.
    """
    # the comparisons give the same booleans for integer or float inputs: no casts
    c, r = np.asarray(cost), np.asarray(reference)
    with np.errstate(invalid="ignore"):
        high = c > np.asarray(high_k) * r
        low = c < np.asarray(low_k) * r
    out = np.zeros(c.shape, dtype=np.int8)
    out[low & ~high] = LOW
    out[high] = HIGH
    return out
