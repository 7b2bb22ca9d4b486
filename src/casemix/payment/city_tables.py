"""Published city DRG tables (费率法 tables) read into one shape.

Cities publish their DRG tables as spreadsheets with their own headers:
``RW``/``权重``/``初始权重``, ``支付标准（三级职工）``, ``费率（居民）``,
``等级系数（省三甲）``, ``二级医院系数``, flag columns (基础病组, 单议病组,
稳定/不稳定病组, 同等费率病组) or one category column (``病组类型``) whose words
say the same.  :func:`read_city_table` reads any of them — CSV in UTF-8 or
GBK, Excel, Parquet — and recognises each header through the alias table
``casemix/data/city_table_headers.toml`` (data, not per-city code; see
``docs/payment-weights.md``, "City tables").

Where a table publishes RW, a rate and a level coefficient beside a payment
standard, every row is checked against 支付标准 = RW × 费率 × 等级系数
[payment-rules.md, rate method; C: 常州, 兰州2023, 苏州, 盐城].  Where the rate
is not published but RW, coefficients (or none) and standards are, the rate
the table implies (the one consistent with the most ordinary rows, given
the rounding of the published figures) is used instead, and said so.  A row is a mismatch when the published
standard differs from the product by more than the rounding of the
published figures can explain.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from casemix.errors import InputError, SchemeError
from casemix.io import detect_encoding, read_table, read_text

if TYPE_CHECKING:
    from casemix.weights import Weights

__all__ = ["CityTable", "HeaderRole", "read_city_table"]

NUMERIC_ROLES = ("rw", "standard", "rate", "coefficient", "mean_cost", "low_k", "high_k")
FLAG_ROLES = (
    "base_group",
    "special_review",
    "stable",
    "unstable",
    "same_rate",
    "tcm_advantage",
    "volume_control",
)
POOLS = {"职工": "职工", "居民": "居民"}
# longest first: 省三甲 before 三甲 before 三级
LEVELS = (("省三甲", "省3甲"), ("三甲", "3甲"), ("三级", "3"), ("二级", "2"), ("一级", "1"))
_LEVEL_RE = re.compile("(" + "|".join(w for w, _ in LEVELS) + ")(医院)?")


class _Roles(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    drg: list[str]
    name: list[str]
    rw: list[str]
    standard: list[str]
    rate: list[str]
    coefficient: list[str]
    mean_cost: list[str]
    low_k: list[str]
    high_k: list[str]
    base_group: list[str]
    special_review: list[str]
    stable: list[str]
    unstable: list[str]
    same_rate: list[str]
    tcm_advantage: list[str]
    volume_control: list[str]
    category: list[str]


class _Values(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    yes: list[str]
    no: list[str]
    base_group: list[str]
    unstable: list[str]
    stable: list[str]
    uncovered: list[str]
    same_rate: list[str]
    special_review: list[str]


class _Aliases(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    roles: _Roles
    values: _Values


@cache
def _aliases() -> tuple[dict[str, str], _Values]:
    import tomllib

    res = resources.files("casemix") / "data" / "city_table_headers.toml"
    with resources.as_file(res) as path:
        data = tomllib.loads(read_text(path, what="alias table", error=SchemeError))
    a = _Aliases.model_validate(data)
    term = {}
    for role, words in a.roles.model_dump().items():
        for w in words:
            term[_norm(w).upper()] = role
    return term, a.values


def _norm(text: str) -> str:
    """NFKC (full-width brackets, letters and digits to ASCII), no spaces."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@dataclass(frozen=True)
class HeaderRole:
    """What one published header means.

    ``role`` is None for an unrecognised header.  ``column`` is the
    normalised column name in :attr:`CityTable.table`: the role, then the
    pool, level and area when the header names them
    (``支付标准（三级职工）`` → ``standard_职工_3``).
    """

    header: str
    role: str | None
    pool: str | None = None
    level: str | None = None
    area: str | None = None

    @property
    def column(self) -> str:
        parts = [self.role or "?", self.pool, self.level, self.area]
        return "_".join(p for p in parts if p)


def recognise(header: str) -> HeaderRole:
    """Read one header through the alias table (see the module docstring)."""
    terms, _ = _aliases()
    s = _norm(header)
    pool = next((p for w, p in POOLS.items() if w in s), None)
    for w in POOLS:
        s = s.replace(w, "")
    level = None
    m = _LEVEL_RE.search(s)
    if m:
        level = dict(LEVELS)[m.group(1)]
        s = s[: m.start()] + s[m.end() :]
    area = None
    inner = re.search(r"\(([^()]*)\)", s)
    if inner:
        area = inner.group(1) or None
        s = s[: inner.start()] + s[inner.end() :]
    role = terms.get(s.upper())
    if role is None:
        return HeaderRole(header=header, role=None)
    return HeaderRole(header=header, role=role, pool=pool, level=level, area=area)


@dataclass(frozen=True)
class CityTable:
    """A published city table, recognised.

    Attributes
    ----------
    path, encoding
        The file read and its text encoding (``utf_8``, ``gb18030``; ``None``
        for Excel and Parquet).
    table
        One row per published row, in file order: ``drg``, ``name``, ``rw``
        (null where the cell is not a number), ``rw_note`` (that cell's text,
        e.g. ``按项目据实支付``), the flags ``base_group``, ``special_review``,
        ``same_rate``, ``tcm_advantage``, ``volume_control`` (bool; False
        when the table does not publish the flag), ``stable`` (bool, null
        when unknown), ``uncovered`` (未覆盖组), and one float column per
        recognised numeric header (``standard_职工_3``, ``rate_职工``,
        ``coefficient_2``, ``mean_cost_玉林``, ``low_k``, ``high_k``), each
        followed, as ``rw`` is, by its ``<column>_note``: the text of a cell
        that is no number (null in the float column).
    headers
        How every header was read (:class:`HeaderRole`).
    standards
        One row per (DRG row, standard column) where RW and the standard
        are published: ``row`` (0-based), ``drg``, ``column``, ``header``,
        ``rw``, ``rate``, ``rate_source`` (``published``/``implied``/null),
        ``coefficient``, ``standard``, ``expected`` (RW × rate ×
        coefficient, the nearest allowed product for same-rate groups),
        ``difference``, ``tolerance``, ``mismatch`` (null where the product
        cannot be formed).
    rates
        Rates per column: ``{"rate_职工": 9986.9352}`` when published as one
        value, and the implied ``{"standard_3": 9435.25, …}`` by standard
        column under ``implied_rates``.
    """

    path: Path
    encoding: str | None
    table: pl.DataFrame
    headers: tuple[HeaderRole, ...]
    standards: pl.DataFrame
    rates: dict[str, float] = field(default_factory=dict)
    implied_rates: dict[str, float] = field(default_factory=dict)
    coefficients: dict[str, float] = field(default_factory=dict)
    problems: dict[str, Any] = field(default_factory=dict)

    @property
    def unrecognised(self) -> list[str]:
        """Headers the alias table does not know, as published."""
        return [h.header for h in self.headers if h.role is None]

    @property
    def mismatches(self) -> pl.DataFrame:
        """Rows of :attr:`standards` whose 支付标准 ≠ RW × 费率 × 系数 beyond rounding."""
        return self.standards.filter(pl.col("mismatch").fill_null(False))

    def counts(self) -> dict[str, int]:
        """Row counts: rows, with a positive RW, per flag, standards checked, mismatches."""
        t = self.table
        out = {
            "rows": t.height,
            "rw": int((t["rw"] > 0).sum()),
            "rw_text": int(t["rw_note"].is_not_null().sum()),
        }
        for f in (
            "base_group",
            "special_review",
            "same_rate",
            "tcm_advantage",
            "volume_control",
            "uncovered",
        ):
            out[f] = int(t[f].sum())
        out["stable"] = int(t["stable"].fill_null(False).sum())
        out["unstable"] = int((~t["stable"]).fill_null(False).sum())
        out["checked"] = int(self.standards["mismatch"].is_not_null().sum())
        out["mismatches"] = self.mismatches.height
        return out

    def to_weights(self) -> Weights:
        """The table as :class:`casemix.Weights` for settlement.

        ``table``: one row per DRG with a positive RW — ``drg``, ``rw``,
        ``name``, ``same_rate`` (同等费率病组 or 基础病组: one standard at every
        level [A-规 §19, A §3.4]), ``base_group``, ``special_review``,
        ``stable``, ``low_k``, ``high_k`` (null when not published), and
        every published ``standard_*``, ``rate_*``, ``coefficient_*`` and
        ``mean_cost*`` column.  ``quality``: ``source``, ``rates`` (published),
        ``implied_rates``, ``coefficients`` (one value per level, when the
        column holds one), ``excluded`` (rows without a positive RW, by DRG,
        and repeated DRG codes after the first), ``text_cells`` (by column,
        the kept DRGs whose cell holds text that is no number, null in the
        table: ``{"low_k": {"BB11": "无"}}``).
        """
        from casemix.weights import Weights

        t = self.table.with_row_index("_row")
        positive = t.filter(pl.col("rw") > 0)
        first = positive.unique("drg", keep="first", maintain_order=True)
        dup = positive.filter(~pl.col("_row").is_in(first["_row"].implode()))
        no_rw = t.filter(~(pl.col("rw") > 0) | pl.col("rw").is_null())
        extra = [
            c
            for c in t.columns
            if c.startswith(("standard", "rate", "coefficient", "mean_cost")) and not c.endswith("_note")
        ]
        # the kept rows' numeric cells that hold text, by column: null in the weights
        text_cells = {
            c.removesuffix("_note"): dict(first.filter(pl.col(c).is_not_null()).select("drg", c).iter_rows())
            for c in t.columns
            if c.endswith("_note") and c != "rw_note"
        }
        table = first.select(
            "drg",
            "rw",
            "name",
            (pl.col("same_rate") | pl.col("base_group")).alias("same_rate"),
            "base_group",
            "special_review",
            "stable",
            *(
                pl.col(k) if k in t.columns else pl.lit(None, pl.Float64).alias(k)
                for k in ("low_k", "high_k")
            ),
            *extra,
        )
        quality = {
            "source": self.path.name,
            "encoding": self.encoding,
            "rates": dict(self.rates),
            "implied_rates": dict(self.implied_rates),
            "coefficients": dict(self.coefficients),
            "excluded": {"no_positive_rw": no_rw["drg"].to_list(), "repeated_drg": dup["drg"].to_list()},
            "text_cells": {c: v for c, v in text_cells.items() if v},
            "n_input": self.table.height,
            "groups": table.height,
        }
        return Weights(table=table, quality=quality)


# ----------------------------------------------------------------- reading


def _number(col: str) -> pl.Expr:
    """Text → float: NFKC'd digits, thousands separators out; non-numbers → null."""
    s = pl.col(col).str.strip_chars().str.replace_all(",", "")
    return s.cast(pl.Float64, strict=False)


def _number_and_note(header: str, column: str) -> list[pl.Expr]:
    """The column as numbers, and beside it (``<column>_note``) the text of each cell that is
    no number: null in the numbers, never dropped without a word (北京's RW
    ``按项目据实支付``, a standard ``按项目付费``)."""
    text = pl.col(header).str.strip_chars()
    return [
        _number(header).alias(column),
        pl.when(_number(header).is_null() & (text != "")).then(text).alias(f"{column}_note"),
    ]


def _decimals(col: str) -> pl.Expr:
    """Published decimals of the column: the most any of its cells shows (trailing zeros
    are often dropped, so one cell's count understates the column's precision)."""
    digits = pl.col(col).str.strip_chars().str.extract(r"\.(\d+)$", 1).str.len_chars().fill_null(0)
    return digits.max()


def read_city_table(
    path: str | Path, *, encoding: str | None = None, sheet: str | int | None = None
) -> CityTable:
    """Read a published city DRG table (CSV in any common encoding, Excel, Parquet).

    Parameters
    ----------
    path
        The file, e.g. one of ``../shared/reference-data/city-drg-tables/``.
    encoding, sheet
        As :func:`casemix.io.read_table` (detected by default).

    Returns
    -------
    CityTable
        The recognised table, its standards check and what was not recognised.

    Raises
    ------
    InputError
        The file cannot be read, or no header is recognised as the DRG code
        or as RW/支付标准 (then it is not a DRG table; the message lists the
        headers found).
    """
    p = Path(path)
    enc = None
    if p.suffix.lower() in (".csv", ".txt", ".tsv") and p.is_file() and p.stat().st_size:
        enc = encoding or detect_encoding(p)
    raw = read_table(p, encoding=enc, sheet=sheet)
    raw = raw.with_columns(pl.col(c).cast(pl.String) for c in raw.columns)
    headers = tuple(recognise(h) for h in raw.columns)
    roles = {h.role for h in headers}
    if "drg" not in roles or not roles & {"rw", "standard"}:
        raise InputError(
            f"{p}: not a DRG table: no DRG code column or no RW/支付标准 column "
            f"recognised among {', '.join(raw.columns)}; add the wording to "
            "casemix/data/city_table_headers.toml"
        )
    seen: dict[str, str] = {}
    for h in headers:
        if h.role and h.role != "category":
            # flags of one role are or-ed; two columns read as one value column are ambiguous
            if h.column in seen and h.role in ("drg", "name", *NUMERIC_ROLES):
                raise InputError(
                    f"{p}: columns {seen[h.column]!r} and {h.header!r} both read as {h.column}; keep one"
                )
            seen.setdefault(h.column, h.header)
    table, problems = _normalise(raw, headers)
    standards, rates, implied, coefs = _check(table, raw, headers)
    return CityTable(
        path=p,
        encoding=enc,
        table=table,
        headers=headers,
        standards=standards,
        rates=rates,
        implied_rates=implied,
        coefficients=coefs,
        problems=problems,
    )


def _normalise(raw: pl.DataFrame, headers: tuple[HeaderRole, ...]) -> tuple[pl.DataFrame, dict[str, Any]]:
    _, values = _aliases()
    yes = {_norm(v).upper() for v in values.yes}
    no = {_norm(v).upper() for v in values.no}
    cols: list[pl.Expr] = []
    flags: dict[str, list[pl.Expr]] = {f: [] for f in (*FLAG_ROLES, "uncovered")}
    problems: dict[str, Any] = {"unreadable_values": {}}
    first: dict[str | None, HeaderRole] = {}
    for h in headers:
        first.setdefault(h.role, h)
    cell = {
        h.header: pl.col(h.header)
        .fill_null("")
        .map_elements(lambda v: _norm(v).upper(), return_dtype=pl.String)
        for h in headers
    }
    cols.append(pl.col(first["drg"].header).str.strip_chars().alias("drg"))
    cols.append(
        pl.col(first["name"].header).str.strip_chars().alias("name")
        if "name" in first
        else pl.lit(None, pl.String).alias("name")
    )
    if "rw" in first:
        cols += _number_and_note(first["rw"].header, "rw")
    else:
        cols += [pl.lit(None, pl.Float64).alias("rw"), pl.lit(None, pl.String).alias("rw_note")]
    for h in headers:
        if h.role in NUMERIC_ROLES and h.role != "rw":
            cols += _number_and_note(h.header, h.column)
        elif h.role in FLAG_ROLES:
            c = cell[h.header]
            flags[h.role].append(pl.when(c.is_in(list(yes))).then(True).when(c.is_in(list(no))).then(False))
            bad = raw.filter(
                ~pl.col(h.header)
                .fill_null("")
                .map_elements(lambda v: _norm(v).upper() in yes | no, return_dtype=pl.Boolean)
            )
            if bad.height:
                problems["unreadable_values"][h.header] = sorted(set(bad[h.header].to_list()))
        elif h.role == "category":
            c = cell[h.header]
            for kind in ("base_group", "same_rate", "special_review", "uncovered"):
                words = [_norm(w).upper() for w in getattr(values, kind)]
                flags[kind].append(c.is_in(words))
            st_words = [_norm(w).upper() for w in values.stable]
            un_words = [_norm(w).upper() for w in values.unstable]
            flags["stable"].append(pl.when(c.is_in(st_words)).then(True).when(c.is_in(un_words)).then(False))
            known = {
                _norm(w).upper()
                for k in ("base_group", "same_rate", "special_review", "uncovered", "stable", "unstable")
                for w in getattr(values, k)
            } | {""}
            unknown = sorted(
                {v for v in raw[h.header].fill_null("").to_list() if _norm(v).upper() not in known}
            )
            if unknown:
                problems["unreadable_values"][h.header] = unknown
    # an 'unstable' flag column is the stable flag negated
    flags["stable"] += [~e for e in flags.pop("unstable")]

    def any_of(exprs: list[pl.Expr], name: str, nullable: bool = False) -> pl.Expr:
        if not exprs:
            return pl.lit(None if nullable else False, pl.Boolean).alias(name)
        e = pl.coalesce(exprs) if nullable else pl.any_horizontal(e.fill_null(False) for e in exprs)
        return e.alias(name)

    flag_cols = [any_of(v, k, nullable=(k == "stable")) for k, v in flags.items()]
    table = raw.select(*cols, *flag_cols)
    return table, problems


def _check(
    table: pl.DataFrame, raw: pl.DataFrame, headers: tuple[HeaderRole, ...]
) -> tuple[pl.DataFrame, dict[str, float], dict[str, float], dict[str, float]]:
    """The standards check: one long frame of (row, standard column) with the product."""
    by_role: dict[str, list[HeaderRole]] = {}
    for h in headers:
        if h.role is not None:
            by_role.setdefault(h.role, []).append(h)
    rates = _constants(table, by_role.get("rate", []))
    coefs = _constants(table, by_role.get("coefficient", []))
    rw_dec = raw.select(_decimals(by_role["rw"][0].header)).item() if "rw" in by_role else 0
    parts: list[tuple[pl.DataFrame, HeaderRole, float, bool]] = []
    implied: dict[str, float] = {}
    standards = by_role.get("standard", [])

    def pick(candidates: list[HeaderRole], s: HeaderRole, need_level: bool) -> HeaderRole | None:
        ok = [
            c
            for c in candidates
            if c.pool in (s.pool, None)
            and c.area in (s.area, None)
            and (c.level == s.level if need_level else c.level in (s.level, None))
        ]
        ok.sort(key=lambda c: (c.pool != s.pool, c.level != s.level))
        return ok[0] if ok else None

    lit_null = pl.lit(None, pl.Float64)
    for s in standards:
        c = pick(by_role.get("coefficient", []), s, need_level=True) if s.level else None
        r = pick(by_role.get("rate", []), s, need_level=False)
        coef = pl.col(c.column) if c else pl.lit(1.0)
        base = table.select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
            "drg",
            "rw",
            "same_rate",
            "base_group",
            pl.col(s.column).alias("standard"),
            (pl.col(c.column) if c else lit_null).alias("coefficient"),
            (pl.col(r.column) if r else lit_null).alias("rate"),
        )
        half_s = 0.5 * 10.0 ** -raw.select(_decimals(s.header)).item()
        if r is None and "rw" in by_role:
            ordinary = table.filter(
                (pl.col("rw") > 0)
                & (pl.col(s.column) > 0)
                & ~pl.col("same_rate")
                & ~pl.col("base_group")
                & (coef > 0 if c else pl.lit(True))
            )
            if ordinary.height >= 3:
                rate = _implied_rate(
                    ordinary[s.column].to_numpy(),
                    ordinary["rw"].to_numpy(),
                    ordinary.select(coef.alias("c")).to_series().to_numpy(),
                    half_s,
                    0.5 * 10.0**-rw_dec,
                )
                implied[s.column] = rate
                base = base.with_columns(pl.lit(rate).alias("rate"))
        base = base.with_columns(
            pl.lit(s.column).alias("column"),
            pl.lit(s.header).alias("header"),
            pl.lit("published" if r else ("implied" if s.column in implied else None), pl.String).alias(
                "rate_source"
            ),
        )
        parts.append((base, s, half_s, c is not None))
    if not parts:
        empty = pl.DataFrame(
            schema={
                "row": pl.Int64,
                "drg": pl.String,
                "column": pl.String,
                "header": pl.String,
                "rw": pl.Float64,
                "rate": pl.Float64,
                "rate_source": pl.String,
                "coefficient": pl.Float64,
                "standard": pl.Float64,
                "expected": pl.Float64,
                "difference": pl.Float64,
                "tolerance": pl.Float64,
                "mismatch": pl.Boolean,
            }
        )
        return empty, rates, implied, coefs
    # same-rate groups may be paid one level's standard at every level: the products of
    # every level of the same pool (and the bare rate) are allowed for them
    level_products: dict[tuple[str | None, str | None], list[tuple[str, pl.DataFrame]]] = {}
    for base, s, _, _ in parts:
        level_products.setdefault((s.pool, s.area), []).append((s.column, base))
    out = []
    rw_half = 0.5 * 10.0**-rw_dec
    for base, s, half_s, has_c in parts:
        coef = pl.col("coefficient") if has_c else pl.lit(1.0)
        exp = pl.col("rw") * pl.col("rate") * coef
        # 费率 and 系数 are the policy's own parameters, exact as published; RW and 支付标准
        # are computed and rounded to the table's decimals: only their rounding is allowed
        tol = rw_half * pl.col("rate") * coef + half_s + 1e-9 * pl.col("standard").abs()
        f = base.with_columns(exp.alias("expected"), tol.alias("tolerance"))
        # the other levels' rate × coefficient, row by row, for same-rate rows
        alts = [pl.col("rw") * pl.col("rate")]
        for col, other in level_products[(s.pool, s.area)]:
            if col == s.column:
                continue
            o_c = other["coefficient"] if other["coefficient"].is_not_null().any() else None
            alt = other["rate"] * (o_c if o_c is not None else 1.0)
            f = f.with_columns(alt.alias(f"_alt_{col}"))
            alts.append(pl.col("rw") * pl.col(f"_alt_{col}"))
        near = pl.col("expected")
        for a in alts:
            closer = (a - pl.col("standard")).abs() < (near - pl.col("standard")).abs()
            near = (
                pl.when(pl.col("same_rate") | pl.col("base_group"))
                .then(pl.when(closer).then(a).otherwise(near))
                .otherwise(near)
            )
        f = f.with_columns(near.alias("expected"))
        checkable = (
            (pl.col("rw") > 0)
            & (pl.col("standard") > 0)
            & pl.col("rate").is_not_null()
            & (pl.col("coefficient").is_not_null() if has_c else pl.lit(True))
        )
        f = f.with_columns((pl.col("standard") - pl.col("expected")).alias("difference"))
        f = f.with_columns(
            pl.when(checkable).then(pl.col("difference").abs() > pl.col("tolerance")).alias("mismatch")
        )
        out.append(
            f.filter(pl.col("rw").is_not_null() & pl.col("standard").is_not_null()).select(
                "row",
                "drg",
                "column",
                "header",
                "rw",
                "rate",
                "rate_source",
                "coefficient",
                "standard",
                "expected",
                "difference",
                "tolerance",
                "mismatch",
            )
        )
    return pl.concat(out), rates, implied, coefs


def _implied_rate(standard: np.ndarray, rw: np.ndarray, coef: np.ndarray, h_s: float, h_rw: float) -> float:
    """The rate consistent with the most rows, given the rounding of the published figures.

    Row i allows every rate R with |S − RW·R·C| ≤ h_rw·R·C + h_s (h = half a
    unit of the column's last published digit; coefficients are exact), an interval
    [lo_i, hi_i].  The answer is the median of S ÷ (RW·C) when it lies in
    the stretch covered by the most intervals, else the middle of that
    stretch: the median alone sits outside it when RW is published with few
    decimals (北京: 2 decimals; its median 20,427.5 leaves 7 rows unexplained
    that 20,425.1 explains).
    """
    spread = h_rw * coef
    lo = (standard - h_s) / (rw * coef + spread)
    with np.errstate(divide="ignore"):
        hi = np.where(rw * coef > spread, (standard + h_s) / (rw * coef - spread), np.inf)
    xs = np.concatenate([lo, hi])
    step = np.concatenate([np.ones(lo.size), -np.ones(hi.size)])
    order = np.lexsort((-step, xs))  # at one x, an interval opens before another closes
    depth = np.cumsum(step[order])
    i = int(np.argmax(depth))
    # the last event closes an interval (depth 0 < the maximum), so i + 1 is always an event
    start, end = xs[order][i], xs[order][i + 1]
    median = float(np.median(standard / (rw * coef)))
    if start <= median <= end:  # the plain reading when it agrees with the most rows
        return median
    return float((start + end) / 2) if np.isfinite(end) else float(start)


def _constants(table: pl.DataFrame, cols: list[HeaderRole]) -> dict[str, float]:
    """Columns that hold one value in every filled row (a rate per pool, a level's coefficient)."""
    out = {}
    for h in cols:
        vals = table[h.column].drop_nulls().unique()
        if vals.len() == 1:
            out[h.column] = float(vals[0])
    return out
