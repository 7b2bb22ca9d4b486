"""The batch engine: encode → numba kernel → decode, in memory or streaming.

``group_frame`` is what ``casemix.group(..., engine="batch")`` calls;
``group_parquet`` groups a Parquet file of any size into another Parquet
file in batches, with bounded memory and a progress bar.
"""

from __future__ import annotations

import io
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import polars as pl

from casemix.drg.compile import compile_scheme
from casemix.drg.direct import group_direct

# the kernel-output helpers live in drg.results (shared with drg.direct, no import cycle)
from casemix.drg.results import RESULT_NAMES, decode, encode_and_group, warnings_fast
from casemix.scheme import DEFAULT_SCHEME, Scheme, load_scheme

if TYPE_CHECKING:
    from casemix._parquet import PartWriter

__all__ = [
    "group_csv",
    "group_frame",
    "group_input",
    "group_parquet",
    "group_table",
    "grouping_columns",
    "decode",
    "warnings_fast",
    "RESULT_NAMES",
]

#: rows grouped at a time inside ``group_frame``: bounds the encoded intermediates
#: (about 60 bytes per case) without costing speed
CHUNK_ROWS = 1_000_000


def group_frame(
    canonical: pl.DataFrame, scheme: Scheme, *, warnings: bool = False, chunk_rows: int = CHUNK_ROWS
) -> pl.DataFrame:
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


def group_input(
    frame: pl.DataFrame, scheme: Scheme, *, mapping: dict[str, str] | None = None
) -> pl.DataFrame:
    """The seven result columns for an input frame in the caller's column names.

    Typed input takes the direct path (``casemix.drg.direct``, which skips
    the canonical frame for clean rows); any other layout goes through
    :func:`casemix.cases.read_cases` and :func:`group_frame`.  Both give the
    same answer.
    """
    from casemix.cases import read_cases

    result = group_direct(frame, scheme, mapping=mapping)
    if result is None:
        result = group_frame(read_cases(frame, mapping=mapping), scheme, warnings=True)
    return result


def grouping_columns(frame: pl.DataFrame, mapping: dict[str, str] | None = None) -> list[str] | None:
    """The columns of ``frame`` its seven result columns depend on, in frame order.

    The code columns of the layout read (``docs/cases.md``), the numbers and
    dates intake reads (their faults are reported in ``warnings``) and the
    columns ``mapping`` names; identifiers (``case_id``, ``hospital_id``, …)
    and every other column pass through grouping untouched.  ``frame`` may be
    empty: only its schema is read.  ``None`` when resolving the columns
    fails: grouping the whole frame then raises the error itself.
    """
    from casemix.cases._resolve import DATE_FIELDS, NUMERIC_FIELDS, resolve
    from casemix.errors import InputError

    try:
        plan = resolve(frame, mapping, ("pdx",))
    except InputError:
        return None
    used = {c for name, c in plan.scalars.items() if name in NUMERIC_FIELDS or name in DATE_FIELDS}
    for layout in (plan.dx, plan.proc):
        used.update(layout.columns() if layout is not None else ())
    used.update(mapping or {})
    return [c for c in frame.columns if c in used]


def kept_columns(names: list[str], keep: str | Sequence[str], source: str) -> list[str]:
    """The input columns a ``keep`` argument copies to the output.

    ``"all"``: every one of ``names``; ``"none"``: none; a name or a list of
    names: those, in the order given.  Raises
    :class:`~casemix.errors.InputError` naming the ones ``source`` lacks.
    """
    from casemix.errors import InputError

    if keep == "all":
        return list(names)
    if keep == "none":
        return []
    kept = [keep] if isinstance(keep, str) else list(keep)
    missing = [c for c in kept if c not in names]
    if missing:
        raise InputError(f"keep names columns not in {source}: {missing}; it has {names}")
    return kept


def output_columns(kept: Sequence[str], results: Sequence[str]) -> list[str]:
    """The output's columns: the kept input columns, a result column named like one of them
    in its place, then the other result columns (what ``select(kept).with_columns(results)``
    gives a polars frame)."""
    return [*kept, *(c for c in results if c not in kept)]


# -- streaming ------------------------------------------------------------------------


def _progress(total: int, enabled: bool):
    """A rich progress bar, or None when disabled or not on a terminal."""
    if not enabled or not sys.stderr.isatty():
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("grouping"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )
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


def group_parquet(
    src: str | Path,
    dst: str | Path,
    scheme: str | Path | Scheme = DEFAULT_SCHEME,
    *,
    batch_size: int = 262_144,
    progress: bool = True,
    mapping: dict[str, str] | None = None,
    keep: str | Sequence[str] = "all",
    compression: str | None = None,
) -> dict:
    """Group a Parquet file into another Parquet file, in batches.

    Memory stays bounded by the batch size: batches of whole row groups are
    read with polars, grouped as :func:`casemix.group` groups a frame, and
    appended to the output in order.  Two batches are grouped at once on
    threads, and reading the next batch and writing the last one run in
    threads beside them (all release the GIL for most of their work), so at
    most five batches are in memory at once.

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
    compression
        Codec of the columns encoded here, one of
        :data:`casemix.io.PARQUET_CODECS` (``None``:
        :data:`casemix.io.PARQUET_COMPRESSION`); copied chunks keep theirs.

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
    ``warnings``, as :func:`casemix.group` returns them (a result column
    replaces an input column of its name where it stands).  When every row
    group fits in a batch, the kept columns are not decoded and encoded
    again: their column chunks are copied as bytes (``casemix._parquet``)
    and only the result columns are encoded (``compression``, dictionary
    pages, no min/max statistics: in case order they let no reader skip a
    row group).  Otherwise the kept columns are re-encoded, with statistics
    for every one except lists (min/max of a code list helps no reader and
    costs a quarter of their writing time).
    """
    import pyarrow.parquet as pq

    from casemix.errors import InputError
    from casemix.io import parquet_options

    codec = parquet_options(compression)
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
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    ranges = _batch_ranges(sizes, batch_size)
    lazy = pl.scan_parquet(src)
    names = lazy.collect_schema().names()
    kept = kept_columns(names, keep, src.name)
    # the kept columns' chunks are copied as bytes when every batch is whole row groups;
    # then only the columns grouping reads are decoded
    copy = _chunk_source(src, sizes, batch_size) if ranges else None
    if copy is not None:
        lazy = lazy.select(grouping_columns(lazy.head(0).collect(), mapping) or names)

    def read(rng: tuple[int, int] | None) -> pl.DataFrame | None:
        return None if rng is None else lazy.slice(*rng).collect()

    ok_status = sch.status["grouped"]

    def grouped(frame: pl.DataFrame, with_kept: bool):
        result = group_input(frame, sch, mapping=mapping)
        # a result column replaces an input column of its name where it stands, as casemix.group
        out = frame.select(kept).with_columns(result.get_columns()) if with_kept else result
        # copied columns keep their input types; re-encoded ones go as plain Arrow strings:
        # pyarrow's writer cannot cast a later batch's categorical of string views
        level = pl.CompatLevel.newest() if not with_kept else pl.CompatLevel.oldest()
        return out.to_arrow(compat_level=level), int((result["status"] == ok_status).sum())

    def open_writer(out):
        layout = output_columns(kept, out.column_names)
        return _Writer(dst, out.schema, copy, layout, sizes, codec)

    def empty():  # an empty file still gets its (empty) output
        out, _ = grouped(lazy.head(0).collect(), True)
        return out, _Writer(dst, out.schema, None, out.column_names, sizes, codec)

    rows, batches, n_grouped = _stream(
        read, ranges, lambda frame: grouped(frame, copy is None), open_writer, empty, total, progress, started
    )
    _warn_if_low_rate(dst, sch, rows, n_grouped)
    return {"rows": rows, "batches": batches, "grouped": n_grouped, "seconds": time.perf_counter() - started}


def group_table(
    frame: pl.DataFrame,
    dst: str | Path,
    scheme: str | Path | Scheme = DEFAULT_SCHEME,
    *,
    mapping: dict[str, str] | None = None,
    compression: str | None = None,
    keep: str | Sequence[str] = "all",
) -> dict:
    """Group a frame in memory (a CSV or Excel file read whole) into a Parquet file.

    What ``casemix group cases.csv -o out.parquet`` runs.  The output reads
    back as ``casemix.group(frame)``: the input columns followed by ``mdc``,
    ``adrg``, ``drg``, ``severity``, ``status``, ``reason`` and ``warnings``
    (a result column replaces an input column of its name where it stands).

    A frame of text columns (a CSV read as text) is grouped in one
    :func:`casemix.group` call, then encoded by pyarrow straight from
    polars' string views, row groups of 262,144 rows on as many threads as
    there are CPUs, and the row groups are joined into one file without
    encoding again (``casemix._parquet.concat_files``).  Its input columns get
    dictionary pages only when they have few distinct values in the first
    65,536 rows, and no min/max statistics (a case file's rows are in no
    order they would help a reader skip; they cost a fifth of the
    encoding); the result columns get dictionary pages and no statistics
    either.  Other frames are encoded by
    polars on a thread while the cases are grouped, and the result columns
    are added as chunks (``casemix._parquet.ChunkWriter``).  One codec
    throughout (``compression``, ``docs/files.md``).

    Parameters
    ----------
    frame
        The cases, in any layout :func:`casemix.group` accepts.
    dst
        Output Parquet path (overwritten).
    scheme
        Scheme name, folder or loaded scheme.
    mapping
        Column mapping passed to :func:`casemix.cases.read_cases`.
    compression
        Parquet codec, one of :data:`casemix.io.PARQUET_CODECS` (``None``:
        :data:`casemix.io.PARQUET_COMPRESSION`).
    keep
        Input columns written to the output, as :func:`group_parquet` takes
        it: ``"all"`` (default), ``"none"`` or a list of names; the cases
        are grouped from the whole frame either way.

    Returns
    -------
    dict
        ``rows``, ``grouped`` (cases with a group) and ``seconds``.

    Warns
    -----
    casemix.errors.LowGroupingRateWarning
        When fewer than half of the cases find a group (as :func:`casemix.group`).
    """
    from casemix.drg.summary import warn_if_low_rate
    from casemix.io import parquet_options

    parquet_options(compression)  # an unknown codec fails before the work
    kept = frame.select(kept_columns(frame.columns, keep, "the frame"))
    sch = load_scheme(scheme)
    dst = Path(dst)
    started = time.perf_counter()
    # polars' Arrow export refuses a column name with a NUL character: polars encodes those
    if frame.height > 0 and _is_text(frame):
        result = group_input(frame, sch, mapping=mapping)
        _write_text(kept, result, dst, compression)
    else:
        result = _group_and_add(frame, sch, mapping, dst, compression, kept)
    warn_if_low_rate(result, sch)
    grouped = int((result["status"] == sch.status["grouped"]).sum())
    return {"rows": frame.height, "grouped": grouped, "seconds": time.perf_counter() - started}


#: rows per row group of the Parquet files ``group_table`` writes (polars' default)
ROW_GROUP_ROWS = 262_144
#: values pyarrow's column writer takes at a time (its default is 1,024): 8% less encoding
#: CPU for the same bytes, measured on 1M cases' text columns (0.80-0.88 against 0.86-0.97 CPU-s)
WRITE_BATCH_ROWS = 65_536
#: rows sampled, and distinct values allowed in them, for a text column to get dictionary pages
_DICT_SAMPLE, _DICT_MAX = 65_536, 4_096


def _result_options(codec: dict[str, Any]) -> dict[str, Any]:
    """pyarrow's write options for the result columns (and what is encoded beside them).

    No min/max statistics: the results are in the order of the cases, which
    lets no reader skip a row group by them, and computing them was a
    quarter of the result columns' encoding (12 of 49 ms per 262,144 rows).
    """
    return {**codec, "write_batch_size": WRITE_BATCH_ROWS, "write_statistics": False}


class _TextParts:
    """Text frames and their result columns, added in order, written as one Parquet file.

    Row groups of :data:`ROW_GROUP_ROWS` rows (rows left over from one frame
    open the next row group) are encoded by pyarrow on as many threads as
    there are CPUs, beside whatever the caller does next (pyarrow releases
    the GIL), and appended to ``out`` as they are done
    (``casemix._parquet.PartWriter``: pages copied, one footer), at most two
    per thread waiting.  The input columns go to pyarrow as the Arrow
    buffers polars holds (string views, no copy); the stored Arrow schema
    says ``large_string`` for them, as when polars writes them, so every
    reader sees the types it saw before.  A dictionary is built only for input
    columns with few values in the first frame's first 65,536 rows (pyarrow
    gives up on the others only after building 1 MiB of dictionary per row
    group), and min/max statistics for no column (:func:`_result_options`).
    """

    def __init__(self, out: BinaryIO, compression: str | None = None) -> None:
        import os

        from casemix.io import parquet_options

        self.out = out
        self.codec = parquet_options(compression)
        self.threads = max(1, os.cpu_count() or 1)
        self.pool = ThreadPoolExecutor(max_workers=self.threads)
        self.pending: deque[Future[bytes]] = deque()
        self.carry = None
        self.layout: list[str] = []
        self.options: dict = {}
        self.writer: PartWriter | None = None

    def _start(self, frame: pl.DataFrame, result: pl.DataFrame) -> None:
        import pyarrow as pa

        from casemix._parquet import PartWriter

        sample = frame.head(_DICT_SAMPLE)
        few = [
            c
            for c in frame.columns
            if c not in result.columns and sample.get_column(c).n_unique() <= _DICT_MAX
        ]
        whole = frame.head(0).with_columns(result.head(0).get_columns())
        self.layout = whole.columns
        schema = pa.schema(
            [
                f if f.name in result.columns else pa.field(f.name, pa.large_string())
                for f in whole.to_arrow(compat_level=pl.CompatLevel.newest()).schema
            ]
        )
        self.options = {
            **_result_options(self.codec),
            "use_dictionary": [*few, *result.columns],
            "store_schema": False,
        }
        self.writer = PartWriter(self.out, schema)

    def add(self, frame: pl.DataFrame, result: pl.DataFrame) -> None:
        """Queue the rows of ``frame`` (text columns) with their ``result`` columns."""
        import pyarrow as pa

        if self.writer is None:
            self._start(frame, result)
        newest = pl.CompatLevel.newest()
        # the input and the result columns are exported apart, each without a copy, and
        # joined as Arrow columns: one export of a frame whose columns are chunked
        # differently (the CSV reader's, the results') copies them into common chunks
        # (0.4-0.5 CPU-s per 2M cases)
        inputs = frame.select(c for c in frame.columns if c not in result.columns).to_arrow(
            compat_level=newest
        )
        results = result.to_arrow(compat_level=newest)
        table = pa.table(
            [(results if c in result.columns else inputs).column(c) for c in self.layout], names=self.layout
        )
        if self.carry is not None:
            table = pa.concat_tables([self.carry, table])
        rows = ROW_GROUP_ROWS
        full = table.num_rows - table.num_rows % rows
        for start in range(0, full, rows):
            self._encode(table.slice(start, rows))
        self.carry = table.slice(full) if full < table.num_rows else None

    def _encode(self, table) -> None:
        from casemix._parquet import encode_row_group

        self.pending.append(self.pool.submit(encode_row_group, table, self.options))
        while len(self.pending) > 2 * self.threads:
            self._write_next()

    def _write_next(self) -> None:
        assert self.writer is not None
        self.writer.add(self.pending.popleft().result())

    def close(self) -> None:
        """Encode what is left and write the footer."""
        if self.carry is not None:
            self._encode(self.carry)
            self.carry = None
        while self.pending:
            self._write_next()
        if self.writer is not None:
            self.writer.close()

    def shutdown(self) -> None:
        """Stop the encoding threads (after :meth:`close`, or on an error)."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def _is_text(frame: pl.DataFrame) -> bool:
    """Every column is text and polars can export the frame to Arrow (no NUL in a column name)."""
    return all(t == pl.String and "\x00" not in c for c, t in frame.schema.items())


def _write_text(frame: pl.DataFrame, result: pl.DataFrame, dst: Path, compression: str | None) -> None:
    """A text frame and its result columns as Parquet (:class:`_TextParts`)."""
    with open(dst, "wb") as out:
        parts = _TextParts(out, compression)
        try:
            parts.add(frame, result)
            parts.close()
        finally:
            parts.shutdown()


#: rows per batch of ``group_csv``: four row groups of the output.  Against two, less or
#: equal CPU for the same file (2M cases, two batches grouped at once, under load: zstd
#: 6.9-7.5 against 7.8-8.3 CPU-s in four runs each; lz4 6.81 / 7.34 against 6.75 / 8.22)
#: for 60-180 MB more peak RSS
CSV_BATCH_ROWS = 4 * ROW_GROUP_ROWS


def _warn_if_low_rate(dst: str | Path, sch: Scheme, rows: int, n_grouped: int) -> None:
    """The low-grouping-rate warning of a file written in batches, from the file itself."""
    if n_grouped < rows / 2:
        from casemix.drg.summary import warn_if_low_rate

        # read back only when the warning is due: unknown codes from `warnings`, and
        # without any, the outcomes by `status` and `reason`
        result = pl.read_parquet(dst, columns=["status", "reason", "warnings"])
        warn_if_low_rate(result, sch, stacklevel=4)


def group_csv(
    src: str | Path,
    dst: str | Path,
    scheme: str | Path | Scheme = DEFAULT_SCHEME,
    *,
    mapping: dict[str, str] | None = None,
    encoding: str | None = None,
    batch_rows: int = CSV_BATCH_ROWS,
    compression: str | None = None,
    keep: str | Sequence[str] = "all",
) -> dict:
    """Group a CSV file into a Parquet file, reading, grouping and writing at once.

    What ``casemix group cases.csv -o out.parquet`` runs.  The output is
    the file :func:`group_table` writes for the frame
    :func:`casemix.io.read_table` reads (the same columns, values, types and
    row groups): the input columns followed by ``mdc``, ``adrg``, ``drg``,
    ``severity``, ``status``, ``reason`` and ``warnings``.

    A UTF-8 file (:func:`casemix.io.csv_batches`) is read by polars'
    streaming reader in batches of about ``batch_rows`` rows; each batch is
    grouped as :func:`casemix.group` groups a frame, two at once on threads,
    while polars parses the next ones and pyarrow encodes the previous ones'
    row groups (:class:`_TextParts`), so both cores stay busy.  polars'
    reader runs ahead of the grouping, so memory is not bounded by
    ``batch_rows`` (``docs/batch-grouping.md``).  Any other file (GBK, an encoding forced, a
    repeated column name), or one whose reading fails part way (a bad
    byte, a ragged row), is read whole by :func:`casemix.io.read_table`,
    which reads it or names the line and column at fault, and written by
    :func:`group_table`.

    Parameters
    ----------
    src, dst
        Input CSV (``.csv``, ``.txt``, ``.tsv``) and output Parquet paths
        (``dst`` is overwritten).
    scheme
        Scheme name, folder or loaded scheme.
    mapping
        Column mapping passed to :func:`casemix.cases.read_cases`.
    encoding
        As :func:`casemix.io.read_table` takes it (``None``: detected).
    batch_rows
        Rows per batch, about.
    compression
        Parquet codec, as :func:`group_table` takes it.
    keep
        Input columns written to the output, as :func:`group_parquet` takes
        it (``"all"``, ``"none"`` or a list of names).  Fewer is faster:
        encoding the input's columns again is a third of the work.

    Returns
    -------
    dict
        What :func:`group_table` returns (``rows``, ``grouped``, ``seconds``),
        with its :class:`~casemix.errors.LowGroupingRateWarning` under half grouped.
    """
    from casemix.io import csv_batches, parquet_options, read_table

    parquet_options(compression)  # an unknown codec fails before the work
    sch = load_scheme(scheme)
    src, dst = Path(src), Path(dst)
    started = time.perf_counter()
    batches = csv_batches(src, encoding=encoding, batch_rows=batch_rows)
    counts = None if batches is None else _group_batches(batches, dst, sch, mapping, compression, keep, src)
    if counts is None:
        table = read_table(src, encoding=encoding)
        kept_columns(table.columns, keep, src.name)  # the file named, before the work
        info = group_table(table, dst, sch, mapping=mapping, compression=compression, keep=keep)
        return {**info, "seconds": time.perf_counter() - started}
    rows, n_grouped = counts
    _warn_if_low_rate(dst, sch, rows, n_grouped)
    return {"rows": rows, "grouped": n_grouped, "seconds": time.perf_counter() - started}


class _NotStreamed(Exception):
    """The CSV batches cannot be used as they are: the file is read whole instead."""


def _group_batches(
    batches: Iterator[pl.DataFrame],
    dst: Path,
    sch: Scheme,
    mapping: dict[str, str] | None,
    compression: str | None,
    keep: str | Sequence[str],
    src: Path,
) -> tuple[int, int] | None:
    """(rows, grouped cases) of the text batches grouped into ``dst``, or ``None``.

    Two batches are grouped at once on threads (:func:`_in_order`).  ``None``
    when the reading fails part way, a batch is not text Arrow can take, or
    there is no row: the caller then reads the file whole, and writes ``dst``
    again.
    """
    ok_status = sch.status["grouped"]
    rows = n_grouped = 0
    kept: list[str] | None = None

    def texts() -> Iterator[pl.DataFrame]:
        nonlocal kept
        while True:
            try:
                frame = next(batches, None)
            except pl.exceptions.PolarsError:
                raise _NotStreamed from None  # read_table reads another encoding, or names the fault
            if frame is None:
                return
            if not _is_text(frame):
                raise _NotStreamed
            if kept is None:  # before the first batch is grouped
                kept = kept_columns(frame.columns, keep, src.name)
            if frame.height:
                yield frame

    with open(dst, "wb") as out:
        parts = _TextParts(out, compression)
        try:
            for frame, result in _in_order(texts(), lambda f: group_input(f, sch, mapping=mapping)):
                rows += frame.height
                n_grouped += int((result["status"] == ok_status).sum())
                parts.add(frame.select(kept or []), result)
            if not rows:
                return None  # a header alone: read_table gives the empty frame its types
            parts.close()
        except _NotStreamed:
            return None
        finally:
            parts.shutdown()
    return rows, n_grouped


def _group_and_add(
    frame: pl.DataFrame,
    sch: Scheme,
    mapping: dict[str, str] | None,
    dst: Path,
    compression: str | None,
    kept: pl.DataFrame,
) -> pl.DataFrame:
    """Any other frame: polars encodes its ``kept`` columns on a thread while it is grouped,
    the results are added as chunks."""
    import pyarrow.parquet as pq

    from casemix._parquet import ChunkWriter, read_footer
    from casemix.io import parquet_options

    options = parquet_options(compression)
    by_polars = parquet_options(compression, polars=True)
    encoded = io.BytesIO()
    with ThreadPoolExecutor(max_workers=1) as pool:
        # polars releases the GIL while it encodes: this runs beside the grouping
        writing = pool.submit(kept.write_parquet, encoded, **by_polars)
        result = group_input(frame, sch, mapping=mapping)
        writing.result()
    footer = read_footer(encoded.getvalue())
    if not footer.row_groups:  # no rows, or no column kept: nothing to copy
        # polars writes it: its Arrow export refuses a column name with a NUL character
        (kept.with_columns(result.get_columns()) if kept.width else result).write_parquet(dst, **by_polars)
        return result
    table = result.to_arrow(compat_level=pl.CompatLevel.newest())
    layout = output_columns(kept.columns, result.columns)
    with open(dst, "wb") as out:
        writer = ChunkWriter(out, encoded, footer, layout, pq.read_schema(encoded), _result_options(options))
        offset = 0
        for i, n in enumerate(footer.row_group_rows()):
            writer.write(i, table.slice(offset, n))
            offset += n
        writer.close()
    return result


#: batches grouped at once, each on its own thread: grouping holds both cores in its
#: numba kernels, but between them (polars expressions, numpy, Python) it runs on one,
#: and a second batch grouped beside it keeps the other core busy
GROUPING_THREADS = 2


def _in_order(frames: Iterator[pl.DataFrame], fn) -> Iterator[tuple[pl.DataFrame, Any]]:
    """``(frame, fn(frame))`` for each frame, in order, up to :data:`GROUPING_THREADS` at once on threads."""
    import os

    import numba

    from casemix._threads import threads

    workers = max(1, min(GROUPING_THREADS, os.cpu_count() or 1))
    # numba.set_num_threads is per thread: the grouping threads share the caller's, so the
    # batches grouped at once do not each cut their kernels for every core (2M |-string cases
    # Parquet -> Parquet, 2 cores, five alternating runs each: 1.69-1.83 s and 2.94-3.17 CPU-s
    # against 1.72-1.94 s and 3.00-3.33 CPU-s with two kernel threads per batch)
    per = max(1, threads() // workers)
    pool = ThreadPoolExecutor(max_workers=workers, initializer=numba.set_num_threads, initargs=(per,))
    pending: deque[tuple[pl.DataFrame, Future]] = deque()
    try:
        for frame in frames:
            pending.append((frame, pool.submit(fn, frame)))
            if len(pending) >= workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stream(read, ranges, grouped, open_writer, empty, total: int, progress: bool, started: float):
    """Group batches two at a time while the next one is read and the last one written.

    Returns (rows, batches, grouped cases).  ``read(range)`` gives a frame
    (``None`` for ``None``), ``grouped(frame)`` the Arrow table to write and
    its count of grouped cases, ``open_writer(table)`` the :class:`_Writer`
    for the first table, ``empty()`` a table and writer when there is no batch.
    Reading and writing run on two threads beside the grouping threads
    (:func:`_in_order`), so at most five batches are in memory at once.
    """
    bar = _progress(total, progress)
    writer: _Writer | None = None
    rows = batches = n_grouped = 0
    pool = ThreadPoolExecutor(max_workers=2)
    pending_write = None

    def frames() -> Iterator[pl.DataFrame]:
        queue = iter(ranges)
        next_read = pool.submit(read, next(queue, None))
        while (frame := next_read.result()) is not None:
            next_read = pool.submit(read, next(queue, None))
            yield frame

    try:
        for frame, (out, n_ok) in _in_order(frames(), grouped):
            n_grouped += n_ok
            if writer is None:
                writer = open_writer(out)
            if pending_write is not None:
                pending_write.result()
            pending_write = pool.submit(writer.write, out)
            rows += frame.height
            batches += 1
            if bar is not None:
                rate = rows / max(time.perf_counter() - started, 1e-9)
                bar.update(bar.task_ids[0], completed=rows, rate=f"{rate:,.0f} cases/s")
        if pending_write is not None:
            pending_write.result()
        if writer is None:
            out, writer = empty()
            writer.write(out)
    finally:
        pool.shutdown(wait=True)
        if writer is not None:
            writer.close()
        if bar is not None:
            bar.stop()
    return rows, batches, n_grouped


def _chunk_source(src: Path, sizes: list[int], batch_size: int):
    """``(src, footer, arrow schema)`` when its column chunks can be copied, else ``None``.

    Copying needs every batch to be whole row groups (no row group larger
    than ``batch_size``, none empty) and a file :func:`casemix._parquet.copyable`
    accepts.
    """
    import pyarrow.parquet as pq

    from casemix._parquet import copyable, read_footer

    if not sizes or not all(0 < n <= batch_size for n in sizes):
        return None
    try:
        with open(src, "rb") as fh:
            footer = read_footer(fh)
    except (OSError, ValueError, IndexError):  # a footer this reader does not follow: re-encode
        return None
    if copyable(footer, src.stat().st_size) is not None:
        return None
    return src, footer, pq.read_schema(src)


class _Writer:
    """Appends grouped batches to ``dst``: the kept input columns copied as chunks, or re-encoded.

    With a chunk source (``copy``) each batch's table holds only the seven
    result columns and is cut at the input's row-group boundaries; without,
    it holds the kept columns too and goes to a ``pyarrow.parquet.ParquetWriter``.
    """

    def __init__(
        self, dst: Path, schema, copy, layout: list[str], sizes: list[int], codec: dict[str, Any]
    ) -> None:
        import pyarrow.parquet as pq

        options = _result_options(codec)
        self.sizes, self.next_group = sizes, 0
        if copy is None:
            self.src = None
            # dictionary pages for the result columns (a few hundred distinct values) only:
            # on input columns (case ids, code lists) pyarrow builds them, then gives up
            words = [c for c in (*RESULT_NAMES, "warnings") if c in schema.names]
            # statistics for the input columns but lists (dates may be in order), not the results
            options["write_statistics"] = [
                f.name for f in schema if not _is_list(f.type) and f.name not in words
            ]
            self.writer = pq.ParquetWriter(dst, schema, use_dictionary=words, **options)
            return
        from casemix._parquet import ChunkWriter

        src, footer, arrow_schema = copy
        # both stay open for the writer's lifetime: close() closes them
        self.src = open(dst, "wb"), open(src, "rb")  # noqa: SIM115
        self.writer = ChunkWriter(self.src[0], self.src[1], footer, layout, arrow_schema, options)

    def write(self, table) -> None:
        if self.src is None:
            self.writer.write_table(table)
            return
        offset = 0
        while offset < table.num_rows:
            n = self.sizes[self.next_group]
            self.writer.write(self.next_group, table.slice(offset, n))
            offset += n
            self.next_group += 1

    def close(self) -> None:
        try:
            # a chunk writer that wrote nothing is closed by an error: no footer to write
            if self.src is None or self.writer.rows or self.writer.row_groups:
                self.writer.close()
        finally:
            if self.src is not None:
                for fh in self.src:
                    fh.close()


def _is_list(t) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_large_list_view(t)
    )
