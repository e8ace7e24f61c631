"""Log hazard ratios from trial summaries (hatmeta/fit/conversions_hr.py) against Parmar et al. (1998)'s equations
computed in R on summaries R's survival package gives for three real trials (tests/fixtures/hazard_ratio/generate.R):
survdiff's log-rank O, E, V and p, coxph's HR with its Wald CI."""

import json

import pytest

from hatmeta.errors import InputError
from hatmeta.fit.conversions_hr import log_hr_from_ci, log_hr_from_oe, log_hr_from_p

from ..conftest import FIXTURES

REF = json.loads((FIXTURES / "hazard_ratio" / "hazard_ratio.json").read_text())
CASES = [pytest.param(c, id=c["id"]) for c in REF["cases"]]
REL = 1e-12


def check(r, ref):
    assert r.values["log_hr"] == pytest.approx(ref["log_hr"], rel=REL)
    assert r.values["se"] ** 2 == pytest.approx(ref["var"], rel=REL)
    # Tierney et al.'s O - E and V for the same estimate
    assert r.values["v"] == pytest.approx(1 / ref["var"], rel=REL)
    assert r.values["o_minus_e"] == pytest.approx(ref["log_hr"] / ref["var"], rel=REL)


@pytest.mark.parametrize("case", CASES)
def test_from_log_rank_o_minus_e_and_v(case):
    r = log_hr_from_oe(case["o_minus_e"], case["v"])
    check(r, case["ref"]["oe_v"])
    assert r.values["o_minus_e"] == pytest.approx(case["o_minus_e"], rel=REL) and "eqs. 4, 6" in r.source


@pytest.mark.parametrize("case", CASES)
def test_from_observed_and_expected_events(case):
    r = log_hr_from_oe(observed_treat=case["observed_treat"], expected_treat=case["expected_treat"],
                       observed_ctrl=case["observed_ctrl"], expected_ctrl=case["expected_ctrl"])
    check(r, case["ref"]["observed_expected"])


@pytest.mark.parametrize("case", CASES)
def test_from_hr_and_ci_gives_back_coxphs_log_hr_and_se(case):
    cox = case["cox"]
    r = log_hr_from_ci(cox["hr"], cox["ci_low"], cox["ci_high"])
    check(r, case["ref"]["ci"])
    assert r.values["log_hr"] == pytest.approx(cox["log_hr"], rel=REL)
    assert r.values["se"] == pytest.approx(cox["se"], rel=1e-10)
    assert not r.notes


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layout", ["per_arm", "allocation", "equal", "one_sided"])
def test_from_log_rank_p_and_events(case, layout):
    c = case
    if layout == "per_arm":
        r, ref = log_hr_from_p(c["p"], c["sign"], c["observed_treat"], c["observed_ctrl"]), "p_events_per_arm"
    elif layout == "allocation":
        r = log_hr_from_p(c["p"], c["sign"], events=c["observed_treat"] + c["observed_ctrl"], n_treat=c["n_treat"],
                          n_ctrl=c["n_ctrl"])
        ref = "p_events_allocation"
    elif layout == "equal":
        r, ref = log_hr_from_p(c["p"], c["sign"], events=c["observed_treat"] + c["observed_ctrl"]), "p_events_equal"
    else:
        r = log_hr_from_p(c["p"] / 2, c["sign"], c["observed_treat"], c["observed_ctrl"], sides=1)
        ref = "p_one_sided"
    check(r, c["ref"][ref])
    # the sign follows the trial: HR < 1 where the research arm had fewer events than expected
    assert (r.values["hr"] < 1) == (c["o_minus_e"] < 0)
    assert "p" in r.method and "Parmar" in r.source


def test_tierneys_example_p_value_gives_the_printed_z():
    """Tierney et al.'s example of their eq. 14: a two-sided log-rank p of 0.075 gives a z of 1.78, as printed
    (and discussed) in the response to the article, Trials 2013, 14:391."""
    r = log_hr_from_p(0.075, -1, 40, 50)
    z = -r.values["o_minus_e"] / r.values["v"] ** 0.5
    assert round(z, 2) == 1.78 and r.values["v"] == pytest.approx(40 * 50 / 90)


@pytest.mark.parametrize("call, message", [
    (lambda: log_hr_from_oe(-3.2, 0), "positive"),
    (lambda: log_hr_from_oe(-3.2), "give o_minus_e and v"),
    (lambda: log_hr_from_ci(0.7, 0.8, 1.1), "outside its CI"),
    (lambda: log_hr_from_ci(0.7, -0.1, 1.1), "outside its CI|positive"),
    (lambda: log_hr_from_ci(0.7, 0.7, 0.7), "no width"),
    (lambda: log_hr_from_p(0.03, None, 40, 50), "no direction"),
    (lambda: log_hr_from_p(1.2, -1, 40, 50), "strictly between"),
    (lambda: log_hr_from_p(0.03, -1, 40, 50, events=100), "not events_treat"),
    (lambda: log_hr_from_p(0.03, -1, events=90, n_treat=50), "both n_treat and n_ctrl"),
    (lambda: log_hr_from_p(0.03, -1), "events"),
])
def test_impossible_inputs_are_one_line_errors(call, message):
    with pytest.raises(InputError, match=message):
        call()
