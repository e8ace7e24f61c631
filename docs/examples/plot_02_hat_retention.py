"""
Heroin-assisted treatment: retention in treatment
=================================================

The review's primary comparison: supervised injected heroin (diacetylmorphine, with
flexible-dose oral methadone) against oral methadone, retention in treatment at each trial's end
point (``analyses/retention.toml``; Cochrane CD003410.pub4, comparison 1). Every trial in
``data/extracted/`` is checked against the spec's eligibility rules; the ones that fail are
named with the rule, and the published Cochrane estimates are printed beside ours.

This is what ``hatmeta pool retention`` and ``hatmeta forest retention`` print and draw.
"""

# %%
# Run the command line
# --------------------
# ``run`` calls the ``hatmeta`` command of this tree in a subprocess, from the repository root.
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt

# The repository: the nearest folder above the working directory holding the hatmeta package
# (sphinx-gallery runs each example from docs/examples/).
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "hatmeta" / "__init__.py").is_file())


def run(*args: str) -> str:
    """Run ``hatmeta ARGS`` and return its standard output (its standard error is printed)."""
    done = subprocess.run([sys.executable, "-m", "hatmeta.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    if done.stderr:
        print(done.stderr, file=sys.stderr)
    return done.stdout


print(run("pool", "retention"))

# %%
# Who entered and who did not
# ---------------------------
# The JSON carries each omitted trial with the criterion it fails, the risk-of-bias judgements of
# the trials that entered, and the published pooled results for the outcome.
res = json.loads(run("pool", "retention", "--format", "json"))
for study in res["studies"]:
    print(f"entered  {study['label']:30s} {study['events_treat']}/{study['n_treat']} vs "
          f"{study['events_ctrl']}/{study['n_ctrl']}")
for gone in res["omitted"]:
    print(f"omitted  {gone['trial']:30s} {gone['criterion']}")
for pub in res["published"]:
    print(f"published: {pub['label']}: RR {pub['estimate']} ({pub['ci_low']} to {pub['ci_high']}), "
          f"{pub['participants']} participants")

# %%
# The forest plot
# ---------------
# RevMan's layout with the risk-of-bias traffic lights from ``data/extracted/risk_of_bias.csv``
# (the committed ``reports/figures/retention-forest.png`` is the same drawing).
with tempfile.TemporaryDirectory() as tmp:
    png = Path(tmp) / "forest-retention.png"
    run("forest", "retention", "--out", str(png))
    image = mpimg.imread(png)
height, width = image.shape[:2]
fig = plt.figure(figsize=(9, 9 * height / width))
ax = fig.add_axes((0, 0, 1, 1))
ax.imshow(image)
ax.set_axis_off()

# %%
# How the estimate depends on each trial
# --------------------------------------
# With three trials, leave-one-out is the first sensitivity analysis a reader asks for; the
# prediction interval on t with k - 2 = 1 df is honest about how little three trials say about
# the next setting.
print(run("pool", "retention", "--leave-one-out"))
