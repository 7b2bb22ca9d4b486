"""Printing frames as rich tables (quiet-aware)."""

from __future__ import annotations

import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def alert(*messages: str | None) -> None:
    """Print each warning as a red line on stderr (shown even when quiet; None is skipped)."""
    for message in messages:
        if message:
            Console(stderr=True).print(f"[bold red]warning:[/] [red]{escape(message)}[/]", highlight=False)


def table(df: pl.DataFrame, title: str, *, percent: tuple[str, ...] = ("share",)) -> None:
    """Print a polars frame as a rich table; columns named in ``percent`` show as %."""
    t = Table(title=title, title_justify="left", header_style="bold")
    for name in df.columns:
        numeric = df.schema[name].is_numeric()
        t.add_column(name, justify="right" if numeric else "left")
    for row in df.iter_rows(named=True):
        t.add_row(*(f"{v:.1%}" if k in percent and isinstance(v, float) else _fmt(v) for k, v in row.items()))
    console.print(t)
