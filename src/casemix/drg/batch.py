"""The batch engine: encode → numba kernel → decode, in memory or streaming.

``group_frame`` is what ``casemix.group(..., engine="batch")`` calls;
``group_parquet`` groups a Parquet file of any size into another Parquet
file in batches, with bounded memory and a progress bar.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from casemix.drg.compile import SEVERITY_TABLE, CompiledScheme, compile_scheme
from casemix.encode import encode_cases
from casemix.scheme import DEFAULT_SCHEME, Scheme, load_scheme

__all__ = ["group_frame", "group_parquet", "decode", "RESULT_NAMES"]

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


def group_frame(canonical: pl.DataFrame, scheme: Scheme) -> pl.DataFrame:
    """Group a canonical case frame with the numba kernel.

    Parameters
    ----------
    canonical
        A frame as :func:`casemix.cases.read_cases` returns it (at least
        ``pdx``, ``sdx``, ``pproc``, ``oproc``, the numeric fields and,
        optionally, ``malformed``).
    scheme
        A loaded scheme.

    Returns
    -------
    polars.DataFrame
        String columns ``mdc``, ``adrg``, ``drg``, ``severity``, ``status``,
        ``reason``, one row per case, equal to what the reference grouper
        (``casemix.drg.reference_frame``) returns.
    """
    from casemix.drg import kernel

    compiled = compile_scheme(scheme)
    enc = encode_cases(canonical, scheme, compiled.malformed_fields)
    return decode(kernel.run(enc, compiled), compiled)


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


def group_parquet(src: str | Path, dst: str | Path, scheme: str | Path | Scheme = DEFAULT_SCHEME,
                  *, batch_size: int = 1_000_000, progress: bool = True,
                  mapping: dict[str, str] | None = None) -> dict:
    """Group a Parquet file into another Parquet file, one batch at a time.

    Memory stays bounded by the batch size: rows are read with
    ``pyarrow.parquet.ParquetFile.iter_batches``, read into the canonical
    frame (:func:`casemix.cases.read_cases`), grouped and appended with a
    ``ParquetWriter``.

    Parameters
    ----------
    src, dst
        Input and output Parquet paths (``dst`` is overwritten).
    scheme
        Scheme name, folder or loaded scheme.
    batch_size
        Rows per batch.
    progress
        Show a progress bar on a terminal (never when stderr is not a tty).
    mapping
        Column mapping passed to :func:`casemix.cases.read_cases`.

    Returns
    -------
    dict
        ``rows``, ``batches`` and ``seconds``.

    The output has the input columns, unchanged and in order, followed by
    ``mdc``, ``adrg``, ``drg``, ``severity``, ``status``, ``reason`` and
    ``warnings``, as :func:`casemix.group` returns them.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from casemix.cases import read_cases
    from casemix.drg.findings import warnings_column
    from casemix.errors import InputError

    if batch_size < 1:
        raise InputError(f"batch_size must be a positive number of rows, not {batch_size}")
    sch = load_scheme(scheme)
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise InputError(f"input file not found: {src}")
    started = time.perf_counter()
    reader = pq.ParquetFile(src)
    total = reader.metadata.num_rows
    bar = _progress(total, progress)
    writer = None
    rows = batches = 0
    try:
        for batch in reader.iter_batches(batch_size=batch_size):
            table = pa.Table.from_batches([batch])
            frame = pl.from_arrow(table)
            canonical = read_cases(frame, mapping=mapping)
            result = group_frame(canonical, sch).with_columns(warnings_column(canonical, sch))
            out = pa.Table.from_arrays(
                [*table.columns, *result.to_arrow().columns],
                names=[*table.column_names, *result.columns])
            if writer is None:
                writer = pq.ParquetWriter(dst, out.schema)
            writer.write_table(out)
            rows += batch.num_rows
            batches += 1
            if bar is not None:
                rate = rows / max(time.perf_counter() - started, 1e-9)
                bar.update(bar.task_ids[0], completed=rows, rate=f"{rate:,.0f} cases/s")
        if writer is None:  # an empty file still gets its (empty) output
            empty = pl.from_arrow(reader.schema_arrow.empty_table())
            canonical = read_cases(empty, mapping=mapping)
            result = group_frame(canonical, sch).with_columns(warnings_column(canonical, sch))
            table = reader.schema_arrow.empty_table()
            out = pa.Table.from_arrays([*table.columns, *result.to_arrow().columns],
                                       names=[*table.column_names, *result.columns])
            writer = pq.ParquetWriter(dst, out.schema)
            writer.write_table(out)
    finally:
        if writer is not None:
            writer.close()
        if bar is not None:
            bar.stop()
    return {"rows": rows, "batches": batches, "seconds": time.perf_counter() - started}
