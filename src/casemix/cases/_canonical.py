"""One vocabulary for every step: find a step's columns and parse their values.

``canonical`` is what weights, settle, DIP, indicators, monitor, report and
benefits call at their entry (group calls ``read_cases``, which shares the
same column resolver and the same number and date parsers).  Columns are
found by the alias tables of ``_aliases`` (English, 医保结算清单 Chinese,
NHSA interface names) after the user's ``mapping``; values are read by the
one number rule and the one date rule of ``_normalise``.

The bad-value rule (``docs/cases.md``, "One vocabulary for every step"): a
value that is missing, malformed or (for a cost) negative is null in the
canonical frame.  In a field the step *needs*, the row is left out of the
step's computations, with its reason; the step reports the count per
reason.  In an *optional* field the value is treated as absent for that row
and counted the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from casemix._frames import FrameLike, to_polars
from casemix.cases import _normalise as N
from casemix.cases._aliases import (
    BENEFIT_ALIASES,
    DISCHARGE_WORDS,
    SCALAR_ALIASES,
    SEX_WORDS,
    STEP_ALIASES,
)
from casemix.cases._resolve import (
    CODE_FIELDS,
    DATE_FIELDS,
    NUMERIC_FIELDS,
    column_index,
    first_of,
)
from casemix.errors import InputError

__all__ = ["Canonical", "canonical", "parse_dates", "parse_numbers", "NON_NEGATIVE"]

#: fields whose negative values are bad values (money)
NON_NEGATIVE = ("total_cost", "inscp_scp_amt", "preselfpay_amt", "fulamt_ownpay_amt", "special_drug_amt")
_WORDS = {"sex": SEX_WORDS, "discharge": DISCHARGE_WORDS}
_ALIASES = {**SCALAR_ALIASES, **STEP_ALIASES, **BENEFIT_ALIASES}
_MONEY = ("inscp_scp_amt", "preselfpay_amt", "fulamt_ownpay_amt", "special_drug_amt")
_COUNTS = ("icu_days",)  # step columns read as numbers (the DIP ICU-day sub-type)
_RAW = ("referral", "major_disease")  # flags: found by name, read by their step
_ASIDE = "\x00casemix:aside:"  # an input column that shares a canonical name it does not feed
_REASONS = ("missing", "malformed", "negative")
_VALUE = "\x00casemix:value:"  # a parsed value beside the input, for the checks


@dataclass(frozen=True)
class Canonical:
    """The input of one step in casemix's vocabulary.

    Attributes
    ----------
    frame
        Every input row, in order, and every input column; the fields asked
        for are under their canonical names with parsed values (numbers
        Float64, ``year`` Int32, dates Date, identifiers String); bad values
        are null.  An input column that has a canonical name but does not
        feed that field (the mapping chose another) is renamed aside.
    columns
        Canonical field → the input column it was read from.
    left_out
        String per row: why the row is left out of the step
        (``"malformed:total_cost"`` …), null for a row that is used.
    counts
        Reason → rows: left-out rows by their first reason (fields in the
        order asked for), then bad values of optional fields.
    original
        The input as a polars frame, names and values as given.
    need
        The needed fields whose values were checked.
    """

    frame: pl.DataFrame
    columns: dict[str, str]
    left_out: pl.Series
    counts: dict[str, int] = field(default_factory=dict)
    original: pl.DataFrame = field(default_factory=pl.DataFrame)
    need: tuple[str, ...] = ()

    @property
    def used(self) -> pl.DataFrame:
        """The rows of :attr:`frame` that are not left out, in order."""
        if self.n_left_out == 0:
            return self.frame
        return self.frame.filter(self.left_out.is_null())

    @property
    def n_left_out(self) -> int:
        return self.left_out.len() - self.left_out.null_count()

    def notes(self) -> list[str]:
        """One line per reason, for a step's notes and the CLI."""
        return [
            f"{reason}: {n} row(s) {'left out' if reason.split(':', 1)[1] in self.need else 'read as absent'}"
            for reason, n in self.counts.items()
            if n
        ]

    def restore(self, out: pl.DataFrame, results: Iterable[str] | None = None) -> pl.DataFrame:
        """The caller's input (names and values as given) with the step's result columns.

        ``out`` has one row per row of :attr:`frame` or of :attr:`used`; in
        the second case left-out rows get null results.  ``results`` names
        the result columns (default: the columns of ``out`` not in
        :attr:`frame`).  A result column whose name is an input column
        replaces it in place; the column ``left_out`` is added last.
        """
        names = (
            [c for c in out.columns if c not in self.frame.columns]
            if results is None
            else [c for c in results if c != "left_out"]
        )  # added below, for every row
        # the columns themselves, not DataFrame.select: that rechunks a frame whose columns are
        # chunked differently (an input read from Parquet beside new columns), i.e. copies it all
        res = pl.DataFrame([out.get_column(c) for c in names], height=out.height)
        n = self.left_out.len()
        if res.height != n:
            if res.height != n - self.n_left_out:
                raise InputError(f"cannot restore {res.height} result rows to an input of {n} rows")
            idx = np.flatnonzero(self.left_out.is_null().to_numpy())
            res = (
                pl.DataFrame({"\x00i": np.arange(n)})
                .join(
                    res.with_columns(pl.Series("\x00i", idx)), on="\x00i", how="left", maintain_order="left"
                )
                .drop("\x00i")
            )
        return self.original.with_columns(*res.get_columns(), self.left_out.alias("left_out"))


def _kind(name: str) -> str:
    if name in NUMERIC_FIELDS or name in _MONEY or name in _COUNTS:
        return "number"
    if name in _RAW:
        return "raw"
    if name in DATE_FIELDS:
        return "date"
    if name in STEP_ALIASES:
        return "step"
    if name in SCALAR_ALIASES or name in BENEFIT_ALIASES:
        return "text"
    if name in CODE_FIELDS:
        raise InputError(f"{name!r} is a code field: read codes with casemix.cases.read_cases")
    return "plain"


def _parsed(df: pl.DataFrame, col: str, name: str, kind: str) -> tuple[pl.Expr, pl.Expr]:
    """(value, missing) expressions for input column ``col`` read as ``name``.

    A value is malformed when it is not missing and yet no value came out:
    :func:`canonical` reads that from the parsed column, for every kind.
    """
    dt = df.schema[col]
    c = pl.col(col)
    if dt == pl.Null:
        return pl.lit(None, _dtype(name, kind)), pl.lit(True)
    if kind == "number":
        if dt.is_numeric():
            raw = c.cast(pl.Float64)
            missing = raw.is_null() | raw.is_nan()
        elif N.is_stringy(dt):
            txt = N.fold(c).str.strip_chars()
            raw = N.parse_number(txt, _WORDS.get(name))
            missing = txt.is_null() | (txt.str.len_bytes() == 0)
        else:
            raise _type_error(df, col, name, "a number or text")
        # a Float64 column of finite numbers (and nulls) is its own value: no copy
        value = c if dt == pl.Float64 and _all_finite(df, col) else N.finite(raw)
        if name == "year":  # a year is a whole number
            value = pl.when(value == value.floor()).then(value).cast(pl.Int32, strict=False)
        return value, missing
    if kind == "date":
        if not (dt == pl.Date or isinstance(dt, pl.Datetime) or N.is_stringy(dt) or dt.is_numeric()):
            raise _type_error(df, col, name, "a date, a number (20240105) or text")
        value = N.date_of(c, dt)
        if dt.is_numeric():
            missing = c.cast(pl.Float64).fill_nan(None).is_null()
        elif N.is_stringy(dt):
            missing = c.is_null() | (c.cast(pl.String).str.strip_chars().str.len_bytes() == 0)
        else:
            missing = c.is_null()
        return value, missing
    if not (dt.is_numeric() or N.is_stringy(dt)):
        raise _type_error(df, col, name, "an identifier, text or integer")
    # integers (digits and a sign) and clean text have nothing to fold, trim or find empty
    if dt.is_integer() or (N.is_stringy(dt) and _clean_text(df, col)):
        value = c.cast(pl.String)
    else:
        value = N.nonempty(N.fold(N.text_id(c, dt)).str.strip_chars())
    return value, value.is_null()


def _all_finite(df: pl.DataFrame, col: str) -> bool:
    return df.height >= _SHORTCUT_ROWS and bool(df.select(pl.col(col).is_finite().all()).item())


#: rows from which :func:`_clean_text` looks for a shortcut (below, the full rule is cheap)
_SHORTCUT_ROWS = 100_000
#: at most this many distinct values in the first 10,000: test the distinct values
_FEW = 1_000


def _clean_text(df: pl.DataFrame, col: str) -> bool:
    """True when the text column would read as itself: no value to fold, trim or empty out.

    Identifier columns of millions of rows (hospital, pool, case id) are
    nearly always clean, and the full rule (NFKC where non-ASCII, trim,
    empty → null) costs a pass per step over every string.  The test is a
    pass over the distinct values when they are few (a hospital or pool
    column: NFKC of Chinese text is itself), else over the byte counts
    (ASCII) and the first and last byte of every value.
    """
    if df.height < _SHORTCUT_ROWS:
        return False
    c = pl.col(col).cast(pl.String)
    few = df.select(c.head(10_000).n_unique()).item() <= _FEW
    if few:
        u = df.select(c.unique().drop_nulls())
        if u.height > df.height // 4:
            return False
        rule = N.nonempty(N.fold(c).str.strip_chars())
        return bool(u.select(rule.eq_missing(c).all()).item())
    ascii_only = c.str.len_bytes().sum() == c.str.len_chars().sum()
    # strip_chars trims Unicode white space: in ASCII text \t to \r and the space; a
    # regex test allocates one bit per value (head/tail would copy every value's view)
    trimmed = ~c.str.contains(r"^[\t-\r ]|[\t-\r ]$").any() & (c.str.len_bytes().min() > 0)
    return bool(df.select(ascii_only & trimmed).item())


def _dtype(name: str, kind: str) -> pl.DataType:
    if kind == "number":
        return pl.Int32() if name == "year" else pl.Float64()
    return pl.Date() if kind == "date" else pl.String()


def _type_error(df: pl.DataFrame, col: str, name: str, what: str) -> InputError:
    return InputError(
        f"column {col!r} (read as {name}) has type {df.schema[col]}, which cannot "
        f"hold {what}; columns: {list(df.columns)[:40]}"
    )


def canonical(
    data: FrameLike,
    mapping: Mapping[str, str] | None = None,
    *,
    need: Iterable[str] = (),
    optional: Iterable[str] = (),
    require: Iterable[str] = (),
    step: str = "this step",
) -> Canonical:
    """Find and parse the columns a step reads, in casemix's one vocabulary.

    Parameters
    ----------
    data
        The step's input: pandas, polars (eager or lazy), Arrow or a path.
    mapping
        ``{your column: canonical name}``, before the built-in aliases
        (``docs/cases.md``).  Not a dict, or an unknown canonical name:
        ``InputError``.
    need
        Fields the step cannot work without: the column must exist
        (``InputError`` naming the aliases looked for), and a row whose
        value is missing, malformed or negative (costs) is left out.
        Grouping results (``drg``, ``adrg``, ``mdc``) are only required to
        exist: a null there means "not grouped", which steps handle.  A name
        that is no canonical field (``dip_group``, ``points``) is a column
        required under exactly that name, passed through unparsed.
    optional
        Fields read when present; a bad value is null (absent for that row)
        and counted.
    require
        Fields whose column must exist, read like ``optional`` fields (for
        steps that count a bad value as absent rather than leave the row
        out, such as the indicators).
    step
        The step's name, for messages.

    Returns
    -------
    Canonical

    Examples
    --------
    >>> import polars as pl
    >>> from casemix.cases import canonical
    >>> c = canonical(pl.DataFrame({"住院总费用": ["12,345.60", "-1", "abc"], "drg": ["A", "A", "B"]}),
    ...               need=("drg", "total_cost"))
    >>> c.frame["total_cost"].to_list(), c.left_out.to_list(), c.counts
    ([12345.6, None, None], [None, 'negative:total_cost', 'malformed:total_cost'], {'malformed:total_cost': 1, 'negative:total_cost': 1})
    """
    original = to_polars(data)
    if len(set(original.columns)) != len(original.columns):
        raise InputError(f"{step}: the input has duplicate column names")
    index, _ = column_index(original, mapping)
    need = list(dict.fromkeys(need))
    require = [f for f in dict.fromkeys(require) if f not in need]
    optional = [f for f in dict.fromkeys(optional) if f not in need and f not in require]
    columns: dict[str, str] = {}
    for name in [*need, *require, *optional]:
        kind = _kind(name)
        col = (
            (name if name in original.columns else None)
            if kind == "plain"
            else first_of(index, _ALIASES[name])
        )
        if col is not None:
            columns[name] = col
        elif name in need or name in require:
            looked = ", ".join(_ALIASES.get(name, (name,)))
            raise InputError(
                f"{step} needs column {name!r} (looked for: {looked}); columns found: "
                f"{list(original.columns)[:60]}. Name yours with "
                f"mapping={{'<column>': '{name}'}} (--map FILE on the command line)."
            )
    exprs: list[pl.Expr] = []
    bad: dict[str, list[tuple[str, pl.Expr]]] = {"need": [], "optional": []}
    # the flags read each parsed value from its column (``_VALUE`` + name), computed once
    for name, col in columns.items():
        kind = _kind(name)
        if kind == "plain":
            continue
        if kind == "raw":
            exprs.append(pl.col(col).alias(name))
            continue
        value, missing = _parsed(original, col, name, kind)
        exprs.append(value.alias(name))
        parsed = pl.col(_VALUE + name)
        if kind == "text":
            missing = parsed.is_null()
        # every kind: malformed = present in the input, yet no value came out
        malformed = ~missing & parsed.is_null()
        checks = [] if kind == "step" else [("missing", missing), ("malformed", malformed)]
        if name in NON_NEGATIVE:
            checks.append(("negative", (parsed < 0).fill_null(False)))
        role = "need" if name in need else "optional"
        bad[role] += [
            (f"{r}:{name}", e.fill_null(False)) for r, e in checks if role == "need" or r != "missing"
        ]
    # an input column named like a field it does not feed steps aside
    aside = {c: _ASIDE + c for c in original.columns if c in columns and columns[c] != c}
    values = original.select(exprs)
    flags = original.with_columns(values.select(pl.all().name.prefix(_VALUE))).select(
        *(e.alias(f"n{i}") for i, (_, e) in enumerate(bad["need"])),
        *(e.alias(f"o{i}") for i, (_, e) in enumerate(bad["optional"])),
    )
    reasons = [r for r, _ in bad["need"]]
    left_out = (
        flags.select(
            pl.coalesce(pl.when(pl.col(f"n{i}")).then(pl.lit(r)) for i, r in enumerate(reasons))
        ).to_series()
        if reasons
        else pl.repeat(None, original.height, dtype=pl.String, eager=True)
    )
    left_out = left_out.alias("left_out").cast(pl.String)
    # the reasons of the rows left out only: value_counts of a column of nulls still hashes every
    # row (10M rows: 330 MB, which polars' allocator then keeps; benchmarks/README.md)
    counts = (
        dict(left_out.drop_nulls().value_counts().iter_rows())
        if left_out.null_count() < left_out.len()
        else {}
    )
    counts = {r: counts[r] for r in reasons if r in counts}
    for i, (r, _) in enumerate(bad["optional"]):
        n = int(flags[f"o{i}"].sum())
        if n:
            counts[r] = n
    # a negative cost is null too: nothing downstream may compute with it
    money = [n for n in NON_NEGATIVE if n in values.columns]
    has_negative = values.select((pl.col(n) < 0).any() for n in money).row(0) if money else ()
    values = values.with_columns(
        pl.when(pl.col(n) >= 0).then(pl.col(n)).alias(n)
        for n, neg in zip(money, has_negative, strict=True)
        if neg
    )
    frame = original.rename(aside).with_columns(values.get_columns())
    checked = tuple(n for n in need if n in columns and _kind(n) not in ("plain", "step"))
    return Canonical(
        frame=frame, columns=columns, left_out=left_out, counts=counts, original=original, need=checked
    )


def parse_numbers(values: pl.Series, field: str | None = None) -> pl.Series:
    """Float64 of any numeric or text Series by the one number rule (``docs/cases.md``).

    ``field`` (``sex``, ``discharge``) adds its words (男 → 1, 死亡 → 5).
    Missing and malformed values are null.
    """
    df = pl.DataFrame([values.alias("v")])
    value, _ = _parsed(df, "v", field or "total_cost", "number")
    return df.select(value.alias(values.name)).to_series()


def parse_dates(values: pl.Series) -> pl.Series:
    """Date of any Series by the one date rule (``docs/cases.md``): Date, Datetime,
    ``YYYYMMDD`` as text or number, ``YYYY-MM-DD``, ``YYYY/MM/DD``, ``YYYY年M月D日``,
    Excel serial days.  Missing and malformed values are null."""
    col = values.name or "values"  # the type error names the caller's Series
    df = pl.DataFrame([values.alias(col)])
    value, _ = _parsed(df, col, "date", "date")
    return df.select(value.alias(values.name)).to_series()
