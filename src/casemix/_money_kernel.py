"""numba kernel of :func:`casemix._money.allocate_grouped`: the fen left over, per group.

After every row has the floor of its exact share, group ``g`` still has
``left[g]`` fen to give (or, from float noise, to take back).  Giving:
one fen each to the ``left[g]`` rows with the largest fractional part,
ties to the larger share, then to the earlier row.  Taking back: from the
rows with the smallest fractional part, ties to the smaller share, then to
the later row.  A sort of every row by (group, fraction, share, row) does
this in numpy; here each group is a selection instead (the k-th key by
``np.partition``, then only the rows tied at it are ordered), linear in the
rows, which is what makes 10M-case settlements fast.

Importing this module imports numba; ``CASEMIX_NUMBA_CACHE=0`` switches its
on-disk cache off, as for every casemix kernel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from casemix._numba_sort import kth_smallest, stable_order
from casemix.encode_kernel import cache_enabled

_CACHE = cache_enabled()


@njit(cache=_CACHE)
def _pick(rows, frac, share, k, give):
    """The ``k`` rows (of ``rows``, ascending) first in the order of ``give``/take, as a mask."""
    m = rows.size
    key = np.empty(m)
    for j in range(m):
        key[j] = -frac[rows[j]] if give else frac[rows[j]]
    chosen = np.zeros(m, dtype=np.bool_)
    if k >= m:
        chosen[:] = True
        return chosen
    thr = kth_smallest(key.copy(), k - 1)
    n_below = 0
    n_tied = 0
    for j in range(m):
        if key[j] < thr:
            chosen[j] = True
            n_below += 1
        elif key[j] == thr:
            n_tied += 1
    need = k - n_below
    if need <= 0:
        return chosen
    # rows tied at the threshold: by share (larger first when giving, smaller when taking),
    # then by row (earlier when giving, later when taking); the sort is stable
    tied = np.empty(n_tied, dtype=np.int64)
    t = 0
    for jj in range(m):
        j = jj if give else m - 1 - jj
        if key[j] == thr:
            tied[t] = j
            t += 1
    skey = np.empty(n_tied)
    for t in range(n_tied):
        skey[t] = -share[rows[tied[t]]] if give else share[rows[tied[t]]]
    order = stable_order(skey)
    for t in range(need):
        chosen[tied[order[t]]] = True
    return chosen


@njit(cache=_CACHE)
def spread_left(group, share, exact, base, left):
    """Add (``left[g] > 0``) or take back (``< 0``) one fen per chosen row of each group, in place."""
    n_groups = left.size
    starts = np.zeros(n_groups + 1, dtype=np.int64)
    for i in range(group.size):
        starts[group[i] + 1] += 1
    for g in range(n_groups):
        starts[g + 1] += starts[g]
    fill = starts[:-1].copy()
    rows = np.empty(group.size, dtype=np.int64)
    for i in range(group.size):  # rows of each group, ascending (a stable counting sort)
        g = group[i]
        rows[fill[g]] = i
        fill[g] += 1
    frac = np.empty(exact.size)
    for i in range(exact.size):
        frac[i] = exact[i] - base[i]
    for g in range(n_groups):
        k = left[g]
        if k == 0:
            continue
        r = rows[starts[g] : starts[g + 1]]
        give = k > 0
        chosen = _pick(r, frac, share, k if give else -k, give)
        for j in range(r.size):
            if chosen[j]:
                base[r[j]] += 1 if give else -1
