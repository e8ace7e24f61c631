"""Forest-style summary of one dataset pooled by several methods (``--compare-methods``).

One row per method: the pooled estimate as a diamond-free point with its CI as a line, labels and
"estimate [CI]" text on the natural scale, a reference line at no effect. An estimate that is
infinite (separated data under a GLMM) is drawn as an arrow at the axis edge with its finite CI end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from . import style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ...results import MetaResult


def _rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [r if isinstance(r, dict) else r.to_dict() for r in rows]


@style.styled
def methods_plot(result: MetaResult, ax: Axes | None = None, title: str | None = None) -> Figure:
    """The pooled estimate and interval of every method that suits the data, one row each (natural
    scale; from ``pool_table(..., compare_methods=True)``).

    Parameters
    ----------
    result : MetaResult
        A fit whose ``extra["compare_methods"]`` holds the rows (``methods.sparse.MethodRow``).
    ax : matplotlib.axes.Axes, optional
        Draw on this Axes (default: a new figure sized to the rows).
    title : str, optional
        Title above the plot.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = style.pyplot()
    rows = _rows(result.extra.get("compare_methods") or ())
    if not rows:
        from ...errors import InputError

        raise InputError("no methods to draw: pool with --compare-methods", column="--methods-plot")
    ratio = result.is_ratio
    nat = math.exp if ratio else (lambda x: x)
    n = len(rows)
    given = ax is not None
    fig: Figure
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.8, 0.9 + 0.3 * n))
    else:
        fig = cast("Figure", ax.figure)  # (not a SubFigure)
    finite = [v for r in rows for v in (r["ci_low"], r["ci_high"], r["estimate"])
              if v is not None and math.isfinite(v)]
    lo = min(finite + [0.0]) if finite else -1.0
    hi = max(finite + [0.0]) if finite else 1.0
    pad = 0.08 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    for i, r in enumerate(rows):
        y = n - 1 - i
        est, cl, ch = (r[k] if r[k] is not None else math.nan for k in ("estimate", "ci_low", "ci_high"))
        if not math.isfinite(est) and math.isnan(est):
            ax.text(0.5, y, "not estimable", transform=ax.get_yaxis_transform(), ha="center", va="center",
                    fontsize=7, color="0.4")
            continue
        a = lo if not math.isfinite(cl) else cl
        b = hi if not math.isfinite(ch) else ch
        ax.plot([a, b], [y, y], color=style.INK, lw=1)
        for end, edge, sign in ((cl, lo, -1), (ch, hi, 1)):
            if not math.isfinite(end):
                ax.annotate("", xy=(edge, y), xytext=(edge - sign * 0.05 * (hi - lo), y),
                            arrowprops=dict(arrowstyle="->", color=style.INK, lw=1))
        if math.isfinite(est):
            is_glmm = str(r["method"]).startswith("GLMM")
            ax.plot([est], [y], marker="D" if is_glmm else "s", ms=5, color=style.STUDY if is_glmm else style.POOLED)
    ax.axvline(0.0, color="0.5", lw=0.8, ls="--")
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_yticks(range(n))
    ax.set_yticklabels([r["label"] for r in reversed(rows)])

    def txt(v: float | None) -> str:
        if v is None or math.isnan(v):
            return "NA"
        if math.isinf(v):
            return ("0" if ratio else "-inf") if v < 0 else "inf"
        return f"{nat(v):.2f}"

    right = ax.secondary_yaxis("right")
    right.set_yticks(range(n))
    right.set_yticklabels([f"{txt(r['estimate'])} [{txt(r['ci_low'])}, {txt(r['ci_high'])}]" for r in reversed(rows)])
    right.tick_params(length=0)
    right.spines["right"].set_visible(False)
    if ratio:
        ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if lo <= math.log(t) <= hi]
        ax.set_xticks([math.log(t) for t in ticks])
        ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_xlabel(f"{result.measure}{' (log scale)' if ratio else ''}; {int(round(100 * result.level))}% CI")
    import textwrap

    title = title or f"{result.measure} by pooling method (k = {result.k})"
    ax.set_title(textwrap.fill(title, style.title_width(ax, given, 10**6)), fontsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if not given:  # a given Axes keeps its place in the caller's figure
        fig.tight_layout()
    return fig
