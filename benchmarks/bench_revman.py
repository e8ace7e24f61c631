"""Reading and pooling every outcome of a 200-study RevMan 5 review (issue 25), against R meta's
read.rm5 + metacr in the same run.

Budget: well under a second for hatmeta (read the .rm5, pool every outcome with its stored settings,
compare with RevMan's stored totals), in process and through the CLI. The review is generated here:
200 studies, 8 outcomes (dichotomous RR/OR/RD with M-H or IV, fixed or random, two with subgroups;
continuous MD and SMD), one line per element as RevMan writes them.

Usage: python benchmarks/bench_revman.py [--repeat N] [--no-r]
R meta (8.2) from a CRAN mirror build (R_LIBS_USER=/tmp/Rlib; see tests/fixtures/revman/generate.R).
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUTCOMES = [("DICH", "RR", "MH", "NO", False), ("DICH", "OR", "MH", "YES", True), ("DICH", "RD", "MH", "NO", False),
            ("DICH", "RR", "IV", "YES", False), ("DICH", "OR", "PETO", "NO", True), ("DICH", "RR", "MH", "YES", False),
            ("CONT", "MD", "IV", "NO", False), ("CONT", "SMD", "IV", "YES", True)]


def review(k=200, seed=1) -> str:
    rnd = random.Random(seed)
    lines = ['<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
             '<COCHRANE_REVIEW REVMAN_SUB_VERSION="5.4.1" REVMAN_VERSION="5">',
             "<COVER_SHEET>", "<TITLE>Benchmark review</TITLE>", "</COVER_SHEET>", "<STUDIES_AND_REFERENCES>",
             "<STUDIES>", "<INCLUDED_STUDIES>"]
    for i in range(k):
        lines.append(f'<STUDY DATA_SOURCE="PUB" ID="STD-S{i:03d}" NAME="Study {i:03d}" YEAR="{1980 + i % 40}">')
        lines.append("</STUDY>")
    lines += ["</INCLUDED_STUDIES>", "</STUDIES>", "</STUDIES_AND_REFERENCES>",
              '<ANALYSES_AND_DATA CALCULATED_DATA="YES">', '<COMPARISON ID="CMP-001" NO="1">', "<NAME>All</NAME>"]
    for no, (kind, measure, method, randm, subs) in enumerate(OUTCOMES, start=1):
        lines.append(f'<{kind}_OUTCOME CHI2="" CI_END="" CI_START="" CI_STUDY="95" CI_TOTAL="95" DF="{k - 1}" '
                     f'EFFECT_MEASURE="{measure}" EFFECT_SIZE="" ESTIMABLE="YES" I2="" I2_Q="" ID="CMP-001.{no:02d}" '
                     f'METHOD="{method}" NO="{no}" P_CHI2="" P_Q="" P_Z="" Q="" RANDOM="{randm}" SCALE="100.0" '
                     f'SORT_BY="STUDY" STUDIES="{k}" SUBGROUPS="{"YES" if subs else "NO"}" SUBGROUP_TEST="YES" '
                     f'SWAP_EVENTS="NO" TAU2="" TOTALS="YES" TOTAL_1="" TOTAL_2="" WEIGHT="100.0" Z="">')
        lines.append(f"<NAME>Outcome {no}</NAME>")
        lines.append("<GROUP_LABEL_1>Exp</GROUP_LABEL_1>")
        lines.append("<GROUP_LABEL_2>Ctrl</GROUP_LABEL_2>")
        lines.append("<GRAPH_LABEL_1>Favours exp</GRAPH_LABEL_1>")
        lines.append("<GRAPH_LABEL_2>Favours ctrl</GRAPH_LABEL_2>")
        groups = [range(k // 2), range(k // 2, k)] if subs else [range(k)]
        for g, idx in enumerate(groups, start=1):
            if subs:
                lines.append(f'<{kind}_SUBGROUP CHI2="" CI_END="" CI_START="" DF="" EFFECT_SIZE="" ESTIMABLE="YES" '
                             f'I2="" ID="CMP-001.{no:02d}.{g:02d}" NO="{g}" P_CHI2="" P_Z="" STUDIES="{len(idx)}" '
                             f'TAU2="" TOTAL_1="" TOTAL_2="" WEIGHT="" Z="">')
                lines.append(f"<NAME>Group {g}</NAME>")
            for i in idx:
                n1, n2 = rnd.randint(20, 400), rnd.randint(20, 400)
                if kind == "DICH":
                    e1, e2 = rnd.randint(1, n1 // 3), rnd.randint(1, n2 // 3)
                    lines.append(f'<DICH_DATA CI_END="" CI_START="" EFFECT_SIZE="" ESTIMABLE="YES" EVENTS_1="{e1}" '
                                 f'EVENTS_2="{e2}" ORDER="{i}" SE="" STUDY_ID="STD-S{i:03d}" TOTAL_1="{n1}" '
                                 f'TOTAL_2="{n2}" VAR="" WEIGHT=""/>')
                else:
                    lines.append(f'<CONT_DATA CI_END="" CI_START="" EFFECT_SIZE="" ESTIMABLE="YES" '
                                 f'MEAN_1="{rnd.gauss(10, 2):.3f}" MEAN_2="{rnd.gauss(11, 2):.3f}" ORDER="{i}" '
                                 f'SD_1="{rnd.uniform(2, 5):.3f}" SD_2="{rnd.uniform(2, 5):.3f}" SE="" '
                                 f'STUDY_ID="STD-S{i:03d}" TOTAL_1="{n1}" TOTAL_2="{n2}" WEIGHT=""/>')
            if subs:
                lines.append(f"</{kind}_SUBGROUP>")
        lines.append(f"</{kind}_OUTCOME>")
    lines += ["</COMPARISON>", "</ANALYSES_AND_DATA>", "</COCHRANE_REVIEW>"]
    return "\n".join(lines) + "\n"


def hatmeta_all(path):
    from hatmeta.commands.revman import pool_rm5
    from hatmeta.io.revman import read_rm5

    review = read_rm5(path)  # read once, pool every outcome
    return [pool_rm5(review, o.id, None, {}) for o in review.outcomes]


R = """suppressMessages(library(meta)); settings.meta('RevMan5', quietly = TRUE)
t0 <- proc.time()[["elapsed"]]
x <- read.rm5('{path}')
res <- lapply(unique(paste(x$comp.no, x$outcome.no)), function(id) {{
  p <- as.numeric(strsplit(id, " ")[[1]]); metacr(x, p[1], p[2], warn = FALSE) }})
cat(sprintf('%.6f', proc.time()[["elapsed"]] - t0), length(res), '\\n')
cat(sprintf('%.10f', sapply(res, function(m) if (m$common) m$TE.common else m$TE.random)), '\\n')
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.rm5")
        Path(path).write_text(review(), encoding="utf-8")
        hatmeta_all(path)  # warm: imports
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            results = hatmeta_all(path)
            times.append(time.perf_counter() - t)
        print(f"hatmeta, in process: read + pool {len(results)} outcomes of 200 studies: "
              f"median {statistics.median(times) * 1000:.1f} ms")
        cli = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "--data", path, "--outcome", "CMP-001.08",
                            "--format", "json"], check=True, capture_output=True, cwd=ROOT)
            cli.append(time.perf_counter() - t)
        print(f"hatmeta CLI, one outcome (start-up included): median {statistics.median(cli) * 1000:.1f} ms")
        if not args.no_r:
            script = os.path.join(tmp, "b.R")
            Path(script).write_text(R.format(path=path))
            env = {**os.environ, "R_LIBS_USER": os.environ.get("R_LIBS_USER", "/tmp/Rlib")}
            rt = []
            for _ in range(args.repeat):
                out = subprocess.run(["Rscript", script], check=True, capture_output=True, text=True, env=env).stdout
                rt.append(float(out.split()[0]))
            ours = [r.estimate for r in results]
            theirs = [float(x) for x in out.splitlines()[1].split()]
            worst = max(abs(a - b) for a, b in zip(ours, theirs))
            print("R meta read.rm5 + metacr (inside R, start-up excluded): "
                  f"median {statistics.median(rt) * 1000:.1f} ms;"
                  f" largest difference in the {len(theirs)} pooled estimates {worst:.2e}")


if __name__ == "__main__":
    main()
