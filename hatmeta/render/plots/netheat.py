"""The net heat plot (Krahn, Binder & König 2013; netmeta 3.3's ``netheat``) of a ``NetHeat``.

Drawn as netheat draws it: one cell per (row, column) of design contrasts, in netheat's clustering
order, rows top to bottom and columns left to right; the cell's colour is the change in the row's
inconsistency when the column's design is detached (red: the column's design adds inconsistency to
the row, detaching it lowers Q; blue: it supports the row; white: no change; the diagonal is the
design's own inconsistency contribution), values clipped at +-8 and the colour scale netheat's (40
colours: R's heat.colors for the red-to-yellow side, white, then blues, both paled when the largest
change is below 8); the inner square, in a darker shade of the cell's colour (grey on white), has a
side growing with the square root of the column's hat-matrix contribution to the row's network
estimate (netheat's sizes: (sqrt((|h| - min) / (max - min)) + 0.1) / 1.4 of the cell). The colour bar
on the right is in units of Q. matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, cast

import numpy as np

from . import style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ...methods.netheat import NetHeat

NCOL = 40  # netheat's ncolo
CLIP = 8.0  # netheat clips the changes at +-8


def _byte(x: float) -> int:
    return int(255 * x + 0.5)  # R's ScaleColor


def _hex(r: float, g: float, b: float) -> str:
    return f"#{_byte(r):02X}{_byte(g):02X}{_byte(b):02X}"


def _hsv(h: float, s: float, v: float) -> str:
    """R's hsv(h, s, v) as a hex colour."""
    h6 = (h % 1.0) * 6.0
    i = math.floor(h6)
    f = h6 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][int(i) % 6]
    return _hex(*rgb)


def _seq(a: float, b: float, n: int) -> list[float]:
    if n <= 0:
        return []
    if n == 1:
        return [a]
    by = (b - a) / (n - 1)
    return [a + k * by for k in range(n)]


def heat_colours(n: int) -> list[str]:
    """R's ``heat.colors(n)``: red through yellow (rainbow from hue 0 to 1/6), then a quarter of the
    colours from yellow towards white."""
    if n <= 0:
        return []
    j = n // 4
    i = n - j
    out = [_hsv(h, 1.0, 1.0) for h in _seq(0.0, 1.0 / 6, i)]
    out += [_hsv(1.0 / 6, s, 1.0) for s in _seq(1 - 1 / (2 * j), 1 / (2 * j), j)] if j > 0 else []
    return out


def netheat_palette(tn: np.ndarray) -> list[str]:
    """netheat's 40 colours for the clipped matrix ``tn`` (netheat's -heat, within +-8): from the
    strongest decrease of Q on detaching (red) through white to the strongest increase (blue)."""
    top, low = max(float(tn.max()), 0.0), min(float(tn.min()), 0.0)
    sat = min(float(np.abs(tn).max()) / CLIP, 1.0)
    nblue = _r_round(top / (top - low) * NCOL) if top - low != 0 else 0
    bf = (min(top / abs(low), 1.0) if low != 0 else 1.0) * sat
    clev = _seq(1.0, 1.0 - bf, nblue)
    heat = heat_colours(int(_r_round((NCOL - nblue - 1) / max(sat, 0.00001))))
    k = NCOL - nblue - 1
    reds = heat[len(heat) - k:] if k > 0 else []
    return reds + ["#FFFFFF"] + [_hex(c, c, 1.0) for c in clev]


def _r_round(x: float) -> int:
    """R's round() to an integer: halves to even (IEC 60559)."""
    return int(round(x))


def _cell_colours(tn: np.ndarray, pal: list[str]) -> np.ndarray:
    """netheat's (va.image's) binning: 40 equal bins over the range of the shifted values."""
    x = tn + float(np.abs(tn).max())
    lo, hi = float(x.min()), float(x.max())
    grid = np.array(_seq(lo, hi, len(pal) + 1)[:-1]) if lo != hi else np.array([lo])
    idx = (x[..., None] >= grid).sum(axis=-1) - 1
    out: np.ndarray = np.array(pal, dtype=object)[idx]
    return out


def _darker(hexcol: str) -> str:
    r, g, b = (int(hexcol[i:i + 2], 16) / 255 * 0.8 for i in (1, 3, 5))
    return _hex(r, g, b)


@style.styled
def netheat_plot(h: NetHeat, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Net heat plot of a NetHeat (``hatmeta.methods.netheat.netheat``); refused where it has none.

    Parameters
    ----------
    h : NetHeat
        The matrices (``available`` must be True).
    ax : matplotlib Axes, optional
        Where to draw; a new figure if not given.
    title : str, optional
        A title above the plot.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.patches import Rectangle

    from ...errors import InputError
    from ...precision import quantised

    if not h.available:
        raise InputError(f"no net heat plot: {h.reason}", option="--heat")
    h = quantised(h)
    plt = style.pyplot()
    n = len(h.labels)
    tn = np.clip(-np.asarray(h.heat, float), -CLIP, CLIP)
    pal = netheat_palette(tn)
    cols = _cell_colours(tn, pal)
    size = np.abs(np.asarray(h.contribution, float))
    lo, hi = float(size.min()), float(size.max())
    rel = (size - lo) / (hi - lo) if hi > lo else np.ones_like(size)
    half = (np.sqrt(rel) + 0.1) / (1 + 4 * 0.1) / 2  # half the side, in cells
    longest = max(len(lab) for lab in h.labels)
    lab_in = 0.06 * longest + 0.15  # room for the labels, inches (7 pt text)
    cell = max(0.28, min(0.45, 4.0 / n))
    side = cell * n
    fig: Figure
    if ax is None:
        W, Hh = lab_in + side + 1.5, lab_in + side + 0.55
        fig = plt.figure(figsize=(W, Hh))
        ax = fig.add_axes((lab_in / W, 0.55 / Hh, side / W, side / Hh))
        cax_box = ((lab_in + side + 0.12) / W, 0.55 / Hh, 0.14 / W, side / Hh)
    else:
        fig = cast("Figure", ax.figure)  # (not a SubFigure)
        p = ax.get_position()
        cax_box = (p.x1 + 0.01, p.y0, 0.02, p.height)
    for r in range(n):
        for c in range(n):
            y = n - 1 - r
            ax.add_patch(Rectangle((c, y), 1, 1, facecolor=cols[r, c], edgecolor="none"))
            s = half[r, c]
            ax.add_patch(Rectangle((c + 0.5 - s, y + 0.5 - s), 2 * s, 2 * s, facecolor=_darker(cols[r, c]),
                                   edgecolor="none", gid=f"cell {h.labels[r]} | {h.labels[c]}"))
    ax.add_patch(Rectangle((0, 0), n, n, fill=False, edgecolor=style.INK, lw=0.8))
    ax.set_xlim(0, n)
    ax.set_ylim(0, n)
    ax.set_aspect("equal")
    ax.set_yticks(np.arange(n) + 0.5)
    ax.set_yticklabels(list(h.labels)[::-1], fontsize=7)
    ax.set_xticks(np.arange(n) + 0.5)
    ax.set_xticklabels(list(h.labels), rotation=90, fontsize=7)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for sp in ax.spines.values():
        sp.set_visible(False)
    # The colour bar, in Q units (netheat's legend: the heat values, its colours reversed, bottom to top).
    t1 = -np.asarray(h.heat, float)
    vlo, vhi = max(-float(t1.max()), -CLIP), min(-float(t1.min()), CLIP)
    if round(float(t1.min()), 10) != round(float(t1.max()), 10):
        cax = fig.add_axes(cax_box)
        step = (vhi - vlo) / len(pal)
        for i, col in enumerate(reversed(pal)):
            cax.add_patch(Rectangle((0, vlo + i * step), 1, step, facecolor=col, edgecolor=col, lw=0.3))
        cax.set_xlim(0, 1)
        cax.set_ylim(vlo, vhi)
        cax.set_xticks([])
        cax.yaxis.tick_right()
        cax.tick_params(labelsize=7, length=2)
        cax.set_ylabel("change in Q on detaching the column's design\n(red: it adds inconsistency; blue: it "
                       "supports)", fontsize=6.5)
        cax.yaxis.set_label_position("right")
    model = "common effect" if h.model == "common" else f"random effects, tau^2 = {h.tau2:.3g}"
    ax.set_xlabel(f"Net heat plot, {model}. Inner square: the column's direct estimate's\n"
                  "contribution to the row's network estimate; order: clustering (netheat)", fontsize=6.5,
                  color="#555555", labelpad=6)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


__all__ = ["heat_colours", "netheat_palette", "netheat_plot"]
