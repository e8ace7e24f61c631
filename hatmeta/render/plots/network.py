"""Figures of a network meta-analysis: the network graph and the forest plot against the reference.

- ``network_graph``: treatments on a circle (netmeta's ``netgraph`` default layout, in the same
  order), node area proportional to the participants randomised to the treatment (arm-level
  input; equal nodes for contrast-level input, which does not carry them), edge width
  proportional to the number of studies of the comparison, each edge labelled with that number.
- ``network_forest``: every treatment against the reference, the estimate with its confidence
  interval on the natural scale (log axis for OR and RR), with the P-scores beside.

matplotlib is imported only when a figure is drawn; both return the Figure (see ``style.save``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np

from . import style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ...methods.network import NMAResult


@style.styled
def network_graph(res: NMAResult, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Network graph of an NMAResult."""
    plt = style.pyplot()
    fig: Figure
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 5.0))
    else:
        fig = cast("Figure", ax.figure)  # (not a SubFigure)
    trts = list(res.treatments)
    n = len(trts)
    # netgraph's circle starts at the top and runs clockwise.
    angle = math.pi / 2 - 2 * math.pi * np.arange(n) / n
    x, y = np.cos(angle), np.sin(angle)
    pos = {t: (x[i], y[i]) for i, t in enumerate(trts)}
    top = max(c["studies"] for c in res.comparisons)
    for c in res.comparisons:
        k = c["studies"]
        (x1, y1), (x2, y2) = pos[c["treat1"]], pos[c["treat2"]]
        ax.plot([x1, x2], [y1, y2], color=style.STUDY, lw=0.8 + 5.2 * k / top, solid_capstyle="round",
                zorder=1, gid=f"edge {c['treat1']} vs {c['treat2']}")
        # The label sits a third of the way along the edge, not at its middle, where edges cross.
        ax.text(x1 + 0.36 * (x2 - x1), y1 + 0.36 * (y2 - y1), str(k), ha="center", va="center", fontsize=7,
                color=style.INK, zorder=3, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"})
    part = res.participants
    if part:
        top_n = max(part.values())
        sizes = [60 + 900 * part.get(t, 0) / top_n for t in trts]
    else:
        sizes = [300] * n
    ax.scatter(x, y, s=sizes, color="#d9e4ee", edgecolor=style.STUDY, linewidth=1.0, zorder=2)
    for i, t in enumerate(trts):
        label = t + (f"\n(n = {int(part[t])})" if part and t in part else "")
        # Outside the node: its radius in points is sqrt(s) / 2, about 112 points per data unit here.
        r = 1.0 + math.sqrt(sizes[i]) / 2 / 112 + 0.06
        ha = "left" if x[i] > 0.3 else "right" if x[i] < -0.3 else "center"
        va = "bottom" if y[i] > 0.3 else "top" if y[i] < -0.3 else "center"
        ax.text(r * x[i], r * y[i], label, ha=ha, va=va, fontsize=8, color=style.INK, zorder=4)
    ax.set_xlim(-1.6, 1.6)
    ax.set_ylim(-1.6, 1.6)
    ax.set_aspect("equal")
    ax.axis("off")
    note = ("node area: participants randomised; " if part else "") + "edge width and label: number of studies"
    ax.text(0, -1.55, note, ha="center", va="bottom", fontsize=6.5, color="#555555")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


@style.styled
def network_forest(res: NMAResult, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Forest plot of every treatment against the reference (natural scale), with P-scores."""
    from ...dist import norm_isf

    plt = style.pyplot()
    est = [e for e in res.estimates]
    order = sorted(est, key=lambda e: -res.p_scores[e["treatment"]])
    fig: Figure
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.0, 0.9 + 0.32 * len(order)))
    else:
        fig = cast("Figure", ax.figure)  # (not a SubFigure)
    z = float(norm_isf((1 - res.level) / 2))
    nat = np.exp if res.is_ratio else (lambda v: v)
    ys = np.arange(len(order))[::-1]
    for yv, e in zip(ys, order):
        lo, hi = e["estimate"] - z * e["se"], e["estimate"] + z * e["se"]
        ax.plot([nat(lo), nat(hi)], [yv, yv], color=style.INK, lw=1.0)
        ax.plot([nat(e["estimate"])], [yv], "s", color=style.STUDY, ms=5)
    null = 1.0 if res.is_ratio else 0.0
    ax.axvline(null, color="#888888", lw=0.6, ls="--")
    if res.is_ratio:
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

        ax.set_xscale("log")
        lo = min(nat(e["estimate"] - z * e["se"]) for e in order)
        hi = max(nat(e["estimate"] + z * e["se"]) for e in order)
        nice = [v * 10.0**p for p in range(-3, 4) for v in (1, 2, 5)]
        ticks = [v for v in nice if min(lo, 1.0) / 1.05 <= v <= max(hi, 1.0) * 1.05]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_yticks(ys)
    ax.set_yticklabels([e["treatment"] for e in order])
    ax.set_ylim(-0.8, len(order) - 0.2)
    lv = f"{100 * res.level:g}%"
    model = "random effects" if res.model == "random" else "common effect"
    ax.set_xlabel(f"{res.measure} against {res.reference} [{lv} CI], {model}")
    for yv, e in zip(ys, order):
        lo, hi = e["estimate"] - z * e["se"], e["estimate"] + z * e["se"]
        ax.annotate(f"{nat(e['estimate']):.2f} [{nat(lo):.2f}, {nat(hi):.2f}]   "
                    f"P-score {res.p_scores[e['treatment']]:.2f}",
                    (1.02, yv), xycoords=("axes fraction", "data"), va="center", fontsize=7, color=style.INK)
    ax.spines[["top", "right"]].set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.subplots_adjust(right=0.62)
    return fig


@style.styled
def comparison_adjusted_funnel(res: NMAResult, order: Sequence[str], ax: Axes | None = None,
                               title: str | None = None) -> Figure:
    """Comparison-adjusted funnel plot (Chaimani & Salanti 2012; netmeta's ``funnel.netmeta``): every
    study's comparison, oriented by ``order``, centred at that comparison's direct estimate, against
    its standard error (inverted axis), with the 95% pseudo-confidence region around 0. Analysis scale."""
    from ...methods.network import comparison_adjusted

    plt = style.pyplot()
    # A pooled NMAResult carries its fit (result_from_fit); the ignore keeps the call as it was for one without.
    rows = comparison_adjusted(res.fit, order, res.model)  # type: ignore[arg-type]
    fig: Figure
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.6, 4.4))
    else:
        fig = cast("Figure", ax.figure)  # (not a SubFigure)
    comps = list(dict.fromkeys((r["treat1"], r["treat2"]) for r in rows))
    markers = "osD^v<>phX*"
    cmap = plt.get_cmap("tab10")
    for c, (a, b) in enumerate(comps):
        pts = [r for r in rows if (r["treat1"], r["treat2"]) == (a, b)]
        ax.plot([r["te_adj"] for r in pts], [r["se"] for r in pts], markers[c % len(markers)], ms=4,
                color=cmap(c % 10), label=f"{a} vs {b}", gid=f"comparison {a} vs {b}")
    top = max(r["se"] for r in rows) * 1.05
    ax.plot([-1.959963984540054 * top, 0, 1.959963984540054 * top], [top, 0, top], color="#888888", lw=0.6, ls="--")
    ax.axvline(0, color="#888888", lw=0.6)
    ax.set_ylim(top, 0)
    ax.set_ylabel("Standard error")
    name = f"log {res.measure}" if res.is_ratio else res.measure
    ax.set_xlabel(f"{name} centred at the comparison's direct estimate ({res.model} effects)")
    ax.legend(fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["network_graph", "network_forest", "comparison_adjusted_funnel"]
