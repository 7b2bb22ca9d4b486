"""Benchmark of batch DRG grouping (issue 3): speed, memory and start-up.

Run from the repository root::

    python benchmarks/bench_group.py                 # sizes 1e6 and 1e7
    python benchmarks/bench_group.py --sizes 1e5     # a quick look
    python benchmarks/bench_group.py --sizes 2e6 --files-only   # the file figures alone

Synthetic cases come from ``casemix.synth.synth_cases`` on the national
CHS-DRG 1.1 scheme (``../shared/schemes/chs-drg-1.1``, or
``--scheme PATH``), about 6 secondary diagnoses and 2 procedures per case.
Every measurement runs in a fresh subprocess so that peak RSS
(``ru_maxrss``) belongs to that measurement alone.  Printed and written to
``benchmarks/results/bench_group.json``:

- ``import casemix`` time; first batch call with a cold and a warm numba
  cache (a private ``NUMBA_CACHE_DIR``, so the repository's cache is left
  alone);
- per size, in memory: the canonical path stage by stage (intake
  ``read_cases``, encode, kernel, decode, warnings, attach, their sum), the
  direct path ``casemix.group`` takes for typed input (its encoding, then
  the whole ``group_direct``), and ``casemix.group`` itself; wall and CPU seconds, cases/s, peak RSS against
  2x the Arrow size of the input;
- per size, Parquet → Parquet streaming (``group_parquet``), writing all
  input columns and only ``case_id`` with the results, and for scale the
  same file copied by polars with no grouping at all;
- per size, the same cases as CSV exports carry them (``synth_cases(...,
  layout="strings")``: diagnoses and procedures as ``|``-joined text, 4% of
  rows given a dirty code: unknown, blank, lower case, spaces):
  ``casemix.group`` on a one-chunk frame and on a frame of 40 parts
  (``pl.concat``, not rechunked) beside "polars alone: split the diagnosis
  strings and join them to the scheme's dictionary" in the same process;
  the CSV file grouped into Parquet (read, group, write) beside polars
  alone reading that CSV and writing it as Parquet with no grouping, and
  its CPU seconds stage by stage (parse, group, encode), also with the
  number and date columns typed by the parser (what that would save); and
  the Parquet file of every column grouped Parquet → Parquet (issue 16);
- the reference engine on 20,000 cases and the speed-up of the batch engine
  over it (same canonical input, same six columns).

Wall-clock figures depend on what else runs on the machine: the load
average at start and end is recorded next to them.  The file figures a
target is set for (Parquet -> Parquet with every column, lists and
``|``-strings; CSV -> Parquet) and their polars yardsticks are the best of
``--file-repeats`` runs (3), each in its own process, every run's wall
time printed beside it; their variants run once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TARGETS = {
    "end_to_end_in_memory_cases_per_s": 2_000_000,
    "kernel_cases_per_s": 10_000_000,
    "parquet_to_parquet_cases_per_s": 1_000_000,
    "pipe_strings_cases_per_s": 2_000_000,
    "pipe_strings_over_polars_split_join_min": 0.8,
    "csv_to_parquet_cases_per_s": 1_000_000,
    "peak_rss_over_arrow_input_max": 2.0,
    "import_s_max": 1.0,
    "first_call_warm_cache_s_max": 3.0,
}
MEAN_SDX = 6.0
MEAN_OPROC = 3.5  # other procedures where there is a principal one: ~2 procedures per case overall
DIRTY_SHARE = 0.04  # rows of the |-string input given a fault intake cleans or reports
PARTS = 40  # the chunked frame: pl.concat of this many parts, not rechunked


def _find_scheme() -> str:
    for candidate in (os.environ.get("CASEMIX_SHARED"), REPO.parent / "shared"):
        if candidate and (Path(candidate) / "schemes" / "chs-drg-1.1" / "scheme.toml").is_file():
            return str(Path(candidate) / "schemes" / "chs-drg-1.1")
    raise SystemExit("chs-drg-1.1 not found: pass --scheme PATH or set CASEMIX_SHARED")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Clock:
    def __init__(self) -> None:
        self.stages: dict[str, dict] = {}

    def __call__(self, name: str, fn, n: int):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        self.stages[name] = {"wall_s": wall, "cpu_s": cpu, "cases_per_s": n / wall if wall else None}
        return out


# -- subprocess tasks -----------------------------------------------------------------------


def task_import() -> dict:
    t = time.perf_counter()
    import casemix  # noqa: F401

    return {"import_s": time.perf_counter() - t}


def task_first_call(scheme_path: str) -> dict:
    t0 = time.perf_counter()
    import polars as pl

    import casemix
    from casemix.drg.batch import group_frame

    t1 = time.perf_counter()
    scheme = casemix.load_scheme(scheme_path)
    t2 = time.perf_counter()
    one = pl.DataFrame(
        {
            "pdx": ["I10.x00"],
            "sdx": [["E11.900"]],
            "pproc": [None],
            "oproc": [[]],
            "sex": [1.0],
            "age": [60.0],
            "age_days": [None],
            "birth_weight": [None],
            "los": [5.0],
            "discharge": [1.0],
            "malformed": [[]],
            "intake_warnings": [[]],
        },
        schema_overrides={
            "pproc": pl.String,
            "oproc": pl.List(pl.String),
            "age_days": pl.Float64,
            "birth_weight": pl.Float64,
            "malformed": pl.List(pl.String),
            "intake_warnings": pl.List(pl.String),
        },
    )
    casemix.group(one.drop("malformed", "intake_warnings"), scheme=scheme)  # the public call
    group_frame(one, scheme, warnings=True)  # and the canonical path's kernels
    t3 = time.perf_counter()
    return {"import_s": t1 - t0, "load_scheme_s": t2 - t1, "first_batch_call_s": t3 - t2}


def dirty_rows(df, share: float = DIRTY_SHARE, seed: int = 11):
    """``df`` (|-string layout) with about ``share`` of its rows given one fault each.

    The faults intake cleans or reports, a quarter each: an unknown code
    (``ZZZ.999`` added), blank codes (``||`` at the end), the diagnoses in
    lower case, spaces around every separator and at the start.  Returns the
    frame and the number of rows changed.
    """
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    kind = np.where(rng.random(df.height) < share, rng.integers(1, 5, df.height), 0)
    k = pl.Series("k", kind)
    d = pl.col("diagnoses")
    out = df.with_columns(
        pl.when(k == 1)
        .then(d + "|ZZZ.999")
        .when(k == 2)
        .then(d + "||")
        .when(k == 3)
        .then(d.str.to_lowercase())
        .when(k == 4)
        .then(" " + d.str.replace_all("|", " | ", literal=True))
        .otherwise(d)
        .alias("diagnoses")
    )
    return out, int((kind > 0).sum())


def task_synth(scheme_path: str, n: int, path: str) -> dict:
    import polars as pl

    import casemix
    from casemix.synth import synth_cases

    t = time.perf_counter()
    scheme = casemix.load_scheme(scheme_path)
    df = synth_cases(scheme, n, seed=3, mean_sdx=MEAN_SDX, mean_oproc=MEAN_OPROC)
    df.write_parquet(path, row_group_size=250_000)
    procs = (df["pproc"].is_not_null().cast(pl.Int64) + df["oproc"].list.len()).mean()
    # the same cases as CSV exports carry them: codes as |-strings, a few rows dirty
    strings = synth_cases(scheme, n, seed=3, mean_sdx=MEAN_SDX, mean_oproc=MEAN_OPROC, layout="strings")
    strings, changed = dirty_rows(strings)
    stem = str(path).removesuffix(".parquet")
    strings.write_parquet(stem + "-strings.parquet", row_group_size=250_000)
    strings.write_csv(stem + "-strings.csv")
    return {
        "synth_s": time.perf_counter() - t,
        "rows": df.height,
        "mean_sdx": float(df["sdx"].list.len().mean()),
        "mean_procedures": float(procs),
        "dirty_rows_added": changed,
        "dirty_share_added": changed / max(1, n),
    }


def task_group(scheme_path: str, path: str) -> dict:
    """casemix.group end to end, alone in its process (for its peak RSS)."""
    import polars as pl

    import casemix

    scheme = casemix.load_scheme(scheme_path)
    df = pl.read_parquet(path)
    arrow_mb = df.to_arrow().nbytes / 2**20
    casemix.group(df.head(1000), scheme=scheme)  # load kernels and scheme tables
    rss0 = _rss_mb()
    clock = _Clock()
    out = clock("casemix.group", lambda: casemix.group(df, scheme=scheme), df.height)
    assert out.height == df.height
    return {
        "arrow_input_mb": arrow_mb,
        "rss_before_mb": rss0,
        "peak_rss_mb": _peak_mb(),
        **clock.stages["casemix.group"],
    }


def task_stages(scheme_path: str, path: str) -> dict:
    """The batch path of casemix.group, stage by stage."""
    import polars as pl

    import casemix
    from casemix.cases import attach, read_cases
    from casemix.drg import kernel
    from casemix.drg.batch import decode, group_frame, warnings_fast
    from casemix.drg.compile import compile_scheme
    from casemix.encode import encode_cases

    scheme = casemix.load_scheme(scheme_path)
    df = pl.read_parquet(path)
    n = df.height
    compiled = compile_scheme(scheme)
    group_frame(read_cases(df.head(1000)), scheme, warnings=True)  # warm
    casemix.group(df.head(1000), scheme=scheme)
    clock = _Clock()
    canonical = clock("intake", lambda: read_cases(df), n)
    enc = clock("encode", lambda: encode_cases(canonical, scheme, compiled.malformed_fields), n)
    codes = clock("kernel", lambda: kernel.run(enc, compiled), n)
    result = clock("decode", lambda: decode(codes, compiled), n)
    warn = clock("warnings", lambda: warnings_fast(canonical, enc, scheme), n)
    result = result.with_columns(warn)
    out = clock("attach", lambda: attach(df, result), n)
    assert out.height == n
    total = {k: sum(s[k] for s in clock.stages.values()) for k in ("wall_s", "cpu_s")}
    clock.stages["canonical path total"] = {**total, "cases_per_s": n / total["wall_s"]}
    # the direct path casemix.group takes for typed input (casemix.drg.direct)
    from casemix.cases._resolve import resolve
    from casemix.drg.direct import _encode_chunk, _slices, group_direct

    plan = resolve(df, None, ("pdx",))

    def direct_encode():
        dirty = 0
        for start, length in _slices(df, ["sdx", "oproc"], 1_000_000):
            dirty += int(_encode_chunk(df.slice(start, length), plan, scheme)[1].sum())
        return dirty

    dirty = clock("direct: encode", direct_encode, n)
    direct = clock("direct path total", lambda: group_direct(df, scheme), n)
    assert direct.equals(result), "direct and canonical paths disagree"
    # the kernel once more on one thread: CPU cost per case without the other core
    import numba

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    clock("kernel, 1 thread", lambda: kernel.run(enc, compiled), n)
    numba.set_num_threads(threads)
    return {"stages": clock.stages, "threads": threads, "direct_dirty_rows": dirty}


#: untimed pause after each timed run of ``task_pipes``: the memory a run frees is given back to
#: the system by the allocators' background threads over about 1.5 s (0.12-0.15 CPU-s of page
#: purging after "polars split + join", 0.03 s after ``casemix.group``, measured with 2M cases);
#: without the pause that work lands in the next timed run, on the same two cores
SETTLE_S = 2.0


def task_pipes(scheme_path: str, path: str, repeats: int) -> dict:
    """casemix.group on |-string input, one chunk and 40 chunks, beside polars splitting alone.

    The polars figure: split the diagnosis strings, explode them and join
    them to the scheme's code dictionary, no grouping (issue 16's yardstick).
    Each is run ``repeats`` times and the best run is kept.  No run pays for
    another's memory: every timed run is followed by an untimed pause
    (:data:`SETTLE_S`), and the order of the three is rotated from one
    repeat to the next (session 6 always ran "1 chunk" right after polars
    and measured it 20% slower than "40 chunks" for that reason alone).
    """
    import gc

    import polars as pl

    import casemix
    from casemix.encode import code_index

    scheme = casemix.load_scheme(scheme_path)
    df = pl.read_parquet(path).rechunk()
    n = df.height
    step = -(-n // PARTS)
    parts = pl.concat([df.slice(k, step) for k in range(0, n, step)], rechunk=False)
    assert parts["diagnoses"].n_chunks() == min(PARTS, n)
    index = code_index(scheme)
    dictionary = pl.DataFrame({"code": index.codes, "id": pl.int_range(len(index.codes), eager=True)})
    casemix.group(df.head(1000), scheme=scheme)  # load kernels and scheme tables

    def polars_split_join():
        return (
            df.select(pl.col("diagnoses").str.split("|").alias("code"))
            .explode("code")
            .join(dictionary, on="code", how="left")
        )

    runs = {
        "polars split + join": polars_split_join,
        "casemix.group, 1 chunk": lambda: casemix.group(df, scheme=scheme),
        f"casemix.group, {PARTS} chunks": lambda: casemix.group(parts, scheme=scheme),
    }
    names = list(runs)
    best: dict[str, dict] = {}
    every: dict[str, list] = {name: [] for name in names}
    first: dict[str, object] = {}
    for r in range(max(1, repeats)):
        for name in names[r % 3 :] + names[: r % 3]:
            clock = _Clock()
            out = clock(name, runs[name], n)
            if r == 0 and name != "polars split + join":
                first[name] = out.drop(df.columns)
            del out
            gc.collect()
            time.sleep(SETTLE_S)
            s = clock.stages[name]
            every[name].append(round(s["wall_s"], 4))
            if name not in best or s["wall_s"] < best[name]["wall_s"]:
                best[name] = s
    one, many = first["casemix.group, 1 chunk"], first[f"casemix.group, {PARTS} chunks"]
    assert one.height == n and one.equals(many), "chunked input grouped differently"
    base = best["polars split + join"]["cases_per_s"]
    for name in runs:
        best[name]["over_polars"] = best[name]["cases_per_s"] / base
        best[name]["every_wall_s"] = every[name]
    return {
        "rows": n,
        "rows_with_warnings": int((one["warnings"] != "").sum()),
        "stages": best,
        "settle_s": SETTLE_S,
        "loadavg": os.getloadavg(),
    }


def task_csv(scheme_path: str, path: str, dst: str, how: str = "cli", groupers: int = 2) -> dict:
    """A CSV file of |-string cases grouped into Parquet: read, group, write.

    ``how="cli"``: what ``casemix group cases.csv -o out.parquet`` runs
    (``group_csv``: read in batches by polars' streaming reader, ``groupers``
    batches grouped at once while the next are parsed and the previous ones'
    row groups encoded); ``how="key"``: the same with ``--keep case_id`` (only
    ``case_id`` of the input written beside the results); ``how="whole"``: the file read whole (``read_table``), then
    ``group_table`` (session 6's path); ``how="group"``: ``casemix.group(path)``
    then ``write_table``.
    """
    import polars as pl

    import casemix
    import casemix.drg.batch as batch
    from casemix.drg.batch import group_csv, group_table
    from casemix.io import read_table, write_table

    batch.GROUPING_THREADS = groupers
    scheme = casemix.load_scheme(scheme_path)
    casemix.group(pl.read_csv(path, n_rows=1000, infer_schema=False), scheme=scheme)  # load kernels
    w, c = time.perf_counter(), time.process_time()
    if how == "cli":
        rows = group_csv(path, dst, scheme)["rows"]
    elif how == "key":
        rows = group_csv(path, dst, scheme, keep=["case_id"])["rows"]
    elif how == "whole":
        rows = group_table(read_table(path), dst, scheme)["rows"]
    else:
        out = casemix.group(path, scheme=scheme)
        write_table(out, dst, force=True)
        rows = out.height
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    return {
        "how": how,
        "groupers": groupers,
        "wall_s": wall,
        "cpu_s": cpu,
        "cases_per_s": rows / wall,
        "rows": rows,
        "peak_rss_mb": _peak_mb(),
    }


def task_csv_polars(path: str, dst: str) -> dict:
    """polars alone on the CSV file, no grouping: read it as text, then write it as Parquet.

    The yardstick of CSV -> Parquet measured in the same run: ``read_s`` is
    ``pl.read_csv`` (every column as text, as casemix reads it), ``wall_s``
    reading and writing (casemix's Parquet codec, polars' encoder).
    """
    import polars as pl

    from casemix.io import parquet_options

    w, c = time.perf_counter(), time.process_time()
    df = pl.read_csv(path, infer_schema=False)
    read_wall, read_cpu = time.perf_counter() - w, time.process_time() - c
    df.write_parquet(dst, **parquet_options(polars=True))
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    return {
        "read_wall_s": read_wall,
        "read_cpu_s": read_cpu,
        "read_cases_per_s": df.height / read_wall,
        "wall_s": wall,
        "cpu_s": cpu,
        "cases_per_s": df.height / wall,
        "rows": df.height,
    }


def task_csv_stages(scheme_path: str, path: str, dst: str) -> dict:
    """CSV -> Parquet stage by stage, one after another in one process (CPU-s add up).

    ``parse``: ``read_table`` (every column as text); ``group``:
    ``casemix.group``'s work on that frame (``group_input``); ``encode``:
    ``group_table`` minus ``group`` (the output's row groups encoded and
    written).  ``typed_*``: the same with the CSV parser typing the number and
    date columns (``schema_overrides``), for lever (a) of issue 16 -- *not*
    what casemix writes (its output keeps the input's text columns).
    """
    import polars as pl

    import casemix
    from casemix.drg.batch import group_input, group_table
    from casemix.io import read_table

    scheme = casemix.load_scheme(scheme_path)
    casemix.group(pl.read_csv(path, n_rows=1000, infer_schema=False), scheme=scheme)  # load kernels
    # the number and date columns typed as the same cases are in their Parquet file
    typed = pl.read_parquet_schema(str(path).removesuffix(".csv") + ".parquet")
    types = {c: t for c, t in typed.items() if t.is_numeric() or t == pl.Date}
    out: dict = {}

    def timed(name: str, fn):
        time.sleep(SETTLE_S)  # the allocator hands memory back after the last stage
        w, c = time.perf_counter(), time.process_time()
        value = fn()
        out[name] = {"wall_s": time.perf_counter() - w, "cpu_s": time.process_time() - c}
        return value

    for prefix, read in (
        ("", lambda: read_table(path)),
        ("typed_", lambda: pl.read_csv(path, infer_schema=False, schema_overrides=types)),
    ):
        frame = timed(prefix + "parse", read)
        timed(prefix + "group", lambda frame=frame: group_input(frame, scheme))
        timed(prefix + "group_table", lambda frame=frame: group_table(frame, dst, scheme))
        out[prefix + "encode"] = {
            k: out[prefix + "group_table"][k] - out[prefix + "group"][k] for k in ("wall_s", "cpu_s")
        }
        del frame
    out["rows"] = pl.scan_csv(path, infer_schema=False).select(pl.len()).collect().item()
    out["loadavg"] = os.getloadavg()
    return out


def task_parquet(
    scheme_path: str,
    path: str,
    dst: str,
    batch_size: int,
    keep: str,
    groupers: int = 2,
    compression: str = "",
) -> dict:
    """``group_parquet``, ``groupers`` batches grouped at once (1: session 6's way).

    ``compression``: the codec asked for (``""``: casemix's default, ``PARQUET_COMPRESSION``).
    """
    import polars as pl

    import casemix
    import casemix.drg.batch as batch
    from casemix.drg.batch import group_parquet
    from casemix.io import PARQUET_COMPRESSION

    batch.GROUPING_THREADS = groupers
    scheme = casemix.load_scheme(scheme_path)
    casemix.group(pl.read_parquet(path, n_rows=1000), scheme=scheme)  # load kernels and tables
    w, c = time.perf_counter(), time.process_time()
    info = group_parquet(
        path,
        dst,
        scheme,
        batch_size=batch_size,
        progress=False,
        keep=keep if keep in ("all", "none") else keep.split(","),
        compression=compression or None,
    )
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "cases_per_s": info["rows"] / wall,
        "rows": info["rows"],
        "batches": info["batches"],
        "batch_size": batch_size,
        "keep": keep,
        "groupers": groupers,
        "compression": compression or PARQUET_COMPRESSION,
        "mb": Path(dst).stat().st_size / 1e6,
        "peak_rss_mb": _peak_mb(),
    }


def task_copy(path: str, dst: str) -> dict:
    """The file copied Parquet → Parquet by polars' streaming engine, no grouping: the floor."""
    import polars as pl

    w, c = time.perf_counter(), time.process_time()
    pl.scan_parquet(path).sink_parquet(dst)
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    return {"wall_s": wall, "cpu_s": cpu, "cases_per_s": rows / wall, "peak_rss_mb": _peak_mb()}


def task_reference(scheme_path: str, path: str, n: int) -> dict:
    import polars as pl

    import casemix
    from casemix.cases import read_cases
    from casemix.drg import reference_frame
    from casemix.drg.batch import group_frame

    scheme = casemix.load_scheme(scheme_path)
    canonical = read_cases(pl.read_parquet(path).head(n))
    group_frame(canonical.head(10), scheme)
    t = time.perf_counter()
    ref = reference_frame(canonical, scheme)
    t_ref = time.perf_counter() - t
    t = time.perf_counter()
    bat = group_frame(canonical, scheme)
    t_bat = time.perf_counter() - t
    return {
        "rows": canonical.height,
        "reference_s": t_ref,
        "reference_cases_per_s": canonical.height / t_ref,
        "batch_s": t_bat,
        "batch_cases_per_s": canonical.height / t_bat,
        "speedup": t_ref / t_bat,
        "identical": ref.equals(bat),
    }


TASKS = {
    "import": task_import,
    "first_call": task_first_call,
    "synth": task_synth,
    "group": task_group,
    "stages": task_stages,
    "parquet": task_parquet,
    "pipes": task_pipes,
    "csv": task_csv,
    "copy": task_copy,
    "csv_polars": task_csv_polars,
    "csv_stages": task_csv_stages,
    "reference": task_reference,
}


def _run(task: str, *args, env: dict | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--task", task, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=REPO)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"benchmark task {task} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _best(repeats: int, task: str, *args) -> dict:
    """``task`` run ``repeats`` times, each in a fresh process: the run of least wall time,
    with every run's wall time (``every_wall_s``).

    The file figures move by 10-20% from one run to the next on this shared
    2-core machine (session 8: Parquet -> Parquet 0.78 and 0.96M/s on the
    same commit); the best of a few is the figure least disturbed by others.
    """
    runs = [_run(task, *args) for _ in range(max(1, repeats))]
    best = dict(min(runs, key=lambda r: r["wall_s"]))
    best["every_wall_s"] = [round(r["wall_s"], 4) for r in runs]
    return best


def _runs(p: dict) -> str:
    every = p.get("every_wall_s", [])
    return f" (best of {', '.join(f'{w:.2f}' for w in every)} s)" if len(every) > 1 else ""


def _start_up(results: dict, scheme: str) -> None:
    """``import casemix`` and the first batch call with a cold and a warm numba cache."""
    imports = [_run("import")["import_s"] for _ in range(3)]
    results["import_s"] = min(imports)
    print(f"import casemix: {min(imports):.3f} s (best of 3)")
    with tempfile.TemporaryDirectory() as cache:
        env = {"NUMBA_CACHE_DIR": cache}
        cold = _run("first_call", scheme, env=env)
        warm = _run("first_call", scheme, env=env)
    results["first_call"] = {"cold_cache": cold, "warm_cache": warm}
    print(
        f"first batch call: cold cache {cold['first_batch_call_s']:.2f} s, warm cache "
        f"{warm['first_batch_call_s']:.2f} s (scheme load {warm['load_scheme_s']:.2f} s, not included)"
    )


def _in_memory(entry: dict, scheme: str, src: Path) -> None:
    """The canonical and direct paths stage by stage, and ``casemix.group`` with its peak RSS."""
    entry["in_memory"] = _run("stages", scheme, src)
    for name, s in entry["in_memory"]["stages"].items():
        print(
            f"  {name:<20} {s['wall_s']:7.2f} s wall {s['cpu_s']:7.2f} s cpu "
            f"{_fmt_rate(s['cases_per_s']):>13} cases/s"
        )
    g = entry["casemix.group"] = _run("group", scheme, src)
    print(
        f"  {'casemix.group':<20} {g['wall_s']:7.2f} s wall {g['cpu_s']:7.2f} s cpu "
        f"{_fmt_rate(g['cases_per_s']):>13} cases/s; peak RSS {g['peak_rss_mb']:,.0f} MB "
        f"= {g['peak_rss_mb'] / g['arrow_input_mb']:.2f} x Arrow input ({g['arrow_input_mb']:,.0f} MB)"
    )


def _reference(results: dict, scheme: str, tmp: Path, n: int) -> None:
    """The reference engine on ``n`` cases and the batch engine's speed-up over it."""
    ref_src = tmp / "reference.parquet"
    _run("synth", scheme, n, ref_src)
    r = results["reference"] = _run("reference", scheme, ref_src, n)
    print(
        f"\nreference engine, {r['rows']:,} cases: {_fmt_rate(r['reference_cases_per_s'])} cases/s; "
        f"batch {_fmt_rate(r['batch_cases_per_s'])} cases/s; speed-up x{r['speedup']:.0f}; "
        f"identical: {r['identical']}"
    )


def _fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e6,1e7", help="comma-separated case counts (default 1e6,1e7)")
    ap.add_argument("--scheme", default=None, help="scheme folder (default ../shared/schemes/chs-drg-1.1)")
    ap.add_argument("--reference-n", type=int, default=20_000)
    ap.add_argument("--batch-size", type=int, default=262_144, help="rows per Parquet batch")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each |-string measurement (best kept)")
    ap.add_argument(
        "--file-repeats",
        type=int,
        default=3,
        help="runs of each file figure a target is set for, and of its polars yardstick (best kept)",
    )
    ap.add_argument("--out", default=str(HERE / "results" / "bench_group.json"))
    ap.add_argument(
        "--files-only",
        action="store_true",
        help="only the file figures (Parquet -> Parquet, CSV -> Parquet and their polars yardsticks)",
    )
    ap.add_argument("--task", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.task:
        name, *rest = args.task
        conv = [int(a) if a.isdigit() else a for a in rest]
        print(json.dumps(TASKS[name](*conv)))
        return {}

    scheme = args.scheme or _find_scheme()
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    import numba
    import polars

    results: dict = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "polars": polars.__version__,
            "numba": numba.__version__,
            "loadavg_start": os.getloadavg(),
        },
        "scheme": Path(scheme).name,  # by name: no machine path in the results
        "targets": TARGETS,
        "sizes": {},
    }
    print(f"casemix batch grouping benchmark — {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")

    files_only = args.files_only
    reps = args.file_repeats
    if files_only:
        results["files_only"] = True
    else:
        _start_up(results, scheme)

    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            src, dst = Path(tmp) / f"cases-{n}.parquet", Path(tmp) / f"grouped-{n}.parquet"
            entry: dict = {"data": _run("synth", scheme, n, src)}
            d = entry["data"]
            print(
                f"\n{n:,} cases: {d['mean_sdx']:.2f} secondary diagnoses and "
                f"{d['mean_procedures']:.2f} procedures per case"
            )
            if not files_only:
                _in_memory(entry, scheme, src)
            for keep, label in (("all", "all columns"), ("case_id", "case_id + results")):
                p = entry["parquet" if keep == "all" else "parquet_key_only"] = _best(
                    reps, "parquet", scheme, src, dst, args.batch_size, keep
                )
                print(
                    f"  {'Parquet -> Parquet':<20} {p['wall_s']:7.2f} s wall {p['cpu_s']:7.2f} s cpu "
                    f"{_fmt_rate(p['cases_per_s']):>13} cases/s; peak RSS {p['peak_rss_mb']:,.0f} MB"
                    f" ({label}){_runs(p)}"
                )
            p = entry["parquet_copy_floor"] = _best(reps, "copy", src, dst)
            print(
                f"  {'Parquet copy':<20} {p['wall_s']:7.2f} s wall {p['cpu_s']:7.2f} s cpu "
                f"{_fmt_rate(p['cases_per_s']):>13} cases/s (polars scan → sink, no grouping: "
                f"the cost of rewriting every input column){_runs(p)}"
            )
            # |-string input (as CSV exports arrive), with dirty rows
            strings = str(src).removesuffix(".parquet") + "-strings.parquet"
            print(
                f"  |-strings: diagnoses and procedures as '|'-joined text, "
                f"{d['dirty_share_added']:.1%} of rows given a dirty code (load {os.getloadavg()[0]:.1f})"
            )
            if not files_only:
                pipes = entry["pipe_strings"] = _run("pipes", scheme, strings, args.repeats)
                for name, s in pipes["stages"].items():
                    print(
                        f"  {name:<28} {s['wall_s']:7.2f} s wall {s['cpu_s']:7.2f} s cpu "
                        f"{_fmt_rate(s['cases_per_s']):>13} cases/s = {s['over_polars']:.2f} x polars"
                        f" (best of {', '.join(f'{w:.2f}' for w in s['every_wall_s'])} s)"
                    )
            csv_path = strings.replace(".parquet", ".csv")
            y = entry["csv_polars"] = _best(reps, "csv_polars", csv_path, dst)
            print(
                f"  {'polars read_csv alone':<28} {y['read_wall_s']:7.2f} s wall {y['read_cpu_s']:7.2f} s cpu "
                f"{_fmt_rate(y['read_cases_per_s']):>13} cases/s (yardstick: every column as text)"
            )
            print(
                f"  {'polars CSV -> Parquet':<28} {y['wall_s']:7.2f} s wall {y['cpu_s']:7.2f} s cpu "
                f"{_fmt_rate(y['cases_per_s']):>13} cases/s (yardstick: read + write_parquet, no grouping)"
                f"{_runs(y)}"
            )
            for how, groupers, key, label in (
                ("cli", 2, "csv_to_parquet", "CSV -> Parquet"),
                ("cli", 1, "csv_to_parquet_one_grouper", "  one batch grouped at a time"),
                ("key", 2, "csv_to_parquet_key_only", "  --keep case_id"),
                ("whole", 2, "csv_whole_then_write", "  read whole, group_table"),
                ("group", 2, "csv_group_then_write", "  casemix.group + write"),
            ):
                # the target's figure best of --file-repeats, the variants once each
                c = entry[key] = _best(
                    reps if key == "csv_to_parquet" else 1, "csv", scheme, csv_path, dst, how, groupers
                )
                print(
                    f"  {label:<28} {c['wall_s']:7.2f} s wall {c['cpu_s']:7.2f} s cpu "
                    f"{_fmt_rate(c['cases_per_s']):>13} cases/s; peak RSS {c['peak_rss_mb']:,.0f} MB{_runs(c)}"
                )
            st = entry["csv_stages"] = _run("csv_stages", scheme, csv_path, dst)
            for prefix, label in (("", "text columns"), ("typed_", "typed numbers")):
                print(
                    f"  {'  stages, ' + label:<28} "
                    + ", ".join(f"{k} {st[prefix + k]['cpu_s']:.2f}" for k in ("parse", "group", "encode"))
                    + " CPU-s"
                    + (
                        " (numbers and dates typed by the parser: not casemix's output, which keeps the text)"
                        if prefix
                        else ""
                    )
                )
            for groupers, codec, key, label in (
                (2, "", "parquet_strings", "(|-strings, all columns)"),
                (1, "", "parquet_strings_one_grouper", "(the same, one batch grouped at a time)"),
                (2, "zstd", "parquet_strings_zstd", "(the same, --compression zstd)"),
            ):
                p = entry[key] = _best(
                    reps if key == "parquet_strings" else 1,
                    "parquet",
                    scheme,
                    strings,
                    dst,
                    args.batch_size,
                    "all",
                    groupers,
                    codec,
                )
                print(
                    f"  {'Parquet -> Parquet':<28} {p['wall_s']:7.2f} s wall {p['cpu_s']:7.2f} s cpu "
                    f"{_fmt_rate(p['cases_per_s']):>13} cases/s; peak RSS {p['peak_rss_mb']:,.0f} MB, "
                    f"{p['mb']:,.0f} MB written, {p['compression']} {label}{_runs(p)}"
                )
            print(f"  load average now {os.getloadavg()[0]:.1f}")
            results["sizes"][str(n)] = entry
        if not files_only:
            _reference(results, scheme, Path(tmp), args.reference_n)
    results["machine"]["loadavg_end"] = os.getloadavg()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}; written {out}")
    return results


if __name__ == "__main__":
    main()
