"""Single-threaded numba kernels run over row ranges by a few Python threads.

numba's ``parallel=True`` (parfors) costs about three times the compile
time of a plain ``njit`` function (20 s instead of 7 s of CPU for the DRG
grouping kernel, ``benchmarks/bench_compile.py``), and that is what a
fresh install waits for on its first call (issue 16).  The kernels on the
grouping path are therefore plain ``njit(nogil=True)`` functions taking a
row range ``start, stop``; :func:`run_ranges` cuts the rows into ranges and
calls the kernel on ``numba.get_num_threads()`` threads (the same number
``prange`` would use, so ``numba.set_num_threads`` and
``NUMBA_NUM_THREADS`` still limit it).  With the GIL released the threads
run in parallel as ``prange`` did; rows are independent, so the results
are the same however the rows are cut.
"""

from __future__ import annotations

import numpy as np

#: fewer rows than this per thread: one call in the calling thread (starting
#: threads would cost more than it saves)
MIN_ROWS_PER_THREAD = 8192
#: ranges per thread: a thread that finishes early (a busy machine, uneven
#: rows) takes the next range instead of waiting for the slowest
RANGES_PER_THREAD = 4


def threads() -> int:
    """The number of threads numba's parallel kernels would use here (``numba.get_num_threads``)."""
    import numba

    return int(numba.get_num_threads())


def ranges(n: int, parts: int, align: int = 1) -> list[tuple[int, int]]:
    """``[0, n)`` cut into at most ``parts`` contiguous ranges of nearly equal size.

    Inner bounds are multiples of ``align`` (a kernel's block size); empty
    ranges are left out.
    """
    parts = max(1, min(parts, -(-n // align)))
    bounds = [min(n, round(n * k / parts / align) * align) for k in range(parts + 1)]
    bounds[-1] = n
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Read-only views of the arrays (the arrays themselves are left alone).

    numba compiles a kernel once per mix of read-only and writable array
    arguments; the runners pass every input read-only so that a kernel
    compiles one signature, whatever polars or numpy handed out.
    """
    out = []
    for a in arrays:
        v = a.view()
        v.flags.writeable = False
        out.append(v)
    return tuple(out)


def run_ranges(kernel, n: int, *args, align: int = 1) -> list[tuple[int, int]]:
    """Call ``kernel(start, stop, *args)`` over the rows ``[0, n)``, on a few threads.

    ``kernel`` must be compiled with ``nogil=True`` and write each row's
    result only (rows independent, or each range into its own part of an
    output).  Small inputs, or one thread, make one call in the calling
    thread.  An exception in any range is raised here.  Returns the ranges
    the kernel was called on, in row order.
    """
    if n <= 0:
        return []
    k = threads()
    if k <= 1 or n < 2 * MIN_ROWS_PER_THREAD:
        kernel(0, n, *args)
        return [(0, n)]
    from concurrent.futures import ThreadPoolExecutor

    parts = ranges(n, min(k * RANGES_PER_THREAD, n // MIN_ROWS_PER_THREAD), align)
    rest = parts
    if not kernel.signatures:
        # compile once, in this thread, before the other threads call the kernel
        kernel(*parts[0], *args)
        rest = parts[1:]
    with ThreadPoolExecutor(max_workers=k) as pool:
        for f in [pool.submit(kernel, a, b, *args) for a, b in rest]:
            f.result()
    return parts
