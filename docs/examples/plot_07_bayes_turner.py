"""
Bayesian meta-analysis with a Turner prior
==========================================

With few trials, tau (the between-trial SD) is barely informed by the data, and the choice of
its prior matters. Turner et al. (2015, Stat Med 34:984, Table IV) give predictive distributions
for tau² from 14,886 meta-analyses in the Cochrane Database, by outcome type and comparison:
``--tau-prior turner:OUTCOME/COMPARISON`` (``turner:marginal`` is the one for a general
setting, log-normal(-2.56, 1.74²) on tau²).

hatmeta's exact engine fits the normal-normal model as bayesmeta does (Röver 2020, J Stat Softw
93(6)): mu integrated analytically given tau, tau on a fine grid. First BCG under Turner's
marginal prior beside bayesmeta 3.4 (``tests/fixtures/bayesmeta/``), then the HAT retention trials.
"""

# %%
# BCG under ``turner:marginal``, beside bayesmeta
# ------------------------------------------------
import json
import subprocess
import sys
from pathlib import Path

import hatmeta
from hatmeta.api import pool_bayes
from hatmeta.bayes.priors import parse_tau_prior
from hatmeta.render.plots import posterior

# The repository: the nearest folder above the working directory holding the hatmeta package
# (sphinx-gallery runs each example from docs/examples/).
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "hatmeta" / "__init__.py").is_file())
bcg = hatmeta.read_table(ROOT / "tests" / "fixtures" / "bayesmeta" / "bcg.csv")  # log RR, yi and vi
res = hatmeta.rma(hatmeta.escalc(bcg, measure="GEN"))
prior = parse_tau_prior("turner:marginal")
print(prior.kind, prior.params, "-", prior.source)
post, _ = pool_bayes(res, tau_prior="turner:marginal", mu_prior_sd=4)
print(post.summary())

# %%
# bayesmeta 3.4 computed the same posterior with a log-normal(-2.56, 1.74²) prior on tau² (case
# ``bcg_lognormal-2.56,1.74``, tight integration settings). They agree to about 1e-4.
cases = json.loads((ROOT / "tests" / "fixtures" / "bayesmeta" / "bayesmeta_reference.json").read_text())
ref = next(c for c in cases["cases"] if c["name"] == "bcg_lognormal-2.56,1.74")
print(f"{'':24s} {'hatmeta':>10s} {'bayesmeta':>10s}")
for what in ("mu", "tau", "prediction"):
    for stat in ("mean", "median", "sd", "low", "high"):
        ours, theirs = getattr(getattr(post, what), stat), ref[what][stat]
        print(f"{what + ' ' + stat:24s} {ours:10.5f} {theirs:10.5f}")
        assert abs(ours - theirs) <= 1e-4 * max(1.0, abs(theirs)), (what, stat)  # fails the build

# %%
# Posterior densities against the priors
# --------------------------------------
fig = posterior(post, measure="RR", scale="log", title="BCG: posterior under Turner's marginal prior")

# %%
# The HAT retention trials
# ------------------------
# Three trials; on the odds-ratio scale (Turner's priors are for log odds ratios) with the prior
# for withdrawals and drop-outs in pharmacological-vs-pharmacological comparisons. The posterior
# probability that heroin-assisted treatment retains more patients is computed in the direction
# the analysis spec gives (``benefit = "higher"``).
out = subprocess.run(
    [sys.executable, "-m", "hatmeta.cli", "pool", "retention", "--measure", "OR", "--bayes",
     "--tau-prior", "turner:withdrawals-drop-outs/pharmacological-vs-pharmacological",
     "--prior-sensitivity"],
    cwd=ROOT, capture_output=True, text=True, check=True).stdout
print(out[out.index("Bayesian"):out.index("Published reviews")])
