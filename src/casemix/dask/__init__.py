"""casemix on Dask: grouping, weights and settlement of data larger than one machine.

Each function takes a ``dask.dataframe.DataFrame`` and gives exactly the
answer of its in-memory counterpart on the same rows, whatever the
partitioning:

- :func:`group` — ``casemix.group`` per partition (``map_partitions`` with
  an explicit ``meta``); grouping is a pure case → group map, so nothing
  crosses partitions.
- :func:`weights` — ``casemix.compute_weights`` on the few columns it
  reads (trimming needs each group's whole cost distribution).
- :func:`settle` — ``casemix.settle.settle``: the rules and points by the
  in-memory functions where the cases are (after an exchange by hospital
  only when readmissions pair stays or monthly tables are asked for), the
  region's quantities (hospital sums, point values, the 特例单议 cap, the
  split of each hospital's money) from small per-partition aggregates;
  equal to the fen.
- :func:`benefits` — ``casemix.benefits.simulate`` per person after a
  shuffle by person; equal to the fen.
- :func:`connect` — a ``distributed.Client`` from ``local:N`` or
  ``tcp://HOST:PORT``; :func:`warm_numba_cache`.

Needs the optional dependencies (``pip install 'casemix[dask]'``).  Running
on a cluster, numba settings in workers and a Spark recipe:
``docs/dask.md``.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

from casemix.dask._cluster import connect, parse_spec, warm_numba_cache
from casemix.errors import InputError, LowGroupingRateWarning
from casemix.scheme import DEFAULT_SCHEME

__all__ = ["benefits", "connect", "group", "parse_spec", "settle", "warm_numba_cache", "weights"]


def _require_dask() -> Any:
    try:
        import dask.dataframe as dd
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise InputError("casemix.dask needs the optional dependencies: pip install 'casemix[dask]'") from exc
    return dd


def _check_frame(ddf: Any) -> None:
    dd = _require_dask()
    if not isinstance(ddf, dd.DataFrame):
        raise InputError(
            f"expected a dask.dataframe.DataFrame, got {type(ddf).__name__}; "
            "use casemix.group / casemix.settle for in-memory frames"
        )


def group(
    ddf: Any,
    scheme: Any = DEFAULT_SCHEME,
    *,
    engine: str = "batch",
    mapping: dict[str, str] | None = None,
    numba_threads: int | None = 1,
) -> Any:
    """Group every case of a Dask DataFrame; :func:`casemix.group` per partition.

    Parameters
    ----------
    ddf
        A ``dask.dataframe.DataFrame`` of cases in any layout
        :func:`casemix.read_cases` accepts (list columns as read from
        Parquet work as they are).
    scheme
        Scheme name or folder (each worker loads and caches it; a folder
        must exist on the workers), a loaded scheme or a DIP catalog.
    engine
        ``"batch"`` (numba kernel) or ``"reference"``.
    mapping
        Column mapping, as for :func:`casemix.read_cases`.
    numba_threads
        Threads the kernel may use inside one Dask task (default 1: the
        cluster already runs one task per core).  ``None`` leaves numba's
        setting alone.

    Returns
    -------
    dask.dataframe.DataFrame
        Lazy: the input partitions with the columns ``casemix.group`` adds
        (``mdc``, ``adrg``, ``drg``, ``severity``, ``status``, ``reason``,
        ``warnings``, as ``string[pyarrow]``), same rows and order.
    """
    from casemix.dask._group import group_partition, scheme_arg

    _check_frame(ddf)
    if engine not in ("batch", "reference"):
        raise InputError(f"engine must be 'batch' or 'reference', not {engine!r}")
    # meta from the same function on Dask's made-up non-empty partition: an empty frame can come
    # back with other dtypes (an all-null column) than real partitions do.  Its made-up codes
    # group to nothing, which is no news to the user: that warning stays in here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowGroupingRateWarning)
        meta = group_partition(ddf._meta_nonempty, scheme, engine, mapping, None).iloc[:0]
    return ddf.map_partitions(
        group_partition, scheme_arg(scheme), engine, mapping, numba_threads, dict(meta.dtypes), meta=meta
    )


def weights(ddf: Any, **kwargs: Any) -> Any:
    """Relative weights from a grouped Dask DataFrame; :func:`casemix.compute_weights`.

    Trimming needs the whole cost distribution of each (DRG, year) cell, so
    the columns the weights read (``drg``, ``total_cost`` and, when present,
    ``adrg``, ``los``, ``year``; about 40 bytes a case) are gathered to the
    client in input order and weighted there: the result is the in-memory
    one by construction.  Keyword arguments are those of
    :func:`casemix.compute_weights`.

    Returns
    -------
    casemix.weights.Weights
        Tables as pandas frames.
    """
    from casemix.weights import compute_weights

    _check_frame(ddf)
    cols = [c for c in ("drg", "adrg", "total_cost", "los", "year") if c in ddf.columns]
    return compute_weights(ddf[cols].compute(), **kwargs)


def settle(
    ddf: Any,
    policy: Any,
    *,
    weights: Any = None,
    points: str | None = None,
    group_col: str = "drg",
    persist: bool = True,
    base_volume: Any = None,
    mapping: dict[str, str] | None = None,
    scheme: str | None = None,
) -> Any:
    """Settle grouped cases of a Dask DataFrame; equal to :func:`casemix.settle.settle` to the fen.

    See :func:`casemix.dask._settle.settle` for the steps; parameters are
    those of :func:`casemix.settle.settle` (``base_volume`` for the elastic
    point value, ``mapping`` for your column names, ``scheme`` for the
    special-case cap) plus ``persist``.

    Returns
    -------
    casemix.settle.Settlement
        ``cases`` lazy (Dask), ``hospitals`` and ``region`` pandas.
    """
    from casemix.dask._settle import settle as _settle

    _check_frame(ddf)
    return _settle(
        ddf,
        policy,
        weights=weights,
        points=points,
        group_col=group_col,
        persist=persist,
        base_volume=base_volume,
        mapping=mapping,
        scheme=scheme,
    )


def benefits(ddf: Any, policy: Any, *, engine: Literal["batch", "reference"] = "batch") -> Any:
    """The patient-side benefit cascade per case; :func:`casemix.benefits.simulate` on Dask.

    See :func:`casemix.dask._benefits.benefits`.

    Returns
    -------
    dask.dataframe.DataFrame
        Lazy: the input plus the Int64 fen payment columns.
    """
    from casemix.dask._benefits import benefits as _benefits

    _check_frame(ddf)
    return _benefits(ddf, policy, engine=engine)
