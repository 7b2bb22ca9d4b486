"""新药新技术除外支付: new drugs and technologies paid beside the group's standard.

Each case may carry its new-technology cost: a column ``new_tech_cost``
(yuan; alias 新药新技术费用), or, without it, a code list in the policy
(``codes``: procedure code → the item's cost in yuan) summed over the
distinct listed codes among the case's procedures.  A null cost means no
new technology.

DRG (Beijing's rule [B], a secondary summary): a case whose cost exceeds
``cost_multiple`` (2) × its standard and whose new-technology share of
cost exceeds ``min_share`` (Beijing 64%) has its new-technology cost paid
outside the points (按项目, × ``fund_ratio``); the rest of the case, its
cost less the new-technology cost, settles by the ordinary rules (so the
outlier rules do not pay the same money twice).

DIP (DIP 3.0 draft §5.1 四(三) "新药新技术分值加成": "对相应费用单独计算加成
分值" [A]; §7.3 lists "新药新技术加成分值" in a hospital's annual score):
every case with a new-technology cost earns add-on points =
``dip_factor`` × new-technology cost ÷ yuan per point (the all-case
reference cost per point, as for cost-converted points); its remaining
cost settles by the ordinary rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import polars as pl
from pydantic import Field

from casemix._money import round_half_up
from casemix.errors import InputError, PolicyError
from casemix.payment._section import Section

__all__ = ["NewTechConfig", "dip_addon", "drg_exclusion", "new_tech_cost", "outside_payment_fen"]


class NewTechConfig(Section):
    """``[new_tech]``: eligibility and payment of new drugs and technologies.

    Attributes
    ----------
    enabled
        Switch the rule on (off by default).
    cost_multiple
        DRG: the case's cost must exceed this multiple of its standard (2) [B].
    min_share
        DRG: the new-technology cost must exceed this share of the case's
        cost (Beijing 0.64) [B].
    fund_ratio
        DRG: share of the excluded cost the fund pays.
    dip_factor
        DIP: add-on points per point's worth of new-technology cost (1).
    codes
        Procedure code → new-technology cost (yuan), used when the cases
        have no ``new_tech_cost`` column.
    """

    TABLE = "new_tech"

    enabled: bool = False
    cost_multiple: float = Field(default=2.0, gt=0)
    min_share: float = Field(default=0.64, ge=0, le=1)
    fund_ratio: float = Field(default=1.0, ge=0, le=1)
    dip_factor: float = Field(default=1.0, ge=0)
    codes: dict[str, float] = Field(default_factory=dict)


def _code_cost(codes: Mapping[str, float]) -> dict[str, float]:
    bad = [c for c, v in codes.items() if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v))]
    if bad:
        raise PolicyError(f"new_tech.codes.{bad[0]} must be a cost in yuan >= 0")
    return dict(codes)


def new_tech_cost(
    cases: pl.DataFrame,
    config: NewTechConfig,
    *,
    procedure_cols: tuple[str, ...] = ("pproc", "oproc", "procedures"),
) -> np.ndarray:
    """Each case's new-technology cost (yuan, 0 where none), checked.

    From the column ``new_tech_cost`` when present; otherwise Σ of
    ``config.codes`` over the distinct listed codes among the case's
    procedures (``pproc``, ``oproc``, ``procedures``: a code, a list or a
    "|"-string).

    Raises
    ------
    PolicyError
        Neither the column nor a code list (naming the rule and column), or
        a code list but no procedure column.
    InputError
        A negative or non-numeric new-technology cost, or one above the
        case's ``total_cost``, naming the row and case id.
    """
    n = cases.height
    ids = (
        cases["case_id"].cast(pl.String)
        if "case_id" in cases.columns
        else pl.int_range(1, n + 1, eager=True).cast(pl.String)
    )
    if "new_tech_cost" in cases.columns:
        raw = cases["new_tech_cost"]
        x = raw.cast(pl.Float64, strict=False)
        bad = (x.is_null() & raw.is_not_null()) | (x < 0).fill_null(False) | x.is_nan()
        if bad.any():
            i = int(bad.arg_true()[0])
            raise InputError(
                f"new_tech_cost (新药新技术费用) is negative or not a number at row "
                f"{i} (case_id {ids[i]!r}): {raw[i]!r}"
            )
        out = x.fill_null(0.0).to_numpy()
    elif config.codes:
        table = _code_cost(config.codes)
        cols = [c for c in procedure_cols if c in cases.columns]
        if not cols:
            raise PolicyError(
                "new_tech.codes needs a procedure column (pproc/oproc/procedures) "
                "or the column new_tech_cost (新药新技术费用), which the cases lack"
            )
        empty = pl.lit([], pl.List(pl.String))
        lists = [
            (
                pl.col(c).cast(pl.List(pl.String))
                if isinstance(cases.schema[c], pl.List)
                else pl.col(c).cast(pl.String).str.split("|")
            ).fill_null(empty)
            for c in cols
        ]
        codes = cases.select(pl.concat_list(lists).alias("p"))["p"]
        # str keys and float values (NewTechConfig's types; never empty here): String, Float64
        keys, vals = pl.Series(list(table)), pl.Series(list(table.values()))
        out = (
            codes.list.eval(pl.element().str.strip_chars())
            .list.unique()
            .list.eval(pl.element().replace_strict(keys, vals, default=0.0, return_dtype=pl.Float64))
            .list.sum()  # of lists never null (filled with the empty list), 0 for an empty one
            .to_numpy()
        )
    else:
        raise PolicyError(
            "new_tech is enabled but the cases lack the column new_tech_cost "
            "(新药新技术费用) and the policy has no new_tech.codes; add either"
        )
    if "total_cost" in cases.columns:
        total = cases["total_cost"].cast(pl.Float64, strict=False).to_numpy()
        with np.errstate(invalid="ignore"):
            over = out > total + 1e-9
        if over.any():
            i = int(np.flatnonzero(over)[0])
            raise InputError(
                f"new_tech_cost {out[i]} exceeds total_cost {total[i]} at row {i} "
                f"(case_id {ids[i]!r}); the new-technology cost is part of the "
                "case's cost"
            )
    return out  # float64: a Float64 column without nulls


def drg_exclusion(
    cost: np.ndarray, tech_cost: np.ndarray, standard: np.ndarray, config: NewTechConfig
) -> tuple[np.ndarray, np.ndarray]:
    """DRG 除外支付 [B]: eligible cases and the cost left to the ordinary rules.

    Eligible: cost > cost_multiple × standard and tech_cost ÷ cost >
    min_share.  Returns ``(eligible, residual_cost)`` with residual = cost −
    tech_cost for eligible cases, cost otherwise.
    """
    c = np.asarray(cost, dtype=np.float64)
    # tech cost and standard are compared only (c − t is float64 with float64 c): no casts
    t, s = np.asarray(tech_cost), np.asarray(standard)
    with np.errstate(invalid="ignore"):  # 0 × an infinite cost (min_share 0) is NaN: not eligible
        eligible = (c > config.cost_multiple * s) & (t > 0) & (t > config.min_share * c)
    return eligible, np.where(eligible, c - t, c)


def outside_payment_fen(tech_cost: np.ndarray, eligible: np.ndarray, fund_ratio: float) -> np.ndarray:
    """The fund's payment outside the points: tech cost (yuan) × fund ratio, in fen (ROUND_HALF_UP)."""
    t = np.where(np.asarray(eligible, dtype=bool), np.asarray(tech_cost, dtype=np.float64), 0.0)
    return round_half_up(t * 100.0 * fund_ratio)


def dip_addon(
    cost: np.ndarray, tech_cost: np.ndarray, yuan_per_point: float, config: NewTechConfig
) -> tuple[np.ndarray, np.ndarray]:
    """DIP 新药新技术加成分值 [A §5.1]: add-on points and the cost left to the ordinary rules.

    Add-on = dip_factor × tech_cost ÷ yuan_per_point for every case with a
    new-technology cost; residual cost = cost − tech_cost.
    """
    t = np.asarray(tech_cost, dtype=np.float64)
    if (t > 0).any() and not (yuan_per_point > 0 and math.isfinite(yuan_per_point)):
        raise PolicyError(
            "new_tech (DIP add-on) needs a positive all-case reference cost per "
            f"point, got {yuan_per_point!r}; give mean_cost in the weights"
        )
    addon = np.where(t > 0, config.dip_factor * t / (yuan_per_point if t.any() else 1.0), 0.0)
    return addon, np.asarray(cost, dtype=np.float64) - t
