"""
Trial sequential analysis: is the evidence firm yet?
====================================================

A cumulative meta-analysis tested after every trial spends its type I error many times. Trial
sequential analysis (Wetterslev, Thorlund et al.) sets a required information size (RIS, in
participants, adjusted for heterogeneity by diversity D²) and Lan-DeMets monitoring boundaries,
and asks whether the cumulative z-curve has crossed them.

First RTSA's own example (perioperative oxygen and surgical site infection, ``perioOxy``, in R's
RTSA 0.2.2), with RTSA's numbers from ``tests/fixtures/tsa/rtsa.json`` beside ours; then the
review's retention analysis from the command line.
"""

# %%
# RTSA's example, in Python
# -------------------------
# 15 trials, an anticipated risk ratio of 0.8 (a 20% relative risk reduction), two-sided alpha 5%,
# power 80%, O'Brien-Fleming spending, the control risk RTSA used.
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt

from hatmeta import read_table
from hatmeta.methods.tsa import tsa_table
from hatmeta.render.plots.tsa import tsa_plot

# The repository: the nearest folder above the working directory holding the hatmeta package
# (sphinx-gallery runs each example from docs/examples/).
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "hatmeta" / "__init__.py").is_file())
cases = json.loads((ROOT / "tests" / "fixtures" / "tsa" / "rtsa.json").read_text())
case = next(c for c in cases if c["name"] == "perioOxy")
table = {"study": [r["study"] for r in case["data"]],
         "events_treat": [r["eI"] for r in case["data"]], "n_treat": [r["nI"] for r in case["data"]],
         "events_ctrl": [r["eC"] for r in case["data"]], "n_ctrl": [r["nC"] for r in case["data"]]}
res = tsa_table(read_table(table, measure="RR"), "RR", benefit="lower", rrr=0.2, control_risk=case["pC"], alpha=0.05, power=0.8,
                sides=2, spending="obf")
print(res.summary())

# %%
# Beside RTSA 0.2.2
# -----------------
rows = [("diversity D^2", res.diversity, case["diversity"]),
        ("RIS without heterogeneity", res.required_information_size_fixed, case["ris_fixed"]),
        ("RIS, heterogeneity-adjusted", res.required_information_size, case["ris"]),
        ("inflation factor R", res.inflation_factor, case["root"]),
        ("RIS for the sequential design", res.required_information_size_inflated, case["ris_inflated"]),
        ("z after the last trial", res.trials[-1].z, case["z_random"][-1])]
print(f"{'':32s} {'hatmeta':>14s} {'RTSA 0.2.2':>14s}")
for name, ours, theirs in rows:
    print(f"{name:32s} {ours:14.7g} {theirs:14.7g}")
    assert abs(ours - theirs) <= 1e-7 * abs(theirs), name  # the page fails to build on a drift

# %%
# The z-curve and its boundaries
# ------------------------------
fig = tsa_plot(res, title="Perioperative oxygen (RTSA's perioOxy)")

# %%
# The HAT retention analysis
# --------------------------
# ``hatmeta tsa retention`` takes its settings from the spec's ``[tsa]`` table: a 20% relative
# increase in retention, the pooled control-arm retention, D² from the DL model.
def run(*args: str) -> str:
    """Run ``hatmeta ARGS`` from the repository root and return its standard output."""
    return subprocess.run([sys.executable, "-m", "hatmeta.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


print(run("tsa", "retention").split("\nNote:")[0])

# %%
# The figure the report carries (``reports/figures/retention-tsa.png`` is the same drawing).
with tempfile.TemporaryDirectory() as tmp:
    png = Path(tmp) / "tsa-retention.png"
    run("tsa", "retention", "--plot", str(png))
    image = mpimg.imread(png)
height, width = image.shape[:2]
fig = plt.figure(figsize=(8, 8 * height / width))
ax = fig.add_axes((0, 0, 1, 1))
ax.imshow(image)
ax.set_axis_off()
