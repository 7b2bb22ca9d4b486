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

import polars as pl

from casemix._frames import FrameLike, to_polars
from casemix._output import summary_like
from casemix._trim import Trim
from casemix._trim import trim as _trim_cells
from casemix.errors import InputError

__all__ = ["BLENDS", "Trim", "Weights", "compute_weights"]

BLENDS = ("means", "sums")

# order matters: a row is excluded for the first reason that applies
EXCLUSION_REASONS = ("ungroupable", "cost_missing", "cost_nonpositive", "los_nonpositive",
                     "year_missing", "year_outside_blend")


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
        ``n_input``, ``n_used``, ``n_kept``, ``excluded`` (reason → rows),
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
    t = trim if isinstance(trim, Trim) else Trim(
        method=trim, lower=percentiles[0], upper=percentiles[1], k=sd_k, a=iqr[0], b=iqr[1])
    if blend not in BLENDS:
        raise InputError(f"blend must be one of {', '.join(BLENDS)}; got {blend!r}")
    if fallback not in ("adrg", "none"):
        raise InputError(f"fallback must be 'adrg' or 'none'; got {fallback!r}")
    if isinstance(min_cases, bool) or not isinstance(min_cases, int) or min_cases < 0:
        raise InputError(f"min_cases must be a whole number >= 0; got {min_cases!r}")
    yw = [float(w) for w in year_weights]
    if not yw or any(w <= 0 for w in yw):
        raise InputError(f"year_weights must be positive numbers; got {list(year_weights)!r}")

    df = to_polars(history)
    missing = [c for c in ("drg", "total_cost") if c not in df.columns]
    if missing:
        raise InputError(f"cost history lacks column(s) {', '.join(missing)}; "
                         "weights need a grouped frame with drg and total_cost")
    d = _clean(df, ungroupable_codes, drop_nonpositive_los)
    n_input = d.height
    years_in = sorted(d.filter(pl.col("_reason").is_null())["year"].unique().to_list())
    blend_years = years_in[-len(yw):]
    weight_of = dict(zip(blend_years, yw[len(yw) - len(blend_years):], strict=True))
    d = d.with_columns(
        pl.when(pl.col("_reason").is_null() & ~pl.col("year").is_in(blend_years))
        .then(pl.lit("year_outside_blend")).otherwise(pl.col("_reason")).alias("_reason"))
    counts = dict(d.group_by("_reason").len().iter_rows())
    excluded = {r: int(counts.get(r, 0)) for r in EXCLUSION_REASONS}
    d = d.filter(pl.col("_reason").is_null()).drop("_reason")
    if d.height == 0:
        raise InputError(f"no case left to weight after cleaning {n_input} rows "
                         f"(excluded: {excluded})")
    d = d.with_columns(pl.col("year").replace_strict(weight_of, return_dtype=pl.Float64)
                       .alias("_w"))

    kept, kept_whole = _trim_cells(d, ["drg", "year"], "cost", t)
    d = d.with_columns(kept)
    k = d.filter("kept")

    m_all = _blend(k, [], blend)
    m_drg = _blend(k, ["drg"], blend)
    table = _describe(d, k).join(m_drg, on="drg", how="left")
    table = table.with_columns((pl.col("trimmed_mean") / m_all).alias("rw"))
    table = _fallback(table, k, m_all, blend, min_cases, fallback, overrides)
    table = table.with_columns((pl.col("rw") * m_all).alias("mean_cost"))
    whole_drgs = kept_whole["drg"].unique()
    table = table.with_columns(pl.col("drg").is_in(whole_drgs.implode()).alias("trim_kept_whole"))
    table = table.select(
        "drg", "adrg", "n", "n_kept", "mean", "median", "sd", "cv", "trimmed_mean",
        "cv_trimmed", "mean_los", "rw", "mean_cost", "source", "trim_kept_whole").sort("drg")

    cv_t = table["cv_trimmed"].drop_nulls()
    cv_u = table["cv"].drop_nulls()
    quality = {
        "all_case_mean": m_all,
        "riv": _riv(k),
        "riv_untrimmed": _riv(d),
        "share_cv_ge_1": float((cv_t >= 1).mean()) if len(cv_t) else None,
        "share_cv_ge_1_untrimmed": float((cv_u >= 1).mean()) if len(cv_u) else None,
        "n_input": n_input, "n_used": d.height, "n_kept": k.height,
        "excluded": excluded,
        "years": {int(y) if y is not None else None: w for y, w in weight_of.items()},
        "blend": blend, "trim": t.describe(), "min_cases": min_cases,
        "fallback_counts": dict(table.group_by("source").len().sort("source").iter_rows()),
        "groups": table.height, "groups_kept_whole": int(table["trim_kept_whole"].sum()),
    }
    return Weights(table=summary_like(table, history), quality=quality,
                   kept_whole=summary_like(kept_whole, history))


def _clean(df: pl.DataFrame, codes: Sequence[str], drop_los: bool) -> pl.DataFrame:
    drg = pl.col("drg").cast(pl.String)
    adrg = pl.col("adrg").cast(pl.String) if "adrg" in df.columns else drg.str.slice(0, 3)
    cost = pl.col("total_cost").cast(pl.Float64, strict=False)
    los = pl.col("los").cast(pl.Float64, strict=False) if "los" in df.columns else pl.lit(None,
                                                                                      pl.Float64)
    year = (pl.col("year").cast(pl.Int32, strict=False) if "year" in df.columns
            else pl.lit(0, pl.Int32))
    reason = (pl.when(drg.is_null() | (drg.str.strip_chars() == "") | drg.is_in(list(codes)))
              .then(pl.lit("ungroupable"))
              .when(cost.is_null() | cost.is_nan()).then(pl.lit("cost_missing"))
              .when((cost <= 0) | cost.is_infinite()).then(pl.lit("cost_nonpositive")))
    if drop_los:
        reason = reason.when(los <= 0).then(pl.lit("los_nonpositive"))
    reason = reason.when(year.is_null()).then(pl.lit("year_missing")).otherwise(pl.lit(None))
    return df.select(drg.alias("drg"), adrg.alias("adrg"), cost.alias("cost"), los.alias("los"),
                     year.alias("year"), reason.alias("_reason"))


def _blend(k: pl.DataFrame, by: list[str], blend: str) -> Any:
    """Blended mean cost per ``by`` (a float when ``by`` is empty)."""
    cells = k.group_by([*by, "year"]).agg(
        pl.col("cost").sum().alias("s"), pl.len().alias("n"), pl.col("_w").first().alias("w"))
    if blend == "means":
        expr = ((pl.col("w") * pl.col("s") / pl.col("n")).sum() / pl.col("w").sum())
    else:
        expr = (pl.col("w") * pl.col("s")).sum() / (pl.col("w") * pl.col("n")).sum()
    if not by:
        return float(cells.select(expr).item())
    return cells.group_by(by).agg(expr.alias("trimmed_mean"))


def _describe(d: pl.DataFrame, k: pl.DataFrame) -> pl.DataFrame:
    c = pl.col("cost")
    raw = d.group_by("drg").agg(
        pl.col("adrg").first(), pl.len().alias("n"), c.mean().alias("mean"),
        c.median().alias("median"), c.std(ddof=1).alias("sd"))
    trimmed = k.group_by("drg").agg(
        pl.len().alias("n_kept"), (c.std(ddof=1) / c.mean()).alias("cv_trimmed"),
        pl.col("los").mean().alias("mean_los"))
    return (raw.with_columns((pl.col("sd") / pl.col("mean")).alias("cv"))
            .join(trimmed, on="drg", how="left"))


def _fallback(table: pl.DataFrame, k: pl.DataFrame, m_all: float, blend: str, min_cases: int,
              fallback: str, overrides: Any) -> pl.DataFrame:
    small = pl.col("n") < min_cases
    source = pl.when(small).then(pl.lit("own_few")).otherwise(pl.lit("own"))
    rw = pl.col("rw")
    if fallback == "adrg":
        adrg = (_blend(k, ["adrg"], blend)
                .join(k.group_by("adrg").len().rename({"len": "_adrg_n"}), on="adrg")
                .with_columns((pl.col("trimmed_mean") / m_all).alias("_adrg_rw"))
                .select("adrg", "_adrg_rw", "_adrg_n"))
        table = table.join(adrg, on="adrg", how="left")
        use = small & (pl.col("_adrg_n") >= min_cases)
        source = pl.when(use).then(pl.lit("adrg")).otherwise(source)
        rw = pl.when(use).then(pl.col("_adrg_rw")).otherwise(rw)
    if overrides is not None:
        ov = _overrides(overrides)
        table = table.join(ov, on="drg", how="left")
        use = small & pl.col("_ov_rw").is_not_null()
        source = pl.when(use).then(pl.lit("override")).otherwise(source)
        rw = pl.when(use).then(pl.col("_ov_rw")).otherwise(rw)
    return table.with_columns(rw.alias("rw"), source.alias("source"))


def _overrides(overrides: Any) -> pl.DataFrame:
    if isinstance(overrides, Mapping):
        ov = pl.DataFrame({"drg": [str(x) for x in overrides],
                           "_ov_rw": [float(v) for v in overrides.values()]},
                          schema={"drg": pl.String, "_ov_rw": pl.Float64})
    else:
        f = to_polars(overrides)
        if not {"drg", "rw"} <= set(f.columns):
            raise InputError(f"override table needs columns drg and rw; has {', '.join(f.columns)}")
        ov = f.select(pl.col("drg").cast(pl.String),
                      pl.col("rw").cast(pl.Float64, strict=False).alias("_ov_rw"))
    bad = ov.filter(pl.col("_ov_rw").is_null() | (pl.col("_ov_rw") <= 0))
    if bad.height:
        raise InputError(f"override table: rw of DRG {bad['drg'][0]!r} is missing or not > 0")
    if ov["drg"].is_duplicated().any():
        raise InputError(f"override table lists DRG {ov.filter(pl.col('drg').is_duplicated())['drg'][0]!r} twice")
    return ov


def _riv(frame: pl.DataFrame) -> float | None:
    """RIV = 1 − SS_within / SS_total of cost (share of variance explained by the groups)."""
    c = pl.col("cost")
    r = frame.select(((c - c.mean().over("drg")) ** 2).sum().alias("w"),
                     ((c - c.mean()) ** 2).sum().alias("t")).row(0)
    return None if not r[1] else float(1.0 - r[0] / r[1])
