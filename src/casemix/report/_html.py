"""HTML pieces of the report: tables, figures, the page shell and its CSS."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

CSS = """
body { font-family: -apple-system, "Segoe UI", "Noto Sans", "PingFang SC", "Microsoft YaHei",
       sans-serif; color: #222; max-width: 1100px; margin: 2em auto; padding: 0 1.2em;
       line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid #3b6ea5; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
.meta { color: #666; font-size: 0.9em; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 1em 0; }
.card { background: #f3f6fa; border-radius: 6px; padding: 0.6em 1em; min-width: 9em; }
.card b { display: block; font-size: 1.3em; color: #3b6ea5; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e7ec; }
figcaption { color: #555; font-size: 0.88em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #e3e7ec; text-align: right; }
th { background: #f3f6fa; position: sticky; top: 0; }
td.t, th.t { text-align: left; }
tr.flagged td, td.hit { background: #fdecea; }
td.hit { color: #c0392b; font-weight: bold; }
.scroll { max-height: 32em; overflow: auto; }
.note { background: #fff8e1; border-left: 4px solid #e0a82c; padding: 0.4em 0.8em; }
details summary { cursor: pointer; color: #3b6ea5; }
code { background: #f3f6fa; padding: 0 0.25em; }
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def fmt_int(v: Any) -> str:
    return "" if v is None else f"{int(v):,}"


def fmt_num(digits: int) -> Callable[[Any], str]:
    def f(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        return f"{float(v):,.{digits}f}"

    return f


def fmt_pct(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{float(v):.1%}"


def fmt_text(v: object) -> str:
    if isinstance(v, (list, tuple)):
        shown = ", ".join(str(x) for x in v[:8])
        return shown + (f" … (+{len(v) - 8})" if len(v) > 8 else "")
    return "" if v is None else str(v)


Column = tuple[str, str, Callable[[object], str]]  # (column, header, formatter)


def table(
    df: pl.DataFrame, columns: Sequence[Column], *, row_class: str | None = None, scroll: bool = False
) -> str:
    """An HTML table; text columns (formatted by ``fmt_text``) are left-aligned."""
    cols = [c for c in columns if c[0] in df.columns]
    head = "".join(f'<th class="{"t" if f is fmt_text else ""}">{esc(h)}</th>' for _, h, f in cols)
    rows = []
    for r in df.iter_rows(named=True):
        cls = ' class="flagged"' if row_class and r.get(row_class) else ""
        cells = "".join(f'<td class="{"t" if f is fmt_text else ""}">{esc(f(r[c]))}</td>' for c, _, f in cols)
        rows.append(f"<tr{cls}>{cells}</tr>")
    body = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return f'<div class="scroll">{body}</div>' if scroll else body


def figure(png: bytes, filename: str, caption: str, alt: str) -> str:
    """An embedded (base64) image that links to its PNG file beside the page."""
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><a href="{esc(filename)}"><img src="data:image/png;base64,{data}" '
        f'alt="{esc(alt)}"></a><figcaption>{caption}</figcaption></figure>'
    )


def cards(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{esc(v)}</b>{esc(k)}</div>' for k, v in items)
        + "</div>"
    )


def page(title: str, meta: str, sections: Sequence[tuple[str, str]]) -> str:
    body = "\n".join(f"<section><h2>{esc(t)}</h2>\n{content}\n</section>" for t, content in sections)
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>{esc(title)}</h1>
<p class="meta">{meta}</p>
{body}
</body>
</html>
"""
