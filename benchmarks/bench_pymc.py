"""`hatmeta pool --bayes --engine pymc` end to end (issue 4 budgets: normal-normal <= 15 s,
binomial-normal <= 30 s on this 2-core machine, clean diagnostics).

Each is run with a cold PyTensor compile cache (a fresh compiledir: what a first run costs) and a
warm one (the cache PyTensor keeps between runs). The normal-normal model runs in both
parameterisations (the default, study effects integrated out, and --parameterisation noncentred)
and, as the peer, as a plain PyMC program with pm.sample's defaults (benchmarks/pymc_plain.py).
Usage: python benchmarks/bench_pymc.py
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BCG_CSV = str(ROOT / "tests/fixtures/bayesmeta/bcg.csv")
BCG = ["--data", BCG_CSV, "--measure", "GEN", "--tau-prior", "halfnormal:0.5", "--mu-prior-sd", "4"]
HATMETA = [sys.executable, "-m", "hatmeta.cli", "pool"]
PYMC_OPTIONS = ["--bayes", "--engine", "pymc", "--format", "json"]
# name: (command, budget in seconds or None)
RUNS = {
    "normal-normal (BCG, 13 studies)": ([*HATMETA, *BCG, *PYMC_OPTIONS], 15),
    "normal-normal, non-centred (BCG, 13 studies)": (
        [*HATMETA, *BCG, *PYMC_OPTIONS, "--parameterisation", "noncentred"], None),
    "peer: plain PyMC, non-centred, defaults (BCG, 13 studies)": (
        [sys.executable, str(ROOT / "benchmarks/pymc_plain.py"), BCG_CSV], None),
    "binomial-normal (Nielweise 2007, 18 studies, zero cells)": (
        [*HATMETA, "--data", str(ROOT / "tests/fixtures/data/nielweise2007.csv"), "--measure", "OR",
         "--likelihood", "binomial", *PYMC_OPTIONS], 30),
}
PEER, DEFAULT = "peer: plain PyMC, non-centred, defaults (BCG, 13 studies)", "normal-normal (BCG, 13 studies)"


def run(cmd, env):
    t = time.perf_counter()
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout)
    return time.perf_counter() - t, out["bayes"]["diagnostics"] if "bayes" in out else out


def main():
    results = {}
    for name, (cmd, budget) in RUNS.items():
        with tempfile.TemporaryDirectory() as cache:
            # base_compiledir holds both PyTensor's C modules and its Numba cache.
            env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={cache}"}
            t_cold, diag = run(cmd, env)
            t_warm, diag = run(cmd, env)
        results[name] = {"cold_cache_s": round(t_cold, 2), "warm_cache_s": round(t_warm, 2), "diagnostics": diag,
                         "ess_bulk_per_s_warm": round(diag["ess_bulk_min"] / t_warm, 1),
                         "budget_s": budget, "pass_warm": None if budget is None else t_warm <= budget}
    results["ratio to the peer (default normal-normal / plain PyMC)"] = {
        key: round(results[DEFAULT][key] / results[PEER][key], 2)
        for key in ("cold_cache_s", "warm_cache_s", "ess_bulk_per_s_warm")}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
