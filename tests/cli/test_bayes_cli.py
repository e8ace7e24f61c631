"""`hatmeta pool ... --bayes`: the exact engine through the command line and the JSON contract."""

import json
import math
import subprocess
import sys

import pytest

from hatmeta.bayes import bayes_exact

from ..conftest import FIXTURES, ROOT


def run(*args):
    return subprocess.run([sys.executable, "-m", "hatmeta.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_json_carries_posterior_probabilities_and_prior():
    p = run("pool", "--data", str(FIXTURES / "data" / "bcg.csv"), "--measure", "RR", "--bayes",
            "--threshold", "0.8", "--prior-sensitivity", "--format", "json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    b = out["bayes"]
    for q in ("mu", "tau", "prediction"):
        assert set(b["posterior"][q]) >= {"mean", "median", "sd", "low", "high"}
    assert b["prior"]["tau_prior"] == "halfnormal:0.5" and b["prior"]["mu_prior_sd"] == 4
    assert b["probabilities"]["threshold"] == pytest.approx(math.log(0.8))  # natural scale in, log scale out
    assert len(b["theta"]) == out["k"] == 13
    assert {s["prior"]["tau_prior"] for s in b["prior_sensitivity"]} == {
        "halfnormal:1", "halfcauchy:0.5", "uniform:4", "turner:marginal"}
    # The same numbers as the engine called directly on the studies' yi and vi (as written: 10
    # significant digits, hatmeta/precision.py).
    direct = bayes_exact([s["yi"] for s in out["studies"]], [s["vi"] for s in out["studies"]],
                         threshold=math.log(0.8))
    assert b["posterior"]["mu"]["median"] == pytest.approx(direct.mu.median, abs=1e-9)


def test_analysis_uses_the_specs_benefit_direction():
    p = run("pool", "retention", "--bayes", "--format", "json")
    assert p.returncode == 0, p.stderr
    b = json.loads(p.stdout)["bayes"]
    assert b["prior"]["benefit"] == "higher"  # retention: a ratio above 1 favours HAT
    mu = b["posterior"]["mu"]
    assert (b["probabilities"]["p_favours_treatment"] > 0.5) == (mu["median"] > 0)


@pytest.mark.parametrize("args, words", [
    (["--measure", "MD", "--bayes"], "give --tau-prior and --mu-prior-sd"),
    (["--measure", "RR", "--tau-prior", "halfnormal:0.5"], "need --bayes"),
    (["--measure", "RR", "--bayes", "--tau-prior", "gamma:1"], "unknown tau prior"),
    (["--measure", "RR", "--bayes", "--threshold", "-1"], "ratio threshold must be positive"),
    (["--measure", "RR", "--parameterisation", "noncentred"], "need --bayes"),
    (["--measure", "RR", "--bayes", "--parameterisation", "noncentred"], "applies to --engine pymc"),
    (["--measure", "OR", "--bayes", "--engine", "pymc", "--likelihood", "binomial", "--parameterisation",
      "marginal"], "with the normal likelihood"),
    (["--measure", "RR", "--bayes", "--engine", "pymc", "--draws", "0"], "draws must be at least 10"),
    (["--measure", "RR", "--bayes", "--engine", "pymc", "--save-trace", "no/such/folder/t.nc"],
     "folder does not exist"),
])
def test_bayes_option_mistakes(args, words):
    data = "normand1999.csv" if "MD" in args else "bcg.csv"
    p = run("pool", "--data", str(FIXTURES / "data" / data), *args)
    assert p.returncode == 2 and words in p.stderr and "Traceback" not in p.stderr
