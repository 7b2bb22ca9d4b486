"""Reading and validating a scheme folder (``../shared/schemes/FORMAT.md``).

Every fault raises :class:`casemix.errors.SchemeError` naming the file,
line and column, so a city editing its variant sees exactly what to fix.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import NoReturn

from casemix._schema import TomlDoc, key_text, read_toml, validate
from casemix._tables import check_inside, table_rows
from casemix.errors import SchemeError
from casemix.scheme.model import Adrg, Drg, Mdc, Scheme, SchemeToml, ValidityCheck
from casemix.scheme.rules import FIELDS, RuleSyntaxError, Severity, lists_used, parse_rule, walk

_CHECK_FIELDS = FIELDS + ("diagnoses", "procedures")
_LEVELS = ("MCC", "CC")


def _rows(folder: Path, name: str, columns: tuple[str, ...], *, optional_cols: tuple[str, ...] = ()):
    """Yield (line number, {column: value}) of a CSV table, checking its header."""
    path = folder / name
    if not path.is_file():
        raise SchemeError(
            f"required table is missing (expected columns: {','.join(columns)})", file=str(path)
        )
    rows = table_rows(path, folder)
    first = next(rows, None)
    if first is None:
        raise SchemeError("empty file: a header line is needed", file=str(path), line=1)
    header = [h.strip() for h in first[1]]
    missing = [c for c in columns if c not in header]
    if missing:
        raise SchemeError(
            f"header lacks column(s) {', '.join(missing)}; found {','.join(header)}", file=str(path), line=1
        )
    index = {c: header.index(c) for c in columns + optional_cols if c in header}
    for line, row in rows:
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise SchemeError(
                f"{len(row)} fields where the header has {len(header)} (quote values that contain commas)",
                file=str(path),
                line=line,
            )
        values = {c: (row[i].strip() if i < len(row) else "") for c, i in index.items()}
        yield path, line, values


def _need(path: Path, line: int, values: dict, column: str) -> str:
    value = values[column]
    if value == "":
        raise SchemeError("value is empty", file=str(path), line=line, column=column)
    return value


def _int(path: Path, line: int, values: dict, column: str) -> int:
    value = _need(path, line, values, column)
    try:
        return int(value)
    except ValueError:
        raise SchemeError(
            f"{value!r} is not a whole number", file=str(path), line=line, column=column
        ) from None


def _rule(path: Path, line: int, text: str, column: str, *, allow_severity: bool = False):
    try:
        return parse_rule(text, allow_severity=allow_severity)
    except RuleSyntaxError as exc:
        shown = text if len(text) <= 80 else text[:60] + f"… ({len(text)} characters)"
        raise SchemeError(
            f"rule {shown!r}: {exc.bare} at character {exc.position}",
            file=str(path),
            line=line,
            column=column,
        ) from None


def _code_table(folder: Path, name: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for path, line, v in _rows(folder, name, ("code",), optional_cols=("name",)):
        code = _need(path, line, v, "code")
        label = v.get("name", "")
        if code in table and table[code] != label:
            raise SchemeError(
                f"duplicate code {code!r} with a different name", file=str(path), line=line, column="code"
            )
        table[code] = label
    return table


def _toml(folder: Path) -> tuple[SchemeToml, TomlDoc]:
    path = folder / "scheme.toml"
    if not path.is_file():
        raise SchemeError("scheme.toml is missing: not a scheme folder", file=str(path))
    check_inside(path, folder)
    doc = read_toml(path)
    return validate(doc, SchemeToml), doc


def _checks(meta: SchemeToml, doc: TomlDoc, lists: dict[str, set[str]]) -> tuple[ValidityCheck, ...]:
    checks = []
    for i, raw in enumerate(meta.validity.check):
        at = ("validity", "check", i)

        def fail(message: str, key: str | None = None, at: tuple[str | int, ...] = at) -> NoReturn:
            loc = at + ((key,) if key else ())
            raise SchemeError(message, file=doc.path, line=doc.line_of(loc), column=key_text(loc))

        if raw.field is not None and raw.field not in _CHECK_FIELDS:
            near = difflib.get_close_matches(raw.field, _CHECK_FIELDS, n=1)
            fail(
                f"unknown field {raw.field!r}; one of {', '.join(_CHECK_FIELDS)}"
                + (f" (did you mean {near[0]!r}?)" if near else ""),
                "field",
            )
        if raw.field is None and raw.rule is None:
            fail("a check needs 'field' or 'rule'")
        parsed = {}
        for key in ("when", "rule"):
            text = getattr(raw, key)
            if text is not None:
                try:
                    parsed[key] = parse_rule(text)
                except RuleSyntaxError as exc:
                    fail(f"rule {text!r}: {exc.bare} at character {exc.position}", key)
                unknown = sorted(lists_used(parsed[key]) - lists.keys())
                if unknown:
                    fail(f"unknown list {unknown[0]!r} (not in lists.csv nor [grey])", key)
        checks.append(
            ValidityCheck(
                reason=raw.reason, field=raw.field, when=parsed.get("when"), rule=parsed.get("rule")
            )
        )
    return tuple(checks)


#: [grey] keys (casemix extension): the principal code each grey list is about
GREY_TARGETS = ("pdx", "pproc")


def _grey(folder: Path, meta: SchemeToml, doc: TomlDoc, lists: dict[str, set[str]]) -> dict[str, str]:
    """Read the ``[grey]`` code files into ``lists`` as ``grey.pdx`` / ``grey.pproc``.

    Returns the target → list name of each grey list (``docs/scheme-format.md``,
    "Grey codes").
    """
    out: dict[str, str] = {}
    for target in GREY_TARGETS:
        name = getattr(meta.grey, target)
        if name is None:
            continue
        where = f"grey.{target}"
        loc = ("grey", target)
        if not name or Path(name).name != name:
            raise SchemeError(
                "must name a code file (column `code`) in the scheme folder",
                file=doc.path,
                line=doc.line_of(loc),
                column=key_text(loc),
            )
        if where in lists:
            raise SchemeError(
                f"list {where!r} is in lists.csv and in [grey]: rename it in lists.csv",
                file=doc.path,
                line=doc.line_of(loc),
                column=key_text(loc),
            )
        lists[where] = {_need(p, ln, v, "code") for p, ln, v in _rows(folder, name, ("code",))}
        out[target] = where
    return out


def load_folder(folder: str | Path) -> Scheme:
    """Load and validate one scheme folder.

    Parameters
    ----------
    folder
        A directory in the format of FORMAT.md.

    Raises
    ------
    SchemeError
        Naming file, line and column of the first fault found.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SchemeError("scheme folder not found", file=str(folder))
    meta, doc = _toml(folder)

    # code lists
    lists: dict[str, set[str]] = {}
    attrs: dict[str, dict[str, str]] = {}
    for path, line, v in _rows(folder, "lists.csv", ("list", "code"), optional_cols=("attr",)):
        name, code = _need(path, line, v, "list"), _need(path, line, v, "code")
        attr = v.get("attr", "")
        seen = attrs.setdefault(name, {})
        if code in lists.setdefault(name, set()) and seen.get(code, "") != attr:
            raise SchemeError(
                f"code {code!r} listed twice in {name!r} with different attr",
                file=str(path),
                line=line,
                column="attr",
            )
        lists[name].add(code)
        if attr:
            seen[code] = attr
    grey = _grey(folder, meta, doc, lists)

    def check_lists(path: Path, line: int, expr, column: str) -> None:
        for name in sorted(lists_used(expr)):
            if name not in lists:
                raise SchemeError(
                    f"unknown list {name!r} (not in lists.csv)", file=str(path), line=line, column=column
                )

    mdcs: list[Mdc] = []
    for path, line, v in _rows(folder, "mdc.csv", ("seq", "mdc", "name", "rule")):
        code = _need(path, line, v, "mdc")
        if any(m.code == code for m in mdcs):
            raise SchemeError(f"duplicate MDC {code!r}", file=str(path), line=line, column="mdc")
        rule = _rule(path, line, v["rule"], "rule")
        check_lists(path, line, rule, "rule")
        mdcs.append(Mdc(_int(path, line, v, "seq"), code, v["name"], rule))
    mdcs.sort(key=lambda m: m.seq)
    mdc_codes = {m.code for m in mdcs}

    adrgs: dict[str, list[Adrg]] = {m.code: [] for m in mdcs}
    adrg_codes: set[str] = set()
    for path, line, v in _rows(folder, "adrg.csv", ("mdc", "seq", "adrg", "name", "rule")):
        mdc, code = _need(path, line, v, "mdc"), _need(path, line, v, "adrg")
        if mdc not in mdc_codes:
            raise SchemeError(f"MDC {mdc!r} is not in mdc.csv", file=str(path), line=line, column="mdc")
        if code in adrg_codes:
            raise SchemeError(f"duplicate ADRG {code!r}", file=str(path), line=line, column="adrg")
        adrg_codes.add(code)
        rule = _rule(path, line, v["rule"], "rule")
        check_lists(path, line, rule, "rule")
        adrgs[mdc].append(Adrg(mdc, _int(path, line, v, "seq"), code, v["name"], rule))

    drgs: dict[str, list[Drg]] = {}
    drg_codes: set[str] = set()
    for path, line, v in _rows(folder, "drg.csv", ("adrg", "seq", "drg", "name", "rule")):
        adrg, code = _need(path, line, v, "adrg"), _need(path, line, v, "drg")
        # a QY ADRG may carry its own DRG rows without being in adrg.csv
        if adrg not in adrg_codes and not adrg.endswith("QY"):
            raise SchemeError(f"ADRG {adrg!r} is not in adrg.csv", file=str(path), line=line, column="adrg")
        if code in drg_codes:
            raise SchemeError(f"duplicate DRG {code!r}", file=str(path), line=line, column="drg")
        drg_codes.add(code)
        rule = _rule(path, line, v["rule"], "rule", allow_severity=True)
        check_lists(path, line, rule, "rule")
        drgs.setdefault(adrg, []).append(Drg(adrg, _int(path, line, v, "seq"), code, v["name"], rule))

    cc: dict[str, tuple[str, str]] = {}
    for path, line, v in _rows(folder, "cc.csv", ("code", "level", "exclusion_table")):
        code, level = _need(path, line, v, "code"), _need(path, line, v, "level").upper()
        if level not in _LEVELS:
            raise SchemeError(
                f"level {v['level']!r} must be MCC or CC", file=str(path), line=line, column="level"
            )
        if code in cc:
            raise SchemeError(f"duplicate CC code {code!r}", file=str(path), line=line, column="code")
        cc[code] = (level, v["exclusion_table"])

    exclusions: dict[str, str] = {}
    for path, line, v in _rows(folder, "exclusions.csv", ("pdx", "exclusion_table")):
        pdx = _need(path, line, v, "pdx")
        table = _need(path, line, v, "exclusion_table")
        if pdx in exclusions and exclusions[pdx] != table:
            raise SchemeError(
                f"principal diagnosis {pdx!r} given two exclusion tables",
                file=str(path),
                line=line,
                column="pdx",
            )
        exclusions[pdx] = table

    or_procedures = frozenset(
        _need(p, ln, v, "code") for p, ln, v in _rows(folder, "or_procedures.csv", ("code",))
    )
    diagnoses = _code_table(folder, "diagnoses.csv")
    procedures = _code_table(folder, "procedures.csv")

    checks = _checks(meta, doc, lists)
    return Scheme(
        id=meta.id,
        name=meta.name if meta.name is not None else meta.id,
        version=meta.version,
        source=meta.source,
        path=folder.resolve(),
        mdc_fallthrough=meta.mdc_fallthrough,
        ambiguous_group=meta.ambiguous_group,
        ungroupable=meta.ungroupable,
        never_excluded_table=meta.never_excluded_table,
        status=meta.status.model_dump(),
        reasons=meta.reasons.model_dump(),
        malformed_reason=meta.validity.malformed_reason,
        checks=checks,
        mdcs=tuple(mdcs),
        adrgs={k: tuple(sorted(v, key=lambda a: a.seq)) for k, v in adrgs.items()},
        drgs={k: tuple(sorted(v, key=lambda d: d.seq)) for k, v in drgs.items()},
        lists={k: frozenset(v) for k, v in lists.items()},
        list_attrs=attrs,
        cc=cc,
        exclusions=exclusions,
        or_procedures=or_procedures,
        diagnoses=diagnoses,
        procedures=procedures,
        meta=doc.data,
        grey=grey,
    )


def uses_severity(scheme: Scheme) -> bool:
    """Whether any DRG rule reads ``mcc`` or ``cc``."""
    return any(isinstance(n, Severity) for ds in scheme.drgs.values() for d in ds for n in walk(d.rule))
