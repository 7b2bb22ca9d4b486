"""A self-contained HTML payment report with pictures.

``build_report`` writes ``index.html`` (images embedded as base64, each
linking to its PNG file written beside the page) into ``out_dir``:
hospital indicators, CMI against cost efficiency, payment against actual
cost, the weight distribution, the top DRGs by cost, the monitoring flags
and any extra sections the caller adds.  Rendering needs no display.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from casemix._frames import FrameLike, to_polars
from casemix.cases import canonical
from casemix.indicators import drg_indicators, grouping_riv, hospital_indicators
from casemix.io import write_table
from casemix.monitor import MonitorParams, describe_flags
from casemix.monitor import flags as compute_flags
from casemix.report import _html as H
from casemix.report import _plots as P
from casemix.report import _sections as S
from casemix.scheme import DEFAULT_SCHEME

__all__ = ["build_report"]

TOP_DRGS = 20
MAX_BARS = 30  # hospitals shown in the payment chart (largest cost first)


def build_report(
    cases: FrameLike,
    weights: Any = None,
    settlement: Any = None,
    flags: FrameLike | None = None,
    *,
    out_dir: str | Path = "report",
    extra_sections: Sequence[tuple[str, str]] = (),
    params: MonitorParams | None = None,
    title: str = "Case-mix payment report 病例组合与支付报告",
    mapping: dict[str, str] | None = None,
    scheme: Any = DEFAULT_SCHEME,
    policy_file: str | Path | None = None,
    compare: Any = None,
    compare_file: str | Path | None = None,
    period: str | None = None,
) -> Path:
    """Write the HTML report and its PNGs; return the path of ``index.html``.

    Parameters
    ----------
    cases : frame
        A grouped frame (``hospital_id``, ``drg``, ``total_cost``, …; see
        ``casemix.indicators``).
    weights : frame or Weights, optional
        ``drg`` and ``rw``; computed from ``cases`` with
        ``casemix.weights.compute_weights`` when not given.
    settlement : Settlement or frame, optional
        A ``casemix.settle.Settlement`` (or its per-hospital frame with
        ``hospital_id``, ``payment_fen``, ``cost_fen``).  Without it the
        payment section says so and shows no chart.
    flags : frame, optional
        Output of ``casemix.monitor.flags``; computed with ``params`` when
        not given.
    out_dir : path
        Folder for ``index.html`` and the PNGs (created if needed).
    extra_sections : sequence of (title, html)
        Further sections appended in order; the HTML is inserted as given
        (it must be trusted), the title is escaped.
    params : MonitorParams, optional
        Flag parameters (see ``casemix.monitor``).
    mapping : dict, optional
        ``{your column: canonical name}`` besides the aliases of
        ``docs/cases.md``.  Cases whose cost or hospital is missing or
        malformed, or whose cost is negative, are left out of the report
        (the bad-value rule of ``docs/cases.md``); the overview counts them.
    scheme : str, path or Scheme, optional
        The DRG scheme whose Chinese names are shown next to DRG, ADRG and
        MDC codes (default: the national CHS-DRG 1.1); ``None``: no names.
    policy_file, compare_file : path, optional
        The policy files of ``settlement`` and ``compare``, named in the
        report with their SHA-256 (default: the policies' ``source``).
    compare : Settlement, optional
        The same cases settled under a second policy: adds the what-if
        section (B − A per hospital) and ``what_if.csv``/``.xlsx``.
    period : str, optional
        The settlement period as stated; default: read from the cases'
        discharge dates or years.

    Returns
    -------
    Path
        ``out_dir / "index.html"``.

    Notes
    -----
    With a ``casemix.settle.Settlement``, the page also shows profit and
    loss by DRG per hospital and writes ``pnl_by_drg``, ``outlier_cases``,
    ``readmission_cases``, ``special_cases`` and ``ungroupable_cases`` as
    CSV (UTF-8 with BOM) and XLSX beside it.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    c = canonical(
        cases,
        mapping,
        need=("hospital_id", "drg", "total_cost"),
        optional=(
            "case_id",
            "adrg",
            "mdc",
            "los",
            "discharge",
            "year",
            "age",
            "hospital_level",
            "patient_id",
            "admission_date",
            "discharge_date",
        ),
        step="the payment report",
    )
    df = c.used
    if weights is None:
        from casemix.weights import compute_weights

        weights = compute_weights(df)
    wt = to_polars(getattr(weights, "table", weights))
    params = params or MonitorParams()
    hosp = to_polars(hospital_indicators(df, wt))
    drgs = to_polars(drg_indicators(df, wt))
    region = to_polars(hospital_indicators(df.with_columns(hospital_id=pl.lit("region")), wt)).row(
        0, named=True
    )
    fl = to_polars(flags) if flags is not None else to_polars(compute_flags(df, wt, params=params))
    money = _hospital_money(settlement)

    font = P.cjk_font()
    ids = [str(h) for h in hosp["hospital_id"].to_list()]
    labels, legend = _labels(ids, font)

    sections: list[tuple[str, str]] = []
    files: list[str] = []

    def fig(fig_obj: Any, name: str, caption: str, alt: str) -> str:
        png = P.png_bytes(fig_obj, font)
        (out / name).write_bytes(png)
        files.append(name)
        return H.figure(png, name, caption, alt)

    # --- overview
    riv = grouping_riv(df)
    # the weights' own RIV is over their trimmed case set: a different number, so a
    # different label (issue 13 item 6)
    riv_trimmed = (getattr(weights, "quality", None) or {}).get("riv")
    overview = H.cards(
        [
            ("cases 病例", f"{region['cases']:,}"),
            ("hospitals 医院", f"{len(ids):,}"),
            ("DRGs 组数", f"{region['drgs']:,}"),
            ("grouping rate 入组率", H.fmt_pct(region["grouping_rate"])),
            ("regional CMI", H.fmt_num(3)(region["cmi"])),
            ("RIV (cost, all grouped cases)", "" if not np.isfinite(riv) else f"{riv:.3f}"),
            *(
                [("RIV (cost, the weights' trimmed cases)", f"{riv_trimmed:.3f}")]
                if riv_trimmed is not None
                else []
            ),
            ("low-risk mortality 低风险组死亡率", H.fmt_pct(region["low_risk_mortality"])),
            ("flags raised 触发预警", f"{int(fl['flagged'].sum()):,}"),
        ]
    )
    left_out = (
        "".join(f'<p class="note">Left out 未纳入: {H.esc(n)}</p>' for n in c.notes()) if c.notes() else ""
    )
    sections.append(("Overview 概览", overview + left_out + _definitions_note()))

    # --- what the report is about: scheme, policy, budget, point values, period, counts
    names = S.Names.of(scheme)
    is_settlement = settlement is not None and hasattr(settlement, "policy")
    counts = [
        ("Cases in the input 输入病例", f"{c.frame.height:,}"),
        ("Cases in the indicators 纳入指标", f"{df.height:,}"),
    ]
    notes = [f"indicators: {n}" for n in c.notes()]
    sc = None
    if is_settlement:
        sc, n_out = S.settled_cases(settlement, mapping)
        region_row = to_polars(settlement.region).row(0, named=True)
        counts += [
            ("Cases settled 结算病例", f"{sc.height:,}"),
            ("Left out of the settlement 未结算", f"{n_out:,}"),
            *[
                (f"… settled by rule {r}", f"{region_row.get('n_' + r, 0):,}")
                for r in ("high_cost", "low_cost", "short_stay", "special", "ungroupable", "no_weight")
                if region_row.get("n_" + r)
            ],
            ("… readmissions 再入院", f"{region_row.get('n_readmission', 0):,}"),
        ]
        notes += [f"settlement: {n}" for n in settlement.notes]
    if names:
        unknown = names.unknown([str(d) for d in drgs["drg"].to_list()])
        if unknown:
            notes.append(
                f"{len(unknown)} DRG code(s) are not in the scheme {names.scheme} and have "
                f"no name (grouped with another scheme?): {', '.join(unknown[:10])}"
                + (" …" if len(unknown) > 10 else "")
            )
    sections.insert(
        0,
        (
            "About this report 报告说明",
            S.about(
                settlement if is_settlement else None,
                policy_file=policy_file,
                names=names,
                period=period or S.period_of(df),
                counts=counts,
                notes=notes,
                compare=compare,
                compare_file=compare_file,
            ),
        ),
    )

    # --- hospitals
    cmi = hosp["cmi"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    cei = hosp["cost_efficiency"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    n = hosp["cases"].to_numpy().astype(float)
    content = fig(
        P.cmi_efficiency(labels, cmi, cei, n, region["cmi"] or np.nan, font),
        "cmi_efficiency.png",
        "CMI (x) against the cost efficiency index (y): hospitals above the dashed "
        "line (1) spend more than the regional mean of their DRGs (orange); the dotted "
        "line is the regional CMI; point size shows cases. 病例组合指数与费用消耗指数。",
        "scatter of CMI against cost efficiency per hospital",
    )
    if legend:
        content += "<h3>Labels in the pictures 图中标签</h3>" + H.table(
            pl.DataFrame({"label": list(legend), "hospital_id": list(legend.values())}),
            [("label", "label", H.fmt_text), ("hospital_id", "hospital", H.fmt_text)],
        )
    content += "<h3>Indicators per hospital 医院指标</h3>" + H.table(hosp, _HOSPITAL_COLUMNS, scroll=True)
    sections.append(("Hospitals 医院", content))

    # --- payment
    if money is None:
        content = '<p class="note">No settlement was given, so payments are not shown. 未提供结算结果。</p>'
    else:
        m = money.sort("cost", descending=True)
        shown = m.head(MAX_BARS)
        label_of = dict(zip(ids, labels, strict=True))
        mlabels = [label_of.get(h, h) for h in shown["hospital_id"].to_list()]
        extra = f" The {MAX_BARS} hospitals with the largest cost are shown." if m.height > MAX_BARS else ""
        content = fig(
            P.payment_cost(mlabels, shown["payment"].to_numpy(), shown["cost"].to_numpy(), font),
            "payment_cost.png",
            "Payment against actual cost per hospital; the figure right of each pair is "
            f"the surplus (+, 结余) or deficit (−, 超支) as a share of cost.{extra}",
            "bars of payment and actual cost per hospital",
        )
        content += H.table(
            m.with_columns(
                surplus_share=pl.when(pl.col("cost") > 0).then(
                    (pl.col("payment") - pl.col("cost")) / pl.col("cost")
                )
            ),
            [
                ("hospital_id", "hospital", H.fmt_text),
                ("payment", "payment (yuan)", H.fmt_num(2)),
                ("cost", "actual cost (yuan)", H.fmt_num(2)),
                ("surplus", "surplus (yuan)", H.fmt_num(2)),
                ("surplus_share", "surplus / cost", H.fmt_pct),
                *(
                    [("settled_cmi", "CMI in the settlement (all cases with a weight)", H.fmt_num(3))]
                    if "settled_cmi" in m.columns
                    else []
                ),
            ],
            scroll=True,
        )
    sections.append(("Payment 支付与实际费用", content))

    # --- DRGs and weights
    case_rw = (
        df.select(pl.col("drg").cast(pl.String))
        .join(wt.select(pl.col("drg").cast(pl.String), pl.col("rw").cast(pl.Float64)), on="drg", how="inner")[
            "rw"
        ]
        .to_numpy()
    )
    drg_rw = wt["rw"].cast(pl.Float64, strict=False).drop_nulls().to_numpy()
    content = fig(
        P.weight_distribution(drg_rw, case_rw, font),
        "weights.png",
        "Relative weights over the DRGs of the weight table (left) and over the cases "
        "(right), log scale. 权重分布。",
        "histograms of relative weights",
    )
    top = drgs.head(TOP_DRGS)
    codes = [str(d) for d in top["drg"].to_list()]
    if names and font:  # code and a short Chinese name on each bar
        codes = [f"{d} {_short(names.drg.get(d, ''))}".strip() for d in codes]
    content += fig(
        P.top_drgs(
            codes,
            top["total_cost"].fill_null(0).to_numpy(),
            top["n"].to_numpy(),
            top["cv"].fill_null(np.nan).to_numpy(),
            font,
        ),
        "top_drgs.png",
        "DRGs with the largest total cost; n = cases, CV = coefficient of variation of "
        "cost (red when >= 1). 费用最高的DRG组。",
        "bars of total cost for the top DRGs",
    )
    content += "<h3>DRG statistics DRG组统计</h3>" + H.table(
        names.add(drgs) if names else drgs, _DRG_COLUMNS, scroll=True
    )
    sections.append(("DRGs and weights DRG组与权重", content))

    data_links: list[str] = []
    if sc is not None:
        pnl = S.pnl_by_drg(sc, names)
        for suffix in (".csv", ".xlsx"):
            write_table(pnl, out / f"pnl_by_drg{suffix}", human=True, force=True)
        data_links += ["pnl_by_drg.csv", "pnl_by_drg.xlsx"]
        sections.append(("Profit and loss by DRG 各医院病组盈亏", _pnl_section(pnl)))
        lists = S.case_lists(sc, names)
        data_links += S.write_lists(lists, out)
        sections.append(("Case lists 病例清单", _lists_section(lists)))
    if compare is not None and is_settlement:
        wi = S.what_if(settlement, compare)
        for suffix in (".csv", ".xlsx"):
            write_table(wi, out / f"what_if{suffix}", human=True, force=True)
        data_links += ["what_if.csv", "what_if.xlsx"]
        sections.append(("What-if: policy B against A 政策对比", _what_if_section(wi, settlement, compare)))

    # --- flags
    sections.append(("Monitoring flags 监测预警", _flags_section(fl, params)))

    for t, body in extra_sections:
        sections.append((t, body))

    # the full tables beside the page, for people who want every case id
    hosp.write_csv(out / "hospitals.csv")
    fl.with_columns(pl.col("case_ids").list.join(";")).write_csv(out / "flags.csv")
    sections.append(
        (
            "Data 数据",
            '<p>Full tables: <a href="hospitals.csv">hospitals.csv</a> '
            '(indicators per hospital), <a href="flags.csv">flags.csv</a> (every flag '
            "with all its case ids, ';'-separated)"
            + "".join(f', <a href="{H.esc(f)}">{H.esc(f)}</a>' for f in data_links)
            + ". CSV files start with a BOM for Excel; money is in fen (<code>_fen</code>) "
            "and yuan (<code>_yuan</code>).</p>",
        )
    )

    meta = (
        f"Generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by casemix. "
        f"Pictures: {', '.join(files)} (click a picture for its PNG)."
    )
    index = out / "index.html"
    index.write_text(H.page(title, H.esc(meta), sections), encoding="utf-8")
    return index


# --------------------------------------------------------------------------- pieces

_HOSPITAL_COLUMNS: list[H.Column] = [
    ("hospital_id", "hospital", H.fmt_text),
    ("cases", "cases", H.fmt_int),
    ("excluded", "excluded", H.fmt_int),
    ("grouping_rate", "grouping rate", H.fmt_pct),
    ("cmi", "CMI (LOS ≤ 60 d, cost ≥ 5 yuan)", H.fmt_num(3)),
    ("total_weight", "total weight", H.fmt_num(1)),
    ("drgs", "DRGs", H.fmt_int),
    ("cost_efficiency", "cost eff.", H.fmt_num(3)),
    ("time_efficiency", "time eff.", H.fmt_num(3)),
    ("low_risk_mortality", "low-risk mortality", H.fmt_pct),
    ("cc_share", "CC share", H.fmt_pct),
    ("mcc_share", "MCC share", H.fmt_pct),
]

_DRG_COLUMNS: list[H.Column] = [
    ("drg", "DRG", H.fmt_text),
    ("drg_name", "name 名称", H.fmt_text),
    ("mdc", "MDC", H.fmt_text),
    ("mdc_name", "MDC name", H.fmt_text),
    ("n", "n", H.fmt_int),
    ("rw", "RW", H.fmt_num(4)),
    ("total_cost", "total cost", H.fmt_num(0)),
    ("mean_cost", "mean cost", H.fmt_num(2)),
    ("cv", "CV", H.fmt_num(3)),
    ("mean_los", "mean LOS", H.fmt_num(1)),
    ("mortality", "mortality", H.fmt_pct),
    ("low_risk", "low risk", H.fmt_text),
]

_FLAG_COLUMNS: list[H.Column] = [
    ("hospital_id", "hospital", H.fmt_text),
    ("hospital_level", "level", H.fmt_text),
    ("flag", "flag", H.fmt_text),
    ("figure", "figure", H.fmt_pct),
    ("peer_figure", "peers", H.fmt_pct),
    ("threshold", "threshold (P80)", H.fmt_pct),
    ("numerator", "cases flagged", H.fmt_int),
    ("denominator", "of", H.fmt_int),
    ("case_ids", "case ids", H.fmt_text),
    ("note", "note", H.fmt_text),
]


PNL_PER_HOSPITAL = 5  # DRGs shown per hospital on the page (largest loss first); all in the files


def _fmt_yuan(v: Any) -> str:
    return "" if v is None else f"{int(v) / 100:,.2f}"


_PNL_COLUMNS: list[H.Column] = [
    ("hospital_id", "hospital", H.fmt_text),
    ("drg", "DRG", H.fmt_text),
    ("drg_name", "name 名称", H.fmt_text),
    ("cases", "cases", H.fmt_int),
    ("payment_fen", "payment 结算 (yuan)", _fmt_yuan),
    ("cost_fen", "cost 费用 (yuan)", _fmt_yuan),
    ("profit_fen", "profit 盈亏 (yuan)", _fmt_yuan),
    ("profit_share", "profit / cost", H.fmt_pct),
]


def _pnl_section(pnl: pl.DataFrame) -> str:
    worst = (
        pnl.sort("hospital_id", "profit_fen")
        .group_by("hospital_id", maintain_order=True)
        .head(PNL_PER_HOSPITAL)
    )
    return (
        "<p>Per hospital and DRG: payment = the hospital's settled amount (fund + patient "
        "share, <code>settled_fen</code>), cost = the cases' total cost, profit = payment − "
        "cost (结余 &gt; 0, 超支 &lt; 0); a hospital's rows add up to its surplus in the "
        f"settlement. Shown: the {PNL_PER_HOSPITAL} DRGs with the largest loss per hospital; "
        'every row is in <a href="pnl_by_drg.csv">pnl_by_drg.csv</a> / '
        '<a href="pnl_by_drg.xlsx">.xlsx</a>.</p>' + H.table(worst, _PNL_COLUMNS, scroll=True)
    )


_LIST_COLUMNS: list[H.Column] = [
    ("case_id", "case", H.fmt_text),
    ("hospital_id", "hospital", H.fmt_text),
    ("drg", "DRG", H.fmt_text),
    ("drg_name", "name 名称", H.fmt_text),
    ("rule", "rule", H.fmt_text),
    ("total_cost", "cost (yuan)", H.fmt_num(2)),
    ("ref_cost", "DRG mean cost (yuan)", H.fmt_num(2)),
    ("los", "LOS", H.fmt_num(0)),
    ("settled_fen", "payment (yuan)", _fmt_yuan),
]
LIST_ROWS = 20  # cases shown per list on the page; all in the files


def _lists_section(lists: dict[str, pl.DataFrame]) -> str:
    body = []
    for name, t in lists.items():
        links = f'<a href="{name}.csv">{name}.csv</a> / <a href="{name}.xlsx">.xlsx</a>'
        body.append(
            f"<h3>{H.esc(S.LIST_TITLES[name])}: {t.height:,}</h3><p>All: {links}"
            + (f" (first {LIST_ROWS} shown)" if t.height > LIST_ROWS else "")
            + ".</p>"
        )
        if t.height:
            body.append(H.table(t.head(LIST_ROWS), _LIST_COLUMNS, scroll=True))
    return "".join(body)


_WHAT_IF_COLUMNS: list[H.Column] = [
    ("hospital_id", "hospital", H.fmt_text),
    ("cases", "cases", H.fmt_int),
    ("settled_a_fen", "payment A (yuan)", _fmt_yuan),
    ("settled_b_fen", "payment B (yuan)", _fmt_yuan),
    ("diff_fen", "B − A (yuan)", _fmt_yuan),
    ("diff_share", "B − A / A", H.fmt_pct),
    ("surplus_a_fen", "surplus A", _fmt_yuan),
    ("surplus_b_fen", "surplus B", _fmt_yuan),
]


def _what_if_section(wi: pl.DataFrame, a: Any, b: Any) -> str:
    ra, rb = to_polars(a.region).row(0, named=True), to_polars(b.region).row(0, named=True)

    def pv(r: dict) -> str:
        return "per pool (see above)" if r["pv_final"] is None else f"{r['pv_final']:.4f}"

    summary = pl.DataFrame(
        {
            "what": [
                "policy",
                "budget (yuan)",
                "point value (yuan/point)",
                "settled, all hospitals (yuan)",
                "fund outlay (yuan)",
            ],
            "A": [
                a.policy.name,
                _fmt_yuan(ra["budget_fen"]),
                pv(ra),
                _fmt_yuan(ra["settled_fen"]),
                _fmt_yuan(ra["fund_outlay_fen"]),
            ],
            "B": [
                b.policy.name,
                _fmt_yuan(rb["budget_fen"]),
                pv(rb),
                _fmt_yuan(rb["settled_fen"]),
                _fmt_yuan(rb["fund_outlay_fen"]),
            ],
        }
    )
    return (
        "<p>The same cases settled under policy A (<code>--policy</code>) and B "
        "(<code>--compare</code>); payment = the hospital's settled amount. "
        '<a href="what_if.csv">what_if.csv</a> / <a href="what_if.xlsx">.xlsx</a>.</p>'
        + H.table(summary, [("what", "", H.fmt_text), ("A", "A", H.fmt_text), ("B", "B", H.fmt_text)])
        + H.table(wi, _WHAT_IF_COLUMNS, scroll=True)
    )


def _flags_section(fl: pl.DataFrame, params: MonitorParams) -> str:
    rules = "".join(
        f"<li><code>{H.esc(k)}</code>: {H.esc(v)}</li>" for k, v in describe_flags(params).items()
    )
    raised = fl.filter(pl.col("flagged"))
    head = (
        f"<p>A hospital is flagged when its figure is at or above the "
        f"{_ordinal(params.percentile * 100)} percentile of its peers (same level), with at least "
        f"{params.min_count} cases flagged and {params.min_peers} peers, the way PEPPER "
        "flags target areas. A flag marks where to look, not a finding. "
        "预警仅提示需关注之处，并非违规认定。</p>"
        f"<details><summary>Rules 规则</summary><ul>{rules}</ul></details>"
    )
    body = "<h3>Overview 总览</h3>" + _flag_matrix(fl)
    if raised.height:
        body += "<h3>Flags raised 已触发</h3>" + H.table(raised, _FLAG_COLUMNS, scroll=True)
    else:
        body += '<p class="note">No hospital is flagged. 无预警。</p>'
    body += (
        "<details><summary>All hospitals and flags 全部</summary>"
        + H.table(fl, _FLAG_COLUMNS, row_class="flagged", scroll=True)
        + "</details>"
    )
    return head + body


def _flag_matrix(fl: pl.DataFrame) -> str:
    """Hospitals × flags: each cell the hospital's figure, shaded when flagged."""
    names = list(dict.fromkeys(fl["flag"].to_list()))
    head = "".join(f"<th>{H.esc(n.replace('_', ' '))}</th>" for n in names)
    rows = []
    for (hosp,), part in fl.group_by("hospital_id", maintain_order=True):
        cells = {r["flag"]: r for r in part.iter_rows(named=True)}
        tds = []
        for n in names:
            r = cells.get(n)
            value = H.fmt_pct(r["figure"]) if r and r["figure"] is not None else "–"
            cls = ' class="hit"' if r and r["flagged"] else ""
            tds.append(f"<td{cls}>{H.esc(value)}</td>")
        rows.append(f'<tr><td class="t">{H.esc(hosp)}</td>{"".join(tds)}</tr>')
    return (
        f'<div class="scroll"><table><thead><tr><th class="t">hospital</th>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
        '<p class="meta">Shaded: flagged. – : not computed (see the notes below).</p>'
    )


def _ordinal(p: float) -> str:
    n = round(p)
    if abs(p - n) > 1e-9:
        return f"{p:g}th"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _definitions_note() -> str:
    return (
        "<p>Definitions and sources of every indicator and flag: "
        "<code>docs/indicators.md</code>. CMI = Σ RW / weighted cases; cost (time) "
        "efficiency = mean over cases of cost (LOS) / regional DRG mean; grouping rate = grouped / "
        "(cases − excluded: LOS &gt; 60 d or cost &lt; 5 yuan). The indicators' CMI leaves "
        "the excluded cases out; the settlement's CMI (payment table) is over every case "
        "the settlement gave a weight, excluded ones included, so the two differ when a "
        "hospital has excluded cases. The RIV of all grouped cases is untrimmed; the "
        "weights' RIV is over the cases their trimming kept.</p>"
    )


def _short(name: str, k: int = 14) -> str:
    return name if len(name) <= k else name[: k - 1] + "…"


def _labels(ids: list[str], font: str | None) -> tuple[list[str], dict[str, str]]:
    """Plot labels for hospital ids: ids needing CJK glyphs that no font has become ``#1``, ``#2``…"""
    if font:
        return ids, {}
    labels: list[str] = []
    legend: dict[str, str] = {}
    for h in ids:
        if h.isascii():
            labels.append(h)
        else:
            code = f"#{len(legend) + 1}"
            legend[code] = h
            labels.append(code)
    return labels, legend


def _hospital_money(settlement: Any) -> pl.DataFrame | None:
    """``hospital_id``, ``payment``, ``cost``, ``surplus`` (yuan) from a settlement, or None."""
    if settlement is None:
        return None
    t = to_polars(getattr(settlement, "hospitals", settlement))

    def yuan(fen: str, plain: Sequence[str]) -> pl.Expr | None:
        if fen in t.columns:
            return pl.col(fen).cast(pl.Float64) / 100.0
        for c in plain:
            if c in t.columns:
                return pl.col(c).cast(pl.Float64)
        return None

    pay = yuan("payment_fen", ("payment", "payment_yuan"))
    cost = yuan("cost_fen", ("cost", "actual_cost", "total_cost"))
    if pay is None or cost is None or "hospital_id" not in t.columns:
        from casemix.errors import InputError

        raise InputError(
            "settlement: need hospital_id and payment_fen/cost_fen (or payment/cost) "
            f"columns; got {', '.join(t.columns)}"
        )
    extra = [pl.col("cmi").cast(pl.Float64).alias("settled_cmi")] if "cmi" in t.columns else []
    return t.select(pl.col("hospital_id").cast(pl.String), *extra, payment=pay, cost=cost).with_columns(
        surplus=pl.col("payment") - pl.col("cost")
    )
