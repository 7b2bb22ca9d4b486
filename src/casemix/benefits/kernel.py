"""numba kernels of the benefit cascade: one loop per person-year, on a few threads.

Same rules and the same rounding as :mod:`casemix.benefits.reference`
(tested equal on generated cases); every table comes in as an array
argument, never a global, so the on-disk cache stays valid.  This module
is imported only when the batch engine runs.

On a small machine random memory access, not arithmetic, is the cost, so
rows are put in person order by counting sorts and each case's inputs and
results are one cache line each.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from casemix._first_run import cache_enabled, listen
from casemix._numba_sort import stable_order
from casemix._threads import run_ranges
from casemix.benefits.policy import Tables

listen()  # the first-run notice when numba compiles a kernel

# CASEMIX_NUMBA_CACHE=0 switches numba's on-disk cache off (it can break under
# multiprocessing: numba issues #4807, #10128)
_CACHE = cache_enabled()


@njit(cache=_CACHE, inline="always")
def _round_half_up(x):
    # fen × basis points → fen; x is never negative
    return (x + 5000) // 10000


@njit(cache=_CACHE, inline="always")
def _banded(t_ded, t_nb, t_upper, t_rate, v, layer, a, b, cumulative):
    # fen × basis points owed on a cumulative amount (see reference.banded_amount)
    owed = 0
    lower = t_ded[v, layer, a, b]
    nb = t_nb[v, layer, a, b]
    for k in range(nb):
        last = k == nb - 1
        up = t_upper[v, layer, a, b, k]
        top = cumulative if (last or cumulative < up) else up
        if top > lower:
            owed += t_rate[v, layer, a, b, k] * (top - lower)
        if not last and up > lower:
            lower = up
    return owed


@njit(cache=_CACHE)
def person_year_order(pcode, day, n_persons, year_of_day, first_day):
    """Rows sorted by person, then day, then row; and the start of each person-year.

    A stable counting sort by person (rows stay in row order within a
    person), then each person's few rows are insertion-sorted by day; the
    day travels with the row in one 16-byte pair so the second step reads
    memory in order.  ``pcode`` are person codes in 0..n_persons-1;
    ``year_of_day[d - first_day]`` is the calendar year of day ``d``.
    ``order[seg[s]:seg[s+1]]`` is one person-year.
    """
    n = pcode.shape[0]
    pstart = np.zeros(n_persons + 1, np.int64)
    for i in range(n):
        pstart[pcode[i] + 1] += 1
    for p in range(n_persons):
        pstart[p + 1] += pstart[p]
    pos = pstart[:-1].copy()
    pair = np.empty((n, 2), np.int64)
    for i in range(n):
        p = pcode[i]
        k = pos[p]
        pair[k, 0] = i
        pair[k, 1] = day[i]
        pos[p] += 1
    order = np.empty(n, np.int64)
    is_new = np.zeros(n, np.bool_)
    n_seg = 0
    for p in range(n_persons):
        lo = pstart[p]
        hi = pstart[p + 1]
        if hi - lo > 64:
            # a person with very many rows (or a placeholder id): a stable n log n sort
            idx = stable_order(pair[lo:hi, 1])
            rows = pair[lo:hi].copy()
            for m in range(hi - lo):
                pair[lo + m, 0] = rows[idx[m], 0]
                pair[lo + m, 1] = rows[idx[m], 1]
        # insertion sort by day; rows of one day stay in row order (stable)
        for k in range(lo + 1, hi):
            r = pair[k, 0]
            d = pair[k, 1]
            m = k - 1
            while m >= lo and pair[m, 1] > d:
                pair[m + 1, 0] = pair[m, 0]
                pair[m + 1, 1] = pair[m, 1]
                m -= 1
            pair[m + 1, 0] = r
            pair[m + 1, 1] = d
        # a person-year starts where the person or the calendar year changes
        for k in range(lo, hi):
            order[k] = pair[k, 0]
            if k == lo or (year_of_day[pair[k, 1] - first_day] != year_of_day[pair[k - 1, 1] - first_day]):
                is_new[k] = True
                n_seg += 1
    seg = np.empty(n_seg + 1, np.int64)
    m = 0
    for k in range(n):
        if is_new[k]:
            seg[m] = k
            m += 1
    seg[n_seg] = n
    return order, seg


@njit(cache=_CACHE)
def sort_pack(pcode, n_persons, day, start_day, ins, st, lvl, referral, major, P, B, S, F, T):
    """Cases packed one cache line each (8 int64) and grouped by person, in row order within a person.

    One pass of a stable counting sort by person that writes each case's
    whole packed row to its place (one random write per case; the inputs
    are read in order).  Columns: 0 the small codes — policy version (bits
    0–15, the latest ``start_day`` on or before the day), insured type
    (16–19), status (20–23), hospital level (24–27), referral (28), major
    disease (29); 1–5 P, B, S, F, T in fen; 6 the day; 7 the input row.
    Returns the rows and each person's first row (``pstart``).
    """
    n = pcode.shape[0]
    n_ver = start_day.shape[0]
    pstart = np.zeros(n_persons + 1, np.int64)
    for i in range(n):
        pstart[pcode[i] + 1] += 1
    for p in range(n_persons):
        pstart[p + 1] += pstart[p]
    pos = pstart[:-1].copy()
    X = np.empty((n, 8), np.int64)
    for i in range(n):
        d = day[i]
        v = 0
        while v + 1 < n_ver and start_day[v + 1] <= d:
            v += 1
        k = pos[pcode[i]]
        pos[pcode[i]] += 1
        X[k, 0] = (
            np.int64(v)
            | (np.int64(ins[i]) << 16)
            | (np.int64(st[i]) << 20)
            | (np.int64(lvl[i]) << 24)
            | (np.int64(referral[i]) << 28)
            | (np.int64(major[i]) << 29)
        )
        X[k, 1] = P[i]
        X[k, 2] = B[i]
        X[k, 3] = S[i]
        X[k, 4] = F[i]
        X[k, 5] = T[i]
        X[k, 6] = d
        X[k, 7] = i
    return X, pstart


@njit(cache=_CACHE, nogil=True)
def _sort_days(start, stop, X, pstart, year_of_day, first_day, is_new):
    """Insertion-sort the rows of persons ``start:stop`` by day (stable: same-day rows stay in
    row order); mark where a person-year starts."""
    for p in range(start, stop):
        lo = pstart[p]
        hi = pstart[p + 1]
        if hi - lo > 64:
            # a person with very many rows (or a placeholder id): a stable n log n sort
            idx = stable_order(X[lo:hi, 6])
            rows = X[lo:hi].copy()
            for m in range(hi - lo):
                for c in range(8):
                    X[lo + m, c] = rows[idx[m], c]
        tmp = np.empty(8, np.int64)
        for k in range(lo + 1, hi):
            d = X[k, 6]
            if X[k - 1, 6] <= d:
                continue
            for c in range(8):
                tmp[c] = X[k, c]
            m = k - 1
            while m >= lo and X[m, 6] > d:
                for c in range(8):
                    X[m + 1, c] = X[m, c]
                m -= 1
            for c in range(8):
                X[m + 1, c] = tmp[c]
        for k in range(lo, hi):
            is_new[k] = k == lo or (year_of_day[X[k, 6] - first_day] != year_of_day[X[k - 1, 6] - first_day])


@njit(cache=_CACHE)
def _segments(is_new):
    n_seg = 0
    for k in range(is_new.shape[0]):
        if is_new[k]:
            n_seg += 1
    seg = np.empty(n_seg + 1, np.int64)
    m = 0
    for k in range(is_new.shape[0]):
        if is_new[k]:
            seg[m] = k
            m += 1
    seg[n_seg] = is_new.shape[0]
    return seg


@njit(cache=_CACHE, nogil=True)
def _cascade(
    start,
    stop,
    seg,
    X,
    b_ded,
    b_rate,
    b_cap,
    b_refcont,
    g_covers,
    g_major,
    g_elig,
    g_ded,
    g_cap,
    g_nb,
    g_upper,
    g_rate,
    out,
):
    """Fill ``out[X[j, 7], :2 + L]`` for the cases of person-years ``start:stop``; rows ``seg[s]:seg[s+1]`` of X are one person-year in date order.

    out columns: basic, the annual layers in order, patient share (fen).
    """
    n_layers = g_covers.shape[1]
    # scratch per range of person-years, not per person
    base_cum = np.zeros(n_layers, np.int64)
    paid_cum = np.zeros(n_layers, np.int64)
    rem = np.zeros(4, np.int64)
    for s in range(start, stop):
        for layer in range(n_layers):
            base_cum[layer] = 0
            paid_cum[layer] = 0
        basic_paid = 0
        chain = 0
        for j in range(seg[s], seg[s + 1]):
            row = X[j, 7]
            code = X[j, 0]
            v = code & 0xFFFF
            a = (code >> 16) & 0xF
            b = (code >> 20) & 0xF
            h = (code >> 24) & 0xF
            referred = (code >> 28) & 1
            major = (code >> 29) & 1
            P = X[j, 1]
            # basic insurance: deductible (continued along a referral chain), rate, annual cap
            ded = b_ded[v, a, h]
            if referred != 0 and b_refcont[v] != 0:
                due = ded - chain
                if due < 0:
                    due = 0
            else:
                due = ded
                chain = 0
            borne = P if due > P else due
            chain += borne
            pay = _round_half_up(b_rate[v, a, h] * (P - borne))
            cap = b_cap[v, a]
            if cap >= 0:
                room = cap - basic_paid
                if room < 0:
                    room = 0
                if pay > room:
                    pay = room
            basic_paid += pay
            out[row, 0] = pay
            total_paid = pay
            rem[0] = P - pay
            rem[1] = X[j, 2]
            rem[2] = X[j, 3]
            rem[3] = X[j, 4]
            # annual layers: cumulative base, banded rates, rounded year-to-date, cap
            for layer in range(n_layers):
                pay = 0
                mask = g_covers[v, layer]
                if mask != 0 and (g_major[v, layer] == 0 or major != 0) and g_elig[v, layer, a, b] != 0:
                    base = 0
                    for p in range(4):
                        if mask & (1 << p):
                            base += rem[p]
                    before = base_cum[layer]
                    after = before + base
                    base_cum[layer] = after
                    pay = _round_half_up(
                        _banded(g_ded, g_nb, g_upper, g_rate, v, layer, a, b, after)
                    ) - _round_half_up(_banded(g_ded, g_nb, g_upper, g_rate, v, layer, a, b, before))
                    cap = g_cap[v, layer, a, b]
                    if cap >= 0:
                        room = cap - paid_cum[layer]
                        if room < 0:
                            room = 0
                        if pay > room:
                            pay = room
                    paid_cum[layer] += pay
                    left = pay
                    for p in range(4):
                        if mask & (1 << p) and left > 0:
                            used = rem[p] if rem[p] < left else left
                            rem[p] -= used
                            left -= used
                out[row, 1 + layer] = pay
                total_paid += pay
            out[row, n_layers + 1] = X[j, 5] - total_paid


@njit(cache=_CACHE, nogil=True)
def _columns(start, stop, out, cols):
    """Rows ``start:stop`` of the first ``cols.shape[0]`` columns of a row-major result, into ``cols``."""
    for i in range(start, stop):
        for c in range(cols.shape[0]):
            cols[c, i] = out[i, c]


@njit(cache=_CACHE)
def group_totals(order, seg, group, n_groups, money, oop_col, threshold):
    """Per group: cases, money sums, person-years with a case in it, and those over ``threshold``.

    ``money`` is int64 [m, n]; a person-year's out-of-pocket is the sum of
    ``money[oop_col]`` over its cases.
    """
    m = money.shape[0]
    n = money.shape[1]
    cases = np.zeros(n_groups, np.int64)
    sums = np.zeros((n_groups, m), np.int64)
    for i in range(n):
        g = group[i]
        cases[g] += 1
        for k in range(m):
            sums[g, k] += money[k, i]
    py = np.zeros(n_groups, np.int64)
    py_over = np.zeros(n_groups, np.int64)
    seen = np.full(n_groups, -1, np.int64)  # last person-year counted per group
    for s in range(seg.shape[0] - 1):
        oop = 0
        for j in range(seg[s], seg[s + 1]):
            oop += money[oop_col, order[j]]
        for j in range(seg[s], seg[s + 1]):
            g = group[order[j]]
            if seen[g] != s:
                seen[g] = s
                py[g] += 1
                if oop > threshold:
                    py_over[g] += 1
    return cases, sums, py, py_over


def run(
    tables: Tables,
    pcode: np.ndarray,
    n_persons: int,
    day: np.ndarray,
    year_of_day: np.ndarray,
    first_day: int,
    ins: np.ndarray,
    st: np.ndarray,
    lvl: np.ndarray,
    referral: np.ndarray,
    major: np.ndarray,
    P: np.ndarray,
    B: np.ndarray,
    S: np.ndarray,
    F: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """Run the cascade; int64 fen ``[2 + L, n]`` in input order: hifp, the L annual layers, patient share.

    Every day must be on or after the policy's first date (checked by the caller).
    """
    t = tables
    n = P.shape[0]
    X, pstart = sort_pack(pcode, n_persons, day, t.start_day, ins, st, lvl, referral, major, P, B, S, F, T)
    is_new = np.empty(n, np.bool_)
    run_ranges(_sort_days, n_persons, X, pstart, year_of_day, first_day, is_new)
    seg = _segments(is_new)
    del is_new, pstart
    width = 2 + t.g_covers.shape[1]
    out = np.empty((n, -(-width // 8) * 8), dtype=np.int64)  # padded to whole cache lines
    run_ranges(
        _cascade,
        seg.shape[0] - 1,
        seg,
        X,
        t.b_ded,
        t.b_rate,
        t.b_cap,
        t.b_refcont,
        t.g_covers,
        t.g_major,
        t.g_elig,
        t.g_ded,
        t.g_cap,
        t.g_nb,
        t.g_upper,
        t.g_rate,
        out,
    )
    del X
    columns = np.empty((2 + t.g_covers.shape[1], n), np.int64)
    run_ranges(_columns, n, out, columns)
    return columns
