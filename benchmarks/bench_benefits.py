"""Benefit cascade for 10M synthetic cases of 1M people through all layers (issue 7 target: < 10 s here).

Usage: python benchmarks/bench_benefits.py [--cases N] [--people P] [--policy NAME] [--sample S]

Cases come from ``casemix.benefits.synthetic_cases`` in random row order
(the batch path sorts them by person and date itself); generating them is
not timed.  The kernels are compiled (or loaded from numba's cache) on a
small batch first.  Prints seconds, cases/s and peak RSS for ``simulate``
and ``summarize``, checks the batch engine against the reference engine on
a sample, and writes benchmarks/results/bench_benefits.json with the load
average and the process CPU time, since on a busy machine the wall-clock
figure measures the other processes as much as this one (CPU time summed
over threads bounds the wall time on an idle machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000_000)
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--policy", default="illustrative")
    ap.add_argument("--sample", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    from casemix import benefits as bf

    policy = bf.load_policy(args.policy)
    t = time.perf_counter()
    cases = bf.synthetic_cases(args.cases, args.people, seed=args.seed)
    t_synth = time.perf_counter() - t
    rss_data = _rss_mb()

    warm = cases.head(1000)
    bf.summarize(bf.simulate(warm, policy))

    load_before = os.getloadavg()
    t, c = time.perf_counter(), time.process_time()
    result = bf.simulate(cases, policy)
    t_sim, c_sim = time.perf_counter() - t, time.process_time() - c
    rss_sim = _rss_mb()
    t, c = time.perf_counter(), time.process_time()
    summary = bf.summarize(result)
    t_sum, c_sum = time.perf_counter() - t, time.process_time() - c
    load_after = os.getloadavg()

    sample = cases.head(args.sample)
    t = time.perf_counter()
    ref = bf.simulate(sample, policy, engine="reference")
    t_ref = time.perf_counter() - t
    agree = ref.select(bf.OUTPUT_COLUMNS).equals(bf.simulate(sample, policy).select(bf.OUTPUT_COLUMNS))

    res = {
        "cases": args.cases,
        "people": args.people,
        "policy": policy.name,
        "synth_seconds": round(t_synth, 3),
        "simulate_seconds": round(t_sim, 3),
        "simulate_cases_per_s": round(args.cases / t_sim),
        "simulate_cpu_seconds": round(c_sim, 3),
        "summarize_seconds": round(t_sum, 3),
        "summarize_cpu_seconds": round(c_sum, 3),
        "total_seconds": round(t_sim + t_sum, 3),
        "groups": summary.height,
        "reference_sample": args.sample,
        "reference_seconds": round(t_ref, 3),
        "reference_cases_per_s": round(args.sample / t_ref),
        "batch_equals_reference_on_sample": bool(agree),
        "peak_rss_mb_after_data": round(rss_data),
        "peak_rss_mb": round(max(rss_sim, _rss_mb())),
        "loadavg_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(
        f"simulate : {args.cases:,} cases, {args.people:,} people in {t_sim:.2f} s "
        f"({args.cases / t_sim:,.0f} cases/s); CPU time {c_sim:.2f} s"
    )
    print(f"summarize: {t_sum:.2f} s ({summary.height} groups); CPU time {c_sum:.2f} s")
    print(
        f"reference: {args.sample:,} cases in {t_ref:.2f} s ({args.sample / t_ref:,.0f} cases/s); "
        f"batch equals reference: {agree}"
    )
    print(
        f"peak RSS {res['peak_rss_mb']:,} MB (data alone {res['peak_rss_mb_after_data']:,} MB); "
        f"load average {load_before[0]:.1f} → {load_after[0]:.1f} on {os.cpu_count()} CPUs"
    )
    out = Path(__file__).resolve().parent / "results" / "bench_benefits.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
