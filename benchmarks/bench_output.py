"""Writing numbers under the output-precision policy (issue 9), against the standard library.

  round   10^6 floats to 10 significant digits: precision.quantise vs float(format(x, '.10g'))
  encode  10^6 study rows (dicts of 8 fields) to JSON: precision.dumps vs json.dumps
  by      BatchResult.json_lines of 10^6 studies in 100,000 groups (the --by JSON), in process

Usage:  python benchmarks/bench_output.py [--repeat N]
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np

from hatmeta.precision import dumps, json_floats, quantise

N = 10**6


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(repeat=3):
    rng = np.random.default_rng(1)
    x = rng.normal(size=N)
    t_q = best(lambda: quantise(x), repeat)
    t_f = best(lambda: [float(format(v, ".10g")) for v in x.tolist()], repeat)
    print(f"round  {N:,} floats: quantise {t_q:.3f} s, format() {t_f:.3f} s, ratio {t_q / t_f:.2f}")
    cols = {c: json_floats(rng.normal(size=N)) for c in ("yi", "vi", "weight", "ci_low", "ci_high")}
    ids = [f"s{i}" for i in range(N)]
    rows = [{"study": s, "yi": a, "vi": b, "weight": c, "ci_low": d, "ci_high": e, "n_treat": 50, "n_ctrl": 50}
            for s, a, b, c, d, e in zip(ids, *cols.values())]
    t_d = best(lambda: dumps(rows, indent=False, rounded=True), repeat)
    t_j = best(lambda: json.dumps(rows, sort_keys=True, separators=(",", ":")), repeat)
    print(f"encode {N:,} rows: dumps {t_d:.3f} s, json.dumps {t_j:.3f} s, ratio {t_d / t_j:.2f}")
    from hatmeta.api import pool_by
    from hatmeta.io.trial_table import table_from_rows

    g = np.repeat(np.arange(N // 10), 10)
    table = table_from_rows([["study", "replicate", "yi", "vi"]]
                            + [[f"s{i}", str(g[i]), repr(a), repr(b)] for i, (a, b) in
                               enumerate(zip(rng.normal(size=N).tolist(), rng.uniform(0.01, 0.2, N).tolist()))])
    batch = pool_by(table, "replicate", "GEN")
    t_b = best(lambda: sum(len(line) for line in batch.json_lines()), repeat)
    print(f"by     {N:,} studies in {N // 10:,} groups: json_lines {t_b:.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3)
