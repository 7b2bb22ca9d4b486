"""Selection and stable sorting for numba kernels, written out to compile fast.

numba compiles its own ``np.partition`` for about 8 s of CPU and
``np.argsort(kind="mergesort")`` for about 2 s; a fresh install waits for
that on the first settlement or benefit run (issue 16).  These loops
compile in well under a second and are tested equal to numpy's
(``tests/test_money.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from casemix.encode_kernel import cache_enabled

__all__ = ["kth_smallest", "stable_order"]

_CACHE = cache_enabled()


@njit(cache=_CACHE)
def kth_smallest(a, k):
    """The ``k``-th smallest value of ``a`` (0-based), reordering ``a`` in place.

    A quickselect with three-way partitioning, so runs of equal keys (every
    row of a group with the same fraction) stay linear.  Written out rather
    than ``np.partition``: numba takes about 8 s of CPU to compile that.
    """
    lo = 0
    hi = a.size - 1
    while lo < hi:
        mid = (lo + hi) // 2
        x, y, z = a[lo], a[mid], a[hi]
        # median of three keeps sorted and reverse-sorted groups linear
        if x > y:
            x, y = y, x
        if y > z:
            y = z
            if x > y:
                y = x
        pivot = y
        lt = lo
        i = lo
        gt = hi
        while i <= gt:
            v = a[i]
            if v < pivot:
                a[i] = a[lt]
                a[lt] = v
                lt += 1
                i += 1
            elif v > pivot:
                a[i] = a[gt]
                a[gt] = v
                gt -= 1
            else:
                i += 1
        if k < lt:
            hi = lt - 1
        elif k > gt:
            lo = gt + 1
        else:
            return pivot
    return a[lo]


@njit(cache=_CACHE)
def stable_order(key):
    """Indices that sort ``key`` ascending, equal keys in their given order (a merge sort).

    Written out for the same reason as :func:`kth_smallest`: numba's
    ``argsort(kind="mergesort")`` compiles for seconds.
    """
    n = key.size
    order = np.arange(n)
    tmp = np.empty(n, dtype=np.int64)
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i = lo
            j = mid
            t = lo
            while i < mid and j < hi:
                # ``<=`` takes the left run first on equal keys: stable
                if key[order[i]] <= key[order[j]]:
                    tmp[t] = order[i]
                    i += 1
                else:
                    tmp[t] = order[j]
                    j += 1
                t += 1
            while i < mid:
                tmp[t] = order[i]
                i += 1
                t += 1
            while j < hi:
                tmp[t] = order[j]
                j += 1
                t += 1
        order, tmp = tmp, order
        width *= 2
    return order
