"""Benefit policy as dated data: TOML documents → validated, compiled tables.

A benefit policy is a folder of TOML files.  Each file is one policy
*document* (a notice, a yearly parameter table) with a ``[document]`` table
giving the date it takes effect and its source; the rest of the file sets
parameter values.  Every value is dated: by its document's ``effective``
date, or by its own ``from`` date when written as ``{ value = …, from = …,
source = … }`` or as a list of such tables (a history).  The value in force
for a case is the latest one dated on or before the case's discharge date,
so a later document changes only what it names and only from its date.

An optional ``policy.toml`` (without ``[document]``) names the policy and may
``extends = "<folder or shipped name>"``: the base folder's documents are
read first, so a what-if is a small folder holding only the changed values.

The full key list, units and sources of the shipped examples are in
``docs/benefits.md``.  Every fault raises :class:`casemix.errors.PolicyError`
naming the file and the key.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from casemix._schema import StrictModel, TomlDoc, read_toml, validate
from casemix.errors import PolicyError

# Axes of the tables.  Case values (Chinese or English) map onto these indices.
INSURED = ("employee", "resident")  # 职工, 居民
STATUSES = ("extreme_poor", "subsistence", "marginal", "ordinary")  # 特困, 低保, 低边, 普通
LEVELS = ("1", "2", "3")  # 一级, 二级, 三级 hospital
#: the Chinese labels of INSURED and STATUSES, in their order (the values summaries show)
INSURED_LABELS = ("职工", "居民")
STATUS_LABELS = ("特困", "低保", "低边", "普通")
POOR = STATUSES[:3]

# Annual layers after basic insurance, in the order they are applied, and the
# output column of each (named after the settlement-list field where one exists).
# 再救助 comes last, after commercial cover (惠民保) and hospital waivers: it pays
# the burden left after every other layer (Shandong 2020 report, via
# ../shared/payment-rules.md "Benefits").
LAYERS = (
    "catastrophic",
    "local_supplement",
    "catastrophic_drug",
    "assistance",
    "supplement",
    "waiver",
    "reassistance",
)
LAYER_COLUMNS = {
    "basic": "hifp_pay",
    "catastrophic": "hifmi_pay",
    "local_supplement": "hifob_pay",
    "catastrophic_drug": "hifmi_drug_pay",
    "assistance": "maf_pay",
    "supplement": "hmb_pay",
    "waiver": "hosp_part_amt",
    "reassistance": "reassist_pay",
}

# Cost parts a layer may cover, in the order a layer's payment is taken off them.
PARTS = ("policy", "preselfpay", "special_drug", "selfpay")
PART_BIT = {p: 1 << i for i, p in enumerate(PARTS)}

# Parameter sets of an annual layer; a case looks a field up in this order:
# its status, "poor" (特困/低保/低边 only), its insured type, "default".
SETS = ("default", "poor", *INSURED, *STATUSES)
SET_FIELDS = ("eligible", "deductible", "rates", "band_upper", "cap")

NO_CAP = -1  # fen value meaning "no cap"
BP = 10_000  # rates are held in basis points: 0.83 → 8300
_MAX_YUAN = Decimal("1e10")


@dataclass(frozen=True)
class Entry:
    """One dated value of one key, with where it came from."""

    key: str
    start: _dt.date
    value: Any  # converted: fen (int), basis points (int), bool, tuple, NO_CAP
    raw: Any  # as written in the file
    source: str
    file: str


@dataclass(frozen=True)
class Band:
    """Parameters of one annual layer for one (insured type, status) cell, in fen and basis points.

    ``rates[k]`` applies to the cumulative annual amount between
    ``max(deductible, upper[k-1])`` and ``upper[k]`` (the last band is open).
    """

    eligible: bool
    deductible: int
    rates: tuple[int, ...]
    upper: tuple[int, ...]
    cap: int  # NO_CAP when uncapped


@dataclass(frozen=True)
class Version:
    """The policy in force from ``start`` until the next version."""

    start: _dt.date
    basic_deductible: dict[tuple[str, str], int]  # (insured, level) -> fen
    basic_rate: dict[tuple[str, str], int]  # (insured, level) -> bp
    basic_cap: dict[str, int]  # insured -> fen or NO_CAP
    referral_continuous: bool
    covers: dict[str, int]  # layer -> part bit mask (0: layer absent)
    major_disease_only: dict[str, bool]
    bands: dict[tuple[str, str, str], Band]  # (layer, insured, status) -> Band


@dataclass(frozen=True)
class Tables:
    """The policy compiled into arrays for the batch kernel (axis 0: version)."""

    start_day: np.ndarray  # int64 days since 1970-01-01, [V]
    b_ded: np.ndarray  # int64 [V, 2, 3]
    b_rate: np.ndarray  # int64 [V, 2, 3]
    b_cap: np.ndarray  # int64 [V, 2]
    b_refcont: np.ndarray  # int64 [V]
    g_covers: np.ndarray  # int64 [V, L]
    g_major: np.ndarray  # int64 [V, L]
    g_elig: np.ndarray  # int64 [V, L, 2, 4]
    g_ded: np.ndarray  # int64 [V, L, 2, 4]
    g_cap: np.ndarray  # int64 [V, L, 2, 4]
    g_nb: np.ndarray  # int64 [V, L, 2, 4]
    g_upper: np.ndarray  # int64 [V, L, 2, 4, K]
    g_rate: np.ndarray  # int64 [V, L, 2, 4, K]


@dataclass(frozen=True)
class BenefitPolicy:
    """A loaded, validated benefit policy.

    Attributes
    ----------
    name, description : str
        From ``policy.toml`` (the folder name when absent).
    illustrative : bool
        True for example policies that are not any city's actual rules.
    versions : tuple of Version
        One per distinct effective date, oldest first.
    entries : dict
        key -> dated :class:`Entry` list (provenance of every value).
    """

    name: str
    description: str
    illustrative: bool
    folders: tuple[str, ...]
    versions: tuple[Version, ...]
    entries: dict[str, tuple[Entry, ...]] = field(repr=False)
    _tables: list[Tables] = field(default_factory=list, repr=False, compare=False)

    @property
    def first_date(self) -> _dt.date:
        return self.versions[0].start

    def version_on(self, day: _dt.date) -> Version:
        """The version in force on ``day`` (latest start on or before it)."""
        found = None
        for v in self.versions:
            if v.start <= day:
                found = v
        if found is None:
            raise PolicyError(
                f"policy {self.name!r} has no values in force on {day}; its first date is {self.first_date}"
            )
        return found

    def value(self, key: str, day: _dt.date) -> Any:
        """The raw value of ``key`` in force on ``day`` (as written), or None."""
        e = self._entry(key, day)
        return None if e is None else e.raw

    def source(self, key: str, day: _dt.date) -> str | None:
        """The source of the value of ``key`` in force on ``day``."""
        e = self._entry(key, day)
        return None if e is None else f"{e.source} ({e.file})"

    def _entry(self, key: str, day: _dt.date) -> Entry | None:
        found = None
        for e in self.entries.get(key, ()):
            if e.start <= day:
                found = e
        return found

    @property
    def tables(self) -> Tables:
        """The compiled arrays (built once per policy object)."""
        if not self._tables:
            self._tables.append(_compile(self.versions))
        return self._tables[0]


# --------------------------------------------------------------------------- schema

_KEY_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"basic\.deductible\.(employee|resident)\.[123]"), "money"),
    (re.compile(r"basic\.rate\.(employee|resident)\.[123]"), "rate"),
    (re.compile(r"basic\.cap\.(employee|resident)"), "money_or_none"),
    (re.compile(r"basic\.referral_continuous"), "bool"),
]
_LAYER_RE = "(" + "|".join(LAYERS) + ")"
_SET_RE = "(" + "|".join(SETS) + ")"
_KEY_PATTERNS += [
    (re.compile(rf"{_LAYER_RE}\.covers"), "parts"),
    (re.compile(rf"{_LAYER_RE}\.major_disease_only"), "bool"),
    (re.compile(rf"{_LAYER_RE}\.{_SET_RE}\.eligible"), "bool"),
    (re.compile(rf"{_LAYER_RE}\.{_SET_RE}\.deductible"), "money"),
    (re.compile(rf"{_LAYER_RE}\.{_SET_RE}\.cap"), "money_or_none"),
    (re.compile(rf"{_LAYER_RE}\.{_SET_RE}\.rates"), "rates"),
    (re.compile(rf"{_LAYER_RE}\.{_SET_RE}\.band_upper"), "money_list"),
]


# The same key set as a strict pydantic schema, so an unknown key is named with its line
# and the nearest allowed key (issue 15).  Leaves are Any: a leaf is a value, a dated
# value {value, from, source} or a list of those, converted and range-checked by _convert.
_Leaf = Any


class _PerLevel(StrictModel):
    level1: _Leaf = Field(None, alias="1")
    level2: _Leaf = Field(None, alias="2")
    level3: _Leaf = Field(None, alias="3")


class _PerInsured(StrictModel):
    employee: _PerLevel | None = None
    resident: _PerLevel | None = None


class _CapPerInsured(StrictModel):
    employee: _Leaf = None
    resident: _Leaf = None


class _Basic(StrictModel):
    deductible: _PerInsured | None = None
    rate: _PerInsured | None = None
    cap: _CapPerInsured | None = None
    referral_continuous: _Leaf = None


class _Set(StrictModel):
    eligible: _Leaf = None
    deductible: _Leaf = None
    rates: _Leaf = None
    band_upper: _Leaf = None
    cap: _Leaf = None


class _Layer(StrictModel):
    covers: _Leaf = None
    major_disease_only: _Leaf = None
    default: _Set | None = None
    poor: _Set | None = None
    employee: _Set | None = None
    resident: _Set | None = None
    extreme_poor: _Set | None = None
    subsistence: _Set | None = None
    marginal: _Set | None = None
    ordinary: _Set | None = None


class _DocumentMeta(StrictModel):
    effective: Any = None
    source: Any = None
    title: str | None = None
    note: str | None = None


class PolicyDocumentToml(StrictModel):
    """Strict schema of one benefit policy document (see ``docs/benefits.md``)."""

    document: _DocumentMeta
    basic: _Basic | None = None
    catastrophic: _Layer | None = None
    local_supplement: _Layer | None = None
    catastrophic_drug: _Layer | None = None
    assistance: _Layer | None = None
    supplement: _Layer | None = None
    waiver: _Layer | None = None
    reassistance: _Layer | None = None


class _PolicyMeta(StrictModel):
    name: str | None = None
    description: str = ""
    illustrative: bool = False
    extends: str | None = None


class PolicyToml(StrictModel):
    """Strict schema of a policy folder's ``policy.toml``."""

    policy: _PolicyMeta = _PolicyMeta()


assert set(PolicyDocumentToml.model_fields) == {"document", "basic", *LAYERS}
assert set(_Layer.model_fields) == {"covers", "major_disease_only", *SETS}
assert set(_Set.model_fields) == set(SET_FIELDS)


def _kind(key: str) -> str | None:
    for pattern, kind in _KEY_PATTERNS:
        if pattern.fullmatch(key):
            return kind
    return None


def _money(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise PolicyError(f"{where}: expected an amount in yuan, got {v!r}")
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        raise PolicyError(f"{where}: {v!r} is not an amount in yuan") from None
    if not d.is_finite() or d < 0 or d > _MAX_YUAN:
        raise PolicyError(f"{where}: amount {v!r} must be between 0 and {_MAX_YUAN} yuan")
    fen = d * 100
    if fen != fen.to_integral_value():
        raise PolicyError(f"{where}: amount {v!r} has more than 2 decimals (whole fen needed)")
    return int(fen)


def _rate(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise PolicyError(f"{where}: expected a rate between 0 and 1, got {v!r}")
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        raise PolicyError(f"{where}: {v!r} is not a rate") from None
    if not d.is_finite() or d < 0 or d > 1:
        raise PolicyError(f"{where}: rate {v!r} must be between 0 and 1 (write 0.6 for 60%)")
    bp = d * BP
    if bp != bp.to_integral_value():
        raise PolicyError(f"{where}: rate {v!r} is finer than 0.0001 (one basis point)")
    return int(bp)


def _convert(kind: str, v: Any, where: str) -> Any:
    if kind == "money":
        return _money(v, where)
    if kind == "money_or_none":
        if isinstance(v, str) and v.strip().lower() == "none":
            return NO_CAP
        return _money(v, where)
    if kind == "rate":
        return _rate(v, where)
    if kind == "bool":
        if not isinstance(v, bool):
            raise PolicyError(f"{where}: expected true or false, got {v!r}")
        return v
    if kind == "rates":
        if not isinstance(v, list) or not v:
            raise PolicyError(f"{where}: expected a non-empty list of rates, e.g. [0.6, 0.7]")
        return tuple(_rate(x, f"{where}[{i}]") for i, x in enumerate(v))
    if kind == "money_list":
        if not isinstance(v, list):
            raise PolicyError(f"{where}: expected a list of amounts in yuan, e.g. [100000]")
        out = tuple(_money(x, f"{where}[{i}]") for i, x in enumerate(v))
        if any(b <= a for a, b in pairwise(out)) or (out and out[0] <= 0):
            raise PolicyError(f"{where}: band limits must be positive and strictly increasing")
        return out
    if kind == "parts":
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise PolicyError(f"{where}: expected a list of cost parts from {list(PARTS)}")
        bad = [x for x in v if x not in PARTS]
        if bad:
            raise PolicyError(f"{where}: unknown cost part(s) {bad}; use {list(PARTS)}")
        mask = 0
        for x in v:
            mask |= PART_BIT[x]
        return mask
    raise AssertionError(kind)


def _as_date(v: Any, where: str) -> _dt.date:
    if isinstance(v, _dt.datetime):
        return v.date()
    if isinstance(v, _dt.date):
        return v
    if isinstance(v, str):
        try:
            return _dt.date.fromisoformat(v)
        except ValueError:
            pass
    raise PolicyError(f"{where}: expected a date such as 2023-01-01, got {v!r}")


# --------------------------------------------------------------------------- reading


def _is_leaf_table(v: Any) -> bool:
    return isinstance(v, dict) and "value" in v


def _is_history(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(_is_leaf_table(x) for x in v)


def _flatten(table: dict, prefix: str, out: list[tuple[str, Any]]) -> None:
    for k, v in table.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and not _is_leaf_table(v):
            _flatten(v, key, out)
        else:
            out.append((key, v))


def entries_from_document(doc: dict | TomlDoc, file: str | None = None) -> list[Entry]:
    """Dated entries of one policy document (a parsed TOML table, or a read :class:`TomlDoc`).

    ``file`` names the document in error messages (default: the TomlDoc's path);
    a TomlDoc also gives every error its line.
    """
    located = doc if isinstance(doc, TomlDoc) else TomlDoc(path=str(file), data=doc)
    file = located.path if file is None else file
    doc = located.data
    meta = doc.get("document")
    if not isinstance(meta, dict):
        raise PolicyError(f"{file}: a [document] table with 'effective' and 'source' is needed")
    validate(located, PolicyDocumentToml, error=PolicyError)

    def at(key: str) -> str:
        line = located.line_of(tuple(key.split(".")))
        return f"{file}{'' if line is None else f', line {line}'}: key {key}"

    if "effective" not in meta:
        raise PolicyError(f"{file}: key document.effective (the date the values take effect) is missing")
    effective = _as_date(meta["effective"], f"{file}: document.effective")
    doc_source = meta.get("source")
    if not isinstance(doc_source, str) or not doc_source.strip():
        raise PolicyError(
            f"{file}: key document.source is missing or empty; "
            "say which document, page or assumption the values come from"
        )

    flat: list[tuple[str, Any]] = []
    _flatten({k: v for k, v in doc.items() if k != "document"}, "", flat)
    result: list[Entry] = []
    for key, v in flat:
        kind = _kind(key)
        if kind is None:
            raise PolicyError(f"{at(key)}: unknown key {key!r} (see docs/benefits.md for the key list)")
        items = v if _is_history(v) else [v]
        for item in items:
            start, source, raw = effective, doc_source, item
            if _is_leaf_table(item):
                extra = set(item) - {"value", "from", "source"}
                if extra:
                    raise PolicyError(
                        f"{at(key)}: unknown field(s) {sorted(extra)}; a dated value has value, from, source"
                    )
                raw = item["value"]
                if "from" in item:
                    start = _as_date(item["from"], f"{at(key)}.from")
                if "source" in item:
                    source = item["source"]
                    if not isinstance(source, str) or not source.strip():
                        raise PolicyError(f"{at(key)}.source must be a non-empty string")
            value = _convert(kind, raw, at(key))
            result.append(Entry(key, start, value, raw, source, file))
    return result


def _shipped_root() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "benefits"


def shipped_policies() -> list[str]:
    """Names of the example benefit policies shipped with casemix."""
    root = _shipped_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.toml")))


def _resolve_folder(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path).strip():
        raise PolicyError(
            f"a benefit policy is a BenefitPolicy, a folder or a shipped name "
            f"({', '.join(shipped_policies()) or 'none'}); got {name_or_path!r}"
        )
    p = Path(name_or_path)
    candidates = []
    if relative_to is not None and not p.is_absolute():
        candidates.append(relative_to / p)
    candidates += [p, _shipped_root() / str(name_or_path)]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    raise PolicyError(
        f"benefit policy folder not found: {name_or_path!s} "
        f"(shipped policies: {', '.join(shipped_policies()) or 'none'})"
    )


def _read_toml(path: Path) -> TomlDoc:
    return read_toml(path, error=PolicyError)


def _read_folder(folder: Path, seen: tuple[Path, ...]) -> tuple[dict, list[Entry], list[Path]]:
    if folder in seen:
        raise PolicyError(
            f"{folder}/policy.toml: 'extends' makes a cycle ({' -> '.join(str(s) for s in (*seen, folder))})"
        )
    meta: dict = {}
    entries: list[Entry] = []
    folders: list[Path] = []
    meta_path = folder / "policy.toml"
    if meta_path.is_file():
        meta = validate(_read_toml(meta_path), PolicyToml, error=PolicyError).policy.model_dump(
            exclude_none=True
        )
        if "extends" in meta:
            base = _resolve_folder(meta["extends"], relative_to=folder)
            _, base_entries, base_folders = _read_folder(base, (*seen, folder))
            entries += base_entries
            folders += base_folders
    docs = sorted(p for p in folder.glob("*.toml") if p.name != "policy.toml")
    if not docs and not entries:
        raise PolicyError(f"{folder}: no policy documents (*.toml with a [document] table)")
    own: list[Entry] = []
    for path in docs:
        own += entries_from_document(_read_toml(path))
    # A what-if folder overrides its base: its value for a key and date replaces the base's.
    mine = {(e.key, e.start) for e in own}
    entries = [e for e in entries if (e.key, e.start) not in mine] + own
    folders.append(folder)
    return meta, entries, folders


def load_policy(folder: str | Path) -> BenefitPolicy:
    """Load and validate a benefit policy folder.

    Parameters
    ----------
    folder : str or Path
        A folder of TOML policy documents, or the name of a shipped example
        (see :func:`shipped_policies`).

    Returns
    -------
    BenefitPolicy

    Raises
    ------
    casemix.errors.PolicyError
        Naming the file and key of any malformed, unknown, conflicting or
        missing value.
    """
    path = _resolve_folder(folder)
    meta, entries, folders = _read_folder(path, ())
    return policy_from_entries(
        entries,
        name=str(meta.get("name", path.name)),
        description=str(meta.get("description", "")),
        illustrative=bool(meta.get("illustrative", False)),
        folders=tuple(str(f) for f in folders),
    )


def policy_from_documents(docs: list[dict], *, name: str = "in-memory") -> BenefitPolicy:
    """Build a policy from parsed TOML documents (dicts), e.g. in tests or notebooks."""
    entries: list[Entry] = []
    for i, doc in enumerate(docs):
        entries += entries_from_document(doc, f"<document {i}>")
    return policy_from_entries(entries, name=name)


# --------------------------------------------------------------------------- resolving


def policy_from_entries(
    entries: list[Entry],
    *,
    name: str,
    description: str = "",
    illustrative: bool = False,
    folders: tuple[str, ...] = (),
) -> BenefitPolicy:
    """Group dated entries by key, check them and resolve one :class:`Version` per date."""
    by_key: dict[str, list[Entry]] = {}
    for e in entries:
        by_key.setdefault(e.key, []).append(e)
    for key, es in by_key.items():
        es.sort(key=lambda e: e.start)
        for a, b in pairwise(es):
            # A what-if restating a base value on the same date is harmless;
            # two different values on one date leave the policy undefined.
            if a.start == b.start and a.value != b.value:
                raise PolicyError(
                    f"key {key} has two values dated {a.start}: "
                    f"{a.raw!r} in {a.file} and {b.raw!r} in {b.file}"
                )
        dedup: list[Entry] = []
        for e in es:
            if dedup and dedup[-1].start == e.start:
                dedup[-1] = e
            else:
                dedup.append(e)
        by_key[key] = dedup
    if not by_key:
        raise PolicyError(f"policy {name!r} sets no values")
    dates = sorted({e.start for es in by_key.values() for e in es})
    versions = tuple(_resolve_version(by_key, d, name) for d in dates)
    return BenefitPolicy(
        name=name,
        description=description,
        illustrative=illustrative,
        folders=folders,
        versions=versions,
        entries={k: tuple(v) for k, v in by_key.items()},
    )


def _at(by_key: dict[str, list[Entry]], key: str, day: _dt.date) -> Entry | None:
    found = None
    for e in by_key.get(key, ()):
        if e.start <= day:
            found = e
    return found


def _resolve_version(by_key: dict[str, list[Entry]], day: _dt.date, name: str) -> Version:
    def need(key: str) -> Any:
        e = _at(by_key, key, day)
        if e is None:
            raise PolicyError(
                f"policy {name!r}: key {key} has no value in force on {day} "
                f"(values take effect from {day}; date one on or before it)"
            )
        return e.value

    b_ded = {(i, lv): need(f"basic.deductible.{i}.{lv}") for i in INSURED for lv in LEVELS}
    b_rate = {(i, lv): need(f"basic.rate.{i}.{lv}") for i in INSURED for lv in LEVELS}
    b_cap = {i: need(f"basic.cap.{i}") for i in INSURED}
    e = _at(by_key, "basic.referral_continuous", day)
    refcont = True if e is None else e.value

    covers: dict[str, int] = {}
    major: dict[str, bool] = {}
    bands: dict[tuple[str, str, str], Band] = {}
    for layer in LAYERS:
        present = any(k.startswith(layer + ".") and _at(by_key, k, day) is not None for k in by_key)
        if not present:
            covers[layer] = 0
            major[layer] = False
            for i in INSURED:
                for s in STATUSES:
                    bands[(layer, i, s)] = Band(False, 0, (0,), (), NO_CAP)
            continue
        e = _at(by_key, f"{layer}.covers", day)
        default_cover = PART_BIT["special_drug"] if layer == "catastrophic_drug" else PART_BIT["policy"]
        covers[layer] = default_cover if e is None else e.value
        e = _at(by_key, f"{layer}.major_disease_only", day)
        major[layer] = False if e is None else e.value
        for i in INSURED:
            for s in STATUSES:
                chain = [s, *(["poor"] if s in POOR else []), i, "default"]

                def look(fld: str, chain: list[str] = chain, layer: str = layer) -> Entry | None:
                    for st in chain:
                        e = _at(by_key, f"{layer}.{st}.{fld}", day)
                        if e is not None:
                            return e
                    return None

                el = look("eligible")
                if el is not None and not el.value:  # no eligible key: eligible
                    # Parameters set for a more specific group than the one that made the
                    # cell ineligible are almost surely meant to apply: say so.
                    ruled_by = el.key.split(".")[1]
                    for st in chain[: chain.index(ruled_by)]:
                        for fld in ("deductible", "rates", "band_upper", "cap"):
                            e = _at(by_key, f"{layer}.{st}.{fld}", day)
                            if e is not None:
                                raise PolicyError(
                                    f"{e.file}: key {e.key} is set but {i}/{s} is not eligible "
                                    f"for {layer} on {day} ({el.key} = false in {el.file}); "
                                    f"add {layer}.{st}.eligible = true"
                                )
                    bands[(layer, i, s)] = Band(False, 0, (0,), (), NO_CAP)
                    continue
                got = {}
                for fld in ("deductible", "rates", "cap"):
                    e = look(fld)
                    if e is None:
                        raise PolicyError(
                            f"policy {name!r}: layer {layer} has no {fld} for {i}/{s} on {day}; "
                            f"set one of {', '.join(f'{layer}.{c}.{fld}' for c in chain)} "
                            f"(or {layer}.{chain[0]}.eligible = false)"
                        )
                    got[fld] = e
                ub = look("band_upper")
                upper = () if ub is None else ub.value
                rates = got["rates"].value
                if len(upper) != len(rates) - 1:
                    where = got["rates"].file if ub is None else ub.file
                    raise PolicyError(
                        f"{where}: layer {layer} for {i}/{s} on {day}: {len(rates)} rates need "
                        f"{len(rates) - 1} band_upper limits, found {len(upper)} "
                        f"(key {got['rates'].key}" + (f" and {ub.key})" if ub else ")")
                    )
                bands[(layer, i, s)] = Band(True, got["deductible"].value, rates, upper, got["cap"].value)
    return Version(day, b_ded, b_rate, b_cap, refcont, covers, major, bands)


def _compile(versions: tuple[Version, ...]) -> Tables:
    # E741: the dimensions keep the one-letter names of the Tables field comments
    V, L, I, S, H = len(versions), len(LAYERS), len(INSURED), len(STATUSES), len(LEVELS)  # noqa: E741
    K = max(len(b.rates) for v in versions for b in v.bands.values())
    z = lambda *shape: np.zeros(shape, dtype=np.int64)  # noqa: E731
    t = Tables(
        start_day=np.array([(v.start - _dt.date(1970, 1, 1)).days for v in versions], np.int64),
        b_ded=z(V, I, H),
        b_rate=z(V, I, H),
        b_cap=z(V, I),
        b_refcont=z(V),
        g_covers=z(V, L),
        g_major=z(V, L),
        g_elig=z(V, L, I, S),
        g_ded=z(V, L, I, S),
        g_cap=z(V, L, I, S),
        g_nb=z(V, L, I, S),
        g_upper=z(V, L, I, S, K),
        g_rate=z(V, L, I, S, K),
    )
    for vi, v in enumerate(versions):
        t.b_refcont[vi] = int(v.referral_continuous)
        for ii, i in enumerate(INSURED):
            t.b_cap[vi, ii] = v.basic_cap[i]
            for hi, h in enumerate(LEVELS):
                t.b_ded[vi, ii, hi] = v.basic_deductible[(i, h)]
                t.b_rate[vi, ii, hi] = v.basic_rate[(i, h)]
        for li, layer in enumerate(LAYERS):
            t.g_covers[vi, li] = v.covers[layer]
            t.g_major[vi, li] = int(v.major_disease_only[layer])
            for ii, i in enumerate(INSURED):
                for si, s in enumerate(STATUSES):
                    b = v.bands[(layer, i, s)]
                    t.g_elig[vi, li, ii, si] = int(b.eligible)
                    t.g_ded[vi, li, ii, si] = b.deductible
                    t.g_cap[vi, li, ii, si] = b.cap
                    t.g_nb[vi, li, ii, si] = len(b.rates)
                    for k, r in enumerate(b.rates):
                        t.g_rate[vi, li, ii, si, k] = r
                    for k, u in enumerate(b.upper):
                        t.g_upper[vi, li, ii, si, k] = u
    return t
