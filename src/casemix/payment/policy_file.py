"""The DRG/DIP policy file (TOML): a strict pydantic v2 model of its layout.

Every table and key of the file is a field here (``extra = "forbid"``,
types checked at load, strict: a string where a number belongs is an
error, not a conversion).  :func:`policy_kwargs` turns a checked file into
the keyword arguments of :class:`casemix.budget.Policy`, which then checks
ranges and consistency.  :func:`template` writes the commented file that
``casemix policy init`` prints: every key with its default, taken from
:class:`~casemix.budget.Policy` itself so the two cannot drift.

Layout and formulas: ``docs/payment-budget.md``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from casemix._schema import toml_string
from casemix.errors import PolicyError
from casemix.payment.monthly import MonthlyConfig
from casemix.payment.new_tech import NewTechConfig
from casemix.payment.outliers import OutliersConfig
from casemix.payment.special_cases import SpecialCasesConfig

__all__ = ["PolicyFile", "policy_kwargs", "template"]

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
    # pydantic reports a union's failed branch as an extra location part ('int', 'float' …)
    loc = tuple(p for p in loc if p not in ("int", "float", "str", "bool", "list[...]"))
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
    from casemix.budget import Band, Corridors, Elastic, HighCost, LowCost, Pool, Readmission, ShortStay

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


# --- template --------------------------------------------------------------------------

_COMMENTS = {
    "name": "label used in reports and comparisons",
    "budget.total_yuan": "fund budget (统筹基金) in yuan; with pools the sum of theirs (may be left out)",
    "budget.points_per_rw": "base points = RW × points_per_rw [city: fqjz1, Jinhua]",
    "budget.method": '"point" (点数法: budget → point value) or "rate" (费率法: RW × rate × coefficient)',
    "budget.point_form": '"actual": PV = (budget + Σ patient share) / points [Z]; "ratio": PV = (budget / fund_ratio) / points [A §7]',
    "budget.fund_ratio": "医保支付比例 of the ratio form",
    "budget.rate_yuan": "rate method: base rate, yuan per RW (per pool: pools.NAME.rate_yuan)",
    "budget.quality_reserve": "share of each hospital's fund payment withheld until assessment (<= 5%)",
    "budget.prepayment_share": "share of the fund payment advanced during the year",
    "coefficients.default": "hospital coefficient when neither hospital nor level is listed",
    "coefficients.level": 'per hospital level, e.g. { "3" = 1.0, "2" = 0.9 }',
    "coefficients.hospital": "per hospital_id; beats the level",
    "coefficients.hospital_drg": "per hospital_id and DRG, e.g. { H001 = { FR25 = 1.08 } }; beats the hospital's [city: Jinhua 2017]",
    "coefficients.hospital_drg_file": "CSV/Parquet: hospital_id, drg, coefficient (relative to this file); inline entries win",
    "coefficients.same_rate_groups": "基层病组 / 同等费率病组: coefficient 1 at every level",
    "hospital_levels": "hospital_id = level, used when cases carry no hospital_level",
    "high_cost.rule": '"excess": P + factor × (c − k·m)/m × P; "pro_rata": P × c/m; "none"',
    "high_cost.k": "high-cost multiple per level (三级 3, 二级 2 [spec])",
    "high_cost.k_default": "multiple for levels not listed",
    "high_cost.factor": "share of the excess paid under the excess rule",
    "high_cost.mean": '"weights" (mean_cost of the weight table) or "cases" (this year\'s group mean)',
    "low_cost.ratio": "below ratio × mean: paid P × c/m [unverified 0.3–0.4]",
    "low_cost.rule": '"pro_rata" or "none"',
    "short_stay.enabled": "deaths/transfers with a short stay paid pro rata",
    "short_stay.max_los": "days",
    "short_stay.discharge": "离院方式 codes: 2 转院, 3 转社区, 5 死亡",
    "short_stay.basis": '"cost": P × min(c/m, 1); "los": P × min(los/mean_los, 1)',
    "short_stay.coefficient": "false: no hospital coefficient on incomplete stays [city: Jinhua 2017]",
    "special_cases.case_ids": "特例单议 applications (case ids) [A-办 §20]",
    "special_cases.cost_multiple": "also apply cases with cost > k × standard (DIP 3.0 §6.2: 2)",
    "special_cases.min_los": "also apply cases with LOS > N days",
    "special_cases.cap_share": "approved <= share × the REGION's cases; unset: DRG 0.05, DIP 0.005",
    "special_cases.order": '"cost_ratio" (highest cost/standard first, ties by case id) or "listed"',
    "special_cases.pay": '"item" (cost × fund_ratio outside the points) or "points" (cost → points)',
    "special_cases.fund_ratio": "the fund's share of an approved case's cost (pay = item)",
    "new_tech.enabled": "新药新技术除外支付 (cases need new_tech_cost, or give codes)",
    "new_tech.cost_multiple": "DRG: case cost > k × standard [B: Beijing 2]",
    "new_tech.min_share": "DRG: new-tech cost / cost > share [B: Beijing 0.64]",
    "new_tech.fund_ratio": "DRG: fund's share of the new-tech cost paid outside the points",
    "new_tech.dip_factor": "DIP: add-on points = factor × new-tech cost / yuan per point [A §5.1]",
    "new_tech.codes": 'procedure code = new-tech cost in yuan, e.g. { "00.1234" = 50000.0 }',
    "outliers.reference": '"standard" (m × coefficient, DIP 3.0 §5.3), "group_mean" or "level_mean"',
    "outliers.table_thresholds": "weights' low_k/high_k (city 低倍/高倍临界值) beat the policy's",
    "monthly.enabled": "monthly pre-settlement (by discharge month) and annual clearing",
    "monthly.point_value": "provisional point value, yuan/point; unset: the base point value",
    "monthly.prepay_ratio": "预拨比例 [A §7.2: 0.9]",
    "monthly.deposit_share": "quality deposit withheld from the annual amount (<= 0.05 [A-规 §26])",
    "monthly.scores": "hospital_id = assessment score, e.g. { H001 = 92.5 }",
    "monthly.default_score": "score of hospitals not listed",
    "monthly.full_score": "score returning the whole deposit (returned = min(score/full, 1))",
    "monthly.pass_score": "below this score no deposit is returned",
    "readmission.enabled": "readmission within days: a stay's points × penalty",
    "readmission.days": "15 Zhejiang 2019, 10 Jinhua",
    "readmission.penalty": "0.5 in Zhejiang 2019",
    "readmission.apply_to": '"earlier" or "later" stay',
    "readmission.match": '"drg" (same DRG [Z]) or "adrg"',
    "readmission.same_hospital": "pair stays only within one hospital (Zhejiang 2019: any hospital)",
    "readmission.exempt_adrg": "tumour radio/chemotherapy ADRGs take no part",
    "readmission.exempt_diagnoses": "principal-diagnosis prefixes that take no part",
    "ungroupable.rule": '"cost" (at cost, outside points), "points" (cost → points) or "none"',
    "ungroupable.codes": "group codes that mean ungroupable",
    "elastic.enabled": "弹性点值: base volume at a base PV, increment at a floating PV [A §4.3]",
    "elastic.base_share": "share of each hospital's prior-year volume paid at PV_base = point money / Σ prior-year volume (0.7–0.8)",
    "elastic.cap": "cap the floating PV at the base PV; the rest stays with the fund",
    "elastic.base_volume": "CSV/Parquet: hospital_id, points[, insurance_type]; relative to this file",
}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{toml_string(str(k))} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return repr(float(v)) if isinstance(v, float) else str(v)


def _shown(value: Any) -> Any:
    """A default as the template shows it: tuples as arrays, unset (None) commented out."""
    return list(value) if isinstance(value, tuple) else value


def _line(key: str, full: str, value: Any) -> str:
    comment = _COMMENTS.get(full, "")
    body = f"# {key} = " if value is None else f"{key} = "
    shown = "..." if value is None else _toml_value(value)
    return f"{body}{shown}".ljust(40) + (f"  # {comment}" if comment else "")


def template() -> str:
    """A commented policy file with every key at its default (``casemix policy init``).

    Keys without a default (``budget.total_yuan``, ``rate_yuan``,
    ``elastic.base_volume``) are shown commented out; the pools and
    corridor bands are shown as commented examples.
    """
    from casemix.budget import Policy

    p = Policy(budget=0)
    sections: dict[str, list[tuple[str, Any]]] = {
        "budget": [
            ("total_yuan", None),
            ("points_per_rw", p.points_per_rw),
            ("method", p.method),
            ("point_form", p.point_form),
            ("fund_ratio", p.fund_ratio),
            ("rate_yuan", p.rate_yuan),
            ("quality_reserve", p.quality_reserve),
            ("prepayment_share", p.prepayment_share),
        ],
        "coefficients": [
            ("default", p.coefficient_default),
            ("level", p.level_coefficients),
            ("hospital", p.hospital_coefficients),
            ("hospital_drg", p.hospital_drg_coefficients),
            ("hospital_drg_file", None),
            ("same_rate_groups", list(p.same_rate_groups)),
        ],
    }
    for table, obj in (
        ("high_cost", p.high_cost),
        ("low_cost", p.low_cost),
        ("short_stay", p.short_stay),
        ("special_cases", p.special),
        ("readmission", p.readmission),
        ("elastic", p.elastic),
        ("new_tech", p.new_tech),
        ("outliers", p.outliers),
        ("monthly", p.monthly),
    ):
        names = (
            list(type(obj).model_fields)
            if isinstance(obj, BaseModel)
            else [f.name for f in dataclasses.fields(obj)]
        )
        sections[table] = [(k, _shown(getattr(obj, k))) for k in names]
    sections["ungroupable"] = [("rule", p.ungroupable), ("codes", list(p.ungroupable_codes))]
    out = [
        "# casemix payment policy (DRG/DIP settlement). Every key is shown at its default;",
        "# a key left out keeps it. Formulas and sources: docs/payment-budget.md.",
        "# Check a file with: casemix settle CASES --policy FILE ...",
        "",
        _line("name", "name", p.name),
        "",
    ]
    for table, items in sections.items():
        out.append(f"[{table}]")
        out += [_line(k, f"{table}.{k}", v) for k, v in items]
        out.append("")
    out += [
        "[hospital_levels]                         # hospital_id = level (when cases lack hospital_level)",
        '# H001 = "3"',
        "",
        "# Fund pools (职工 / 居民), each settled on its own budget and point value [A §4.2].",
        "# Cases need an insurance_type column (职工/居民, employee/resident, 310/390).",
        '# [pools."职工"]',
        "# budget_yuan = 60000000",
        "# rate_yuan = 12252.70",
        "# quality_reserve = 0.03",
        '# values = ["职工", "employee", "310"]',
        '# [pools."居民"]',
        "# budget_yuan = 40000000",
        "# rate_yuan = 9649.24",
        "",
        "# 结余留用 / 超支分担 corridors per hospital against its itemised fund cost",
        "# (cases need fund_paid). Bands in fractions of that cost; share = the hospital's.",
        "[corridors]",
        "surplus = []                              # e.g. [{ upto = 0.1, share "
        "= 1.0 }, { upto = 0.2, share = 0.5 }]",
        "overspend = []                            # e.g. [{ upto = 0.1, share = 0.5 }]",
        "",
    ]
    return "\n".join(out)
