"""The first-run notice: casemix says on stderr when numba compiles its kernels (issue 16).

numba compiles a kernel on its first call and keeps the machine code in an
on-disk cache (``cache=True``), so only the first run on a fresh install (or
after an upgrade) waits: seconds per kernel, more on a busy machine, and
without a word the first ``casemix.group`` / ``casemix demo`` looks hung.

A listener on numba's ``numba:compile`` event prints one line per casemix
kernel compiled.  numba raises that event for a real compile only, not
when a kernel comes from its cache or is already compiled in the process,
so a warm run prints nothing.  The first line of a process says what is
happening; then each kernel gets ``[k/N] compiling <label> ... <seconds> s``,
numbered within its step (the code lookup, or the ``|``-string lookup, the
code checks and the grouping kernel of a DRG grouping are one step of three;
[4/4] when a process compiles both lookups).  The lines go to stderr, which
the CLI, scripts and notebooks all show, and leave stdout (tables, JSON)
alone.  Helpers compiled inside a kernel count towards it.
"""

from __future__ import annotations

import sys
import time

from numba.core import event

__all__ = ["STEPS", "cache_enabled", "listen"]

#: step → {kernel (module.qualname) → label}; a kernel not listed is shown by its name
STEPS: dict[str, dict[str, str]] = {
    "grouping": {
        "casemix.encode_kernel.encode_views": "code lookup",
        "casemix.split_kernel.split_codes": "|-string lookup",
        "casemix.drg.kernel._bad_rows": "code checks",
        "casemix.drg.kernel.group_kernel": "grouping kernel",
    },
    "synthetic cases": {
        "casemix.synth._kernel._place_rows": "synthetic cases: hospitals and groups",
        "casemix.synth._kernel._attributes_rows": "synthetic cases: attributes",
        "casemix.synth._kernel._code_counts_rows": "synthetic cases: code counts",
        "casemix.synth._kernel._fill_codes_rows": "synthetic cases: codes",
    },
    "DIP grouping": {"casemix.dip.kernel._kernel.<locals>.group_kernel": "DIP grouping kernel"},
}
_LABEL = {name: (step, label) for step, kernels in STEPS.items() for name, label in kernels.items()}
#: kernels a step compiles when fewer than all of its kernels: a grouping looks codes up with the
#: code lookup or, for |-strings, with the |-string lookup (both when intake reads some rows)
SIZES: dict[str, int] = {"grouping": 3}


def cache_enabled() -> bool:
    """Whether kernels use numba's on-disk cache (``CASEMIX_NUMBA_CACHE`` not ``0``/false/no/off)."""
    import os

    return os.environ.get("CASEMIX_NUMBA_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


class _Notice(event.Listener):
    """Prints the notice for top-level compiles of casemix functions."""

    def __init__(self) -> None:
        self.depth = 0  # compiles in progress: a kernel's helpers compile inside it
        self.started = 0.0
        self.shown = False  # the header line of this process
        self.done: dict[str, int] = {}  # kernels announced per step
        self.current = False  # this top-level compile is a casemix kernel being shown

    def on_start(self, ev: event.Event) -> None:
        self.depth += 1
        if self.depth > 1:
            return
        fn = ev.data["dispatcher"].py_func
        name = f"{fn.__module__}.{fn.__qualname__}"
        self.current = name.startswith("casemix.")
        if not self.current:
            return
        if not self.shown:
            self.shown = True
            where = "first run only" if cache_enabled() else "every run: CASEMIX_NUMBA_CACHE=0"
            _say(f"casemix: compiling, {where} (numba kernels, a few seconds each; longer on a busy machine)")
        step, label = _LABEL.get(name, ("", name.removeprefix("casemix.")))
        if step:
            k = self.done[step] = self.done.get(step, 0) + 1
            n = max(k, SIZES.get(step, len(STEPS[step])))
            _say(f"casemix: [{k}/{n}] compiling {label} ...", end="")
        else:
            _say(f"casemix: compiling {label} ...", end="")
        self.started = time.perf_counter()

    def on_end(self, ev: event.Event) -> None:
        self.depth -= 1
        if self.depth == 0 and self.current:
            self.current = False
            _say(f" {time.perf_counter() - self.started:.1f} s")


def _say(text: str, end: str = "\n") -> None:
    print(text, end=end, file=sys.stderr, flush=True)


_NOTICE = _Notice()
_listening: list[bool] = []


def listen() -> None:
    """Show the notice from now on in this process (every module defining kernels calls this once)."""
    if not _listening:
        _listening.append(True)
        event.register("numba:compile", _NOTICE)
