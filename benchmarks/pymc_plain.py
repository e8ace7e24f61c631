"""The peer for bench_pymc.py: the normal-normal model of a CSV (study, yi, vi) as a PyMC user
would write it, non-centred, with pm.sample's defaults (C backend, 1,000 tuning + 1,000 draws per
chain, target_accept 0.8) and az.summary. Prints the largest R-hat, smallest bulk ESS and the
number of divergences as JSON. Usage: python benchmarks/pymc_plain.py FILE.csv
"""

import csv
import json
import sys

import arviz as az
import numpy as np
import pymc as pm


def main(path):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    y = np.array([float(r["yi"]) for r in rows])
    se = np.sqrt([float(r["vi"]) for r in rows])
    with pm.Model():
        mu = pm.Normal("mu", 0.0, 4.0)
        tau = pm.HalfNormal("tau", 0.5)
        z = pm.Normal("z", 0.0, 1.0, shape=len(y))
        pm.Normal("y", mu + tau * z, se, observed=y)
        idata = pm.sample(random_seed=1, progressbar=False)
    summary = az.summary(idata, var_names=["mu", "tau"])
    print(json.dumps({"r_hat_max": float(summary["r_hat"].max()), "ess_bulk_min": float(summary["ess_bulk"].min()),
                      "divergences": int(idata.sample_stats["diverging"].sum())}))


if __name__ == "__main__":
    main(sys.argv[1])
