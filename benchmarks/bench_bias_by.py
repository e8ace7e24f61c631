"""Trim-and-fill under --by (a simulation study's many replicates): hatmeta against metafor's
trimfill() in an R loop, in the same run.

Data: G groups of 10 studies (seed 20261130), sampling SEs uniform 0.05-0.5, tau^2 = 0.02, half the
non-significant studies suppressed (so that trim-and-fill has something to fill). Timed:
  * hatmeta, in process: ``api.robustness_by(..., trim_fill=True)`` on the table already read
    (the vectorised trim-and-fill of every group), median of --repeat runs after a warm-up;
  * hatmeta, the whole command: ``hatmeta pool --data F --measure GEN --by group --trim-fill
    --format json > /dev/null`` (start-up, reading, pooling, trim-and-fill, JSON lines), wall clock;
  * metafor: ``for (g in groups) trimfill(rma(yi, vi, method = "REML"))`` in one Rscript, the loop
    only (``system.time``; reading and splitting not counted), with control threshold 1e-12 so both
    solve tau^2 to the same precision.
The per-group k0 and adjusted estimates are compared too.

With ``--selection-model`` the step-function selection model (steps 0.025, alternative "less",
hatmeta's ``--benefit lower``) is timed instead: hatmeta fits it group by group
(``publication_bias.selection_model``), metafor's ``selmodel(rma(yi, vi, method = "ML"), type =
"stepfun", steps = 0.025, alternative = "less")`` in the R loop (its default optimiser controls).

Usage:  python benchmarks/bench_bias_by.py [--groups 1000,10000] [--repeat 3] [--estimator L0]
        python benchmarks/bench_bias_by.py --selection-model --groups 100 --repeat 1
Needs Rscript with metafor. Writes nothing to the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def simulate(G, k=10, seed=20261130):
    rng = np.random.default_rng(seed)
    n = G * k * 4  # candidates; about half are kept
    se = rng.uniform(0.05, 0.5, n)
    y = rng.normal(0.2, np.sqrt(se**2 + 0.02))
    keep = (np.abs(y / se) > 1.96) | (rng.uniform(size=n) < 0.5)
    y, v = y[keep][: G * k], (se**2)[keep][: G * k]
    assert len(y) == G * k
    return y, v


def write_csv(path, y, v, k):
    G = len(y) // k
    with open(path, "w") as f:
        f.write("study,yi,vi,group\n")
        for i, (a, b) in enumerate(zip(y.tolist(), v.tolist())):
            f.write(f"s{i % k + 1},{a!r},{b!r},r{i // k:06d}\n")
    return G


R_SCRIPT = r"""
suppressMessages(library(metafor))
d <- read.csv(commandArgs(TRUE)[1])
est <- commandArgs(TRUE)[2]
parts <- split(d, factor(d$group, levels = unique(d$group)))
ctl <- list(threshold = 1e-12, maxiter = 1000)
k0 <- integer(length(parts)); b <- numeric(length(parts))
t <- system.time(for (i in seq_along(parts)) {
  p <- parts[[i]]
  tf <- tryCatch(trimfill(rma(p$yi, p$vi, method = "REML", control = ctl), estimator = est, control = ctl),
                 error = function(e) NULL)
  if (is.null(tf)) { k0[i] <- NA; b[i] <- NA } else { k0[i] <- tf$k0; b[i] <- c(tf$beta) }
})[["elapsed"]]
cat(jsonlite::toJSON(list(t = t, k0 = k0, estimate = b), digits = NA, na = "null"))
"""

R_SELECTION = r"""
suppressMessages(library(metafor))
d <- read.csv(commandArgs(TRUE)[1])
parts <- split(d, factor(d$group, levels = unique(d$group)))
ctl <- list(threshold = 1e-12, maxiter = 1000)
b <- numeric(length(parts))
t <- system.time(for (i in seq_along(parts)) {
  p <- parts[[i]]
  s <- tryCatch(selmodel(rma(p$yi, p$vi, method = "ML", control = ctl), type = "stepfun", steps = 0.025,
                         alternative = "less"), error = function(e) NULL)
  b[i] <- if (is.null(s)) NA else c(s$beta)
})[["elapsed"]]
cat(jsonlite::toJSON(list(t = t, k0 = rep(0L, length(parts)), estimate = b), digits = NA, na = "null"))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", default="1000,10000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--estimator", default="L0", choices=["L0", "R0"])
    ap.add_argument("--selection-model", action="store_true", help="time the selection model instead")
    ap.add_argument("--hatmeta", default=str(Path(sys.executable).parent / "hatmeta"),
                    help="the hatmeta command to time (default: the one beside this Python)")
    args = ap.parse_args()
    from hatmeta.api import robustness_by
    from hatmeta.io.trial_table import read_table

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "tf.R"
        script.write_text(R_SELECTION if args.selection_model else R_SCRIPT)
        key = "selection_model" if args.selection_model else "trim_fill"
        option = ["--selection-model", "step"] if args.selection_model else [
            "--trim-fill", "--trim-fill-estimator", args.estimator]
        opts = dict(selection_model="step") if args.selection_model else dict(
            trim_fill=True, trim_fill_estimator=args.estimator)
        for G in (int(x) for x in args.groups.split(",")):
            y, v = simulate(G)
            data = Path(tmp) / f"g{G}.csv"
            write_csv(data, y, v, 10)
            table = read_table(data, measure="GEN")
            run = lambda table=table: robustness_by(table, "group", "GEN", **opts)  # noqa: E731
            got = run()  # warm-up
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                got = run()
                times.append(time.perf_counter() - t)
            t_in = statistics.median(times)
            cmd = [args.hatmeta, "pool", "--data", str(data), "--measure", "GEN", "--by", "group", *option,
                   "--format", "json"]
            walls = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                with open(os.devnull, "wb") as sink:
                    subprocess.run(cmd, stdout=sink, check=True)
                walls.append(time.perf_counter() - t)
            t_cmd = statistics.median(walls)
            proc = subprocess.run(["Rscript", str(script), str(data), args.estimator], capture_output=True, text=True)
            if proc.returncode:
                sys.exit("Rscript failed: " + proc.stderr[-2000:])
            r = json.loads(proc.stdout)
            t_r = r["t"][0] if isinstance(r["t"], list) else r["t"]
            ours_k0 = [d[key].get("k0", 0) for d in got]
            ours_est = np.array([np.nan if d[key]["estimate"] is None else d[key]["estimate"] for d in got])
            theirs_est = np.array([np.nan if x is None else x for x in r["estimate"]], float)
            both = np.isfinite(ours_est) & np.isfinite(theirs_est)
            rows.append({
                "groups": G, "studies": G * 10, "method": key,
                "estimator": None if args.selection_model else args.estimator,
                "hatmeta_in_process_s": round(t_in, 3), "hatmeta_command_s": round(t_cmd, 3),
                "metafor_loop_s": round(t_r, 2),
                "ratio_vs_in_process": round(t_r / t_in, 1), "ratio_vs_command": round(t_r / t_cmd, 1),
                "k0_agree": int(sum(a == b for a, b in zip(ours_k0, r["k0"]))),
                "answered_hatmeta": int(np.isfinite(ours_est).sum()),
                "answered_metafor": int(np.isfinite(theirs_est).sum()),
                "max_abs_diff_estimate": float(np.max(np.abs(ours_est[both] - theirs_est[both]))),
                # REML's likelihood can have two maxima: metafor's Fisher scoring may stop at the lower one
                # (hatmeta takes the highest; see fit/core.py), which moves the refitted estimate.
                "groups_differing_over_1e-6": int(np.sum(np.abs(ours_est[both] - theirs_est[both]) > 1e-6)),
                "max_abs_diff_other_groups": float(np.max(np.where(
                    np.abs(ours_est[both] - theirs_est[both]) > 1e-6, 0, np.abs(ours_est[both] - theirs_est[both])))),
            })
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
