"""The terms of a payment policy: case rules, fund pools, elastic point value, corridors.

The frozen dataclasses a :class:`casemix.budget.Policy` is made of, apart
from the policy itself so that the policy-file reader
(:mod:`casemix.payment.policy_file`, which builds them) and
:mod:`casemix.budget` (which reads policy files) do not import each other
(issue 16).  :mod:`casemix.budget` re-exports every name; sources of each
rule are in ``docs/payment-budget.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from casemix.readmission import EXEMPT_ADRG, EXEMPT_DIAGNOSES

__all__ = [
    "POOL_VALUES",
    "Band",
    "Corridors",
    "Elastic",
    "HighCost",
    "LowCost",
    "Pool",
    "Readmission",
    "ShortStay",
]


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

    ``coefficient = False`` (default): the hospital coefficient does not
    multiply an incomplete stay's points and ``m`` is the group's
    reference mean cost itself, not the hospital's standard — Jinhua 2017
    点数法 applies its cost coefficient to complete stays only [city:
    Jinhua, issue 18 item 8].  ``True``: points × f, cost compared with the
    outlier reference (casemix before).
    """

    enabled: bool = True
    max_los: float = 2.0
    discharge: tuple[int, ...] = (2, 3, 5)
    basis: str = "cost"
    coefficient: bool = False


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
class Pool:
    """One fund pool (统筹基金: 职工 employees, 居民 residents) settled on its own.

    Each pool has its own fund budget, point value, base rate (rate method)
    and reserve [A §4.2: 职工 and 居民 have separate funds; C: city tables
    give rates per pool].  ``values`` are the ``insurance_type`` values of
    its cases; the defaults for pools named 职工 and 居民 follow the 医保结算清单
    险种类型 (NHSA insutype 310 职工基本医疗保险, 390 城乡居民基本医疗保险).
    """

    # any amount in yuan; __post_init__ keeps it as an exact Decimal
    budget: Decimal | int | float | str | None = None
    rate_yuan: float | None = None
    quality_reserve: float | None = None
    values: tuple[str, ...] = ()


#: insurance_type values of the two standard pools (险种类型; NHSA insutype codes)
POOL_VALUES = {
    "职工": ("职工", "employee", "310", "城镇职工", "职工基本医疗保险"),
    "居民": ("居民", "resident", "390", "城乡居民", "城乡居民基本医疗保险"),
}


@dataclass(frozen=True)
class Elastic:
    """弹性点值: base volume at a base point value, the increment at a floating one.

    With ``V_h`` the hospital's prior-year volume (its prior-year points),
    ``s = base_share``, ``P_h`` its points and ``M`` the pool's point money:

    - base volume ``B_h = s × V_h`` is paid at ``PV_base = s × M / Σ_h B_h
      = M / Σ_h V_h`` (the base share of the money buys the base share of
      the volume; 7:3 or 8:2 [A §4.3]; Shanghai 住院7-8成 at the base value [S]);
    - ``PV_float = (M − PV_base × Σ_h min(P_h, B_h)) / Σ_h max(P_h − B_h, 0)``,
      ``min(PV_float, PV_base)`` when ``cap`` (the rest stays with the fund).

    ``enabled = false`` (the default) settles every point at one value.
    ``base_volume`` is a CSV/Parquet file (``hospital_id``, ``points``,
    optional ``insurance_type``/``pool``), relative to the policy file;
    :func:`casemix.settle.settle` also takes it (or a prior-year frame) as
    an argument.
    """

    enabled: bool = False
    base_share: float = 0.75
    cap: bool = False
    base_volume: str | None = None


@dataclass(frozen=True)
class Band:
    """One band of a 结余留用/超支分担 corridor: up to ``upto`` × fund cost, the hospital's ``share``."""

    upto: float
    share: float


@dataclass(frozen=True)
class Corridors:
    """结余留用 / 超支分担 per hospital (and pool) against its itemised fund cost [A §7.3, A-规 §33].

    ``d = F − C`` with ``F`` the settled fund payment and ``C`` the fund's
    itemised cost (Σ ``fund_paid``, 记账).  A surplus ``d > 0`` is cut into
    bands of ``C`` (``surplus``: the first band up to ``upto[0] × C``, the
    next up to ``upto[1] × C`` …, beyond the last band nothing is kept);
    the hospital keeps ``share`` of the part in each band and the rest goes
    back to the fund.  An overspend ``d < 0`` likewise (``overspend``): the
    hospital bears ``share`` of each band's part, the fund pays the rest;
    beyond the last band the hospital bears it all.  Empty lists (the
    default) switch the rule off.
    """

    surplus: tuple[Band, ...] = ()
    overspend: tuple[Band, ...] = ()

    @property
    def enabled(self) -> bool:
        """True when either corridor has a band."""
        return bool(self.surplus or self.overspend)
