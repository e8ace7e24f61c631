"""The net heat plot against netmeta 3.3's netheat (fixtures <case>_heat.json from
tests/fixtures/netmeta/generate.R, common and random effects).

To 1e-6: every design contrast's inconsistency share (Q.inc.design), the matrix of changes on
detaching each design (netheat's diff), the hat-matrix contributions and netheat's tau^2 for random
effects (tau.within); exactly: the design contrasts and their labels, which designs netheat leaves
out, the clustering order, the merge tree, the 40 colours it draws with and the clipped matrix and
sizes it hands to its image routine; and where netheat draws nothing, that it draws nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hatmeta.methods.netheat import _hclust_complete, _manhattan, netheat
from hatmeta.methods.network import nma

FIX = Path(__file__).parents[1] / "fixtures" / "netmeta"
TOL = 1e-6
# case: (csv, measure, reference) as generate.R fits them
CASES = {"senn2013": ("senn2013.csv", "MD", "plac"), "smokingcessation": ("smokingcessation.csv", "OR", "A"),
         "woods2010": ("woods2010.csv", "OR", "Placebo"), "stowe2010": ("stowe2010.csv", "MD", "Placebo"),
         "dong2013": ("dong2013_fit.csv", "OR", "Placebo"), "heat_hatlike": ("heat_hatlike.csv", "OR", "A"),
         "heat_star": ("heat_star.csv", "OR", "A"), "heat_twodesigns": ("heat_twodesigns.csv", "OR", "A")}
DRAWN = ["senn2013", "smokingcessation", "stowe2010", "dong2013"]
MODELS = ["common", "random"]


def fixture(case, model):
    return json.loads((FIX / f"{case}_heat.json").read_text())[model]


def heat(case, model):
    csv, measure, ref = CASES[case]
    res = nma(FIX / csv, measure, reference=ref)
    return netheat(res, random=model == "random")


def arr(rows):
    return np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=float)


def close(a, b, tol=TOL):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= tol * np.maximum(1.0, np.abs(b))))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("case", list(CASES))
def test_design_contrasts_and_their_inconsistency_shares_are_netmetas(case, model):
    R, h = fixture(case, model), heat(case, model)
    if not h.rows:  # refused before the design model (no loop, two designs): netheat refuses too
        assert R["warning"] is not None and not h.available
        return
    assert [r["label"] for r in h.rows] == R["labels"]
    assert [r["design"] for r in h.rows] == R["design"]
    assert close([r["q_inc"] for r in h.rows], R["q_inc"])
    assert h.tau2 == pytest.approx(R["tau2"], rel=TOL, abs=1e-12)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("case", list(CASES))
def test_netheat_draws_where_netmeta_draws_and_refuses_where_it_refuses(case, model):
    R, h = fixture(case, model), heat(case, model)
    assert h.available == (R["warning"] is None), (R["warning"], h.reason)
    if not h.available:
        key = {"loop": "no loop", "small number of designs": "more than two designs",
               "Insufficient number": "fewer than two designs"}
        assert any(k in R["warning"] and v in h.reason for k, v in key.items()), (R["warning"], h.reason)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("case", DRAWN)
def test_heat_matrix_contributions_and_order_are_netheats(case, model):
    R, h = fixture(case, model), heat(case, model)
    assert R["warning"] is None and h.available
    assert list(h.labels) == R["plot"]["order"]
    pos = {lab: i for i, lab in enumerate(R["labels"])}
    idx = [pos[lab] for lab in h.labels]
    # Shown exactly where netheat's column can be computed (its 'wi' rule), the rest named with a reason.
    diff = arr(R["diff"])
    computable = [not np.isnan(diff[:, j]).all() for j in range(len(R["labels"]))]
    assert [r["shown"] for r in h.rows] == computable
    assert all(r.get("reason") for r in h.rows if not r["shown"])
    assert close(h.heat, diff[np.ix_(idx, idx)])
    assert close(h.contribution, arr(R["H"])[np.ix_(idx, idx)])


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("case", DRAWN)
def test_what_netheat_hands_its_image_routine_is_what_the_plot_draws(case, model):
    """netheat's va.image gets t(tn) + max|tn| (tn: -heat clipped at +-8, rows reversed), the sizes
    t(Hp reversed) and 40 colours; the figure module computes the same."""
    from hatmeta.render.plots.netheat import netheat_palette

    R, h = fixture(case, model), heat(case, model)
    tn = np.clip(-h.heat, -8, 8)[::-1]
    assert close(arr(R["plot"]["x"]), tn.T + np.abs(tn).max())
    assert close(arr(R["plot"]["Hpn"]), h.contribution[::-1].T)
    assert netheat_palette(tn) == R["plot"]["col"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("case", DRAWN)
def test_the_clustering_is_rs_hclust_merge_for_merge(case, model):
    R, h = fixture(case, model), heat(case, model)
    pos = {lab: i for i, lab in enumerate(R["labels"])}
    keep = [pos[r["label"]] for r in h.rows if r["shown"]]
    T = arr(R["diff"])[np.ix_(keep, keep)] * -1
    merge, order = _hclust_complete(_manhattan(T) + _manhattan(T.T))
    assert [list(m) for m in merge] == R["plot"]["merge"]
    assert [R["labels"][keep[i]] for i in order] == R["plot"]["order"]
