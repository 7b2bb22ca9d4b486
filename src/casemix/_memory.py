"""Hand freed memory back to the operating system between the large steps of a batch.

glibc's ``malloc`` keeps freed blocks below its mmap threshold (which grows up to 32 MB as
numpy frees larger arrays) in its heap, where they stay resident; a 10M-case settlement
frees hundreds of such slices and per-part arrays, and about 50 MB of them were still
resident at its end (``benchmarks/bench_settle.py``). ``malloc_trim(0)`` returns the free
pages of every arena (glibc ≥ 2.8 also releases pages inside the heap).  Elsewhere (musl,
macOS, Windows) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from typing import Any


@functools.cache
def _trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> None:
    """Return the C heap's free pages to the OS (glibc ``malloc_trim``); no-op elsewhere."""
    trim = _trim()
    if trim is not None:
        trim(0)
