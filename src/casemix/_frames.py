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


def read_path(
    path: str | Path,
    *,
    csv_as_strings: bool = True,
    encoding: str | None = None,
    sheet: str | int | None = None,
) -> pl.DataFrame:
    """Read a table file (CSV in any common encoding, Excel, Parquet or a folder of it).

    CSV columns are read as strings so that codes such as ``0101`` keep their
    leading zeros; the intake step parses numbers itself and reports what
    does not parse.  The rules (encodings, bad bytes, errors) are
    :func:`casemix.io.read_table`'s.
    """
    from casemix.io import read_table

    return read_table(path, encoding=encoding, sheet=sheet, infer_schema=not csv_as_strings)


def check_unique_columns(names: list[str], where: str) -> None:
    """Raise InputError when a column name occurs twice (the second would be lost or renamed)."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        name = str(name)
        if name in seen:
            raise InputError(
                f"{where}: duplicate column name {name!r} (columns {seen[name]} and {i}); rename one"
            )
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
        frame = pl.from_arrow(data)
        return frame if isinstance(frame, pl.DataFrame) else frame.to_frame()
    check_unique_columns(list(data.columns), "pandas DataFrame")
    # pandas: go through Arrow once; an object column of mixed types becomes strings
    import pyarrow as pa

    # what pyarrow and polars raise on an object column of mixed types: Arrow and polars
    # errors, TypeError / ValueError from the constructors, OverflowError for ints past int64
    mixed = (pa.ArrowException, pl.exceptions.PolarsError, TypeError, ValueError, OverflowError)
    try:
        return pl.from_pandas(data)
    except mixed:  # mixed-type object columns: fall back to strings column by column
        cols: dict[str, pl.Series] = {}
        for name in data.columns:
            s = data[name]
            try:
                series = pl.from_pandas(s)
                # a pandas Series gives a Series (the stubs cannot tell, pandas being untyped here)
                cols[str(name)] = series if isinstance(series, pl.Series) else series.to_series()
            except mixed:
                cols[str(name)] = pl.Series(
                    str(name), [None if v is None or v != v else str(v) for v in s.tolist()], dtype=pl.String
                )
        return pl.DataFrame(cols)


def number(value: object) -> float | None:
    """A polars scalar of a numeric column (a ``median()``, ``sum()``, …) as a float; None stays None.

    polars types such scalars as any Python value a column can hold; this
    says which one a numeric column gives.
    """
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")


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
