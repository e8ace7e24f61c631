"""Baujat plot and influence-diagnostics plot (metafor's ``baujat`` and ``plot(influence(...))``).

Baujat et al. 2002 (Stat Med 21:2641): each study's contribution to the heterogeneity, its squared
Pearson residual (y_i - mu)^2 / (v_i + tau^2), against its influence on the pooled result,
(mu - mu_(-i))^2 / vb_(-i). Studies in the top right drive both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np

from ...vocabulary import COMMON_EFFECT_METHODS
from . import style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

    from ...results import MetaResult

PANELS = (("rstudent", "rstudent"), ("dffits", "dffits"), ("cooks_distance", "Cook's distance"),
          ("cov_ratio", "covariance ratio"), ("tau2_deleted", "tau^2 (study left out)"),
          ("q_deleted", "Q (study left out)"), ("hat", "hat value"), ("weight", "weight (%)"))


def _arrays(res: MetaResult) -> dict[str, np.ndarray]:
    from ...methods.influence import influence_arrays

    yi = np.array([s.yi for s in res.studies])
    vi = np.array([s.vi for s in res.studies])
    method = "DL" if res.method == "MH-DL" else res.method
    a = influence_arrays(yi, vi, [len(yi)], method=method, ci=res.ci_method)
    a["weight"] = 100 * a["hat"]
    return a


def _labels(res: MetaResult) -> list[str]:
    return [s.label or s.study for s in res.studies]


@style.styled
def baujat(res: MetaResult, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Baujat plot of ``res``: each study's contribution to Cochran's Q against its influence on the
    pooled estimate (metafor's ``baujat``).

    Parameters
    ----------
    res : MetaResult
        A fit with at least 3 studies.
    ax : matplotlib.axes.Axes, optional
        Draw on this Axes.
    title : str, optional
        Title above the plot.

    Returns
    -------
    matplotlib.figure.Figure

    References
    ----------
    Baujat B, Mahe C, Pignon JP, Hill C (2002). A graphical method for exploring heterogeneity in
    meta-analyses. Stat Med 21:2641-2652.
    """
    plt = style.pyplot()
    a = _arrays(res)
    given = ax is not None
    fig: Figure
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 4.4))
    else:
        fig = cast("Figure", ax.figure)  # (not a SubFigure)
    x, y = a["baujat_x"], a["baujat_y"]
    ax.plot(x, y, "o", color=style.STUDY, ms=4, gid="studies")
    ax.margins(0.08)
    common = res.method in COMMON_EFFECT_METHODS
    ax.set_xlabel("Contribution to overall heterogeneity" if common else "Squared Pearson residual")
    ax.set_ylabel("Influence on overall result")
    ax.grid(True, color="#e0e0e0", lw=0.5)
    ax.set_axisbelow(True)
    if title:
        import textwrap

        ax.set_title(textwrap.fill(title, style.title_width(ax, given)), fontsize=8)
    if not given:  # a given Axes keeps its place in the caller's figure
        fig.tight_layout()
    _name_points(ax, x, y, _labels(res))
    return fig


def _name_points(ax: Axes, x: NDArray[np.float64], y: NDArray[np.float64], names: Sequence[str],
                 fontsize: float = 6) -> None:
    """Every point named, as metafor's baujat() does, with no two names overlapping each other or a point:
    each name (the most influential first) takes the first free place among eight around its point, then
    farther out with a thin leader line. Places are tried in display units, after the layout is final."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    fig = ax.figure
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # Agg's canvas (style.pyplot's backend) has one
    px = fig.dpi / 72  # pixels per point
    pts = ax.transData.transform(np.column_stack([x, y]))
    frame = ax.get_window_extent(renderer)
    dot = 2.5 * px  # half the marker
    taken = [(u - dot, v - dot, u + dot, v + dot) for u, v in pts]

    def size(name: str) -> tuple[float, float]:
        prop = FontProperties(family=style.families(name), size=fontsize)
        w = max(text_to_path.get_text_width_height_descent(name, prop, ismath=False)[0],
                renderer.get_text_width_height_descent(name, prop, ismath=False)[0] / px)
        return w * px * 1.04 + px, fontsize * 1.2 * px

    def free(box: tuple[float, float, float, float]) -> bool:
        x0, y0, x1, y1 = box
        if x0 < frame.x0 + 1 or x1 > frame.x1 - 1 or y0 < frame.y0 + 1 or y1 > frame.y1 - 1:
            return False
        return all(x1 <= a0 or x0 >= a1 or y1 <= b0 or y0 >= b1 for a0, b0, a1, b1 in taken)

    order = np.argsort(-(x / (np.max(x) or 1) + y / (np.max(y) or 1)))
    for j in order:
        name = names[j]
        w, h = size(name)
        u, v = pts[j]
        choice = None
        for r in (3, 9, 16, 26, 40, 60):  # points from the marker's edge
            d = (r + 2) * px
            around = [(d, d), (d, -d - h), (-d - w, d), (-d - w, -d - h), (d, -h / 2), (-d - w, -h / 2),
                      (-w / 2, d), (-w / 2, -d - h)]
            for dx, dy in around:
                box = (u + dx, v + dy, u + dx + w, v + dy + h)
                if free(box):
                    choice = (dx, dy, r)
                    break
            if choice:
                break
        if choice is None:  # nowhere free: beside the point, as before
            choice = (3 * px, 3 * px, 3)
        dx, dy, r = choice
        taken.append((u + dx, v + dy, u + dx + w, v + dy + h))
        leader = dict(arrowstyle="-", color="#9a9a9a", lw=0.4, shrinkA=0, shrinkB=2) if r > 3 else None
        ax.annotate(name, (x[j], y[j]), xytext=(dx / px, dy / px), textcoords="offset points", ha="left",
                    va="bottom", fontsize=fontsize, color=style.INK, arrowprops=leader, gid=f"name-{j}",
                    family=style.families(name), parse_math=False)


@style.styled
def influence_plot(res: MetaResult, axes: Sequence[Axes] | None = None, title: str | None = None) -> Figure:
    """Eight panels, one per diagnostic of metafor's ``influence()``, studies in order; influential
    studies (metafor's rule) in red.

    Parameters
    ----------
    res : MetaResult
        A fit with at least 3 studies.
    axes : sequence of matplotlib.axes.Axes, optional
        Eight axes to draw on (default: a new 4 x 2 figure).
    title : str, optional
        Title above the panels.

    Returns
    -------
    matplotlib.figure.Figure

    References
    ----------
    Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for meta-analysis. Res Synth
    Methods 1:112-125.
    """
    plt = style.pyplot()
    a = _arrays(res)
    given = axes is not None
    fig: Figure
    if axes is None:
        fig, grid = plt.subplots(4, 2, figsize=(6.4, 7.2), sharex=True)
        axes = grid.ravel()
    else:
        axes = list(axes)
        fig = cast("Figure", axes[0].figure)  # (not a SubFigure)
    k = len(a["hat"])
    idx = np.arange(1, k + 1)
    flag = a["influential"]
    for ax, (key, label) in zip(axes, PANELS):
        vals = a[key]
        ax.plot(idx, vals, "-", color="#9a9a9a", lw=0.6)
        ax.plot(idx[~flag], vals[~flag], "o", color=style.STUDY, ms=3, gid=f"{key}-studies")
        ax.plot(idx[flag], vals[flag], "o", color="#c0392b", ms=3.5, gid=f"{key}-influential")
        ax.set_title(label, fontsize=7)
        ax.tick_params(labelsize=6)
        if key == "tau2_deleted":
            ax.axhline(res.tau2, color=style.INK, lw=0.6, ls="--")
        elif key == "q_deleted":
            ax.axhline(res.q, color=style.INK, lw=0.6, ls="--")
        elif key == "hat":
            ax.axhline(1 / k, color=style.INK, lw=0.6, ls="--")
        elif key == "weight":
            ax.axhline(100 / k, color=style.INK, lw=0.6, ls="--")
    names = _labels(res)
    for ax in axes[-2:]:
        if k <= 40:  # the studies by name, as the forest plot lists them (numbers beyond 40: too many names)
            ax.set_xticks(idx)
            ax.set_xticklabels(names, fontsize=5.5, rotation=40, ha="right", rotation_mode="anchor")
        else:
            ax.set_xlabel("study (forest order)", fontsize=7)
    # What the colours and dashed lines mean (metafor's plot.infl: red = influential, by its rule).
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="", color=style.STUDY, ms=3, label="not influential"),
               Line2D([], [], marker="o", ls="", color="#c0392b", ms=3.5,
                      label="influential (metafor: |DFFITS| > 3√(1/(k−1)), Cook's P > 0.5, hat > 3/k "
                            "or |DFBETAS| > 1)"),
               Line2D([], [], ls="--", color=style.INK, lw=0.6,
                      label="dashed: with all studies (tau², Q), or 1/k (hat, weight)")]
    if given:  # the caller's figure keeps its layout: the key goes on the first panel given
        axes[0].legend(handles=handles, fontsize=5, frameon=False, loc="best")
        if title:
            import textwrap

            axes[0].set_title(f"{textwrap.fill(title, style.title_width(axes[0], True))}\n{PANELS[0][1]}", fontsize=7)
        return fig
    fig.legend(handles=handles, loc="lower center", ncol=1, fontsize=6.5, frameon=False)
    if title:
        import textwrap

        fig.suptitle(textwrap.fill(title, 80), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig
