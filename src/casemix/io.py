"""Files people have: tables in and out, text config files in.

Reading (:func:`read_table`): CSV/TSV in UTF-8, UTF-8 with a BOM, GBK or
GB18030 (detected, or forced with ``encoding=``), Excel workbooks
(``.xlsx``, read by fastexcel) and Parquet (a file or a folder of files).
Undecodable bytes are never turned into U+FFFD silently: they raise an
:class:`~casemix.errors.InputError` naming the file and byte offset, or —
only when ``errors="replace"`` is asked for — are replaced and counted in a
:class:`LossyDecodingWarning`.

Writing (:func:`write_table`): Parquet, CSV (optionally with a BOM) and
``.xlsx`` (xlsxwriter: header row, frozen panes, fitted widths).  Every
write goes to a temporary file beside the target, renamed over it only on
success, so an error or Ctrl-C never leaves a partial file.  An existing
output is replaced only with ``force=True``; an output that is one of the
inputs is refused.

Config text (:func:`read_text`): one reader for every TOML and scheme CSV
casemix loads; it accepts a BOM and turns a non-UTF-8 byte into the
loader's own error class, with file and byte offset.

Rules and examples: ``docs/files.md``.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io as _io
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import polars.selectors as cs

from casemix._frame_types import check_unique_columns, from_memory
from casemix.errors import CasemixError, InputError

__all__ = [
    "LossyDecodingWarning",
    "atomic_path",
    "check_output",
    "csv_batches",
    "detect_encoding",
    "parquet_options",
    "read_table",
    "read_text",
    "write_table",
]

PARQUET = (".parquet", ".pq")
CSV = (".csv", ".txt", ".tsv")
EXCEL = (".xlsx", ".xlsm", ".xls")
WRITABLE = (*PARQUET, ".csv", ".tsv", ".xlsx")

_BOM = codecs.BOM_UTF8
# one name for the GB family: GB18030 is a superset of GBK and GB2312, so a file
# detected as either decodes the same and the rare GB18030-only characters survive
_GB_FAMILY = {"gb2312", "gbk", "cp936", "gb18030", "hz", "ms936"}
# encodings charset-normalizer may propose that we accept without being told;
# anything else (cp1252, koi8-r, …) is more likely a UTF-8 or GBK file with bad bytes
_DETECTABLE = {"utf_8", "utf_16", "utf_32", "big5", "big5hkscs", "cp950", *_GB_FAMILY}
_CHUNK = 1 << 24  # 16 MiB: UTF-8 validation streams the file in chunks
_SAMPLE = 1 << 20  # bytes handed to charset-normalizer
EXCEL_MAX_ROWS = 1_048_576
#: codec of every Parquet file casemix writes unless told otherwise (``compression=``,
#: ``casemix group --compression``): pyarrow's and polars' ``"lz4"`` is Parquet's LZ4_RAW.
#: Against zstd level 1 it costs 0.5-0.8 CPU-s less per 2M grouped cases to encode and
#: reads back several times faster, for files about 1.6x larger (docs/files.md)
PARQUET_COMPRESSION = "lz4"
#: the codecs a caller may ask for
PARQUET_CODECS = ("lz4", "zstd", "snappy", "none")
#: zstd level when zstd is asked for: level 1 costs a third less CPU than polars'
#: default (3) for a file about 5% larger (measured on 500,000 grouped cases, docs/files.md)
PARQUET_ZSTD_LEVEL = 1


def parquet_options(compression: str | None = None, *, polars: bool = False) -> dict[str, Any]:
    """The writer keywords of a Parquet codec: ``compression`` and, for zstd, its level.

    Parameters
    ----------
    compression
        One of :data:`PARQUET_CODECS`; ``None`` for :data:`PARQUET_COMPRESSION`.
    polars
        Keywords for polars' ``write_parquet`` (which names no compression
        ``"uncompressed"``) rather than pyarrow's writers.

    Raises
    ------
    InputError
        An unknown codec name.
    """
    name = PARQUET_COMPRESSION if compression is None else compression
    if name not in PARQUET_CODECS:
        raise InputError(
            f"unknown Parquet compression {compression!r}: use one of {', '.join(PARQUET_CODECS)}"
        )
    out: dict[str, Any] = {"compression": "uncompressed" if polars and name == "none" else name}
    if name == "zstd":
        out["compression_level"] = PARQUET_ZSTD_LEVEL
    return out


class LossyDecodingWarning(UserWarning):
    """Bytes that do not decode were replaced by U+FFFD (only with ``errors="replace"``)."""


# --------------------------------------------------------------------------- encodings


def _norm(encoding: str) -> str:
    name = codecs.lookup(encoding).name.replace("-", "_")
    return "gb18030" if name in _GB_FAMILY else name


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _bad_byte(
    path: Path | str, data: bytes, exc: UnicodeDecodeError, encoding: str, separator: str | None = None
) -> str:
    shown = data[exc.start : exc.start + 4].hex(" ")
    column = _column_at(data, exc.start, separator, encoding) if separator else None
    return (
        f"{path}: byte offset {exc.start} (line {_line_of(data, exc.start)}) "
        f"is not valid {encoding} (bytes {shown})" + (f", in column {column}" if column else "")
    )


def _column_at(data: bytes, offset: int, separator: str, encoding: str = "utf-8") -> str | None:
    """The CSV column the byte at ``offset`` of ``data`` lies in: ``'诊断'`` (or ``field 7``).

    Counts the separators outside quotes from the start of the byte's line,
    so a quoted field spanning lines can name the wrong column; only error
    messages use it.
    """
    start = data.rfind(b"\n", 0, offset) + 1
    if start == 0:
        return "(the header line)"
    sep, quote = ord(separator), ord('"')
    field, quoted = 0, False
    for byte in data[start:offset]:
        if byte == quote:
            quoted = not quoted
        elif byte == sep and not quoted:
            field += 1
    head = data[: data.find(b"\n") if b"\n" in data else len(data)]
    text = head.decode(encoding, errors="replace").lstrip("\ufeff").rstrip("\r")
    names = next(csv.reader([text], delimiter=separator), [])
    return repr(names[field]) if field < len(names) else f"field {field + 1}"


def _place(path: Path, offset: int, separator: str | None) -> str:
    """``line 32, column '诊断'`` for a byte offset of a file (the line alone without a separator)."""
    with open(path, "rb") as fh:
        data = fh.read(offset)  # the bytes before the bad one: an error path only
        data += fh.read(1)
    place = f"line {_line_of(data, offset)}"
    column = _column_at(data, offset, separator) if separator else None
    return f"{place}, column {column}" if column else place


def _first_utf8_error(path: Path, limit: int | None = None) -> int | None:
    """Offset of the first byte that is not UTF-8, ``None`` when the whole file is UTF-8.

    Streams the file so a large UTF-8 case file is checked without holding
    it twice in memory.  With ``limit`` only the first ``limit`` bytes are
    checked (a character cut at the limit is not an error).
    """
    dec = codecs.getincrementaldecoder("utf-8")()
    pos = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(_CHUNK if limit is None else min(_CHUNK, limit - pos))
            # the decoder keeps the first bytes of a sequence split between chunks
            pending = dec.getstate()[0]
            try:
                dec.decode(chunk, final=not chunk and limit is None)
            except UnicodeDecodeError as exc:
                return pos - len(pending) + exc.start
            if not chunk:
                return None
            pos += len(chunk)


def _window(path: Path, offset: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(max(0, offset - 8))
        return fh.read(16)


_CJK = re.compile("[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


def _reads_as_chinese(sample: bytes) -> bool:
    """The bytes decode strictly as GB18030 and 90% of the non-ASCII characters are CJK."""
    try:
        text = sample.decode("gb18030")
    except UnicodeDecodeError:
        return False
    wide = [ch for ch in text if ord(ch) > 127]
    return bool(wide) and len(_CJK.findall(text)) >= 0.9 * len(wide)


def detect_encoding(path: str | Path) -> str:
    """The text encoding of the file at ``path``: ``utf_8``, ``gb18030``, ….

    UTF-8 (with or without a BOM) is tried first and strictly.  Otherwise
    charset-normalizer is asked; a guess in the GB family (GB2312, GBK,
    GB18030) is answered as ``gb18030``, its superset.  When its guess is
    none of the accepted encodings but the bytes decode strictly as GB18030
    into Chinese text (90% of the non-ASCII characters CJK), the answer is
    ``gb18030``: charset-normalizer misjudges short, repetitive GBK files.

    Raises
    ------
    InputError
        The file looks like UTF-8 with bad bytes (around the first bad byte
        at least 4 valid non-ASCII characters per bad sequence), or no
        encoding fits: the message names
        the byte offset and how to force an encoding.
    """
    return _detect(Path(path), None)


def _detect(p: Path, separator: str | None) -> str:
    """:func:`detect_encoding`; a CSV's ``separator`` lets an error name the column."""
    bad = _first_utf8_error(p)
    if bad is None:
        return "utf_8"
    offset = bad
    with open(p, "rb") as fh:
        # a window around the first bad byte, cut at line ends so no character is split
        fh.seek(max(0, offset - _SAMPLE // 2))
        sample = fh.read(_SAMPLE)
    if offset > _SAMPLE // 2 and b"\n" in sample:
        sample = sample[sample.index(b"\n") + 1 :]
    if len(sample) == _SAMPLE and b"\n" in sample:
        sample = sample[: sample.rindex(b"\n") + 1]
    around = _window(p, offset)
    hint = (
        "fix the bytes, re-save the file as UTF-8, or pass an encoding "
        "(--encoding gb18030, or --encoding utf-8:replace to replace and count bad bytes)"
    )
    as_utf8 = sample.decode("utf-8", errors="replace")
    bad_seqs = as_utf8.count("\ufffd")
    good = sum(1 for ch in as_utf8 if ord(ch) > 127) - bad_seqs
    # GBK read as UTF-8 fails on most of its characters; a UTF-8 file with a stray bad
    # byte decodes almost everywhere: that file is UTF-8 and the byte is an error
    if good >= 4 * bad_seqs:
        raise InputError(
            f"{p}, {_place(p, offset, separator)}: byte offset {offset} is not valid UTF-8 (bytes around it: "
            f"{around.hex(' ')}), although the text around it is UTF-8; {hint}"
        )
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    guess = _norm(best.encoding) if best is not None else None
    if (guess is None or guess not in _DETECTABLE) and _reads_as_chinese(sample):
        # charset-normalizer misjudges short or repetitive GBK text (a 40-line extract came
        # back as iso8859_5); text that decodes strictly as GB18030 into Chinese is GB18030
        guess = "gb18030"
    if guess is None or guess not in _DETECTABLE:
        raise InputError(
            f"{p}, {_place(p, offset, separator)}: byte offset {offset} is not valid UTF-8 "
            "and the encoding could "
            f"not be recognised (guess: {guess or 'none'}); {hint}"
        )
    return guess


def _decode(path: Path, data: bytes, encoding: str, errors: str, separator: str | None = None) -> str:
    if errors == "strict":
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise InputError(
                _bad_byte(path, data, exc, encoding, separator)
                + "; pass the right encoding (--encoding), or NAME:replace to "
                "replace and count bad bytes"
            ) from None
    _LOSSY.state = [0, None]
    text = data.decode(encoding, errors=_COUNTING)
    count = _LOSSY.state
    if count[0]:
        warnings.warn(
            LossyDecodingWarning(
                f"{path}: {count[0]:,} undecodable byte sequence(s) in {encoding} replaced by U+FFFD "
                f"(first at byte offset {count[1]}, line {_line_of(data, count[1])})"
            ),
            stacklevel=3,
        )
    return text


_LOSSY = threading.local()  # [replacements, offset of the first] of the decode in progress
_COUNTING = "casemix-count-replace"


def _count_and_replace(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):  # a decoding handler only
        raise exc
    state = _LOSSY.state
    state[0] += 1
    if state[1] is None:
        state[1] = exc.start
    return "\ufffd", exc.end


codecs.register_error(_COUNTING, _count_and_replace)


def _parse_encoding(encoding: str | None, errors: str) -> tuple[str | None, str]:
    """``"gbk:replace"`` → (``gb18030``, ``replace``); ``None``/``"auto"`` → detect."""
    if encoding and ":" in encoding:
        encoding, errors = encoding.split(":", 1)
    if errors not in ("strict", "replace"):
        raise InputError(f"errors must be 'strict' or 'replace', got {errors!r}")
    if encoding in (None, "", "auto"):
        return None, errors
    try:
        return _norm(encoding), errors
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}; use e.g. utf-8, gb18030, gbk") from None


# --------------------------------------------------------------------------- reading


def read_text(path: str | Path, *, what: str = "file", error: type[CasemixError] = InputError) -> str:
    """The text of a UTF-8 config file (TOML, scheme CSV), a BOM accepted and removed.

    Parameters
    ----------
    path
        The file.
    what
        What the file is, for the message (``"scheme table"``, ``"policy"``).
    error
        The error class the caller's users expect (``SchemeError`` for scheme
        folders, ``PolicyError`` for policies, …).

    Raises
    ------
    error
        A byte is not UTF-8: the message names the file, the byte offset and
        the line, and says to re-save the file as UTF-8.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise error(f"{p}: cannot read the {what}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + (len(_BOM) if data.startswith(_BOM) else 0)
        line = _line_of(data, start)
        msg = (
            f"not UTF-8: byte 0x{data[start]:02x} at offset {start} (bytes "
            f"{data[start : start + 4].hex(' ')}); a {what} must be UTF-8: re-save it as UTF-8"
        )
        from casemix.errors import SchemeError

        if issubclass(error, SchemeError):
            raise error(msg, file=str(p), line=line) from None
        raise error(f"{p}, line {line}: {msg}") from None


def _csv_frame(source: Path | bytes, name: Path, separator: str, infer_schema: bool) -> pl.DataFrame:
    try:
        df = pl.read_csv(
            source, separator=separator, infer_schema=infer_schema, encoding="utf8", raise_if_empty=True
        )
    except pl.exceptions.NoDataError:
        raise InputError(f"{name}: file is empty (no header line)") from None
    except (pl.exceptions.ComputeError, pl.exceptions.ShapeError) as exc:
        raise InputError(
            f"{name}: cannot be read as CSV: {_csv_fault(source, separator) or _first_line(exc)}"
        ) from None
    if any("_duplicated_" in c for c in df.columns):
        check_unique_columns(_csv_header(source, separator), f"{name}, line 1")
    return df


def _utf8_csv(p: Path, separator: str, infer_schema: bool) -> pl.DataFrame | None:
    """The CSV read as UTF-8 by polars, or ``None`` when it may not be UTF-8.

    polars checks every field strictly (``encoding="utf8"`` fails on a bad
    byte), so a valid UTF-8 file, the common case, is read in one pass
    without checking its bytes in Python first.  Only the header line is
    checked here, because polars replaces a bad byte in a column name.  Any
    failure returns ``None``: the caller then checks the whole file and
    detects the encoding, or reports the failure itself.
    """
    if _first_utf8_error(p, limit=_SAMPLE) is not None:
        return None
    try:
        return _csv_frame(p, p, separator, infer_schema)
    except InputError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _csv_fault(source: Path | bytes, separator: str) -> str | None:
    """Where a CSV polars refused goes wrong (a ragged row, an open quote), by line.

    Runs only after a failure, so the second pass costs nothing on good files.
    """
    import csv

    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    reader = csv.reader(_io.StringIO(text, newline=""), delimiter=separator, strict=True)
    start = 1  # the line a record starts on: a quote left open spans to the end
    try:
        header = next(reader)
        start = reader.line_num + 1
        for row in reader:
            if row and len(row) != len(header):
                return (
                    f"line {start} has {len(row)} fields where the header has "
                    f"{len(header)} (quote values that contain '{separator}')"
                )
            start = reader.line_num + 1
    except csv.Error as exc:
        if "end of data" in str(exc):
            return f"line {start}: a quote opened on this line is never closed"
        return f"line {start}: {exc}"
    return None


def _csv_header(source: Path | bytes, separator: str) -> list[str]:
    import csv

    data = source if isinstance(source, bytes) else Path(source).read_bytes()[: 1 << 20]
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    return next(csv.reader(_io.StringIO(text, newline=""), delimiter=separator), [])


def _check_names(columns: list[str], name: Path) -> None:
    # polars renames a repeated header to NAME_duplicated_0: that is the user's file, say so
    dups = [c for c in columns if "_duplicated_" in c]
    if dups:
        raise InputError(
            f"{name}: repeated column name(s) in the header "
            f"({', '.join(d.split('_duplicated_')[0] for d in dups)}); "
            "every column needs its own name"
        )


def read_table(
    path: str | Path,
    *,
    encoding: str | None = None,
    sheet: str | int | None = None,
    errors: str = "strict",
    infer_schema: bool = False,
) -> pl.DataFrame:
    """Read a table file into polars: CSV/TSV, Excel or Parquet, chosen by suffix.

    Parameters
    ----------
    path
        ``.csv``/``.txt``/``.tsv``, ``.xlsx``/``.xlsm``/``.xls``, ``.parquet``/``.pq``,
        or a folder of Parquet files.
    encoding
        Text encoding of a CSV.  ``None`` or ``"auto"``: UTF-8 (a BOM is
        dropped) when the file is valid UTF-8, else detected by
        charset-normalizer (GBK and GB2312 read as GB18030).  A name forces
        it; ``"NAME:replace"`` also sets ``errors="replace"``.
    sheet
        Excel sheet name or 0-based index (default: the first sheet).
    errors
        ``"strict"``: a byte that does not decode raises :class:`InputError`
        with the byte offset.  ``"replace"``: it becomes U+FFFD and a
        :class:`LossyDecodingWarning` says how many.
    infer_schema
        CSV and Excel columns are read as strings by default, so codes such
        as ``0101`` keep their leading zeros and the intake step parses
        numbers with one rule; ``True`` lets polars infer types.

    Returns
    -------
    polars.DataFrame
        Every row of the file, in order.

    Raises
    ------
    InputError
        Missing, empty, corrupt or ragged file, a repeated column name, an
        unknown suffix, or undecodable bytes.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"input file not found: {p}")
    suffix = p.suffix.lower()
    if p.is_dir():
        files = sorted(p.glob("*.parquet"))
        if not files:
            raise InputError(
                f"{p}: folder holds no .parquet files; give a Parquet, CSV or "
                "Excel file, or a folder of Parquet files"
            )
        return _parquet(str(p / "*.parquet"), p)
    if p.stat().st_size == 0:
        raise InputError(f"{p}: file is empty (0 bytes); a header line is needed")
    if suffix in PARQUET:
        return _parquet(p, p)
    if suffix in EXCEL:
        return _excel(p, sheet, infer_schema)
    if suffix in CSV:
        sep = "\t" if suffix == ".tsv" else ","
        enc, errs = _parse_encoding(encoding, errors)
        if enc in (None, "utf_8") and errs == "strict":
            df = _utf8_csv(p, sep, infer_schema)
            if df is not None:
                return df
            bad = _first_utf8_error(p)
            if enc == "utf_8" and bad is not None:  # forced: still never silent
                raise InputError(
                    f"{p}, {_place(p, bad, sep)}: byte offset {bad} is not valid UTF-8; pass the "
                    "right encoding (--encoding), or utf-8:replace"
                )
        if enc is None:
            enc = _detect(p, sep)
        if enc == "utf_8" and errs == "strict":
            # polars drops a leading UTF-8 BOM itself and reads the file without a copy
            return _csv_frame(p, p, sep, infer_schema)
        text = _decode(p, p.read_bytes(), enc, errs, sep)
        return _csv_frame(text.lstrip("\ufeff").encode("utf-8"), p, sep, infer_schema)
    raise InputError(f"{p}: unknown file type {suffix or '(no suffix)'!r}; use .csv, .tsv, .xlsx or .parquet")


def csv_batches(
    path: str | Path, *, encoding: str | None = None, errors: str = "strict", batch_rows: int = 524_288
) -> Iterator[pl.DataFrame] | None:
    """The rows of a UTF-8 CSV file as text frames of about ``batch_rows`` rows, read as they are used.

    For a file :func:`read_table` would read in one pass with polars (a
    ``.csv``/``.txt``/``.tsv`` file whose first MiB is UTF-8, its encoding
    not forced to another, no repeated column name): polars' streaming
    reader parses the next batches on its threads while the caller works
    on this one, with every column as text, as :func:`read_table` reads it.
    ``None`` for any other file: read it with :func:`read_table`.

    polars checks every byte (a bad one raises a ``polars.exceptions.PolarsError``
    while iterating, as does a ragged row): the caller then reads the file
    with :func:`read_table`, which detects another encoding or names the
    line and column at fault.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in CSV or not p.is_file() or p.stat().st_size == 0:
        return None
    enc, errs = _parse_encoding(encoding, errors)
    if enc not in (None, "utf_8") or errs != "strict" or _first_utf8_error(p, limit=_SAMPLE) is not None:
        return None
    scan = pl.scan_csv(p, separator="\t" if suffix == ".tsv" else ",", infer_schema=False, encoding="utf8")
    try:
        names = scan.collect_schema().names()
    except pl.exceptions.PolarsError:
        return None
    if any("_duplicated_" in c for c in names):  # read_table names the repeated column
        return None
    return iter(scan.collect_batches(chunk_size=max(1, batch_rows)))


def _parquet(source: str | Path, name: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(source)
    except (pl.exceptions.ComputeError, OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(
            f"{name}: cannot be read as Parquet ({_first_line(exc)}); was it written completely?"
        ) from None


def _excel(p: Path, sheet: str | int | None, infer_schema: bool) -> pl.DataFrame:
    import fastexcel

    try:
        reader = fastexcel.read_excel(p)
    except (fastexcel.FastExcelError, OSError) as exc:  # every fastexcel failure type derives from it
        raise InputError(f"{p}: not a readable Excel workbook ({_first_line(exc)})") from None
    names = reader.sheet_names
    target = 0 if sheet is None else sheet
    if isinstance(target, str) and target not in names:
        raise InputError(f"{p}: no sheet named {target!r}; sheets: {', '.join(names)}")
    if isinstance(target, int) and not 0 <= target < len(names):
        raise InputError(
            f"{p}: sheet index {target} out of range; the workbook has "
            f"{len(names)} sheet(s): {', '.join(names)}"
        )
    try:
        loaded = reader.load_sheet(target, dtypes=None if infer_schema else "string")
        df = loaded.to_polars()
    except (fastexcel.FastExcelError, pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{p}: sheet {target!r} cannot be read ({_first_line(exc)})") from None
    _check_names(df.columns, p)
    return df


# --------------------------------------------------------------------------- writing


def check_output(path: str | Path, *, force: bool = False, inputs: Iterable[str | Path | None] = ()) -> Path:
    """Refuse an output that is an input or that exists without ``force``.

    Returns the path.  Comparison is by resolved path, so ``./a.csv`` and
    ``a.csv`` and a symlink to it are the same file.

    Raises
    ------
    InputError
        The output is one of ``inputs``, or it exists and ``force`` is False.
    """
    p = Path(path)
    target = p.resolve()
    for i in inputs:
        if i is None:
            continue
        src = Path(i).resolve()
        if src == target:
            raise InputError(
                f"{p}: the output is the input file; writing it would destroy "
                "the input. Choose another output path"
            )
    if p.exists() and not force:
        raise InputError(f"{p} exists; pass --force (force=True) to overwrite it")
    return p


@contextlib.contextmanager
def atomic_path(
    path: str | Path, *, force: bool = False, inputs: Iterable[str | Path | None] = ()
) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it when the block succeeds.

    For writers that want a path (a streaming Parquet writer): on any
    exception, Ctrl-C included, the temporary file is removed and ``path``
    is left as it was.
    """
    p = check_output(path, force=force, inputs=inputs)
    p.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name keeps the target's suffix: writers that choose a format by suffix
    # (polars, xlsxwriter) see the same one
    fd, tmp_name = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".part{p.suffix}", dir=p.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _flat(df: pl.DataFrame) -> pl.DataFrame:
    """Lists become ``|``-joined text, the layout ``read_cases`` reads back."""
    lists = [c for c, t in df.schema.items() if isinstance(t, pl.List)]
    if not lists:
        return df
    return df.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join("|") for c in lists)


def _yuan(df: pl.DataFrame) -> pl.DataFrame:
    """Each ``X_fen`` integer column followed by ``X_yuan``, exactly 2 decimals (Decimal)."""
    out = []
    for c, t in df.schema.items():
        if c.endswith("_fen") and t.is_integer():
            yuan = c[:-4] + "_yuan"
            out.append(pl.col(c))
            if yuan not in df.columns:
                out.append((pl.col(c).cast(pl.Decimal(38, 2)) / 100).cast(pl.Decimal(38, 2)).alias(yuan))
        elif t.is_float():
            # 12 significant digits: float noise (28487.150000000005) goes, information stays
            out.append(pl.col(c).round_sig_figs(12))
        else:
            out.append(pl.col(c))
    return df.select(out)


def write_table(
    df: pl.DataFrame,
    path: str | Path,
    *,
    bom: bool | None = None,
    human: bool = False,
    force: bool = False,
    inputs: Iterable[str | Path | None] = (),
    compression: str | None = None,
) -> Path:
    """Write ``df`` atomically as Parquet, CSV/TSV or ``.xlsx``, chosen by suffix.

    Parameters
    ----------
    df
        The table (polars; pandas and Arrow are converted).
    path
        Target file.  Its folder is created.
    bom
        Start a CSV with a UTF-8 BOM (Excel on Chinese Windows needs it to
        show 中文).  ``None``: a BOM exactly when ``human`` is True.
    human
        A table for people: every integer ``X_fen`` column is followed by
        ``X_yuan`` with exactly 2 decimals (the fen column stays, so programs
        reading the file find it), and floats lose their last-digit noise
        (12 significant digits).  Machine tables (``human=False``) are
        written as they are.
    force
        Replace an existing file.  Without it an existing ``path`` is an error.
    inputs
        Paths the command read; writing over one of them is refused.
    compression
        Parquet codec, one of :data:`PARQUET_CODECS` (``None``:
        :data:`PARQUET_COMPRESSION`); other suffixes ignore it.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        Unknown suffix, output = input, an existing output without
        ``force``, more rows than an Excel sheet holds, or an unknown ``compression``.
    """
    p = Path(path)
    codec = parquet_options(compression, polars=True)
    suffix = p.suffix.lower()
    if suffix not in WRITABLE:
        raise InputError(
            f"{p}: output must end in .parquet, .csv, .tsv or .xlsx, got {suffix or 'no suffix'!r}"
        )
    frame = from_memory(df)
    if human:
        frame = _yuan(frame)
    if suffix == ".xlsx" and frame.height >= EXCEL_MAX_ROWS:
        raise InputError(
            f"{p}: {frame.height:,} rows do not fit an Excel sheet "
            f"({EXCEL_MAX_ROWS - 1:,} at most); write .parquet or .csv"
        )
    with atomic_path(p, force=force, inputs=inputs) as tmp:
        if suffix in PARQUET:
            frame.write_parquet(tmp, **codec)
        elif suffix in (".csv", ".tsv"):
            # the BOM is written by hand: polars' include_bom is the same bytes, but one
            # code path for both separators keeps the rule in one place
            with open(tmp, "wb") as fh:
                if bom if bom is not None else human:
                    fh.write(_BOM)
                _flat(frame).write_csv(fh, separator="\t" if suffix == ".tsv" else ",")
        else:
            _write_xlsx(_flat(frame), tmp)
    return p


def _write_xlsx(frame: pl.DataFrame, tmp: Path) -> None:
    widths: dict[str | cs.Selector, int] = {}
    for c in frame.columns:
        # CJK characters are about two columns wide in Excel's default fonts
        sample = [c, *(str(v) for v in frame[c].head(200).to_list() if v is not None)]
        width = max(sum(2 if ord(ch) > 0x2E80 else 1 for ch in s) for s in sample)
        widths[c] = min(60, max(6, width + 2)) * 7  # polars takes pixels
    frame.with_columns(pl.col(pl.Decimal).cast(pl.Float64)).write_excel(
        workbook=str(tmp),
        worksheet="Sheet1",
        column_formats={c: "#,##0.00" for c in frame.columns if c.endswith("_yuan")} or None,
        column_widths=widths,
        freeze_panes=(1, 0),
        autofilter=True,
        float_precision=4,
        include_header=True,
    )
