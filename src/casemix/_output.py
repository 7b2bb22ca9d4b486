"""Summary tables (one row per group, hospital, region) in the caller's frame type.

``casemix._frames.like`` keeps the caller's index, which only fits per-case
frames; summary tables have their own rows, so they get a fresh index.
"""

from __future__ import annotations

import polars as pl

from casemix._frames import FrameLike, kind_of


def summary_like(result: pl.DataFrame, original: FrameLike) -> FrameLike:
    """``result`` as pandas / Arrow when ``original`` is, else polars."""
    kind = kind_of(original)
    if kind == "pandas":
        return result.to_pandas()
    if kind == "arrow":
        return result.to_arrow()
    return result
