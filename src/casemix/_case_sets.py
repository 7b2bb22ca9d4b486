"""The case frame the indicators and the monitor read, and the case sets they count on.

Each case falls in one of three sets, used consistently everywhere:

* **excluded** — LOS > ``max_los`` (default 60 days) or total cost <
  ``min_cost`` (default 5 yuan).  These are outside DRG payment and outside
  the grouping-rate denominator [city pages quoted in
  ``../shared/payment-notes.md``, "Indicators"].
* **grouped** — not excluded, with a DRG code that is neither empty nor an
  ungroupable code (``"0000"`` by default, the CHS-DRG scheme's code).
* **weighted** — grouped and the DRG has a relative weight in the weights
  table.  CMI, total weight and the DRG-mix indicators use this set.

Missing LOS or cost never excludes a case (a case with no cost is a data
problem the grouping rate should show, not hide).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from casemix._frames import FrameLike, to_polars
from casemix.cases import canonical
from casemix.errors import InputError

DEATH_CODE = 5  # 离院方式 5 = 死亡 (medical-record / settlement-list code table)

_NUMERIC = ("total_cost", "los", "discharge")
# the canonical fields indicators and the monitor read when present (docs/cases.md)
_FIELDS = (
    "case_id",
    "hospital_id",
    "hospital_level",
    "patient_id",
    "department",
    "mdc",
    "adrg",
    "drg",
    "total_cost",
    "los",
    "discharge",
    "age",
    "year",
    "admission_date",
    "discharge_date",
)
_TEXT = (
    "case_id",
    "hospital_id",
    "mdc",
    "adrg",
    "drg",
    "severity",
    "department",
    "hospital_level",
    "patient_id",
)


# --------------------------------------------------------------------------- edges


def require_columns(df: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            f"{what} needs column(s) {', '.join(missing)}; the frame has "
            f"{', '.join(df.columns) or 'no columns'}"
        )


def prepare_cases(
    cases: FrameLike,
    *,
    need: Sequence[str] = ("hospital_id", "drg"),
    mapping: dict[str, str] | None = None,
    step: str = "case-mix indicators",
) -> pl.DataFrame:
    """The case frame in casemix's vocabulary (``docs/cases.md``), columns typed.

    Columns are found by their aliases (and ``mapping``) and parsed by the
    one number and date rule; a bad value is null (it then counts as
    missing, never as zero) and no row is left out: the indicators count
    missing values by their own rules.
    """
    df = canonical(cases, mapping, require=need, optional=_FIELDS, step=step).frame
    casts = []
    for c in _NUMERIC:
        if c in df.columns and not df.schema[c].is_float():  # e.g. grouping_riv(value="...")
            casts.append(pl.col(c).cast(pl.Float64, strict=False))
    for c in _TEXT:
        if c in df.columns:
            casts.append(pl.col(c).cast(pl.String))
    return df.with_columns(casts) if casts else df


def weights_table(weights: FrameLike) -> pl.DataFrame:
    """``drg`` → ``rw`` from any frame with those two columns; one row per DRG.

    A ``casemix.weights.Weights`` result is accepted too (its ``table``).
    """
    w = to_polars(getattr(weights, "table", weights))
    require_columns(w, ("drg", "rw"), "the weights table")
    w = w.select(pl.col("drg").cast(pl.String), pl.col("rw").cast(pl.Float64, strict=False))
    dup = w.filter(pl.col("drg").is_duplicated())["drg"].unique().sort()
    if len(dup):
        raise InputError(
            f"weights table: DRG {dup[0]!r} appears more than once "
            f"({len(dup)} duplicated DRG codes); give one rw per drg"
        )
    bad = w.filter(pl.col("rw").is_null() | (pl.col("rw") < 0))
    if len(bad):
        raise InputError(
            f"weights table: rw of DRG {bad['drg'][0]!r} is missing, not a number "
            f"or negative; every rw must be a number >= 0"
        )
    return w


def case_sets(
    df: pl.DataFrame, *, max_los: float, min_cost: float, ungroupable: Sequence[str]
) -> pl.DataFrame:
    """Add boolean columns ``_excluded`` and ``_grouped`` (see the module docstring)."""
    excluded = pl.lit(False)
    if "los" in df.columns:
        excluded = excluded | (pl.col("los") > max_los).fill_null(False)
    if "total_cost" in df.columns:
        excluded = excluded | (pl.col("total_cost") < min_cost).fill_null(False)
    drg = pl.col("drg")
    grouped = drg.is_not_null() & (drg.str.strip_chars() != "") & ~drg.is_in(list(ungroupable)) & ~excluded
    return df.with_columns(_excluded=excluded, _grouped=grouped)


def regional_mean(col: str) -> pl.Expr:
    """Per case: the mean of ``col`` over all grouped cases of its DRG (all hospitals).

    Needs the ``_grouped`` column of :func:`case_sets`.
    """
    return pl.col(col).filter(pl.col("_grouped") & pl.col(col).is_not_null()).mean().over("drg")
