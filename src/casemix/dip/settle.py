"""DIP settlement: case scores, point values, hospital payments, monthly pre-payment.

Sources (``../shared/payment-notes.md``, DIP section; ``docs/dip-rules.md``):

- Case score = group score × hospital coefficient × auxiliary sub-type
  coefficient; 基层 (primary-care) groups take no hospital coefficient [spec].
- High cost (DIP 1.0): cost > 2 × mean → score × ((cost / mean − 2) + 1);
  low cost: cost < 0.5 × mean → score × cost / mean; > 5 × mean goes to
  expert review [quoted from the 1.0 spec by secondary sources]. The
  thresholds are parameters (:class:`CostRules`); the 3.0 draft's "2–3 ×
  to special review, no formula" is not implemented as a formula.
- Year-start point value = 1:2:7-weighted annual cost / weighted total
  score; settlement point value = (fund / fund payment ratio) / total
  score; optimised point value by trimming the case point values at
  2.5% / 97.5% [spec].
- Hospital payment = Σ case score × point value × fund payment ratio ×
  assessment coefficient − audit deductions; monthly pre-payment 90%;
  quality deposit <= 5% [spec].

Money: the point money is split over hospitals and cases by the settlement
core (:mod:`casemix.payment.core`, the same code as DRG and Dask: largest
remainder, to the fen, ROUND_HALF_UP via :mod:`casemix._money`), with the
DIP scores as the points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from casemix._frames import like, read_path, summary_like, to_polars
from casemix._money import FEN_PER_YUAN, round_half_up, yuan_to_fen
from casemix.cases import canonical, parse_dates, parse_numbers
from casemix.dip.scoring import SCORE_COLUMNS, Bonus, CostRules, case_scores, high_cost_score, low_cost_score
from casemix.errors import InputError, PolicyError

__all__ = [
    "Bonus",
    "CostRules",
    "DipSettlement",
    "case_scores",
    "high_cost_score",
    "low_cost_score",
    "optimal_interval_point_value",
    "optimised_point_value",
    "settle",
    "settlement_point_value",
    "year_start_point_value",
]


def year_start_point_value(
    costs: Sequence[float], scores: Sequence[float], weights: Sequence[float] = (1.0, 2.0, 7.0)
) -> float:
    """Year-start (预算) point value = Σ w_y C_y / Σ w_y S_y [spec].

    ``costs`` are the annual inpatient costs and ``scores`` the annual total
    scores of the same years, oldest first; ``weights`` (1:2:7) align with
    the latest years.
    """
    if len(costs) != len(scores) or not costs:
        raise ValueError("costs and scores must list the same years (at least one)")
    w = (
        list(weights)[-len(costs) :]
        if len(costs) <= len(weights)
        else [0.0] * (len(costs) - len(weights)) + list(weights)
    )
    den = sum(wi * s for wi, s in zip(w, scores, strict=True))
    if den <= 0:
        raise ValueError("the weighted total score must be positive")
    return sum(wi * c for wi, c in zip(w, costs, strict=True)) / den


def settlement_point_value(fund: float, fund_ratio: float, total_score: float) -> float:
    """Settlement (结算) point value = (fund / fund payment ratio) / total score [spec].

    ``fund / fund_ratio`` is the total medical cost the fund stands for;
    each point is worth that cost divided by all points.
    """
    if not 0 < fund_ratio <= 1:
        raise ValueError(f"fund payment ratio must be in (0, 1], got {fund_ratio}")
    if total_score <= 0:
        raise ValueError("the total score must be positive")
    return float(fund) / fund_ratio / total_score


def optimised_point_value(
    costs: Any, scores: Any, trim: tuple[float, float] = (0.025, 0.975), *, trim_on: str = "cost"
) -> float:
    """Point value by the quantile (分位数) method: Σ cost / Σ score over the untrimmed cases.

    ``trim_on="cost"`` (default): cases whose cost (住院费用) lies below the
    ``trim[0]`` or above the ``trim[1]`` quantile (linear interpolation) are
    dropped [spec: 3.0 draft §5.4 二(1) "设置 97.5%和 2.5%为裁剪上下限，根据
    历史病例数据的住院费用进行裁剪"]. ``trim_on="point_value"``: trim on each
    case's own point value ``cost / score`` instead (casemix's earlier
    reading, kept as a named alternative).
    """
    if trim_on not in ("cost", "point_value"):
        raise ValueError(f"trim_on must be 'cost' or 'point_value', not {trim_on!r}")
    c = np.asarray(costs, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(c) & np.isfinite(s) & (s > 0)
    c, s = c[ok], s[ok]
    if c.size == 0:
        raise ValueError("no case with a positive score")
    x = c if trim_on == "cost" else c / s
    lo, hi = np.quantile(x, trim)
    # interpolated quantiles of equal values can land a hair off them: keep those cases
    keep = (x >= lo - 1e-12 * abs(lo)) & (x <= hi + 1e-12 * abs(hi))
    if not keep.any():  # too few cases to trim (two cases: each falls outside one bound)
        keep[:] = True
    return float(c[keep].sum() / s[keep].sum())


def _geometric_median(points: np.ndarray) -> np.ndarray:
    """The point with the least sum of distances to ``points`` (Weiszfeld, vertices checked)."""
    for p in points:  # a data point is the median when the pull of the others is <= its weight
        d = points - p
        r = np.hypot(d[:, 0], d[:, 1])
        far = r > 0
        same = int((~far).sum())
        if not far.any() or np.hypot(*(d[far] / r[far, None]).sum(axis=0)) <= same:
            vertex: np.ndarray = p.copy()
            return vertex
    y: np.ndarray = points.mean(axis=0)
    for _ in range(10_000):
        r = np.hypot(*(points - y).T)
        w = 1.0 / r
        nxt: np.ndarray = (points * w[:, None]).sum(axis=0) / w.sum()
        if np.hypot(*(nxt - y)) <= 1e-12 * max(1.0, np.hypot(*y)):
            return nxt
        y = nxt
    return y


def optimal_interval_point_value(income: Any, scores: Any, costs: Any = None) -> float:
    """Point value by the optimal interval (优值区间) [spec: 3.0 draft §5.4 二(2)].

    Inputs are per hospital: ``income`` (住院总费用), ``scores`` (病种总分值)
    and, for the two-dimensional method, ``costs`` (住院总成本). Each
    hospital's 每指数点值 = income / score and 每指数成本 = cost / score; the
    region's are the same ratios of the totals.

    - One dimension (``costs=None``): "以低于每指数点值地区均值的区段作为优值
      区间，利用该区间的加权平均值作为年初点值" — the hospitals whose point
      value is below the regional one; their Σ income / Σ score (the mean
      weighted by score).
    - Two dimensions: the hospitals with point value and cost per point both
      below the regional ones and income covering cost (point value >= cost
      per point); the point value (x coordinate) of their geometric centre,
      "距离象限区域中所有的点的距离之和最小的点" (the geometric median).
    """
    inc = np.asarray(income, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64)
    if inc.shape != sc.shape or inc.size == 0 or not (sc > 0).all():
        raise ValueError("income and scores: one positive score per hospital, same length")
    pv, pv_region = inc / sc, inc.sum() / sc.sum()
    if costs is None:
        keep = pv < pv_region
        if not keep.any():  # every hospital at the regional value
            return float(pv_region)
        return float(inc[keep].sum() / sc[keep].sum())
    co = np.asarray(costs, dtype=np.float64)
    if co.shape != sc.shape:
        raise ValueError("costs: one per hospital, like income and scores")
    cp, cp_region = co / sc, co.sum() / sc.sum()
    keep = (pv < pv_region) & (cp < cp_region) & (pv >= cp)
    if not keep.any():
        raise ValueError(
            "no hospital lies in the optimal interval (point value and cost per "
            "point below the regional means, income covering cost)"
        )
    return float(_geometric_median(np.column_stack([pv[keep], cp[keep]]))[0])


# ------------------------------------------------------------------ case scores
# ------------------------------------------------------------------ settlement
@dataclass(frozen=True)
class DipSettlement:
    """Result of :func:`settle` (frames in the caller's type).

    ``cases``: input + case-score columns + ``payment_fen``.
    ``hospitals``: per hospital ``cases``, ``grouped_cases``, ``total_score``,
    ``point_payment_fen`` (Σ score × PV × ratio, largest remainder),
    ``assessment``, ``deduction_fen``, ``payment_fen``, ``deposit_fen``,
    ``prepaid_fen``, ``clearing_fen`` (payment − deposit − prepaid; < 0 is a
    refund), ``cost_fen``, ``fund_cost_fen`` (cost × ratio), ``surplus_fen``
    (payment − fund_cost).
    ``region``: fund, ratio, total score, the point values, payments.
    ``monthly``: per hospital and month, score and pre-payment.
    ``notes``: rows left out by the bad-value rule of ``docs/cases.md``,
    one line per reason (their rows are in ``cases`` with null results).
    """

    cases: Any
    hospitals: Any
    region: Any
    monthly: Any
    notes: tuple[str, ...] = ()

    @property
    def point_value(self) -> float:
        """The point value paid at (yuan of medical cost per point)."""
        return float(to_polars(self.region)["point_value"][0])


def _fen_map(mapping: Mapping[str, Any] | None, hospitals: list[str]) -> np.ndarray:
    mapping = mapping or {}
    return np.array([yuan_to_fen(mapping.get(h, 0)) for h in hospitals], dtype=np.int64)


def _standard_point_value(point_value: Any, year_start_value: float | None) -> float | None:
    """The point value that prices the very-low-cost payment standard, if one is known."""
    if year_start_value is not None:
        return float(year_start_value)
    if isinstance(point_value, (int, float)) and not isinstance(point_value, bool):
        return float(point_value)
    return None


#: column names of a hospital-costs table's cost (住院总成本), first found wins
_HOSPITAL_COST_COLUMNS = ("hospital_cost", "cost", "住院总成本", "总成本")


def _hospital_cost_map(hospital_costs: Any) -> dict[str, float]:
    """hospital_id → 住院总成本 (yuan) from a mapping, a frame or a table file.

    A frame or file (CSV in any encoding, Excel, Parquet) needs a hospital column
    (``hospital_id`` or an alias of ``docs/cases.md``) and a cost column named one
    of ``hospital_cost``, ``cost``, ``住院总成本`` or ``总成本``; costs are read by the one number rule.

    Raises
    ------
    InputError
        A missing column, a hospital listed twice, or a cost that is missing, not a
        number or negative — naming the row (or hospital) and the value.
    """
    if isinstance(hospital_costs, Mapping):
        rows = [(str(h), v) for h, v in hospital_costs.items()]
        where = [f"hospital {h!r}" for h, _ in rows]
    else:
        frame = to_polars(
            read_path(hospital_costs) if isinstance(hospital_costs, (str, Path)) else hospital_costs
        )
        col = next((c for c in _HOSPITAL_COST_COLUMNS if c in frame.columns), None)
        if col is None:
            raise InputError(
                f"hospital costs table needs a cost column named one of {', '.join(_HOSPITAL_COST_COLUMNS)}; "
                f"it has {', '.join(frame.columns) or 'no columns'}"
            )
        ids = canonical(frame.drop(col), need=("hospital_id",), step="hospital costs").frame["hospital_id"]
        costs = parse_numbers(frame[col])
        rows = list(zip(ids.cast(pl.String).to_list(), costs.to_list(), strict=True))
        raw = frame[col].to_list()
        where = [f"row {i} (hospital {h!r}, {col} {raw[i]!r})" for i, (h, _) in enumerate(rows)]
    out: dict[str, float] = {}
    for (h, v), at in zip(rows, where, strict=True):
        try:
            x = float(v)
        except (TypeError, ValueError):
            x = math.nan
        if not math.isfinite(x) or x < 0:
            raise InputError(f"hospital costs: {at}: 住院总成本 must be a number >= 0 (yuan)")
        if h in out:
            raise InputError(f"hospital costs: {at}: hospital listed twice; give one 住院总成本 per hospital")
        out[h] = x
    return out


def _interval_value(scored: pl.DataFrame, cost: str, hospital_costs: Any) -> float:
    """The 优值区间 point value of the settled year's hospitals (§5.4 二(2)).

    Per hospital: income = Σ cost (住院总费用) and score = Σ case score over
    its grouped cases; hospitals without a score take no part.
    """
    per = (
        scored.filter(pl.col("dip_group").is_not_null())
        .group_by(pl.col("hospital_id").cast(pl.String))
        .agg(
            pl.col(cost).cast(pl.Float64).sum().alias("income"), pl.col("dip_case_score").sum().alias("score")
        )
        .filter(pl.col("score") > 0)
        .sort("hospital_id")
    )
    costs = None
    if hospital_costs is not None:
        hospital_costs = _hospital_cost_map(hospital_costs)
        missing = [h for h in per["hospital_id"].to_list() if h not in hospital_costs]
        if missing:
            raise InputError(
                f"hospital_costs has no 住院总成本 for hospital(s) {', '.join(missing[:5])}; "
                "the two-dimensional 优值区间 needs one per hospital with a score"
            )
        costs = [float(hospital_costs[h]) for h in per["hospital_id"].to_list()]
    try:
        return optimal_interval_point_value(per["income"].to_numpy(), per["score"].to_numpy(), costs)
    except ValueError as exc:
        raise PolicyError(f"point_value='optimal_interval': {exc}") from None


def _month_of(scored: pl.DataFrame, month_col: str) -> pl.Series:
    """Month 1–12 of each case from ``month_col``.

    A date or datetime gives its month; whole numbers 1–12 are months already; text and
    other numbers are dates by the one date rule of ``docs/cases.md`` (ISO, YYYY/MM/DD,
    YYYYMMDD, 年月日, Excel serial days).  A value that is none of these raises
    :class:`InputError` naming the row and case id: a case paid in no month would drop out
    of the monthly pre-payment.
    """
    s = scored[month_col]
    if s.dtype == pl.Date or isinstance(s.dtype, pl.Datetime):
        month = s.dt.month().cast(pl.Int64)
    elif s.dtype.is_integer() and s.is_between(1, 12).all():
        month = s.cast(pl.Int64)
    else:
        month = parse_dates(s).dt.month().cast(pl.Int64)
    bad = month.is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        case = scored["case_id"][i] if "case_id" in scored.columns else None
        raise InputError(
            f"DIP settle: {month_col} at row {i} (case_id {case!r}) is {s[i]!r}, neither a date "
            f"nor a month 1-12 ({int(bad.sum())} such rows); monthly pre-payment needs each "
            "case's month (docs/cases.md, dates)"
        )
    return month.alias(month_col)


def settle(
    grouped: Any,
    fund: float | str | Decimal | None = None,
    *,
    policy: Any = None,
    base_volume: Any = None,
    fund_ratio: float = 1.0,
    point_value: str | float = "settlement",
    trim: tuple[float, float] = (0.025, 0.975),
    year_start_value: float | None = None,
    prepayment_share: float = 0.9,
    deposit: float = 0.0,
    assessment: Mapping[str, float] | None = None,
    deductions: Mapping[str, Any] | None = None,
    month_col: str = "discharge_date",
    catalog: Any = None,
    group_means: Any = None,
    level_col: str | None = None,
    hospital_coefficients: Any = None,
    coefficient_by: str = "hospital_id",
    subtypes: bool = True,
    scheme: Any = None,
    rules: CostRules = CostRules(),  # noqa: B008 — a frozen dataclass, never changed
    cost: str = "total_cost",
    same_rate_groups: Sequence[str] = (),
    mapping: dict[str, str] | None = None,
    low_reference: str = "standard",
    bonus: Sequence[Bonus] = (),
    hospital_costs: Mapping[str, Any] | str | Path | Any | None = None,
) -> Any:
    """Settle a year's DIP cases under a fund budget, or under a payment policy.

    Parameters
    ----------
    grouped
        Output of :func:`casemix.dip.group`, with ``hospital_id`` and ``cost``
        (and ``month_col`` for monthly pre-payment).
    fund
        The DIP fund budget for these cases, yuan (without ``policy``).
    policy
        A :class:`casemix.budget.Policy` (e.g. ``Policy.from_toml``): the
        cases are scored here (catalog, coefficients, sub-types, ``rules``,
        ``bonus``) and settled by the settlement core, as DRG is, with the
        policy's budget or fund pools, point form, elastic point value,
        特例单议 (5‰ of the region's DIP cases), 新药新技术 add-on, corridors,
        quality reserve and monthly pre-settlement
        (:mod:`casemix.dip.policy_settle`; ``docs/payment-settlement.md``).
        Returns a :class:`casemix.settle.Settlement`.  ``fund``,
        ``fund_ratio``, ``point_value`` and the monthly/deposit/assessment
        arguments then come from the policy and must not be given.
    base_volume
        With ``policy``: each hospital's prior-year points for the elastic
        point value (as :func:`casemix.settle.settle` takes it).
    fund_ratio
        Fund payment ratio (基金支付比例): the fund's share of medical cost.
    point_value
        ``"settlement"`` ((fund / ratio) / total score: the fund is paid out
        exactly), ``"optimised"`` (trimmed Σ cost / Σ score of the cases),
        ``"optimal_interval"`` (优值区间 over the hospitals' Σ cost / Σ score,
        :func:`optimal_interval_point_value`; two-dimensional with
        ``hospital_costs``), ``"year_start"`` (``year_start_value``) or a
        number (yuan per point).
    year_start_value
        The year-start point value (see :func:`year_start_point_value`):
        prices the monthly pre-payments; defaults to the point value used.
    prepayment_share
        Share of each month's score value advanced (90% [spec]).
    deposit
        Quality deposit withheld from each hospital's payment (<= 5% [spec]).
    assessment, deductions
        Per hospital: assessment coefficient (default 1) and audit deductions
        (yuan, default 0).
    catalog, group_means, level_col, hospital_coefficients, subtypes, scheme, rules
        Passed to :func:`case_scores`, like ``same_rate_groups``,
        ``low_reference`` and ``bonus`` (``coefficient_by`` as its ``by``); the
        very-low-cost standard is priced at ``year_start_value``, else at a
        numeric ``point_value``, else at the point value the scores were
        built at (the settlement point value depends on the scores).
    hospital_costs
        ``point_value="optimal_interval"`` only: hospital_id → 住院总成本
        (the hospital's cost of providing its DIP stays, yuan), which
        makes the 优值区间 two-dimensional (每指数点值 × 每指数成本).  Every
        hospital with a score needs an entry.  A mapping, a frame or a table
        file (columns hospital_id and hospital_cost / cost / 住院总成本).
    mapping
        ``{your column: canonical name}`` besides the aliases of
        ``docs/cases.md``.  A case whose cost or hospital is missing or
        malformed, or whose cost is negative, is left out (the bad-value
        rule of ``docs/cases.md``) and counted in ``notes``.

    Returns
    -------
    DipSettlement, or :class:`casemix.settle.Settlement` with ``policy``.
    """
    if policy is not None:
        return _settle_under_policy(grouped, fund, policy, base_volume, locals())
    if fund is None:
        raise PolicyError("DIP settle needs fund= (the DIP fund budget, yuan) or policy= (a payment policy)")
    if base_volume is not None:
        raise PolicyError("base_volume (elastic point value) needs policy= with [elastic] enabled")
    if not 0 < fund_ratio <= 1:
        raise PolicyError(f"fund_ratio must be in (0, 1], got {fund_ratio}")
    if not 0 <= deposit <= 0.05 + 1e-12:
        raise PolicyError(f"deposit (quality deposit) must be in [0, 0.05] [spec], got {deposit}")
    if not 0 <= prepayment_share <= 1:
        raise PolicyError(f"prepayment_share must be in [0, 1], got {prepayment_share}")
    c = canonical(
        grouped,
        mapping,
        need=("hospital_id", cost, "dip_group", "dip_score"),
        optional=tuple(x for x in (month_col, coefficient_by, level_col) if x),
        step="DIP settle",
    )
    df = c.used
    scored = to_polars(
        case_scores(
            df,
            catalog=catalog,
            group_means=group_means,
            level_col=level_col,
            hospital_coefficients=hospital_coefficients,
            by=coefficient_by,
            subtypes=subtypes,
            scheme=scheme,
            rules=rules,
            cost=cost,
            same_rate_groups=same_rate_groups,
            low_reference=low_reference,
            bonus=bonus,
            point_value=_standard_point_value(point_value, year_start_value),
        )
    )
    s = scored["dip_case_score"].to_numpy()
    total = float(s.sum())
    if total <= 0:
        raise PolicyError("no case earns a DIP score, so the fund cannot be paid out")
    fund_fen = yuan_to_fen(fund)
    pv_settle = fund_fen / FEN_PER_YUAN / fund_ratio / total
    grouped_mask = scored["dip_group"].is_not_null().to_numpy()
    costs = scored[cost].cast(pl.Float64, strict=False).to_numpy()
    pv_opt = optimised_point_value(costs[grouped_mask], s[grouped_mask], trim)
    pv_interval = None
    if point_value == "optimal_interval":
        pv_interval = _interval_value(scored, cost, hospital_costs)
    elif hospital_costs is not None:
        raise PolicyError("hospital_costs is used by point_value='optimal_interval' only")
    if point_value == "settlement":
        pv, point_fen = pv_settle, fund_fen
    else:
        if point_value == "optimised":
            pv = pv_opt
        elif pv_interval is not None:
            pv = pv_interval
        elif point_value == "year_start":
            if year_start_value is None:
                raise PolicyError("point_value='year_start' needs year_start_value")
            pv = float(year_start_value)
        elif isinstance(point_value, (int, float)) and not isinstance(point_value, bool):
            pv = float(point_value)
        else:
            raise PolicyError(
                f"point_value must be 'settlement', 'optimised', 'optimal_interval', "
                f"'year_start' or a number, got {point_value!r}"
            )
        if not (math.isfinite(pv) and pv > 0):
            raise PolicyError(f"point value must be positive, got {pv}")
        point_fen = int(round_half_up(np.array([pv * fund_ratio * total * FEN_PER_YUAN]))[0])

    # the money: the settlement core splits point_fen over hospitals and cases by score
    from casemix.payment.core import PoolTerms, case_amounts, hospital_sums, point_values

    hosp_ids = scored["hospital_id"].cast(pl.String)
    if hosp_ids.null_count():
        raise InputError(f"hospital_id missing at row {int(hosp_ids.is_null().arg_true()[0])}")
    names = hosp_ids.unique().sort()
    hcode = hosp_ids.cast(pl.Enum(names.to_list())).to_physical().cast(pl.Int64).to_numpy()
    terms = PoolTerms(name="all", budget_fen=point_fen, form="ratio", fund_ratio=1.0)
    zero = np.zeros(df.height, dtype=np.int64)
    sums = hospital_sums(terms, hcode, len(names), s, zero, zero)
    values = point_values(terms, sums, source="dip")
    case_fen = pl.Series(
        "payment_fen", case_amounts(terms, hcode, s, zero, zero, values.hospital_fen).fund_fen, pl.Int64
    )
    ph = pl.DataFrame({"hospital_id": names, "point_payment_fen": values.hospital_fen})

    h = (
        scored.with_columns(case_fen.alias("payment_fen"))
        .group_by(pl.col("hospital_id").cast(pl.String))
        .agg(
            pl.len().cast(pl.Int64).alias("cases"),
            pl.col("dip_group").is_not_null().sum().cast(pl.Int64).alias("grouped_cases"),
            pl.col("dip_case_score").sum().alias("total_score"),
            pl.col(cost).cast(pl.Float64).sum().alias("_cost"),
        )
        .sort("hospital_id")
        .join(ph, on="hospital_id", how="left", maintain_order="left")
    )
    hosp = h["hospital_id"].to_list()
    ass = np.array([float((assessment or {}).get(x, 1.0)) for x in hosp])
    point_pay = h["point_payment_fen"].fill_null(0).to_numpy().astype(np.int64)
    deduct = _fen_map(deductions, hosp)
    payment = round_half_up(point_pay * ass) - deduct
    dep = round_half_up(np.maximum(payment, 0) * deposit)

    # monthly pre-payment at the year-start point value
    pv_month = float(year_start_value) if year_start_value is not None else pv
    month = _month_of(scored, month_col) if month_col in scored.columns else pl.lit(0, pl.Int64)
    monthly = (
        scored.group_by(pl.col("hospital_id").cast(pl.String), month.alias("month"))
        .agg(pl.col("dip_case_score").sum().alias("score"))
        .sort("hospital_id", "month")
    )
    monthly = monthly.with_columns(
        pl.Series(
            "prepaid_fen",
            round_half_up(
                monthly["score"].to_numpy() * pv_month * fund_ratio * prepayment_share * FEN_PER_YUAN
            ),
            pl.Int64,
        )
    )
    pre = dict(monthly.group_by("hospital_id").agg(pl.col("prepaid_fen").sum()).iter_rows())
    prepaid = np.array([pre.get(x, 0) for x in hosp], dtype=np.int64)
    cost_fen = round_half_up(h["_cost"].to_numpy() * FEN_PER_YUAN)
    fund_cost = round_half_up(h["_cost"].to_numpy() * fund_ratio * FEN_PER_YUAN)
    hospitals = h.drop("_cost").with_columns(
        pl.Series("point_payment_fen", point_pay, pl.Int64),
        pl.Series("assessment", ass, pl.Float64),
        pl.Series("deduction_fen", deduct, pl.Int64),
        pl.Series("payment_fen", payment, pl.Int64),
        pl.Series("deposit_fen", dep, pl.Int64),
        pl.Series("prepaid_fen", prepaid, pl.Int64),
        pl.Series("clearing_fen", payment - dep - prepaid, pl.Int64),
        pl.Series("cost_fen", cost_fen, pl.Int64),
        pl.Series("fund_cost_fen", fund_cost, pl.Int64),
        pl.Series("surplus_fen", payment - fund_cost, pl.Int64),
    )
    region = pl.DataFrame(
        {
            "fund_fen": [fund_fen],
            "fund_ratio": [fund_ratio],
            "total_score": [total],
            "point_value": [pv],
            "pv_settlement": [pv_settle],
            "pv_optimised": [pv_opt],
            "pv_optimal_interval": [pv_interval],
            "pv_year_start": [year_start_value],
            "point_money_fen": [point_fen],
            "payment_fen": [int(payment.sum())],
            "fund_paid_out": [int(point_pay.sum()) == fund_fen],
            "cases": [df.height],
            "grouped_cases": [int(grouped_mask.sum())],
            "n_high": [int((scored["dip_cost_class"] == "high").sum())],
            "n_low": [int((scored["dip_cost_class"] == "low").sum())],
            "n_review": [int((scored["dip_cost_class"] == "review").sum())],
        },
        schema_overrides={"pv_year_start": pl.Float64, "pv_optimal_interval": pl.Float64},
    )
    cases_out = c.restore(scored.with_columns(case_fen.alias("payment_fen")), (*SCORE_COLUMNS, "payment_fen"))
    return DipSettlement(
        cases=like(cases_out, grouped),
        hospitals=summary_like(hospitals, grouped),
        region=summary_like(region, grouped),
        monthly=summary_like(monthly, grouped),
        notes=tuple(c.notes()),
    )


#: settle() arguments of the fund path that a policy replaces, with their defaults
_POLICY_REPLACES = {
    "fund_ratio": 1.0,
    "point_value": "settlement",
    "year_start_value": None,
    "prepayment_share": 0.9,
    "deposit": 0.0,
    "assessment": None,
    "deductions": None,
    "hospital_costs": None,
    "trim": (0.025, 0.975),
    "month_col": "discharge_date",
}


def _settle_under_policy(grouped: Any, fund: Any, policy: Any, base_volume: Any, args: dict) -> Any:
    from casemix.dip.policy_settle import settle_under_policy

    given = [k for k, default in _POLICY_REPLACES.items() if args[k] != default]
    if fund is not None or given:
        name = "fund" if fund is not None else given[0]
        raise PolicyError(
            f"DIP settle: {name}= and policy= both given; under a policy the budget, "
            "fund ratio, point value, monthly pre-settlement and deposit come from the "
            f"policy file ([budget]/[pools], [monthly], …): drop {name}="
        )
    options = {
        k: args[k]
        for k in (
            "catalog",
            "group_means",
            "level_col",
            "hospital_coefficients",
            "subtypes",
            "scheme",
            "rules",
            "same_rate_groups",
            "low_reference",
            "bonus",
        )
    }
    options["by"] = args["coefficient_by"]
    return settle_under_policy(
        grouped,
        policy,
        base_volume=base_volume,
        score_options=options,
        cost=args["cost"],
        mapping=args["mapping"],
    )
