"""Payment policy: one typed object for a region's DRG (or DIP) point method.

A :class:`Policy` holds everything a settlement needs besides the cases and
the weights: the year's budget, how points turn into money (base share at a
point value fixed from forecast points, the rest floating), hospital
coefficients, and the case rules (high/low cost, short stays, special
cases, readmissions, ungroupable cases).  It reads from TOML
(:meth:`Policy.from_toml`); a what-if run is two policy files.

Sources of each rule are in ``docs/payment-budget.md`` and
``../shared/payment-notes.md``; values tagged [unverified] there are
parameters here, never hard-wired.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from casemix._money import yuan_to_fen
from casemix.errors import PolicyError
from casemix.readmission import EXEMPT_ADRG, EXEMPT_DIAGNOSES
from casemix.io import read_text

__all__ = ["HighCost", "LowCost", "Policy", "Readmission", "ShortStay", "SpecialCases",
           "derive_coefficients"]


@dataclass(frozen=True)
class HighCost:
    """High-cost cases: cost above ``k`` × the group's mean cost.

    ``k`` per hospital level ("三级医院超过3倍，二级医院超过2倍，各地可自行规定",
    CHS-DRG 分组与付费技术规范 [spec]); ``k_default`` for levels not listed.

    Rules for the case's points (before the hospital coefficient), with
    ``P`` the base points, ``c`` the cost and ``m`` the group mean:

    - ``"excess"``: ``P + factor × (c − k·m) / m × P``; with ``factor = 1`` and
      ``k = 2`` this is DIP 1.0's ``P × ((c/m − 2) + 1)`` [spec, DIP 1.0 via
      secondary sources];
    - ``"pro_rata"``: ``P × c / m``;
    - ``"none"``: ``P`` (the case is only flagged).

    ``mean`` picks the group mean: ``"weights"`` (the reference cost of the
    weight table, ``mean_cost``) or ``"cases"`` (the settled year's mean of
    the group over all settled cases).
    """

    rule: str = "excess"
    k: Mapping[str, float] = field(default_factory=lambda: {"3": 3.0, "2": 2.0})
    k_default: float = 3.0
    factor: float = 1.0
    mean: str = "weights"


@dataclass(frozen=True)
class LowCost:
    """Low-cost cases: cost below ``ratio`` × group mean, paid ``P × c / m``.

    The 0.3–0.4 threshold is [unverified]; DIP uses 0.5 [spec, DIP 1.0/3.0].
    ``rule = "none"`` switches the rule off.
    """

    ratio: float = 0.4
    rule: str = "pro_rata"


@dataclass(frozen=True)
class ShortStay:
    """Incomplete stays: deaths/transfers with LOS <= ``max_los`` days, paid pro rata.

    Points = ``P × min(c / m, 1)`` (``basis = "cost"``, Zhejiang/Hangzhou
    2019 [city]) or ``P × min(los / mean_los, 1)`` (``basis = "los"``, a
    per-diem reading in the manner of CMS transfers).  ``discharge`` lists
    the 离院方式 codes that count (2 transfer to hospital, 3 to community
    care, 5 death by default); ``max_los`` is [unverified].
    """

    enabled: bool = True
    max_los: float = 2.0
    discharge: tuple[int, ...] = (2, 3, 5)
    basis: str = "cost"


@dataclass(frozen=True)
class SpecialCases:
    """特病单议 / 特例单议: listed cases paid at cost, at most ``cap_share`` of each hospital's cases.

    The cap (5% of DRG discharges) is [unverified] for DRG.  Listed cases
    beyond a hospital's cap (``floor(cap_share × cases)``) are settled by the
    ordinary rules, in list order: the first listed are accepted first.
    """

    case_ids: tuple[str, ...] = ()
    cap_share: float = 0.05


@dataclass(frozen=True)
class Readmission:
    """Readmission: the same patient back in the same DRG within ``days`` days.

    The earlier stay's points × ``penalty`` (0.5 and 15 days in Zhejiang
    2019, same DRG, not limited to one hospital, tumour radio-/chemotherapy
    exempt; Jinhua uses 10 days) [city]; ``apply_to = "later"`` penalises
    the readmission instead.  ``match = "adrg"`` pairs by ADRG,
    ``same_hospital = true`` only at one hospital.  Stays in
    ``exempt_adrg`` or with a principal diagnosis starting with one of
    ``exempt_diagnoses`` take no part (pairing: ``casemix.readmission``).
    Needs ``patient_id`` and the stay dates; skipped (and reported) when
    absent.
    """

    enabled: bool = True
    days: int = 15
    penalty: float = 0.5
    apply_to: str = "earlier"
    match: str = "drg"
    same_hospital: bool = False
    exempt_adrg: tuple[str, ...] = EXEMPT_ADRG
    exempt_diagnoses: tuple[str, ...] = EXEMPT_DIAGNOSES


@dataclass(frozen=True)
class Policy:
    """A region's point-method payment policy for one settlement year.

    Parameters
    ----------
    budget
        Fund budget for the settled cases, yuan (``Decimal``; kept exact).
    name
        Label used in reports and comparisons.
    points_per_rw
        Base points = RW × ``points_per_rw`` [city: fqjz1, Jinhua]; DIP
        scores are already points (use 1 with a ``points`` column).
    base_share
        Share of the budget behind the base point value
        ``PV_base = base_share × budget / forecast_points`` fixed at the
        start of the year (Shanghai 70–80% [city, no formula published]).
    forecast_points
        Points forecast at the start of the year; ``None`` = the actual
        points (a perfect forecast).
    quality_reserve
        Share of each hospital's payment withheld until assessment
        (Chongqing 3% [city]; DIP <= 5% [spec]).
    prepayment_share
        Share of the base-valued amount advanced monthly during the year
        (>= 85% in Zhejiang [city]; 90% DIP [spec]).
    ungroupable
        Cases with an ungroupable code (``ungroupable_codes``) or without a
        weight: ``"cost"`` paid at cost outside the points (按项目),
        ``"points"`` converted to points at the all-case reference cost
        (``cost / M × points_per_rw``), ``"none"`` not paid from this budget.
    coefficient_default, level_coefficients, hospital_coefficients
        Hospital coefficient: the hospital's own entry, else its level's,
        else the default [city: fqjz1, Jinhua, Zigong].
    hospital_levels
        hospital_id → level, used when the cases carry no ``hospital_level``.
    high_cost, low_cost, short_stay, special, readmission
        Case rules; see their classes.
    """

    budget: Decimal
    name: str = "policy"
    points_per_rw: float = 100.0
    base_share: float = 0.75
    forecast_points: float | None = None
    quality_reserve: float = 0.0
    prepayment_share: float = 0.0
    ungroupable: str = "cost"
    ungroupable_codes: tuple[str, ...] = ("0000",)
    coefficient_default: float = 1.0
    level_coefficients: Mapping[str, float] = field(default_factory=dict)
    hospital_coefficients: Mapping[str, float] = field(default_factory=dict)
    hospital_levels: Mapping[str, str] = field(default_factory=dict)
    high_cost: HighCost = field(default_factory=HighCost)
    low_cost: LowCost = field(default_factory=LowCost)
    short_stay: ShortStay = field(default_factory=ShortStay)
    special: SpecialCases = field(default_factory=SpecialCases)
    readmission: Readmission = field(default_factory=Readmission)
    source: str = field(default="<Policy>", compare=False, repr=False)

    def __post_init__(self) -> None:
        try:
            budget = Decimal(str(self.budget))
        except InvalidOperation:
            raise PolicyError(f"{self.source}: budget.total_yuan must be a number, "
                              f"got {self.budget!r}") from None
        object.__setattr__(self, "budget", budget)
        _validate(self)

    @property
    def budget_fen(self) -> int:
        """The budget in integer fen (ROUND_HALF_UP)."""
        return yuan_to_fen(self.budget)

    def replace(self, **changes: Any) -> Policy:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_toml(cls, path: str | Path) -> Policy:
        """Read a policy file; errors name the file and the key at fault.

        The layout is documented in ``docs/payment-budget.md``; the shipped
        example is ``casemix/data/policies/demo.toml``.
        """
        p = Path(path)
        if not p.exists():
            raise PolicyError(f"policy file not found: {p}")
        try:
            data = tomllib.loads(read_text(p, what="policy", error=PolicyError))
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{p}: not valid TOML: {exc}") from None
        return cls.from_dict(data, source=str(p))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> Policy:
        """Build a policy from the TOML layout given as nested dicts."""
        return _from_dict(cls, data, source)

    @classmethod
    def demo(cls) -> Policy:
        """The shipped example policy (``casemix/data/policies/demo.toml``)."""
        return cls.from_toml(shipped_policy("demo"))


def shipped_policy(name: str) -> Path:
    """Path of a policy file shipped in ``casemix/data/policies``."""
    p = Path(__file__).parent / "data" / "policies" / f"{name}.toml"
    if not p.exists():
        known = sorted(x.stem for x in p.parent.glob("*.toml"))
        raise PolicyError(f"no shipped policy {name!r}; shipped: {', '.join(known)}")
    return p


# --- TOML layout -----------------------------------------------------------

# table -> {toml key: Policy/sub-object field}
_TOP = {"name": "name"}
_BUDGET = {"total_yuan": "budget", "points_per_rw": "points_per_rw", "base_share": "base_share",
           "forecast_points": "forecast_points", "quality_reserve": "quality_reserve",
           "prepayment_share": "prepayment_share"}
_COEF = {"default": "coefficient_default", "level": "level_coefficients",
         "hospital": "hospital_coefficients"}
_UNGROUPABLE = {"rule": "ungroupable", "codes": "ungroupable_codes"}
_SUB = {"high_cost": HighCost, "low_cost": LowCost, "short_stay": ShortStay,
        "special_cases": SpecialCases, "readmission": Readmission}
_SUB_FIELD = {"high_cost": "high_cost", "low_cost": "low_cost", "short_stay": "short_stay",
              "special_cases": "special", "readmission": "readmission"}
_TABLES = {"budget", "coefficients", "hospital_levels", "ungroupable", *_SUB}


def _table(data: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    t = data.get(key, {})
    if not isinstance(t, Mapping):
        raise PolicyError(f"{source}: [{key}] must be a table")
    return t


def _unknown(t: Mapping[str, Any], allowed: Any, where: str, source: str) -> None:
    extra = sorted(set(t) - set(allowed))
    if extra:
        raise PolicyError(f"{source}: unknown key {where}{extra[0]!r}; "
                          f"allowed: {', '.join(sorted(allowed))}")


def _from_dict(cls: type[Policy], data: Mapping[str, Any], source: str) -> Policy:
    _unknown(data, set(_TOP) | _TABLES, "", source)
    kw: dict[str, Any] = {"source": source}
    if "name" in data:
        kw["name"] = data["name"]
    budget = _table(data, "budget", source)
    _unknown(budget, _BUDGET, "budget.", source)
    if "total_yuan" not in budget:
        raise PolicyError(f"{source}: budget.total_yuan is required (the fund budget in yuan)")
    for k, f in _BUDGET.items():
        if k in budget:
            kw[f] = budget[k]
    coef = _table(data, "coefficients", source)
    _unknown(coef, _COEF, "coefficients.", source)
    for k, f in _COEF.items():
        if k in coef:
            kw[f] = coef[k]
    kw["hospital_levels"] = {str(h): str(v) for h, v in
                             _table(data, "hospital_levels", source).items()}
    ung = _table(data, "ungroupable", source)
    _unknown(ung, _UNGROUPABLE, "ungroupable.", source)
    for k, f in _UNGROUPABLE.items():
        if k in ung:
            kw[f] = ung[k]
    for key, sub in _SUB.items():
        t = _table(data, key, source)
        names = {f.name for f in dataclasses.fields(sub)}
        _unknown(t, names, f"{key}.", source)
        kw[_SUB_FIELD[key]] = sub(**dict(t))
    return cls(**kw)


# --- validation --------------------------------------------------------------

def _num(value: Any, key: str, source: str, *, lo: float | None = None,
         hi: float | None = None, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise PolicyError(f"{source}: {key} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise PolicyError(f"{source}: {key} must be finite, got {value!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise PolicyError(f"{source}: {key} must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and v > hi:
        raise PolicyError(f"{source}: {key} must be <= {hi}, got {value!r}")
    return v


def _choice(value: Any, key: str, options: tuple[str, ...], source: str) -> None:
    if value not in options:
        raise PolicyError(f"{source}: {key} must be one of {', '.join(options)}; got {value!r}")


def _str_map(value: Any, key: str, source: str, *, positive: bool) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{source}: {key} must be a table of name = number")
    return {str(k): _num(v, f"{key}.{k}", source, lo=0.0, lo_open=positive)
            for k, v in value.items()}


def _validate(p: Policy) -> None:
    s = p.source
    set_ = object.__setattr__
    if p.budget < 0 or not p.budget.is_finite():
        raise PolicyError(f"{s}: budget.total_yuan must be a finite amount >= 0, got {p.budget}")
    if not isinstance(p.name, str):
        raise PolicyError(f"{s}: name must be a string")
    _num(p.points_per_rw, "budget.points_per_rw", s, lo=0.0, lo_open=True)
    _num(p.base_share, "budget.base_share", s, lo=0.0, hi=1.0)
    if p.forecast_points is not None:
        _num(p.forecast_points, "budget.forecast_points", s, lo=0.0, lo_open=True)
    _num(p.quality_reserve, "budget.quality_reserve", s, lo=0.0, hi=1.0)
    _num(p.prepayment_share, "budget.prepayment_share", s, lo=0.0, hi=1.0)
    _choice(p.ungroupable, "ungroupable.rule", ("cost", "points", "none"), s)
    if isinstance(p.ungroupable_codes, str) or not all(
            isinstance(c, str) for c in p.ungroupable_codes):
        raise PolicyError(f"{s}: ungroupable.codes must be a list of strings")
    set_(p, "ungroupable_codes", tuple(p.ungroupable_codes))
    _num(p.coefficient_default, "coefficients.default", s, lo=0.0, lo_open=True)
    set_(p, "level_coefficients", _str_map(p.level_coefficients, "coefficients.level", s,
                                           positive=True))
    set_(p, "hospital_coefficients", _str_map(p.hospital_coefficients, "coefficients.hospital",
                                              s, positive=True))
    if not isinstance(p.hospital_levels, Mapping):
        raise PolicyError(f"{s}: hospital_levels must be a table of hospital_id = level")
    set_(p, "hospital_levels", {str(k): str(v) for k, v in p.hospital_levels.items()})

    hc = p.high_cost
    _choice(hc.rule, "high_cost.rule", ("excess", "pro_rata", "none"), s)
    _choice(hc.mean, "high_cost.mean", ("weights", "cases"), s)
    object.__setattr__(hc, "k", _str_map(hc.k, "high_cost.k", s, positive=True))
    _num(hc.k_default, "high_cost.k_default", s, lo=0.0, lo_open=True)
    _num(hc.factor, "high_cost.factor", s, lo=0.0)
    lc = p.low_cost
    _choice(lc.rule, "low_cost.rule", ("pro_rata", "none"), s)
    _num(lc.ratio, "low_cost.ratio", s, lo=0.0, hi=1.0)
    if lc.rule != "none" and lc.ratio >= min([hc.k_default, *hc.k.values()]):
        raise PolicyError(f"{s}: low_cost.ratio must be below every high_cost k")
    ss = p.short_stay
    if not isinstance(ss.enabled, bool):
        raise PolicyError(f"{s}: short_stay.enabled must be true or false")
    _num(ss.max_los, "short_stay.max_los", s, lo=0.0)
    _choice(ss.basis, "short_stay.basis", ("cost", "los"), s)
    if isinstance(ss.discharge, (str, int)) or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in ss.discharge):
        raise PolicyError(f"{s}: short_stay.discharge must be a list of 离院方式 codes (integers)")
    object.__setattr__(ss, "discharge", tuple(ss.discharge))
    sp = p.special
    if isinstance(sp.case_ids, str):
        raise PolicyError(f"{s}: special_cases.case_ids must be a list of case ids")
    object.__setattr__(sp, "case_ids", tuple(str(c) for c in sp.case_ids))
    _num(sp.cap_share, "special_cases.cap_share", s, lo=0.0, hi=1.0)
    ra = p.readmission
    if not isinstance(ra.enabled, bool):
        raise PolicyError(f"{s}: readmission.enabled must be true or false")
    if isinstance(ra.days, bool) or not isinstance(ra.days, int) or ra.days < 0:
        raise PolicyError(f"{s}: readmission.days must be a whole number of days >= 0, "
                          f"got {ra.days!r}")
    _num(ra.penalty, "readmission.penalty", s, lo=0.0, hi=1.0)
    _choice(ra.apply_to, "readmission.apply_to", ("earlier", "later"), s)
    _choice(ra.match, "readmission.match", ("drg", "adrg"), s)
    if not isinstance(ra.same_hospital, bool):
        raise PolicyError(f"{s}: readmission.same_hospital must be true or false")
    for key in ("exempt_adrg", "exempt_diagnoses"):
        if isinstance(getattr(ra, key), str):
            raise PolicyError(f"{s}: readmission.{key} must be a list of codes")
        object.__setattr__(ra, key, tuple(str(c) for c in getattr(ra, key)))


def derive_coefficients(history: Any, weights: Any, *, by: str = "hospital_level") -> dict[str, float]:
    """Hospital or level coefficients from cost data, for ``Policy(level_coefficients=...)``.

    coefficient_k = Σ cost / Σ m_g over the cases of k (hospital or level)
    whose DRG has a reference cost m_g (``mean_cost`` of the weight table):
    each DRG's ratio "k's mean cost of the DRG / all hospitals' mean" [city:
    fqjz1, Jinhua], aggregated over DRGs weighted by k's expected cost
    (the form of the cost efficiency index [city pages]).  Costs are taken
    as given: trim the history first if outliers should not count.

    Parameters
    ----------
    history
        Grouped cases with ``drg``, ``total_cost`` and the ``by`` column.
    weights
        A :class:`casemix.weights.Weights` or a table with ``drg`` and
        ``mean_cost``.
    by
        ``"hospital_level"`` or ``"hospital_id"``.

    Returns
    -------
    dict
        key (as text) → coefficient, for keys with at least one such case.
    """
    import polars as pl

    from casemix._frames import to_polars
    from casemix.errors import InputError

    df = to_polars(history)
    wt = to_polars(getattr(weights, "table", weights))
    missing = [c for c in ("drg", "total_cost", by) if c not in df.columns]
    if missing or not {"drg", "mean_cost"} <= set(wt.columns):
        raise InputError(f"derive_coefficients needs cases with drg, total_cost, {by} "
                         f"(missing: {', '.join(missing) or 'none'}) and weights with drg, mean_cost")
    key = pl.col(by)
    if df.schema[by].is_float():
        key = key.cast(pl.Int64, strict=False)
    j = (df.select(key.cast(pl.String).alias("k"), pl.col("drg").cast(pl.String),
                   pl.col("total_cost").cast(pl.Float64, strict=False).alias("c"))
         .join(wt.select(pl.col("drg").cast(pl.String),
                         pl.col("mean_cost").cast(pl.Float64, strict=False).alias("m")),
               on="drg", how="inner")
         .filter(pl.col("k").is_not_null() & (pl.col("c") > 0) & (pl.col("m") > 0)))
    out = j.group_by("k").agg((pl.col("c").sum() / pl.col("m").sum()).alias("coef")).sort("k")
    return dict(zip(out["k"].to_list(), out["coef"].to_list(), strict=True))
