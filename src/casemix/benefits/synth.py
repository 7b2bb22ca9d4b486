"""Synthetic benefit cases, deterministic by seed.

Magnitudes are made up to look plausible, not fitted to any city: a
log-normal total cost (median about 9,000 yuan), most of it within the
policy range, a few per cent 乙类自付 and 全自费, special drugs for a small
share of cases, persons with a fixed insured type and assistance status.
Vectorised numpy, so 10 M cases take a few seconds.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import polars as pl

from casemix._frames import FrameLike
from casemix.benefits.policy import INSURED_LABELS, STATUS_LABELS

# shares of persons by status (特困, 低保, 低边, 普通): made up, poor groups
# over-represented a little so every group has cases in small samples
_STATUS_SHARE = (0.01, 0.03, 0.02, 0.94)
_EMPLOYEE_SHARE = 0.4
_LEVEL_SHARE = (0.25, 0.40, 0.35)
_LEVEL_COST = (0.6, 1.0, 1.7)  # cost multiplier by hospital level


def _labels(codes: np.ndarray, labels: tuple[str, ...]) -> pl.Series:
    # an Enum column: building 10 M Python strings would take seconds
    return pl.Series(codes.astype(np.uint8)).replace_strict(
        dict(enumerate(labels)), return_dtype=pl.Enum(list(labels))
    )


def synthetic_cases(
    n_cases: int = 10_000,
    n_people: int | None = None,
    *,
    seed: int = 0,
    start: _dt.date = _dt.date(2023, 1, 1),
    end: _dt.date = _dt.date(2023, 12, 31),
) -> pl.DataFrame:
    """Make ``n_cases`` inpatient cases of ``n_people`` persons (default: n_cases // 2).

    Parameters
    ----------
    n_cases, n_people : int
        Number of cases and of distinct persons (each case belongs to a
        person drawn at random, so some persons have none).
    seed : int
        Same seed, same frame.
    start, end : date
        Discharge dates are uniform over this closed range.

    Returns
    -------
    polars.DataFrame with the input columns of :func:`casemix.benefits.simulate`:
    ``case_id``, ``patient_id`` (Int64), ``discharge_date``,
    ``insurance_type`` (职工/居民), ``assist_status`` (特困/低保/低边/普通) as Enum columns,
    ``hosp_level`` (1–3), ``total_cost``, ``inscp_scp_amt``,
    ``preselfpay_amt``, ``fulamt_ownpay_amt``, ``special_drug_amt`` (yuan,
    2 decimals), ``referral``, ``major_disease``; the parts never exceed
    the total.
    """
    if n_cases < 0:
        raise ValueError("n_cases must be non-negative")
    if n_people is None:
        n_people = max(1, n_cases // 2)
    if n_people < 1:
        raise ValueError("n_people must be at least 1")
    if end < start:
        raise ValueError("end must not be before start")
    rng = np.random.default_rng(seed)
    # persons
    p_employee = rng.random(n_people) < _EMPLOYEE_SHARE
    p_status = rng.choice(4, size=n_people, p=_STATUS_SHARE).astype(np.int8)
    # cases
    person = rng.integers(0, n_people, size=n_cases)
    days = (end - start).days + 1
    day0 = (start - _dt.date(1970, 1, 1)).days
    day = day0 + rng.integers(0, days, size=n_cases)
    level = rng.choice(3, size=n_cases, p=_LEVEL_SHARE).astype(np.int8)
    major = rng.random(n_cases) < 0.05
    cost = np.exp(rng.normal(np.log(9000.0), 1.0, size=n_cases)) * np.asarray(_LEVEL_COST)[level]
    cost *= np.where(major, 4.0, 1.0)
    policy_share = rng.uniform(0.70, 0.92, size=n_cases)
    pre_share = rng.uniform(0.0, 0.08, size=n_cases)
    self_share = rng.uniform(0.0, 0.12, size=n_cases)
    special = np.where(
        rng.random(n_cases) < 0.02, np.exp(rng.normal(np.log(30000.0), 0.8, size=n_cases)), 0.0
    )

    def fen(x: np.ndarray) -> np.ndarray:
        return np.floor(x * 100.0).astype(np.int64)

    # parts in whole fen, rounded down, so they never add up to more than the total
    total = fen(cost + special)
    inscp = fen(cost * policy_share)
    pre = fen(cost * pre_share)
    selfpay = fen(cost * np.minimum(self_share, 1.0 - policy_share - pre_share))
    special_fen = fen(special)
    over = inscp + pre + selfpay + special_fen - total
    selfpay = selfpay - np.maximum(over, 0)  # floors can add up past the total by a fen or two
    return pl.DataFrame(
        {
            "case_id": pl.Series(np.arange(1, n_cases + 1)).cast(pl.String),
            "patient_id": person.astype(np.int64),
            "discharge_date": pl.Series(day.astype(np.int32)).cast(pl.Date),
            "insurance_type": _labels(np.where(p_employee[person], 0, 1), INSURED_LABELS),
            "assist_status": _labels(p_status[person], STATUS_LABELS),
            "hosp_level": (level + 1).astype(np.int8),
            "total_cost": total / 100.0,
            "inscp_scp_amt": inscp / 100.0,
            "preselfpay_amt": pre / 100.0,
            "fulamt_ownpay_amt": np.maximum(selfpay, 0) / 100.0,
            "special_drug_amt": special_fen / 100.0,
            "referral": rng.random(n_cases) < 0.05,
            "major_disease": major,
        }
    )


def add_benefit_fields(cases: FrameLike, *, seed: int = 0, year: int = 2023) -> FrameLike:
    """Give a case frame (e.g. grouped DRG cases) the benefit columns it lacks, synthetically.

    For demos and reports on data without settlement detail: keeps every
    existing column and fills only missing ones — ``patient_id`` (each
    case its own person), ``discharge_date`` (uniform over ``year``),
    ``insurance_type`` and ``assist_status`` (per person, the shares of
    :func:`synthetic_cases`), ``hosp_level`` (per ``hospital_id`` when
    present), and the cost parts split from ``total_cost`` (yuan; missing
    or negative costs count as 0).  Deterministic by ``seed``; same
    container type and row order out.

    The filled values are invented: use them to exercise the cascade, not
    to describe real patients.
    """
    from casemix._frames import like, to_polars

    df = to_polars(cases)
    n = df.height
    rng = np.random.default_rng(seed)
    new: dict[str, pl.Series] = {}
    if "total_cost" not in df.columns:
        raise ValueError("add_benefit_fields needs a total_cost column (yuan)")
    cost = df["total_cost"].cast(pl.Float64, strict=False).fill_null(0.0).to_numpy()
    cost = np.where(np.isfinite(cost) & (cost > 0), cost, 0.0)
    if "patient_id" not in df.columns:
        new["patient_id"] = pl.Series("patient_id", np.arange(n, dtype=np.int64))
        person = np.arange(n)
    else:
        person = df["patient_id"].cast(pl.String).cast(pl.Categorical).to_physical().to_numpy()
    n_person = int(person.max()) + 1 if n else 0
    if "discharge_date" not in df.columns:
        start = (_dt.date(year, 1, 1) - _dt.date(1970, 1, 1)).days
        days = (_dt.date(year, 12, 31) - _dt.date(year, 1, 1)).days + 1
        new["discharge_date"] = pl.Series(
            "discharge_date", (start + rng.integers(0, days, n)).astype(np.int32)
        ).cast(pl.Date)
    p_employee = rng.random(n_person) < _EMPLOYEE_SHARE
    p_status = rng.choice(4, size=n_person, p=_STATUS_SHARE).astype(np.int8)
    if "insurance_type" not in df.columns:
        new["insurance_type"] = _labels(np.where(p_employee[person], 0, 1), INSURED_LABELS)
    if "assist_status" not in df.columns:
        new["assist_status"] = _labels(p_status[person], STATUS_LABELS)
    if "hosp_level" not in df.columns:
        if "hospital_id" in df.columns:
            hosp = df["hospital_id"].cast(pl.String).fill_null("").cast(pl.Categorical)
            codes = hosp.to_physical().to_numpy()
            h_level = rng.choice(3, size=int(codes.max()) + 1 if n else 0, p=_LEVEL_SHARE)
            level = h_level[codes] if n else np.zeros(0, np.int64)
        else:
            level = rng.choice(3, size=n, p=_LEVEL_SHARE)
        new["hosp_level"] = pl.Series("hosp_level", (level + 1).astype(np.int8))
    parts = ("inscp_scp_amt", "preselfpay_amt", "fulamt_ownpay_amt")
    if not all(c in df.columns for c in parts):
        total = np.floor(cost * 100.0).astype(np.int64)
        inscp = np.floor(total * rng.uniform(0.70, 0.92, n)).astype(np.int64)
        pre = np.floor((total - inscp) * rng.uniform(0.0, 0.5, n)).astype(np.int64)
        selfpay = np.floor((total - inscp - pre) * rng.uniform(0.3, 1.0, n)).astype(np.int64)
        for name, v in zip(parts, (inscp, pre, selfpay), strict=True):
            if name not in df.columns:
                new[name] = pl.Series(name, v / 100.0)
    return like(df.with_columns(s.alias(k) for k, s in new.items()) if new else df, cases)
