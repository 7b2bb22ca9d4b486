"""Monthly pre-settlement (月度预结算) and annual clearing (年度清算).

Rules (DIP 3.0 draft §7.2–7.3 [A]; 经办管理规程 §26 [A-规]):

- Months by discharge date (出院日期, ``YYYY-MM``).
- Monthly, per hospital [A §7.2]: "医疗机构月度预结费用 = (该医疗机构月度总
  权重 × 该月费率 − 该月患者支付总额) × 预拨比例 − 该月审核扣款", i.e.
  ``monthly = (points × PV_prov − patient share) × prepay_ratio − audit``,
  with PV_prov the provisional point value (the year-start / base point
  value unless the policy gives one) and ``prepay_ratio`` 90% in the draft.
  In fen, each step rounded ROUND_HALF_UP once per hospital × month:
  gross = ⌊points × PV_prov × 100⌉; base = gross − patient share;
  prepaid = ⌊base × prepay_ratio⌉; monthly = prepaid − audit.  A negative
  monthly amount is a recovery from the hospital.
- Quality deposit (质量保证金) [A-规 §26]: "可预留一定比例（不超过 5%）作为
  质量保证金，结合考核评价情况在年度清算进行拨付": deposit =
  ⌊deposit_share × annual⌉ (0 when the annual amount is not positive),
  returned × a fraction of the assessment score.  The sources give no
  formula for the return; casemix's (a parameter): nothing below
  ``pass_score``, else min(score ÷ full_score, 1).
- Annual [A §7.3 (四)]: annual settlement = the hospital's settled fund
  payment − Σ audit deductions of the year ("… × 考核系数 − ∑审核扣减费用";
  the assessment coefficient is the settlement core's).  Clearing [A §7.3
  二(二)]: "年终预清算金额与全年月度预结算金额以及预拨周转金之差":
  ``clearing = annual − Σ monthly − deposit``; the deposit returned is paid
  beside it, so the year's total to the hospital is
  ``Σ monthly + clearing + returned = annual − deposit + returned``.

All amounts are integer fen (``casemix._money``); the tables' sums are
exact.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from pydantic import Field

from casemix._money import round_half_up, yuan_array_to_fen
from casemix.cases import parse_dates
from casemix.errors import InputError, PolicyError
from casemix.payment._section import Section
from casemix.payment.sums import BLOCK_ROWS, float_sums, int_sums

__all__ = [
    "MonthlyConfig",
    "annual_clearing",
    "deposit_return_fraction",
    "discharge_months",
    "monthly_presettlement",
]


class MonthlyConfig(Section):
    """``[monthly]``: monthly pre-settlement and the quality deposit.

    Attributes
    ----------
    enabled
        Produce the hospital × month table and the clearing (off by default).
    point_value
        Provisional point value, yuan per point; unset = the settlement's
        base (year-start) point value.
    prepay_ratio
        预拨比例 (0.9 in the DIP 3.0 draft §7.2; ≥ 0.85 in Zhejiang [city]).
    deposit_share
        Quality deposit withheld from the annual settlement, at most 0.05
        [A-规 §26].
    scores
        hospital_id → assessment score (考核得分); hospitals not listed get
        ``default_score``.
    full_score, pass_score
        Score returning the whole deposit; score below which none is returned.
    """

    TABLE = "monthly"

    enabled: bool = False
    point_value: float | None = Field(default=None, gt=0)
    prepay_ratio: float = Field(default=0.9, ge=0, le=1)
    deposit_share: float = Field(default=0.05, ge=0, le=0.05)
    scores: dict[str, float] = Field(default_factory=dict)
    default_score: float = Field(default=100.0, ge=0)
    full_score: float = Field(default=100.0, gt=0)
    pass_score: float = Field(default=0.0, ge=0)


def _ids(cases: pl.DataFrame) -> pl.Series:
    if "case_id" in cases.columns:
        return cases["case_id"].cast(pl.String)
    return pl.int_range(1, cases.height + 1, eager=True).cast(pl.String)


def discharge_months(cases: pl.DataFrame) -> pl.Series:
    """``YYYY-MM`` of each case's ``discharge_date`` (a date, datetime, or text/number read
    by the one date rule of ``docs/cases.md``).

    Raises as :func:`_month_numbers`.
    """
    return _month_label(_month_numbers(cases)).alias("month")


def _month_label(number: pl.Series) -> pl.Series:
    """``YYYY-MM`` of a month number ``year × 12 + month − 1``."""
    year = (number // 12).cast(pl.String)
    month = (number % 12 + 1).cast(pl.String).str.zfill(2)
    return pl.select(pl.concat_str(pl.lit(year), pl.lit("-"), pl.lit(month))).to_series()


def _month_numbers(cases: pl.DataFrame) -> pl.Series:
    """Each case's discharge month as the number ``year × 12 + month − 1`` (Int32).

    Raises
    ------
    PolicyError
        The cases have no ``discharge_date`` column (monthly pre-settlement
        needs it).
    InputError
        A missing or unreadable date, naming the row and case id.
    """
    if "discharge_date" not in cases.columns:
        raise PolicyError(
            "monthly pre-settlement needs the column discharge_date (出院日期), "
            "which the cases lack; add it or set monthly.enabled = false"
        )
    s = cases["discharge_date"]
    if s.dtype == pl.Date:
        d = s
    elif isinstance(s.dtype, pl.Datetime):
        d = s.dt.date()
    else:
        # text and numbers by the one date rule of the intake (docs/cases.md): ISO,
        # YYYY/MM/DD, YYYYMMDD, YYYY年M月D日, Excel serial days
        d = parse_dates(s)
    bad = d.is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InputError(
            f"discharge_date missing or not a date at row {i} "
            f"(case_id {_ids(cases)[i]!r}): {s[i]!r}; monthly pre-settlement "
            "assigns each case to its discharge month"
        )
    # a number per case, not a string: 10M cases group by it cheaply; from the dates' day
    # numbers by numpy's calendar months, slice by slice into one Int32 array (polars' year and
    # month columns and their arithmetic: 150 MB of temporaries at 10M cases)
    days = d.cast(pl.Int32)
    out = np.empty(days.len(), dtype=np.int32)
    for a in range(0, days.len(), BLOCK_ROWS):
        x = days.slice(a, BLOCK_ROWS).to_numpy().astype("datetime64[D]").astype("datetime64[M]")
        # months since 1970-01 → year × 12 + month − 1
        out[a : a + x.size] = x.astype(np.int64) + 1970 * 12
    return pl.Series("month", out)


def _fen_column(cases: pl.DataFrame, name: str, what: str) -> np.ndarray | None:
    """A yuan column as integer fen (0 where null), None without the column; negative or
    unreadable → InputError."""
    if name not in cases.columns:
        return None  # no array of zeros per case (10M cases: 80 MB)
    raw = cases[name]
    x = raw.cast(pl.Float64, strict=False)
    bad = (x.is_null() & raw.is_not_null()) | (x < 0).fill_null(False) | x.is_nan()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InputError(
            f"{name} ({what}) is negative or not a number at row {i} (case_id {_ids(cases)[i]!r}): {raw[i]!r}"
        )
    return yuan_array_to_fen(x.fill_null(0.0).to_numpy())


def monthly_presettlement(
    cases: pl.DataFrame,
    points: np.ndarray,
    point_value: float | np.ndarray,
    config: MonthlyConfig,
    *,
    patient_share_fen: np.ndarray | None = None,
    hospital_codes: tuple[np.ndarray, list[str]] | None = None,
    pool_codes: np.ndarray | None = None,
) -> pl.DataFrame:
    """The hospital × month pre-settlement table.

    Parameters
    ----------
    cases
        ``hospital_id``, ``discharge_date``; optional ``audit_deduction``
        (yuan, alias 审核扣款) and ``case_id``.
    points
        Each case's settled (adjusted) points.
    point_value
        Provisional point value, yuan per point: one for all, or per case
        (e.g. by pool), or one per pool with ``pool_codes``.
    patient_share_fen
        What each case's patient bears, fen (0 if not given).
    hospital_codes
        ``(code per case, hospital_id per code)`` when the caller has them
        (a settlement does), instead of reading ``hospital_id``.
    pool_codes
        Each case's index into ``point_value`` (one value per pool): no
        per-case array of point values is made beside the cases' amounts.

    Returns
    -------
    polars.DataFrame
        One row per hospital × month, sorted: ``hospital_id``, ``month``,
        ``cases``, ``points``, ``gross_fen``, ``patient_share_fen``,
        ``base_fen``, ``prepaid_fen``, ``audit_fen``, ``monthly_fen``.
    """
    month = _month_numbers(cases).to_numpy()
    audit = _fen_column(cases, "audit_deduction", "审核扣款, yuan")
    pts = np.asarray(points, dtype=np.float64)
    pv = np.asarray(point_value, dtype=np.float64)
    patient = (
        np.zeros(cases.height, dtype=np.int64)
        if patient_share_fen is None
        else np.asarray(patient_share_fen, dtype=np.int64)
    )
    if hospital_codes is None:
        hosp, names = _codes(cases)
    else:
        hosp, names = np.asarray(hospital_codes[0]), list(hospital_codes[1])
    # one integer key per hospital × month, summed with bincount: no per-case strings or hash table
    first = int(month.min()) if month.size else 0
    n_months = int(month.max()) - first + 1 if month.size else 1
    # in place: one Int64 array per case, not four (10M cases: 80 MB each)
    key = np.multiply(hosp, n_months, dtype=np.int64)
    key += month
    key -= first
    del month
    size = len(names) * n_months
    count = np.bincount(key, minlength=size)
    used = np.flatnonzero(count)
    # the sums one after the other, the gross amounts last: one per-case array beside the key
    # the points are a read-only view of their column: bincount would copy them (80 MB at 10M)
    points_h = float_sums(key, pts, size)[used]
    patient_h = int_sums(key, patient, size)[used]
    audit_h = int_sums(key, audit, size)[used] if audit is not None else np.zeros(used.size, dtype=np.int64)
    # the gross amounts slice by slice (np.add.at adds in row order, as bincount over all the
    # cases did: the same float sums), no per-case array of them (10M cases: 80 MB)
    gross_h = np.zeros(size, dtype=np.float64)
    for a in range(0, pts.size, BLOCK_ROWS):
        s = slice(a, a + BLOCK_ROWS)
        if pool_codes is not None:
            # the per-pool values gathered, then × points in place: pv × pts is pts × pv exactly
            gross = pv[pool_codes[s]]
            gross *= pts[s]
        else:
            # one value for all (or per case)
            gross = pts[s] * (pv[s] if pv.ndim and pv.size == pts.size else pv)
        gross *= 100.0
        np.add.at(gross_h, key[s], gross)
    gross_h = gross_h[used]
    del key
    t = pl.DataFrame(
        {
            "hospital_id": pl.Series(names, dtype=pl.String).gather(used // n_months),
            "month": _month_label(pl.Series(used % n_months + first, dtype=pl.Int64)),
            "cases": count[used].astype(np.int64),
            "points": points_h,
            "gross": gross_h,
            "patient_share_fen": patient_h,
            "audit_fen": audit_h,
        }
    )
    gross = round_half_up(t["gross"].to_numpy())
    base = gross - t["patient_share_fen"].to_numpy()
    prepaid = round_half_up(base * config.prepay_ratio)
    return (
        t.drop("gross")
        .with_columns(
            pl.Series("gross_fen", gross),
            pl.Series("base_fen", base),
            pl.Series("prepaid_fen", prepaid),
            pl.Series("monthly_fen", prepaid - t["audit_fen"].to_numpy()),
        )
        .select(
            "hospital_id",
            "month",
            "cases",
            "points",
            "gross_fen",
            "patient_share_fen",
            "base_fen",
            "prepaid_fen",
            "audit_fen",
            "monthly_fen",
        )
    )


def _codes(cases: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Each case's code into the sorted distinct ``hospital_id`` values, and those values.

    Raises
    ------
    InputError
        A missing ``hospital_id``, naming the first such row and its case id.
    """
    ids = cases["hospital_id"].cast(pl.String)
    if ids.null_count():
        i = int(ids.is_null().arg_true()[0])
        raise InputError(
            f"hospital_id missing at row {i} (case_id {_ids(cases)[i]!r}); monthly "
            "pre-settlement sums each hospital's cases by month: fill it or drop the case"
        )
    names = ids.unique().sort()
    return ids.cast(pl.Enum(names.to_list())).to_physical().cast(pl.Int64).to_numpy(), names.to_list()


def deposit_return_fraction(score: np.ndarray, config: MonthlyConfig) -> np.ndarray:
    """Share of the deposit returned: 0 below pass_score, else min(score ÷ full_score, 1)."""
    s = np.asarray(score, dtype=np.float64)
    return np.where(s < config.pass_score, 0.0, np.minimum(s / config.full_score, 1.0))


def annual_clearing(settled: pl.DataFrame, monthly: pl.DataFrame, config: MonthlyConfig) -> pl.DataFrame:
    """Per hospital: annual settlement, Σ monthly, deposit, clearing and deposit returned.

    Parameters
    ----------
    settled
        ``hospital_id`` and ``settled_fen``: each hospital's settled fund
        payment for the year (the settlement core's result).
    monthly
        The table of :func:`monthly_presettlement`.

    Returns
    -------
    polars.DataFrame
        ``hospital_id``, ``settled_fen``, ``audit_fen``, ``annual_fen`` (=
        settled − audit), ``monthly_fen`` (Σ), ``deposit_fen``, ``clearing_fen``
        (= annual − Σ monthly − deposit), ``score``, ``deposit_returned_fen``,
        ``total_paid_fen`` (= Σ monthly + clearing + returned).
    """
    m = monthly.group_by("hospital_id").agg(pl.col("monthly_fen").sum(), pl.col("audit_fen").sum())
    t = (
        settled.select(pl.col("hospital_id").cast(pl.String), pl.col("settled_fen").cast(pl.Int64))
        .join(m, on="hospital_id", how="left")
        .with_columns(pl.col("monthly_fen", "audit_fen").fill_null(0).cast(pl.Int64))
        .sort("hospital_id")
    )
    annual = t["settled_fen"].to_numpy() - t["audit_fen"].to_numpy()
    deposit = np.where(annual > 0, round_half_up(annual * config.deposit_share), 0)
    clearing = annual - t["monthly_fen"].to_numpy() - deposit
    # floats: the scores and the default are validated as floats (a list of none is float64 too)
    score = np.array([config.scores.get(h, config.default_score) for h in t["hospital_id"].to_list()])
    returned = round_half_up(deposit * deposit_return_fraction(score, config))
    return t.with_columns(
        pl.Series("annual_fen", annual),
        pl.Series("deposit_fen", deposit),
        pl.Series("clearing_fen", clearing),
        pl.Series("score", score),
        pl.Series("deposit_returned_fen", returned),
        pl.Series("total_paid_fen", t["monthly_fen"].to_numpy() + clearing + returned),
    ).select(
        "hospital_id",
        "settled_fen",
        "audit_fen",
        "annual_fen",
        "monthly_fen",
        "deposit_fen",
        "clearing_fen",
        "score",
        "deposit_returned_fen",
        "total_paid_fen",
    )
