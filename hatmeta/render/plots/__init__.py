"""Figures from results: forest and funnel plots.

matplotlib is imported only when a figure is drawn. Every function returns the Figure, so
callers (and tests) can inspect what was drawn; ``save`` writes it reproducibly (no dates or
random ids in PNG, SVG or PDF).
"""

from .forest import forest
from .funnel import funnel
from .posterior import posterior
from .style import save

__all__ = ["forest", "funnel", "posterior", "save"]
