"""Sums per group code: exact integer fen, and float sums without a copy of their input.

Kept apart from :mod:`casemix.payment.core` so that :mod:`casemix.payment.monthly`
(imported by :mod:`casemix.budget`, which ``core`` imports) can use it without an
import cycle (issue 16).
"""

from __future__ import annotations

import numpy as np

#: Rows per slice of the slice-by-slice sums and conversions of settlement (here,
#: ``casemix.settle``, ``casemix._points``, ``casemix.payment.monthly``).  Why slices: a
#: whole-column temporary is 80 MB per Int64/Float64 array at 10M cases (issue 12's memory
#: peak); a slice of 2**20 rows is 8 MB, and at 10M cases only ten slices pay Python's
#: per-slice overhead.  The results do not depend on it: integer sums are exact and the
#: float sums add in row order whatever the slicing.
BLOCK_ROWS = 1 << 20


def int_sums(group: np.ndarray, fen: np.ndarray, n: int) -> np.ndarray:
    """Exact Int64 sums of fen per group code (``0 … n−1``)."""
    x = np.asarray(fen, dtype=np.int64)
    g = np.asarray(group)
    # slice by slice: bincount converts its weights to float, a copy of the slice only
    slices = [slice(a, a + BLOCK_ROWS) for a in range(0, x.size, BLOCK_ROWS)] or [slice(0, 0)]
    if sum(float(np.abs(x[s]).sum(dtype=np.float64)) for s in slices) < 2.0**53:
        # float sums of integers are exact below 2**53 fen, and bincount is fast
        total = np.zeros(n, dtype=np.float64)
        for s in slices:
            total += np.bincount(g[s], weights=x[s], minlength=n)
        return np.rint(total).astype(np.int64)
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, g, x)
    return out


def pool_sums(pool: np.ndarray, group: np.ndarray, fen: np.ndarray, n_pools: int, n: int) -> np.ndarray:
    """Exact Int64 sums of fen per pool × group code: an ``(n_pools, n)`` array.

    The key ``pool × n + group`` is made slice by slice (no Int64 key per case).
    """
    out = np.zeros(n_pools * n, dtype=np.int64)
    for a in range(0, len(fen), BLOCK_ROWS):
        s = slice(a, a + BLOCK_ROWS)
        key = pool[s].astype(np.int64) * n + group[s]
        out += int_sums(key, fen[s], n_pools * n)
    return out.reshape(n_pools, n)


def float_sums(group: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """``np.bincount(group, weights=x, minlength=n)`` to the bit, without copying its inputs.

    ``bincount`` copies an index or weight array it cannot write to (a read-only view of a
    polars column: 80 MB at 10M cases); ``np.add.at`` adds in row order as ``bincount`` does,
    here slice by slice into the one result, so the float sums are the same additions.
    """
    out = np.zeros(n, dtype=np.float64)
    g = np.asarray(group)
    w = np.asarray(x, dtype=np.float64)
    for a in range(0, w.size, BLOCK_ROWS):
        np.add.at(out, g[a : a + BLOCK_ROWS], w[a : a + BLOCK_ROWS])
    return out
