"""numpy's float sum of an array, rebuilt from pieces held by different workers, bit for bit.

``casemix.settle`` takes the region's total points as ``pts.sum()`` over
every case in input order, and the base point value (and so every
hospital's pre-payment, rounded to the fen) follows from it.  A float sum
depends on the order of additions, so a total added up partition by
partition can differ from numpy's in the last bits — enough, at a
province's amounts (10^11 fen), to move a pre-payment by a fen.

numpy sums a contiguous float64 array by *pairwise summation*
(``pairwise_sum`` in numpy's ``loops_utils.h.src``): a block of at most
128 numbers is added with eight running accumulators (then the remaining
``n % 8`` one by one); a longer one is split at ``n/2`` rounded down to a
multiple of 8 and the two halves' sums are added.  The blocks (leaves)
depend only on the array's length, so each worker can sum the leaves that
lie inside its partition; the leaves cut by a partition boundary travel to
the client as their few numbers; the client adds the leaves up the same
tree.  ``tests/test_dask.py`` checks this against ``numpy.sum``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

BLOCK = 128  # numpy's PW_BLOCKSIZE


def leaves(n: int, lo: int = 0, hi: int | None = None) -> list[tuple[int, int]]:
    """``(start, length)`` of the leaves of an ``n``-long sum that meet positions ``[lo, hi)``."""
    hi = n if hi is None else hi
    out: list[tuple[int, int]] = []
    stack = [(0, n)]
    while stack:
        start, m = stack.pop()
        if start >= hi or start + m <= lo or m == 0:
            continue
        if m <= BLOCK:
            out.append((start, m))
            continue
        half = m // 2
        half -= half % 8
        stack.append((start + half, m - half))
        stack.append((start, half))
    return out


def leaf_sums(rows: np.ndarray) -> np.ndarray:
    """numpy's sum of each row of a 2-D float64 array whose rows are leaves (length <= 128)."""
    rows = np.asarray(rows, dtype=np.float64)
    k, m = rows.shape
    res: np.ndarray
    if m < 8:
        res = np.zeros(k)
        for i in range(m):
            res = res + rows[:, i]
        return res
    r = rows[:, :8].copy()
    i = 8
    while i < m - (m % 8):
        r += rows[:, i : i + 8]
        i += 8
    res = ((r[:, 0] + r[:, 1]) + (r[:, 2] + r[:, 3])) + ((r[:, 4] + r[:, 5]) + (r[:, 6] + r[:, 7]))
    for j in range(i, m):
        res = res + rows[:, j]
    return res


def partition_pieces(
    values: np.ndarray, start: int, n: int
) -> tuple[dict[int, float], list[tuple[int, int, np.ndarray]]]:
    """Sums of the leaves inside ``values`` (positions ``start …``), and the cut leaves' parts.

    Returns ``({leaf_start: sum}, [(leaf_start, first_position, values), …])``.
    """
    values = np.asarray(values, dtype=np.float64)
    end = start + len(values)
    full: dict[int, float] = {}
    cut: list[tuple[int, int, np.ndarray]] = []
    by_len: dict[int, list[int]] = {}
    for s, m in leaves(n, start, end):
        if s >= start and s + m <= end:
            by_len.setdefault(m, []).append(s)
        else:
            a, b = max(s, start), min(s + m, end)
            cut.append((s, a, values[a - start : b - start].copy()))
    for m, starts in by_len.items():
        idx = np.asarray(starts)[:, None] - start + np.arange(m)[None, :]
        full.update(zip(starts, leaf_sums(values[idx]).tolist(), strict=True))
    return full, cut


def total(n: int, pieces: Iterable[tuple[dict[int, float], list[tuple[int, int, np.ndarray]]]]) -> float:
    """numpy's ``sum`` of the ``n`` numbers whose pieces the partitions returned."""
    if n == 0:
        return 0.0
    sums: dict[int, float] = {}
    parts: dict[int, list[tuple[int, np.ndarray]]] = {}
    for full, cut in pieces:
        sums.update(full)
        for s, first, vals in cut:
            parts.setdefault(s, []).append((first, vals))
    for s, bits in parts.items():
        row = np.concatenate([v for _, v in sorted(bits, key=lambda t: t[0])])
        sums[s] = float(leaf_sums(row[None, :])[0])

    # the tree, bottom-up: a node's sum is its left half's plus its right half's
    def node(start: int, m: int) -> float:
        if m <= BLOCK:
            return sums[start]
        half = m // 2
        half -= half % 8
        return node(start, half) + node(start + half, m - half)

    return float(node(0, n))
