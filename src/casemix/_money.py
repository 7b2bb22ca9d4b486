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
    return (np.sign(v) * np.floor(np.abs(v) + 0.5 + 1e-9)).astype(np.int64)


def yuan_array_to_fen(values: np.ndarray) -> np.ndarray:
    """Vectorised yuan → fen with ROUND_HALF_UP."""
    return round_half_up(np.asarray(values, dtype=np.float64) * FEN_PER_YUAN)


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
