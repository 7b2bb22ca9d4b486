"""Exact sums of integer fen per group code.

Kept apart from :mod:`casemix.payment.core` so that :mod:`casemix.payment.monthly`
(imported by :mod:`casemix.budget`, which ``core`` imports) can use it without an
import cycle (issue 16).
"""

from __future__ import annotations

import numpy as np


def int_sums(group: np.ndarray, fen: np.ndarray, n: int) -> np.ndarray:
    """Exact Int64 sums of fen per group code (``0 … n−1``)."""
    x = np.asarray(fen, dtype=np.int64)
    if float(np.abs(x).sum(dtype=np.float64)) < 2.0**53:
        # float sums of integers are exact below 2**53 fen, and bincount is fast
        return np.rint(np.bincount(group, weights=x, minlength=n)).astype(np.int64)
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, group, x)
    return out
