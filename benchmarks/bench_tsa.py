"""Benchmark of `hatmeta tsa` against R's RTSA, in the same run on the same machine.

Budgets (issue 14), reported as ratios because these machines are noisy:
  tsa   a TSA with boundaries for 20 trials, end to end (start-up included): well under 1 s;
        against Rscript + RTSA on the same 20 trials (RTSA(type = "analysis"), the same settings)
  plan  the next-trial simulation, 10,000 draws x 20 trial sizes: under 5 s (in process and
        end to end); RTSA has no such simulation, so no peer ratio

Usage:  RTSA_LIB=/tmp/Rlib python benchmarks/bench_tsa.py [--repeat N]
Needs Rscript with RTSA (built from the cran/RTSA source into RTSA_LIB; see
tests/fixtures/tsa/generate.R). Writes nothing to the repo.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HATMETA = [sys.executable, "-m", "hatmeta.cli"]


def wall(cmd, repeat=5, **kw):
    """Median wall time and median CPU time (user + system) of a command over ``repeat`` runs (after
    one warm-up run). CPU time is reported too because wall time on this shared machine swings with
    the other jobs' disk and CPU use."""
    import resource

    subprocess.run(cmd, check=True, capture_output=True, **kw)
    times, cpu = [], []
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, **kw)
        times.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return statistics.median(times), statistics.median(cpu)


def trials_csv(tmp: Path, k=20, seed=2) -> Path:
    """k seeded two-arm trials (control risk 0.15, true RR 0.85, some heterogeneity)."""
    rng = np.random.default_rng(seed)
    path = tmp / "trials.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["study", "year", "events_treat", "n_treat", "events_ctrl", "n_ctrl"])
        for i in range(k):
            n = int(rng.integers(80, 600))
            rr = np.exp(np.log(0.85) + 0.15 * rng.standard_normal())
            w.writerow([f"t{i + 1:02d}", 2000 + i, rng.binomial(n, 0.15 * rr), n, rng.binomial(n, 0.15), n])
    return path


R_SCRIPT = """
suppressMessages(library(RTSA, lib.loc = Sys.getenv("RTSA_LIB", unset = .libPaths()[1])))
d <- read.csv("{path}")
d <- data.frame(study = d$study, eI = d$events_treat, nI = d$n_treat, eC = d$events_ctrl, nC = d$n_ctrl)
x <- suppressWarnings(RTSA(type = "analysis", data = d, outcome = "RR", mc = 0.8, side = 2, alpha = 0.05,
          beta = 0.2, es_alpha = "esOF", weights = "IV", re_method = "DL", random_adj = "D2",
          tau_ci_method = "QP"))
cat(x$results$HARIS, x$bounds$root, "\\n")
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = trials_csv(tmp)
        rfile = tmp / "rtsa.R"
        rfile.write_text(R_SCRIPT.format(path=path))
        env = dict(os.environ)
        ours = HATMETA + ["tsa", "--data", str(path), "--measure", "RR", "--rrr", "0.2", "--format", "json"]
        r = subprocess.run(["Rscript", str(rfile)], capture_output=True, text=True, env=env)
        if r.returncode:
            sys.exit("RTSA failed: " + r.stderr[-500:])
        o = subprocess.run(ours, capture_output=True, text=True, check=True)
        import json

        res = json.loads(o.stdout)["tsa"]
        ris_r, root_r = r.stdout.split()
        print(f"20 trials: RIS hatmeta {res['required_information_size']} / RTSA {ris_r}; "
              f"root {res['inflation_factor']:.6f} / {float(root_r):.6f}")
        (t_ours, c_ours) = wall(ours, args.repeat)
        (t_r, c_r) = wall(["Rscript", str(rfile)], args.repeat, env=env)
        print(f"tsa end to end (20 trials): wall hatmeta {t_ours:.3f} s, Rscript + RTSA {t_r:.3f} s, "
              f"ratio {t_ours / t_r:.3f}; CPU hatmeta {c_ours:.3f} s, RTSA {c_r:.3f} s, ratio {c_ours / c_r:.3f}")

        # in process, without interpreter start-up and imports
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from hatmeta.io.trial_table import read_table
        from hatmeta.methods.tsa import tsa_table
        from hatmeta.methods.tsa_plan import DEFAULT_SIZES, plan_next_trial

        table = read_table(path, measure="RR")
        tsa_table(table, "RR", rrr=0.2)
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            res = tsa_table(table, "RR", rrr=0.2)
            times.append(time.perf_counter() - t)
        print(f"tsa in process (20 trials): {statistics.median(times) * 1000:.1f} ms")
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            plan_next_trial(table, "RR", res, draws=10000, sizes=DEFAULT_SIZES, seed=1)
            times.append(time.perf_counter() - t)
        print(f"plan-next in process (10,000 draws x {len(DEFAULT_SIZES)} sizes): {statistics.median(times):.3f} s")
        t_plan, c_plan = wall(ours + ["--plan-next"], args.repeat)
        print(f"plan-next end to end (CLI, 10,000 draws x 20 sizes): wall {t_plan:.3f} s, CPU {c_plan:.3f} s")


if __name__ == "__main__":
    main()
