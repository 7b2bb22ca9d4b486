"""The largest-remainder split of each hospital's point money over its cases, across partitions.

In memory, :func:`casemix._money.allocate_grouped` gives every case of
hospital ``g`` the floor of its exact share ``s ÷ S_g × T_g`` and the
``left_g = T_g − Σ floors`` fen left over one each to the cases with the
largest fractional part; ties go to the larger share, then to the earlier
row (float noise can make ``left_g`` negative: the smallest fractional
parts, ties to the smaller share, then the later row, give one fen back).

Here a hospital's cases lie in many partitions, so the choice is made in
three cheap passes over the cases the workers already hold, the client
seeing only small tables:

1. each partition: the floors' sum per group, and a histogram of the
   fractional parts per group in :data:`BINS` equal bins;
2. the client: per group, the bin the ``|left_g|``-th chosen case falls in
   (counted from the top bin when giving, the bottom one when taking back);
   each partition sends the cases of that one bin (about 1/:data:`BINS` of
   them) with their fraction, share and input-order key; the client orders
   them by the rule above and keeps the keys of the chosen ones;
3. each partition: a case gets (gives back) its fen when its bin is beyond
   the group's threshold bin, or its key was chosen.

The exact shares, the floors and the tie order are those of
``allocate_grouped`` (the same ``S_g``, computed in input order by
:mod:`casemix.dask._settle`), so every case gets the same fen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from casemix.payment.core import int_sums

#: histogram bins of the fractional parts in [0, 1)
BINS = 256


@dataclass(frozen=True)
class Shares:
    """One partition's cases of the groups being split (one entry per case)."""

    group: np.ndarray  # group code (pool × hospital), global
    share: np.ndarray  # the case's points
    key: np.ndarray  # input-order key

    def exact(self, totals: np.ndarray, sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The floors and the fractional parts, computed as ``allocate_grouped`` does."""
        div = np.where(sums > 0, sums, 1.0)
        exact = self.share / div[self.group] * totals[self.group]
        base = np.floor(exact)
        return base.astype(np.int64), exact - base


def _bins(frac: np.ndarray) -> np.ndarray:
    return np.minimum((frac * BINS).astype(np.int64), BINS - 1)


def first_pass(s: Shares, totals: np.ndarray, sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pass 1: per group, the floors' sum and the histogram of fractional parts (groups × bins)."""
    n = totals.size
    base, frac = s.exact(totals, sums)
    hist = np.bincount(s.group * BINS + _bins(frac), minlength=n * BINS).reshape(n, BINS)
    return int_sums(s.group, base, n), hist.astype(np.int64)


@dataclass(frozen=True)
class Cut:
    """Per group: +1 to give, −1 to take back, 0 for nothing; the threshold bin; the chosen keys."""

    sign: np.ndarray
    bin: np.ndarray
    keys: np.ndarray | None = None


def thresholds(totals: np.ndarray, floors: np.ndarray, hist: np.ndarray) -> Cut:
    """On the client, after pass 1: each group's direction and threshold bin.

    Giving: every case above the threshold bin gets a fen, and ``need`` of
    the bin's (pass 2).  A group that gives to all its cases has bin −1.
    """
    left = totals - floors
    sign = np.sign(left).astype(np.int64)
    k = np.abs(left)
    n = totals.size
    thr = np.full(n, BINS, dtype=np.int64)
    thr[sign < 0] = -1
    for g in np.flatnonzero(sign):
        h = hist[g][::-1] if sign[g] > 0 else hist[g]
        cum = np.cumsum(h)
        j = int(np.searchsorted(cum, k[g]))  # first position where the count reaches k
        if j >= BINS:  # k ≥ the group's cases: all of them
            thr[g] = -1 if sign[g] > 0 else BINS
        else:
            thr[g] = BINS - 1 - j if sign[g] > 0 else j
    return Cut(sign, thr)


def candidates(s: Shares, totals: np.ndarray, sums: np.ndarray, cut: Cut) -> tuple[np.ndarray, ...]:
    """Pass 2: the partition's cases in their group's threshold bin: group, frac, share, key."""
    _, frac = s.exact(totals, sums)
    inside = (cut.sign[s.group] != 0) & (_bins(frac) == cut.bin[s.group])
    return s.group[inside], frac[inside], s.share[inside], s.key[inside]


def choose(cut: Cut, totals: np.ndarray, floors: np.ndarray, hist: np.ndarray, found: list) -> Cut:
    """On the client, after pass 2: the keys of the threshold bins' chosen cases."""
    if not found:
        return Cut(cut.sign, cut.bin, np.zeros(0, dtype=np.int64))
    g, frac, share, key = (np.concatenate([f[i] for f in found]) for i in range(4))
    sg = cut.sign[g]
    # the fen already placed beyond each group's threshold bin, and how many its bin gives
    n = totals.size
    beyond = np.array(
        [
            hist[j, cut.bin[j] + 1 :].sum() if cut.sign[j] > 0 else hist[j, : max(cut.bin[j], 0)].sum()
            for j in range(n)
        ],
        dtype=np.int64,
    )
    need = np.abs(totals - floors) - beyond
    # giving: largest fraction, larger share, earlier row; taking back: smallest fraction,
    # smaller share, later row — one sort, group by group
    give = sg > 0
    order = np.lexsort(
        (np.where(give, key, -key), np.where(give, -share, share), np.where(give, -frac, frac), g)
    )
    gs = g[order]
    start = np.searchsorted(gs, gs, side="left")
    rank = np.arange(gs.size) - start
    return Cut(cut.sign, cut.bin, np.sort(key[order][rank < need[gs]]))


def final_pass(s: Shares, totals: np.ndarray, sums: np.ndarray, cut: Cut) -> np.ndarray:
    """Pass 3: each case's point fen, the floor plus (minus) the fen it was chosen for."""
    base, frac = s.exact(totals, sums)
    b, sign, thr = _bins(frac), cut.sign[s.group], cut.bin[s.group]
    extra = ((sign > 0) & (b > thr)) | ((sign < 0) & (b < thr))
    if cut.keys is not None and cut.keys.size:
        extra |= np.isin(s.key, cut.keys, assume_unique=True)
    return base + np.where(extra, sign, 0)
