"""``casemix dip``: DIP catalogs, grouping and settlement; and the DIP demo.

``casemix dip build HISTORY -o catalog/`` builds a catalog from a cost
history; ``casemix dip group`` and ``casemix dip settle`` run the next steps
on files; :func:`run_dip_demo` is what ``casemix demo --dip`` runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from casemix.cli._io import bom_option, encoding_option, force_option, write_frame
from casemix.cli._vocab import echo_notes, map_option


def _read(path: Path, mapping: dict[str, str] | None = None, encoding: str | None = None):
    """Cases from a Parquet/CSV/xlsx file as the canonical frame."""
    from casemix._frames import read_path

    return canonical_frame(read_path(path, encoding=encoding), mapping)


def canonical_frame(frame, mapping: dict[str, str] | None = None):
    """``frame`` as DIP's canonical case frame (codes read by ``casemix.read_cases``)."""
    from casemix.dip import canonical

    return canonical(frame, mapping)


def _yuan_table(df):
    """Fen columns shown as yuan (``payment_fen`` → ``payment``)."""
    import polars as pl

    return df.with_columns(
        (pl.col(c) / 100).round(2).alias(c.removesuffix("_fen")) for c in df.columns if c.endswith("_fen")
    ).drop([c for c in df.columns if c.endswith("_fen")])


def _catalog_summary(cat) -> dict[str, int]:
    out: dict[str, int] = {}
    for g in cat.groups:
        out[g.type] = out.get(g.type, 0) + 1
    return out


@click.group()
def dip() -> None:
    """DIP (按病种分值付费): build catalogs, group cases, settle a fund."""


@dip.command("catalogs")
def catalogs_cmd() -> None:
    """List the shipped DIP catalogs."""
    from casemix.dip import catalogs, load_catalog

    for name in catalogs():
        cat = load_catalog(name)
        counts = ", ".join(f"{n} {t}" for t, n in _catalog_summary(cat).items())
        click.echo(f"{name}\t{cat.name}\t({counts})")


@dip.command("build")
@click.argument("history", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder to write the catalog to.",
)
@click.option(
    "--threshold",
    default=15,
    show_default=True,
    help="Minimum cases of a core group (15 city pool, >= 50 province pool).",
)
@click.option(
    "--coverage",
    type=float,
    default=None,
    help="Derive the threshold so core groups cover this share of cases (e.g. 0.95).",
)
@click.option(
    "--related-gain",
    default=0.10,
    show_default=True,
    help="Minimum mean-cost rise for a related procedure to form its own group.",
)
@click.option(
    "--base",
    default="dip-demo",
    show_default=True,
    help="Catalog giving the procedure attributes and exclusion lists.",
)
@click.option(
    "--blend",
    type=click.Choice(["sum", "mean"]),
    default="sum",
    show_default=True,
    help="1:2:7 year blend of yearly sums or of yearly means.",
)
@click.option("--cost", default="total_cost", show_default=True, help="Cost column (yuan).")
@click.option("--id", "cat_id", default="dip-built", show_default=True, help="Catalog id.")
@click.option(
    "--scheme",
    default=None,
    help="DRG scheme whose CC/MCC table gives the severity sub-types (e.g. "
    "casemix-demo); without it only age and tumour sub-types are tried.",
)
@map_option
def build_cmd(
    history: Path,
    out_dir: Path,
    threshold: int,
    coverage: float | None,
    related_gain: float,
    base: str,
    blend: str,
    cost: str,
    cat_id: str,
    scheme: str | None,
    mapping: dict[str, str] | None,
) -> None:
    """Build a DIP catalog from the cost HISTORY (Parquet or CSV) into a folder."""
    from casemix.cli._render import console, table
    from casemix.dip import build_catalog, write_catalog

    sch = None
    if scheme is not None:
        from casemix.scheme import load_scheme

        sch = load_scheme(scheme)
    from casemix._frames import read_path
    from casemix.cases import canonical

    start = time.perf_counter()
    # the bad-value rule of docs/cases.md: a case without a usable cost is left out, counted
    c = canonical(read_path(history), mapping, need=(cost,), step="dip build")
    echo_notes(c.notes())
    cat = build_catalog(
        canonical_frame(c.used, mapping),
        threshold=threshold,
        coverage=coverage,
        base=base,
        related_gain=related_gain,
        blend=blend,
        cost=cost,
        id=cat_id,
        scheme=sch,
    )
    write_catalog(cat, out_dir)
    counts = ", ".join(f"{n} {t}" for t, n in _catalog_summary(cat).items())
    console.print(
        f"{cat.name}: {counts} groups, {len(cat.subtypes)} sub-type coefficients, "
        f"in {time.perf_counter() - start:.1f} s → {out_dir}"
    )
    frame = cat.group_frame().sort("n", descending=True, nulls_last=True)
    table(
        frame.select(
            "dip_group",
            "dip_type",
            "dx_key",
            "main_procedures",
            "related_procedures",
            "attribute",
            "n",
            "mean_cost",
            "cv",
            "score",
        ).head(20),
        "Largest groups",
    )


@dip.command("group")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Output file (.parquet, .csv or .xlsx): the input plus dip_group, dip_type, "
    "dip_score, status, reason, warnings.",
)
@click.option(
    "--catalog", default="dip-demo", show_default=True, help="Shipped catalog name or a catalog folder."
)
@click.option("--engine", type=click.Choice(["batch", "reference"]), default="batch", show_default=True)
@click.option(
    "--main-procedure-only/--all-procedures",
    default=True,
    show_default=True,
    help="Comprehensive groups by the main procedure's attribute (DIP 3.0 draft "
    "§3.3 三(三)2), or by the highest attribute among all procedures.",
)
@map_option
@encoding_option
@force_option
@bom_option
def group_cmd(
    input_path: Path,
    output: Path,
    catalog: str,
    engine: str,
    main_procedure_only: bool,
    mapping: dict[str, str] | None,
    encoding: str | None,
    force: bool,
    bom: bool | None,
) -> None:
    """Group the cases in INPUT by a DIP catalog (the output keeps INPUT's columns)."""
    from casemix._frames import read_path
    from casemix.cli._render import console
    from casemix.dip import group

    start = time.perf_counter()
    from casemix.io import check_output

    check_output(output, force=force, inputs=[input_path])
    out = group(
        read_path(input_path, encoding=encoding),
        catalog,
        engine=engine,
        main_procedure_only=main_procedure_only,
        mapping=mapping,
    )
    write_frame(out, output, force=force, bom=bom, inputs=[input_path])
    n_ok = int((out["status"] == "grouped").sum())
    console.print(
        f"{out.height:,} cases grouped in {time.perf_counter() - start:.2f} s; "
        f"{n_ok:,} in a DIP group ({n_ok / max(out.height, 1):.1%}) → {output}"
    )


@dip.command("settle")
@click.argument("grouped_path", metavar="GROUPED", type=click.Path(exists=True, path_type=Path))
@click.option("--fund", default=None, help="DIP fund budget for these cases, yuan (or --policy).")
@click.option(
    "--policy",
    "policy_spec",
    default=None,
    help="Payment policy TOML (or a shipped name): budget or pools, elastic point value, "
    "special cases, new-technology add-on, corridors, monthly; instead of --fund.",
)
@click.option(
    "--base-volume",
    "base_volume",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="With --policy: elastic point value base volume per hospital (hospital_id, points[, pool]).",
)
@click.option("--fund-ratio", default=1.0, show_default=True, help="Fund payment ratio (基金支付比例).")
@click.option(
    "--catalog",
    default="dip-demo",
    show_default=True,
    help="Catalog grouped with (group mean costs for the high/low-cost rules).",
)
@click.option(
    "--point-value",
    default="settlement",
    show_default=True,
    help="settlement, optimised, optimal_interval (优值区间), or a number (yuan per point).",
)
@click.option(
    "--hospital-costs",
    "hospital_costs",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="With --point-value optimal_interval: table of hospital_id and 住院总成本 "
    "(hospital_cost/cost), making the 优值区间 two-dimensional.",
)
@click.option("--high", default=2.0, show_default=True, help="High-cost multiple of the mean.")
@click.option("--low", default=0.5, show_default=True, help="Low-cost multiple of the mean.")
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for cases.parquet, hospitals.csv, region.csv, monthly.csv.",
)
@map_option
@encoding_option
@force_option
@bom_option
def settle_cmd(
    grouped_path: Path,
    fund: str | None,
    policy_spec: str | None,
    base_volume: Path | None,
    fund_ratio: float,
    catalog: str,
    point_value: str,
    hospital_costs: Path | None,
    high: float,
    low: float,
    out_dir: Path | None,
    mapping: dict[str, str] | None,
    encoding: str | None,
    force: bool,
    bom: bool | None,
) -> None:
    """Settle the grouped DIP cases in GROUPED under a fund budget (--fund) or a policy (--policy)."""
    import polars as pl

    from casemix._frames import read_path
    from casemix.cli._render import console, table
    from casemix.dip.settle import CostRules, settle

    if (fund is None) == (policy_spec is None):
        raise click.UsageError(
            "give --fund (the DIP fund budget, yuan) or --policy (a policy file), one of them"
        )
    if base_volume is not None and policy_spec is None:
        raise click.UsageError("--base-volume needs --policy (the elastic point value is a policy section)")
    if hospital_costs is not None and point_value != "optimal_interval":
        raise click.UsageError("--hospital-costs is for --point-value optimal_interval (the 2-D 优值区间)")
    df = read_path(grouped_path, encoding=encoding)
    if "dip_score" in df.columns:
        df = df.with_columns(pl.col("dip_score").cast(pl.Float64, strict=False))
    if policy_spec is not None:
        from casemix.cli.settle_cmd import policy_of, print_settlement

        if point_value != "settlement":
            raise click.UsageError("--point-value comes from the policy with --policy; drop it")
        s = settle(
            df,
            policy=policy_of(policy_spec),
            base_volume=base_volume,
            catalog=catalog,
            rules=CostRules(high=high, low=low, review=max(5.0, high)),
            mapping=mapping,
        )
        print_settlement(s)
        if out_dir is not None:
            paths = s.write(out_dir, force=force, bom=bom, inputs=[grouped_path, base_volume])
            console.print("written: " + ", ".join(str(p) for p in paths.values()))
        return
    try:
        pv: str | float = float(point_value)
    except ValueError:
        pv = point_value
    res = settle(
        df,
        fund,
        fund_ratio=fund_ratio,
        catalog=catalog,
        point_value=pv,
        hospital_costs=hospital_costs,
        rules=CostRules(high=high, low=low, review=max(5.0, high)),
        mapping=mapping,
    )
    table(_yuan_table(res.hospitals), "DIP settlement per hospital (yuan)")
    table(_yuan_table(res.region), "Region")
    echo_notes(res.notes)
    if out_dir is not None:
        to_pl = res.cases if isinstance(res.cases, pl.DataFrame) else pl.from_pandas(res.cases)
        write_frame(to_pl, out_dir / "cases.parquet", force=force, inputs=[grouped_path])
        for name in ("hospitals", "region", "monthly"):
            write_frame(
                getattr(res, name),
                out_dir / f"{name}.csv",
                force=force,
                bom=bom,
                human=True,
                inputs=[grouped_path],
            )
        console.print(f"settlement → {out_dir}")


def run_dip_demo(
    seed: int = 2026,
    n: int = 20_000,
    out_dir: Path | None = None,
    *,
    years: tuple[int, ...] = (2021, 2022, 2023),
    threshold: int = 50,
    fund_ratio: float = 0.7,
    tightness: float = 0.97,
    quiet: bool = False,
    force: bool = False,
) -> Any:
    """The DIP pipeline end to end on synthetic data; what ``casemix demo --dip`` runs.

    1. a synthetic history of ``years`` (``n`` cases a year, 8 hospitals);
    2. a catalog built from it (``threshold`` cases per core group: 50, the
       province-pool figure [spec], so the rare patterns fold into
       comprehensive groups), scores blended 1:2:7;
    3. the next year's ``n`` cases grouped by that catalog;
    4. hospital-level coefficients (the level's 1:2:7 mean cost per case ÷
       the city's, DIP 3.0 draft §5.2 一), the
       year-start point value from the history (1:2:7), a fund of
       ``tightness`` × ``fund_ratio`` × the year's cost, and the settlement
       at the settlement point value.

    Prints the per-hospital table and returns the
    :class:`~casemix.dip.settle.DipSettlement`; writes the catalog, grouped
    cases and settlement under ``out_dir`` when given.
    """
    import polars as pl

    from casemix.cli._render import console, table
    from casemix.dip import build_catalog, group, hospital_coefficients, synth, write_catalog
    from casemix.dip.settle import settle, year_start_point_value

    say = (lambda *a, **k: None) if quiet else console.print
    next_year = max(years) + 1
    start = time.perf_counter()
    cases = synth.history(n, years=(*years, next_year), seed=seed)
    history = cases.filter(pl.col("year") < next_year)
    current = cases.filter(pl.col("year") == next_year)
    if not quiet:
        console.rule(
            f"[bold]casemix DIP demo[/] — synthetic history {years[0]}–{years[-1]}, "
            f"settling {next_year} (seed {seed})"
        )
    cat = build_catalog(history, threshold=threshold, id="dip-demo-built")
    counts = _catalog_summary(cat)
    say(
        f"Catalog built from {history.height:,} cases: "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
        + f" groups (threshold {threshold})."
    )

    past = group(history, cat)
    # DIP 3.0 draft §5.2 一: the level's 1:2:7-weighted mean cost per case over the city's
    level_coef = hospital_coefficients(past, by="hospital_level")
    costs, scores_y = [], []
    for y in years:
        py = past.filter((pl.col("year") == y) & pl.col("dip_group").is_not_null())
        costs.append(float(py["total_cost"].sum()))
        scores_y.append(float(py["dip_score"].sum()))
    pv_start = year_start_point_value(costs, scores_y)

    grouped = group(current, cat)
    n_ok = int((grouped["status"] == "grouped").sum())
    say(
        f"{next_year}: {grouped.height:,} cases, {n_ok:,} grouped ({n_ok / grouped.height:.1%}); "
        f"year-start point value {pv_start:.4f} yuan (1:2:7)."
    )
    if not quiet:
        by_type = (
            grouped.group_by(pl.col("dip_type").fill_null("(not grouped)"))
            .agg(pl.len().alias("cases"))
            .sort("cases", descending=True)
        )
        table(by_type, "Cases by group type")
        table(level_coef, "Hospital-level coefficients (1:2:7 over the history years)")
    fund = round(tightness * fund_ratio * float(grouped["total_cost"].sum()), 2)
    res = settle(
        grouped,
        f"{fund:.2f}",
        fund_ratio=fund_ratio,
        catalog=cat,
        hospital_coefficients=level_coef,
        coefficient_by="hospital_level",
        year_start_value=pv_start,
        deposit=0.03,
    )
    r = res.region
    say(
        f"Fund {fund:,.2f} yuan at ratio {fund_ratio:.0%}: settlement point value "
        f"{r['pv_settlement'][0]:.4f}, optimised {r['pv_optimised'][0]:.4f} yuan per point; "
        f"{r['n_high'][0]} high-cost, {r['n_low'][0]} low-cost, {r['n_review'][0]} for review."
    )
    if not quiet:
        wan = 100 * 10_000  # fen per 万元, so the money columns fit a terminal
        shown = res.hospitals.select(
            pl.col("hospital_id").alias("hosp"),
            "cases",
            (pl.col("total_score") / 1000).alias("k_score"),
            *[(pl.col(f"{c}_fen") / wan).alias(c) for c in ("payment", "prepaid", "clearing", "surplus")],
        )
        table(
            shown,
            "DIP settlement per hospital (万元; k_score = thousand points; clearing = "
            "payment − prepaid − 3% deposit; surplus = payment − fund share of cost)",
        )
        say(f"done in {time.perf_counter() - start:.1f} s")
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_catalog(cat, out_dir / "dip-catalog")
        write_frame(grouped, out_dir / "dip-grouped.parquet", force=force)
        write_frame(res.hospitals, out_dir / "dip-hospitals.csv", force=force, human=True)
        write_frame(res.monthly, out_dir / "dip-monthly.csv", force=force, human=True)
        say(f"catalog, grouped cases and settlement → {out_dir}")
    return res
