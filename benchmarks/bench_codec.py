"""Parquet compression codecs on the files ``casemix group`` writes (issue 16).

Run from the repository root::

    python benchmarks/bench_codec.py --cases 2e6

The bench's ``|``-string cases (``bench_group.task_synth``: 4% dirty rows)
are read from CSV as ``casemix group cases.csv -o out.parquet`` reads them
(every column text) and grouped; the output frame (input columns followed by
the seven result columns) is then encoded once per codec with the options
``drg.batch`` uses for it (dictionary pages for few-valued input columns and
the result columns, statistics for the result columns, 65,536 values per
write batch) on one thread, and read back by polars and by pyarrow.  The
list-column cases of the bench are encoded the same way.  Printed and
written to ``benchmarks/results/bench_codec.json``: per codec, encode and
decode CPU seconds (best of ``--repeats``) and the file size.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        c = time.process_time()
        out = fn()
        best = min(best, time.process_time() - c)
    return best, out


def measure(table, few: list[str], results: list[str], repeats: int) -> dict:
    import polars as pl
    import pyarrow.parquet as pq

    from casemix.drg.batch import ROW_GROUP_ROWS, WRITE_BATCH_ROWS
    from casemix.io import PARQUET_CODECS, PARQUET_ZSTD_LEVEL, parquet_options

    out = {}
    for codec in PARQUET_CODECS:
        name = f"zstd-{PARQUET_ZSTD_LEVEL}" if codec == "zstd" else codec
        # the keywords drg.batch writes a text frame's output with (_TextParts)
        options = {
            **parquet_options(codec),
            "write_batch_size": WRITE_BATCH_ROWS,
            "use_dictionary": [*few, *results],
            "write_statistics": results,
            "row_group_size": ROW_GROUP_ROWS,
        }

        def encode(options=options):
            buf = io.BytesIO()
            pq.write_table(table, buf, **options)
            return buf.getvalue()

        enc, data = _best(encode, repeats)
        dec_pl, _ = _best(lambda data=data: pl.read_parquet(io.BytesIO(data)), repeats)
        dec_pa, _ = _best(lambda data=data: pq.read_table(io.BytesIO(data)), repeats)
        out[name] = {
            "encode_cpu_s": enc,
            "decode_polars_cpu_s": dec_pl,
            "decode_pyarrow_cpu_s": dec_pa,
            "mb": len(data) / 1e6,
        }
        print(
            f"  {name:<8} encode {enc:5.2f} CPU-s  decode polars {dec_pl:5.2f} / pyarrow {dec_pa:5.2f} CPU-s"
            f"  {len(data) / 1e6:7.1f} MB  (load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="2e6")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "bench_codec.json"))
    args = ap.parse_args()
    n = int(float(args.cases))

    import polars as pl
    import pyarrow as pa

    import casemix
    from bench_group import _find_scheme, task_synth
    from casemix.drg.batch import _DICT_MAX, _DICT_SAMPLE

    scheme = casemix.load_scheme(_find_scheme())
    results: dict = {"cases": n, "loadavg_start": os.getloadavg(), "codecs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "cases.parquet"
        task_synth(_find_scheme(), n, str(src))
        for label, frame in (
            (
                "|-strings from CSV",
                pl.read_csv(str(src).replace(".parquet", "-strings.csv"), infer_schema=False),
            ),
            ("list columns", pl.read_parquet(src)),
        ):
            grouped = casemix.group(frame, scheme=scheme)
            result_names = [c for c in grouped.columns if c not in frame.columns]
            # drg.batch's rule for the input columns that get dictionary pages
            sample = frame.head(_DICT_SAMPLE)
            few = [
                c for c in frame.columns if sample[c].dtype == pl.String and sample[c].n_unique() <= _DICT_MAX
            ]
            table = grouped.to_arrow(compat_level=pl.CompatLevel.newest())
            table = pa.table(table.columns, names=table.column_names)
            print(
                f"{n:,} cases, {label}: {len(grouped.columns)} columns (load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
            results["codecs"][label] = measure(table, few, result_names, args.repeats)
    results["loadavg_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
