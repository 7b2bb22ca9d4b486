"""The numba batch grouper: FORMAT.md "Grouping" over encoded arrays.

Importing this module imports numba; ``casemix`` imports it only when the
batch engine first runs.  Every table is an argument (no globals: numba
cannot cache functions that read large globals, and a cached function
would not see a changed global).  The kernel is single-threaded and
releases the GIL; :func:`run` calls it on a few threads over row ranges
(:mod:`casemix._threads`: ``parallel=True`` compiled three times slower,
issue 16).  Each case is grouped exactly as ``reference.group_case``
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

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros  # one tzcnt instruction

from casemix._first_run import listen
from casemix._threads import read_only, run_ranges
from casemix.drg.compile import (
    OP_CMP,
    OP_IN_DX,
    OP_IN_PDX,
    OP_IN_PPROC,
    OP_IN_PROC,
    OP_IN_SDX,
    OP_JUMP_FALSE,
    OP_JUMP_TRUE,
    OP_MALFORMED,
    OP_NOT,
    OP_PPROC_OR,
    OP_PRESENT,
    OP_PROC_OR,
    OP_SEV,
    OP_SITES,
    OP_TRUE,
)

# encode_views lives beside the encoder (no encode → kernel import); re-exported here,
# where the cache test and older callers look for it
from casemix.encode_kernel import (  # noqa: F401
    cache_enabled,
    encode_views,
)

_CACHE = cache_enabled()
listen()  # the first-run notice when numba compiles a kernel


@njit(cache=_CACHE, inline="always")
def _in_list(info, rows, mask, code, lst):
    # list membership rows are shared by every code with the same lists
    if code < 0:
        return False
    return (rows[info[code, 0], lst >> 6] & mask[lst]) != 0


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


@njit(cache=_CACHE, inline="always")
def _dx_code(q, has_pdx, p, s0, sdx_val):
    # q-th diagnosis of the case: the principal (when present), then the secondaries
    if has_pdx:
        return p if q == 0 else sdx_val[s0 + q - 1]
    return sdx_val[s0 + q]


@njit(cache=_CACHE, inline="always")
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
def _holds(
    r,
    i,
    prog,
    prog_val,
    rule_start,
    info,
    rows,
    mask,
    or_flag,
    site_attr,
    pdx,
    sdx_off,
    sdx_val,
    pproc,
    op_off,
    op_val,
    fields,
    present,
    malformed,
    levels,
):
    """Evaluate rule ``r`` on case ``i`` (a missing field makes a comparison false).

    Compiled apart from ``group_kernel``, its single caller: inlined there
    (numba ``inline="always"``) the kernel's compile took about a fifth
    longer (issue 16, ``benchmarks/bench_compile.py``).  It calls no other
    compiled function (``_sites`` is inlined here): numba increfs every array
    argument on entry, and only in a function without calls does LLVM's
    reference-count pruning remove those atomic increments again, so a call
    costs no atomic operation on arrays both threads share.
    """
    k = rule_start[r]
    end = rule_start[r + 1]
    acc = False
    while k < end:
        op = prog[k, 0]
        if op == OP_IN_PDX:
            acc = _in_list(info, rows, mask, pdx[i], prog[k, 1])
        elif op == OP_JUMP_FALSE:
            if not acc:
                k = prog[k, 3]
            else:
                k += 1
            continue
        elif op == OP_JUMP_TRUE:
            if acc:
                k = prog[k, 3]
            else:
                k += 1
            continue
        elif op == OP_CMP:
            f = prog[k, 1]
            acc = present[f, i] != 0 and _cmp(prog[k, 2], fields[f, i], prog_val[k])
        elif op == OP_PRESENT:
            f = prog[k, 1]
            if f < 6:
                acc = present[f, i] != 0
            elif f == 6:
                acc = pdx[i] != -2 or sdx_off[i + 1] > sdx_off[i]
            else:
                acc = pproc[i] != -2 or op_off[i + 1] > op_off[i]
        elif op == OP_IN_PPROC:
            acc = _in_list(info, rows, mask, pproc[i], prog[k, 1])
        elif op == OP_SEV:
            acc = (levels & prog[k, 1]) != 0
        elif op == OP_TRUE:
            acc = True
        elif op == OP_IN_SDX or op == OP_IN_DX:  # noqa: SIM109 — two integer compares in the jitted loop
            lst = prog[k, 1]
            acc = op == OP_IN_DX and _in_list(info, rows, mask, pdx[i], lst)
            if not acc:
                for j in range(sdx_off[i], sdx_off[i + 1]):
                    if _in_list(info, rows, mask, sdx_val[j], lst):
                        acc = True
                        break
        elif op == OP_IN_PROC:
            lst = prog[k, 1]
            acc = _in_list(info, rows, mask, pproc[i], lst)
            if not acc:
                for j in range(op_off[i], op_off[i + 1]):
                    if _in_list(info, rows, mask, op_val[j], lst):
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
        elif op == OP_MALFORMED:
            acc = ((malformed[i] >> prog[k, 1]) & 1) != 0
        elif op == OP_NOT:
            acc = not acc
        if prog[k, 3] != 0:  # a negated predicate
            acc = not acc
        k += 1
    return acc


# phases of the per-case state machine
_VALIDITY, _MDC, _ADRG, _DRG = 0, 1, 2, 3

#: cases per block: the per-case facts a block needs first (validity key,
#: severity, gate rows) are found by simple loops over the block, which
#: overlap their table look-ups instead of waiting for one after the other
BLOCK = 1024


@njit(cache=_CACHE, inline="always")
def _cmp_bits(op):
    # the outcomes r = (x < v) | (x == v) << 1 | (x > v) << 2 for which _cmp(op, x, v)
    # holds, as bit r; r = 0 when x or v is NaN, where only != holds
    if op == 0:
        return 0b00010
    if op == 1:
        return 0b00110
    if op == 2:
        return 0b00100
    if op == 3:
        return 0b10011
    if op == 4:
        return 0b10100
    return 0b10000


@njit(cache=_CACHE, inline="always")
def _validity_keys(
    i0, nb, keys, pdx, sdx_off, pproc, op_off, fields, present, atom_kind, atom_field, atom_op, atom_value
):
    """Truth-table keys of cases ``i0:i0 + nb``: bit ``t`` says atom ``t`` holds.

    One branch-free loop over the block per atom (the compiler vectorises
    them) instead of a loop over the atoms per case.
    """
    for q in range(nb):
        keys[q] = 0
    for t in range(atom_kind.shape[0]):
        f = atom_field[t]
        if atom_kind[t] == 0:
            bits = _cmp_bits(atom_op[t])
            v = atom_value[t]
            for q in range(nb):
                x = fields[f, i0 + q]
                r = np.int32(x < v) | np.int32(x == v) << 1 | np.int32(x > v) << 2
                keys[q] |= (np.int32(present[f, i0 + q] != 0) & (bits >> r)) << t
        elif f < 6:
            for q in range(nb):
                keys[q] |= np.int32(present[f, i0 + q] != 0) << t
        elif f == 6:
            for q in range(nb):
                i = i0 + q
                keys[q] |= np.int32((pdx[i] != -2) | (sdx_off[i + 1] > sdx_off[i])) << t
        else:
            for q in range(nb):
                i = i0 + q
                keys[q] |= np.int32((pproc[i] != -2) | (op_off[i + 1] > op_off[i])) << t


@njit(nogil=True, cache=_CACHE)
def group_kernel(
    start,
    stop,
    pdx,
    sdx_off,
    sdx_val,
    pproc,
    op_off,
    op_val,
    fields,
    present,
    malformed,
    info,
    rows,
    mask,
    or_flag,
    pdx_table,
    never_table,
    site_attr,
    prog,
    prog_val,
    rule_start,
    seq,
    n_fail,
    n_fail_plain,
    n_mdc,
    n_adrg,
    gate_pdx_free,
    gate_pproc_free,
    gate_pdx,
    gate_pproc,
    gate_exact,
    atom_kind,
    atom_field,
    atom_op,
    atom_value,
    validity_table,
    mdc_adrg_start,
    mdc_qy,
    adrg_medical,
    adrg_out,
    out_drg_start,
    drg_out,
    drg_by_levels,
    fail_reason,
    fallthrough,
    ambiguous,
    ungroupable_drg,
    reason_no_mdc,
    reason_no_adrg,
    reason_no_drg,
    res_mdc,
    res_adrg,
    res_drg,
    res_sev,
    res_status,
    res_reason,
):
    """Group cases ``start:stop`` (``start`` a multiple of ``BLOCK``); results go to the six ``res_*`` arrays.

    Single-threaded and without the GIL: :func:`run` calls it on a few
    threads, one row range each (:func:`casemix._threads.run_ranges`).

    ``seq`` holds the rule numbers of the MDCs, ADRGs, failure rules and
    DRGs, in that order (``n_mdc``, ``n_adrg``, ``n_fail`` + ``n_fail_plain``
    long, then the DRGs); the ``n_fail_plain`` failure rules are the ones a
    case with no malformed field can fail, tried for such cases instead.

    MDC and ADRG rules are skipped a word of 64 at a time when a gate
    (``pdx in L``, ``pproc in L`` / ``pproc_or``) fails: the candidates are
    ``(gate_pdx_free | gate_pdx[info[pdx, 1]]) & (gate_pproc_free |
    gate_pproc[info[pproc, 2]])``, and their rules in ``seq`` are what is
    left once the gates hold; a candidate in ``gate_exact`` is nothing but
    its gates and holds at once.  The DRG of an ADRG output ``o`` whose rows
    read only the severity is ``drg_by_levels[o, levels]`` (-1: none, -2:
    interpret the rows).

    Per code id, ``info`` holds four integers: the row of its list
    memberships in ``rows``, its rows in ``gate_pdx`` and ``gate_pproc``,
    and its CC level and exclusion table (``level | (table + 1) << 2``).
    Codes share rows (1,815 distinct list rows for 47k codes in CHS-DRG
    1.1), and ``info`` and ``pdx_table`` are int16 when their values fit,
    so the tables a case touches stay in the CPU cache.

    Cases go by blocks of ``BLOCK``: first the facts every case needs
    (validity key, severity levels, gate rows) for the whole block, then
    each case runs a small state machine (validity → MDC → ADRG → DRG) whose
    every step is "first rule of ``seq[lo:hi]`` that holds", so ``_holds``
    is called at one place only (compiled apart, see its docstring: its
    array arguments cost no reference-count updates).

    ``res_mdc``/``res_adrg``/``res_reason`` index the decode tables of
    :class:`~casemix.drg.compile.CompiledScheme` (0 = empty), ``res_drg``
    indexes ``drg_codes``, ``res_sev`` is 0 (invalid) / 1 none / 2 CC /
    3 MCC and ``res_status`` 0 grouped / 1 ungroupable / 2 invalid.
    """
    mdc_base = 0
    adrg_base = n_mdc
    fail_base = n_mdc + n_adrg
    drg_base = fail_base + n_fail + n_fail_plain
    n_gated = n_mdc + n_adrg
    n_atoms = atom_kind.shape[0]
    n = pdx.shape[0]
    # every block of the input, skipping those outside start:stop: written as a
    # loop from start, the kernel ran about 20% slower per case (measured with
    # numba 0.68; LLVM optimised the loop body less well)
    for b in range((n + BLOCK - 1) // BLOCK):
        i0 = b * BLOCK
        if i0 < start or i0 >= stop:
            continue
        nb = min(n, i0 + BLOCK) - i0
        keys = np.empty(BLOCK, np.int32)
        lev = np.empty(BLOCK, np.int32)
        prow = np.empty(BLOCK, np.int32)
        qrow = np.empty(BLOCK, np.int32)
        if n_atoms > 0:
            _validity_keys(
                i0,
                nb,
                keys,
                pdx,
                sdx_off,
                pproc,
                op_off,
                fields,
                present,
                atom_kind,
                atom_field,
                atom_op,
                atom_value,
            )
        for q in range(nb):
            # gate rows (-1: no code), and 4. severity: the non-excluded levels of
            # the secondary diagnoses
            i = i0 + q
            p = pdx[i]
            pp = pproc[i]
            prow[q] = info[p, 1] if p >= 0 else -1
            qrow[q] = info[pp, 2] if pp >= 0 else -1
            own = pdx_table[p] if p >= 0 else -1
            if own < 0 or own == never_table:
                own = -2  # excludes nothing: no code has table -2
            levels = 0
            for k in range(sdx_off[i], sdx_off[i + 1]):
                c = sdx_val[k]
                if c >= 0:
                    x = info[c, 3]
                    if (x >> 2) - 1 != own:
                        levels |= x & 3
            lev[q] = levels
        for q in range(nb):
            i = i0 + q
            phase = _VALIDITY
            pre = -1
            if malformed[i] == 0:
                lo = fail_base + n_fail
                hi = lo + n_fail_plain
                if n_atoms > 0:
                    # the plain checks by truth table
                    pre = validity_table[keys[q]]
                    hi = lo  # nothing left to interpret
            else:
                lo = fail_base
                hi = fail_base + n_fail
            pp = pproc[i]
            levels = lev[q]
            m = -1
            o = -1
            mdc_i = 0
            adrg_i = 0
            drg_i = ungroupable_drg
            sev = 0
            status = 1
            reason = reason_no_mdc
            gw = -1  # the word of gate bits in gword / xword
            gword = np.uint64(0)
            xword = np.uint64(0)
            while True:
                # the first rule of seq[lo:hi] that holds
                j = -1
                jj = lo
                while jj < hi:
                    if jj < n_gated:
                        # skip to the next rule whose gates the principal codes pass
                        w = jj >> 6
                        if w != gw:
                            gw = w
                            gp = gate_pdx_free[w]
                            if prow[q] >= 0:
                                gp |= gate_pdx[prow[q], w]
                            gq = gate_pproc_free[w]
                            if qrow[q] >= 0:
                                gq |= gate_pproc[qrow[q], w]
                            gword = gp & gq
                            xword = gate_exact[w]
                        word = gword >> np.uint64(jj & 63)
                        if word == 0:
                            jj = (w + 1) << 6
                            continue
                        jj += trailing_zeros(word)  # type: ignore[call-arg]  # a numba intrinsic: typing context added by numba
                        if jj >= hi:
                            break
                        if (xword >> np.uint64(jj & 63)) & np.uint64(1):
                            j = jj  # nothing but its gates
                            break
                    if _holds(
                        seq[jj],
                        i,
                        prog,
                        prog_val,
                        rule_start,
                        info,
                        rows,
                        mask,
                        or_flag,
                        site_attr,
                        pdx,
                        sdx_off,
                        sdx_val,
                        pproc,
                        op_off,
                        op_val,
                        fields,
                        present,
                        malformed,
                        levels,
                    ):
                        j = jj
                        break
                    jj += 1
                if phase == _VALIDITY:
                    if pre >= 0:  # 1. a check fails (truth table): invalid
                        status = 2
                        reason = fail_reason[n_fail + pre]
                        break
                    if j >= 0:  # 1. a check fails: invalid
                        status = 2
                        reason = fail_reason[j - fail_base]
                        break
                    sev = 3 if (levels & 2) != 0 else (2 if (levels & 1) != 0 else 1)
                    phase = _MDC
                    lo = mdc_base
                    hi = mdc_base + n_mdc
                elif phase == _MDC:  # 2. the first MDC whose rule holds (after m)
                    if j < 0:
                        break  # reason: no_mdc, or no_adrg when some MDC was entered
                    m = j - mdc_base
                    reason = reason_no_adrg
                    phase = _ADRG
                    lo = adrg_base + mdc_adrg_start[m]
                    hi = adrg_base + mdc_adrg_start[m + 1]
                elif phase == _ADRG:  # 3. the first ADRG of the MDC
                    if j < 0:
                        if not fallthrough:
                            break
                        phase = _MDC
                        lo = mdc_base + m + 1
                        hi = mdc_base + n_mdc
                        continue
                    a = j - adrg_base
                    o = adrg_out[a]
                    if ambiguous and adrg_medical[a] != 0 and pp >= 0 and or_flag[pp] != 0:
                        o = mdc_qy[m]
                    d = drg_by_levels[o, levels]
                    if d == -2:  # 5. by its DRG rows
                        phase = _DRG
                        lo = drg_base + out_drg_start[o]
                        hi = drg_base + out_drg_start[o + 1]
                        continue
                    if d >= 0:
                        mdc_i = m + 1
                        adrg_i = o
                        drg_i = d
                        status = 0
                        reason = 0
                    else:
                        reason = reason_no_drg
                    break
                else:  # 5. the first DRG of the ADRG
                    if j < 0:
                        reason = reason_no_drg
                    else:
                        mdc_i = m + 1
                        adrg_i = o
                        drg_i = drg_out[j - drg_base]
                        status = 0
                        reason = 0
                    break
            res_mdc[i] = mdc_i
            res_adrg[i] = adrg_i
            res_drg[i] = drg_i
            res_sev[i] = sev
            res_status[i] = status
            res_reason[i] = reason


def run(enc, compiled) -> tuple[np.ndarray, ...]:
    """Group encoded cases (:class:`casemix.encode.EncodedCases`) with a compiled scheme.

    Returns ``(mdc, adrg, drg, severity, status, reason)`` integer arrays.
    """
    n = enc.n
    out = (
        np.empty(n, np.int32),
        np.empty(n, np.int32),
        np.empty(n, np.int32),
        np.empty(n, np.int8),
        np.empty(n, np.int8),
        np.empty(n, np.int32),
    )
    run_ranges(
        group_kernel,
        n,
        enc.pdx,
        enc.sdx_off,
        enc.sdx_val,
        enc.pproc,
        enc.oproc_off,
        enc.oproc_val,
        enc.fields,
        enc.present,
        enc.malformed,
        *compiled.kernel_args(),
        *out,
        align=BLOCK,
    )
    return out


def rows_with_bad_code(off: np.ndarray, val: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per CSR row: whether any code id is not ``ok`` (``ok`` indexed by id, id -1 last)."""
    out = np.zeros(len(off) - 1, dtype=np.bool_)
    run_ranges(_bad_rows, out.shape[0], *read_only(off, val, ok), out)
    return out


@njit(nogil=True, cache=_CACHE)
def _bad_rows(start, stop, off, val, ok, out):
    for i in range(start, stop):
        for j in range(off[i], off[i + 1]):
            if not ok[val[j]]:
                out[i] = True
                break
