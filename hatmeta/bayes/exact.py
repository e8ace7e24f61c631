"""Exact Bayesian random-effects meta-analysis (the normal-normal hierarchical model), no MCMC.

Model: y_i ~ N(theta_i, v_i), theta_i ~ N(mu, tau^2), mu ~ N(m0, s0^2), tau ~ a chosen prior.
Given tau, mu is normal and integrated analytically; tau's posterior is computed on a fine grid;
every posterior (mu, theta_i, a new trial's effect) is then a mixture of normals over that grid,
whose quantiles are found by root finding on the mixture CDF. This is the approach of bayesmeta
(Roever 2020, J Stat Softw 93(6), section 2), written here with NumPy and SciPy so that it is
deterministic and runs in milliseconds. All values are on the analysis scale (log for ratios).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .priors import TauPrior, parse_tau_prior

N_GRID = 1501  # grid points in log(tau)


@dataclass(frozen=True)
class Summary:
    """Posterior summary of one quantity: 95% equal-tailed (low, high) and shortest interval."""

    mean: float
    median: float
    sd: float
    low: float
    high: float
    shortest_low: float
    shortest_high: float

    def to_dict(self):
        return {k: float(getattr(self, k)) for k in ("mean", "median", "sd", "low", "high", "shortest_low",
                                                      "shortest_high")}


@dataclass(frozen=True)
class BayesResult:
    """Posterior of a Bayesian random-effects meta-analysis (analysis scale)."""

    engine: str
    k: int
    mu: Summary
    tau: Summary
    prediction: Summary
    theta: tuple  # per study: dict(study, mean, median, sd, low, high)
    probabilities: dict
    prior: dict
    level: float = 0.95
    diagnostics: dict | None = None
    warnings: tuple = ()
    tau_grid: tuple = field(default=(), repr=False)  # (tau values, posterior density) for plots
    mu_grid: tuple = field(default=(), repr=False)  # (mu values, posterior density) for plots

    def to_dict(self) -> dict:
        out = {"engine": self.engine, "k": self.k, "level": self.level,
               "posterior": {"mu": self.mu.to_dict(), "tau": self.tau.to_dict(),
                             "prediction": self.prediction.to_dict()},
               "theta": [dict(t) for t in self.theta], "probabilities": dict(self.probabilities),
               "prior": dict(self.prior)}
        if self.diagnostics is not None:
            out["diagnostics"] = dict(self.diagnostics)
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out

    def summary(self) -> str:
        lines = [f"Bayesian random-effects meta-analysis ({self.engine}); k = {self.k}",
                 f"Priors: tau ~ {self.prior['tau_prior']}; mu ~ N({self.prior['mu_prior_mean']:g}, "
                 f"{self.prior['mu_prior_sd']:g}^2)", "",
                 f"{'':12}{'mean':>9}{'median':>9}{'sd':>9}{'2.5%':>9}{'97.5%':>9}   shortest 95%"]
        for name, s in (("mu", self.mu), ("tau", self.tau), ("prediction", self.prediction)):
            lines.append(f"{name:12}{s.mean:9.4f}{s.median:9.4f}{s.sd:9.4f}{s.low:9.4f}{s.high:9.4f}   "
                         f"[{s.shortest_low:.4f}, {s.shortest_high:.4f}]")
        lines.append("")
        for key, p in self.probabilities.items():
            lines.append(f"{key}: {p:.4f}")
        if self.diagnostics:
            d = self.diagnostics
            lines.append(f"MCMC: largest R-hat {d['r_hat_max']:.3f}, smallest bulk ESS {d['ess_bulk_min']:.0f}, "
                         f"divergences {d['divergences']}")
        lines += [f"Warning: {w}" for w in self.warnings]
        return "\n".join(lines)


class _Mixture:
    """A weighted mixture of normals N(means, sds^2) with weights summing to 1."""

    def __init__(self, w, means, sds):
        keep = w > 1e-300
        self.w, self.m, self.s = w[keep], means[keep], sds[keep]

    def cdf(self, x):
        from scipy.special import ndtr

        return float(np.sum(self.w * ndtr((x - self.m) / self.s)))

    def pdf(self, x):
        z = (np.asarray(x)[:, None] - self.m[None, :]) / self.s[None, :]
        return np.sum(self.w * np.exp(-0.5 * z**2) / (self.s * math.sqrt(2 * math.pi)), axis=1)

    def mean(self):
        return float(np.sum(self.w * self.m))

    def sd(self):
        mean = self.mean()
        return float(math.sqrt(max(np.sum(self.w * (self.s**2 + self.m**2)) - mean**2, 0.0)))

    def quantile(self, p):
        from scipy.optimize import brentq

        lo = float(np.min(self.m - 40 * self.s))
        hi = float(np.max(self.m + 40 * self.s))
        return brentq(lambda x: self.cdf(x) - p, lo, hi, xtol=1e-12, rtol=1e-12, maxiter=200)

    def summary(self, level):
        a = (1 - level) / 2
        low, high = _shortest(self.quantile, level)
        return Summary(self.mean(), self.quantile(0.5), self.sd(), self.quantile(a), self.quantile(1 - a),
                       low, high)


def _shortest(quantile, level):
    """Shortest interval [q(p), q(p + level)] over p in [0, 1 - level] (unimodal posteriors)."""
    from scipy.optimize import minimize_scalar

    eps = 1e-10
    width = lambda p: quantile(p + level) - quantile(p)  # noqa: E731
    r = minimize_scalar(width, bounds=(eps, 1 - level - eps), method="bounded", options={"xatol": 1e-9})
    p = r.x
    # A mode at the boundary (tau = 0) puts the shortest interval's start at the lower limit.
    if width(eps) <= r.fun:
        p = eps
    return quantile(p), quantile(p + level)


def _log_marginal(yi, vi, tau, m0, s0):
    """log p(y | tau) with mu ~ N(m0, s0^2) integrated out, and the conditional posterior of mu."""
    s2 = vi[None, :] + tau[:, None] ** 2
    prec = 1 / s0**2 + np.sum(1 / s2, axis=1)
    mean = (m0 / s0**2 + np.sum(yi[None, :] / s2, axis=1)) / prec
    quad = np.sum(yi[None, :] ** 2 / s2, axis=1) + m0**2 / s0**2 - mean**2 * prec
    logml = -0.5 * (np.sum(np.log(s2), axis=1) + np.log(prec) + 2 * math.log(s0) + quad)
    return logml, mean, prec


def bayes_exact(yi, vi, studies=None, tau_prior=None, mu_prior_sd=4.0, mu_prior_mean=0.0, threshold=None,
                benefit="lower", level=0.95) -> BayesResult:
    """Posterior of the normal-normal model by numerical integration over tau.

    ``tau_prior``: a TauPrior or its text (default half-normal(0.5)). ``mu_prior_sd``: SD of the
    normal prior on mu (analysis scale; default 4, as Roever 2020 for log odds ratios).
    ``benefit``: which direction of mu favours treatment ("lower" for a log ratio of a harm).
    ``threshold``: analysis-scale value; P(mu beyond it in the direction of benefit) is reported.
    """
    yi, vi = np.asarray(yi, float), np.asarray(vi, float)
    k = len(yi)
    if k < 1:
        raise InputError("a Bayesian meta-analysis needs at least 1 study")
    if mu_prior_sd <= 0:
        raise InputError(f"mu prior SD must be positive, got {mu_prior_sd:g}", column="--mu-prior-sd")
    prior = tau_prior if isinstance(tau_prior, TauPrior) else parse_tau_prior(tau_prior)
    studies = list(studies) if studies is not None else [f"study {i + 1}" for i in range(k)]
    m0, s0 = float(mu_prior_mean), float(mu_prior_sd)

    # The grid's end: where prior times marginal likelihood has fallen 40 log units below its peak.
    spread = float(np.sqrt(np.var(yi) + np.max(vi)))
    tau_max = min(prior.upper(), max(10 * spread, 1.0))

    def log_post_tau(x):
        return prior.logpdf(x) + _log_marginal(yi, vi, x, m0, s0)[0]

    for _ in range(60):
        probe = np.linspace(0.0, tau_max, 401)[1:]
        lp = log_post_tau(probe)
        if lp[-1] < np.max(lp) - 40 or tau_max >= prior.upper():
            break
        tau_max = min(2 * tau_max, prior.upper())
    # Grid uniform in u = log(tau) from tau_lo to tau_max: it resolves the posterior's peak at any
    # scale, including heavy-tailed priors whose grid must reach far. The mass below tau_lo is
    # added to the first point (the integrand is flat there: p(tau) p(y | tau) has a finite limit).
    tau_lo = 1e-7 * max(spread, 1e-3)
    u = np.linspace(math.log(tau_lo), math.log(tau_max), N_GRID)
    tau = np.exp(u)
    logml, cmean, cprec = _log_marginal(yi, vi, tau, m0, s0)
    logpost = prior.logpdf(tau) + logml  # density in tau
    finite = np.isfinite(logpost)
    dens = np.where(finite, np.exp(np.where(finite, logpost, 0.0) - np.max(logpost[finite])), 0.0)
    h = u[1] - u[0]
    w = dens * tau * h  # trapezoid in u: density in u is p(tau) * tau
    w[0] = 0.5 * w[0] + dens[0] * tau_lo
    w[-1] *= 0.5
    total = w.sum()
    w /= total
    dens_tau = dens / total

    mu_mix = _Mixture(w, cmean, 1 / np.sqrt(cprec))
    pred_mix = _Mixture(w, cmean, np.sqrt(1 / cprec + tau**2))
    mu_s = mu_mix.summary(level)
    pred_s = pred_mix.summary(level)

    # tau: the CDF on the grid (trapezoid), inverted by a monotone cubic in log(tau) so that the
    # quantile function is smooth (a piecewise-linear one makes the shortest interval jump between
    # grid points).
    from scipy.interpolate import PchipInterpolator

    d = dens_tau * tau  # normalised density in u = log(tau)
    below = dens_tau[0] * tau_lo  # mass under tau_lo
    cdf = below + np.concatenate([[0.0], np.cumsum(0.5 * (d[1:] + d[:-1]) * h)])
    rising = np.concatenate([[True], np.diff(cdf) > 1e-15])
    inverse = PchipInterpolator(cdf[rising], u[rising], extrapolate=True)

    def tau_quantile(p):
        return float(np.exp(inverse(p))) if p > cdf[0] else float(tau_lo * p / max(cdf[0], 1e-300))

    tau_mean = float(np.sum(w * tau))
    tau_sd = float(math.sqrt(max(np.sum(w * tau**2) - tau_mean**2, 0.0)))
    a = (1 - level) / 2
    tl, th = _shortest(tau_quantile, level)
    tau_s = Summary(tau_mean, tau_quantile(0.5), tau_sd, tau_quantile(a), tau_quantile(1 - a), tl, th)

    theta = []
    for i in range(k):
        b = tau**2 / (vi[i] + tau**2)  # weight on the study's own estimate, given tau
        m = b * yi[i] + (1 - b) * cmean
        s = np.sqrt(b * vi[i] + (1 - b) ** 2 / cprec)
        mix = _Mixture(w, m, np.maximum(s, 1e-300))
        theta.append({"study": studies[i], "mean": mix.mean(), "median": mix.quantile(0.5), "sd": mix.sd(),
                      "low": mix.quantile(a), "high": mix.quantile(1 - a)})

    favours = (lambda x: mu_mix.cdf(x)) if benefit == "lower" else (lambda x: 1 - mu_mix.cdf(x))
    probabilities = {"p_favours_treatment": favours(0.0),
                     "p_prediction_favours_treatment": (pred_mix.cdf(0.0) if benefit == "lower"
                                                        else 1 - pred_mix.cdf(0.0))}
    if threshold is not None:
        probabilities["threshold"] = float(threshold)
        probabilities["p_beyond_threshold"] = favours(float(threshold))
    tau_grid = (tuple(tau[::4].tolist()), tuple(dens_tau[::4].tolist()))
    mx = np.linspace(mu_s.low - 3 * mu_s.sd, mu_s.high + 3 * mu_s.sd, 301)
    mu_grid = (tuple(mx.tolist()), tuple(mu_mix.pdf(mx).tolist()))
    return BayesResult(engine="exact", k=k, mu=mu_s, tau=tau_s, prediction=pred_s, theta=tuple(theta),
                       probabilities=probabilities,
                       prior={**prior.to_dict(), "mu_prior_mean": m0, "mu_prior_sd": s0, "benefit": benefit},
                       level=level, tau_grid=tau_grid, mu_grid=mu_grid)


def prior_sensitivity(yi, vi, priors, **kwargs) -> tuple:
    """The same analysis under several tau priors (text forms), for ``--prior-sensitivity``."""
    return tuple(bayes_exact(yi, vi, tau_prior=p, **kwargs) for p in priors)
