"""Frames in memory: which container a table is, and any of them as a polars frame.

The part of :mod:`casemix._frames` that reads no file, so that
:mod:`casemix.io` (which writes any frame) and :mod:`casemix._frames` (which
reads paths through :mod:`casemix.io`) both use it without importing each
other (issue 16: no import cycles).
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


def from_memory(data: FrameLike) -> pl.DataFrame:
    """A polars, pandas or Arrow frame as an eager polars frame (no copy where Arrow allows).

    A path is refused: reading files is :func:`casemix._frames.to_polars`'s.
    """
    kind = kind_of(data)
    if kind == "polars":
        return data
    if kind == "polars-lazy":
        return data.collect()
    if kind == "path":
        raise InputError(f"expected a table (polars, pandas or Arrow), got the path {str(data)!r}")
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
