"""``casemix benefits``: the patient-side benefit cascade, and what-ifs between two policies."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import click

from casemix.cli._io import bom_option, encoding_option, force_option, write_frame
from casemix.cli._vocab import echo_notes, map_option

_KEYS = ("insured_type", "assist_status", "hosp_level")


_SHORT = {"insured_type": "insured", "assist_status": "status", "hosp_level": "level"}


def _shown(df, names: dict[str, str]):
    """Selected columns with short headers; yuan amounts rounded to whole yuan for the screen."""
    import polars as pl

    cols = [c for c in (*_SHORT, *names) if c in df.columns]
    money = [c for c in cols if df.schema[c] == pl.Float64 and "ratio" not in c and not c.startswith("share")]
    return (
        df.select(cols)
        .with_columns(pl.col(c).round(0).cast(pl.Int64) for c in money)
        .rename({c: {**_SHORT, **names}[c] for c in cols})
    )


def _by(value: str) -> list[str]:
    keys = [k.strip() for k in value.split(",") if k.strip()]
    bad = [k for k in keys if k not in _KEYS]
    if bad:
        raise click.BadParameter(
            f"unknown group column(s) {bad}; use any of {', '.join(_KEYS)}", param_hint="--by"
        )
    return keys


@click.command()
@click.argument("cases_path", metavar="[CASES]", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--policy",
    "policy_a",
    required=True,
    help="Benefit policy folder, or a shipped name (illustrative, illustrative-whatif-poor, …).",
)
@click.option(
    "--compare",
    "policy_b",
    default=None,
    help="A second policy: print what changes from --policy to this one, by group.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder: cases.parquet (per-case payments, fen) and summary.csv "
    "(or compare.csv with --compare).",
)
@click.option(
    "--synthetic", type=int, default=None, metavar="N", help="Run N synthetic cases instead of reading CASES."
)
@click.option("--people", type=int, default=None, help="Persons among the synthetic cases (default N/2).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic cases.")
@click.option(
    "--by",
    "by",
    default="insured_type,assist_status",
    show_default=True,
    help="Group columns, comma-separated, among insured_type, assist_status, hosp_level.",
)
@click.option(
    "--threshold",
    type=float,
    default=10_000.0,
    show_default=True,
    help="Annual out-of-pocket (yuan) above which a person-year counts as high-burden.",
)
@click.option("--engine", type=click.Choice(["batch", "reference"]), default="batch", show_default=True)
@map_option
@encoding_option
@force_option
@bom_option
def benefits(
    cases_path: Path | None,
    policy_a: str,
    policy_b: str | None,
    output: Path | None,
    synthetic: int | None,
    people: int | None,
    seed: int,
    by: str,
    threshold: float,
    engine: Literal["batch", "reference"],
    mapping: dict[str, str] | None,
    encoding: str | None,
    force: bool,
    bom: bool | None,
) -> None:
    """Run CASES (Parquet or CSV) through the benefit cascade of a policy.

    \b
    Examples:
      casemix benefits cases.parquet --policy illustrative -o out/
      casemix benefits --synthetic 100000 --policy illustrative \\
          --compare illustrative-whatif-poor
    """
    import polars as pl

    from casemix import benefits as bf
    from casemix.cli._render import console, table

    keys = _by(by)
    if (cases_path is None) == (synthetic is None):
        raise click.UsageError("give either CASES or --synthetic N")
    pa = bf.load_policy(policy_a)
    pb = bf.load_policy(policy_b) if policy_b else None
    for p in (pa, pb):
        if p is not None and p.illustrative:
            console.print(f"[yellow]policy {p.name!r} is ILLUSTRATIVE, not any city's actual rules[/]")
    if synthetic is not None:
        cases = bf.synthetic_cases(synthetic, people, seed=seed)
        source = f"{synthetic:,} synthetic cases (seed {seed})"
    elif cases_path is not None:
        from casemix._frames import read_path

        cases = read_path(cases_path, encoding=encoding)
        source = str(cases_path)
    else:  # ruled out above; kept so each branch knows which input it has
        raise click.UsageError("give either CASES or --synthetic N")
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    if pb is None:
        result = bf.simulate(cases, pa, engine=engine, mapping=mapping)
        elapsed = time.perf_counter() - start
        summary = bf.summarize(result, by=keys, oop_threshold=threshold, mapping=mapping)
        overall = bf.summarize(result, by=(), oop_threshold=threshold, mapping=mapping)
        left = result["left_out"].drop_nulls().value_counts(sort=True)
        echo_notes([f"{r}: {n} row(s) left out" for r, n in left.iter_rows()])
        console.print(
            f"[bold]{result.height:,}[/] cases ({source}) through policy {pa.name!r} in {elapsed:.2f} s"
        )
        names = {
            "cases": "cases",
            "total_cost": "cost",
            "fund_pay": "fund",
            "hmb_pay": "惠民保",
            "hosp_part_amt": "减免",
            "psn_part_amt": "OOP",
            "inscp_ratio": "政策内",
            "actual_ratio": "实际",
            "combined_ratio": "综合",
            "share_over": "burden",
        }
        console.print(
            f"yuan; fund: public funds (basic, 大病, 地方附加, 特药, 救助, 再救助); 减免: "
            f"hospital waivers; OOP: patients' out-of-pocket; 政策内 = basic / "
            f"policy-range cost; 实际 = basic + 大病 + 地方附加 + 特药 / cost; "
            f"综合 = all payments / cost; burden: share of person-years paying over "
            f"{threshold:,.0f} yuan a year"
        )
        pct: tuple[str, ...] = ("政策内", "实际", "综合", "burden")
        table(_shown(summary, names), "Patient burden by group", percent=pct)
        table(_shown(overall, names), "All cases", percent=pct)
        if output is not None:
            write_frame(result, output / "cases.parquet", force=force, inputs=[cases_path])
            write_frame(
                summary, output / "summary.csv", force=force, bom=bom, human=True, inputs=[cases_path]
            )
            console.print(f"wrote {output / 'cases.parquet'} and {output / 'summary.csv'}")
        return

    diff = bf.compare(cases, pa, pb, by=keys, oop_threshold=threshold, engine=engine, mapping=mapping)
    total = bf.compare(cases, pa, pb, by=(), oop_threshold=threshold, engine=engine, mapping=mapping)
    elapsed = time.perf_counter() - start
    console.print(f"[bold]{cases.height:,}[/] cases ({source}): {pa.name!r} → {pb.name!r} ({elapsed:.2f} s)")
    burden = {
        "cases": "cases",
        "psn_part_amt_a": "OOP",
        "psn_part_amt_change": "ΔOOP",
        "fund_pay_change": "Δfund",
        "hmb_pay_change": "Δ惠民保",
        "share_over_a": "burden a",
        "share_over_b": "burden b",
    }
    layers = {
        "hifp_pay_change": "Δ基本",
        "hifmi_pay_change": "Δ大病",
        "hifob_pay_change": "Δ地方附加",
        "hifmi_drug_pay_change": "Δ特药",
        "maf_pay_change": "Δ救助",
        "hosp_part_amt_change": "Δ减免",
        "reassist_pay_change": "Δ再救助",
    }
    console.print(
        f"OOP: patients' out-of-pocket under {pa.name!r} (yuan); Δ: {pb.name!r} minus "
        f"{pa.name!r}; fund: public funds (basic, 大病, 地方附加, 特药, 救助, 再救助); burden: "
        f"share of person-years paying over {threshold:,.0f} yuan a year"
    )
    pct = ("burden a", "burden b")
    table(_shown(diff, burden), "Patient burden and fund cost by group", percent=pct)
    table(_shown(total, burden), "All cases", percent=pct)
    table(_shown(diff, layers), "Fund change by layer (yuan)")
    if output is not None:
        write_frame(
            pl.concat(
                [
                    total.with_columns(*(pl.lit(None, dtype=diff.schema[k]).alias(k) for k in keys)).select(
                        diff.columns
                    ),
                    diff,
                ]
            ),
            output / "compare.csv",
            force=force,
            bom=bom,
            human=True,
            inputs=[cases_path],
        )
        console.print(f"wrote {output / 'compare.csv'} (first row: all cases)")
