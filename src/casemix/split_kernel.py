"""numba kernel of :mod:`casemix.encode`: ``|``-joined code texts → code ids in one pass.

A CSV export carries a case's codes as one text, ``"I10.x00|E11.900"``.
Splitting it with polars builds a list of strings per row only for the
hash lookup to read them again; this kernel walks the bytes of the Arrow
string views once, cuts them at ``|`` and looks each code up in the
scheme's hash table (:func:`casemix.encode_kernel.probe`) as it goes.

It reads a code as intake (``casemix.cases._build``) does where that is
cheap to do exactly, so that the usual untidiness of an extract does not
send a row to intake:

- a blank code (empty, or white space only: ``"A||B"``, ``"A|"``) is no
  code; intake makes it null and drops it;
- ASCII white space around a code (tab, line feed, vertical tab, form
  feed, carriage return, space: what polars' ``strip_chars`` trims from
  ASCII text) is not part of it;
- a code not in the table whose bytes are printable ASCII (no white space
  inside) and which does not end in ``+`` is looked up once more as
  intake's clean-up (``casemix.cases._normalise.code_chain``) writes such a
  code: letters upper case, then an ``X`` lower case unless it is the
  first character of the code or follows a ``+`` (the asterisk code of a
  dagger/asterisk pair).

A code found in neither spelling is ``-1``.  When its bytes are printable
ASCII and it does not end in ``+``, intake's clean-up of it is the rewrite
just tried, so ``-1`` is intake's id too (an unknown code, which the
caller reports as intake's path does).  Any other code not found (white
space or a control byte inside, a trailing ``+``, more than
:data:`SCRATCH` bytes) flags its row :data:`FOR_INTAKE`, and a text with a
non-ASCII byte (which intake folds before splitting) :data:`NON_ASCII`:
the caller sends flagged rows to intake.  ``tests/test_encode.py`` checks
that every row not flagged has intake's ids, on generated texts.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from casemix._threads import read_only, run_ranges
from casemix.encode_kernel import cache_enabled, fnv, probe

_CACHE = cache_enabled()
_LOW32 = np.uint64(0xFFFFFFFF)
#: longest code (bytes) the kernel looks up; a longer one is -1, for intake (no scheme code comes close)
SCRATCH = 64
#: ``flags`` bit of a row whose text has a non-ASCII byte (intake folds such a text before splitting it)
NON_ASCII = 1
#: ``flags`` bit of a row with a code not found that intake may read otherwise (white space
#: inside, a control character, a trailing ``+``, longer than :data:`SCRATCH`)
FOR_INTAKE = 2
#: ``flags`` bit of a row whose text has a ``|`` (a principal code column must not have one)
SEPARATED = 4


@njit(nogil=True, cache=_CACHE)
def split_codes(
    start,
    stop,
    views,
    vbytes,
    offset,
    valid,
    has_valid,
    data,
    data_base,
    first_apart,
    cap_off,
    slots,
    shift,
    long_data,
    long_off,
    first,
    out_off,
    out,
    flags,
):
    """Rows ``start:stop`` of ``|``-joined texts (Arrow string views) → ids; run by :func:`split_joined`.

    The ids of row ``i``'s list codes (blank codes, and the first code when
    ``first_apart``, are none) go to ``out``, the rows' one after another
    from ``out[cap_off[start]]``, and their number to ``out_off[i + 1]``;
    when ``first_apart`` the id of its first code goes to ``first[i]``
    (``-2`` when blank or absent).  ``flags[i]`` gets :data:`NON_ASCII` /
    :data:`SEPARATED` when its text has a non-ASCII byte / a ``|``, and
    :data:`FOR_INTAKE` when a code not found is one intake may read
    otherwise than the kernel does.
    """
    # every code is copied here first: one key, one probe and one rewrite for all of them
    # (one copy of the hash lookup in the machine code: a short compile, issue 16)
    scratch = np.empty(SCRATCH, dtype=np.uint8)
    k = cap_off[start]  # this range's codes go one after another from here
    for i in range(start, stop):
        pos = offset + i
        if has_valid and ((valid[pos >> 3] >> (pos & 7)) & 1) == 0:
            continue  # null: no codes (first[i] stays -2, out_off[i + 1] 0)
        w0 = views[pos, 0]
        length = np.int64(w0 & _LOW32)
        if length == 0:
            continue
        src = vbytes
        s = 16 * pos + 4  # a text of at most 12 bytes lives in its view
        if length > 12:
            w1 = views[pos, 1]
            src = data
            s = data_base[np.int64(w1 & _LOW32)] + np.int64(w1 >> np.uint64(32))
        end = s + length
        k0 = k
        seg = 0
        bits = np.int64(0)
        while True:
            e = s
            while e < end:
                c = np.int64(src[e])
                if c == 124:
                    break
                bits |= c
                e += 1
            a0 = s
            b0 = e
            while a0 < b0 and (src[a0] == 32 or (src[a0] >= 9 and src[a0] <= 13)):
                a0 += 1
            while b0 > a0 and (src[b0 - 1] == 32 or (src[b0 - 1] >= 9 and src[b0 - 1] <= 13)):
                b0 -= 1
            n = b0 - a0
            cid = -2
            if n > SCRATCH:
                cid = -1
                flags[i] |= FOR_INTAKE  # no scheme code comes close
            elif n > 0:
                # the key of the code as it is, built while copying it
                head = np.uint64(0)
                tail = np.uint64(0)
                for t in range(n):
                    c = src[a0 + t]
                    scratch[t] = c
                    if t < 4:
                        head |= np.uint64(c) << np.uint64(8 * t)
                    elif t < 12:
                        tail |= np.uint64(c) << np.uint64(8 * (t - 4))
                rewritten = False
                while True:
                    key_a = np.uint64(n) | (head << np.uint64(32))
                    key_b = tail
                    at = -1
                    if n > 12:
                        key_b = fnv(scratch, 0, n)
                        at = 0
                    cid = probe(key_a, key_b, n, scratch, at, slots, shift, long_data, long_off)
                    if cid >= 0 or rewritten:
                        break
                    # not found as it is (a few in a hundred): as intake's clean-up writes it
                    rewritten = True
                    if scratch[n - 1] == 43:  # intake strips a trailing "+"
                        flags[i] |= FOR_INTAKE
                        break
                    changed = False
                    prev = np.int64(0)
                    head = np.uint64(0)
                    tail = np.uint64(0)
                    for t in range(n):
                        raw = np.int64(scratch[t])
                        if raw < 33 or raw > 126:  # white space inside, or non-ASCII
                            flags[i] |= FOR_INTAKE
                            break
                        ch = raw - 32 if raw >= 97 and raw <= 122 else raw
                        if ch == 88 and t > 0 and prev != 43:  # "X" but first or after "+" → "x"
                            ch = np.int64(120)
                        changed |= ch != raw
                        scratch[t] = ch
                        prev = raw
                        if t < 4:
                            head |= np.uint64(ch) << np.uint64(8 * t)
                        elif t < 12:
                            tail |= np.uint64(ch) << np.uint64(8 * (t - 4))
                    if flags[i] & FOR_INTAKE or not changed:
                        break
            if first_apart and seg == 0:
                first[i] = cid
            elif n > 0:
                out[k] = cid
                k += 1
            seg += 1
            if e >= end:
                break
            s = e + 1
        if bits >= 128:
            flags[i] |= NON_ASCII
        if seg > 1:
            flags[i] |= SEPARATED
        out_off[i + 1] = k - k0


def split_joined(
    views, offset, valid, has_valid, data, data_base, first_apart, slots, shift, long_data, long_off
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ids of ``|``-joined texts given as Arrow string views (:func:`casemix.encode._views`).

    Returns ``(first, offsets, values, flags)``: the id of each row's first
    code when ``first_apart`` (else all ``-2``), the other codes as CSR
    (int64 ``n + 1`` offsets, int32 ids) and per row a uint8 of
    :data:`NON_ASCII`, :data:`FOR_INTAKE` and :data:`SEPARATED` bits.

    :func:`split_codes` reads each text once, on a few threads.  A text of
    ``L`` bytes has at most ``(L + 1) // 2`` codes, so each row range
    writes its ids one after another from its first row's bound in a
    scratch array, and the ranges' runs are joined: a pass that only
    counted the codes first took a sixth of the time (19 of 115 ms for
    262,144 rows' diagnoses).  Only the pages written are touched.
    """
    n = views.shape[0] - offset
    vbytes = views.view(np.uint8).reshape(-1)
    ro = read_only(views, vbytes, valid, data, data_base, slots, long_data, long_off)
    views, vbytes, valid, data, data_base, slots, long_data, long_off = ro
    # at most (length + 1) // 2 codes in a text: each range writes its rows' codes one after
    # another from its first row's bound, then the ranges' runs are joined
    lengths = (views[offset:, 0] & _LOW32).astype(np.int64)
    if has_valid:
        lengths[np.unpackbits(valid, bitorder="little", count=offset + n)[offset:] == 0] = 0
    cap_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum((lengths + 1) // 2, out=cap_off[1:])
    first = np.full(n, -2, dtype=np.int32)
    out_off = np.zeros(n + 1, dtype=np.int64)
    flags = np.zeros(n, dtype=np.uint8)
    tmp = np.empty(int(cap_off[-1]), dtype=np.int32)
    args = (views, vbytes, int(offset), valid, bool(has_valid), data, data_base, bool(first_apart), cap_off)
    table = (slots, int(shift), long_data, long_off)
    parts = run_ranges(split_codes, n, *args, *table, first, out_off, tmp, flags)
    np.cumsum(out_off, out=out_off)
    runs = [tmp[cap_off[a] : cap_off[a] + out_off[b] - out_off[a]] for a, b in parts]
    out = np.concatenate(runs) if runs else np.empty(0, dtype=np.int32)
    return first, out_off, out, flags
