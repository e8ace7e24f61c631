"""`hatmeta pool --bayes --engine pymc` end to end (issue 4 budgets: normal-normal <= 15 s,
binomial-normal <= 30 s on this 2-core machine, clean diagnostics).

Each is run with a cold PyTensor compile cache (a fresh compiledir: what a first run costs) and a
warm one (the cache PyTensor keeps between runs). The normal-normal model runs in both
parameterisations: the default (study effects integrated out) and the non-centred form, which is
what a plain PyMC model of the same data costs. Usage: python benchmarks/bench_pymc.py
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BCG = ["--data", str(ROOT / "tests/fixtures/bayesmeta/bcg.csv"), "--measure", "GEN",
       "--tau-prior", "halfnormal:0.5", "--mu-prior-sd", "4"]
RUNS = {
    "normal-normal (BCG, 13 studies)": BCG,
    "normal-normal, non-centred (BCG, 13 studies)": [*BCG, "--parameterisation", "noncentred"],
    "binomial-normal (Nielweise 2007, 18 studies, zero cells)": [
        "--data", str(ROOT / "tests/fixtures/data/nielweise2007.csv"), "--measure", "OR", "--likelihood", "binomial"],
}
BUDGET = {"normal-normal (BCG, 13 studies)": 15, "binomial-normal (Nielweise 2007, 18 studies, zero cells)": 30}
# The non-centred run has no budget of its own: it is the reference the default is compared with.


def run(args, env):
    cmd = [sys.executable, "-m", "hatmeta.cli", "pool", *args, "--bayes", "--engine", "pymc", "--format", "json"]
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return time.perf_counter() - t, json.loads(out)["bayes"]["diagnostics"]


def main():
    results = []
    for name, args in RUNS.items():
        with tempfile.TemporaryDirectory() as cache:
            # base_compiledir holds both PyTensor's C modules and its Numba cache.
            cold_env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={cache}"}
            t_cold, diag = run(args, cold_env)
            t_warm, diag = run(args, cold_env)
        budget = BUDGET.get(name)
        results.append({"model": name, "cold_cache_s": round(t_cold, 2), "warm_cache_s": round(t_warm, 2),
                        "diagnostics": diag, "budget_s": budget,
                        "pass_warm": None if budget is None else t_warm <= budget})
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
