"""A data check before money is settled: ``casemix.check`` and ``casemix check FILE``.

Reads the cases as every step reads them (:func:`casemix.cases.read_cases`),
groups them with the batch engine, and counts per hospital what an analyst
must look at before settling on the data: how many rows, how many found a
group, which codes the scheme does not know, which principal codes are grey
(灰码), which fields were not numbers or dates, which cases have no cost.
Nothing is dropped or changed; the counts come from the same findings the
``warnings`` column of ``casemix.group`` carries (``docs/check.md``).
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from casemix.scheme import DEFAULT_SCHEME, Scheme, load_scheme

__all__ = ["DataCheck", "check", "ALL"]

#: the ``hospital_id`` of the row that sums every hospital
ALL = "(all)"
#: the ``hospital_id`` shown for cases with no hospital
NO_HOSPITAL = "(none)"
_UNKNOWN = ("unknown_pdx", "unknown_sdx", "unknown_proc")
_GREY = ("grey_pdx", "grey_pproc")

#: per-hospital columns, in order, with what each counts (``docs/check.md``)
COLUMNS = {
    "rows": "cases (rows) of the hospital",
    "grouped": "cases that found a group",
    "grouping_rate": "grouped / rows",
    "invalid": "cases failing a validity check of the scheme",
    "ungroupable": "valid cases that found no group",
    "unknown_code_rows": "cases with a code the scheme's dictionaries lack",
    "grey_pdx": "cases whose principal diagnosis is grey (灰码)",
    "grey_pproc": "cases whose principal procedure is grey (灰码)",
    "malformed_rows": "cases with a number or date that could not be read",
    "missing_pdx": "cases with no principal diagnosis",
    "missing_cost": "cases with no total cost (absent, empty or unreadable)",
    "negative_cost": "cases with a negative total cost",
    "duplicate_case_id": "cases whose case_id occurs more than once in the file",
}


@dataclass(frozen=True)
class DataCheck:
    """What :func:`check` found.

    Attributes
    ----------
    scheme
        Id of the scheme the cases were grouped with.
    hospitals
        One row per hospital (``hospital_id``, then the counts of
        ``COLUMNS``), sorted by id, and a last row ``(all)`` for the file.
    unknown_codes
        ``hospital_id``, ``kind`` (``unknown_pdx`` / ``unknown_sdx`` /
        ``unknown_proc``), ``code``, ``cases``: the most frequent per
        hospital and for ``(all)``.
    grey_codes
        The same for ``grey_pdx`` / ``grey_pproc``.
    malformed
        ``hospital_id``, ``field``, ``cases``: fields present but unreadable.
    """

    scheme: str
    hospitals: pl.DataFrame
    unknown_codes: pl.DataFrame
    grey_codes: pl.DataFrame
    malformed: pl.DataFrame

    @property
    def total(self) -> dict[str, Any]:
        """The ``(all)`` row of :attr:`hospitals` as a dict."""
        return self.hospitals.row(self.hospitals.height - 1, named=True)

    def tables(self) -> dict[str, pl.DataFrame]:
        """The four tables by name (``hospitals``, ``unknown_codes``, ``grey_codes``, ``malformed``)."""
        return {
            "hospitals": self.hospitals,
            "unknown_codes": self.unknown_codes,
            "grey_codes": self.grey_codes,
            "malformed": self.malformed,
        }

    def write(self, path: str | Path) -> list[Path]:
        """Write the check: ``.xlsx`` (a sheet per table), ``.json``, or ``.csv``.

        A ``.csv`` path gets the hospitals table; the other tables go beside
        it as ``<stem>.<table>.csv``.  Returns the files written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = path.suffix.lower()
        if suffix == ".xlsx":
            import xlsxwriter

            with xlsxwriter.Workbook(path) as wb:
                for name, df in self.tables().items():
                    df.write_excel(wb, worksheet=name, autofit=True)
            return [path]
        if suffix == ".json":
            import json

            doc = {"scheme": self.scheme, **{k: v.to_dicts() for k, v in self.tables().items()}}
            path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
            return [path]
        if suffix == ".csv":
            out = [path]
            self.hospitals.write_csv(path)
            for name, df in self.tables().items():
                if name != "hospitals":
                    out.append(path.with_name(f"{path.stem}.{name}.csv"))
                    df.write_csv(out[-1])
            return out
        from casemix.errors import InputError

        raise InputError(f"the check is written as .xlsx, .json or .csv, not {path.name!r}")


def _per_hospital(frame: pl.DataFrame, ok: str, invalid: str) -> pl.DataFrame:
    w = pl.col("warnings")

    def has(kinds: tuple[str, ...]) -> pl.Expr:
        # a finding is "kind:value", joined by ";"
        return pl.any_horizontal(w.str.contains(f"(^|;){k}:") for k in kinds)

    counts = [
        pl.len().alias("rows"),
        (pl.col("status") == ok).sum().alias("grouped"),
        (pl.col("status") == invalid).sum().alias("invalid"),
        ((pl.col("status") != ok) & (pl.col("status") != invalid)).sum().alias("ungroupable"),
        has(_UNKNOWN).sum().alias("unknown_code_rows"),
        has(("grey_pdx",)).sum().alias("grey_pdx"),
        has(("grey_pproc",)).sum().alias("grey_pproc"),
        has(("malformed",)).sum().alias("malformed_rows"),
        pl.col("pdx").is_null().sum().alias("missing_pdx"),
        pl.col("total_cost").is_null().sum().alias("missing_cost"),
        (pl.col("total_cost") < 0).sum().alias("negative_cost"),
        pl.col("duplicate").sum().alias("duplicate_case_id"),
    ]
    per = frame.group_by("hospital_id").agg(counts).sort("hospital_id")
    whole = frame.select(pl.lit(ALL).alias("hospital_id"), *counts)
    both = pl.concat([per, whole], how="vertical_relaxed")
    both = both.with_columns(pl.exclude("hospital_id").cast(pl.Int64))
    return both.with_columns((pl.col("grouped") / pl.col("rows")).alias("grouping_rate")).select(
        "hospital_id", *COLUMNS
    )


def _top(frame: pl.DataFrame, kinds: tuple[str, ...], top: int) -> pl.DataFrame:
    from casemix.drg.findings import count_findings

    per = count_findings(frame["warnings"], kinds, by=frame["hospital_id"])
    whole = count_findings(frame["warnings"], kinds).select(pl.lit(ALL).alias("hospital_id"), pl.all())
    per = per.group_by("hospital_id", maintain_order=True).head(top).sort("hospital_id", maintain_order=True)
    return pl.concat([per, whole.head(top)], how="vertical_relaxed").with_columns(
        pl.col("cases").cast(pl.Int64)
    )


def check(
    cases: Any,
    scheme: str | Path | Scheme = DEFAULT_SCHEME,
    *,
    mapping: dict[str, str] | None = None,
    top: int = 10,
) -> DataCheck:
    """Check case data per hospital before settling on it.

    Parameters
    ----------
    cases
        Anything :func:`casemix.read_cases` reads (frame, Arrow, Parquet/CSV path).
    scheme
        The DRG scheme the data will be grouped with (default: CHS-DRG 1.1).
    mapping
        Your column name → canonical name, as for ``read_cases``.
    top
        How many unknown / grey codes to list per hospital.

    Returns
    -------
    DataCheck
        Counts per hospital and for the whole file, the most frequent
        unknown and grey codes, and the unreadable fields.  Every input row
        is counted exactly once, in its hospital (``(none)`` when it has
        none) and in ``(all)``.

    Examples
    --------
    >>> import casemix
    >>> report = casemix.check("cases.csv")                      # doctest: +SKIP
    >>> report.hospitals.select("hospital_id", "rows", "grouping_rate")  # doctest: +SKIP
    """
    from casemix.cases import read_cases
    from casemix.drg.batch import group_frame
    from casemix.drg.findings import count_findings

    sch = load_scheme(scheme)
    canonical = read_cases(cases, mapping=mapping)
    result = group_frame(canonical, sch, warnings=True)
    frame = pl.concat(
        [
            canonical.select("case_id", "hospital_id", "pdx", "total_cost"),
            result.select("status", "warnings"),
        ],
        how="horizontal",
    ).with_columns(
        pl.col("hospital_id").cast(pl.String).fill_null(NO_HOSPITAL),
        (pl.col("case_id").is_not_null() & pl.col("case_id").is_duplicated()).alias("duplicate"),
    )
    bad = count_findings(frame["warnings"], ("malformed",), by=frame["hospital_id"])
    bad_all = count_findings(frame["warnings"], ("malformed",))
    malformed_table = pl.concat(
        [
            bad.sort("hospital_id", maintain_order=True),
            bad_all.select(pl.lit(ALL).alias("hospital_id"), pl.all()),
        ],
        how="vertical_relaxed",
    ).select("hospital_id", pl.col("code").alias("field"), pl.col("cases").cast(pl.Int64))
    return DataCheck(
        scheme=sch.id,
        hospitals=_per_hospital(frame, sch.status["grouped"], sch.status["invalid"]),
        unknown_codes=_top(frame, _UNKNOWN, top),
        grey_codes=_top(frame, _GREY, top),
        malformed=malformed_table,
    )


class _CallableModule(types.ModuleType):
    """``casemix.check`` is this module once imported; calling it runs :func:`check`.

    Python binds a sub-module to its package's attribute of the same name,
    so the public function ``casemix.check(...)`` and the module
    ``casemix.check`` must be one callable object.
    """

    def __call__(self, cases: Any, scheme: str | Path | Scheme = DEFAULT_SCHEME, **kwargs: Any) -> DataCheck:
        return check(cases, scheme, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
