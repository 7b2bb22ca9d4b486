"""DIP case scores: group score × hospital and sub-type coefficients, cost classes, bonus points.

Sources (``../shared/payment-notes.md``, DIP section; ``docs/dip-rules.md``):
case score = group score × hospital coefficient × auxiliary sub-type
coefficient, 基层 (primary-care) groups without the hospital coefficient;
high cost (DIP 1.0): cost > 2 × mean → score × ((cost / mean − 2) + 1); low
cost: cost < 0.5 × mean → score × cost / mean [spec, via secondary sources].
The first step of :func:`casemix.dip.settle.settle`, apart from it so that
the settlement under a :class:`~casemix.budget.Policy`
(:mod:`casemix.dip.policy_settle`) and the plain settlement both use it
without importing each other (issue 16).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from casemix._frames import like, to_polars
from casemix.cases import canonical
from casemix.dip.grouping import load_catalog
from casemix.errors import InputError, PolicyError

__all__ = [
    "SCORE_COLUMNS",
    "SUBTYPE_DIMENSIONS",
    "Bonus",
    "CostRules",
    "case_scores",
    "high_cost_score",
    "low_cost_score",
]


@dataclass(frozen=True)
class CostRules:
    """High/low-cost thresholds, as multiples of the group's mean cost.

    ``high = 2.0``, ``low = 0.5`` and ``review = 5.0`` are the DIP 1.0
    values [spec, via secondary sources]; set ``low = 0`` or ``high = inf``
    to switch a rule off, ``review = None`` to flag nothing.
    """

    high: float = 2.0
    low: float = 0.5
    review: float | None = 5.0

    def __post_init__(self) -> None:
        if not (self.low >= 0 and self.high > 0 and self.low < self.high):
            raise PolicyError(f"cost rules: need 0 <= low < high, got low={self.low}, high={self.high}")
        if self.review is not None and self.review < self.high:
            raise PolicyError(f"cost rules: review ({self.review}) must not be below high ({self.high})")


@dataclass(frozen=True)
class Bonus:
    """An add-on score (加成分值) for cases of some groups or with some codes.

    [spec: DIP 3.0 draft §5.1 四(三) 新药新技术分值加成 ("对相应费用单独计算
    加成分值"), §7.3 一(二) 年度分值 "……+中医优势病种病例分值+……+新药新技术
    加成分值"]. A grouped case earns ``points`` when its group is one of
    ``groups`` or one of its codes (principal/secondary diagnoses,
    procedures) starts with one of ``codes``; the points are added to the
    case score after the coefficients, once per rule.
    """

    name: str
    points: float
    groups: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.points) and self.points >= 0):
            raise PolicyError(f"bonus {self.name!r}: points must be >= 0, got {self.points}")
        if not self.groups and not self.codes:
            raise PolicyError(f"bonus {self.name!r}: list groups or codes it applies to")
        if isinstance(self.groups, str) or isinstance(self.codes, str):
            raise PolicyError(f"bonus {self.name!r}: groups and codes are lists, not one string")


def _bonus_points(df: pl.DataFrame, groups: pl.Series, bonus: Sequence[Bonus]) -> pl.Series:
    """Σ points of the rules each case meets (0 for ungrouped cases)."""
    cols = set(df.columns)
    one = [pl.col(c).fill_null("") for c in ("pdx", "pproc") if c in cols]
    many = [pl.col(c).fill_null([]) for c in ("sdx", "oproc") if c in cols]
    codes = pl.concat_list(*one, *many) if one or many else pl.lit([], pl.List(pl.String))
    total = pl.lit(0.0)
    for b in bonus:
        hit = pl.col("_g").is_in(list(b.groups)) if b.groups else pl.lit(False)
        if b.codes:
            hit = (
                hit
                | codes.list.eval(
                    pl.any_horizontal([pl.element().str.starts_with(c) for c in b.codes])
                ).list.any()
            )
        total = total + pl.when(hit.fill_null(False)).then(b.points).otherwise(0.0)
    out = df.with_columns(groups.alias("_g")).select(
        pl.when(pl.col("_g").is_null()).then(0.0).otherwise(total).alias("dip_bonus_score")
    )
    return out.to_series()


def high_cost_score(score: float, cost: float, mean: float, high: float = 2.0) -> float:
    """DIP 1.0 high-cost case score: ``score × ((cost / mean − high) + 1)``.

    With ``high = 2``: a case costing 3 × the mean earns 2 × the score. The
    rule applies when ``cost > high × mean`` [spec, DIP 1.0 via secondary
    sources]; at the threshold it equals the score, so it is continuous.
    """
    return score * ((cost / mean - high) + 1.0)


def low_cost_score(score: float, cost: float, mean: float) -> float:
    """DIP low-cost case score: ``score × cost / mean`` (cost < 0.5 × mean) [spec, DIP 1.0/3.0]."""
    return score * cost / mean


def _coefficients(table: Mapping[str, float] | Any, by: str) -> pl.DataFrame:
    """A coefficient table as columns h (unit), g (group, null = the unit's own), f.

    A mapping ``{unit: coefficient}``, or a frame with ``by`` and
    ``coefficient`` and optionally ``dip_group`` (per unit and group; a null
    group is the unit's coefficient for its other groups).
    """
    if isinstance(table, Mapping):
        return pl.DataFrame(
            {"h": [str(k) for k in table], "g": [None] * len(table), "f": [float(v) for v in table.values()]},
            schema={"h": pl.String, "g": pl.String, "f": pl.Float64},
        )
    f = to_polars(table)
    if by not in f.columns or "coefficient" not in f.columns:
        raise InputError(
            f"hospital_coefficients: expected a mapping or a frame with columns "
            f"{by!r} and 'coefficient' (and optionally 'dip_group')"
        )
    g = pl.col("dip_group").cast(pl.String) if "dip_group" in f.columns else pl.lit(None, pl.String)
    out = f.select(
        pl.col(by).cast(pl.String).alias("h"), g.alias("g"), pl.col("coefficient").cast(pl.Float64).alias("f")
    )
    if out.select(pl.struct("h", "g").is_duplicated().any()).item():
        raise InputError(f"hospital_coefficients: a {by} (and dip_group) is listed twice")
    return out


def case_scores(
    grouped: Any,
    *,
    catalog: Any = None,
    group_means: Any = None,
    level_col: str | None = None,
    hospital_coefficients: Any = None,
    by: str = "hospital_id",
    subtypes: bool = True,
    scheme: Any = None,
    rules: CostRules = CostRules(),
    cost: str = "total_cost",
    same_rate_groups: Sequence[str] = (),
    mapping: dict[str, str] | None = None,
    point_value: float | None = None,
    low_reference: str = "standard",
    bonus: Sequence[Bonus] = (),
) -> Any:
    """Each case's DIP score after coefficients and the high/low-cost rules.

    Parameters
    ----------
    grouped
        Output of :func:`casemix.dip.group` (``dip_group``, ``dip_type``,
        ``dip_score``) with ``cost`` and, for coefficients, ``by``.
    catalog
        The catalog grouped with; its ``mean_cost`` per group is the
        reference mean and its ``subtypes.csv`` the sub-type coefficients.
    group_means
        A frame with ``dip_group``, ``mean_cost`` (and ``level_col`` for
        same-level means, "上年度同级别定点医疗机构该病种次均费用" [spec]); takes
        precedence over the catalog's means.
    hospital_coefficients
        ``{unit: coefficient}`` or a frame with ``by`` and ``coefficient``
        (the output of :func:`casemix.dip.hospital_coefficients`), the unit
        being the case's ``by`` column (``hospital_id``, or e.g.
        ``hospital_level``); with a ``dip_group`` column, a coefficient per
        unit and group (``method="by_group"``) that takes precedence over
        the unit's own (a row with a null group); primary (基层) groups take
        none [spec].
    same_rate_groups
        Further groups paid alike at every level (基层病种 / 同等费率, coefficient
        1) [A-规 §19, A §3.4]; ``dip_type == "primary"`` groups always are.
    subtypes
        Apply the catalog's auxiliary sub-type coefficients (``subtypes.csv``):
        of the sub-types a case falls in, the one with the highest
        coefficient applies (not their product) [spec: 3.0 draft §5.2 二(二)
        "纳入该病种辅助分型触发系数最高的分型"]; a case in no sub-type takes 1.
    rules
        High/low-cost thresholds.
    bonus
        Add-on scores (:class:`Bonus`: 中医优势病种, 新药新技术加成) per group or
        code list, added after the coefficients and cost rules (column
        ``dip_bonus_score``, included in ``dip_case_score``).
    point_value, low_reference
        The very-low-cost rule [spec: 3.0 draft §5.3 二.1]. ``"standard"``
        (default): a case is very-low-cost when its cost is below ``low`` ×
        its payment standard ``score × point value × hospital coefficient ×
        sub-type coefficient``, and then scores ``score × coefficients ×
        cost ÷ standard``; without ``point_value`` the standard is priced at
        the point value the scores were built at (group mean × hospital
        coefficient × sub-type coefficient). ``"mean"``: the DIP 1.0
        reading, compared with the group mean × sub-type coefficient, no
        hospital coefficient.
    mapping
        ``{your column: canonical name}`` besides the aliases of
        ``docs/cases.md``.

    Returns
    -------
    The input (same type, rows, order) plus ``dip_base_score``,
    ``dip_coefficient``, ``dip_subtype_coefficient``, ``dip_ref_cost``,
    ``dip_cost_class`` (``normal`` / ``high`` / ``low`` / ``review`` /
    ``ungrouped``), ``dip_case_score`` (0 for ungrouped cases) and
    ``left_out``: a case whose cost is missing, malformed or negative is
    left out (null results, the reason in ``left_out``; the bad-value rule
    of ``docs/cases.md``).

    Notes
    -----
    ``dip_low_ref_cost`` is the very-low-cost reference (the payment
    standard, or the sub-type mean with ``low_reference="mean"``).
    The reference mean ``dip_ref_cost`` is the group mean × the case's
    sub-type coefficient (the sub-type's mean). A ``review`` case (> 5 ×
    mean) is scored by the high-cost formula until reviewed [reading
    chosen: the 1.0 text sends it to experts without a formula]. A group
    without a reference mean is scored as ``normal``.
    """
    if not {"dip_group", "dip_score"} <= set(to_polars(grouped).columns):
        missing = sorted({"dip_group", "dip_score"} - set(to_polars(grouped).columns))
        raise InputError(
            f"case_scores needs column {missing[0]!r}; group the cases with casemix.dip.group first"
        )
    c = canonical(
        grouped,
        mapping,
        need=(cost, "dip_group", "dip_score"),
        optional=tuple(x for x in (by, level_col, "los", "icu_days") if x),
        step="DIP case scores",
    )
    if low_reference not in ("standard", "mean"):
        raise PolicyError(f"low_reference must be 'standard' or 'mean', not {low_reference!r}")
    if point_value is not None and not (math.isfinite(point_value) and point_value > 0):
        raise PolicyError(f"point_value must be positive, got {point_value}")
    df = c.used
    n = df.height
    w = df.select(
        pl.col("dip_group").cast(pl.String).alias("g"),
        (pl.col("dip_type") if "dip_type" in df.columns else pl.lit("core")).alias("t"),
        pl.col("dip_score").cast(pl.Float64).alias("s"),
        pl.col(cost).cast(pl.Float64, strict=False).alias("c"),
        (pl.col(by).cast(pl.String) if by in df.columns else pl.lit(None, pl.String)).alias("h"),
        (
            pl.col(level_col).cast(pl.String)
            if level_col and level_col in df.columns
            else pl.lit(None, pl.String)
        ).alias("lv"),
    ).with_row_index("_row")

    # reference mean of the group (same level when the table has levels)
    if group_means is not None:
        gm = to_polars(group_means)
        if level_col and level_col in gm.columns:
            means = gm.select(
                pl.col("dip_group").alias("g"),
                pl.col(level_col).cast(pl.String).alias("lv"),
                pl.col("mean_cost").cast(pl.Float64).alias("m"),
            )
            w = w.join(means, on=["g", "lv"], how="left", maintain_order="left")
        else:
            means = gm.select(pl.col("dip_group").alias("g"), pl.col("mean_cost").cast(pl.Float64).alias("m"))
            w = w.join(means, on="g", how="left", maintain_order="left")
    elif catalog is not None:
        cat = load_catalog(catalog)
        means = pl.DataFrame(
            {"g": [g.group for g in cat.groups], "m": [g.mean_cost for g in cat.groups]},
            schema={"g": pl.String, "m": pl.Float64},
        )
        w = w.join(means, on="g", how="left", maintain_order="left")
    else:
        w = w.with_columns(pl.lit(None, pl.Float64).alias("m"))

    if hospital_coefficients is not None:
        # a coefficient of the unit and group (3.0 draft §5.2 一(二)) before the unit's own
        table = _coefficients(hospital_coefficients, by)
        own = table.filter(pl.col("g").is_null()).select("h", pl.col("f").alias("f_unit"))
        per = table.filter(pl.col("g").is_not_null()).rename({"f": "f_group"})
        w = (
            w.join(per, on=["h", "g"], how="left", maintain_order="left")
            .join(own, on="h", how="left", maintain_order="left")
            .with_columns(pl.coalesce("f_group", "f_unit").alias("f"))
            .drop("f_group", "f_unit")
        )
    else:
        w = w.with_columns(pl.lit(None, pl.Float64).alias("f"))
    same = (pl.col("t") == "primary") | pl.col("g").is_in([str(g) for g in same_rate_groups])
    w = w.with_columns(pl.when(same).then(1.0).otherwise(pl.col("f").fill_null(1.0)).alias("f"))

    sub = pl.Series("k", np.ones(n))
    if subtypes and catalog is not None:
        from casemix.dip.scores import subtype_labels

        cat = load_catalog(catalog)
        if cat.subtypes:
            labels = subtype_labels(df, scheme=scheme)
            k = np.full(n, np.nan)
            g_list = w["g"].to_list()
            for dim in SUBTYPE_DIMENSIONS:
                col = labels[f"subtype_{dim}"].to_list()
                hit = np.array(
                    [cat.subtypes.get((g, dim, s), np.nan) for g, s in zip(g_list, col, strict=True)]
                )
                k = np.fmax(k, hit)  # the highest triggered sub-type wins; nan = not triggered
            sub = pl.Series("k", np.where(np.isnan(k), 1.0, k))
    w = w.with_columns(sub)

    # a sub-typed case is compared with its sub-type's mean (m_j = coefficient × m), so an
    # old patient's cost is not counted high twice (reading chosen: docs/dip-rules.md)
    w = w.with_columns((pl.col("m") * pl.col("k")).alias("m"))
    # very-low-cost reference: the case's own payment standard [3.0 draft §5.3 二.1]
    if low_reference == "standard":
        priced = pl.col("s") * point_value if point_value is not None else pl.col("m") / pl.col("k")
        w = w.with_columns((priced * pl.col("f") * pl.col("k")).alias("std"))
    else:
        w = w.with_columns(pl.col("m").alias("std"))
    ratio = pl.col("c") / pl.col("m")
    low_ratio = pl.col("c") / pl.col("std")
    has_m = pl.col("m").is_not_null() & (pl.col("m") > 0)
    has_std = pl.col("std").is_not_null() & (pl.col("std") > 0)
    review = (ratio > rules.review) if rules.review is not None else pl.lit(False)
    cls = (
        pl.when(pl.col("g").is_null())
        .then(pl.lit("ungrouped"))
        .when(has_m & review)
        .then(pl.lit("review"))
        .when(has_m & (ratio > rules.high))
        .then(pl.lit("high"))
        .when(has_std & (low_ratio < rules.low))
        .then(pl.lit("low"))
        .otherwise(pl.lit("normal"))
    )
    w = w.with_columns(cls.alias("cls"))
    base = pl.col("s") * pl.col("k") * pl.col("f")
    score = (
        pl.when(pl.col("cls") == "ungrouped")
        .then(0.0)
        .when(pl.col("cls").is_in(["high", "review"]))
        .then(base * ((ratio - rules.high) + 1))
        .when(pl.col("cls") == "low")
        .then(base * low_ratio)
        .otherwise(base)
    )
    w = w.with_columns(score.alias("cs"))
    bonus_pts = _bonus_points(df, w["g"], bonus) if bonus else pl.Series("dip_bonus_score", np.zeros(n))
    w = w.with_columns(bonus_pts.alias("bonus"), (pl.col("cs") + bonus_pts).alias("cs"))
    out = c.restore(
        df.with_columns(
            w["s"].alias("dip_base_score"),
            w["f"].alias("dip_coefficient"),
            w["k"].alias("dip_subtype_coefficient"),
            w["m"].alias("dip_ref_cost"),
            w["std"].alias("dip_low_ref_cost"),
            w["cls"].alias("dip_cost_class"),
            w["bonus"].alias("dip_bonus_score"),
            w["cs"].alias("dip_case_score"),
        ),
        SCORE_COLUMNS,
    )
    return like(out, grouped)


#: sub-type dimensions a case score looks at (casemix.dip.scores.subtype_labels)
SUBTYPE_DIMENSIONS = ("age", "severity", "tumour", "icu")

SCORE_COLUMNS = (
    "dip_base_score",
    "dip_coefficient",
    "dip_subtype_coefficient",
    "dip_ref_cost",
    "dip_low_ref_cost",
    "dip_bonus_score",
    "dip_cost_class",
    "dip_case_score",
)
