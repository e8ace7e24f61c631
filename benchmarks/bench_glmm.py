"""Benchmarks of hatmeta's GLMMs (issue 13) against metafor's rma.glmm, in the same run.

Budgets: UM.FS (GLMM-FS) on 20 studies < 0.2 s, CM.EL (GLMM-EXACT) < 1 s, both >= 10x faster than
rma.glmm on the same data (both timed in process, after loading: fit time only). Robustness: 2,000
simulated sparse datasets (event rates 0.5-5%, 4-10 studies, seeded) all get a GLMM answer.

Usage:
  python benchmarks/bench_glmm.py speed [--repeat 5]
  python benchmarks/bench_glmm.py robust [--n 2000] [--models UM.FS,CM.EL] [--metafor 100]
Needs Rscript with metafor, lme4 and BiasedUrn. Writes nothing to the repo.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def simulate(rng, k, p_lo=0.005, p_hi=0.05, n_lo=30, n_hi=300, or_mu=(0.5, 2.0), tau=0.5):
    """One sparse two-arm dataset: control risk uniform on [p_lo, p_hi], log OR around a uniform
    mean with SD ``tau``, arm sizes uniform on [n_lo, n_hi]."""
    n1 = rng.integers(n_lo, n_hi, k)
    n2 = rng.integers(n_lo, n_hi, k)
    p0 = rng.uniform(p_lo, p_hi)
    lor = math.log(rng.uniform(*or_mu)) + rng.normal(0, tau, k)
    p1 = 1 / (1 + np.exp(-(math.log(p0 / (1 - p0)) + lor)))
    return rng.binomial(n1, p1), n1, rng.binomial(n2, p0), n2


def r_time(a, n1, c, n2, models, repeat):
    """Median seconds of rma.glmm per model on one dataset (fit only), and its estimates."""
    script = f"""
suppressMessages(library(metafor))
a <- c({','.join(map(str, a))}); n1 <- c({','.join(map(str, n1))})
c <- c({','.join(map(str, c))}); n2 <- c({','.join(map(str, n2))})
out <- list()
for (m in c({','.join(repr(m) for m in models)})) {{
  ts <- c(); r <- NULL
  for (i in 1:{repeat}) {{ t0 <- proc.time()[3]
    r <- tryCatch(suppressWarnings(rma.glmm(measure="OR", ai=a, n1i=n1, ci=c, n2i=n2, model=m)), error=function(e) NULL)
    ts <- c(ts, proc.time()[3] - t0) }}
  out[[m]] <- list(seconds=median(ts), theta=if (is.null(r)) NA else unname(coef(r)),
                   tau2=if (is.null(r)) NA else r$tau2)
}}
cat(jsonlite::toJSON(out, auto_unbox=TRUE, digits=NA))
"""
    p = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def speed(repeat):
    from hatmeta.fit.glmm import fit_glmm

    rng = np.random.default_rng(13)
    a, n1, c, n2 = simulate(rng, 20, 0.02, 0.08, 100, 400)
    keep = ~((a == 0) & (c == 0))
    a, n1, c, n2 = a[keep], n1[keep], c[keep], n2[keep]
    print(f"dataset: {keep.sum()} studies, {a.sum()} + {c.sum()} events (seed 13)")
    rows = []
    r = r_time(a.tolist(), n1.tolist(), c.tolist(), n2.tolist(), ["UM.FS", "CM.EL"], repeat)
    for model, budget in (("UM.FS", 0.2), ("CM.EL", 1.0)):
        fit_glmm(model, "OR", a, n1, c, n2)  # warm-up (imports)
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            f = fit_glmm(model, "OR", a, n1, c, n2)
            times.append(time.perf_counter() - t)
        ours = statistics.median(times)
        theirs = r[model]["seconds"]
        rows.append((model, ours, theirs, budget))
        print(f"{model}: hatmeta {ours:.3f} s (theta {f.theta:.6f}, tau2 {f.tau2:.6f}); rma.glmm {theirs:.3f} s "
              f"(theta {r[model]['theta']}, tau2 {r[model]['tau2']}); ratio {theirs / ours:.0f}x; "
              f"budget < {budget} s: {'pass' if ours < budget else 'FAIL'}; >= 10x: "
              f"{'pass' if theirs / ours >= 10 else 'FAIL'}")
    return rows


def robust(n, models, metafor_n):
    from hatmeta.fit.glmm import fit_glmm

    rng = np.random.default_rng(20261130)
    counts = {m: {"finite": 0, "separated": 0, "no events": 0, "failed": 0, "seconds": 0.0} for m in models}
    sample = []
    for _i in range(n):
        k = int(rng.integers(4, 11))
        a, n1, c, n2 = simulate(rng, k)
        keep = ~((a == 0) & (c == 0))
        if len(sample) < metafor_n:
            sample.append((a, n1, c, n2))
        for m in models:
            if not keep.any():
                counts[m]["no events"] += 1  # hatmeta stops with a one-line input error: nothing to estimate
                continue
            t = time.perf_counter()
            try:
                f = fit_glmm(m, "OR", a[keep], n1[keep], c[keep], n2[keep])
            except Exception as e:  # noqa: BLE001 - counted, not hidden
                counts[m]["failed"] += 1
                print("failed", m, a, n1, c, n2, repr(e))
                continue
            finally:
                counts[m]["seconds"] += time.perf_counter() - t
            if math.isfinite(f.theta) and math.isfinite(f.se):
                counts[m]["finite"] += 1
            elif f.separation and math.isfinite(f.ci_bound):
                counts[m]["separated"] += 1
            else:
                counts[m]["failed"] += 1
                print("no answer", m, a, n1, c, n2, f)
    for m, c in counts.items():
        print(f"{m}: {n} datasets: {c['finite']} finite estimates, {c['separated']} infinite estimates with a finite "
              f"profile-likelihood bound, {c['no events']} without any event, {c['failed']} failed; "
              f"{c['seconds']:.1f} s in all")
    if metafor_n:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sample.json"
            path.write_text(json.dumps([[x.tolist() for x in s] for s in sample]))
            script = f"""
suppressMessages(library(metafor))
S <- jsonlite::fromJSON("{path}", simplifyVector=FALSE)
for (m in c({','.join(repr(m) for m in models)})) {{
  ok <- 0; fail <- 0; warn <- 0; none <- 0
  for (s in S) {{
    a <- unlist(s[[1]]); n1 <- unlist(s[[2]]); c <- unlist(s[[3]]); n2 <- unlist(s[[4]])
    if (sum(a + c) == 0) {{ none <- none + 1; next }}
    w <- FALSE
    r <- tryCatch(withCallingHandlers(rma.glmm(measure="OR", ai=a, n1i=n1, ci=c, n2i=n2, model=m),
                   warning=function(x) {{ w <<- TRUE; invokeRestart("muffleWarning") }}), error=function(e) NULL)
    if (is.null(r)) fail <- fail + 1 else {{ ok <- ok + 1; if (w) warn <- warn + 1 }}
  }}
  cat(m, ": rma.glmm on the first", length(S), "datasets:", ok, "fitted (", warn, "with warnings ),", fail, "errors,",
      none, "without events\\n")
}}
"""
            p = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
            print(p.stdout.strip() or p.stderr[-2000:])
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["speed", "robust"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--models", default="UM.FS,CM.EL")
    ap.add_argument("--metafor", type=int, default=0, help="also run rma.glmm on the first N robustness datasets")
    args = ap.parse_args()
    if args.what == "speed":
        speed(args.repeat)
    else:
        robust(args.n, args.models.split(","), args.metafor)


if __name__ == "__main__":
    main()
