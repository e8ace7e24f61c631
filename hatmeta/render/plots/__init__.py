"""Figures from results: every plot the package draws, from one place.

matplotlib is imported only when a figure is drawn. Every function returns the Figure, so
callers (and tests) can inspect what was drawn; ``save`` writes it reproducibly (no dates or
random ids in PNG, SVG or PDF).
"""

from .forest import forest
from .funnel import funnel
from .influence import baujat, influence_plot
from .methods import methods_plot
from .netheat import netheat_plot
from .network import comparison_adjusted_funnel, network_forest, network_graph
from .posterior import posterior
from .sensitivity import sensitivity_forest
from .style import save
from .tsa import tsa_plot

__all__ = ["baujat", "comparison_adjusted_funnel", "forest", "funnel", "influence_plot", "methods_plot",
           "netheat_plot", "network_forest", "network_graph", "posterior", "save", "sensitivity_forest", "tsa_plot"]
