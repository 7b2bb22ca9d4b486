"""Grouping per partition: ``casemix.group`` as a pure frame → frame map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

#: dtype of the String columns grouping adds, as Dask itself stores strings
STRING = pd.StringDtype("pyarrow")


def _limit_numba_threads(n: int | None) -> None:
    if not n:
        return
    import numba

    # per calling thread: a Dask worker thread runs the kernel on n threads at most
    # numba.config sets its attributes from the environment at import: no stub knows them
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]


def group_partition(
    part: pd.DataFrame,
    scheme: Any,
    engine: str,
    mapping: dict[str, str] | None,
    numba_threads: int | None,
    dtypes: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Group one pandas partition; the added columns get one fixed dtype.

    ``casemix.group`` returns Python strings for a non-empty frame and
    objects (or an all-null integer column) for an empty one; Dask needs
    every partition to match ``meta`` exactly, so added text columns are
    cast to ``string[pyarrow]`` and, given ``dtypes`` (those of ``meta``),
    every added column to its dtype there.
    """
    import casemix

    if engine == "batch":
        _limit_numba_threads(numba_threads)
    before = set(part.columns)
    out = casemix.group(part, scheme=scheme, engine=engine, mapping=mapping)
    for name in out.columns:
        if name not in before and (out[name].dtype == object or pd.api.types.is_string_dtype(out[name])):
            out[name] = out[name].astype(STRING)
    if dtypes:
        out = out.astype({c: t for c, t in dtypes.items() if c not in before and c in out.columns})
    return out


def scheme_arg(scheme: Any) -> Any:
    """A name or folder travels as text (each worker loads and caches it);
    a loaded object becomes one shared graph key instead of a copy per task."""
    if isinstance(scheme, (str, Path)):
        return str(scheme)
    import dask

    return dask.delayed(scheme, pure=True)
