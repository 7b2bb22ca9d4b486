"""DIP grouping, one case at a time: the readable statement of the rules.

This is the specification's voice (DIP 技术规范 1.0 and the 2.0 catalog's
matching rules as summarised in ``docs/dip-rules.md``); the numba kernel in
:mod:`casemix.dip.kernel` must give the same answer for every case, which
the tests check under hypothesis.

The steps, in order:

1. **Principal diagnosis.** None → not grouped. A principal diagnosis on
   the exclusion list is either not grouped (``not_grouped``) or replaced
   by the first secondary diagnosis that is allowed (``next_diagnosis``).
2. **Main procedure.** The case's procedures in order (principal, then
   others). The first one not on the procedure exclusion list is the main
   procedure; one listed ``skip`` hands over to the next; one listed
   ``conservative`` makes the case conservative (no main procedure).
3. **Core match.** For each diagnosis key the catalog has — subcategory,
   category, then ranges in file order — the candidates are the core and
   primary (基层) groups of that key whose main procedures contain the
   case's main procedure (conservative groups for a case without one).
   Among them: a group all of whose related procedures the case has (the
   one with most related procedures); else the group with the most of its
   related procedures matched; else the group without related procedures.
   The first key with a match wins; ties go to the earlier line.
4. **Comprehensive.** Category (first 3 characters) × the highest
   procedure attribute among the case's procedures (or the main procedure
   only, when asked), procedures listed ``conservative`` not counting.
5. Otherwise not grouped, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from casemix.dip.catalog import ATTRIBUTES, Catalog, category

# Reason codes (shared with the kernel, which returns the code only).
NO_PDX = 1
BAD_PDX = 2
PDX_EXCLUDED = 3
NO_REPLACEMENT = 4
NO_COMPREHENSIVE = 5

REASONS = {
    NO_PDX: "no principal diagnosis",
    BAD_PDX: "principal diagnosis {dx} is not an ICD-10 code",
    PDX_EXCLUDED: "principal diagnosis {dx} may not be principal (excluded_diagnoses.csv)",
    NO_REPLACEMENT: "principal diagnosis {dx} may not be principal and no secondary "
    "diagnosis can take its place",
    NO_COMPREHENSIVE: "no core group matches and the catalog has no comprehensive group {cat} × {attr}",
}

# Warning bits (the kernel returns the sum).
PDX_REPLACED = 1
MAIN_SKIPPED = 2
PROC_CONSERVATIVE = 4
UNLISTED_PROCEDURE = 8
PARTIAL_RELATED = 16

WARNINGS = {
    PDX_REPLACED: "dip_pdx_replaced",
    MAIN_SKIPPED: "dip_main_procedure_skipped",
    PROC_CONSERVATIVE: "dip_procedure_as_conservative",
    UNLISTED_PROCEDURE: "dip_unlisted_procedure",
    PARTIAL_RELATED: "dip_partial_related_match",
}


def reason_text(reason: int, dx: str | None, attribute: int) -> str:
    """The reason text of a reason code ("" when grouped)."""
    if reason == 0:
        return ""
    cat = category(dx) if dx else None
    attr = ATTRIBUTES[attribute] if attribute >= 0 else ""
    return REASONS[reason].format(dx=dx, cat=cat, attr=attr)


def warning_names(bits: int) -> list[str]:
    """The warning codes set in ``bits``, in a fixed order."""
    return [name for bit, name in WARNINGS.items() if bits & bit]


@dataclass(frozen=True)
class Outcome:
    """What grouping decided for one case."""

    group: int  # position in catalog.groups, or -1
    reason: int  # 0 when grouped
    warnings: int  # sum of warning bits
    dx: str | None  # the diagnosis the case was grouped (or failed) on
    attribute: int  # attribute level used by the comprehensive step, or -1

    def reason_text(self) -> str:
        return reason_text(self.reason, self.dx, self.attribute)


def principal_diagnosis(pdx: str | None, sdx: list[str], catalog: Catalog) -> tuple[str | None, int, int]:
    """Step 1: the diagnosis to group on, a reason code (0 = fine) and warning bits."""
    if pdx is None or pdx == "":
        return None, NO_PDX, 0
    if category(pdx) is None:
        return pdx, BAD_PDX, 0
    handling = catalog.dx_handling(pdx)
    if handling is None:
        return pdx, 0, 0
    if handling == "not_grouped":
        return pdx, PDX_EXCLUDED, 0
    for code in sdx:
        if category(code) is not None and catalog.dx_handling(code) is None:
            return code, 0, PDX_REPLACED
    return pdx, NO_REPLACEMENT, 0


def main_procedure(procedures: list[str], catalog: Catalog) -> tuple[int | None, int]:
    """Step 2: position of the main procedure (None = conservative) and warning bits."""
    warnings = 0
    for i, code in enumerate(procedures):
        handling = catalog.excluded_procedures.get(code)
        if handling is None:
            return i, warnings
        if handling == "conservative":
            return None, warnings | PROC_CONSERVATIVE
        warnings |= MAIN_SKIPPED
    return None, warnings


def core_match(dx: str, procedures: list[str], main: int | None, catalog: Catalog) -> tuple[int, int]:
    """Step 3: position of the matching core/primary group (or -1) and warning bits."""
    main_code = procedures[main] if main is not None else None
    others = {code for i, code in enumerate(procedures) if i != main}
    for key in catalog.dx_keys(dx):
        candidates = []
        for gi in catalog.core_by_key[key]:
            g = catalog.groups[gi]
            conservative_match = main_code is None and not g.main
            if conservative_match or (main_code is not None and main_code in g.main):
                candidates.append(gi)
        # all related procedures present: the most specific such group
        best, best_n = -1, 0
        for gi in candidates:
            related = catalog.groups[gi].related
            if related and all(r in others for r in related) and len(related) > best_n:
                best, best_n = gi, len(related)
        if best >= 0:
            return best, 0
        # else: the group with the most of its related procedures matched
        for gi in candidates:
            related = catalog.groups[gi].related
            matched = sum(r in others for r in related)
            if matched > best_n:
                best, best_n = gi, matched
        if best >= 0:
            return best, PARTIAL_RELATED
        # else: principal diagnosis + main procedure alone
        for gi in candidates:
            if not catalog.groups[gi].related:
                return gi, 0
    return -1, 0


def attribute_level(
    procedures: list[str], main: int | None, catalog: Catalog, main_procedure_only: bool
) -> tuple[int, int]:
    """Step 4's attribute: the highest level among the counted procedures, and warning bits."""
    if main_procedure_only:
        counted = [procedures[main]] if main is not None else []
    else:
        counted = [c for c in procedures if catalog.excluded_procedures.get(c) != "conservative"]
    level, warnings = 0, 0
    for code in counted:
        lv = catalog.procedure_level(code)
        if code not in catalog.attributes:
            warnings |= UNLISTED_PROCEDURE
        level = max(level, lv)
    return level, warnings


def group_case(
    pdx: str | None,
    sdx: list[str],
    pproc: str | None,
    oproc: list[str],
    catalog: Catalog,
    *,
    main_procedure_only: bool = True,
) -> Outcome:
    """Group one case (steps 1–5 of the module docstring)."""
    dx, reason, warnings = principal_diagnosis(pdx, sdx, catalog)
    if reason or dx is None:  # no reason means a diagnosis was found
        return Outcome(-1, reason, warnings, dx, -1)
    procedures = ([pproc] if pproc else []) + [c for c in oproc if c]
    main, w = main_procedure(procedures, catalog)
    warnings |= w
    gi, w = core_match(dx, procedures, main, catalog)
    if gi >= 0:
        return Outcome(gi, 0, warnings | w, dx, -1)
    level, w = attribute_level(procedures, main, catalog, main_procedure_only)
    warnings |= w
    cat = category(dx)
    gi = -1 if cat is None else catalog.comprehensive.get((cat, level), -1)
    if gi >= 0:
        return Outcome(gi, 0, warnings, dx, level)
    return Outcome(-1, NO_COMPREHENSIVE, warnings, dx, level)
