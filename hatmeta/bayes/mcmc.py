"""PyMC engine (``--engine pymc``): the same random-effects model by MCMC, plus what the exact
engine cannot do: a binomial-normal likelihood for rare events (Smith, Spiegelhalter & Thomas 1995,
Stat Med 14:2685: study-specific baseline log-odds, log odds ratio theta_i ~ N(mu, tau^2)) and a
Poisson likelihood for rates (log rate ratio). Non-centred: theta_i = mu + tau * z_i.

For the normal likelihood the default samples the same model with theta integrated out,
y_i ~ N(mu, v_i + tau^2), as bayesmeta's exact engine does (Roever 2020, J Stat Softw 93(6), sec. 2),
and then draws each theta_i from its exact conditional normal given (mu, tau). On BCG the
non-centred form needed target_accept 0.95 and about 31 leapfrog steps per draw, and still
diverged on three-study tables; the marginal form takes about 5 steps and did not diverge
(benchmarks/README.md). ``parameterisation="noncentred"`` keeps the textbook form.

PyMC and ArviZ are imported only here, only when this engine is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .exact import BayesResult, Summary
from .priors import TauPrior, parse_tau_prior

RHAT_MAX, ESS_MIN = 1.01, 400
MIN_DRAWS = 10  # per chain: fewer leave split R-hat and ESS meaningless (and PyMC cannot build a trace of 0)
BASELINE_SD = 10.0  # vague N(0, 10^2) prior on each study's baseline log-odds or log-rate


def _tau(pm: Any, prior: TauPrior) -> Any:
    if prior.kind == "halfnormal":
        return pm.HalfNormal("tau", sigma=prior.params[0])
    if prior.kind == "halfcauchy":
        return pm.HalfCauchy("tau", beta=prior.params[0])
    if prior.kind == "uniform":
        return pm.Uniform("tau", lower=0.0, upper=prior.params[0])
    tau2 = pm.LogNormal("tau2", mu=prior.params[0], sigma=prior.params[1])
    return pm.Deterministic("tau", pm.math.sqrt(tau2))


def _summary(x: np.ndarray, level: float) -> Summary:
    import arviz as az

    a = (1 - level) / 2
    low, high = az.hdi(np.asarray(x), hdi_prob=level)
    return Summary(float(np.mean(x)), float(np.median(x)), float(np.std(x, ddof=1)), float(np.quantile(x, a)),
                   float(np.quantile(x, 1 - a)), float(low), float(high))


def _add_theta(idata: Any, y: np.ndarray, v: np.ndarray, rng: np.random.Generator,
               labels: Sequence[str] | Sequence[int] | None = None) -> None:
    """Add study effects theta_i to a marginal fit's posterior: given (mu, tau), theta_i is normal
    with mean mu + (1 - B_i)(y_i - mu) and variance (1 - B_i) v_i, B_i = v_i / (v_i + tau^2)
    (the usual normal-normal shrinkage; e.g. Roever 2020, eq. 9). One draw per posterior draw."""
    import xarray as xr

    mu = idata.posterior["mu"].values[..., None]
    tau2 = idata.posterior["tau"].values[..., None] ** 2
    keep = tau2 / (v + tau2)  # 1 - B_i, exactly 0 when tau = 0
    theta = mu + keep * (y - mu) + np.sqrt(keep * v) * rng.standard_normal(keep.shape)
    coords = {d: idata.posterior.coords[d] for d in ("chain", "draw")}
    coords["study"] = list(range(len(y))) if labels is None else labels
    idata.posterior["theta"] = xr.DataArray(theta, dims=("chain", "draw", "study"), coords=coords)


def _arm_likelihood(pm: Any, likelihood: str, theta: Any, a: Mapping[str, np.ndarray]) -> None:
    """Arm-level likelihood given study effects theta (log OR or log IRR), with a study-specific
    baseline alpha_i ~ N(0, BASELINE_SD^2) on the log-odds or log-rate scale."""
    alpha = pm.Normal("alpha", 0.0, BASELINE_SD, dims="study")
    if likelihood == "binomial":
        pm.Binomial("ctrl", n=a["n_ctrl"].astype(int), p=pm.math.invlogit(alpha), observed=a["events_ctrl"].astype(int))
        pm.Binomial("treat", n=a["n_treat"].astype(int), p=pm.math.invlogit(alpha + theta),
                    observed=a["events_treat"].astype(int))
    else:
        pm.Poisson("ctrl", mu=a["time_ctrl"] * pm.math.exp(alpha), observed=a["events_ctrl"].astype(int))
        pm.Poisson("treat", mu=a["time_treat"] * pm.math.exp(alpha + theta), observed=a["events_treat"].astype(int))


@contextmanager
def pymc_session(progressbar: bool = False) -> Iterator[tuple[Any, Any]]:
    """PyMC and ArviZ, imported here (one line naming the extra if absent), with their start-up
    noise kept off the terminal: yields (pymc, arviz)."""
    import logging
    import warnings

    with warnings.catch_warnings():
        # A pip-installed PyTensor warns, when it first compiles, that its C backend found no BLAS;
        # the sampler runs on the Numba backend, which does not use it.
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
        try:
            import arviz as az
            import pymc as pm
        except ImportError:  # the [bayes] extra is not installed: one line, as the README promises
            raise InputError("the PyMC engine needs PyMC and ArviZ: pip install 'hatmeta[bayes]'",
                             column="--engine") from None

        # PyMC narrates sampling on stderr (its logger is set up when pymc is first imported); only
        # a person watching a progress bar wants that. Its warnings about short chains are left out
        # too: hatmeta's own R-hat and ESS warnings (``diagnose``) say the same, once.
        logging.getLogger("pymc").setLevel(logging.INFO if progressbar else logging.ERROR)
        yield pm, az


def sample(pm: Any, draws: int, tune: int, chains: int, seed: int, progressbar: bool = False) -> Any:
    """NUTS on the model in context, seeded (``seed`` makes the draws reproducible), at most two
    processes, target acceptance 0.95. Returns the InferenceData."""
    # PyTensor's Numba backend: its compiled functions are cached on disk, and a first run compiles
    # in about half the time of the C backend (benchmarks/README.md).
    return pm.sample(draws=draws, tune=tune, chains=chains, cores=min(chains, 2), random_seed=seed,
                     target_accept=0.95, progressbar=progressbar, compute_convergence_checks=False,
                     compile_kwargs={"mode": "NUMBA"})


def diagnose(idata: Any, var_names: Sequence[str], chains: int, seed: int) -> tuple[dict[str, Any], list[str]]:
    """Largest split R-hat, smallest bulk ESS (over ``var_names``), divergences, and the warnings
    they call for (R-hat above RHAT_MAX, ESS below ESS_MIN, any divergence)."""
    import arviz as az

    rhat = az.rhat(idata, var_names=list(var_names))
    ess = az.ess(idata, var_names=list(var_names), method="bulk")
    n = int(idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"])
    diagnostics = {"r_hat_max": float(max(float(rhat[v].max()) for v in rhat.data_vars)),
                   "ess_bulk_min": float(min(float(ess[v].min()) for v in ess.data_vars)),
                   "divergences": int(idata.sample_stats["diverging"].values.sum()),
                   "draws": n, "chains": chains, "seed": seed}
    cautions = []
    if diagnostics["r_hat_max"] > RHAT_MAX:
        cautions.append(f"largest R-hat {diagnostics['r_hat_max']:.3f} exceeds {RHAT_MAX}: chains disagree")
    if diagnostics["ess_bulk_min"] < ESS_MIN:
        cautions.append(f"smallest bulk ESS {diagnostics['ess_bulk_min']:.0f} is below {ESS_MIN}: draw more")
    if diagnostics["divergences"]:
        cautions.append(f"{diagnostics['divergences']} divergent transitions: the posterior may be biased")
    return diagnostics, cautions


def bayes_pymc(yi: Sequence[float] | np.ndarray | None = None, vi: Sequence[float] | np.ndarray | None = None,
               studies: Sequence[str] | None = None,
               tau_prior: TauPrior | str | None = None, mu_prior_sd: float = 4.0, mu_prior_mean: float = 0.0,
               likelihood: str = "normal", arms: Mapping[str, Sequence[float] | np.ndarray] | None = None,
               seed: int = 1, draws: int = 1500, tune: int = 1000, chains: int = 2, save_trace: str | None = None,
               progressbar: bool = False, threshold: float | None = None, benefit: str = "lower", level: float = 0.95,
               parameterisation: str = "marginal") -> BayesResult:
    """Posterior by NUTS. ``likelihood``: "normal" (yi, vi), "binomial" (``arms`` with events_treat,
    n_treat, events_ctrl, n_ctrl; log odds ratio) or "poisson" (``arms`` with events_treat, time_treat,
    events_ctrl, time_ctrl; log rate ratio). ``parameterisation`` ("marginal" or "noncentred")
    applies to the normal likelihood only. ``seed`` makes the draws reproducible."""
    prior = tau_prior if isinstance(tau_prior, TauPrior) else parse_tau_prior(tau_prior)
    if likelihood not in ("normal", "binomial", "poisson"):
        raise InputError(f"unknown likelihood {likelihood!r}; choose normal, binomial or poisson",
                         column="--likelihood")
    if likelihood == "normal":
        k = len(yi)  # type: ignore[arg-type]  # yi and vi are required with the normal likelihood
    else:
        need = ("events_treat", "n_treat", "events_ctrl", "n_ctrl") if likelihood == "binomial" else (
            "events_treat", "time_treat", "events_ctrl", "time_ctrl")
        if arms is None or any(c not in arms for c in need):
            raise InputError(f"the {likelihood} likelihood needs columns {', '.join(need)}", column="--likelihood")
        k = len(arms[need[0]])
    if parameterisation not in ("marginal", "noncentred"):
        raise InputError(f"unknown parameterisation {parameterisation!r}; choose marginal or noncentred",
                         column="--parameterisation")
    marginal = likelihood == "normal" and parameterisation == "marginal"
    if draws < MIN_DRAWS or tune < 0:
        raise InputError(f"draws must be at least {MIN_DRAWS} per chain and tuning steps at least 0 "
                         f"(got {draws} and {tune})", column="--draws")
    if save_trace and not Path(save_trace).resolve().parent.is_dir():  # before sampling, not after
        raise InputError("cannot write the trace: its folder does not exist", file=save_trace)
    studies = list(studies) if studies is not None else [f"study {i + 1}" for i in range(k)]
    with pymc_session(progressbar) as (pm, _az):
        # The saved trace labels study effects by study name (by position if names repeat).
        labels = studies if len(set(studies)) == k else list(range(k))
        with pm.Model(coords={"study": labels}):
            mu = pm.Normal("mu", mu=mu_prior_mean, sigma=mu_prior_sd)
            tau = _tau(pm, prior)
            if marginal:
                pm.Normal("y", mu=mu, sigma=pm.math.sqrt(np.asarray(vi, float) + tau ** 2),
                          observed=np.asarray(yi, float))
            else:
                theta = pm.Deterministic("theta", mu + tau * pm.Normal("z", 0.0, 1.0, dims="study"),
                                         dims="study")
                if likelihood == "normal":
                    pm.Normal("y", mu=theta, sigma=np.sqrt(np.asarray(vi, float)), observed=np.asarray(yi, float))
                else:
                    _arm_likelihood(pm, likelihood, theta, {c: np.asarray(v, float) for c, v in (arms or {}).items()})
            idata = sample(pm, draws, tune, chains, seed, progressbar)
    rng = np.random.default_rng(seed)  # the draws made here, after sampling, repeat with the seed too
    if marginal:
        _add_theta(idata, np.asarray(yi, float), np.asarray(vi, float), rng, labels)
    post = idata.posterior
    mu_d = post["mu"].values.reshape(-1)
    tau_d = post["tau"].values.reshape(-1)
    # A new trial's effect: one normal draw per posterior draw.
    pred_d = mu_d + tau_d * rng.standard_normal(mu_d.size)
    theta_d = post["theta"].values.reshape(-1, k)
    theta = tuple({"study": s, **{key: getattr(_summary(theta_d[:, i], level), key)
                                  for key in ("mean", "median", "sd", "low", "high")}}
                  for i, s in enumerate(studies))
    diagnostics, cautions = diagnose(idata, ["mu", "tau"], chains, seed)
    if save_trace:
        try:
            idata.to_netcdf(str(save_trace))
        except OSError as exc:
            raise InputError(f"cannot write the trace ({exc.strerror or exc})", file=save_trace) from None

    def favours(x: float) -> float:
        return float(np.mean(mu_d < x) if benefit == "lower" else np.mean(mu_d > x))

    probabilities = {"p_favours_treatment": favours(0.0),
                     "p_prediction_favours_treatment": float(np.mean(pred_d < 0) if benefit == "lower"
                                                             else np.mean(pred_d > 0))}
    if threshold is not None:
        probabilities["threshold"] = float(threshold)
        probabilities["p_beyond_threshold"] = favours(float(threshold))
    engine = f"pymc ({likelihood}, {parameterisation})" if likelihood == "normal" else f"pymc ({likelihood})"
    return BayesResult(engine=engine, k=k, mu=_summary(mu_d, level), tau=_summary(tau_d, level),
                       prediction=_summary(pred_d, level), theta=theta, probabilities=probabilities,
                       prior={**prior.to_dict(), "mu_prior_mean": float(mu_prior_mean),
                              "mu_prior_sd": float(mu_prior_sd), "benefit": benefit, "likelihood": likelihood},
                       level=level, diagnostics=diagnostics, warnings=tuple(cautions))


__all__ = ["bayes_pymc", "diagnose", "pymc_session", "sample"]
