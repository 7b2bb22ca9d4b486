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

import threading
import weakref
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import polars as pl

from casemix._threads import threads
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


def clean_ids(scheme: Scheme) -> tuple[np.ndarray, np.ndarray]:
    """Per code id: whether a raw code with this id is a clean diagnosis / procedure.

    A code qualifies when it is in the scheme's dictionary of that kind and
    intake's clean-up (``casemix.cases._normalise``) leaves it unchanged; a
    scheme listing a code in a form intake would rewrite (lower case, spaces)
    keeps such rows on the canonical path.  Each array has one extra
    ``False`` at the end, so that id ``-1`` (unknown) indexes it.
    """
    index = code_index(scheme)
    fixed = _fixed_ids(scheme)[:-1]
    return np.append(index.is_diagnosis & fixed, False), np.append(index.is_procedure & fixed, False)


def _fixed_ids(scheme: Scheme) -> np.ndarray:
    """Per code id: whether intake's clean-up leaves the code as it is (one extra ``True`` for ``-1``)."""
    cached = _FIXED_CACHE.get(scheme)
    if cached is not None:
        return cached
    from casemix.cases import _normalise as N

    codes = code_index(scheme).codes
    fixed = (
        pl.DataFrame({"c": codes})
        .select(N.nonempty(N.code_chain(N.fold(pl.col("c")))).eq_missing(pl.col("c")))
        .to_series()
        .to_numpy()
    )
    out = np.append(fixed, True)
    _FIXED_CACHE[scheme] = out
    return out


_FIXED_CACHE: weakref.WeakKeyDictionary[Scheme, np.ndarray] = weakref.WeakKeyDictionary()


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


class _Family(NamedTuple):
    """The ids of one code family (diagnoses or procedures) of a slice of rows."""

    #: principal code ids (``-2`` absent)
    first: np.ndarray
    #: the other codes, CSR
    off: np.ndarray
    val: np.ndarray
    #: the ``|``-string the other codes (and, when ``first_joined``, the principal) were split from
    texts: pl.Series | None = None
    #: whether the principal code is the first code of ``texts`` (a combined column)
    first_joined: bool = False
    #: rows the split kernel leaves to intake (non-ASCII text, a code it cannot read as intake does)
    for_intake: np.ndarray | None = None
    #: the principal code column, when the split kernel read it (as a text of one code)
    first_texts: pl.Series | None = None


def _family(df: pl.DataFrame, layout: CodeLayout | None, index: CodeIndex) -> _Family:
    """Ids of one code family: the principal codes and the other codes (CSR).

    A ``|``-string is split and looked up in one pass
    (:func:`casemix.encode.encode_joined`), reading blank codes, white space
    and the letter case of plain codes as intake does; a null or empty text
    has no codes.  Intake first folds a text with a non-ASCII character
    (NFKC: a full-width ``｜`` separates too), so such rows are left to it,
    as are rows with a code the kernel cannot read as intake does.
    """
    n = df.height
    if layout is None:
        return _Family(np.full(n, ABSENT, dtype=np.int32), *_no_lists(n))
    schema = df.schema

    def principal(codes: pl.Series) -> np.ndarray:
        ids = encode_codes(codes, index)  # null and "" are unknown (-1) here: "" must be reported
        return np.where(codes.is_null().to_numpy(), np.int32(ABSENT), ids) if codes.null_count() else ids

    if layout.kind == "combined" and layout.combined is not None:
        codes = df.get_column(layout.combined)
        if schema[layout.combined] == pl.String:
            first, off, val, flags = encode_joined(codes, index, True)
            return _Family(first, off, val, codes, True, (flags & _FOR_INTAKE) != 0)
        return _Family(principal(codes.list.first()), *encode_list(codes.list.slice(1), index))
    joined = layout.others is not None and schema[layout.others] == pl.String
    pdx = np.full(n, ABSENT, dtype=np.int32)
    first_texts = for_intake = None
    if layout.principal is not None and schema[layout.principal] != pl.Null:
        first_texts = df.get_column(layout.principal)
        if joined:
            # the |-string kernel reads the principal codes too (one kernel to compile, and
            # intake's reading of case and padding); a "|" in a principal code is intake's to read
            pdx, off, _, flags = encode_joined(first_texts, index, True)
            for_intake = (flags != 0) | (off[1:] > off[:-1])
        else:
            pdx, first_texts = principal(first_texts), None
    if layout.others is None:
        return _Family(pdx, *_no_lists(n))
    others = df.get_column(layout.others)
    if joined:
        _, off, val, flags = encode_joined(others, index, False)
        intake = (flags & _FOR_INTAKE) != 0
        return _Family(
            pdx, off, val, others, False, intake if for_intake is None else intake | for_intake, first_texts
        )
    return _Family(pdx, *encode_list(others, index))


#: split-kernel flags that send a row to intake (non-ASCII text, a code read otherwise)
_FOR_INTAKE = 1 | 2


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
            x = s.cast(pl.Float64, strict=False).to_numpy(writable=True)  # null → NaN
            flags = np.isinf(x)  # "inf": malformed
            x[flags] = np.nan
            # a NaN is a text polars does not read as a number, or "nan": intake reads those
            missing = np.isnan(x)
            if s.null_count():
                missing &= s.is_not_null().to_numpy()
            slow = np.flatnonzero(missing)
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


def _sort_codes(
    fam: _Family, ok: np.ndarray, fixed: np.ndarray, diagnoses: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Rows intake must read, and rows to report a code of (unknown, or not of this kind).

    ``ok`` (per id, ``-1`` last) is a clean code of this kind.  A code split
    from a ``|``-string that is not ``ok`` is intake's code too, unless it
    is a scheme code that intake would write otherwise (not ``fixed``): the
    row keeps the direct path and gets the ``unknown_*`` warning intake's
    path gives (:func:`_code_warnings`).  Elsewhere a code not ``ok`` sends
    its row to intake.
    """
    from casemix.drg.kernel import rows_with_bad_code

    p = fam.first
    present = p != ABSENT
    bad_first = ~ok[p] & present  # ok[-2] is some real code's flag: masked by present
    dirty = np.zeros(p.shape[0], dtype=bool)
    if diagnoses:  # no principal diagnosis but other diagnoses: intake's missing_pdx warning
        dirty |= ~present & (fam.off[1:] > fam.off[:-1])
    report = np.zeros(p.shape[0], dtype=bool)
    if fam.first_joined or fam.first_texts is not None:
        dirty |= bad_first & (p >= 0) & ~fixed[p]
        report |= bad_first
    else:
        dirty |= bad_first
    bad = rows_with_bad_code(fam.off, fam.val, ok)
    if fam.texts is None:
        dirty |= bad
    else:
        rows = np.flatnonzero(bad)
        owner, ids = _csr_gather(fam.off, fam.val, rows)
        unfixed = np.zeros(rows.shape[0], dtype=bool)
        np.logical_or.at(unfixed, owner, (ids >= 0) & ~fixed[ids])
        dirty[rows[unfixed]] = True
        report |= bad
    if fam.for_intake is not None:
        dirty |= fam.for_intake
    return dirty, report & ~dirty


def _csr_gather(off: np.ndarray, val: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The codes of CSR rows ``rows``, flat: (position in ``rows`` of each, its id)."""
    lengths = off[rows + 1] - off[rows]
    owner = np.repeat(np.arange(rows.shape[0]), lengths)
    within = np.arange(owner.shape[0]) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return owner, val[off[rows][owner] + within]


def _encode_chunk(
    df: pl.DataFrame, plan: Plan, scheme: Scheme
) -> tuple[EncodedCases, np.ndarray, np.ndarray, tuple[_Family, _Family]]:
    """Kernel arrays for the rows of ``df`` as they are, which rows are not clean, which
    clean rows get a warning (an unknown code, a grey principal code), and the two families."""
    index = code_index(scheme)
    ok_dx, ok_px = clean_ids(scheme)
    fixed = _fixed_ids(scheme)
    n = df.height
    dx = _family(df, plan.dx, index)
    px = _family(df, plan.proc, index)
    dirty, report = _sort_codes(dx, ok_dx, fixed, True)
    px_dirty, px_report = _sort_codes(px, ok_px, fixed, False)
    dirty |= px_dirty
    report |= px_report
    flags = grey_ids(scheme)
    for target, ids in (("pdx", dx.first), ("pproc", px.first)):
        if target in flags:
            report |= flags[target][ids]

    texts, malformed = _texts(df, plan)
    if malformed is not None:
        dirty |= malformed
    fields = np.empty((len(FIELDS), n), dtype=np.float64)
    present = np.empty((len(FIELDS), n), dtype=np.uint8)
    absent = set(FIELDS)
    for name in NUMERIC_FIELDS:
        x = _numbers(df, plan, name, texts)
        if x is None:
            continue
        if name in FIELDS:
            fields[FIELDS.index(name)] = x
            np.isfinite(x, out=present[FIELDS.index(name)].view(bool))
            absent.discard(name)
        dirty |= np.isinf(x)  # intake nulls it and reports it malformed
        if name in ("total_cost", "los"):
            dirty |= x < 0  # negative_cost / negative_los warnings
        elif name == "year":
            with np.errstate(invalid="ignore"):
                dirty |= np.isfinite(x) & (x != np.floor(x))  # a year is a whole number

    for name in absent:
        fields[FIELDS.index(name)] = np.nan
        present[FIELDS.index(name)] = 0
    # implausible_* warnings come from intake
    dirty |= implausible_mask({name: fields[FIELDS.index(name)] for name in RANGES})
    enc = EncodedCases(
        n=n,
        pdx=dx.first,
        sdx_off=dx.off,
        sdx_val=dx.val,
        pproc=px.first,
        oproc_off=px.off,
        oproc_val=px.val,
        fields=fields,
        present=present,
        malformed=np.zeros(n, dtype=np.uint8),
    )
    return enc.read_only(), dirty, report & ~dirty, (dx, px)


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


#: slices encoded at once (:func:`group_direct`), and the fewest rows a frame is cut into two for it
SLICES_AT_ONCE = 2
MIN_SLICE_ROWS = 65_536


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
        Rows encoded at a time (bounds the intermediates).  They are
        :data:`SLICES_AT_ONCE` slices of ``chunk_rows // SLICES_AT_ONCE``
        rows encoded side by side on their own threads (fewer when numba is
        limited to fewer threads, and one at a time when called from a
        thread other than the main one, as ``group_parquet`` groups its
        batches); a frame of more than :data:`MIN_SLICE_ROWS` rows is cut
        into that many slices at least.

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
    import numba

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
    clean_ids(scheme), grey_ids(scheme)  # the scheme's tables, once, before the threads

    def encode(start: int, length: int) -> tuple:
        chunk = df.slice(start, length)
        if any(chunk.get_column(c).n_chunks() > 1 for c in lists):
            # encoding reads a list column as one Arrow array, and polars gathers
            # rows from a list column in several chunks slowly
            chunk = chunk.with_columns(chunk.get_column(c).rechunk() for c in lists)
        enc, dirty, report, families = _encode_chunk(chunk, plan, scheme)
        part = kernel.run(enc, compiled)
        local = np.flatnonzero(dirty)
        shown = np.flatnonzero(report)
        text = _code_warnings(scheme, shown, *families) if shown.size else None
        return start, chunk.height, part, local, chunk[local], shown, text

    # a caller on a thread of its own (group_parquet and group_csv group two batches at once)
    # already keeps both cores busy: its batches are encoded one slice at a time
    main = threading.current_thread() is threading.main_thread()
    at_once = max(1, min(SLICES_AT_ONCE, threads())) if main else 1
    # as many rows in flight as one slice of chunk_rows had been (the same peak memory)
    size = max(1, min(chunk_rows // at_once, max(MIN_SLICE_ROWS, -(-n // at_once))))
    slices = _slices(df, lists, size)
    dirty_rows, dirty_parts, report_rows, report_text = [], [], [], []
    # numba.set_num_threads is per thread: the caller's setting goes to the slice threads
    with ThreadPoolExecutor(at_once, initializer=numba.set_num_threads, initargs=(threads(),)) as pool:
        # two slices at once: the Python, numpy and polars steps of one slice (a quarter of
        # its CPU time, mostly on one core) run beside the other slice's steps or kernels,
        # so that one large chunk keeps both cores busy from start to end
        many = at_once > 1 and len(slices) > 1
        done = pool.map(lambda s: encode(*s), slices) if many else (encode(*s) for s in slices)
        for start, height, part, local, dirty_part, shown, text in done:
            if height == n:
                codes = part  # one slice: nothing to copy
            else:
                if codes is None:
                    codes = tuple(np.empty(n, dtype=a.dtype) for a in part)
                for whole, piece in zip(codes, part, strict=True):
                    whole[start : start + height] = piece
            dirty_rows.append(local + start)
            dirty_parts.append(dirty_part)
            if text is not None:
                report_rows.append(shown + start)
                report_text.append(text)
    if codes is None:  # no rows: the canonical path gives the typed empty result
        return None
    warnings = pl.repeat("", n, dtype=pl.String, eager=True).alias("warnings")
    if report_rows:
        warnings = warnings.scatter(np.concatenate(report_rows), pl.concat(report_text))
    rows = np.concatenate(dirty_rows)
    if rows.size:
        canonical = read_cases(pl.concat(dirty_parts), mapping=mapping)
        sub_codes, enc = encode_and_group(canonical, scheme, compiled)
        for whole, piece in zip(codes, sub_codes, strict=True):
            whole[rows] = piece
        warnings = warnings.scatter(rows, warnings_fast(canonical, enc, scheme))
    return decode(codes, compiled).with_columns(warnings)


#: the ``warnings`` entries of a clean row, in ``casemix.drg.results.warnings_fast``'s order
_LABELS = ("unknown_pdx", "unknown_sdx", "unknown_proc", "grey_pdx", "grey_pproc")


def _code_warnings(scheme: Scheme, rows: np.ndarray, dx: _Family, px: _Family) -> pl.Series:
    """The ``warnings`` of clean rows ``rows`` (of the slice ``dx`` and ``px`` were encoded from).

    A clean row's ids are its canonical ids, so this is what ``warnings_fast``
    formats on intake's path: ``unknown_pdx:``, ``unknown_sdx:`` and
    ``unknown_proc:`` for each code not in the dictionary of its kind, in
    the order of the codes, then ``grey_pdx:`` / ``grey_pproc:`` for a grey
    principal code.  A code with an id is written as the scheme writes it;
    an unknown one (``-1``, only ever split from a ``|``-string in a clean
    row) is its piece of the text read by intake's own clean-up.
    """
    from casemix.cases import _normalise as N
    from casemix.drg.findings import SEPARATOR

    index = code_index(scheme)
    grey = grey_ids(scheme)
    parts: list[dict[str, np.ndarray]] = []  # one per kind of entry: row, label, order, id, piece
    unknown_text: list[pl.DataFrame] = []

    def add(label: int, owner: np.ndarray, order: np.ndarray, ids: np.ndarray, texts, piece) -> None:
        parts.append({"row": owner, "label": np.full(owner.shape[0], label), "order": order, "id": ids})
        missing = ids < 0
        if missing.any():
            assert texts is not None  # a clean row's -1 was read by the split kernel from its text
            unknown_text.append(
                pl.DataFrame(
                    {
                        "row": owner[missing],
                        "label": np.full(int(missing.sum()), label),
                        "order": order[missing],
                        "text": texts.gather(rows[owner[missing]]),
                        "piece": piece[missing],
                    }
                )
            )

    for fam, kind, first_label, other_label in (
        (dx, index.is_diagnosis, 0, 1),
        (px, index.is_procedure, 2, 2),
    ):
        ok = np.append(kind, False)
        first = fam.first[rows]
        present = first != ABSENT
        sel = np.flatnonzero(present & ~ok[first])
        add(
            first_label,
            sel,
            np.zeros(sel.shape[0], dtype=np.int64),
            first[sel],
            fam.texts if fam.first_texts is None else fam.first_texts,
            np.zeros(sel.shape[0], dtype=np.int64),
        )
        owner, ids = _csr_gather(fam.off, fam.val, rows)
        # the k-th other code is the k-th non-blank piece of the text after the principal's
        lengths = fam.off[rows + 1] - fam.off[rows]
        k = np.arange(owner.shape[0]) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        piece = k + (present[owner] if fam.first_joined else 0)
        sel = np.flatnonzero(~ok[ids])
        add(other_label, owner[sel], 1 + k[sel], ids[sel], fam.texts, piece[sel])
    for label, target, fam in ((3, "pdx", dx), (4, "pproc", px)):
        if target in grey:
            sel = np.flatnonzero(grey[target][fam.first[rows]])
            add(label, sel, np.zeros(sel.shape[0], dtype=np.int64), fam.first[rows][sel], None, sel)
    entries = pl.DataFrame(
        {c: np.concatenate([p[c] for p in parts]) for c in ("row", "label", "order", "id")}
    )
    entries = entries.filter(pl.col("id") >= 0).select(
        "row", "label", "order", index.codes.gather(entries.filter(pl.col("id") >= 0)["id"]).alias("code")
    )
    if unknown_text:
        # the code as intake writes it: the piece of the text, trimmed, through intake's clean-up
        pieces = pl.concat(unknown_text).select(
            "row",
            "label",
            "order",
            N.code_chain(
                N.fold(
                    pl.col("text")
                    .str.split("|")
                    .list.eval(pl.element().filter(pl.element().str.strip_chars().str.len_bytes() > 0))
                    .list.get(pl.col("piece"))
                )
            ).alias("code"),
        )
        entries = pl.concat([entries, pieces])
    names = pl.Series(_LABELS).gather(entries["label"].cast(pl.UInt32))
    text = (
        entries.with_columns((names + ":" + pl.col("code")).alias("entry"))
        .sort("row", "label", "order")
        .group_by("row", maintain_order=True)
        .agg(pl.col("entry").str.join(SEPARATOR))
    )
    # a Python list of n strings would hold the GIL for 6 ms per 262,144 rows
    out = pl.repeat("", rows.shape[0], dtype=pl.String, eager=True).alias("warnings")
    return out.scatter(text["row"], text["entry"])
