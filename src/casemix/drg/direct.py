"""Direct encoding: typed input straight to kernel ids, the canonical frame only where needed.

Most large inputs (Parquet from a 结算清单 extract, a frame built by a
pipeline) are already typed: codes as ``String`` columns with the other
codes as ``List(String)`` or ``|``-strings (or one combined column,
principal first), numbers as numbers.  For those, building the canonical case frame
(``casemix.cases.read_cases``) copies every code only to find that nothing
needed cleaning.  This module encodes the input's own code columns with the
scheme's hash lookup and sorts rows in two:

- a **clean** row: every code is found in the scheme's dictionary of its
  kind (principal and secondary diagnoses in ``diagnoses.csv``, procedures
  in ``procedures.csv``), a principal diagnosis is present and no number
  is infinite, malformed text or a negative cost or stay.  Such a row has
  nothing for intake to change (scheme codes are fixed points of the code
  clean-up, :func:`clean_ids`), so its ids are the ids of its canonical
  row and its ``warnings`` is ``""``, or the ``grey_pdx`` / ``grey_pproc``
  warning of a grey principal code (``[grey]``), formatted from its ids;
- every other row goes the canonical way: ``read_cases`` on those rows
  alone, then the same encoder and kernel.

So the answer is the canonical path's answer by construction, and a test
checks it on generated inputs with dirty codes, nulls and bad numbers.
A ``|``-string with a non-ASCII character (which intake folds first) makes
its row dirty.  Numbers and dates given as text are read with intake's
own expressions.  Inputs in other layouts (wide columns, numeric dates,
categorical codes) are not eligible: :func:`group_direct` returns ``None`` and the caller takes
the canonical path for the whole frame.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping

import numpy as np
import polars as pl

from casemix.cases._plausible import RANGES, implausible_mask
from casemix.cases._resolve import DATE_FIELDS, NUMERIC_FIELDS, CodeLayout, Plan, resolve
from casemix.encode import (
    ABSENT,
    CodeIndex,
    EncodedCases,
    code_index,
    encode_codes,
    encode_joined,
    encode_list,
    grey_ids,
)
from casemix.scheme.model import Scheme
from casemix.scheme.rules import FIELDS

__all__ = ["group_direct", "clean_ids"]

_CLEAN_CACHE: weakref.WeakKeyDictionary[Scheme, tuple[np.ndarray, np.ndarray]] = weakref.WeakKeyDictionary()


def clean_ids(scheme: Scheme) -> tuple[np.ndarray, np.ndarray]:
    """Per code id: whether a raw code with this id is a clean diagnosis / procedure.

    A code qualifies when it is in the scheme's dictionary of that kind and
    intake's clean-up (``casemix.cases._normalise``) leaves it unchanged; a
    scheme listing a code in a form intake would rewrite (lower case, spaces)
    keeps such rows on the canonical path.  Each array has one extra
    ``False`` at the end, so that id ``-1`` (unknown) indexes it.
    """
    cached = _CLEAN_CACHE.get(scheme)
    if cached is not None:
        return cached
    from casemix.cases import _normalise as N

    index = code_index(scheme)
    codes = index.codes
    fixed = (
        pl.DataFrame({"c": codes})
        .select(N.nonempty(N.code_chain(N.fold(pl.col("c")))).eq_missing(pl.col("c")))
        .to_series()
        .to_numpy()
    )
    out = (np.append(index.is_diagnosis & fixed, False), np.append(index.is_procedure & fixed, False))
    _CLEAN_CACHE[scheme] = out
    return out


_LISTS = (pl.List(pl.String), pl.List(pl.Null))


def _eligible_codes(schema: pl.Schema, layout: CodeLayout | None) -> bool:
    """A principal String column with others as a list or ``|``-string, or one combined column."""
    if layout is None:
        return True
    if layout.kind == "combined":
        return layout.combined is not None and schema[layout.combined] in (*_LISTS, pl.String())
    if layout.kind != "split" or layout.others_wide:
        return False
    if layout.principal is not None and schema[layout.principal] not in (pl.String, pl.Null):
        return False
    return layout.others is None or schema[layout.others] in (*_LISTS, pl.String())


def _family(
    df: pl.DataFrame, layout: CodeLayout | None, index: CodeIndex
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray | None]:
    """Ids of one code family: the principal codes, the other codes (CSR), rows with non-ASCII text.

    A ``|``-string is split and looked up in one pass
    (:func:`casemix.encode.encode_joined`), reading blank codes, white space
    and the letter case of plain codes as intake does; a null or empty text
    has no codes.  Intake first folds a text with a non-ASCII character
    (NFKC: a full-width ``｜`` separates too), so such rows are left to it.
    """
    n = df.height
    if layout is None:
        return np.full(n, ABSENT, dtype=np.int32), _no_lists(n), None
    schema = df.schema

    def principal(codes: pl.Series) -> np.ndarray:
        ids = encode_codes(codes, index)  # null and "" are unknown (-1) here: "" must be reported
        return np.where(codes.is_null().to_numpy(), np.int32(ABSENT), ids) if codes.null_count() else ids

    def joined(texts: pl.Series, first_apart: bool):
        first, off, val, non_ascii = encode_joined(texts, index, first_apart)
        return first, (off, val), non_ascii.view(bool)

    if layout.kind == "combined" and layout.combined is not None:
        codes = df.get_column(layout.combined)
        if schema[layout.combined] == pl.String:
            return joined(codes, True)
        return principal(codes.list.first()), encode_list(codes.list.slice(1), index), None
    pdx = np.full(n, ABSENT, dtype=np.int32)
    if layout.principal is not None and schema[layout.principal] != pl.Null:
        pdx = principal(df.get_column(layout.principal))
    if layout.others is None:
        return pdx, _no_lists(n), None
    others = df.get_column(layout.others)
    if schema[layout.others] == pl.String:
        _, lists, non_ascii = joined(others, False)
        return pdx, lists, non_ascii
    return pdx, encode_list(others, index), None


def _no_lists(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int32)


def _eligible(df: pl.DataFrame, plan: Plan) -> bool:
    """Whether intake could change nothing but what the clean-row test catches."""
    schema = df.schema
    if plan.dx is None or not _eligible_codes(schema, plan.dx) or not _eligible_codes(schema, plan.proc):
        return False
    for name, col in plan.scalars.items():
        dt = schema[col]
        if name in DATE_FIELDS:
            # text dates are read with intake's own expressions (_texts); numeric dates are not
            if not (dt in (pl.Date, pl.Null, pl.String) or isinstance(dt, pl.Datetime)):
                return False
        elif name in NUMERIC_FIELDS and not (dt.is_numeric() or dt in (pl.Null, pl.String)):
            return False
    return True


def _texts(df: pl.DataFrame, plan: Plan) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Numbers given as text (as a CSV read as text gives them), read as intake reads them,
    and the rows where intake would report a number or date malformed.

    Intake's own expressions give the answer.  A number text polars reads
    as it is (plain ASCII digits) is one intake reads the same, so only the
    other texts go through them; dates, a few hundred distinct texts in
    millions of rows, are read once per distinct text.
    """
    from casemix.cases import _normalise as N
    from casemix.cases._build import text_date_bad, text_number, text_number_bad

    values: dict[str, np.ndarray] = {}
    bad = None

    def by_intake(texts: pl.Series, name: str) -> pl.DataFrame:
        txt = pl.col("txt")
        step = pl.DataFrame({"raw": texts}).with_columns(N.fold(pl.col("raw")).str.strip_chars().alias("txt"))
        if name in DATE_FIELDS:
            return step.select("raw", text_date_bad(txt, N.date_of(txt, pl.String())).alias("bad"))
        number = text_number(name, txt)
        return step.select(N.finite(number).alias("value"), text_number_bad(txt, number).alias("bad"))

    for name, col in plan.scalars.items():
        s = df.get_column(col)
        if s.dtype != pl.String or not (name in NUMERIC_FIELDS or name in DATE_FIELDS):
            continue
        if name in DATE_FIELDS:
            read = by_intake(s.unique(), name)
            flags = s.is_in(read.filter("bad").get_column("raw").implode()).fill_null(False).to_numpy()
        else:
            fast = s.cast(pl.Float64, strict=False)
            x = fast.to_numpy()  # null → NaN
            with np.errstate(invalid="ignore"):
                flags = fast.is_not_null().to_numpy() & ~np.isfinite(x)  # "inf", "nan": malformed
            x = np.where(np.isfinite(x), x, np.nan)
            slow = np.flatnonzero((fast.is_null() & s.is_not_null()).to_numpy())
            if slow.size:
                read = by_intake(s.gather(slow), name)
                x[slow] = read["value"].to_numpy()
                flags[slow] = read["bad"].to_numpy()
            values[name] = x
        bad = flags if bad is None else bad | flags
    return values, bad


def _numbers(df: pl.DataFrame, plan: Plan, name: str, texts: dict[str, np.ndarray]) -> np.ndarray | None:
    col = plan.scalars.get(name)
    if col is None or df.schema[col] == pl.Null:
        return None
    if name in texts:
        return texts[name]
    return df.get_column(col).cast(pl.Float64).to_numpy()


def _encode_chunk(
    df: pl.DataFrame, plan: Plan, scheme: Scheme
) -> tuple[EncodedCases, np.ndarray, np.ndarray]:
    """Kernel arrays for the rows of ``df`` as they are, which rows are not clean, and
    which rows have a grey principal code (clean rows among them keep the direct path)."""
    from casemix.drg.kernel import rows_with_bad_code

    index = code_index(scheme)
    ok_dx, ok_px = clean_ids(scheme)
    n = df.height
    pdx, (sdx_off, sdx_val), dx_non_ascii = _family(df, plan.dx, index)
    pproc, (op_off, op_val), px_non_ascii = _family(df, plan.proc, index)
    dirty = (pdx < 0) | ~ok_dx[pdx] | ((pproc != ABSENT) & ~ok_px[pproc])
    dirty |= rows_with_bad_code(sdx_off, sdx_val, ok_dx) | rows_with_bad_code(op_off, op_val, ok_px)
    grey = np.zeros(n, dtype=bool)
    flags = grey_ids(scheme)
    for target, ids in (("pdx", pdx), ("pproc", pproc)):
        if target in flags:
            grey |= flags[target][ids]
    for mask in (dx_non_ascii, px_non_ascii):
        if mask is not None:
            dirty |= mask

    texts, malformed = _texts(df, plan)
    if malformed is not None:
        dirty |= malformed
    fields = np.full((len(FIELDS), n), np.nan, dtype=np.float64)
    present = np.zeros((len(FIELDS), n), dtype=np.uint8)
    for name in NUMERIC_FIELDS:
        x = _numbers(df, plan, name, texts)
        if x is None:
            continue
        if name in FIELDS:
            fields[FIELDS.index(name)] = x
            present[FIELDS.index(name)] = np.isfinite(x)
        dirty |= np.isinf(x)  # intake nulls it and reports it malformed
        if name in ("total_cost", "los"):
            dirty |= x < 0  # negative_cost / negative_los warnings
        elif name == "year":
            with np.errstate(invalid="ignore"):
                dirty |= np.isfinite(x) & (x != np.floor(x))  # a year is a whole number

    # implausible_* warnings come from intake
    dirty |= implausible_mask({name: fields[FIELDS.index(name)] for name in RANGES})
    enc = EncodedCases(
        n=n,
        pdx=pdx,
        sdx_off=sdx_off,
        sdx_val=sdx_val,
        pproc=pproc,
        oproc_off=op_off,
        oproc_val=op_val,
        fields=fields,
        present=present,
        malformed=np.zeros(n, dtype=np.uint8),
    )
    return enc.read_only(), dirty, grey


def _slices(df: pl.DataFrame, lists: list[str], chunk_rows: int) -> list[tuple[int, int]]:
    """Row slices of at most ``chunk_rows``, cut where the list columns' chunks end.

    A frame read from Parquet holds one chunk per row group; a slice inside
    one chunk needs no copy before encoding.  Runs of small chunks are
    merged (and copied) rather than encoded a few rows at a time.
    """
    n = df.height
    edges = {0, n}
    for c in lists:
        edges.update(np.cumsum(df.get_column(c).chunk_lengths()).tolist())
    cuts = sorted(edges)
    out: list[tuple[int, int]] = []
    start = 0
    for edge in cuts[1:]:
        while edge - start > chunk_rows:
            out.append((start, chunk_rows))
            start += chunk_rows
        if edge - start >= min(chunk_rows, 65_536) or edge == n:
            out.append((start, edge - start))
            start = edge
    return [s for s in out if s[1] > 0]


def group_direct(
    df: pl.DataFrame, scheme: Scheme, *, mapping: Mapping[str, str] | None = None, chunk_rows: int = 1_000_000
) -> pl.DataFrame | None:
    """Group a typed polars frame without building its canonical frame, or ``None``.

    Parameters
    ----------
    df
        Input cases in the caller's column names (resolved as
        :func:`casemix.cases.read_cases` resolves them, ``mapping`` first).
    scheme
        A loaded scheme.
    mapping
        Column mapping, as for ``read_cases``.
    chunk_rows
        Rows encoded at a time (bounds the intermediates).

    Returns
    -------
    polars.DataFrame or None
        The columns ``mdc`` … ``reason`` and ``warnings``, equal to
        ``group_frame(read_cases(df, mapping=mapping), scheme, warnings=True)``;
        ``None`` when the layout is not one this path takes (see the module
        docstring), before any work is done.

    Raises
    ------
    casemix.errors.InputError
        As ``read_cases`` does for a missing or mistyped column.
    """
    from casemix.cases import read_cases
    from casemix.drg import kernel
    from casemix.drg.compile import compile_scheme
    from casemix.drg.results import decode, encode_and_group, warnings_fast

    plan = resolve(df, mapping, ("pdx",))
    if not _eligible(df, plan):
        return None
    compiled = compile_scheme(scheme)
    n = df.height
    codes: tuple[np.ndarray, ...] | None = None
    # slices follow the chunks of list columns (a "|"-string column is read whole per slice)
    lists = [
        c
        for lay in (plan.dx, plan.proc)
        if lay is not None
        for c in (lay.others, lay.combined)
        if c is not None and df.schema[c] != pl.String
    ]
    dirty_rows, dirty_parts, grey_rows, grey_pdx, grey_pproc = [], [], [], [], []
    for start, length in _slices(df, lists, max(1, chunk_rows)):
        chunk = df.slice(start, length)
        if any(chunk.get_column(c).n_chunks() > 1 for c in lists):
            # encoding reads a list column as one Arrow array, and polars gathers
            # rows from a list column in several chunks slowly
            chunk = chunk.with_columns(chunk.get_column(c).rechunk() for c in lists)
        enc, dirty, grey = _encode_chunk(chunk, plan, scheme)
        part = kernel.run(enc, compiled)
        if codes is None:
            codes = tuple(np.empty(n, dtype=a.dtype) for a in part)
        for whole, piece in zip(codes, part, strict=True):
            whole[start : start + chunk.height] = piece
        local = np.flatnonzero(dirty)
        dirty_rows.append(local + start)
        dirty_parts.append(chunk[local])
        local = np.flatnonzero(grey & ~dirty)
        grey_rows.append(local + start)
        grey_pdx.append(enc.pdx[local])
        grey_pproc.append(enc.pproc[local])
    if codes is None:  # no rows: the canonical path gives the typed empty result
        return None
    warnings = pl.repeat("", n, dtype=pl.String, eager=True).alias("warnings")
    rows = np.concatenate(grey_rows)
    if rows.size:
        text = _grey_warnings(scheme, np.concatenate(grey_pdx), np.concatenate(grey_pproc))
        warnings = warnings.scatter(rows, text)
    rows = np.concatenate(dirty_rows)
    if rows.size:
        canonical = read_cases(pl.concat(dirty_parts), mapping=mapping)
        sub_codes, enc = encode_and_group(canonical, scheme, compiled)
        for whole, piece in zip(codes, sub_codes, strict=True):
            whole[rows] = piece
        warnings = warnings.scatter(rows, warnings_fast(canonical, enc, scheme))
    return decode(codes, compiled).with_columns(warnings)


def _grey_warnings(scheme: Scheme, pdx: np.ndarray, pproc: np.ndarray) -> pl.Series:
    """The ``warnings`` of clean rows with a grey principal code, from their ids.

    A clean row's codes are its canonical codes, so this is what
    ``warnings_fast`` formats for it: ``grey_pdx:<code>`` then
    ``grey_pproc:<code>``, for those that are grey.
    """
    from casemix.drg.findings import SEPARATOR

    codes = code_index(scheme).codes
    flags = grey_ids(scheme)
    parts = []
    for target, ids in (("pdx", pdx), ("pproc", pproc)):
        if target in flags:
            is_grey = pl.Series(flags[target][ids])
            named = codes.gather(np.where(is_grey.to_numpy(), ids, 0))
            parts.append(pl.when(is_grey).then(pl.lit(f"grey_{target}:") + named))
    return pl.select(pl.concat_str(parts, separator=SEPARATOR, ignore_nulls=True)).to_series()
