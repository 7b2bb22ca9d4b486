"""Building a DIP catalog from a case history (病种目录库的形成).

The steps follow the DIP 技术规范 [spec] as summarised in
``../shared/payment-notes.md`` and ``docs/dip-rules.md``:

1. Each case's key: principal-diagnosis subcategory (first 4 characters,
   ``K35.3``; the category when the code has none) × main procedure
   (none = conservative), with its other procedures as candidate related
   procedures. The principal diagnosis and main procedure are chosen by the
   same exclusion rules grouping uses (functions of
   :mod:`casemix.dip.reference`), so a catalog groups its own history as
   it was counted.
2. Keys with at least ``threshold`` cases (15 in a city pool [spec]) become
   core groups; with ``coverage`` (e.g. 0.95) the threshold is the largest
   count at which the keys at or above it still hold that share of cases.
3. A set of related procedures becomes its own group only when it has
   ``threshold`` cases and raises the mean cost by at least ``related_gain``
   (10% [spec]) over the key's cases without other procedures (worked
   example: 28,033 → 28,849 (+2.91%) stays, → 44,003 (+56.97%) splits).
4. Everything else folds into comprehensive groups: category × the highest
   procedure attribute (attribute table and exclusion lists from ``base``).
5. Scores ``m_i / M × 1000`` from the history (1:2:7 year blend when it
   spans years), with each group's n, mean cost and CV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from casemix._frames import to_polars
from casemix.dip.catalog import ATTRIBUTES, Catalog, DipGroup, category, parse_dx_pattern, subcategory
from casemix.errors import InputError

__all__ = ["build_catalog", "case_keys", "coverage_threshold", "related_gains"]


def coverage_threshold(counts: list[int], coverage: float) -> int:
    """The largest count ``t`` such that keys with ``n >= t`` hold ``coverage`` of all cases.

    [spec: "the count at which core groups cover 95% of cases"]
    """
    if not 0 < coverage <= 1:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    total = sum(counts)
    if total == 0:
        return 1
    acc = 0
    for n in sorted(counts, reverse=True):
        acc += n
        if acc >= coverage * total - 1e-9:
            return n
    return 1  # pragma: no cover - the loop always reaches the total


def case_keys(cases: Any, base: Catalog) -> pl.DataFrame:
    """Per case: ``key`` (subcategory, else category), ``main`` ("" = conservative), ``others``.

    Null ``key`` when the principal diagnosis cannot be grouped (missing,
    not a code, or excluded with no replacement). Uses the same decisions
    as grouping (:func:`casemix.dip.reference.principal_diagnosis` and
    :func:`~casemix.dip.reference.main_procedure`), cached per distinct
    diagnosis and procedure list.
    """
    from casemix.dip.grouping import canonical, prepare
    from casemix.dip.reference import main_procedure, principal_diagnosis

    prepared = prepare(canonical(to_polars(cases)))
    dx_cache: dict[tuple, str | None] = {}
    proc_cache: dict[tuple, tuple[str, tuple[str, ...]]] = {}
    keys, mains, others = [], [], []
    for pdx, sdx, procs in prepared.iter_rows():
        dk = (pdx, tuple(sdx))
        if dk not in dx_cache:
            dx, reason, _ = principal_diagnosis(pdx, sdx, base)
            dx_cache[dk] = None if reason else (subcategory(dx) or category(dx))
        pk = tuple(procs)
        if pk not in proc_cache:
            m, _ = main_procedure(procs, base)
            rest = tuple(sorted({c for i, c in enumerate(procs) if i != m})) if m is not None else ()
            proc_cache[pk] = (procs[m] if m is not None else "", rest)
        keys.append(dx_cache[dk])
        mains.append(proc_cache[pk][0])
        others.append(list(proc_cache[pk][1]))
    return pl.DataFrame(
        {"key": keys, "main": mains, "others": others},
        schema={"key": pl.String, "main": pl.String, "others": pl.List(pl.String)},
    )


def _related_gains(keyed: pl.DataFrame, core: pl.DataFrame, t: int) -> pl.DataFrame:
    """Related-procedure sets with ``t`` or more cases inside core keys, and their cost gain.

    ``gain = m_R / m_0 − 1``: ``m_R`` the mean cost of the key's cases whose
    other procedures are exactly ``R``, ``m_0`` that of the key's cases with
    no other procedure (all the key's cases when there are none).
    """
    inside = keyed.join(core.select("key", "main"), on=["key", "main"], how="semi")
    plain_mean = (
        inside.filter(pl.col("others").list.len() == 0)
        .group_by("key", "main")
        .agg(pl.col("c").mean().alias("base_mean"))
    )
    all_mean = inside.group_by("key", "main").agg(pl.col("c").mean().alias("_all"))
    return (
        inside.filter(pl.col("others").list.len() > 0)
        .group_by("key", "main", "others")
        .agg(pl.len().alias("n"), pl.col("c").mean().alias("mean_cost"))
        .filter(pl.col("n") >= t)
        .join(plain_mean, on=["key", "main"], how="left")
        .join(all_mean, on=["key", "main"], how="left")
        .with_columns(pl.col("base_mean").fill_null(pl.col("_all")))
        .drop("_all")
        .with_columns((pl.col("mean_cost") / pl.col("base_mean") - 1).alias("gain"))
        .sort("key", "main", "others")
    )


def related_gains(
    history: Any, threshold: int = 15, *, base: str | Path | Catalog = "dip-demo", cost: str = "total_cost"
) -> pl.DataFrame:
    """The related-procedure candidates of a history and how much each raises the mean cost.

    Returns ``key``, ``main``, ``others``, ``n``, ``mean_cost``,
    ``base_mean`` and ``gain`` (``mean_cost / base_mean − 1``) for every set
    of other procedures with at least ``threshold`` cases inside a key with
    at least ``threshold`` cases; :func:`build_catalog` splits those with
    ``gain >= related_gain`` (10% [spec]).
    """
    from casemix.dip.grouping import canonical, load_catalog

    keyed = _keyed(canonical(to_polars(history)), load_catalog(base), cost)
    core = keyed.group_by("key", "main").agg(pl.len().alias("n")).filter(pl.col("n") >= threshold)
    return _related_gains(keyed, core, threshold)


def _keyed(df: pl.DataFrame, base: Catalog, cost: str) -> pl.DataFrame:
    if cost not in df.columns:
        raise InputError(f"building a DIP catalog needs a cost column {cost!r}")
    c = df[cost].cast(pl.Float64, strict=False)
    valid = (c.is_not_null() & c.is_finite() & (c > 0)).fill_null(False)
    hist = df.filter(valid)
    keyed = case_keys(hist, base).with_columns(hist[cost].cast(pl.Float64).alias("c"))
    return keyed.filter(pl.col("key").is_not_null())


def build_catalog(
    history: Any,
    threshold: int = 15,
    coverage: float | None = None,
    *,
    base: str | Path | Catalog = "dip-demo",
    related_gain: float = 0.10,
    cost: str = "total_cost",
    year_weights: tuple[float, ...] = (1.0, 2.0, 7.0),
    blend: str = "sum",
    id: str = "dip-built",
    name: str | None = None,
    keep_primary: bool = True,
    subtypes: bool = True,
    scheme: Any = None,
    min_cv_reduction: float = 0.20,
    mapping: dict[str, str] | None = None,
) -> Catalog:
    """Build a DIP catalog from a case history.

    Parameters
    ----------
    history
        Canonical cases (``pdx``, ``sdx``, ``pproc``, ``oproc``) with
        ``cost``; an optional ``year`` column enables the year blend. Cases
        without a positive cost are not counted.
    threshold
        Minimum cases of a core group (15 for a city pool, >= 50 for a
        province pool [spec]).
    coverage
        If given, the threshold is derived instead: the largest count at
        which core keys still cover this share of cases (0.95 [spec]).
    base
        Catalog whose procedure-attribute table and exclusion lists the new
        catalog uses (and whose 基层 keys stay primary when
        ``keep_primary``).
    related_gain
        Minimum relative rise of the mean cost for a related-procedure split
        (0.10 [spec]).
    year_weights, blend
        Passed to :func:`casemix.dip.scores.scores`.
    subtypes, scheme, min_cv_reduction
        Auxiliary sub-type coefficients (age, tumour; severity with a DRG
        ``scheme``'s CC table) are kept for a group and dimension only where
        they cut the group's CV by ``min_cv_reduction`` (20% [spec]); see
        :func:`casemix.dip.scores.subtype_coefficients`.
    mapping
        ``{your column: canonical name}`` besides the aliases of
        ``docs/cases.md`` (read by :func:`casemix.read_cases`).

    Returns
    -------
    Catalog
        Core groups ``C0001…`` (ordered by key, main procedure, related
        procedures), comprehensive groups ``<category>Z<level>`` (level 0
        内科诊疗 … 3 相关手术); every group with ``n``, ``mean_cost``, ``cv``
        and ``score``. Write it with :func:`casemix.dip.write_catalog`.
    """
    from casemix.dip.grouping import canonical, load_catalog
    from casemix.dip.grouping import group as dip_group
    from casemix.dip.scores import scores as dip_scores

    base_cat = load_catalog(base)
    if threshold < 1:
        raise ValueError(f"threshold must be at least 1, got {threshold}")
    df = canonical(to_polars(history), mapping)
    keyed = _keyed(df, base_cat, cost)
    if keyed.height == 0:
        raise InputError("build_catalog: no case with a groupable principal diagnosis and a positive cost")

    base_counts = keyed.group_by("key", "main").agg(pl.len().alias("n"))
    t = coverage_threshold(base_counts["n"].to_list(), coverage) if coverage else threshold
    core = base_counts.filter(pl.col("n") >= t).sort("key", "main")

    combos = _related_gains(keyed, core, t).filter(pl.col("gain") >= related_gain - 1e-12)

    primary = (
        {(g.dx_key.text, m) for g in base_cat.groups if g.type == "primary" for m in (g.main or ("",))}
        if keep_primary
        else set()
    )
    specs: list[tuple[str, str, tuple[str, ...]]] = [
        (k, m, ()) for k, m in core.select("key", "main").iter_rows()
    ]
    specs += [(k, m, tuple(o)) for k, m, o in combos.select("key", "main", "others").iter_rows()]
    specs.sort(key=lambda s: (s[0], s[1], len(s[2]), s[2]))
    groups = []
    for i, (k, m, rel) in enumerate(specs, 1):
        label = f"{k} {m or '保守治疗'}" + (f" + {'+'.join(rel)}" if rel else "")
        groups.append(
            DipGroup(
                group=f"C{i:04d}",
                type="primary" if (k, m) in primary and not rel else "core",
                dx_key=parse_dx_pattern(k),
                main=(m,) if m else (),
                related=rel,
                attribute=-1,
                score=0.0,
                name=label,
            )
        )
    cats = sorted(c for c in {category(k) for k in keyed["key"].unique().to_list()} if c is not None)
    groups += [
        DipGroup(
            group=f"{cat}Z{lv}",
            type="comprehensive",
            dx_key=parse_dx_pattern(cat),
            main=(),
            related=(),
            attribute=lv,
            score=0.0,
            name=f"{cat} 综合病种（{ATTRIBUTES[lv]}）",
        )
        for cat in cats
        for lv in range(4)
    ]
    draft = _with_groups(base_cat, tuple(groups), id, name, t, coverage)

    # count what each group really receives, drop empty comprehensive groups, score
    c = df[cost].cast(pl.Float64, strict=False)
    hist = df.filter((c.is_not_null() & c.is_finite() & (c > 0)).fill_null(False))
    grouped = dip_group(hist, draft)
    sc = dip_scores(grouped, cost=cost, year_weights=year_weights, blend=blend)
    stats = {r["dip_group"]: r for r in sc.iter_rows(named=True)}
    final = []
    for g in groups:
        s = stats.get(g.group)
        if s is None:
            continue
        final.append(
            DipGroup(
                group=g.group,
                type=g.type,
                dx_key=g.dx_key,
                main=g.main,
                related=g.related,
                attribute=g.attribute,
                score=round(s["score"], 4),
                name=g.name,
                n=s["n"],
                mean_cost=round(s["mean_cost"], 2),
                cv=round(s["cv"], 4),
            )
        )
    sub: dict[tuple[str, str, str], float] = {}
    if subtypes:
        from casemix.dip.scores import subtype_coefficients

        kept = {g.group for g in final}
        sc = subtype_coefficients(grouped, scheme=scheme, min_cv_reduction=min_cv_reduction)
        for r in sc.filter(pl.col("used")).iter_rows(named=True):
            if r["dip_group"] in kept:
                sub[(r["dip_group"], r["dimension"], r["subtype"])] = round(r["coefficient"], 4)
    return _with_groups(base_cat, tuple(final), id, name, t, coverage, sub)


def _with_groups(
    base: Catalog,
    groups: tuple[DipGroup, ...],
    id: str,
    name: str | None,
    threshold: int,
    coverage: float | None,
    subtypes: dict[tuple[str, str, str], float] | None = None,
) -> Catalog:
    how = f"coverage {coverage:.0%} → threshold {threshold}" if coverage else f"threshold {threshold}"
    return Catalog(
        id=id,
        name=name or f"DIP catalog built from history ({how})",
        version="",
        source=f"casemix.dip.build_catalog ({how}; attribute table and exclusion lists from {base.id})",
        groups=groups,
        attributes=dict(base.attributes),
        excluded_diagnoses=base.excluded_diagnoses,
        excluded_procedures=dict(base.excluded_procedures),
        subtypes=subtypes or {},
        unlisted_attribute=base.unlisted_attribute,
    )
