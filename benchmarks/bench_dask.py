"""Settlement (and grouping) of N synthetic cases (default 20M) on Dask vs one process.

Usage: python benchmarks/bench_dask.py [--cases N] [--chunk C] [--workers W] [--dir DIR] [--keep] [--out JSON]

1. Data: N cases from ``casemix.synth.synth_cases`` (scheme casemix-demo,
   list layout), written in chunks of C rows as a partitioned Parquet
   dataset ``DIR/cases/part.NNNNN.parquet`` (not timed; case ids made unique).
2. One process (run in a child process, so its peak RSS is its own):
   ``group_parquet`` file by file (the streaming batch engine, numba over
   all cores), then ``casemix.settle.settle`` of the grouped columns it
   needs, read into memory, and its per-case table written to Parquet.
3. Dask with a distributed Client — what a user who passes one gets:
   ``casemix.dask.connect("local:W")`` (W processes × 1 thread,
   ``NUMBA_NUM_THREADS=1``), ``casemix.dask.group`` → Parquet folder
   written partition by partition, ``casemix.dask.settle`` of the same
   columns of that folder → per-case Parquet folder.  CPU seconds of every
   process (workers; scheduler and client, one process in a LocalCluster);
   peak RSS per worker process; bytes spilled to disk.
4. Dask without a Client — Dask's default scheduler for these graphs, the
   threaded one (W threads, in a child process): ``casemix.dask.settle`` of
   the same grouped folder → per-case Parquet folder.
5. A distributed LocalCluster of one process × W threads (a child process):
   the same settlement, for the comparison with W processes × 1 thread.
6. The hospital tables and every case's payment of the settlements are
   compared to the one process's, to the fen.

Prints wall and CPU seconds of each settlement and the ratios to one process
(target: at most 1.5 at 20M), the scheduler each figure comes from, cases/s
and peak memory; writes benchmarks/results/bench_dask.json with the load
average (a busy machine slows every figure; CPU seconds much less so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCHEME = "casemix-demo"
SETTLE_COLS = ["case_id", "hospital_id", "hospital_level", "drg", "adrg", "total_cost", "los", "discharge"]


def _rss_mb() -> float:
    """Peak RSS of this process in MB: ``VmHWM`` (reset when a process execs), not ``ru_maxrss``,
    which a spawned child starts at its parent's size (every peak below the parent's read as the
    parent's)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process so far: what a loaded machine disturbs least."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _import_settlement() -> None:
    import casemix.dask._settle  # noqa: F401


def make_data(folder: Path, n: int, chunk: int) -> dict:
    import polars as pl

    from casemix.synth import synth_cases

    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    done, i = 0, 0
    while done < n:
        m = min(chunk, n - done)
        df = synth_cases(SCHEME, m, seed=1000 + i, layout="lists")
        df = df.with_columns((pl.lit(f"c{i:04d}-") + pl.col("case_id")).alias("case_id"))
        df.write_parquet(folder / f"part.{i:05d}.parquet")
        done += m
        i += 1
    return {"files": i, "seconds": time.perf_counter() - t}


def _policy(budget_yuan: int):
    from decimal import Decimal

    from casemix.budget import Policy

    return Policy.demo().replace(budget=Decimal(budget_yuan))


def single(src: Path, work: Path, weights_path: Path, budget: int) -> dict:
    """The one-process path; run in a child process (see ``main``)."""
    import polars as pl

    from casemix.drg.batch import group_parquet
    from casemix.settle import settle

    out = work / "single-grouped"
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(src.glob("part.*.parquet"))
    group_parquet(files[0], out / "warm.parquet", SCHEME, progress=False)  # load the kernel
    (out / "warm.parquet").unlink()
    rss_warm = _rss_mb()
    t = time.perf_counter()
    rows = 0
    for f in files:
        rows += group_parquet(f, out / f.name, SCHEME, progress=False)["rows"]
    t_group = time.perf_counter() - t
    rss_group = _rss_mb()

    t, cpu = time.perf_counter(), _cpu_s()
    frame = pl.read_parquet(out / "*.parquet", columns=SETTLE_COLS)
    weights = pl.read_parquet(weights_path)
    s = settle(frame, _policy(budget), weights=weights)
    s.cases.write_parquet(work / "single-settled.parquet")
    t_settle, cpu_settle = time.perf_counter() - t, _cpu_s() - cpu
    s.hospitals.write_parquet(work / "single-hospitals.parquet")
    return {
        "rows": rows,
        "group_s": t_group,
        "settle_s": t_settle,
        "settle_cpu_s": cpu_settle,
        "peak_rss_mb": _rss_mb(),
        "rss_after_group_mb": rss_group,
        "rss_after_warmup_mb": rss_warm,
    }


def threaded(grouped: Path, work: Path, weights_path: Path, workers: int, budget: int) -> dict:
    """``casemix.dask.settle`` on Dask's threaded scheduler (no Client); run in a child process."""
    import dask
    import polars as pl

    import casemix.dask as cd
    from casemix.cli.dask_opts import read_dataset, write_dataset

    _import_settlement()  # as the one process imported casemix.settle before its clock
    with dask.config.set(scheduler="threads", num_workers=workers):
        t, cpu = time.perf_counter(), _cpu_s()
        ddf = read_dataset(grouped)[SETTLE_COLS]
        s = cd.settle(ddf, _policy(budget), weights=pl.read_parquet(weights_path))
        t_reduce = time.perf_counter() - t
        write_dataset(s.cases, work / "threads-settled")
        t_settle, cpu_settle = time.perf_counter() - t, _cpu_s() - cpu
    pl.from_pandas(s.hospitals).write_parquet(work / "threads-hospitals.parquet")
    return {
        "scheduler": f"dask threaded scheduler, {workers} threads, no Client",
        "settle_s": t_settle,
        "settle_until_tables_s": t_reduce,
        "settle_cpu_s": cpu_settle,
        "partitions": s.cases.npartitions,
        "peak_rss_mb": _rss_mb(),
    }


def _worker_cpu() -> float:
    import resource as r

    u = r.getrusage(r.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _pid() -> int:
    return os.getpid()


def _compiled() -> int:
    """Kernels compiled in a worker instead of loaded from numba's cache."""
    from casemix.drg import kernel

    return sum(kernel.group_kernel.stats.cache_misses.values())


def _spilled(dask_worker) -> int:
    """Bytes a worker spilled to disk so far (Dask's memory manager)."""
    total = getattr(dask_worker.data, "spilled_total", None)
    return int(total.disk) if total is not None else 0


def settle_on_client(client, grouped: Path, work: Path, weights_path: Path, budget: int, name: str) -> dict:
    """``casemix.dask.settle`` of the grouped folder on ``client``'s cluster → ``work/name-settled``.

    CPU seconds of every process of the cluster: workers, scheduler and client — a
    LocalCluster's scheduler runs in the client's process, which is then counted once.
    """
    import polars as pl

    import casemix.dask as cd
    from casemix.cli.dask_opts import read_dataset, write_dataset

    # the settlement modules imported in the workers before the clock starts, as the one
    # process imported them before its own
    client.run(_import_settlement)
    same = client.run_on_scheduler(_pid) == os.getpid()

    def cpu() -> tuple[float, float, float]:
        return sum(client.run(_worker_cpu).values()), client.run_on_scheduler(_worker_cpu), _cpu_s()

    spilled = sum(client.run(_spilled).values())
    before = cpu()
    t = time.perf_counter()
    # the columns the one-process settlement reads, so both write the same per-case table
    ddf = read_dataset(grouped)[SETTLE_COLS]
    s = cd.settle(ddf, _policy(budget), weights=pl.read_parquet(weights_path))
    t_reduce = time.perf_counter() - t
    write_dataset(s.cases, work / f"{name}-settled")
    t_settle = time.perf_counter() - t
    used = [b - a for a, b in zip(before, cpu(), strict=True)]
    if same:
        cpu_s = {"workers": used[0], "scheduler and client (one process)": used[2]}
    else:
        cpu_s = dict(zip(("workers", "scheduler", "client"), used, strict=True))
    pl.from_pandas(s.hospitals).write_parquet(work / f"{name}-hospitals.parquet")
    return {
        "settle_s": t_settle,
        "settle_until_tables_s": t_reduce,
        "settle_cpu_s": cpu_s,
        "partitions": s.cases.npartitions,
        "spilled_to_disk_mb": (sum(client.run(_spilled).values()) - spilled) / 2**20,
        "peak_rss_per_worker_mb": sorted(client.run(_rss_mb).values()),
    }


def on_dask(src: Path, work: Path, weights_path: Path, workers: int, budget: int) -> dict:
    """Grouping and settlement on ``casemix.dask.connect("local:W")``: W processes × 1 thread."""
    import casemix.dask as cd
    from casemix.cli.dask_opts import read_dataset, write_dataset

    t = time.perf_counter()
    client = cd.connect(f"local:{workers}")
    t_start = time.perf_counter() - t
    try:
        ddf = read_dataset(src)
        t = time.perf_counter()
        rows = write_dataset(cd.group(ddf, scheme=SCHEME), work / "dask-grouped")
        t_group = time.perf_counter() - t
        st = settle_on_client(client, work / "dask-grouped", work, weights_path, budget, "dask")
        misses = sum(client.run(_compiled).values())
    finally:
        client.close()
    return {
        "scheduler": f"distributed LocalCluster, {workers} processes x 1 thread (a Client)",
        "rows": rows,
        "cluster_start_s": t_start,
        "group_s": t_group,
        **st,
        "kernel_compiles_in_workers": misses,
        "client_peak_rss_mb": _rss_mb(),
    }


def one_worker(grouped: Path, work: Path, weights_path: Path, threads: int, budget: int) -> dict:
    """Settlement on a LocalCluster of one process with ``threads`` threads (a Client)."""
    import dask
    from distributed import Client

    import casemix.dask as cd
    from casemix.dask._cluster import TRIM, worker_env

    cd.warm_numba_cache()
    # the worker as casemix.dask.connect starts them (one numba and polars thread per task,
    # glibc's malloc thresholds), with W threads
    with (
        dask.config.set({TRIM: None}),
        Client(
            n_workers=1,
            threads_per_worker=threads,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            env=worker_env(),
        ) as client,
    ):
        st = settle_on_client(client, grouped, work, weights_path, budget, "dask1x")
    return {"scheduler": f"distributed LocalCluster, 1 process x {threads} threads (a Client)", **st}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=lambda x: int(float(x)), default=20_000_000, help="e.g. 2e7")
    ap.add_argument("--chunk", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "casemix-bench-dask")
    ap.add_argument("--keep", action="store_true", help="keep DIR afterwards")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_dask.json", help="results JSON"
    )
    ap.add_argument(
        "--single-only", nargs=4, metavar=("SRC", "WORK", "WEIGHTS", "BUDGET"), help=argparse.SUPPRESS
    )
    ap.add_argument(
        "--threads-only", nargs=4, metavar=("GROUPED", "WORK", "WEIGHTS", "BUDGET"), help=argparse.SUPPRESS
    )
    ap.add_argument(
        "--one-worker-only", nargs=4, metavar=("GROUPED", "WORK", "WEIGHTS", "BUDGET"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.single_only:
        src, work, wp = (Path(x) for x in args.single_only[:3])
        print(json.dumps(single(src, work, wp, int(args.single_only[3]))))
        return
    if args.threads_only:
        src, work, wp = (Path(x) for x in args.threads_only[:3])
        print(json.dumps(threaded(src, work, wp, args.workers, int(args.threads_only[3]))))
        return
    if args.one_worker_only:
        src, work, wp = (Path(x) for x in args.one_worker_only[:3])
        print(json.dumps(one_worker(src, work, wp, args.workers, int(args.one_worker_only[3]))))
        return

    import polars as pl

    from casemix.weights import compute_weights

    src, work = args.dir / "cases", args.dir / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    have = (
        pl.scan_parquet(src / "*.parquet").select(pl.len()).collect().item()
        if src.exists() and any(src.glob("*.parquet"))
        else 0
    )
    data = {"reused": True}
    if have != args.cases:
        shutil.rmtree(src, ignore_errors=True)
        data = make_data(src, args.cases, args.chunk)
    print(f"data: {args.cases:,} cases in {src} {data}", flush=True)

    # weights from the first file, grouped in memory: the same table for both settlements
    import casemix

    first = pl.read_parquet(sorted(src.glob("part.*.parquet"))[0])
    weights = compute_weights(casemix.group(first, scheme=SCHEME))
    weights_path = work / "weights.parquet"
    weights.table.write_parquet(weights_path)

    # the budget: 92% of all cases' cost, one figure for both settlements
    total = pl.scan_parquet(src / "*.parquet").select(pl.col("total_cost").sum()).collect().item()
    budget = round(total * 0.92)

    load_before = tuple(round(x, 2) for x in os.getloadavg())
    child = subprocess.run(
        [sys.executable, __file__, "--single-only", str(src), str(work), str(weights_path), str(budget)],
        capture_output=True,
        text=True,
        check=True,
    )
    one = json.loads(child.stdout.strip().splitlines()[-1])
    print(
        f"one process: group {one['group_s']:.1f} s, settle {one['settle_s']:.1f} s, "
        f"peak RSS {one['peak_rss_mb']:,.0f} MB",
        flush=True,
    )
    dk = on_dask(src, work, weights_path, args.workers, budget)
    print(
        f"dask: group {dk['group_s']:.1f} s, settle {dk['settle_s']:.1f} s, peak RSS per "
        f"worker {dk['peak_rss_per_worker_mb']} MB, client {dk['client_peak_rss_mb']:,.0f} MB",
        flush=True,
    )

    def child_run(flag: str) -> dict:
        """A settlement of the cluster's grouped folder in a child process (its own peak RSS)."""
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--workers",
                str(args.workers),
                flag,
                str(work / "dask-grouped"),
                str(work),
                str(weights_path),
                str(budget),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    th = child_run("--threads-only")
    print(
        f"dask, threaded scheduler: settle {th['settle_s']:.1f} s, peak RSS {th['peak_rss_mb']:,.0f} MB",
        flush=True,
    )
    w1 = child_run("--one-worker-only")
    print(f"dask, {w1['scheduler']}: settle {w1['settle_s']:.1f} s", flush=True)
    load_after = tuple(round(x, 2) for x in os.getloadavg())

    h1 = pl.read_parquet(work / "single-hospitals.parquet")
    money = [c for c in h1.columns if c.endswith("_fen")]
    c1 = pl.read_parquet(work / "single-settled.parquet", columns=["case_id", "payment_fen"])

    def same(name: str) -> dict[str, bool]:
        h2 = pl.read_parquet(work / f"{name}-hospitals.parquet")
        c2 = pl.read_parquet(work / f"{name}-settled" / "*.parquet", columns=["case_id", "payment_fen"])
        return {
            "hospital_money_equal_to_the_fen": h1.select("hospital_id", *money).equals(
                h2.select("hospital_id", *money)
            ),
            "case_payments_equal_to_the_fen": c1.equals(c2),
        }

    n = args.cases

    def ratios(run: dict) -> dict:
        cpu = run["settle_cpu_s"]
        cpu = sum(cpu.values()) if isinstance(cpu, dict) else cpu
        return {"wall": run["settle_s"] / one["settle_s"], "cpu": cpu / one["settle_cpu_s"], "cpu_s": cpu}

    runs = {"dask_threads": th, "dask": dk, "dask_1_process": w1}
    for name, run in runs.items():
        run.update(same({"dask_threads": "threads", "dask": "dask", "dask_1_process": "dask1x"}[name]))
        run["settle_cases_per_s"] = n / run["settle_s"]
        run["ratio_to_one_process"] = ratios(run)
    dk["group_cases_per_s"] = n / dk["group_s"]
    result = {
        "cases": n,
        "workers": args.workers,
        "chunk_rows": args.chunk,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_before,
            "load_after": load_after,
        },
        "one_process": {
            **one,
            "group_cases_per_s": n / one["group_s"],
            "settle_cases_per_s": n / one["settle_s"],
        },
        **runs,
        "group_ratio_to_one_process": dk["group_s"] / one["group_s"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}; 2 cores shared", flush=True)
    print(
        f"settle {n:,} cases, one process: {one['settle_s']:.1f} s wall, {one['settle_cpu_s']:.1f} CPU-s "
        "(target for Dask: at most 1.5 x the wall time)",
        flush=True,
    )
    for name, run in runs.items():
        r = run["ratio_to_one_process"]
        cpu = run["settle_cpu_s"]
        parts = " + ".join(f"{k} {v:.1f}" for k, v in cpu.items()) + " = " if isinstance(cpu, dict) else ""
        default = " (the default without a Client)" if name == "dask_threads" else ""
        print(
            f"  Dask, {run['scheduler']}{default}: {run['settle_s']:.1f} s wall (x {r['wall']:.2f}), "
            f"CPU-s {parts}{r['cpu_s']:.1f} (x {r['cpu']:.2f}); {run['partitions']} partitions; equal to "
            f"the fen: hospital money {run['hospital_money_equal_to_the_fen']}, every case's payment "
            f"{run['case_payments_equal_to_the_fen']}",
            flush=True,
        )
    print(
        f"  peak RSS: one process {one['peak_rss_mb']:,.0f} MB, threaded {th['peak_rss_mb']:,.0f} MB, "
        f"workers {', '.join(f'{x:,.0f}' for x in dk['peak_rss_per_worker_mb'])} MB (spilled to disk "
        f"{dk['spilled_to_disk_mb']:,.0f} MB), one-process cluster "
        f"{', '.join(f'{x:,.0f}' for x in w1['peak_rss_per_worker_mb'])} MB",
        flush=True,
    )
    print(
        f"group {n:,} cases: one process {n / one['group_s']:,.0f} cases/s, Dask ({dk['scheduler']}) "
        f"{n / dk['group_s']:,.0f} cases/s (x {result['group_ratio_to_one_process']:.2f} time)"
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
