"""DIP catalog folders: loading, validation and the lookups both engines share.

A DIP catalog (病种目录库) is a folder of UTF-8 files; the format is
documented in ``docs/dip-catalog.md``:

``catalog.toml``
    ``kind = "dip"``, id, name, version, source; optional ``[grouping]``
    switches.
``groups.csv``
    ``group,type,dx_key,main_procedures,related_procedures,attribute,score,name``
    and optionally ``n,mean_cost,cv`` (statistics of the history the catalog
    was built from).
``procedure_attributes.csv``
    ``code,attribute``: 内科诊疗 / 诊断性操作 / 治疗性操作 / 相关手术
    (介入治疗 is read as 相关手术).
``excluded_diagnoses.csv``, ``excluded_procedures.csv``
    ``pattern,handling,note`` / ``code,handling,note``.
``subtypes.csv`` (optional)
    ``group,dimension,subtype,coefficient``: auxiliary sub-type coefficients.

Every malformed value raises :class:`casemix.errors.SchemeError` naming the
file, line and column.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import Field

from casemix._schema import StrictModel, key_text, read_toml, toml_string, validate
from casemix._tables import check_inside, table_rows
from casemix.errors import SchemeError

if TYPE_CHECKING:
    import polars as pl

#: Procedure attributes from lowest to highest; the index is the level the
#: comprehensive step compares (DIP 技术规范: 保守治疗/内科诊疗 < 诊断性操作 <
#: 治疗性操作 < 相关手术).
ATTRIBUTES: tuple[str, ...] = ("内科诊疗", "诊断性操作", "治疗性操作", "相关手术")

#: Spellings accepted in the files; 介入治疗 counts as 相关手术 (DIP 技术规范).
ATTRIBUTE_ALIASES: dict[str, int] = {
    "内科诊疗": 0,
    "保守治疗": 0,
    "medical": 0,
    "conservative": 0,
    "诊断性操作": 1,
    "diagnostic": 1,
    "治疗性操作": 2,
    "therapeutic": 2,
    "相关手术": 3,
    "手术": 3,
    "surgery": 3,
    "介入治疗": 3,
    "interventional": 3,
}

GROUP_TYPES: dict[str, str] = {
    "core": "core",
    "核心": "core",
    "核心病种": "core",
    "comprehensive": "comprehensive",
    "综合": "comprehensive",
    "综合病种": "comprehensive",
    "primary": "primary",
    "基层": "primary",
    "基层病种": "primary",
}

#: Handling of a diagnosis that may not be principal.
DX_HANDLINGS = ("not_grouped", "next_diagnosis")
#: Handling of a procedure that may not be main.
PROC_HANDLINGS = ("conservative", "skip")

_CATEGORY = re.compile(r"^[A-Z][0-9]{2}$")
_SUBCATEGORY = re.compile(r"^[A-Z][0-9]{2}\.[0-9A-Zx]$")
_CODE = re.compile(r"^[A-Z][0-9]{2}")


# ----------------------------------------------------------------- codes
def category(code: str | None) -> str | None:
    """The 3-character ICD-10 category (类目) of a diagnosis code, e.g. ``K35``."""
    if code is None:
        return None
    code = code.strip()
    return code[:3] if _CODE.match(code) else None


def subcategory(code: str | None) -> str | None:
    """The 4-character subcategory (亚目) of a diagnosis code as written, e.g. ``K35.3``.

    ICD-10 医保版 writes it with a dot (``K35.300x001`` → ``K35.3``,
    ``I10.x00`` → ``I10.x``); a bare category (``K35``) has none.
    """
    if code is None:
        return None
    code = code.strip()
    if len(code) >= 5 and code[3] == "." and _CODE.match(code):
        return code[:5]
    return None


@dataclass(frozen=True)
class DxPattern:
    """A diagnosis key or exclusion pattern: subcategory, category, range or exact code."""

    text: str
    kind: str  # "subcategory" | "category" | "range" | "code"
    low: str = ""
    high: str = ""

    def matches(self, code: str) -> bool:
        """Whether ``code`` falls under this pattern."""
        if self.kind == "code":
            return code == self.text
        if self.kind == "subcategory":
            return subcategory(code) == self.text
        if self.kind == "category":
            return category(code) == self.text
        part = category(code) if len(self.low) == 3 else subcategory(code)
        return part is not None and self.low <= part <= self.high


def parse_dx_pattern(text: str, *, allow_code: bool = False) -> DxPattern:
    """Parse ``K35.3`` / ``K35`` / ``A15-A16`` (and, for exclusions, an exact code).

    Raises ``ValueError`` with a short reason on anything else.
    """
    t = text.strip()
    if _SUBCATEGORY.match(t):
        return DxPattern(t, "subcategory")
    if _CATEGORY.match(t):
        return DxPattern(t, "category")
    if "-" in t:
        low, _, high = (s.strip() for s in t.partition("-"))
        same_kind = (_CATEGORY.match(low) and _CATEGORY.match(high)) or (
            _SUBCATEGORY.match(low) and _SUBCATEGORY.match(high)
        )
        if not same_kind:
            raise ValueError(
                f"range {t!r} must join two categories (A15-A16) or two subcategories (K35.2-K35.3)"
            )
        if low > high:
            raise ValueError(f"range {t!r} runs backwards")
        return DxPattern(f"{low}-{high}", "range", low, high)
    if allow_code and _CODE.match(t) and len(t) > 5:
        return DxPattern(t, "code")
    raise ValueError(
        f"{t!r} is not a subcategory (K35.3), category (K35) or range (A15-A16)"
        + (" or a full diagnosis code" if allow_code else "")
    )


# ----------------------------------------------------------------- model
@dataclass(frozen=True)
class DipGroup:
    """One row of ``groups.csv``."""

    group: str
    type: str  # core | comprehensive | primary
    dx_key: DxPattern
    main: tuple[str, ...]  # any of these; empty = conservative treatment
    related: tuple[str, ...]  # all required
    attribute: int  # comprehensive groups: 0..3; else -1
    score: float
    name: str = ""
    n: int | None = None
    mean_cost: float | None = None
    cv: float | None = None
    line: int = 0


@dataclass(frozen=True)
class Catalog:
    """A loaded DIP catalog: immutable, with lookups built once on first use."""

    id: str
    name: str
    version: str
    source: str
    groups: tuple[DipGroup, ...]
    attributes: dict[str, int]  # procedure code -> level 0..3
    excluded_diagnoses: tuple[tuple[DxPattern, str], ...]
    excluded_procedures: dict[str, str]  # code -> conservative | skip
    subtypes: dict[tuple[str, str, str], float] = field(default_factory=dict)
    unlisted_attribute: int = -1  # level of an unlisted procedure; -1 ignore
    path: Path | None = None

    kind = "dip"

    # lookups ---------------------------------------------------------------
    @cached_property
    def index(self) -> dict[str, int]:
        """Group id -> position in ``groups``."""
        return {g.group: i for i, g in enumerate(self.groups)}

    @cached_property
    def core_by_key(self) -> dict[str, tuple[int, ...]]:
        """Diagnosis-key text -> positions of its core/primary groups, in file order."""
        out: dict[str, list[int]] = {}
        for i, g in enumerate(self.groups):
            if g.type != "comprehensive":
                out.setdefault(g.dx_key.text, []).append(i)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def range_keys(self) -> tuple[DxPattern, ...]:
        """Range keys of core/primary groups, in the order they first appear."""
        seen: dict[str, DxPattern] = {}
        for g in self.groups:
            if g.type != "comprehensive" and g.dx_key.kind == "range":
                seen.setdefault(g.dx_key.text, g.dx_key)
        return tuple(seen.values())

    @cached_property
    def comprehensive(self) -> dict[tuple[str, int], int]:
        """(category, attribute level) -> position of the comprehensive group."""
        return {
            (g.dx_key.text, g.attribute): i for i, g in enumerate(self.groups) if g.type == "comprehensive"
        }

    def dx_keys(self, code: str) -> list[str]:
        """Keys a principal diagnosis may match, most specific first.

        Subcategory, then category, then the range keys containing the code
        in the order they appear in ``groups.csv``; only keys the catalog has.
        """
        keys = []
        sub = subcategory(code)
        if sub is not None and sub in self.core_by_key:
            keys.append(sub)
        cat = category(code)
        if cat is not None and cat in self.core_by_key:
            keys.append(cat)
        keys.extend(r.text for r in self.range_keys if r.matches(code))
        return keys

    def dx_handling(self, code: str) -> str | None:
        """Handling of ``code`` when it stands as principal diagnosis, or None when allowed."""
        for pattern, handling in self.excluded_diagnoses:
            if pattern.matches(code):
                return handling
        return None

    def procedure_level(self, code: str) -> int:
        """Attribute level 0..3 of a procedure; ``unlisted_attribute`` when not in the table."""
        return self.attributes.get(code, self.unlisted_attribute)

    def group_frame(self) -> pl.DataFrame:
        """The groups as a polars frame (id, type, key, procedures, score, statistics)."""
        import polars as pl

        return pl.DataFrame(
            {
                "dip_group": [g.group for g in self.groups],
                "dip_type": [g.type for g in self.groups],
                "dx_key": [g.dx_key.text for g in self.groups],
                "main_procedures": ["|".join(g.main) for g in self.groups],
                "related_procedures": ["|".join(g.related) for g in self.groups],
                "attribute": [ATTRIBUTES[g.attribute] if g.attribute >= 0 else "" for g in self.groups],
                "score": [g.score for g in self.groups],
                "name": [g.name for g in self.groups],
                "n": [g.n for g in self.groups],
                "mean_cost": [g.mean_cost for g in self.groups],
                "cv": [g.cv for g in self.groups],
            },
            schema_overrides={"n": pl.Int64, "mean_cost": pl.Float64, "cv": pl.Float64},
        )

    def __hash__(self) -> int:  # identity: catalogs are cached per path
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


# ----------------------------------------------------------------- loading
def _rows(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row dict) of a CSV file, checking its header."""
    name = path.name
    reader = table_rows(path, path.parent, what="DIP catalog table")
    header = next(reader, (1, None))[1]
    if header is None:
        raise SchemeError("empty file; expected a header " + ",".join(required), file=str(path), line=1)
    header = [h.strip() for h in header]
    for col in required:
        if col not in header:
            raise SchemeError(
                f"missing column {col!r} (header is {','.join(header)})", file=str(path), line=1, column=col
            )
    for i, h in enumerate(header, 1):
        if h not in required and h not in optional:
            raise SchemeError(f"unknown column {h!r} in {name}", file=str(path), line=1, column=i)
    for lineno, values in reader:
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise SchemeError(f"{len(values)} fields, header has {len(header)}", file=str(path), line=lineno)
        yield lineno, {h: v.strip() for h, v in zip(header, values, strict=True)}


def _codes(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split("|") if c.strip())


_N = TypeVar("_N", int, float)


def _number(text: str, path: Path, line: int, col: str, kind: Callable[[str], _N]) -> _N:
    try:
        value = kind(text)
    except ValueError:
        raise SchemeError(f"{text!r} is not a number", file=str(path), line=line, column=col) from None
    if value != value or value < 0:
        raise SchemeError(f"{text!r} must be a non-negative number", file=str(path), line=line, column=col)
    return value


def _optional(text: str, path: Path, line: int, col: str, kind: Callable[[str], _N]) -> _N | None:
    return None if text == "" else _number(text, path, line, col, kind)


def _attribute(text: str, path: Path, line: int, col: str) -> int:
    if text not in ATTRIBUTE_ALIASES:
        raise SchemeError(
            f"unknown procedure attribute {text!r}; use one of {', '.join(ATTRIBUTES)} (or 介入治疗)",
            file=str(path),
            line=line,
            column=col,
        )
    return ATTRIBUTE_ALIASES[text]


def _load_groups(path: Path) -> tuple[DipGroup, ...]:
    groups: list[DipGroup] = []
    seen: dict[str, int] = {}
    combos: dict[tuple, int] = {}
    comp: dict[tuple[str, int], int] = {}
    for line, row in _rows(
        path,
        ("group", "type", "dx_key", "main_procedures", "related_procedures", "attribute", "score"),
        ("name", "n", "mean_cost", "cv"),
    ):
        gid = row["group"]
        if not gid:
            raise SchemeError("empty group id", file=str(path), line=line, column="group")
        if gid in seen:
            raise SchemeError(
                f"group {gid!r} already defined on line {seen[gid]}",
                file=str(path),
                line=line,
                column="group",
            )
        seen[gid] = line
        gtype = GROUP_TYPES.get(row["type"])
        if gtype is None:
            raise SchemeError(
                f"unknown group type {row['type']!r}; use core, comprehensive or primary (核心/综合/基层)",
                file=str(path),
                line=line,
                column="type",
            )
        try:
            key = parse_dx_pattern(row["dx_key"])
        except ValueError as exc:
            raise SchemeError(str(exc), file=str(path), line=line, column="dx_key") from None
        main, related = _codes(row["main_procedures"]), _codes(row["related_procedures"])
        if gtype == "comprehensive":
            if key.kind != "category":
                raise SchemeError(
                    f"a comprehensive group is keyed by a category (K35), not {key.text!r}",
                    file=str(path),
                    line=line,
                    column="dx_key",
                )
            if main or related:
                raise SchemeError(
                    "a comprehensive group lists no procedures",
                    file=str(path),
                    line=line,
                    column="main_procedures" if main else "related_procedures",
                )
            attr = _attribute(row["attribute"], path, line, "attribute")
            if (key.text, attr) in comp:
                raise SchemeError(
                    f"{key.text} × {ATTRIBUTES[attr]} already has a comprehensive "
                    f"group on line {comp[(key.text, attr)]}",
                    file=str(path),
                    line=line,
                    column="attribute",
                )
            comp[(key.text, attr)] = line
        else:
            if row["attribute"]:
                raise SchemeError(
                    "only comprehensive groups carry an attribute",
                    file=str(path),
                    line=line,
                    column="attribute",
                )
            if related and not main:
                raise SchemeError(
                    "related procedures need a main procedure",
                    file=str(path),
                    line=line,
                    column="related_procedures",
                )
            attr = -1
            combo = (key.text, frozenset(main), frozenset(related))
            if combo in combos:
                raise SchemeError(
                    f"same diagnosis key and procedures as line {combos[combo]}",
                    file=str(path),
                    line=line,
                    column="main_procedures",
                )
            combos[combo] = line
        groups.append(
            DipGroup(
                group=gid,
                type=gtype,
                dx_key=key,
                main=main,
                related=related,
                attribute=attr,
                score=_number(row["score"], path, line, "score", float),
                name=row.get("name", ""),
                n=_optional(row.get("n", ""), path, line, "n", int),
                mean_cost=_optional(row.get("mean_cost", ""), path, line, "mean_cost", float),
                cv=_optional(row.get("cv", ""), path, line, "cv", float),
                line=line,
            )
        )
    if not groups:
        raise SchemeError("no groups", file=str(path), line=1)
    return tuple(groups)


#: auxiliary sub-type labels per dimension (casemix.dip.scores.subtype_labels)
#: 18-64 (the reference age band) and "none" are no sub-type and take no coefficient
SUBTYPES: dict[str, tuple[str, ...]] = {
    "age": ("0-28d", "29d-1y", "1-6", "7-17", "65+"),
    "severity": ("MCC", "CC"),
    "tumour": ("death", "metastasis", "radio_chemo"),
    "icu": ("2-7", "8-14", "15-30", "31+"),
}


def _load_subtypes(path: Path, groups: dict[str, int]) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = {}
    if not path.exists():
        return out
    for line, row in _rows(path, ("group", "dimension", "subtype", "coefficient"), ("note",)):
        if row["group"] not in groups:
            raise SchemeError(f"unknown group {row['group']!r}", file=str(path), line=line, column="group")
        if row["dimension"] not in SUBTYPES:
            raise SchemeError(
                f"unknown dimension {row['dimension']!r}; use {', '.join(SUBTYPES)}",
                file=str(path),
                line=line,
                column="dimension",
            )
        if row["subtype"] in ("18-64", "none"):
            raise SchemeError(
                f"{row['subtype']!r} is no sub-type (the reference, coefficient "
                f"1 by DIP 3.0 draft §5.3 一); delete the line",
                file=str(path),
                line=line,
                column="subtype",
            )
        if row["subtype"] not in SUBTYPES[row["dimension"]]:
            raise SchemeError(
                f"unknown {row['dimension']} sub-type {row['subtype']!r}; use "
                f"{', '.join(SUBTYPES[row['dimension']])}",
                file=str(path),
                line=line,
                column="subtype",
            )
        out[(row["group"], row["dimension"], row["subtype"])] = _number(
            row["coefficient"], path, line, "coefficient", float
        )
    return out


class _GroupingToml(StrictModel):
    unlisted_procedure_attribute: str = "ignore"


class CatalogToml(StrictModel):
    """Strict schema of ``catalog.toml`` (``docs/dip-catalog.md``): unknown keys are errors."""

    kind: Literal["dip"] = "dip"
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    version: str = ""
    source: str = ""
    grouping: _GroupingToml = _GroupingToml()


def load_catalog_folder(folder: str | Path) -> Catalog:
    """Load and validate the DIP catalog in ``folder`` (no caching)."""
    folder = Path(folder)
    meta_path = folder / "catalog.toml"
    if not meta_path.is_file():
        raise SchemeError("not a DIP catalog folder: catalog.toml is missing", file=str(folder))
    check_inside(meta_path, folder)
    doc = read_toml(meta_path)
    meta = validate(doc, CatalogToml)
    unlisted = meta.grouping.unlisted_procedure_attribute
    if unlisted == "ignore":
        unlisted_level = -1
    elif unlisted in ATTRIBUTE_ALIASES:
        unlisted_level = ATTRIBUTE_ALIASES[unlisted]
    else:
        loc = ("grouping", "unlisted_procedure_attribute")
        raise SchemeError(
            f'unlisted_procedure_attribute = {unlisted!r}; use "ignore" or an attribute name',
            file=str(meta_path),
            line=doc.line_of(loc),
            column=key_text(loc),
        )

    groups = _load_groups(folder / "groups.csv") if (folder / "groups.csv").exists() else None
    if groups is None:
        raise SchemeError("groups.csv is missing", file=str(folder / "groups.csv"))

    attributes: dict[str, int] = {}
    p = folder / "procedure_attributes.csv"
    if p.exists():
        for line, row in _rows(p, ("code", "attribute"), ("name",)):
            if row["code"] in attributes:
                raise SchemeError(
                    f"procedure {row['code']} listed twice", file=str(p), line=line, column="code"
                )
            attributes[row["code"]] = _attribute(row["attribute"], p, line, "attribute")

    excluded_dx: list[tuple[DxPattern, str]] = []
    p = folder / "excluded_diagnoses.csv"
    if p.exists():
        for line, row in _rows(p, ("pattern", "handling"), ("note",)):
            try:
                pattern = parse_dx_pattern(row["pattern"], allow_code=True)
            except ValueError as exc:
                raise SchemeError(str(exc), file=str(p), line=line, column="pattern") from None
            if row["handling"] not in DX_HANDLINGS:
                raise SchemeError(
                    f"handling {row['handling']!r}; use one of {', '.join(DX_HANDLINGS)}",
                    file=str(p),
                    line=line,
                    column="handling",
                )
            excluded_dx.append((pattern, row["handling"]))

    excluded_proc: dict[str, str] = {}
    p = folder / "excluded_procedures.csv"
    if p.exists():
        for line, row in _rows(p, ("code", "handling"), ("note",)):
            if row["handling"] not in PROC_HANDLINGS:
                raise SchemeError(
                    f"handling {row['handling']!r}; use one of {', '.join(PROC_HANDLINGS)}",
                    file=str(p),
                    line=line,
                    column="handling",
                )
            if row["code"] in excluded_proc:
                raise SchemeError(
                    f"procedure {row['code']} listed twice", file=str(p), line=line, column="code"
                )
            excluded_proc[row["code"]] = row["handling"]

    subtypes = _load_subtypes(folder / "subtypes.csv", {g.group: i for i, g in enumerate(groups)})
    return Catalog(
        id=meta.id,
        name=meta.name,
        version=meta.version,
        source=meta.source,
        groups=groups,
        attributes=attributes,
        excluded_diagnoses=tuple(excluded_dx),
        excluded_procedures=excluded_proc,
        subtypes=subtypes,
        unlisted_attribute=unlisted_level,
        path=folder,
    )


def write_catalog(catalog: Catalog, folder: str | Path, *, notice: str | None = None) -> Path:
    """Write ``catalog`` as a catalog folder that :func:`load_catalog_folder` reads back."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    unlisted = "ignore" if catalog.unlisted_attribute < 0 else ATTRIBUTES[catalog.unlisted_attribute]
    (folder / "catalog.toml").write_text(
        f'kind = "dip"\nid = {toml_string(catalog.id)}\nname = {toml_string(catalog.name)}\n'
        f"version = {toml_string(catalog.version)}\nsource = {toml_string(catalog.source)}\n\n"
        f'[grouping]\nunlisted_procedure_attribute = "{unlisted}"\n',
        encoding="utf-8",
    )

    def fmt(v: object) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return repr(round(v, 6))
        return str(v)

    with open(folder / "groups.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(
            [
                "group",
                "type",
                "dx_key",
                "main_procedures",
                "related_procedures",
                "attribute",
                "score",
                "name",
                "n",
                "mean_cost",
                "cv",
            ]
        )
        for g in catalog.groups:
            w.writerow(
                [
                    g.group,
                    g.type,
                    g.dx_key.text,
                    "|".join(g.main),
                    "|".join(g.related),
                    ATTRIBUTES[g.attribute] if g.attribute >= 0 else "",
                    fmt(g.score),
                    g.name,
                    fmt(g.n),
                    fmt(g.mean_cost),
                    fmt(g.cv),
                ]
            )
    with open(folder / "procedure_attributes.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["code", "attribute"])
        for code, level in catalog.attributes.items():
            w.writerow([code, ATTRIBUTES[level]])
    with open(folder / "excluded_diagnoses.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["pattern", "handling"])
        for pattern, handling in catalog.excluded_diagnoses:
            w.writerow([pattern.text, handling])
    with open(folder / "excluded_procedures.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["code", "handling"])
        for code, handling in catalog.excluded_procedures.items():
            w.writerow([code, handling])
    if catalog.subtypes:
        with open(folder / "subtypes.csv", "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["group", "dimension", "subtype", "coefficient"])
            for (group, dim, sub), coef in catalog.subtypes.items():
                w.writerow([group, dim, sub, fmt(coef)])
    (folder / "NOTICE").write_text(
        notice
        or (
            f"DIP catalog {catalog.id}, built by casemix.dip.build_catalog from a case history.\n"
            "It is a computed catalog, not an official one.\n"
        ),
        encoding="utf-8",
    )
    return folder
