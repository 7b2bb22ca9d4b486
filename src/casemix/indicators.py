"""Case-mix indicators: CMI, efficiency indices, low-risk mortality, grouping quality.

Every indicator, its formula and its source are listed in
``docs/indicators.md``; the docstrings below repeat the formula.

The case set behind the indicators (excluded, grouped, weighted) is defined in
``casemix._case_sets``; ``docs/indicators.md`` states it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from casemix._case_sets import (
    DEATH_CODE,
    case_sets,
    prepare_cases,
    regional_mean,
    require_columns,
    weights_table,
)
from casemix._frames import FrameLike, summary_like
from casemix.errors import InputError

__all__ = [
    "hospital_indicators",
    "drg_indicators",
    "grouping_riv",
    "low_risk_drgs",
]

#: How the efficiency indices average (see ``hospital_indicators``).
EFFICIENCY = ("mean_of_ratios", "ratio_of_sums")


def _with_month(df: pl.DataFrame) -> pl.DataFrame:
    """A ``month`` column (``YYYY-MM``) from ``discharge_date`` when there is none."""
    if "month" in df.columns:
        return df.with_columns(pl.col("month").cast(pl.String))
    if "discharge_date" not in df.columns:
        raise InputError("indicators by month need a 'month' or a 'discharge_date' column")
    d = pl.col("discharge_date")
    if df.schema["discharge_date"] == pl.String:
        d = d.str.to_date(strict=False)
    return df.with_columns(month=d.dt.strftime("%Y-%m"))


def _keys(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return ["hospital_id"]
    return [by] if isinstance(by, str) else list(by)


# --------------------------------------------------------------------------- low risk


def low_risk_drgs(
    cases: FrameLike,
    *,
    z: float = -1.0,
    log: bool = True,
    min_cases: int = 1,
    max_los: float = 60.0,
    min_cost: float = 5.0,
    ungroupable: Sequence[str] = ("0000",),
    death_code: float = DEATH_CODE,
    mapping: dict[str, str] | None = None,
) -> list[str]:
    """The low-risk DRGs of a case set, by the mortality z-score rule.

    Rule: for every DRG g with at least ``min_cases`` grouped cases, take its
    in-hospital mortality m_g = deaths / cases.  A DRG is low risk when its
    standardised mortality z_g = (f(m_g) − mean_f) / sd_f < ``z`` (−1), with
    f = ln when ``log`` (the default) and the mean and (population) SD taken
    over the DRGs with m_g > 0; DRGs with no death have ln m = −∞ and are
    low risk.  With ``log=False`` f is the identity over all DRGs.

    Source: the national tertiary-hospital performance manual
    (国家三级公立医院绩效考核操作手册, 低风险组病例死亡率) defines low-risk
    DRGs as those whose mortality lies more than one SD below the mean
    (quoted by secondary sources; primary text not read).  The log
    transform and the zero-death rule are the Beijing BJ-DRG practice as
    commonly described [unverified]; both are parameters here.

    Parameters
    ----------
    cases : frame
        Grouped cases with ``drg`` and ``discharge`` (离院方式; ``death_code``
        = death).
    z : float
        Threshold on the z-score; strictly below is low risk.
    log : bool
        Standardise ln(mortality) instead of mortality.
    min_cases : int
        DRGs with fewer grouped cases are not classified (never low risk).

    Returns
    -------
    list of str
        Sorted DRG codes.
    """
    df = prepare_cases(cases, need=("drg", "discharge"), mapping=mapping)
    df = case_sets(df, max_los=max_los, min_cost=min_cost, ungroupable=ungroupable)
    return _low_risk_from(df, z=z, log=log, min_cases=min_cases, death_code=death_code)


def _low_risk_from(df: pl.DataFrame, *, z: float, log: bool, min_cases: int, death_code: float) -> list[str]:
    if "discharge" not in df.columns:
        return []
    per = (
        df.filter(pl.col("_grouped"))
        .group_by("drg")
        .agg(n=pl.len(), deaths=(pl.col("discharge") == death_code).fill_null(False).sum())
        .filter(pl.col("n") >= min_cases)
        .with_columns(m=pl.col("deaths") / pl.col("n"))
    )
    if per.is_empty():
        return []
    m = per["m"].to_numpy()
    drgs = per["drg"].to_numpy()
    if log:
        pos = m > 0
        f = np.log(m[pos])
        low = ~pos  # no death: ln 0 = −inf, below any threshold
        if f.size >= 2 and f.std() > 0:
            zs = (f - f.mean()) / f.std()
            low[np.flatnonzero(pos)[zs < z]] = True
    else:
        low = np.zeros(m.size, dtype=bool)
        if m.size >= 2 and m.std() > 0:
            low = (m - m.mean()) / m.std() < z
    return sorted(drgs[low].tolist())


# --------------------------------------------------------------------------- per hospital


def hospital_indicators(
    cases: FrameLike,
    weights: FrameLike,
    *,
    by: str | Sequence[str] | None = "hospital_id",
    max_los: float = 60.0,
    min_cost: float = 5.0,
    ungroupable: Sequence[str] = ("0000",),
    low_risk: Sequence[str] | None = None,
    low_risk_z: float = -1.0,
    death_code: float = DEATH_CODE,
    efficiency: str = "mean_of_ratios",
    mapping: dict[str, str] | None = None,
) -> FrameLike:
    """Case-mix indicators per hospital (or per any grouping of cases).

    Formulas (sources in ``docs/indicators.md``):

    * ``grouping_rate`` = grouped / (cases − excluded) [city pages];
    * ``cmi`` = Σ RW / weighted cases; ``total_weight`` = Σ RW [city pages,
      CHS-DRG];
    * ``drgs`` = number of distinct DRGs among grouped cases;
    * ``cost_efficiency`` (费用消耗指数) = the mean over the hospital's
      cases of c_i / M_g(i), M_g being the mean cost of the case's DRG over
      all hospitals in ``cases`` (the region) — equivalently
      Σ_g (hospital's mean cost in g / M_g × its cases in g) / its cases
      [DIP 3.0 draft appendix 20–21; CHS-DRG 技术规范];
      ``time_efficiency`` (时间消耗指数) likewise with LOS.  Both over
      grouped cases with a cost (resp. LOS) and a regional mean above 0;
    * ``low_risk_mortality`` = deaths / cases among grouped cases in
      low-risk DRGs (see :func:`low_risk_drgs`);
    * ``cc_share``, ``mcc_share`` = share of grouped cases with severity
      ``CC`` (resp. ``MCC``).

    Parameters
    ----------
    cases : frame
        A grouped frame: ``hospital_id`` (or the ``by`` columns), ``drg``;
        optionally ``total_cost``, ``los``, ``discharge``, ``severity``,
        ``discharge_date`` / ``month``, ``department``.
    weights : frame
        Any frame with columns ``drg`` and ``rw``.
    by : str or sequence of str
        Grouping columns; ``"month"`` is derived from ``discharge_date``
        when there is no ``month`` column.  Default: per hospital.
    max_los, min_cost : float
        Exclusion thresholds (days, yuan).
    ungroupable : sequence of str
        DRG codes that mean "not grouped".
    low_risk : sequence of str, optional
        The low-risk DRGs; derived from ``cases`` by :func:`low_risk_drgs`
        when not given.
    low_risk_z : float
        The z-score threshold of the derivation.
    efficiency : {"mean_of_ratios", "ratio_of_sums"}
        ``"mean_of_ratios"`` is the national definition above;
        ``"ratio_of_sums"`` gives Σ c_i / Σ M_g(i) instead, the form some
        city pages state (``../shared/payment-notes.md``, "Indicators").
        They agree when a hospital has one DRG and differ when its mix is
        uneven: the ratio of sums weights expensive DRGs more.
    mapping : dict, optional
        ``{your column: canonical name}`` besides the aliases of
        ``docs/cases.md``; a bad value (malformed cost, …) is read as
        absent, as a missing one.

    Returns
    -------
    frame
        One row per group (sorted by the keys), same container type as
        ``cases``.
    """
    if efficiency not in EFFICIENCY:
        raise InputError(
            f"hospital_indicators: efficiency must be one of {', '.join(EFFICIENCY)}; got {efficiency!r}"
        )
    keys = _keys(by)
    df = prepare_cases(cases, need=("drg",), mapping=mapping)
    if "month" in keys:
        df = _with_month(df)
    require_columns(df, keys, "hospital_indicators")
    df = case_sets(df, max_los=max_los, min_cost=min_cost, ungroupable=ungroupable)
    df = df.join(weights_table(weights), on="drg", how="left", maintain_order="left")
    if low_risk is None:
        low_risk = _low_risk_from(df, z=low_risk_z, log=True, min_cases=1, death_code=death_code)

    g = pl.col("_grouped")
    # the "expected" cost and LOS of each case: its DRG's mean over all hospitals
    df = df.with_columns(
        regional_mean(c).alias(f"_exp_{c}") for c in ("total_cost", "los") if c in df.columns
    )
    weighted = g & pl.col("rw").is_not_null()

    def ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
        return pl.when(den > 0).then(num / den).otherwise(None)

    def consumption_index(col: str) -> pl.Expr:
        if col not in df.columns:
            return pl.lit(None, dtype=pl.Float64)
        expected = pl.col(f"_exp_{col}")
        ok = g & pl.col(col).is_not_null() & (expected > 0).fill_null(False)
        if efficiency == "ratio_of_sums":
            return ratio(pl.col(col).filter(ok).sum(), expected.filter(ok).sum())
        return (pl.col(col) / expected).filter(ok).mean()

    death = (
        (pl.col("discharge") == death_code).fill_null(False) if "discharge" in df.columns else pl.lit(False)
    )
    lr = g & pl.col("drg").is_in(list(low_risk))
    sev = pl.col("severity") if "severity" in df.columns else pl.lit(None, dtype=pl.String)
    n_grouped = g.sum()
    aggs = [
        pl.len().alias("cases"),
        pl.col("_excluded").sum().alias("excluded"),
        n_grouped.alias("grouped"),
        ratio(n_grouped, pl.len() - pl.col("_excluded").sum()).alias("grouping_rate"),
        weighted.sum().alias("weighted_cases"),
        pl.col("rw").filter(weighted).sum().alias("total_weight"),
        ratio(pl.col("rw").filter(weighted).sum(), weighted.sum()).alias("cmi"),
        pl.col("drg").filter(g).n_unique().alias("drgs"),
        consumption_index("total_cost").alias("cost_efficiency"),
        consumption_index("los").alias("time_efficiency"),
        lr.sum().alias("low_risk_cases"),
        (lr & death).sum().alias("low_risk_deaths"),
        ratio((lr & death).sum(), lr.sum()).alias("low_risk_mortality"),
        ratio((g & (sev == "CC")).sum(), n_grouped).alias("cc_share"),
        ratio((g & (sev == "MCC")).sum(), n_grouped).alias("mcc_share"),
    ]
    if "total_cost" in df.columns:
        aggs.append(pl.col("total_cost").sum().alias("total_cost"))
    out = df.group_by(keys).agg(aggs).sort(keys, nulls_last=True)
    counts = ["cases", "excluded", "grouped", "weighted_cases", "drgs", "low_risk_cases", "low_risk_deaths"]
    out = out.with_columns(
        pl.col(counts).cast(pl.Int64),
        pl.col(
            "grouping_rate",
            "cmi",
            "total_weight",
            "cost_efficiency",
            "time_efficiency",
            "low_risk_mortality",
            "cc_share",
            "mcc_share",
        ).cast(pl.Float64),
    )
    return summary_like(out, cases)


# --------------------------------------------------------------------------- per DRG


def drg_indicators(
    cases: FrameLike,
    weights: FrameLike | None = None,
    *,
    max_los: float = 60.0,
    min_cost: float = 5.0,
    ungroupable: Sequence[str] = ("0000",),
    low_risk: Sequence[str] | None = None,
    low_risk_z: float = -1.0,
    death_code: float = DEATH_CODE,
    mapping: dict[str, str] | None = None,
) -> FrameLike:
    """Per-DRG statistics of the grouped cases.

    Columns: ``drg``, ``n``, ``total_cost``, ``mean_cost``, ``sd_cost``
    (sample SD, ddof = 1), ``cv`` = SD / mean [DIP spec; CHS-DRG grouping
    evaluation], ``mean_los``, ``deaths``, ``mortality``, ``low_risk``
    (see :func:`low_risk_drgs`) and, when ``weights`` is given, ``rw``.
    Sorted by total cost, largest first.  ``mapping``: as for
    :func:`hospital_indicators`.
    """
    df = prepare_cases(cases, need=("drg",), mapping=mapping)
    df = case_sets(df, max_los=max_los, min_cost=min_cost, ungroupable=ungroupable)
    if low_risk is None:
        low_risk = _low_risk_from(df, z=low_risk_z, log=True, min_cases=1, death_code=death_code)
    cost = pl.col("total_cost") if "total_cost" in df.columns else pl.lit(None, dtype=pl.Float64)
    los = pl.col("los") if "los" in df.columns else pl.lit(None, dtype=pl.Float64)
    death = (
        (pl.col("discharge") == death_code).fill_null(False) if "discharge" in df.columns else pl.lit(False)
    )
    out = (
        df.filter(pl.col("_grouped"))
        .group_by("drg")
        .agg(
            n=pl.len(),
            total_cost=cost.sum(),
            mean_cost=cost.mean(),
            sd_cost=cost.std(ddof=1),
            mean_los=los.mean(),
            deaths=death.sum(),
        )
        .with_columns(
            cv=pl.when(pl.col("mean_cost") > 0).then(pl.col("sd_cost") / pl.col("mean_cost")),
            mortality=pl.col("deaths") / pl.col("n"),
            low_risk=pl.col("drg").is_in(list(low_risk)),
        )
        .with_columns(
            pl.col("n", "deaths").cast(pl.Int64),
            pl.col("total_cost", "mean_cost", "sd_cost", "cv", "mean_los").cast(pl.Float64),
        )
        .sort(["total_cost", "drg"], descending=[True, False], nulls_last=True)
    )
    if weights is not None:
        out = out.join(weights_table(weights), on="drg", how="left", maintain_order="left")
    return summary_like(out, cases)


def grouping_riv(
    cases: FrameLike,
    *,
    value: str = "total_cost",
    max_los: float = 60.0,
    min_cost: float = 5.0,
    ungroupable: Sequence[str] = ("0000",),
    mapping: dict[str, str] | None = None,
) -> float:
    """Reduction in variance (RIV) of a grouping: the share of variance the DRGs explain.

    RIV = Σ_g n_g (ȳ_g − ȳ)² / Σ_i (y_i − ȳ)² = 1 − SS_within / SS_total,
    over grouped cases with a value; 1 means groups are internally homogeneous, 0 that they explain
    nothing.  Standard grouping-evaluation statistic (e.g. 程亮亮 et al.,
    中国卫生统计 2017(3):404–407; CHS-DRG technical specification).

    Returns NaN when there are fewer than two cases or no variance.
    """
    df = prepare_cases(cases, need=("drg", value), mapping=mapping)
    df = df.with_columns(pl.col(value).cast(pl.Float64, strict=False))
    df = case_sets(df, max_los=max_los, min_cost=min_cost, ungroupable=ungroupable)
    df = df.filter(pl.col("_grouped") & pl.col(value).is_not_null())
    if df.height < 2:
        return math.nan
    # between-group over total sum of squares; casemix.weights reports the same
    # statistic on its trimmed set (a test ties the two together)
    y = pl.col(value)
    total = df.select(((y - y.mean()) ** 2).sum()).item()
    if not total > 0:
        return math.nan
    within = df.select(((y - y.mean().over("drg")) ** 2).sum()).item()
    return float(1.0 - within / total)
