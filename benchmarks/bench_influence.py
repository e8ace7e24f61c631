"""Influence diagnostics for 100 studies: hatmeta against R's metafor, in the same run.

Budget (issue 13): hatmeta's influence diagnostics (rstudent, DFFITS, Cook's distance, hat values,
covariance ratios, leave-one-out tau^2 and Q, REML) for 100 studies in under 0.1 s; metafor's
influence() on the same data is timed in the same run for the ratio. Both are timed inside their
own process (no start-up), median of --repeat runs after a warm-up; the numbers are also compared.

Usage:  python benchmarks/bench_influence.py [--k 100] [--repeat 20]
Needs Rscript with metafor. Writes nothing to the repository.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    from hatmeta.methods.influence import FIELDS, influence_arrays

    rng = np.random.default_rng(13)
    v = rng.uniform(0.01, 0.5, args.k)
    y = rng.normal(0.2, np.sqrt(v + 0.05))
    influence_arrays(y, v, [args.k])  # warm-up (imports, caches)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        a = influence_arrays(y, v, [args.k])
        times.append(time.perf_counter() - t)
    t_h = statistics.median(times)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "d.csv"
        data.write_text("yi,vi\n" + "".join(f"{a_!r},{b!r}\n" for a_, b in zip(y.tolist(), v.tolist())))
        script = Path(tmp) / "inf.R"
        script.write_text(
            "suppressMessages(library(metafor))\n"
            f"d <- read.csv('{data}')\n"
            "res <- rma(yi, vi, data=d, method='REML', control=list(threshold=1e-12, maxiter=1000))\n"
            "invisible(influence(res))\n"
            f"t <- replicate({max(3, args.repeat // 4)}, system.time(inf <<- influence(res))[['elapsed']])\n"
            "x <- inf$inf\n"
            "cat(jsonlite::toJSON(list(t=median(t), rstudent=x$rstudent, cooks_distance=x$cook.d,"
            " tau2_deleted=x$tau2.del, q_deleted=x$QE.del, hat=x$hat, dffits=x$dffits, cov_ratio=x$cov.r),"
            " digits=NA))\n")
        proc = subprocess.run(["Rscript", str(script)], capture_output=True, text=True)
        if proc.returncode:
            sys.exit("Rscript failed: " + proc.stderr[-2000:])
        out = json.loads(proc.stdout)
    t_r = out["t"][0] if isinstance(out["t"], list) else out["t"]
    worst = max(float(np.max(np.abs(a[f] - np.asarray(out[f])) / np.maximum(np.abs(out[f]), 1e-8)))
                for f in FIELDS)
    print(json.dumps({"benchmark": f"influence diagnostics, {args.k} studies, REML",
                      "hatmeta_s": round(t_h, 5), "metafor_s": round(t_r, 4), "speed_up": round(t_r / t_h, 1),
                      "max_rel_diff_vs_metafor": worst, "budget": "hatmeta < 0.1 s", "pass": t_h < 0.1},
                     indent=2))


if __name__ == "__main__":
    main()
