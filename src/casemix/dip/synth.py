"""Synthetic DIP case histories: several years and hospitals, with costs.

Deterministic by seed. Cases are drawn from a small table of disease ×
treatment patterns written with real ICD-10 医保版 / ICD-9-CM-3 医保版 codes
(the same families as the ``dip-demo`` catalog), so that a catalog built
from the history has core groups, related-procedure splits, comprehensive
groups and a few ungroupable cases. Costs are illustrative magnitudes, not
estimates: lognormal around a pattern mean × hospital level × year drift ×
hospital efficiency, raised for older patients, major secondary diagnoses
and related procedures.

The appendectomy pattern reproduces the DIP 技术规范 worked example: base
mean 28,033 yuan, a related procedure adding 2.91% (stays in the base
group) and one adding 56.97% (splits into its own group).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

# pdx choices, procedure sequence (principal first; empty = conservative),
# related procedures as (code, probability, cost factor), mean cost (yuan), share
_PATTERNS: list[
    tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, float, float], ...], float, float]
] = [
    (
        ("K35.300", "K35.301"),
        ("47.0100",),
        (("99.0400", 0.30, 28_849 / 28_033), ("54.5100", 0.22, 44_003 / 28_033)),
        28_033,
        5.0,
    ),
    (("K35.300",), (), (), 9_000, 1.5),
    (("K35.800", "K35.800x001"), ("47.0901",), (), 13_100, 2.0),
    (("K35.800x001",), (), (), 5_200, 1.0),
    (("K80.100", "K80.101"), ("51.2300",), (), 17_100, 3.0),
    (("K80.100",), (), (), 6_900, 1.5),
    (("K80.200x003",), ("51.2300",), (), 15_500, 2.0),
    (("J18.900", "J18.901"), (), (), 7_200, 8.0),
    (("J18.900",), ("33.2200",), (), 10_500, 2.0),
    (("J18.900",), ("96.7100",), (("96.0400", 0.6, 1.12),), 29_800, 0.8),
    (("I63.900", "I63.901"), (), (), 11_600, 6.0),
    (("I63.900",), ("39.7400",), (("88.4100", 0.5, 1.05),), 68_200, 0.6),
    (("I25.102", "I25.100x003"), ("88.5500", "36.0700"), (("00.6600", 0.35, 1.08),), 42_100, 3.0),
    (("I25.102",), (), (), 6_100, 2.0),
    (("I10.x00", "I10.x00x002"), (), (), 4_300, 5.0),
    (("E11.900",), (), (), 5_100, 4.0),
    (("H25.900",), ("13.4100x001",), (), 7_800, 3.0),
    (("K40.900x002",), ("53.0201",), (), 8_900, 2.0),
    (("M17.100", "M17.101"), ("81.5400",), (), 56_800, 1.2),
    (("M17.101",), (), (), 4_800, 1.5),
    (("C34.100x004",), ("32.4100",), (), 58_900, 1.0),
    (("C34.900x001",), ("99.2500",), (), 8_900, 3.0),
    (("Z51.100",), ("99.2500",), (), 8_600, 1.5),  # chemo session: tumour dx in sdx
    (("C50.900",), ("85.4300",), (), 27_600, 1.0),
    (("A16.200", "A15.000"), (), (), 13_400, 1.0),
    (("N18.500",), (), (), 10_200, 1.0),
    (("J44.100",), (), (), 8_200, 3.0),
    (("O80.000",), (), (), 4_100, 2.0),
    # rare patterns: below any sensible threshold, they fold into comprehensive groups
    (("K35.900",), ("45.2300",), (), 7_000, 0.02),
    (("K80.000",), ("51.2200",), (), 21_000, 0.02),
    (("C34.300",), ("32.4100",), (), 61_000, 0.02),
    (("J18.000",), ("33.2400",), (), 11_000, 0.02),
    (("I63.400",), ("99.1000",), (), 15_000, 0.02),
    (("R50.900",), (), (), 3_000, 0.05),  # may not be principal: ungrouped
]

# secondary diagnoses: (code, probability, cost factor)
_SECONDARY = (
    ("I10.x00", 0.25, 1.0),
    ("E11.900", 0.15, 1.03),
    ("J96.000", 0.03, 1.45),
    ("N17.900", 0.03, 1.35),
)
_TUMOUR = ("C34", "C50", "Z51")
_LEVEL_FACTOR = {"3": 1.18, "2": 1.0, "1": 0.82}


def _pick(vocab: Sequence[str | None], idx: np.ndarray) -> pl.Series:
    """``vocab[idx]`` as a String series (None entries become nulls), without Python per row."""
    return pl.Series(vocab, dtype=pl.String).gather(pl.Series(np.asarray(idx, dtype=np.int64)))


def hospitals(n: int = 8) -> pl.DataFrame:
    """``hospital_id`` and ``hospital_level`` of ``n`` synthetic hospitals (a quarter level 3)."""
    ids = [f"H{i + 1:02d}" for i in range(n)]
    n3 = max(1, n // 4)
    n2 = max(1, (n - n3) // 2) if n > 1 else 0
    levels = ["3"] * n3 + ["2"] * n2 + ["1"] * (n - n3 - n2)
    return pl.DataFrame({"hospital_id": ids, "hospital_level": levels[:n]})


def history(
    n: int = 20_000,
    *,
    years: tuple[int, ...] = (2021, 2022, 2023),
    n_hospitals: int = 8,
    seed: int = 0,
    cv: float = 0.35,
    drift: float = 0.03,
) -> pl.DataFrame:
    """A synthetic DIP case history in the canonical case frame.

    Parameters
    ----------
    n
        Cases per year.
    years
        The years drawn (a ``year`` column is added); costs drift upward by
        ``drift`` per year.
    n_hospitals
        Hospitals ``H01…``; a quarter level 3, the rest levels 2 and 1.
    seed
        Same seed, same frame.
    cv
        Coefficient of variation of the lognormal cost around each pattern.

    Returns
    -------
    polars.DataFrame
        Canonical columns (``case_id``, ``hospital_id``, ``sex``, ``age``,
        ``age_days``, ``los``, ``discharge``, ``total_cost``, ``pdx``, ``sdx``,
        ``pproc``, ``oproc``, ``malformed``, ``intake_warnings``) plus
        ``hospital_level``, ``year`` (Int32) and ``discharge_date``.
    """
    rng = np.random.default_rng(seed)
    hosp = hospitals(n_hospitals)
    levels = hosp["hospital_level"].to_numpy()
    level_factor = np.array([_LEVEL_FACTOR[x] for x in levels])
    eff = rng.uniform(0.9, 1.12, n_hospitals)
    shares = np.array([p[4] for p in _PATTERNS])
    shares = shares / shares.sum()
    sigma = float(np.sqrt(np.log1p(cv * cv)))
    n_pat = len(_PATTERNS)
    # pattern tables: pdx choices (CSR), principal / extra procedure, related options
    pdx_codes = [c for p in _PATTERNS for c in p[0]]
    pdx_len = np.array([len(p[0]) for p in _PATTERNS])
    pdx_off = np.concatenate([[0], np.cumsum(pdx_len)[:-1]])
    first = [p[1][0] if p[1] else None for p in _PATTERNS]
    extra = [p[1][1] if len(p[1]) > 1 else None for p in _PATTERNS]
    n_rel = max(len(p[2]) for p in _PATTERNS)
    rel_code = np.full((n_pat, n_rel), None, dtype=object)
    rel_cum = np.full((n_pat, n_rel), -1.0)
    rel_fac = np.ones((n_pat, n_rel))
    for i, p in enumerate(_PATTERNS):
        acc = 0.0
        for r, (code, prob, f) in enumerate(p[2]):
            acc += prob
            rel_code[i, r], rel_cum[i, r], rel_fac[i, r] = code, acc, f
    mean = np.array([p[3] for p in _PATTERNS])
    cat3 = np.array([p[0][0][:3] for p in _PATTERNS])
    tumour = np.isin(cat3, _TUMOUR)
    chemo_session = cat3 == "Z51"
    can_die = np.isin(cat3, ["C34", "I63", "J18"])
    newborn_ok = cat3 == "J18"
    delivery = cat3 == "O80"
    female = np.isin(cat3, ["O80", "C50"])

    frames = []
    for y_i, year in enumerate(years):
        pat = rng.choice(n_pat, size=n, p=shares)
        h = rng.integers(0, n_hospitals, size=n)
        u = rng.random((n, 8))
        u_sdx = rng.random((n, len(_SECONDARY)))
        noise = rng.lognormal(-sigma * sigma / 2, sigma, size=n)
        ages = rng.integers(18, 92, size=n).astype(float)
        days = rng.integers(0, 365, size=n)

        pdx = _pick(pdx_codes, pdx_off[pat] + (u[:, 0] * pdx_len[pat]).astype(int))
        # at most one related procedure: the first option whose cumulative probability exceeds u
        hit = u[:, 1:2] < rel_cum[pat]
        any_rel = hit.any(axis=1)
        r_idx = np.where(any_rel, hit.argmax(axis=1), 0)
        related = _pick([None, *rel_code.ravel()], np.where(any_rel, 1 + pat * n_rel + r_idx, 0))
        factor = np.where(any_rel, rel_fac[pat, r_idx], 1.0)
        sdx_cols = {"s0": _pick([None, "C34.900x001"], chemo_session[pat])}
        for j, (code, prob, fac) in enumerate(_SECONDARY):
            has = u_sdx[:, j] < prob
            sdx_cols[f"s{j + 1}"] = _pick([None, code], has)
            factor = factor * np.where(has, fac, 1.0)
        meta = tumour[pat] & (u[:, 5] < 0.2)
        sdx_cols["s9"] = _pick([None, "C78.000"], meta)
        factor = factor * np.where(meta, 1.25, 1.0)
        age = np.where(delivery[pat], 20 + (u[:, 6] * 20).astype(int), ages).astype(float)
        baby = newborn_ok[pat] & (u[:, 6] < 0.12)
        age = np.where(baby, 0.0, age)
        age_days = np.where(baby, 1 + (u[:, 7] * 300).astype(int), np.nan)
        factor = factor * np.where(baby, 0.7, 1.0) * np.where(age >= 65, 1.08, 1.0)
        death = can_die[pat] & (u[:, 7] < 0.04)
        factor = factor * np.where(death, 0.85, 1.0)
        cost = np.round(mean[pat] * factor * level_factor[h] * eff[h] * (1 + drift) ** y_i * noise, 2)
        los = np.maximum(1, np.round(cost / 1_200 * (0.6 + 0.8 * u[:, 4])))
        sex = np.where(female[pat], 2.0, 1.0 + (u[:, 3] < 0.5))
        date = np.datetime64(f"{year}-01-01") + days.astype("timedelta64[D]")
        year_frame = pl.DataFrame(
            {
                "case_id": pl.select(
                    pl.format("{}-{}", pl.lit(year), pl.int_range(1, n + 1).cast(pl.String).str.zfill(6))
                ).to_series(),
                "hospital_id": hosp["hospital_id"].gather(h),
                "hospital_level": hosp["hospital_level"].gather(h),
                "year": pl.Series(np.full(n, year, dtype=np.int32)),
                "sex": sex,
                "age": age,
                "age_days": age_days,
                "los": los,
                "discharge": np.where(death, 5.0, 1.0),
                "total_cost": cost,
                "pdx": pdx,
                **sdx_cols,
                "pproc": _pick(first, pat),
                "o1": _pick(extra, pat),
                "o2": related,
                "discharge_date": pl.Series(date).cast(pl.Date),
            },
            nan_to_null=True,
        )
        sdx_names = list(sdx_cols)
        frames.append(
            year_frame.with_columns(
                pl.concat_list(sdx_names).list.drop_nulls().alias("sdx"),
                pl.concat_list("o1", "o2").list.drop_nulls().alias("oproc"),
            ).drop(*sdx_names, "o1", "o2")
        )
    df = pl.concat(frames)
    order = [
        "case_id",
        "hospital_id",
        "hospital_level",
        "year",
        "sex",
        "age",
        "age_days",
        "los",
        "discharge",
        "total_cost",
        "pdx",
        "sdx",
        "pproc",
        "oproc",
        "discharge_date",
    ]
    return df.select(order).with_columns(
        pl.lit([], dtype=pl.List(pl.String)).alias("malformed"),
        pl.lit([], dtype=pl.List(pl.String)).alias("intake_warnings"),
    )
