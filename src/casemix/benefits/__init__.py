"""Patient-side benefit cascade: basic insurance, 大病保险 (地方附加), 医疗救助, 惠民保, hospital waivers, 再救助.

DRG/DIP settle between the fund and the hospital; what a patient pays is
decided by a cascade of benefit layers, each with a deductible, banded
rates and a cap.  This package simulates that cascade under a benefit
policy held as dated data (see :mod:`casemix.benefits.policy` and
``docs/benefits.md``).

Public API
----------
- :func:`load_policy` — a policy folder (or shipped name) → :class:`BenefitPolicy`
- :func:`simulate` — cases → per-case payments of each layer and the patient's share
- :func:`summarize` — simulated cases → one row per population group
- :func:`compare` — the same cases under two policies, by group
- :func:`synthetic_cases` — deterministic synthetic benefit cases
- :func:`add_benefit_fields` — give a case frame (e.g. grouped DRG cases) invented
  benefit columns, for demos
- :func:`shipped_policies` — names of the example policies

Input columns (yuan amounts; some aliases in parentheses, all of them in the one
alias table of ``docs/cases.md``; ``mapping=`` names others):

=====================  ==================================================
``patient_id``         person (``psn_no``); any type
``discharge_date``     a date: Date, ``2024-01-05``, ``20240105`` … (``dscg_date``)
``insurance_type``     职工/employee/310 or 居民/resident/390 (``insutype``)
``assist_status``      特困, 低保, 低边, 普通 (or extreme_poor, subsistence,
                       marginal, ordinary)
``hospital_level``     1, 2, 3 (or 一级, 二级, 三级) (``hosp_level``)
``total_cost``         医疗费总额 (``medfee_sumamt``)
``inscp_scp_amt``      政策范围内费用
``preselfpay_amt``     乙类先行自付
``fulamt_ownpay_amt``  全自费
``special_drug_amt``   optional, 大病特药 cost outside the basic list (0)
``referral``           optional bool, admitted on referral (false)
``major_disease``      optional bool, on the 大病 disease list (false)
=====================  ==================================================

The four parts may not exceed ``total_cost``; the rest (e.g. 超限价自费)
is the patient's and no layer covers it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from casemix._frames import FrameLike, like, summary_like, to_polars
from casemix._money import yuan_array_to_fen
from casemix.benefits.policy import (
    INSURED,
    INSURED_LABELS,
    LAYER_COLUMNS,
    LAYERS,
    LEVELS,
    STATUS_LABELS,
    STATUSES,
    BenefitPolicy,
    load_policy,
    policy_from_documents,
    shipped_policies,
)
from casemix.errors import InputError

if TYPE_CHECKING:
    from casemix.cases import Canonical

__all__ = [
    "BenefitPolicy",
    "load_policy",
    "policy_from_documents",
    "shipped_policies",
    "simulate",
    "summarize",
    "compare",
    "synthetic_cases",
    "add_benefit_fields",
    "PAY_COLUMNS",
    "OUTPUT_COLUMNS",
    "GROUP_KEYS",
]

#: per-case payment columns, in cascade order (Int64 fen)
PAY_COLUMNS: tuple[str, ...] = (LAYER_COLUMNS["basic"], *(LAYER_COLUMNS[layer] for layer in LAYERS))
#: every column :func:`simulate` adds: the payments and the patient's share (Int64 fen)
OUTPUT_COLUMNS: tuple[str, ...] = (*PAY_COLUMNS, "psn_part_amt")
#: public funds (medical insurance and assistance); 惠民保 is commercial and kept apart
FUND_COLUMNS = ("hifp_pay", "hifmi_pay", "hifob_pay", "hifmi_drug_pay", "maf_pay", "reassist_pay")
#: the population groups of :func:`summarize`
GROUP_KEYS: tuple[str, ...] = ("insured_type", "assist_status", "hosp_level")

# field -> its column after casemix.cases.canonical (names and aliases: docs/cases.md)
_ALIASES = {
    "patient_id": ("patient_id",),
    "discharge_date": ("discharge_date",),
    "insurance_type": ("insurance_type",),
    "assist_status": ("assist_status",),
    "hosp_level": ("hospital_level",),
    "total_cost": ("total_cost",),
    "inscp_scp_amt": ("inscp_scp_amt",),
    "preselfpay_amt": ("preselfpay_amt",),
    "fulamt_ownpay_amt": ("fulamt_ownpay_amt",),
    "special_drug_amt": ("special_drug_amt",),
    "referral": ("referral",),
    "major_disease": ("major_disease",),
}
_OPTIONAL = ("special_drug_amt", "referral", "major_disease")
_NEED = tuple(_ALIASES[f][0] for f in _ALIASES if f not in _OPTIONAL)


def _vocab(
    cases: FrameLike, mapping: dict[str, str] | None, step: str, extra: tuple[str, ...] = ()
) -> Canonical:
    """The cases in casemix's vocabulary: aliases and ``mapping`` resolved, amounts and
    dates parsed by the one rule; rows with a missing, malformed or negative needed
    value are left out (``docs/cases.md``, the bad-value rule)."""
    from casemix.cases import canonical

    return canonical(cases, mapping, need=(*_NEED, *extra), optional=_OPTIONAL, step=step)


_INSURED_VALUES = {
    "职工": 0,
    "employee": 0,
    "310": 0,
    "职工基本医疗保险": 0,
    "城镇职工": 0,
    "城镇职工基本医疗保险": 0,
    "居民": 1,
    "resident": 1,
    "390": 1,
    "城乡居民": 1,
    "城乡居民基本医疗保险": 1,
    "城镇居民": 1,
    "城镇居民基本医疗保险": 1,
    "新农合": 1,
}
_STATUS_VALUES = {
    "特困": 0,
    "特困人员": 0,
    "特困供养人员": 0,
    "extreme_poor": 0,
    "低保": 1,
    "低保对象": 1,
    "subsistence": 1,
    "低边": 2,
    "低保边缘": 2,
    "低边对象": 2,
    "marginal": 2,
    "普通": 3,
    "一般": 3,
    "ordinary": 3,
}
_LEVEL_VALUES = {
    "1": 0,
    "2": 1,
    "3": 2,
    "一级": 0,
    "二级": 1,
    "三级": 2,
    **{f"{lv}级{g}等": i for i, lv in enumerate("一二三") for g in "甲乙丙"},
    **{f"{lv}{g}": i for i, lv in enumerate("一二三") for g in "甲乙丙"},
}

Engine = Literal["batch", "reference"]


def __getattr__(name: str) -> Any:
    if name in ("synthetic_cases", "add_benefit_fields"):
        from casemix.benefits import synth

        return getattr(synth, name)
    raise AttributeError(f"module 'casemix.benefits' has no attribute {name!r}")


# --------------------------------------------------------------------------- input


def _find(df: pl.DataFrame, field: str) -> str | None:
    for name in _ALIASES[field]:
        if name in df.columns:
            return name
    return None


def _first_bad(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    more = f" and {rows.size - 1} more row(s)" if rows.size > 1 else ""
    return f"row {int(rows[0])} (counting from 0){more}"


def _codes(df: pl.DataFrame, col: str, mapping: dict[str, int], what: str) -> np.ndarray:
    """Category values → int8 indices, by mapping each distinct value once."""
    s = df[col]
    if s.null_count():
        raise InputError(f"column {col!r}: missing {what} at {_first_bad(s.is_null().to_numpy())}")
    if s.dtype.is_float():
        s = s.cast(pl.Int64, strict=False)
    if s.dtype.is_integer():
        vals = s.to_numpy().astype(np.int64)
        lo = int(vals.min()) if vals.size else 0
        hi = int(vals.max()) if vals.size else 0
        if hi - lo < 1_000_000:
            lut = np.array([mapping.get(str(v), -1) for v in range(lo, hi + 1)], dtype=np.int8)
            codes: np.ndarray = lut[vals - lo]
        else:
            s = s.cast(pl.String)
    if not s.dtype.is_integer():
        enum = s.dtype
        if not isinstance(enum, pl.Enum):
            s = s.cast(pl.String)
            enum = pl.Enum(s.unique().sort())
            s = s.cast(enum)
        cats = enum.categories.to_list()
        lut = np.array([mapping.get(str(c).strip().lower(), -1) for c in cats], dtype=np.int8)
        codes = lut[s.to_physical().to_numpy()]
    bad = codes < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"column {col!r}: {df[col][i]!r} at {_first_bad(bad)} is not a known "
            f"{what}; use one of {sorted(set(mapping))}"
        )
    return codes


def _person_codes(s: pl.Series) -> tuple[np.ndarray, int]:
    """Persons as integer codes 0..m-1 (any consistent numbering serves: only grouping matters)."""
    if s.dtype.is_integer():
        vals = s.to_numpy().astype(np.int64)
        if vals.size == 0:
            return vals, 0
        lo, hi = int(vals.min()), int(vals.max())
        if hi - lo <= 4 * vals.size + 1_000_000:
            return vals - lo, hi - lo + 1
    codes = s.cast(pl.String).cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
    return codes, (int(codes.max()) + 1 if codes.size else 0)


def _years(day: np.ndarray) -> np.ndarray:
    return day.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def _fen(df: pl.DataFrame, col: str | None, n: int) -> np.ndarray:
    if col is None:
        return np.zeros(n, dtype=np.int64)
    s = df[col]
    if not s.dtype.is_numeric():
        s = s.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    values = s.cast(pl.Float64).to_numpy()
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(f"column {col!r}: missing or not a number at {_first_bad(bad)}")
    bad = values < 0
    if bad.any():
        raise InputError(f"column {col!r}: negative amount at {_first_bad(bad)}")
    # in cache-sized chunks: the rounding makes several temporaries per value
    out = np.empty(values.shape[0], np.int64)
    step = 1 << 16
    for lo in range(0, values.shape[0], step):
        out[lo : lo + step] = yuan_array_to_fen(values[lo : lo + step])
    return out


def _flag(df: pl.DataFrame, col: str | None, n: int) -> np.ndarray:
    if col is None:
        return np.zeros(n, dtype=np.int8)
    s = df[col]
    if s.dtype != pl.Boolean:
        s = (
            s.cast(pl.String)
            .str.strip_chars()
            .str.to_lowercase()
            .replace_strict(
                {
                    "1": True,
                    "true": True,
                    "yes": True,
                    "是": True,
                    "y": True,
                    "0": False,
                    "false": False,
                    "no": False,
                    "否": False,
                    "n": False,
                    "": False,
                },
                default=None,
                return_dtype=pl.Boolean,
            )
        )
    bad = s.is_null().to_numpy()
    if bad.any():
        raise InputError(f"column {col!r}: not true/false at {_first_bad(bad)}")
    return s.cast(pl.Int8).to_numpy()


class _Prepared:
    """Validated input arrays (money in fen, categories as indices into the policy axes)."""

    def __init__(self, df: pl.DataFrame):
        n = df.height
        cols = {f: _find(df, f) for f in _ALIASES}
        missing = [f for f, c in cols.items() if c is None and f not in _OPTIONAL]
        if missing:
            raise InputError(
                f"benefit cases need column(s) {', '.join(missing)}; found {', '.join(df.columns)}"
                " (see casemix.benefits for the column list and accepted aliases)"
            )
        self.cols = cols
        need = {f: c for f, c in cols.items() if c is not None}
        self.person = df[need["patient_id"]]
        if self.person.null_count():
            raise InputError(
                f"column {need['patient_id']!r}: missing person id at "
                f"{_first_bad(self.person.is_null().to_numpy())}"
            )
        self.date = self.date_series(df, need["discharge_date"])
        self.day = self.date.cast(pl.Int32).to_numpy().astype(np.int64)
        self.ins = _codes(df, need["insurance_type"], _INSURED_VALUES, "insurance type")
        self.st = _codes(df, need["assist_status"], _STATUS_VALUES, "assistance status")
        self.lvl = _codes(df, need["hosp_level"], _LEVEL_VALUES, "hospital level")
        self.referral = _flag(df, cols["referral"], n)
        self.major = _flag(df, cols["major_disease"], n)
        self.P = _fen(df, cols["inscp_scp_amt"], n)
        self.B = _fen(df, cols["preselfpay_amt"], n)
        self.S = _fen(df, cols["special_drug_amt"], n)
        self.F = _fen(df, cols["fulamt_ownpay_amt"], n)
        self.T = _fen(df, cols["total_cost"], n)
        over = self.P + self.B + self.S + self.F > self.T
        if over.any():
            raise InputError(
                f"the cost parts (inscp_scp_amt + preselfpay_amt + fulamt_ownpay_amt"
                f" + special_drug_amt) exceed total_cost at {_first_bad(over)}"
            )
        self.n = n

    @staticmethod
    def date_series(df: pl.DataFrame, col: str) -> pl.Series:
        from casemix.cases import parse_dates

        d = df[col]
        if d.dtype != pl.Date:  # the one date rule of docs/cases.md (20240105 is a date)
            if not (
                d.dtype.is_numeric() or d.dtype in (pl.String, pl.Null) or isinstance(d.dtype, pl.Datetime)
            ):
                raise InputError(f"column {col!r}: expected dates, got {d.dtype}")
            d = parse_dates(d)
        if d.null_count():
            raise InputError(
                f"column {col!r}: missing or not a date (YYYY-MM-DD) at {_first_bad(d.is_null().to_numpy())}"
            )
        return d

    @classmethod
    def dates(cls, df: pl.DataFrame, col: str) -> np.ndarray:
        return cls.date_series(df, col).cast(pl.Int32).to_numpy().astype(np.int64)

    def check_dates(self, policy: BenefitPolicy) -> None:
        """Every case must fall on or after the policy's first date."""
        if self.n and int(self.day.min()) < int(policy.tables.start_day[0]):
            early = self.day < policy.tables.start_day[0]
            i = int(np.flatnonzero(early)[0])
            raise InputError(
                f"column {self.cols['discharge_date']!r}: {self.date[i]} at {_first_bad(early)}"
                f" is before the first date of policy {policy.name!r} ({policy.first_date})"
            )


def _person_year_order(person: pl.Series, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from casemix.benefits import kernel

    pcode, n_persons = _person_codes(person)
    if day.size == 0:
        return np.zeros(0, np.int64), np.zeros(1, np.int64)
    first, last = int(day.min()), int(day.max())
    year_of_day = _years(np.arange(first, last + 1, dtype=np.int64))
    order: tuple[np.ndarray, np.ndarray] = kernel.person_year_order(pcode, day, n_persons, year_of_day, first)
    return order


# --------------------------------------------------------------------------- simulate


def _run_batch(prep: _Prepared, policy: BenefitPolicy) -> np.ndarray:
    from casemix.benefits import kernel  # numba: compiled on first use only

    prep.check_dates(policy)
    pcode, n_persons = _person_codes(prep.person)
    if prep.n == 0:
        return np.zeros((len(OUTPUT_COLUMNS), 0), np.int64)
    first, last = int(prep.day.min()), int(prep.day.max())
    year_of_day = _years(np.arange(first, last + 1, dtype=np.int64))
    return kernel.run(
        policy.tables,
        pcode,
        n_persons,
        prep.day,
        year_of_day,
        first,
        prep.ins,
        prep.st,
        prep.lvl,
        prep.referral,
        prep.major,
        prep.P,
        prep.B,
        prep.S,
        prep.F,
        prep.T,
    )


def _run_reference(prep: _Prepared, policy: BenefitPolicy) -> np.ndarray:
    from casemix.benefits import reference as ref

    prep.check_dates(policy)
    persons = prep.person.to_list()
    dates = prep.date.to_list()
    cases = [
        ref.Case(
            row=i,
            person=persons[i],
            day=dates[i],
            insured=INSURED[prep.ins[i]],
            status=STATUSES[prep.st[i]],
            level=LEVELS[prep.lvl[i]],
            referral=bool(prep.referral[i]),
            major_disease=bool(prep.major[i]),
            policy_amt=int(prep.P[i]),
            preselfpay=int(prep.B[i]),
            special_drug=int(prep.S[i]),
            selfpay=int(prep.F[i]),
            total=int(prep.T[i]),
        )
        for i in range(prep.n)
    ]
    res = ref.simulate_cases(cases, policy)
    out = np.zeros((len(OUTPUT_COLUMNS), prep.n), dtype=np.int64)
    for i, r in res.items():
        out[:, i] = [r[c] for c in OUTPUT_COLUMNS]
    return out


def simulate(
    cases: FrameLike,
    policy: BenefitPolicy | str,
    *,
    engine: Engine = "batch",
    mapping: dict[str, str] | None = None,
) -> FrameLike:
    """Run every case through the benefit cascade.

    Layers, in order (formulas and sources in ``docs/benefits.md``):
    basic insurance (``hifp_pay``), 大病保险 (``hifmi_pay``), 地方附加 /
    职工大额 (``hifob_pay``), 大病 special drugs (``hifmi_drug_pay``),
    医疗救助 (``maf_pay``), 惠民保 (``hmb_pay``), hospital waivers
    (``hosp_part_amt``), 再救助 (``reassist_pay``); the patient's share
    ``psn_part_amt`` is the rest.  Deductibles, cumulative thresholds and
    caps run per person per calendar year in discharge-date order (ties in
    row order); each case uses the policy values in force on its discharge
    date.

    Parameters
    ----------
    cases : pandas or polars DataFrame, Arrow table or path
        Columns as listed in :mod:`casemix.benefits`.
    policy : BenefitPolicy or str
        A loaded policy, or a folder / shipped name for :func:`load_policy`.
    engine : {"batch", "reference"}
        "batch" runs the numba kernel; "reference" the plain-Python rules
        (same answer, slow).  Both read the same parsed dates.
    mapping : dict, optional
        ``{your column: canonical name}`` besides the aliases of
        ``docs/cases.md`` (住院总费用, 人员编号, 出院日期 … are known).

    Returns
    -------
    The input (same type, rows and order) plus the Int64 **fen** columns
    of :data:`OUTPUT_COLUMNS`; per row the payments plus ``psn_part_amt``
    equal ``total_cost`` in fen exactly.  A case with a missing, malformed
    or negative amount, a missing person, date or category is left out (the
    bad-value rule of ``docs/cases.md``): null payments and the reason in
    ``left_out``.

    Raises
    ------
    casemix.errors.InputError
        A required column is missing, or a value is unusable in a way the
        bad-value rule does not cover (an unknown category, cost parts
        above the total; the message names the column and the first row).
    """
    if not isinstance(policy, BenefitPolicy):
        policy = load_policy(policy)
    c = _vocab(cases, mapping, "benefits")
    df = c.used
    prep = _Prepared(df)
    if engine == "batch":
        out = _run_batch(prep, policy)
    elif engine == "reference":
        out = _run_reference(prep, policy)
    else:
        raise ValueError(f"engine must be 'batch' or 'reference', not {engine!r}")
    result = c.restore(
        df.with_columns(pl.Series(name, out[k], dtype=pl.Int64) for k, name in enumerate(OUTPUT_COLUMNS)),
        OUTPUT_COLUMNS,
    )
    return like(result, cases)


# --------------------------------------------------------------------------- summaries


def summarize(
    result: FrameLike,
    *,
    by: tuple[str, ...] | list[str] = GROUP_KEYS,
    oop_threshold: float = 10_000.0,
    mapping: dict[str, str] | None = None,
) -> FrameLike:
    """Patient burden and fund spending per population group.

    Parameters
    ----------
    result : frame
        The output of :func:`simulate`.
    by : sequence of str
        Group columns among ``insured_type`` (职工/居民), ``assist_status``
        (特困/低保/低边/普通), ``hosp_level`` (1–3); ``()`` for one overall row.
    oop_threshold : float
        Yuan.  A person-year counts as high-burden when the person's annual
        out-of-pocket (``psn_part_amt`` summed over the calendar year)
        exceeds it.  A stand-in for the income-based WHO definition of
        catastrophic spending, which needs household income the cases do
        not carry.

    Returns
    -------
    One row per non-empty group, sorted by the group keys: ``cases``,
    ``person_years``; sums in yuan (Float64, from exact fen sums) of
    ``total_cost``, ``inscp_scp_amt``, every payment column, ``fund_pay``
    (public funds: basic + 大病 + special drugs + 救助 + 再救助) and
    ``psn_part_amt``; ratios ``inscp_ratio`` = hifp_pay / inscp_scp_amt
    (政策范围内报销比例), ``actual_ratio`` = (hifp + hifmi + hifmi_drug) /
    total_cost (实际报销比例), ``combined_ratio`` = all payments including
    惠民保 / total_cost (综合保障比例), ``oop_ratio`` = psn_part_amt /
    total_cost; ``person_years_over`` and ``share_over`` (share of the
    group's person-years above ``oop_threshold``; a person-year belongs to
    every group it has a case in).
    """
    from casemix.benefits import kernel

    missing_out = [c for c in OUTPUT_COLUMNS if c not in to_polars(result).columns]
    if missing_out:
        raise InputError(
            f"summarize needs the output of simulate(); missing column(s) {', '.join(missing_out)}"
        )
    # the cases simulate() left out (null payments) are left out here by the same rule
    df = _vocab(result, mapping, "benefit summary", OUTPUT_COLUMNS).used
    by = list(by)
    unknown = [b for b in by if b not in GROUP_KEYS]
    if unknown:
        raise InputError(f"cannot group by {unknown}; use any of {list(GROUP_KEYS)}")
    found = {
        f: _find(df, f)
        for f in (
            "patient_id",
            "discharge_date",
            "insurance_type",
            "assist_status",
            "hosp_level",
            "total_cost",
            "inscp_scp_amt",
        )
    }
    missing = [f for f, c in found.items() if c is None]
    missing += [c for c in OUTPUT_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"summarize needs the output of simulate(); missing column(s) {', '.join(missing)}")
    cols = {f: c for f, c in found.items() if c is not None}
    n = df.height
    axes = {
        "insured_type": (INSURED_LABELS, cols["insurance_type"], _INSURED_VALUES, "insurance type"),
        "assist_status": (STATUS_LABELS, cols["assist_status"], _STATUS_VALUES, "assistance status"),
        "hosp_level": ((1, 2, 3), cols["hosp_level"], _LEVEL_VALUES, "hospital level"),
    }
    group = np.zeros(n, np.int64)
    sizes = []
    for key in by:
        labels, col, values, what = axes[key]
        group = group * len(labels) + _codes(df, col, values, what)
        sizes.append(len(labels))
    n_groups = int(np.prod(sizes)) if sizes else 1
    day = _Prepared.dates(df, cols["discharge_date"])
    order, seg = _person_year_order(df[cols["patient_id"]], day)
    money_cols = ["total_cost", "inscp_scp_amt", *PAY_COLUMNS, "psn_part_amt"]
    money = np.empty((len(money_cols), n), np.int64)
    money[0] = _fen(df, cols["total_cost"], n)
    money[1] = _fen(df, cols["inscp_scp_amt"], n)
    for k, c in enumerate(OUTPUT_COLUMNS):
        money[2 + k] = df[c].cast(pl.Int64).to_numpy()
    threshold = int(round(oop_threshold * 100))
    cases, sums, py, py_over = kernel.group_totals(
        order, seg, group, n_groups, money, len(money_cols) - 1, threshold
    )
    keep = np.flatnonzero(cases > 0)
    data: dict[str, Any] = {}
    rest = keep.copy()
    for key, size in reversed(list(zip(by, sizes, strict=True))):
        labels = axes[key][0]
        data[key] = [labels[int(x)] for x in rest % size]
        rest //= size
    fund_idx = [2 + PAY_COLUMNS.index(c) for c in FUND_COLUMNS]
    g = pl.DataFrame(
        [
            *(pl.Series(k, data[k], dtype=pl.Int8 if k == "hosp_level" else pl.String) for k in by),
            pl.Series("cases", cases[keep]),
            pl.Series("person_years", py[keep]),
            *(pl.Series(c, sums[keep, k]) for k, c in enumerate(money_cols)),
            pl.Series("fund_pay", sums[keep][:, fund_idx].sum(axis=1)),
            pl.Series("person_years_over", py_over[keep]),
        ]
    )
    paid = sum((pl.col(c) for c in PAY_COLUMNS[1:]), pl.col(PAY_COLUMNS[0]))

    def ratio(num: pl.Expr, den: str) -> pl.Expr:
        return pl.when(pl.col(den) > 0).then(num / pl.col(den)).otherwise(None)

    g = g.with_columns(
        ratio(pl.col("hifp_pay"), "inscp_scp_amt").alias("inscp_ratio"),
        ratio(
            pl.col("hifp_pay") + pl.col("hifmi_pay") + pl.col("hifob_pay") + pl.col("hifmi_drug_pay"),
            "total_cost",
        ).alias("actual_ratio"),
        ratio(paid, "total_cost").alias("combined_ratio"),
        ratio(pl.col("psn_part_amt"), "total_cost").alias("oop_ratio"),
        ratio(pl.col("person_years_over").cast(pl.Float64), "person_years").alias("share_over"),
    )
    g = g.with_columns((pl.col(c) / 100).round(2).alias(c) for c in [*money_cols, "fund_pay"])
    out = [
        *by,
        "cases",
        "person_years",
        "total_cost",
        "inscp_scp_amt",
        *PAY_COLUMNS,
        "fund_pay",
        "psn_part_amt",
        "inscp_ratio",
        "actual_ratio",
        "combined_ratio",
        "oop_ratio",
        "person_years_over",
        "share_over",
    ]
    return summary_like(g.select(out), result)


COMPARE_METRICS = ("fund_pay", *PAY_COLUMNS, "psn_part_amt", "combined_ratio", "share_over")


def compare(
    cases: FrameLike,
    policy_a: BenefitPolicy | str,
    policy_b: BenefitPolicy | str,
    *,
    by: tuple[str, ...] | list[str] = GROUP_KEYS,
    oop_threshold: float = 10_000.0,
    engine: Engine = "batch",
    mapping: dict[str, str] | None = None,
) -> FrameLike:
    """The same cases under two policies: what changes, by population group.

    Returns one row per group with ``cases``, ``person_years`` and, for each
    of ``fund_pay``, every payment column, ``psn_part_amt`` (yuan),
    ``combined_ratio`` and ``share_over``: ``<metric>_a``, ``<metric>_b``
    and ``<metric>_change`` (b − a).  See :func:`summarize` for the metrics.
    """
    a = summarize(
        simulate(to_polars(cases), policy_a, engine=engine, mapping=mapping),
        by=by,
        oop_threshold=oop_threshold,
        mapping=mapping,
    )
    b = summarize(
        simulate(to_polars(cases), policy_b, engine=engine, mapping=mapping),
        by=by,
        oop_threshold=oop_threshold,
        mapping=mapping,
    )
    by = list(by)
    keep = [*by, "cases", "person_years"]
    if by:
        m = a.select([*keep, *COMPARE_METRICS]).join(
            b.select([*by, *COMPARE_METRICS]), on=by, suffix="_b", how="left"
        )
    else:
        m = pl.concat(
            [
                a.select([*keep, *COMPARE_METRICS]),
                b.select(COMPARE_METRICS).rename({c: c + "_b" for c in COMPARE_METRICS}),
            ],
            how="horizontal",
        )
    m = m.rename({c: c + "_a" for c in COMPARE_METRICS})
    m = m.with_columns(
        (
            (pl.col(f"{c}_b") - pl.col(f"{c}_a")).round(2 if "ratio" not in c and "share" not in c else 10)
        ).alias(f"{c}_change")
        for c in COMPARE_METRICS
    )
    cols = keep + [f"{c}_{s}" for c in COMPARE_METRICS for s in ("a", "b", "change")]
    return summary_like(m.select(cols), cases)
