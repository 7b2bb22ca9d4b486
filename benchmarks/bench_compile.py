"""Benchmark of the first run (issue 16): numba's cold compile, kernel by kernel.

Run from the repository root::

    python benchmarks/bench_compile.py            # cold then warm, written to results/
    python benchmarks/bench_compile.py --runs 3   # best of 3 cold runs (each with an empty cache)

Every run is a fresh subprocess with its own empty ``NUMBA_CACHE_DIR`` (a
temporary folder, so the repository's cache is left alone) and
``CASEMIX_NUMBA_CACHE=1``.  The subprocess times ``import casemix``, loading
the national scheme (``chs-drg-1.1``), then the first ``casemix.group`` of
a small frame (list columns, 64 cases, two with unknown codes), then the
first ``casemix.group`` of the same cases as ``|``-strings and the first
``group_frame`` of the canonical path — each one compiles only what the
previous ones did not.  A second cold process makes the ``|``-string call
first: the first run of someone whose cases come from a CSV export.  numba's ``numba:compile`` events give the seconds
of each kernel compiled (top-level dispatchers; helper functions compiled
inside them count towards their caller) and, from each overload's
metadata, the part spent in LLVM (``llvm_lock``).  A second subprocess
on the same cache folder gives the warm figures (numba loads the cache).

Printed and written to ``benchmarks/results/bench_compile.json``, with
the load average at start and end (wall-clock compile time doubles on a
busy machine: compare runs only at similar load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_COLD_S = 8.0
N_CASES = 64


def _frame(scheme):
    """64 cases with codes of the scheme (the first diagnoses and procedures of its
    dictionary, a different mix per case), two of them with an unknown code."""
    import numpy as np
    import polars as pl

    from casemix.encode import code_index

    index = code_index(scheme)
    codes = index.codes.to_numpy()
    dx = codes[np.flatnonzero(index.is_diagnosis)[:200]].tolist()
    px = codes[np.flatnonzero(index.is_procedure)[:50]].tolist()
    n = N_CASES
    return pl.DataFrame(
        {
            "case_id": [str(i) for i in range(n)],
            "pdx": [dx[i] if i != 5 else "NOT.A.CODE" for i in range(n)],
            "sdx": [
                [dx[(7 * i + k) % len(dx)] for k in range(i % 5)] + (["X.BAD"] if i == 9 else [])
                for i in range(n)
            ],
            "pproc": [px[i % len(px)] if i % 3 == 0 else None for i in range(n)],
            "oproc": [[px[(i + k) % len(px)] for k in range(i % 3)] for i in range(n)],
            "sex": [1 + i % 2 for i in range(n)],
            "age": [20 + i for i in range(n)],
            "los": [1 + i % 9 for i in range(n)],
        },
        schema_overrides={"pproc": pl.String, "oproc": pl.List(pl.String)},
    )


def child(first: str = "lists") -> dict:
    """One process: import, scheme, then the first calls, with numba's compile events.

    ``first`` is ``"lists"`` (list columns first, then ``|``-strings) or ``"strings"``.
    """
    import warnings

    warnings.simplefilter("ignore")  # a low grouping rate is expected of 64 made-up cases
    t0 = time.perf_counter()
    import casemix

    t1 = time.perf_counter()
    import polars as pl
    from numba.core import event as ev

    from casemix.drg.batch import group_frame

    scheme = casemix.load_scheme("chs-drg-1.1")
    t2 = time.perf_counter()

    class Compiles(ev.Listener):
        """Top-level compiles only: a dispatcher compiled while another compiles is part of it."""

        def __init__(self) -> None:
            self.depth = 0
            self.start = 0.0
            self.cpu = 0.0
            self.seconds: dict[str, float] = {}
            self.cpu_seconds: dict[str, float] = {}
            self.dispatchers: dict[str, object] = {}
            self.call = ""  # the call running now
            self.calls: dict[str, list[str]] = {}  # call -> kernels it compiled

        def on_start(self, event) -> None:
            if self.depth == 0:
                self.start = time.perf_counter()
                self.cpu = time.thread_time()
            self.depth += 1

        def on_end(self, event) -> None:
            self.depth -= 1
            if self.depth == 0:
                d = event.data["dispatcher"]
                name = f"{d.py_func.__module__}.{d.py_func.__qualname__}"
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - self.start
                self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + time.thread_time() - self.cpu
                self.dispatchers[name] = d
                self.calls.setdefault(self.call, []).append(name)

    listener = Compiles()
    df = _frame(scheme)
    as_strings = df.with_columns(
        pl.col("sdx").list.join("|"), pl.col("oproc").list.join("|").replace("", None)
    )
    canonical = casemix.read_cases(df)
    steps, cpu = {}, {}
    calls = [
        ("group_lists", lambda: casemix.group(df, scheme=scheme)),
        ("group_strings", lambda: casemix.group(as_strings, scheme=scheme)),
        ("group_frame_canonical", lambda: group_frame(canonical, scheme, warnings=True)),
    ]
    if first == "strings":
        calls[:2] = calls[1::-1]
    with ev.install_listener("numba:compile", listener):
        for name, call in calls:
            listener.call = name
            t, c = time.perf_counter(), time.process_time()
            out = call()
            assert out.height == N_CASES
            steps[name] = time.perf_counter() - t
            cpu[name] = time.process_time() - c
    kernels = {}
    for name, seconds in sorted(listener.seconds.items(), key=lambda kv: -kv[1]):
        d = listener.dispatchers[name]
        llvm = sum(d.get_metadata(sig).get("timers", {}).get("llvm_lock", 0.0) for sig in d.signatures)
        kernels[name] = {
            "compile_s": seconds,
            "compile_cpu_s": listener.cpu_seconds[name],
            "llvm_s": llvm,
            "signatures": len(d.signatures),
        }
    return {
        "import_s": t1 - t0,
        "load_scheme_s": t2 - t1,
        "first_calls_s": steps,
        "first_calls_cpu_s": cpu,
        "first_group_s": steps[calls[0][0]],
        "first_group_cpu_s": cpu[calls[0][0]],
        "first_all_s": sum(steps.values()),
        "compiled_s": sum(k["compile_s"] for k in kernels.values()),
        "kernels": kernels,
        "kernels_by_call": listener.calls,
    }


def _run(cache: str, first: str = "lists") -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, "CASEMIX_NUMBA_CACHE": "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", first], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr}")
    result = json.loads(out.stdout.splitlines()[-1])
    # the first-run notice (other lines may name paths of this machine)
    result["notice"] = [line for line in out.stderr.splitlines() if line.startswith("casemix:")]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=("lists", "strings"), help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=1, help="cold runs (each with an empty cache); best kept")
    parser.add_argument("--out", default=str(HERE / "results" / "bench_compile.json"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    import numba

    load0 = os.getloadavg()
    print(f"casemix first-run compile benchmark — {os.cpu_count()} CPUs, load {load0[0]:.2f}")
    colds, colds_strings, warm = [], [], None
    for r in range(args.runs):
        with tempfile.TemporaryDirectory() as cache:
            colds.append(_run(cache))
            if r == 0:
                warm = _run(cache)
        with tempfile.TemporaryDirectory() as cache:
            colds_strings.append(_run(cache, "strings"))
    cold = min(colds, key=lambda c: c["first_group_s"])
    cold_strings = min(colds_strings, key=lambda c: c["first_group_s"])
    load1 = os.getloadavg()
    results = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numba": numba.__version__,
            "loadavg_start": load0,
            "loadavg_end": load1,
        },
        "target_cold_first_group_s_max": TARGET_COLD_S,
        "cold_runs_first_group_s": [c["first_group_s"] for c in colds],
        "cold": cold,
        "warm": warm,
        "cold_strings_first_runs_s": [c["first_group_s"] for c in colds_strings],
        "cold_strings_first": cold_strings,
    }
    print(f"import casemix: {cold['import_s']:.2f} s cold, {warm['import_s']:.2f} s warm")
    print(f"load chs-drg-1.1: {warm['load_scheme_s']:.2f} s (not included below)")
    for step, s in cold["first_calls_s"].items():
        print(
            f"first {step}: cold cache {s:.2f} s (CPU {cold['first_calls_cpu_s'][step]:.2f} s), "
            f"warm cache {warm['first_calls_s'][step]:.2f} s (CPU {warm['first_calls_cpu_s'][step]:.2f} s)"
        )
    print(
        f"cold first casemix.group: {cold['first_group_s']:.2f} s (target <= {TARGET_COLD_S:.0f} s); "
        f"all three calls {cold['first_all_s']:.2f} s, of which numba compiling {cold['compiled_s']:.2f} s"
    )
    first_kernels = cold_strings["kernels_by_call"].get("group_strings", [])
    print(
        f"cold first casemix.group on |-string input (a fresh cache, that call first): "
        f"{cold_strings['first_group_s']:.2f} s (CPU {cold_strings['first_group_cpu_s']:.2f} s; "
        f"target <= {TARGET_COLD_S:.0f} s); it compiled "
        + ", ".join(
            f"{k.rsplit('.', 1)[1]} {cold_strings['kernels'][k]['compile_cpu_s']:.2f}" for k in first_kernels
        )
        + " CPU-s"
    )
    if args.runs > 1:
        print("cold runs: " + ", ".join(f"{s:.2f}" for s in results["cold_runs_first_group_s"]) + " s")
        print(
            "cold runs, |-strings first: "
            + ", ".join(f"{s:.2f}" for s in results["cold_strings_first_runs_s"])
        )
    for label, run in (("list input first", cold), ("|-string input first", cold_strings)):
        print(f"kernels compiled (cold, {label}):")
        for name, k in run["kernels"].items():
            print(
                f"  {k['compile_s']:7.2f} s  (CPU {k['compile_cpu_s']:6.2f} s, LLVM {k['llvm_s']:5.2f} s, "
                f"{k['signatures']} sig)  {name}"
            )
    print(f"load average: start {load0[0]:.2f}, end {load1[0]:.2f}")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
