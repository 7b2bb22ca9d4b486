"""Money arithmetic in integer fen (1 yuan = 100 fen).

The one rounding rule of casemix: ROUND_HALF_UP to the fen, applied where a
formula turns a real number into money.  Allocating a fixed total across
parties uses the largest-remainder (Hamilton) method, so the parts add up
to the total exactly.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np

FEN_PER_YUAN = 100


def yuan_to_fen(amount: float | str | Decimal) -> int:
    """Yuan to integer fen, ROUND_HALF_UP (through Decimal, so the amount is rounded as written in decimal)."""
    return int((Decimal(str(amount)) * FEN_PER_YUAN).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fen_to_yuan(fen: int) -> Decimal:
    """Integer fen to a 2-decimal yuan Decimal."""
    return (Decimal(int(fen)) / FEN_PER_YUAN).quantize(Decimal("0.01"))


def round_half_up(values: np.ndarray) -> np.ndarray:
    """Round float fen amounts to whole fen, halves away from zero (ROUND_HALF_UP).

    A tiny tolerance absorbs binary noise such as 2.4999999999 that stands
    for an exact half in decimal.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 0:
        return _round_in_place(np.array([v]))[0]
    return _round_in_place(v.copy())


def _round_in_place(a: np.ndarray) -> np.ndarray:
    """:func:`round_half_up` of a fresh float array, computed in its own buffer.

    sign(v) × ⌊|v| + 0.5 + 1e-9⌋, each operation in place, and the result
    converted to Int64 in the same 8 bytes per value: 10M amounts need one
    80 MB array, not four.
    """
    neg = np.signbit(a)
    np.abs(a, out=a)
    a += 0.5
    a += 1e-9
    np.floor(a, out=a)
    np.negative(a, out=a, where=neg)
    out = a.view(np.int64)
    # the input and output overlap exactly, so numpy converts value by value without a copy
    np.copyto(out, a, casting="unsafe")
    return out


def _floor_int(x: np.ndarray) -> np.ndarray:
    """⌊x⌋ as Int64 in one new array (the floor converted in its own buffer)."""
    a = np.floor(x)
    out = a.view(np.int64)
    np.copyto(out, a, casting="unsafe")  # exact overlap: converted value by value, no copy
    return out


def yuan_array_to_fen(values: np.ndarray) -> np.ndarray:
    """Vectorised yuan → fen with ROUND_HALF_UP."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 0:
        return round_half_up(v * FEN_PER_YUAN)
    return _round_in_place(v * FEN_PER_YUAN)


def allocate(total_fen: int, shares: np.ndarray) -> np.ndarray:
    """Split ``total_fen`` in proportion to ``shares`` so the parts sum exactly.

    Largest-remainder method: every party gets the floor of its exact
    share; the fen left over go one each to the largest fractional parts
    (ties to the earlier party).  Shares must be non-negative with a
    positive sum.
    """
    s = np.asarray(shares, dtype=np.float64)
    if s.size == 0:
        return np.zeros(0, dtype=np.int64)
    if np.any(s < 0) or not np.isfinite(s).all():
        raise ValueError("allocation shares must be finite and non-negative")
    total_share = s.sum()
    if total_share <= 0:
        raise ValueError("allocation shares must have a positive sum")
    exact = s / total_share * int(total_fen)
    base = np.floor(exact).astype(np.int64)
    left = int(total_fen) - int(base.sum())
    if left:
        order = np.argsort(-(exact - base), kind="stable")
        base[order[:left]] += 1
    return base


#: The range every amount must stay in: |amount| < 10^13 yuan (10^15 fen).  Sums of up to
#: about 9 such amounts stay below 2^53 fen, so float64 intermediates are exact to the fen
#: and Int64 fen can never overflow.
MAX_YUAN = 10**13


def check_range(fen: np.ndarray | int, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` if an amount is outside ±10^13 yuan."""
    v = np.abs(np.asarray(fen, dtype=np.float64))
    if v.size and not (v < MAX_YUAN * FEN_PER_YUAN).all():
        i = int(np.flatnonzero(~(v < MAX_YUAN * FEN_PER_YUAN))[0]) if v.ndim else 0
        raise ValueError(
            f"{what}: amount at position {i} is outside the supported range |amount| < 10^13 yuan"
        )


def allocate_grouped(totals: np.ndarray, group: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Split each group's total over its members in proportion to ``shares``, exactly.

    ``totals[g]`` (integer fen) is split over the rows ``i`` with
    ``group[i] == g`` by the largest-remainder method: every row gets the
    floor of ``shares[i] × (totals[g] / Σ shares of g)``; the fen left over
    go one each to the largest fractional parts.  Ties in the fractional
    part go to the larger share first, then to the earlier row.

    The exact share is computed as ``(shares[i] ÷ S_g) × totals[g]`` with
    one sum ``S_g`` per group, so it is monotone in ``shares[i]`` (IEEE
    division and multiplication by a positive constant are monotone) and
    cannot overflow, even for subnormal shares.  With the tie rule
    this makes the split exactly monotone: a row with more shares never gets
    fewer fen than a row of the same group with fewer — including float
    near-ties, where two exact shares round to the same double.

    Groups whose shares sum to 0 must have a total of 0.
    """
    t = np.asarray(totals, dtype=np.int64)
    g = np.asarray(group, dtype=np.int64)
    s = np.asarray(shares, dtype=np.float64)
    if s.size == 0:
        return np.zeros(0, dtype=np.int64)
    if np.any(s < 0) or not np.isfinite(s).all():
        raise ValueError("allocation shares must be finite and non-negative")
    ssum = np.bincount(g, weights=s, minlength=t.size)
    if np.any((ssum <= 0) & (t != 0)):
        raise ValueError("a group with a non-zero total has no positive share")
    # share of the group first (in [0, 1]), then times the total: a quotient total / Σ shares
    # overflows to inf when the shares are subnormal (1e-308), the share of the group never does
    div = np.where(ssum > 0, ssum, 1.0)
    exact = s / div[g]
    exact *= t[g]  # (s ÷ S_g) × t_g, the product in place: one temporary fewer per row
    base = _floor_int(exact)
    left = t - np.bincount(g, weights=base, minlength=t.size).astype(np.int64)
    if left.any():
        # a negative left is float noise that put a floor one fen above its exact share (never
        # seen in range): the group's smallest fractional parts give the fen back
        from casemix._money_kernel import spread_left
        from casemix._threads import read_only

        # read-only views whatever the caller passed (polars hands out read-only arrays): one
        # compiled signature instead of one per mix, on a fresh install's first settlement
        g_ro, s_ro, exact_ro = read_only(g, s, exact)
        spread_left(g_ro, s_ro, exact_ro, base, left)
    return base
