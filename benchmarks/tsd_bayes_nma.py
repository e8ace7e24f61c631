"""The Bayesian network meta-analysis against every printed NICE DSU TSD case, at full length
(the tests run shorter chains of a few cases: tests/validation/test_tsd_bayes_nma.py).

For each case of tests/fixtures/tsd/printed.json: hatmeta's posterior (seeded) next to the
printed value, the absolute difference, and the time taken. Usage:

    python benchmarks/tsd_bayes_nma.py [--draws 2000] [--tune 1000] [--out results.json] [CASE ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TSD = ROOT / "tests" / "fixtures" / "tsd"


def run(name: str, case: dict, cases: dict, draws: int, tune: int, seed: int) -> dict:
    from hatmeta.bayes.network import bayes_nma

    t0 = time.perf_counter()
    res = bayes_nma(TSD / case["data"], case["measure"], case["reference"], model=case["model"],
                    common=case["effects"] == "common", seed=seed, draws=draws, tune=tune, chains=2,
                    ume_multiarm=case.get("ume_multiarm", "correlated"))
    took = time.perf_counter() - t0
    printed = case.get("estimates") or cases[case["estimates_as"]]["estimates"]
    tau = case.get("tau") or (cases[case["estimates_as"]].get("tau") if "estimates_as" in case else None)
    got = {(c["treatment"], c["versus"]): c for c in res.contrasts}
    rows = []
    for e in printed:
        key = (e["treatment"], e["versus"])
        sign = 1.0
        if key not in got:  # the other orientation
            key, sign = (e["versus"], e["treatment"]), -1.0
        g = got[key]
        mean = sign * g["mean"]
        low, high = sorted((sign * g["low"], sign * g["high"]))
        rows.append({"what": f"d {e['treatment']} vs {e['versus']}",
                     "printed": [e["est"], e["sd"], e["low"], e["high"]], "hatmeta": [mean, g["sd"], low, high]})
    if tau and res.tau:
        rows.append({"what": "tau (median, sd, CrI)", "printed": [tau["median"], tau["sd"], tau["low"], tau["high"]],
                     "hatmeta": [res.tau["median"], res.tau["sd"], res.tau["low"], res.tau["high"]]})
    f = case["fit"]
    rows.append({"what": "totresdev, pD, DIC", "printed": [f["totresdev"], f["pD"], f["DIC"]],
                 "hatmeta": [res.fit["totresdev"], res.fit["pD"], res.fit["DIC"]]})
    worst = max((abs(a - b) for r in rows[:-1] for a, b in zip(r["printed"][:2], r["hatmeta"][:2])), default=0.0)
    return {"case": name, "seconds": took, "rows": rows, "max_abs_diff_mean_sd": worst,
            "diagnostics": res.diagnostics, "warnings": list(res.warnings)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", nargs="*")
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out")
    args = ap.parse_args()
    cases = {k: v for k, v in json.loads((TSD / "printed.json").read_text()).items() if k != "about"}
    out = []
    for name in args.cases or list(cases):
        r = run(name, cases[name], cases, args.draws, args.tune, args.seed)
        out.append(r)
        print(f"\n{name}: {r['seconds']:.1f} s; largest |difference| of means and SDs {r['max_abs_diff_mean_sd']:.3f}; "
              f"R-hat {r['diagnostics']['r_hat_max']:.3f}, ESS {r['diagnostics']['ess_bulk_min']:.0f}")
        for row in r["rows"]:
            p = ", ".join(f"{x:.3f}" for x in row["printed"])
            h = ", ".join(f"{x:.3f}" for x in row["hatmeta"])
            print(f"  {row['what']:28} printed {p:34} hatmeta {h}")
        for w in r["warnings"]:
            print(f"  warning: {w}")
        sys.stdout.flush()
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
