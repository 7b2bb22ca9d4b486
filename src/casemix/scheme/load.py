"""Reading and validating a scheme folder (``../shared/schemes/FORMAT.md``).

Every fault raises :class:`casemix.errors.SchemeError` naming the file,
line and column, so a city editing its variant sees exactly what to fix.
"""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

from casemix.errors import SchemeError
from casemix.scheme.model import Adrg, Drg, Mdc, Scheme, ValidityCheck
from casemix.scheme.rules import FIELDS, RuleSyntaxError, Severity, lists_used, parse_rule, walk

_CHECK_FIELDS = FIELDS + ("diagnoses", "procedures")
_LEVELS = ("MCC", "CC")


def _rows(folder: Path, name: str, columns: tuple[str, ...], *, optional_cols: tuple[str, ...] = ()):
    """Yield (line number, {column: value}) of a CSV table, checking its header."""
    path = folder / name
    if not path.is_file():
        raise SchemeError(f"required table is missing (expected columns: {','.join(columns)})",
                          file=str(path))
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise SchemeError("empty file: a header line is needed", file=str(path), line=1)
        missing = [c for c in columns if c not in header]
        if missing:
            raise SchemeError(f"header lacks column(s) {', '.join(missing)}; found {','.join(header)}",
                              file=str(path), line=1)
        index = {c: header.index(c) for c in columns + optional_cols if c in header}
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) > len(header):
                raise SchemeError(f"{len(row)} fields where the header has {len(header)}"
                                  " (quote values that contain commas)", file=str(path), line=line)
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
        raise SchemeError(f"{value!r} is not a whole number", file=str(path), line=line,
                          column=column) from None


def _rule(path: Path, line: int, text: str, column: str, *, allow_severity: bool = False):
    try:
        return parse_rule(text, allow_severity=allow_severity)
    except RuleSyntaxError as exc:
        raise SchemeError(f"rule {text!r}: {exc.bare} at character {exc.position}",
                          file=str(path), line=line, column=column) from None


def _code_table(folder: Path, name: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for path, line, v in _rows(folder, name, ("code",), optional_cols=("name",)):
        code = _need(path, line, v, "code")
        label = v.get("name", "")
        if code in table and table[code] != label:
            raise SchemeError(f"duplicate code {code!r} with a different name", file=str(path),
                              line=line, column="code")
        table[code] = label
    return table


def _toml(folder: Path) -> dict:
    path = folder / "scheme.toml"
    if not path.is_file():
        raise SchemeError("scheme.toml is missing: not a scheme folder", file=str(path))
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SchemeError(f"TOML syntax error: {exc}", file=str(path),
                          line=getattr(exc, "lineno", None), column=getattr(exc, "colno", None)) from None


def _switch(meta: dict, key: str, kind: type, default, path: Path):
    value = meta.get(key, default)
    if value is not None and not isinstance(value, kind):
        raise SchemeError(f"{key} must be a {kind.__name__}, got {value!r}", file=str(path), column=key)
    return value


def _checks(meta: dict, path: Path) -> tuple[tuple[ValidityCheck, ...], str | None]:
    validity = meta.get("validity", {})
    if not isinstance(validity, dict):
        raise SchemeError("[validity] must be a table", file=str(path), column="validity")
    checks = []
    for i, raw in enumerate(validity.get("check", []), start=1):
        where = f"validity.check[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("reason"), str):
            raise SchemeError("each check needs a text 'reason'", file=str(path), column=where)
        fld = raw.get("field")
        if fld is not None and fld not in _CHECK_FIELDS:
            raise SchemeError(f"unknown field {fld!r}; one of {', '.join(_CHECK_FIELDS)}",
                              file=str(path), column=f"{where}.field")
        if fld is None and "rule" not in raw:
            raise SchemeError("a check needs 'field' or 'rule'", file=str(path), column=where)
        parsed = {}
        for key in ("when", "rule"):
            if key in raw:
                try:
                    parsed[key] = parse_rule(raw[key])
                except RuleSyntaxError as exc:
                    raise SchemeError(f"rule {raw[key]!r}: {exc.bare} at character {exc.position}",
                                      file=str(path), column=f"{where}.{key}") from None
                if lists_used(parsed[key]):
                    raise SchemeError("validity rules may not read code lists", file=str(path),
                                      column=f"{where}.{key}")
        checks.append(ValidityCheck(reason=raw["reason"], field=fld, when=parsed.get("when"),
                                    rule=parsed.get("rule")))
    malformed = validity.get("malformed_reason")
    if malformed is not None and not isinstance(malformed, str):
        raise SchemeError("malformed_reason must be text", file=str(path), column="validity.malformed_reason")
    return tuple(checks), malformed


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
    meta = _toml(folder)
    tpath = folder / "scheme.toml"
    for key in ("id",):
        if not isinstance(meta.get(key), str) or not meta[key]:
            raise SchemeError(f"'{key}' must be a non-empty text", file=str(tpath), column=key)

    # code lists
    lists: dict[str, set[str]] = {}
    attrs: dict[str, dict[str, str]] = {}
    for path, line, v in _rows(folder, "lists.csv", ("list", "code"), optional_cols=("attr",)):
        name, code = _need(path, line, v, "list"), _need(path, line, v, "code")
        attr = v.get("attr", "")
        seen = attrs.setdefault(name, {})
        if code in lists.setdefault(name, set()) and seen.get(code, "") != attr:
            raise SchemeError(f"code {code!r} listed twice in {name!r} with different attr",
                              file=str(path), line=line, column="attr")
        lists[name].add(code)
        if attr:
            seen[code] = attr

    def check_lists(path: Path, line: int, expr, column: str) -> None:
        for name in sorted(lists_used(expr)):
            if name not in lists:
                raise SchemeError(f"unknown list {name!r} (not in lists.csv)", file=str(path),
                                  line=line, column=column)

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
            raise SchemeError(f"level {v['level']!r} must be MCC or CC", file=str(path), line=line,
                              column="level")
        if code in cc:
            raise SchemeError(f"duplicate CC code {code!r}", file=str(path), line=line, column="code")
        cc[code] = (level, v["exclusion_table"])

    exclusions: dict[str, str] = {}
    for path, line, v in _rows(folder, "exclusions.csv", ("pdx", "exclusion_table")):
        pdx = _need(path, line, v, "pdx")
        table = _need(path, line, v, "exclusion_table")
        if pdx in exclusions and exclusions[pdx] != table:
            raise SchemeError(f"principal diagnosis {pdx!r} given two exclusion tables",
                              file=str(path), line=line, column="pdx")
        exclusions[pdx] = table

    or_procedures = frozenset(_need(p, ln, v, "code") for p, ln, v in
                              _rows(folder, "or_procedures.csv", ("code",)))
    diagnoses = _code_table(folder, "diagnoses.csv")
    procedures = _code_table(folder, "procedures.csv")

    checks, malformed = _checks(meta, tpath)
    status = {"grouped": "grouped", "ungroupable": "ungroupable", "invalid": "invalid"}
    status.update(_switch(meta, "status", dict, {}, tpath))
    reasons = {"no_mdc": "", "no_adrg": "", "no_drg": ""}
    reasons.update(_switch(meta, "reasons", dict, {}, tpath))
    never = meta.get("never_excluded_table")
    return Scheme(
        id=meta["id"],
        name=str(meta.get("name", meta["id"])),
        version=str(meta.get("version", "")),
        source=str(meta.get("source", "")),
        path=folder.resolve(),
        mdc_fallthrough=_switch(meta, "mdc_fallthrough", bool, False, tpath),
        ambiguous_group=_switch(meta, "ambiguous_group", bool, False, tpath),
        ungroupable=str(_switch(meta, "ungroupable", str, "0000", tpath)),
        never_excluded_table=None if never is None else str(never),
        status=status,
        reasons=reasons,
        malformed_reason=malformed,
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
        meta=meta,
    )


def uses_severity(scheme: Scheme) -> bool:
    """Whether any DRG rule reads ``mcc`` or ``cc``."""
    return any(isinstance(n, Severity) for ds in scheme.drgs.values() for d in ds for n in walk(d.rule))
