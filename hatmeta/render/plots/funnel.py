"""Contour-enhanced funnel plot with Egger's regression line.

Effect (log scale for ratios, labelled on the natural scale) against its standard error, SE 0 at
the top. Shaded contours mark where a study would be significant at 10%, 5% and 1% against the
null (Peters et al. 2008, J Clin Epidemiol 61:991); dashed lines are the pseudo 95% limits around
the pooled estimate; Egger's line is yi = slope + intercept * se from the regression of yi/se on
1/se (Egger et al. 1997).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, cast

import numpy as np

from ...numbers import fmt_p
from . import style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ...results import EggerTest, MetaResult, TrimFill

# (alpha, colour, legend): each band is painted from its contour outwards, narrowest alpha last,
# so the band between two contours keeps the colour of the outer one.
MIN_K_LINE = 10  # Cochrane Handbook 13.3.5.4: asymmetry tests only with at least 10 studies
CONTOURS = ((0.10, "#ececec", "0.05 < p < 0.10"), (0.05, "#d2d2d2", "0.01 < p < 0.05"),
            (0.01, "#b4b4b4", "p < 0.01"))


@style.styled
def funnel(res: MetaResult, egger: EggerTest | None = None, title: str | None = None, line: bool | None = None,
           ax: Axes | None = None, filled: TrimFill | None = None) -> Figure:
    """Contour-enhanced funnel plot of ``res``: effects (analysis scale, ratios on a log axis) against
    their standard errors, shaded where a study would be significant at 10%, 5% and 1%.

    Parameters
    ----------
    res : MetaResult
        The fit.
    egger : EggerTest, optional
        Its line is drawn from MIN_K_LINE studies on, or when ``line`` is True (False: never).
    title : str, optional
        Title above the plot.
    line : bool, optional
        Force Egger's line on (True) or off (False).
    ax : matplotlib.axes.Axes, optional
        Draw on this Axes (its figure is returned, its size left as it is).
    filled : TrimFill, optional
        Trim-and-fill result whose filled studies are drawn as open circles, with the adjusted estimate.

    Returns
    -------
    matplotlib.figure.Figure

    References
    ----------
    Peters JL et al. (2008). Contour-enhanced meta-analysis funnel plots help distinguish publication
    bias from other causes of asymmetry. J Clin Epidemiol 61:991-996.
    """
    from scipy.special import ndtri

    plt = style.pyplot()
    studies = list(res.studies)
    y = np.array([s.yi for s in studies])
    se = np.sqrt([s.vi for s in studies])
    se_max = float(se.max()) * 1.1 if len(se) else 1.0
    given = ax is not None
    fig, ax = (cast("Figure", ax.figure), ax) if ax is not None else plt.subplots(figsize=(5.2, 4.8))
    grid = np.linspace(0, se_max, 200)
    z95 = ndtri(0.975)
    # Every study, the whole pseudo-95% region around the pooled estimate (metafor's and RevMan's funnel
    # are centred on it) and the widest contour around the null inside the frame, with 4% to spare.
    lo = min([float(y.min()) if len(y) else 0.0, res.estimate - z95 * se_max, -ndtri(0.995) * se_max])
    hi = max([float(y.max()) if len(y) else 0.0, res.estimate + z95 * se_max, ndtri(0.995) * se_max])
    lo, hi = lo - 0.04 * (hi - lo), hi + 0.04 * (hi - lo)
    if filled is not None and filled.k0:
        fy = np.asarray(filled.filled_yi)
        lo, hi = min(lo, float(fy.min()) - 0.04 * (hi - lo)), max(hi, float(fy.max()) + 0.04 * (hi - lo))
    # Significance contours around the null: |y| > z * se (shaded from widest to narrowest).
    ax.fill_betweenx(grid, lo, hi, color="white", lw=0)
    for alpha, colour, legend in CONTOURS:
        z = ndtri(1 - alpha / 2)
        ax.fill_betweenx(grid, np.minimum(z * grid, hi), hi, color=colour, lw=0, label=legend)
        ax.fill_betweenx(grid, lo, np.maximum(-z * grid, lo), color=colour, lw=0)
    ax.plot(res.estimate - z95 * grid, grid, ls="--", color=style.INK, lw=0.7, label="pseudo 95% limits")
    ax.plot(res.estimate + z95 * grid, grid, ls="--", color=style.INK, lw=0.7)
    ax.axvline(res.estimate, color=style.INK, lw=0.8, gid="pooled",
               label=f"pooled estimate ({res.measure} {res.natural(res.estimate):.2f})")
    if line is None:
        line = res.k >= MIN_K_LINE
    if egger is not None and line:
        ax.plot(egger.slope + egger.intercept * grid, grid, color=style.BAYES, lw=1.0,
                label=f"Egger: intercept {egger.intercept:.2f} ({fmt_p(egger.p)})", gid="egger")
    ax.plot(y, se, "o", color=style.STUDY, ms=4, gid="studies")
    if filled is not None and not filled.k0:  # asked for and nothing to fill: say so where it would be drawn
        ax.plot([], [], "o", mfc="white", mec=style.STUDY, ms=4,
                label=f"trim-and-fill ({filled.estimator}): no studies filled")
    if filled is not None and filled.k0:
        # Trim-and-fill: the imputed studies, open, and the adjusted estimate (Duval & Tweedie 2000).
        fy, fse = np.asarray(filled.filled_yi), np.sqrt(filled.filled_vi)
        ax.plot(fy, fse, "o", mfc="white", mec=style.STUDY, ms=4, gid="filled",
                label=f"filled by trim-and-fill ({filled.estimator}): {filled.k0}")
        ax.axvline(filled.estimate, color=style.STUDY, lw=0.8, ls=":", gid="trim-fill-estimate",
                   label=f"trim-and-fill estimate ({res.measure} {res.natural(filled.estimate):.2f})")
        se_max = max(se_max, float(fse.max()) * 1.1)
    ax.set_ylim(se_max, -0.03 * se_max)  # a study with SE near 0 keeps its whole marker
    ax.set_xlim(lo, hi)
    ax.set_ylabel("Standard error")
    if res.is_ratio:
        grid_ticks = ((0.5, 0.7, 1, 1.5, 2, 3) if max(-lo, hi) < math.log(4) else
                      (0.01, 0.1, 0.2, 0.5, 1, 2, 5, 10, 100))
        ticks = [t for t in grid_ticks if lo <= math.log(t) <= hi]
        ax.set_xticks([math.log(t) for t in ticks])
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.set_xlabel(f"{res.measure} (log scale)")
    else:
        ax.set_xlabel(res.measure)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=7, frameon=False)
    if title:  # wrapped: the figure is narrower than a long analysis title
        import textwrap

        ax.set_title(textwrap.fill(title, style.title_width(ax, given)), fontsize=8, family=style.families(title),
                     parse_math=False)
    if not given:
        fig.tight_layout()
    return fig
