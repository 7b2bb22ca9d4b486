"""Frame conversion at the edges: pandas / polars / Arrow / files in, the caller's type out.

Inside casemix every step works on polars frames; conversion happens once at
the edge, through Arrow, so pandas and polars users both get their own type
back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from casemix.errors import InputError

FrameLike = Any  # pandas.DataFrame | polars.DataFrame | pyarrow.Table | str | Path


def kind_of(data: FrameLike) -> str:
    """Name the container type of ``data``: 'polars', 'pandas', 'arrow' or 'path'."""
    if isinstance(data, pl.DataFrame):
        return "polars"
    if isinstance(data, pl.LazyFrame):
        return "polars-lazy"
    if isinstance(data, (str, Path)):
        return "path"
    mod = type(data).__module__
    if mod.startswith("pandas"):
        return "pandas"
    if mod.startswith("pyarrow"):
        return "arrow"
    raise InputError(
        f"cases must be a pandas or polars DataFrame, a pyarrow Table or a path to a "
        f"Parquet/CSV file; got {type(data).__name__}"
    )


def read_path(path: str | Path, *, csv_as_strings: bool = True) -> pl.DataFrame:
    """Read a Parquet or CSV file (or a folder of Parquet files) into polars.

    CSV columns are read as strings so that codes such as ``0101`` keep their
    leading zeros; the intake step parses numbers itself and reports what
    does not parse.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"input file not found: {p}")
    suffix = p.suffix.lower()
    if p.is_dir():
        if not any(p.glob("*.parquet")):
            raise InputError(f"{p}: folder holds no .parquet files; give a Parquet or CSV file, "
                             "or a folder of Parquet files")
        return _read(p, "Parquet", lambda: pl.read_parquet(str(p / "*.parquet")))
    if p.stat().st_size == 0:
        raise InputError(f"{p}: file is empty (0 bytes); a header line and cases are needed")
    if suffix in (".parquet", ".pq"):
        return _read(p, "Parquet", lambda: pl.read_parquet(p))
    if suffix in (".csv", ".txt", ".tsv"):
        sep = "\t" if suffix == ".tsv" else ","
        df = _read(p, "CSV", lambda: pl.read_csv(p, separator=sep, infer_schema=not csv_as_strings,
                                                 encoding="utf8-lossy"), sep=sep)
        check_unique_columns(_csv_header(p, sep), f"{p}, line 1")
        return df
    raise InputError(f"{p}: unknown file type {suffix!r}; use .parquet or .csv")


def _read(p: Path, kind: str, reader, sep: str = ",") -> pl.DataFrame:
    """Run ``reader``; a file polars or Arrow cannot read is an InputError naming it."""
    try:
        return reader()
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = _ragged_line(p, sep) if kind == "CSV" else None
        detail = where or first
        raise InputError(f"{p}: cannot be read as {kind}: {detail}") from None


def _csv_header(p: Path, sep: str) -> list[str]:
    import csv

    with p.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        return next(csv.reader(fh, delimiter=sep), [])


def _ragged_line(p: Path, sep: str) -> str | None:
    """Where a CSV row has more fields than its header (the common cause of a failed read)."""
    import csv

    with p.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=sep)
        header = next(reader, [])
        for row in reader:
            if len(row) > len(header):
                return (f"line {reader.line_num} has {len(row)} fields where the header has "
                        f"{len(header)} (quote values that contain '{sep}')")
    return None


def check_unique_columns(names: list[str], where: str) -> None:
    """Raise InputError when a column name occurs twice (the second would be lost or renamed)."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        name = str(name)
        if name in seen:
            raise InputError(f"{where}: duplicate column name {name!r} (columns {seen[name]} and {i}); "
                             "rename one")
        seen[name] = i


def to_polars(data: FrameLike) -> pl.DataFrame:
    """Any accepted input as an eager polars frame (no copy where Arrow allows)."""
    kind = kind_of(data)
    if kind == "polars":
        return data
    if kind == "polars-lazy":
        return data.collect()
    if kind == "path":
        return read_path(data)
    if kind == "arrow":
        check_unique_columns(list(data.column_names), "Arrow table")
        return pl.from_arrow(data)
    check_unique_columns(list(data.columns), "pandas DataFrame")
    # pandas: go through Arrow once; an object column of mixed types becomes strings
    try:
        return pl.from_pandas(data)
    except Exception:  # mixed-type object columns: fall back to strings column by column
        cols = {}
        for name in data.columns:
            s = data[name]
            try:
                cols[str(name)] = pl.from_pandas(s)
            except Exception:
                cols[str(name)] = pl.Series(str(name), [None if v is None or v != v else str(v)
                                                         for v in s.tolist()], dtype=pl.String)
        return pl.DataFrame(cols)


def summary_like(result: pl.DataFrame, original: FrameLike) -> FrameLike:
    """A new table (one row per group, hospital, …; not row-aligned with the input)
    in the container type of ``original``: pandas / Arrow when it is, else polars.

    Unlike :func:`like` it gives pandas a fresh index, since the rows are not the input's.
    """
    kind = kind_of(original)
    if kind == "pandas":
        return result.to_pandas()
    if kind == "arrow":
        return result.to_arrow()
    return result


def like(result: pl.DataFrame, original: FrameLike) -> FrameLike:
    """Return ``result`` in the container type of ``original``.

    pandas in, pandas out (with the original index); Arrow in, Arrow out;
    polars (or a path) in, polars out.
    """
    kind = kind_of(original)
    if kind in ("polars", "polars-lazy", "path"):
        return result
    if kind == "arrow":
        return result.to_arrow()
    out = result.to_pandas()
    out.index = original.index
    return out
