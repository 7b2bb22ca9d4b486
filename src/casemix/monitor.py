"""Monitoring flags: patterns payers watch for upcoding, split and low-standard admissions.

Each flag is a per-hospital rate: a numerator (the flagged cases) over a
denominator (the cases the flag can look at).  A hospital is *flagged*
when its rate is at or above the ``percentile`` (0.8) of the rates of its
peers — hospitals of the same ``hospital_level``, or all hospitals when
there is no level — the way PEPPER flags target areas at the 80th
percentile (PEPPER FAQ, https://pepper.cbrpepper.org/FAQ).  A flag also
needs at least ``min_count`` flagged cases (PEPPER shows no count below
11) and at least ``min_peers`` peers with a rate.

A flag says "look here", never "this is fraud".  Rules, parameters and
sources of every flag: ``docs/indicators.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import polars as pl

from casemix._case_sets import DEATH_CODE, case_sets, prepare_cases, regional_mean, weights_table
from casemix._frames import FrameLike, summary_like
from casemix.errors import InputError
from casemix.readmission import EXEMPT_ADRG, EXEMPT_DIAGNOSES, missing_columns, pair_stays, stay_dates

if TYPE_CHECKING:
    from casemix.budget import Policy

__all__ = ["MonitorParams", "flags", "FLAGS", "describe_flags"]

FLAGS = (
    "readmission",
    "readmission_same_mdc",
    "readmission_same_adrg",
    "readmission_same_drg",
    "short_stay",
    "severity_share",
    "severity_shift",
    "low_weight",
    "high_cost_outlier",
    "early_death_transfer",
)


@dataclass(frozen=True)
class MonitorParams:
    """Parameters of the monitoring flags (defaults and their sources in docs/indicators.md).

    Attributes
    ----------
    readmission_days : int
        A stay is a readmission when it starts 0..N days after the same
        patient's previous discharge (15: Zhejiang 2019; Jinhua uses 10).
    readmission_same_hospital : bool
        Count only returns to the same hospital; by default a return to any
        hospital counts, as in the published settlement rule.
    readmission_exempt_adrg, readmission_exempt_diagnoses : tuple of str
        Tumour radio-/chemotherapy stays that take no part
        (``casemix.readmission``).
    short_stay_days : float
        Short stay: LOS <= this, ending in a regular discharge.
    early_days : float
        Death or transfer with LOS <= this counts as "soon after admission".
    transfer_codes : tuple of float
        离院方式 codes meaning a transfer (2 医嘱转院, 3 医嘱转社区/乡镇卫生院).
    death_code : float
        离院方式 code of death (5).
    low_weight : float
        Low-weight admission: the case's DRG has RW below this.
    high_cost_factor : float
        High-cost outlier: cost > factor × the regional mean cost of the DRG
        ("三级医院超过3倍，二级医院超过2倍", CHS-DRG technical specification).
    high_cost_factor_by_level : mapping, optional
        ``hospital_level`` → factor, overriding ``high_cost_factor``.
    period : str, optional
        Column naming the period for the severity shift; by default ``year``,
        else the year of ``discharge_date``.
    percentile, min_count, min_peers
        The flagging rule (see the module docstring).
    max_los, min_cost, ungroupable
        The excluded / grouped case sets of ``casemix.indicators``.
    """

    readmission_days: int = 15
    readmission_same_hospital: bool = False
    readmission_exempt_adrg: tuple[str, ...] = EXEMPT_ADRG
    readmission_exempt_diagnoses: tuple[str, ...] = EXEMPT_DIAGNOSES
    short_stay_days: float = 2
    early_days: float = 2
    transfer_codes: tuple[float, ...] = (2, 3)
    death_code: float = DEATH_CODE
    low_weight: float = 0.5
    high_cost_factor: float = 3.0
    high_cost_factor_by_level: Mapping[str, float] = field(default_factory=dict)
    period: str | None = None
    percentile: float = 0.8
    min_count: int = 11
    min_peers: int = 3
    max_los: float = 60.0
    min_cost: float = 5.0
    ungroupable: tuple[str, ...] = ("0000",)

    @classmethod
    def from_policy(cls, policy: Policy, **overrides: Any) -> MonitorParams:
        """Parameters that match a payment ``casemix.budget.Policy``.

        The readmission window, hospital scope and exemptions, the high-cost factors per level, the
        short-stay death/transfer window and codes and the ungroupable codes
        are taken from the policy, so the flags watch what the settlement
        pays for.
        """
        hc, ss = policy.high_cost, policy.short_stay
        death = [c for c in ss.discharge if c == DEATH_CODE]
        values: dict[str, Any] = dict(
            readmission_days=int(policy.readmission.days),
            readmission_same_hospital=bool(policy.readmission.same_hospital),
            readmission_exempt_adrg=tuple(policy.readmission.exempt_adrg),
            readmission_exempt_diagnoses=tuple(policy.readmission.exempt_diagnoses),
            high_cost_factor=float(hc.k_default),
            high_cost_factor_by_level={str(k): float(v) for k, v in hc.k.items()},
            early_days=float(ss.max_los),
            transfer_codes=tuple(float(c) for c in ss.discharge if c != DEATH_CODE),
            death_code=float(death[0]) if death else float(DEATH_CODE),
            ungroupable=tuple(policy.ungroupable_codes),
        )
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        if not 0 < self.percentile < 1:
            raise InputError(f"monitor params: percentile must lie in (0, 1), got {self.percentile}")
        if self.readmission_days < 0:
            raise InputError("monitor params: readmission_days must be >= 0")


def _params(params: MonitorParams | Mapping | None, overrides: Mapping) -> MonitorParams:
    if params is None:
        params = MonitorParams()
    elif isinstance(params, Mapping):
        params = {**params}
    if isinstance(params, dict):
        known = {f.name for f in fields(MonitorParams)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise InputError(
                f"monitor params: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        params = MonitorParams(**params)
    return replace(params, **overrides) if overrides else params


def describe_flags(params: MonitorParams | None = None) -> dict[str, str]:
    """A one-line rule per flag, with the parameters filled in (for reports)."""
    p = params or MonitorParams()
    n = p.readmission_days
    where = "the same hospital" if p.readmission_same_hospital else "any hospital"
    return {
        "readmission": f"stays starting 0–{n} days after the same patient's previous "
        f"discharge from {where} (tumour radio-/chemotherapy exempt) "
        "/ all stays of patients with an id",
        "readmission_same_mdc": f"as readmission, previous stay in the same MDC (0–{n} days)",
        "readmission_same_adrg": f"as readmission, previous stay in the same ADRG (0–{n} days)",
        "readmission_same_drg": f"as readmission, previous stay in the same DRG (0–{n} days): "
        "the settlement's pairing",
        "short_stay": f"LOS <= {p.short_stay_days:g} days with a regular discharge / cases with LOS",
        "severity_share": "grouped cases with CC or MCC / grouped cases",
        "severity_shift": "CC+MCC share in the latest period minus the share in the period "
        "before (percentage points)",
        "low_weight": f"cases in DRGs with RW < {p.low_weight:g} / weighted cases",
        "high_cost_outlier": f"cost > {p.high_cost_factor:g} × regional DRG mean "
        "(per level where set) / grouped cases with cost",
        "early_death_transfer": f"deaths or transfers with LOS <= {p.early_days:g} days "
        "/ cases with LOS and discharge code",
    }


# --------------------------------------------------------------------------- dates


def _stay_dates(df: pl.DataFrame) -> pl.DataFrame | None:
    """Add ``_adm`` and ``_dis`` dates; the missing one of the two is derived with LOS."""
    dates = stay_dates(df)
    if dates is None:
        return None
    return df.with_columns(_adm=dates[0], _dis=dates[1])


# --------------------------------------------------------------------------- case masks


def _readmissions(df: pl.DataFrame, p: MonitorParams, match: str | None) -> pl.Series:
    """True for the later stay of a readmission pair (``casemix.readmission.pair_stays``).

    The pairing is the settlement's: gap 0 (a same-day return) counts,
    overlapping stays (gap < 0) do not, exempt stays take no part.  Here
    the later stay, the readmission itself, is the one counted.  Matching
    on the group needs a group: ungroupable and excluded stays (``_grouped``
    false) do not pair by DRG or ADRG.
    """
    eligible = df["_grouped"] if match in ("drg", "adrg") else None
    pairs = pair_stays(
        df,
        days=p.readmission_days,
        match=match,
        eligible=eligible,
        same_hospital=p.readmission_same_hospital,
        exempt_adrg=p.readmission_exempt_adrg,
        exempt_diagnoses=p.readmission_exempt_diagnoses,
    )
    return pairs["later"]


@dataclass
class _Flag:
    name: str
    num: pl.Expr | None  # per-case: counts in the numerator (already within den)
    den: pl.Expr | None  # per-case: counts in the denominator
    note: str = ""


def _case_flags(df: pl.DataFrame, p: MonitorParams, has_weights: bool) -> list[_Flag]:
    cols = set(df.columns)
    g = pl.col("_grouped")
    out: list[_Flag] = []

    # readmissions need a patient id and stay dates
    for name, match in (
        ("readmission", None),
        ("readmission_same_mdc", "mdc"),
        ("readmission_same_adrg", "adrg"),
        ("readmission_same_drg", "drg"),
    ):
        missing = missing_columns(df, match=match, same_hospital=p.readmission_same_hospital)
        if missing:
            out.append(_Flag(name, None, None, f"not computed: needs {', '.join(missing)}"))
            continue
        den = pl.col("patient_id").is_not_null() & pl.col("_adm").is_not_null()
        out.append(_Flag(name, den & pl.lit(_readmissions(df, p, match)), den))

    # a death or a transfer (离院方式), None without a discharge column
    leaves = (
        (pl.col("discharge") == p.death_code)
        | pl.col("discharge").is_in([float(c) for c in p.transfer_codes])
        if "discharge" in cols
        else None
    )
    if "los" in cols:
        den = pl.col("los").is_not_null()
        regular = ~leaves.fill_null(False) if leaves is not None else pl.lit(True)
        out.append(_Flag("short_stay", den & (pl.col("los") <= p.short_stay_days) & regular, den))
    else:
        out.append(_Flag("short_stay", None, None, "not computed: needs los"))

    if "severity" in cols:
        den = g & pl.col("severity").is_not_null() & (pl.col("severity") != "")
        num = den & pl.col("severity").is_in(["CC", "MCC"])
        out.append(_Flag("severity_share", num, den))
        out.append(_Flag("severity_shift", num, den))  # split by period in flags()
    else:
        out += [
            _Flag(n, None, None, "not computed: needs severity") for n in ("severity_share", "severity_shift")
        ]

    if has_weights:
        den = g & pl.col("rw").is_not_null()
        out.append(_Flag("low_weight", den & (pl.col("rw") < p.low_weight), den))
    else:
        out.append(_Flag("low_weight", None, None, "not computed: needs a weights table"))

    if "total_cost" in cols:
        den = g & pl.col("total_cost").is_not_null()
        mean = regional_mean("total_cost")
        if p.high_cost_factor_by_level and "hospital_level" in cols:
            factor = pl.col("hospital_level").replace_strict(
                {str(k): float(v) for k, v in p.high_cost_factor_by_level.items()},
                default=p.high_cost_factor,
                return_dtype=pl.Float64,
            )
        else:
            factor = pl.lit(p.high_cost_factor)
        out.append(_Flag("high_cost_outlier", den & (pl.col("total_cost") > factor * mean), den))
    else:
        out.append(_Flag("high_cost_outlier", None, None, "not computed: needs total_cost"))

    if "los" in cols and leaves is not None:
        den = pl.col("los").is_not_null() & pl.col("discharge").is_not_null()
        num = den & leaves & (pl.col("los") <= p.early_days)
        out.append(_Flag("early_death_transfer", num, den))
    else:
        out.append(_Flag("early_death_transfer", None, None, "not computed: needs los and discharge"))
    return out


# --------------------------------------------------------------------------- public


def flags(
    cases: FrameLike,
    weights: FrameLike | None = None,
    *,
    params: MonitorParams | Mapping | None = None,
    mapping: dict[str, str] | None = None,
    **overrides,
) -> FrameLike:
    """Monitoring flags per hospital: one row per (hospital, flag).

    Parameters
    ----------
    cases : frame
        A grouped frame with ``case_id``, ``hospital_id``, ``drg`` and, for
        the flags that need them, ``patient_id``, ``admission_date`` /
        ``discharge_date``, ``los``, ``discharge``, ``total_cost``,
        ``severity``, ``mdc``, ``adrg``, ``hospital_level``, ``year``.
    weights : frame, optional
        ``drg`` and ``rw`` (needed by ``low_weight``).
    params : MonitorParams or mapping, optional
        Rule parameters; keyword ``overrides`` replace single fields.
    mapping : dict, optional
        ``{your column: canonical name}`` besides the aliases of
        ``docs/cases.md`` (columns and values are read as the indicators
        read them).

    Returns
    -------
    frame
        Columns ``hospital_id``, ``hospital_level`` (null when absent),
        ``flag``, ``figure`` (the hospital's rate; for ``severity_shift`` the
        change in percentage points / 100), ``peer_figure`` (pooled rate of
        the peer group), ``threshold`` (the peers' ``percentile``),
        ``flagged``, ``numerator``, ``denominator``, ``n_peers``,
        ``case_ids`` (list of the numerator's case ids, sorted) and ``note``
        (why a flag could not be computed).  Rows in ``FLAGS`` order within
        each hospital, hospitals sorted.  A flag that cannot be computed
        still has its rows, with null figures and ``flagged`` false.
    """
    p = _params(params, overrides)
    df = prepare_cases(cases, need=("hospital_id", "drg"), mapping=mapping, step="monitor flags")
    if "case_id" not in df.columns:
        df = df.with_columns(case_id=pl.int_range(1, df.height + 1).cast(pl.String))
    df = df.with_row_index("_row")
    df = case_sets(df, max_los=p.max_los, min_cost=p.min_cost, ungroupable=p.ungroupable)
    if "hospital_level" not in df.columns:
        df = df.with_columns(hospital_level=pl.lit(None, dtype=pl.String))
    has_w = weights is not None
    if has_w:
        df = df.join(weights_table(weights), on="drg", how="left", maintain_order="left")
    dated = _stay_dates(df)
    if dated is not None:
        df = dated
    period = _period(df, p)

    levels = (
        df.group_by("hospital_id")
        .agg(pl.col("hospital_level").drop_nulls().first())
        .sort("hospital_id", nulls_last=True)
    )
    case_flags = _case_flags(df, p, has_w)
    # materialise the per-case masks first: window expressions (readmission order,
    # regional DRG means) must see the whole frame, not one hospital's group
    df = df.with_columns(
        [
            e
            for i, f in enumerate(case_flags)
            if f.num is not None and f.den is not None
            for e in (f.num.alias(f"_num{i}"), f.den.alias(f"_den{i}"))
        ]
    )
    parts = []
    for order, f in enumerate(case_flags):
        if f.num is not None and f.den is not None:
            f = _Flag(f.name, pl.col(f"_num{order}"), pl.col(f"_den{order}"))
        if f.num is None or f.den is None:
            part = levels.with_columns(
                figure=pl.lit(None, pl.Float64),
                numerator=pl.lit(0, pl.Int64),
                denominator=pl.lit(0, pl.Int64),
                case_ids=pl.lit([], pl.List(pl.String)),
                note=pl.lit(f.note),
            )
        elif f.name == "severity_shift":
            part = _shift_rates(df, f.num, f.den, period, levels)
        else:
            part = _rates(df, f.num, f.den, levels)
        parts.append(part.with_columns(flag=pl.lit(f.name), _order=pl.lit(order)))
    columns = [
        "hospital_id",
        "hospital_level",
        "flag",
        "figure",
        "peer_figure",
        "threshold",
        "flagged",
        "numerator",
        "denominator",
        "n_peers",
        "case_ids",
        "note",
    ]
    table = pl.concat([_peer_rule(t, p).select(*columns, "_order") for t in parts], how="vertical_relaxed")
    table = table.sort(["hospital_id", "_order"], nulls_last=True).select(columns)
    return summary_like(table, cases)


def _period(df: pl.DataFrame, p: MonitorParams) -> pl.Expr | None:
    if p.period is not None:
        if p.period not in df.columns:
            raise InputError(f"monitor params: period column {p.period!r} is not in the cases")
        return pl.col(p.period).cast(pl.String)
    if "year" in df.columns:
        return pl.col("year").cast(pl.String)
    if "_dis" in df.columns:
        return pl.col("_dis").dt.year().cast(pl.String)
    return None


def _rates(
    df: pl.DataFrame, num: pl.Expr, den: pl.Expr, levels: pl.DataFrame, extra: pl.Expr | None = None
) -> pl.DataFrame:
    sel = df if extra is None else df.filter(extra)
    agg = sel.group_by("hospital_id").agg(
        numerator=num.sum().cast(pl.Int64),
        denominator=den.sum().cast(pl.Int64),
        case_ids=pl.col("case_id").filter(num).sort(),
    )
    out = levels.join(agg, on="hospital_id", how="left", maintain_order="left", nulls_equal=True)
    return out.with_columns(
        pl.col("numerator", "denominator").fill_null(0),
        pl.col("case_ids").fill_null(pl.lit([], pl.List(pl.String))),
        note=pl.lit(""),
    ).with_columns(
        figure=pl.when(pl.col("denominator") > 0).then(pl.col("numerator") / pl.col("denominator"))
    )


def _shift_rates(
    df: pl.DataFrame, num: pl.Expr, den: pl.Expr, period: pl.Expr | None, levels: pl.DataFrame
) -> pl.DataFrame:
    empty = levels.with_columns(
        figure=pl.lit(None, pl.Float64),
        numerator=pl.lit(0, pl.Int64),
        denominator=pl.lit(0, pl.Int64),
        case_ids=pl.lit([], pl.List(pl.String)),
    )
    if period is None:
        return empty.with_columns(note=pl.lit("not computed: needs a period (year or discharge_date)"))
    df = df.with_columns(_period=period)
    periods = sorted(p for p in df["_period"].unique().to_list() if p is not None)
    if len(periods) < 2:
        return empty.with_columns(note=pl.lit("not computed: one period only"))
    cur, prev = periods[-1], periods[-2]
    now = _rates(df, num, den, levels, pl.col("_period") == cur)
    before = _rates(df, num, den, levels, pl.col("_period") == prev)
    return now.with_columns(
        figure=now["figure"] - before["figure"],
        _prev_num=before["numerator"],
        _prev_den=before["denominator"],
        note=pl.lit(f"{cur} vs {prev}"),
    )


def _peer_rule(t: pl.DataFrame, p: MonitorParams) -> pl.DataFrame:
    """Add threshold, peer figure, n_peers and flagged within each hospital level."""
    lvl = "hospital_level"
    have = pl.col("figure").is_not_null()
    if "_prev_num" in t.columns:  # severity shift: the pooled change of the peers
        pooled = (
            pl.col("numerator").sum() / pl.col("denominator").sum()
            - pl.col("_prev_num").sum() / pl.col("_prev_den").sum()
        )
        peer = pooled.over(lvl)
        t = t.with_columns(peer_figure=peer).drop("_prev_num", "_prev_den")
    else:
        peer = pl.col("numerator").sum().over(lvl) / pl.col("denominator").sum().over(lvl)
        t = t.with_columns(peer_figure=pl.when(pl.col("denominator").sum().over(lvl) > 0).then(peer))
    t = t.with_columns(
        threshold=pl.col("figure").filter(have).quantile(p.percentile, "linear").over(lvl),
        n_peers=have.sum().over(lvl).cast(pl.Int64),
    )
    flagged = (
        have
        & (pl.col("figure") >= pl.col("threshold"))
        & (pl.col("numerator") >= p.min_count)
        & (pl.col("n_peers") >= p.min_peers)
    )
    return t.with_columns(
        flagged=flagged.fill_null(False),
        peer_figure=pl.col("peer_figure").cast(pl.Float64),
        threshold=pl.col("threshold").cast(pl.Float64),
        figure=pl.col("figure").cast(pl.Float64),
    )
