"""CHS-DRG grouping: ``casemix.group``.

Two engines give one answer: ``"reference"`` (``reference.py``, one case
at a time, readable) and ``"batch"`` (numba kernel over encoded arrays,
proven equal to the reference by property tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeGuard

import polars as pl

from casemix.drg.summary import warn_if_low_rate
from casemix.errors import InputError
from casemix.scheme import DEFAULT_SCHEME, Scheme, load_scheme

if TYPE_CHECKING:
    from casemix.dip import Catalog

#: columns ``group`` adds, in order
RESULT_COLUMNS = ("mdc", "adrg", "drg", "severity", "status", "reason", "warnings")
_CASE_FIELDS = (
    "pdx",
    "sdx",
    "pproc",
    "oproc",
    "sex",
    "age",
    "age_days",
    "birth_weight",
    "los",
    "discharge",
    "malformed",
)


def reference_frame(canonical: pl.DataFrame, scheme: Scheme) -> pl.DataFrame:
    """Group a canonical case frame with the reference grouper, one case at a time.

    Returns a frame of the six grouping columns (mdc … reason), one row per case.
    """
    from casemix.drg.reference import Case, group_case

    out: dict[str, list[Any]] = {c: [] for c in RESULT_COLUMNS[:-1]}
    for row in canonical.select(_CASE_FIELDS).iter_rows():
        pdx, sdx, pproc, oproc, *nums, malformed = row
        case = Case(
            pdx=pdx,
            sdx=tuple(sdx or ()),
            pproc=pproc,
            oproc=tuple(oproc or ()),
            sex=nums[0],
            age=nums[1],
            age_days=nums[2],
            birth_weight=nums[3],
            los=nums[4],
            discharge=nums[5],
            malformed=tuple(malformed or ()),
        )
        r = group_case(case, scheme)
        for c in out:
            out[c].append(getattr(r, c))
    return pl.DataFrame(out, schema=dict.fromkeys(out, pl.String))


def group(
    cases: Any,
    scheme: str | Path | Scheme | Any = DEFAULT_SCHEME,
    *,
    engine: Literal["batch", "reference"] = "batch",
    mapping: dict[str, str] | None = None,
) -> Any:
    """Assign each case to its DRG (or DIP group, when given a DIP catalog).

    Parameters
    ----------
    cases
        pandas or polars DataFrame, pyarrow Table, or a Parquet/CSV path, in
        any layout ``casemix.read_cases`` accepts.
    scheme
        Name of a shipped scheme (``casemix.schemes()``), a scheme folder, a
        loaded :class:`~casemix.scheme.Scheme`, or a DIP catalog.
    engine
        ``"batch"`` (numba kernel, default) or ``"reference"`` (pure Python).
    mapping
        Your column name → canonical name, for columns the defaults miss.

    Returns
    -------
    DataFrame
        The input, same type, rows and order, with columns ``mdc``, ``adrg``,
        ``drg``, ``severity``, ``status``, ``reason`` and ``warnings`` added.

    Warns
    -----
    casemix.errors.LowGroupingRateWarning
        When fewer than half of the cases find a group (the wrong scheme for
        the codes, usually), naming the most frequent unknown codes.
    """
    from casemix.cases import attach, read_cases

    if _is_dip_catalog(scheme):
        from casemix import dip

        return dip.group(cases, scheme, engine=engine, mapping=mapping)
    if engine not in ("batch", "reference"):
        raise InputError(f"engine must be 'batch' or 'reference', not {engine!r}")
    sch = load_scheme(scheme)
    if engine == "batch":
        from casemix._frames import kind_of, to_polars
        from casemix.drg.batch import group_input

        frame = to_polars(cases)
        if kind_of(cases) in ("path", "polars-lazy"):
            cases = frame  # read or collected once: the result is a polars frame either way
        result = group_input(frame, sch, mapping=mapping)
    else:
        from casemix.drg.findings import warnings_column

        canonical = read_cases(cases, mapping=mapping)
        result = reference_frame(canonical, sch).with_columns(warnings_column(canonical, sch))
    warn_if_low_rate(result, sch)
    return attach(cases, result)


def _is_dip_catalog(scheme: Any) -> TypeGuard[str | Path | Catalog]:
    if isinstance(scheme, Scheme):
        return False
    if type(scheme).__module__.startswith("casemix.dip"):
        return True
    if isinstance(scheme, (str, Path)):
        from casemix.scheme import tables_root

        for folder in (Path(scheme), tables_root() / str(scheme)):
            if (folder / "catalog.toml").is_file():
                return True
    return False
