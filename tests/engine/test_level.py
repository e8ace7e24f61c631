"""--level flows to every interval and every label: text, JSON, tables (issue 12)."""

import json
import subprocess
import sys

import pytest
from scipy.stats import norm

from ..conftest import FIXTURES

BCG = str(FIXTURES / "data" / "bcg.csv")


def cli(*args):
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", *args], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_text_labels_every_interval_with_the_level():
    out = cli("pool", "--data", BCG, "--measure", "RR", "--level", "0.9", "--moderator", "ablat")
    assert "95%" not in out
    assert "(90% CI" in out and "[90% CI]" in out


def test_json_intervals_are_at_the_level():
    d90 = json.loads(cli("pool", "--data", BCG, "--measure", "RR", "--level", "0.9", "--format", "json",
                         "--moderator", "ablat"))
    d95 = json.loads(cli("pool", "--data", BCG, "--measure", "RR", "--format", "json"))
    assert d90["level"] == 0.9
    z = norm.ppf(0.95)
    assert d90["ci_high"] - d90["estimate"] == pytest.approx(z * d90["se"], rel=1e-8)  # 10 written digits
    s = d90["studies"][0]
    assert s["ci_high"] - s["yi"] == pytest.approx(z * s["vi"] ** 0.5, rel=1e-8)
    assert 0 < d90["tau2_ci_high"] < d95["tau2_ci_high"]  # the Q-profile bound at 90% is narrower
    c = d90["meta_regression"]["coefficients"][1]
    assert c["ci_high"] - c["estimate"] == pytest.approx(z * c["se"], rel=1e-8)
    assert d90["meta_regression"]["level"] == 0.9


def test_table_has_a_level_option():
    out = cli("table", "--data", BCG, "--measure", "RR", "--level", "0.9", "--format", "csv")
    assert "RR [90% CI]" in out.splitlines()[0]
    out95 = cli("table", "--data", BCG, "--measure", "RR", "--format", "csv")
    assert out95.splitlines()[1] != out.splitlines()[1]  # the study intervals differ
