"""``--dask SPEC`` for ``casemix group`` and ``casemix settle``: Parquet datasets on a Dask cluster.

``SPEC`` is ``local:N`` (a LocalCluster of N worker processes on this
machine, started and stopped by the command), ``tcp://HOST:PORT`` (the
scheduler of a running cluster) or ``threads:N`` (Dask's threaded scheduler
in this process, no cluster: the fastest on one machine).  Input is a Parquet file, a folder of
Parquet files (a dataset) or a CSV file; output is a folder of Parquet
files, written partition by partition: the data are never gathered in one
process.  See ``docs/dask.md``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

__all__ = ["dask_option", "group_on_dask", "read_dataset", "settle_on_dask", "write_dataset"]

HELP = (
    "Run on Dask: local:N (N worker processes here), tcp://HOST:PORT (a running "
    "scheduler) or threads:N (N threads in this process).  Input a Parquet file or "
    "folder; output a folder of Parquet files."
)


def dask_option(f: Callable) -> Callable:
    """The ``--dask SPEC`` click option (parameter name ``dask_spec``, default None)."""
    return click.option("--dask", "dask_spec", default=None, metavar="SPEC", help=HELP)(f)


@contextmanager
def _connect(spec: str) -> Iterator[Any]:
    from casemix.dask import connect
    from casemix.errors import InputError

    try:
        session = connect(spec)
    except InputError as exc:
        raise click.BadParameter(str(exc), param_hint="--dask") from None
    with session, warnings.catch_warnings():
        # dask's Parquet reader calls reset_index(inplace=True), which pandas 3.1 deprecates:
        # no concern of the user's, and with threads:N it would be printed here
        warnings.filterwarnings("ignore", message="The inplace keyword in DataFrame.reset_index")
        yield session


def read_dataset(path: str | Path, *, blocksize: str = "128MiB") -> Any:
    """A lazy Dask DataFrame over a Parquet file or folder, or a CSV file (read as text).

    CSV columns stay text so that codes keep their leading zeros; intake
    parses the numbers (as ``casemix.read_cases`` does for in-memory CSV).
    """
    import dask.dataframe as dd

    from casemix.errors import InputError

    p = Path(path)
    if not p.exists():
        raise InputError(f"input not found: {p}")
    if p.is_dir() or p.suffix.lower() in (".parquet", ".pq"):
        # Arrow-backed columns: list columns keep a real type (object columns of arrays would
        # give to_parquet no schema to write), and reach polars without a copy
        return dd.read_parquet(str(p), dtype_backend="pyarrow")
    if p.suffix.lower() in (".csv", ".txt"):
        from casemix.io import detect_encoding

        # the in-memory rule (UTF-8, BOM, GBK read as GB18030); a GB18030 trail byte is never
        # a newline, so Dask's blocks still split on whole lines
        enc = "utf-8-sig" if (e := detect_encoding(p)) == "utf_8" else e
        return dd.read_csv(
            str(p),
            dtype=str,
            blocksize=blocksize,
            keep_default_na=False,
            na_values=[""],
            dtype_backend="pyarrow",
            encoding=enc,
        )
    raise InputError(f"{p}: use a Parquet file or folder (or a .csv file) with --dask")


def _write_part(part: Any, folder: str, codec: dict, partition_info: dict | None = None) -> Any:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    i = partition_info["number"] if partition_info else 0
    # no pandas metadata: Arrow-backed list dtypes in it do not read back into pandas
    table = pa.Table.from_pandas(part, preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, Path(folder) / f"part.{i:05d}.parquet", **codec)
    return pd.DataFrame({"rows": [len(part)]})


def write_dataset(ddf: Any, folder: str | Path, *, compression: str | None = None) -> int:
    """Write each partition to ``folder/part.NNNNN.parquet`` (old parts removed); return the rows.

    Every worker writes its own partitions; nothing is gathered.  The folder
    must be reachable by all workers (a shared file system) on a multi-node
    cluster.  ``compression``: one of :data:`casemix.io.PARQUET_CODECS`
    (``None``: :data:`casemix.io.PARQUET_COMPRESSION`).
    """
    import pandas as pd

    from casemix.io import parquet_options

    codec = parquet_options(compression)

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("part.*.parquet"):
        old.unlink()
    meta = pd.DataFrame({"rows": pd.Series([], dtype="int64")})
    counts = ddf.map_partitions(_write_part, str(out.resolve()), codec, meta=meta).compute()
    return int(counts["rows"].sum())


def _out_folder(
    output: Path,
    inputs: tuple[Path | None, ...] = (),
    force: bool = False,
    written: tuple[str, ...] = ("part.*.parquet",),
) -> Path:
    """The output folder, checked before any work: never the input, never inside it or
    around it (old parts are deleted before writing), and replaced only with ``force``."""
    from casemix.errors import InputError

    if output.suffix.lower() == ".csv":
        raise click.BadParameter(
            "with --dask the output is a folder of Parquet files, not a CSV file", param_hint="-o"
        )
    out = output.resolve()
    for given in inputs:
        if given is None:
            continue
        src = Path(given).resolve()
        if src == out or src.is_relative_to(out) or out.is_relative_to(src):
            raise InputError(
                f"{output}: the output folder is, holds or lies inside the input "
                f"{given}; writing it would destroy the input. Choose another folder"
            )
    found = [p for pattern in written for p in output.glob(pattern)]
    if found and not force:
        raise InputError(f"{output} already holds output ({found[0].name}, …); pass --force to overwrite it")
    return output


def group_on_dask(
    input_path: Path,
    output: Path,
    scheme: str,
    engine: str,
    spec: str,
    *,
    force: bool = False,
    compression: str | None = None,
    keep: str | list[str] = "all",
) -> dict:
    """Group INPUT on Dask into the Parquet folder OUTPUT; return counts for the summary.

    ``keep`` (``--keep``): the input columns each part keeps beside the
    result columns, ``"all"``, ``"none"`` or a list of names, as for
    ``group_parquet``; a name the input lacks is an ``InputError`` raised
    before any grouping.

    Returns
    -------
    dict
        ``rows``, ``grouped`` (cases whose status is the scheme's "grouped"),
        ``seconds``, ``partitions``, ``output`` and ``counts``: a small
        polars frame ``status``, ``reason``, ``mdc``, ``drg``, ``cases``
        (one row per distinct combination, most frequent first), counted on
        the cluster from the written output.
    """
    import dask.dataframe as dd
    import polars as pl

    import casemix
    import casemix.dask as cd

    out = _out_folder(output, (input_path,), force)
    sch = casemix.load_scheme(scheme)
    start = time.perf_counter()
    with _connect(spec):
        ddf = read_dataset(input_path)
        grouped = cd.group(ddf, scheme=scheme, engine=engine)
        if keep != "all":
            grouped = grouped[_kept_layout(list(ddf.columns), keep, input_path)]
        write_dataset(grouped, out, compression=compression)
        keys = ["status", "reason", "mdc", "drg"]
        sizes = (
            dd.read_parquet(str(out), columns=keys, dtype_backend="pyarrow")
            .fillna("")
            .groupby(keys)
            .size()
            .compute()
        )
    counts = (
        pl.from_pandas(sizes.rename("cases").reset_index())
        .with_columns(pl.col(*keys).cast(pl.String), pl.col("cases").cast(pl.Int64))
        .sort("cases", *keys, descending=[True, False, False, False, False])
    )
    grouped = counts.filter(pl.col("status") == sch.status["grouped"])["cases"].sum()
    return {
        "rows": int(counts["cases"].sum()),
        "grouped": int(grouped),
        "seconds": time.perf_counter() - start,
        "partitions": ddf.npartitions,
        "counts": counts,
        "output": out,
    }


def _kept_layout(names: list[str], keep: str | list[str], source: Path) -> list[str]:
    """The output columns for ``--keep``: the kept input columns, then the result columns.

    The layout of ``group_parquet(keep=...)``: a result column named like a
    kept one takes its place.
    """
    from casemix.drg import RESULT_COLUMNS
    from casemix.drg.batch import kept_columns, output_columns

    return output_columns(kept_columns(names, keep, str(source)), RESULT_COLUMNS)


def settle_on_dask(
    cases_path: Path,
    output: Path,
    policy: Any,
    spec: str,
    *,
    weights_path: Path | None = None,
    points: str | None = None,
    group_col: str = "drg",
    fmt: str = "parquet",
    force: bool = False,
    base_volume: Path | None = None,
    mapping: dict[str, str] | None = None,
) -> tuple[Any, dict[str, Path]]:
    """Settle grouped CASES on Dask; cases to ``OUTPUT/cases/`` (Parquet), tables beside them.

    ``hospitals``, ``region``, the pool tables and, with ``[monthly] enabled``,
    ``monthly`` and ``annual`` (small) are written as ``OUTPUT/<name>.<fmt>``;
    ``mapping`` names your columns (``--map``).  Returns the settlement (its ``cases`` replaced by
    the path of the written folder, the cluster being gone) and the paths.
    """
    import dataclasses

    import polars as pl

    import casemix.dask as cd
    from casemix._frames import read_path
    from casemix.io import write_table

    out = _out_folder(
        output,
        (cases_path, weights_path),
        force,
        (
            "cases/part.*.parquet",
            f"hospitals.{fmt}",
            f"region.{fmt}",
            f"pool_hospitals.{fmt}",
            f"pool_region.{fmt}",
            f"monthly.{fmt}",
            f"annual.{fmt}",
        ),
    )
    out.mkdir(parents=True, exist_ok=True)
    w = read_path(weights_path) if weights_path else None
    with _connect(spec):
        ddf = read_dataset(cases_path)
        s = cd.settle(
            ddf,
            policy,
            weights=w,
            points=points,
            group_col=group_col,
            base_volume=base_volume,
            mapping=mapping,
        )
        cases_dir = out / "cases"
        write_dataset(s.cases, cases_dir)
    paths = {"cases": cases_dir}
    for name in ("hospitals", "region", "pool_hospitals", "pool_region", "monthly", "annual"):
        if getattr(s, name) is None:
            continue
        frame = pl.from_pandas(getattr(s, name))
        path = out / f"{name}.{fmt}"
        paths[name] = write_table(frame, path, force=True)  # checked above, before the work
    return dataclasses.replace(s, cases=cases_dir), paths
