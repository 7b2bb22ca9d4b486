"""Input order across a shuffle: number the rows, then bring per-row results home.

A step that must see rows of one hospital (or person) together shuffles
them away from their input partitions.  Each row first gets a key
``_gkey = partition << 32 | row in partition``: sorting by it restores
input order anywhere, and ``set_index`` on it with the boundaries
``partition << 32`` sends every result row back to the partition it came
from, so results can be attached to the input partitions as they stand.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from casemix.errors import InputError

KEY = "_gkey"
SHIFT = 32  # up to 4 billion rows per partition


def keys(partition: int, n: int) -> np.ndarray:
    """The keys of the ``n`` rows of input partition ``partition``."""
    return np.arange(n, dtype=np.int64) + (int(partition) << SHIFT)


def partition_of(key: np.ndarray) -> np.ndarray:
    """The input partition of each key."""
    return np.asarray(key, dtype=np.int64) >> SHIFT


def optimised(ddf: Any) -> Any:
    """``ddf`` optimised once, with Dask's partition tuning off.

    An optimised frame keeps its partitions between the pass that numbers the rows and the
    pass that attaches the results.  Tuning would fuse the files of a column-projected
    Parquet dataset into fewer, larger, uneven partitions (20 files of 1M cases read for 8 of
    27 columns: 5 partitions, 3 on one worker and 2 on the other); the partitions as given are
    what the workers share out, one task each per pass.
    """
    import dask

    with dask.config.set({"optimization.tune.active": False}):
        return ddf.optimize()


def home(results: Any, nparts: int) -> Any:
    """``results`` (a Dask frame with a ``_gkey`` column, in any partitions) indexed by the
    key and split at the boundaries of the ``nparts`` input partitions."""
    bounds = [j << SHIFT for j in range(nparts)] + [((nparts - 1) << SHIFT) + (1 << SHIFT) - 1]
    return results.set_index(KEY, divisions=tuple(bounds))


def no_views(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its Arrow ``string_view`` columns as ``large_string``.

    Dask copies a frame's meta with ``pyarrow.compute.take``, which has no kernel for
    ``string_view`` (the type polars writes its text in, e.g. ``casemix group``'s Parquet
    output): a result frame with such a column could not be built.
    """
    views = [
        c
        for c, t in frame.dtypes.items()
        if isinstance(t, pd.ArrowDtype) and t.pyarrow_dtype == pa.string_view()
    ]
    if not views:
        return frame
    out = frame.copy(deep=False)
    for c in views:  # by pyarrow: pandas cannot cast from string_view
        text = pa.array(frame[c].array).cast(pa.large_string())
        out[c] = pd.Series(pd.arrays.ArrowExtensionArray(text), index=frame.index, name=c)
    return out


def attach(part: pd.DataFrame, res: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The input partition with the result columns of its own rows (``res`` from :func:`home`);
    ``string_view`` input columns as ``large_string`` (:func:`no_views`)."""
    if len(part) != len(res):
        raise InputError(f"internal: {len(res)} result rows for a partition of {len(part)} rows")
    out = no_views(part.copy(deep=False))
    for c in columns:
        out[c] = res[c].values
    return out
