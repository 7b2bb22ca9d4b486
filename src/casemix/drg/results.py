"""Kernel outputs → result columns, shared by the two batch paths.

:mod:`casemix.drg.batch` (canonical frames) and :mod:`casemix.drg.direct`
(typed input) both encode, run the numba kernel and decode with these; they
live here so that neither path imports the other's module in a cycle.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from casemix.drg.compile import SEVERITY_TABLE, CompiledScheme
from casemix.encode import EncodedCases, code_index, encode_cases, encode_codes, grey_ids
from casemix.scheme import Scheme

__all__ = ["RESULT_NAMES", "decode", "encode_and_group", "warnings_fast"]

#: the six columns ``group_frame`` returns, in order
RESULT_NAMES = ("mdc", "adrg", "drg", "severity", "status", "reason")


def decode(codes: tuple[np.ndarray, ...], compiled: CompiledScheme) -> pl.DataFrame:
    """Kernel integer outputs → the six String result columns.

    Each column gathers from the small table of its codes (views, no new
    strings); the six gathers are one polars query, so they run in parallel.
    """
    tables = (
        compiled.mdc_codes,
        compiled.adrg_codes,
        compiled.drg_codes,
        SEVERITY_TABLE,
        compiled.statuses,
        compiled.reasons,
    )
    ids = pl.DataFrame(dict(zip(RESULT_NAMES, codes, strict=True)))
    return (
        ids.lazy()
        .select(
            pl.lit(pl.Series(table, dtype=pl.String)).gather(pl.col(name)).alias(name)
            for name, table in zip(RESULT_NAMES, tables, strict=True)
        )
        .collect()
    )


def warnings_fast(canonical: pl.DataFrame, enc: EncodedCases, scheme: Scheme) -> pl.Series:
    """The ``warnings`` column, equal to ``casemix.drg.findings.warnings_column``, fast.

    The encoded ids tell which rows have a code outside the
    scheme's dictionaries (or a null/empty code) or a grey principal code;
    only those rows, and rows with intake warnings, are formatted by polars;
    every other row is ``""``.
    """
    from casemix.drg.findings import SEPARATOR
    from casemix.drg.kernel import rows_with_bad_code

    index = code_index(scheme)
    n = enc.n
    dx_ok = np.append(index.is_diagnosis, False)  # id -1 → the appended False
    px_ok = np.append(index.is_procedure, False)

    def bad(ids: np.ndarray, ok: np.ndarray) -> np.ndarray:
        return ~ok[np.where(ids >= 0, ids, -1)]

    flagged = (bad(enc.pdx, dx_ok) & (enc.pdx != -2)) | (bad(enc.pproc, px_ok) & (enc.pproc != -2))
    flagged |= rows_with_bad_code(enc.sdx_off, enc.sdx_val, dx_ok)
    flagged |= rows_with_bad_code(enc.oproc_off, enc.oproc_val, px_ok)
    grey = grey_ids(scheme)
    for target, ids in (("pdx", enc.pdx), ("pproc", enc.pproc)):
        if target in grey:
            flagged |= grey[target][ids]
    # an empty principal code is absent for grouping but reported as unknown
    for col in ("pdx", "pproc"):
        flagged |= (canonical[col] == "").fill_null(False).to_numpy()
    if "intake_warnings" in canonical.columns:
        flagged |= canonical["intake_warnings"].list.len().fill_null(0).to_numpy() > 0
    out = pl.repeat("", n, dtype=pl.String, eager=True).alias("warnings")
    rows = np.flatnonzero(flagged)
    if rows.size == 0:
        return out
    sub = canonical[rows]
    # the flagged rows' distinct codes, looked up once: an Enum of the scheme's 47k codes
    # costs 4 ms to build at each cast, one of the few codes these rows have next to nothing
    seen = (
        pl.concat([sub["pdx"], sub["sdx"].explode(), sub["pproc"], sub["oproc"].explode()])
        .drop_nulls()
        .unique()
        .sort()
    )
    seen_ids = encode_codes(seen, index) if len(seen) else np.zeros(0, dtype=np.int32)

    def among(keep: np.ndarray) -> pl.Enum:
        # the codes of ``seen`` where ``keep`` (indexed by id, -1 last) holds
        return pl.Enum(seen.filter(pl.Series(keep[seen_ids])))

    def listed(expr: pl.Expr, enum: pl.Enum, label: str) -> pl.Expr:
        # an Enum cast is a hash lookup; is_in inside list.eval copies the set per row
        return expr.list.eval(
            pl.lit(label + ":") + pl.element().filter(pl.element().cast(enum, strict=False).is_not_null())
        )

    pdx_list = pl.concat_list(pl.col("pdx")).list.drop_nulls()
    pproc_list = pl.concat_list(pl.col("pproc")).list.drop_nulls()
    not_dx, not_px = among(~dx_ok), among(~px_ok)

    def grey_of(expr: pl.Expr, target: str) -> list[pl.Expr]:
        if target not in grey:
            return []
        return [listed(expr, among(grey[target]), f"grey_{target}")]

    iw = (
        pl.col("intake_warnings")
        if "intake_warnings" in sub.columns
        else pl.lit([], dtype=pl.List(pl.String))
    )
    text = sub.select(
        pl.concat_list(
            iw,
            listed(pdx_list, not_dx, "unknown_pdx"),
            listed(pl.col("sdx"), not_dx, "unknown_sdx"),
            listed(pl.concat_list(pproc_list, pl.col("oproc")), not_px, "unknown_proc"),
            *grey_of(pdx_list, "pdx"),
            *grey_of(pproc_list, "pproc"),
        )
        .list.join(SEPARATOR)
        .fill_null("")
    ).to_series()
    return out.scatter(rows, text)


def encode_and_group(
    canonical: pl.DataFrame, scheme: Scheme, compiled: CompiledScheme
) -> tuple[tuple[np.ndarray, ...], EncodedCases]:
    """Kernel integer outputs for a canonical frame, and its encoded arrays."""
    from casemix.drg import kernel

    enc = encode_cases(canonical, scheme, compiled.malformed_fields)
    return kernel.run(enc, compiled), enc
