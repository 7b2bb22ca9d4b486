"""``casemix group`` and ``casemix schemes``."""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from pathlib import Path

import click

from casemix.cli._io import bom_option, encoding_option, force_option, write_frame
from casemix.cli._vocab import map_option
from casemix.cli.dask_opts import dask_option
from casemix.io import PARQUET_CODECS, PARQUET_COMPRESSION
from casemix.scheme import DEFAULT_SCHEME


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Output file (.parquet, .csv or .xlsx): the input plus mdc, adrg, drg, severity, status, reason, warnings.",
)
@click.option(
    "--scheme",
    default=DEFAULT_SCHEME,
    show_default=True,
    help="Shipped scheme name (see `casemix schemes`) or a scheme folder.",
)
@click.option("--engine", type=click.Choice(["batch", "reference"]), default="batch", show_default=True)
@click.option(
    "--batch-size",
    default=262_144,
    show_default=True,
    help="Rows per batch, at most, when streaming Parquet to Parquet.",
)
@click.option(
    "--keep",
    default="all",
    show_default=True,
    help="Parquet output (and --dask): input columns copied to the output, 'all', 'none' or "
    "a comma-separated list (e.g. case_id,hospital_id); fewer is faster.",
)
@click.option(
    "--compression",
    type=click.Choice(PARQUET_CODECS),
    default=None,
    help=f"Parquet output codec [default: {PARQUET_COMPRESSION}]; zstd gives files about "
    "a third smaller for more CPU (docs/files.md).",
)
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@map_option
@dask_option
@encoding_option
@force_option
@bom_option
def group(
    input_path: Path,
    output: Path,
    scheme: str,
    engine: str,
    batch_size: int,
    keep: str,
    compression: str | None,
    quiet: bool,
    mapping: dict[str, str] | None,
    dask_spec: str | None,
    encoding: str | None,
    force: bool,
    bom: bool | None,
) -> None:
    """Group the cases in INPUT (Parquet or CSV) and write them with their DRGs."""
    import casemix
    from casemix.cli._render import alert, console, table
    from casemix.drg.summary import summarize

    if dask_spec and mapping:
        raise click.UsageError(
            "--map is not available with --dask yet; name the columns "
            "in the Parquet files as docs/cases.md lists them"
        )
    if compression is not None and not dask_spec and output.suffix.lower() not in (".parquet", ".pq"):
        raise click.UsageError("--compression applies to Parquet output (-o ending in .parquet)")
    kept = keep if keep in ("all", "none") else [c.strip() for c in keep.split(",")]
    if dask_spec:
        import polars as pl

        from casemix.cli.dask_opts import group_on_dask

        info = group_on_dask(
            input_path, output, scheme, engine, dask_spec, force=force, compression=compression, keep=kept
        )
        if quiet:
            return
        console.print(
            f"[bold]{info['rows']:,}[/] cases grouped on Dask ({info['partitions']} "
            f"partitions) in {info['seconds']:.2f} s "
            f"({info['rows'] / max(info['seconds'], 1e-9):,.0f} cases/s); "
            f"{info['grouped']:,} with a DRG → {info['output']}/"
        )
        ok = casemix.load_scheme(scheme).status["grouped"]
        failures = (
            info["counts"]
            .filter(pl.col("status") != ok)
            .group_by("status", "reason")
            .agg(pl.col("cases").sum())
            .sort("cases", descending=True)
        )
        if failures.height:
            table(failures, "Not grouped, by reason")
        return
    sch = casemix.load_scheme(scheme)
    alerts: list[str] = []
    start = time.perf_counter()
    streaming = (
        engine == "batch"
        and input_path.suffix.lower() in (".parquet", ".pq")
        and output.suffix.lower() in (".parquet", ".pq")
    )
    # a table file into Parquet: a CSV read, grouped and written in batches at once;
    # an Excel sheet read whole, its columns encoded while it is grouped
    to_parquet = engine == "batch" and output.suffix.lower() in (".parquet", ".pq")
    if kept != "all" and not to_parquet:
        raise click.UsageError("--keep applies to a Parquet output with --engine batch; drop it")
    if streaming or to_parquet:
        from casemix.drg.batch import group_csv, group_parquet, group_table
        from casemix.io import CSV, atomic_path, check_output

        check_output(output, force=force, inputs=[input_path])  # before reading the input
        frame = None
        csv = input_path.suffix.lower() in CSV
        if not streaming and not csv:
            from casemix._frames import read_path

            frame = read_path(input_path, encoding=encoding)
        with _low_rate_alerts(alerts), atomic_path(output, force=force, inputs=[input_path]) as part:
            if frame is not None:
                group_table(frame, part, sch, mapping=mapping, compression=compression, keep=kept)
            elif csv and not streaming:
                group_csv(
                    input_path,
                    part,
                    sch,
                    mapping=mapping,
                    encoding=encoding,
                    compression=compression,
                    keep=kept,
                )
            else:
                group_parquet(
                    input_path,
                    part,
                    sch,
                    batch_size=batch_size,
                    progress=not quiet and sys.stderr.isatty(),
                    keep=kept,
                    mapping=mapping,
                    compression=compression,
                )
        if quiet:
            return alert(*alerts)
        import polars as pl

        out = pl.read_parquet(output, columns=["drg", "mdc", "status", "reason"])
    else:
        from casemix.io import check_output

        check_output(output, force=force, inputs=[input_path])  # before the work, not after
        source: Path | pl.DataFrame = input_path
        if encoding:
            from casemix._frames import read_path

            source = read_path(input_path, encoding=encoding)
        with _low_rate_alerts(alerts):
            out = casemix.group(source, scheme=sch, engine=engine, mapping=mapping)
        write_frame(out, output, force=force, bom=bom, inputs=[input_path], compression=compression)
    if quiet:
        return alert(*alerts)
    elapsed = time.perf_counter() - start
    s = summarize(out, sch)
    console.print(
        f"[bold]{s.total:,}[/] cases grouped with {sch.id} in {elapsed:.2f} s "
        f"({s.total / max(elapsed, 1e-9):,.0f} cases/s); {s.grouped:,} with a DRG → {output}"
    )
    if s.failures.height:
        table(s.failures, "Not grouped, by reason")
    alert(*alerts)


@contextlib.contextmanager
def _low_rate_alerts(alerts: list[str]):
    """Collect low-grouping-rate warnings into ``alerts`` (shown last, in red); others as usual."""
    from casemix.errors import LowGroupingRateWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LowGroupingRateWarning)
        yield
    for w in caught:
        if issubclass(w.category, LowGroupingRateWarning):
            alerts.append(str(w.message))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


@click.command()
def schemes() -> None:
    """List the schemes shipped with casemix."""
    import casemix
    from casemix.cli._render import console

    for name in casemix.schemes():
        s = casemix.load_scheme(name)
        console.print(
            f"[bold]{name}[/]  {s.name} (version {s.version}): {len(s.mdcs)} MDC, "
            f"{sum(map(len, s.adrgs.values()))} ADRG, {sum(map(len, s.drgs.values()))} DRG"
        )
