"""The commented policy file ``casemix policy init`` prints.

Every key with its default, taken from :class:`~casemix.budget.Policy`
itself so the two cannot drift.  Apart from the reader
(:mod:`casemix.payment.policy_file`), which :mod:`casemix.budget` uses:
the template needs :class:`~casemix.budget.Policy`, and the reader must
not import it (issue 16: no import cycles).  Layout and formulas:
``docs/payment-budget.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from casemix._schema import toml_string
from casemix.budget import Policy

__all__ = ["template"]

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
