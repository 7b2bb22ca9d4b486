"""``casemix report``: indicators, flags, settlement and pictures in one HTML page."""

from __future__ import annotations

from pathlib import Path

import click

# numeric columns a grouped CSV brings as text (read_path keeps codes as strings)
_NUMBERS = ("total_cost", "los", "discharge", "age", "age_days", "birth_weight", "year")


def load_grouped(path: Path):
    """A grouped CSV/Parquet file as polars, numbers typed; it must have a ``drg`` column."""
    import polars as pl

    from casemix._frames import read_path
    from casemix.errors import InputError

    df = read_path(path)
    if "drg" not in df.columns:
        raise InputError(f"{path}: no 'drg' column; CASES must be grouped cases "
                         "(run `casemix group` first)")
    casts = [pl.col(c).cast(pl.Int32 if c == "year" else pl.Float64, strict=False)
             for c in _NUMBERS if c in df.columns and df.schema[c] == pl.String]
    return df.with_columns(casts) if casts else df


@click.command()
@click.argument("cases", type=click.Path(exists=True, path_type=Path))
@click.option("--policy", "policy_path", type=click.Path(exists=True, path_type=Path),
              help="Payment policy TOML; without it the report shows no settlement.")
@click.option("--weights", "weights_path", type=click.Path(exists=True, path_type=Path),
              help="Weight table (CSV/Parquet with drg, rw); default: computed from CASES.")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), default=Path("report"),
              show_default=True, help="Folder for index.html and its PNGs.")
def report(cases: Path, policy_path: Path | None, weights_path: Path | None, out_dir: Path) -> None:
    """Write the payment report for grouped CASES (CSV or Parquet with a drg column).

    Computes weights (unless --weights), the settlement under --policy,
    the case-mix indicators and the monitoring flags, writes
    OUT/index.html with its pictures and prints its path.
    """
    import polars as pl

    from casemix._frames import read_path
    from casemix.monitor import MonitorParams
    from casemix.report import build_report

    # bad input (CasemixError) becomes one 'Error:' line, exit 2, in casemix.cli
    df = load_grouped(cases)
    if weights_path is not None:
        weights = read_path(weights_path)
    else:
        from casemix.weights import compute_weights

        weights = compute_weights(df)
    settlement, params = None, MonitorParams()
    if policy_path is not None:
        from casemix.budget import Policy
        from casemix.settle import settle

        policy = Policy.from_toml(policy_path)
        if "hospital_level" not in df.columns and policy.hospital_levels:
            df = df.with_columns(hospital_level=pl.col("hospital_id").cast(pl.String)
                                 .replace_strict(dict(policy.hospital_levels), default=None))
        settlement = settle(df, policy, weights=weights)
        params = MonitorParams.from_policy(policy)
    index = build_report(df, weights, settlement, out_dir=out_dir, params=params)
    click.echo(str(index))
