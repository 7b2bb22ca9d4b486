"""DIP scores (病种分值) and adjustment coefficients from a grouped cost history.

Sources (see ``docs/dip-rules.md``):

- Score ``RW_i = m_i / M × 1000``: ``m_i`` the mean cost of group ``i``,
  ``M`` the mean cost of all cases (average-cost method) or of a benchmark
  group (benchmark-group method) [spec: DIP 3.0 draft, restating 1.0].
- Costs of three years blend 1:2:7 (oldest to latest) [spec]; whether the
  blend weights yearly *means* or yearly *sums* is not settled, so both
  readings are offered (``blend="mean"`` / ``blend="sum"``).
- Hospital coefficient: hospital (or level) cost over the cost its case mix
  predicts; primary-care (基层) groups carry none [spec].
- Auxiliary sub-types (辅助目录): age bands (18–64 is the reference band,
  not a sub-type), CC/MCC severity and tumour (metastasis,
  radio/chemotherapy) for stays over 3 days, death, ICU-day bands 2–7,
  8–14, 15–30, 31+; coefficient ``m_j / M_group``, kept only where it
  lowers the group's CV by at least 20% [spec: DIP 3.0 draft §5.2 二].
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from casemix._frames import FrameLike, summary_like, to_polars
from casemix.errors import InputError, PolicyError

__all__ = [
    "AGE_BANDS",
    "ICU_BANDS",
    "NOT_SUBTYPE",
    "hospital_coefficients",
    "scores",
    "subtype_coefficients",
    "subtype_labels",
    "year_weights_for",
]

#: age bands of the DIP auxiliary catalogue [spec: DIP 技术规范 辅助目录]
AGE_BANDS = ("0-28d", "29d-1y", "1-6", "7-17", "18-64", "65+")
#: ICU-day bands (监护病房住院天数分型: 2-7, 8-14, 15-30, 31+ days) [spec: 3.0 draft §5.2 二(四)3]
ICU_BANDS = ("2-7", "8-14", "15-30", "31+")
#: labels that are no sub-type: the reference age band and "none" (coefficient 1) [spec:
#: 3.0 draft §5.3 一, only cases "纳入辅助分型调节" take a sub-type coefficient]
NOT_SUBTYPE = frozenset({"18-64", "none"})
#: tumour and severity sub-types need a stay over this many days [spec: 3.0 draft §5.2 二(四)]
MIN_SUBTYPE_LOS = 3

# radiotherapy (92.2x) and chemotherapy / biological therapy (99.25, 99.28) procedure prefixes
_RADIO_CHEMO_PROC = ("92.2", "99.25", "99.28")
_RADIO_CHEMO_DX = ("Z51.0", "Z51.1")


def _require(df: pl.DataFrame, cols: list[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"{what} needs column(s) {', '.join(missing)}")


def year_weights_for(years: list[int], weights: tuple[float, ...]) -> dict[int, float]:
    """Weights of the given years, latest year last: (1, 2, 7) → oldest 1, latest 7.

    With fewer years than weights the latest weights are used (two years:
    2:7); with more, the oldest years get weight 0.
    """
    ys = sorted(set(years))
    w = (
        list(weights)[-len(ys) :]
        if len(ys) <= len(weights)
        else [0.0] * (len(ys) - len(weights)) + list(weights)
    )
    return dict(zip(ys, (float(x) for x in w), strict=True))


def _blended(stats: pl.DataFrame, keys: list[str], blend: str) -> pl.DataFrame:
    """Blend per-year (n, sum, mean) rows of ``stats`` into one mean per key."""
    if blend == "sum":
        expr = (pl.col("sum") * pl.col("w")).sum() / (pl.col("n") * pl.col("w")).sum()
    elif blend == "mean":
        expr = (pl.col("mean") * pl.col("w")).sum() / pl.col("w").sum()
    else:
        raise ValueError(f"blend must be 'sum' or 'mean', not {blend!r}")
    s = stats.filter(pl.col("w") > 0)
    if keys:
        return s.group_by(keys, maintain_order=True).agg(expr.alias("mean_cost"))
    return s.select(expr.alias("mean_cost"))


def scores(
    grouped: Any,
    *,
    group_col: str = "dip_group",
    cost: str = "total_cost",
    year_col: str | None = "year",
    year_weights: tuple[float, ...] = (1.0, 2.0, 7.0),
    blend: str = "sum",
    method: str = "average",
    benchmark: str | None = None,
    scale: float | None = None,
    standard_cost: float | None = None,
) -> FrameLike:
    """Group scores from a grouped history.

    Parameters
    ----------
    grouped
        Cases with ``group_col`` (null = not grouped, ignored) and ``cost``;
        optionally ``year_col``.
    year_weights
        Blend of the years, oldest to latest (1:2:7 [spec]); ignored without
        a year column.
    blend
        ``"sum"``: ``m_i = Σ w_y C_iy / Σ w_y n_iy`` (weighted total cost over
        weighted cases); ``"mean"``: ``m_i = Σ w_y m_iy / Σ w_y`` over the
        years the group has cases. The sources do not say which [spec].
    method
        ``"average"``: ``M`` = blended mean of all grouped cases;
        ``"benchmark"``: ``M`` = blended mean of group ``benchmark``;
        ``"standard"`` (标准定额法): ``M`` = ``standard_cost``, a fixed
        reference cost set by the region [spec: 3.0 draft §5.1 三,
        "设定标准定额，例如设固定参数 M 相当于分值为 1"].
    scale
        Points of a group costing ``M``: 1000 for the average and benchmark
        methods, 1 for the standard quota ("M 相当于分值为 1") [spec].

    Returns
    -------
    DataFrame (the caller's type)
        ``dip_group``, ``n`` (cases, all years), ``mean_cost`` (blended,
        yuan), ``cv`` (SD / mean over all years' cases), ``score``
        (``mean_cost / M × scale``), sorted by group.
    """
    df = to_polars(grouped)
    _require(df, [group_col, cost], "scores")
    has_year = year_col is not None and year_col in df.columns
    d = df.select(
        pl.col(group_col).cast(pl.String).alias("g"),
        pl.col(cost).cast(pl.Float64).alias("c"),
        (pl.col(year_col).cast(pl.Int64) if year_col is not None and has_year else pl.lit(0, pl.Int64)).alias(
            "y"
        ),
    ).filter(pl.col("g").is_not_null() & pl.col("c").is_not_null() & pl.col("c").is_finite())
    if d.height == 0:
        raise InputError("scores: no grouped case with a cost")
    wmap = year_weights_for(d["y"].unique().to_list(), year_weights if has_year else (1.0,))
    per = (
        d.group_by("g", "y")
        .agg(pl.len().alias("n"), pl.col("c").sum().alias("sum"))
        .with_columns(
            (pl.col("sum") / pl.col("n")).alias("mean"),
            pl.col("y").replace_strict(wmap, return_dtype=pl.Float64).alias("w"),
        )
    )
    groups = _blended(per, ["g"], blend)
    if method == "average":
        tot = (
            per.group_by("y")
            .agg(pl.col("n").sum(), pl.col("sum").sum(), pl.col("w").first())
            .with_columns((pl.col("sum") / pl.col("n")).alias("mean"))
        )
        big_m = _blended(tot, [], blend)["mean_cost"][0]
    elif method == "standard":
        if standard_cost is None or not (math.isfinite(standard_cost) and standard_cost > 0):
            raise PolicyError(
                f"scores: method='standard' needs a positive standard_cost (the "
                f"fixed reference cost M), got {standard_cost!r}"
            )
        big_m = float(standard_cost)
    elif method == "benchmark":
        hit = groups.filter(pl.col("g") == benchmark)
        if hit.height == 0:
            raise InputError(f"scores: benchmark group {benchmark!r} has no case in the history")
        big_m = hit["mean_cost"][0]
    else:
        raise ValueError(f"method must be 'average', 'benchmark' or 'standard', not {method!r}")
    if scale is None:
        scale = 1.0 if method == "standard" else 1000.0
    stats = d.group_by("g").agg(
        pl.len().alias("n"), (pl.col("c").std(ddof=0) / pl.col("c").mean()).alias("cv")
    )
    out = (
        groups.join(stats, on="g")
        .select(
            pl.col("g").alias("dip_group"),
            pl.col("n").cast(pl.Int64),
            "mean_cost",
            "cv",
            (pl.col("mean_cost") / big_m * scale).alias("score"),
        )
        .sort("dip_group")
    )
    return summary_like(out, grouped)


def hospital_coefficients(
    grouped: Any,
    group_scores: Any = None,
    *,
    by: str = "hospital_level",
    method: str = "level",
    group_col: str = "dip_group",
    cost: str = "total_cost",
    type_col: str = "dip_type",
    year_col: str | None = "year",
    year_weights: tuple[float, ...] = (1.0, 2.0, 7.0),
    blend: str = "sum",
) -> FrameLike:
    """Hospital (医疗机构) coefficients of each unit (a level, a hospital type, a hospital).

    Methods [spec: DIP 3.0 draft §5.2 一]:

    - ``"level"`` (default): the unit's 1:2:7-weighted mean cost per case
      over the city's, "医疗机构调节系数=同级别类型医疗机构近三年数据病例加权平均
      住院费用/全市近三年数据病例加权平均住院费用" (§5.2 一(一)1).
    - ``"by_group"``: the same per group, "同级别类型医疗机构某病种近三年数据
      病例加权平均住院费用/全市该病种近三年数据病例加权平均住院费用" (§5.2
      一(二)); rows per unit and group.
    - ``"case_mix"``: Σ cost ÷ Σ group mean cost (``group_scores``'
      ``mean_cost``) over the unit's cases, a case-mix-adjusted ratio
      (casemix's earlier reading, kept as a named alternative; no source).

    Primary-care (基层) groups carry no coefficient and are left out of
    every method [spec]. Years blend like :func:`scores` (``blend``,
    ``year_weights``); without a ``year_col`` column all cases count once.

    Returns ``by``, (``dip_group`` for ``by_group``), ``n`` (cases, all
    years), ``coefficient``, sorted.
    """
    df = to_polars(grouped)
    _require(df, [by, group_col, cost], "hospital_coefficients")
    d = df.select(
        pl.col(by).cast(pl.String).alias(by),
        pl.col(group_col).alias("dip_group"),
        pl.col(cost).cast(pl.Float64, strict=False).alias("c"),
        (pl.col(type_col) if type_col in df.columns else pl.lit("core")).alias("t"),
        (
            pl.col(year_col).cast(pl.Int64) if year_col and year_col in df.columns else pl.lit(0, pl.Int64)
        ).alias("y"),
    )
    d = d.filter(
        pl.col("dip_group").is_not_null()
        & (pl.col("t") != "primary")
        & pl.col("c").is_not_null()
        & pl.col("c").is_finite()
        & pl.col(by).is_not_null()
    )
    if d.height == 0:
        raise InputError("hospital_coefficients: no grouped, costed case outside primary groups")
    if method == "case_mix":
        if group_scores is None:
            raise PolicyError(
                "hospital_coefficients: method='case_mix' needs group_scores (dip_group, mean_cost)"
            )
        sc = to_polars(group_scores)
        _require(sc, ["dip_group", "mean_cost"], "hospital_coefficients (group scores)")
        x = d.join(sc.select("dip_group", pl.col("mean_cost").alias("m")), on="dip_group", how="inner")
        out = (
            x.group_by(by)
            .agg(
                pl.len().cast(pl.Int64).alias("n"),
                (pl.col("c").sum() / pl.col("m").sum()).alias("coefficient"),
            )
            .sort(by)
        )
        return summary_like(out, grouped)
    if method not in ("level", "by_group"):
        raise ValueError(f"method must be 'level', 'by_group' or 'case_mix', not {method!r}")
    keys = [by] if method == "level" else [by, "dip_group"]
    city_keys = [] if method == "level" else ["dip_group"]
    wmap = year_weights_for(
        d["y"].unique().to_list(), year_weights if year_col and year_col in df.columns else (1.0,)
    )

    def per_year(k: list[str]) -> pl.DataFrame:
        return (
            d.group_by(*k, "y")
            .agg(pl.len().alias("n"), pl.col("c").sum().alias("sum"))
            .with_columns(
                (pl.col("sum") / pl.col("n")).alias("mean"),
                pl.col("y").replace_strict(wmap, return_dtype=pl.Float64).alias("w"),
            )
        )

    unit = _blended(per_year(keys), keys, blend)
    city = (
        _blended(per_year(city_keys), city_keys, blend).rename({"mean_cost": "city"}) if city_keys else None
    )
    counts = d.group_by(keys).agg(pl.len().cast(pl.Int64).alias("n"))
    if city is None:
        big = _blended(per_year([]), [], blend)["mean_cost"][0]
        out = unit.with_columns((pl.col("mean_cost") / big).alias("coefficient"))
    else:
        out = unit.join(city, on=city_keys).with_columns(
            (pl.col("mean_cost") / pl.col("city")).alias("coefficient")
        )
    out = out.join(counts, on=keys).select(*keys, "n", "coefficient").sort(keys)
    return summary_like(out, grouped)


def _age_band(age: pl.Expr, days: pl.Expr) -> pl.Expr:
    young = age.is_null() | (age < 1)
    return (
        pl.when(young & days.is_not_null() & (days <= 28))
        .then(pl.lit("0-28d"))
        .when(young & (age.is_not_null() | days.is_not_null()))
        .then(pl.lit("29d-1y"))
        .when(age <= 6)
        .then(pl.lit("1-6"))
        .when(age <= 17)
        .then(pl.lit("7-17"))
        .when(age >= 65)
        .then(pl.lit("65+"))
        .when(age.is_not_null())
        .then(pl.lit("18-64"))
    )


def _severity(df: pl.DataFrame, scheme: Any) -> pl.Series:
    """MCC / CC / none from the secondary diagnoses, with the scheme's exclusion tables.

    A secondary diagnosis counts at its ``cc`` level unless its exclusion
    table is the principal diagnosis's (CHS-DRG rule, ``../shared/schemes/FORMAT.md``).
    """
    cc, excl = scheme.cc, scheme.exclusions
    never = getattr(scheme, "never_excluded_table", None)
    out = []
    for pdx, sdx in zip(df["pdx"].to_list(), df["sdx"].to_list(), strict=True):
        table = excl.get(pdx)
        best = "none"
        for code in sdx or ():
            hit = cc.get(code)
            if hit is None:
                continue
            level, t = hit
            if table is not None and t == table and t != never:
                continue
            if level == "MCC":
                best = "MCC"
                break
            best = "CC"
        out.append(best)
    return pl.Series("subtype_severity", out, dtype=pl.String)


def _icu_band(days: pl.Expr) -> pl.Expr:
    return (
        pl.when(days >= 31)
        .then(pl.lit("31+"))
        .when(days >= 15)
        .then(pl.lit("15-30"))
        .when(days >= 8)
        .then(pl.lit("8-14"))
        .when(days >= 2)
        .then(pl.lit("2-7"))
        .otherwise(pl.lit("none"))
    )


def subtype_labels(cases: Any, *, scheme: Any = None) -> pl.DataFrame:
    """Auxiliary sub-type of each case in each dimension.

    Columns ``subtype_age``, ``subtype_severity``, ``subtype_tumour``,
    ``subtype_icu`` [spec: DIP 3.0 draft §5.2 二(四)]:

    - age bands 0–28 days, 29 days–1 year, 1–6, 7–17, 18–64, >= 65; 18–64
      is the reference band (no sub-type, :data:`NOT_SUBTYPE`);
    - severity from CC/MCC secondary diagnoses of a DRG ``scheme``
      (``casemix.load_scheme``; null without one), only for a stay of more
      than 3 days (``los``), else ``none``;
    - tumour: ``death`` (离院方式 5, any stay), then for a stay of more than
      3 days ``metastasis`` (a secondary diagnosis in C77–C79) or
      ``radio_chemo`` (procedure 92.2x / 99.25 / 99.28 or diagnosis
      Z51.0 / Z51.1), else ``none``;
    - ICU days (``icu_days``): ``2-7``, ``8-14``, ``15-30``, ``31+``, else
      ``none``.

    Without a ``los`` column no stay counts as longer than 3 days (the
    condition cannot be shown), so only death triggers a tumour sub-type.
    """
    df = to_polars(cases)
    cols = set(df.columns)
    num = {
        c: (pl.col(c).cast(pl.Float64, strict=False) if c in cols else pl.lit(None, pl.Float64))
        for c in ("age", "age_days", "discharge", "los", "icu_days")
    }
    long_stay = (num["los"] > MIN_SUBTYPE_LOS).fill_null(False)
    # an all-empty list column reads as List(Null): make it text
    sdx = pl.col("sdx").cast(pl.List(pl.String)) if "sdx" in cols else pl.lit([], pl.List(pl.String))
    procs = pl.concat_list(
        pl.col("pproc").fill_null("") if "pproc" in cols else pl.lit(""),
        pl.col("oproc").fill_null([]) if "oproc" in cols else pl.lit([], pl.List(pl.String)),
    )
    pdx = pl.col("pdx").fill_null("") if "pdx" in cols else pl.lit("")
    dx_all = pl.concat_list(pdx, sdx.fill_null([]))
    metastasis = (
        sdx.fill_null([]).list.eval(pl.element().str.slice(0, 3).is_in(["C77", "C78", "C79"])).list.any()
    )
    radio = (
        procs.list.eval(
            pl.any_horizontal([pl.element().str.starts_with(p) for p in _RADIO_CHEMO_PROC])
        ).list.any()
        | dx_all.list.eval(
            pl.any_horizontal([pl.element().str.starts_with(p) for p in _RADIO_CHEMO_DX])
        ).list.any()
    )
    # with_columns, not select: when no column is present every expression is a literal,
    # and a select of literals is one row, not one per case
    out = df.with_columns(
        _age_band(num["age"], num["age_days"]).alias("subtype_age"),
        pl.when(num["discharge"] == 5)
        .then(pl.lit("death"))
        .when(long_stay & metastasis)
        .then(pl.lit("metastasis"))
        .when(long_stay & radio)
        .then(pl.lit("radio_chemo"))
        .otherwise(pl.lit("none"))
        .alias("subtype_tumour"),
        _icu_band(num["icu_days"]).alias("subtype_icu"),
        long_stay.alias("_long"),
    ).select("subtype_age", "subtype_tumour", "subtype_icu", "_long")
    if scheme is not None and {"pdx", "sdx"} <= cols:
        sev = pl.Series("subtype_severity", _severity(df, scheme), dtype=pl.String)
        out = out.with_columns(
            pl.when(pl.col("_long")).then(sev).otherwise(pl.lit("none")).alias("subtype_severity")
        )
    else:
        out = out.with_columns(pl.lit(None, pl.String).alias("subtype_severity"))
    return out.select("subtype_age", "subtype_severity", "subtype_tumour", "subtype_icu")


def subtype_coefficients(
    grouped: Any,
    *,
    scheme: Any = None,
    group_col: str = "dip_group",
    cost: str = "total_cost",
    min_cv_reduction: float = 0.20,
    dimensions: tuple[str, ...] = ("age", "severity", "tumour", "icu"),
) -> FrameLike:
    """Auxiliary sub-type coefficients ``m_j / M_group`` and whether each dimension is used.

    For each group and dimension: ``cv_before`` = SD / mean of the group's
    costs; ``cv_after`` = the SD of costs around their sub-type means
    (pooled within sub-types) / the group mean. The dimension is ``used``
    when ``cv_after <= (1 − min_cv_reduction) × cv_before`` (a cut of at
    least 20% [spec]). ``M_group`` is the mean of all the group's cases
    (draft: "该病种上年度全部病例平均住院费用"). Rows are written for the
    sub-types only: the reference age band 18–64 and ``none`` take no
    coefficient (they still form their own cluster in ``cv_after``).

    Returns ``dip_group``, ``dimension``, ``subtype``, ``n``, ``mean_cost``,
    ``coefficient``, ``cv_before``, ``cv_after``, ``used``.
    """
    df = to_polars(grouped)
    _require(df, [group_col, cost], "subtype_coefficients")
    labels = subtype_labels(df, scheme=scheme)
    d = pl.concat(
        [df.select(pl.col(group_col).alias("g"), pl.col(cost).cast(pl.Float64).alias("c")), labels],
        how="horizontal",
    ).filter(pl.col("g").is_not_null() & pl.col("c").is_not_null())
    frames = []
    for dim in dimensions:
        col = f"subtype_{dim}"
        x = d.filter(pl.col(col).is_not_null()).select("g", "c", pl.col(col).alias("s"))
        if x.height == 0:
            continue
        x = x.with_columns(
            pl.col("c").mean().over("g").alias("mg"), pl.col("c").mean().over("g", "s").alias("ms")
        )
        cv = x.group_by("g").agg(
            (pl.col("c").std(ddof=0) / pl.col("mg").first()).alias("cv_before"),
            (((pl.col("c") - pl.col("ms")) ** 2).mean().sqrt() / pl.col("mg").first()).alias("cv_after"),
        )
        sub = x.group_by("g", "s").agg(
            pl.len().cast(pl.Int64).alias("n"),
            pl.col("ms").first().alias("mean_cost"),
            (pl.col("ms").first() / pl.col("mg").first()).alias("coefficient"),
        )
        sub = sub.filter(~pl.col("s").is_in(list(NOT_SUBTYPE)))
        frames.append(
            sub.join(cv, on="g").with_columns(
                pl.lit(dim).alias("dimension"),
                (pl.col("cv_after") <= (1 - min_cv_reduction) * pl.col("cv_before") + 1e-12).alias("used"),
            )
        )
    if not frames:
        return summary_like(
            pl.DataFrame(
                schema={
                    "dip_group": pl.String,
                    "dimension": pl.String,
                    "subtype": pl.String,
                    "n": pl.Int64,
                    "mean_cost": pl.Float64,
                    "coefficient": pl.Float64,
                    "cv_before": pl.Float64,
                    "cv_after": pl.Float64,
                    "used": pl.Boolean,
                }
            ),
            grouped,
        )
    out = (
        pl.concat(frames)
        .select(
            pl.col("g").alias("dip_group"),
            "dimension",
            pl.col("s").alias("subtype"),
            "n",
            "mean_cost",
            "coefficient",
            "cv_before",
            "cv_after",
            "used",
        )
        .sort("dip_group", "dimension", "subtype")
    )
    return summary_like(out, grouped)
