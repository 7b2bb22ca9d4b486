"""numba loops of the generator, over ranges of cases on a few threads.

Random numbers are counter-based: draw ``k`` of case ``i`` is a hash
(SplitMix64 finaliser) of the seed key, ``i`` and ``k``.  So each case's
draws depend on nothing else and the result is the same whatever the
number of threads or how the rows are cut.  The loops are plain
``njit(nogil=True)`` kernels over a row range, run on threads by
:func:`casemix._threads.run_ranges` (``parallel=True`` took about three
times as long to compile, and the demo's first run waited for it).

- :func:`place`: hospital, DRG and the readmission flag of each case;
- :func:`attributes`: who, cost, LOS, discharge mode, day, data fault;
- :func:`code_counts` and :func:`fill_codes`: the codes, in two passes
  (list lengths, then the flat lists).

Per-case outputs are int32/int8 (codes, counts, days): half the memory of
int64 at tens of millions of cases, and every value fits.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from casemix._threads import run_ranges
from casemix.encode_kernel import cache_enabled

_CACHE = cache_enabled()

_G = np.uint64(0x9E3779B97F4A7C15)
_H = np.uint64(0xD1B54A32D192ED03)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TWO53 = 1.0 / 9007199254740992.0
_TWO_PI = 2.0 * np.pi

# draw numbers (k) of the per-case streams
_K_HOSP, _K_DRG, _K_READMIT = 0, 1, 2
_K_SEX, _K_AGE, _K_DAYS, _K_WEIGHT, _K_EMP, _K_REPEAT = 10, 12, 14, 15, 17, 18
_K_EPS, _K_TAIL, _K_TAILF, _K_MODE, _K_DEATH, _K_DAY, _K_FAULT, _K_FKIND = (20, 22, 23, 27, 28, 29, 30, 31)
_K_PDX, _K_PPROC, _K_X0, _K_X1, _K_NSDX, _K_NOPROC = 40, 41, 42, 43, 44, 45
_K_SDX, _K_OPROC = 100, 5000


@njit(cache=_CACHE, inline="always")
def _u(key, i, k):
    """Uniform [0, 1) for draw ``k`` of case ``i``."""
    x = key + np.uint64(i) * _G + np.uint64(k) * _H
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    x = x ^ (x >> _S31)
    return np.float64(x >> _S11) * _TWO53


@njit(cache=_CACHE, inline="always")
def _normal(key, i, k):
    """Standard normal (Box–Muller) from draws ``k`` and ``k + 1``."""
    return np.sqrt(-2.0 * np.log(1.0 - _u(key, i, k))) * np.cos(_TWO_PI * _u(key, i, k + 1))


@njit(cache=_CACHE, inline="always")
def _poisson(lam, u):
    """Poisson(lam) by inversion of one uniform (small lam)."""
    k = 0
    p = np.exp(-lam)
    s = p
    while u > s and k < 200:
        k += 1
        p *= lam / k
        s += p
    return k


@njit(cache=_CACHE, inline="always")
def _search(cdf, lo, hi, x):
    """First j in [lo, hi) with cdf[j] > x (hi − 1 if none)."""
    last = hi - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if cdf[mid] > x:
            hi = mid
        else:
            lo = mid + 1
    return min(lo, last)


@njit(cache=_CACHE, inline="always")
def _pick(off, val, g, key, i, k):
    lo, hi = off[g], off[g + 1]
    if hi == lo:
        return -1
    return val[lo + int(_u(key, i, k) * (hi - lo))]


@njit(cache=_CACHE, nogil=True)
def _place_rows(
    start,
    stop,
    key,
    h_cdf,
    drg_cdf,
    n_drg,
    readmission_share,
    hosp,
    drg,
    readmit,
):
    n_hosp = h_cdf.size
    for i in range(start, stop):
        h = _search(h_cdf, 0, n_hosp, _u(key, i, _K_HOSP))
        hosp[i] = h
        drg[i] = _search(drg_cdf, h * n_drg, (h + 1) * n_drg, _u(key, i, _K_DRG)) - h * n_drg
        readmit[i] = _u(key, i, _K_READMIT) < readmission_share


def place(
    key,
    n,
    h_cdf,
    drg_cdf,
    n_drg,
    readmission_share,
):
    """Hospital (by size), DRG (by the hospital's case mix, ``drg_cdf`` H × G flat) and readmission flag."""
    hosp = np.empty(n, np.int32)
    drg = np.empty(n, np.int32)
    readmit = np.empty(n, np.bool_)
    run_ranges(
        _place_rows,
        n,
        key,
        h_cdf,
        drg_cdf,
        n_drg,
        readmission_share,
        hosp,
        drg,
        readmit,
    )
    return hosp, drg, readmit


@njit(cache=_CACHE, nogil=True)
def _attributes_rows(
    start,
    stop,
    key,
    hosp,
    drg,
    readmit,
    adrg_of,
    a_sex,
    a_newborn,
    a_obstetric,
    w_lo,
    w_hi,
    rw,
    log_mean_los,
    p_death,
    h_level,
    h_cost,
    log_h_time,
    level_coef,
    employee_share,
    base_rate,
    cost_sigma,
    tail_share,
    tail_mu,
    tail_sigma,
    los_sigma,
    los_cost_corr,
    modes,
    mode_cdf,
    day_cdf,
    repeat_share,
    invalid_share,
    sex,
    age,
    age_days,
    weight,
    employee,
    repeat,
    cost,
    los,
    discharge,
    doy,
    fault,
):
    rho2 = np.sqrt(1.0 - los_cost_corr * los_cost_corr)
    for i in range(start, stop):
        g = drg[i]
        a = adrg_of[g]
        h = hosp[i]
        lv = h_level[h]
        nb = a_newborn[a]
        s = a_sex[a]
        if s == 0:
            s = 1 + int(_u(key, i, _K_SEX) * 2.0)
        if a_obstetric[a]:
            s = 2
            age[i] = min(max(np.round(29.0 + 5.0 * _normal(key, i, _K_AGE)), 16.0), 48.0)
        else:
            age[i] = min(max(np.round(58.0 + 18.0 * _normal(key, i, _K_AGE)), 1.0), 100.0)
        sex[i] = s
        age_days[i] = np.nan
        weight[i] = np.nan
        if nb == 1:
            age[i] = 0.0
            age_days[i] = np.floor(_u(key, i, _K_DAYS) * 29.0)
            lo, hi = w_lo[a], w_hi[a]
            if np.isnan(lo) and np.isnan(hi):
                weight[i] = min(
                    max(np.round((3200.0 + 500.0 * _normal(key, i, _K_WEIGHT)) / 10.0) * 10.0, 600.0), 5000.0
                )
            else:
                lo = 600.0 if np.isnan(lo) else lo
                hi = 5000.0 if np.isnan(hi) else hi
                weight[i] = np.floor(lo + _u(key, i, _K_WEIGHT) * max(hi - lo, 1.0))
        elif nb == 2:
            age[i] = 0.0
            age_days[i] = 29.0 + np.floor(_u(key, i, _K_DAYS) * 336.0)
        employee[i] = _u(key, i, _K_EMP) < employee_share[lv]
        repeat[i] = (
            (not readmit[i]) and nb == 0 and not a_obstetric[a] and _u(key, i, _K_REPEAT) < repeat_share
        )

        # one Box–Muller pair: the cost draw and the LOS draw's own part
        r = np.sqrt(-2.0 * np.log(1.0 - _u(key, i, _K_EPS)))
        angle = _TWO_PI * _u(key, i, _K_EPS + 1)
        eps = r * np.cos(angle)
        log_tail = 0.0
        if _u(key, i, _K_TAIL) < tail_share:
            log_tail = tail_mu + tail_sigma * _normal(key, i, _K_TAILF)
        mu = base_rate * rw[g] * level_coef[lv] * h_cost[h]
        cost[i] = mu * np.exp(cost_sigma * eps - cost_sigma * cost_sigma / 2.0 + log_tail)
        z = los_cost_corr * eps + rho2 * r * np.sin(angle)
        d = np.exp(
            log_mean_los[g] + log_h_time[h] - los_sigma * los_sigma / 2.0 + los_sigma * z + 0.6 * log_tail
        )
        los[i] = int(min(max(np.round(d), 1.0), 365.0))
        if _u(key, i, _K_DEATH) < p_death[g]:
            discharge[i] = 5.0
        else:
            discharge[i] = modes[_search(mode_cdf, 0, mode_cdf.size, _u(key, i, _K_MODE))]
        doy[i] = _search(day_cdf, 0, day_cdf.size, _u(key, i, _K_DAY))
        fault[i] = -1
        if _u(key, i, _K_FAULT) < invalid_share:
            fault[i] = int(_u(key, i, _K_FKIND) * 3.0)


def attributes(key, hosp, *tables):
    """Per case: sex, age, age_days, birth weight, employee, repeat flag, cost (yuan), LOS,
    discharge mode, day of year, data fault kind (−1 none; 0 sex, 1 age, 2 diagnoses).

    ``tables``: the further inputs of :func:`_attributes_rows`, in its order.
    """
    n = hosp.size
    sex = np.empty(n, np.int8)
    age = np.empty(n, np.float64)
    age_days = np.empty(n, np.float64)
    weight = np.empty(n, np.float64)
    employee = np.empty(n, np.bool_)
    repeat = np.empty(n, np.bool_)
    cost = np.empty(n, np.float64)
    los = np.empty(n, np.int32)
    discharge = np.empty(n, np.float64)
    doy = np.empty(n, np.int32)
    fault = np.empty(n, np.int8)
    run_ranges(
        _attributes_rows,
        n,
        key,
        hosp,
        *tables,
        sex,
        age,
        age_days,
        weight,
        employee,
        repeat,
        cost,
        los,
        discharge,
        doy,
        fault,
    )
    return sex, age, age_days, weight, employee, repeat, cost, los, discharge, doy, fault


@njit(cache=_CACHE, nogil=True)
def _code_counts_rows(
    start,
    stop,
    key,
    a,
    sev,
    pdx_off,
    pdx_val,
    pproc_off,
    pproc_val,
    x0_off,
    x0_val,
    x1_off,
    x1_val,
    site_off,
    mean_sdx,
    mean_oproc,
    pdx,
    pproc,
    x0,
    x1,
    n_sdx,
    n_oproc,
):
    for i in range(start, stop):
        g = a[i]
        pdx[i] = _pick(pdx_off, pdx_val, g, key, i, _K_PDX)
        pproc[i] = _pick(pproc_off, pproc_val, g, key, i, _K_PPROC)
        x0[i] = _pick(x0_off, x0_val, g, key, i, _K_X0)
        x1[i] = _pick(x1_off, x1_val, g, key, i, _K_X1)
        need = (1 if sev[i] == 1 or sev[i] == 2 else 0) + (1 if site_off[g + 1] > site_off[g] else 0)
        n_sdx[i] = max(_poisson(mean_sdx, _u(key, i, _K_NSDX)), need)
        extra = (1 if x0[i] >= 0 else 0) + (1 if x1[i] >= 0 else 0)
        n_oproc[i] = extra + (_poisson(mean_oproc, _u(key, i, _K_NOPROC)) if pproc[i] >= 0 else 0)


def code_counts(key, a, sev, *tables):
    """Principal diagnosis, principal and two required procedures, list lengths per case.

    ``tables``: the further inputs of :func:`_code_counts_rows`, in its order.
    """
    n = a.size
    pdx = np.empty(n, np.int32)
    pproc = np.empty(n, np.int32)
    x0 = np.empty(n, np.int32)
    x1 = np.empty(n, np.int32)
    n_sdx = np.empty(n, np.int32)
    n_oproc = np.empty(n, np.int32)
    run_ranges(_code_counts_rows, n, key, a, sev, *tables, pdx, pproc, x0, x1, n_sdx, n_oproc)
    return pdx, pproc, x0, x1, n_sdx, n_oproc


@njit(cache=_CACHE, inline="always")
def _draw(pool, key, i, k):
    return pool[int(_u(key, i, k) * pool.size)]


@njit(cache=_CACHE, nogil=True)
def _fill_codes_rows(
    start,
    stop,
    key,
    a,
    sev,
    pdx,
    x0,
    x1,
    n_sdx,
    n_oproc,
    site_off,
    site_val,
    site_attr,
    cc_pool,
    mcc_pool,
    plain_pool,
    cc_mix,
    cc_table,
    pdx_table,
    non_or_pool,
    retries,
    any_cc_share,
    sdx_off,
    oproc_off,
    sdx,
    oproc,
):
    for i in range(start, stop):
        g, s, cnt = a[i], sev[i], n_sdx[i]
        p = sdx_off[i]
        tp = pdx_table[pdx[i]] if pdx[i] >= 0 else -2
        j = 0
        if cnt > 0 and (s == 1 or s == 2):
            pool = mcc_pool if s == 2 else cc_pool
            code = _draw(pool, key, i, _K_SDX)
            t = 0
            while t < retries and cc_table[code] >= 0 and cc_table[code] == tp:
                t += 1
                code = _draw(pool, key, i, _K_SDX + t)
            sdx[p] = code
            j += 1
        if cnt > j and site_off[g + 1] > site_off[g]:
            own = site_attr[pdx[i]] if pdx[i] >= 0 else -1
            k0 = _K_SDX + 16 * j
            code = _pick(site_off, site_val, g, key, i, k0)
            t = 0
            while t < retries and site_attr[code] == own:
                t += 1
                code = _pick(site_off, site_val, g, key, i, k0 + t)
            sdx[p + j] = code
            j += 1
        while j < cnt:
            k0 = _K_SDX + 16 * j
            if s == 3 and _u(key, i, k0 + 9) < any_cc_share:
                sdx[p + j] = _draw(cc_mix, key, i, k0)
            else:
                sdx[p + j] = _draw(plain_pool, key, i, k0)
            j += 1
        q = oproc_off[i]
        k = 0
        if x0[i] >= 0:
            oproc[q] = x0[i]
            k += 1
        if x1[i] >= 0:
            oproc[q + k] = x1[i]
            k += 1
        while k < n_oproc[i]:
            oproc[q + k] = _draw(non_or_pool, key, i, _K_OPROC + k)
            k += 1


def fill_codes(key, a, sev, pdx, x0, x1, n_sdx, n_oproc, *tables):
    """Flat secondary diagnoses and other procedures.

    Secondary diagnoses: first the CC or MCC the DRG's severity needs, not
    excluded by the principal diagnosis (redrawn up to ``retries`` times);
    then a second injury site where the MDC counts sites; then plain codes
    (CC/MCC at ``any_cc_share`` for DRGs not split by severity).  Other
    procedures: the ADRG's further required ones, then non-OR procedures.

    ``tables``: the further inputs of :func:`_fill_codes_rows`, in its order.
    """
    n = a.size
    sdx_off = np.zeros(n + 1, np.int64)
    oproc_off = np.zeros(n + 1, np.int64)
    sdx_off[1:] = np.cumsum(n_sdx)
    oproc_off[1:] = np.cumsum(n_oproc)
    sdx = np.empty(sdx_off[n], np.int32)
    oproc = np.empty(oproc_off[n], np.int32)
    run_ranges(
        _fill_codes_rows, n, key, a, sev, pdx, x0, x1, n_sdx, n_oproc, *tables, sdx_off, oproc_off, sdx, oproc
    )
    return sdx, oproc
