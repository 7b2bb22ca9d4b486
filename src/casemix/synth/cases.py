"""Synthetic discharges of a region: the generator behind :func:`synth_cases` (numba loops in ``_kernel``)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from casemix._money import round_half_up
from casemix.scheme import DEFAULT_SCHEME, Scheme, load_scheme
from casemix.synth import _kernel as K
from casemix.synth.plan import ADULT, KINDS, Plan, build_plan
from casemix.synth.region import INSURANCE_TYPES, LEVELS, Region, split_hospitals

_DEATH_CAP = 0.35
_RETRIES = 6  # redraws of a secondary diagnosis excluded by the principal one


@dataclass(frozen=True)
class _Structure:
    """The region's fixed parts for one seed: hospitals and per-DRG rates."""

    h_level: np.ndarray  # level index per hospital (0 = "3")
    h_cdf: np.ndarray  # cumulative share of cases per hospital
    h_cost: np.ndarray  # cost efficiency factor per hospital
    h_time: np.ndarray  # LOS factor per hospital
    drg_cdf: np.ndarray  # (H × G) cumulative group probabilities per hospital, flat
    mean_los: np.ndarray  # per DRG, days
    p_death: np.ndarray  # per DRG


def _structure(plan: Plan, reg: Region, seed: int) -> _Structure:
    rng = np.random.default_rng([seed, 0])
    h_level = reg.hospital_levels()
    size = reg.per_level("size")[h_level] * rng.lognormal(0.0, reg.size_sigma, h_level.size)
    h_cost = rng.lognormal(0.0, reg.hospital_cost_sigma, h_level.size)
    h_time = h_cost**0.6 * rng.lognormal(0.0, reg.hospital_cost_sigma * 0.6, h_level.size)
    rw = plan.rw
    kind = np.array([reg.kind_share[k] for k in KINDS])[plan.kind]
    adrg_pop = rng.lognormal(0.0, reg.group_sigma, len(plan.adrg_codes))
    adrg_pop *= np.array([reg.common_adrgs.get(c, 1.0) for c in plan.adrg_codes])
    sev_share = np.asarray(reg.severity_share, float)[plan.severity]
    base = rw**-reg.rw_exponent * kind * adrg_pop[plan.adrg_of] * sev_share * plan.usable
    operative = plan.kind != KINDS.index("medical")
    tilt = reg.per_level("level_rw_tilt")[h_level] + rng.normal(0.0, reg.hospital_tilt_sigma, h_level.size)
    surg = reg.per_level("level_surgical")[h_level]
    cdf = []
    for h in range(h_level.size):
        p = base * rw ** tilt[h] * np.where(operative, surg[h], 1.0)
        if not p.sum() > 0:
            raise ValueError(
                f"scheme has no DRG a synthetic case of level {LEVELS[h_level[h]]} can be aimed at"
            )
        cdf.append(np.cumsum(p) / p.sum())
    drg_cdf = np.concatenate(cdf)
    mean_los = reg.los_scale * rw**reg.los_rw_power * rng.lognormal(0.0, reg.los_group_sigma, plan.n_drg)
    sev_factor = np.asarray(reg.death_severity, float)[plan.severity]
    p_death = np.minimum(reg.death_base * rw**reg.death_rw_power * sev_factor, _DEATH_CAP)
    return _Structure(h_level, np.cumsum(size) / size.sum(), h_cost, h_time, drg_cdf, mean_los, p_death)


def _list_column(name: str, vocab: pl.Series, counts: np.ndarray, flat_idx: np.ndarray) -> pl.Series:
    """A List(String) column from per-case counts and flat vocabulary indices.

    The codes go to Arrow as string views (polars' own layout, no copy of
    the text) and come back the same way, so neither side converts them.
    """
    offsets = np.zeros(counts.size + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    values = vocab.gather(flat_idx).to_arrow(compat_level=pl.CompatLevel.newest())
    return pl.Series(name, pa.ListArray.from_arrays(pa.array(offsets), values))


def _digits(n: int) -> pl.Series:
    """0 … n − 1 as text, zero-padded to 8 digits (wider numbers as they are)."""
    if n <= 10**8:
        # one cast and a slice instead of a cast and a zfill pass: "1" + 8 digits, minus the "1"
        return (pl.int_range(n, eager=True, dtype=pl.Int64) + 10**8).cast(pl.String).str.slice(1)
    return pl.int_range(n, eager=True).cast(pl.String).str.zfill(8)


def synth_cases(
    scheme: str | Scheme = DEFAULT_SCHEME,
    n: int = 10_000,
    *,
    seed: int = 0,
    n_hospitals: int | None = None,
    region: Region | None = None,
    year: int = 2024,
    mean_sdx: float = 3.0,
    mean_oproc: float = 0.8,
    invalid_share: float = 0.01,
    layout: str = "lists",
    target: bool = False,
) -> pl.DataFrame:
    """Make ``n`` synthetic discharges of a region for a scheme.

    Each case is aimed at a DRG of the scheme: hospitals by level, a case
    mix weighted toward light and medical groups and, at tertiary
    hospitals, toward heavy and surgical ones; cost from the group's
    relative weight × base rate × level coefficient with a log-normal
    spread and a heavier upper tail; LOS, deaths, insurance type, patient
    share, dates and readmissions as in ``docs/synthetic-region.md``.

    Parameters
    ----------
    scheme
        Scheme name, folder or loaded scheme.
    n
        Number of cases.
    seed
        Same seed, same region and cases.
    n_hospitals
        Number of hospitals, split over levels 3 : 6 : 8; default the
        region's (3 tertiary, 6 secondary, 8 primary).
    region
        Parameters (:class:`casemix.synth.Region`); default ``Region()``.
    year
        Discharge year.
    mean_sdx, mean_oproc
        Poisson means of secondary diagnoses and other procedures per case.
    invalid_share
        Share of cases given a data fault (missing sex or age, no diagnosis)
        so the validity checks show up.
    layout
        ``"lists"`` (pdx, sdx list, pproc, oproc list) or ``"strings"``
        (``diagnoses`` / ``procedures``, ``|``-separated, principal first, the
        layout of the golden files).
    target
        Add ``target_drg``, the DRG each case was aimed at (to measure how
        often the grouper agrees; not a column of real data).

    Returns
    -------
    polars.DataFrame
        case_id, patient_id, hospital_id, hospital_level ("3", "2", "1"),
        insurance_type (职工 / 居民), sex, age, age_days, birth_weight,
        admission_date, discharge_date, los, discharge (离院方式, 5 = death),
        the codes, total_cost, patient_share and fund_paid (yuan; patient
        share + fund paid = total cost to the fen).
    """
    if layout not in ("lists", "strings"):
        raise ValueError("layout must be 'lists' or 'strings'")
    if n < 0:
        raise ValueError("n must be non-negative")
    reg = region or Region()
    if n_hospitals is not None:
        reg = reg.replace(hospitals=split_hospitals(n_hospitals))
    sch = load_scheme(scheme)
    plan = build_plan(sch)
    st = _structure(plan, reg, seed)
    rng = np.random.default_rng([seed, 1])
    key = np.uint64(rng.integers(0, 2**63 - 1))
    n_hosp = st.h_level.size

    # hospital, then the DRG from the hospital's case mix
    hosp, drg, readmit = K.place(key, n, st.h_cdf, st.drg_cdf, plan.n_drg, reg.readmission_share)

    # readmissions take the hospital and DRG of an earlier stay (its dates come later);
    # r: the readmitted rows, src: the row of each one's earlier stay
    ordinary = np.flatnonzero(~readmit)
    if ordinary.size:
        src = ordinary[rng.integers(0, ordinary.size, int(readmit.sum()))]
    else:
        readmit[:] = False
        src = np.zeros(0, dtype=np.int64)
    del ordinary
    r = np.flatnonzero(readmit)
    hosp[r], drg[r] = hosp[src], drg[src]
    lvl = st.h_level.astype(np.int8)[hosp]
    a = plan.adrg_of.astype(np.int32)[drg]
    adult = plan.newborn[a[r]] == ADULT
    readmit[r] &= adult
    r, src = r[adult], src[adult]

    # who, cost, LOS, discharge mode, day, data faults: per case (numba)
    modes = np.array(list(reg.discharge_mix), dtype=np.float64)
    mix = np.cumsum(np.array(list(reg.discharge_mix.values()), dtype=np.float64))
    day_w = reg.day_weights(year)
    sex, age, age_days, weight, employee, repeat, cost, los, discharge, doy, fault = K.attributes(
        key,
        hosp,
        drg,
        readmit,
        plan.adrg_of,
        plan.sex,
        plan.newborn,
        plan.obstetric,
        plan.weight_lo,
        plan.weight_hi,
        plan.rw,
        np.log(st.mean_los),
        st.p_death,
        st.h_level,
        st.h_cost,
        np.log(st.h_time),
        reg.per_level("level_coefficient"),
        reg.per_level("employee_share"),
        reg.base_rate,
        reg.cost_sigma,
        reg.tail_share,
        reg.tail_mu,
        reg.tail_sigma,
        reg.los_sigma,
        reg.los_cost_corr,
        modes,
        mix / mix[-1],
        np.cumsum(day_w) / day_w.sum(),
        reg.repeat_share,
        invalid_share,
    )
    total_fen = np.maximum(round_half_up(cost * 100), 100)
    del cost

    # patients: each ordinary stay its own person; repeats and readmissions reuse one
    person = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    donors = ~readmit & ~repeat & (plan.newborn[a] == ADULT) & ~plan.obstetric[a]
    for sx in (1, 2):
        rows, pool = np.flatnonzero(repeat & (sex == sx)), np.flatnonzero(donors & (sex == sx))
        if pool.size:
            j = pool[rng.integers(0, pool.size, rows.size)]
            person[rows], age[rows], employee[rows] = person[j], age[j], employee[j]
    person[r], sex[r], age[r], employee[r] = person[src], sex[src], age[src], employee[src]
    del donors, repeat

    # dates: discharge by the seasonal day weights; readmissions after their earlier stay
    jan1 = (_dt.date(year, 1, 1) - _dt.date(1970, 1, 1)).days
    out_day = jan1 + doy
    re_out = out_day[src] + rng.integers(1, 31, r.size) + los[r]
    fits = re_out < jan1 + day_w.size
    out_day[r[fits]] = re_out[fits]
    person[r[~fits]] = r[~fits]  # no room before year end: an ordinary stay after all
    in_day = out_day - los

    # patient share: 自费 part, then deductible, then co-insurance on the rest
    ins = (~employee).astype(np.int8)
    del employee
    patient_fen = reg.patient_share_fen(total_fen, ins, lvl)

    # data faults, so validity checks are exercised
    sex_f = np.where(fault == 0, np.nan, sex.astype(np.float64))
    age = np.where(fault == 1, np.nan, age)

    # codes aimed at the DRG (numba: variable-length lists and redraws)
    sev = plan.severity.astype(np.int8)[drg]
    pdx, pproc, x0, x1, n_sdx, n_oproc = K.code_counts(
        key,
        a,
        sev,
        *plan.pdx,
        *plan.pproc,
        *plan.extra_proc[0],
        *plan.extra_proc[1],
        plan.sites[0],
        float(mean_sdx),
        float(mean_oproc),
    )
    no_dx = fault == 2
    pdx[no_dx] = -1
    n_sdx[no_dx] = 0
    sdx_flat, oproc_flat = K.fill_codes(
        key,
        a,
        sev,
        pdx,
        x0,
        x1,
        n_sdx,
        n_oproc,
        *plan.sites,
        plan.site,
        plan.cc_pool,
        plan.mcc_pool,
        plan.plain_pool,
        plan.cc_mix,
        plan.cc_table,
        plan.pdx_table,
        plan.non_or_pool,
        _RETRIES,
        0.3,
    )

    del x0, x1, sev, fault, no_dx, a, readmit

    def nullable(x):
        return pl.Series(x).fill_nan(None)

    def codes(vocab, idx):
        return vocab.gather(pl.Series(np.where(idx >= 0, idx, 0))).set(pl.Series(idx < 0), None)

    # the columns one by one, each array let go once its column holds it
    # (numeric columns share the numpy buffer; strings are polars views)
    cols: dict[str, pl.Series] = {}
    digits = _digits(n)
    cols["case_id"] = f"S{seed}-" + digits
    cols["patient_id"] = f"P{seed}-" + digits.gather(person)
    del digits, person
    cols["hospital_id"] = pl.Series([f"H{h + 1:03d}" for h in range(n_hosp)]).gather(hosp)
    cols["hospital_level"] = pl.Series(LEVELS, dtype=pl.String).gather(lvl)
    cols["insurance_type"] = pl.Series(INSURANCE_TYPES, dtype=pl.String).gather(ins)
    del hosp, lvl, ins
    cols["sex"] = nullable(sex_f)
    cols["age"] = nullable(age)
    cols["age_days"] = nullable(age_days)
    cols["birth_weight"] = nullable(weight)
    del sex, sex_f, age, age_days, weight
    cols["admission_date"] = pl.Series(in_day.astype(np.int32, copy=False)).cast(pl.Date)
    cols["discharge_date"] = pl.Series(out_day.astype(np.int32, copy=False)).cast(pl.Date)
    cols["los"] = pl.Series(los.astype(np.float64))
    cols["discharge"] = pl.Series(discharge)
    del in_day, out_day, los, discharge
    cols["pdx"] = codes(plan.dx_vocab, pdx) if n else pl.Series([], dtype=pl.String)
    cols["sdx"] = _list_column("sdx", plan.dx_vocab, n_sdx, sdx_flat)
    del pdx, n_sdx, sdx_flat
    cols["pproc"] = codes(plan.px_vocab, pproc) if n else pl.Series([], dtype=pl.String)
    cols["oproc"] = _list_column("oproc", plan.px_vocab, n_oproc, oproc_flat)
    del pproc, n_oproc, oproc_flat
    cols["total_cost"] = pl.Series(total_fen / 100)
    cols["patient_share"] = pl.Series(patient_fen / 100)
    cols["fund_paid"] = pl.Series((total_fen - patient_fen) / 100)
    df = pl.DataFrame(cols)
    if target:
        df = df.with_columns(target_drg=pl.Series(plan.drg_codes, dtype=pl.String).gather(drg))
    if layout == "strings":
        df = df.with_columns(
            pl.concat_list(pl.col("pdx").fill_null(""), pl.col("sdx"))
            .list.join("|")
            .str.strip_chars_end("|")
            .alias("diagnoses"),
            pl.concat_list(pl.col("pproc").fill_null(""), pl.col("oproc"))
            .list.join("|")
            .str.strip_chars_end("|")
            .alias("procedures"),
        ).drop("pdx", "sdx", "pproc", "oproc")
    return df
