"""Case intake: any accepted input → the canonical polars case frame.

``read_cases`` finds the columns (English names, the Chinese names of the
医保结算清单 / 病案首页, or the user's ``mapping``), detects the layout of
diagnoses and procedures (list columns, ``|``-separated strings, wide
columns), normalises codes and numbers with vectorised polars expressions
and records data-quality findings per row.  It never drops or reorders a
row; only a structurally unusable input raises
:class:`casemix.errors.InputError`.  The rules are documented in
``docs/cases.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from casemix._frames import FrameLike, kind_of, like, read_path, to_polars
from casemix.cases._build import CANONICAL_SCHEMA, OPTIONAL_SCHEMA, build
from casemix.cases._canonical import Canonical, canonical, parse_dates, parse_numbers
from casemix.cases._mapfile import read_mapping
from casemix.cases._resolve import resolve
from casemix.errors import InputError

__all__ = [
    "read_cases",
    "attach",
    "canonical",
    "Canonical",
    "parse_numbers",
    "parse_dates",
    "read_mapping",
    "CANONICAL_SCHEMA",
    "OPTIONAL_SCHEMA",
]


def read_cases(
    data: FrameLike, *, mapping: Mapping[str, str] | None = None, required: Sequence[str] = ("pdx",)
) -> pl.DataFrame:
    """Read cases into the canonical polars case frame.

    Parameters
    ----------
    data
        A pandas or polars DataFrame, a polars LazyFrame, a pyarrow Table, or
        the path of a Parquet or CSV file (CSV is read as text so codes keep
        their leading zeros).
    mapping
        ``{your column: canonical name}``; it takes precedence over the
        built-in English and Chinese aliases (``docs/cases.md``).  Targets
        are canonical fields (``age``, ``pdx``, ``diagnoses``, …) or wide
        names (``dx3``, ``sdx1``, ``pr2``, ``oproc1``).
    required
        Canonical fields whose column must exist.  ``"pdx"`` (or ``"sdx"``,
        ``"diagnoses"``) means some diagnosis layout exists; ``"pproc"``
        (or ``"oproc"``, ``"procedures"``) some procedure layout.

    Returns
    -------
    polars.DataFrame
        One row per input row, in input order, with the columns of
        ``docs/architecture.md`` ("Canonical case frame"): ``case_id``,
        ``hospital_id``, ``sex``, ``age``, ``age_days``, ``birth_weight``,
        ``los``, ``discharge``, ``total_cost``, ``pdx``, ``sdx``, ``pproc``,
        ``oproc``, ``malformed``, ``intake_warnings``, then ``patient_id``,
        ``admission_date``, ``discharge_date``, ``insurance_type``,
        ``department``, ``year`` when the input has them.

    Raises
    ------
    casemix.errors.InputError
        A required column is missing, a column has a type that cannot hold
        its field (a struct as age, numbers as diagnoses), or ``mapping``
        names a column or field that does not exist.  Bad *values* never
        raise: they become null and are listed in ``malformed`` /
        ``intake_warnings``.

    Examples
    --------
    >>> import polars as pl
    >>> from casemix.cases import read_cases
    >>> df = pl.DataFrame({"病案号": ["A1"], "性别": ["男"], "年龄": ["６０"],
    ...                    "diagnoses": ["c34.100X001|i10.x00"]})
    >>> row = read_cases(df).row(0, named=True)
    >>> row["case_id"], row["sex"], row["age"], row["pdx"], row["sdx"]
    ('A1', 1.0, 60.0, 'C34.100x001', ['I10.x00'])
    """
    df = to_polars(data)
    plan = resolve(df, mapping, tuple(required))
    return build(df, plan)


def attach(original: FrameLike, result_cols: pl.DataFrame) -> Any:
    """Return ``original`` with the columns of ``result_cols`` appended.

    The container type is kept: pandas in → pandas out (original index),
    polars → polars (a LazyFrame is collected), Arrow → Arrow, a path →
    polars.  A result column whose name already exists in the input
    replaces it in place (its position is kept); the other input columns are
    untouched.

    Raises
    ------
    casemix.errors.InputError
        ``result_cols`` does not have one row per input row.
    """
    kind = kind_of(original)
    if kind == "path":
        original, kind = read_path(original), "polars"
    elif kind == "polars-lazy":
        original, kind = original.collect(), "polars"
    n = original.num_rows if kind == "arrow" else len(original)
    if result_cols.height != n:
        raise InputError(f"cannot attach {result_cols.height} result rows to an input of {n} rows")
    if kind == "polars":
        return original.with_columns(result_cols.get_columns())
    converted = like(result_cols, original)  # the caller's container type, once
    if kind == "arrow":
        table = original
        for name in converted.column_names:
            i = table.schema.get_field_index(name)
            col = converted.column(name)
            table = table.set_column(i, name, col) if i >= 0 else table.append_column(name, col)
        return table
    out = original.copy(deep=False)  # the caller's frame stays as it was
    for name in converted.columns:
        out[name] = converted[name].to_numpy()  # by position: the index may repeat labels
    return out
