"""Frame conversion at the edges: pandas / polars / Arrow / files in, the caller's type out.

Inside casemix every step works on polars frames; conversion happens once at
the edge, through Arrow, so pandas and polars users both get their own type
back.  What needs no file (the container kinds, in-memory conversion) is in
:mod:`casemix._frame_types`, which :mod:`casemix.io` uses too.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from casemix._frame_types import FrameLike, from_memory, kind_of
from casemix.errors import InputError


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


def to_polars(data: FrameLike) -> pl.DataFrame:
    """Any accepted input as an eager polars frame (no copy where Arrow allows); a path is read."""
    if kind_of(data) == "path":
        return read_path(data)
    return from_memory(data)


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


def first_non_number(values: pl.Series) -> int | None:
    """Row of the first value that is given but is no number (text such as ``"abc"``), or None.

    ``cast(pl.Float64, strict=False)`` reads such a value as null, which the money side
    takes for "not given" (no short stay, no table threshold): a caller that reads nulls
    that way checks this first, so a typo is reported, never read as a blank cell.
    """
    if values.dtype.is_numeric() or values.dtype == pl.Null:
        return None  # nothing to misread (and no per-row temporary for 10M numbers)
    bad = values.is_not_null() & values.cast(pl.Float64, strict=False).is_null()
    return int(bad.arg_true()[0]) if bad.any() else None


def require_numbers(df: pl.DataFrame, name: str, case_id: pl.Series, *, what: str) -> None:
    """Refuse a case column holding a value that is given but is no number (see :func:`first_non_number`).

    Raises
    ------
    InputError
        Naming the column, the row (0-based), the case id and the value.
    """
    raw = df[name]
    i = first_non_number(raw)
    if i is not None:
        raise InputError(
            f"{name} ({what}) is not a number at row {i} (case_id {case_id[i]!r}): {raw[i]!r}; "
            "give a number, or leave the cell empty where it is not known"
        )


def require_table_numbers(table: pl.DataFrame, name: str, *, fix: str) -> None:
    """Refuse a weight table column holding text that is no number (see :func:`first_non_number`).

    Cast to null, such a value would read as "the table gives none for this DRG".

    Raises
    ------
    InputError
        Naming the column, the DRG, the row (0-based), the value and ``fix``.
    """
    i = first_non_number(table[name]) if name in table.columns else None
    if i is not None:
        raise InputError(
            f"weight table: {name} of DRG {table['drg'][i]!r} (row {i}) is {table[name][i]!r}, "
            f"which is no number; {fix}"
        )


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
