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


def _unknown(expr: pl.Expr, known: pl.Series, label: str) -> pl.Expr:
    # one list of "label:code" per row, vectorised (no Python loop per row)
    return expr.list.eval(
        pl.lit(label + ":") + pl.element().filter(~pl.element().is_in(known.implode()).fill_null(False))
    )


def warnings_column(canonical: pl.DataFrame, scheme: Scheme) -> pl.Series:
    """The ``warnings`` column for a canonical case frame: ``;``-joined codes, empty when none."""
    dx = pl.Series("dx", list(scheme.diagnoses), dtype=pl.String)
    px = pl.Series("px", list(scheme.procedures), dtype=pl.String)
    pdx_list = pl.concat_list(pl.col("pdx")).list.drop_nulls()
    pproc_list = pl.concat_list(pl.col("pproc")).list.drop_nulls()
    parts = canonical.select(
        pl.concat_list(
            pl.col("intake_warnings"),
            _unknown(pdx_list, dx, "unknown_pdx"),
            _unknown(pl.col("sdx"), dx, "unknown_sdx"),
            _unknown(pl.concat_list(pproc_list, pl.col("oproc")), px, "unknown_proc"),
        ).list.join(SEPARATOR).fill_null("").alias("warnings")
    )
    return parts.to_series()
