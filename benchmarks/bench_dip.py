"""DIP grouping speed: batch (numba) engine on 1M cases vs the reference engine on a sample.

Usage: python benchmarks/bench_dip.py [--cases N] [--sample S] [--catalog built|dip-demo]

Cases are synthetic (``casemix.dip.synth``), resampled to N rows; the
catalog is built from a synthetic history (``built``, default) or the
shipped ``dip-demo``. Prints cases/s for both engines, checks they agree on
the sample, and writes benchmarks/results/bench_dip.json. The kernel is
compiled (or loaded from numba's cache) before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import polars as pl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=20_000)
    ap.add_argument("--catalog", default="built")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()

    import casemix.dip as dip
    from casemix.dip import synth

    t0 = time.perf_counter()
    history = synth.history(10_000, years=(2022, 2023), seed=args.seed)
    base = synth.history(max(args.sample, 10_000), years=(2024,), seed=args.seed + 1)
    cat = dip.build_catalog(history) if args.catalog == "built" else dip.load_catalog(args.catalog)
    cases = base.sample(n=args.cases, with_replacement=True, seed=args.seed)
    sample = base.head(args.sample)
    setup = time.perf_counter() - t0

    dip.group(sample.head(100), cat)  # compile or load the kernel
    t = time.perf_counter()
    batch = dip.group(cases, cat)
    t_batch = time.perf_counter() - t

    t = time.perf_counter()
    ref = dip.group(sample, cat, engine="reference")
    t_ref = time.perf_counter() - t
    agree = ref.equals(dip.group(sample, cat))

    res = {
        "cases": args.cases,
        "sample": args.sample,
        "catalog": cat.id,
        "groups": len(cat.groups),
        "batch_seconds": round(t_batch, 3),
        "batch_cases_per_s": round(args.cases / t_batch),
        "reference_seconds": round(t_ref, 3),
        "reference_cases_per_s": round(args.sample / t_ref),
        "speedup": round((args.cases / t_batch) / (args.sample / t_ref), 1),
        "engines_agree_on_sample": bool(agree),
        "grouped_share": round(float((batch["status"] == "grouped").mean()), 4),
        "setup_seconds": round(setup, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "polars": pl.__version__,
    }
    for k, v in res.items():
        print(f"{k:>26}: {v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{k:>26}: {v}")
    out = Path(__file__).parent / "results" / "bench_dip.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    print(f"→ {out}")


if __name__ == "__main__":
    main()
