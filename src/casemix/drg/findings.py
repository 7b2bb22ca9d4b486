"""Data-quality findings of grouping: the ``warnings`` column.

Findings never change a group (the golden files group cases with unknown
secondary codes normally); they tell the analyst what to look at.  Codes:

- the intake's own findings (``negative_cost``, ``negative_los``, ``malformed:<field>``, …)
- ``unknown_pdx:<code>``, ``unknown_sdx:<code>``, ``unknown_proc:<code>``: a code
  absent from the scheme's dictionaries (``diagnoses.csv`` / ``procedures.csv``)
- ``grey_pdx:<code>``, ``grey_pproc:<code>``: a principal diagnosis / procedure
  in the scheme's grey list (灰码, ``[grey]`` of ``scheme.toml``), a code the
  医保版 does not accept as principal; the group is what the scheme's rules
  say (a scheme that wants such cases invalid says so in a validity check)
"""

from __future__ import annotations

import polars as pl

from casemix.scheme.model import Scheme

SEPARATOR = ";"


def _unknown_codes(
    canonical: pl.DataFrame, column: str, known: pl.Series, label: str, *, member: bool = False
) -> pl.DataFrame:
    """(row, finding) for every code of ``column`` absent from ``known`` (in it, if ``member``).

    Exploding to one code per row and a hash ``is_in`` keeps this linear;
    unknown codes are rare, so what is kept is small.
    """
    codes = canonical.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"), pl.col(column).alias("code")
    )
    if isinstance(canonical.schema[column], pl.List):
        codes = codes.explode("code")
    found = pl.col("code").is_in(known.implode())
    return codes.filter(pl.col("code").is_not_null() & (found if member else ~found)).select(
        "row", (pl.lit(label + ":") + pl.col("code")).alias("finding")
    )


def warnings_column(canonical: pl.DataFrame, scheme: Scheme) -> pl.Series:
    """The ``warnings`` column for a canonical case frame: ``;``-joined codes, empty when none."""
    dx = pl.Series("dx", list(scheme.diagnoses), dtype=pl.String)
    px = pl.Series("px", list(scheme.procedures), dtype=pl.String)
    intake = (
        canonical.select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"), pl.col("intake_warnings").alias("finding")
        )
        .explode("finding")
        .drop_nulls("finding")
    )
    found = pl.concat(
        [
            intake,
            _unknown_codes(canonical, "pdx", dx, "unknown_pdx"),
            _unknown_codes(canonical, "sdx", dx, "unknown_sdx"),
            _unknown_codes(canonical, "pproc", px, "unknown_proc"),
            _unknown_codes(canonical, "oproc", px, "unknown_proc"),
            *(
                _unknown_codes(
                    canonical,
                    target,
                    pl.Series(list(scheme.lists[name]), dtype=pl.String),
                    f"grey_{target}",
                    member=True,
                )
                for target, name in sorted(scheme.grey.items())
            ),
        ]
    )
    # order within a row: intake first, then pdx, sdx, procedures, grey pdx, grey pproc
    # (the concat order)
    joined = (
        found.with_row_index("order")
        .sort("row", "order")
        .group_by("row", maintain_order=True)
        .agg(pl.col("finding").str.join(SEPARATOR))
    )
    out = pl.DataFrame({"row": pl.int_range(canonical.height, dtype=pl.UInt32, eager=True)}).join(
        joined, on="row", how="left", maintain_order="left"
    )
    return out["finding"].fill_null("").alias("warnings")


def count_findings(
    warnings: pl.Series, kinds: tuple[str, ...], *, by: pl.Series | None = None
) -> pl.DataFrame:
    """How many rows carry each ``kind:value`` finding of the given kinds.

    Parameters
    ----------
    warnings
        A ``warnings`` column (``;``-joined findings).
    kinds
        Finding kinds to count, e.g. ``("unknown_pdx", "unknown_proc")``.
    by
        Optional per-row key of the same length (e.g. the hospital): counts
        are then per key, the key's column first.

    Returns
    -------
    polars.DataFrame
        (``by``'s column,) ``kind``, ``code`` and ``cases`` (rows with that
        finding, a row counted once per distinct finding), most frequent
        first, ties by key, kind and code.
    """
    keys = [] if by is None else [by.name]
    frame = pl.DataFrame(
        {
            "row": pl.int_range(warnings.len(), dtype=pl.UInt32, eager=True),
            "f": warnings.fill_null("").str.split(SEPARATOR),
        }
    )
    if by is not None:
        frame = frame.with_columns(by)
    parts = (
        frame.explode("f")
        .filter(pl.col("f").str.contains(":", literal=True))
        .with_columns(pl.col("f").str.splitn(":", 2).struct.rename_fields(["kind", "code"]))
        .unnest("f")
        .filter(pl.col("kind").is_in(list(kinds)))
    )
    return (
        parts.unique(["row", "kind", "code"])
        .group_by(*keys, "kind", "code")
        .len("cases")
        .sort(
            ["cases", *keys, "kind", "code"], descending=[True, *[False] * (len(keys) + 2)], nulls_last=True
        )
        .select(*keys, "kind", "code", "cases")
    )
