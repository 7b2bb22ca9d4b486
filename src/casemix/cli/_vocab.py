"""``--map FILE``: the one column-mapping option of every command (docs/cases.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def _read(ctx: click.Context, param: click.Parameter, value: Path | None) -> dict[str, str] | None:
    if value is None:
        return None
    from casemix.cases import read_mapping
    from casemix.errors import CasemixError

    try:
        return read_mapping(value)
    except CasemixError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def map_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--map FILE`` (passed to the command as ``mapping``: a dict or None)."""
    return click.option(
        "--map",
        "mapping",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        callback=_read,
        default=None,
        help="TOML file mapping your column names to casemix's: a [columns] table of "
        '"your column" = "canonical name" (docs/cases.md).',
    )(f)


def echo_notes(notes: Any) -> None:
    """Print the bad-value counts of a step (one line per reason)."""
    from casemix.cli._render import console

    for note in notes or ():
        console.print(f"note: {note}")
