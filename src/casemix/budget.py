"""Payment policy: one typed object for a region's DRG (or DIP) point method.

A :class:`Policy` holds everything a settlement needs besides the cases and
the weights: the year's budget (per fund pool), how points turn into money
(point or rate method; ``actual`` or ``ratio`` point-value form; elastic
point value), 结余留用/超支分担 corridors, hospital coefficients, and the
case rules (high/low cost, short stays, special
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

from casemix._money import MAX_YUAN, yuan_to_fen
from casemix.errors import PolicyError
from casemix.io import read_text
from casemix.payment.monthly import MonthlyConfig
from casemix.payment.new_tech import NewTechConfig
from casemix.payment.outliers import OutliersConfig
from casemix.payment.special_cases import SpecialCasesConfig
from casemix.payment.terms import (
    POOL_VALUES,
    Band,
    Corridors,
    Elastic,
    HighCost,
    LowCost,
    Pool,
    Readmission,
    ShortStay,
)

__all__ = [
    "POOL_VALUES",
    "Band",
    "Corridors",
    "Elastic",
    "HighCost",
    "LowCost",
    "Policy",
    "Pool",
    "Readmission",
    "ShortStay",
    "SpecialCases",
    "derive_coefficients",
    "derive_hospital_drg_coefficients",
]


#: 特例单议 across the 统筹区 (casemix.payment.special_cases): the ``[special_cases]`` table
SpecialCases = SpecialCasesConfig


@dataclass(frozen=True)
class Policy:
    """A region's point-method payment policy for one settlement year.

    Parameters
    ----------
    budget
        Fund budget (统筹基金) for the settled cases, yuan (``Decimal``; kept
        exact).  With pools: the sum of the pools' budgets (may be omitted).
    name
        Label used in reports and comparisons.
    points_per_rw
        Base points = RW × ``points_per_rw`` [city: fqjz1, Jinhua]; DIP
        scores are already points (use 1 with a ``points`` column).
    method
        ``"point"`` (点数法: the budget sets the point value) or ``"rate"``
        (费率法: 支付标准 = RW × rate × coefficient; the fund's outlay is an
        outcome shown against the budget) [C: 常州, 兰州, 苏州, 盐城 …].
    point_form
        ``"actual"``: PV = (fund budget + Σ patient share) ÷ total points,
        the fund pays points × PV − patient share [Z]; ``"ratio"``: PV =
        (fund budget ÷ ``fund_ratio``) ÷ total points, the fund pays points
        × PV × ``fund_ratio`` [A §7].
    fund_ratio
        医保支付比例 of the ``ratio`` form (and of the rate method's ratio form).
    rate_yuan
        Rate method: base rate, yuan per RW (per pool: ``Pool.rate_yuan``).
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
    hospital_drg_coefficients
        hospital_id → {DRG (the settled group code) → coefficient}: the
        cost coefficient per hospital **and** per DRG of Jinhua 2017 (the
        hospital's mean cost of the DRG ÷ all hospitals' mean of the DRG,
        :func:`derive_hospital_drg_coefficients`) [city: Jinhua]; an entry
        beats the hospital's own coefficient.  TOML:
        ``coefficients.hospital_drg`` or a file ``coefficients.hospital_drg_file``.
    hospital_levels
        hospital_id → level, used when the cases carry no ``hospital_level``.
    high_cost, low_cost, short_stay, special, readmission
        Case rules; see their classes.  ``special`` is the regional
        特例单议 of :mod:`casemix.payment.special_cases` (``[special_cases]``).
    new_tech, outliers, monthly
        新药新技术除外支付, the outlier reference cost and monthly
        pre-settlement: :mod:`casemix.payment.new_tech`, ``.outliers``,
        ``.monthly`` (``[new_tech]``, ``[outliers]``, ``[monthly]``).
    pools
        Fund pools by name (``职工``, ``居民``); empty = one pool for all cases.
    elastic
        弹性点值; see :class:`Elastic`.
    corridors
        结余留用 / 超支分担; see :class:`Corridors`.
    same_rate_groups
        基层病组 / 同等费率病组: groups paid with coefficient 1 at every
        hospital level [A-规 §19, A §3.4; C]; weights may also flag them
        (a ``same_rate`` column).
    """

    # any amount in yuan; __post_init__ keeps it as an exact Decimal
    budget: Decimal | int | float | str | None = None
    name: str = "policy"
    points_per_rw: float = 100.0
    method: str = "point"
    point_form: str = "actual"
    fund_ratio: float = 1.0
    rate_yuan: float | None = None
    quality_reserve: float = 0.0
    prepayment_share: float = 0.0
    ungroupable: str = "cost"
    ungroupable_codes: tuple[str, ...] = ("0000",)
    coefficient_default: float = 1.0
    level_coefficients: Mapping[str, float] = field(default_factory=dict)
    hospital_coefficients: Mapping[str, float] = field(default_factory=dict)
    hospital_drg_coefficients: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    hospital_levels: Mapping[str, str] = field(default_factory=dict)
    high_cost: HighCost = field(default_factory=HighCost)
    low_cost: LowCost = field(default_factory=LowCost)
    short_stay: ShortStay = field(default_factory=ShortStay)
    special: SpecialCasesConfig = field(default_factory=SpecialCasesConfig)
    readmission: Readmission = field(default_factory=Readmission)
    new_tech: NewTechConfig = field(default_factory=NewTechConfig)
    outliers: OutliersConfig = field(default_factory=OutliersConfig)
    monthly: MonthlyConfig = field(default_factory=MonthlyConfig)
    pools: Mapping[str, Pool] = field(default_factory=dict)
    elastic: Elastic = field(default_factory=Elastic)
    corridors: Corridors = field(default_factory=Corridors)
    same_rate_groups: tuple[str, ...] = ()
    source: str = field(default="<Policy>", compare=False, repr=False)

    def __post_init__(self) -> None:
        pools = dict(self.pools)
        # each pool's budget as a Decimal, None where the pool gives none
        budgets: list[Decimal | None] = []
        for name, pool in pools.items():
            if not isinstance(pool, Pool):
                raise PolicyError(f"{self.source}: pools.{name} must be a casemix.budget.Pool")
            if pool.budget is not None:
                b = _decimal(pool.budget, f"pools.{name}.budget_yuan", self.source)
                pools[name] = dataclasses.replace(pool, budget=b)
                budgets.append(b)
            else:
                budgets.append(None)
        object.__setattr__(self, "pools", pools)
        given = [b for b in budgets if b is not None]
        if self.budget is None:
            if self.method == "point" and (not pools or len(given) < len(budgets)):
                raise PolicyError(
                    f"{self.source}: budget.total_yuan is required (the fund "
                    "budget in yuan), or a budget_yuan for every pool"
                )
            budget = sum(given, Decimal(0))
        else:
            budget = _decimal(self.budget, "budget.total_yuan", self.source)
            if pools and len(given) == len(budgets):
                total = sum(given, Decimal(0))
                if total != budget:
                    raise PolicyError(
                        f"{self.source}: budget.total_yuan ({budget}) is not the sum "
                        f"of the pools' budget_yuan ({total}); give one or make "
                        "them agree"
                    )
        object.__setattr__(self, "budget", budget)
        _validate(self)

    @property
    def budget_fen(self) -> int:
        """The budget in integer fen (ROUND_HALF_UP)."""
        return yuan_to_fen(self.budget)  # type: ignore[arg-type]

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
        text = read_text(p, what="policy", error=PolicyError)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{p}: not valid TOML: {exc}") from None
        from casemix.payment.policy_file import policy_kwargs

        return cls(**policy_kwargs(data, source=str(p), text=text, folder=p.parent))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> Policy:
        """Build a policy from the TOML layout given as nested dicts.

        The layout is checked by the pydantic model
        :class:`casemix.payment.policy_file.PolicyFile` (unknown keys and
        wrong types are errors naming the key).
        """
        from casemix.payment.policy_file import policy_kwargs

        return cls(**policy_kwargs(data, source=source))

    @classmethod
    def demo(cls) -> Policy:
        """The shipped example policy (``casemix/data/policies/demo.toml``)."""
        return cls.from_toml(shipped_policy("demo"))


def _decimal(value: Any, key: str, source: str) -> Decimal:
    if isinstance(value, bool):
        raise PolicyError(f"{source}: {key} must be a number, got {value!r}")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise PolicyError(f"{source}: {key} must be a number, got {value!r}") from None
    if not d.is_finite() or d < 0 or d >= MAX_YUAN:
        raise PolicyError(f"{source}: {key} must be an amount in [0, 10^13) yuan, got {value!r}")
    return d


def shipped_policy(name: str) -> Path:
    """Path of a policy file shipped in ``casemix/data/policies``."""
    p = Path(__file__).parent / "data" / "policies" / f"{name}.toml"
    if not p.exists():
        known = sorted(x.stem for x in p.parent.glob("*.toml"))
        raise PolicyError(f"no shipped policy {name!r}; shipped: {', '.join(known)}")
    return p


# --- validation --------------------------------------------------------------


def _num(
    value: Any,
    key: str,
    source: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
) -> float:
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
    return {str(k): _num(v, f"{key}.{k}", source, lo=0.0, lo_open=positive) for k, v in value.items()}


def _validate(p: Policy) -> None:
    s = p.source
    set_ = object.__setattr__
    if not isinstance(p.budget, Decimal) or p.budget < 0 or not p.budget.is_finite():
        raise PolicyError(f"{s}: budget.total_yuan must be a finite amount >= 0, got {p.budget}")
    if not isinstance(p.name, str):
        raise PolicyError(f"{s}: name must be a string")
    _num(p.points_per_rw, "budget.points_per_rw", s, lo=0.0, lo_open=True)
    _choice(p.method, "budget.method", ("point", "rate"), s)
    _choice(p.point_form, "budget.point_form", ("actual", "ratio"), s)
    _num(p.fund_ratio, "budget.fund_ratio", s, lo=0.0, hi=1.0, lo_open=True)
    if p.rate_yuan is not None:
        _num(p.rate_yuan, "budget.rate_yuan", s, lo=0.0, lo_open=True)
    for name, pool in p.pools.items():
        if pool.rate_yuan is not None:
            _num(pool.rate_yuan, f"pools.{name}.rate_yuan", s, lo=0.0, lo_open=True)
        if pool.quality_reserve is not None:
            _num(pool.quality_reserve, f"pools.{name}.quality_reserve", s, lo=0.0, hi=1.0)
        values = pool.values or POOL_VALUES.get(name, ())
        if isinstance(values, str) or not values:
            raise PolicyError(
                f"{s}: pools.{name}.values must list the insurance_type values of "
                f"the pool (only 职工 and 居民 have defaults)"
            )
        object.__setattr__(pool, "values", tuple(str(v) for v in values))
        if p.method == "rate" and pool.rate_yuan is None and p.rate_yuan is None:
            raise PolicyError(
                f"{s}: method = 'rate' needs pools.{name}.rate_yuan or budget.rate_yuan (yuan per RW)"
            )
    if p.method == "rate" and not p.pools and p.rate_yuan is None:
        raise PolicyError(f"{s}: method = 'rate' needs budget.rate_yuan (yuan per RW)")
    seen: dict[str, str] = {}
    for name, pool in p.pools.items():
        for v in pool.values:
            if v in seen:
                raise PolicyError(f"{s}: insurance_type value {v!r} is in pools {seen[v]} and {name}")
            seen[v] = name
    el = p.elastic
    if not isinstance(el.enabled, bool) or not isinstance(el.cap, bool):
        raise PolicyError(f"{s}: elastic.enabled and elastic.cap must be true or false")
    _num(el.base_share, "elastic.base_share", s, lo=0.0, hi=1.0)
    if el.enabled and p.method != "point":
        raise PolicyError(f"{s}: elastic point values need method = 'point'")
    for side in ("surplus", "overspend"):
        bands = tuple(getattr(p.corridors, side))
        last = 0.0
        for i, b in enumerate(bands):
            _num(b.upto, f"corridors.{side}[{i}].upto", s, lo=last, lo_open=True)
            _num(b.share, f"corridors.{side}[{i}].share", s, lo=0.0, hi=1.0)
            last = float(b.upto)
        object.__setattr__(p.corridors, side, bands)
    if isinstance(p.same_rate_groups, str):
        raise PolicyError(f"{s}: coefficients.same_rate_groups must be a list of group codes")
    set_(p, "same_rate_groups", tuple(str(g) for g in p.same_rate_groups))
    _num(p.quality_reserve, "budget.quality_reserve", s, lo=0.0, hi=1.0)
    _num(p.prepayment_share, "budget.prepayment_share", s, lo=0.0, hi=1.0)
    _choice(p.ungroupable, "ungroupable.rule", ("cost", "points", "none"), s)
    if isinstance(p.ungroupable_codes, str) or not all(isinstance(c, str) for c in p.ungroupable_codes):
        raise PolicyError(f"{s}: ungroupable.codes must be a list of strings")
    set_(p, "ungroupable_codes", tuple(p.ungroupable_codes))
    _num(p.coefficient_default, "coefficients.default", s, lo=0.0, lo_open=True)
    set_(p, "level_coefficients", _str_map(p.level_coefficients, "coefficients.level", s, positive=True))
    set_(
        p,
        "hospital_coefficients",
        _str_map(p.hospital_coefficients, "coefficients.hospital", s, positive=True),
    )
    if not isinstance(p.hospital_drg_coefficients, Mapping):
        raise PolicyError(
            f"{s}: coefficients.hospital_drg must be a table of hospital_id = {{ DRG = number }}"
        )
    set_(
        p,
        "hospital_drg_coefficients",
        {
            str(h): _str_map(v, f"coefficients.hospital_drg.{h}", s, positive=True)
            for h, v in p.hospital_drg_coefficients.items()
        },
    )
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
        isinstance(c, int) and not isinstance(c, bool) for c in ss.discharge
    ):
        raise PolicyError(f"{s}: short_stay.discharge must be a list of 离院方式 codes (integers)")
    object.__setattr__(ss, "discharge", tuple(ss.discharge))
    if not isinstance(ss.coefficient, bool):
        raise PolicyError(f"{s}: short_stay.coefficient must be true or false")
    for key, value, cls in (
        ("special_cases", p.special, SpecialCasesConfig),
        ("new_tech", p.new_tech, NewTechConfig),
        ("outliers", p.outliers, OutliersConfig),
        ("monthly", p.monthly, MonthlyConfig),
    ):
        if not isinstance(value, cls):  # the models check their own values
            raise PolicyError(f"{s}: {key} must be a casemix.payment {cls.__name__}")
    ra = p.readmission
    if not isinstance(ra.enabled, bool):
        raise PolicyError(f"{s}: readmission.enabled must be true or false")
    if isinstance(ra.days, bool) or not isinstance(ra.days, int) or ra.days < 0:
        raise PolicyError(f"{s}: readmission.days must be a whole number of days >= 0, got {ra.days!r}")
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
        raise InputError(
            f"derive_coefficients needs cases with drg, total_cost, {by} "
            f"(missing: {', '.join(missing) or 'none'}) and weights with drg, mean_cost"
        )
    key = pl.col(by)
    if df.schema[by].is_float():
        key = key.cast(pl.Int64, strict=False)
    j = (
        df.select(
            key.cast(pl.String).alias("k"),
            pl.col("drg").cast(pl.String),
            pl.col("total_cost").cast(pl.Float64, strict=False).alias("c"),
        )
        .join(
            wt.select(
                pl.col("drg").cast(pl.String), pl.col("mean_cost").cast(pl.Float64, strict=False).alias("m")
            ),
            on="drg",
            how="inner",
        )
        .filter(pl.col("k").is_not_null() & (pl.col("c") > 0) & (pl.col("m") > 0))
    )
    out = j.group_by("k").agg((pl.col("c").sum() / pl.col("m").sum()).alias("coef")).sort("k")
    return dict(zip(out["k"].to_list(), out["coef"].to_list(), strict=True))


def derive_hospital_drg_coefficients(history: Any, *, min_cases: int = 1) -> Any:
    """Cost coefficients per hospital and DRG (Jinhua 2017), for ``Policy(hospital_drg_coefficients=...)``.

    coefficient_{h,g} = (hospital h's mean cost of DRG g) ÷ (all hospitals'
    mean cost of DRG g) [city: Jinhua 2017 点数法, as summarised in
    ``../shared/payment-notes.md`` and issue 18 item 8].  Costs are taken
    as given: trim the history first if outliers should not count.

    Parameters
    ----------
    history
        Grouped cases with ``hospital_id``, ``drg`` and ``total_cost``.
    min_cases
        Pairs with fewer of the hospital's cases get no row (the hospital's
        own coefficient then applies).

    Returns
    -------
    polars.DataFrame
        ``hospital_id``, ``drg``, ``cases``, ``coefficient``, sorted; the
        layout of ``coefficients.hospital_drg_file``.
    """
    import polars as pl

    from casemix._frames import to_polars
    from casemix.errors import InputError

    df = to_polars(history)
    missing = [c for c in ("hospital_id", "drg", "total_cost") if c not in df.columns]
    if missing:
        raise InputError(
            f"derive_hospital_drg_coefficients needs cases with hospital_id, drg, total_cost "
            f"(missing: {', '.join(missing)})"
        )
    if isinstance(min_cases, bool) or not isinstance(min_cases, int) or min_cases < 1:
        raise InputError(f"min_cases must be a whole number >= 1, got {min_cases!r}")
    d = df.select(
        pl.col("hospital_id").cast(pl.String),
        pl.col("drg").cast(pl.String),
        pl.col("total_cost").cast(pl.Float64, strict=False).alias("c"),
    ).filter(pl.col("hospital_id").is_not_null() & pl.col("drg").is_not_null() & (pl.col("c") > 0))
    region = d.group_by("drg").agg(pl.col("c").mean().alias("m"))
    return (
        d.group_by("hospital_id", "drg")
        .agg(pl.len().cast(pl.Int64).alias("cases"), pl.col("c").mean().alias("mh"))
        .filter(pl.col("cases") >= min_cases)
        .join(region, on="drg", how="left")
        .select("hospital_id", "drg", "cases", (pl.col("mh") / pl.col("m")).alias("coefficient"))
        .sort("hospital_id", "drg")
    )
