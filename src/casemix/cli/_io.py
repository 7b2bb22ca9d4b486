"""Files on the command line: the shared ``--encoding``, ``--force``, ``--bom`` options
and the one writer every command uses.

Rules (``docs/files.md``): every output is written to a temporary file beside
the target and renamed on success, so a failure or Ctrl-C leaves no partial
file; an existing output is replaced only with ``--force``; an output that
is one of the command's inputs is refused.  CSV outputs start with a UTF-8
BOM with ``--bom`` (tables for people — summaries, lists — have one by
default; machine tables do not).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click
import polars as pl

F = Callable[..., Any]


def encoding_option(f: F) -> F:
    """``--encoding``: the text encoding of CSV inputs (detected when absent)."""
    return click.option(
        "--encoding",
        default=None,
        metavar="NAME[:replace]",
        help="Encoding of CSV input (default: detected — UTF-8, UTF-8 with BOM, GBK/GB18030). "
        "NAME:replace replaces undecodable bytes and counts them instead of stopping.",
    )(f)


def force_option(f: F) -> F:
    """``--force``: replace outputs that exist."""
    return click.option(
        "--force",
        is_flag=True,
        help="Overwrite output files that exist (without it an existing output "
        "is an error). Writing over an input is always refused.",
    )(f)


def bom_option(f: F) -> F:
    """``--bom``: a UTF-8 BOM at the start of CSV outputs."""
    return click.option(
        "--bom",
        is_flag=True,
        default=None,
        help="Start CSV output with a UTF-8 BOM, so Excel shows Chinese text "
        "(tables for people have one by default).",
    )(f)


def write_frame(
    df: pl.DataFrame,
    path: Path,
    *,
    force: bool = False,
    bom: bool | None = None,
    human: bool = False,
    inputs: Iterable[Path | str | None] = (),
    compression: str | None = None,
) -> Path:
    """Write ``df`` by its suffix (.parquet, .csv, .tsv, .xlsx): :func:`casemix.io.write_table`.

    CSV and Excel have no lists: code lists go back to the ``|``-separated
    layout ``read_cases`` reads.
    """
    from casemix.io import write_table

    return write_table(df, path, force=force, bom=bom, human=human, inputs=inputs, compression=compression)
