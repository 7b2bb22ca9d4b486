"""Trimming of cost outliers within a group, before weights are computed.

Fences per group (sources in docs/payment-weights.md):

- ``none``: keep everything;
- ``percentile``: keep ``P_lower <= cost <= P_upper`` (linear interpolation
  between order statistics, numpy's default / Hyndman–Fan type 7);
  2.5/97.5 by default, 1/99 in Hangzhou [city];
- ``sd``: keep ``mean − k·SD <= cost <= mean + k·SD`` (sample SD, ddof 1)
  [unverified, widely quoted with k = 3];
- ``iqr``: keep ``Q1 − a·IQR <= cost <= Q3 + b·IQR`` (a = 0.5, b = 1.5 were
  best by CV/RIV in Zhang, Li, Feng 2022).

A group whose fences would drop every one of its cases keeps them all and
is reported (never removed silently).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from casemix.errors import InputError

METHODS = ("none", "percentile", "sd", "iqr")

# Fences are widened by this relative amount so that a cost lying exactly on
# a fence (ties, all-equal groups, a mean that is off by one ulp) is kept the
# same way whatever the currency unit the costs are in.
_REL_TOL = 1e-9


@dataclass(frozen=True)
class Trim:
    """A trimming rule: ``method`` and its parameters.

    Parameters
    ----------
    method
        ``"none"``, ``"percentile"``, ``"sd"`` or ``"iqr"``.
    lower, upper
        Percentile fences as fractions (0.025, 0.975).
    k
        Multiple of the SD for ``"sd"``.
    a, b
        IQR multiples below Q1 and above Q3 for ``"iqr"``.
    """

    method: str = "percentile"
    lower: float = 0.025
    upper: float = 0.975
    k: float = 3.0
    a: float = 0.5
    b: float = 1.5

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"trim method must be one of {', '.join(METHODS)}; got {self.method!r}")
        if not (0.0 <= self.lower < self.upper <= 1.0):
            raise InputError(
                f"trim percentiles need 0 <= lower < upper <= 1; got lower={self.lower}, upper={self.upper}"
            )
        if self.k < 0 or self.a < 0 or self.b < 0:
            raise InputError(f"trim multiples k, a, b must be >= 0; got k={self.k}, a={self.a}, b={self.b}")

    def describe(self) -> str:
        """A short label, e.g. ``percentile 2.5/97.5``."""
        if self.method == "percentile":
            return f"percentile {self.lower * 100:g}/{self.upper * 100:g}"
        if self.method == "sd":
            return f"mean ± {self.k:g}·SD"
        if self.method == "iqr":
            return f"Q1 − {self.a:g}·IQR, Q3 + {self.b:g}·IQR"
        return "none"


def _fences(t: Trim, x: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    if t.method == "percentile":
        return (x.quantile(t.lower, interpolation="linear"), x.quantile(t.upper, interpolation="linear"))
    if t.method == "sd":
        m, sd = x.mean(), x.std(ddof=1)
        return m - t.k * sd, m + t.k * sd
    q1 = x.quantile(0.25, interpolation="linear")
    q3 = x.quantile(0.75, interpolation="linear")
    return q1 - t.a * (q3 - q1), q3 + t.b * (q3 - q1)


def trim(values: np.ndarray, keys: np.ndarray, n_keys: int, t: Trim) -> tuple[np.ndarray, np.ndarray]:
    """Which values survive trimming within their group.

    Parameters
    ----------
    values
        Float costs, one per case.
    keys
        Integer group id per case, in ``range(n_keys)``.
    n_keys
        Number of group ids.
    t
        The trimming rule.

    Returns
    -------
    kept
        Boolean array, one per case.
    kept_whole
        Group ids whose fences would have removed every case; those groups
        keep all their cases.
    """
    if t.method == "none" or values.size == 0:
        return np.ones(values.size, dtype=bool), np.zeros(0, dtype=np.int64)
    x = pl.col("x")
    lo, hi = _fences(t, x)
    stats = pl.DataFrame({"k": keys, "x": values}).group_by("k").agg(lo.alias("lo"), hi.alias("hi"))
    # groups without a fence (the SD of a single case) keep everything
    lo_of = np.full(n_keys, -np.inf)
    hi_of = np.full(n_keys, np.inf)
    k = stats["k"].to_numpy()
    lo_of[k] = stats["lo"].fill_null(-np.inf).fill_nan(-np.inf).to_numpy()
    hi_of[k] = stats["hi"].fill_null(np.inf).fill_nan(np.inf).to_numpy()
    tol = np.maximum(np.abs(lo_of), np.abs(hi_of))
    tol = np.where(np.isfinite(tol), tol * _REL_TOL, 0.0)
    lo_of, hi_of = lo_of - tol, hi_of + tol
    inside = (values >= lo_of[keys]) & (values <= hi_of[keys])
    any_inside = np.bincount(keys, weights=inside, minlength=n_keys) > 0
    present = np.bincount(keys, minlength=n_keys) > 0
    return inside | ~any_inside[keys], np.flatnonzero(present & ~any_inside)
