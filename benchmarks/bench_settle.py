"""Settlement of 10M synthetic grouped cases: both pools, elastic PV, corridors, monthly.

Issue 12 target: settlement (pools 职工/居民, elastic point value with base
share 0.75 and a prior-year volume table, 结余留用/超支分担 corridors,
monthly pre-settlement and annual clearing) of 10M cases in under 20 s wall
on 2 cores, peak memory at most 3× the input.

Usage: python benchmarks/bench_settle.py [--n N] [--hospitals H] [--drgs D]

"Input" is the in-memory size of the cases frame passed to ``settle``
(polars ``estimated_size``).  Memory is read from ``/proc/self/status``:
the interpreter's baseline is the RSS after the imports and a small warm-up
settlement (numba's kernels compiled), before the data exist; the peak is
the high-water mark during ``settle`` alone (reset just before it).  The
script prints the peak's growth above that baseline (which counts the input
frame itself, the weights and the settlement's intermediates and results)
and the growth above the RSS just before ``settle`` (what settlement itself
adds), each divided by the input.  Data generation and the weights are not
in the settlement's timed path: a child process makes them and writes the
cases, the weight table and the prior-year volumes as Parquet, which the
measured process reads (as a user would); the weights' time is printed on
its own.
Writes benchmarks/results/bench_settle.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import polars as pl


def synth_grouped(n: int, n_hosp: int, n_drg: int, seed: int = 4) -> pl.DataFrame:
    """Grouped cases: CHS-like DRG codes, lognormal costs, both pools, a discharge date in 2024."""
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
    del eff
    hosp_names = pl.Series([f"H{h:04d}" for h in range(n_hosp)])
    day = rng.integers(0, 366, n).astype(np.int32)  # 2024 is a leap year
    df = pl.DataFrame(
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
            "discharge_date": pl.Series(day + 19723).cast(pl.Date),  # 19723 = 2024-01-01
        }
    )
    return df


def _status_kb(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def rss_mb() -> float:
    """Current resident set size, MB."""
    return _status_kb("VmRSS") / 1024.0


def peak_mb() -> float:
    """High-water mark of the resident set since the last :func:`reset_peak`, MB."""
    return _status_kb("VmHWM") / 1024.0


def reset_peak() -> None:
    """Reset the kernel's RSS high-water mark (Linux: ``5`` to ``/proc/self/clear_refs``)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")


def policy_for(df: pl.DataFrame, monthly: bool = True):
    """Both pools (budget 98% of their fund cost), elastic PV 0.75, corridors, monthly."""
    from casemix.budget import Band, Corridors, Elastic, Policy, Pool
    from casemix.payment.monthly import MonthlyConfig

    fund = df.group_by("insurance_type").agg(pl.col("fund_paid").sum())
    budgets = {k: round(v * 0.98) for k, v in fund.iter_rows()}
    return Policy.demo().replace(
        budget=None,
        pools={k: Pool(budget=v) for k, v in budgets.items()},
        elastic=Elastic(enabled=True, base_share=0.75),
        corridors=Corridors(
            surplus=(Band(0.05, 1.0), Band(0.15, 0.5)), overspend=(Band(0.05, 0.3), Band(0.15, 0.6))
        ),
        monthly=MonthlyConfig(enabled=monthly, prepay_ratio=0.9, deposit_share=0.05),
    )


def prior_volumes(df: pl.DataFrame, rw: pl.DataFrame) -> pl.DataFrame:
    """A prior-year volume table: 85–95% of each hospital's base points per pool."""
    rng = np.random.default_rng(9)
    base = (
        df.lazy()
        .select("hospital_id", "insurance_type", "drg")
        .join(rw.lazy(), on="drg", how="left")
        .group_by("hospital_id", "insurance_type")
        .agg((pl.col("rw").fill_null(0).sum() * 100).alias("points"))
        .sort("hospital_id", "insurance_type")
        .collect()
    )
    return base.with_columns(pl.col("points") * rng.uniform(0.85, 0.95, base.height))


def make_inputs(n: int, n_hosp: int, n_drg: int, folder: str) -> dict:
    """Child process: the cases, their weights and the prior-year volumes, written as Parquet.

    Generating 10M cases and their weights leaves garbage in the allocator; in a child it
    leaves none in the process that is measured, which reads the files like a user would.
    """
    from casemix.weights import compute_weights

    t0 = time.perf_counter()
    df = synth_grouped(n, n_hosp, n_drg)
    gen = time.perf_counter() - t0
    t1 = time.perf_counter()
    w = compute_weights(df)
    t_weights = time.perf_counter() - t1
    df.write_parquet(Path(folder) / "cases.parquet")
    w.table.write_parquet(Path(folder) / "weights.parquet")
    prior_volumes(df, w.table.select("drg", "rw")).write_parquet(Path(folder) / "volumes.parquet")
    return {"generate_s": gen, "weights_s": t_weights, "drgs": w.quality["groups"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", "--cases", dest="n", type=int, default=10_000_000, help="cases (10M)")
    ap.add_argument("--hospitals", type=int, default=500)
    ap.add_argument("--drgs", type=int, default=800)
    args = ap.parse_args()

    import multiprocessing as mp
    import tempfile

    from casemix.settle import settle
    from casemix.weights import compute_weights

    # warm-up: numba compiles (or loads) its kernels; then the interpreter's baseline
    small = synth_grouped(5_000, 20, 40, seed=1)
    ws = compute_weights(small)
    settle(
        small, policy_for(small), weights=ws, base_volume=prior_volumes(small, ws.table.select("drg", "rw"))
    )
    del small, ws
    gc.collect()
    baseline = rss_mb()
    print(f"interpreter baseline (imports + warm-up): RSS {baseline:,.0f} MB")

    with tempfile.TemporaryDirectory() as folder:
        with mp.get_context("spawn").Pool(1) as pool:
            made = pool.apply(make_inputs, (args.n, args.hospitals, args.drgs, folder))
        print(
            f"generated {args.n:,} cases in {made['generate_s']:.1f} s and their weights "
            f"({made['drgs']} DRGs) in {made['weights_s']:.2f} s in a child process (not timed)"
        )
        t_weights = made["weights_s"]
        df = pl.read_parquet(Path(folder) / "cases.parquet")
        w = pl.read_parquet(Path(folder) / "weights.parquet")
        volume = pl.read_parquet(Path(folder) / "volumes.parquet")
    policy = policy_for(df)
    input_mb = df.estimated_size("mb")

    gc.collect()
    before = rss_mb()
    reset_peak()
    t2, c2 = time.perf_counter(), time.process_time()
    s = settle(df, policy, weights=w, base_volume=volume)
    t_settle = time.perf_counter() - t2
    cpu = time.process_time() - c2
    peak = peak_mb()
    load = os.getloadavg()

    r = s.region.row(0, named=True)
    assert r["budget_check"], "fund payments + retained must equal the budget"
    annual = s.annual
    year = annual.select(pl.col("monthly_fen", "clearing_fen", "deposit_fen", "annual_fen").sum()).row(
        0, named=True
    )
    assert year["monthly_fen"] + year["clearing_fen"] + year["deposit_fen"] == year["annual_fen"]
    pools = ", ".join(
        f"{p['pool']} base {p['pv_base']:.4f} floating {p['pv_floating']:.4f}"
        for p in s.pool_region.iter_rows(named=True)
    )
    growth, added = peak - baseline, peak - before
    print(
        f"settle: {df.height:,} cases, {s.hospitals.height} hospitals, 2 pools, elastic PV, corridors, "
        f"{s.monthly.height:,} hospital-months + annual clearing; {pools} yuan/point; "
        f"fund + retained == budget: {r['budget_check']}"
    )
    print(
        f"settle: {t_settle:.2f} s wall (target < 20 s), {cpu:.2f} s CPU, "
        f"{df.height / t_settle:,.0f} cases/s; load average {load[0]:.1f} {load[1]:.1f} "
        f"{load[2]:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"memory: input {input_mb:,.0f} MB (polars estimated_size); RSS baseline {baseline:,.0f} MB, "
        f"before settle {before:,.0f} MB, peak during settle {peak:,.0f} MB; "
        f"peak − baseline {growth:,.0f} MB = {growth / input_mb:.2f} × input (target <= 3); "
        f"peak − before settle {added:,.0f} MB = {added / input_mb:.2f} × input"
    )

    out = Path(__file__).parent / "results" / "bench_settle.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "cases": df.height,
                "hospitals": args.hospitals,
                "drgs": made["drgs"],
                "weights_s_child": round(t_weights, 3),
                "settle_s": round(t_settle, 3),
                "settle_cpu_s": round(cpu, 3),
                "cases_per_s": round(df.height / t_settle),
                "target_settle_s": 20,
                "input_mb": round(input_mb, 1),
                "rss_baseline_mb": round(baseline, 1),
                "rss_before_settle_mb": round(before, 1),
                "peak_rss_mb": round(peak, 1),
                "peak_over_baseline_mb": round(growth, 1),
                "peak_over_baseline_per_input": round(growth / input_mb, 2),
                "peak_over_before_per_input": round(added / input_mb, 2),
                "target_memory_per_input": 3,
                "load_average": [round(x, 2) for x in load],
                "budget_check": bool(r["budget_check"]),
                "pools": s.pool_region.height,
                "elastic": True,
                "corridors": True,
                "monthly": True,
                "hospital_months": s.monthly.height,
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
    print(f"→ {out.relative_to(Path(__file__).parent.parent)}")


if __name__ == "__main__":
    main()
