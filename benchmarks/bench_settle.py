"""Weights + settlement of 10M synthetic grouped cases with both pools, elastic PV and corridors.

Issue 12 target: settlement under 20 s on 2 cores, peak memory at most 3× the input.

Usage: python benchmarks/bench_settle.py [--cases N] [--hospitals H] [--drgs D]

Prints seconds, cases/s and peak RSS for each step; writes
benchmarks/results/bench_settle.json.  Data generation is not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import polars as pl


def synth_grouped(n: int, n_hosp: int, n_drg: int, seed: int = 4) -> pl.DataFrame:
    """Grouped cases: DRG codes with CHS-like shape, lognormal costs, three years, some 0000."""
    rng = np.random.default_rng(seed)
    adrg = [f"{chr(65 + i % 26)}{chr(65 + (i // 26) % 26)}{i % 10}" for i in range(n_drg // 2)]
    codes = np.array([a + s for a in adrg for s in ("1", "3")] + ["0000"])
    pop = 1.0 / np.arange(1, len(codes) + 1) ** 0.9  # a few big DRGs, a long tail
    pop[-1] = pop.sum() * 0.01  # ~1% ungroupable
    drg_idx = rng.choice(len(codes), n, p=pop / pop.sum())
    drg_cost = rng.lognormal(9.0, 0.8, len(codes))
    hosp = rng.integers(0, n_hosp, n)
    level = np.array([3, 2, 1])[np.arange(n_hosp) % 3]
    eff = np.array([1.25, 1.0, 0.8])[hosp % 3]  # tertiary hospitals cost more
    cost = np.round(drg_cost[drg_idx] * eff * rng.lognormal(0.0, 0.5, n), 2)
    hosp_names = pl.Series([f"H{h:04d}" for h in range(n_hosp)])
    return pl.DataFrame(
        {
            "case_id": pl.int_range(n, eager=True).cast(pl.String),
            "hospital_id": hosp_names.gather(hosp),
            "hospital_level": pl.Series(level[hosp].astype(np.int8)),
            "drg": pl.Series(codes).gather(drg_idx),
            "total_cost": cost,
            "los": rng.integers(1, 30, n).astype(np.float64),
            "discharge": rng.choice([1, 2, 5], n, p=[0.95, 0.03, 0.02]).astype(np.float64),
            "year": rng.choice([2022, 2023, 2024], n).astype(np.int32),
            "insurance_type": pl.Series(np.array(["职工", "居民"])[rng.integers(0, 2, n)]),
            "patient_share": np.round(cost * rng.uniform(0.1, 0.5, n), 2),
            "fund_paid": np.round(cost * rng.uniform(0.5, 0.9, n), 2),
        }
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000_000)
    ap.add_argument("--hospitals", type=int, default=500)
    ap.add_argument("--drgs", type=int, default=800)
    args = ap.parse_args()

    from casemix.budget import Band, Corridors, Elastic, Policy, Pool
    from casemix.settle import settle
    from casemix.weights import compute_weights

    t0 = time.perf_counter()
    df = synth_grouped(args.cases, args.hospitals, args.drgs)
    gen = time.perf_counter() - t0
    print(f"generated {df.height:,} cases in {gen:.1f} s (not timed); RSS {peak_rss_mb():,.0f} MB")

    t1, c1 = time.perf_counter(), time.process_time()
    w = compute_weights(df)
    t_weights = time.perf_counter() - t1
    print(f"weights: {w.quality['groups']} DRGs in {t_weights:.2f} s")

    fund = df.group_by("insurance_type").agg(pl.col("fund_paid").sum())
    budgets = {k: round(v * 0.98) for k, v in fund.iter_rows()}
    policy = Policy.demo().replace(
        budget=None,
        pools={k: Pool(budget=v) for k, v in budgets.items()},
        elastic=Elastic(enabled=True, base_share=0.75),
        corridors=Corridors(
            surplus=(Band(0.05, 1.0), Band(0.15, 0.5)), overspend=(Band(0.05, 0.3), Band(0.15, 0.6))
        ),
    )
    # base volumes from a table: 85–95% of each hospital's base points (a prior year that grew less)
    rng = np.random.default_rng(9)
    base = (
        df.join(w.table.select("drg", "rw"), on="drg", how="left")
        .group_by("hospital_id")
        .agg((pl.col("rw").fill_null(0).sum() * 100).alias("points"))
        .sort("hospital_id")
    )
    volume = base.with_columns(pl.col("points") * rng.uniform(0.85, 0.95, base.height))
    input_mb = df.estimated_size("mb")
    t2 = time.perf_counter()
    s = settle(df, policy, weights=w, base_volume=volume)
    t_settle = time.perf_counter() - t2
    cpu = time.process_time() - c1
    total = t_weights + t_settle
    load = os.getloadavg()[0]
    r = s.region.row(0, named=True)
    assert r["budget_check"], "fund payments + retained must equal the budget"
    pools = ", ".join(
        f"{p['pool']} base {p['pv_base']:.4f} floating {p['pv_floating']:.4f}"
        for p in s.pool_region.iter_rows(named=True)
    )
    print(
        f"settle: {s.hospitals.height} hospitals, 2 pools, elastic PV, corridors in "
        f"{t_settle:.2f} s ({pools} yuan/point); fund + retained == budget: "
        f"{r['budget_check']}"
    )
    rss = peak_rss_mb()
    # the machine may be shared: CPU seconds (all threads) and the load average say how much
    print(
        f"weights + settle: {total:.2f} s wall, {cpu:.2f} s CPU, {df.height / total:,.0f} "
        f"cases/s, peak RSS {rss:,.0f} MB, load average {load:.1f} on {os.cpu_count()} CPUs "
        f"(target: settle < 20 s); input {input_mb:,.0f} MB, peak RSS / input "
        f"{rss / input_mb:.2f} (target <= 3; RSS includes the interpreter and libraries)"
    )

    out = Path(__file__).parent / "results" / "bench_settle.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "cases": df.height,
                "hospitals": args.hospitals,
                "drgs": w.quality["groups"],
                "weights_s": round(t_weights, 3),
                "settle_s": round(t_settle, 3),
                "total_s": round(total, 3),
                "cpu_s": round(cpu, 3),
                "load_average_1min": round(load, 2),
                "cases_per_s": round(df.height / total),
                "peak_rss_mb": round(rss),
                "input_mb": round(input_mb),
                "rss_over_input": round(rss / input_mb, 2),
                "target_settle_s": 20,
                "budget_check": bool(r["budget_check"]),
                "pools": 2,
                "elastic": True,
                "corridors": True,
                "monthly": False,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "polars": pl.__version__,
                "numpy": np.__version__,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"→ {out}")


if __name__ == "__main__":
    main()
