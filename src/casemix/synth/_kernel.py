"""numba loops that draw each case's codes (variable-length lists, redraws on exclusion).

Two passes: :func:`code_counts` draws the principal codes and how many
secondary diagnoses and other procedures each case has; :func:`fill_codes`
fills the flat lists.  Both seed numba's own generator, so the codes are a
function of the seed alone.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from casemix.drg.kernel import cache_enabled

_CACHE = cache_enabled()


@njit(cache=_CACHE, inline="always")
def _pick(off, val, g):
    lo, hi = off[g], off[g + 1]
    if hi == lo:
        return -1
    return val[lo + int(np.random.random() * (hi - lo))]


@njit(cache=_CACHE, inline="always")
def _draw(pool):
    return pool[int(np.random.random() * pool.size)]


@njit(cache=_CACHE)
def code_counts(seed, a, sev, pdx_off, pdx_val, pproc_off, pproc_val, x0_off, x0_val, x1_off, x1_val,
                site_off, mean_sdx, mean_oproc):
    """Principal diagnosis, principal and two required procedures, list lengths per case."""
    np.random.seed(seed)
    n = a.size
    pdx = np.empty(n, np.int64)
    pproc = np.empty(n, np.int64)
    x0 = np.empty(n, np.int64)
    x1 = np.empty(n, np.int64)
    n_sdx = np.empty(n, np.int64)
    n_oproc = np.empty(n, np.int64)
    for i in range(n):
        g = a[i]
        pdx[i] = _pick(pdx_off, pdx_val, g)
        pproc[i] = _pick(pproc_off, pproc_val, g)
        x0[i] = _pick(x0_off, x0_val, g)
        x1[i] = _pick(x1_off, x1_val, g)
        need = (1 if sev[i] == 1 or sev[i] == 2 else 0) + (1 if site_off[g + 1] > site_off[g] else 0)
        n_sdx[i] = max(np.random.poisson(mean_sdx), need)
        extra = (1 if x0[i] >= 0 else 0) + (1 if x1[i] >= 0 else 0)
        n_oproc[i] = extra + (np.random.poisson(mean_oproc) if pproc[i] >= 0 else 0)
    return pdx, pproc, x0, x1, n_sdx, n_oproc


@njit(cache=_CACHE)
def fill_codes(seed, a, sev, pdx, x0, x1, n_sdx, n_oproc, site_off, site_val, site_attr,
               cc_pool, mcc_pool, plain_pool, cc_mix, cc_table, pdx_table, non_or_pool, retries, any_cc_share):
    """Flat secondary diagnoses and other procedures.

    Secondary diagnoses: first the CC or MCC the DRG's severity needs, not
    excluded by the principal diagnosis (redrawn up to ``retries`` times);
    then a second injury site where the MDC counts sites; then plain codes
    (CC/MCC at ``any_cc_share`` for DRGs not split by severity).  Other
    procedures: the ADRG's further required ones, then non-OR procedures.
    """
    np.random.seed(seed)
    n = a.size
    sdx = np.empty(n_sdx.sum(), np.int64)
    oproc = np.empty(n_oproc.sum(), np.int64)
    p = 0
    q = 0
    for i in range(n):
        g, s, cnt = a[i], sev[i], n_sdx[i]
        tp = pdx_table[pdx[i]] if pdx[i] >= 0 else -2
        j = 0
        if cnt > 0 and (s == 1 or s == 2):
            pool = mcc_pool if s == 2 else cc_pool
            code = _draw(pool)
            t = 0
            while t < retries and cc_table[code] >= 0 and cc_table[code] == tp:
                code = _draw(pool)
                t += 1
            sdx[p] = code
            p += 1
            j += 1
        if cnt > j and site_off[g + 1] > site_off[g]:
            own = site_attr[pdx[i]] if pdx[i] >= 0 else -1
            code = _pick(site_off, site_val, g)
            t = 0
            while t < retries and site_attr[code] == own:
                code = _pick(site_off, site_val, g)
                t += 1
            sdx[p] = code
            p += 1
            j += 1
        while j < cnt:
            if s == 3 and np.random.random() < any_cc_share:
                sdx[p] = _draw(cc_mix)
            else:
                sdx[p] = _draw(plain_pool)
            p += 1
            j += 1
        k = 0
        if x0[i] >= 0:
            oproc[q] = x0[i]
            q += 1
            k += 1
        if x1[i] >= 0:
            oproc[q] = x1[i]
            q += 1
            k += 1
        while k < n_oproc[i]:
            oproc[q] = _draw(non_or_pool)
            q += 1
            k += 1
    return sdx, oproc
