"""Vectorised polars expressions that clean input columns.

Nothing here loops over rows.  Each helper builds a *single chain* over
its input: polars does not share common sub-expressions inside
``when``/``list.eval``, so an expression used twice is computed twice.
Callers (``casemix.cases._build``) therefore materialise intermediate
columns in stages and pass plain column references to the helpers that
look at a value more than once.
"""

from __future__ import annotations

import datetime

import polars as pl

_STRINGY = (pl.String, pl.Categorical, pl.Enum, pl.Null)


def is_stringy(dtype: pl.DataType) -> bool:
    return isinstance(dtype, _STRINGY)


def fold(ref: pl.Expr) -> pl.Expr:
    """NFKC (full-width → ASCII) only where a value has a non-ASCII byte.

    ``ref`` should be a cheap column reference: it is used three times.
    The ASCII test skips most of the cost of NFKC on clean data.
    """
    s = ref.cast(pl.String)
    return pl.when(s.str.len_bytes() != s.str.len_chars()).then(s.str.normalize("NFKC")).otherwise(s)


def code_chain(e: pl.Expr) -> pl.Expr:
    """Normalise ICD codes (already folded by :func:`fold`); empty stays ``""``.

    Trim; dagger ``†`` written as ``+`` and spaces around ``+``/``*``
    removed, so a dagger/asterisk pair stays one code (``A17.000+G01*``);
    a dagger mark with no partner is dropped; letters upper-cased except
    ``x`` after the first character of each code of a pair
    (``C34.100x001``, ``G35.x03``, ``00.5500x008``).
    """
    return (
        e.str.replace_all("†", "+", literal=True)
        .str.strip_chars()
        # white space next to the pair marks is layout, not part of a code
        .str.replace_all(r"\s*\+\s*", "+")
        .str.replace_all(r"\s+\*", "*")
        .str.strip_chars_end("+")
        .str.to_uppercase()
        .str.replace_all("X", "x", literal=True)
        # ... but a code, or the asterisk half of a pair, may start with the letter X
        .str.replace(r"^x", "X")
        .str.replace_all("+x", "+X", literal=True)
    )


def text_id(e: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """An identifier column as text (``e`` a column reference)."""
    if dtype.is_float():  # pandas turns an integer id column with gaps into floats: 12345.0 → "12345"
        e = (
            # a whole number past int64 (1e20, inf) stays as written, not a null id
            pl.when((e == e.floor()) & (e.abs() < 2.0**63))
            .then(e.cast(pl.Int64, strict=False).cast(pl.String))
            .otherwise(e.cast(pl.String))
        )
    return e.cast(pl.String)


def nonempty(ref: pl.Expr) -> pl.Expr:
    """``ref`` with empty strings as null (``ref`` a column reference)."""
    return pl.when(ref.str.len_bytes() > 0).then(ref).otherwise(None)


_THOUSANDS = r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$"


def parse_number(txt: pl.Expr, words: dict[str, str] | None = None) -> pl.Expr:
    """Float64 of folded, trimmed text (``txt`` a column reference).

    ``1,234.5`` thousands separators are dropped; ``words`` (upper-case
    keys) map names such as 男 or 死亡 to their codes first.  What does not
    parse is null; infinities and NaN are left for the caller to reject.
    """
    t = pl.when(txt.str.contains(_THOUSANDS)).then(txt.str.replace_all(",", "", literal=True)).otherwise(txt)
    if words:
        t = t.str.to_uppercase().replace(words)
    return t.cast(pl.Float64, strict=False)


def finite(ref: pl.Expr) -> pl.Expr:
    """``ref`` with NaN and ±inf as null."""
    return pl.when(ref.is_finite()).then(ref).otherwise(None)


# the year's first digit is not 0: the same years 1000-9999 as a YYYYMMDD number, and no year 0
# (``0000-01-01``, a placeholder some exports write), which polars holds but Python's date cannot
_DATE = r"^([1-9]\d{3})[-/.年](\d{1,2})[-/.月](\d{1,2})"
_COMPACT_DATE = r"^([1-9]\d{3})(\d{2})(\d{2})"


def parse_date(txt: pl.Expr) -> pl.Expr:
    """Date of folded, trimmed text (``txt`` a column reference).

    Accepts ``2024-01-05``, ``2024/1/5``, ``2024.1.5``, ``2024年1月5日`` and
    ``20240105``; anything after the date (a time) is ignored.  Impossible
    dates (month 13), years before 1000 and other text give null.
    """

    def ymd(pattern: str) -> pl.Expr:
        return pl.concat_str(
            txt.str.extract(pattern, 1),
            pl.lit("-"),
            txt.str.extract(pattern, 2).str.zfill(2),
            pl.lit("-"),
            txt.str.extract(pattern, 3).str.zfill(2),
        )

    return pl.coalesce(ymd(_DATE), ymd(_COMPACT_DATE)).str.to_date("%Y-%m-%d", strict=False)


# Excel stores a date as days since 1899-12-30 (its 1900 date system, with the
# phantom 1900-02-29); whole parts 10000..99999 are 1927-05-18 to 2173-10-13.
_EXCEL_EPOCH = datetime.date(1899, 12, 30)
_SERIAL = (10_000, 100_000)
_YYYYMMDD = (10_000_101, 99_991_232)


def date_of_number(num: pl.Expr) -> pl.Expr:
    """Date of a Float64 number: ``20240105`` (YYYYMMDD, whole) or an Excel serial day.

    ``num`` should be a column reference (it is used several times).  A
    serial's fraction (the time of day) is ignored.  Other numbers give null.
    """
    whole = num == num.floor()
    ymd = pl.when(whole & (num >= _YYYYMMDD[0]) & (num < _YYYYMMDD[1])).then(num)
    serial = pl.when((num >= _SERIAL[0]) & (num < _SERIAL[1])).then(num.floor())
    return pl.coalesce(
        ymd.cast(pl.Int64).cast(pl.String).str.to_date("%Y%m%d", strict=False),
        pl.lit(_EXCEL_EPOCH) + pl.duration(days=serial.cast(pl.Int64)),
    )


_SERIAL_TEXT = r"^\d{5}(\.\d*)?$"


def date_of(ref: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Date of a column of any type (``ref`` a column reference): the one date rule.

    Date passes; Datetime keeps its date; numbers are ``YYYYMMDD`` or Excel
    serial days (:func:`date_of_number`); text is folded and trimmed, then
    read by :func:`parse_date`, or as a serial when it is five digits (an
    Excel cell exported without its date format).  What does not parse is
    null; the caller compares with the input to call it malformed.
    """
    if dtype == pl.Date:
        return ref
    if isinstance(dtype, pl.Datetime):
        return ref.dt.date()
    if dtype == pl.Null:
        return ref.cast(pl.Date)
    if dtype.is_numeric():
        return date_of_number(ref.cast(pl.Float64))
    txt = fold(ref).str.strip_chars()
    serial = pl.when(txt.str.contains(_SERIAL_TEXT)).then(txt).cast(pl.Float64, strict=False)
    return pl.coalesce(parse_date(txt), date_of_number(serial))
