"""Readmissions: a stay followed by another at the same hospital, same ADRG, within N days.

Zhejiang 2019: the earlier stay's points are halved, 15 days; Jinhua 10
days [city].  Needs ``patient_id``, ``admission_date`` and
``discharge_date``; without them the rule is skipped and the settlement
says so.
"""

from __future__ import annotations

import polars as pl

from casemix.budget import Readmission
from casemix.errors import InputError

NEEDED = ("patient_id", "admission_date", "discharge_date")


def _as_date(frame: pl.DataFrame, name: str) -> pl.Expr:
    dtype = frame.schema[name]
    if dtype == pl.Date:
        return pl.col(name)
    if dtype == pl.Datetime or isinstance(dtype, pl.Datetime):
        return pl.col(name).dt.date()
    if dtype == pl.String:
        return pl.col(name).str.to_date(strict=False)
    raise InputError(f"column {name} must hold dates (Date, Datetime or 'YYYY-MM-DD' text); "
                     f"got {dtype}")


def flag_readmissions(frame: pl.DataFrame, eligible: pl.Series, group_col: str,
                      rule: Readmission) -> tuple[pl.Series, str | None]:
    """Boolean Series: stays whose points the readmission penalty applies to.

    Parameters
    ----------
    frame
        The cases (needs the columns in ``NEEDED`` and ``hospital_id``).
    eligible
        Rows that may be penalised or count as a readmission pair
        (point-paid cases with a group).
    group_col
        The group code column; the ADRG is the ``adrg`` column, else the
        first 3 characters of the group code.
    rule
        The policy's readmission rule.

    Returns
    -------
    flags, note
        ``note`` explains why the rule was skipped, else None.
    """
    n = frame.height
    none = pl.repeat(False, n, dtype=pl.Boolean, eager=True).alias("readmission")
    if not rule.enabled:
        return none, None
    missing = [c for c in NEEDED if c not in frame.columns]
    if missing:
        return none, f"readmission rule skipped: no column {', '.join(missing)}"
    adrg = (pl.col("adrg") if "adrg" in frame.columns
            else pl.col(group_col).cast(pl.String).str.slice(0, 3))
    key = ["_pid", "_hosp", "_adrg"]
    r = frame.select(
        pl.col("patient_id").cast(pl.String).alias("_pid"),
        pl.col("hospital_id").cast(pl.String).alias("_hosp"),
        _as_date(frame, "admission_date").alias("_adm"),
        _as_date(frame, "discharge_date").alias("_dis"),
        adrg.cast(pl.String).alias("_adrg"),
    ).with_columns(eligible.alias("_ok"), pl.int_range(n).alias("_row"))
    r = r.filter(pl.col("_ok") & pl.all_horizontal(pl.col(c).is_not_null()
                                                   for c in ["_pid", "_adm", "_dis", "_adrg"])
                 & ~pl.col("_adrg").is_in(list(rule.exempt_adrg)))
    r = r.sort([*key, "_adm", "_row"])
    gap = (pl.col("_adm").shift(-1).over(key) - pl.col("_dis")).dt.total_days()
    # a same-day transfer back (gap 0) counts; overlapping stays (gap < 0) are data errors, not readmissions
    r = r.with_columns(gap.is_between(0, rule.days).fill_null(False).alias("_earlier"))
    if rule.apply_to == "later":
        r = r.with_columns(pl.col("_earlier").shift(1).over(key).fill_null(False).alias("_flag"))
    else:
        r = r.with_columns(pl.col("_earlier").alias("_flag"))
    rows = r.filter("_flag")["_row"]
    flags = pl.int_range(n, eager=True).is_in(rows.implode()).alias("readmission")
    return flags, None
