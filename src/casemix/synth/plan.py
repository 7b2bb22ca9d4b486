"""What a case of each DRG needs: codes the scheme's rules read, weight, severity.

The plan is built once per scheme (no randomness) by reading the rules:
the principal diagnosis comes from the lists the MDC and ADRG rules test,
procedures from the ADRG's procedure lists (or OR procedures), newborn age
and birth weight from its comparisons, and the DRG's ``mcc`` / ``cc`` rule
says which secondary diagnosis it needs.  Relative weights come from the
Harbin 2024 table (``casemix/data/reference_weights``), with a stated
fallback for DRGs it lacks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np
import polars as pl

from casemix.scheme import Scheme
from casemix.scheme.rules import And, Compare, InList, Not, Or, OrProc, Severity, Sites, TrueRule, walk

#: severity targets of a DRG
SEV_NONE, SEV_CC, SEV_MCC, SEV_ANY = 0, 1, 2, 3
#: kinds of ADRG, in :func:`casemix.scheme.adrg_kind` terms
KINDS = ("surgical", "procedure", "medical")
#: RW multiplier by the last digit of a CHS-DRG code, for DRGs without a published weight
#: (1 = MCC, 3 = CC, 5 = none, 9 = unsplit) [illustrative]
_DIGIT_FACTOR = {"1": 1.45, "2": 1.25, "3": 1.1, "4": 1.0, "5": 0.85, "6": 0.8, "7": 0.75, "9": 1.0}
#: RW of a DRG whose ADRG has no published weight either, by kind [illustrative]
_KIND_RW = {"surgical": 1.8, "procedure": 1.0, "medical": 0.75}
#: newborn classes
ADULT, NEONATE, INFANT = 0, 1, 2


def reference_weights() -> dict[str, float]:
    """DRG → RW of the Harbin 2024 table shipped in ``casemix/data/reference_weights``."""
    return dict(_harbin())


@functools.lru_cache(maxsize=1)
def _harbin() -> tuple[tuple[str, float], ...]:
    path = resources.files("casemix.data") / "reference_weights" / "harbin-2024.csv"
    with resources.as_file(path) as p:
        df = pl.read_csv(p, schema_overrides={"drg": pl.String, "rw": pl.Float64, "name": pl.String})
    return tuple(zip(df["drg"].to_list(), df["rw"].to_list(), strict=True))


@dataclass
class _Needs:
    dx: list[str]
    pproc: list[str]
    proc: list[str]
    pproc_or: bool = False
    no_or: bool = False
    sites: str | None = None
    compares: tuple[Compare, ...] = ()


def _needs(expr) -> _Needs:
    """What a case needs for ``expr`` to hold (first alternative of an ``|``)."""
    out = _Needs([], [], [])
    _collect(expr, out)
    out.compares = tuple(n for n in walk(expr) if isinstance(n, Compare) and _on_path(expr, n))
    return out


def _on_path(expr, node) -> bool:
    if expr is node:
        return True
    if isinstance(expr, And):
        return any(_on_path(e, node) for e in expr.operands)
    if isinstance(expr, Or):
        return _on_path(expr.operands[0], node)
    return False


def _collect(expr, out: _Needs) -> None:
    if isinstance(expr, InList):
        {"pdx": out.dx, "dx": out.dx, "pproc": out.pproc}.get(expr.target, out.proc).append(expr.list)
    elif isinstance(expr, OrProc):
        out.pproc_or = True
    elif isinstance(expr, Not) and isinstance(expr.operand, OrProc):
        out.no_or = True
    elif isinstance(expr, Sites):
        out.sites = expr.list
    elif isinstance(expr, And):
        for e in expr.operands:
            _collect(e, out)
    elif isinstance(expr, Or):
        _collect(expr.operands[0], out)


def _severity(rule) -> int:
    levels = {n.level for n in walk(rule) if isinstance(n, Severity)}
    if "CC" in levels:
        return SEV_CC
    if "MCC" in levels:
        return SEV_MCC
    return SEV_NONE if not isinstance(rule, TrueRule) else SEV_ANY


@dataclass(frozen=True)
class Plan:
    """Per-DRG targets of a scheme; code pools as CSR arrays of vocabulary indices."""

    dx_vocab: pl.Series
    px_vocab: pl.Series
    drg_codes: list[str]
    adrg_of: np.ndarray  # ADRG index per DRG
    adrg_codes: list[str]
    kind: np.ndarray  # index into KINDS per DRG
    severity: np.ndarray  # SEV_* per DRG
    rw: np.ndarray  # relative weight per DRG
    rw_source: np.ndarray  # 0 published, 1 from its ADRG, 2 kind default
    usable: np.ndarray  # bool: the DRG's ADRG has the codes it needs
    # per ADRG
    pdx: tuple[np.ndarray, np.ndarray]
    pproc: tuple[np.ndarray, np.ndarray]
    extra_proc: tuple[tuple[np.ndarray, np.ndarray], ...]  # further required procedure lists
    sites: tuple[np.ndarray, np.ndarray]  # second-site diagnoses (multiple trauma)
    sex: np.ndarray  # 0 any, 1 male, 2 female
    newborn: np.ndarray  # ADULT / NEONATE / INFANT
    weight_lo: np.ndarray  # birth weight bounds (g), NaN = none
    weight_hi: np.ndarray
    obstetric: np.ndarray  # bool: pregnancy ADRG (CHS code letter O), mothers' ages
    # per dx vocabulary code
    cc_level: np.ndarray  # 0 none, 1 CC, 2 MCC
    cc_table: np.ndarray  # exclusion table id of a CC/MCC code, -1 never excluded
    pdx_table: np.ndarray  # exclusion table id of a principal diagnosis, -2 none
    site: np.ndarray  # site attribute id for the sites list, -1 none
    # pools for secondary diagnoses and other procedures
    cc_pool: np.ndarray
    mcc_pool: np.ndarray
    plain_pool: np.ndarray  # diagnoses that are neither CC nor MCC
    cc_mix: np.ndarray  # CC and MCC codes
    non_or_pool: np.ndarray  # procedures that are not OR procedures

    @property
    def n_drg(self) -> int:
        return len(self.drg_codes)


def _csr(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    off = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    val = np.array([v for r in rows for v in r], dtype=np.int64)
    return off, val


@functools.lru_cache(maxsize=8)
def build_plan(scheme: Scheme) -> Plan:
    """The plan of ``scheme`` (cached per loaded scheme)."""
    dx_codes = sorted(scheme.diagnoses)
    px_codes = sorted(scheme.procedures)
    dx_pos = {c: i for i, c in enumerate(dx_codes)}
    px_pos = {c: i for i, c in enumerate(px_codes)}
    or_idx = sorted(px_pos[c] for c in scheme.or_procedures if c in px_pos)

    def dx_idx(codes) -> list[int]:
        return sorted(dx_pos[c] for c in codes if c in dx_pos)

    def px_idx(codes) -> list[int]:
        return sorted(px_pos[c] for c in codes if c in px_pos)

    pdx_rows: list[list[int]] = []
    pproc_rows: list[list[int]] = []
    extra_rows: list[list[list[int]]] = [[], []]
    site_rows: list[list[int]] = []
    sex, newborn, w_lo, w_hi, adrg_usable, adrg_codes, obstetric = [], [], [], [], [], [], []
    site_attr = np.full(len(dx_codes), -1, dtype=np.int64)
    attr_ids: dict[str, int] = {}
    for mdc in scheme.mdcs:
        m = _needs(mdc.rule)
        for adrg in scheme.adrgs.get(mdc.code, ()):
            a = _needs(adrg.rule)
            lists = m.dx + a.dx
            pool = set(scheme.lists[lists[0]]) if lists else set(scheme.diagnoses)
            for name in lists[1:]:
                narrowed = pool & scheme.lists[name]
                pool = narrowed or pool
            pdx_rows.append(dx_idx(pool))
            procs = a.pproc + a.proc
            if procs:
                pp = set(scheme.lists[procs[0]])
                for name in a.pproc[1:]:
                    pp = (pp & scheme.lists[name]) or pp
                pproc_rows.append(px_idx(pp))
            elif a.pproc_or or m.pproc_or:
                pproc_rows.append(or_idx)
            else:
                pproc_rows.append([])
            rest = a.proc[1:] if not a.pproc else a.proc
            for k in range(2):
                extra_rows[k].append(px_idx(scheme.lists[rest[k]]) if k < len(rest) else [])
            sites = a.sites or m.sites
            if sites:
                attrs = scheme.list_attrs.get(sites, {})
                for code, attr in attrs.items():
                    if code in dx_pos:
                        site_attr[dx_pos[code]] = attr_ids.setdefault(attr, len(attr_ids))
                site_rows.append(dx_idx(attrs))
            else:
                site_rows.append([])
            compares = m.compares + a.compares
            sex.append(next((int(c.value) for c in compares if c.field == "sex" and c.op == "=="), 0))
            nb = ADULT
            if any(c.field in ("age_days", "birth_weight") for c in compares):
                nb = NEONATE
            elif any(c.field == "age" and c.value == 0 and c.op in ("==", "<=") for c in compares):
                nb = INFANT
            newborn.append(nb)
            lo = max(
                (
                    c.value + (c.op == ">")
                    for c in compares
                    if c.field == "birth_weight" and c.op in (">=", ">") and c.value > 0
                ),
                default=np.nan,
            )
            hi = min(
                (
                    c.value + (c.op == "<=")
                    for c in compares
                    if c.field == "birth_weight" and c.op in ("<", "<=")
                ),
                default=np.nan,
            )
            w_lo.append(lo)
            w_hi.append(hi)
            needs_proc = bool(procs) or a.pproc_or
            adrg_usable.append(
                bool(pdx_rows[-1])
                and (not needs_proc or bool(pproc_rows[-1]))
                and all(extra_rows[k][-1] or k >= len(rest) for k in range(2))
            )
            adrg_codes.append(adrg.code)
            obstetric.append(adrg.code.startswith("O"))

    harbin = dict(_harbin())
    by_adrg: dict[str, list[tuple[str, float]]] = {}
    for code, rw in harbin.items():
        by_adrg.setdefault(code[:3], []).append((code, rw))
    adrg_index = {c: i for i, c in enumerate(adrg_codes)}
    drg_codes, adrg_of, kind, severity, rws, src = [], [], [], [], [], []
    for mdc in scheme.mdcs:
        for adrg in scheme.adrgs.get(mdc.code, ()):
            for drg in scheme.drgs.get(adrg.code, ()):
                drg_codes.append(drg.code)
                adrg_of.append(adrg_index[adrg.code])
                kind.append(KINDS.index(adrg.kind))
                sev = _severity(drg.rule)
                # a bare "true" after severity splits is the "without CC/MCC" group
                severity.append(SEV_NONE if sev == SEV_ANY and len(scheme.drgs[adrg.code]) > 1 else sev)
                rw, s = _weight(drg.code, adrg.code, adrg.kind, harbin, by_adrg)
                rws.append(rw)
                src.append(s)

    cc_level = np.zeros(len(dx_codes), dtype=np.int8)
    cc_table = np.full(len(dx_codes), -1, dtype=np.int64)
    tables: dict[str, int] = {}
    for code, (level, table) in scheme.cc.items():
        if code in dx_pos:
            i = dx_pos[code]
            cc_level[i] = 2 if level.upper() == "MCC" else 1
            if table and table != scheme.never_excluded_table:
                cc_table[i] = tables.setdefault(table, len(tables))
    pdx_table = np.full(len(dx_codes), -2, dtype=np.int64)
    for code, table in scheme.exclusions.items():
        if code in dx_pos and table in tables:
            pdx_table[dx_pos[code]] = tables[table]
    non_or = np.setdiff1d(np.arange(len(px_codes)), np.array(or_idx, dtype=np.int64))
    adrg_of_arr = np.array(adrg_of, dtype=np.int64)
    return Plan(
        dx_vocab=pl.Series("dx", dx_codes, dtype=pl.String),
        px_vocab=pl.Series("px", px_codes, dtype=pl.String),
        drg_codes=drg_codes,
        adrg_of=adrg_of_arr,
        adrg_codes=adrg_codes,
        kind=np.array(kind, np.int8),
        severity=np.array(severity, np.int8),
        rw=np.array(rws, float),
        rw_source=np.array(src, np.int8),
        usable=np.array(adrg_usable, bool)[adrg_of_arr] if drg_codes else np.zeros(0, bool),
        pdx=_csr(pdx_rows),
        pproc=_csr(pproc_rows),
        extra_proc=(_csr(extra_rows[0]), _csr(extra_rows[1])),
        sites=_csr(site_rows),
        sex=np.array(sex, np.int8),
        newborn=np.array(newborn, np.int8),
        weight_lo=np.array(w_lo, float),
        weight_hi=np.array(w_hi, float),
        obstetric=np.array(obstetric, bool),
        cc_level=cc_level,
        cc_table=cc_table,
        pdx_table=pdx_table,
        site=site_attr,
        cc_pool=_pool(cc_level == 1),
        mcc_pool=_pool(cc_level == 2),
        plain_pool=_pool(cc_level == 0),
        cc_mix=_pool(cc_level > 0),
        non_or_pool=non_or if non_or.size else np.arange(max(len(px_codes), 1)),
    )


def _pool(mask: np.ndarray) -> np.ndarray:
    """Indices where ``mask`` holds; all indices if none (a scheme without CC codes, say)."""
    idx = np.flatnonzero(mask)
    return idx if idx.size else np.arange(max(mask.size, 1))


def _weight(
    drg: str, adrg: str, kind: str, harbin: dict[str, float], by_adrg: dict[str, list[tuple[str, float]]]
) -> tuple[float, int]:
    """Published RW of ``drg``; else its ADRG's published DRGs rescaled by the last digit; else by kind."""
    if drg in harbin:
        return harbin[drg], 0
    digit = _DIGIT_FACTOR.get(drg[-1:], 1.0)
    same = by_adrg.get(adrg[:3], [])
    if same:
        base = float(np.mean([rw / _DIGIT_FACTOR.get(c[-1:], 1.0) for c, rw in same]))
        return base * digit, 1
    return _KIND_RW[kind] * digit, 2
