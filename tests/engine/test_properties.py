"""Property-based checks of the engine (hypothesis): invariances every correct estimator must keep."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hatmeta.fit import core
from hatmeta.fit.effects import escalc
from hatmeta.fit.models import rma
from hatmeta.io.trial_table import table_from_rows

METHODS = ["DL", "REML", "ML", "PM", "HE", "SJ", "EB"]

studies = st.lists(
    st.tuples(st.floats(-3, 3, allow_nan=False, allow_subnormal=False),
              st.floats(0.005, 2.0, allow_nan=False, allow_subnormal=False)),
    min_size=3, max_size=15)


def _es(rows):
    table = table_from_rows([["study", "yi", "vi"]] + [[f"s{i}", repr(y), repr(v)] for i, (y, v) in enumerate(rows)])
    return escalc(table, "GEN")


@settings(max_examples=60, deadline=None)
@given(studies, st.sampled_from(METHODS), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(rows, method, rnd):
    a = rma(_es(rows), method)
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    b = rma(_es(shuffled), method)
    assert b.estimate == pytest.approx(a.estimate, rel=1e-9, abs=1e-10)
    assert b.tau2 == pytest.approx(a.tau2, rel=1e-7, abs=1e-10)
    assert b.q == pytest.approx(a.q, rel=1e-9, abs=1e-10)


@settings(max_examples=60, deadline=None)
@given(studies, st.sampled_from(METHODS), st.floats(-5, 5, allow_nan=False))
def test_shifting_every_effect_shifts_the_estimate(rows, method, c):
    a = rma(_es(rows), method)
    b = rma(_es([(y + c, v) for y, v in rows]), method)
    assert b.estimate == pytest.approx(a.estimate + c, rel=1e-7, abs=1e-7)
    assert b.tau2 == pytest.approx(a.tau2, rel=1e-6, abs=1e-9)
    assert b.se == pytest.approx(a.se, rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(studies, st.sampled_from(METHODS), st.sampled_from(["wald", "hksj"]), st.sampled_from(["t", "z"]))
def test_estimate_lies_inside_its_intervals(rows, method, ci, pi):
    r = rma(_es(rows), method, ci=ci, pi=pi)
    assert r.ci_low <= r.estimate <= r.ci_high
    assert (r.pi_low <= r.ci_low + 1e-12 and r.ci_high <= r.pi_high + 1e-12) or ci == "hksj"
    assert r.pi_low <= r.estimate <= r.pi_high
    assert r.tau2 >= 0 and r.tau2_ci_low <= r.tau2_ci_high
    assert r.tau2_ci_low <= r.tau2 + 1e-9 or method not in ("PM", "EB")  # PM lies in its own Q-profile CI
    assert 0 <= r.i2 <= 100
    assert sum(s.weight for s in r.studies) == pytest.approx(100)


@settings(max_examples=60, deadline=None)
@given(studies, st.sampled_from(METHODS))
def test_random_equals_common_effect_when_tau2_is_zero(rows, method):
    r = rma(_es(rows), method)
    fe = rma(_es(rows), "FE")
    if r.tau2 == 0:
        assert r.estimate == pytest.approx(fe.estimate, rel=1e-12, abs=1e-12)
        assert r.se == pytest.approx(fe.se, rel=1e-12)


def test_homogeneous_effects_give_zero_tau2_for_every_estimator():
    rows = [(0.3, v) for v in (0.1, 0.2, 0.05, 0.4)]
    for method in METHODS:
        r = rma(_es(rows), method)
        assert r.tau2 == 0
        assert r.estimate == pytest.approx(0.3)


@settings(max_examples=40, deadline=None)
@given(st.lists(studies, min_size=1, max_size=6), st.sampled_from(["REML", "ML", "PM", "DL"]))
def test_vectorised_groups_equal_separate_fits(groups, method):
    y = np.concatenate([[r[0] for r in g] for g in groups])
    v = np.concatenate([[r[1] for r in g] for g in groups])
    gid = np.concatenate([[j] * len(g) for j, g in enumerate(groups)]).astype(np.intp)
    f = core.fit(core.Groups(y, v, gid, len(groups)), method=method)
    for j, g in enumerate(groups):
        one = rma(_es(g), method)
        assert f.estimate[j] == pytest.approx(one.estimate, rel=1e-9, abs=1e-12)
        assert f.tau2[j] == pytest.approx(one.tau2, rel=1e-7, abs=1e-12)


def test_a_vanishing_q_gives_zero_i2_without_a_warning():
    """Hypothesis found estimates 1e-160 apart: Q is subnormal and (Q - df) / Q overflowed."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = rma(_es([(0.0, 1.0), (1e-160, 1.0), (0.0, 1.0)]), method="REML")
    assert 0 < res.q < 1e-300 and res.i2 == 0.0
