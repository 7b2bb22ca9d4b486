"""The DRG/DIP policy file (TOML): a strict pydantic v2 model of its layout.

Every table and key of the file is a field here (``extra = "forbid"``,
types checked at load, strict: a string where a number belongs is an
error, not a conversion).  :func:`policy_kwargs` turns a checked file into
the keyword arguments of :class:`casemix.budget.Policy`, which then checks
ranges and consistency.  The commented file ``casemix policy init`` prints
is :func:`casemix.payment.policy_template.template`'s.

Layout and formulas: ``docs/payment-budget.md``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from casemix.errors import PolicyError
from casemix.payment.monthly import MonthlyConfig
from casemix.payment.new_tech import NewTechConfig
from casemix.payment.outliers import OutliersConfig
from casemix.payment.special_cases import SpecialCasesConfig
from casemix.payment.terms import Band, Corridors, Elastic, HighCost, LowCost, Pool, Readmission, ShortStay

__all__ = ["PolicyFile", "policy_kwargs"]

Number = int | float


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class BudgetTable(_Table):
    """``[budget]``: the fund budget and how points turn into money."""

    total_yuan: Number | None = None
    points_per_rw: Number | None = None
    method: Literal["point", "rate"] | None = None
    point_form: Literal["actual", "ratio"] | None = None
    fund_ratio: Number | None = None
    rate_yuan: Number | None = None
    quality_reserve: Number | None = None
    prepayment_share: Number | None = None


class CoefficientsTable(_Table):
    """``[coefficients]``: hospital coefficients and same-rate (基层) groups."""

    default: Number | None = None
    level: dict[str, Number] | None = None
    hospital: dict[str, Number] | None = None
    hospital_drg: dict[str, dict[str, Number]] | None = None
    hospital_drg_file: str | None = None
    same_rate_groups: list[str] | None = None


class HighCostTable(_Table):
    rule: Literal["excess", "pro_rata", "none"] | None = None
    k: dict[str, Number] | None = None
    k_default: Number | None = None
    factor: Number | None = None
    mean: Literal["weights", "cases"] | None = None


class LowCostTable(_Table):
    ratio: Number | None = None
    rule: Literal["pro_rata", "none"] | None = None


class ShortStayTable(_Table):
    enabled: bool | None = None
    max_los: Number | None = None
    discharge: list[int] | None = None
    basis: Literal["cost", "los"] | None = None
    coefficient: bool | None = None


class ReadmissionTable(_Table):
    enabled: bool | None = None
    days: int | None = None
    penalty: Number | None = None
    apply_to: Literal["earlier", "later"] | None = None
    match: Literal["drg", "adrg"] | None = None
    same_hospital: bool | None = None
    exempt_adrg: list[str] | None = None
    exempt_diagnoses: list[str] | None = None


class UngroupableTable(_Table):
    rule: Literal["cost", "points", "none"] | None = None
    codes: list[str] | None = None


class PoolTable(_Table):
    """``[pools.NAME]``: one fund pool (职工, 居民)."""

    budget_yuan: Number | None = None
    rate_yuan: Number | None = None
    quality_reserve: Number | None = None
    values: list[str | int] | None = None


class ElasticTable(_Table):
    enabled: bool | None = None
    base_share: Number | None = None
    cap: bool | None = None
    base_volume: str | None = None


class BandTable(_Table):
    upto: Number
    share: Number


class CorridorsTable(_Table):
    surplus: list[BandTable] | None = None
    overspend: list[BandTable] | None = None


class PolicyFile(_Table):
    """The whole policy file; every table optional except what the method needs."""

    name: str | None = None
    budget: BudgetTable = Field(default_factory=BudgetTable)
    coefficients: CoefficientsTable = Field(default_factory=CoefficientsTable)
    hospital_levels: dict[str, str | int] = Field(default_factory=dict)
    high_cost: HighCostTable = Field(default_factory=HighCostTable)
    low_cost: LowCostTable = Field(default_factory=LowCostTable)
    short_stay: ShortStayTable = Field(default_factory=ShortStayTable)
    special_cases: SpecialCasesConfig = Field(default_factory=SpecialCasesConfig)
    new_tech: NewTechConfig = Field(default_factory=NewTechConfig)
    outliers: OutliersConfig = Field(default_factory=OutliersConfig)
    monthly: MonthlyConfig = Field(default_factory=MonthlyConfig)
    readmission: ReadmissionTable = Field(default_factory=ReadmissionTable)
    ungroupable: UngroupableTable = Field(default_factory=UngroupableTable)
    pools: dict[str, PoolTable] = Field(default_factory=dict)
    elastic: ElasticTable = Field(default_factory=ElasticTable)
    corridors: CorridorsTable = Field(default_factory=CorridorsTable)


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model whose keys are allowed at ``loc`` (a pydantic error location)."""
    model: type[BaseModel] | None = PolicyFile
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        f = model.model_fields.get(part)
        if f is None:
            return model
        ann = f.annotation
        nxt: type[BaseModel] | None = None
        for t in (ann, *getattr(ann, "__args__", ())):
            for u in (t, *getattr(t, "__args__", ())):
                if isinstance(u, type) and issubclass(u, BaseModel):
                    nxt = u
        if part == "pools":
            nxt = PoolTable
        model = nxt
    return model


def _line_of(text: str | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the key at ``loc`` in the TOML text, if it can be found."""
    if not text:
        return None
    keys = [str(p) for p in loc if not isinstance(p, int)]
    if not keys:
        return None
    key = re.escape(keys[-1])
    section = ".".join(keys[:-1])
    current = ""
    for i, line in enumerate(text.splitlines(), 1):
        head = re.match(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?", line)
        if head:
            current = head.group(1).replace('"', "")
            if current == ".".join(keys):
                return i
            continue
        if current == section and re.match(rf"\s*\"?{key}\"?\s*=", line):
            return i
        if re.match(rf"\s*{re.escape(section)}\.{key}\s*=", line) if section else False:
            return i
    return None


def _error(exc: ValidationError, source: str, text: str | None) -> PolicyError:
    e = exc.errors()[0]
    loc = tuple(e["loc"])
    # pydantic reports a union's failed branch (Number = int | float, list[str | int]) as a
    # last location part ('int', 'float' …); an unknown key or a table name of the file
    # that happens to read 'int' is the user's and is kept
    if e["type"] != "extra_forbidden" and loc and loc[-1] in ("int", "float", "str"):
        loc = loc[:-1]
    where = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    line = _line_of(text, loc)
    at = f"{source}" + (f", line {line}" if line else "")
    if e["type"] == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = sorted(model.model_fields) if model is not None else []
        near = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.5)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return PolicyError(f"{at}: unknown key {where!r}{hint} (allowed here: {', '.join(allowed)})")
    got = e.get("input")
    return PolicyError(f"{at}: {where}: {e['msg']} (got {got!r})")


def _given(model: BaseModel) -> dict[str, Any]:
    return dict(model.model_dump(exclude_none=True))


def policy_kwargs(
    data: Mapping[str, Any], *, source: str = "<dict>", text: str | None = None, folder: Path | None = None
) -> dict[str, Any]:
    """Check a policy file's data against :class:`PolicyFile`; keyword arguments of ``Policy``.

    Keys absent from the file keep :class:`~casemix.budget.Policy`'s
    defaults.  ``folder`` resolves ``elastic.base_volume`` relative to the
    policy file.

    Raises
    ------
    PolicyError
        An unknown key (naming it, the nearest allowed key and the line) or
        a value of the wrong type.
    """
    try:
        f = PolicyFile.model_validate(dict(data))
    except ValidationError as exc:
        raise _error(exc, source, text) from None
    kw: dict[str, Any] = {"source": source}
    if f.name is not None:
        kw["name"] = f.name
    b = _given(f.budget)
    if "total_yuan" in b:
        kw["budget"] = b.pop("total_yuan")
    kw.update(b)
    c = _given(f.coefficients)
    for k, field in (
        ("default", "coefficient_default"),
        ("level", "level_coefficients"),
        ("hospital", "hospital_coefficients"),
        ("same_rate_groups", "same_rate_groups"),
    ):
        if k in c:
            kw[field] = c[k]
    drg = _hospital_drg_file(c["hospital_drg_file"], source, folder) if "hospital_drg_file" in c else {}
    for h, per in c.get("hospital_drg", {}).items():
        drg.setdefault(str(h), {}).update(per)  # the file's entries, then the inline ones
    if drg:
        kw["hospital_drg_coefficients"] = drg
    kw["hospital_levels"] = {str(h): str(v) for h, v in f.hospital_levels.items()}
    u = _given(f.ungroupable)
    if "rule" in u:
        kw["ungroupable"] = u["rule"]
    if "codes" in u:
        kw["ungroupable_codes"] = tuple(u["codes"])
    for table, cls, field in (
        (f.high_cost, HighCost, "high_cost"),
        (f.low_cost, LowCost, "low_cost"),
        (f.short_stay, ShortStay, "short_stay"),
        (f.readmission, Readmission, "readmission"),
    ):
        given = _given(table)
        for k, v in given.items():
            if isinstance(v, list):
                given[k] = tuple(v)
        kw[field] = cls(**given)
    # the payment rules' own models (casemix.payment.*), validated with the file
    kw.update(special=f.special_cases, new_tech=f.new_tech, outliers=f.outliers, monthly=f.monthly)
    pools = {}
    for name, t in f.pools.items():
        g = _given(t)
        pools[name] = Pool(
            budget=g.get("budget_yuan"),
            rate_yuan=g.get("rate_yuan"),
            quality_reserve=g.get("quality_reserve"),
            values=tuple(str(v) for v in g.get("values", ())),
        )
    kw["pools"] = pools
    el = _given(f.elastic)
    if "base_volume" in el and folder is not None and not Path(el["base_volume"]).is_absolute():
        el["base_volume"] = str(folder / el["base_volume"])
    kw["elastic"] = Elastic(**el)
    kw["corridors"] = Corridors(
        surplus=tuple(Band(**x.model_dump()) for x in f.corridors.surplus or ()),
        overspend=tuple(Band(**x.model_dump()) for x in f.corridors.overspend or ()),
    )
    return kw


def _hospital_drg_file(name: str, source: str, folder: Path | None) -> dict[str, dict[str, float]]:
    """``coefficients.hospital_drg_file``: CSV/Parquet ``hospital_id, drg, coefficient``."""
    import polars as pl

    from casemix._frames import read_path
    from casemix.errors import CasemixError

    path = Path(name)
    if folder is not None and not path.is_absolute():
        path = folder / path
    key = "coefficients.hospital_drg_file"
    if not path.exists():
        raise PolicyError(f"{source}: {key} not found: {path}")
    try:
        t = read_path(path)
    except CasemixError as exc:
        raise PolicyError(f"{source}: {key} {path}: {exc}") from None
    need = ("hospital_id", "drg", "coefficient")
    if not set(need) <= set(t.columns):
        raise PolicyError(
            f"{source}: {key} {path} needs columns {', '.join(need)}; has {', '.join(t.columns)}"
        )
    t = t.select(
        pl.col("hospital_id").cast(pl.String),
        pl.col("drg").cast(pl.String),
        pl.col("coefficient").cast(pl.Float64, strict=False),
    ).with_row_index("row", offset=2)  # row 1 is the header
    bad = t.filter(
        pl.col("hospital_id").is_null()
        | pl.col("drg").is_null()
        | pl.col("coefficient").is_null()
        | ~pl.col("coefficient").is_finite()
        | (pl.col("coefficient") <= 0)
    )
    if bad.height:
        r = bad.row(0, named=True)
        raise PolicyError(
            f"{source}: {key} {path}, row {r['row']}: hospital_id, drg and a coefficient > 0 "
            f"are needed (got {r['hospital_id']!r}, {r['drg']!r}, {r['coefficient']!r})"
        )
    dup = t.filter(~pl.struct("hospital_id", "drg").is_first_distinct())
    if dup.height:
        r = dup.row(0, named=True)
        raise PolicyError(
            f"{source}: {key} {path}, row {r['row']}: hospital {r['hospital_id']!r} and DRG "
            f"{r['drg']!r} are listed more than once (keep one row)"
        )
    out: dict[str, dict[str, float]] = {}
    for _, h, g, f in t.iter_rows():
        out.setdefault(h, {})[g] = f
    return out
