"""Dask clusters from a spec string, and numba set up for worker processes.

numba in workers
----------------
Two settings matter when the batch kernel runs inside Dask workers:

- **threads**: each worker process runs one task per thread, and a Dask
  cluster already spreads partitions over the cores.  A numba
  ``parallel=True`` kernel in every worker would start one thread per core
  *per worker* and oversubscribe the machine, so workers started here get
  ``NUMBA_NUM_THREADS=1``, and :func:`casemix.dask.group` also calls
  ``numba.set_num_threads`` in each task (which covers workers started by
  someone else).
- **the on-disk cache**: compiling the grouping kernel takes about 20 s;
  loading it from numba's cache well under a second.  Several processes
  that compile and write the same cache entry at once can crash or load a
  half-written file (numba issue #4807).  casemix therefore **warms the
  cache in the client process before any worker starts**
  (:func:`warm_numba_cache`), so the workers only ever read it.  If the
  cache cannot be written (a read-only install), the workers are started
  with ``CASEMIX_NUMBA_CACHE=0`` and compile in memory instead.  For a
  remote cluster, warm the cache on each node before its workers start,
  or set ``CASEMIX_NUMBA_CACHE=0`` on the workers (``docs/dask.md``).

malloc in workers
-----------------
Dask starts worker processes with ``MALLOC_TRIM_THRESHOLD_=65536``, so that
they hand freed memory back to the system at once.  Setting any such
threshold also switches off glibc's adaptive ``mmap`` threshold: every
array of more than 128 KiB is then a fresh ``mmap`` whose pages are faulted
in and zeroed again, and settlement makes many arrays of a partition's
length.  Workers started by :func:`connect` keep glibc's defaults (measured
on 5M cases: the workers' CPU seconds of a settlement 15% lower).
"""

from __future__ import annotations

import os
import re
from typing import Any

from casemix.errors import InputError

__all__ = ["connect", "parse_spec", "warm_numba_cache"]

#: Dask's setting that starts worker processes with ``MALLOC_TRIM_THRESHOLD_=65536``
TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"

_LOCAL = re.compile(r"^local(?::(\d+))?$")
_THREADS = re.compile(r"^threads(?::(\d+))?$")
_TCP = re.compile(r"^tcp://[^\s:/]+:\d+$")


def parse_spec(spec: str) -> tuple[str, Any]:
    """Split a cluster spec into ``("local", n_workers)``, ``("tcp", address)`` or
    ``("threads", n_threads)``.

    Parameters
    ----------
    spec
        ``local:N`` (a LocalCluster of N worker processes; ``local`` alone
        means 2), ``tcp://HOST:PORT`` (the scheduler of a running cluster) or
        ``threads:N`` (Dask's threaded scheduler in this process, no Client;
        ``threads`` alone: Dask's default number of threads).

    Raises
    ------
    InputError
        The spec has none of these forms, or N is not a positive whole number.
    """
    s = str(spec).strip()
    m = _LOCAL.match(s) or _THREADS.match(s)
    if m:
        kind = "local" if s.startswith("local") else "threads"
        n = int(m.group(1)) if m.group(1) else (2 if kind == "local" else None)
        if n is not None and n < 1:
            what = "local workers" if kind == "local" else "threads"
            raise InputError(f"--dask {spec!r}: the number of {what} must be at least 1")
        return kind, n
    if _TCP.match(s):
        return "tcp", s
    raise InputError(
        f"--dask {spec!r}: expected local:N (N worker processes on this machine), "
        "tcp://HOST:PORT (the scheduler of a running Dask cluster) or threads:N "
        "(N threads in this process)"
    )


def warm_numba_cache() -> bool:
    """Compile the DRG, DIP and benefit kernels into numba's on-disk cache, in this process.

    Call it before starting worker processes so that they load the cache
    instead of compiling (and writing) it concurrently (numba issue #4807).

    Returns
    -------
    bool
        True when the DRG kernel is cached on disk (or was already), False when
        caching is switched off (``CASEMIX_NUMBA_CACHE=0``) or the cache
        could not be written.
    """
    from casemix.drg import kernel

    if not kernel.cache_enabled():
        return False
    from casemix.dask._group import group_partition
    from casemix.synth import synth_cases

    # a pandas frame, as a Dask partition is, so the kernel sees the same
    # array types (and compiles the same signature) as in the workers
    sample = synth_cases("casemix-demo", 8, seed=0, layout="lists").to_pandas()
    # the DRG kernel, and the DIP kernel (its catalog is shipped as dip-demo)
    for scheme in ("casemix-demo", "dip-demo"):
        group_partition(sample, scheme, "batch", None, None)
    from casemix import benefits as bf

    bf.simulate(bf.synthetic_cases(8, 4, seed=0).to_pandas(use_pyarrow_extension_array=True), "illustrative")
    path = kernel.group_kernel.stats.cache_path
    return (
        path is not None
        and os.path.isdir(path)
        and any(f.startswith("kernel.group_kernel") and f.endswith(".nbi") for f in os.listdir(path))
    )


def worker_env(*, numba_threads: int = 1, cache_ok: bool = True) -> dict[str, str]:
    """Environment for worker processes casemix starts (see the module docstring)."""
    env = {
        "NUMBA_NUM_THREADS": str(int(numba_threads)),
        # polars in a worker should not start one thread per core either
        "POLARS_MAX_THREADS": str(int(numba_threads)),
    }
    if not cache_ok:
        env["CASEMIX_NUMBA_CACHE"] = "0"
    return env


def connect(spec: str, *, warm: bool = True, memory_limit: str | None = "auto") -> Any:
    """A ``distributed.Client`` for ``spec`` (see :func:`parse_spec`).

    ``local:N`` starts ``LocalCluster(n_workers=N, threads_per_worker=1,
    processes=True, host="127.0.0.1", dashboard_address=None)`` (its
    scheduler's HTTP routes on a free loopback port, not 8787) with
    ``NUMBA_NUM_THREADS=1`` in the workers, after warming numba's cache in
    this process (``warm=True``).  ``tcp://HOST:PORT`` connects to a running
    scheduler and changes nothing on its workers.  Close the client (a
    context manager) to stop a local cluster.

    ``threads:N`` gives no Client: a context manager within which Dask runs
    graphs on its threaded scheduler with N threads, in this process (the
    fastest way on one machine: no pickling, no worker processes;
    ``docs/dask.md``, "Which scheduler").
    """
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise InputError(
            "running on Dask needs the optional dependencies: pip install 'casemix[dask]'"
        ) from exc
    kind, value = parse_spec(spec)
    if kind == "threads":
        import dask

        return dask.config.set(scheduler="threads", **({} if value is None else {"num_workers": value}))
    if kind == "tcp":
        return Client(value)
    import dask

    cache_ok = warm_numba_cache() if warm else True
    # a Client given cluster keywords starts its own LocalCluster and stops it on close(); its
    # workers keep glibc's own malloc thresholds (see the module docstring)
    with dask.config.set({TRIM: None}):
        return Client(
            n_workers=value,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # no dashboard, yet the scheduler still serves its health and metrics routes over
            # HTTP, by default on port 8787: a second cluster (or a notebook's) then warns
            # "Port 8787 is already in use"; a free loopback port instead
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            memory_limit=memory_limit,
            env=worker_env(cache_ok=cache_ok),
        )
