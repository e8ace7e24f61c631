"""Forest plot of a multilevel or multivariate model (``hatmeta.fit.multilevel.rma_mv``): the effects grouped
by cluster, then the pooled estimate and its prediction interval.

The clusters are the levels of the outer factor of the first random term (district for
``~ 1 | district/school``, trial for ``~ outcome | trial``), in the order they first appear in the table;
each is a labelled block of its effect rows (labelled by the next grouping level or the inner factor) in
table order, as metafor's ``forest()`` of an ``rma.mv`` fit draws the rows in data order. Each row shows
its weight, metafor's ``weights()`` for ``rma.mv`` (100 diag(M^-1) / sum, M the marginal covariance), and
its estimate with a Wald CI from its own ``vi`` (normal quantile, as metafor's ``forest()``); the square's
area is proportional to the weight relative to the largest (many effects share the weight, so squares on
RevMan's 0-100% scale would all be dots). Under the blocks: the pooled estimate (a model without
moderators) or, with categorical moderators, the mean of each combination of their values
(``predict.rma.mv`` at that design row), each with its prediction interval where the model defines one
(``hatmeta.fit.multilevel.predict_mv``; for HCS, DIAG and UN the tau^2 of the inner level those rows
share). A model with a numeric moderator (a covariate) has no single pooled estimate: a line says so and the
footer gives the omnibus test.

The layout is the univariate forest's (render/plots/forest.py): text measured by its ``_Measure``, the
axis limits and ticks of its ``_limits``, its row height, gaps and margins. Given ``ax=``, the plot is drawn
inside that Axes' box (its figure keeps its size; the Axes becomes the CI panel), at the largest font
that fits the box down to MIN_FS, else an InputError names the size needed; on the only Axes of a figure
the figure is sized to the plot, as the univariate forest does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ...numbers import fmt_p, interval
from ...vocabulary import MEASURE_TITLES
from . import style
from .forest import (
    FONT_STEPS,
    GAP_IN,
    MARGIN_IN,
    MAX_W_IN,
    PLOT_IN,
    ROW_PT,
    _limits,
    _Measure,
    _wrap,
    ci_text,
    draw_diamond,
    draw_whisker,
    panel_axes,
    tick_text,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ...fit.multilevel import MvPrediction, MvResult

MIN_FS = 5.0  # the smallest base font used to fit the plot into a given Axes' box, points
MAX_GROUPS = 8  # categorical moderators: at most this many design rows get a summary diamond each

__all__ = ["mv_forest"]


class _Scale:
    """What ``_limits`` and the cells need of a result: the axis is on the analysis scale, labelled on the
    natural scale for log measures."""

    def __init__(self, res: MvResult) -> None:
        self.is_ratio = res.scale == "log"

    def natural(self, x: float) -> float:
        return math.exp(x) if self.is_ratio else x


@style.styled
def mv_forest(res: MvResult, title: str | None = None, ax: Axes | None = None) -> Figure:
    """Draw a multilevel / multivariate fit as a forest plot with its effects grouped by cluster.

    Parameters
    ----------
    res : MvResult
        A fit of ``hatmeta.fit.multilevel.rma_mv`` (analysis scale; log measures are labelled on the
        natural scale).
    title : str, optional
        Title above the plot.
    ax : matplotlib Axes, optional
        Draw inside this Axes' box (it becomes the CI panel; the figure keeps its size). On the only Axes
        of a figure, the figure is sized to the plot instead.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ...errors import InputError

    plt = style.pyplot()
    fig: Any = plt.figure(figsize=(8, 4)) if ax is None else ax.figure
    fig.patch.set_facecolor("white")
    measure = _Measure(fig)
    shared = ax is not None and any(a is not ax and a.get_visible() for a in fig.axes)
    if shared:
        assert ax is not None
        fig_w, fig_h = (float(v) for v in fig.get_size_inches())
        x0, y0, w, h = ax.get_position().bounds
        box = (x0 * fig_w, y0 * fig_h, w * fig_w, h * fig_h)
        fs = 8.0
        while True:
            plan = _plan(res, title, measure, fs)
            if plan["w"] <= box[2] and plan["h"] <= box[3]:
                break
            if fs - 0.5 < MIN_FS:
                raise InputError(f"forest of {res.k} effects needs a box of at least {plan['w']:.1f} x "
                                 f"{plan['h']:.1f} in (at a {MIN_FS:g} pt font); the Axes given is {box[2]:.1f} x "
                                 f"{box[3]:.1f} in: make the figure larger, or call forest(res) for a figure "
                                 "sized to the plot", column="ax")
            fs -= 0.5
        # the plot's top left corner, inches from the figure's bottom left: centred across the box, at its top
        origin = (box[0] + (box[2] - plan["w"]) / 2, box[1] + box[3])
    else:
        for fs in FONT_STEPS:
            plan = _plan(res, title, measure, fs)
            if plan["w"] <= MAX_W_IN:
                break
        fig.set_size_inches(plan["w"], plan["h"])
        origin = (0.0, plan["h"])
    _draw(fig, res, plan, ax, origin)
    return cast("Figure", fig)


def _summaries(res: MvResult, sc: _Scale) -> tuple[list[dict[str, Any]], str | None]:
    """The rows under the blocks: [{label, pred (MvPrediction), pi_label}], and a note when there are none."""
    from ...fit.multilevel import predict_mv

    level = f"{100 * res.level:g}% CI"
    p = len(res.coefficients)

    def pi_row(pred: MvPrediction, label: str = "Prediction interval") -> dict[str, Any] | None:
        if pred.pi_low is None:
            return None
        return {"label": label, "pred": pred}

    def pooled(x0: np.ndarray | None, label: str, rows: Iterable[int]) -> list[dict[str, Any]]:
        lev = None
        if res.struct in ("HCS", "DIAG", "UN"):  # the tau^2 of the inner level the rows share, if one
            inner = res.internals["table"].column(res.inner)
            shared = {inner[r] for r in rows}
            lev = shared.pop() if len(shared) == 1 else None
        pred = predict_mv(res, x0, lev)
        out = [{"label": label, "pred": pred, "kind": "pooled"}]
        pir = pi_row(pred)
        if pir is not None:
            out.append({**pir, "kind": "pi"})
        return out

    if p == 1:
        rows = pooled(None, f"Pooled ({res.method}, {level})", range(res.k))
        if res.struct in ("HCS", "DIAG", "UN"):  # one prediction interval per inner level (tau2.levels)
            for lev in res.inner_levels:
                pred = predict_mv(res, None, str(lev))
                rows.append({"label": f"Prediction interval ({res.inner} = {lev})", "pred": pred, "kind": "pi"})
        return rows, None
    X = np.asarray(res.internals["X"])
    keys: dict[tuple[float, ...], list[int]] = {}
    for r, row in enumerate(np.round(X, 12)):
        keys.setdefault(tuple(row), []).append(r)
    mods = res.internals.get("moderators") or ()
    table = res.internals["table"]
    cols = {m: table.column(m) for m in mods if ":" not in m}

    # design_matrix's rule: a column of numbers is a covariate, anything else a factor
    def numeric(values: Sequence[str]) -> bool:
        try:
            [float(v) for v in values]
        except ValueError:
            return False
        return True

    if (len(keys) > MAX_GROUPS or len(keys) > res.k / 2 or not mods or len(cols) < len(mods)
            or any(numeric(v) for v in cols.values())):
        return [], (f"No pooled estimate: the model has moderators ({', '.join(mods) or 'a design matrix'}); "
                    "see the test of moderators")
    out: list[dict[str, Any]] = []
    for key, members in keys.items():
        label = "; ".join(f"{m} = {cols[m][members[0]]}" for m in mods) + f" ({level})"
        out += pooled(np.array(key), label, members)
    return out, None


def _plan(res: MvResult, title: str | None, measure: _Measure, fs: float) -> dict[str, Any]:
    """Every text and its place, in inches from the plot's top left corner, at base font ``fs``."""
    from ...fit.multilevel import cluster_rows, row_weights

    sc = _Scale(res)
    small = fs - 0.5
    row_in = ROW_PT * fs / 8 / 72
    gap = GAP_IN * fs / 8
    indent = 0.12 * fs / 8
    groups = cluster_rows(res)
    w = row_weights(res)
    y = np.asarray(res.internals["y"], float)
    se = np.sqrt(np.asarray(res.internals["vi"], float))
    from ... import dist

    z = float(dist.norm_isf((1 - res.level) / 2))
    headed = any(len(rows) > 1 for _, rows in groups.clusters)  # one row per cluster: no block headers
    rows: list[dict[str, Any]] = []
    for value, members in groups.clusters:
        if headed:
            rows.append({"kind": "cluster", "cells": {0: (f"{groups.outer} {value}", True)}, "value": value})
        for r in members:
            label = groups.labels[r] if headed else f"{groups.outer} {value}"
            rows.append({"kind": "effect", "row": r, "indent": indent if headed else 0.0,
                         "cells": {0: (str(label), False), 1: (f"{w[r]:.1f}%", False),
                                   2: (ci_text(sc.natural, y[r], y[r] - z * se[r], y[r] + z * se[r]), False)},
                         "ci": (y[r] - z * se[r], y[r] + z * se[r]), "y": y[r], "w": w[r]})
    rows.append({"kind": "blank"})
    summaries, none_note = _summaries(res, sc)
    for s in summaries:
        pred = s["pred"]
        if s["kind"] == "pooled":
            cells = {0: (s["label"], True), 1: ("100.0%" if len(summaries) <= 2 else "", True),
                     2: (ci_text(sc.natural, pred.estimate, pred.ci_low, pred.ci_high), True)}
        else:
            cells = {0: (s["label"], False), 2: (interval(sc.natural(pred.pi_low), sc.natural(pred.pi_high)), False)}
        rows.append({"kind": s["kind"], "cells": cells, "pred": pred})
    if none_note:
        rows.append({"kind": "note", "span": none_note})

    name = MEASURE_TITLES.get(res.measure, res.measure)
    if res.scale not in ("log", "identity"):
        name += f" ({res.scale} scale)"
    model = f"{res.method}, {100 * res.level:g}% CI"
    head = {0: (f"{groups.outer} / {groups.label_name}" if headed else groups.outer, True), 1: ("Weight", True),
            2: (model, True)}
    width = [0.0, 0.0, 0.0]
    for row in rows + [{"cells": head, "indent": 0.0}]:
        for c, (text, bold) in row.get("cells", {}).items():
            width[c] = max(width[c], measure(text, fs, bold) + (row.get("indent", 0.0) if c == 0 else 0.0))
    width[2] = max(width[2], measure(name, fs, True))
    values = [r["y"] for r in rows if r["kind"] == "effect"]
    for r in rows:
        if "pred" in r:
            pr = r["pred"]
            values += [pr.ci_low, pr.ci_high] + ([pr.pi_low, pr.pi_high] if pr.pi_low is not None else [])
    (lo_lim, hi_lim), ticks = _limits(sc, values)  # type: ignore[no-untyped-call]  # forest.py is not typed yet
    tick_w = [measure(tick_text(t), fs - 1) for t in ticks]
    left_pad = max(0.12, tick_w[0] / 2 + 0.04)
    right_pad = max(0.12, tick_w[-1] / 2 + 0.04)
    plot_w = PLOT_IN * fs / 8
    x = [MARGIN_IN]
    for c in range(3):
        x.append(x[-1] + width[c] + gap)
    plot_x0 = x[3] + left_pad
    content_w = plot_x0 + plot_w + right_pad + MARGIN_IN

    foot = _footer(res, none_note is None)
    text_w = content_w - 2 * MARGIN_IN
    foot_lines = [ln for line in foot for ln in _wrap(line, text_w, measure, small)]
    note_rows = [r for r in rows if r["kind"] == "note"]
    for r in note_rows:  # a note spans the table and the panel
        r["span_lines"] = _wrap(r["span"], text_w, measure, small)
    title_lines = _wrap(str(title), text_w, measure, fs + 1, True) if title else []
    title_h = (len(title_lines) * 1.25 * (fs + 1) / 72 + 0.12) if title else 0.08
    n_head = 2
    below = 1.4  # the tick labels, in rows
    step = 1.05 * row_in * small / fs
    h = title_h + (n_head + len(rows) + below) * row_in + len(foot_lines) * step + 0.15
    return dict(fs=fs, small=small, row_in=row_in, rows=rows, head=head, name=name, model=model, width=width, x=x,
                plot_x0=plot_x0, plot_w=plot_w, lim=(lo_lim, hi_lim), ticks=ticks, is_ratio=sc.is_ratio,
                foot_lines=foot_lines, title_lines=title_lines, title_h=title_h, n_head=n_head, below=below,
                step=step, w=content_w, h=h, wmax=float(w.max()))


def _footer(res: MvResult, pooled: bool) -> list[str]:
    """The model, its variance components, the heterogeneity test and the test of the effect (or moderators)."""
    parts = [f"Model: rma.mv, {res.method}; random {', '.join(res.random)}"
             + (f" (struct {res.struct})" if res.struct else "") + f"; V {res.v_description}"]
    vc = []
    if res.sigma2:
        vc.append("σ² = " + ", ".join(f"{s.estimate:.4f} ({s.name})" for s in res.sigma2))
    if res.struct is not None:
        if res.struct in ("CS", "AR"):
            vc.append(f"τ² = {res.tau2[0].estimate:.4f}")
        else:
            vc.append("τ² = " + ", ".join(f"{t.estimate:.4f} ({t.name})" for t in res.tau2))
        if res.rho:
            vc.append("ρ = " + ", ".join(f"{r:.2f}" for r in res.rho))
    if vc:
        parts.append("Variance components: " + "; ".join(vc))
    q = "QE" if len(res.coefficients) > 1 else "Q"
    parts.append(f"Heterogeneity: {q} = {res.qe:.2f}, df = {res.qe_df} ({fmt_p(res.qe_p)})")
    if len(res.coefficients) == 1:
        c = res.coefficients[0]
        stat = f"Z = {abs(c.stat):.2f}" if res.ddf is None else f"t = {abs(c.stat):.2f}, df = {res.ddf}"
        parts.append(f"Test for overall effect: {stat} ({fmt_p(c.p)})")
    else:
        test = (f"QM = {res.qm:.2f}, df = {res.qm_df}" if res.ddf is None
                else f"F = {res.qm:.2f}, df = ({res.qm_df}, {res.ddf})")
        names = ", ".join(c.name for c in res.coefficients[1:])
        parts.append(f"Test of moderators ({names}): {test} ({fmt_p(res.qm_p)})")
    parts.append("Weights: 100·diag(M⁻¹)/sum, M the model's marginal covariance (metafor's weights() for rma.mv); "
                 "effect CIs from each effect's own variance")
    if res.robust is not None:
        parts.append("Cluster-robust inference is in the text output (the plot shows the model-based intervals)")
    parts += [f"Note: {n}" for n in res.notes]
    return parts


def _draw(fig: Figure, res: MvResult, p: dict[str, Any], ax: Axes | None, origin: tuple[float, float]) -> None:
    fs, small, row_in, x = p["fs"], p["small"], p["row_in"], p["x"]
    fig_w, fig_h = (float(v) for v in fig.get_size_inches())
    ox, oy = origin
    top = oy - p["title_h"]
    rows, n_head = p["rows"], p["n_head"]

    def y_of(row: float) -> float:  # figure fraction of the centre of row ``row`` (0 = the first header row)
        return float((top - (row + 0.5) * row_in) / fig_h)

    def put(x_in: float, y_frac: float, text: str, ha: str = "left", fontsize: float | None = None,
            bold: bool = False, **kw: Any) -> Any:
        return fig.text((ox + x_in) / fig_w, y_frac, text, ha=ha, va="center", fontsize=fontsize or fs,
                        weight="bold" if bold else "normal", family=style.families(text), parse_math=False, **kw)

    if p["title_lines"]:
        fig.text((ox + MARGIN_IN) / fig_w, (oy - 0.08) / fig_h, "\n".join(p["title_lines"]), fontsize=fs + 1,
                 weight="bold", va="top", family=style.families(" ".join(p["title_lines"])), parse_math=False,
                 linespacing=1.1, gid="title")

    def cell(c: int, yrow: float, text: str, bold: bool, indent: float = 0.0, **kw: Any) -> None:
        if c == 1:  # weights right-aligned
            put(x[1] + p["width"][1], y_of(yrow), text, ha="right", bold=bold, **kw)
        else:
            put(x[c] + indent, y_of(yrow), text, bold=bold, **kw)

    for c, (text, bold) in p["head"].items():
        cell(c, n_head - 1, text, bold, gid=f"head-{c}")
    cell(2, n_head - 2, p["name"], True)
    mid = p["plot_x0"] + p["plot_w"] / 2
    put(mid, y_of(n_head - 2), p["name"], ha="center", bold=True)
    put(mid, y_of(n_head - 1), p["model"], ha="center", bold=True)

    body_top, body_bottom = n_head, n_head + len(rows)
    panel = ((ox + p["plot_x0"]) / fig_w, (top - body_bottom * row_in) / fig_h, p["plot_w"] / fig_w,
             (body_bottom - body_top) * row_in / fig_h)
    ax = panel_axes(fig, ax, panel, p["lim"], (body_top, body_bottom), p["ticks"], p["is_ratio"], fs)
    lo_lim, hi_lim = p["lim"]
    side_max = row_in * 72 * 0.7

    n_pooled = 0
    for r, row in enumerate(rows):
        yrow = n_head + r
        kind = row["kind"]
        for c, (text, bold) in row.get("cells", {}).items():
            gid = f"cluster-{row['value']}" if kind == "cluster" else None
            cell(c, yrow, text, bold, indent=row.get("indent", 0.0) if c == 0 else 0.0, gid=gid)
        if kind == "note":
            put(x[0], y_of(yrow), "\n".join(row["span_lines"]), fontsize=small, gid="no-pooled")
        elif kind == "effect":
            lo, hi = row["ci"]
            size = min(side_max, max(2.5, side_max * math.sqrt(max(row["w"], 0.0) / p["wmax"])))
            draw_whisker(ax, p["lim"], yrow, lo, hi, style.STUDY)
            if lo_lim <= row["y"] <= hi_lim:
                ax.plot([row["y"]], [yrow], marker="s", ms=size, color=style.STUDY, lw=0, gid=f"effect-{row['row']}")
        elif kind == "pooled":
            pr = row["pred"]
            draw_diamond(ax, yrow, pr.ci_low, pr.estimate, pr.ci_high, style.POOLED, f"pooled-{n_pooled}")
            n_pooled += 1
        elif kind == "pi":
            pr = row["pred"]
            draw_whisker(ax, p["lim"], yrow, pr.pi_low, pr.pi_high, style.INK, lw=1.6, gid=f"pi-{n_pooled - 1}")

    y0 = top - (body_bottom + p["below"]) * row_in - 0.05
    for j, line in enumerate(p["foot_lines"]):
        put(MARGIN_IN, (y0 - (j + 0.5) * p["step"]) / fig_h, line, fontsize=small, gid=f"footer-{j}")
    fig._hatmeta_axes = ax  # type: ignore[attr-defined]  # the CI panel, for callers that inspect the drawing
