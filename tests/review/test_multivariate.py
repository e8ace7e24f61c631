"""The multivariate analysis of retention at 26 and 52 weeks (analyses/multivariate/): which trials enter
at which time point, every trial named with its reason, the within-trial correlation stated as an
assumption with its sensitivity range, what the rows do and do not identify, the spec's checks, and
`hatmeta pool retention-multivariate` and its report page."""

import json
import shutil
import subprocess
import sys

import pytest

from hatmeta.errors import InputError

from ..conftest import ROOT

NAME = "retention-multivariate"


@pytest.fixture(scope="module")
def fitted():
    from hatmeta.review.multivariate import pool_multivariate

    return pool_multivariate(NAME)


def test_each_trial_enters_at_the_time_points_it_reports(fitted):
    res, an = fitted
    assert [(t, w) for t, w, _ in an.rows] == [("haasen2007", 52.0), ("naomi2009", 52.0), ("riott2010", 26.0)]
    contributes = {t: {w: not why for w, why in st.items()} for t, _, st in res.contributions}
    assert contributes == {"haasen2007": {26.0: False, 52.0: True}, "naomi2009": {26.0: False, 52.0: True},
                           "riott2010": {26.0: True, 52.0: False}}


def test_every_trial_is_accounted_for_with_a_reason(fitted):
    res, an = fitted
    named = {t for t, _, _ in res.contributions} | {t for t, _ in res.omitted}
    assert named == set(an.extraction.trial_ids())
    assert all(why for _, why in res.omitted)
    status = {t: st for t, _, st in res.contributions}
    # a figure sought and not found, from the extraction's 'not reported' row at that time point
    assert status["haasen2007"][26.0].startswith("Not reported in any source opened")
    assert "12 months only" in status["naomi2009"][26.0]
    # a time point after the trial's randomised phase: not measured
    assert "randomised phase ended at 26 weeks" in status["riott2010"][52.0]
    omitted = dict(res.omitted)
    assert omitted["vandenbrink2003_inh"].startswith("[eligibility] route")
    assert omitted["hartnoll1980"].startswith("excluded by the analysis")


def test_the_within_trial_correlation_is_an_assumption_with_a_sensitivity_range(fitted):
    res, _ = fitted
    d = res.to_dict()
    assert d["within_rho"]["value"] == 0.7 and d["within_rho"]["source"] == "assumption"
    assert d["within_rho"]["reason"].startswith("An assumption, not a published value")
    assert [s["within_rho"] for s in d["sensitivity"]] == [0.3, 0.5, 0.7, 0.9]


def test_without_a_trial_at_both_time_points_the_output_says_what_is_not_identified(fitted):
    res, _ = fitted
    assert res.random_used == "~ 1 | trial"
    assert res.rho_between is None
    said = " ".join(res.identified)
    assert "No trial contributes more than one time point" in said
    assert "not identified" in said
    assert "comparison between trials" in said  # the 52-vs-26 contrast is between trials
    assert "26 weeks rests on one trial (Strang 2010 (UK))" in said  # named as pool names trials
    # and the sensitivity table shows it: the same numbers at every correlation
    first = res.sensitivity[0]
    for s in res.sensitivity[1:]:
        assert [e.estimate for e in s.estimates] == [e.estimate for e in first.estimates]
        assert s.tau2 == first.tau2


def test_the_26_week_estimate_is_riotts_own_effect(fitted):
    """With tau^2 on 0, the 26-week coefficient is RIOTT's log RR (38/43 vs 29/42) and its SE RIOTT's."""
    import math

    res, _ = fitted
    e26 = res.estimates[0]
    assert res.tau2 == pytest.approx(0, abs=1e-10)
    assert e26.estimate == pytest.approx(math.log((38 / 43) / (29 / 42)), rel=1e-9)
    assert e26.se == pytest.approx(math.sqrt(1 / 38 - 1 / 43 + 1 / 29 - 1 / 42), rel=1e-6)


def test_with_pairs_the_structured_model_and_rho_are_used(tmp_path):
    """A copy of the extraction whose German and NAOMI 26-week rows hold synthetic counts (the validation
    fixture's): both trials then contribute both time points, V has covariances and rho is estimated."""
    import importlib.util

    from hatmeta.review.multivariate import pool_multivariate

    here = ROOT / "tests" / "fixtures" / "hat-multivariate"
    spec = importlib.util.spec_from_file_location("hat_mv_export", here / "export_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res, an = pool_multivariate(NAME, data_dir=mod.synthetic_extraction(tmp_path / "extracted"))
    assert an.paired() == ["haasen2007", "naomi2009"]
    assert res.random_used == "~ timepoint | trial (struct CS)"
    assert res.rho_between is not None and -1 <= res.rho_between <= 1
    assert "2 trial(s) contribute more than one time point" in " ".join(res.identified)
    assert "V is diagonal" not in " ".join(res.identified)


def _spec(tmp_path, edit):
    src = ROOT / "analyses" / "multivariate" / f"{NAME}.toml"
    folder = tmp_path / "analyses" / "multivariate"
    folder.mkdir(parents=True)
    text = edit(src.read_text())
    (folder / f"{NAME}.toml").write_text(text)
    return tmp_path / "analyses"


@pytest.mark.parametrize("edit, message, column", [
    (lambda t: t.replace("within_rho = 0.7", "within_rho = 1.2"), "strictly between -1 and 1",
     "multivariate.within_rho"),
    (lambda t: t.replace("timepoints = [26, 52]", "timepoints = [26]"), "at least two different time points",
     "multivariate.timepoints"),
    (lambda t: t.replace('struct = "CS"', 'strukt = "CS"'), "unknown key", "multivariate.strukt"),
    (lambda t: t.replace('random = "~ timepoint | trial"', 'random = "~ 1 | site"'), "must be one of",
     "multivariate.random"),
    (lambda t: t.replace("rho_reason = ", "rho_note = "), "unknown key", "multivariate.rho_note"),
])
def test_spec_mistakes_are_one_line_errors_naming_the_key(tmp_path, edit, message, column):
    from hatmeta.review.multivariate import read_multivariate_spec

    folder = _spec(tmp_path, edit)
    with pytest.raises(InputError) as err:
        read_multivariate_spec(NAME, folder)
    assert message in err.value.message
    assert err.value.column == column
    assert err.value.line is not None


def test_a_missing_reason_for_the_correlation_is_refused(tmp_path):
    from hatmeta.review.multivariate import read_multivariate_spec

    def drop(text):
        start = text.index("rho_reason = ")
        end = text.index('"""', text.index('"""', start) + 3) + 3
        return text[:start] + text[end:]

    with pytest.raises(InputError) as err:
        read_multivariate_spec(NAME, _spec(tmp_path, drop))
    assert err.value.column == "multivariate.rho_reason"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hatmeta.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_hatmeta_pool_runs_the_multivariate_spec_as_json_and_text():
    out = _cli("pool", NAME, "--format", "json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["analysis"] == NAME and d["k"] == 3 and [e["weeks"] for e in d["estimates"]] == [26, 52]
    assert d["fit"]["model"] == "rma.mv"
    again = _cli("pool", NAME, "--format", "json")
    assert again.stdout == out.stdout  # same inputs, same bytes
    text = _cli("pool", NAME)
    assert text.returncode == 0
    assert max(len(line) for line in text.stdout.splitlines()) <= 80
    for heading in ("Estimates per time point", "Variance components", "What the data identify",
                    "Sensitivity to the within-trial correlation", "Which trials contribute which time points",
                    "Left out (no time point)", "Why rho = 0.7"):
        assert heading in text.stdout
    left_out = text.stdout.split("Left out (no time point)")[1].split("Why rho")[0]
    assert "Hartnoll 1980 (UK): excluded" in left_out and "hartnoll1980" not in left_out  # names, as pool's text


def test_options_the_multivariate_path_does_not_take_are_refused():
    out = _cli("pool", NAME, "--method", "DL")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "--method" in out.stderr


def test_pairwise_listings_do_not_see_the_multivariate_spec():
    from hatmeta.review import list_analyses
    from hatmeta.review.multivariate import list_multivariate

    assert NAME in list_multivariate() and NAME not in list_analyses()


def test_the_report_page_names_the_assumption_and_every_trial(tmp_path):
    from hatmeta.review.multivariate import render_multivariate

    done = render_multivariate(tmp_path)
    assert [name for name, _, _ in done] == [NAME]
    page = (tmp_path / f"{NAME}.html").read_text()
    for text in ("Estimates per time point", "Variance components", "Sensitivity to the within-trial correlation",
                 "0.7 (assumed)", "An assumption, not a published value", "Which trials contribute",
                 "Strang 2010 (UK)", "Hartnoll 1980 (UK)", "Oviedo-Joekes 2016 (Canada)", "not identified"):
        assert text in page
    saved = json.loads((tmp_path / "results" / f"{NAME}-mv.json").read_text())
    assert saved["analysis"] == NAME


def test_a_refused_multivariate_analysis_is_a_page_that_says_why(tmp_path):
    """No trial at any time point (every row not reported): the page says it is not pooled and names them."""
    from hatmeta.review.multivariate import render_multivariate

    folder = _spec(tmp_path, lambda t: t.replace('outcome = "retention"', 'outcome = "mortality"'))
    out = tmp_path / "out"
    out.mkdir()
    render_multivariate(out, analyses_dir=folder)
    page = (out / f"{NAME}.html").read_text()
    assert "Not pooled" in page and "haasen2007" in page
    shutil.rmtree(out)
