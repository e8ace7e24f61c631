"""The Bayesian NMA's data layout and input checks (hatmeta.bayes.network.prepare), and the
command line's refusals, all before anything is sampled."""

import subprocess
import sys

import numpy as np
import pytest

from hatmeta.bayes.network import prepare
from hatmeta.errors import InputError
from hatmeta.io.network_table import read_network

from ..conftest import FIXTURES, ROOT

TSD = FIXTURES / "tsd"


def table(rows):
    head, *body = rows
    return read_network({h: [r[i] for r in body] for i, h in enumerate(head)})


def test_smoking_study_baselines_follow_the_treatment_order():
    d = prepare(read_network(TSD / "smoking.csv"), "OR", "A")
    assert d.treatments == ("A", "B", "C", "D") and d.likelihood == "binomial"
    assert d.n_data == 50 and len(d.studies) == 24 and d.c_study.size == 26
    # study 2 (B, C, D): B is its baseline, and its two contrasts form one block
    s2 = d.studies.index("study 2")
    start, m = d.blocks[s2]
    assert m == 2 and set(d.c_base[start:start + m]) == {1} and list(d.c_trt[start:start + m]) == [2, 3]


def test_reference_goes_first_and_changes_no_baseline_of_a_two_arm_study():
    d = prepare(read_network(TSD / "thrombolytics.csv"), "OR", "SK")
    assert d.treatments[0] == "SK" and len(d.treatments) == 9 and d.n_data == 102


def test_contrast_level_multi_arm_covariance_is_tsd2s_baseline_variance():
    d = prepare(read_network(TSD / "parkinsons_contrast.csv"), "MD", "1")
    s3 = d.studies.index("study 3")
    cov = d.cov[s3]
    # TSD2 Example 6: se 0.71774604 and 0.694988091 of the differences from arm 1, V = 0.254736842
    assert cov[0, 0] == pytest.approx(0.71774604**2, rel=1e-12)
    assert cov[1, 1] == pytest.approx(0.694988091**2, rel=1e-12)
    assert cov[0, 1] == pytest.approx(0.254736842, rel=1e-9)
    assert d.n_data == 8 and list(d.y[d.blocks[s3][0]:][:2]) == [-2.3, -0.9]


def test_arm_means_give_se_from_sd_and_n():
    d = prepare(read_network(TSD / "parkinsons_arm.csv"), "MD", "1")
    assert d.likelihood == "normal" and d.n_data == 15
    assert d.se[0] == pytest.approx(0.504, rel=1e-12) and d.y[0] == -1.22


@pytest.mark.parametrize("measure, layout", [("RR", "smoking.csv"), ("SMD", "parkinsons_arm.csv")])
def test_a_measure_the_model_does_not_have_is_refused(measure, layout):
    with pytest.raises(InputError, match="--measure"):
        prepare(read_network(TSD / layout), measure, None)


def test_disconnected_network_is_named():
    t = table([["study", "treatment", "events", "n"], ["s1", "A", 1, 10], ["s1", "B", 2, 10],
               ["s2", "C", 1, 10], ["s2", "D", 3, 10]])
    with pytest.raises(InputError, match=r"disconnected: 2 separate sub-networks, \{A, B\}; \{C, D\}"):
        prepare(t, "OR", "A")


def test_one_arm_study_is_refused():
    t = table([["study", "treatment", "events", "n"], ["s1", "A", 1, 10], ["s1", "B", 2, 10], ["s2", "A", 1, 10]])
    with pytest.raises(InputError, match="'s2' has one arm"):
        prepare(t, "OR", "A")


def test_unknown_reference_is_refused():
    with pytest.raises(InputError, match="'Z' is not in the network"):
        prepare(read_network(TSD / "smoking.csv"), "OR", "Z")


def test_multi_arm_contrasts_need_every_pair_and_must_agree():
    rows = [["study", "treat1", "treat2", "yi", "se"], ["s1", "B", "A", 1.0, 0.5], ["s1", "C", "A", 2.0, 0.5]]
    with pytest.raises(InputError, match="gives 2 of its 3 comparisons"):
        prepare(table(rows), "GEN", "A")
    with pytest.raises(InputError, match="differs from the difference"):
        prepare(table(rows + [["s1", "C", "B", 1.5, 0.6]]), "GEN", "A")
    ok = prepare(table(rows + [["s1", "B", "C", -1.0, 0.6]]), "GEN", "A")  # the pair may be given either way
    assert np.allclose(ok.y, [1.0, 2.0]) and ok.cov[0][0, 1] == pytest.approx((0.25 + 0.25 - 0.36) / 2)


def test_contrast_ses_that_fit_no_arms_are_refused():
    rows = [["study", "treat1", "treat2", "yi", "se"], ["s1", "B", "A", 1.0, 0.1], ["s1", "C", "A", 2.0, 0.1],
            ["s1", "C", "B", 1.0, 2.0]]
    with pytest.raises(InputError, match="do not fit one set of arms"):
        prepare(table(rows), "GEN", "A")


def run(*args):
    return subprocess.run([sys.executable, "-m", "hatmeta.cli", "nma", *args], capture_output=True, text=True,
                          cwd=ROOT)


@pytest.mark.parametrize("extra, option", [
    (["--method", "REML"], "--method"),
    (["--graph", "g.png"], "--graph"),
    (["--prior", "turner:nothing"], "--tau-prior"),
    (["--ume-multiarm", "independent"], "--ume-multiarm"),
    (["--draws", "3"], "--draws"),
    (["--model", "ume", "--level", "1.5"], "--level"),
])
def test_bayes_options_are_checked_before_sampling(extra, option):
    p = run("--data", str(TSD / "smoking.csv"), "--measure", "OR", "--reference", "A", "--bayes", *extra)
    assert p.returncode == 2 and option in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_bayes_only_options_need_bayes():
    p = run("--data", str(TSD / "smoking.csv"), "--measure", "OR", "--model", "ume")
    assert p.returncode == 2 and "--bayes" in p.stderr
