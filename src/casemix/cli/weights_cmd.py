"""``casemix weights``: compute weights from a cost history, or import a city's table.

``casemix weights HISTORY -o FILE`` keeps working: a first argument that is
not a sub-command name runs ``compute`` (the command of
:mod:`casemix.cli.settle_cmd`).
"""

from __future__ import annotations

from pathlib import Path

import click

from casemix.cli._io import bom_option, encoding_option, force_option
from casemix.cli.settle_cmd import weights as compute


class _DefaultGroup(click.Group):
    """A group whose first argument, when not a sub-command, goes to ``compute``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["compute", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultGroup)
def weights() -> None:
    """Relative weights: `casemix weights HISTORY -o FILE` computes them from a grouped
    cost history (same as `weights compute`); `casemix weights import TABLE -o FILE`
    imports a city's published DRG table."""


weights.add_command(compute, name="compute")


@weights.command("import")
@click.argument("table_path", metavar="TABLE", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Weight table to write (.csv, .xlsx or .parquet): drg, rw, name, flags, "
    "published standards, rates and coefficients.",
)
@click.option(
    "--mismatches",
    "mismatch_path",
    type=click.Path(path_type=Path),
    help="Also write every row whose 支付标准 ≠ RW × 费率 × 系数 to this file.",
)
@click.option("--sheet", default=None, help="Excel sheet name (default: the first sheet).")
@encoding_option
@force_option
@bom_option
@click.option("--quiet", is_flag=True, help="Print nothing.")
def import_table(
    table_path: Path,
    output: Path | None,
    mismatch_path: Path | None,
    sheet: str | None,
    encoding: str | None,
    force: bool,
    bom: bool,
    quiet: bool,
) -> None:
    """Import a city's published DRG TABLE (CSV in UTF-8 or GBK, Excel, Parquet).

    Prints what was recognised (RW, 支付标准, 费率, 等级系数 per pool and level, flags),
    the rates, the rows whose 支付标准 does not match RW × 费率 × 系数, the rows left
    out of the weights and the columns not recognised.
    """
    from casemix.io import write_table
    from casemix.payment.city_tables import read_city_table

    city = read_city_table(table_path, encoding=encoding, sheet=sheet)
    w = city.to_weights()
    if output is not None:
        write_table(w.table, output, force=force, bom=bom, inputs=[table_path])
    if mismatch_path is not None:
        write_table(city.mismatches, mismatch_path, force=force, bom=bom, inputs=[table_path, output])
    if quiet:
        return
    _print_import(city, w, output)


def _print_import(city, w, output: Path | None) -> None:
    import polars as pl

    from casemix.cli._render import console, table

    c = city.counts()
    enc = f" ({city.encoding})" if city.encoding else ""
    dest = f" → {output}" if output is not None else ""
    console.print(
        f"[bold]{city.path.name}[/]{enc}: {c['rows']:,} rows, {c['rw']:,} with a "
        f"positive RW → {w.table.height:,} DRG weights{dest}"
    )
    table(
        pl.DataFrame(
            {
                "header": [h.header for h in city.headers if h.role],
                "read as": [h.column for h in city.headers if h.role],
            }
        ),
        "Recognised columns",
    )
    flags = {
        k: c[k]
        for k in (
            "base_group",
            "same_rate",
            "special_review",
            "stable",
            "unstable",
            "uncovered",
            "tcm_advantage",
            "volume_control",
        )
        if c[k]
    }
    if flags:
        console.print("flags: " + ", ".join(f"{k} {v:,}" for k, v in flags.items()))
    if city.rates or city.coefficients:
        console.print(
            "published: " + ", ".join(f"{k} = {v:g}" for k, v in {**city.rates, **city.coefficients}.items())
        )
    if city.implied_rates:
        console.print(
            "implied rates (not published; the rate most rows agree with): "
            + ", ".join(f"{k} {v:,.4f}" for k, v in city.implied_rates.items())
        )
    if c["checked"]:
        console.print(
            f"支付标准 vs RW × 费率 × 系数: {c['checked']:,} checked, "
            f"{c['mismatches']:,} mismatch(es) beyond the published rounding"
        )
    if c["mismatches"]:
        table(
            city.mismatches.head(20).select(
                "drg",
                "header",
                "rw",
                pl.col("rate").round(4),
                "coefficient",
                "standard",
                pl.col("expected").round(2),
                pl.col("difference").round(2),
            ),
            f"Mismatches (first {min(20, c['mismatches'])} of {c['mismatches']})",
        )
    ex = w.quality["excluded"]
    if ex["no_positive_rw"]:
        notes = city.table.filter(pl.col("rw_note").is_not_null())["rw_note"].unique().to_list()
        console.print(
            f"left out of the weights, no positive RW: {len(ex['no_positive_rw']):,} "
            f"({', '.join(ex['no_positive_rw'][:8])}{' …' if len(ex['no_positive_rw']) > 8 else ''})"
            + (f"; RW cells read as text: {', '.join(notes)}" if notes else "")
        )
    if ex["repeated_drg"]:
        console.print(f"[bold]repeated DRG code(s)[/], first row kept: {', '.join(ex['repeated_drg'])}")
    for column, cells in w.quality["text_cells"].items():
        shown = ", ".join(f"{drg} {text!r}" for drg, text in list(cells.items())[:8])
        console.print(
            f"[bold]text that is no number[/] in {column}, null in the weights: {len(cells):,} "
            f"({shown}{' …' if len(cells) > 8 else ''})"
        )
    for header, values in city.problems.get("unreadable_values", {}).items():
        console.print(f"[bold]unreadable values[/] in {header}: {', '.join(map(repr, values))}")
    console.print("unrecognised columns: " + (", ".join(city.unrecognised) or "none"))
