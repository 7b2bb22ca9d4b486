"""The numba batch grouper: FORMAT.md "Grouping" over encoded arrays.

Importing this module imports numba; ``casemix`` imports it only when the
batch engine first runs.  Every table is an argument (no globals: numba
cannot cache functions that read large globals, and a cached function
would not see a changed global).  The kernel runs in parallel over cases
(``prange``); each case is grouped exactly as ``reference.group_case``
does, which the property tests check field by field.

On-disk caching
---------------
Compiled kernels are cached on disk (``cache=True``) so a new process
starts in well under a second instead of compiling for several seconds.
numba's cache can break when several processes compile or load it at
once (numba issues #4807 and #10128, e.g. under ``multiprocessing`` with
``fork``): set the environment variable ``CASEMIX_NUMBA_CACHE=0`` before
the first batch call to compile in memory only.
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit, prange

from casemix.drg.compile import (
    OP_CMP, OP_IN_DX, OP_IN_PDX, OP_IN_PPROC, OP_IN_PROC, OP_IN_SDX, OP_JUMP_FALSE,
    OP_JUMP_TRUE, OP_NOT, OP_PPROC_OR, OP_PROC_OR, OP_SEV, OP_SITES, OP_TRUE,
)


def cache_enabled() -> bool:
    """Whether kernels use numba's on-disk cache (``CASEMIX_NUMBA_CACHE`` not ``0``)."""
    return os.environ.get("CASEMIX_NUMBA_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


_CACHE = cache_enabled()


@njit(cache=_CACHE, inline="always")
def _in_list(bits, mask, code, lst):
    if code < 0:
        return False
    return (bits[code, lst >> 6] & mask[lst]) != 0


@njit(cache=_CACHE, inline="always")
def _cmp(op, x, v):
    # operator codes follow casemix.scheme.rules.OPS: < <= == != >= >
    if op == 0:
        return x < v
    if op == 1:
        return x <= v
    if op == 2:
        return x == v
    if op == 3:
        return x != v
    if op == 4:
        return x >= v
    return x > v


@njit(cache=_CACHE)
def _dx_code(q, has_pdx, p, s0, sdx_val):
    # q-th diagnosis of the case: the principal (when present), then the secondaries
    if has_pdx:
        return p if q == 0 else sdx_val[s0 + q - 1]
    return sdx_val[s0 + q]


@njit(cache=_CACHE)
def _sites(row, i, pdx, sdx_off, sdx_val, site_attr):
    # distinct attr values among all diagnoses; quadratic, but lists are short
    # and nothing is allocated per case
    p = pdx[i]
    has_pdx = p != -2
    s0 = sdx_off[i]
    m = sdx_off[i + 1] - s0 + (1 if has_pdx else 0)
    count = 0
    for q in range(m):
        c = _dx_code(q, has_pdx, p, s0, sdx_val)
        if c < 0:
            continue
        a = site_attr[row, c]
        if a < 0:
            continue
        seen = False
        for q2 in range(q):
            c2 = _dx_code(q2, has_pdx, p, s0, sdx_val)
            if c2 >= 0 and site_attr[row, c2] == a:
                seen = True
                break
        if not seen:
            count += 1
    return count


@njit(cache=_CACHE)
def _holds(r, i, prog, prog_val, rule_start, bits, mask, or_flag, site_attr,
           pdx, sdx_off, sdx_val, pproc, op_off, op_val, fields, present, levels):
    """Evaluate rule ``r`` on case ``i`` (a missing field makes a comparison false)."""
    k = rule_start[r]
    end = rule_start[r + 1]
    acc = False
    while k < end:
        op = prog[k, 0]
        if op == OP_JUMP_FALSE:
            if not acc:
                k = prog[k, 3]
                continue
        elif op == OP_JUMP_TRUE:
            if acc:
                k = prog[k, 3]
                continue
        elif op == OP_IN_PDX:
            acc = _in_list(bits, mask, pdx[i], prog[k, 1])
        elif op == OP_IN_PPROC:
            acc = _in_list(bits, mask, pproc[i], prog[k, 1])
        elif op == OP_CMP:
            f = prog[k, 1]
            acc = present[f, i] != 0 and _cmp(prog[k, 2], fields[f, i], prog_val[k])
        elif op == OP_IN_SDX or op == OP_IN_DX:
            lst = prog[k, 1]
            acc = op == OP_IN_DX and _in_list(bits, mask, pdx[i], lst)
            if not acc:
                for j in range(sdx_off[i], sdx_off[i + 1]):
                    if _in_list(bits, mask, sdx_val[j], lst):
                        acc = True
                        break
        elif op == OP_IN_PROC:
            lst = prog[k, 1]
            acc = _in_list(bits, mask, pproc[i], lst)
            if not acc:
                for j in range(op_off[i], op_off[i + 1]):
                    if _in_list(bits, mask, op_val[j], lst):
                        acc = True
                        break
        elif op == OP_PPROC_OR:
            c = pproc[i]
            acc = c >= 0 and or_flag[c] != 0
        elif op == OP_PROC_OR:
            c = pproc[i]
            acc = c >= 0 and or_flag[c] != 0
            if not acc:
                for j in range(op_off[i], op_off[i + 1]):
                    c = op_val[j]
                    if c >= 0 and or_flag[c] != 0:
                        acc = True
                        break
        elif op == OP_SITES:
            n_sites = _sites(prog[k, 1], i, pdx, sdx_off, sdx_val, site_attr)
            acc = _cmp(prog[k, 2], float(n_sites), prog_val[k])
        elif op == OP_SEV:
            acc = (levels & prog[k, 1]) != 0
        elif op == OP_NOT:
            acc = not acc
        elif op == OP_TRUE:
            acc = True
        k += 1
    return acc


@njit(parallel=True, cache=_CACHE)
def group_kernel(pdx, sdx_off, sdx_val, pproc, op_off, op_val, fields, present, malformed,
                 bits, mask, or_flag, cc_level, cc_table, pdx_table, never_table, site_attr,
                 prog, prog_val, rule_start, mdc_rule, mdc_adrg_start, mdc_qy, adrg_rule,
                 adrg_medical, adrg_out, out_drg_start, out_has_drgs, out_self_drg, drg_rule,
                 drg_out, check_field, check_when, check_rule, check_reason, malformed_reason,
                 fallthrough, ambiguous, ungroupable_drg, reason_no_mdc, reason_no_adrg,
                 reason_no_drg, res_mdc, res_adrg, res_drg, res_sev, res_status, res_reason):
    """Group every case; results go to the six ``res_*`` arrays.

    ``res_mdc``/``res_adrg``/``res_reason`` index the decode tables of
    :class:`~casemix.drg.compile.CompiledScheme` (0 = empty), ``res_drg``
    indexes ``drg_codes``, ``res_sev`` is 0 (invalid) / 1 none / 2 CC /
    3 MCC and ``res_status`` 0 grouped / 1 ungroupable / 2 invalid.
    """
    n = pdx.shape[0]
    n_mdc = mdc_rule.shape[0]
    n_checks = check_field.shape[0]
    for i in prange(n):
        # 1. validity: the first failing check decides
        failed = -1
        for c in range(n_checks):
            w = check_when[c]
            if w >= 0 and not _holds(w, i, prog, prog_val, rule_start, bits, mask, or_flag,
                                     site_attr, pdx, sdx_off, sdx_val, pproc, op_off, op_val,
                                     fields, present, 0):
                continue
            f = check_field[c]
            if f >= 0:
                if malformed_reason >= 0 and (malformed[i] >> f) & 1:
                    failed = malformed_reason
                    break
                if f < 6:
                    here = present[f, i] != 0
                elif f == 6:
                    here = pdx[i] != -2 or sdx_off[i + 1] > sdx_off[i]
                else:
                    here = pproc[i] != -2 or op_off[i + 1] > op_off[i]
                if not here:
                    failed = check_reason[c]
                    break
            r = check_rule[c]
            if r >= 0 and not _holds(r, i, prog, prog_val, rule_start, bits, mask, or_flag,
                                     site_attr, pdx, sdx_off, sdx_val, pproc, op_off, op_val,
                                     fields, present, 0):
                failed = check_reason[c]
                break
        if failed >= 0:
            res_mdc[i] = 0
            res_adrg[i] = 0
            res_drg[i] = ungroupable_drg
            res_sev[i] = 0
            res_status[i] = 2
            res_reason[i] = failed
            continue

        # 4. severity: non-excluded levels of the secondary diagnoses
        p = pdx[i]
        own = pdx_table[p] if p >= 0 else -1
        levels = 0
        for j in range(sdx_off[i], sdx_off[i + 1]):
            c = sdx_val[j]
            if c < 0:
                continue
            lv = cc_level[c]
            if lv == 0:
                continue
            t = cc_table[c]
            if own >= 0 and t == own and t != never_table:
                continue
            levels |= lv
        res_sev[i] = 3 if (levels & 2) != 0 else (2 if (levels & 1) != 0 else 1)

        # 2.-6. MDC, ADRG (with fall-through and QY), DRG
        mdc_i = 0
        adrg_i = 0
        drg_i = ungroupable_drg
        status = 1
        reason = -1
        entered = False
        decided = False
        for m in range(n_mdc):
            if not _holds(mdc_rule[m], i, prog, prog_val, rule_start, bits, mask, or_flag,
                          site_attr, pdx, sdx_off, sdx_val, pproc, op_off, op_val, fields,
                          present, levels):
                continue
            entered = True
            found = -1
            for a in range(mdc_adrg_start[m], mdc_adrg_start[m + 1]):
                if _holds(adrg_rule[a], i, prog, prog_val, rule_start, bits, mask, or_flag,
                          site_attr, pdx, sdx_off, sdx_val, pproc, op_off, op_val, fields,
                          present, levels):
                    found = a
                    break
            if found < 0:
                if fallthrough:
                    continue
                reason = reason_no_adrg
                decided = True
                break
            o = adrg_out[found]
            pp = pproc[i]
            if ambiguous and adrg_medical[found] != 0 and pp >= 0 and or_flag[pp] != 0:
                o = mdc_qy[m]
            decided = True
            if out_has_drgs[o] == 0 and out_self_drg[o] >= 0:
                mdc_i, adrg_i, drg_i, status, reason = m + 1, o, out_self_drg[o], 0, 0
                break
            d_found = -1
            for d in range(out_drg_start[o], out_drg_start[o + 1]):
                if _holds(drg_rule[d], i, prog, prog_val, rule_start, bits, mask, or_flag,
                          site_attr, pdx, sdx_off, sdx_val, pproc, op_off, op_val, fields,
                          present, levels):
                    d_found = d
                    break
            if d_found < 0:
                reason = reason_no_drg
            else:
                mdc_i, adrg_i, drg_i, status, reason = m + 1, o, drg_out[d_found], 0, 0
            break
        if not decided:
            reason = reason_no_adrg if entered else reason_no_mdc
        res_mdc[i] = mdc_i
        res_adrg[i] = adrg_i
        res_drg[i] = drg_i
        res_status[i] = status
        res_reason[i] = reason


def run(enc, compiled) -> tuple[np.ndarray, ...]:
    """Group encoded cases (:class:`casemix.encode.EncodedCases`) with a compiled scheme.

    Returns ``(mdc, adrg, drg, severity, status, reason)`` integer arrays.
    """
    n = enc.n
    out = (np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.int32),
           np.empty(n, np.int8), np.empty(n, np.int8), np.empty(n, np.int32))
    group_kernel(enc.pdx, enc.sdx_off, enc.sdx_val, enc.pproc, enc.oproc_off, enc.oproc_val,
                 enc.fields, enc.present, enc.malformed, *compiled.kernel_args(), *out)
    return out
