"""``casemix demo``: the whole pipeline on synthetic cases, from a fresh install."""

from __future__ import annotations

import time
from pathlib import Path

import click

from casemix.cli._io import force_option, write_frame
from casemix.scheme import DEFAULT_SCHEME


@click.command()
@click.option("-n", "--cases", "n", default=50_000, show_default=True, help="Synthetic cases to make.")
@click.option("--seed", default=2026, show_default=True, help="Same seed, same cases.")
@click.option("--scheme", default=DEFAULT_SCHEME, show_default=True, help="Scheme name or folder.")
@click.option("--engine", type=click.Choice(["batch", "reference"]), default="batch", show_default=True)
@click.option("--dip", is_flag=True, help="Run the DIP demo instead: build a catalog, group, settle.")
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("casemix-demo-out"),
    show_default=True,
    help="Folder for the grouped cases, settlement and report.",
)
@force_option
def demo(n: int, seed: int, scheme: str, engine: str, dip: bool, out_dir: Path, force: bool) -> None:
    """Generate realistic synthetic cases, group them, price them and report.

    Deterministic by seed.  Prints cases per MDC, the top DRGs and why
    cases were not grouped; then weights, the global-budget settlement per
    hospital, and the path of the HTML report.
    """
    from casemix.cli._render import console, table

    force = _own_folder(out_dir, force, console)
    if dip:
        from casemix.cli.dip_cmd import run_dip_demo

        run_dip_demo(seed=seed, n=n, out_dir=out_dir, force=force)
        return

    import casemix
    from casemix.drg.summary import summarize
    from casemix.synth import synth_cases

    sch = casemix.load_scheme(scheme)
    console.rule(f"[bold]casemix demo[/] — scheme {sch.id}: {sch.name}")
    cases = synth_cases(sch, n, seed=seed, layout="strings")
    start = time.perf_counter()
    grouped = casemix.group(cases, scheme=sch, engine=engine)
    elapsed = time.perf_counter() - start
    s = summarize(grouped, sch)
    console.print(
        f"{s.total:,} synthetic cases (seed {seed}) grouped by the {engine} engine in "
        f"{elapsed:.2f} s; {s.grouped:,} with a DRG ({s.grouped / max(s.total, 1):.1%})."
    )
    table(s.by_mdc, "Cases per MDC")
    table(s.top_drgs, "Top DRGs by cases")
    table(s.failures, "Not grouped, by status and reason")
    write_frame(grouped, out_dir / "grouped.parquet", force=force)
    console.print(f"grouped cases → {out_dir / 'grouped.parquet'}")
    # a prior year of the same region: each hospital's points there are its base volume
    prior = casemix.group(synth_cases(sch, n, seed=seed + 1, layout="strings"), scheme=sch, engine=engine)
    _settle_and_report(grouped, out_dir, console, table, force=force, prior=prior)


#: written in the output folder by every demo run: a rerun replaces its own outputs
MARKER = ".casemix-demo"


def _own_folder(out_dir: Path, force: bool, console) -> bool:
    """Whether the run may overwrite: with --force, or when the folder holds a previous demo run.

    A folder that exists without the marker (someone's files) is only written over with
    --force; the write of the first output that exists then fails with the usual error.
    """
    marker = out_dir / MARKER
    if marker.is_file() and not force:
        console.print(f"replacing the previous demo run's outputs in {out_dir}")
        return True
    foreign = out_dir.is_dir() and any(out_dir.iterdir())
    if force or not foreign:
        out_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text("outputs of `casemix demo`; a rerun replaces them\n", encoding="utf-8")
    return force


def _settle_and_report(grouped, out_dir: Path, console, table, *, force: bool = False, prior=None) -> None:
    """Weights → settlement under the shipped demo policy → HTML report.

    With a prior year and cases carrying pools and patient shares, the
    ``demo_pools`` policy: both pools, elastic point value (base share
    0.75), corridors; base and floating point values printed per pool.
    """

    from casemix.report import build_report
    from casemix.settle import run_demo_settlement

    settlement = run_demo_settlement(grouped, prior=prior)
    region = settlement.region.row(0, named=True)
    import polars as pl

    wan = 10_000  # amounts shown in 万元 so the table fits a terminal; exact fen are in the files
    view = settlement.summary().select(
        pl.col("hospital_id").alias("hospital"),
        "level",
        "cases",
        pl.col("cmi").round(3).alias("CMI"),
        (pl.col("payment") / wan).round(1).alias("paid 万元"),
        (pl.col("cost") / wan).round(1).alias("cost 万元"),
        (pl.col("surplus") / wan).round(1).alias("结余 万元"),
        pl.col("surplus_share").alias("of cost"),
    )
    table(view, "Settlement per hospital (结余 > 0 surplus, < 0 超支 deficit)", percent=("of cost",))
    pools = settlement.pool_region  # settle() always gives it
    for p in pools.iter_rows(named=True) if pools is not None else ():
        console.print(
            f"pool {p['pool']}: budget {p['budget_fen'] / 100:,.2f} yuan; point value base "
            f"{p['pv_base']:.4f}, floating {p['pv_floating']:.4f} yuan/point; fund paid "
            f"{p['fund_fen'] / 100:,.2f} + retained {p['retained_fen'] / 100:,.2f} = the budget "
            f"to the fen ({p['budget_check']}); patients {p['patient_fen'] / 100:,.2f}; after "
            f"结余留用/超支分担 the fund pays {p['fund_outlay_fen'] / 100:,.2f}"
        )
    console.print(
        f"all pools: fund outlay {region['fund_outlay_fen'] / 100:,.2f} yuan "
        f"({region['outlay_minus_budget_fen'] / 100:+,.2f} against the budget) under "
        f"{settlement.policy.name!r}"
    )
    paths = settlement.write(out_dir / "settlement", force=force)
    console.print(f"settlement → {paths['hospitals'].parent}")
    index = build_report(
        grouped,
        settlement=settlement,
        out_dir=out_dir / "report",
        extra_sections=[_patient_burden(grouped, console, table)],
    )
    console.print(f"[bold]report →[/] {Path(index).resolve()}")


def _patient_burden(grouped, console, table) -> tuple[str, str]:
    """The patient side of the same cases: the benefit cascade under the illustrative policy.

    The demo cases carry no insured type, assistance status or self-pay
    split, so ``add_benefit_fields`` invents them (seeded); the section says so.
    """
    import polars as pl

    from casemix import benefits

    policy_name = "illustrative"
    cases = benefits.add_benefit_fields(
        grouped.select(
            "case_id", "hospital_id", "total_cost", *[c for c in ("hospital_level",) if c in grouped.columns]
        ),
        seed=7,
    )
    result = benefits.simulate(cases, policy_name)
    overall = benefits.summarize(result, by=())
    by_group = benefits.summarize(result, by=("insured_type", "assist_status"))
    show = by_group.select(
        pl.col("insured_type").alias("insured"),
        pl.col("assist_status").alias("status"),
        "cases",
        pl.col("actual_ratio").alias("actual 实际报销"),
        pl.col("combined_ratio").alias("combined 综合保障"),
        pl.col("share_over").alias("oop>1万"),
    )
    table(
        show,
        "Patient burden by insured type and assistance status (illustrative policy)",
        percent=("actual 实际报销", "combined 综合保障", "oop>1万"),
    )
    html = (
        "<p>Benefit cascade (基本医保 → 大病保险 / 地方附加 → 医疗救助 → 惠民保 → 医院减免 → 再救助) under the shipped "
        f"<b>{policy_name}</b> policy (illustrative values; see docs/benefits.md). The demo cases have "
        "no insured type, assistance status or self-pay split, so these were assigned synthetically "
        "(seed 7).</p>" + _html_table(overall) + _html_table(by_group)
    )
    return "Patient burden 患者负担", html


def _html_table(df) -> str:
    import html

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for row in df.iter_rows():
        cells = "".join(
            f"<td>{v:,.4f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>" for v in row
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
