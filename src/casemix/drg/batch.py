"""The batch engine: encode → numba kernel → decode, in memory or streaming.

``group_frame`` is what ``casemix.group(..., engine="batch")`` calls;
``group_parquet`` groups a Parquet file of any size into another Parquet
file in batches, with bounded memory and a progress bar.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from casemix.drg.compile import SEVERITY_TABLE, CompiledScheme, compile_scheme
from casemix.encode import EncodedCases, code_index, encode_cases, grey_ids
from casemix.scheme import DEFAULT_SCHEME, Scheme, load_scheme

__all__ = ["group_frame", "group_input", "group_parquet", "decode", "warnings_fast", "RESULT_NAMES"]

#: the six columns ``group_frame`` returns, in order
RESULT_NAMES = ("mdc", "adrg", "drg", "severity", "status", "reason")


def _column(name: str, table: tuple[str, ...], idx: np.ndarray) -> pl.Series:
    # gathering from a small String series builds views, not new strings
    return pl.Series(name, table, dtype=pl.String).gather(idx)


def decode(codes: tuple[np.ndarray, ...], compiled: CompiledScheme) -> pl.DataFrame:
    """Kernel integer outputs → the six String result columns."""
    mdc, adrg, drg, sev, status, reason = codes
    return pl.DataFrame([
        _column("mdc", compiled.mdc_codes, mdc),
        _column("adrg", compiled.adrg_codes, adrg),
        _column("drg", compiled.drg_codes, drg),
        _column("severity", SEVERITY_TABLE, sev),
        _column("status", compiled.statuses, status),
        _column("reason", compiled.reasons, reason),
    ])


def warnings_fast(canonical: pl.DataFrame, enc: EncodedCases, scheme: Scheme) -> pl.Series:
    """The ``warnings`` column, equal to ``casemix.drg.findings.warnings_column``, fast.

    The encoded ids tell which rows have a code outside the
    scheme's dictionaries (or a null/empty code) or a grey principal code;
    only those rows, and rows with intake warnings, are formatted by polars;
    every other row is ``""``.
    """
    from casemix.drg.findings import SEPARATOR
    from casemix.drg.kernel import rows_with_bad_code

    index = code_index(scheme)
    n = enc.n
    dx_ok = np.append(index.is_diagnosis, False)   # id -1 → the appended False
    px_ok = np.append(index.is_procedure, False)

    def bad(ids: np.ndarray, ok: np.ndarray) -> np.ndarray:
        return ~ok[np.where(ids >= 0, ids, -1)]

    flagged = (bad(enc.pdx, dx_ok) & (enc.pdx != -2)) | (bad(enc.pproc, px_ok) & (enc.pproc != -2))
    flagged |= rows_with_bad_code(enc.sdx_off, enc.sdx_val, dx_ok)
    flagged |= rows_with_bad_code(enc.oproc_off, enc.oproc_val, px_ok)
    grey = grey_ids(scheme)
    for target, ids in (("pdx", enc.pdx), ("pproc", enc.pproc)):
        if target in grey:
            flagged |= grey[target][ids]
    # an empty principal code is absent for grouping but reported as unknown
    for col in ("pdx", "pproc"):
        flagged |= (canonical[col] == "").fill_null(False).to_numpy()
    if "intake_warnings" in canonical.columns:
        flagged |= canonical["intake_warnings"].list.len().fill_null(0).to_numpy() > 0
    out = pl.repeat("", n, dtype=pl.String, eager=True).alias("warnings")
    rows = np.flatnonzero(flagged)
    if rows.size == 0:
        return out
    sub = canonical[rows]
    dx_enum = pl.Enum(index.codes.filter(pl.Series(index.is_diagnosis)))
    px_enum = pl.Enum(index.codes.filter(pl.Series(index.is_procedure)))

    def unknown(expr: pl.Expr, enum: pl.Enum, label: str) -> pl.Expr:
        # an Enum cast is a hash lookup; is_in inside list.eval copies the dictionary per row
        return expr.list.eval(pl.lit(label + ":") + pl.element().filter(
            pl.element().cast(enum, strict=False).is_null()))

    pdx_list = pl.concat_list(pl.col("pdx")).list.drop_nulls()
    pproc_list = pl.concat_list(pl.col("pproc")).list.drop_nulls()
    def grey_of(expr: pl.Expr, target: str) -> list[pl.Expr]:
        if target not in grey:
            return []
        enum = pl.Enum(sorted(scheme.lists[scheme.grey[target]]))
        return [expr.list.eval(pl.lit(f"grey_{target}:") + pl.element().filter(
            pl.element().cast(enum, strict=False).is_not_null()))]

    iw = (pl.col("intake_warnings") if "intake_warnings" in sub.columns
          else pl.lit([], dtype=pl.List(pl.String)))
    text = sub.select(pl.concat_list(
        iw, unknown(pdx_list, dx_enum, "unknown_pdx"), unknown(pl.col("sdx"), dx_enum, "unknown_sdx"),
        unknown(pl.concat_list(pproc_list, pl.col("oproc")), px_enum, "unknown_proc"),
        *grey_of(pdx_list, "pdx"), *grey_of(pproc_list, "pproc"),
    ).list.join(SEPARATOR).fill_null("")).to_series()
    return out.scatter(rows, text)


#: rows grouped at a time inside ``group_frame``: bounds the encoded intermediates
#: (about 60 bytes per case) without costing speed
CHUNK_ROWS = 1_000_000


def encode_and_group(canonical: pl.DataFrame, scheme: Scheme, compiled: CompiledScheme
                     ) -> tuple[tuple[np.ndarray, ...], EncodedCases]:
    """Kernel integer outputs for a canonical frame, and its encoded arrays."""
    from casemix.drg import kernel

    enc = encode_cases(canonical, scheme, compiled.malformed_fields)
    return kernel.run(enc, compiled), enc


def group_frame(canonical: pl.DataFrame, scheme: Scheme, *, warnings: bool = False,
                chunk_rows: int = CHUNK_ROWS) -> pl.DataFrame:
    """Group a canonical case frame with the numba kernel.

    Parameters
    ----------
    canonical
        A frame as :func:`casemix.cases.read_cases` returns it (at least
        ``pdx``, ``sdx``, ``pproc``, ``oproc``, the numeric fields and,
        optionally, ``malformed`` and ``intake_warnings``).
    scheme
        A loaded scheme.
    warnings
        Also add the ``warnings`` column (:func:`warnings_fast`, equal to
        ``casemix.drg.findings.warnings_column`` but reusing the encoded ids).
    chunk_rows
        Rows encoded and grouped at a time (memory of the intermediates).

    Returns
    -------
    polars.DataFrame
        String columns ``mdc``, ``adrg``, ``drg``, ``severity``, ``status``,
        ``reason`` (and ``warnings``), one row per case, equal to what the
        reference grouper (``casemix.drg.reference_frame``) returns.
    """
    compiled = compile_scheme(scheme)
    parts = []
    for start in range(0, max(canonical.height, 1), max(1, chunk_rows)):
        chunk = canonical.slice(start, chunk_rows)
        codes, enc = encode_and_group(chunk, scheme, compiled)
        result = decode(codes, compiled)
        if warnings:
            result = result.with_columns(warnings_fast(chunk, enc, scheme))
        parts.append(result)
    return parts[0] if len(parts) == 1 else pl.concat(parts, rechunk=False)


def group_input(frame: pl.DataFrame, scheme: Scheme, *,
                mapping: dict[str, str] | None = None) -> pl.DataFrame:
    """The seven result columns for an input frame in the caller's column names.

    Typed input takes the direct path (``casemix.drg.direct``, which skips
    the canonical frame for clean rows); any other layout goes through
    :func:`casemix.cases.read_cases` and :func:`group_frame`.  Both give the
    same answer.
    """
    from casemix.cases import read_cases
    from casemix.drg.direct import group_direct

    result = group_direct(frame, scheme, mapping=mapping)
    if result is None:
        result = group_frame(read_cases(frame, mapping=mapping), scheme, warnings=True)
    return result


# -- streaming ------------------------------------------------------------------------

def _progress(total: int, enabled: bool):
    """A rich progress bar, or None when disabled or not on a terminal."""
    if not enabled or not sys.stderr.isatty():
        return None
    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn("grouping"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                   transient=False)
    bar.start()
    bar.add_task("group", total=total, rate="")
    return bar


def _batch_ranges(row_groups: list[int], batch_size: int) -> list[tuple[int, int]]:
    """(offset, rows) per batch: whole row groups merged up to ``batch_size``.

    A batch never cuts a row group it could hold whole, so no row group is
    decoded twice; a row group larger than ``batch_size`` is cut in equal parts.
    """
    out: list[tuple[int, int]] = []
    offset = pending = 0
    for size in row_groups:
        if pending and pending + size > batch_size:
            out.append((offset - pending, pending))
            pending = 0
        if size > batch_size:
            parts = -(-size // batch_size)
            step = -(-size // parts)
            out += [(offset + k, min(step, size - k)) for k in range(0, size, step)]
        else:
            pending += size
        offset += size
    if pending:
        out.append((offset - pending, pending))
    return out


def group_parquet(src: str | Path, dst: str | Path, scheme: str | Path | Scheme = DEFAULT_SCHEME,
                  *, batch_size: int = 262_144, progress: bool = True,
                  mapping: dict[str, str] | None = None,
                  keep: str | Sequence[str] = "all") -> dict:
    """Group a Parquet file into another Parquet file, one batch at a time.

    Memory stays bounded by the batch size: batches of whole row groups are
    read with polars, grouped as :func:`casemix.group` groups a frame, and
    appended with a ``pyarrow.parquet.ParquetWriter``.  Reading the next
    batch and writing the last one run in threads beside the grouping (both
    release the GIL), so at most three batches are in memory at once.

    Parameters
    ----------
    src, dst
        Input and output Parquet paths (``dst`` is overwritten).
    scheme
        Scheme name, folder or loaded scheme.
    batch_size
        Rows per batch, at most (row groups are not split unless larger).
    progress
        Show a progress bar on a terminal (never when stderr is not a tty).
    mapping
        Column mapping passed to :func:`casemix.cases.read_cases`.
    keep
        Input columns copied to the output: ``"all"`` (default), ``"none"``,
        or a list of names (e.g. ``["case_id", "hospital_id"]``).  Writing
        the input's code lists again is most of the cost of this function;
        keeping a key to join on is several times cheaper.

    Returns
    -------
    dict
        ``rows``, ``batches``, ``grouped`` (cases with a group) and ``seconds``.

    Warns
    -----
    casemix.errors.LowGroupingRateWarning
        When fewer than half of the cases find a group (as :func:`casemix.group`).

    The output has the kept input columns, unchanged and in order, followed
    by ``mdc``, ``adrg``, ``drg``, ``severity``, ``status``, ``reason`` and
    ``warnings``, as :func:`casemix.group` returns them.  Column statistics
    are written for every column except lists (min/max of a code list helps
    no reader and costs a quarter of their writing time).
    """
    import pyarrow.parquet as pq

    from casemix.errors import InputError

    if batch_size < 1:
        raise InputError(f"batch_size must be a positive number of rows, not {batch_size}")
    sch = load_scheme(scheme)
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise InputError(f"input file not found: {src}")
    started = time.perf_counter()
    if src.stat().st_size == 0:
        raise InputError(f"{src}: file is empty (0 bytes)")
    try:
        meta = pq.ParquetFile(src).metadata
    except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        raise InputError(f"{src}: cannot be read as Parquet: {str(exc).strip()}") from None
    total = meta.num_rows
    ranges = _batch_ranges([meta.row_group(i).num_rows for i in range(meta.num_row_groups)],
                           batch_size)
    lazy = pl.scan_parquet(src)
    names = lazy.collect_schema().names()
    if keep == "all":
        kept = names
    elif keep == "none":
        kept = []
    else:
        kept = [keep] if isinstance(keep, str) else list(keep)
        missing = [c for c in kept if c not in names]
        if missing:
            raise InputError(f"keep names columns not in {src.name}: {missing}; it has {names}")

    def read(rng: tuple[int, int] | None) -> pl.DataFrame | None:
        return None if rng is None else lazy.slice(*rng).collect()

    ok_status = sch.status["grouped"]

    def grouped(frame: pl.DataFrame):
        result = group_input(frame, sch, mapping=mapping)
        out = pl.concat([frame.select(kept), result], how="horizontal")
        return out.to_arrow(compat_level=pl.CompatLevel.newest()), int((result["status"] == ok_status).sum())

    bar = _progress(total, progress)
    writer = None
    rows = batches = n_grouped = 0
    io = ThreadPoolExecutor(max_workers=2)
    pending_write = None
    queue = iter([*ranges, None])
    try:
        next_read = io.submit(read, next(queue))
        while True:
            frame = next_read.result()
            if frame is None:
                break
            next_read = io.submit(read, next(queue))
            out, n_ok = grouped(frame)
            n_grouped += n_ok
            if writer is None:
                stats = [f.name for f in out.schema if not _is_list(f.type)]
                writer = pq.ParquetWriter(dst, out.schema, write_statistics=stats)
            if pending_write is not None:
                pending_write.result()
            pending_write = io.submit(writer.write_table, out)
            rows += frame.height
            batches += 1
            if bar is not None:
                rate = rows / max(time.perf_counter() - started, 1e-9)
                bar.update(bar.task_ids[0], completed=rows, rate=f"{rate:,.0f} cases/s")
        if pending_write is not None:
            pending_write.result()
        if writer is None:  # an empty file still gets its (empty) output
            out, _ = grouped(lazy.head(0).collect())
            writer = pq.ParquetWriter(dst, out.schema)
            writer.write_table(out)
    finally:
        io.shutdown(wait=True)
        if writer is not None:
            writer.close()
        if bar is not None:
            bar.stop()
    if n_grouped < rows / 2:
        from casemix.drg import warn_if_low_rate

        # read back only when the warning is due: the output has the columns it needs
        warn_if_low_rate(pl.read_parquet(dst, columns=["status", "warnings"]), sch)
    return {"rows": rows, "batches": batches, "grouped": n_grouped,
            "seconds": time.perf_counter() - started}


def _is_list(t) -> bool:
    import pyarrow as pa

    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t) \
        or pa.types.is_large_list_view(t)
