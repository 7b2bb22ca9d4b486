"""DIP grouping over encoded arrays with numba: the batch engine.

Same rules as :mod:`casemix.dip.reference` (read that module for what each
step means); the tests prove both engines equal under hypothesis. Codes are
turned into int32 ids by polars; every table the kernel reads is an
argument, never a module global, so numba's on-disk cache stays valid.
numba is imported only when a batch is first grouped; set the environment
variable ``CASEMIX_NUMBA_CACHE=0`` to keep numba's on-disk cache off (it
can break under multiprocessing, numba issues #4807, #10128).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import polars as pl

from casemix.dip.catalog import Catalog, category


@dataclass(frozen=True)
class CatalogArrays:
    """A catalog compiled to arrays (once per catalog, cached)."""

    proc_codes: list[str]  # vocabulary: id = position
    proc_handling: np.ndarray  # int8: 0 allowed, 1 skip, 2 conservative
    proc_level: np.ndarray  # int8: attribute level, -1 when not listed
    proc_listed: np.ndarray  # bool: in procedure_attributes.csv
    key_texts: list[str]  # diagnosis keys with core groups: id = position
    key_off: np.ndarray  # CSR: key -> group positions in file order
    key_val: np.ndarray
    main_off: np.ndarray  # CSR: group -> main procedure ids
    main_val: np.ndarray
    rel_off: np.ndarray  # CSR: group -> related procedure ids
    rel_val: np.ndarray
    comp_cats: list[str]  # categories with comprehensive groups
    comp_table: np.ndarray  # int32 [category, level] -> group position or -1


_compiled: weakref.WeakKeyDictionary[Catalog, CatalogArrays] = weakref.WeakKeyDictionary()

#: per case: group position, reason, warnings, diagnosis id, attribute; and the diagnosis codes
Decided = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]


def _csr(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    off = np.zeros(len(lists) + 1, dtype=np.int64)
    off[1:] = np.cumsum([len(x) for x in lists])
    val = np.fromiter((v for x in lists for v in x), dtype=np.int32, count=int(off[-1]))
    return off, val


def compile_catalog(catalog: Catalog) -> CatalogArrays:
    """The array form of ``catalog`` the kernel reads (built once per catalog)."""
    hit = _compiled.get(catalog)
    if hit is not None:
        return hit
    vocab: dict[str, int] = {}
    for g in catalog.groups:
        for c in (*g.main, *g.related):
            vocab.setdefault(c, len(vocab))
    for c in (*catalog.attributes, *catalog.excluded_procedures):
        vocab.setdefault(c, len(vocab))
    n = len(vocab)
    handling = np.zeros(n, dtype=np.int8)
    level = np.full(n, -1, dtype=np.int8)
    listed = np.zeros(n, dtype=np.bool_)
    for c, i in vocab.items():
        h = catalog.excluded_procedures.get(c)
        handling[i] = 0 if h is None else (1 if h == "skip" else 2)
        if c in catalog.attributes:
            level[i], listed[i] = catalog.attributes[c], True
    key_texts = list(catalog.core_by_key)
    key_off, key_val = _csr([list(catalog.core_by_key[k]) for k in key_texts])
    main_off, main_val = _csr([[vocab[c] for c in g.main] for g in catalog.groups])
    rel_off, rel_val = _csr([[vocab[c] for c in g.related] for g in catalog.groups])
    comp_cats = sorted({cat for cat, _ in catalog.comprehensive})
    comp_table = np.full((max(len(comp_cats), 1), 4), -1, dtype=np.int32)
    cat_id = {c: i for i, c in enumerate(comp_cats)}
    for (cat, lv), gi in catalog.comprehensive.items():
        comp_table[cat_id[cat], lv] = gi
    arrays = CatalogArrays(
        list(vocab),
        handling,
        level,
        listed,
        key_texts,
        key_off,
        key_val,
        main_off,
        main_val,
        rel_off,
        rel_val,
        comp_cats,
        comp_table,
    )
    _compiled[catalog] = arrays
    return arrays


def _codes_expr() -> pl.Expr:
    """Codes stripped of spaces, empty strings as null (the same normalisation as ``prepare``)."""
    v = pl.col("v").str.strip_chars()
    return pl.when(v != "").then(v).alias("v")


def _codes(col: pl.Series) -> pl.Series:
    return pl.DataFrame({"v": col}).select(_codes_expr()).to_series()


def _explode(col: pl.Series | None) -> tuple[np.ndarray, pl.Series]:
    """A list column as (row of each kept code, codes), in row order, nulls and blanks dropped."""
    if col is None:
        return np.zeros(0, dtype=np.int64), pl.Series("v", [], dtype=pl.String)
    f = (
        pl.DataFrame({"v": col})
        .with_row_index("row")
        .explode("v")
        .with_columns(_codes_expr())
        .filter(pl.col("v").is_not_null())
    )
    return f["row"].cast(pl.Int64).to_numpy(), f["v"]


def _offsets(rows: np.ndarray, counts_extra: np.ndarray | None, n: int) -> np.ndarray:
    counts = np.bincount(rows, minlength=n).astype(np.int64)
    if counts_extra is not None:
        counts += counts_extra
    off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    return off


def encode_cases(canon: pl.DataFrame, catalog: Catalog, arrays: CatalogArrays) -> dict:
    """The canonical code columns as the kernel's integer arrays.

    Diagnoses get ids over this batch's distinct codes, and the per-code
    facts (validity, exclusion handling, matching keys, comprehensive
    category) are worked out once per distinct code, not per case.
    Procedures get ids of the catalog's vocabulary (-1 = a code the catalog
    does not name); each case's procedures are laid out principal first.
    """
    n = canon.height
    pdx = _codes(canon["pdx"])
    sdx_row, sdx = _explode(canon["sdx"] if "sdx" in canon.columns else None)
    uniq = pl.concat([pdx.drop_nulls(), sdx]).unique(maintain_order=True).to_list()
    ids = list(range(len(uniq)))
    pdx_id = pdx.replace_strict(uniq, ids, default=-1, return_dtype=pl.Int32).to_numpy()
    sdx_val = sdx.replace_strict(uniq, ids, default=-1, return_dtype=pl.Int32).to_numpy()
    key_id = {k: i for i, k in enumerate(arrays.key_texts)}
    cat_id = {c: i for i, c in enumerate(arrays.comp_cats)}
    # one slot more than codes, so numba always sees non-empty tables
    valid = np.zeros(len(uniq) + 1, dtype=np.bool_)
    handling = np.zeros(len(uniq) + 1, dtype=np.int8)
    comp_cat = np.full(len(uniq) + 1, -1, dtype=np.int32)
    keys: list[list[int]] = []
    for u, code in enumerate(uniq):
        cat = category(code)
        valid[u] = cat is not None
        h = catalog.dx_handling(code) if cat is not None else None
        handling[u] = 0 if h is None else (1 if h == "not_grouped" else 2)
        comp_cat[u] = -1 if cat is None else cat_id.get(cat, -1)
        keys.append([key_id[k] for k in catalog.dx_keys(code)] if cat is not None else [])
    keys.append([])
    dkey_off, dkey_val = _csr(keys)

    codes, new = arrays.proc_codes, list(range(len(arrays.proc_codes)))
    pproc = (
        _codes(canon["pproc"])
        if "pproc" in canon.columns
        else pl.Series("pproc", [None] * n, dtype=pl.String)
    )
    has_p = pproc.is_not_null().to_numpy().astype(np.int64)
    op_row, oproc = _explode(canon["oproc"] if "oproc" in canon.columns else None)
    proc_off = _offsets(op_row, has_p, n)
    proc_val = np.empty(int(proc_off[-1]), dtype=np.int32)
    p_rows = np.flatnonzero(has_p)
    proc_val[proc_off[p_rows]] = (
        pproc.drop_nulls().replace_strict(codes, new, default=-1, return_dtype=pl.Int32).to_numpy()
    )
    if len(op_row):
        # k-th kept other procedure of a row sits after the row's principal procedure
        first = _offsets(op_row, None, n)
        rank = np.arange(len(op_row), dtype=np.int64) - first[op_row]
        proc_val[proc_off[op_row] + has_p[op_row] + rank] = oproc.replace_strict(
            codes, new, default=-1, return_dtype=pl.Int32
        ).to_numpy()
    return {
        "uniq": uniq,
        "pdx_id": pdx_id,
        "sdx_off": _offsets(sdx_row, None, n),
        "sdx_val": sdx_val,
        "valid": valid,
        "handling": handling,
        "comp_cat": comp_cat,
        "dkey_off": dkey_off,
        "dkey_val": dkey_val,
        "proc_off": proc_off,
        "proc_val": proc_val,
    }


_kernel_cache: dict[str, object] = {}


def _kernel():
    """Compile (once per process) and return the grouping kernel over a row range.

    A plain ``nogil`` kernel run on threads by :func:`casemix._threads.run_ranges`
    rather than ``parallel=True``, which took several times longer to compile on a
    fresh install's first DIP grouping.
    """
    if "group" in _kernel_cache:
        return _kernel_cache["group"]
    import numba

    from casemix._first_run import cache_enabled, listen

    listen()  # the first-run notice when numba compiles the kernel

    @numba.njit(nogil=True, cache=cache_enabled())
    def group_kernel(
        start,
        stop,
        pdx_id,
        sdx_off,
        sdx_val,
        dx_valid,
        dx_handling,
        dx_cat,
        dkey_off,
        dkey_val,
        proc_off,
        proc_val,
        proc_handling,
        proc_level,
        proc_listed,
        key_off,
        key_val,
        main_off,
        main_val,
        rel_off,
        rel_val,
        comp_table,
        main_only,
        unlisted_level,
        out_group,
        out_reason,
        out_warn,
        out_dx,
        out_attr,
    ):
        for i in range(start, stop):
            out_group[i] = -1
            out_reason[i] = 0
            out_warn[i] = 0
            out_dx[i] = -1
            out_attr[i] = -1
            warn = 0
            # 1. principal diagnosis
            dx = pdx_id[i]
            if dx < 0:
                out_reason[i] = 1
                continue
            out_dx[i] = dx
            if not dx_valid[dx]:
                out_reason[i] = 2
                continue
            if dx_handling[dx] == 1:
                out_reason[i] = 3
                continue
            if dx_handling[dx] == 2:
                found = -1
                for j in range(sdx_off[i], sdx_off[i + 1]):
                    s = sdx_val[j]
                    if dx_valid[s] and dx_handling[s] == 0:
                        found = s
                        break
                if found < 0:
                    out_reason[i] = 4
                    continue
                dx = found
                out_dx[i] = dx
                warn |= 1
            # 2. main procedure (position within the case's procedures)
            p0 = proc_off[i]
            p1 = proc_off[i + 1]
            main = -1
            for j in range(p0, p1):
                v = proc_val[j]
                h = proc_handling[v] if v >= 0 else 0
                if h == 0:
                    main = j
                    break
                if h == 2:
                    warn |= 4
                    break
                warn |= 2
            main_code = proc_val[main] if main >= 0 else -1
            # 3. core match, most specific key first
            chosen = -1
            for kk in range(dkey_off[dx], dkey_off[dx + 1]):
                key = dkey_val[kk]
                best = -1
                best_n = 0
                partial = -1
                partial_n = 0
                plain = -1
                for gg in range(key_off[key], key_off[key + 1]):
                    g = key_val[gg]
                    n_main = main_off[g + 1] - main_off[g]
                    if main < 0:
                        if n_main != 0:
                            continue
                    else:
                        if main_code < 0:
                            continue
                        hit = False
                        for m in range(main_off[g], main_off[g + 1]):
                            if main_val[m] == main_code:
                                hit = True
                                break
                        if not hit:
                            continue
                    n_rel = rel_off[g + 1] - rel_off[g]
                    if n_rel == 0:
                        if plain < 0:
                            plain = g
                        continue
                    matched = 0
                    for r in range(rel_off[g], rel_off[g + 1]):
                        code = rel_val[r]
                        for j in range(p0, p1):
                            if j != main and proc_val[j] == code:
                                matched += 1
                                break
                    if matched == n_rel and n_rel > best_n:
                        best = g
                        best_n = n_rel
                    if matched > partial_n:
                        partial = g
                        partial_n = matched
                if best >= 0:
                    chosen = best
                elif partial >= 0:
                    chosen = partial
                    warn |= 16
                elif plain >= 0:
                    chosen = plain
                if chosen >= 0:
                    break
            if chosen >= 0:
                out_group[i] = chosen
                out_warn[i] = warn
                continue
            # 4. comprehensive: category x highest attribute
            level = 0
            for j in range(p0, p1):
                if main_only and j != main:
                    continue
                v = proc_val[j]
                if v >= 0 and proc_handling[v] == 2:
                    continue
                if v >= 0 and proc_listed[v]:
                    lv = proc_level[v]
                else:
                    warn |= 8
                    lv = unlisted_level
                if lv > level:
                    level = lv
            out_attr[i] = level
            out_warn[i] = warn
            c = dx_cat[dx]
            if c >= 0 and comp_table[c, level] >= 0:
                out_group[i] = comp_table[c, level]
            else:
                out_reason[i] = 5

    _kernel_cache["group"] = group_kernel
    return group_kernel


def group_frame(
    canon: pl.DataFrame, catalog: Catalog, *, main_procedure_only: bool = True, parallel: bool = True
) -> Decided:
    """Group a canonical frame; returns (group, reason, warnings, dx id, attribute, dx codes).

    ``dx id`` indexes ``dx codes`` (-1 = none): the diagnosis each case was
    grouped (or failed) on.
    """
    arrays = compile_catalog(catalog)
    e = encode_cases(canon, catalog, arrays)
    n = canon.height
    out_group = np.empty(n, dtype=np.int32)
    out_reason = np.empty(n, dtype=np.int8)
    out_warn = np.empty(n, dtype=np.int32)
    out_dx = np.empty(n, dtype=np.int32)
    out_attr = np.empty(n, dtype=np.int8)
    if n:
        from casemix._threads import run_ranges

        kernel = _kernel()
        args = (
            e["pdx_id"],
            e["sdx_off"],
            e["sdx_val"],
            e["valid"],
            e["handling"],
            e["comp_cat"],
            e["dkey_off"],
            e["dkey_val"],
            e["proc_off"],
            e["proc_val"],
            arrays.proc_handling,
            arrays.proc_level,
            arrays.proc_listed,
            arrays.key_off,
            arrays.key_val,
            arrays.main_off,
            arrays.main_val,
            arrays.rel_off,
            arrays.rel_val,
            arrays.comp_table,
            main_procedure_only,
            np.int8(catalog.unlisted_attribute),
            out_group,
            out_reason,
            out_warn,
            out_dx,
            out_attr,
        )
        if parallel:
            run_ranges(kernel, n, *args)
        else:
            kernel(0, n, *args)
    return out_group, out_reason, out_warn, out_dx, out_attr, e["uniq"]
