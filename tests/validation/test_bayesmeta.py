"""The exact Bayesian engine against bayesmeta (tests/fixtures/bayesmeta/, made by generate.R there
with tight integration settings) to 1e-3 on the analysis scale, and the published Crins example."""

import csv
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hatmeta.bayes import bayes_exact, parse_tau_prior, turner_names
from hatmeta.errors import InputError

from ..conftest import FIXTURES

BM = FIXTURES / "bayesmeta"
REF = json.loads((BM / "bayesmeta_reference.json").read_text())


def load(name):
    with open(BM / f"{name}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["study"] for r in rows], [float(r["yi"]) for r in rows], [float(r["vi"]) for r in rows]


@pytest.mark.parametrize("case", REF["cases"], ids=[c["name"] for c in REF["cases"]])
def test_agrees_with_bayesmeta(case):
    studies, y, v = load(case["data"].split("_")[0])
    r = bayes_exact(y, v, studies, tau_prior=case["tau_prior"], mu_prior_sd=case["mu_prior_sd"],
                    mu_prior_mean=case["mu_prior_mean"], threshold=case["threshold"])
    for q in ("mu", "tau", "prediction"):
        got = getattr(r, q).to_dict()
        for key, expected in case[q].items():
            assert got[key] == pytest.approx(expected, abs=1e-3), (q, key)
    for got, exp in zip(r.theta, case["theta"]):
        assert got["study"] == exp["study"]
        for key in ("mean", "median", "sd", "low", "high"):
            assert got[key] == pytest.approx(exp[key], abs=1e-3), (exp["study"], key)
    assert r.probabilities["p_favours_treatment"] == pytest.approx(case["p_mu_below_0"], abs=1e-4)
    assert r.probabilities["p_beyond_threshold"] == pytest.approx(case["p_mu_below_threshold"], abs=1e-4)
    # The prior density as bayesmeta evaluates it.
    prior = parse_tau_prior(case["tau_prior"])
    dens = case["prior_density"]
    assert prior.pdf(np.array(dens["tau"])) == pytest.approx(np.array(dens["density"]), rel=1e-9, abs=1e-300)


def test_published_crins_example():
    """Roever 2020 (J Stat Softw 93(6)), Crins et al. 2014, half-normal(0.5) on tau, N(0, 4^2) on mu:
    posterior median of mu -1.5735, shortest 95% interval [-2.2311, -0.9263]."""
    studies, y, v = load("crins2014")
    r = bayes_exact(y, v, studies, tau_prior="halfnormal:0.5", mu_prior_sd=4)
    assert r.mu.median == pytest.approx(-1.5735, abs=1e-3)
    assert r.mu.shortest_low == pytest.approx(-2.2311, abs=1e-3)
    assert r.mu.shortest_high == pytest.approx(-0.9263, abs=1e-3)


def test_turner_priors_are_transcribed_from_table_iv():
    rows = REF["turner"]["rows"]
    assert len(turner_names()) == len(rows) + 1
    for row in rows:
        slug = lambda t: re.sub(r"[^a-z0-9]+", "-", t.lower()).strip("-")  # noqa: E731
        p = parse_tau_prior(f"turner:{slug(row['outcome'])}/{slug(row['comparison'])}")
        assert p.kind == "lognormal" and p.params == (row["mu"], row["sigma"])
    assert parse_tau_prior("turner:all-cause-mortality/pharmacological-vs-placebo-control").params == (-3.95, 1.34)
    m = parse_tau_prior("turner:marginal")
    assert m.params == (REF["turner"]["marginal"]["mu"], REF["turner"]["marginal"]["sigma"])


@pytest.mark.parametrize("text", ["halfnormal", "halfnormal:-1", "lognormal:1", "cauchy:1", "turner:nope",
                                  "uniform:abc"])
def test_bad_priors_are_named(text):
    with pytest.raises(InputError) as err:
        parse_tau_prior(text)
    assert err.value.column == "--tau-prior"


def test_a_mistyped_turner_prior_names_the_nearest_and_the_parts():
    with pytest.raises(InputError) as err:
        parse_tau_prior("turner:all-cause-mortality/pharmacological-vs-placebo")
    msg = str(err.value)
    assert "nearest: all-cause-mortality/pharmacological-vs-placebo-control" in msg
    assert "OUTCOME one of adverse-events," in msg and "COMPARISON one of non-pharmacological" in msg
    assert len(msg) < 1500  # the 80 full names made a 6,000-character line


effects = st.lists(st.tuples(st.floats(-2, 2, allow_subnormal=False), st.floats(0.01, 1, allow_subnormal=False)),
                   min_size=2, max_size=8)


@settings(max_examples=25, deadline=None)
@given(effects, st.randoms(use_true_random=False))
def test_study_order_does_not_matter(rows, rnd):
    a = bayes_exact([r[0] for r in rows], [r[1] for r in rows])
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    b = bayes_exact([r[0] for r in shuffled], [r[1] for r in shuffled])
    assert b.mu.median == pytest.approx(a.mu.median, abs=1e-9)
    assert b.tau.high == pytest.approx(a.tau.high, abs=1e-6)


@settings(max_examples=25, deadline=None)
@given(effects, st.floats(-1, 1))
def test_shifting_data_and_mu_prior_together_shifts_mu(rows, c):
    """The model is location-equivariant when the prior mean of mu moves with the data."""
    y, v = [r[0] for r in rows], [r[1] for r in rows]
    a = bayes_exact(y, v)
    b = bayes_exact([x + c for x in y], v, mu_prior_mean=c)
    for q in ("mean", "median", "low", "high"):
        assert getattr(b.mu, q) == pytest.approx(getattr(a.mu, q) + c, abs=1e-6)
    assert b.tau.median == pytest.approx(a.tau.median, abs=1e-9)


def test_intervals_are_ordered_and_probabilities_add_up():
    studies, y, v = load("bcg")
    r = bayes_exact(y, v, studies, threshold=-0.2, benefit="lower")
    for s in (r.mu, r.tau, r.prediction):
        assert s.low < s.median < s.high and s.shortest_low < s.shortest_high
    assert r.prediction.sd > r.mu.sd
    up = bayes_exact(y, v, studies, threshold=-0.2, benefit="higher")
    assert r.probabilities["p_favours_treatment"] + up.probabilities["p_favours_treatment"] == pytest.approx(1)
    assert r.probabilities["p_beyond_threshold"] < r.probabilities["p_favours_treatment"]


@pytest.mark.parametrize("name, prior",
                         [("bcg", "halfcauchy:0.5"), ("bcg3", "uniform:2"), ("crins2014", "turner:marginal")])
def test_integration_over_tau_has_converged(monkeypatch, name, prior):
    """Four times as many Gauss-Legendre panels in log(tau) move no summary by more than 1e-9:
    the differences from bayesmeta (about 4e-5 at most) are not integration error on our side."""
    import hatmeta.bayes.exact as exact

    studies, y, v = load(name)

    def numbers(r):
        out = [x for s in (r.mu, r.tau, r.prediction) for x in s.to_dict().values()]
        return np.array(out + [t[q] for t in r.theta for q in ("mean", "median", "sd", "low", "high")])

    coarse = numbers(bayes_exact(y, v, studies, tau_prior=prior))
    monkeypatch.setattr(exact, "N_PANELS", 4 * exact.N_PANELS)
    fine = numbers(bayes_exact(y, v, studies, tau_prior=prior))
    assert np.max(np.abs(coarse - fine)) < 1e-9
