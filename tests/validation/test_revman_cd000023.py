"""RevMan 5's own stored results in a real Cochrane review (CD000023.pub4, "Antibiotics for sore throat";
tests/fixtures/revman/cd000023.json, written by make_cd000023.py from the review's RevMan 5.2.11 file):
M-H random-effects totals with zero cells and double zeros, a subgroup RevMan shows 'Not estimable' (test
for subgroup differences stored as Q = 0, P = 1), and RevMan's P for the overall effect."""

import json
import math

import pytest

from hatmeta.api import pool_table
from hatmeta.io.trial_table import table_from_rows

from ..conftest import FIXTURES

CASES = json.loads((FIXTURES / "revman" / "cd000023.json").read_text(encoding="utf-8"))["outcomes"]


def _pool(case):
    grouped = any(r["subgroup"] for r in case["rows"])
    rows = [["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"] + (["subgroup"] if grouped else [])]
    rows += [[r["study"], str(r["EVENTS_1"]), str(r["TOTAL_1"]), str(r["EVENTS_2"]), str(r["TOTAL_2"])]
             + ([r["subgroup"]] if grouped else []) for r in case["rows"]]
    table = table_from_rows(rows, path=case["id"], measure=case["measure"])
    return pool_table(table, case["measure"], preset="revman5", method="MH-DL" if case["random"] else "MH",
                      subgroup="subgroup" if grouped else None)


def _same(ours, stored, rel=1e-12):
    assert ours == pytest.approx(stored, rel=rel, abs=1e-15)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_revman_stored_totals_of_a_real_review_are_reproduced(case):
    res, s = _pool(case), case["stored"]
    _same(math.exp(res.estimate), s["effect_size"])
    _same(math.exp(res.ci_low), s["ci_start"])
    _same(math.exp(res.ci_high), s["ci_end"])
    _same(abs(res.stat), s["z"])
    _same(res.q, s["chi2"], rel=1e-11)
    _same(res.tau2, s["tau2"], rel=1e-10)
    _same(res.i2, s["i2"], rel=1e-10)
    # RevMan's P is its own routine: within 5e-8 of the exact tail of the same z (not to 1e-12)
    assert abs(res.p - s["p_z"]) <= 5e-8
    stored_groups = {g["name"]: g for g in case["subgroups"]}
    for g in res.subgroups or ():
        st = stored_groups[g.group]
        _same(math.exp(g.estimate), st["effect_size"])
        _same(math.exp(g.ci_low), st["ci_start"])
        _same(g.tau2, st["tau2"], rel=1e-10)
    if case["subgroups"]:
        _same(res.subgroup_test.q, s["q"], rel=1e-10)
        # its chi-square P too is its own approximation (about 1e-7 here; Fleiss1993's to 1e-6 relative)
        assert abs(res.subgroup_test.p - s["p_q"]) <= 2e-7


def test_a_subgroup_revman_shows_not_estimable_leaves_q_0_p_1():
    case = next(c for c in CASES if c["id"] == "CMP-004.03")
    late = next(g for g in case["subgroups"] if "late" in g["name"])
    assert late["effect_size"] == late["ci_start"] == late["ci_end"] == 0.0  # RevMan's 'Not estimable'
    res = _pool(case)
    assert [g.group for g in res.subgroups] == [g["name"] for g in case["subgroups"] if g["effect_size"]]
    assert (res.subgroup_test.q, res.subgroup_test.df, res.subgroup_test.p) == (0.0, 0, 1.0)
    assert case["stored"]["q"] == 0.0 and case["stored"]["p_q"] == 1.0
