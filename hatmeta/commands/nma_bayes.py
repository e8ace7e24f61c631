"""`hatmeta nma --bayes`: the options of the Bayesian network meta-analysis (hatmeta.bayes.network),
checked before anything is sampled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import InputError


def bayes_options(model: str | None, tau_prior: str | None, seed: int, draws: int, tune: int, chains: int,
                  ume_multiarm: str | None, method: str | None, figures: Sequence[str | None], benefit: str | None,
                  level: float, common: bool) -> dict[str, Any]:
    """Keyword arguments of ``bayes_nma`` from the command line's; InputError naming the option
    for one that does not go with --bayes (the frequentist tau^2 method, the figures, which draw
    the frequentist result)."""
    from ..bayes.priors import parse_tau_prior

    if method:
        raise InputError("--method is the frequentist tau^2 estimator; with --bayes give a --prior for tau",
                         option="--method")
    for name, path in zip(("--graph", "--forest", "--funnel", "--heat"), figures):
        if path:
            raise InputError(f"{name} draws the frequentist analysis: run it without --bayes", option=name)
    if tau_prior is not None:
        parse_tau_prior(tau_prior)  # a mistake is reported before sampling
    if ume_multiarm and (model or "consistency").lower() == "consistency":
        raise InputError("--ume-multiarm goes with --model ume or both", option="--ume-multiarm")
    out: dict[str, Any] = {"model": (model or "consistency").lower(), "common": common, "tau_prior": tau_prior,
                           "seed": seed, "draws": draws, "tune": tune, "chains": chains, "level": level,
                           "ume_multiarm": (ume_multiarm or "correlated").lower()}
    if benefit:  # otherwise bayes_nma's default (lower), or a named network's spec
        out["benefit"] = benefit.lower()
    return out


__all__ = ["bayes_options"]
