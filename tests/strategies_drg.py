"""Hypothesis strategies for DRG cases drawn from a scheme's own tables.

Codes come from the lists the rules read (by target), from ``cc.csv``
(often with the principal's own exclusion table, so exclusions bite),
from the site lists of ``sites(...)`` rules, from the dictionaries, plus
unknown codes, empty strings and nulls; numbers come from the constants
the rules compare with (each ±1 and ±0.5) plus missing, zero, NaN and odd
values.  So generated cases reach real groups and sit on every boundary a
scheme draws (newborn age and weight, sex-specific entry, trauma sites,
excluded CCs, a never-excluded table), whatever the scheme.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
from hypothesis import strategies as st

from casemix.scheme import Scheme
from casemix.scheme.rules import FIELDS, Compare, InList, Sites, walk

UNKNOWN_CODES = ("ZZZ.999", "QQ99.9999", "A00", " ", "x")

CANONICAL_TYPES = {
    "pdx": pl.String,
    "sdx": pl.List(pl.String),
    "pproc": pl.String,
    "oproc": pl.List(pl.String),
    **dict.fromkeys(FIELDS, pl.Float64),
    "malformed": pl.List(pl.String),
}


@dataclass(frozen=True)
class Pools:
    """Candidate values for each part of a case, read from one scheme."""

    dx: tuple[str, ...]
    proc: tuple[str, ...]
    cc: tuple[str, ...]
    sites: tuple[str, ...]
    dictionary_dx: tuple[str, ...]
    dictionary_proc: tuple[str, ...]
    cc_by_table: dict
    table_of_pdx: dict
    numbers: dict
    #: strategies built from these pools, by name (see :func:`built`)
    strategies: dict = field(default_factory=dict, compare=False, repr=False)


def _rules(scheme: Scheme):
    for m in scheme.mdcs:
        yield m.rule
    for ads in scheme.adrgs.values():
        for a in ads:
            yield a.rule
    for ds in scheme.drgs.values():
        for d in ds:
            yield d.rule
    for c in scheme.checks:
        for r in (c.when, c.rule):
            if r is not None:
                yield r


_POOLS: dict[int, tuple[Scheme, Pools]] = {}


def pools(scheme: Scheme) -> Pools:
    """Collect the candidate codes and numbers of a scheme (sorted, so draws are reproducible).

    One ``Pools`` per scheme object (schemes are immutable), so the strategies
    built from it are built once too.
    """
    hit = _POOLS.get(id(scheme))
    if hit is None or hit[0] is not scheme:  # the scheme is kept, so its id is not reused
        hit = _POOLS[id(scheme)] = (scheme, _collect(scheme))
    return hit[1]


def _collect(scheme: Scheme) -> Pools:
    dx, proc, sites = set(), set(), set()
    numbers = {f: {0.0, 1.0, 2.0} for f in FIELDS}
    for rule in _rules(scheme):
        for node in walk(rule):
            if isinstance(node, InList):
                (dx if node.target in ("pdx", "sdx", "dx") else proc).update(scheme.lists[node.list])
            elif isinstance(node, Sites):
                sites.update(scheme.lists[node.list])
            elif isinstance(node, Compare):
                v = node.value
                numbers[node.field].update({v, v - 1, v + 1, v - 0.5, v + 0.5})
    for target, name in scheme.grey.items():
        # grey principal codes (灰码), so their warnings and any check on them are reached
        (dx if target == "pdx" else proc).update(scheme.lists[name])
    cc_by_table: dict[str, list[str]] = {}
    for code, (_, table) in scheme.cc.items():
        cc_by_table.setdefault(table, []).append(code)
    return Pools(
        dx=tuple(sorted(dx)),
        proc=tuple(sorted(proc | set(scheme.or_procedures))),
        cc=tuple(sorted(scheme.cc)),
        sites=tuple(sorted(sites)),
        dictionary_dx=tuple(sorted(scheme.diagnoses)),
        dictionary_proc=tuple(sorted(scheme.procedures)),
        cc_by_table={t: tuple(sorted(v)) for t, v in cc_by_table.items()},
        table_of_pdx=dict(scheme.exclusions),
        numbers={f: tuple(sorted(v)) for f, v in numbers.items()},
    )


def _from(pool: tuple[str, ...]) -> st.SearchStrategy:
    return st.sampled_from(pool) if pool else st.nothing()


def code(*pools_: tuple[str, ...], unknown: bool = True) -> st.SearchStrategy[str | None]:
    """A code from the given pools, sometimes unknown, empty or null."""
    options = [_from(p) for p in pools_ if p]
    if unknown:
        options += [
            st.sampled_from(UNKNOWN_CODES),
            st.just(""),
            st.none(),
            st.text(alphabet="ABCXZ0123456789.x", min_size=1, max_size=8),
        ]
    return st.one_of(options)


def number(p: Pools, field: str) -> st.SearchStrategy[float | None]:
    """A field value: a rule boundary, missing, or something odd."""
    return st.one_of(
        st.sampled_from(p.numbers[field]),
        st.none(),
        st.sampled_from((0.0, -1.0, 3.0, 9.0, 28.0, 29.0, 120.0, 5000.0, math.nan)),
        # implausible values (issue 15): warned by intake, grouped as written by both engines
        st.sampled_from((-5.0, 151.0, 366.0, 10_001.0, 1e300, -1e300)),
        st.floats(min_value=-5, max_value=6000, allow_nan=False).map(lambda x: round(x, 1)),
    )


_MALFORMED = st.one_of(
    st.just([]), st.lists(st.sampled_from(FIELDS + ("diagnoses", "procedures")), max_size=2)
)
_N_SDX = st.integers(0, 8)
_NEWBORN_AGE = st.sampled_from((0.0, 0.0, 0.0, 1.0, None))
_NEWBORN_AGE_DAYS = st.one_of(st.sampled_from((0.0, 1.0, 27.0, 28.0, 28.5, 29.0, 365.0)), st.none())


def built(p: Pools, name: str, make: Callable[[], st.SearchStrategy]) -> st.SearchStrategy:
    """The strategy ``make()`` for these pools, built on first use and the same object after.

    hypothesis validates every new strategy object the first time it is drawn
    from; building strategies over pools of thousands of codes once per drawn
    case was most of the cost of generating cases.
    """
    strategy = p.strategies.get(name)
    if strategy is None:
        strategy = p.strategies[name] = make()
    return strategy


def _sdx(p: Pools, own: str | None, n: int) -> st.SearchStrategy:
    """``n`` secondary codes, some from the principal's own exclusion table ``own``."""

    def make() -> st.SearchStrategy:
        options = [built(p, "sdx code", lambda: code(p.cc, p.dx, p.sites, p.dictionary_dx))]
        if own is not None and p.cc_by_table.get(own):
            # codes of the principal's own exclusion table: excluded unless never-excluded
            options.append(_from(p.cc_by_table[own]))
        return st.lists(st.one_of(options), max_size=n, min_size=n)

    return built(p, f"sdx {own} {n}", make)


@st.composite
def drg_case(draw, p: Pools) -> dict:
    """One case as a dict of canonical columns (``CANONICAL_TYPES``)."""
    pdx = draw(built(p, "pdx", lambda: code(p.dx, p.sites, p.dictionary_dx)))
    n_sdx = draw(_N_SDX)
    sdx = draw(_sdx(p, p.table_of_pdx.get(pdx), n_sdx))
    pproc = draw(built(p, "pproc", lambda: st.one_of(st.none(), code(p.proc, p.dictionary_proc))))
    oproc = draw(built(p, "oproc", lambda: st.lists(code(p.proc, p.dictionary_proc), max_size=4)))
    case = {"pdx": pdx, "sdx": sdx, "pproc": pproc, "oproc": oproc}
    for f in FIELDS:
        case[f] = draw(built(p, f"number {f}", lambda f=f: number(p, f)))
    case["malformed"] = draw(_MALFORMED)
    for f in case["malformed"]:
        if f in FIELDS and draw(st.booleans()):
            case[f] = None  # what intake does with a value that is not a number
    return case


@st.composite
def newborn_case(draw, p: Pools) -> dict:
    """A case on the newborn boundaries (age 0, age in days and weight near the limits)."""
    case = draw(drg_case(p))
    case["age"] = draw(_NEWBORN_AGE)
    case["age_days"] = draw(_NEWBORN_AGE_DAYS)
    case["birth_weight"] = draw(
        built(p, "newborn weight", lambda: st.one_of(st.sampled_from(p.numbers["birth_weight"]), st.none()))
    )
    return case


@st.composite
def trauma_case(draw, p: Pools) -> dict:
    """A case whose diagnoses come from the site lists (several body sites, duplicates)."""
    case = draw(drg_case(p))
    if p.sites:
        case["pdx"] = draw(built(p, "site", lambda: _from(p.sites)))
        case["sdx"] = draw(
            built(p, "sites", lambda: st.lists(st.one_of(_from(p.sites), code(p.cc)), max_size=6))
        )
    return case


def cases(p: Pools) -> st.SearchStrategy[dict]:
    """Any of the case kinds above."""
    return st.one_of(drg_case(p), newborn_case(p), trauma_case(p))


def frame(rows: list[dict]) -> pl.DataFrame:
    """Canonical case frame from drawn cases."""
    return pl.DataFrame(rows, schema=CANONICAL_TYPES) if rows else pl.DataFrame(schema=CANONICAL_TYPES)
