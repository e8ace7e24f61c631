"""The TSA plot in the conventional layout (Thorlund et al., TSA manual; Wetterslev et al. 2008).

Cumulative z-curve (analysis scale: estimate / SE after each trial) against accrued information
(participants); the conventional +/-1.96 lines; the alpha-spending monitoring boundaries for benefit
and harm at the looks, joined up to the (inflated) required information size; futility boundaries (dash-dot) if asked
for; that size marked by a
vertical line. Boundaries beyond |z| = 8 are not drawn (nothing meaningful is spent there yet).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from . import style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ...methods.tsa import TsaResult

ZMAX = 8.0
BOUNDARY = "#b3241e"
CONVENTIONAL = "#7a7a7a"
FUTILITY = "#3f7f3f"


def _boundary_points(res: TsaResult, attr: str) -> list[tuple[Any, Any]]:
    pts = [(t.information, getattr(t, attr)) for t in res.trials if t.look and getattr(t, attr) is not None]
    target = res.required_information_size_inflated or res.required_information_size
    if res.final_boundary is not None and (not pts or pts[-1][0] < target):
        sign = 1.0
        if attr == "boundary_benefit":
            sign = -1.0 if res.benefit == "lower" else 1.0
        else:
            sign = 1.0 if res.benefit == "lower" else -1.0
        pts.append((target, sign * res.final_boundary))
    return [(x, y) for x, y in pts if abs(y) <= ZMAX]


@style.styled
def tsa_plot(res: TsaResult, title: str | None = None, ax: Axes | None = None) -> Figure:
    """Trial sequential analysis plot: the cumulative z-curve against the information (participants),
    the monitoring (alpha-spending) and futility boundaries and the required information size.

    Parameters
    ----------
    res : TsaResult
        From ``hatmeta.methods.tsa``.
    title : str, optional
        Title above the plot.
    ax : matplotlib.axes.Axes, optional
        Draw on this Axes.

    Returns
    -------
    matplotlib.figure.Figure

    References
    ----------
    Wetterslev J, Thorlund K, Brok J, Gluud C (2008). Trial sequential analysis may establish when firm
    evidence is reached in cumulative meta-analysis. J Clin Epidemiol 61:64-75.
    """
    plt = style.pyplot()
    given = ax is not None
    fig: Figure
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
    else:
        fig = cast("Figure", ax.figure)  # (not a SubFigure)
    ris = res.required_information_size
    target = res.required_information_size_inflated or ris
    xmax = max(target, res.accrued_information) * 1.1
    # the z axis shows the whole z-curve (boundaries beyond |z| = 8 are not drawn)
    ylim = max(ZMAX, 1.1 * max((abs(t.z) for t in res.trials), default=0.0))
    ax.axhline(0, color=style.INK, lw=0.6)
    for z in (1.959964, -1.959964):
        ax.axhline(z, color=CONVENTIONAL, lw=0.8, ls="--", gid="conventional")
    ax.plot([], [], color=CONVENTIONAL, lw=0.8, ls="--", label="conventional boundary (z = \u00b11.96)")
    xs: tuple[float, ...] | list[float]
    ys: tuple[float, ...] | list[float]
    for attr in ("boundary_benefit", "boundary_harm"):
        pts = _boundary_points(res, attr)
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, color=BOUNDARY, lw=1.2, marker="o", ms=2.5, gid=attr.replace("_", "-"),
                    label="monitoring boundaries (alpha spending)" if attr == "boundary_benefit" else None)
    fut = [(t.information, t.futility) for t in res.trials if t.futility is not None and abs(t.futility) <= ZMAX]
    if fut and res.final_boundary is not None and fut[-1][0] < target:
        # the design makes the futility and alpha boundaries meet at the (inflated) RIS
        fut.append((target, (1 if res.benefit == "higher" else -1) * res.final_boundary))
    if fut:
        xs, ys = zip(*fut)
        ax.plot(xs, ys, color=FUTILITY, lw=1.0, ls="-.", marker="^", ms=2.5, gid="futility",
                label="futility boundaries (beta spending)")
        if res.sides == 2:
            ax.plot(xs, [-y for y in ys], color=FUTILITY, lw=1.0, ls="-.", marker="^", ms=2.5, gid="futility-mirror")
    ax.axvline(ris, color=style.INK, lw=0.8, ls=":", gid="ris")
    ax.text(ris, ylim * 0.97, f"RIS {ris:,} ", va="top", ha="right", rotation=90, fontsize=6.5)
    if res.required_information_size_inflated is not None and res.required_information_size_inflated != ris:
        ax.axvline(target, color=style.INK, lw=0.8, gid="ris-inflated")
        ax.text(target, -ylim * 0.97, f" sequential RIS {target:,}", va="bottom", ha="left", rotation=90,
                fontsize=6.5)
    if res.trials:
        xs = [0] + [t.information for t in res.trials]
        ys = [0.0] + [t.z for t in res.trials]
        ax.plot(xs, ys, color=style.STUDY, lw=1.4, marker="s", ms=3.5, gid="z-curve", label="cumulative z-curve")
    else:
        ax.text(xmax / 2, 0.5, "no information accrued", ha="center", va="bottom", color=CONVENTIONAL)
    # the arms as the spec names them (RevMan's "Favours [experimental]"), "experimental"/"control" by default
    exp, ctl = res.arms
    up, down = (exp, ctl) if res.benefit == "higher" else (ctl, exp)
    ax.text(0.01, 0.99, f"favours {up}", transform=ax.transAxes, va="top", ha="left", fontsize=7, style="italic")
    ax.text(0.01, 0.01, f"favours {down}", transform=ax.transAxes, va="bottom", ha="left", fontsize=7,
            style="italic")
    ax.set_xlim(0, xmax)
    ax.set_ylim(-ylim, ylim)
    ax.set_xlabel("Accrued information (participants)")
    ax.set_ylabel(f"Cumulative z ({res.measure}, {res.method} random effects)")
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    legend = ax.legend(loc="upper center", fontsize=6.5, frameon=False, bbox_to_anchor=(0.5, -0.12),
                       ncol=1 if given else 3,  # a notebook's panel is narrower than the plot's own figure
                       title=f"conclusion: {res.conclusion}", title_fontsize=7)
    legend.set_gid("legend")
    if title:
        import textwrap

        ax.set_title(textwrap.fill(title, style.title_width(ax, given)) if given else title, fontsize=8,
                     wrap=not given)
    if not given:  # a given Axes keeps its place in the caller's figure
        fig.tight_layout()
    return fig
