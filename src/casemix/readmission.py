"""Readmission pairs: one pairing rule for settlement and monitoring.

A stay and the same patient's next stay form a *readmission pair* when the
next stay starts 0..``days`` days after the first one's discharge and both
fall in the same group: the same DRG by default, or the same ADRG / MDC,
or any group.  The pair is **not limited to one hospital** unless
``same_hospital`` is asked for.  This is the published rule: same DRG
within 15 days, the earlier stay's points halved, tumour radiotherapy and
chemotherapy stays exempt, not limited to the same hospital (Zhejiang /
Hangzhou 2019 DRG 点数法; Jinhua 2017 uses 10 days) — see
``docs/payment-settlement.md`` ("Readmission").

Exempt stays (planned cycles of tumour radiotherapy / chemotherapy) are
taken out before pairing: they are neither penalised nor counted as a
readmission, and they do not break a pair of the stays around them.  A stay
is exempt when

- its principal diagnosis (``pdx``) starts with ``Z51.0`` (放射治疗疗程) or
  ``Z51.1`` (为肿瘤化学治疗疗程), ICD-10 / 医保版 2.0; or
- its ADRG is one of the CHS-DRG 1.1 radiotherapy / chemotherapy ADRGs:
  ``RB1`` 急性白血病化学治疗和/或其他治疗, ``RB2`` 淋巴瘤、多发骨髓瘤化学治疗
  和/或其他治疗, ``RC1`` 恶性增生性疾患放射治疗, ``RE1`` 恶性增生性疾患的化学
  治疗和/或其他治疗 (names from the scheme's ``drg.csv``).  Targeted and
  immune therapy (``RG1``) and interventional treatment (``RD1``) are not
  radiotherapy or chemotherapy and are not exempt by default.

Overlapping stays (the next admission before the discharge, gap < 0) are
data errors, not readmissions; a same-day return (gap 0) is one.  Stays of
one patient are ordered by admission date, then discharge date, then input
order; only consecutive stays of a partition pair up.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from casemix.errors import InputError

__all__ = [
    "EXEMPT_ADRG",
    "EXEMPT_DIAGNOSES",
    "MATCHES",
    "as_date",
    "flag_readmissions",
    "pair_stays",
    "stay_dates",
]

#: CHS-DRG 1.1 ADRGs of tumour radiotherapy / chemotherapy (exempt by default).
EXEMPT_ADRG: tuple[str, ...] = ("RB1", "RB2", "RC1", "RE1")
#: Principal-diagnosis prefixes of a radiotherapy / chemotherapy course (exempt by default).
EXEMPT_DIAGNOSES: tuple[str, ...] = ("Z51.0", "Z51.1")
#: What two stays must share to pair up (``None``: any group).
MATCHES = ("drg", "adrg", "mdc", None)


def as_date(frame: pl.DataFrame, name: str) -> pl.Expr:
    """``name`` as a Date expression (Date, Datetime or ``YYYY-MM-DD`` text)."""
    dtype = frame.schema[name]
    if dtype == pl.Date:
        return pl.col(name)
    if isinstance(dtype, pl.Datetime):
        return pl.col(name).dt.date()
    if dtype == pl.String:
        return pl.col(name).str.to_date(strict=False)
    raise InputError(f"column {name} must hold dates (Date, Datetime or 'YYYY-MM-DD' text); got {dtype}")


def stay_dates(frame: pl.DataFrame) -> tuple[pl.Expr, pl.Expr] | None:
    """Admission and discharge date expressions; the missing one of the two from ``los``.

    None when neither date is there, or only one is and there is no ``los``.
    """
    cols = set(frame.columns)
    has_adm, has_dis, has_los = "admission_date" in cols, "discharge_date" in cols, "los" in cols
    if not (has_adm or has_dis) or not (has_adm and has_dis or has_los):
        return None
    los_days = (
        pl.duration(days=pl.col("los").cast(pl.Float64, strict=False).round(0).cast(pl.Int64))
        if has_los
        else None
    )
    adm = as_date(frame, "admission_date") if has_adm else as_date(frame, "discharge_date") - los_days
    dis = as_date(frame, "discharge_date") if has_dis else adm + los_days
    return adm, dis


def _adrg(frame: pl.DataFrame, group_col: str) -> pl.Expr:
    if "adrg" in frame.columns:
        return pl.col("adrg").cast(pl.String)
    return pl.col(group_col).cast(pl.String).str.slice(0, 3)


def missing_columns(
    frame: pl.DataFrame, *, match: str | None = "drg", same_hospital: bool = False, group_col: str = "drg"
) -> list[str]:
    """What ``pair_stays`` would need and the frame lacks (empty when it can pair)."""
    need = ["patient_id"]
    if same_hospital:
        need.append("hospital_id")
    if match == "mdc":
        need.append("mdc")
    elif match in ("drg", "adrg") and not (match == "adrg" and "adrg" in frame.columns):
        need.append(group_col)
    out = [c for c in need if c not in frame.columns]
    if stay_dates(frame) is None:
        out.append("admission_date or discharge_date (+ los)")
    return out


def pair_stays(
    frame: pl.DataFrame,
    *,
    days: int,
    match: str | None = "drg",
    same_hospital: bool = False,
    group_col: str = "drg",
    eligible: pl.Series | np.ndarray | None = None,
    exempt_adrg: Sequence[str] = EXEMPT_ADRG,
    exempt_diagnoses: Sequence[str] = EXEMPT_DIAGNOSES,
) -> pl.DataFrame:
    """Mark the two stays of every readmission pair.

    Parameters
    ----------
    frame
        The stays: ``patient_id``, ``admission_date`` and/or ``discharge_date``
        (one of them may be derived with ``los``), the group column, and
        ``hospital_id`` when ``same_hospital``; ``pdx`` and ``adrg`` are read
        when present (exemptions, ADRG matching).
    days
        The window: the next stay starts 0..``days`` days after the discharge
        (15 in Zhejiang 2019, 10 in Jinhua 2017).
    match
        ``"drg"`` (the published rule), ``"adrg"``, ``"mdc"`` or None (any group).
    same_hospital
        Pair only stays at one hospital (the old casemix rule); by default a
        return to another hospital counts too.
    group_col
        The DRG column (ADRG = ``adrg`` column, else its first 3 characters).
    eligible
        Rows allowed to take part (e.g. point-paid cases); default all.
    exempt_adrg, exempt_diagnoses
        Stays in these ADRGs, or whose principal diagnosis starts with one of
        these prefixes, take no part (tumour radio-/chemotherapy by default).

    Returns
    -------
    pl.DataFrame
        One row per input row, in input order: ``earlier`` (the next stay
        is a readmission after this one) and ``later`` (this stay is a
        readmission).

    Raises
    ------
    InputError
        A needed column is missing, ``match`` is unknown, or a date column
        holds something other than dates.
    """
    if match not in MATCHES:
        raise InputError(f"readmission match must be one of drg, adrg, mdc or none; got {match!r}")
    missing = missing_columns(frame, match=match, same_hospital=same_hospital, group_col=group_col)
    if missing:
        raise InputError(f"readmission pairing needs column(s) {', '.join(missing)}")
    n = frame.height
    adm, dis = stay_dates(frame)  # type: ignore[misc]
    exempt = (
        _adrg(frame, group_col).is_in([str(c) for c in exempt_adrg]).fill_null(False)
        if (group_col in frame.columns or "adrg" in frame.columns)
        else pl.lit(False)
    )
    if "pdx" in frame.columns and exempt_diagnoses:
        pdx = pl.col("pdx").cast(pl.String).str.strip_chars().str.to_uppercase()
        for prefix in exempt_diagnoses:
            exempt = exempt | pdx.str.starts_with(str(prefix).strip().upper()).fill_null(False)
    key = (
        pl.col(group_col).cast(pl.String)
        if match == "drg"
        else _adrg(frame, group_col)
        if match == "adrg"
        else pl.col("mdc").cast(pl.String)
        if match == "mdc"
        else None
    )
    cols = [
        pl.col("patient_id").cast(pl.String).alias("_pid"),
        adm.alias("_adm"),
        dis.alias("_dis"),
        exempt.alias("_exempt"),
    ]
    part = ["_pid"]
    if same_hospital:
        cols.append(pl.col("hospital_id").cast(pl.String).alias("_hosp"))
        part.append("_hosp")
    if key is not None:
        cols.append(key.alias("_key"))
        part.append("_key")
    ok = (
        pl.Series(eligible, dtype=pl.Boolean)
        if eligible is not None
        else pl.repeat(True, n, dtype=pl.Boolean, eager=True)
    )
    r = frame.select(cols).with_columns(ok.alias("_ok"), pl.int_range(n).alias("_row"))
    present = [pl.col(c).is_not_null() for c in part + ["_adm", "_dis"]]
    if key is not None:
        present.append(pl.col("_key").str.strip_chars() != "")
    r = r.filter(pl.col("_ok") & ~pl.col("_exempt") & pl.all_horizontal(present)).sort(
        [*part, "_adm", "_dis", "_row"]
    )
    gap = (pl.col("_adm").shift(-1).over(part) - pl.col("_dis")).dt.total_days()
    r = r.with_columns(gap.is_between(0, days).fill_null(False).alias("_earlier"))
    r = r.with_columns(pl.col("_earlier").shift(1).over(part).fill_null(False).alias("_later"))
    rows = r["_row"].to_numpy()
    earlier = np.zeros(n, dtype=bool)
    later = np.zeros(n, dtype=bool)
    earlier[rows] = r["_earlier"].to_numpy()
    later[rows] = r["_later"].to_numpy()
    return pl.DataFrame({"earlier": earlier, "later": later})


def flag_readmissions(
    frame: pl.DataFrame, eligible: pl.Series, group_col: str, rule
) -> tuple[pl.Series, str | None]:
    """Settlement: the stays the readmission penalty applies to.

    Parameters
    ----------
    frame
        The cases (see :func:`pair_stays`).
    eligible
        Rows that may be penalised or count as one stay of a pair
        (point-paid cases with a group).
    group_col
        The group code column.
    rule
        The policy's readmission rule (``enabled``, ``days``, ``match``,
        ``same_hospital``, ``apply_to``, ``exempt_adrg``, ``exempt_diagnoses``).

    Returns
    -------
    flags, note
        Boolean Series ``readmission`` (the earlier stay of each pair, or the
        later one with ``apply_to = "later"``); ``note`` says why the rule
        was skipped, else None.
    """
    n = frame.height
    none = pl.repeat(False, n, dtype=pl.Boolean, eager=True).alias("readmission")
    if not rule.enabled:
        return none, None
    options = dict(match=rule.match, same_hospital=rule.same_hospital, group_col=group_col)
    missing = missing_columns(frame, **options)
    if missing:
        return none, f"readmission rule skipped: no column {', '.join(missing)}"
    pairs = pair_stays(
        frame,
        days=rule.days,
        eligible=eligible,
        exempt_adrg=rule.exempt_adrg,
        exempt_diagnoses=rule.exempt_diagnoses,
        **options,
    )
    side = "later" if rule.apply_to == "later" else "earlier"
    return pairs[side].alias("readmission"), None
