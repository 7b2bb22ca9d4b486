"""Relative weights (RW) of DRGs from a grouped cost history.

``RW_g = m_g / M``: the trimmed mean cost of group g over the trimmed mean
cost of all cases [city: fqjz1 municipal definitions 2021; Jinhua 2017;
Zigong].  Trimming (:class:`casemix._trim.Trim`) is done within each
(DRG, year) cell; years are blended 1:2:7 by default, in one of two named
readings; small groups fall back to an ADRG-level weight or an override
table.  Formulas and worked examples: ``docs/payment-weights.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from casemix._frames import FrameLike, number, summary_like, to_polars
from casemix._trim import Trim
from casemix._trim import trim as _trim_cells
from casemix.cases import canonical
from casemix.errors import InputError

__all__ = ["BLENDS", "Trim", "Weights", "compute_weights"]

BLENDS = ("means", "sums")

# order matters: a row is excluded for the first reason that applies (after the
# bad-value rule of docs/cases.md: missing, malformed or negative total_cost)
EXCLUSION_REASONS = (
    "ungroupable",
    "cost_nonpositive",
    "los_nonpositive",
    "year_missing",
    "year_outside_blend",
)


@dataclass(frozen=True)
class Weights:
    """Result of :func:`compute_weights`.

    Attributes
    ----------
    table
        One row per DRG (caller's frame type), sorted by ``drg``: ``drg``,
        ``adrg``, ``n`` (cases after cleaning), ``n_kept`` (after trimming),
        ``mean``, ``median``, ``sd``, ``cv`` (untrimmed, years pooled),
        ``trimmed_mean`` (the blended trimmed mean m_g, yuan), ``cv_trimmed``,
        ``mean_los`` (kept cases; null without ``los``), ``rw``, ``mean_cost``
        (= rw × M, the group's reference cost used by outlier rules),
        ``source`` (``own``, ``adrg``, ``override``, ``own_few``) and
        ``trim_kept_whole`` (trimming would have emptied a year cell of this
        group, so that cell kept all its cases).
    quality
        Region-level figures: ``all_case_mean`` (M), ``riv``,
        ``riv_untrimmed``, ``share_cv_ge_1``, ``share_cv_ge_1_untrimmed``,
        ``n_input``, ``n_used``, ``n_kept``, ``excluded`` (reason → rows:
        ``missing:total_cost``, ``malformed:total_cost``,
        ``negative:total_cost`` by the bad-value rule of ``docs/cases.md``,
        then the reasons of ``EXCLUSION_REASONS``), ``notes`` (bad values,
        one line per reason),
        ``years`` (year → blend weight), ``blend``, ``trim``, ``min_cases``,
        ``fallback_counts`` (source → groups).
    kept_whole
        The (drg, year) cells that trimming would have emptied (kept whole).
    """

    table: FrameLike
    quality: dict[str, Any] = field(default_factory=dict)
    kept_whole: FrameLike = None

    def rw(self) -> dict[str, float]:
        """``{drg: rw}``."""
        t = to_polars(self.table)
        return dict(zip(t["drg"].to_list(), t["rw"].to_list(), strict=True))


def compute_weights(
    history: FrameLike,
    *,
    trim: str | Trim = "percentile",
    percentiles: tuple[float, float] = (0.025, 0.975),
    sd_k: float = 3.0,
    iqr: tuple[float, float] = (0.5, 1.5),
    year_weights: Sequence[float] = (1, 2, 7),
    blend: str = "means",
    min_cases: int = 5,
    fallback: str = "adrg",
    overrides: FrameLike | Mapping[str, float] | None = None,
    ungroupable_codes: Sequence[str] = ("0000",),
    drop_nonpositive_los: bool = True,
    mapping: Mapping[str, str] | None = None,
) -> Weights:
    """Relative weights per DRG from grouped cases with costs.

    Parameters
    ----------
    history
        Grouped cases (pandas/polars/Arrow/path) with ``drg`` and
        ``total_cost`` (yuan); optional ``adrg`` (else the first 3
        characters of ``drg``, the CHS-DRG code convention), ``los``,
        ``year``.
    trim
        ``"none"``, ``"percentile"``, ``"sd"``, ``"iqr"`` or a :class:`Trim`.
        Fences are computed within each (DRG, year) cell.
    percentiles, sd_k, iqr
        Parameters of the trimming methods: (lower, upper) fractions;
        k for mean ± k·SD; (a, b) for Q1 − a·IQR, Q3 + b·IQR.
    year_weights
        Blend weights of the most recent years, oldest first (1:2:7 [spec:
        DIP; unverified for DRG]).  With fewer years in the data the most
        recent weights are used; older years beyond the blend are excluded
        (``excluded['year_outside_blend']``).
    blend
        ``"means"``: m_g = Σ_y w_y·mean_gy / Σ_y w_y over the years the group
        has; M likewise from yearly all-case means.  ``"sums"``:
        m_g = Σ_y w_y·sum_gy / Σ_y w_y·n_gy; M likewise.  (The DIP text
        leaves the reading open [spec]; both are offered.)
    min_cases
        Groups with fewer cleaned cases (all blended years) use the fallback.
    fallback
        ``"adrg"``: the ADRG's weight (its kept cases pooled over its DRGs,
        blended the same way) when the ADRG has at least ``min_cases``;
        ``"none"``: keep the group's own weight (source ``own_few``).
    overrides
        ``{drg: rw}`` or a frame with ``drg``, ``rw``: used first for small
        groups that it lists (source ``override``).
    ungroupable_codes
        DRG codes excluded from weights (besides null/empty).
    drop_nonpositive_los
        Exclude cases with LOS <= 0 [city: Hangzhou training material].
    mapping
        ``{your column: canonical name}`` for columns the aliases of
        ``docs/cases.md`` do not know (住院总费用 etc. are known).

    Returns
    -------
    Weights
        The per-DRG table (caller's frame type) and quality figures.

    Raises
    ------
    InputError
        A required column is missing, a parameter is invalid, or no case is
        left after cleaning.
    """
    t = (
        trim
        if isinstance(trim, Trim)
        else Trim(method=trim, lower=percentiles[0], upper=percentiles[1], k=sd_k, a=iqr[0], b=iqr[1])
    )
    if blend not in BLENDS:
        raise InputError(f"blend must be one of {', '.join(BLENDS)}; got {blend!r}")
    if fallback not in ("adrg", "none"):
        raise InputError(f"fallback must be 'adrg' or 'none'; got {fallback!r}")
    if isinstance(min_cases, bool) or not isinstance(min_cases, int) or min_cases < 0:
        raise InputError(f"min_cases must be a whole number >= 0; got {min_cases!r}")
    yw = [float(w) for w in year_weights]
    if not yw or any(w <= 0 for w in yw):
        raise InputError(f"year_weights must be positive numbers; got {list(year_weights)!r}")

    cases = canonical(
        history, mapping, need=("drg", "total_cost"), optional=("adrg", "los", "year"), step="weights"
    )
    df = cases.used
    d = _clean(df, ungroupable_codes, drop_nonpositive_los)
    n_input = cases.frame.height
    # _reason: 0 = used, i = EXCLUSION_REASONS[i - 1]
    years_in = sorted(d.filter(pl.col("_reason") == 0)["year"].unique().to_list())
    years = years_in[-len(yw) :]
    weight_of = dict(zip(years, yw[len(yw) - len(years) :], strict=True))
    outside = EXCLUSION_REASONS.index("year_outside_blend") + 1
    d = d.with_columns(
        pl.when((pl.col("_reason") == 0) & ~pl.col("year").is_in(years))
        .then(pl.lit(outside, pl.UInt8))
        .otherwise(pl.col("_reason"))
        .alias("_reason")
    )
    counts = np.bincount(d["_reason"].to_numpy(), minlength=len(EXCLUSION_REASONS) + 1)
    excluded = {
        **{r: n for r, n in cases.counts.items() if r.endswith(":total_cost")},
        **{r: int(counts[i + 1]) for i, r in enumerate(EXCLUSION_REASONS)},
    }
    d = d.filter(pl.col("_reason") == 0).drop("_reason")
    if d.height == 0:
        raise InputError(f"no case left to weight after cleaning {n_input} rows (excluded: {excluded})")

    # integer codes: group ids 0..G-1 in code order, year ids 0..ny-1, cell = group × year
    drgs = d["drg"].unique().sort()
    g = d["drg"].cast(pl.Enum(drgs)).to_physical().to_numpy().astype(np.int64)
    ny = len(years)
    yi = d["year"].replace_strict(years, list(range(ny)), return_dtype=pl.Int64).to_numpy()
    cost = d["cost"].to_numpy()
    los = d["los"].to_numpy()
    n_g = len(drgs)
    c = _Cases(g, yi, cost, np.array([weight_of[y] for y in years]), n_g, ny)

    kept, whole_cells = _trim_cells(cost, g * ny + yi, n_g * ny, t)
    k = c.subset(kept)
    m_all = float(k.blend(np.zeros(k.g.size, np.int64), 1, blend)[0])
    trimmed_mean = k.blend(k.g, n_g, blend)
    has_adrg = "adrg" in df.columns
    per_g = (
        d.select("cost", *(["adrg"] if has_adrg else []))
        .with_columns(pl.Series("g", g))
        .group_by("g")
        .agg(pl.col("cost").median(), *([pl.col("adrg").first()] if has_adrg else []))
        .sort("g")
    )
    # CHS-DRG codes start with their ADRG's 3 characters: sliced once per DRG, not per case
    adrg = per_g["adrg"] if has_adrg else drgs.str.slice(0, 3).alias("adrg")
    stats = _describe(c, k, los[kept], per_g["cost"].to_numpy())
    rw, source = _fallback(
        stats["n"], trimmed_mean / m_all, adrg, k, m_all, blend, min_cases, fallback, overrides, drgs
    )
    whole_g = np.unique(whole_cells // ny)
    table = pl.DataFrame(
        {"drg": drgs, "adrg": adrg, **stats, "trimmed_mean": trimmed_mean, "rw": rw}
    ).with_columns(
        pl.col("n", "n_kept").cast(pl.Int64),
        pl.col(pl.Float64).fill_nan(None),
        (pl.col("rw") * m_all).alias("mean_cost"),
        pl.Series("source", source, pl.String),
        pl.Series("trim_kept_whole", np.isin(np.arange(n_g), whole_g)),
    )
    table = table.select(
        "drg",
        "adrg",
        "n",
        "n_kept",
        "mean",
        "median",
        "sd",
        "cv",
        "trimmed_mean",
        "cv_trimmed",
        "mean_los",
        "rw",
        "mean_cost",
        "source",
        "trim_kept_whole",
    )
    kept_whole = pl.DataFrame(
        {
            "drg": drgs.gather(whole_cells // ny),
            "year": pl.Series([years[i] for i in whole_cells % ny], dtype=pl.Int32),
            "n": np.bincount(g * ny + yi, minlength=n_g * ny)[whole_cells].astype(np.int64),
        }
    )

    cv_t = table["cv_trimmed"].drop_nulls()
    cv_u = table["cv"].drop_nulls()
    quality = {
        "all_case_mean": m_all,
        "riv": k.riv(),
        "riv_untrimmed": c.riv(),
        "share_cv_ge_1": number((cv_t >= 1).mean()) if len(cv_t) else None,
        "share_cv_ge_1_untrimmed": number((cv_u >= 1).mean()) if len(cv_u) else None,
        "n_input": n_input,
        "n_used": d.height,
        "n_kept": int(kept.sum()),
        "excluded": excluded,
        "notes": cases.notes(),
        "years": {int(y): w for y, w in weight_of.items()},
        "blend": blend,
        "trim": t.describe(),
        "min_cases": min_cases,
        "fallback_counts": dict(table.group_by("source").len().sort("source").iter_rows()),
        "groups": table.height,
        "groups_kept_whole": int(table["trim_kept_whole"].sum()),
    }
    return Weights(
        table=summary_like(table, history), quality=quality, kept_whole=summary_like(kept_whole, history)
    )


@dataclass(frozen=True)
class _Cases:
    """Cases as integer codes and costs; sums per (group, year) cell by ``np.bincount``."""

    g: np.ndarray  # group id per case
    yi: np.ndarray  # year id per case
    cost: np.ndarray
    yw: np.ndarray  # blend weight per year id
    n_g: int
    ny: int

    def subset(self, mask: np.ndarray) -> _Cases:
        return _Cases(self.g[mask], self.yi[mask], self.cost[mask], self.yw, self.n_g, self.ny)

    def blend(self, group: np.ndarray, n_groups: int, blend: str) -> np.ndarray:
        """Blended mean cost per group id in ``group`` (NaN for a group without cases)."""
        cell = group * self.ny + self.yi
        size = n_groups * self.ny
        s = np.bincount(cell, weights=self.cost, minlength=size).reshape(n_groups, self.ny)
        n = np.bincount(cell, minlength=size).reshape(n_groups, self.ny).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            if blend == "means":
                has = n > 0
                yearly = np.where(has, s / np.where(has, n, 1.0), 0.0)
                means: np.ndarray = (yearly * self.yw).sum(1) / (has * self.yw).sum(1)
            else:
                means = (s * self.yw).sum(1) / (n * self.yw).sum(1)
        return means

    def riv(self) -> float | None:
        """RIV = 1 − SS_within / SS_total of cost (share of variance explained by the groups)."""
        n = np.bincount(self.g, minlength=self.n_g)
        mean_g = np.bincount(self.g, weights=self.cost, minlength=self.n_g) / np.maximum(n, 1)
        ssw = float(((self.cost - mean_g[self.g]) ** 2).sum())
        sst = float(((self.cost - self.cost.mean()) ** 2).sum()) if self.cost.size else 0.0
        return None if not sst else 1.0 - ssw / sst


def _mean_sd(g: np.ndarray, x: np.ndarray, n_g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = np.bincount(g, minlength=n_g)
    mean = np.bincount(g, weights=x, minlength=n_g) / np.where(n > 0, n, np.nan)
    ss = np.bincount(g, weights=(x - mean[g]) ** 2, minlength=n_g)
    sd = np.sqrt(ss / np.where(n > 1, n - 1, np.nan))  # sample SD (ddof 1)
    return n, mean, sd


def _describe(c: _Cases, k: _Cases, los_kept: np.ndarray, median: np.ndarray) -> dict:
    n, mean, sd = _mean_sd(c.g, c.cost, c.n_g)
    n_kept, mean_k, sd_k = _mean_sd(k.g, k.cost, c.n_g)
    has_los = ~np.isnan(los_kept)
    los_n = np.bincount(k.g[has_los], minlength=c.n_g)
    los_sum = np.bincount(k.g[has_los], weights=los_kept[has_los], minlength=c.n_g)
    return {
        "n": n,
        "n_kept": n_kept,
        "mean": mean,
        "median": median,
        "sd": sd,
        "cv": sd / mean,
        "cv_trimmed": sd_k / mean_k,
        "mean_los": los_sum / np.where(los_n > 0, los_n, np.nan),
    }


def _clean(df: pl.DataFrame, codes: Sequence[str], drop_los: bool) -> pl.DataFrame:
    drg = pl.col("drg").cast(pl.String)
    adrg = [pl.col("adrg").cast(pl.String)] if "adrg" in df.columns else []
    cost = pl.col("total_cost").cast(pl.Float64, strict=False)
    los = pl.col("los").cast(pl.Float64, strict=False) if "los" in df.columns else pl.lit(None, pl.Float64)
    year = pl.col("year").cast(pl.Int32, strict=False) if "year" in df.columns else pl.lit(0, pl.Int32)
    code = {r: pl.lit(i + 1, pl.UInt8) for i, r in enumerate(EXCLUSION_REASONS)}
    chain = (
        pl.when(drg.is_null() | (drg == "") | drg.is_in(list(codes)))
        .then(code["ungroupable"])
        .when(cost <= 0)
        .then(code["cost_nonpositive"])
    )
    if drop_los:
        chain = chain.when(los <= 0).then(code["los_nonpositive"])
    reason = chain.when(year.is_null()).then(code["year_missing"]).otherwise(pl.lit(0, pl.UInt8))
    return df.select(
        drg.alias("drg"),
        *adrg,
        cost.alias("cost"),
        los.alias("los"),
        year.alias("year"),
        reason.alias("_reason"),
    )


def _fallback(
    n: np.ndarray,
    rw: np.ndarray,
    adrg: pl.Series,
    k: _Cases,
    m_all: float,
    blend: str,
    min_cases: int,
    fallback: str,
    overrides: Any,
    drgs: pl.Series,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and their source for groups with fewer than ``min_cases`` cases."""
    small = n < min_cases
    source = np.where(small, "own_few", "own").astype(object)
    rw = rw.copy()
    if fallback == "adrg" and small.any():
        codes = adrg.drop_nulls().unique().sort()
        a_of_g = adrg.cast(pl.Enum(codes)).to_physical().cast(pl.Int64).fill_null(-1).to_numpy()
        n_a = len(codes)
        ok = a_of_g >= 0
        a_case = a_of_g[k.g]
        keep = a_case >= 0
        adrg_rw = k.subset(keep).blend(a_case[keep], max(n_a, 1), blend) / m_all
        adrg_n = np.bincount(a_of_g[ok], weights=n[ok], minlength=n_a)
        use = small & ok
        use[ok] &= adrg_n[a_of_g[ok]] >= min_cases
        rw[use] = adrg_rw[a_of_g[use]]
        source[use] = "adrg"
    if overrides is not None:
        ov = (
            pl.DataFrame({"drg": drgs})
            .join(_overrides(overrides), on="drg", how="left", maintain_order="left")["_ov_rw"]
            .to_numpy()
        )
        use = small & ~np.isnan(ov)
        rw[use] = ov[use]
        source[use] = "override"
    return rw, source


def _overrides(overrides: Any) -> pl.DataFrame:
    if isinstance(overrides, Mapping):
        ov = pl.DataFrame(
            {"drg": [str(x) for x in overrides], "_ov_rw": [float(v) for v in overrides.values()]},
            schema={"drg": pl.String, "_ov_rw": pl.Float64},
        )
    else:
        f = to_polars(overrides)
        if not {"drg", "rw"} <= set(f.columns):
            raise InputError(f"override table needs columns drg and rw; has {', '.join(f.columns)}")
        ov = f.select(
            pl.col("drg").cast(pl.String), pl.col("rw").cast(pl.Float64, strict=False).alias("_ov_rw")
        )
    bad = ov.filter(pl.col("_ov_rw").is_null() | (pl.col("_ov_rw") <= 0))
    if bad.height:
        raise InputError(f"override table: rw of DRG {bad['drg'][0]!r} is missing or not > 0")
    if ov["drg"].is_duplicated().any():
        raise InputError(
            f"override table lists DRG {ov.filter(pl.col('drg').is_duplicated())['drg'][0]!r} twice"
        )
    return ov
