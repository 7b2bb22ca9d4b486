"""Synthetic inpatient cases drawn from a scheme's own tables.

Deterministic by seed and vectorised (numpy draws, polars/Arrow gathers),
so the same call makes a 1,000-row demo or a 10-million-row benchmark.
Cases are aimed at ADRGs: the principal diagnosis and procedures come
from the lists the ADRG's rule reads, secondary diagnoses partly from the
CC table, so the case mix looks like a hospital's and every MDC appears.
Costs follow a lognormal model per ADRG × severity × hospital level; they
are illustrative magnitudes, not estimates of real costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from casemix.scheme import Scheme, load_scheme
from casemix.scheme.rules import Compare, InList, walk

_PDX_TARGETS = ("pdx", "dx")
_PROC_TARGETS = ("pproc", "proc")


@dataclass(frozen=True)
class _Plan:
    """Per-ADRG candidate codes as CSR arrays of indices into the vocabularies."""

    dx_vocab: pl.Series
    px_vocab: pl.Series
    pdx_off: np.ndarray
    pdx_val: np.ndarray
    proc_off: np.ndarray
    proc_val: np.ndarray
    sex: np.ndarray          # 0 any, 1 male, 2 female
    newborn: np.ndarray      # bool
    surgical: np.ndarray     # bool: ADRG kind is surgical
    base_cost: np.ndarray    # yuan, per ADRG
    cc_idx: np.ndarray       # dx vocabulary indices of CC/MCC codes
    adrg_codes: list[str]


def _first_list(rule, targets) -> str | None:
    return next((n.list for n in walk(rule) if isinstance(n, InList) and n.target in targets), None)


def _plan(scheme: Scheme, seed: int) -> _Plan:
    rng = np.random.default_rng(seed + 7919)
    dx_codes = sorted(scheme.diagnoses)
    px_codes = sorted(scheme.procedures)
    dx_pos = {c: i for i, c in enumerate(dx_codes)}
    px_pos = {c: i for i, c in enumerate(px_codes)}
    all_dx = np.arange(len(dx_codes), dtype=np.int64)
    pdx_off, pdx_val, proc_off, proc_val = [0], [], [0], []
    sex, newborn, surgical, codes = [], [], [], []
    for mdc in scheme.mdcs:
        mdc_list = _first_list(mdc.rule, _PDX_TARGETS)
        mdc_members = scheme.lists[mdc_list] if mdc_list else None
        fields = [n for n in walk(mdc.rule) if isinstance(n, Compare)]
        mdc_sex = next((int(n.value) for n in fields if n.field == "sex" and n.op == "=="), 0)
        mdc_newborn = any(n.field in ("age_days", "birth_weight") or (n.field == "age" and n.value == 0
                          and n.op in ("==", "<=")) for n in fields)
        for adrg in scheme.adrgs.get(mdc.code, ()):
            own = _first_list(adrg.rule, _PDX_TARGETS)
            pool = set(scheme.lists[own]) if own else set(mdc_members or ())
            if own and mdc_members is not None:
                pool &= mdc_members
            idx = sorted(dx_pos[c] for c in pool if c in dx_pos)
            if not idx:
                idx = list(all_dx[:: max(1, len(all_dx) // 500)])
            procs = _first_list(adrg.rule, _PROC_TARGETS)
            pidx = sorted(px_pos[c] for c in scheme.lists[procs] if c in px_pos) if procs else []
            if not pidx and "pproc_or" in repr(adrg.rule):
                pidx = sorted(px_pos[c] for c in scheme.or_procedures if c in px_pos)[:2000]
            pdx_val.extend(idx)
            pdx_off.append(len(pdx_val))
            proc_val.extend(pidx)
            proc_off.append(len(proc_val))
            fields_a = [n for n in walk(adrg.rule) if isinstance(n, Compare)]
            sex.append(mdc_sex)
            newborn.append(mdc_newborn or any(n.field in ("age_days", "birth_weight") for n in fields_a))
            surgical.append(adrg.kind == "surgical")
            codes.append(adrg.code)
    surgical_arr = np.array(surgical, dtype=bool)
    base = rng.lognormal(mean=np.log(9000.0), sigma=0.6, size=len(codes))
    base = np.where(surgical_arr, base * 2.5, base)
    cc_idx = np.array(sorted(dx_pos[c] for c in scheme.cc if c in dx_pos), dtype=np.int64)
    return _Plan(pl.Series("dx", dx_codes, dtype=pl.String), pl.Series("px", px_codes, dtype=pl.String),
                 np.array(pdx_off, np.int64), np.array(pdx_val, np.int64),
                 np.array(proc_off, np.int64), np.array(proc_val, np.int64),
                 np.array(sex, np.int8), np.array(newborn, bool), surgical_arr, base,
                 cc_idx if cc_idx.size else all_dx[:1], codes)


def _pick(rng, off: np.ndarray, val: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """One random member of each row's group (CSR); -1 where the group is empty."""
    start, count = off[groups], off[groups + 1] - off[groups]
    pos = start + np.floor(rng.random(groups.size) * np.maximum(count, 1)).astype(np.int64)
    out = np.full(groups.size, -1, dtype=np.int64)
    has = count > 0
    out[has] = val[pos[has]]
    return out


def _list_column(name: str, vocab: pl.Series, counts: np.ndarray, flat_idx: np.ndarray) -> pl.Series:
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    values = vocab.gather(flat_idx).to_arrow()
    return pl.Series(name, pa.ListArray.from_arrays(pa.array(offsets), values))


def synth_cases(scheme: str | Scheme = "casemix-demo", n: int = 10_000, *, seed: int = 0,
                n_hospitals: int = 12, mean_sdx: float = 3.0, mean_oproc: float = 0.8,
                invalid_share: float = 0.01, layout: str = "lists") -> pl.DataFrame:
    """Make ``n`` synthetic discharges for a scheme.

    Parameters
    ----------
    scheme
        Scheme name, folder or loaded scheme.
    n
        Number of cases.
    seed
        Same seed, same cases.
    n_hospitals
        Hospitals ``H001…``; levels 3, 2 and 1 in turn.
    mean_sdx, mean_oproc
        Poisson means of secondary diagnoses and other procedures per case.
    invalid_share
        Share of cases given a data fault (missing sex or age, no diagnosis)
        so the validity checks show up.
    layout
        ``"lists"`` (pdx, sdx list, pproc, oproc list) or ``"strings"``
        (``diagnoses`` / ``procedures``, ``|``-separated, principal first, the
        layout of the golden files).

    Returns
    -------
    polars.DataFrame
        case_id, hospital_id, hospital_level, sex, age, age_days,
        birth_weight, los, discharge, the codes, total_cost, year.
    """
    sch = load_scheme(scheme)
    plan = _plan(sch, seed)
    rng = np.random.default_rng(seed)
    n_adrg = len(plan.adrg_codes)
    # a skewed case mix: a few ADRGs are common, most are rare (Zipf-like ranks)
    popularity = 1.0 / np.arange(1, n_adrg + 1) ** 0.8
    popularity = rng.permutation(popularity)
    adrg = rng.choice(n_adrg, size=n, p=popularity / popularity.sum())

    pdx = _pick(rng, plan.pdx_off, plan.pdx_val, adrg)
    pproc = _pick(rng, plan.proc_off, plan.proc_val, adrg)
    n_sdx = rng.poisson(mean_sdx, size=n)
    total_sdx = int(n_sdx.sum())
    from_cc = rng.random(total_sdx) < 0.35
    sdx_flat = np.where(from_cc, plan.cc_idx[rng.integers(0, plan.cc_idx.size, total_sdx)],
                        rng.integers(0, len(plan.dx_vocab), total_sdx))
    n_oproc = np.where(pproc >= 0, rng.poisson(mean_oproc, size=n), 0)
    oproc_flat = rng.integers(0, len(plan.px_vocab), int(n_oproc.sum()))

    newborn = plan.newborn[adrg]
    fixed_sex = plan.sex[adrg]
    sex = np.where(fixed_sex > 0, fixed_sex, rng.integers(1, 3, n)).astype(np.float64)
    age = np.where(newborn, 0.0, np.clip(np.round(rng.normal(55, 20, n)), 1, 100))
    age_days = np.where(newborn, rng.integers(0, 29, n), np.nan).astype(np.float64)
    weight = np.where(newborn, np.clip(np.round(rng.normal(3000, 700, n), -1), 600, 5000), np.nan)
    los = np.clip(np.round(rng.lognormal(np.log(7), 0.6, n)), 1, 120)
    discharge = rng.choice([1, 2, 3, 4, 5, 9], size=n, p=[0.86, 0.06, 0.03, 0.02, 0.01, 0.02]).astype(np.float64)

    hospital = rng.integers(0, n_hospitals, n)
    level = np.array([3, 2, 1])[np.arange(n_hospitals) % 3]
    efficiency = rng.lognormal(0.0, 0.12, n_hospitals) * np.array([1.25, 1.0, 0.8])[np.arange(n_hospitals) % 3]
    cc_share = np.minimum(n_sdx, 3) * 0.12
    cost = plan.base_cost[adrg] * (1 + cc_share) * efficiency[hospital] * rng.lognormal(0, 0.35, n)
    cost = np.round(cost, 2)

    # data faults, so validity checks are exercised
    fault = rng.random(n) < invalid_share
    kind = rng.integers(0, 3, n)
    sex = np.where(fault & (kind == 0), np.nan, sex)
    age = np.where(fault & (kind == 1), np.nan, age)
    pdx = np.where(fault & (kind == 2), -1, pdx)
    n_sdx_eff = np.where(fault & (kind == 2), 0, n_sdx)
    keep = np.repeat(n_sdx_eff > 0, n_sdx)
    sdx_flat = sdx_flat[keep]

    def nullable(a):
        return pl.Series(a).fill_nan(None)

    df = pl.DataFrame({
        "case_id": pl.select(pl.format("S{}-{}", pl.lit(seed), pl.int_range(n).cast(pl.String)
                                        .str.zfill(8))).to_series(),
        "hospital_id": pl.Series([f"H{h + 1:03d}" for h in range(n_hospitals)]).gather(hospital),
        "hospital_level": pl.Series(level[hospital].astype(np.int8)),
        "sex": nullable(sex), "age": nullable(age), "age_days": nullable(age_days),
        "birth_weight": nullable(weight), "los": pl.Series(los), "discharge": pl.Series(discharge),
        "pdx": plan.dx_vocab.gather(pl.Series(np.where(pdx >= 0, pdx, 0))).set(pl.Series(pdx < 0), None)
        if n else pl.Series([], dtype=pl.String),
        "sdx": _list_column("sdx", plan.dx_vocab, n_sdx_eff, sdx_flat),
        "pproc": plan.px_vocab.gather(pl.Series(np.where(pproc >= 0, pproc, 0))).set(pl.Series(pproc < 0), None)
        if n else pl.Series([], dtype=pl.String),
        "oproc": _list_column("oproc", plan.px_vocab, n_oproc, oproc_flat),
        "total_cost": pl.Series(cost),
    })
    if layout == "strings":
        df = df.with_columns(
            pl.concat_list(pl.col("pdx").fill_null(""), pl.col("sdx")).list.join("|")
            .str.strip_chars_end("|").alias("diagnoses"),
            pl.concat_list(pl.col("pproc").fill_null(""), pl.col("oproc")).list.join("|")
            .str.strip_chars_end("|").alias("procedures"),
        ).drop("pdx", "sdx", "pproc", "oproc")
    elif layout != "lists":
        raise ValueError("layout must be 'lists' or 'strings'")
    return df
