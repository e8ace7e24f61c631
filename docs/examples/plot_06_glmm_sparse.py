"""
Rare events: GLMMs on sparse data
=================================

Catheter-related bloodstream infections in 18 trials of anti-infective-treated central venous
catheters (Niël-Weise et al. 2007; ``dat.nielweise2007`` in R's metadat, the example of Stijnen,
Hamza & Özdemir 2010): event rates of 1 to 4%, five studies with a zero cell and one with no
events at all. Inverse-variance pooling needs a 0.5 increment there, which pulls the odds ratio
towards 1 (Sweeting et al. 2004). The binomial-normal GLMMs of metafor's ``rma.glmm`` model the
counts as given.

hatmeta's GLMMs are checked against the exact maximum-likelihood answer, computed independently
in R with ``integrate()`` (``tests/fixtures/glmm/generate.R``), and against ``rma.glmm``.
"""

# %%
# The sparse-data advisor and the methods side by side
# ----------------------------------------------------
# ``compare_methods=True`` (``--compare-methods``) pools with IV (with the increment), MH, Peto and
# the three GLMMs; the advice says which suit these data, and why.
import json
from pathlib import Path

import hatmeta
from hatmeta.api import pool_table
from hatmeta.render.plots.methods import methods_plot

# The repository: the nearest folder above the working directory holding the hatmeta package
# (sphinx-gallery runs each example from docs/examples/).
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "hatmeta" / "__init__.py").is_file())
table = hatmeta.read_table(ROOT / "tests" / "fixtures" / "data" / "nielweise2007.csv")
res = pool_table(table, "OR", method="GLMM-EXACT", compare_methods=True)
print(res.summary())

# %%
# Beside the exact likelihood and metafor
# ---------------------------------------
# For each model: the log odds ratio, its SE and tau². hatmeta agrees with the exact maximum of
# the likelihood to 1e-5 relative; rma.glmm's numerical integration lands slightly off it for the
# unconditional models (for UM.RS its log-likelihood, -74.858, is below the exact maximum's,
# -74.833: where answers differ, the higher likelihood wins).
ref = json.loads((ROOT / "tests" / "fixtures" / "glmm" / "nielweise2007.json").read_text())
print(f"{'model':7s} {'':9s} {'hatmeta':>11s} {'exact (R)':>11s} {'rma.glmm':>11s}")
for model, method in (("UM.FS", "GLMM-FS"), ("UM.RS", "GLMM-RS"), ("CM.EL", "GLMM-EXACT")):
    fit = res if method == "GLMM-EXACT" else pool_table(table, "OR", method=method)
    for name, ours in (("log OR", fit.estimate), ("se", fit.se), ("tau^2", fit.tau2)):
        key = {"log OR": "theta"}.get(name, name.replace("^", ""))
        exact, metafor = ref["exact"][model][key], ref["metafor"][model][key]
        print(f"{model:7s} {name:9s} {ours:11.6f} {exact:11.6f} {metafor:11.6f}")
        assert abs(ours - exact) <= 1e-5 * abs(exact), (model, name)  # the page fails on a drift

# %%
# The methods as a forest-style figure
# ------------------------------------
# What ``--methods-plot FILE`` draws.
fig = methods_plot(res, title="Catheter infections (Niël-Weise 2007): odds ratio by method")
