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

Any other code not in the table is ``-1``, and a text with a non-ASCII
byte (which intake folds before splitting) is flagged: the caller sends
such rows to intake.  ``tests/test_encode.py`` checks the ids against
intake's clean-up on generated texts.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from casemix._threads import read_only, run_ranges
from casemix.encode_kernel import bytes_key, cache_enabled, probe

_CACHE = cache_enabled()
_LOW32 = np.uint64(0xFFFFFFFF)
#: id written for a blank code, dropped before the ids are returned
BLANK = -3
#: longest code (bytes) the kernel looks up; a longer one is -1 (no scheme code comes close)
SCRATCH = 64


@njit(cache=_CACHE, inline="always")
def _blank(c):
    return c == 32 or (c >= 9 and c <= 13)


@njit(cache=_CACHE)
def _code_id(src, s, length, scratch, slots, shift, long_data, long_off):
    # the code as it is; else, when cheap and exact, as intake's clean-up writes it
    a, b, start = bytes_key(src, s, length)
    c = probe(a, b, length, src, start, slots, shift, long_data, long_off)
    if c >= 0:
        return c
    return _rewritten_id(src, s, length, scratch, slots, shift, long_data, long_off)


@njit(cache=_CACHE)
def _rewritten_id(src, s, length, scratch, slots, shift, long_data, long_off):
    # A code not found as it is (a few in a hundred): the id of its rewrite, or -1.
    # Not inlined: the kernel keeps one copy of the hash lookup on its own bytes.
    if length > scratch.shape[0] or src[s + length - 1] == 43:  # intake strips a trailing "+"
        return -1
    changed = False
    prev = np.int64(0)
    for t in range(length):
        raw = np.int64(src[s + t])
        if raw < 33 or raw > 126:  # white space inside, or non-ASCII
            return -1
        ch = raw - 32 if raw >= 97 and raw <= 122 else raw
        if ch == 88 and t > 0 and prev != 43:  # "X" but first or after "+" → "x"
            ch = np.int64(120)
        changed |= ch != raw
        scratch[t] = ch
        prev = raw
    if not changed:
        return -1
    a, b, start = bytes_key(scratch, 0, length)
    return probe(a, b, length, scratch, start, slots, shift, long_data, long_off)


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
    counting,
    slots,
    shift,
    long_data,
    long_off,
    first,
    out_off,
    out,
    non_ascii,
):
    """Rows ``start:stop`` of ``|``-joined texts (Arrow string views) → ids; run by :func:`split_joined`.

    With ``counting`` it writes the number of list codes of row ``i``, blank
    ones included, to ``out_off[i + 1]`` and whether its text has a
    non-ASCII byte to ``non_ascii[i]``; otherwise the ids of those codes
    (:data:`BLANK` for a blank one) to ``out[out_off[i]:out_off[i + 1]]``
    and, when ``first_apart``, the id of its first code to ``first[i]``
    (``-2`` when blank or absent).
    """
    scratch = np.empty(SCRATCH, dtype=np.uint8)
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
        if counting:
            # an upper bound: blank codes are counted here and dropped after the ids are written
            seps = 0
            bits = 0
            for j in range(s, end):
                c = src[j]
                seps += c == 124  # "|"
                bits |= c
            out_off[i + 1] = seps if first_apart else seps + 1
            non_ascii[i] = bits >= 128
            continue
        k = out_off[i]
        seg = 0
        while True:
            while s < end and _blank(src[s]):
                s += 1
            # the key of a code of at most 12 bytes is built while looking for its end
            e = s
            last = s  # after the last byte that is not white space
            head = np.uint64(0)
            tail = np.uint64(0)
            while e < end:
                c = src[e]
                if c == 124:
                    break
                t = e - s
                if t < 4:
                    head |= np.uint64(c) << np.uint64(8 * t)
                elif t < 12:
                    tail |= np.uint64(c) << np.uint64(8 * (t - 4))
                e += 1
                if not _blank(c):
                    last = e
            n_bytes = last - s
            if n_bytes == 0:
                cid = BLANK
            elif last == e and n_bytes <= 12:
                key = np.uint64(n_bytes) | (head << np.uint64(32))
                cid = probe(key, tail, n_bytes, src, -1, slots, shift, long_data, long_off)
                if cid < 0:
                    cid = _rewritten_id(src, s, n_bytes, scratch, slots, shift, long_data, long_off)
            else:  # a long code, or white space after the code
                cid = _code_id(src, s, n_bytes, scratch, slots, shift, long_data, long_off)
            if first_apart and seg == 0:
                first[i] = -2 if cid == BLANK else cid
            else:
                out[k] = cid
                k += 1
            seg += 1
            if e >= end:
                break
            s = e + 1


def split_joined(
    views, offset, valid, has_valid, data, data_base, first_apart, slots, shift, long_data, long_off
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ids of ``|``-joined texts given as Arrow string views (:func:`casemix.encode._views`).

    Returns ``(first, offsets, values, non_ascii)``: the id of each row's
    first code when ``first_apart`` (else all ``-2``), the other codes as
    CSR (int64 ``n + 1`` offsets, int32 ids) and a uint8 flag per row for
    a non-ASCII byte.  :func:`split_codes` runs twice on a few threads:
    once to count each row's separators, once to write the ids; blank
    codes are then dropped.
    """
    n = views.shape[0] - offset
    vbytes = views.view(np.uint8).reshape(-1)
    ro = read_only(views, vbytes, valid, data, data_base, slots, long_data, long_off)
    views, vbytes, valid, data, data_base, slots, long_data, long_off = ro
    first = np.full(n, -2, dtype=np.int32)
    out_off = np.zeros(n + 1, dtype=np.int64)
    non_ascii = np.zeros(n, dtype=np.uint8)
    args = (views, vbytes, int(offset), valid, bool(has_valid), data, data_base, bool(first_apart))
    table = (slots, int(shift), long_data, long_off)
    run_ranges(split_codes, n, *args, True, *table, first, out_off, np.empty(0, np.int32), non_ascii)
    np.cumsum(out_off, out=out_off)
    out = np.empty(int(out_off[-1]), dtype=np.int32)
    run_ranges(split_codes, n, *args, False, *table, first, out_off, out, non_ascii)
    blank = np.flatnonzero(out == BLANK)
    if blank.size:  # "A||B", "A|", " ": a few rows in a hundred
        out_off -= np.searchsorted(blank, out_off)
        out = np.delete(out, blank)
    return first, out_off, out, non_ascii
