"""The PyMC engine: the normal-normal model agrees with the exact engine within Monte Carlo error;
binomial-normal sits near metafor's rma.glmm; draws are reproducible; diagnostics warn.

Short chains keep the suite fast; the bounds are Monte Carlo error bounds for those chains.
"""

import csv
import json
import math

import pytest

pm = pytest.importorskip("pymc")  # installed with the test extras; skipped only where PyMC is absent

from hatmeta.bayes import bayes_exact  # noqa: E402
from hatmeta.bayes.mcmc import bayes_pymc  # noqa: E402

from ..conftest import FIXTURES  # noqa: E402

BM = FIXTURES / "bayesmeta"


def load(name):
    with open(BM / f"{name}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["study"] for r in rows], [float(r["yi"]) for r in rows], [float(r["vi"]) for r in rows]


@pytest.fixture(scope="module", params=["marginal", "noncentred"])
def bcg_mcmc(request, tmp_path_factory):
    studies, y, v = load("bcg")
    trace = tmp_path_factory.mktemp("trace") / "bcg.nc"
    return bayes_pymc(y, v, studies, seed=11, draws=800, tune=800, save_trace=trace,
                      parameterisation=request.param), trace


def test_normal_normal_agrees_with_the_exact_engine(bcg_mcmc):
    r, _ = bcg_mcmc
    studies, y, v = load("bcg")
    e = bayes_exact(y, v, studies)
    d = r.diagnostics
    assert d["r_hat_max"] < 1.02 and d["divergences"] == 0
    mc_error = e.mu.sd / math.sqrt(d["ess_bulk_min"])
    assert abs(r.mu.mean - e.mu.mean) < 5 * mc_error
    assert abs(r.mu.median - e.mu.median) < 6 * mc_error
    assert abs(r.tau.median - e.tau.median) < 6 * e.tau.sd / math.sqrt(d["ess_bulk_min"])
    assert r.prediction.sd == pytest.approx(e.prediction.sd, rel=0.1)
    for got, exp in zip(r.theta, e.theta):
        assert abs(got["mean"] - exp["mean"]) < 6 * exp["sd"] / math.sqrt(d["ess_bulk_min"])


def test_trace_is_saved_as_netcdf(bcg_mcmc):
    import arviz as az

    r, trace = bcg_mcmc
    idata = az.from_netcdf(trace)
    noncentred = r.engine.endswith("noncentred)")
    assert set(idata.posterior.data_vars) == {"mu", "tau", "theta"} | ({"z"} if noncentred else set())
    assert idata.posterior["mu"].shape == (2, 800)
    assert idata.posterior["theta"].shape == (2, 800, 13)
    assert idata.posterior["theta"].coords["study"].values[3] == "Hart & Sutherland 1977"
    assert float(idata.posterior["mu"].mean()) == pytest.approx(r.mu.mean, abs=1e-12)
    assert float(idata.posterior["theta"][..., 3].mean()) == pytest.approx(r.theta[3]["mean"], abs=1e-12)


def test_marginal_study_effects_are_the_conditional_normal():
    """Given (mu, tau), theta_i ~ N(mu + (1 - B_i)(y_i - mu), (1 - B_i) v_i) with B_i = v_i / (v_i + tau^2).
    Fixing the posterior at one point (mu = -0.7, tau = 0.5) and at tau = 0 checks the draws' moments."""
    import arviz as az
    import numpy as np

    from hatmeta.bayes.mcmc import _add_theta

    y, v = np.array([-1.5, 0.2]), np.array([0.2, 0.05])
    n = 200_000
    for tau, keep in ((0.5, 0.25 / (v + 0.25)), (0.0, np.zeros(2))):
        idata = az.from_dict(posterior={"mu": np.full((2, n), -0.7), "tau": np.full((2, n), tau)})
        _add_theta(idata, y, v, np.random.default_rng(0))
        theta = idata.posterior["theta"].values.reshape(-1, 2)
        assert theta.mean(axis=0) == pytest.approx(-0.7 + keep * (y + 0.7), abs=5 * np.sqrt(keep * v / n).max() + 1e-9)
        assert theta.var(axis=0) == pytest.approx(keep * v, rel=0.02, abs=1e-20)


def _arms(name, columns):
    with open(BM / f"{name}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {c: [float(r[c]) for r in rows] for c in columns}


def test_binomial_normal_sits_near_rma_glmm():
    """Hine 1989 (rare events): metafor's rma.glmm(measure = 'OR') log OR 0.58 (SE 0.28), with fixed
    study intercepts (model 'UM.FS', the structure of Smith, Spiegelhalter & Thomas 1995) and with
    random ones ('UM.RS'). The posterior median sits within half a standard error of both."""
    ref = json.loads((BM / "bayesmeta_reference.json").read_text())["glmm"]
    arms = _arms("hine1989", ("events_treat", "n_treat", "events_ctrl", "n_ctrl"))
    r = bayes_pymc(likelihood="binomial", arms=arms, seed=5, draws=800, tune=800)
    for glmm in ref["fits"]:
        assert abs(r.mu.median - glmm["estimate"]) < 0.5 * glmm["se"], glmm["model"]


def test_poisson_normal_sits_near_rma_glmm():
    """Hart 1999 (warfarin, stroke per patient-year): rma.glmm(measure = 'IRR', model = 'UM.FS')."""
    ref = json.loads((BM / "bayesmeta_reference.json").read_text())["glmm_rates"]
    glmm = next(f for f in ref["fits"] if f["model"] == "UM.FS")
    arms = _arms("hart1999", ("events_treat", "time_treat", "events_ctrl", "time_ctrl"))
    r = bayes_pymc(likelihood="poisson", arms=arms, seed=3, draws=600, tune=600)
    assert r.k == 6
    assert abs(r.mu.median - glmm["estimate"]) < 0.5 * glmm["se"]


def test_option_mistakes_are_input_errors_before_sampling(tmp_path):
    from hatmeta.errors import InputError

    studies, y, v = load("crins2014")
    with pytest.raises(InputError, match="parameterisation"):
        bayes_pymc(y, v, studies, parameterisation="centred")
    for draws in (0, -5, 9):
        with pytest.raises(InputError, match="draws must be at least 10"):
            bayes_pymc(y, v, studies, draws=draws)
    with pytest.raises(InputError, match="folder does not exist"):
        bayes_pymc(y, v, studies, save_trace=tmp_path / "missing" / "trace.nc")


def test_short_chains_raise_a_warning_and_a_seed_repeats_the_draws():
    studies, y, v = load("crins2014")
    r = bayes_pymc(y, v, studies, seed=2, draws=60, tune=200)
    assert r.diagnostics["ess_bulk_min"] < 400
    assert any("ESS" in w for w in r.warnings)
    assert bayes_pymc(y, v, studies, seed=2, draws=60, tune=200).to_dict() == r.to_dict()
    assert bayes_pymc(y, v, studies, seed=3, draws=60, tune=200).to_dict() != r.to_dict()


def test_command_line_pymc_is_byte_identical_across_processes_and_keeps_the_json_contract():
    """Non-negotiable 4 through the command line: two processes, one seed, the same bytes. The
    JSON holds the issue's posterior, probabilities, prior and diagnostics, and agrees with the
    exact engine's median of mu within Monte Carlo error."""
    import subprocess
    import sys

    from ..conftest import ROOT

    args = [sys.executable, "-m", "hatmeta.cli", "pool", "retention-any-route", "--bayes", "--engine", "pymc",
            "--draws", "600", "--seed", "4", "--format", "json"]
    first, second = (subprocess.run(args, capture_output=True, text=True, cwd=ROOT) for _ in range(2))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert all(line.startswith("warning: ") for line in first.stderr.splitlines())  # no library noise
    b = json.loads(first.stdout)["bayes"]
    assert b["engine"] == "pymc (normal, marginal)"
    for q in ("mu", "tau", "prediction"):
        assert set(b["posterior"][q]) >= {"mean", "median", "sd", "low", "high"}
    assert set(b["diagnostics"]) >= {"r_hat_max", "ess_bulk_min", "divergences"}
    assert b["diagnostics"]["divergences"] == 0
    assert b["prior"]["tau_prior"] == "halfnormal:0.5" and b["prior"]["benefit"] == "higher"
    exact = json.loads(subprocess.run(args[:6] + ["--format", "json"], capture_output=True, text=True,
                                      cwd=ROOT).stdout)["bayes"]
    mc_error = exact["posterior"]["mu"]["sd"] / math.sqrt(b["diagnostics"]["ess_bulk_min"])
    assert abs(b["posterior"]["mu"]["median"] - exact["posterior"]["mu"]["median"]) < 6 * mc_error
