"""numba kernels of :mod:`casemix.encode`: Arrow string views → code ids.

Kept apart from :mod:`casemix.drg.kernel` so that ``encode`` does not import
the grouping kernel (which imports ``drg.compile``, which imports
``encode``): the import graph has no cycle.  Importing this module imports
numba; ``casemix.encode`` imports it only when a code column is encoded.
``CASEMIX_NUMBA_CACHE=0`` switches numba's on-disk cache off, as for every
casemix kernel (see :mod:`casemix.drg.kernel`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from casemix._first_run import cache_enabled, listen
from casemix._threads import read_only, run_ranges

listen()  # the first-run notice when numba compiles a kernel


_CACHE = cache_enabled()


# -- encoding: Arrow string views → code ids ---------------------------------------------
# A string view is 16 bytes: length (int32), then either the string itself
# (length <= 12, inline) or a 4-byte prefix, a data buffer index and an
# offset.  A short code is keyed by its masked view words; a long one by
# (length + prefix, FNV-1a of its bytes), checked byte by byte on a hit.

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_LOW32 = np.uint64(0xFFFFFFFF)
_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
#: a slot's first word without the code id it holds in bits 8..31 (``casemix.encode._hash_table``)
_KEY_BITS = np.uint64(0xFFFFFFFF000000FF)


@njit(cache=_CACHE, inline="always")
def fnv(data, start, length):
    h = np.uint64(0xCBF29CE484222325)
    for t in range(length):
        h = (h ^ np.uint64(data[start + t])) * np.uint64(0x100000001B3)
    return h


@njit(cache=_CACHE, inline="always")
def _view_key(w0, w1, data, data_base):
    # the (masked) key of one view, and its length
    length = np.int64(w0 & _LOW32)
    if length <= 12:
        if length < 4:
            w0 = w0 & ((np.uint64(1) << np.uint64(32 + 8 * length)) - np.uint64(1))
            w1 = np.uint64(0)
        elif length < 12:
            w1 = w1 & ((np.uint64(1) << np.uint64(8 * (length - 4))) - np.uint64(1))
        return w0, w1, length, -1
    start = data_base[np.int64(w1 & _LOW32)] + np.int64(w1 >> np.uint64(32))
    return w0, fnv(data, start, length), length, start


@njit(cache=_CACHE, inline="always")
def bytes_key(src, start, length):
    """The key :func:`probe` takes for the code ``src[start:start + length]``, as a view gives it:
    ``(a, b, start)``, ``start`` being ``-1`` for a code of at most 12 bytes (``casemix.encode._key``)."""
    head = np.uint64(0)
    for t in range(min(length, 4)):
        head |= np.uint64(src[start + t]) << np.uint64(8 * t)
    a = np.uint64(length) | (head << np.uint64(32))
    if length > 12:
        return a, fnv(src, start, length), start
    b = np.uint64(0)
    for t in range(4, length):
        b |= np.uint64(src[start + t]) << np.uint64(8 * (t - 4))
    return a, b, -1


@njit(cache=_CACHE, inline="always")
def _lookup(w0, w1, data, data_base, slots, shift, long_data, long_off):
    a, b, length, start = _view_key(w0, w1, data, data_base)
    return probe(a, b, length, data, start, slots, shift, long_data, long_off)


@njit(cache=_CACHE, inline="always")
def probe(a, b, length, data, start, slots, shift, long_data, long_off):
    """Id of the code keyed ``(a, b)`` in the hash table ``slots``, ``-1`` when absent.

    A code longer than 12 bytes (``start >= 0``) is compared byte by byte
    with ``data[start:start + length]`` on a key match.
    """
    size_mask = slots.shape[0] - 1
    slot = np.int64(((a * _M1) ^ (b * _M2)) >> np.uint64(shift))
    while True:
        w0 = slots[slot, 0]
        if w0 == _EMPTY:
            return -1
        if (w0 & _KEY_BITS) == a and slots[slot, 1] == b:
            c = np.int64((w0 >> np.uint64(8)) & np.uint64(0xFFFFFF))
            if start < 0:
                return c
            s0 = long_off[c]
            if long_off[c + 1] - s0 == length:
                same = True
                for t in range(length):
                    if long_data[s0 + t] != data[start + t]:
                        same = False
                        break
                if same:
                    return c
        slot = (slot + 1) & size_mask


@njit(cache=_CACHE, inline="always")
def _is_valid(valid, pos):
    return (valid[pos >> 3] >> (pos & 7)) & 1


@njit(nogil=True, cache=_CACHE)
def encode_views(
    start,
    stop,
    src_off,
    out_off,
    views,
    offset,
    valid,
    has_valid,
    data,
    data_base,
    absent_empty,
    slots,
    shift,
    long_data,
    long_off,
    out,
):
    """Code ids of rows ``start:stop`` of Arrow string views, into ``out``.

    With empty ``src_off``, row ``i`` is the single view ``offset + i`` and its
    id goes to ``out[i]`` (a code column); otherwise row ``i`` is a list whose
    views start at ``offset + src_off[i]`` and whose ids go to
    ``out[out_off[i]:out_off[i + 1]]`` (a code-list column, CSR).  An id is -1
    when the code is unknown or null, and -2 for null and empty when
    ``absent_empty``.  One kernel for both layouts: a fresh install compiles
    it once (issue 16).  Run by :func:`lookup_views` / :func:`lookup_view_lists`.
    """
    flat = src_off.shape[0] == 0
    for i in range(start, stop):
        if flat:
            s = i
            o = i
            m = 1
        else:
            s = src_off[i]
            o = out_off[i]
            m = out_off[i + 1] - o
        for t in range(m):
            pos = offset + s + t
            if has_valid and _is_valid(valid, pos) == 0:
                out[o + t] = -2 if absent_empty else -1
                continue
            w0 = views[pos, 0]
            if absent_empty and (w0 & _LOW32) == 0:
                out[o + t] = -2
                continue
            out[o + t] = _lookup(w0, views[pos, 1], data, data_base, slots, shift, long_data, long_off)


#: ``src_off`` / ``out_off`` of a code column (one view per row) for :func:`encode_views`
_NO_OFFSETS = np.empty(0, dtype=np.int64)


def lookup_views(
    views, offset, valid, has_valid, data, data_base, absent_empty, slots, shift, long_data, long_off, out
) -> None:
    """Code ids of ``out.shape[0]`` Arrow string views starting at ``offset``, into ``out``.

    :func:`encode_views` on a few threads (:func:`casemix._threads.run_ranges`).
    """
    _run_encode(
        out.shape[0],
        _NO_OFFSETS,
        _NO_OFFSETS,
        views,
        offset,
        valid,
        has_valid,
        data,
        data_base,
        absent_empty,
        slots,
        shift,
        long_data,
        long_off,
        out,
    )


def lookup_view_lists(
    src_off, out_off, views, offset, valid, has_valid, data, data_base, slots, shift, long_data, long_off, out
) -> None:
    """CSR code ids of list rows (see :func:`encode_views`), on a few threads, into ``out``.

    Row ``i``'s views start at ``src_off[i]``; its ids go to ``out[out_off[i]:out_off[i + 1]]``.
    """
    _run_encode(
        out_off.shape[0] - 1,
        src_off,
        out_off,
        views,
        offset,
        valid,
        has_valid,
        data,
        data_base,
        False,
        slots,
        shift,
        long_data,
        long_off,
        out,
    )


def _run_encode(
    n,
    src_off,
    out_off,
    views,
    offset,
    valid,
    has_valid,
    data,
    data_base,
    absent_empty,
    slots,
    shift,
    long_data,
    long_off,
    out,
) -> None:
    # every input read-only and every scalar a Python int/bool: one signature, one compile
    src_off, out_off, views, valid, data, data_base, slots, long_data, long_off = read_only(
        np.ascontiguousarray(src_off, dtype=np.int64),
        np.ascontiguousarray(out_off, dtype=np.int64),
        views,
        valid,
        data,
        data_base,
        slots,
        long_data,
        long_off,
    )
    run_ranges(
        encode_views,
        n,
        src_off,
        out_off,
        views,
        int(offset),
        valid,
        bool(has_valid),
        data,
        data_base,
        bool(absent_empty),
        slots,
        int(shift),
        long_data,
        long_off,
        out,
    )
