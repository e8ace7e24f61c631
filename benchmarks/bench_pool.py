"""Benchmarks of `hatmeta pool` against R's metafor, in the same run on the same machine.

Budgets (issue 2), reported as ratios because these machines are noisy:
  end-to-end  hatmeta pool on a CSV, start-up included: <= 0.5 x the wall time of Rscript + metafor
  by          --by throughput per meta-analysis (REML + HKSJ): >= 100 x metafor's, every group answered
  large       500,000 studies with REML: <= 6 s and <= 1.5 GB; metafor at 100,000 studies for contrast

Usage:  python benchmarks/bench_pool.py [end-to-end|by|large|all] [--repeat N]
Needs Rscript with metafor (apt-get install r-base-core r-cran-metafor). Writes nothing to the repo.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HATMETA = [sys.executable, "-m", "hatmeta.cli"]


def wall(cmd, repeat=5, **kw):
    """Median wall time of a command over ``repeat`` runs (after one warm-up run)."""
    subprocess.run(cmd, check=True, capture_output=True, **kw)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, **kw)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_rss_mb(cmd):
    """Wall time and peak resident memory (MB) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(after, before) / 1024, p


def bcg_csv(tmp: Path) -> Path:
    path = tmp / "bcg.csv"
    r = ("library(metafor); d <- dat.bcg; write.csv(data.frame(study=paste(d$author, d$year), "
         "events_treat=d$tpos, n_treat=d$tpos+d$tneg, events_ctrl=d$cpos, n_ctrl=d$cpos+d$cneg), "
         f"'{path}', row.names=FALSE)")
    subprocess.run(["Rscript", "-e", r], check=True, capture_output=True)
    return path


def end_to_end(tmp: Path, repeat: int) -> dict:
    data = bcg_csv(tmp)
    r_script = tmp / "pool.R"
    r_script.write_text(
        "suppressMessages(library(metafor))\n"
        f"d <- read.csv('{data}')\n"
        "es <- escalc('RR', ai=events_treat, n1i=n_treat, ci=events_ctrl, n2i=n_ctrl, data=d)\n"
        "res <- rma(yi, vi, data=es, method='REML')\n"
        "print(res); print(confint(res)); print(predict(res))\n")
    t_r = wall(["Rscript", str(r_script)], repeat)
    t_h = wall([*HATMETA, "pool", "--data", str(data), "--measure", "RR", "--method", "REML"], repeat)
    return {"benchmark": "end-to-end (13 studies, REML, CI, Q-profile, PI)", "hatmeta_s": t_h,
            "metafor_s": t_r, "ratio": t_h / t_r, "budget": "ratio <= 0.5", "pass": t_h / t_r <= 0.5}


def simulated_groups(path: Path, groups: int, k: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.5, groups * k)
    y = rng.normal(0.2, np.sqrt(v + 0.05))
    with open(path, "w") as fh:
        fh.write("group,study,yi,vi\n")
        fh.writelines(f"g{i // k},s{i},{float(y[i])!r},{float(v[i])!r}\n" for i in range(groups * k))


def by(tmp: Path, repeat: int, groups=20000, r_groups=1000, k=6) -> dict:
    data = tmp / "by.csv"
    simulated_groups(data, groups, k)
    cmd = [*HATMETA, "pool", "--data", str(data), "--measure", "GEN", "--by", "group", "--method", "REML",
           "--ci", "hksj", "--format", "json"]
    t_h = wall(cmd, max(1, repeat // 2))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
    answered = sum(1 for line in out if json.loads(line)["estimate"] is not None)
    # metafor: one rma() per group, timed inside R so R's start-up is not charged to it.
    r_data = tmp / "by_r.csv"
    simulated_groups(r_data, r_groups, k)
    r_script = tmp / "by.R"
    r_script.write_text(
        "suppressMessages(library(metafor))\n"
        f"d <- read.csv('{r_data}'); groups <- split(d, d$group)\n"
        "ok <- 0; t <- system.time(for (g in groups) { r <- try(rma(yi, vi, data=g, method='REML', test='knha'), silent=TRUE);"
        " if (!inherits(r, 'try-error')) ok <- ok + 1 })[['elapsed']]\n"
        "cat(t / length(groups), ok, length(groups), '\\n')\n")
    per_fit_r, ok_r, n_r = subprocess.run(["Rscript", str(r_script)], check=True, capture_output=True,
                                          text=True).stdout.split()
    per_fit_h = t_h / groups
    # Like for like with the R loop (timed after read.csv, results kept in memory, nothing printed):
    # hatmeta.api.pool_by on the table already read, in this process.
    from hatmeta.api import pool_by
    from hatmeta.io.trial_table import read_table

    table = read_table(data, measure="GEN")
    times = []
    for _ in range(max(3, repeat)):
        t = time.perf_counter()
        res = pool_by(table, "group", "GEN", method="REML", ci="hksj")
        times.append(time.perf_counter() - t)
    per_fit_api = statistics.median(times) / groups
    answered_api = int(np.isfinite(res._arrays["estimate"]).sum())
    ratio_api = float(per_fit_r) / per_fit_api
    ratio_cli = float(per_fit_r) / per_fit_h
    return {"benchmark": f"--by throughput ({groups} groups x {k} studies, REML + HKSJ)",
            "metafor_ms_per_fit": float(per_fit_r) * 1e3, "metafor_answered": f"{ok_r}/{n_r}",
            "hatmeta_api_ms_per_fit": per_fit_api * 1e3, "throughput_ratio_api": ratio_api,
            "hatmeta_api_answered": f"{answered_api}/{groups}",
            "hatmeta_cli_ms_per_fit": per_fit_h * 1e3, "throughput_ratio_cli": ratio_cli,
            "hatmeta_cli_answered": f"{answered}/{groups}",
            "note": "api: in-process like the R loop; cli: start-up, CSV parsing and JSON of every study included",
            "budget": "ratio >= 100, every group answered",
            "pass": ratio_api >= 100 and answered_api == groups and answered == groups}


def large(tmp: Path, k=500_000, k_r=100_000) -> dict:
    rng = np.random.default_rng(2)
    v = rng.uniform(0.01, 1, k)
    y = rng.normal(0, np.sqrt(v + 0.1))
    data = tmp / "large.csv"
    with open(data, "w") as fh:
        fh.write("study,yi,vi\n")
        fh.writelines(f"s{i},{float(y[i])!r},{float(v[i])!r}\n" for i in range(k))
    results = {"benchmark": f"{k} studies, REML (text output; JSON adds the per-study list)"}
    for fmt in ("text", "json"):
        elapsed, _, p = peak_rss_mb([*HATMETA, "pool", "--data", str(data), "--measure", "GEN", "--format", fmt])
        # ru_maxrss of children is the largest child so far; measure each in its own process instead.
        gnu_time = shutil.which("time") or "/usr/bin/time"
        mem = None
        if os.path.exists(gnu_time):
            q = subprocess.run([gnu_time, "-f", "%M", *HATMETA, "pool", "--data", str(data), "--measure", "GEN",
                                "--format", fmt], capture_output=True, text=True)
            mem = int(q.stderr.strip().splitlines()[-1]) / 1024
        results[f"hatmeta_{fmt}_s"] = elapsed
        results[f"hatmeta_{fmt}_peak_mb"] = mem
        results[f"hatmeta_{fmt}_ok"] = p.returncode == 0
    r_data = tmp / "large_r.csv"
    with open(r_data, "w") as fh:
        fh.write("yi,vi\n")
        fh.writelines(f"{float(y[i])!r},{float(v[i])!r}\n" for i in range(k_r))
    t = time.perf_counter()
    p = subprocess.run(["Rscript", "-e", f"suppressMessages(library(metafor)); d <- read.csv('{r_data}'); "
                        "print(rma(yi, vi, data=d, method='REML'))"], capture_output=True, text=True)
    results[f"metafor_{k_r}_s"] = time.perf_counter() - t
    errors = [line for line in p.stderr.splitlines() if "Error" in line or "cannot allocate" in line]
    results[f"metafor_{k_r}_outcome"] = "ok" if p.returncode == 0 else " ".join(errors) or "failed"
    results["budget"] = "<= 6 s and <= 1500 MB"
    results["pass"] = bool(results["hatmeta_text_s"] <= 6 and (results["hatmeta_text_peak_mb"] or 0) <= 1500)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", nargs="?", default="all", choices=["end-to-end", "by", "large", "all"])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    if not shutil.which("Rscript"):
        sys.exit("Rscript not found: apt-get install r-base-core r-cran-metafor")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = {"end-to-end": lambda: end_to_end(tmp, args.repeat), "by": lambda: by(tmp, args.repeat),
                "large": lambda: large(tmp)}
        for name, fn in runs.items():
            if args.which in (name, "all"):
                print(json.dumps(fn(), indent=2), flush=True)


if __name__ == "__main__":
    main()
