"""``casemix weights`` and ``casemix settle``."""

from __future__ import annotations

from pathlib import Path

import click

from casemix.cli._io import bom_option, encoding_option, force_option, write_frame
from casemix.cli._vocab import echo_notes, map_option
from casemix.cli.dask_opts import dask_option


def policy_of(value: str):
    """The policy of ``--policy``: a TOML file, or the name of a shipped policy."""
    from casemix.budget import Policy, shipped_policy

    p = Path(value)
    return Policy.from_toml(p if p.exists() or p.suffix == ".toml" else shipped_policy(value))


def print_settlement(s) -> None:
    """Print a settlement: the per-hospital table in yuan, the point values per pool, the outlay.

    ``casemix demo`` calls this with ``casemix.settle.run_demo_settlement(grouped)``.
    A failed budget check never reaches here: the settlement raises it as an error.
    """
    from casemix._frames import to_polars
    from casemix.cli._render import console, table

    r = to_polars(s.region).row(0, named=True)
    table(s.summary(), f"Settlement per hospital under {s.policy.name!r} (yuan)", percent=("surplus_share",))

    def pv(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.4f}"

    pools = to_polars(s.pool_region) if s.pool_region is not None else None
    for p in pools.iter_rows(named=True) if pools is not None else []:
        check = (
            "fund paid + retained = budget, exact to the fen"
            if p["budget_check"]
            else "rate method: outlay is an outcome"
        )
        console.print(
            f"pool {p['pool']}: point value base {pv(p['pv_base'])}, floating "
            f"{pv(p['pv_floating'])}, final {pv(p['pv_final'])} yuan/point; budget "
            f"{p['budget_fen'] / 100:,.2f}, fund paid {p['fund_fen'] / 100:,.2f}, retained "
            f"{p['retained_fen'] / 100:,.2f} ({check}); patients {p['patient_fen'] / 100:,.2f}; "
            f"after corridors the fund pays {p['fund_outlay_fen'] / 100:,.2f}"
        )
    console.print(
        f"all pools: budget {r['budget_fen'] / 100:,.2f} yuan, fund paid "
        f"{r['payment_fen'] / 100:,.2f}, real outlay {r['fund_outlay_fen'] / 100:,.2f} "
        f"({r['outlay_minus_budget_fen'] / 100:+,.2f} against the budget); at cost "
        f"{r['at_cost_fen'] / 100:,.2f}"
    )
    for note in s.notes:
        console.print(f"note: {note}")


@click.group()
def policy() -> None:
    """Payment policy files (TOML)."""


@policy.command("init")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def policy_init(file: Path | None, force: bool) -> None:
    """Write a commented policy template with every key at its default (to FILE, else stdout)."""
    from casemix.payment.policy_template import template

    text = template()
    if file is None:
        click.echo(text, nl=False)
        return
    if file.exists() and not force:
        raise click.UsageError(f"{file} exists; use --force to replace it")
    file.write_text(text, encoding="utf-8")
    click.echo(f"policy template → {file} (set budget.total_yuan or the pools' budget_yuan)")


@click.command()
@click.argument("history", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Weight table to write (.csv or .parquet).",
)
@click.option(
    "--trim",
    type=click.Choice(["none", "percentile", "sd", "iqr"]),
    default="percentile",
    show_default=True,
    help="Trimming of cost outliers within each DRG and year.",
)
@click.option(
    "--lower", default=2.5, show_default=True, help="Lower percentile (percent) for --trim percentile."
)
@click.option(
    "--upper", default=97.5, show_default=True, help="Upper percentile (percent) for --trim percentile."
)
@click.option("--k", "sd_k", default=3.0, show_default=True, help="k for --trim sd (mean ± k·SD).")
@click.option("--iqr-a", default=0.5, show_default=True, help="a for --trim iqr (Q1 − a·IQR).")
@click.option("--iqr-b", default=1.5, show_default=True, help="b for --trim iqr (Q3 + b·IQR).")
@click.option(
    "--blend",
    type=click.Choice(["means", "sums"]),
    default="means",
    show_default=True,
    help="Multi-year reading: blend of yearly means, or of yearly sums and counts.",
)
@click.option(
    "--year-weights",
    default="1,2,7",
    show_default=True,
    help="Blend weights of the most recent years, oldest first.",
)
@click.option("--min-cases", default=5, show_default=True, help="Groups with fewer cases use the fallback.")
@click.option("--fallback", type=click.Choice(["adrg", "none"]), default="adrg", show_default=True)
@click.option(
    "--overrides",
    type=click.Path(exists=True, path_type=Path),
    help="CSV/Parquet with drg, rw used first for small groups.",
)
@click.option("--quiet", is_flag=True, help="Print nothing.")
@map_option
@encoding_option
@force_option
@bom_option
def weights(
    history: Path,
    output: Path,
    trim: str,
    lower: float,
    upper: float,
    sd_k: float,
    iqr_a: float,
    iqr_b: float,
    blend: str,
    year_weights: str,
    min_cases: int,
    fallback: str,
    overrides: Path | None,
    quiet: bool,
    mapping: dict[str, str] | None,
    encoding: str | None,
    force: bool,
    bom: bool | None,
) -> None:
    """Relative weights per DRG from a grouped cost HISTORY (CSV or Parquet with drg, total_cost)."""
    from casemix.weights import compute_weights

    try:
        yw = [float(x) for x in year_weights.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(
            f"not a list of numbers: {year_weights!r}", param_hint="--year-weights"
        ) from None
    from casemix._frames import read_path
    from casemix.io import check_output

    check_output(output, force=force, inputs=[history, overrides])
    w = compute_weights(
        read_path(history, encoding=encoding),
        trim=trim,
        percentiles=(lower / 100, upper / 100),
        sd_k=sd_k,
        iqr=(iqr_a, iqr_b),
        year_weights=yw,
        blend=blend,
        min_cases=min_cases,
        fallback=fallback,
        overrides=overrides,
        mapping=mapping,
    )
    write_frame(w.table, output, force=force, bom=bom, inputs=[history, overrides])
    if quiet:
        return
    from casemix.cli._render import console

    q = w.quality
    cv = q["share_cv_ge_1"]
    console.print(
        f"[bold]{q['groups']:,}[/] DRG weights from {q['n_kept']:,} of {q['n_input']:,} cases "
        f"(trim {q['trim']}, blend of yearly {q['blend']} over {sorted(q['years'])}) → {output}\n"
        f"all-case mean {q['all_case_mean']:,.2f} yuan; RIV {q['riv']:.3f} "
        f"(untrimmed {q['riv_untrimmed']:.3f}); groups with CV >= 1: "
        f"{'n/a' if cv is None else f'{cv:.1%}'}; fallbacks {q['fallback_counts']}; "
        f"groups kept whole by trimming: {q['groups_kept_whole']}; excluded {q['excluded']}"
    )
    echo_notes(q["notes"])


@click.command()
@click.argument("cases", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--weights",
    "weights_path",
    type=click.Path(exists=True, path_type=Path),
    help="Weight table (drg, rw[, mean_cost, mean_los]) from `casemix weights`.",
)
@click.option(
    "--policy", "policy_spec", required=True, help="Policy TOML file, or the name of a shipped policy (demo)."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for cases, hospitals and region tables.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet", "xlsx"]), default="csv", show_default=True
)
@click.option("--points", default=None, help="Column of precomputed base points (instead of weights).")
@click.option("--group-col", default="drg", show_default=True, help="Column with the group code.")
@click.option(
    "--compare",
    "compare_spec",
    default=None,
    help="A second policy: also write and print the per-hospital what-if table.",
)
@click.option(
    "--base-volume",
    "base_volume",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Elastic point value: base volume per hospital (hospital_id, "
    "points[, pool]); default elastic.base_volume of the policy.",
)
@click.option("--quiet", is_flag=True, help="Print nothing.")
@map_option
@dask_option
@encoding_option
@force_option
@bom_option
def settle(
    cases: Path,
    weights_path: Path | None,
    policy_spec: str,
    output: Path,
    fmt: str,
    points: str | None,
    group_col: str,
    compare_spec: str | None,
    quiet: bool,
    mapping: dict[str, str] | None,
    dask_spec: str | None,
    encoding: str | None,
    force: bool,
    bom: bool | None,
    base_volume: Path | None = None,
) -> None:
    """Settle grouped CASES under a policy (TOML: budget or pools, point or rate method,
    elastic point value, corridors, case rules); write per case, hospital, pool, region."""
    from casemix._frames import read_path
    from casemix.settle import compare
    from casemix.settle import settle as run

    if weights_path is None and points is None:
        raise click.UsageError("give --weights (a weight table) or --points (a column of points)")
    policy = policy_of(policy_spec)
    if dask_spec:
        if fmt == "xlsx":
            raise click.UsageError("--format xlsx is not available with --dask")
        if compare_spec:
            raise click.UsageError("--compare is not available with --dask")
        from casemix.cli.dask_opts import settle_on_dask

        s, paths = settle_on_dask(
            cases,
            output,
            policy,
            dask_spec,
            weights_path=weights_path,
            points=points,
            group_col=group_col,
            fmt=fmt,
            force=force,
            base_volume=base_volume,
            mapping=mapping,
        )
        if not quiet:
            from casemix.cli._render import console

            print_settlement(s)
            console.print("written: " + ", ".join(str(p) for p in paths.values()))
        return
    frame = read_path(cases, encoding=encoding)
    w = read_path(weights_path, encoding=encoding) if weights_path else None
    s = run(
        frame, policy, weights=w, points=points, group_col=group_col, mapping=mapping, base_volume=base_volume
    )
    paths = s.write(output, fmt=fmt, force=force, bom=bom, inputs=[cases, weights_path])
    what_if = None
    if compare_spec:
        what_if = compare(
            frame,
            policy,
            policy_of(compare_spec),
            weights=w,
            points=points,
            group_col=group_col,
            mapping=mapping,
        )
        write_frame(what_if, output / "compare.csv", force=force, bom=bom, human=True)
    if quiet:
        return
    from casemix.cli._render import console, table

    print_settlement(s)
    if what_if is not None:
        table(what_if, "What-if per hospital (fen; b − a)")
    console.print("written: " + ", ".join(str(p) for p in paths.values()))
