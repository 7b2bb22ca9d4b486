"""Mutation testing of the money-computing modules, module by module, with mutmut 3.

Usage (from the checkout root of the editable install, dev extra installed)::

    python benchmarks/mutation.py                 # every module, smallest first
    python benchmarks/mutation.py _money _trim    # some of them
    python benchmarks/mutation.py --report        # the table of the last runs only
    python benchmarks/mutation.py cases/_mapfile --also 'casemix._trim.x_trim__mutmut_6'
                                                  # ... and re-run an earlier survivor
    python benchmarks/mutation.py --sample 120 --seed 1 settle payment/core
                                                  # 120 mutants per module drawn at random

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

``--sample N --seed S`` runs, per module, N of its mutants drawn uniformly at random
without replacement (all of them where it has N or fewer): ``random.Random("S/LABEL")``
samples the module's mutant names in sorted order, so the same seed and the same source
give the same list, whatever other modules are named.  The list is written to
``benchmarks/results/mutation-samples/LABEL.json`` (with the seed and the commit whose
sources it was drawn from: mutant numbers change when the code moves) and ``--report``
gives those modules' figures as "sample of N of M mutants" with the Wilson 95% interval
of the killed share, beside the full-run figures where every mutant has a verdict.

Not part of ``.ci/run``: a module takes minutes to an hour on 2 shared cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
RECHECK = MUTANTS / "recheck.json"
SAMPLES = ROOT / "benchmarks" / "results" / "mutation-samples"

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

#: a pattern that matches no mutant: ``mutmut run`` with it generates the mutants (and the
#: stats of changed functions), then stops with "Filtered for specific mutants, but nothing
#: matches" (an AssertionError traceback, expected): what ``--sample`` draws from
_GENERATE_ONLY = "casemix.no_such_module.x_generate_only__mutmut_*"

# mutmut's exit-code classes (mutmut.stats.status_by_exit_code, 3.8).  255 is filed as
# "timeout" but is the fork server's child catching an exception from the test runner
# (e.g. pytest's usage error, exit 4, for a test id not found): no verdict, re-checked
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


def _mutmut_config() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]


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
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "--rootdir=."]
    # mutmut's own pytest arguments: the test ids of its stats are written with them
    cmd += [*_mutmut_config()["pytest_add_cli_args"], *tests]
    try:
        rc = subprocess.run(cmd, cwd=MUTANTS, env=env, capture_output=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return "timeout"
    if rc == 4:
        # pytest's usage error, e.g. "not found" for a test id of mutmut's stats: no verdict
        raise SystemExit(
            f"{name}: pytest exit 4 (usage error, a test id not found?) on its {len(tests)} tests"
        )
    # 1: a test failed or errored; anything else but 0 (crash, internal error) is not a pass
    return "survived" if rc == 0 else "no tests" if rc == 5 else "killed"


def sync_unmutated() -> list[str]:
    """Bring ``mutants/src`` up to date with ``src`` for the files mutmut does not mutate.

    mutmut 3.8 regenerates a mutated module when its source is newer, re-copies ``tests/``
    on every run, but copies every other source file only once (``copy_src_dir`` skips a
    file that exists): after a rebase the mutants would run against stale copies of the
    modules they call (``_points``, ``readmission``, ...) and the new tests.  Returns the
    files refreshed or removed.
    """
    import filecmp
    import shutil
    from fnmatch import fnmatch

    if not (MUTANTS / "src").is_dir():
        return []  # mutmut's first run copies everything
    mutated = _mutmut_config()["only_mutate"]
    changed = []
    for src in (ROOT / "src").rglob("*"):
        rel = src.relative_to(ROOT)
        if not src.is_file() or "__pycache__" in rel.parts or any(fnmatch(str(rel), m) for m in mutated):
            continue
        dst = MUTANTS / rel
        if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            changed.append(str(rel))
    for dst in (MUTANTS / "src").rglob("*.py"):
        rel = dst.relative_to(MUTANTS)
        if "__pycache__" not in rel.parts and not (ROOT / rel).exists():
            dst.unlink()  # a module removed from src (a mutated one's .meta goes with it)
            dst.with_name(dst.name + ".meta").unlink(missing_ok=True)
            changed.append(f"{rel} (removed)")
    return changed


def drop_broken_mutants() -> list[str]:
    """Remove the mutated copies in ``mutants/src`` that are not valid Python.

    A run stopped while mutmut writes a mutated module leaves it truncated (empty, seen
    with settle.py) and newer than its source, so mutmut takes it as up to date and every
    later run fails to collect the tests ("CollectTestsFailedException").  Without the file
    mutmut generates it again (its cached verdicts, in the ``.meta`` beside it, are kept).
    """
    from fnmatch import fnmatch

    if not (MUTANTS / "src").is_dir():
        return []
    mutated = _mutmut_config()["only_mutate"]
    dropped = []
    for path in (MUTANTS / "src").rglob("*.py"):
        rel = path.relative_to(MUTANTS)
        if not any(fnmatch(str(rel), m) for m in mutated):
            continue
        try:
            compile(path.read_bytes(), str(path), "exec")
            ok = path.stat().st_size > 0 or (ROOT / rel).stat().st_size == 0
        except (SyntaxError, ValueError, OSError):
            ok = False
        if not ok:
            path.unlink()
            dropped.append(str(rel))
    return dropped


def run_mutmut(patterns: list[str]) -> None:
    """One ``mutmut run`` over every pattern: one start-up (stats, clean run, fork server)."""
    for path in drop_broken_mutants():
        print(f"removed mutants/{path} (not valid Python: a stopped run's; mutmut makes it again)")
    for path in sync_unmutated():
        print(f"refreshed mutants/{path} (not mutated; changed in src since mutmut copied it)")
    subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", "1", *patterns],
        cwd=ROOT,
        env=_env(),
        check=False,
    )


def mutants_of(label: str, results: dict[str, int | None] | None = None) -> list[str]:
    """Every generated mutant of module ``label``, sorted by name."""
    results = _results() if results is None else results
    return sorted(n for n in results if _module_of(n) == label)


def _source(label: str) -> Path:
    """The module's source file, relative to the checkout."""
    return Path("src") / "casemix" / (f"{label}/__init__.py" if label == "cases" else f"{label}.py")


def _stale(label: str, results: dict[str, int | None]) -> bool:
    """No mutants of ``label`` yet, or its source changed since mutmut generated them."""
    rel = _source(label)
    mutant = MUTANTS / rel
    return (
        not mutants_of(label, results)
        or not mutant.exists()
        or (ROOT / rel).stat().st_mtime > mutant.stat().st_mtime
    )


def _sample_file(label: str) -> Path:
    return SAMPLES / f"{label.replace('/', '_')}.json"


def draw_sample(label: str, n: int, seed: int, results: dict[str, int | None]) -> list[str]:
    """``n`` mutants of ``label`` drawn uniformly without replacement, written to its sample file.

    The generator is seeded with ``"SEED/LABEL"`` (a string seed hashes the same in every
    Python process), so a module's draw does not depend on the other modules named.
    """
    population = mutants_of(label, results)
    if not population:
        raise SystemExit(f"no mutants of {label} in mutants/: mutmut has not generated them")
    picked = sorted(random.Random(f"{seed}/{label}").sample(population, min(n, len(population))))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    SAMPLES.mkdir(parents=True, exist_ok=True)
    # the commit may be rebased away; the source's digest identifies the mutants' numbering
    digest = hashlib.sha256((ROOT / _source(label)).read_bytes()).hexdigest()[:16]
    record = {
        "module": label,
        "seed": seed,
        "sampled": len(picked),
        "of": len(population),
        "commit": commit,
        "source_sha256": digest,
    }
    _sample_file(label).write_text(json.dumps(record | {"mutants": picked}, indent=1) + "\n")
    return picked


def load_sample(label: str) -> dict | None:
    path = _sample_file(label)
    return json.loads(path.read_text()) if path.exists() else None


def recheck_module(label: str, recheck_timeout: float, names: list[str] | None = None) -> None:
    """Re-check in a fresh interpreter every mutant of ``label`` mutmut did not report killed.

    ``names``: only these mutants of the module (a sample).
    """
    from fnmatch import fnmatch

    pattern = MODULES[label]
    keep = set(names) if names is not None else None
    rechecked = json.loads(RECHECK.read_text()) if RECHECK.exists() else {}
    for name, code in sorted(_results().items()):
        if not fnmatch(name, pattern) or _module_of(name) != label:
            continue
        if keep is not None and name not in keep:
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


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (95% for the default ``z``).

    Wilson (1927), J. Am. Stat. Assoc. 22:209: unlike the normal approximation it stays
    inside [0, 1] and is usable at 0 or ``n`` successes, as a killed share near 100% is.
    """
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def _status(name: str, code: int | None, rechecked: dict) -> str:
    if code is None:
        return "not run"
    return "killed" if code in _KILLED else rechecked.get(name, {}).get("fresh", "unchecked")


def _row(what: str, c: Counter) -> str:
    n = sum(v for k, v in c.items() if k != "not run")
    k = c["killed"] + c["timeout"]
    lo, hi = wilson(k, n)
    pct = f"{100.0 * k / n:.1f}" if n else "–"
    interval = f"{100 * lo:.1f}–{100 * hi:.1f}" if n else "–"
    return (
        f"| {what} | {n} | {c['killed']} | {c['timeout']} | {c['survived']} | {c['no tests']} "
        f"| {c['unchecked']} | {c['not run']} | {pct} | {interval} |"
    )


def report() -> str:
    """Per module: the full run where every mutant has a verdict, the sample's figures if any.

    "killed %" counts killed and timed-out mutants over those with a verdict; the interval
    is Wilson's 95% one (for a full run it is the spread a sample of that size would have).
    """
    rechecked = json.loads(RECHECK.read_text()) if RECHECK.exists() else {}
    results = _results()
    lines = [
        "| module | verdicts | killed | timeout | survived | no tests | unchecked | not run | killed % "
        "| Wilson 95% |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label in MODULES:
        names = mutants_of(label, results)
        full = Counter(_status(n, results[n], rechecked) for n in names)
        if names and full["not run"] == 0:
            lines.append(_row(f"{label}: full run, all {len(names)} mutants", full))
        elif sum(full.values()) > full["not run"]:
            lines.append(_row(f"{label}: partial run, {len(names)} mutants", full))
        sample = load_sample(label)
        if sample:
            c = Counter(_status(n, results.get(n), rechecked) for n in sample["mutants"])
            lines.append(
                _row(
                    f"{label}: sample of {sample['sampled']} of {sample['of']} mutants "
                    f"(seed {sample['seed']}, {sample['commit']})",
                    c,
                )
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
    ap.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="run N mutants per module drawn at random (all where it has fewer); the list goes "
        "to benchmarks/results/mutation-samples/",
    )
    ap.add_argument("--seed", type=int, default=1, help="seed of --sample (default 1)")
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
        picked: dict[str, list[str]] = {}
        if a.sample is not None:
            results = _results()
            if not a.no_run and any(_stale(label, results) for label in labels):
                # mutmut (re)generates the mutants at the start of a run: one matching none, so
                # that the sample is drawn from the mutants of the current source
                run_mutmut([_GENERATE_ONLY])
                results = _results()
            for label in labels:
                if a.no_run and load_sample(label):
                    picked[label] = load_sample(label)["mutants"]  # the drawn list, re-checked
                else:
                    picked[label] = draw_sample(label, a.sample, a.seed, results)
                print(f"{label}: {len(picked[label])} of {len(mutants_of(label, results))} mutants")
        if not a.no_run:
            if picked:
                run_mutmut([n for names in picked.values() for n in names] + a.also)
            else:
                run_mutmut([MODULES[label] for label in labels] + a.also)
        for label in labels:
            print(f"== {label}", flush=True)
            recheck_module(label, a.recheck_timeout, picked.get(label))
    print(report())


if __name__ == "__main__":
    main()
