"""Bayesian random-effects meta-analysis: an exact engine (numerical integration, the default)
and a PyMC engine for what it cannot do (binomial-normal and Poisson likelihoods).

The exact engine follows bayesmeta (Roever 2020); both return a ``BayesResult``.
"""

from .exact import BayesResult, Summary, bayes_exact, prior_sensitivity
from .priors import TauPrior, parse_tau_prior, turner_names

__all__ = ["BayesResult", "Summary", "TauPrior", "bayes_exact", "parse_tau_prior", "prior_sensitivity",
           "turner_names"]
