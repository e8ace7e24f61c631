"""Conversions (hatmeta/fit/conversions.py) against metafor 5.0's conv.fivenum, conv.wald, conv.2x2 and
escalc(ti=, pi=) on their documented examples and a grid (tests/fixtures/conversions/generate.R)."""

import json
import math
import subprocess
import sys

import pytest

from hatmeta.errors import InputError
from hatmeta.fit import conversions as cv

from ..conftest import FIXTURES, ROOT

REF = json.loads((FIXTURES / "conversions" / "conversions.json").read_text())
REL = 1e-10


def ids(key):
    return [pytest.param(c, id=c["id"]) for c in REF[key]]


@pytest.mark.parametrize("case", ids("fivenum"))
def test_median_to_mean_sd_equals_conv_fivenum(case):
    method = "luo/wan/shi" if case["method"] == "default" else "wan2014"
    r = cv.median_to_mean_sd(case["n"], case["median"], case["q1"], case["q3"], case["min"], case["max"], method)
    assert r.values["mean"] == pytest.approx(case["mean"], rel=REL)
    assert r.values["sd"] == pytest.approx(case["sd"], rel=REL)
    assert r.values["skew_t"] == pytest.approx(case["skew_t"], rel=REL)
    assert r.values["skew_crit"] == pytest.approx(case["skew_crit"], rel=REL)
    assert r.values["skewed"] == case["skewed"]
    assert bool(r.notes) == case["skewed"]  # a skewed row is named, not silently converted
    assert ("Luo" in r.method) == (method == "luo/wan/shi") and r.source


@pytest.mark.parametrize("case", ids("wald"))
def test_se_from_ci_or_p_equals_conv_wald(case):
    if case["p"] == 0:  # a p-value rounded to 0: metafor returns SE 0, hatmeta refuses it and says why
        assert case["se"] == 0
        with pytest.raises(InputError, match="strictly between 0 and 1"):
            cv.se_from(case["estimate"], p=case["p"], log=case["log"])
        return
    r = cv.se_from(case["estimate"], case["ci_low"], case["ci_high"], p=case["p"], level=case["level"],
                   log=case["log"])
    assert r.values["estimate"] == pytest.approx(case["yi"], rel=REL)
    assert r.values["se"] == pytest.approx(case["se"], rel=REL)
    assert ("CI" in r.method) == (case["ci_low"] is not None)


@pytest.mark.parametrize("case", ids("tables"))
def test_table_from_or_and_margins_equals_conv_2x2(case):
    r = cv.table_from_or(case["or"], case["n"], case["n1"], case["events"])
    v = r.values
    # metafor's ai, bi: group 1 with and without the outcome; ci, di: group 2
    assert (v["events_treat"], v["n_treat"] - v["events_treat"], v["events_ctrl"], v["n_ctrl"] - v["events_ctrl"]) \
        == (case["ai"], case["bi"], case["ci"], case["di"])


@pytest.mark.parametrize("case", ids("smd"))
def test_smd_from_t_or_p_equals_escalc(case):
    if case["t"] is not None:
        r = cv.smd_from_t(case["n1"], case["n2"], t=case["t"])
    else:
        r = cv.smd_from_t(case["n1"], case["n2"], p=abs(case["p"]), sign=math.copysign(1, case["p"]))
    assert r.values["yi"] == pytest.approx(case["yi"], rel=REL)
    assert r.values["vi"] == pytest.approx(case["vi"], rel=REL)


def test_smd_from_f_is_the_square_of_t():
    a = cv.smd_from_t(20, 22, t=-2.31)
    b = cv.smd_from_t(20, 22, f=2.31**2, sign=-1)
    assert b.values["yi"] == pytest.approx(a.values["yi"], rel=1e-14) and "F" in b.method


@pytest.mark.parametrize("case", REF["change"])
def test_change_sd_and_the_correlation_it_implies(case):
    r = cv.change_sd(case["sd_baseline"], case["sd_final"], case["r"])
    assert r.values["sd_change"] == pytest.approx(case["sd_change"], rel=REL)
    back = cv.correlation_from_change(case["sd_baseline"], case["sd_final"], r.values["sd_change"])
    assert back.values["r"] == pytest.approx(case["r"], abs=1e-12)


def test_table_from_or_ci_recovers_the_table_it_came_from():
    """Di Pietrantonj (2006): the OR and Woolf CI of 36/122 vs 20/118 give back 36 and 20."""
    a, n1, c, n2 = 36, 122, 20, 118
    lor = math.log(a * (n2 - c) / ((n1 - a) * c))
    se = math.sqrt(1 / a + 1 / (n1 - a) + 1 / c + 1 / (n2 - c))
    z = 1.959963984540054
    r = cv.table_from_or_ci(math.exp(lor), math.exp(lor - z * se), math.exp(lor + z * se), n1, n2)
    got = (r.values["events_treat"], r.values["events_ctrl"])
    other = (r.values["other_solution"]["events_treat"], r.values["other_solution"]["events_ctrl"])
    assert got == pytest.approx((36, 20), rel=1e-8) or other == pytest.approx((36, 20), rel=1e-8)
    assert r.notes


def test_p_with_df_uses_t_quantile():
    r = cv.se_from(-2.4, p=0.013, df=10)
    # The reference is R's quantile, printed by R 4.2.2 with sprintf("%.17g", qt(1 - 0.013/2, 10)): SciPy's
    # t.ppf before 1.17 is off by ~1e-10 here (the lower-bound CI phase runs SciPy 1.10).
    assert r.values["se"] == pytest.approx(2.4 / 3.0152726631874551, rel=1e-12) and "10 df" in r.method


@pytest.mark.parametrize("call, message", [
    (lambda: cv.median_to_mean_sd(4, 3, 1, 5), "n >= 5"),
    (lambda: cv.median_to_mean_sd(20, 3, 4, 5), "does not hold"),
    (lambda: cv.median_to_mean_sd(20, 3), "range"),
    (lambda: cv.se_from(1.2, 1.5, 1.1), "below"),
    (lambda: cv.se_from(-1.0, -2.0, 0.5, log=True), "positive"),
    (lambda: cv.table_from_or(2.0, 50, 60, 10), "exceed"),
    (lambda: cv.change_sd(3, 4, 1.5), "correlation"),
    (lambda: cv.convert_row("nonsense", {}), "unknown input"),
    (lambda: cv.convert_row("median_iqr", {"n": 20, "median": 3}), "needs q1, q3"),
])
def test_bad_inputs_are_one_line_errors(call, message):
    with pytest.raises(InputError, match=message):
        call()


def test_convert_cli_one_layout_per_row(tmp_path):
    """`hatmeta convert FILE`: an `input` column names each row's layout; each output row names its method."""
    path = tmp_path / "extraction.csv"
    path.write_text("study,input,n,median,q1,q3,min,max,estimate,ci_low,ci_high,p,log\n"
                    "A,median_iqr,20,6,4,10,,,,,,,\n"
                    "B,median_range,20,6,,,2,14,,,,,\n"
                    "C,ci,,,,,,,1.37,1.03,1.82,,yes\n"
                    "D,p,,,,,,,-2.4,,,0.013,\n")
    proc = subprocess.run([sys.executable, "-m", "hatmeta.cli", "convert", str(path), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["rows"]
    case2 = next(c for c in REF["fivenum"] if c["id"] == "help_case2_default")
    assert rows[0]["study"] == "A" and rows[0]["mean"] == pytest.approx(case2["mean"], rel=1e-9)
    assert "Luo" in rows[0]["method"] and "Wan" in rows[0]["source"]
    or1 = next(c for c in REF["wald"] if c["id"] == "help_or1")
    assert rows[2]["se"] == pytest.approx(or1["se"], rel=1e-9) and rows[2]["estimate"] == pytest.approx(or1["yi"])
    md = next(c for c in REF["wald"] if c["id"] == "md_p")
    assert rows[3]["se"] == pytest.approx(md["se"], rel=1e-9)
    bad = tmp_path / "bad.csv"
    bad.write_text("study,input,n,median\nA,median_iqr,20,6\n")
    proc = subprocess.run([sys.executable, "-m", "hatmeta.cli", "convert", str(bad)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and ":2:" in proc.stderr
