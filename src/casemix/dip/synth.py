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

import datetime as _dt

import numpy as np
import polars as pl

# pdx choices, procedure sequence (principal first; empty = conservative),
# related procedures as (code, probability, cost factor), mean cost (yuan), share
_PATTERNS: list[tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, float, float], ...],
                      float, float]] = [
    (("K35.300", "K35.301"), ("47.0100",),
     (("99.0400", 0.30, 28_849 / 28_033), ("54.5100", 0.22, 44_003 / 28_033)), 28_033, 5.0),
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
    (("Z51.100",), ("99.2500",), (), 8_600, 1.5),      # chemo session: tumour dx in sdx
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
    (("R50.900",), (), (), 3_000, 0.05),             # may not be principal: ungrouped
]

# secondary diagnoses: (code, probability, cost factor)
_SECONDARY = (("I10.x00", 0.25, 1.0), ("E11.900", 0.15, 1.03), ("J96.000", 0.03, 1.45),
              ("N17.900", 0.03, 1.35))
_TUMOUR = ("C34", "C50", "Z51")
_LEVEL_FACTOR = {"3": 1.18, "2": 1.0, "1": 0.82}


def hospitals(n: int = 8) -> pl.DataFrame:
    """``hospital_id`` and ``hospital_level`` of ``n`` synthetic hospitals (a quarter level 3)."""
    ids = [f"H{i + 1:02d}" for i in range(n)]
    n3 = max(1, n // 4)
    n2 = max(1, (n - n3) // 2) if n > 1 else 0
    levels = ["3"] * n3 + ["2"] * n2 + ["1"] * (n - n3 - n2)
    return pl.DataFrame({"hospital_id": ids, "hospital_level": levels[:n]})


def history(n: int = 20_000, *, years: tuple[int, ...] = (2021, 2022, 2023),
            n_hospitals: int = 8, seed: int = 0, cv: float = 0.35,
            drift: float = 0.03) -> pl.DataFrame:
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
    hosp_ids, hosp_levels = hosp["hospital_id"].to_list(), hosp["hospital_level"].to_list()
    eff = rng.uniform(0.9, 1.12, n_hospitals)
    shares = np.array([p[4] for p in _PATTERNS])
    shares = shares / shares.sum()
    sigma = float(np.sqrt(np.log1p(cv * cv)))
    cols: dict[str, list] = {k: [] for k in ("case_id", "hospital_id", "hospital_level", "year",
                                              "sex", "age", "age_days", "los", "discharge",
                                              "total_cost", "pdx", "sdx", "pproc", "oproc",
                                              "discharge_date")}
    for y_i, year in enumerate(years):
        pat = rng.choice(len(_PATTERNS), size=n, p=shares)
        h = rng.integers(0, n_hospitals, size=n)
        u = rng.random((n, 8))
        u_sdx = rng.random((n, len(_SECONDARY)))
        noise = rng.lognormal(-sigma * sigma / 2, sigma, size=n)
        ages = rng.integers(18, 92, size=n).astype(float)
        days = rng.integers(0, 365, size=n)
        for i in range(n):
            pdxs, procs, related, mean, _ = _PATTERNS[pat[i]]
            pdx = pdxs[int(u[i, 0] * len(pdxs))]
            factor = 1.0
            oproc = list(procs[1:])
            for code, prob, f in related:
                if u[i, 1] < prob:
                    oproc.append(code)
                    factor *= f
                    break
                u[i, 1] -= prob
            sdx = []
            if pdx.startswith("Z51"):
                sdx.append("C34.900x001")
            for j, (code, prob, f) in enumerate(_SECONDARY):
                if u_sdx[i, j] < prob:
                    sdx.append(code)
                    factor *= f
            if pdx[:3] in _TUMOUR and u[i, 5] < 0.2:
                sdx.append("C78.000")
                factor *= 1.25
            age, age_days = ages[i], None
            if pdx.startswith("O80"):
                age = float(20 + int(u[i, 6] * 20))
            elif pdx.startswith("J18") and u[i, 6] < 0.12:
                age, age_days = 0.0, float(1 + int(u[i, 7] * 300))
                factor *= 0.7
            if age >= 65:
                factor *= 1.08
            death = pdx[:3] in ("C34", "I63", "J18") and u[i, 7] < 0.04
            if death:
                factor *= 0.85
            hid = int(h[i])
            level = hosp_levels[hid]
            cost = (mean * factor * _LEVEL_FACTOR[level] * eff[hid] * (1 + drift) ** y_i
                    * noise[i])
            cols["case_id"].append(f"{year}-{i + 1:06d}")
            cols["hospital_id"].append(hosp_ids[hid])
            cols["hospital_level"].append(level)
            cols["year"].append(year)
            cols["sex"].append(2.0 if pdx.startswith(("O", "C50")) else float(1 + (u[i, 3] < 0.5)))
            cols["age"].append(age)
            cols["age_days"].append(age_days)
            cols["los"].append(float(max(1, round(cost / 1_200 * (0.6 + 0.8 * u[i, 4])))))
            cols["discharge"].append(5.0 if death else 1.0)
            cols["total_cost"].append(round(cost, 2))
            cols["pdx"].append(pdx)
            cols["sdx"].append(sdx)
            cols["pproc"].append(procs[0] if procs else None)
            cols["oproc"].append(oproc)
            cols["discharge_date"].append(_dt.date(year, 1, 1) + _dt.timedelta(days=int(days[i])))
    # lists go through Arrow: polars builds list columns from Python lists slowly
    import pyarrow as pa

    arrow = {"case_id": pa.string(), "hospital_id": pa.string(), "hospital_level": pa.string(),
             "year": pa.int32(), "sex": pa.float64(), "age": pa.float64(),
             "age_days": pa.float64(), "los": pa.float64(), "discharge": pa.float64(),
             "total_cost": pa.float64(), "pdx": pa.string(), "sdx": pa.list_(pa.string()),
             "pproc": pa.string(), "oproc": pa.list_(pa.string()), "discharge_date": pa.date32()}
    df = pl.from_arrow(pa.table({k: pa.array(cols[k], type=t) for k, t in arrow.items()}))
    return df.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias("malformed"),
                           pl.lit([], dtype=pl.List(pl.String)).alias("intake_warnings"))
