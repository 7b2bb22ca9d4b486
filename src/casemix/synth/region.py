"""The parameters of the synthetic region, each with its source.

Every number here is listed in ``docs/synthetic-region.md``.  Values tagged
``[illustrative]`` are plausible magnitudes chosen for the demo, not
estimates; the others cite a published table shipped or referenced by the
project.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from casemix._money import round_half_up

#: hospital levels, tertiary first (the codes ``budget.py`` and the policies use)
LEVELS = ("3", "2", "1")
#: insurance types: 职工 (employees' scheme), 居民 (residents' scheme)
INSURANCE_TYPES = ("职工", "居民")


def _per_level(values: Mapping[str, float]) -> np.ndarray:
    return np.array([float(values[lv]) for lv in LEVELS])


@dataclass(frozen=True)
class Region:
    """Structure of a synthetic region: hospitals, case mix, costs, patients.

    All mappings are keyed by hospital level ``"3"``, ``"2"``, ``"1"``
    (and insurance type where stated).  Use :meth:`replace` to vary one.
    """

    # --- hospitals -----------------------------------------------------------------
    hospitals: Mapping[str, int] = field(default_factory=lambda: {"3": 3, "2": 6, "1": 8})
    """Hospitals per level [illustrative: a prefecture-level city]."""
    size: Mapping[str, float] = field(default_factory=lambda: {"3": 1.0, "2": 0.35, "1": 0.08})
    """Relative yearly discharges of one hospital of the level [illustrative]."""
    size_sigma: float = 0.25
    """Log-normal spread of hospital sizes within a level [illustrative]."""

    # --- case mix ------------------------------------------------------------------
    rw_exponent: float = 1.1
    """Group frequency ∝ RW^-a: lighter groups are more common [illustrative]."""
    level_rw_tilt: Mapping[str, float] = field(default_factory=lambda: {"3": 0.55, "2": 0.15, "1": -0.35})
    """Extra RW exponent per level: tertiary hospitals treat heavier groups [illustrative]."""
    kind_share: Mapping[str, float] = field(
        default_factory=lambda: {"medical": 1.0, "procedure": 0.55, "surgical": 0.45}
    )
    """Relative frequency by ADRG kind, before the level tilt [illustrative]."""
    level_surgical: Mapping[str, float] = field(default_factory=lambda: {"3": 1.6, "2": 1.0, "1": 0.5})
    """Multiplier on surgical and procedure groups per level [illustrative]."""
    group_sigma: float = 0.5
    """Log-normal popularity of each ADRG beyond its RW and kind [illustrative]."""
    severity_share: tuple[float, float, float, float] = (1.0, 0.45, 0.2, 1.0)
    """Relative frequency of a DRG without CC, with CC, with MCC, unsplit [illustrative]."""
    common_adrgs: Mapping[str, float] = field(
        default_factory=lambda: {
            "ES3": 6.0,
            "BR2": 6.0,
            "FR4": 4.0,
            "FR3": 3.0,
            "ET2": 3.0,
            "RE1": 5.0,
            "CB3": 4.0,
            "OR1": 3.0,
            "OB1": 3.0,
            "FV2": 2.0,
            "KS1": 2.0,
            "FR2": 2.0,
            "GE1": 2.0,
            "HC2": 2.0,
            "FM1": 2.0,
        }
    )
    """Extra frequency of ADRGs that lead inpatient volume in regional DRG reports (CHS-DRG
    1.1 codes: respiratory infection, cerebral ischaemia, coronary disease, angina, COPD,
    chemotherapy, cataract, delivery, caesarean, hypertension, diabetes, heart failure,
    hernia, cholecystectomy, PCI) [illustrative factors]."""
    hospital_tilt_sigma: float = 0.07
    """Spread of each hospital's RW tilt around its level's [illustrative]."""

    # --- cost ----------------------------------------------------------------------
    base_rate: float = 12_252.70
    """Yuan per RW: Harbin 2024 rate for employees (``reference_weights/README.md``)."""
    level_coefficient: Mapping[str, float] = field(
        default_factory=lambda: {"3": 1.2 / 1.2, "2": 1.02 / 1.2, "1": 0.75 / 1.2}
    )
    """Cost level coefficient: Suzhou 2022 三级 1.2, 二级 1.02, 一级 0.75 divided by 1.2
    (city table ``苏州2022.csv``, non-基础病组 rows)."""
    cost_sigma: float = 0.45
    """Log-normal spread of cost within a DRG and hospital (CV about 0.47) [illustrative]."""
    hospital_cost_sigma: float = 0.12
    """Spread of hospitals' cost efficiency around their level [illustrative]."""
    tail_share: float = 0.03
    """Share of cases with an extra cost factor (complications, long ICU stays) [illustrative]."""
    tail_mu: float = 1.0
    tail_sigma: float = 0.45
    """The extra factor is exp(N(tail_mu, tail_sigma)): median 2.7× [illustrative]."""

    # --- length of stay ------------------------------------------------------------
    los_scale: float = 9.0
    los_rw_power: float = 0.45
    """Mean LOS of a group = los_scale × RW^los_rw_power days [illustrative]."""
    los_group_sigma: float = 0.2
    """Group-to-group LOS variation beyond RW [illustrative]."""
    los_sigma: float = 0.45
    los_cost_corr: float = 0.7
    """Log-LOS spread within a group and its correlation with the case's cost [illustrative]."""

    # --- deaths and discharge ------------------------------------------------------
    death_base: float = 0.0012
    death_rw_power: float = 1.3
    death_severity: tuple[float, float, float, float] = (1.0, 4.0, 15.0, 3.0)
    """Death probability = base × RW^power × factor[severity], capped at 0.35;
    factors for no CC, CC, MCC, unsplit groups [illustrative]."""
    discharge_mix: Mapping[int, float] = field(
        default_factory=lambda: {1: 0.93, 2: 0.025, 3: 0.01, 4: 0.02, 9: 0.015}
    )
    """离院方式 of survivors: 1 医嘱离院, 2 转院, 3 转社区, 4 非医嘱离院, 9 其他 [illustrative]."""

    # --- patients ------------------------------------------------------------------
    employee_share: Mapping[str, float] = field(default_factory=lambda: {"3": 0.45, "2": 0.33, "1": 0.2})
    """Share of 职工 among a level's patients, the rest 居民 [illustrative]."""
    readmission_share: float = 0.03
    """Stays that are a readmission of the same patient, same hospital and DRG,
    1–30 days after the earlier discharge [illustrative]."""
    repeat_share: float = 0.08
    """Further stays of an earlier patient at any time of the year [illustrative]."""
    month_weights: tuple[float, ...] = (1.12, 0.86, 1.05, 1.0, 0.97, 0.95, 0.93, 0.95, 0.97, 0.98, 1.05, 1.17)
    """Relative discharges per month: winter peak, Spring Festival dip in February [illustrative]."""

    # --- patient share (deductible / co-insurance) ---------------------------------
    self_pay_share: Mapping[str, float] = field(default_factory=lambda: {"3": 0.08, "2": 0.05, "1": 0.03})
    """Share of cost outside the policy scope (自费), paid by the patient [illustrative]."""
    deductible: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: {
            "职工": {"3": 1000.0, "2": 600.0, "1": 300.0},
            "居民": {"3": 1000.0, "2": 600.0, "1": 300.0},
        }
    )
    """起付线 in yuan per stay [illustrative, typical of city rules]."""
    fund_ratio: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: {
            "职工": {"3": 0.85, "2": 0.88, "1": 0.90},
            "居民": {"3": 0.60, "2": 0.70, "1": 0.80},
        }
    )
    """Fund share of the in-scope cost above the deductible [illustrative, typical of city rules]."""

    def patient_share_fen(
        self, total_fen: np.ndarray, insurance: np.ndarray, level: np.ndarray
    ) -> np.ndarray:
        """Patient share of each stay in fen under the region's illustrative rule.

        ``self pay = total × self_pay_share[level]`` (自费, outside the
        policy scope); of the rest, the patient pays the deductible
        (起付线) and ``1 − fund_ratio`` of what lies above it.  No annual
        cap.  Each product is rounded to the fen (ROUND_HALF_UP).

        Parameters
        ----------
        total_fen
            Total cost per stay, integer fen.
        insurance, level
            Index into :data:`INSURANCE_TYPES` and :data:`LEVELS` per stay.
        """
        total = np.asarray(total_fen, dtype=np.int64)
        rule = np.asarray(insurance, dtype=np.int64) * len(LEVELS) + np.asarray(level, dtype=np.int64)
        self_fen = round_half_up(total * self.per_level("self_pay_share")[level])
        covered = total - self_fen
        under = np.minimum(covered, round_half_up(self.money_rule("deductible") * 100).ravel()[rule])
        coins = round_half_up((covered - under) * (1 - self.money_rule("fund_ratio").ravel()[rule]))
        return self_fen + under + coins

    def replace(self, **changes) -> Region:
        """A copy with some parameters changed."""
        return replace(self, **changes)

    # --- arrays the generator uses ---------------------------------------------------

    def hospital_levels(self) -> np.ndarray:
        """Level index (0 = "3", 1 = "2", 2 = "1") of each hospital, tertiary first."""
        counts = [int(self.hospitals.get(lv, 0)) for lv in LEVELS]
        if any(c < 0 for c in counts) or sum(counts) == 0:
            raise ValueError(f"hospitals per level must be non-negative with at least one: {self.hospitals}")
        return np.repeat(np.arange(3), counts)

    def day_weights(self, year: int) -> np.ndarray:
        """Relative discharges per day of ``year`` from the monthly weights."""
        if len(self.month_weights) != 12:
            raise ValueError("month_weights needs 12 values")
        days = [calendar.monthrange(year, m)[1] for m in range(1, 13)]
        return np.repeat(np.asarray(self.month_weights, float) / np.asarray(days), days)

    def per_level(self, name: str) -> np.ndarray:
        """A level-keyed parameter as an array in the order of :data:`LEVELS`."""
        return _per_level(getattr(self, name))

    def money_rule(self, name: str) -> np.ndarray:
        """An (insurance type × level) parameter as a 2 × 3 array."""
        table = getattr(self, name)
        return np.array([_per_level(table[t]) for t in INSURANCE_TYPES])


def split_hospitals(n_hospitals: int) -> dict[str, int]:
    """``n_hospitals`` split over levels in the default proportion 3 : 6 : 8 (one of each at least)."""
    if n_hospitals < 1:
        raise ValueError("n_hospitals must be at least 1")
    if n_hospitals < 3:
        return dict(zip(LEVELS, [1, n_hospitals - 1, 0], strict=True))
    tertiary = max(1, round(n_hospitals * 3 / 17))
    secondary = max(1, round(n_hospitals * 6 / 17))
    return {"3": tertiary, "2": secondary, "1": max(1, n_hospitals - tertiary - secondary)}
