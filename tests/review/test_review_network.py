"""The HAT trials as a treatment network (analyses/networks/retention-network.toml): who enters with
which arms, who is named as left out, and the network against the pairwise primary analysis."""

import json
import math
import subprocess
import sys

import pytest

from ..conftest import ROOT


def test_the_retention_network_uses_every_randomised_arm_and_names_the_rest():
    from hatmeta.review.network import pool_network

    res, an = pool_network("retention-network")
    trials = sorted(set(an.table["study"]))
    assert trials == ["Haasen 2007 (Germany)", "Oviedo-Joekes 2009 (Canada)", "Strang 2010 (UK)"]
    assert set(res.treatments) == {"supervised injected heroin", "injectable hydromorphone", "injectable methadone",
                                   "oral methadone"}
    # NAOMI's hydromorphone arm (22 of 25) and RIOTT's injectable methadone arm (34 of 42) are in.
    rows = list(zip(an.table["study"], an.table["treatment"], an.table["events"], an.table["n"]))
    assert ("Oviedo-Joekes 2009 (Canada)", "injectable hydromorphone", 22.0, 25.0) in rows
    assert ("Strang 2010 (UK)", "injectable methadone", 34.0, 42.0) in rows
    omitted = dict(an.omitted)
    assert omitted["van den Brink 2003, inhaled (Netherlands)"].startswith("[eligibility] route")
    assert len(an.omitted) + len(trials) == 10  # every trial in the extraction is accounted for
    assert any(n.startswith("definitions differ") for n in an.notes)
    assert "Assumptions, not findings" in an.spec.transitivity


def test_the_network_estimate_of_heroin_vs_methadone_is_the_pairwise_one_with_more_arms():
    """Only trials comparing heroin with methadone bear directly on that contrast, and the REML tau² of the
    network (3 trials, each its own design) matches the pairwise REML tau²: the point estimates agree."""
    from hatmeta.review.api import pool_analysis
    from hatmeta.review.network import pool_network

    res, _ = pool_network("retention-network")
    pair, _ = pool_analysis("retention")
    est = {e["treatment"]: e for e in res.to_dict()["estimates"]}["supervised injected heroin"]
    assert est["estimate"] == pytest.approx(pair.estimate, abs=2e-3)
    assert res.tau2 == pytest.approx(pair.tau2, rel=1e-3)
    assert math.exp(est["estimate"]) > 1  # favours heroin (benefit higher)


def test_hatmeta_nma_names_the_network_from_the_command_line():
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "nma", "retention-network", "--format", "json"],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["analysis"] == "retention-network" and out["reference"] == "oral methadone"
    assert {o["trial"] for o in out["omitted"]} >= {"Oviedo-Joekes 2016 (Canada)"}
    text = subprocess.run([sys.executable, "-m", "hatmeta.cli", "nma", "retention-network"], cwd=ROOT,
                          capture_output=True, text=True).stdout
    assert "Transitivity assumptions:" in text and "ROW treatment versus the COLUMN" in text
    assert max(len(line) for line in text.splitlines()) <= 80  # long treatment names: blocks, not long lines
    assert "(columns oral methadone to supervised injected heroin)" in text  # the league table in column blocks
    bad = subprocess.run([sys.executable, "-m", "hatmeta.cli", "nma", "../retention"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
