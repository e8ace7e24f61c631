"""Cumulative and leave-one-out meta-analyses drawn as forest plots, in the forest plot's style.

One row per refit (``res.cumulative`` or ``res.leave_one_out``): the study added (cumulative, in
the order of the chosen column) or left out, the number of studies in the fit, tau², I², the
estimate and CI as text, and on the plot the estimate (a small diamond) with its CI. The last
row is the analysis with every study; a dashed vertical line marks its estimate, so a row whose
diamond sits away from it shows the study (or the period) that moves the result. Written with
the forest plot's helpers (style, CI text, axis limits) so both read alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...vocabulary import DEFAULT_LABELS, MEASURE_TITLES, METHOD_TITLES
from . import style
from .forest import CHAR_IN, GAP_IN, PLOT_IN, ROW_IN, _limits, ci_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ...results import MetaResult, SensitivityRow

KINDS = ("cumulative", "leave_one_out")


@style.styled
def sensitivity_forest(res: MetaResult, kind: str = "cumulative", benefit: str = "lower",
                       labels: tuple[str, str] = DEFAULT_LABELS, title: str | None = None,
                       order_by: str | None = None, keys: Mapping[str, Any] | None = None) -> Figure:
    """Draw ``res.cumulative`` or ``res.leave_one_out`` as a forest plot, one row per refit (natural
    scale, ratios on a log axis).

    Parameters
    ----------
    res : MetaResult
        A fit from ``pool_table`` with ``cumulative=...`` or ``leave_one_out=True``.
    kind : {"cumulative", "leave_one_out"}
        Which sequence to draw.
    benefit : {"lower", "higher"}
        Which direction favours the experimental arm.
    labels : (str, str)
        Names of the experimental and control groups.
    title : str, optional
        Title above the plot.
    order_by : str, optional
        The column the cumulative sequence is ordered by (shown in the header).
    keys : mapping, optional
        Study -> that column's value, shown beside each study.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.patches import Polygon

    plt = style.pyplot()
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    seq: Sequence[SensitivityRow] | None = res.cumulative if kind == "cumulative" else res.leave_one_out
    if not seq:
        raise ValueError(f"the result has no {kind.replace('_', '-')} sequence")
    nat = res.natural
    label_of = {s.study: s.label or s.study for s in res.studies}
    prefix = "+ " if kind == "cumulative" else "Omitting "
    names = [prefix + label_of.get(r.study, r.study) for r in seq]
    key_col = keys is not None and kind == "cumulative"
    measure = MEASURE_TITLES.get(res.measure, res.measure)
    model = METHOD_TITLES.get(res.method, "IV, Random")

    def tau_text(t):
        return "-" if t is None or not math.isfinite(t) else f"{t:.2f}"

    def i2_text(v):
        return "-" if v is None or not math.isfinite(v) else f"{v:.0f}%"

    # A fit of one trial is that trial (RevMan): its own CI (the HKSJ interval has no df, and a model's
    # tau² and I² from one trial mean nothing), heterogeneity 'not applicable' (the footer says so).
    own = {s.study: s for s in res.studies}
    single = [r.k == 1 and r.study in own for r in seq]
    seq = [replace(r, estimate=own[r.study].yi, ci_low=own[r.study].ci_low, ci_high=own[r.study].ci_high)
           if one else r for r, one in zip(seq, single)]
    body = [[n, *([str((keys or {}).get(r.study, ""))] if key_col else []), str(r.k),
             "n/a" if one else tau_text(r.tau2), "n/a" if one else i2_text(r.i2),
             ci_text(nat, r.estimate, r.ci_low, r.ci_high)] for n, r, one in zip(names, seq, single)]
    total = ["All studies (95% CI)", *([""] if key_col else []), str(res.k), tau_text(res.tau2), i2_text(res.i2),
             ci_text(nat, res.estimate, res.ci_low, res.ci_high)]
    first = "Study added" if kind == "cumulative" else "Study left out"
    head = [first, *([order_by or "order"] if key_col else []), "k", "Tau²", "I²", f"{measure} [95% CI]"]
    foot = [f"{model}; each row refitted "
            + (f"with the studies up to and including it, ordered by {order_by or 'the given column'}"
               if kind == "cumulative" else "without that study"),
            "Dashed line: the estimate with all studies"]
    if any(single):
        foot.append("k = 1: the trial's own estimate and 95% CI; heterogeneity (tau², I²) not applicable")

    ncol = len(head)
    widths = [max(len(row[j]) for row in [head, *body, total]) * CHAR_IN * (1.1 if j == ncol - 1 else 1) + GAP_IN
              for j in range(ncol)]
    x_left = [0.15]
    for w in widths:
        x_left.append(x_left[-1] + w)
    table_w = x_left[-1]
    n_rows = 1 + len(body) + 2  # header, sequence, blank, total
    foot_w = max(len(t) for t in foot) * CHAR_IN
    title_w = len(title) * CHAR_IN * 1.25 if title else 0.0
    fig_w = max(table_w + PLOT_IN + 0.4, foot_w + 0.4, title_w + 0.4)
    fig_h = (n_rows + 2.4 + len(foot) * 1.05) * ROW_IN + (0.3 if title else 0.1) + 0.05
    fig = plt.figure(figsize=(fig_w, fig_h))
    fig.patch.set_facecolor("white")
    top = fig_h - (0.3 if title else 0.1)
    if title:
        fig.text(0.15 / fig_w, (fig_h - 0.12) / fig_h, title, fontsize=9, weight="bold", va="top")

    def y_of(row):
        return (top - (row + 0.5) * ROW_IN) / fig_h

    def put(x_in, row, text, ha: str = "left", **kw):
        return fig.text(x_in / fig_w, y_of(row), text, ha=ha, va="center", fontsize=8, **kw)

    def put_row(row, cells, **kw) -> None:
        for j, cell in enumerate(cells):
            if j == 0 or j == ncol - 1:
                put(x_left[j], row, cell, **kw)
            else:  # numbers right-aligned in their column
                put(x_left[j + 1] - GAP_IN, row, cell, ha="right", **kw)

    put_row(0, head, weight="bold")
    plot_x0 = table_w + 0.1
    put(plot_x0 + PLOT_IN / 2, 0, f"{measure}, 95% CI", ha="center", weight="bold")

    body_top, body_bottom = 1, n_rows
    ax = fig.add_axes([plot_x0 / fig_w, (top - body_bottom * ROW_IN) / fig_h, PLOT_IN / fig_w,
                       (body_bottom - body_top) * ROW_IN / fig_h])
    # Axis from the estimates and the all-studies CI; the wide CIs of the first few (k = 2) fits
    # would squash the rest, so bounds beyond twice that reach end in arrows instead.
    base = [v for v in [r.estimate for r in seq] + [res.ci_low, res.ci_high] if math.isfinite(v)]
    cap = 2 * max([abs(v) for v in base] + [1e-9])
    values = base + [v for r in seq for v in (r.ci_low, r.ci_high) if math.isfinite(v) and abs(v) <= cap]
    (lo_lim, hi_lim), ticks = _limits(res, values)
    ax.set_xlim(lo_lim, hi_lim)
    ax.set_ylim(body_bottom - 0.5, body_top - 0.5)
    ax.axvline(0.0, color=style.INK, lw=0.6)
    if math.isfinite(res.estimate):
        ax.axvline(res.estimate, color=style.INK, lw=0.6, ls=(0, (3, 2)), gid="all-studies-line")
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xticks([math.log(t) for t in ticks] if res.is_ratio else list(ticks))
    ax.set_xticklabels([f"{t:g}" for t in ticks], fontsize=7)
    ax.tick_params(axis="x", length=3, width=0.6)
    ax.spines["bottom"].set_linewidth(0.6)
    ax.patch.set_alpha(0)

    def whisker(y, lo, hi, color) -> None:
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return
        a, b = max(lo, lo_lim), min(hi, hi_lim)
        if b > a:
            ax.plot([a, b], [y, y], color=color, lw=0.8, solid_capstyle="butt")
        for beyond, sign in ((lo < lo_lim, -1), (hi > hi_lim, 1)):
            if beyond:
                edge = lo_lim if sign < 0 else hi_lim
                ax.annotate("", xy=(edge, y), xytext=(edge - sign * 0.06 * (hi_lim - lo_lim), y),
                            arrowprops=dict(arrowstyle="-|>", color=color, lw=0.8, mutation_scale=6))

    def diamond(y, lo, mid, hi, color, gid, half=0.38) -> None:
        if not all(math.isfinite(v) for v in (lo, mid, hi)):
            return
        lo, hi = max(lo, lo_lim), min(hi, hi_lim)
        ax.add_patch(Polygon([(lo, y), (mid, y - half), (hi, y), (mid, y + half)], closed=True, facecolor=color,
                             edgecolor=color, lw=0.6, gid=gid))

    for i, (cells, r) in enumerate(zip(body, seq)):
        row = i + 1
        put_row(row, cells)
        whisker(row, r.ci_low, r.ci_high, style.STUDY)
        if math.isfinite(r.estimate) and lo_lim <= r.estimate <= hi_lim:
            ax.plot([r.estimate], [row], marker="D", ms=4, color=style.STUDY, lw=0, gid=f"{kind}-{r.study}")
    total_row = n_rows - 1
    put_row(total_row, total, weight="bold")
    diamond(total_row, res.ci_low, res.estimate, res.ci_high, style.POOLED, "pooled")

    left, right = (labels[0], labels[1]) if benefit == "lower" else (labels[1], labels[0])
    fav_y = (top - (body_bottom + 1.45) * ROW_IN) / fig_h
    fig.text((plot_x0 + PLOT_IN * 0.25) / fig_w, fav_y, f"Favours {left}", ha="center", va="center", fontsize=7.5)
    fig.text((plot_x0 + PLOT_IN * 0.75) / fig_w, fav_y, f"Favours {right}", ha="center", va="center", fontsize=7.5)
    for j, line in enumerate(foot):
        fig.text(0.15 / fig_w, (top - (body_bottom + 2.3 + j * 1.05) * ROW_IN) / fig_h, line, ha="left",
                 va="center", fontsize=7.5, gid=f"footer-{j}")
    fig._hatmeta_axes = ax
    return fig
