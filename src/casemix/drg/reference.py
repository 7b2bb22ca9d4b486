"""The reference CHS-DRG grouper: one case at a time, plain Python.

It follows ``../shared/schemes/FORMAT.md`` ("Grouping") step by step and
is the specification's voice: the batch kernel is proven equal to it.
Nothing here is fast; it is meant to be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from casemix.scheme.model import Adrg, Scheme, adrg_kind
from casemix.scheme.rules import (
    And,
    Compare,
    Expr,
    InList,
    Not,
    Or,
    OrProc,
    Severity,
    Sites,
    TrueRule,
    compare,
)

#: the value of the ``severity`` column for each level found
SEVERITY_LABELS = {"MCC": "MCC", "CC": "CC", None: "none"}


@dataclass(frozen=True)
class Case:
    """One discharge, already normalised (see ``casemix.cases``).

    Numeric fields are ``None`` when missing; ``malformed`` names numeric
    fields that were present in the input but not a number.
    """

    pdx: str | None
    sdx: tuple[str, ...] = ()
    pproc: str | None = None
    oproc: tuple[str, ...] = ()
    sex: float | None = None
    age: float | None = None
    age_days: float | None = None
    birth_weight: float | None = None
    los: float | None = None
    discharge: float | None = None
    malformed: tuple[str, ...] = ()

    @property
    def diagnoses(self) -> tuple[str, ...]:
        """Principal (when present) then secondary diagnoses."""
        return ((self.pdx,) if self.pdx else ()) + self.sdx

    @property
    def procedures(self) -> tuple[str, ...]:
        """Principal (when present) then other procedures."""
        return ((self.pproc,) if self.pproc else ()) + self.oproc


@dataclass(frozen=True)
class Result:
    """What the grouper says of one case."""

    mdc: str = ""
    adrg: str = ""
    drg: str = ""
    severity: str = ""
    status: str = ""
    reason: str = ""


@dataclass
class _Context:
    """Per-case facts computed once: the non-excluded severity levels present."""

    case: Case
    scheme: Scheme
    levels: set[str] = field(default_factory=set)


def severity_levels(case: Case, scheme: Scheme) -> set[str]:
    """Levels (``MCC``/``CC``) of the case's non-excluded secondary diagnoses.

    FORMAT.md step 4: a secondary diagnosis counts at its ``cc.csv`` level
    unless its exclusion table equals the principal diagnosis's table; the
    ``never_excluded_table`` never excludes; a principal without a table
    excludes nothing.
    """
    own_table = scheme.exclusions.get(case.pdx) if case.pdx else None
    levels = set()
    for code in case.sdx:
        entry = scheme.cc.get(code)
        if entry is None:
            continue
        level, table = entry
        excluded = own_table is not None and table == own_table and table != scheme.never_excluded_table
        if not excluded:
            levels.add(level)
    return levels


def _field(case: Case, name: str) -> float | None:
    return getattr(case, name)


def holds(expr: Expr, ctx: _Context) -> bool:
    """Evaluate a rule on a case (FORMAT.md, "Rules"); a missing field is false."""
    case, scheme = ctx.case, ctx.scheme
    if isinstance(expr, TrueRule):
        return True
    if isinstance(expr, And):
        return all(holds(e, ctx) for e in expr.operands)
    if isinstance(expr, Or):
        return any(holds(e, ctx) for e in expr.operands)
    if isinstance(expr, Not):
        return not holds(expr.operand, ctx)
    if isinstance(expr, InList):
        members = scheme.lists[expr.list]
        codes = {
            "pdx": (case.pdx,) if case.pdx else (),
            "sdx": case.sdx,
            "dx": case.diagnoses,
            "pproc": (case.pproc,) if case.pproc else (),
            "proc": case.procedures,
        }[expr.target]
        return any(code in members for code in codes)
    if isinstance(expr, OrProc):
        codes = ((case.pproc,) if case.pproc else ()) if expr.principal_only else case.procedures
        return any(code in scheme.or_procedures for code in codes)
    if isinstance(expr, Sites):
        members, attrs = scheme.lists[expr.list], scheme.list_attrs.get(expr.list, {})
        sites = {attrs[c] for c in case.diagnoses if c in members and attrs.get(c)}
        return compare(expr.op, len(sites), expr.n)
    if isinstance(expr, Compare):
        value = _field(case, expr.field)
        return value is not None and compare(expr.op, value, expr.value)
    if isinstance(expr, Severity):
        return expr.level in ctx.levels
    raise TypeError(f"unknown rule node {expr!r}")  # pragma: no cover - parser makes none


def _present(case: Case, name: str) -> bool:
    if name == "diagnoses":
        return bool(case.diagnoses)
    if name == "procedures":
        return bool(case.procedures)
    return _field(case, name) is not None


def validity_failure(case: Case, scheme: Scheme) -> str | None:
    """The reason of the first failing validity check, or None when the case is valid.

    A ``field`` check on a field that was present but not a number fails
    with the scheme's ``malformed_reason`` (when it has one).
    """
    ctx = _Context(case, scheme)
    for check in scheme.checks:
        if check.when is not None and not holds(check.when, ctx):
            continue
        if check.field is not None:
            if check.field in case.malformed and scheme.malformed_reason:
                return scheme.malformed_reason
            if not _present(case, check.field):
                return check.reason
        if check.rule is not None and not holds(check.rule, ctx):
            return check.reason
    return None


def _ungroupable(scheme: Scheme, reason_key: str, severity: str) -> Result:
    return Result(
        drg=scheme.ungroupable,
        severity=severity,
        status=scheme.status["ungroupable"],
        reason=scheme.reasons.get(reason_key, ""),
    )


def _first(candidates, ctx: _Context):
    return next((c for c in candidates if holds(c.rule, ctx)), None)


def group_case(case: Case, scheme: Scheme) -> Result:
    """Group one case (FORMAT.md, "Grouping", steps 1–6).

    Parameters
    ----------
    case
        The normalised case.
    scheme
        A loaded scheme (``casemix.load_scheme``).

    Returns
    -------
    Result
        mdc, adrg, drg, severity, status and reason.
    """
    # 1. validity
    failure = validity_failure(case, scheme)
    if failure is not None:
        return Result(drg=scheme.ungroupable, status=scheme.status["invalid"], reason=failure)

    # 4. severity is a property of the diagnoses; computed once, used by DRG rules
    ctx = _Context(case, scheme, severity_levels(case, scheme))
    severity = SEVERITY_LABELS["MCC" if "MCC" in ctx.levels else "CC" if "CC" in ctx.levels else None]

    entered_any = False
    for mdc in scheme.mdcs:  # 2. MDC, in seq order
        if not holds(mdc.rule, ctx):
            continue
        entered_any = True
        adrg: Adrg | None = _first(scheme.adrgs.get(mdc.code, ()), ctx)  # 3. ADRG
        if adrg is None:
            if scheme.mdc_fallthrough:
                continue
            return _ungroupable(scheme, "no_adrg", severity)
        adrg_code = adrg.code
        if (
            scheme.ambiguous_group
            and adrg_kind(adrg_code) == "medical"
            and holds(OrProc(principal_only=True), ctx)
        ):
            adrg_code = mdc.code[-1] + "QY"
        drgs = scheme.drgs.get(adrg_code)
        if drgs is None and adrg_code.endswith("QY"):
            # a QY group without DRG rows is not split: its DRG code is the ADRG code
            return Result(
                mdc=mdc.code,
                adrg=adrg_code,
                drg=adrg_code,
                severity=severity,
                status=scheme.status["grouped"],
            )
        drg = _first(drgs or (), ctx)  # 5. DRG
        if drg is None:
            return _ungroupable(scheme, "no_drg", severity)
        return Result(
            mdc=mdc.code, adrg=adrg_code, drg=drg.code, severity=severity, status=scheme.status["grouped"]
        )
    # 6. nothing found
    return _ungroupable(scheme, "no_adrg" if entered_any else "no_mdc", severity)
