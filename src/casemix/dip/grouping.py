"""DIP grouping: catalogs, the canonical DIP case frame, and :func:`group`.

Re-exported by :mod:`casemix.dip`; a module of its own so that the steps
after grouping (:mod:`casemix.dip.build`, :mod:`casemix.dip.scoring`) import
it without importing the package that re-exports them (issue 16: no import
cycles).  Rules and sources: ``docs/dip-rules.md``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from casemix._frames import like, to_polars
from casemix.dip.catalog import Catalog, load_catalog_folder
from casemix.errors import InputError, SchemeError

if TYPE_CHECKING:
    from casemix.dip.kernel import Decided

#: the catalog used when none is named
DEFAULT_CATALOG = "dip-demo"


def _tables_root() -> Path:
    from casemix.scheme import tables_root

    return tables_root()


def catalogs() -> list[str]:
    """Names of the DIP catalogs shipped in ``grouping_tables/``."""
    root = _tables_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "catalog.toml").is_file())


def is_catalog(name_or_path: Any) -> bool:
    """Whether ``name_or_path`` names a DIP catalog (a loaded one, a shipped name or a folder)."""
    if isinstance(name_or_path, Catalog):
        return True
    if not isinstance(name_or_path, (str, Path)):
        return False
    p = Path(name_or_path)
    return (p / "catalog.toml").is_file() or (_tables_root() / str(name_or_path) / "catalog.toml").is_file()


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, stamp: float) -> Catalog:
    return load_catalog_folder(path)


def load_catalog(name_or_path: str | Path | Catalog = DEFAULT_CATALOG) -> Catalog:
    """Load a shipped DIP catalog by name, or any catalog folder by path.

    Parameters
    ----------
    name_or_path
        A name from :func:`catalogs` (e.g. ``"dip-demo"``), a folder path, or
        an already loaded :class:`Catalog` (returned as is).

    Returns
    -------
    Catalog
        Validated, immutable, cached per process (reloaded when a file changes).

    Raises
    ------
    SchemeError
        Unknown name, or a malformed file (the message names file, line and column).
    InputError
        ``name_or_path`` is not a name, a path or a Catalog (e.g. None).
    """
    if isinstance(name_or_path, Catalog):
        return name_or_path
    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path).strip():
        raise InputError(
            f"catalog must be a shipped catalog name ({', '.join(catalogs()) or 'none'}), "
            f"a catalog folder or a loaded Catalog; got {name_or_path!r}"
        )
    folder = Path(name_or_path)
    if not (folder / "catalog.toml").is_file():
        shipped = _tables_root() / str(name_or_path)
        if (shipped / "catalog.toml").is_file():
            folder = shipped
        elif folder.is_dir():
            raise SchemeError("not a DIP catalog folder: catalog.toml is missing", file=str(folder))
        else:
            raise SchemeError(
                f"no DIP catalog named {str(name_or_path)!r}: shipped catalogs "
                f"are {', '.join(catalogs()) or '(none)'}; or pass a folder path"
            )
    folder = folder.resolve()
    stamp = max((p.stat().st_mtime for p in folder.iterdir() if p.is_file()), default=0.0)
    return _load_cached(str(folder), stamp)


# ------------------------------------------------------------------ grouping
#: the code columns grouping reads, with their canonical types (docs/architecture.md)
_CODE_COLUMNS: dict[str, pl.DataType] = {
    "pdx": pl.String(),
    "sdx": pl.List(pl.String),
    "pproc": pl.String(),
    "oproc": pl.List(pl.String),
}


def canonical(frame: pl.DataFrame, mapping: dict[str, str] | None = None) -> pl.DataFrame:
    """``frame`` itself when its code columns are canonical, else ``read_cases(frame)``.

    Input straight from a file (Chinese 结算清单 headers, wide diagnosis
    columns, ``|``-joined lists) or with a column ``mapping`` goes through
    :func:`casemix.read_cases`, which also reports a missing principal
    diagnosis column; the result has the same rows in the same order.
    """
    if (
        mapping is None
        and "pdx" in frame.columns
        and all(frame.schema[c] == t for c, t in _CODE_COLUMNS.items() if c in frame.columns)
    ):
        return frame
    from casemix.cases import read_cases

    return read_cases(frame, mapping=mapping)


def _clean_list(col: pl.Expr) -> pl.Expr:
    e = pl.element().str.strip_chars()
    return col.list.eval(e.filter(e.is_not_null() & (e != "")))


def prepare(frame: pl.DataFrame) -> pl.DataFrame:
    """The code columns of a canonical frame as the reference engine reads them.

    ``pdx`` (null when empty), ``sdx`` and ``procs`` (principal procedure
    first, then the others) as lists; codes stripped of spaces, nulls and
    empty strings dropped — the normalisation the batch engine's encoder
    (:func:`casemix.dip.kernel.encode_cases`) applies too. Missing ``sdx`` /
    ``pproc`` / ``oproc`` columns count as empty.
    """
    col = {c: (pl.col(c) if c in frame.columns else pl.lit(None, dtype=t)) for c, t in _CODE_COLUMNS.items()}
    pdx = col["pdx"].str.strip_chars()
    return frame.select(
        pdx=pl.when(pdx != "").then(pdx),
        sdx=_clean_list(col["sdx"]).fill_null([]),
        procs=_clean_list(pl.concat_list(col["pproc"].fill_null(""), col["oproc"].fill_null([]))),
    )


def _decide_reference(prepared: pl.DataFrame, catalog: Catalog, main_procedure_only: bool) -> Decided:
    from casemix.dip.reference import group_case

    n = prepared.height
    grp = np.empty(n, dtype=np.int32)
    reason = np.empty(n, dtype=np.int8)
    warn = np.empty(n, dtype=np.int32)
    dx_id = np.empty(n, dtype=np.int32)
    attr = np.empty(n, dtype=np.int8)
    uniq: dict[str, int] = {}
    for i, (p, s, procs) in enumerate(prepared.iter_rows()):
        o = group_case(
            p, s, procs[0] if procs else None, procs[1:], catalog, main_procedure_only=main_procedure_only
        )
        grp[i], reason[i], warn[i], attr[i] = o.group, o.reason, o.warnings, o.attribute
        dx_id[i] = -1 if o.dx is None else uniq.setdefault(o.dx, len(uniq))
    return grp, reason, warn, dx_id, attr, list(uniq)


def _decide(canon: pl.DataFrame, cat: Catalog, engine: str, main_procedure_only: bool) -> Decided:
    """(group, reason, warnings, dx id, attribute, dx codes) arrays from either engine."""
    if engine == "batch":
        from casemix.dip.kernel import group_frame

        return group_frame(canon, cat, main_procedure_only=main_procedure_only)
    if engine == "reference":
        return _decide_reference(prepare(canon), cat, main_procedure_only)
    raise ValueError(f"engine must be 'batch' or 'reference', not {engine!r}")


def outcomes(
    cases: Any,
    catalog: str | Path | Catalog = DEFAULT_CATALOG,
    *,
    engine: str = "batch",
    main_procedure_only: bool = True,
) -> dict[str, np.ndarray]:
    """Grouping decisions as arrays: ``group``, ``reason``, ``warnings``, ``dx``, ``attribute``.

    The raw form both engines produce; :func:`group` turns it into columns.
    """
    cat = load_catalog(catalog)
    g, reason, warn, dx_id, attr, uniq = _decide(
        canonical(to_polars(cases)), cat, engine, main_procedure_only
    )
    dx = np.array([*uniq, None], dtype=object)[dx_id]  # -1 picks the trailing None
    return {"group": g, "reason": reason, "warnings": warn, "dx": dx, "attribute": attr}


def group(
    cases: Any,
    catalog: str | Path | Catalog = DEFAULT_CATALOG,
    *,
    engine: str = "batch",
    main_procedure_only: bool = True,
    mapping: dict[str, str] | None = None,
) -> Any:
    """Assign each case to a DIP group (按病种分值付费 病种组合).

    Parameters
    ----------
    cases
        Canonical cases (``casemix.read_cases``) as a pandas or polars frame,
        Arrow table or file path; grouping reads ``pdx``, ``sdx``, ``pproc``,
        ``oproc`` (and passes ``intake_warnings`` on into ``warnings``).
    catalog
        A shipped catalog name, a catalog folder or a loaded :class:`Catalog`.
    engine
        ``"batch"`` (numba kernel) or ``"reference"`` (one case at a time in
        plain Python, the readable statement of the rules). Both give the
        same result.
    main_procedure_only
        ``True`` (default): a comprehensive group is chosen by the attribute
        of the **main** procedure [spec: DIP 3.0 draft §3.3 三(三)2, "以主要
        手术操作类型作为入组依据"]; ``False``: by the highest attribute among
        all the case's procedures (casemix's earlier default).
    mapping
        Your column name → canonical name, passed to :func:`casemix.read_cases`
        (used whenever the input is not already canonical).

    Returns
    -------
    Same container type as ``cases``, same rows in the same order, with
    String columns ``dip_group``, ``dip_type`` (core / primary /
    comprehensive), ``status`` (``grouped`` / ``ungrouped``), ``reason``
    (empty when grouped), ``warnings`` (``;``-joined codes) and Float64
    ``dip_score`` (null when not grouped). Every case is in exactly one
    group or has a reason.

    Notes
    -----
    Rules and sources: ``docs/dip-rules.md`` (DIP 技术规范 1.0; DIP 2.0
    catalog matching order).
    """
    from casemix.dip.reference import reason_text, warning_names

    cat = load_catalog(catalog)
    frame = to_polars(cases)
    canon = canonical(frame, mapping)
    g, reason, warn, dx_id, attr, uniq = _decide(canon, cat, engine, main_procedure_only)
    n = len(g)
    ok = g >= 0
    take = (
        pl.Series("i", g).to_frame().select(pl.when(pl.col("i") >= 0).then(pl.col("i"))).to_series()
    )  # -1 -> null row
    ids = pl.Series([x.group for x in cat.groups], dtype=pl.String).gather(take)
    types = pl.Series([x.type for x in cat.groups], dtype=pl.String).gather(take)
    score = pl.Series([x.score for x in cat.groups], dtype=pl.Float64).gather(take)
    status = (
        pl.Series("ok", ok)
        .to_frame()
        .select(pl.when(pl.col("ok")).then(pl.lit("grouped")).otherwise(pl.lit("ungrouped")))
        .to_series()
    )
    # reason texts are formatted for the ungrouped rows only
    bad = np.flatnonzero(~ok)
    texts = [
        reason_text(int(reason[i]), uniq[dx_id[i]] if dx_id[i] >= 0 else None, int(attr[i])) for i in bad
    ]
    reason_txt = pl.repeat("", n, dtype=pl.String, eager=True)
    if len(bad):
        reason_txt = reason_txt.scatter(bad, pl.Series(texts, dtype=pl.String))
    names = {int(b): ";".join(warning_names(int(b))) for b in np.unique(warn)}
    warn_txt = pl.Series("w", warn).replace_strict(list(names), list(names.values()), return_dtype=pl.String)
    if (
        "intake_warnings" in canon.columns
        and canon.schema["intake_warnings"] == pl.List(pl.String)
        and (canon["intake_warnings"].list.len() > 0).any()
    ):
        intake = canon["intake_warnings"].fill_null([]).list.join(";")
        warn_txt = (
            pl.DataFrame({"a": intake, "b": warn_txt})
            .select(pl.concat_str([pl.col("a"), pl.col("b")], separator=";").str.strip_chars(";"))
            .to_series()
        )
    out = frame.with_columns(
        ids.alias("dip_group"),
        types.alias("dip_type"),
        score.alias("dip_score"),
        status.alias("status"),
        reason_txt.alias("reason"),
        warn_txt.alias("warnings"),
    )
    return like(out, cases)
