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
    fig: Figure
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 4.4))
    else:
        fig = cast("Figure", ax.figure)  # (not a SubFigure)
    x, y = a["baujat_x"], a["baujat_y"]
    ax.plot(x, y, "o", color=style.STUDY, ms=4, gid="studies")
    # Names for the studies away from the crowd near the origin, study numbers (forest order) inside it,
    # so that the labels that matter stay legible.
    far = (x > 0.1 * np.max(x)) | (y > 0.1 * np.max(y))
    for j, (xi, yi, name) in enumerate(zip(x, y, _labels(res))):
        ax.annotate(name if far[j] else str(j + 1), (xi, yi), xytext=(3, 3), textcoords="offset points",
                    fontsize=6, color=style.INK)
    common = res.method in COMMON_EFFECT_METHODS
    ax.set_xlabel("Contribution to overall heterogeneity" if common else "Squared Pearson residual")
    ax.set_ylabel("Influence on overall result")
    ax.grid(True, color="#e0e0e0", lw=0.5)
    ax.set_axisbelow(True)
    if title:
        import textwrap

        ax.set_title(textwrap.fill(title, 70), fontsize=8)
    fig.tight_layout()
    return fig


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
    for ax in axes[-2:]:
        ax.set_xlabel("study", fontsize=7)
        if k <= 40:
            ax.set_xticks(idx)
            ax.set_xticklabels([str(i) for i in idx], fontsize=5)
    if title:
        import textwrap

        fig.suptitle(textwrap.fill(title, 80), fontsize=8)
    fig.tight_layout()
    return fig
