"""What a figure draws, rounded by the output policy, and recorded beside it.

``drawn(fig)`` rounds, in place, every coordinate of the artists a plot function added (lines
and their markers, patches, filled areas, texts and arrows) to the 10 significant digits of
``hatmeta.precision``, and returns those numbers and strings as a JSON-ready record. Saving the
figure afterwards draws exactly these numbers, so its SVG path data and PNG pixels do not depend
on the processor's SIMD kernels (a curve computed inside a plot, such as a prior density, uses
NumPy's exp). The report writes the record as ``figures/<name>.data.json`` so that
``hatmeta reproduce`` can tell a figure drawn from other numbers (a real difference) from the
same numbers rendered by another matplotlib, FreeType or Agg (an environment difference).

Only the drawing's content is recorded, not matplotlib's choices (automatic ticks, limits,
layout in points), and the vertices of filled shapes are recorded as a sorted set, because
matplotlib versions build the same rectangle or band with its corners in different orders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..precision import q, quantise

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.text import Text
    from numpy.typing import ArrayLike


def _xy(values: ArrayLike) -> list[Any]:
    out: list[Any] = quantise(np.asarray(values, dtype=float)).tolist()
    return out


def _corners(vertices: ArrayLike) -> list[tuple[float, ...]]:
    v = quantise(np.asarray(vertices, dtype=float).reshape(-1, 2))
    v = v[np.isfinite(v).all(axis=1)]
    return sorted({tuple(p) for p in v.tolist()})


def _line(line: Line2D) -> dict[str, Any]:
    x = quantise(np.asarray(line.get_xdata(orig=True), dtype=float))
    y = quantise(np.asarray(line.get_ydata(orig=True), dtype=float))
    line.set_data(x, y)
    line.set_markersize(q(line.get_markersize()))
    rec = {"kind": "line", "x": x.tolist(), "y": y.tolist()}
    if line.get_marker() not in (None, "None", "none", ""):
        rec.update(marker=str(line.get_marker()), size=line.get_markersize())
    return rec


def _patch(patch: Patch) -> dict[str, Any]:
    from matplotlib.patches import Polygon, Rectangle

    if isinstance(patch, Rectangle):
        x, y = quantise(np.asarray(patch.get_xy(), dtype=float)).tolist()
        patch.set_xy((x, y))
        patch.set_width(q(patch.get_width()))
        patch.set_height(q(patch.get_height()))
    elif isinstance(patch, Polygon):
        patch.set_xy(quantise(np.asarray(patch.get_xy(), dtype=float)))
    path = patch.get_patch_transform().transform(patch.get_path().vertices)
    return {"kind": "area", "corners": _corners(path)}


def _collection(coll: Any) -> dict[str, Any]:  # (matplotlib types a Path's vertices as ArrayLike)
    rec: dict[str, object] = {"kind": "collection"}
    paths = coll.get_paths()
    if paths:
        for path in paths:
            if path.vertices.flags.writeable:
                path.vertices[...] = quantise(path.vertices)
        rec["corners"] = _corners(np.concatenate([p.vertices for p in paths]) if paths else [])
    offsets = np.asarray(coll.get_offsets(), dtype=float)
    if offsets.size:
        coll.set_offsets(quantise(offsets))
        rec["points"] = quantise(offsets).tolist()
    return rec


def _text(text: Text) -> dict[str, Any]:
    from matplotlib.text import Annotation

    x, y = text.get_position()
    text.set_position(tuple(_xy([x, y])))
    rec = {"kind": "text", "text": text.get_text(), "at": _xy([x, y])}
    if isinstance(text, Annotation):
        text.xy = tuple(_xy(text.xy))
        rec["xy"] = list(text.xy)
    return rec


def drawn(fig: Figure) -> dict[str, Any]:
    """Round what ``fig`` draws (in place) and return it: per panel its lines, areas, collections
    and texts (with title, axis labels and legend entries), then the figure's own texts."""
    panels = []
    for ax in fig.axes:
        items = [_line(a) for a in ax.lines] + [_patch(a) for a in ax.patches]
        items += [_collection(a) for a in ax.collections] + [_text(a) for a in ax.texts]
        labels: dict[str, Any] = {"title": ax.get_title(), "x": ax.get_xlabel(), "y": ax.get_ylabel()}
        legend = ax.get_legend()
        if legend is not None:
            labels["legend"] = [t.get_text() for t in legend.get_texts()]
        panels.append({"labels": labels, "drawn": items})
    texts = [_text(t) for t in fig.texts]
    if getattr(fig, "_suptitle", None) is not None:
        texts.append({"kind": "text", "text": fig._suptitle.get_text()})  # type: ignore[attr-defined]
    fig._hatmeta_drawn = {"panels": panels, "texts": texts}  # type: ignore[attr-defined]  # read by the tests
    return fig._hatmeta_drawn  # type: ignore[attr-defined, no-any-return]


__all__ = ["drawn"]
