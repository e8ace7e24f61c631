"""Analyses: spec + fixture extraction -> one comparison per trial, checked by hand against the raw rows."""

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from hatmeta.errors import InputError
from hatmeta.review import build_analysis, list_analyses, load_analysis, load_extraction, read_spec
from hatmeta.review.api import pool_analysis
from hatmeta.review.spec import spec_path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"

VALID = FIXTURES / "evidence" / "valid"
SPECS = FIXTURES / "evidence" / "analyses"


def test_retention_table_by_hand():
    a = load_analysis("retention", data_dir=VALID, analyses_dir=SPECS)
    t = a.table
    # By hand from tests/fixtures/evidence/valid/outcomes.csv:
    #  haasen2007: dam 346/515, mmt 200/500 (52 weeks, the only time point)
    #  naomi2009: two definitions at 52 weeks; the spec prefers "assigned": 77/115 vs 45/111
    #             (not 'any addiction treatment' 101/115 vs 60/111); the hdm arm is not a control
    #  riott2010: latest time point <= 52 weeks is 26 (not 12): dam 38/43 vs mmt 29/42; sim (34/42) left out
    #  perneger1998: the control's figure is 'not reported' -> omitted; salome2016 excluded by the spec
    assert t.layout == "binary"
    assert t.studies == ("haasen2007", "naomi2009", "riott2010")
    assert t.columns["events_treat"].tolist() == [346, 77, 38]
    assert t.columns["n_treat"].tolist() == [515, 115, 43]
    assert t.columns["events_ctrl"].tolist() == [200, 45, 29]
    assert t.columns["n_ctrl"].tolist() == [500, 111, 42]
    assert t.extra["label"] == ("Haasen 2007 (Germany)", "Oviedo-Joekes 2009 (Canada)", "Strang 2010 (UK)")
    assert t.extra["country"] == ("Germany", "Canada", "UK")
    assert t.extra["control_type"] == ("mmt", "mmt", "mmt")
    assert t.extra["followup_weeks"] == ("52", "52", "26")
    assert t.extra["followup"] == ("over 26 weeks", "over 26 weeks", "up to 26 weeks")
    assert t.extra["timepoint_weeks"] == ("52", "52", "26")
    assert t.extra["year"] == ("2007", "2009", "2010")
    assert t.extra["route"] == ("injected",) * 3
    # Errors later in the chain point at the outcomes.csv line of each trial's experimental figure.
    assert t.path == str(VALID / "outcomes.csv") and t.lines == (2, 6, 8)
    assert dict(a.omitted) == {
        "perneger1998": "conventional not reported (control was not a treatment programme; looked in the abstract)",
        "salome2016": "excluded by the analysis: active comparator"}
    assert "haasen2007 dam: derived figure: 67.2% of 515 = 346.1, rounded to 346" in a.notes
    assert any(n.startswith("definitions differ across trials: haasen2007: retained in assigned treatment; "
                            "naomi2009: retained on assigned medication") for n in a.notes)
    assert any("sources disagree on control retention" in n and "uses 40.0%" in n for n in a.notes)
    assert a.spec.benefit == "higher" and a.spec.experimental_label == "HAT" and a.spec.control_label == "methadone"


def test_retention_against_engine_by_hand():
    """log RR and its variance by hand from the raw counts, and the inverse-variance common effect."""
    from hatmeta.fit.effects import escalc

    a = load_analysis("retention", data_dir=VALID, analyses_dir=SPECS)
    raw = [(346, 515, 200, 500), (77, 115, 45, 111), (38, 43, 29, 42)]
    yi = [math.log((e1 / n1) / (e2 / n2)) for e1, n1, e2, n2 in raw]
    vi = [1 / e1 - 1 / n1 + 1 / e2 - 1 / n2 for e1, n1, e2, n2 in raw]  # delta method (Cochrane Handbook 6.4.1)
    es = escalc(a.table, "RR")
    np.testing.assert_allclose(es.yi, yi, rtol=1e-12)
    np.testing.assert_allclose(es.vi, vi, rtol=1e-12)
    w = [1 / v for v in vi]
    fe = sum(wi * y for wi, y in zip(w, yi)) / sum(w)
    res, analysis = pool_analysis("retention", data_dir=VALID, analyses_dir=SPECS, method="FE", ci="wald")
    assert res.estimate == pytest.approx(fe, rel=1e-10)
    assert res.se == pytest.approx(math.sqrt(1 / sum(w)), rel=1e-10)
    assert [s["study"] for s in res.to_dict()["studies"]] == ["haasen2007", "naomi2009", "riott2010"]
    assert [(o["trial"], o["reason"]) for o in res.to_dict()["omitted"]] == list(analysis.omitted)
    assert {o["trial"]: o["criterion"] for o in res.to_dict()["omitted"]} == {
        "perneger1998": "data", "salome2016": "exclude"}


@pytest.fixture
def data(tmp_path):
    dest = tmp_path / "extracted"
    shutil.copytree(VALID, dest)
    return dest


def _spec(tmp_path, text, name="test"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


BASE = """
outcome = "retention"
measure = "RR"
benefit = "higher"
trials = ["haasen2007", "naomi2009", "riott2010"]
[arms]
experimental = ["dam"]
control = ["mmt"]
"""


def test_multi_arm_combined(data, tmp_path):
    text = (data / "arms.csv").read_text().replace("riott2010,sim,supervised injectable methadone,other",
                                                   "riott2010,sim,supervised injectable methadone,control")
    (data / "arms.csv").write_text(text)
    spec = read_spec(_spec(tmp_path, BASE.replace('control = ["mmt"]', 'control = ["mmt", "sim"]')
                           + '[timepoint]\nrule = "exact"\nweeks = 26\n'))
    a = build_analysis(spec, load_extraction(data))
    # Only riott2010 has both arms at 26 weeks: control = sim + mmt = (34 + 29) / (42 + 42).
    assert a.table.studies == ("riott2010",)
    assert (a.table.columns["events_ctrl"][0], a.table.columns["n_ctrl"][0]) == (63, 84)
    assert a.table.extra["control_type"] == ("sim+mmt",)
    assert "riott2010: control arms sim, mmt combined into one group (Cochrane Handbook 23.3.4)" in a.notes
    assert dict(a.omitted)["haasen2007"] == "[timepoint] weeks: no figures at 26 weeks"
    assert a.criteria["haasen2007"] == "[timepoint] weeks"

    refuse = read_spec(_spec(tmp_path, BASE.replace('control = ["mmt"]', 'control = ["mmt", "sim"]\n'
                                                    'multi_arm = "refuse"'), "refuse"))
    a = build_analysis(refuse, load_extraction(data))
    assert dict(a.omitted)["riott2010"].startswith("[arms] multi_arm: several control arms (sim, mmt)")


def test_role_other_never_a_control(tmp_path):
    spec = read_spec(_spec(tmp_path, BASE.replace('control = ["mmt"]', 'control = ["sim"]')))
    with pytest.raises(InputError) as exc:
        build_analysis(spec, load_extraction(VALID))
    assert "no trial contributes binary figures" in exc.value.message
    # The message stays one short line; what each trial lacks travels with the error.
    assert dict(exc.value.omitted)["riott2010"] == ("[arms] control: no control arm (sim) in arms.csv; its arms: "
                                                    "dam (experimental), sim (other), mmt (control)")


def test_overrides_and_ambiguous_definition(tmp_path):
    spec = read_spec(_spec(tmp_path, BASE + '[trial.riott2010]\ntimepoint_weeks = 12\n'
                           '[trial.naomi2009]\ndefinition = "Retained in any addiction treatment"\n'))
    a = build_analysis(spec, load_extraction(VALID))
    assert a.table.columns["events_treat"].tolist() == [346, 101, 41]
    assert a.table.columns["events_ctrl"].tolist() == [200, 60, 36]
    # Without a preference or override, naomi2009's two definitions are a choice the notes must show.
    a = build_analysis(read_spec(_spec(tmp_path, BASE, "plain")), load_extraction(VALID))
    assert a.table.columns["events_treat"].tolist() == [346, 101, 38]
    assert any(n.startswith("naomi2009: several definitions at 52 weeks; used the first in outcomes.csv, "
                            "'retained in any addiction treatment'") for n in a.notes)


def test_continuous_kept_apart_and_pooled_as_md():
    a = load_analysis("salome-days", data_dir=VALID, analyses_dir=SPECS)
    assert a.table.layout == "continuous"
    cols = a.table.columns
    assert [cols[c][0] for c in ("mean_treat", "sd_treat", "n_treat", "mean_ctrl", "sd_ctrl", "n_ctrl")] == [
        3.15, 5.1, 102, 5.5, 6.2, 100]
    # The binary spec on a continuous-only outcome omits with the reason.
    spec = read_spec(SPECS / "salome-days.toml")
    from dataclasses import replace
    with pytest.raises(InputError) as exc:
        build_analysis(replace(spec, measure="RR"), load_extraction(VALID))
    assert any("only continuous figures, measure RR needs binary ones" in r for _, r in exc.value.omitted)


def test_invalid_extraction_refused(data):
    text = (data / "outcomes.csv").read_text().replace("riott2010,illicit_use,>=50% urines negative for street "
                                                       "heroin wk 14-26 (multiple imputation),dam,26,43,31",
                                                       "riott2010,illicit_use,>=50% urines negative for street "
                                                       "heroin wk 14-26 (multiple imputation),dam,26,43,44")
    (data / "outcomes.csv").write_text(text)
    # The retention analysis does not use the bad row, and still refuses: never pool the valid part.
    with pytest.raises(InputError) as exc:
        load_analysis("retention", data_dir=data, analyses_dir=SPECS)
    assert (exc.value.file, exc.value.line, exc.value.column) == (str(data / "outcomes.csv"), 19, "events")


@pytest.mark.parametrize("text, line, column, words", [
    (BASE + "colour = 1\n", 9, "arms.colour", "unknown key"),  # TOML: it belongs to [arms]
    (BASE.replace('measure = "RR"', 'measure = "HR"'), 3, "measure", "unknown measure 'HR'"),
    (BASE.replace('benefit = "higher"', 'benefit = "up"'), 4, "benefit", "'higher' or 'lower'"),
    (BASE + "[model]\nci = \"bootstrap\"\n", 10, "model.ci", "'wald' or 'hksj'"),
    (BASE + "[grade]\nimprecision = \"bad\"\n", 10, "grade.imprecision", "must be one of"),
    (BASE + "[subgroups]\nvariables = [\"colour\"]\n", 10, "subgroups.variables", "unknown subgroup variable"),
    (BASE + "[exclude]\nsalome2016 = \"x\"\n", 9, "exclude", "not in 'trials'"),
    (BASE + "[arms2]\n", 9, "arms2", "unknown key"),
    ("outcome = \"x\"\nmeasure = = 3\n", 2, None, "not valid TOML"),
])
def test_bad_spec(tmp_path, text, line, column, words):
    path = _spec(tmp_path, text)
    with pytest.raises(InputError) as exc:
        read_spec(path)
    e = exc.value
    assert (e.file, e.line, e.column) == (str(path), line, column) and words in e.message, str(e)


def test_unknown_trial_and_analysis(tmp_path):
    spec = read_spec(_spec(tmp_path, BASE.replace('"riott2010"]', '"riott2010", "smith2030"]')))
    with pytest.raises(InputError, match="trial 'smith2030' is not in"):
        build_analysis(spec, load_extraction(VALID))
    with pytest.raises(InputError, match="unknown analysis 'nope'; available: retention, salome-days"):
        spec_path("nope", SPECS)


def test_bundled_specs_parse():
    names = list_analyses(ROOT / "analyses")
    assert {"retention", "illicit-use", "crime", "mortality", "sae", "salome-retention"} <= set(names)
    for name in names:
        spec = read_spec(ROOT / "analyses" / f"{name}.toml")
        assert spec.model_reason.strip(), name  # every default says why
        assert spec.grade and set(spec.grade.values()) == {"not rated"}, name  # left for the reviewer
        assert not spec.trials, name  # eligibility by rule: no hard-coded list of trials
        if name != "salome-retention":
            # Primary comparison: oral methadone only; secondary (any route / any control) adds conventional.
            secondary = name.endswith("any-route") or name == "crime"
            assert set(spec.control_arms) == ({"mmt", "conventional"} if secondary else {"mmt"}), name
            assert spec.control_roles == ("control",) and {"sim", "hdm"}.isdisjoint(spec.control_arms)
            assert spec.eligibility["route"] == (("injected", "inhaled") if secondary else ("injected",)), name


def test_outcome_override_and_arm_wording(data, tmp_path):
    # Arms of one trial may word the same definition differently: paired by time point, with a note.
    text = (data / "outcomes.csv").read_text().replace(
        "haasen2007,retention,retained in assigned treatment,mmt", "haasen2007,retention,retained on methadone,mmt")
    (data / "outcomes.csv").write_text(text)
    spec = read_spec(_spec(tmp_path, BASE + '[trial.riott2010]\noutcome = "illicit_use"\n'))
    a = build_analysis(spec, load_extraction(data))
    assert a.table.columns["events_treat"].tolist() == [346, 101, 31]
    assert a.table.columns["events_ctrl"].tolist() == [200, 60, 11]
    assert "riott2010: outcome 'illicit_use' used in place of 'retention' (set in the spec)" in a.notes
    assert ("haasen2007: the arms' definitions differ in wording: dam: retained in assigned treatment; "
            "mmt: retained on methadone") in a.notes


def test_trial_labels():
    from hatmeta.review import Row, trial_label

    def row(**v):
        return Row(file="trials.csv", line=2, values=v)

    assert trial_label(row(authors="van den Brink W, Hendriks VM", year="2003", country="Netherlands",
                           route="inhaled")) == "van den Brink 2003 (Netherlands)"
    assert trial_label(row(authors="van den Brink W, Hendriks VM", year="2003", country="Netherlands",
                           route="inhaled"), duplicate=True) == "van den Brink 2003, inhaled (Netherlands)"
    assert trial_label(row(authors="Demaret I et al.", year="2015", country="Belgium")) == "Demaret 2015 (Belgium)"
    assert trial_label(row(authors="", short_name="TADAM", year="2015", country="")) == "TADAM 2015"
