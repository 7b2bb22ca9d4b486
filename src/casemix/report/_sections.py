"""Report sections that need the settlement or the scheme: what the report is
about (scheme, policy, budget, point values, period, counts, exclusions), the
names of DRG/ADRG/MDC codes, profit and loss by DRG per hospital, the case
lists written beside the page and the what-if comparison of two policies."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from casemix._frames import to_polars
from casemix.cases import canonical
from casemix.io import write_table
from casemix.report import _html as H

# rules of casemix.settle that make a case an outlier (高倍率/低倍率/短住院)
OUTLIER_RULES = ("high_cost", "low_cost", "short_stay")


@dataclass(frozen=True)
class Names:
    """Chinese names of a scheme's codes and the ADRG → MDC link."""

    scheme: str
    drg: Mapping[str, str]
    adrg: Mapping[str, str]
    mdc: Mapping[str, str]
    adrg_mdc: Mapping[str, str]

    @classmethod
    def of(cls, scheme: Any) -> Names | None:
        """Names from a scheme (name, folder or loaded ``Scheme``); None for ``None``."""
        if scheme is None:
            return None
        from casemix.scheme import load_scheme

        s = load_scheme(scheme)
        adrg_mdc = {a.code: mdc for mdc, ads in s.adrgs.items() for a in ads}
        label = f"{s.name} ({s.id}{' v' + s.version if s.version else ''})"
        return cls(label, s.drg_names(), s.adrg_names(), {m.code: m.name for m in s.mdcs}, adrg_mdc)

    def add(self, df: pl.DataFrame, col: str = "drg") -> pl.DataFrame:
        """``drg_name``, ``adrg``, ``adrg_name``, ``mdc``, ``mdc_name`` after the DRG column.

        The ADRG of a CHS-DRG code is its first three characters (the fourth
        is the severity digit, CHS-DRG 1.1 §3); codes the scheme does not
        know get empty names.
        """
        names = ["drg_name", "adrg", "adrg_name", "mdc", "mdc_name"]
        df = df.drop([c for c in names if c in df.columns])
        d = pl.col(col).cast(pl.String)
        adrg = d.str.slice(0, 3)
        out = (
            df.with_columns(
                drg_name=d.replace_strict(dict(self.drg), default=None, return_dtype=pl.String),
                adrg=pl.when(adrg.is_in(list(self.adrg))).then(adrg),
            )
            .with_columns(
                adrg_name=pl.col("adrg").replace_strict(
                    dict(self.adrg), default=None, return_dtype=pl.String
                ),
                mdc=pl.col("adrg").replace_strict(dict(self.adrg_mdc), default=None, return_dtype=pl.String),
            )
            .with_columns(
                mdc_name=pl.col("mdc").replace_strict(dict(self.mdc), default=None, return_dtype=pl.String)
            )
        )
        at = df.columns.index(col)
        return out.select(df.columns[: at + 1] + names + df.columns[at + 1 :])

    def unknown(self, codes: list[str]) -> list[str]:
        """Codes (other than the ungroupable 0000 kind) the scheme has no name for."""
        return sorted(
            {c for c in codes if c and c not in self.drg and not c.endswith("0000") and c != "0000"}
        )


def policy_identity(policy: Any, policy_file: str | Path | None = None) -> tuple[str, str]:
    """(file name, first 12 hex digits of its SHA-256) of the policy file, or of its source."""
    src = Path(policy_file) if policy_file is not None else Path(str(getattr(policy, "source", "")))
    try:
        digest = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    except OSError:
        return (str(getattr(policy, "source", "")) or "(built in Python)", "")
    return src.name, digest


def period_of(df: pl.DataFrame) -> str:
    """The discharge period of the cases: first and last ``discharge_date``, else the ``year``s."""
    if "discharge_date" in df.columns and df["discharge_date"].drop_nulls().len():
        d = df["discharge_date"].drop_nulls()
        return f"{d.min()!s} – {d.max()!s} (discharge dates 出院日期)"
    if "year" in df.columns and df["year"].drop_nulls().len():
        years = sorted({int(y) for y in df["year"].drop_nulls().to_list()})
        return ", ".join(str(y) for y in years) + " (year column 年度)"
    return "not in the data (no discharge_date or year column) 数据未含出院日期"


def _yuan(fen: Any) -> str:
    return "" if fen is None else f"{int(fen) / 100:,.2f}"


def about(
    settlement: Any,
    *,
    policy_file: str | Path | None,
    names: Names | None,
    period: str,
    counts: list[tuple[str, str]],
    notes: list[str],
    compare: Any = None,
    compare_file: str | Path | None = None,
) -> str:
    """The 'About this report' section: where every figure comes from."""
    rows: list[tuple[str, str]] = [
        ("Scheme 分组方案", names.scheme if names else "not given (no DRG names) 未指定"),
        ("Period 结算期间", period),
    ]
    for tag, s, f in (("", settlement, policy_file), (" (what-if B)", compare, compare_file)):
        if s is None:
            continue
        p = s.policy
        fname, digest = policy_identity(p, f)
        region = to_polars(s.region).row(0, named=True)
        rows += [
            (f"Policy{tag} 支付政策", f"{p.name} — file {fname}" + (f", sha256 {digest}" if digest else "")),
            (
                f"Method{tag} 付费方式",
                f"{p.method} ({'点数法' if p.method == 'point' else '费率法'}), "
                f"point form {p.point_form}, {p.points_per_rw:g} points per RW",
            ),
            (f"Budget{tag} 统筹基金预算", f"{_yuan(region['budget_fen'])} yuan"),
        ]
        pr = to_polars(s.pool_region) if s.pool_region is not None else None
        if pr is not None:
            for r in pr.iter_rows(named=True):
                pool = "" if r["pool"] == "all" else f" [{r['pool']}]"
                if r.get("pv_final") is None:
                    continue
                pv = f"{r['pv_final']:.4f} yuan/point"
                if p.elastic.enabled and r["pv_base"] is not None:
                    pv += f" (base 基准 {r['pv_base']:.4f}, floating 浮动 {r['pv_floating']:.4f})"
                budget = f", budget {_yuan(r['budget_fen'])} yuan" if pool else ""
                rows.append((f"Point value{tag}{pool} 点值", pv + budget))
            if p.method == "rate":
                rows.append((f"Rate{tag} 费率", f"{p.rate_yuan} yuan per RW"))
    rows += counts
    body = H.table(
        pl.DataFrame({"what": [r[0] for r in rows], "value": [r[1] for r in rows]}),
        [("what", "", H.fmt_text), ("value", "", H.fmt_text)],
    )
    if notes:
        body += (
            "<h3>Exclusions and notes 未纳入与说明</h3><ul>"
            + "".join(f"<li>{H.esc(n)}</li>" for n in notes)
            + "</ul>"
        )
    return body


def settled_cases(settlement: Any, mapping: dict[str, str] | None) -> tuple[pl.DataFrame, int]:
    """The settlement's cases in canonical names with ``cost_fen``; rows left out of the
    settlement are not in it (their count is returned)."""
    from casemix._money import yuan_array_to_fen

    t = to_polars(settlement.cases)
    c = canonical(
        t,
        mapping,
        need=("hospital_id", "drg", "total_cost"),
        optional=("case_id", "patient_id", "los", "admission_date", "discharge_date"),
        step="the payment report",
    )
    f = c.frame.with_row_index("_row")
    keep = f.filter(pl.col("left_out").is_null() & pl.col("settled_fen").is_not_null())
    cost = yuan_array_to_fen(keep["total_cost"].cast(pl.Float64).to_numpy())
    keep = keep.with_columns(cost_fen=pl.Series(cost, dtype=pl.Int64))
    if "case_id" not in keep.columns:
        keep = keep.with_columns(case_id=(pl.col("_row") + 1).cast(pl.String))
    return keep.drop("_row"), f.height - keep.height


def pnl_by_drg(sc: pl.DataFrame, names: Names | None) -> pl.DataFrame:
    """Per hospital × DRG: cases, settled payment, cost and profit (payment − cost), fen.

    Payment is the hospital's settled amount (fund + patient share,
    ``settled_fen`` of ``casemix.settle``), so the DRG rows of a hospital add
    up to its ``surplus_fen`` in the settlement, to the fen.
    """
    t = (
        sc.group_by("hospital_id", "drg")
        .agg(
            cases=pl.len(),
            payment_fen=pl.col("settled_fen").sum().cast(pl.Int64),
            cost_fen=pl.col("cost_fen").sum().cast(pl.Int64),
        )
        .with_columns(profit_fen=pl.col("payment_fen") - pl.col("cost_fen"))
        .with_columns(
            profit_share=pl.when(pl.col("cost_fen") > 0).then(pl.col("profit_fen") / pl.col("cost_fen"))
        )
        .sort("hospital_id", "profit_fen", "drg")
    )
    return names.add(t) if names else t


_LIST_COLUMNS = (
    "case_id",
    "hospital_id",
    "drg",
    "rule",
    "readmission",
    "rw",
    "ref_cost",
    "total_cost",
    "los",
    "patient_id",
    "admission_date",
    "discharge_date",
    "adjusted_points",
    "settled_fen",
    "cost_fen",
)


def case_lists(sc: pl.DataFrame, names: Names | None) -> dict[str, pl.DataFrame]:
    """Outlier, readmission, special-case and ungroupable lists (one row per case)."""
    cols = [c for c in _LIST_COLUMNS if c in sc.columns]
    t = sc.select(*cols).with_columns(pl.col("rule").cast(pl.String))
    if names:
        t = names.add(t)
    rule = pl.col("rule")
    return {
        "outlier_cases": t.filter(rule.is_in(list(OUTLIER_RULES))),
        "readmission_cases": t.filter(pl.col("readmission").fill_null(False)),
        "special_cases": t.filter(rule == "special"),
        "ungroupable_cases": t.filter(rule.is_in(["ungroupable", "no_weight"])),
    }


LIST_TITLES = {
    "outlier_cases": "Outliers 高倍率/低倍率/短住院病例 (rule high_cost, low_cost, short_stay)",
    "readmission_cases": "Readmissions 再入院病例 (settled by the readmission rule)",
    "special_cases": "Special cases 特病单议 (the policy's special list)",
    "ungroupable_cases": "Ungroupable or without weight 未入组/无权重 (rule ungroupable, no_weight)",
}


def write_lists(lists: dict[str, pl.DataFrame], out: Path) -> list[str]:
    """Each list as ``NAME.csv`` (UTF-8 with BOM, yuan beside fen) and ``NAME.xlsx``."""
    files = []
    for name, df in lists.items():
        for suffix in (".csv", ".xlsx"):
            write_table(df, out / f"{name}{suffix}", human=True, force=True)
            files.append(f"{name}{suffix}")
    return files


def what_if(a: Any, b: Any) -> pl.DataFrame:
    """Per hospital: settled payment, fund payment and surplus under A and B, and B − A (fen)."""
    cols = ["hospital_id", "cases", "settled_fen", "payment_fen", "surplus_fen"]
    ha = to_polars(a.hospitals).select(cols)
    hb = to_polars(b.hospitals).select(cols).drop("cases")
    t = ha.join(hb, on="hospital_id", how="full", coalesce=True, suffix="_b")
    t = t.rename(
        {
            "settled_fen": "settled_a_fen",
            "payment_fen": "payment_a_fen",
            "surplus_fen": "surplus_a_fen",
            "settled_fen_b": "settled_b_fen",
            "payment_fen_b": "payment_b_fen",
            "surplus_fen_b": "surplus_b_fen",
        }
    )
    return (
        t.with_columns(diff_fen=pl.col("settled_b_fen") - pl.col("settled_a_fen"))
        .with_columns(
            diff_share=pl.when(pl.col("settled_a_fen") != 0).then(
                pl.col("diff_fen") / pl.col("settled_a_fen")
            )
        )
        .sort("hospital_id")
    )
