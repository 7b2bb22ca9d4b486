"""The report's pictures, drawn with matplotlib's Agg canvas.

Figures are built as ``matplotlib.figure.Figure`` on an explicit
``FigureCanvasAgg``: no pyplot, no global backend switch, no display
needed, whatever ``MPLBACKEND`` says.  Plot text is English and Chinese,
drawn with the CJK font bundled in ``casemix/data/fonts`` (a subset of Droid
Sans Fallback, Apache-2.0); should it be unusable, an installed CJK font is
used, and without any, plot text is English and labels that need CJK glyphs
are replaced by short codes that the HTML page explains.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 110
_CJK_NAMES = (
    "Noto Sans CJK",
    "Noto Serif CJK",
    "Source Han",
    "WenQuanYi",
    "SimHei",
    "SimSun",
    "Microsoft YaHei",
    "PingFang",
    "Hiragino Sans GB",
    "Heiti",
    "Droid Sans Fallback",
    "AR PL",
    "Sarasa",
)
_BLUE, _ORANGE, _GREY, _RED = "#3b6ea5", "#e08a2c", "#9aa5b1", "#c0392b"


BUNDLED_FONT = "DroidSansFallback-subset.ttf"


def cjk_font() -> str | None:
    """Family name of the bundled CJK font (registered with matplotlib on first
    use), else of an installed font with CJK glyphs, else None."""
    from importlib import resources

    from matplotlib import font_manager

    path = resources.files("casemix") / "data" / "fonts" / BUNDLED_FONT
    try:
        with resources.as_file(path) as p:
            known = {f.fname for f in font_manager.fontManager.ttflist}
            if str(p) not in known:
                font_manager.fontManager.addfont(str(p))
            return font_manager.FontProperties(fname=str(p)).get_name()
    except (OSError, RuntimeError):  # a broken install: fall back to the system's fonts
        pass
    for f in font_manager.fontManager.ttflist:
        if any(k.lower() in f.name.lower() for k in _CJK_NAMES):
            return f.name
    return None


def _t(en: str, zh: str, font: str | None) -> str:
    """Label text: English and, when a CJK font draws it, Chinese."""
    return f"{en} {zh}" if font else en


def _rc(font: str | None) -> dict:
    rc = {
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 11,
        "axes.titleweight": "bold",
    }
    if font:
        # Latin from DejaVu Sans, the rest from the CJK font (per-glyph fallback): the
        # bundled CJK subset has no Latin glyphs; only font.family lists fall back per glyph
        rc["font.family"] = ["DejaVu Sans", font]
        rc["axes.unicode_minus"] = False
        # the bundled subset has one weight: bold titles made matplotlib log a
        # "findfont: Failed to find font weight bold" line on every plot
        rc["axes.titleweight"] = "normal"
    return rc


def _empty(ax, message: str) -> None:
    ax.text(
        0.5,
        0.6,
        message,
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="#555",
        bbox=dict(fc="white", ec="none"),
    )


def _new(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure, font: str | None = None) -> bytes:
    """The figure as PNG, drawn with the fonts of ``font`` (fonts are looked up when drawn)."""
    from matplotlib import rc_context

    buf = io.BytesIO()
    with rc_context(_rc(font)):
        fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def money_unit(values: Sequence[float] | np.ndarray) -> tuple[float, str]:
    """A divisor and unit name so the largest value reads in 1..10,000."""
    top = float(np.nanmax(np.abs(values))) if len(values) else 0.0
    for div, name in ((1e8, "100 million yuan"), (1e6, "million yuan"), (1e3, "thousand yuan")):
        if top >= div:
            return div, name
    return 1.0, "yuan"


def _place_labels(
    fig: Figure, ax, x: np.ndarray, y: np.ndarray, sizes: np.ndarray, labels: Sequence[str]
) -> int:
    """Label scatter points without overlaps; return how many labels found no room.

    Tries eight spots around each point, then the same further out with a
    leader line; a label that fits nowhere is left out (a pile of
    overlapping labels helps nobody; the table lists every hospital).
    Placement is done in display coordinates after the layout is fixed.
    Greedy, largest points first.
    """
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # Agg's canvas; not in FigureCanvasBase's stub
    frame = ax.get_window_extent(renderer)
    px = fig.dpi / 72.0
    centres = ax.transData.transform(np.column_stack([x, y]))
    radii = np.sqrt(sizes) / 2 * px  # scatter size is the marker area in pt²
    taken: list = []
    unplaced = 0

    def clashes(bb, own: int) -> bool:
        if not (frame.x0 <= bb.x0 and bb.x1 <= frame.x1 and frame.y0 <= bb.y0 and bb.y1 <= frame.y1):
            return True
        if any(bb.overlaps(t) for t in taken):
            return True
        # distance from each other marker's centre to the box
        cx = np.clip(centres[:, 0], bb.x0, bb.x1)
        cy = np.clip(centres[:, 1], bb.y0, bb.y1)
        near = np.hypot(centres[:, 0] - cx, centres[:, 1] - cy) < radii
        near[own] = False
        return bool(near.any())

    for i in np.argsort(-sizes, kind="stable"):
        r = radii[i] / px + 2  # points
        spots = [
            (r, 0, "left", "center"),
            (r * 0.7, r * 0.7, "left", "bottom"),
            (r * 0.7, -r * 0.7, "left", "top"),
            (-r, 0, "right", "center"),
            (0, r, "center", "bottom"),
            (0, -r, "center", "top"),
            (-r * 0.7, r * 0.7, "right", "bottom"),
            (-r * 0.7, -r * 0.7, "right", "top"),
        ]
        far = [(dx * f, dy * f, ha, va) for f in (2.2, 3.5, 5.0) for dx, dy, ha, va in spots]
        for k, (dx, dy, ha, va) in enumerate(spots + far):
            arrow = dict(arrowstyle="-", color=_GREY, lw=0.6) if k >= len(spots) else None
            t = ax.annotate(
                labels[i],
                (x[i], y[i]),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=8,
                zorder=4,
                arrowprops=arrow,
            )
            bb = t.get_window_extent(renderer).expanded(1.06, 1.15)
            if not clashes(bb, i):
                taken.append(bb)
                break
            t.remove()
        else:
            unplaced += 1
    return unplaced


def cmi_efficiency(
    labels: Sequence[str],
    cmi: np.ndarray,
    cei: np.ndarray,
    cases: np.ndarray,
    cmi_region: float,
    font: str | None,
) -> Figure:
    """Scatter of CMI (x) against cost efficiency (y), one labelled point per hospital."""
    from matplotlib import rc_context

    with rc_context(_rc(font)):
        fig = _new(7.5, 5.2)
        ax = fig.add_subplot()
        ok = np.isfinite(cmi) & np.isfinite(cei)
        x, y, n = cmi[ok], cei[ok], cases[ok]
        lab = [s for s, k in zip(labels, ok, strict=True) if k]
        top = 300 if n.size <= 20 else 140  # smaller markers when there are many
        size = 0.1 * top + 0.9 * top * (n / n.max() if n.size and n.max() > 0 else np.zeros(n.shape))
        colours = np.where(y > 1, _ORANGE, _BLUE)
        ax.scatter(x, y, s=size, c=colours, alpha=0.75, edgecolors="white", linewidths=0.8, zorder=3)
        ax.axhline(1.0, color=_GREY, lw=1, ls="--", zorder=1)
        if np.isfinite(cmi_region):
            ax.axvline(cmi_region, color=_GREY, lw=1, ls=":", zorder=1)
        if x.size:
            xr = max(x.max() - x.min(), 0.2)
            yr = max(y.max() - y.min(), 0.2)
            ax.set_xlim(x.min() - 0.12 * xr, x.max() + 0.15 * xr)
            ax.set_ylim(min(y.min(), 1.0) - 0.12 * yr, max(y.max(), 1.0) + 0.18 * yr)
        ax.set_xlabel(_t("CMI (case-mix index)", "病例组合指数", font))
        ax.set_ylabel(_t("Cost efficiency index (actual / expected cost)", "费用消耗指数", font))
        ax.set_title(_t("Case mix against cost efficiency, per hospital", "各医院CMI与费用消耗指数", font))
        ax.grid(alpha=0.25)
        if not x.size:
            _empty(ax, "no hospital has both a CMI and a cost efficiency index")
        else:
            left_out = _place_labels(fig, ax, x, y, size, lab)
            if left_out:
                ax.text(
                    0.99,
                    0.01,
                    f"{left_out} crowded point(s) left unlabelled; see the table",
                    transform=ax.transAxes,
                    ha="right",
                    va="bottom",
                    fontsize=7.5,
                    color="#555",
                )
    return fig


def payment_cost(labels: Sequence[str], payment: np.ndarray, cost: np.ndarray, font: str | None) -> Figure:
    """Horizontal bars: payment against actual cost per hospital, with the surplus share."""
    from matplotlib import rc_context

    div, unit = money_unit(np.concatenate([payment, cost]))
    order = np.argsort(cost)  # largest at the top
    h = len(labels)
    with rc_context(_rc(font)):
        fig = _new(7.5, max(2.6, 0.34 * h + 1.4))
        ax = fig.add_subplot()
        pos = np.arange(h)
        ax.barh(
            pos + 0.2, cost[order] / div, height=0.4, color=_GREY, label=_t("actual cost", "实际费用", font)
        )
        ax.barh(
            pos - 0.2, payment[order] / div, height=0.4, color=_BLUE, label=_t("payment", "结算金额", font)
        )
        right = max(np.nanmax(cost), np.nanmax(payment)) / div if h else 1
        for p, c, k in zip(payment[order], cost[order], pos, strict=True):
            if c > 0:
                r = (p - c) / c
                ax.text(
                    max(p, c) / div + 0.01 * right,
                    float(k),
                    f"{r:+.1%}",
                    va="center",
                    fontsize=7.5,
                    color=_RED if r < 0 else "#2e7d32",
                )
        ax.set_yticks(pos, [labels[i] for i in order])
        ax.set_xlim(0, right * 1.14)
        ax.set_xlabel(f"{unit}")
        ax.set_title(_t("Payment against actual cost, per hospital", "各医院结算与实际费用", font))
        ax.legend(loc="lower right", frameon=False)
        ax.grid(axis="x", alpha=0.25)
    return fig


def _log_axis(ax, lo: float, hi: float) -> None:
    """A log x axis with plain tick labels at 1-2-5 steps (no crowded minor labels)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    ax.set_xscale("log")
    steps = [m * 10.0**e for e in range(-3, 4) for m in (1, 2, 5)]
    ticks = [t for t in steps if lo <= t <= hi] or [lo, hi]
    if len(ticks) > 8:  # wide range: decades only
        ticks = [t for t in ticks if f"{t:g}".lstrip("0.").startswith("1")]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def weight_distribution(drg_rw: np.ndarray, case_rw: np.ndarray, font: str | None = None) -> Figure:
    """Histograms of relative weights: over DRGs and over cases (log-spaced bins)."""
    from matplotlib import rc_context

    with rc_context(_rc(font)):
        fig = _new(7.5, 3.4)
        axes = fig.subplots(1, 2)
        pos = np.concatenate([drg_rw[drg_rw > 0], case_rw[case_rw > 0]])
        if pos.size:
            lo, hi = pos.min(), pos.max()
            if hi / lo < 1.5:
                lo, hi = lo / 1.5, hi * 1.5
            bins: np.ndarray | int = np.geomspace(lo, hi, 30)
        else:
            bins = 10
        for ax, values, title in (
            (axes[0], drg_rw, _t("over DRGs", "按病组", font)),
            (axes[1], case_rw, _t("over cases", "按病例", font)),
        ):
            v = values[values > 0]
            ax.hist(v, bins=bins, color=_BLUE, alpha=0.85, edgecolor="white", linewidth=0.5)
            ax.set_ylim(top=ax.get_ylim()[1] * 1.12)  # room for the median label
            if pos.size:
                _log_axis(ax, lo, hi)
            if v.size:
                med = float(np.median(v))
                ax.axvline(med, color=_ORANGE, lw=1.2)
                ax.text(
                    0.98,
                    0.97,
                    f"median {med:.2f}",
                    color=_ORANGE,
                    fontsize=8,
                    va="top",
                    ha="right",
                    transform=ax.transAxes,
                )
            ax.set_title(_t("Relative weight", "相对权重", font) + f" {title}", fontsize=10)
            ax.set_xlabel(_t("RW (log scale)", "对数刻度", font))
            ax.set_ylabel(_t("DRGs", "病组数", font) if values is drg_rw else _t("cases", "病例数", font))
            ax.grid(alpha=0.25)
    return fig


def top_drgs(
    drgs: Sequence[str], total: np.ndarray, n: np.ndarray, cv: np.ndarray, font: str | None = None
) -> Figure:
    """Horizontal bars of the DRGs with the largest total cost, annotated with n and CV."""
    from matplotlib import rc_context

    div, unit = money_unit(total)
    k = len(drgs)
    with rc_context(_rc(font)):
        fig = _new(7.5, max(2.6, 0.3 * k + 1.3))
        ax = fig.add_subplot()
        pos = np.arange(k)[::-1]
        ax.barh(pos, total / div, color=_BLUE, height=0.7)
        right = float(np.nanmax(total)) / div if k else 1.0
        for p, t, ni, c in zip(pos, total, n, cv, strict=True):
            cv_text = f", CV {c:.2f}" if np.isfinite(c) else ""
            ax.text(
                t / div + 0.01 * right,
                p,
                f"n={int(ni):,}{cv_text}",
                va="center",
                fontsize=7.5,
                color=_RED if np.isfinite(c) and c >= 1 else "#333",
            )
        ax.set_yticks(pos, list(drgs))
        ax.set_xlim(0, right * 1.3)
        if not k:
            _empty(ax, "no grouped case")
        ax.set_xlabel(_t(f"total cost ({unit})", "总费用", font))
        ax.set_title(_t(f"Top {k} DRGs by total cost", "费用最高的病组", font))
        ax.grid(axis="x", alpha=0.25)
    return fig
