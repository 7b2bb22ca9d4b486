"""``casemix check FILE``: per hospital, what to look at before settling money on the data."""

from __future__ import annotations

from pathlib import Path

import click

from casemix.cli._vocab import map_option
from casemix.scheme import DEFAULT_SCHEME

#: screen headers of the per-hospital columns (``casemix.check.COLUMNS``), so the table fits
_SHORT = (
    "hospital",
    "rows",
    "grouped",
    "rate",
    "invalid",
    "no group",
    "unknown",
    "grey pdx",
    "grey proc",
    "malformed",
    "no pdx",
    "no cost",
    "cost<0",
    "dup id",
)


@click.command()
@click.argument("input_path", metavar="FILE", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--scheme",
    default=DEFAULT_SCHEME,
    show_default=True,
    help="Scheme the data will be grouped with (name or folder).",
)
@click.option("--top", default=10, show_default=True, help="Unknown / grey codes listed per hospital.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Also write the check: .xlsx (a sheet per table), .json, or .csv "
    "(hospitals; the other tables beside it).",
)
@map_option
def check(
    input_path: Path, scheme: str, top: int, output: Path | None, mapping: dict[str, str] | None
) -> None:
    """Check the cases in FILE (Parquet or CSV) per hospital before settling on them.

    Rows, grouping rate, invalid and ungroupable cases, unknown and grey
    (灰码) codes, unreadable fields, missing principal diagnoses, missing or
    negative costs, duplicate case ids.  Nothing is changed or dropped.
    """
    import polars as pl

    from casemix.check import ALL
    from casemix.check import check as run_check
    from casemix.cli._render import alert, console, table
    from casemix.drg.summary import LOW_RATE

    report = run_check(input_path, scheme=scheme, top=top, mapping=mapping)
    total = report.total
    console.print(
        f"[bold]{input_path.name}[/]: {total['rows']:,} cases, "
        f"{report.hospitals.height - 1} hospital(s), scheme {report.scheme}; "
        f"{total['grouped']:,} grouped ({total['grouping_rate']:.1%})"
    )
    short = dict(zip(report.hospitals.columns, _SHORT, strict=True))
    table(
        report.hospitals.rename(short),
        "Per hospital (last row: the whole file; columns in docs/check.md)",
        percent=("rate",),
    )
    everywhere = pl.col("hospital_id") == ALL
    for name, title in (
        ("unknown_codes", "Most frequent unknown codes (whole file)"),
        ("grey_codes", "Most frequent grey principal codes 灰码 (whole file)"),
        ("malformed", "Unreadable fields (whole file)"),
    ):
        df = report.tables()[name].filter(everywhere).drop("hospital_id")
        if df.height:
            table(df, title)
    low = report.hospitals.filter(pl.col("grouping_rate") < LOW_RATE)
    for row in low.iter_rows(named=True):
        alert(
            f"{row['hospital_id']}: only {row['grouped']:,} of {row['rows']:,} cases grouped "
            f"({row['grouping_rate']:.1%}) by {report.scheme}; see the unknown codes"
        )
    if total["missing_cost"]:
        alert(f"{total['missing_cost']:,} case(s) have no total cost: settlement cannot price them")
    if output is not None:
        for path in report.write(output):
            console.print(f"check → {path}")
