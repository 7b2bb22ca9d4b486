"""Abuse run: the casemix CLI over a battery of bad inputs (issue 15).

Each run is classified:

``clean``      exit 2 and exactly one ``Error: …`` line, no traceback (the target)
``internal``   one ``Error: internal error …`` line, exit 1 (an unexpected exception: a bug)
``traceback``  a raw Python traceback escaped
``accepted``   exit 0 — expected only for the runs marked ``ok`` (valid but odd input),
               which are then checked for what they must say (e.g. an implausible-value
               warning); an accepted bad input counts as ``silent``

Run ``python benchmarks/abuse.py`` (about a minute; ``--json FILE`` writes the
figures).  The target is 0 traceback, 0 internal, 0 silent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import polars as pl
from click.testing import CliRunner

from casemix.cli import main
from casemix.scheme import tables_root
from casemix.synth import synth_cases


@dataclass
class Case:
    name: str
    args: list[str]
    ok: bool = False                            # valid input: must exit 0
    check: Callable[[Path], str | None] | None = None  # after an ok run: None or what is wrong


def _scheme_copy(root: Path, name: str, edit: dict[str, Callable[[str], str]] | None = None,
                 replace: dict[str, bytes] | None = None) -> Path:
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
        "nopdx.csv": ("case_id,age,sex\n1,30,1\n").encode(),
        "gbk.csv": (header + "\n" + rows[0] + "\n").encode() + "诊断".encode("gbk") + b"\n",
        "binary.csv": bytes(range(256)) * 8,
        "notes.txt": b"not cases\n",
        "implausible.csv": None,
    }
    for name, data in files.items():
        if data is not None:
            (root / name).write_bytes(data)
    implausible = good.head(4).with_columns(
        pl.Series("age", [-5.0, 1e300, 5.0, 30.0]), pl.Series("age_days", [None, None, 10.0, -5.0]))
    implausible.write_parquet(root / "implausible.parquet")
    (root / "nofiles").mkdir()
    (root / "only_csv").mkdir()
    (root / "only_csv" / "a.csv").write_text(text, encoding="utf-8")

    schemes = {
        "typo": _scheme_copy(root, "s_typo", {"scheme.toml": lambda t: t.replace(
            "mdc_fallthrough", "mdc_fall_through")}),
        "badtype": _scheme_copy(root, "s_badtype", {"scheme.toml": lambda t: t.replace(
            "ambiguous_group = true", 'ambiguous_group = "yes"')}),
        "deep": _scheme_copy(root, "s_deep", {"adrg.csv": lambda t: t + "MDCF,99,FX9,x," + "(" * 2000
                                              + "true" + ")" * 2000 + "\n"}),
        "quote": _scheme_copy(root, "s_quote", {"mdc.csv": lambda t: "\n".join(
            t.splitlines()[:2] + ['3,MDCX,"unterminated,true'] + t.splitlines()[2:]) + "\n"}),
        "bom": _scheme_copy(root, "s_bom", replace={"scheme.toml": b"\xef\xbb\xbf" + (
            tables_root() / "casemix-demo" / "scheme.toml").read_bytes()}),
        "latin": _scheme_copy(root, "s_latin", replace={"scheme.toml": (
            tables_root() / "casemix-demo" / "scheme.toml").read_bytes().replace(
            b"casemix", b"casemix\xff", 1)}),
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

    out = str(root / "out.parquet")
    cases = [
        Case("group: empty CSV", ["group", str(root / "empty.csv"), "-o", out]),
        Case("group: header-only CSV", ["group", str(root / "header_only.csv"), "-o", out], ok=True),
        Case("group: zero-byte Parquet", ["group", str(root / "zero.parquet"), "-o", out]),
        Case("group: corrupt Parquet", ["group", str(root / "corrupt.parquet"), "-o", out]),
        Case("group: corrupt Parquet to CSV", ["group", str(root / "corrupt.parquet"), "-o",
                                               str(root / "o.csv")]),
        Case("group: ragged CSV", ["group", str(root / "ragged.csv"), "-o", out]),
        Case("group: short CSV row", ["group", str(root / "short.csv"), "-o", out], ok=True),
        Case("group: duplicate columns", ["group", str(root / "dupcols.csv"), "-o", out]),
        Case("group: no pdx column", ["group", str(root / "nopdx.csv"), "-o", out]),
        Case("group: GBK bytes", ["group", str(root / "gbk.csv"), "-o", out]),
        Case("group: binary CSV", ["group", str(root / "binary.csv"), "-o", out]),
        Case("group: .txt input", ["group", str(root / "notes.txt"), "-o", out]),
        Case("group: folder without Parquet", ["group", str(root / "nofiles"), "-o", out]),
        Case("group: folder of CSV", ["group", str(root / "only_csv"), "-o", out]),
        Case("group: bad output suffix", ["group", str(good_pq), "-o", str(root / "o.xlsx")]),
        Case("group: output is a folder", ["group", str(good_csv), "-o", str(root / "nofiles")]),
        Case("group: unknown scheme", ["group", str(good_pq), "-o", out, "--scheme", "nope"]),
        Case("group: batch size 0", ["group", str(good_pq), "-o", out, "--batch-size", "0"]),
        Case("group: negative batch size", ["group", str(good_pq), "-o", out, "--batch-size", "-5"]),
        Case("group: --keep unknown column", ["group", str(good_pq), "-o", out, "--keep", "nope"]),
        Case("group: implausible values", ["group", str(root / "implausible.parquet"), "-o",
                                           str(root / "impl_out.parquet")], ok=True,
             check=_implausible_warned),
        Case("benefits: missing policy", ["benefits", "--synthetic", "10", "--policy",
                                          str(root / "nowhere")]),
        Case("benefits: cases without columns", ["benefits", str(root / "nopdx.csv"), "--policy",
                                                 "illustrative"]),
        Case("benefits: empty CSV", ["benefits", str(root / "empty.csv"), "--policy", "illustrative"]),
        Case("benefits: bad --by", ["benefits", "--synthetic", "10", "--policy", "illustrative",
                                    "--by", "nope"]),
        Case("settle: empty CSV", ["settle", str(root / "empty.csv"), "--policy", "demo", "-o",
                                   str(root / "st")]),
        Case("settle: ungrouped cases", ["settle", str(good_csv), "--policy", "demo", "-o",
                                         str(root / "st")]),
        Case("settle: unknown policy", ["settle", str(good_csv), "--policy", "nope", "-o",
                                        str(root / "st")]),
        Case("weights: empty CSV", ["weights", str(root / "empty.csv"), "-o", str(root / "w.csv")]),
        Case("weights: no drg column", ["weights", str(good_csv), "-o", str(root / "w.csv")]),
        Case("weights: corrupt Parquet", ["weights", str(root / "corrupt.parquet"), "-o",
                                          str(root / "w.csv")]),
        Case("report: empty CSV", ["report", str(root / "empty.csv"), "-o", str(root / "rep")]),
        Case("report: ungrouped cases", ["report", str(good_csv), "-o", str(root / "rep")]),
        Case("dip group: unknown catalog", ["dip", "group", str(good_pq), "--catalog", "nope", "-o",
                                            out]),
        Case("dip group: corrupt Parquet", ["dip", "group", str(root / "corrupt.parquet"), "-o", out]),
        Case("dip settle: ungrouped", ["dip", "settle", str(good_csv), "-o", str(root / "ds")]),
        Case("dip build: empty", ["dip", "build", str(root / "empty.csv"), "-o", str(root / "cat")]),
    ]
    for key, folder in schemes.items():
        cases.append(Case(f"scheme {key}", ["group", str(good_pq), "-o", out, "--scheme", str(folder)],
                          ok=(key == "bom"),
                          check=None if key != "link" else None))
    cases.append(Case("scheme link: no content echoed", ["group", str(good_pq), "-o", out,
                                                         "--scheme", str(link)],
                      check=None))
    return cases


def _implausible_warned(root: Path) -> str | None:
    out = pl.read_parquet(root / "impl_out.parquet")
    warnings = out["warnings"].cast(pl.String).fill_null("").to_list()
    wanted = ["implausible:age", "implausible:age", "implausible:age_days", "implausible:age_days"]
    missing = [i for i, (w, code) in enumerate(zip(warnings, wanted)) if code not in w]
    return f"rows {missing} lack an implausible-value warning: {warnings}" if missing else None


def classify(case: Case, result, root: Path) -> tuple[str, str]:
    output = result.output
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


def run(verbose: bool = True) -> dict:
    counts: dict[str, int] = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runner = CliRunner()
        for case in battery(root):
            result = runner.invoke(main, case.args, catch_exceptions=True)
            kind, detail = classify(case, result, root)
            counts[kind] = counts.get(kind, 0) + 1
            rows.append({"case": case.name, "kind": kind, "detail": detail.replace(tmp, "<tmp>")})
            if verbose:
                print(f"{kind:10} {case.name:38} {detail.replace(tmp, '<tmp>')[:160]}")
    return {"runs": len(rows), "counts": counts, "rows": rows}


def main_() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    ns = ap.parse_args()
    res = run()
    print(json.dumps(res["counts"], sort_keys=True))
    if ns.json:
        ns.json.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    bad = sum(res["counts"].get(k, 0) for k in ("traceback", "internal", "silent", "leak", "unclear",
                                                 "refused"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main_())
