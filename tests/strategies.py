"""Hypothesis strategies shared by the test suite.

One section per pipeline step; each section says which tests use it.
Strategies build *inputs*; the expected answers come from the tests'
own hand-written rules, never from the code under test.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field

import polars as pl
from hypothesis import strategies as st

# ---------------------------------------------------------------------------
# Intake (casemix.cases) — used by tests/test_cases.py
# ---------------------------------------------------------------------------
#
# `intake_cases()` draws a list of `IntakeCase`: canonical codes (already in
# normal form) plus the numeric fields.  The `*_layout` renderers turn the
# same cases into each accepted input layout; `messy()` writes a canonical
# code the way real extracts do (case, spaces, full-width, dagger), which
# intake must undo.

_DIGITS = "0123456789"

# The strategies drawn from inside the composites below are built once, here: hypothesis
# validates every new strategy object the first time it is drawn from, and building them
# per draw made that validation most of the cost of generating intake cases.
_LETTER = st.sampled_from(string.ascii_uppercase)
_DIGIT = st.sampled_from(_DIGITS)
_D1_3 = st.text(_DIGITS, min_size=1, max_size=3)
_D2 = st.text(_DIGITS, min_size=2, max_size=2)
_D2_4 = st.text(_DIGITS, min_size=2, max_size=4)
_D3 = st.text(_DIGITS, min_size=3, max_size=3)
_SHAPE = st.sampled_from(["plain", "sub", "x_sub", "ext"])
_SIXTH = st.integers(0, 5)
_EIGHTH = st.integers(0, 7)
_FIFTH = st.integers(0, 4)
_PLUS = st.sampled_from(["†", " + ", "＋"])
_PAD = st.sampled_from(["", " ", "  ", "\t", "\u3000"])
_NO_PRINCIPAL = st.sampled_from([None, "", "  "])


@st.composite
def icd10_code(draw) -> str:
    """An ICD-10 医保版-shaped diagnosis code in canonical form, e.g. C34.100x001, G35.x03."""
    letter = draw(_LETTER)
    head = letter + draw(_D2)
    shape = draw(_SHAPE)
    if shape == "plain":
        return head
    sub = draw(_D1_3)
    if shape == "sub":
        return f"{head}.{sub}"
    if shape == "x_sub":
        return f"{head}.x{draw(_D2)}"
    return f"{head}.{sub.ljust(3, '0')}x{draw(_D3)}"


_ICD10 = icd10_code()


@st.composite
def dx_code(draw) -> str:
    """A diagnosis code, sometimes a dagger/asterisk pair such as A17.000+G01*."""
    code = draw(_ICD10)
    if draw(_SIXTH) == 0:
        letter = draw(_LETTER)
        code = f"{code}+{letter}{draw(_D2)}.{draw(_DIGIT)}*"
    return code


@st.composite
def proc_code(draw) -> str:
    """An ICD-9-CM-3 医保版-shaped procedure code, e.g. 39.6500, 00.5500x008."""
    code = f"{draw(_D2)}.{draw(_D2_4)}"
    if draw(st.booleans()):
        code += "x" + draw(_D3)
    return code


def _full_width(ch: str) -> str:
    return chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch


@st.composite
def messy(draw, code: str) -> str:
    """``code`` as an untidy extract might carry it; normalisation must give ``code`` back."""
    out = []
    for ch in code:
        if ch.isalpha() and draw(st.booleans()):
            ch = ch.swapcase()
        if ch == "+" and draw(st.booleans()):
            ch = draw(_PLUS)
        elif draw(_EIGHTH) == 0:
            ch = _full_width(ch)
        out.append(ch)
    return draw(_PAD) + "".join(out) + draw(_PAD)


@dataclass
class IntakeCase:
    """One generated case; ``dx``/``procs`` are canonical, principal first (None = no principal)."""

    sex: float | None
    age: float | None
    age_days: float | None
    birth_weight: float | None
    los: float | None
    discharge: float | None
    total_cost: float | None
    dx: list[str | None] = field(default_factory=list)
    procs: list[str | None] = field(default_factory=list)
    dx_raw: list[str | None] = field(default_factory=list)  # as written in the input
    procs_raw: list[str | None] = field(default_factory=list)


def _maybe(strategy):
    return st.one_of(st.none(), strategy)


@st.composite
def _codes(draw, code_strategy, max_size: int) -> tuple[list[str | None], list[str | None]]:
    codes = draw(st.lists(code_strategy, max_size=max_size))
    raw = [draw(messy(c)) for c in codes]
    if codes and draw(_FIFTH) == 0:  # no principal, secondaries only
        codes[0] = None
        raw[0] = draw(_NO_PRINCIPAL)
    return codes, raw


#: ages and ages in days no real case has (issue 15, class 7)
IMPLAUSIBLE_AGE = (-5.0, -0.5, 150.5, 1e300, -1e300)
IMPLAUSIBLE_AGE_DAYS = (-5.0, 366.0, 1e300)


_DX_CODES = _codes(dx_code(), 11)  # 11: wide columns dx10, dx11 sort after dx9
_PROC_CODES = _codes(proc_code(), 4)
_SEX = _maybe(st.sampled_from([1.0, 2.0, 0.0, 9.0]))
# implausible values too (issue 15): warned, never refused
_AGE = _maybe(st.one_of(st.integers(0, 110).map(float), st.sampled_from(IMPLAUSIBLE_AGE)))
_AGE_DAYS = _maybe(st.one_of(st.integers(0, 365).map(float), st.sampled_from(IMPLAUSIBLE_AGE_DAYS)))
_BIRTH_WEIGHT = _maybe(st.one_of(st.integers(300, 6000).map(float), st.sampled_from((-1.0, 10_001.0, 1e12))))
_LOS = _maybe(st.integers(-2, 400).map(float))
_DISCHARGE = _maybe(st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0, 9.0]))
_COST = _maybe(st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 2)))


@st.composite
def intake_case(draw) -> IntakeCase:
    dx, dx_raw = draw(_DX_CODES)
    procs, procs_raw = draw(_PROC_CODES)
    return IntakeCase(
        sex=draw(_SEX),
        age=draw(_AGE),
        age_days=draw(_AGE_DAYS),
        birth_weight=draw(_BIRTH_WEIGHT),
        los=draw(_LOS),
        discharge=draw(_DISCHARGE),
        total_cost=draw(_COST),
        dx=dx,
        procs=procs,
        dx_raw=dx_raw,
        procs_raw=procs_raw,
    )


def intake_cases(max_size: int = 12):
    return st.lists(intake_case(), max_size=max_size)


_SCALARS = ("sex", "age", "age_days", "birth_weight", "los", "discharge", "total_cost")


def _scalar_columns(cases: list[IntakeCase]) -> dict[str, pl.Series]:
    cols = {"case_id": pl.Series("case_id", [f"K{i}" for i in range(len(cases))], dtype=pl.String)}
    for name in _SCALARS:
        cols[name] = pl.Series(name, [getattr(c, name) for c in cases], dtype=pl.Float64)
    return cols


def list_layout(cases: list[IntakeCase], *, split: bool) -> pl.DataFrame:
    """pdx + sdx / pproc + oproc list columns (``split``) or diagnoses / procedures lists."""
    cols = _scalar_columns(cases)
    lst = pl.List(pl.String)
    if split:
        cols["pdx"] = pl.Series([c.dx_raw[0] if c.dx_raw else None for c in cases], dtype=pl.String)
        cols["sdx"] = pl.Series([c.dx_raw[1:] for c in cases], dtype=lst)
        cols["pproc"] = pl.Series([c.procs_raw[0] if c.procs_raw else None for c in cases], dtype=pl.String)
        cols["oproc"] = pl.Series([c.procs_raw[1:] for c in cases], dtype=lst)
    else:
        cols["diagnoses"] = pl.Series([c.dx_raw for c in cases], dtype=lst)
        cols["procedures"] = pl.Series([c.procs_raw for c in cases], dtype=lst)
    return pl.DataFrame(cols)


def pipe_layout(cases: list[IntakeCase]) -> pl.DataFrame:
    """``|``-separated strings in diagnoses / procedures (the golden file's layout)."""
    cols = _scalar_columns(cases)

    def join(codes: list[str | None]) -> str | None:
        return "|".join("" if c is None else c for c in codes) if codes else None

    cols["diagnoses"] = pl.Series([join(c.dx_raw) for c in cases], dtype=pl.String)
    cols["procedures"] = pl.Series([join(c.procs_raw) for c in cases], dtype=pl.String)
    return pl.DataFrame(cols)


def wide_layout(
    cases: list[IntakeCase], *, chinese: bool, shuffle: random.Random | None = None
) -> pl.DataFrame:
    """dx1..dxN / pr1..prN, or 主要诊断编码 + 其他诊断编码1..N and the procedure pair.

    ``shuffle`` permutes the columns so that tests can check that the numeric
    suffix, not the column position, orders the codes.
    """
    cols = _scalar_columns(cases)
    n_dx = max([len(c.dx_raw) for c in cases] + [1])
    n_pr = max([len(c.procs_raw) for c in cases] + [1])

    def at(codes, i):
        return codes[i] if i < len(codes) else None

    if chinese:
        names_dx = ["主要诊断编码"] + [f"其他诊断编码{i}" for i in range(1, n_dx)]
        names_pr = ["主要手术操作编码"] + [f"其他手术操作编码{i}" for i in range(1, n_pr)]
    else:
        names_dx = [f"dx{i}" for i in range(1, n_dx + 1)]
        names_pr = [f"pr{i}" for i in range(1, n_pr + 1)]
    for i, name in enumerate(names_dx):
        cols[name] = pl.Series(name, [at(c.dx_raw, i) for c in cases], dtype=pl.String)
    for i, name in enumerate(names_pr):
        cols[name] = pl.Series(name, [at(c.procs_raw, i) for c in cases], dtype=pl.String)
    frame = pl.DataFrame(cols)
    if shuffle is not None:
        names = frame.columns
        shuffle.shuffle(names)
        frame = frame.select(names)
    return frame


# Junk: anything a careless export could hold, for "never crashes, never drops a row".
junk_value = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.text("0123456789.-+eE, ｜|xX†*", max_size=10),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
)
junk_text = st.one_of(st.none(), st.text(max_size=15), st.text("ABCxX0123456789.|+*† ", max_size=20))

JUNK_SCALAR_COLUMNS = (
    "case_id",
    "hospital_id",
    "sex",
    "age",
    "age_days",
    "birth_weight",
    "los",
    "discharge",
    "total_cost",
    "patient_id",
    "admission_date",
    "discharge_date",
    "insurance_type",
    "department",
    "year",
)


# ---------------------------------------------------------------------------
# Payment rules (casemix.payment.special_cases, new_tech, monthly, outliers) —
# used by tests/test_payment_*.py
# ---------------------------------------------------------------------------
#
# `rule_cases()` draws a small region as plain columns: case ids (unique),
# hospital, cost and a positive standard (yuan, 2 decimals), LOS, points,
# a discharge month, patient share and audit deduction (fen).


@st.composite
def rule_cases(draw, min_size: int = 1, max_size: int = 40) -> dict:
    n = draw(st.integers(min_size, max_size))
    yuan = st.integers(0, 5_000_000).map(lambda f: f / 100)
    cost = draw(st.lists(yuan, min_size=n, max_size=n))
    standard = draw(st.lists(st.integers(1, 2_000_000).map(lambda f: f / 100), min_size=n, max_size=n))
    return {
        "case_id": [f"C{i:03d}" for i in draw(st.permutations(range(n)))],
        "hospital_id": draw(st.lists(st.sampled_from(["H1", "H2", "H3"]), min_size=n, max_size=n)),
        "cost": cost,
        "standard": standard,
        "los": draw(st.lists(st.integers(0, 90), min_size=n, max_size=n)),
        "points": draw(st.lists(st.integers(0, 500_000).map(lambda p: p / 100), min_size=n, max_size=n)),
        "month": draw(st.lists(st.integers(1, 12), min_size=n, max_size=n)),
        "patient_fen": draw(st.lists(st.integers(0, 2_000_000), min_size=n, max_size=n)),
        "audit_yuan": draw(st.lists(st.integers(0, 100_000).map(lambda f: f / 100), min_size=n, max_size=n)),
    }


# ---------------------------------------------------------------------------
# Files (casemix.io) — used by tests/test_io.py
# ---------------------------------------------------------------------------

# money in fen, both signs, up to 10^15 fen (10^13 yuan): human outputs must show
# every one of them as yuan with exactly 2 decimals
fen_amounts = st.integers(min_value=-(10**15), max_value=10**15)
