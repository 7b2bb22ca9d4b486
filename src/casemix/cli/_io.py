"""Writing result frames from the command line."""

from __future__ import annotations

from pathlib import Path

import click
import polars as pl


def write_frame(df: pl.DataFrame, path: Path) -> None:
    """Write ``df`` as Parquet or CSV, chosen by the file's suffix.

    CSV has no lists: code lists go back to the ``|``-separated layout
    ``read_cases`` reads.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        df.write_parquet(path)
    elif path.suffix.lower() == ".csv":
        df.with_columns(pl.col(c).list.join("|") for c, t in df.schema.items()
                        if isinstance(t, pl.List)).write_csv(path)
    else:
        raise click.BadParameter(f"output must end in .parquet or .csv, got {path.name}", param_hint="-o")
