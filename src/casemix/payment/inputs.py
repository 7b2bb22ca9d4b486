"""The case columns the money side reads: patient share, itemised fund cost, pool.

Canonical names (aliases in ``casemix.cases._aliases``, ``docs/cases.md``):

- ``patient_share`` — 个人负担 = 起付线 + 自付 + 自费, yuan; when absent, the
  sum of ``deductible`` (起付线), ``copay`` (自付) and ``self_pay`` (自费) if
  any of them is given;
- ``fund_paid`` — 统筹基金支付, yuan: what the fund paid item by item (记账),
  the cost the 结余留用/超支分担 corridors compare with;
- ``insurance_type`` — 险种类型 (职工/居民, employee/resident, 310/390):
  the case's fund pool.

Errors name the row (0-based) and the case id; amounts must lie within
|amount| < 10^13 yuan (``casemix._money.MAX_YUAN``).
"""

from __future__ import annotations

import os
import sys
import types
import warnings

import numpy as np
import polars as pl

from casemix._money import MAX_YUAN, yuan_array_to_fen
from casemix.errors import InputError, PolicyError

__all__ = ["PATIENT_PARTS", "fund_cost_fen", "patient_share_fen", "pool_index", "yuan_column_fen"]

PATIENT_PARTS = ("deductible", "copay", "self_pay")

#: rows per slice when a yuan column becomes fen (:func:`yuan_column_fen`)
SLICE_ROWS = 1 << 17


def _caller_stacklevel() -> int:
    """``stacklevel`` of the first frame outside the casemix package: the user's own call.

    The money columns are read a varying number of calls below the public functions
    (settle, DIP, Dask, batches), so a fixed level would point into casemix's own code.
    """

    # absolute and normalised on both sides: a module found through a sys.path entry such
    # as "./" has a file name with "/./" in it; the separator at the end keeps a sibling
    # folder such as casemix_tools/ outside
    def path(name: str) -> str:
        return os.path.normcase(os.path.abspath(name))

    package = os.path.join(path(os.path.dirname(os.path.dirname(__file__))), "")
    frame: types.FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and path(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _where(mask: np.ndarray, case_id: pl.Series, offset: int = 0) -> str:
    i = int(np.flatnonzero(mask)[0])
    return f"row {i + offset} (case_id {case_id[i]!r})"


def yuan_column_fen(
    df: pl.DataFrame, name: str, case_id: pl.Series, *, what: str, offset: int = 0
) -> np.ndarray:
    """A yuan column as Int64 fen (ROUND_HALF_UP); missing, negative or out of range → InputError.

    Slice by slice into the one result array: a column read in row groups is never copied
    whole into one float array first (10M cases: 160 MB of temporaries, not 1 MB).
    """
    col = df[name].cast(pl.Float64, strict=False)
    out = np.empty(col.len(), dtype=np.int64)
    for a in range(0, col.len(), SLICE_ROWS):
        x = col.slice(a, SLICE_ROWS).fill_null(np.nan).to_numpy()
        bad = ~np.isfinite(x)
        if bad.any():
            raise InputError(
                f"{name} ({what}) missing or not a number at "
                f"{_where(bad, case_id[a:], offset + a)}; give 0 where nothing was paid"
            )
        if (x < 0).any():
            raise InputError(
                f"{name} ({what}) is negative at {_where(x < 0, case_id[a:], offset + a)}; "
                "amounts paid are >= 0 yuan"
            )
        if (x >= MAX_YUAN).any():
            raise InputError(
                f"{name} ({what}) at {_where(x >= MAX_YUAN, case_id[a:], offset + a)} is outside "
                "the supported range (< 10^13 yuan)"
            )
        out[a : a + x.size] = yuan_array_to_fen(x)
    return out


def patient_share_fen(
    df: pl.DataFrame, case_id: pl.Series, cost_fen: np.ndarray, *, offset: int = 0
) -> tuple[np.ndarray | None, str | None]:
    """Each case's patient share (个人负担) in fen, or ``None`` when the cases carry none.

    A share above the case's total cost is kept (the data may be right: a
    copay on items outside the bill) and reported with a warning naming the
    first such row.
    """
    if "patient_share" in df.columns:
        q = yuan_column_fen(df, "patient_share", case_id, what="个人负担, yuan", offset=offset)
    else:
        parts = [c for c in PATIENT_PARTS if c in df.columns]
        if not parts:
            return None, None
        fen = [yuan_column_fen(df, c, case_id, what="part of 个人负担, yuan", offset=offset) for c in parts]
        q = sum(fen[1:], fen[0])
    above = q > cost_fen
    if above.any():
        warnings.warn(
            f"patient_share above total_cost at {_where(above, case_id, offset)} "
            f"({int(above.sum())} case(s)); kept as given",
            stacklevel=_caller_stacklevel(),
        )
    return np.asarray(q, dtype=np.int64), None


def fund_cost_fen(df: pl.DataFrame, case_id: pl.Series, *, rule: str, offset: int = 0) -> np.ndarray:
    """The fund's itemised cost per case (``fund_paid``, 统筹基金支付) in fen.

    Raises
    ------
    PolicyError
        The column is absent (naming ``rule``, the policy rule that needs it).
    InputError
        A negative or missing amount (naming row and case id).
    """
    if "fund_paid" not in df.columns:
        raise PolicyError(
            f"{rule} needs column fund_paid (统筹基金支付, the fund's itemised "
            "payment per case, yuan); the cases lack it"
        )
    return yuan_column_fen(df, "fund_paid", case_id, what="统筹基金支付, yuan", offset=offset)


def pool_index(
    df: pl.DataFrame,
    values: list[tuple[str, ...]],
    names: list[str],
    case_id: pl.Series,
    *,
    offset: int = 0,
    small: bool = False,
) -> np.ndarray:
    """Pool index per case from ``insurance_type`` (PolicyError if absent, InputError if unknown).

    Int64 codes, or Int8 with ``small`` (fewer than 128 pools: one byte per case).
    """
    if "insurance_type" not in df.columns:
        raise PolicyError(
            f"pools ({', '.join(names)}) need column insurance_type (险种类型: "
            "职工/居民, employee/resident, 310/390); the cases lack it"
        )
    s = df["insurance_type"]
    text = s.cast(pl.String)
    if s.dtype.is_float():
        # 310.0 read from Excel is code 310; 310.5 is no code (an integer cast would truncate it)
        whole = (s == s.round(0)).fill_null(False)
        as_int = s.cast(pl.Int64, strict=False).cast(pl.String)
        text = pl.select(pl.when(whole).then(as_int).otherwise(text)).to_series()
    lookup = {v: i for i, vs in enumerate(values) for v in vs}
    u = text.unique().drop_nulls().sort().to_list()
    # distinct values → pool through a small table, cases → distinct values by an Enum's codes
    # (a replace of 10M strings would build a string per case)
    table = np.array([lookup.get(v, -1) for v in u] + [-1], dtype=np.int8 if small else np.int64)
    physical = (
        text.cast(pl.Enum(u)).to_physical().cast(pl.UInt32).fill_null(len(u)).to_numpy()
        if u
        else np.zeros(text.len(), dtype=np.uint32)
    )
    codes: np.ndarray = table[physical]
    bad = codes < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        allowed = "; ".join(f"{n}: {', '.join(v)}" for n, v in zip(names, values, strict=True))
        raise InputError(
            f"insurance_type {s[i]!r} at {_where(bad, case_id, offset)} belongs to no "
            f"pool (pools take {allowed}); fix the value or list it in "
            "pools.NAME.values"
        )
    return codes
