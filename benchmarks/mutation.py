"""Mutation testing of the money-computing modules, module by module, with mutmut 3.

Usage (from the checkout root of the editable install, dev extra installed)::

    python benchmarks/mutation.py                 # every module, smallest first
    python benchmarks/mutation.py _money _trim    # some of them
    python benchmarks/mutation.py --report        # the table of the last runs only
    python benchmarks/mutation.py cases/_mapfile --also 'casemix._trim.x_trim__mutmut_6'
                                                  # ... and re-run an earlier survivor

It runs one ``mutmut run --max-children 1 PATTERN...`` over the modules' patterns
(configuration in ``[tool.mutmut]`` of pyproject.toml: the fork-server isolation, the test
files; one start-up for all of them), then for each module re-checks every mutant mutmut
did not report killed in a fresh interpreter:
``python -m pytest`` on the tests mutmut mapped to the mutant, with ``MUTANT_UNDER_TEST``
set, under a wall-clock limit.  A "survived" therefore means a clean pytest run of those
tests on that mutant in its own process, and a crash can never pass for a survivor.
The per-module table (mutants, killed, timeout, survived, no tests) is printed and kept
in ``mutants/recheck.json``; ``benchmarks/results/mutation.md`` records the figures
with the reasons of the equivalent survivors.

Not part of ``.ci/run``: a module takes minutes to an hour on 2 shared cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
RECHECK = MUTANTS / "recheck.json"

#: module label -> mutant-name pattern (mutmut's fnmatch over ``package.module.x_func__mutmut_N``),
#: smallest first
MODULES = {
    "_money": "casemix._money.*",
    "_trim": "casemix._trim.*",
    "dip/scores": "casemix.dip.scores.*",
    "weights": "casemix.weights.*",
    "payment/money": "casemix.payment.money.*",
    "payment/inputs": "casemix.payment.inputs.*",
    "payment/new_tech": "casemix.payment.new_tech.*",
    "payment/special_cases": "casemix.payment.special_cases.*",
    "payment/case_rules": "casemix.payment.case_rules.*",
    "payment/outliers": "casemix.payment.outliers.*",
    "payment/monthly": "casemix.payment.monthly.*",
    "payment/core": "casemix.payment.core.*",
    "payment/policy_file": "casemix.payment.policy_file.*",
    "payment/city_tables": "casemix.payment.city_tables.*",
    "payment/_section": "casemix.payment._section.*",
    "cases": "casemix.cases.x*",
    "cases/_aliases": "casemix.cases._aliases.*",
    "cases/_mapfile": "casemix.cases._mapfile.*",
    "cases/_plausible": "casemix.cases._plausible.*",
    "cases/_normalise": "casemix.cases._normalise.*",
    "cases/_canonical": "casemix.cases._canonical.*",
    "cases/_build": "casemix.cases._build.*",
    "cases/_resolve": "casemix.cases._resolve.*",
    "settle": "casemix.settle.*",
}

# mutmut's exit-code classes (mutmut.stats.status_by_exit_code, 3.8)
_KILLED = {1, 3}
_SURVIVED = {0}
_TIMEOUT = {36, -24, 24, 152, 255}
_NO_TESTS = {5, 33}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # mutmut's copies of the sources hold every mutant (settle.py: 3.6 MB); compiling them
    # again in every process cost more CPU than a killed mutant's tests: cache the bytecode
    # (under mutants/, git-ignored) even where the environment says not to
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if "CASEMIX_SHARED" not in env and (ROOT.parent / "shared").is_dir():
        # the tests run from mutants/, whose parent has no ../shared beside it
        env["CASEMIX_SHARED"] = str((ROOT.parent / "shared").resolve())
    return env


def _results() -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for meta in (MUTANTS / "src").rglob("*.meta"):
        out.update(json.loads(meta.read_text())["exit_code_by_key"])
    return out


def _tests_of(name: str) -> list[str]:
    stats = json.loads((MUTANTS / "mutmut-stats.json").read_text())
    base = name.rsplit("__mutmut_", 1)[0]
    return sorted(stats["tests_by_mangled_function_name"].get(base, []))


def _module_of(name: str) -> str | None:
    from fnmatch import fnmatch

    hits = [m for m, pat in MODULES.items() if fnmatch(name, pat)]
    return max(hits, key=len) if hits else None


def _recheck(name: str, timeout: float, only: list[str] | None = None) -> str:
    """Run the mutant's tests in a fresh interpreter: killed, survived, timeout or no tests.

    ``only``: of the mapped tests, those in these files (a quick check of a kill).
    """
    tests = _tests_of(name)
    if only:
        tests = [t for t in tests if t.split("::")[0] in only]
    if not tests:
        return "no tests"
    env = _env() | {"MUTANT_UNDER_TEST": name, "PYTHONPATH": str(MUTANTS / "src")}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    cmd += ["--rootdir=.", "-m", "not slow", *tests]
    try:
        rc = subprocess.run(cmd, cwd=MUTANTS, env=env, capture_output=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return "timeout"
    # 1: a test failed or errored; anything else but 0 (crash, internal error) is not a pass
    return "survived" if rc == 0 else "no tests" if rc == 5 else "killed"


def run_mutmut(patterns: list[str]) -> None:
    """One ``mutmut run`` over every pattern: one start-up (stats, clean run, fork server)."""
    subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", "1", *patterns],
        cwd=ROOT,
        env=_env(),
        check=False,
    )


def recheck_module(label: str, recheck_timeout: float) -> None:
    """Re-check in a fresh interpreter every mutant of ``label`` mutmut did not report killed."""
    from fnmatch import fnmatch

    pattern = MODULES[label]
    rechecked = json.loads(RECHECK.read_text()) if RECHECK.exists() else {}
    for name, code in sorted(_results().items()):
        if not fnmatch(name, pattern) or _module_of(name) != label:
            continue
        if code in _KILLED:
            rechecked.pop(name, None)
            continue
        if code is None:  # not run yet (a stopped run): no verdict to re-check
            continue
        t0 = time.time()
        rechecked[name] = {"mutmut": code, "fresh": _recheck(name, recheck_timeout)}
        print(
            f"  {name}: mutmut exit {code}, fresh process: {rechecked[name]['fresh']} ({time.time() - t0:.0f}s)"
        )
        RECHECK.write_text(json.dumps(rechecked, indent=1, sort_keys=True))


def report() -> str:
    rechecked = json.loads(RECHECK.read_text()) if RECHECK.exists() else {}
    by_module: dict[str, Counter] = {}
    for name, code in _results().items():
        label = _module_of(name)
        if label is None or code is None:
            continue
        status = "killed" if code in _KILLED else rechecked.get(name, {}).get("fresh", "unchecked")
        by_module.setdefault(label, Counter())[status] += 1
    lines = [
        "| module | mutants | killed | timeout | survived | no tests | unchecked | killed % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in MODULES:
        c = by_module.get(label)
        if not c:
            continue
        n = sum(c.values())
        pct = 100.0 * (c["killed"] + c["timeout"]) / n
        lines.append(
            f"| {label} | {n} | {c['killed']} | {c['timeout']} | {c['survived']} | {c['no tests']} "
            f"| {c['unchecked']} | {pct:.1f} |"
        )
    return "\n".join(lines)


def survivors(label: str | None = None) -> list[str]:
    rechecked = json.loads(RECHECK.read_text()) if RECHECK.exists() else {}
    return sorted(
        n
        for n, r in rechecked.items()
        if r["fresh"] in ("survived", "no tests") and (label is None or _module_of(n) == label)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help=f"labels among: {', '.join(MODULES)}")
    ap.add_argument("--report", action="store_true", help="print the table of the last runs only")
    ap.add_argument("--survivors", action="store_true", help="list the survivors of the last runs")
    ap.add_argument("--recheck-timeout", type=float, default=300.0, help="seconds per fresh re-check")
    ap.add_argument(
        "--verify",
        nargs="+",
        metavar="MUTANT",
        help="re-run these mutants (fnmatch patterns) in a fresh interpreter, whatever mutmut said",
    )
    ap.add_argument("--tests", nargs="+", help="with --verify: only the mapped tests in these files")
    ap.add_argument(
        "--also",
        nargs="+",
        default=[],
        metavar="MUTANT",
        help="mutants (fnmatch patterns) mutmut runs again with the modules, e.g. an earlier "
        "run's survivors after new tests",
    )
    ap.add_argument("--no-run", action="store_true", help="only re-check the modules (after a mutmut run)")
    a = ap.parse_args()
    if a.verify:
        from fnmatch import fnmatch

        results = _results()
        rechecked = json.loads(RECHECK.read_text()) if RECHECK.exists() else {}
        for name in sorted(results):
            if any(fnmatch(name, p) for p in a.verify):
                fresh = _recheck(name, a.recheck_timeout, a.tests)
                print(name, fresh, flush=True)
                if not a.tests and results[name] not in _KILLED:
                    # a full re-check (every mapped test) replaces the verdict, e.g. once a
                    # new test kills a survivor; mutmut's own verdict is kept beside it
                    rechecked[name] = {"mutmut": results[name], "fresh": fresh}
        RECHECK.write_text(json.dumps(rechecked, indent=1, sort_keys=True))
        return
    if a.survivors:
        print("\n".join(survivors()))
        return
    if not a.report:
        labels = a.modules or list(MODULES)
        for label in labels:
            if label not in MODULES:
                ap.error(f"unknown module {label!r}; known: {', '.join(MODULES)}")
        if not a.no_run:
            run_mutmut([MODULES[label] for label in labels] + a.also)
        for label in labels:
            print(f"== {label}", flush=True)
            recheck_module(label, a.recheck_timeout)
    print(report())


if __name__ == "__main__":
    main()
