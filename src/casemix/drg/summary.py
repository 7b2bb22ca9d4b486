"""What a grouping run looks like at a glance: cases per MDC, top DRGs, why cases failed."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from casemix._frames import to_polars
from casemix.scheme import Scheme


@dataclass(frozen=True)
class GroupingSummary:
    """Counts of a grouped case set.

    Attributes
    ----------
    total, grouped
        Number of cases, and of cases with a DRG.
    by_status
        status, cases.
    by_mdc
        mdc, name, cases, share — grouped cases only.
    top_drgs
        drg, name, cases, share, mean_cost (when a cost column exists).
    failures
        status, reason, cases — ungroupable and invalid cases by reason.
    """

    total: int
    grouped: int
    by_status: pl.DataFrame
    by_mdc: pl.DataFrame
    top_drgs: pl.DataFrame
    failures: pl.DataFrame


def summarize(grouped, scheme: Scheme, *, top: int = 10) -> GroupingSummary:
    """Summarise the output of ``casemix.group``.

    Parameters
    ----------
    grouped
        A frame with the columns ``group`` adds (pandas or polars).
    scheme
        The scheme it was grouped with (for names and the ungroupable code).
    top
        How many DRGs to list.
    """
    df = to_polars(grouped)
    total = df.height
    ok = df.filter(pl.col("status") == scheme.status["grouped"])
    mdc_names = pl.DataFrame({"mdc": [m.code for m in scheme.mdcs], "name": [m.name for m in scheme.mdcs]})
    by_mdc = (
        ok.group_by("mdc")
        .len("cases")
        .join(mdc_names, on="mdc", how="left")
        .with_columns((pl.col("cases") / max(total, 1)).alias("share"))
        .sort(["cases", "mdc"], descending=[True, False])
        .select("mdc", "name", "cases", "share")
    )
    names = scheme.drg_names()
    agg = [pl.len().alias("cases")]
    if "total_cost" in ok.columns:
        agg.append(pl.col("total_cost").cast(pl.Float64, strict=False).mean().alias("mean_cost"))
    top_drgs = (
        ok.group_by("drg")
        .agg(agg)
        .with_columns(
            pl.col("drg").replace_strict(names, default="", return_dtype=pl.String).alias("name"),
            (pl.col("cases") / max(total, 1)).alias("share"),
        )
        .sort(["cases", "drg"], descending=[True, False])
        .head(top)
    )
    top_drgs = top_drgs.select("drg", "name", "cases", "share", *(["mean_cost"] if len(agg) > 1 else []))
    failures = (
        df.filter(pl.col("status") != scheme.status["grouped"])
        .group_by("status", "reason")
        .len("cases")
        .sort("cases", descending=True)
    )
    by_status = df.group_by("status").len("cases").sort("cases", descending=True)
    return GroupingSummary(total, ok.height, by_status, by_mdc, top_drgs, failures)


#: a run that groups fewer than this share of its cases is reported loudly
LOW_RATE = 0.5
#: finding kinds that name a code the scheme does not know
UNKNOWN_KINDS = ("unknown_pdx", "unknown_sdx", "unknown_proc")


def low_rate_message(grouped, scheme: Scheme, *, top: int = 5) -> str | None:
    """A warning text when fewer than half of the cases found a group, else ``None``.

    Parameters
    ----------
    grouped
        Output of ``casemix.group`` (at least ``status``; ``warnings`` for the codes).
    scheme
        The scheme it was grouped with.
    top
        How many unknown codes to name.

    The text gives the rate, the scheme and the most frequent unknown codes
    (principal diagnoses first: they decide the MDC), or the most frequent
    reasons when no code was unknown; a run with no case says nothing.
    """
    from casemix.drg.findings import count_findings

    df = to_polars(grouped)
    total = df.height
    ok = int((df["status"] == scheme.status["grouped"]).sum())
    if total == 0 or ok >= LOW_RATE * total:
        return None
    text = (
        f"only {ok:,} of {total:,} cases ({ok / total:.1%}) were grouped by scheme {scheme.id}: "
        "is it the scheme of these codes (casemix.schemes(), --scheme), and are the "
        "columns read right?"
    )
    unknown = count_findings(df["warnings"], UNKNOWN_KINDS) if "warnings" in df.columns else pl.DataFrame()
    if unknown.height:
        unknown = unknown.with_columns(
            pl.col("kind")
            .replace_strict({k: i for i, k in enumerate(UNKNOWN_KINDS)}, return_dtype=pl.Int8)
            .alias("rank")
        ).sort(["rank", "cases", "code"], descending=[False, True, False])
        codes = ", ".join(
            f"{r['code']} ({r['kind']}, {r['cases']:,})" for r in unknown.head(top).iter_rows(named=True)
        )
        return f"{text} Most frequent unknown codes: {codes}."
    reasons = (
        df.filter(pl.col("status") != scheme.status["grouped"])
        .group_by("status", "reason")
        .len("cases")
        .sort(["cases", "status", "reason"], descending=[True, False, False])
        .head(top)
    )
    listed = ", ".join(
        f"{r['status']} {r['reason']!s} ({r['cases']:,})".replace("  ", " ")
        for r in reasons.iter_rows(named=True)
    )
    return f"{text} No code was unknown; most frequent outcomes: {listed}."


def warn_if_low_rate(result: pl.DataFrame, scheme: Scheme, *, stacklevel: int = 3) -> None:
    """Give a :class:`~casemix.errors.LowGroupingRateWarning` when under half the cases are grouped."""
    import warnings

    from casemix.errors import LowGroupingRateWarning

    message = low_rate_message(result, scheme)
    if message is not None:
        warnings.warn(message, LowGroupingRateWarning, stacklevel=stacklevel)
