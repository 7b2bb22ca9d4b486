"""Everything a case's points depend on, as arrays: base points, reference costs, coefficients.

Strings (hospital, group, level codes) are turned into integer codes once
(polars Enum casts), and every per-group or per-hospital figure is an
array indexed by those codes, so a 10M-case settlement never joins or
groups on strings.  An array of per-code values carries one extra trailing
slot for "no code" (index −1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from casemix._frames import number, require_table_numbers, to_polars
from casemix.budget import Policy
from casemix.errors import InputError
from casemix.payment.case_rules import apply_case_rules
from casemix.payment.sums import BLOCK_ROWS
from casemix.readmission import flag_readmissions
from casemix.weights import Weights


@dataclass(frozen=True)
class Work:
    """The cases of a settlement as arrays (one entry per case, input order)."""

    frame: pl.DataFrame  # numeric columns read by the case rules
    hosp: np.ndarray  # hospital code per case
    hospitals: pl.Series  # hospital_id per code, sorted
    level: np.ndarray  # level code per case (−1 none)
    levels: list[str]  # level name per code
    all_case_cost: float  # M, yuan per RW: converts an ungroupable case's cost into points
    notes: list[str]


def _codes(s: pl.Series, dtype: type[pl.DataType] = pl.Int64) -> tuple[np.ndarray, pl.Series]:
    """Integer code per value (−1 for null) and the sorted distinct values (codes Int64 or ``dtype``)."""
    u = s.drop_nulls().unique().sort()
    if s.dtype == pl.String:
        c = s.cast(pl.Enum(u.to_list())).to_physical()
    else:
        c = s.replace_strict(u, pl.int_range(len(u), eager=True), default=None, return_dtype=dtype)
    return c.cast(dtype).fill_null(-1).to_numpy(), u


def _int_codes(s: pl.Series) -> tuple[np.ndarray, pl.Series] | None:
    """:func:`_codes` of an integer column without nulls in numpy (Int32 codes), or ``None``.

    polars' ``replace_strict`` and its casts leave about 25 B per case in polars' allocator
    (freed on a timer, 250 MB at 10M cases); a lookup table over the column's value range, read
    slice by slice, gives the same codes in one Int32 array.  ``None`` (use :func:`_codes`)
    with a null, a range wider than 2^16 or values beyond ±2^62.
    """
    if not s.dtype.is_integer() or s.null_count() or s.len() == 0:
        return None
    lo, hi = int(s.min()), int(s.max())  # type: ignore[arg-type]
    if hi - lo >= 1 << 16 or lo < -(1 << 62) or hi > 1 << 62:  # (Int64 arithmetic below)
        return None
    u = s.unique().sort()
    table = np.full(hi - lo + 1, -1, dtype=np.int32)
    table[u.to_numpy().astype(np.int64) - lo] = np.arange(len(u), dtype=np.int32)
    out = np.empty(s.len(), dtype=np.int32)
    for a in range(0, s.len(), BLOCK_ROWS):
        x = s.slice(a, BLOCK_ROWS).to_numpy().astype(np.int64)
        x -= lo
        out[a : a + x.size] = table[x]
    return out, u


def _with_none(values: Any) -> np.ndarray:
    return np.append(np.asarray(values, dtype=np.float64), np.nan)


def _first_bad(mask: np.ndarray, case_id: pl.Series) -> str:
    i = int(np.flatnonzero(mask)[0])
    return f"row {i} (case_id {case_id[i]!r})"


def _column(df: pl.DataFrame, name: str) -> pl.Series:
    """A numeric column as Float64 with NaN as null (all null when absent), without a copy when clean."""
    if name not in df.columns:
        return pl.repeat(None, df.height, dtype=pl.Float64, eager=True).alias(name)
    s = df[name].cast(pl.Float64, strict=False)
    return s.fill_nan(None) if s.is_nan().any() else s


def _num(df: pl.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        return np.full(df.height, np.nan)
    return df[name].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()


#: the largest relative weight accepted (keeps points × point value far from overflow)
MAX_RW = 1000.0

#: optional per-DRG columns a weight table may carry (an imported city table, for instance)
OPTIONAL_WEIGHT_COLUMNS = ("mean_cost", "mean_los", "low_k", "high_k")


def weight_table(weights: Any) -> pl.DataFrame:
    """``drg``, ``rw`` and the optional per-DRG columns of a weight table, checked.

    Optional: ``mean_cost``, ``mean_los``, ``same_rate`` (bool: 基层/同等费率
    病组, coefficient 1), ``low_k`` / ``high_k`` (the DRG's own low/high-cost
    multiples of its reference cost, replacing the policy's).  An optional
    column's text that is no number is an InputError naming the DRG and row.
    """
    wt = to_polars(weights.table if isinstance(weights, Weights) else weights)
    if not {"drg", "rw"} <= set(wt.columns):
        raise InputError(f"weight table needs columns drg and rw; has {', '.join(wt.columns)}")
    for c in OPTIONAL_WEIGHT_COLUMNS:
        require_table_numbers(wt, c, fix="give a number or leave the cell empty")
    cols = [pl.col("drg").cast(pl.String), pl.col("rw").cast(pl.Float64, strict=False)]
    cols += [pl.col(c).cast(pl.Float64, strict=False) for c in OPTIONAL_WEIGHT_COLUMNS if c in wt.columns]
    if "same_rate" in wt.columns:
        cols.append(pl.col("same_rate").cast(pl.Boolean, strict=False).fill_null(False))
    wt = wt.select(cols)
    dup = wt.filter(pl.col("drg").is_duplicated())
    if dup.height:
        raise InputError(f"weight table lists DRG {dup['drg'][0]!r} more than once")
    # real weights lie far inside (0, MAX_RW]: Harbin 2024's largest is about 36
    bad = wt.filter(
        pl.col("rw").is_null() | ~pl.col("rw").is_finite() | (pl.col("rw") <= 0) | (pl.col("rw") > MAX_RW)
    )
    if bad.height:
        raise InputError(
            f"weight table: rw of DRG {bad['drg'][0]!r} is {bad['rw'][0]!r}; every "
            f"weight must be a finite number in (0, {MAX_RW:g}] (drop the row or fix "
            "the weight)"
        )
    for c in ("low_k", "high_k"):
        if c in wt.columns:
            bad = wt.filter(pl.col(c).is_not_null() & (~pl.col(c).is_finite() | (pl.col(c) <= 0)))
            if bad.height:
                raise InputError(
                    f"weight table: {c} of DRG {bad['drg'][0]!r} is "
                    f"{bad[c][0]!r}; it must be a finite multiple > 0 or empty"
                )
    return wt


def prepare(
    df: pl.DataFrame,
    policy: Policy,
    weights: Any,
    points: str | None,
    group_col: str,
    *,
    approved_special: np.ndarray | None = None,
    outlier_ref_cost: np.ndarray | None = None,
    scheme: str = "drg",
) -> Work:
    """Arrays for the case rules; raises InputError on unusable rows.

    The policy's ``new_tech``, ``outliers`` and ``special`` rules run here
    (:func:`casemix.payment.case_rules.apply_case_rules`; ``scheme`` is
    ``"drg"`` or ``"dip"``).  ``approved_special`` (bool per case) replaces
    the policy's approved special cases; ``outlier_ref_cost`` (yuan per case, NaN = none) replaces
    the reference cost the outlier rules compare with.
    """
    needed = ["hospital_id", "total_cost", group_col] + ([points] if points else [])
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise InputError(
            f"cases lack column(s) {', '.join(missing)}; settlement needs a grouped "
            "frame with hospital_id, total_cost and the group code"
        )
    if weights is None and points is None:
        raise InputError(
            "settle needs weights= (a weight table) or points= (a column of precomputed base points)"
        )
    n = df.height
    notes: list[str] = []
    case_id = (
        df["case_id"].cast(pl.String)
        if "case_id" in df.columns
        else pl.int_range(1, n + 1, eager=True).cast(pl.String).alias("case_id")
    )
    cost = _num(df, "total_cost")
    bad = ~np.isfinite(cost) | (cost < 0)
    if bad.any():
        raise InputError(
            f"total_cost missing, negative or not a number at "
            f"{_first_bad(bad, case_id)}; settlement needs every case's cost in yuan"
        )
    hosp, hospitals = _codes(df["hospital_id"].cast(pl.String))
    if (hosp < 0).any():
        raise InputError(f"hospital_id missing at {_first_bad(hosp < 0, case_id)}")

    # groups: codes over the cases' groups and the weight table's DRGs together
    wt = weight_table(weights) if weights is not None else None
    group_s = df[group_col].cast(pl.String)
    names = group_s.drop_nulls()
    if wt is not None:
        names = pl.concat([names, wt["drg"]])
    names = names.unique().sort()
    # Int32 codes: a code per case is an index only (10M cases: 40 MB, not 80)
    gcode = group_s.cast(pl.Enum(names.to_list())).to_physical().cast(pl.Int32).fill_null(-1).to_numpy()
    codes = set(policy.ungroupable_codes)
    ung_of = np.array([x == "" or x in codes for x in names.to_list()] + [True])
    ungroupable = ung_of[gcode]
    by_name = pl.DataFrame({"drg": names})
    if wt is not None:
        by_name = by_name.join(wt, on="drg", how="left", maintain_order="left")

    if points:
        base = _num(df, points)
        bad = (base < 0) | np.isinf(base)
        if bad.any():
            raise InputError(f"{points} (base points) negative or infinite at {_first_bad(bad, case_id)}")
    else:
        base = _with_none(by_name["rw"].fill_null(np.nan).to_numpy())[gcode] * policy.points_per_rw
    has_weight = ~np.isnan(base) & ~ungroupable
    if not base.flags.writeable:  # a view of the input's points column
        base = base.copy()
    base[~has_weight] = np.nan  # in place: one array per case
    rw = base / policy.points_per_rw

    # the group's mean stay is only read by a short-stay rule on the LOS basis
    los = _num(df, "los") if policy.short_stay.basis == "los" else None
    ref_cost, ref_los, all_case = _reference(
        by_name, gcode, len(names), cost, los, rw, has_weight, policy, wt is not None
    )
    del los, rw  # rw is base ÷ points per RW again in the per-case result: 80 MB at 10M cases
    level, levels = _levels(df, hosp, hospitals, policy)
    coefficient, k = _coefficients(policy, hosp, hospitals, level, levels)
    if policy.hospital_drg_coefficients:
        coefficient = _hospital_drg(policy, hosp, hospitals, gcode, names.to_list(), coefficient)
    # 基层病组 / 同等费率病组: the same standard at every level [A-规 §19, A §3.4]
    same = np.array([x in set(policy.same_rate_groups) for x in names.to_list()] + [False])
    if "same_rate" in by_name.columns:
        same[:-1] |= by_name["same_rate"].fill_null(False).to_numpy()
    same_case = same[gcode]
    if same_case.any():
        coefficient[same_case] = 1.0  # in place: the array is this function's own
    del same_case
    # 新药新技术, outlier reference and thresholds, regional 特例单议 (casemix.payment.case_rules)
    table = {
        c: (_with_none(by_name[c].fill_null(np.nan).to_numpy())[gcode] if c in by_name.columns else None)
        for c in ("low_k", "high_k")
    }
    group_mean = ref_cost  # m, before the outlier reference of [outliers] replaces it
    rules = apply_case_rules(
        df,
        scheme=scheme,
        case_id=case_id,
        cost=cost,
        group_mean=ref_cost,
        coefficient=coefficient,
        group=gcode,
        level=level,
        valid=has_weight,
        yuan_per_point=all_case / policy.points_per_rw,
        low_k=policy.low_cost.ratio,
        high_k=k,
        table_low=table["low_k"],
        table_high=table["high_k"],
        special=policy.special,
        new_tech=policy.new_tech,
        outliers=policy.outliers,
        approved=None if approved_special is None else _flags(approved_special, n),
    )
    notes.extend(rules.notes)
    ref_cost, k, low_ratio = rules.ref_cost, rules.high_k, rules.low_k
    if outlier_ref_cost is not None:
        ref = np.asarray(outlier_ref_cost, dtype=np.float64)
        if ref.shape != (n,):
            raise InputError(f"outlier reference costs: {ref.shape[0]} values for {n} cases")
        ref_cost = np.where(np.isnan(ref), ref_cost, ref)
    special = rules.special_approved
    flags, note = flag_readmissions(df, pl.Series(has_weight & ~special), group_col, policy.readmission)
    if note:
        notes.append(note)
    if policy.short_stay.enabled and not {"los", "discharge"} <= set(df.columns):
        notes.append("short-stay rule skipped: no column los/discharge")
    if (
        policy.ungroupable == "points"
        and not (all_case > 0 and math.isfinite(all_case))
        and (~has_weight).any()
    ):
        raise InputError(
            "ungroupable cases cannot be converted into points: no reference cost "
            "(the weight table has no mean_cost and no settled case with a weight "
            "has a cost above 0); "
            "use ungroupable.rule = 'cost' or give mean_cost in the weights"
        )
    # NaN → null: polars orders NaN above every number, so `cost < ratio × NaN` would be true
    maybe_missing = {
        "base_points": base,
        "ref_cost": ref_cost,
        "group_mean": group_mean,
        **({"ref_los": ref_los} if ref_los is not None else {}),
        # 特例单议 input, read by a distributed settlement that ranks applications region-wide
        **({"standard": rules.standard} if policy.special.active else {}),
    }
    frame = pl.DataFrame(
        [
            pl.Series("cost", cost),
            pl.Series("rule_cost", rules.rule_cost),
            pl.Series("special_fen", rules.special_fen),
            pl.Series("special_points", rules.special_points),
            pl.Series("new_tech_fen", rules.new_tech_fen),
            pl.Series("addon_points", rules.addon_points),
            # the input's own columns, not numpy copies (80 MB each at 10M cases)
            _column(df, "los"),
            _column(df, "discharge"),
            # without a NaN the array is taken as it is (no copy: 80 MB a column at 10M cases)
            *[pl.Series(name, x, nan_to_null=bool(np.isnan(x).any())) for name, x in maybe_missing.items()],
            pl.Series("coefficient", coefficient),
            pl.Series("special", special),
            *([pl.Series("special_applied", rules.special_applied)] if policy.special.active else []),
            pl.Series("ungroupable", ungroupable),
            pl.Series("has_weight", has_weight),
            flags.alias("readmission"),
        ]
    )
    # a multiple that is one number for every case (a broadcast view) is a constant column
    frame = frame.with_columns(
        pl.lit(float(x[0])).alias(name) if x.size and x.strides == (0,) else pl.Series(name, x)
        for name, x in (("k", np.asarray(k)), ("low_ratio", np.asarray(low_ratio)))
    )
    if policy.outliers.reference == "level_mean":
        # each case's level by name: a distributed settlement sums the same-level means' cells
        names_l = pl.Series("level", [*levels, None], dtype=pl.String)
        frame = frame.with_columns(names_l.gather(np.where(level >= 0, level, len(levels))))
    return Work(
        frame=frame,
        hosp=hosp,
        hospitals=hospitals,
        level=level,
        levels=levels,
        all_case_cost=all_case,
        notes=notes,
    )


def _hospital_drg(
    policy: Policy,
    hosp: np.ndarray,
    hospitals: pl.Series,
    gcode: np.ndarray,
    names: list[str],
    coefficient: np.ndarray,
) -> np.ndarray:
    """The hospital-and-DRG coefficient where the policy lists one (Jinhua 2017), else ``coefficient``."""
    table = np.full((len(hospitals), len(names) + 1), np.nan)
    col = {g: j for j, g in enumerate(names)}
    for i, h in enumerate(hospitals.to_list()):
        for g, f in policy.hospital_drg_coefficients.get(h, {}).items():
            if g in col:
                table[i, col[g]] = f
    by_drg = table[hosp, gcode]  # gcode −1 (no group) reads the trailing NaN column
    return np.where(np.isnan(by_drg), coefficient, by_drg)


def _flags(approved: Any, n: int) -> np.ndarray:
    special = np.asarray(approved, dtype=bool)
    if special.shape != (n,):
        raise InputError(f"approved special cases: {special.shape[0]} flags for {n} cases")
    return special


def _reference(
    by_name: pl.DataFrame,
    gcode: np.ndarray,
    n_names: int,
    cost: np.ndarray,
    los: np.ndarray | None,
    rw: np.ndarray,
    has_weight: np.ndarray,
    policy: Policy,
    have_weights: bool,
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Group reference cost m and LOS per case, and M (yuan per RW) for cost-converted points.

    The LOS reference is ``None`` when ``los`` is (no rule reads it).
    """
    rw_sum = float(rw[has_weight].sum())
    m_cur = float(cost[has_weight].sum()) / rw_sum if rw_sum > 0 else math.nan
    g = gcode[has_weight]

    def case_mean(x: np.ndarray) -> np.ndarray:
        xs = x[has_weight]
        ok = ~np.isnan(xs)
        gs = g if ok.all() else g[ok]
        s = np.bincount(gs, weights=xs if ok.all() else xs[ok], minlength=n_names)
        del xs
        c = np.bincount(gs, minlength=n_names)
        return _with_none(s / np.where(c > 0, c, np.nan))[gcode]

    has_mc = "mean_cost" in by_name.columns
    all_case = m_cur
    if has_mc:
        ratio = (by_name["mean_cost"] / by_name["rw"]).filter(by_name["rw"] > 0).drop_nans()
        median = number(ratio.median()) if ratio.len() else None
        if median is not None and math.isfinite(median):
            all_case = median
    if policy.high_cost.mean == "weights" and have_weights:
        ref = _with_none(by_name["mean_cost"].fill_null(np.nan).to_numpy())[gcode] if has_mc else rw * m_cur
    else:
        ref = case_mean(cost)
    ref_los = (
        None
        if los is None
        else _with_none(by_name["mean_los"].fill_null(np.nan).to_numpy())[gcode]
        if "mean_los" in by_name.columns
        else case_mean(los)
    )
    # in place (ref is made here): no second array per case
    ref[~has_weight] = np.nan
    return ref, ref_los, all_case


def _levels(
    df: pl.DataFrame, hosp: np.ndarray, hospitals: pl.Series, policy: Policy
) -> tuple[np.ndarray, list[str]]:
    """Level code per case: the case's ``hospital_level``, else the policy's hospital_levels."""
    from_policy = [policy.hospital_levels.get(h) for h in hospitals.to_list()]
    col_codes, col_values = None, []
    if "hospital_level" in df.columns:
        s = df["hospital_level"]
        if s.dtype.is_float():
            # 3.0 from a pandas column with gaps must match the policy key "3"
            s = s.cast(pl.Int64, strict=False)
        got = _int_codes(s)
        col_codes, u = got if got is not None else _codes(s, pl.Int32)
        col_values = [str(v) for v in u.to_list()]
    levels = sorted(set(col_values) | {v for v in from_policy if v is not None})
    pos = {v: i for i, v in enumerate(levels)}
    # Int32 level codes, filled in place: the code arrays are 40 MB each at 10M cases
    hosp_level = np.array([pos.get(v, -1) if v is not None else -1 for v in from_policy], dtype=np.int32)
    if col_codes is None:
        return hosp_level[hosp], levels
    level = np.array([pos[v] for v in col_values] + [-1], dtype=np.int32)[col_codes]
    del col_codes
    missing = level < 0
    if missing.any():
        level[missing] = hosp_level[hosp[missing]]
    return level, levels


def _coefficients(
    policy: Policy, hosp: np.ndarray, hospitals: pl.Series, level: np.ndarray, levels: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Hospital coefficient (hospital's, else level's, else default) and high-cost k per case."""
    # the hospital's, else its level's, else the default: filled in place (one array per case)
    by_level = _with_none([policy.level_coefficients.get(v, np.nan) for v in levels])
    by_hosp = np.array([policy.hospital_coefficients.get(h, np.nan) for h in hospitals.to_list()])
    if np.isnan(by_hosp).all():
        coef = by_level[level]
    else:
        coef = by_hosp[hosp]
        missing = np.isnan(coef)
        if missing.any():
            coef[missing] = by_level[level[missing]]
    missing = np.isnan(coef)
    if missing.any():
        coef[missing] = policy.coefficient_default
    del missing
    hc = policy.high_cost
    k = _with_none([hc.k.get(v, np.nan) for v in levels])
    return coef, np.where(np.isnan(k), hc.k_default, k)[level]
