"""Find which input columns feed which canonical field, and check their types.

Layout precedence for diagnoses (procedures alike, with pproc / oproc /
procedures and pr/proc wide columns):

1. a principal column (``pdx``, 主要诊断编码, …) and/or secondaries
   (``sdx`` as a list or ``|``-string, or wide ``sdx1..N`` / 其他诊断编码1..N);
2. a combined column ``diagnoses`` (list or ``|``-string, principal first);
3. wide principal-first columns ``dx1..dxN`` (dx1 principal).

The first layout found is used; columns of a lower layout are then ignored
(they still pass through ``attach`` untouched).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from casemix.cases._aliases import (
    BENEFIT_ALIASES,
    CODE_ALIASES,
    SCALAR_ALIASES,
    STEP_ALIASES,
    WIDE_PREFIXES,
)
from casemix.errors import InputError

#: numeric fields present in the output only when the input has them
OPTIONAL_NUMERIC = (
    "year",
    "fund_paid",
    "patient_share",
    "deductible",
    "copay",
    "self_pay",
    "new_tech_cost",
    "audit_deduction",
)
NUMERIC_FIELDS = (
    "sex",
    "age",
    "age_days",
    "birth_weight",
    "los",
    "discharge",
    "total_cost",
    *OPTIONAL_NUMERIC,
)
TEXT_FIELDS = ("case_id", "hospital_id", "patient_id", "insurance_type", "department")
DATE_FIELDS = ("admission_date", "discharge_date")
CODE_FIELDS = tuple(CODE_ALIASES)
LAYOUT_NAMES = {
    "pdx": "dx",
    "sdx": "dx",
    "diagnoses": "dx",
    "pproc": "proc",
    "oproc": "proc",
    "procedures": "proc",
}
_WIDE_TARGET = re.compile(r"^(dx|sdx|pr|proc|oproc)(\d+)$")
_STRINGY = (pl.String, pl.Categorical, pl.Enum, pl.Null)


def norm_name(name: str) -> str:
    """Column-name key: NFKC, no white space, lower case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(name))).lower()


@dataclass
class CodeLayout:
    """Where one code family (diagnoses or procedures) comes from."""

    kind: str  # "split" (principal + others), "combined" or "wide"
    principal: str | None = None
    others: str | None = None  # list or |-string column of secondaries
    others_wide: list[str] = field(default_factory=list)
    combined: str | None = None
    wide: list[str] = field(default_factory=list)

    def columns(self) -> list[str]:
        cols = [self.principal, self.others, self.combined, *self.others_wide, *self.wide]
        return [c for c in cols if c is not None]


@dataclass
class Plan:
    scalars: dict[str, str]  # canonical field -> input column
    dx: CodeLayout | None
    proc: CodeLayout | None
    labels: dict[str, str]  # input column -> how it was matched, for messages


def _columns_found(df: pl.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    shown = ", ".join(repr(c) for c in cols[:60])
    return f"[{shown}{', …' if len(cols) > 60 else ''}] ({len(cols)} columns)"


def _valid_target(target: str) -> bool:
    return (
        target in SCALAR_ALIASES
        or target in CODE_ALIASES
        or target in STEP_ALIASES
        or target in BENEFIT_ALIASES
        or bool(_WIDE_TARGET.match(target))
    )


def canonical_names() -> list[str]:
    """Every name a mapping may point to, besides wide names (``dx3``, ``sdx1``, …)."""
    return sorted([*SCALAR_ALIASES, *CODE_ALIASES, *STEP_ALIASES, *BENEFIT_ALIASES])


def check_mapping(mapping: object) -> dict[str, str] | None:
    """``mapping`` as a dict, or ``InputError`` when it is not ``{column: canonical name}``."""
    if mapping is None:
        return None
    if not isinstance(mapping, Mapping):
        raise InputError(
            f"mapping must be a dict of input column -> casemix field, e.g. "
            f"{{'主要诊断': 'pdx'}}; got {type(mapping).__name__}"
        )
    for src, target in mapping.items():
        if not isinstance(src, str) or not isinstance(target, str):
            raise InputError(f"mapping {src!r} -> {target!r}: both must be column/field names (text)")
        if not _valid_target(target):
            raise InputError(
                f"mapping {src!r} -> {target!r}: {target!r} is not a canonical field; use one of "
                f"{canonical_names()} or a wide name such as dx1, sdx1, pr1, oproc1"
            )
    return dict(mapping)


def _keys(df: pl.DataFrame, mapping: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """Column -> lookup key, with the user's mapping applied first."""
    keys = {c: norm_name(c) for c in df.columns}
    labels: dict[str, str] = {}
    mapping = check_mapping(mapping)
    if not mapping:
        return keys, labels
    taken: dict[str, str] = {}
    for src, target in mapping.items():
        if src not in keys:
            raise InputError(
                f"mapping names column {src!r}, which is not in the input; "
                f"columns found: {_columns_found(df)}"
            )
        if target in taken:
            raise InputError(f"mapping sends both {taken[target]!r} and {src!r} to {target!r}")
        taken[target] = src
    # the user's choice wins: other columns that would match the same name step aside
    targets = set(taken)
    for c, k in keys.items():
        if k in targets:
            keys[c] = ""
    for target, src in taken.items():
        keys[src] = target
        labels[src] = f"mapped to {target}"
    return keys, labels


def column_index(
    df: pl.DataFrame, mapping: Mapping[str, str] | None
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Lookup key -> input columns (the mapping applied first), and how each mapped column was matched."""
    keys, labels = _keys(df, mapping)
    return _index(keys), labels


def _index(keys: dict[str, str]) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for c, k in keys.items():
        if k:
            index.setdefault(k, []).append(c)
    return index


def first_of(index: dict[str, list[str]], aliases: Sequence[str]) -> str | None:
    """The input column of the first alias present in ``index``."""
    for alias in aliases:
        hit = index.get(norm_name(alias))
        if hit:
            return hit[0]
    return None


def _wide(keys: dict[str, str], prefixes: Sequence[str]) -> list[str]:
    """Columns of the first wide family present, ordered by their number."""
    for prefix in prefixes:
        pat = re.compile("^" + re.escape(norm_name(prefix)) + r"[_\-.]?(\d+)$")
        found = [(int(m.group(1)), c) for c, k in keys.items() if (m := pat.match(k))]
        if found:
            return [c for _, c in sorted(found, key=lambda t: t[0])]
    return []


def _layout(
    index: dict[str, list[str]], keys: dict[str, str], principal: str, others: str, combined: str
) -> CodeLayout | None:
    p = first_of(index, CODE_ALIASES[principal])
    o = first_of(index, CODE_ALIASES[others])
    ow = [] if o else _wide(keys, WIDE_PREFIXES[others])
    if p or o or ow:
        return CodeLayout("split", principal=p, others=o, others_wide=ow)
    c = first_of(index, CODE_ALIASES[combined])
    if c:
        return CodeLayout("combined", combined=c)
    w = _wide(keys, WIDE_PREFIXES[combined])
    if w:
        return CodeLayout("wide", wide=w)
    return None


def _empty_numeric(s: pl.Series) -> bool:
    # pandas stores an all-empty column as float NaN; accept it where text is expected
    return s.dtype.is_numeric() and len(s) > 0 and s.null_count() == len(s)


def _type_error(df: pl.DataFrame, col: str, what: str, labels: dict[str, str]) -> InputError:
    how = f" ({labels[col]})" if col in labels else ""
    hint = ""
    if "codes" in what and df.schema[col].is_numeric():
        # the usual cause: pandas.read_csv turned 39.6500 into the float 39.65
        hint = (
            " Codes read as numbers lose their form (39.6500 -> 39.65); read the file with "
            "dtype=str, or pass its path to casemix, which reads CSV as text."
        )
    return InputError(
        f"column {col!r}{how} has type {df.schema[col]}, which cannot hold {what}; "
        f"columns found: {_columns_found(df)}.{hint}"
    )


def _check_types(df: pl.DataFrame, plan: Plan) -> None:
    for name, col in plan.scalars.items():
        dt = df.schema[col]
        if name in NUMERIC_FIELDS:
            ok = dt.is_numeric() or isinstance(dt, _STRINGY)
            what = f"{name} (a number or text)"
        elif name in DATE_FIELDS:
            ok = dt == pl.Date or isinstance(dt, (pl.Datetime, *_STRINGY)) or dt.is_numeric()
            what = f"{name} (a date or text)"
        else:
            ok = dt.is_numeric() or isinstance(dt, _STRINGY)
            what = f"{name} (an identifier, text or integer)"
        if not ok:
            raise _type_error(df, col, what, plan.labels)
    for layout, label in ((plan.dx, "diagnosis"), (plan.proc, "procedure")):
        if layout is None:
            continue
        scalar_cols = [layout.principal, *layout.others_wide, *layout.wide]
        for col in (c for c in scalar_cols if c is not None):
            if not isinstance(df.schema[col], _STRINGY) and not _empty_numeric(df[col]):
                raise _type_error(df, col, f"{label} codes (text)", plan.labels)
        for col in (c for c in (layout.others, layout.combined) if c is not None):
            dt = df.schema[col]
            inner = dt.inner if isinstance(dt, (pl.List, pl.Array)) else None
            ok = (
                isinstance(dt, _STRINGY)
                or _empty_numeric(df[col])
                or (inner is not None and isinstance(inner, _STRINGY))
            )
            if not ok:
                raise _type_error(
                    df, col, f"{label} codes (a list of text or a '|'-separated string)", plan.labels
                )


def resolve(df: pl.DataFrame, mapping: Mapping[str, str] | None, required: Sequence[str]) -> Plan:
    """Match input columns to canonical fields; raise InputError on a missing
    required column or an unusable column type."""
    keys, labels = _keys(df, mapping)
    index = _index(keys)
    scalars = {}
    for name, aliases in SCALAR_ALIASES.items():
        col = first_of(index, aliases)
        if col is not None:
            scalars[name] = col
            labels.setdefault(col, f"read as {name}")
    dx = _layout(index, keys, "pdx", "sdx", "diagnoses")
    proc = _layout(index, keys, "pproc", "oproc", "procedures")
    for layout, what in ((dx, "diagnoses"), (proc, "procedures")):
        for col in layout.columns() if layout else []:
            labels.setdefault(col, f"read as {what}")
    plan = Plan(scalars, dx, proc, labels)

    for name in required:
        if name in LAYOUT_NAMES:
            family = plan.dx if LAYOUT_NAMES[name] == "dx" else plan.proc
            if family is None:
                what = (
                    "diagnoses: a pdx/sdx pair, a 'diagnoses' list or '|'-string column, "
                    "dx1..dxN, or 主要诊断编码 + 其他诊断编码1..N"
                    if LAYOUT_NAMES[name] == "dx"
                    else "procedures: a pproc/oproc pair, a 'procedures' list or '|'-string column, "
                    "pr1..prN, or 主要手术操作编码 + 其他手术操作编码1..N"
                )
                raise InputError(
                    f"required column {name!r} not found; expected {what}. "
                    f"Columns found: {_columns_found(df)}. "
                    f"Name yours with mapping={{'<column>': '{name}'}}."
                )
        elif name in SCALAR_ALIASES:
            if name not in plan.scalars:
                looked_for = ", ".join(SCALAR_ALIASES[name])
                raise InputError(
                    f"required column {name!r} not found (looked for: {looked_for}). "
                    f"Columns found: {_columns_found(df)}. "
                    f"Name yours with mapping={{'<column>': '{name}'}}."
                )
        else:
            raise InputError(
                f"required names unknown field {name!r}; use canonical names such as "
                f"{sorted([*SCALAR_ALIASES, *CODE_ALIASES])}"
            )
    _check_types(df, plan)
    return plan
