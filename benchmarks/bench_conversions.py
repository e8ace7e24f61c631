"""McGrath et al.'s QE and BC conversions (hatmeta/fit/conversions_mcgrath.py) against R's estmeansd in the same run
(issue 25, item 5): every case of tests/fixtures/estmeansd/estmeansd.json converted by each, in process, R's
start-up and package loading left out of its time.

Budget: per row, hatmeta's QE no slower than 3x estmeansd's qe.mean.sd (hatmeta's fits go on to convergence and
add a Nelder-Mead pass where estmeansd's optim stops or errors; 3x is the price allowed for that); BC no slower
than 10x estmeansd's bc.mean.sd(avoid.mc = TRUE) (hatmeta integrates to 1e-12 relative with SciPy's quad, a Python
call per point; R's integrate stops at 1.2e-4), and under 20 ms per row.

Usage: python benchmarks/bench_conversions.py [--repeat N] [--no-r]
R: estmeansd 1.0.1 and metaBLUE built from their CRAN mirrors (R_LIBS=/tmp/Rlib-conv; see
tests/fixtures/estmeansd/generate.R).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

R_CODE = r"""
suppressMessages(library(estmeansd))
d <- jsonlite::fromJSON(commandArgs(TRUE)[1], simplifyVector = FALSE)$cases
g <- function(x) if (is.null(x)) NA else x
a <- lapply(d, function(c) list(min.val = g(c$min), q1.val = g(c$q1), med.val = c$median, q3.val = g(c$q3),
                                 max.val = g(c$max), n = c$n))
pos <- vapply(d, function(c) !is.null(c$bc_tight), TRUE)
reps <- as.integer(commandArgs(TRUE)[2])
tq <- tb <- numeric(reps)
for (r in seq_len(reps)) {
  t0 <- proc.time()[["elapsed"]]
  for (x in a) suppressMessages(suppressWarnings(do.call(qe.mean.sd, x)))
  tq[r] <- proc.time()[["elapsed"]] - t0
  t0 <- proc.time()[["elapsed"]]
  for (x in a[pos]) do.call(bc.mean.sd, c(x, avoid.mc = TRUE))
  tb[r] <- proc.time()[["elapsed"]] - t0
}
cat(median(tq) / length(a), median(tb) / sum(pos), "\n")
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-r", action="store_true")
    opts = ap.parse_args()
    from hatmeta.fit.conversions_mcgrath import bc_mean_sd, qe_mean_sd

    path = ROOT / "tests" / "fixtures" / "estmeansd" / "estmeansd.json"
    cases = json.loads(path.read_text())["cases"]
    rows = [(c["n"], c["median"], c["q1"], c["q3"], c["min"], c["max"]) for c in cases]
    pos = [r for r, c in zip(rows, cases) if c["bc_tight"] is not None]
    qe_mean_sd(*rows[0])  # imports
    tq, tb = [], []
    for _ in range(opts.repeat):
        t0 = time.perf_counter()
        for r in rows:
            qe_mean_sd(*r)
        tq.append((time.perf_counter() - t0) / len(rows))
        t0 = time.perf_counter()
        for r in pos:
            bc_mean_sd(*r)
        tb.append((time.perf_counter() - t0) / len(pos))
    h_qe, h_bc = statistics.median(tq), statistics.median(tb)
    print(f"hatmeta: QE {1e3 * h_qe:.1f} ms per row ({len(rows)} rows), BC {1e3 * h_bc:.1f} ms per row ({len(pos)})")
    if opts.no_r:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as f:
        f.write(R_CODE)
    env = {**os.environ, "R_LIBS": os.environ.get("R_LIBS", "/tmp/Rlib-conv")}
    out = subprocess.run(["Rscript", f.name, str(path), str(opts.repeat)], capture_output=True, text=True, env=env,
                         check=True).stdout.split()
    r_qe, r_bc = float(out[0]), float(out[1])
    print(f"estmeansd: QE {1e3 * r_qe:.1f} ms per row, BC {1e3 * r_bc:.1f} ms per row")
    print(f"ratio QE {h_qe / r_qe:.2f} (budget <= 3), BC {h_bc / r_bc:.2f} (budget <= 10)")


if __name__ == "__main__":
    main()
