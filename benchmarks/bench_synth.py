"""Generation speed of the synthetic region (casemix.synth.synth_cases), issue 17.

Issue 17 asks for "the current generation speed or better" at tens of
millions of cases.  Each size runs in its own subprocess (so the peak RSS
belongs to that one generation); the numba kernels are compiled (or loaded
from the cache) by a 1,000-case call first, which is not timed.

Usage: python benchmarks/bench_synth.py [--sizes 1e6 1e7] [--scheme chs-drg-1.1] [--seed 3]

Prints, per size: wall seconds, CPU seconds (all threads), cases/s (wall and
per CPU second), peak RSS and the frame's own size; the load average before
and after; and the figures of the generator casemix.synth replaced, to
compare with.  Writes benchmarks/results/bench_synth.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

#: The generator casemix.synth replaced (before commit 544ce49), same scheme and layout.
#: docs/synthetic-region.md "Speed" (measured side by side on 2026-12-03, load 6–17) and
#: benchmarks/results/bench_group.json at df3a039 (2026-11-25, load 0.2: `synth_s`).
PREVIOUS = {
    "source": "docs/synthetic-region.md at ef12a39; bench_group.json at df3a039",
    "1000000": {
        "cpu_s": [1.2, 1.5],
        "cases_per_s": [156_000, 186_000],
        "peak_rss_mb": 600,
        "idle_wall_s": 2.85,
    },
    "10000000": {
        "cpu_s": [13.0, 14.0],
        "cases_per_s": [179_000, 292_000],
        "peak_rss_mb": 3800,
        "idle_wall_s": 50.36,
    },
}

_CHILD = r"""
import json, resource, sys, time
from casemix.synth import synth_cases
from casemix.scheme import load_scheme
n, scheme, seed = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
sch = load_scheme(scheme)
synth_cases(sch, 1000, seed=seed)          # numba: compile or load the cache, not timed
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
t0, c0 = time.perf_counter(), time.process_time()
df = synth_cases(sch, n, seed=seed)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({
    "rows": df.height,
    "columns": df.width,
    "wall_s": wall,
    "cpu_s": cpu,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    "rss_before_mb": rss0,
    "frame_mb": df.estimated_size() / 2**20,
}))
"""


def measure(n: int, scheme: str, seed: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(n), scheme, str(seed)], capture_output=True, text=True
    )
    if out.returncode:
        sys.exit(f"generating {n:,} cases failed:\n{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["cases_per_s"] = n / r["wall_s"]
    r["cases_per_cpu_s"] = n / r["cpu_s"]
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--scheme", default="chs-drg-1.1")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_synth.json")
    args = ap.parse_args()

    load0 = os.getloadavg()
    print(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} ({os.cpu_count()} CPUs)")
    sizes = {}
    for s in args.sizes:
        n = int(s)
        r = measure(n, args.scheme, args.seed)
        sizes[str(n)] = r
        prev = PREVIOUS.get(str(n))
        print(
            f"{n:>12,} cases: {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s CPU, "
            f"{r['cases_per_s']:,.0f} cases/s ({r['cases_per_cpu_s']:,.0f} per CPU s), "
            f"peak RSS {r['peak_rss_mb']:,.0f} MB, frame {r['frame_mb']:,.0f} MB"
        )
        if prev:
            print(
                f"{'':>12}  previous generator: CPU {prev['cpu_s'][0]:g}–{prev['cpu_s'][1]:g} s, "
                f"{prev['cases_per_s'][0]:,}–{prev['cases_per_s'][1]:,} cases/s, "
                f"peak RSS {prev['peak_rss_mb']:,} MB (idle machine: {prev['idle_wall_s']:g} s wall)"
            )
    load1 = os.getloadavg()
    print(f"load average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": load0,
            "loadavg_end": load1,
            "self_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        },
        "scheme": args.scheme,
        "seed": args.seed,
        "layout": "lists",
        "sizes": sizes,
        "previous_generator": PREVIOUS,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
