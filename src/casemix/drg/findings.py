"""Data-quality findings of grouping: the ``warnings`` column.

Findings never change a group (the golden files group cases with unknown
secondary codes normally); they tell the analyst what to look at.  Codes:

- the intake's own findings (``negative_cost``, ``negative_los``, ``malformed:<field>``, …)
- ``unknown_pdx:<code>``, ``unknown_sdx:<code>``, ``unknown_proc:<code>``: a code
  absent from the scheme's dictionaries (``diagnoses.csv`` / ``procedures.csv``)
"""

from __future__ import annotations

import polars as pl

from casemix.scheme.model import Scheme

SEPARATOR = ";"


def _unknown_codes(canonical: pl.DataFrame, column: str, known: pl.Series, label: str) -> pl.DataFrame:
    """(row, finding) for every code of ``column`` absent from ``known``.

    Exploding to one code per row and a hash ``is_in`` keeps this linear;
    unknown codes are rare, so what is kept is small.
    """
    codes = canonical.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"), pl.col(column).alias("code"))
    if isinstance(canonical.schema[column], pl.List):
        codes = codes.explode("code")
    return (codes.filter(pl.col("code").is_not_null() & ~pl.col("code").is_in(known.implode()))
            .select("row", (pl.lit(label + ":") + pl.col("code")).alias("finding")))


def warnings_column(canonical: pl.DataFrame, scheme: Scheme) -> pl.Series:
    """The ``warnings`` column for a canonical case frame: ``;``-joined codes, empty when none."""
    dx = pl.Series("dx", list(scheme.diagnoses), dtype=pl.String)
    px = pl.Series("px", list(scheme.procedures), dtype=pl.String)
    intake = (canonical.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"),
                               pl.col("intake_warnings").alias("finding"))
              .explode("finding").drop_nulls("finding"))
    found = pl.concat([
        intake,
        _unknown_codes(canonical, "pdx", dx, "unknown_pdx"),
        _unknown_codes(canonical, "sdx", dx, "unknown_sdx"),
        _unknown_codes(canonical, "pproc", px, "unknown_proc"),
        _unknown_codes(canonical, "oproc", px, "unknown_proc"),
    ])
    # order within a row: intake first, then pdx, sdx, procedures (the concat order)
    joined = found.with_row_index("order").sort("row", "order").group_by("row", maintain_order=True).agg(
        pl.col("finding").str.join(SEPARATOR))
    out = pl.DataFrame({"row": pl.int_range(canonical.height, dtype=pl.UInt32, eager=True)}).join(
        joined, on="row", how="left", maintain_order="left")
    return out["finding"].fill_null("").alias("warnings")
