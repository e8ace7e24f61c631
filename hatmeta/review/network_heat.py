"""The net heat plot's section of a network's report page (netmeta's netheat; hatmeta.methods.netheat).

Where the network has inconsistency to locate and netheat would draw, the page shows the plot and
its text; otherwise it says why there is none (no loop, too few designs, or too few designs that
can be detached), with each design's share of the inconsistency, so that nothing is left unsaid."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any


def heat_section(res: Any, out: Path, name: str, figure: Callable[..., Any], inline: Callable[..., str],
                 files: list) -> str:
    """HTML of the net heat section for NMAResult ``res``: the figure saved through the report's
    ``figure(fig, out, stem, files)`` and shown with ``inline(svg_path)``, or the reason there is none."""
    from ..methods.netheat import netheat
    from ..render.plots.netheat import netheat_plot

    h = netheat(res)
    e = html.escape
    head = ("<h3>Net heat plot</h3>\n<p>Where the inconsistency between designs comes from (Krahn, Binder &amp; "
            "König 2013; netmeta's netheat), under the model the page reports"
            + (" (tau² from the full design-by-treatment interaction model, as netheat's random effects)"
               if h.model == "random" else "") + ".</p>\n")
    if not h.available:
        return (head + f'<p class="note">No net heat plot: {e(str(h.reason))}.</p>\n'
                + f"<pre>{e(h.summary())}</pre>\n")
    figure(netheat_plot(h), out, f"{name}-heat", files)
    return (head + inline(out / "figures" / f"{name}-heat.svg") + "\n"
            + "<p>Cell colour: the change in the row's inconsistency when the column's design is detached (red: "
              "the column's design adds inconsistency to the row's estimate; blue: it supports it; the diagonal "
              "is each design's own inconsistency). Inner square: how much the column's direct estimate "
              "contributes to the row's network estimate.</p>\n"
            + f"<pre>{e(h.summary())}</pre>\n")


__all__ = ["heat_section"]
