"""``casemix report``: indicators, flags, settlement and pictures in one HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from casemix.cli._vocab import map_option

if TYPE_CHECKING:
    import polars as pl

    from casemix.weights import Weights


def load_grouped(path: Path, mapping: dict[str, str] | None = None):
    """A grouped CSV/Parquet file as polars, as read (names and text kept), and its
    ``hospital_level`` / ``hospital_id`` columns by the aliases of ``docs/cases.md``;
    it must have a ``drg`` column."""
    from casemix._frames import read_path
    from casemix.cases import canonical
    from casemix.errors import InputError

    df = read_path(path)
    try:
        c = canonical(df, mapping, need=("drg",), optional=("hospital_id", "hospital_level"), step="report")
    except InputError as e:
        if "'drg'" not in str(e):
            raise
        raise InputError(
            f"{path}: no 'drg' column; CASES must be grouped cases (run `casemix group` first)"
        ) from None
    return df, c.columns


@click.command()
@click.argument("cases", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, path_type=Path),
    help="Payment policy TOML; without it the report shows no settlement.",
)
@click.option(
    "--weights",
    "weights_path",
    type=click.Path(exists=True, path_type=Path),
    help="Weight table (CSV/Parquet with drg, rw); default: computed from CASES.",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("report"),
    show_default=True,
    help="Folder for index.html and its PNGs.",
)
@click.option(
    "--compare",
    "compare_path",
    type=click.Path(exists=True, path_type=Path),
    help="A second policy TOML: adds the what-if section (B − A per hospital).",
)
@click.option(
    "--scheme", default=None, help="Scheme whose Chinese DRG/ADRG/MDC names are shown (default: chs-drg-1.1)."
)
@click.option(
    "--period",
    default=None,
    help="Settlement period as stated in the report (default: from the discharge dates).",
)
@map_option
def report(
    cases: Path,
    policy_path: Path | None,
    weights_path: Path | None,
    out_dir: Path,
    compare_path: Path | None,
    scheme: str | None,
    period: str | None,
    mapping: dict[str, str] | None,
) -> None:
    """Write the payment report for grouped CASES (CSV or Parquet with a drg column).

    Computes weights (unless --weights), the settlement under --policy,
    the case-mix indicators and the monitoring flags, writes
    OUT/index.html with its pictures, the profit and loss by DRG and the
    outlier/readmission/special case lists (CSV and XLSX), and prints its
    path.  With --compare, the same cases are also settled under the second
    policy and the page shows what changes.
    """
    import polars as pl

    from casemix._frames import read_path
    from casemix.monitor import MonitorParams
    from casemix.report import build_report

    # bad input (CasemixError) becomes one 'Error:' line, exit 2, in casemix.cli
    df, columns = load_grouped(cases, mapping)
    weights: pl.DataFrame | Weights
    if weights_path is not None:
        weights = read_path(weights_path)
    else:
        from casemix.weights import compute_weights

        weights = compute_weights(df, mapping=mapping)
    settlement, params, compared = None, MonitorParams(), None
    if compare_path is not None and policy_path is None:
        from casemix.errors import InputError

        raise InputError("--compare needs --policy (the policy B is compared with)")
    if policy_path is not None:
        from casemix.budget import Policy
        from casemix.settle import settle

        policy = Policy.from_toml(policy_path)
        if "hospital_level" not in columns and "hospital_id" in columns and policy.hospital_levels:
            df = df.with_columns(
                hospital_level=pl.col(columns["hospital_id"])
                .cast(pl.String)
                .replace_strict(dict(policy.hospital_levels), default=None)
            )
        settlement = settle(df, policy, weights=weights, mapping=mapping)
        params = MonitorParams.from_policy(policy)
        if compare_path is not None:
            policy_b = Policy.from_toml(compare_path)
            df_b = df
            if "hospital_level" not in columns and "hospital_id" in columns and policy_b.hospital_levels:
                df_b = df.with_columns(
                    hospital_level=pl.col(columns["hospital_id"])
                    .cast(pl.String)
                    .replace_strict(dict(policy_b.hospital_levels), default=None)
                )
            compared = settle(df_b, policy_b, weights=weights, mapping=mapping)
    from casemix.scheme import DEFAULT_SCHEME

    index = build_report(
        df,
        weights,
        settlement,
        out_dir=out_dir,
        params=params,
        mapping=mapping,
        scheme=scheme or DEFAULT_SCHEME,
        policy_file=policy_path,
        compare=compared,
        compare_file=compare_path,
        period=period,
    )
    click.echo(str(index))
