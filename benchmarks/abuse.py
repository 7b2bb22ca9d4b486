"""Abuse run: the casemix CLI over a battery of bad inputs (issue 15).

Each run is classified:

``clean``      exit 2 and exactly one ``Error: …`` line, no traceback (the target)
``internal``   one ``Error: internal error …`` line, exit 1 (an unexpected exception: a bug)
``traceback``  a raw Python traceback escaped
``accepted``   exit 0 — expected only for the runs marked ``ok`` (valid but odd input),
               which are then checked for what they must say (e.g. an implausible-value
               warning); an accepted bad input counts as ``silent``
``loss``       a file the run had to leave alone (its input) changed
``leak``       an error echoed content from a file outside the scheme folder

Run ``python benchmarks/abuse.py`` (about a minute; ``--json FILE`` writes the
figures; ``--subprocess`` runs each command as its own process, as a user would).  The target is 0 traceback, 0 internal, 0 silent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from click.testing import CliRunner

from casemix.cli import main
from casemix.scheme import tables_root
from casemix.synth import synth_cases

_REPO = Path(__file__).resolve().parent.parent


@dataclass
class Case:
    name: str
    args: list[str]
    ok: bool = False  # valid input: must exit 0
    check: Callable[[Path], str | None] | None = None  # after an ok run: None or what is wrong
    intact: Path | None = None  # a file the run must leave byte for byte


def _scheme_copy(
    root: Path,
    name: str,
    edit: dict[str, Callable[[str], str]] | None = None,
    replace: dict[str, bytes] | None = None,
) -> Path:
    folder = root / name
    shutil.copytree(tables_root() / "casemix-demo", folder)
    for file, fn in (edit or {}).items():
        p = folder / file
        p.write_text(fn(p.read_text(encoding="utf-8")), encoding="utf-8")
    for file, data in (replace or {}).items():
        (folder / file).write_bytes(data)
    return folder


def battery(root: Path) -> list[Case]:
    good = synth_cases("casemix-demo", 200, seed=3)
    good_csv = root / "good.csv"
    synth_cases("casemix-demo", 200, seed=3, layout="strings").write_csv(good_csv)
    good_pq = root / "good.parquet"
    good.write_parquet(good_pq)
    text = good_csv.read_text(encoding="utf-8")
    header, *rows = text.splitlines()

    files = {
        "empty.csv": b"",
        "header_only.csv": (header + "\n").encode(),
        "zero.parquet": b"",
        "corrupt.parquet": b"PAR1" + bytes(range(256)) * 4,
        "ragged.csv": (header + "\n" + rows[0] + ",extra,fields\n" + rows[1] + "\n").encode(),
        "short.csv": (header + "\n" + ",".join(rows[0].split(",")[:3]) + "\n").encode(),
        "dupcols.csv": (header + ",age\n" + "\n".join(r + ",5" for r in rows[:5]) + "\n").encode(),
        "nopdx.csv": (b"case_id,age,sex\n1,30,1\n"),
        "gbk.csv": (header + "\n" + rows[0] + "\n").encode() + "诊断".encode("gbk") + b"\n",
        "binary.csv": bytes(range(256)) * 8,
        "notes.txt": b"not cases\n",
        "implausible.csv": None,
    }
    for name, data in files.items():
        if data is not None:
            (root / name).write_bytes(data)
    implausible = good.head(4).with_columns(
        pl.Series("age", [-5.0, 1e300, 5.0, 30.0]), pl.Series("age_days", [None, None, 10.0, -5.0])
    )
    implausible.write_parquet(root / "implausible.parquet")
    (root / "nofiles").mkdir()
    (root / "only_csv").mkdir()
    (root / "only_csv" / "a.csv").write_text(text, encoding="utf-8")

    schemes = {
        "typo": _scheme_copy(
            root, "s_typo", {"scheme.toml": lambda t: t.replace("mdc_fallthrough", "mdc_fall_through")}
        ),
        "badtype": _scheme_copy(
            root,
            "s_badtype",
            {"scheme.toml": lambda t: t.replace("ambiguous_group = true", 'ambiguous_group = "yes"')},
        ),
        "deep": _scheme_copy(
            root,
            "s_deep",
            {"adrg.csv": lambda t: t + "MDCF,99,FX9,x," + "(" * 2000 + "true" + ")" * 2000 + "\n"},
        ),
        "quote": _scheme_copy(
            root,
            "s_quote",
            {
                "mdc.csv": lambda t: (
                    "\n".join(t.splitlines()[:2] + ['3,MDCX,"unterminated,true'] + t.splitlines()[2:]) + "\n"
                )
            },
        ),
        "bom": _scheme_copy(
            root,
            "s_bom",
            replace={
                "scheme.toml": b"\xef\xbb\xbf" + (tables_root() / "casemix-demo" / "scheme.toml").read_bytes()
            },
        ),
        "latin": _scheme_copy(
            root,
            "s_latin",
            replace={
                "scheme.toml": (tables_root() / "casemix-demo" / "scheme.toml")
                .read_bytes()
                .replace(b"casemix", b"casemix\xff", 1)
            },
        ),
        "nomdc": _scheme_copy(root, "s_nomdc"),
        "emptytoml": _scheme_copy(root, "s_emptytoml", replace={"scheme.toml": b""}),
    }
    (schemes["nomdc"] / "mdc.csv").unlink()
    secret = root / "secret.txt"
    secret.write_text("seq,mdc,name,rule\nTOP-SECRET-CONTENT\n", encoding="utf-8")
    link = _scheme_copy(root, "s_link")
    (link / "mdc.csv").unlink()
    (link / "mdc.csv").symlink_to(secret)
    schemes["link"] = link

    outs = iter(range(10_000))

    def fresh(suffix: str = ".parquet") -> str:
        return str(root / f"out{next(outs)}{suffix}")

    weights = root / "weights.csv"
    grouped = root / "grouped.parquet"
    import casemix

    casemix.group(good).write_parquet(grouped)
    casemix.compute_weights(casemix.group(good)).table.select("drg", "rw").write_csv(weights)
    zero_w = root / "weights_zero.csv"
    pl.read_csv(weights).with_columns(pl.lit(0.0).alias("rw")).write_csv(zero_w)
    one_zero_w = root / "weights_one_zero.csv"
    pl.read_csv(weights).with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(0.0).otherwise(pl.col("rw")).alias("rw")
    ).write_csv(one_zero_w)
    inf_w = root / "weights_inf.csv"
    pl.read_csv(weights).with_columns(pl.lit(float("inf")).alias("rw")).write_csv(inf_w)
    victim_pq, victim_csv = root / "victim.parquet", root / "victim.csv"
    good.write_parquet(victim_pq)
    victim_csv.write_text(text, encoding="utf-8")
    cases = [
        Case(
            "group: output = input (Parquet)",
            ["group", str(victim_pq), "-o", str(victim_pq)],
            intact=victim_pq,
        ),
        Case(
            "group: output = input (CSV)",
            ["group", str(victim_csv), "-o", str(victim_csv)],
            intact=victim_csv,
        ),
        Case(
            "settle: weights with rw = 0",
            ["settle", str(grouped), "--policy", "demo", "--weights", str(zero_w), "-o", str(root / "st0")],
        ),
        Case(
            "settle: one DRG with rw = 0",
            [
                "settle",
                str(grouped),
                "--policy",
                "demo",
                "--weights",
                str(one_zero_w),
                "-o",
                str(root / "st2"),
            ],
        ),
        Case(
            "settle: weights with rw = inf",
            ["settle", str(grouped), "--policy", "demo", "--weights", str(inf_w), "-o", str(root / "st1")],
        ),
        Case("group: empty CSV", ["group", str(root / "empty.csv"), "-o", fresh()]),
        Case("group: header-only CSV", ["group", str(root / "header_only.csv"), "-o", fresh()], ok=True),
        Case("group: zero-byte Parquet", ["group", str(root / "zero.parquet"), "-o", fresh()]),
        Case("group: corrupt Parquet", ["group", str(root / "corrupt.parquet"), "-o", fresh()]),
        Case(
            "group: corrupt Parquet to CSV",
            ["group", str(root / "corrupt.parquet"), "-o", str(root / "o.csv")],
        ),
        Case("group: ragged CSV", ["group", str(root / "ragged.csv"), "-o", fresh()]),
        Case("group: short CSV row", ["group", str(root / "short.csv"), "-o", fresh()], ok=True),
        Case("group: duplicate columns", ["group", str(root / "dupcols.csv"), "-o", fresh()]),
        Case("group: no pdx column", ["group", str(root / "nopdx.csv"), "-o", fresh()]),
        # a GBK line among ASCII ones: casemix.io detects GB18030 and must read 诊断 intact
        Case(
            "group: GBK bytes",
            ["group", str(root / "gbk.csv"), "-o", str(root / "gbk_out.csv")],
            ok=True,
            check=_gbk_read_intact,
        ),
        Case("group: binary CSV", ["group", str(root / "binary.csv"), "-o", fresh()]),
        Case("group: .txt input", ["group", str(root / "notes.txt"), "-o", fresh()]),
        Case("group: folder without Parquet", ["group", str(root / "nofiles"), "-o", fresh()]),
        Case("group: folder of CSV", ["group", str(root / "only_csv"), "-o", fresh()]),
        Case("group: bad output suffix", ["group", str(good_pq), "-o", str(root / "o.json")]),
        Case("group: output is a folder", ["group", str(good_csv), "-o", str(root / "nofiles")]),
        Case("group: unknown scheme", ["group", str(good_pq), "-o", fresh(), "--scheme", "nope"]),
        Case("group: batch size 0", ["group", str(good_pq), "-o", fresh(), "--batch-size", "0"]),
        Case("group: negative batch size", ["group", str(good_pq), "-o", fresh(), "--batch-size", "-5"]),
        Case("group: --keep unknown column", ["group", str(good_pq), "-o", fresh(), "--keep", "nope"]),
        Case(
            "group: implausible values",
            ["group", str(root / "implausible.parquet"), "-o", str(root / "impl_out.parquet")],
            ok=True,
            check=_implausible_warned,
        ),
        Case(
            "benefits: missing policy", ["benefits", "--synthetic", "10", "--policy", str(root / "nowhere")]
        ),
        Case(
            "benefits: cases without columns",
            ["benefits", str(root / "nopdx.csv"), "--policy", "illustrative"],
        ),
        Case("benefits: empty CSV", ["benefits", str(root / "empty.csv"), "--policy", "illustrative"]),
        Case(
            "benefits: bad --by",
            ["benefits", "--synthetic", "10", "--policy", "illustrative", "--by", "nope"],
        ),
        Case(
            "settle: empty CSV",
            [
                "settle",
                str(root / "empty.csv"),
                "--policy",
                "demo",
                "--weights",
                str(weights),
                "-o",
                str(root / "st"),
            ],
        ),
        Case(
            "settle: ungrouped cases",
            ["settle", str(good_csv), "--policy", "demo", "--weights", str(weights), "-o", str(root / "st")],
        ),
        Case(
            "settle: unknown policy",
            ["settle", str(grouped), "--policy", "nope", "--weights", str(weights), "-o", str(root / "st")],
        ),
        Case(
            "settle: corrupt weights",
            [
                "settle",
                str(grouped),
                "--policy",
                "demo",
                "--weights",
                str(root / "corrupt.parquet"),
                "-o",
                str(root / "st"),
            ],
        ),
        Case("weights: empty CSV", ["weights", str(root / "empty.csv"), "-o", str(root / "w.csv")]),
        Case("weights: no drg column", ["weights", str(good_csv), "-o", str(root / "w.csv")]),
        Case(
            "weights: corrupt Parquet", ["weights", str(root / "corrupt.parquet"), "-o", str(root / "w.csv")]
        ),
        Case("report: empty CSV", ["report", str(root / "empty.csv"), "-o", str(root / "rep")]),
        Case("report: ungrouped cases", ["report", str(good_csv), "-o", str(root / "rep")]),
        Case(
            "dip group: unknown catalog", ["dip", "group", str(good_pq), "--catalog", "nope", "-o", fresh()]
        ),
        Case("dip group: corrupt Parquet", ["dip", "group", str(root / "corrupt.parquet"), "-o", fresh()]),
        Case(
            "dip settle: ungrouped",
            ["dip", "settle", str(good_csv), "--fund", "1000000", "-o", str(root / "ds")],
        ),
        Case("dip build: empty", ["dip", "build", str(root / "empty.csv"), "-o", str(root / "cat")]),
    ]
    for key, folder in schemes.items():
        cases.append(
            Case(
                f"scheme {key}",
                ["group", str(good_pq), "-o", fresh(), "--scheme", str(folder)],
                ok=(key == "bom"),
            )
        )
    return cases


def _gbk_read_intact(root: Path) -> str | None:
    out = pl.read_csv(root / "gbk_out.csv", infer_schema=False)
    ids = out["case_id"].to_list()
    return None if out.height == 2 and ids[-1] == "诊断" else f"GBK rows read as {ids}"


def _implausible_warned(root: Path) -> str | None:
    out = pl.read_parquet(root / "impl_out.parquet")
    warnings = out["warnings"].cast(pl.String).fill_null("").to_list()
    wanted = ["implausible:age", "implausible:age", "implausible:age_days", "implausible:age_days"]
    if len(warnings) != len(wanted):
        return f"{len(wanted)} rows in, {len(warnings)} out: {warnings}"
    missing = [i for i, (w, code) in enumerate(zip(warnings, wanted, strict=True)) if code not in w]
    return f"rows {missing} lack an implausible-value warning: {warnings}" if missing else None


def classify(case: Case, result, root: Path, before: bytes | None = None) -> tuple[str, str]:
    output = result.output
    if case.intact is not None and case.intact.read_bytes() != before:
        return "loss", f"{case.intact.name} changed (exit {result.exit_code})"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(result.exception))
        return "traceback", tb.strip().splitlines()[-1]
    if "Traceback (most recent call last)" in output:
        return "traceback", output.strip().splitlines()[-1]
    errors = [ln for ln in output.splitlines() if ln.startswith("Error:")]
    if result.exit_code == 0:
        if not case.ok:
            return "silent", "exit 0 on bad input"
        problem = case.check(root) if case.check else None
        return ("silent", problem) if problem else ("accepted", "")
    if "TOP-SECRET-CONTENT" in output:
        return "leak", errors[0] if errors else output[:200]
    if case.ok:
        return "refused", errors[0] if errors else output[:200]
    if errors and errors[0].startswith("Error: internal error"):
        return "internal", errors[0]
    if result.exit_code == 2 and len(errors) == 1:
        return "clean", errors[0]
    return "unclear", f"exit {result.exit_code}: {output.strip()[:200]}"


@dataclass
class _Ran:
    """A finished subprocess, shaped like click's test Result for :func:`classify`."""

    output: str
    exit_code: int
    exception: BaseException | None = None


def _in_process(args: list[str]):
    return CliRunner().invoke(main, args, catch_exceptions=True)


def _subprocess(args: list[str]) -> _Ran:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", "from casemix.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return _Ran(done.stdout + done.stderr, done.returncode)


def run(verbose: bool = True, subprocess: bool = False) -> dict:
    counts: dict[str, int] = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        invoke = _subprocess if subprocess else _in_process
        for case in battery(root):
            before = case.intact.read_bytes() if case.intact is not None else None
            result = invoke(case.args)
            kind, detail = classify(case, result, root, before)
            counts[kind] = counts.get(kind, 0) + 1
            # no machine path in the figures: the temporary folder and the checkout are named
            detail = detail.replace(tmp, "<tmp>").replace(str(_REPO), "<repo>")
            rows.append({"case": case.name, "kind": kind, "detail": detail})
            if verbose:
                print(f"{kind:10} {case.name:38} {detail[:160]}")
    return {"runs": len(rows), "counts": counts, "rows": rows}


def main_() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument(
        "--subprocess",
        action="store_true",
        help="run each command as its own `casemix` process (slower; what a user sees)",
    )
    ns = ap.parse_args()
    res = run(subprocess=ns.subprocess)
    res["mode"] = "subprocess" if ns.subprocess else "in-process"
    print(json.dumps(res["counts"], sort_keys=True))
    if ns.json:
        ns.json.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    bad = sum(
        res["counts"].get(k, 0)
        for k in ("traceback", "internal", "silent", "leak", "unclear", "refused", "loss")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main_())
