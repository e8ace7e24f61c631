"""`hatmeta convert` with McGrath's QE and BC methods (--method or a per-row `method` column) and the hazard-ratio
layouts (hr_oe, hr_oe_arms, hr_ci, hr_p) mixed in one table: numbers as the R fixtures, each row naming its
method, impossible rows one line with exit 2."""

import json
import subprocess
import sys

import pytest

from ..conftest import FIXTURES, ROOT

EST = {c["id"]: c for c in json.loads((FIXTURES / "estmeansd" / "estmeansd.json").read_text())["cases"]}
HR = {c["id"]: c for c in json.loads((FIXTURES / "hazard_ratio" / "hazard_ratio.json").read_text())["cases"]}
COLS = ["study", "input", "method", "n", "median", "q1", "q3", "min", "max", "hr", "ci_low", "ci_high", "p", "sign",
        "events_treat", "events_ctrl", "o_minus_e", "v", "observed_treat", "expected_treat", "observed_ctrl",
        "expected_ctrl"]


def run(path, *opts):
    return subprocess.run([sys.executable, "-m", "hatmeta.cli", "convert", str(path), *opts], capture_output=True,
                          text=True, cwd=ROOT)


def table(tmp_path, rows):
    path = tmp_path / "extraction.csv"
    lines = [",".join(COLS)] + [",".join("" if r.get(k) is None else repr(r[k]) if isinstance(r[k], float)
                                         else str(r[k]) for k in COLS) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_mixed_layouts_and_methods_per_row(tmp_path):
    s2, s3 = EST["help_lnorm_n100_S2"], EST["gamma_n30_S3"]
    lung, colon = HR["lung_sex"], HR["colon_lev5fu"]
    rows = [
        {"study": "qe", "input": "median_iqr", "n": s2["n"], "median": s2["median"], "q1": s2["q1"], "q3": s2["q3"]},
        {"study": "bc", "input": "median_iqr_range", "method": "bc-mcgrath", "n": s3["n"], "median": s3["median"],
         "q1": s3["q1"], "q3": s3["q3"], "min": s3["min"], "max": s3["max"]},
        {"study": "luo", "input": "median_iqr", "method": "luo/wan/shi", "n": s2["n"], "median": s2["median"],
         "q1": s2["q1"], "q3": s2["q3"]},
        {"study": "ci", "input": "hr_ci", "hr": lung["cox"]["hr"], "ci_low": lung["cox"]["ci_low"],
         "ci_high": lung["cox"]["ci_high"]},
        {"study": "p", "input": "hr_p", "p": colon["p"], "sign": -1, "events_treat": colon["observed_treat"],
         "events_ctrl": colon["observed_ctrl"]},
        {"study": "oe", "input": "hr_oe", "o_minus_e": colon["o_minus_e"], "v": colon["v"]},
        {"study": "arms", "input": "hr_oe_arms", "observed_treat": lung["observed_treat"],
         "expected_treat": lung["expected_treat"], "observed_ctrl": lung["observed_ctrl"],
         "expected_ctrl": lung["expected_ctrl"]},
    ]
    path = table(tmp_path, rows)
    proc = run(path, "--method", "qe-mcgrath", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out = {r["study"]: r for r in json.loads(proc.stdout)["rows"]}
    assert out["qe"]["mean"] == pytest.approx(s2["qe_tight"]["mean"], rel=1e-6)
    assert out["qe"]["method"].startswith("McGrath 2020 QE") and "estmeansd" in out["qe"]["source"]
    assert out["bc"]["mean"] == pytest.approx(s3["bc_tight"]["mean"], rel=1e-6) and "BC" in out["bc"]["method"]
    assert out["luo"]["method"].startswith("Luo 2018")  # the row's method overrides --method
    assert out["ci"]["se"] == pytest.approx(lung["cox"]["se"], rel=1e-9) and "CI" in out["ci"]["method"]
    assert out["p"]["log_hr"] == pytest.approx(colon["ref"]["p_events_per_arm"]["log_hr"], rel=1e-9)
    assert out["oe"]["log_hr"] == pytest.approx(colon["ref"]["oe_v"]["log_hr"], rel=1e-9)
    assert out["arms"]["log_hr"] == pytest.approx(lung["ref"]["observed_expected"]["log_hr"], rel=1e-9)
    assert all(r["method"] and r["source"] for r in out.values())
    text = run(path, "--method", "qe-mcgrath")
    assert text.returncode == 0 and text.stdout.count("McGrath 2020") == 2 and "Parmar" in text.stdout
    lines = text.stdout.splitlines()
    assert max(map(len, lines)) <= 80  # read at 80 columns
    assert not any(line.rstrip().endswith(("=", "-")) or line.lstrip().startswith("=") for line in lines)  # pairs whole
    csv = run(path, "--method", "qe-mcgrath", "--format", "csv")
    assert csv.returncode == 0 and csv.stdout.splitlines()[0].startswith("study,input,mean,sd")


@pytest.mark.parametrize("row, message", [
    ({"input": "median_iqr", "method": "qe-mcgrath", "n": 40, "median": 5, "q1": 6, "q3": 9}, "q1 = 6 is above"),
    ({"input": "median_iqr", "method": "bc-mcgrath", "n": 40, "median": 5, "q1": -1, "q3": 9}, "positive"),
    ({"input": "median_range", "method": "qe", "n": 40, "median": 5, "min": 1, "max": 9}, "unknown method"),
    ({"input": "hr_p", "p": 0.04, "events_treat": 20, "events_ctrl": 30}, "no direction"),
    ({"input": "hr_ci", "hr": 0.5, "ci_low": 0.6, "ci_high": 0.9}, "outside its CI"),
    ({"input": "hr_oe", "o_minus_e": -3}, "needs v"),
])
def test_impossible_rows_are_one_line_exit_2(tmp_path, row, message):
    proc = run(table(tmp_path, [{"study": "A", **row}]))
    assert proc.returncode == 2 and not proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and ":2:" in lines[0] and message in lines[0]
