"""Exact Bayesian random-effects meta-analysis (the normal-normal hierarchical model), no MCMC.

Model: y_i ~ N(theta_i, v_i), theta_i ~ N(mu, tau^2), mu ~ N(m0, s0^2), tau ~ a chosen prior.
Given tau, mu is normal and integrated analytically; tau's posterior is computed on a fine grid;
every posterior (mu, theta_i, a new trial's effect) is then a mixture of normals over that grid,
whose quantiles are found by Newton's method on the mixture CDF. This is the approach of bayesmeta
(Roever 2020, J Stat Softw 93(6), section 2), written here with NumPy and SciPy so that it is
deterministic and runs in milliseconds. All values are on the analysis scale (log for ratios).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from .priors import TauPrior, parse_tau_prior

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

N_PANELS = 60  # Gauss-Legendre panels in log(tau)
_GL_X, _GL_W = np.polynomial.legendre.leggauss(10)  # nodes and weights per panel


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

    def to_dict(self) -> dict[str, float]:
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
                 f"{'':12}{'mean':>9}{'median':>9}{'sd':>9}{_pct((1 - self.level) / 2):>9}"
                 f"{_pct((1 + self.level) / 2):>9}   shortest {_pct(self.level)}"]
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


def _pct(x: float) -> str:
    """A probability as a percentage label (0.025 -> "2.5%"): the quantiles shown follow --level."""
    return f"{100 * x:.10g}%"


class _Mixture:
    """A weighted mixture of normals N(means, sds^2) with weights summing to 1."""

    def __init__(self, w, means, sds) -> None:
        keep = w > 1e-18 * np.max(w)  # the dropped mass is below 1e-14: far under the accuracy sought
        self.w, self.m, self.s = w[keep] / np.sum(w[keep]), means[keep], sds[keep]

    def _cdf_pdf(self, x):
        from scipy.special import ndtr

        z = (np.asarray(x, float)[:, None] - self.m[None, :]) / self.s[None, :]
        return (np.sum(self.w * ndtr(z), axis=1),
                np.sum(self.w * np.exp(-0.5 * z**2) / (self.s * math.sqrt(2 * math.pi)), axis=1))

    def cdf(self, x):
        return float(self._cdf_pdf([x])[0][0])

    def pdf(self, x):
        return self._cdf_pdf(np.atleast_1d(x))[1]

    def mean(self):
        return float(np.sum(self.w * self.m))

    def sd(self):
        mean = self.mean()
        return float(math.sqrt(max(np.sum(self.w * (self.s**2 + self.m**2)) - mean**2, 0.0)))

    def quantiles(self, ps, with_density: bool = False):
        """Quantiles for an array of probabilities: Newton on the mixture CDF, all at once, kept
        inside a bracket that shrinks each step (bisection when a step would leave it).
        ``with_density``: also return the density at each quantile."""
        from scipy.special import ndtri

        ps = np.asarray(ps, float)
        lo = np.full(ps.shape, float(np.min(self.m - 40 * self.s)))
        hi = np.full(ps.shape, float(np.max(self.m + 40 * self.s)))
        x = np.clip(self.mean() + self.sd() * ndtri(ps), lo, hi)
        for _ in range(200):
            cdf, pdf = self._cdf_pdf(x)
            r = cdf - ps
            hi = np.where(r > 0, x, hi)
            lo = np.where(r <= 0, x, lo)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = x - r / pdf
            step = np.where(np.isfinite(step) & (step >= lo) & (step <= hi), step, 0.5 * (lo + hi))
            done = (np.abs(step - x) <= 1e-13 * (1 + np.abs(x))) | (np.abs(r) < 1e-15)
            x = step
            if done.all():
                break
        if with_density:
            return x, self._cdf_pdf(x)[1]
        return x

    def quantile(self, p):
        return float(self.quantiles(np.array([p]))[0])

    def summary(self, level):
        a = (1 - level) / 2
        median, low, high = self.quantiles(np.array([0.5, a, 1 - a]))
        s_low, s_high = _shortest(self.quantile, lambda x: float(self.pdf(x)[0]), level,
                                  ends=lambda p: self.quantiles(np.array([p, p + level]), True))
        return Summary(self.mean(), float(median), self.sd(), float(low), float(high), s_low, s_high)


def _shortest(quantile, density, level, lower_limit=None, ends=None):
    """Shortest interval [q(p), q(p + level)] of a unimodal posterior: the p in [0, 1 - level] where
    the density is equal at both ends (Roever 2020, section 2.4, shortest credible intervals); when
    the density at the lower limit already exceeds that at q(level) (a mode at tau = 0), the
    interval starts at that limit."""
    from scipy.optimize import brentq

    if lower_limit is not None and density(lower_limit) >= density(quantile(level)):
        return float(lower_limit), quantile(level)

    def gap(p):
        if ends is not None:  # both quantiles and their densities in one vectorised call
            dens = ends(p)[1]
            return dens[1] - dens[0]
        return density(quantile(p + level)) - density(quantile(p))

    eps = 1e-12
    lo, hi = eps, 1 - level - eps
    if gap(lo) <= 0:  # numerically at the edge: the interval starts at the lowest quantile
        return quantile(lo), quantile(lo + level)
    if gap(hi) >= 0:
        return quantile(hi), quantile(hi + level)
    p = brentq(gap, lo, hi, xtol=1e-13, rtol=1e-12, maxiter=200)
    return quantile(p), quantile(p + level)


def _log_marginal(yi, vi, tau, m0, s0):
    """log p(y | tau) with mu ~ N(m0, s0^2) integrated out, and the conditional posterior of mu."""
    s2 = vi[None, :] + tau[:, None] ** 2
    prec = 1 / s0**2 + np.sum(1 / s2, axis=1)
    mean = (m0 / s0**2 + np.sum(yi[None, :] / s2, axis=1)) / prec
    quad = np.sum(yi[None, :] ** 2 / s2, axis=1) + m0**2 / s0**2 - mean**2 * prec
    logml = -0.5 * (np.sum(np.log(s2), axis=1) + np.log(prec) + 2 * math.log(s0) + quad)
    return logml, mean, prec


def bayes_exact(yi: ArrayLike, vi: ArrayLike, studies: Sequence[str] | None = None,
                tau_prior: TauPrior | str | None = None, mu_prior_sd: float = 4.0, mu_prior_mean: float = 0.0,
                threshold: float | None = None, benefit: str = "lower", level: float = 0.95) -> BayesResult:
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
    if benefit not in ("lower", "higher"):
        raise InputError(f"benefit must be 'lower' or 'higher', got {benefit!r}", column="benefit")
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
    # Composite Gauss-Legendre in u = log(tau) from tau_lo to tau_max: it resolves the posterior's
    # peak at any scale, including heavy-tailed priors whose range must reach far, and integrates
    # the smooth density to near machine precision. The same nodes carry the normal mixtures for mu,
    # theta_i and the predictive. Below tau_lo, p(tau) p(y | tau) is flat (a finite limit at 0):
    # its mass is dens(tau_lo) * tau_lo, given to one node at tau_lo / 2.
    tau_lo = 1e-7 * max(spread, 1e-3)
    edges = np.linspace(math.log(tau_lo), math.log(tau_max), N_PANELS + 1)
    half = 0.5 * (edges[1] - edges[0])
    u = (0.5 * (edges[:-1] + edges[1:]))[:, None] + half * _GL_X[None, :]
    u = np.concatenate([[math.log(tau_lo / 2)], u.ravel()])
    tau = np.exp(u)
    logml, cmean, cprec = _log_marginal(yi, vi, tau, m0, s0)
    logpost = prior.logpdf(tau) + logml  # log density in tau, unnormalised
    finite = np.isfinite(logpost)
    if not finite.any():
        raise InputError("the posterior of tau vanishes everywhere: check the prior and the variances")
    peak = float(np.max(logpost[finite]))

    def dens_u(uu):  # unnormalised density in u = log(tau): p(tau) p(y | tau) tau
        uu = np.atleast_1d(np.asarray(uu, float))
        lp = log_post_tau(np.exp(uu))
        return np.where(np.isfinite(lp), np.exp(np.where(np.isfinite(lp), lp, 0.0) - peak + uu), 0.0)

    d = np.where(finite, np.exp(np.where(finite, logpost, 0.0) - peak), 0.0)  # density in tau
    below = d[0] * tau_lo
    w = np.concatenate([[below], (d[1:] * tau[1:]).reshape(N_PANELS, -1).__mul__(half * _GL_W).ravel()])
    total = w.sum()
    w /= total
    dens_tau = d / total
    panel_cdf = np.concatenate([[w[0]], w[0] + np.cumsum(w[1:].reshape(N_PANELS, -1).sum(axis=1))])

    mu_mix = _Mixture(w, cmean, 1 / np.sqrt(cprec))
    pred_mix = _Mixture(w, cmean, np.sqrt(1 / cprec + tau**2))
    mu_s = mu_mix.summary(level)
    pred_s = pred_mix.summary(level)

    def tau_pdf(t):
        return float(dens_u(math.log(t))[0]) / (total * t) if t > 0 else float(dens_tau[0])

    def tau_quantiles(ps):
        """Quantiles of tau and the density there, for an array of probabilities: Newton in
        u = log(tau) inside the panel holding each p (bisection as the safeguard); the CDF is the
        whole panels below plus a Gauss-Legendre integral over the part of the panel."""
        ps = np.atleast_1d(np.asarray(ps, float))
        j = np.clip(np.searchsorted(panel_cdf, ps) - 1, 0, N_PANELS - 1)
        a, b = edges[j].copy(), edges[j + 1].copy()
        x = 0.5 * (a + b)
        for _ in range(100):
            hw = 0.5 * (x - edges[j])
            nodes = edges[j][:, None] + hw[:, None] * (1 + _GL_X[None, :])
            g = dens_u(np.concatenate([nodes.ravel(), x])) / total
            r = panel_cdf[j] + hw * (g[:-len(x)].reshape(len(x), -1) @ _GL_W) - ps
            gx = g[-len(x):]
            b = np.where(r > 0, x, b)
            a = np.where(r <= 0, x, a)
            with np.errstate(divide="ignore", invalid="ignore"):
                nxt = x - r / gx
            nxt = np.where(np.isfinite(nxt) & (nxt >= a) & (nxt <= b), nxt, 0.5 * (a + b))
            done = (np.abs(nxt - x) < 1e-13) | (np.abs(r) < 1e-15)
            x = nxt
            if done.all():
                break
        t = np.exp(x)
        dens = dens_u(x) / (total * t)
        # Below the grid (p under the mass of [0, tau_lo]) the density is flat.
        low = ps <= w[0]
        if low.any():
            t = np.where(low, tau_lo * ps / w[0], t)
            dens = np.where(low, dens_tau[0], dens)
        return t, dens

    def tau_quantile(p):
        return float(tau_quantiles([p])[0][0])

    tau_mean = float(np.sum(w * tau))
    tau_sd = float(math.sqrt(max(np.sum(w * tau**2) - tau_mean**2, 0.0)))
    a = (1 - level) / 2
    tl, th = _shortest(tau_quantile, tau_pdf, level, lower_limit=0.0,
                       ends=lambda p: tau_quantiles([p, p + level]))
    t_median, t_low, t_high = tau_quantiles([0.5, a, 1 - a])[0]
    tau_s = Summary(tau_mean, float(t_median), tau_sd, float(t_low), float(t_high), tl, th)

    theta = []
    for i in range(k):
        b = tau**2 / (vi[i] + tau**2)  # weight on the study's own estimate, given tau
        m = b * yi[i] + (1 - b) * cmean
        s = np.sqrt(b * vi[i] + (1 - b) ** 2 / cprec)
        mix = _Mixture(w, m, np.maximum(s, 1e-300))
        median, low, high = mix.quantiles(np.array([0.5, a, 1 - a]))
        theta.append({"study": studies[i], "mean": mix.mean(), "median": float(median), "sd": mix.sd(),
                      "low": float(low), "high": float(high)})

    def favours(mix, x):
        return mix.cdf(x) if benefit == "lower" else 1 - mix.cdf(x)

    probabilities = {"p_favours_treatment": favours(mu_mix, 0.0),
                     "p_prediction_favours_treatment": favours(pred_mix, 0.0)}
    if threshold is not None:
        probabilities["threshold"] = float(threshold)
        probabilities["p_beyond_threshold"] = favours(mu_mix, float(threshold))
    tau_grid = (tuple(tau[1:].tolist()), tuple(dens_tau[1:].tolist()))
    mx = np.linspace(mu_s.low - 3 * mu_s.sd, mu_s.high + 3 * mu_s.sd, 301)
    mu_grid = (tuple(mx.tolist()), tuple(mu_mix.pdf(mx).tolist()))
    return BayesResult(engine="exact", k=k, mu=mu_s, tau=tau_s, prediction=pred_s, theta=tuple(theta),
                       probabilities=probabilities,
                       prior={**prior.to_dict(), "mu_prior_mean": m0, "mu_prior_sd": s0, "benefit": benefit},
                       level=level, tau_grid=tau_grid, mu_grid=mu_grid)


def prior_sensitivity(yi: ArrayLike, vi: ArrayLike, priors: Iterable[str], **kwargs: Any) -> tuple[BayesResult, ...]:
    """The same analysis under several tau priors (text forms), for ``--prior-sensitivity``."""
    return tuple(bayes_exact(yi, vi, tau_prior=p, **kwargs) for p in priors)
