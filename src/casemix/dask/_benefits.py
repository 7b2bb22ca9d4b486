"""The patient-side benefit cascade on Dask, equal to :func:`casemix.benefits.simulate`.

Deductibles, cumulative thresholds and caps run per person and calendar
year, in discharge-date order with ties in input order; nothing crosses
persons.  So the cases are shuffled by person (every person's cases in one
partition), sorted back into input order, run through ``simulate`` itself,
and the payment columns go back to the input partitions — the same
numbering and return trip as :mod:`casemix.dask._settle`.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd

from casemix._frames import to_polars
from casemix.dask._rows import KEY, attach, home, keys, optimised
from casemix.errors import InputError

PERSON_COLUMNS = ("patient_id", "psn_no")  # the person column and its alias in casemix.benefits


def _plain(dtype: Any) -> Any:
    """Dictionary-encoded (categorical) columns as their values: Dask's Arrow-based shuffle
    cannot rebuild an Arrow dictionary dtype on the other side."""
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.StringDtype("pyarrow") if dtype.categories.dtype != "int64" else "int64"
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        if pa.types.is_dictionary(dtype.pyarrow_dtype):
            return pd.ArrowDtype(dtype.pyarrow_dtype.value_type)
    return None


def _nested(dtype: Any) -> bool:
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        t = dtype.pyarrow_dtype
        return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_struct(t))
    return False


def _keyed(part: pd.DataFrame, partition_info: dict | None = None) -> pd.DataFrame:
    i = partition_info["number"] if partition_info else 0
    # nested columns (code lists of a grouped frame) are not read by the cascade and do not
    # survive Dask's Arrow-based shuffle as pandas dtypes: they stay behind
    out = part[[c for c in part.columns if not _nested(part[c].dtype)]].copy(deep=False)
    for c in out.columns:
        plain = _plain(out[c].dtype)
        if plain is not None:
            out[c] = out[c].astype(plain)
    out[KEY] = keys(i, len(part))
    return out


def _simulate(
    part: pd.DataFrame, policy: Any, engine: Literal["batch", "reference"], columns: tuple[str, ...]
) -> pd.DataFrame:
    from casemix.benefits import simulate

    df = to_polars(part).sort(KEY)
    res = to_polars(simulate(df.drop(KEY), policy, engine=engine))
    left = res["left_out"].drop_nulls()
    if left.len():
        from casemix.errors import InputError

        raise InputError(
            f"{left.len()} case(s) with a bad value ({left[0]}, …): "
            "casemix.dask.benefits cannot leave cases out yet; fix the values or "
            "run casemix.benefits.simulate, which leaves them out and counts them"
        )
    out = res.select(*columns).with_columns(df[KEY]).to_pandas()
    return out.astype(dict.fromkeys((*columns, KEY), "int64"))


def benefits(ddf: Any, policy: Any, *, engine: Literal["batch", "reference"] = "batch") -> Any:
    """Run every case of a Dask DataFrame through the benefit cascade.

    Parameters
    ----------
    ddf
        A ``dask.dataframe.DataFrame`` with the columns
        :func:`casemix.benefits.simulate` reads (``patient_id`` or
        ``psn_no`` among them).
    policy
        A :class:`~casemix.benefits.BenefitPolicy`, or a folder / shipped
        name (loaded here, once, and sent to the workers).
    engine
        ``"batch"`` or ``"reference"``, as for ``simulate``.

    Returns
    -------
    dask.dataframe.DataFrame
        Lazy: the input partitions, rows and columns, plus the Int64 fen
        columns of :data:`casemix.benefits.OUTPUT_COLUMNS`, equal to
        ``simulate`` on the whole frame.

    Raises
    ------
    InputError
        No person column; otherwise as ``simulate`` (a bad value is named by
        its column; its row number is within the person's partition).
    """
    import dask

    from casemix.benefits import OUTPUT_COLUMNS, BenefitPolicy, load_policy

    if not isinstance(policy, BenefitPolicy):
        policy = load_policy(policy)
    person = next((c for c in PERSON_COLUMNS if c in ddf.columns), None)
    if person is None:
        raise InputError(
            "benefits on Dask need the person column patient_id (or psn_no): "
            "caps and deductibles run per person"
        )
    columns = tuple(OUTPUT_COLUMNS)
    # optimise first so the partitions numbered here are those the results return to
    ddf = optimised(ddf)
    nparts = ddf.npartitions
    keyed = ddf.map_partitions(_keyed, meta=_keyed(ddf._meta))
    by_person = keyed.shuffle(person, npartitions=nparts)
    meta_res = pd.DataFrame({c: pd.Series([], dtype="int64") for c in (*columns, KEY)})
    res = by_person.map_partitions(_simulate, dask.delayed(policy, pure=True), engine, columns, meta=meta_res)
    back = home(res, nparts)
    meta_out = attach(ddf._meta, meta_res, columns)
    return ddf.map_partitions(attach, back, columns, meta=meta_out, align_dataframes=False)
