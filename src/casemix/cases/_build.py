"""Build the canonical case frame from a resolved plan, in stages.

Stage 1 folds each used text column once; stage 2 parses numbers and
dates and gathers the raw codes, which are then normalised through their
distinct values; stage 3 derives the final values; stage 4
collects ``malformed`` and ``intake_warnings``.  Each stage is one
``with_columns`` over the whole frame, so every row is handled by the same
vectorised expressions and the row count and order cannot change.
"""

from __future__ import annotations

import polars as pl

from casemix.cases import _normalise as N
from casemix.cases._aliases import DISCHARGE_WORDS, SEX_WORDS
from casemix.cases._plausible import implausible_exprs
from casemix.cases._resolve import NUMERIC_FIELDS, OPTIONAL_NUMERIC, CodeLayout, Plan

CANONICAL_SCHEMA: dict[str, pl.DataType] = {
    "case_id": pl.String(),
    "hospital_id": pl.String(),
    "sex": pl.Float64(),
    "age": pl.Float64(),
    "age_days": pl.Float64(),
    "birth_weight": pl.Float64(),
    "los": pl.Float64(),
    "discharge": pl.Float64(),
    "total_cost": pl.Float64(),
    "pdx": pl.String(),
    "sdx": pl.List(pl.String()),
    "pproc": pl.String(),
    "oproc": pl.List(pl.String()),
    "malformed": pl.List(pl.String()),
    "intake_warnings": pl.List(pl.String()),
}
OPTIONAL_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "admission_date": pl.Date(),
    "discharge_date": pl.Date(),
    "insurance_type": pl.String(),
    "department": pl.String(),
    "year": pl.Int32(),
    "fund_paid": pl.Float64(),
    "patient_share": pl.Float64(),
    "deductible": pl.Float64(),
    "copay": pl.Float64(),
    "self_pay": pl.Float64(),
    "new_tech_cost": pl.Float64(),
    "audit_deduction": pl.Float64(),
}
_WORDS = {"sex": SEX_WORDS, "discharge": DISCHARGE_WORDS}
_TMP = "\x00casemix:"  # prefix of working columns; cannot clash with a real column name


def _t(name: str) -> str:
    return _TMP + name


def _c(name: str) -> pl.Expr:
    return pl.col(_t(name))


def _empty_list() -> pl.Expr:
    return pl.lit([], dtype=pl.List(pl.String))


def _null_text() -> pl.Expr:
    return pl.lit(None, pl.String)


class _Stages:
    def __init__(self) -> None:
        self.s: list[list[pl.Expr]] = [[], [], [], []]

    def add(self, stage: int, name: str, expr: pl.Expr) -> None:
        self.s[stage - 1].append(expr.alias(_t(name)))


def text_number(name: str, txt: pl.Expr) -> pl.Expr:
    """Float64 of a numeric field given as text (``txt``: folded and trimmed, a column reference).

    Shared with the direct path (``casemix.drg.direct``), which must read a
    text number exactly as intake does.
    """
    return N.parse_number(txt, _WORDS.get(name))


def text_number_bad(txt: pl.Expr, raw: pl.Expr) -> pl.Expr:
    """Whether a numeric text is malformed: not empty, but not a finite number."""
    return (txt.str.len_bytes() > 0).fill_null(False) & ~raw.is_finite().fill_null(False)


def text_date_bad(txt: pl.Expr, date: pl.Expr) -> pl.Expr:
    """Whether a date text is malformed: not empty, but not read as a date."""
    return (txt.str.len_bytes() > 0).fill_null(False) & date.is_null()


def _scalars(st: _Stages, df: pl.DataFrame, plan: Plan) -> tuple[list[str], list[str]]:
    """Numeric, date and text fields; returns the fields that can be malformed."""
    schema = df.schema
    numeric_flags, date_flags = [], []
    for name in NUMERIC_FIELDS:
        col = plan.scalars.get(name)
        if col is None:
            if name not in OPTIONAL_NUMERIC:
                st.add(3, name, pl.lit(None, pl.Float64))
            continue
        dt = schema[col]
        if dt == pl.Null:
            st.add(3, name, pl.lit(None, pl.Float64))
            continue
        raw = _c("raw_" + name)
        if dt.is_numeric():
            st.add(2, "raw_" + name, pl.col(col).cast(pl.Float64))
            # NaN is how pandas writes "missing"; an infinity is a broken value
            bad = raw.is_infinite().fill_null(False)
        else:
            st.add(1, "txt_" + name, N.fold(pl.col(col)).str.strip_chars())
            st.add(2, "raw_" + name, text_number(name, _c("txt_" + name)))
            bad = text_number_bad(_c("txt_" + name), raw)
        value = N.finite(raw)
        if name == "year":  # a year is a whole number
            bad = bad | (value != value.floor()).fill_null(False)
            value = pl.when(value == value.floor()).then(value).otherwise(None).cast(pl.Int32, strict=False)
        st.add(3, "bad_" + name, bad)
        st.add(3, name, value)
        numeric_flags.append(name)
    for name in ("admission_date", "discharge_date"):
        col = plan.scalars.get(name)
        if col is None:
            continue
        dt = schema[col]
        if dt == pl.Date or dt == pl.Null:
            st.add(3, name, pl.col(col).cast(pl.Date))
            continue
        if isinstance(dt, pl.Datetime):
            st.add(3, name, pl.col(col).dt.date())
            continue
        if dt.is_numeric():  # YYYYMMDD or an Excel serial day; NaN is pandas' "missing"
            st.add(2, name, N.date_of(pl.col(col), dt))
            st.add(
                3,
                "bad_" + name,
                pl.col(col).cast(pl.Float64).fill_nan(None).is_not_null() & _c(name).is_null(),
            )
        else:
            st.add(1, "txt_" + name, N.fold(pl.col(col)).str.strip_chars())
            st.add(2, name, N.date_of(_c("txt_" + name), pl.String()))
            st.add(3, "bad_" + name, text_date_bad(_c("txt_" + name), _c(name)))
        date_flags.append(name)
    for name in ("case_id", "hospital_id", "patient_id", "insurance_type", "department"):
        col = plan.scalars.get(name)
        if col is not None:
            st.add(1, "txt_" + name, N.fold(N.text_id(pl.col(col), schema[col])).str.strip_chars())
            st.add(3, name, N.nonempty(_c("txt_" + name)))
        elif name == "case_id":
            st.add(3, name, pl.int_range(1, pl.len() + 1).cast(pl.String))
        elif name == "hospital_id":
            st.add(3, name, _null_text())
    return numeric_flags, date_flags


def _compact(df: pl.DataFrame, cols: list[str]) -> pl.Series:
    """The non-null values of wide columns as one List(String) per row, in column order.

    Built from offsets (numpy) rather than ``pl.concat_list``, which is
    very slow for dozens of string columns; the work is proportional to the
    codes present, not to rows x columns.
    """
    import numpy as np
    import pyarrow as pa

    n = df.height
    rows, values = [], []
    for col in cols:
        if not N.is_stringy(df.schema[col]):  # an all-empty numeric column (pandas NaN)
            continue
        s = df.get_column(col).cast(pl.String)
        present = s.is_not_null()
        rows.append(np.flatnonzero(present.to_numpy()))
        values.append(s.filter(present))
    if not values:
        return pl.Series([[]] * n, dtype=pl.List(pl.String))
    r = np.concatenate(rows)
    order = np.argsort(r, kind="stable")  # stable: codes of one row keep their column order
    flat = pl.concat(values).gather(pl.Series(order, dtype=pl.Int64)).cast(pl.String)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n), out=offsets[1:])
    arr = pa.LargeListArray.from_arrays(pa.array(offsets), flat.to_arrow())
    return pl.Series(arr).cast(pl.List(pl.String))


def _codes(
    st: _Stages,
    df: pl.DataFrame,
    layout: CodeLayout | None,
    principal: str,
    others: str,
    code_cols: list[tuple[str, bool]],
    others_of: list[tuple[str, str, bool]],
) -> None:
    """The principal code and the list of other codes of one family.

    Stage 2 gathers the raw codes into working columns (named in
    ``code_cols`` with whether they are lists); ``build`` normalises those
    through their distinct values before stage 3 reads them.  The list of
    other codes is left to ``build`` (``others_of``: output name, working
    column, whether its first position is the principal) because whether it
    needs a null clean-up is only known after normalisation.
    """
    if layout is None:
        st.add(3, principal, _null_text())
        st.add(3, others, _empty_list())
        return
    schema = df.schema

    def scalar(col: str) -> pl.Expr:
        if not N.is_stringy(schema[col]):  # an all-empty numeric column (pandas NaN)
            return _null_text()
        return pl.col(col).cast(pl.String)

    def as_list(col: str, tmp: str) -> pl.Expr:
        dt = schema[col]
        if isinstance(dt, pl.Array):
            return pl.col(col).arr.to_list().cast(pl.List(pl.String))
        if isinstance(dt, pl.List):
            return pl.col(col).cast(pl.List(pl.String))
        if not N.is_stringy(dt):
            return pl.lit(None, pl.List(pl.String))
        # a "|"-string: fold the whole string first so that a full-width ｜ separates too
        st.add(1, tmp, N.fold(pl.col(col)))
        if not df.get_column(col).cast(pl.String).str.len_bytes().eq(0).any():
            return _c(tmp).str.split("|")  # NFKC never folds a text to "", so the check holds after fold
        # "" (no codes, common for procedures) would split into [""], whose empty code
        # normalises to null and forces a mapping and a null clean-up pass over every list
        return pl.when(_c(tmp).str.len_bytes() > 0).then(_c(tmp).str.split("|")).otherwise(_empty_list())

    key = principal + "_"
    if layout.kind in ("split", "wide"):
        if layout.kind == "wide":
            # the lowest-numbered column is the principal, empty or not; the rest are the others
            p, o = scalar(layout.wide[0]), pl.lit(_compact(df, layout.wide[1:]))
        else:
            p = scalar(layout.principal) if layout.principal else _null_text()
            if layout.others:
                o = as_list(layout.others, key + "txt")
            elif layout.others_wide:
                o = pl.lit(_compact(df, layout.others_wide))
            else:
                o = _empty_list()
        st.add(2, key + "p", p)
        st.add(2, key + "o", o)
        code_cols += [(key + "p", False), (key + "o", True)]
        st.add(3, principal, _c(key + "p"))
        others_of.append((others, key + "o", False))
        return
    if layout.combined is None:
        raise ValueError(f"a {layout.kind!r} code layout without its column")
    st.add(2, key + "all", as_list(layout.combined, key + "txt"))
    code_cols.append((key + "all", True))
    # the first position is the principal even when empty: "|B02" has no principal
    st.add(3, principal, _c(key + "all").list.first())
    others_of.append((others, key + "all", True))


_SLICE = 1 << 18


def _normalise_codes(df: pl.DataFrame, code_cols: list[tuple[str, bool]]) -> tuple[list[pl.Expr], set[str]]:
    """Expressions replacing the raw code columns by their normalised codes,
    and the working columns that hold a null (list or code) afterwards.

    Codes repeat a lot (a few ten thousand distinct codes in millions of
    cells), so the string clean-up runs once per distinct value.  Only the
    codes it changes are mapped; a column none of whose codes change (clean
    input, the usual case) is reused as it is, which saves a pass over every
    cell and a second copy of every code string.
    """
    if not code_cols:
        return [], set()
    parts = {}
    may_hold_null = set()
    for n, is_list in code_cols:
        col = df.get_column(_t(n))
        if is_list and col.null_count():
            may_hold_null.add(n)
        distinct = []
        # in slices of rows, so that the exploded codes never exist all at once (peak memory)
        for start in range(0, max(col.len(), 1), _SLICE):
            s = col.slice(start, _SLICE)
            if is_list:
                s = s.list.explode(empty_as_null=False, keep_nulls=False)  # the codes, without [] / null rows
            if s.null_count():
                may_hold_null.add(n)
            # maintain_order: the single-threaded path costs well under half the CPU here
            distinct.append(s.drop_nulls().unique(maintain_order=True))
        parts[n] = pl.concat(distinct).unique(maintain_order=True).rename("old")
    old = pl.concat(list(parts.values())).unique(maintain_order=True)
    # an empty code becomes null here, so that lists only need drop_nulls later
    new = (
        pl.DataFrame({"old": old})
        .select(N.code_chain(N.fold(pl.col("old"))).alias("new"))
        .select(N.nonempty(pl.col("new")))
        .to_series()
    )
    changed = new.ne_missing(old)
    old, new = old.filter(changed), new.filter(changed)
    nulled = old.filter(new.is_null())
    exprs = []
    for n, is_list in code_cols:
        if old.is_empty() or not parts[n].is_in(old.implode()).any():
            continue
        if not nulled.is_empty() and parts[n].is_in(nulled.implode()).any():
            may_hold_null.add(n)
        e = _c(n).list.eval(pl.element().replace(old, new)) if is_list else _c(n).replace(old, new)
        exprs.append(e.alias(_t(n)))
    return exprs, may_hold_null


def _others(tmp: str, after_first: bool, may_hold_null: bool) -> pl.Expr:
    """The list of other codes: nulls (empty codes, null lists) dropped.

    The clean-up is a full pass over every list, so it is skipped when the
    working column holds no null at all.
    """
    e = _c(tmp).list.slice(1) if after_first else _c(tmp)
    if may_hold_null:
        e = pl.coalesce(e.list.drop_nulls(), _empty_list())
    return e


def _found(cond: pl.Expr, code: str) -> pl.Expr:
    return pl.when(cond).then(pl.lit(code)).otherwise(_null_text())


def build(df: pl.DataFrame, plan: Plan) -> pl.DataFrame:
    """The canonical frame (see ``docs/architecture.md``) for ``df``."""
    st = _Stages()
    numeric_flags, date_flags = _scalars(st, df, plan)
    code_cols: list[tuple[str, bool]] = []
    others_of: list[tuple[str, str, bool]] = []
    _codes(st, df, plan.dx, "pdx", "sdx", code_cols, others_of)
    _codes(st, df, plan.proc, "pproc", "oproc", code_cols, others_of)

    malformed = [_found(_c("bad_" + n), n) for n in numeric_flags]
    warnings = [
        _found(_c("total_cost") < 0, "negative_cost"),
        _found(_c("los") < 0, "negative_los"),
        *[_found(cond, code) for code, cond in implausible_exprs(_c)],
        *[_found(_c("bad_" + n), f"malformed:{n}") for n in (*numeric_flags, *date_flags)],
        _found(_c("pdx").is_null() & (_c("sdx").list.len() > 0), "missing_pdx"),
    ]
    st.add(4, "malformed", pl.concat_list(malformed).list.drop_nulls() if malformed else _empty_list())
    st.add(4, "intake_warnings", pl.concat_list(warnings).list.drop_nulls())

    out_cols = [*CANONICAL_SCHEMA, *(n for n in OPTIONAL_SCHEMA if n in plan.scalars)]
    types = {**CANONICAL_SCHEMA, **OPTIONAL_SCHEMA}
    lf = df.lazy()
    for exprs in st.s[:2]:
        if exprs:
            lf = lf.with_columns(exprs)
    raw = lf.collect()
    lf = raw.lazy()
    normalised, may_hold_null = _normalise_codes(raw, code_cols)
    for name, tmp, after_first in others_of:
        st.add(3, name, _others(tmp, after_first, tmp in may_hold_null))
    for exprs in (normalised, *st.s[2:]):
        if exprs:
            lf = lf.with_columns(exprs)
    return lf.select([_c(n).cast(types[n]).alias(n) for n in out_cols]).collect()
