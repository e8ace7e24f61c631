"""Eligibility by rule: a trial added to a copy of the real extraction is pooled by the bundled
analyses without editing them, or named with the criterion it fails (text, JSON, add-trial)."""

import json
import math
import shutil

import pytest

from hatmeta.cli import main
from hatmeta.errors import InputError
from hatmeta.review import build_analysis, load_extraction, read_spec

from ..conftest import ROOT

TRIALS = ("trial,short_name,country,sites,authors,journal,year,volume,pages,doi,pmid,registry,blinding,"
          "hypothesis,route,n_randomised,followup_weeks,itt,source,notes\n"
          "{id},Fictional trial,Norway,Oslo,\"Nordmann K\",Fict J,2024,1,1-2,,,,open,superiority,{route},"
          "100,52,yes,Fictional test source,Fictional trial for tests.\n")
ARMS = ("trial,arm,description,role,n_randomised,source,note\n"
        "{id},dam,injectable heroin,experimental,50,Fictional test source,\n"
        "{id},{control},the control,control,50,Fictional test source,\n")
OUTCOMES = ("trial,outcome,definition,arm,timepoint_weeks,n,events,mean,sd,count,person_time,source,status,"
            "derivation,note\n"
            "{id},retention,retained in assigned treatment at 12 months,dam,52,50,40,,,,,Fictional source,reported,,\n"
            "{id},retention,retained in assigned treatment at 12 months,{control},52,50,30,,,,,Fictional source,"
            "reported,,\n")


def new_trial(folder, trial="fict2024", control="mmt", route="injected", sep=","):
    folder.mkdir()
    for name, text in (("trials.csv", TRIALS), ("arms.csv", ARMS), ("outcomes.csv", OUTCOMES)):
        body = text.format(id=trial, control=control, route=route)
        if sep != ",":
            body = body.replace('"Nordmann K"', "Nordmann K").replace(",", sep)
        (folder / name).write_text(body)
    return folder


@pytest.fixture
def data(tmp_path):
    dest = tmp_path / "extracted"
    shutil.copytree(ROOT / "data" / "extracted", dest)
    return dest


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def pool_json(data, capsys, name="retention-any-route"):
    code, out, err = run(["--data-dir", str(data), "pool", name, "--format", "json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_added_trial_is_pooled_without_editing_the_spec(data, tmp_path, capsys):
    before = pool_json(data, capsys)
    assert before["k"] == 4
    code, out, err = run(["--data-dir", str(data), "add-trial", "--from", str(new_trial(tmp_path / "new"))], capsys)
    assert code == 0, err
    # add-trial says where the trial goes, with the reason where it does not.
    assert "fict2024 enters 3 of 11 analyses:" in out
    assert "  enters  retention: dam vs mmt, 52 weeks, retained in assigned treatment at 12 months" in out
    assert "  enters  retention-any-route: dam vs mmt, 52 weeks, retained in assigned treatment at 12 months" in out
    assert "  not in  retention-26-weeks: [timepoint] max_weeks: figures only after 26 weeks" in out
    assert "  not in  crime: no row for outcome 'crime' of arms dam, mmt in outcomes.csv" in out
    assert "  not in  salome-retention: [arms] control: no control arm (hdm) in arms.csv" in out
    after = pool_json(data, capsys)
    assert after["k"] == 5
    assert [s["study"] for s in after["studies"]][-1] == "fict2024"
    fict = after["studies"][-1]
    assert (fict["events_treat"], fict["n_treat"], fict["events_ctrl"], fict["n_ctrl"]) == (40, 50, 30, 50)
    assert fict["yi"] == pytest.approx(math.log((40 / 50) / (30 / 50)), rel=1e-9)  # JSON: 10 significant digits
    assert after["estimate"] != before["estimate"]
    assert "fict2024" not in {o["trial"] for o in after["omitted"]}


def test_trial_with_an_ineligible_control_is_named_with_the_criterion(data, tmp_path, capsys):
    # Supervised injectable methadone as the control: not oral methadone or conventional treatment.
    folder = new_trial(tmp_path / "new", trial="fictsim2024", control="sim")
    code, out, err = run(["--data-dir", str(data), "add-trial", "--from", str(folder)], capsys)
    assert code == 0, err
    assert "fictsim2024 enters 0 of 11 analyses:" in out
    reason = ("[arms] control: no control arm (mmt, conventional) in arms.csv; its arms: dam (experimental), "
              "sim (control)")
    assert f"  not in  retention-any-route: {reason}" in out
    res = pool_json(data, capsys)
    assert res["k"] == 4
    entry = next(o for o in res["omitted"] if o["trial"] == "fictsim2024")
    assert entry == {"study": "fictsim2024", "trial": "fictsim2024", "reason": reason, "criterion": "[arms] control"}
    code, out, _ = run(["--data-dir", str(data), "pool", "retention-any-route", "-v"], capsys)
    assert f"omitted Nordmann 2024 (Norway): {reason}" in out  # named by its label, with the criterion


def test_every_trial_is_pooled_or_named(data, tmp_path, capsys):
    run(["--data-dir", str(data), "add-trial", "--from", str(new_trial(tmp_path / "new"))], capsys)
    ids = set(load_extraction(data).trial_ids())
    for name in ("retention", "retention-any-route", "retention-assigned", "illicit-use-any-route"):
        res = pool_json(data, capsys, name)
        pooled = [s["study"] for s in res["studies"]]
        omitted = [o["trial"] for o in res["omitted"]]
        assert sorted(pooled + omitted) == sorted(ids), name
        assert all(o["reason"] and o["criterion"] for o in res["omitted"]), name


def test_route_filter_and_definition_rule(data, tmp_path, capsys):
    """The rules issue 16's primary comparison needs: injected heroin only; a required definition."""
    text = (ROOT / "analyses" / "retention-any-route.toml").read_text()
    text = text.replace('route = ["injected", "inhaled"]', 'route = ["injected"]')
    spec_file = tmp_path / "primary.toml"
    spec_file.write_text(text)
    a = build_analysis(read_spec(spec_file), load_extraction(data))
    assert "vandenbrink2003_inh" not in a.table.studies
    assert dict(a.omitted)["vandenbrink2003_inh"] == ("[eligibility] route: route is 'inhaled'; the analysis "
                                                      "admits injected")
    assert a.criteria["vandenbrink2003_inh"] == "[eligibility] route"
    only = text.replace('prefer = ["assigned"]', 'prefer = ["assigned"]\nonly = ["assigned"]')
    spec_file.write_text(only)
    a = build_analysis(read_spec(spec_file), load_extraction(data))
    # NAOMI reports only 'any addiction treatment' under retention: a required definition leaves it out.
    assert dict(a.omitted)["naomi2009"].startswith("[definition] only: no figure for every arm whose definition "
                                                   "contains 'assigned'")
    # Control roles: admitting role 'other' makes RIOTT's supervised injectable methadone a control.
    anycontrol = text.replace('control = ["mmt", "conventional"]', 'control = ["mmt", "conventional", "sim"]')
    anycontrol = anycontrol.replace('control_role = "control"', 'control_role = ["control", "other"]')
    spec_file.write_text(anycontrol)
    a = build_analysis(read_spec(spec_file), load_extraction(data))
    assert a.table.extra["control_type"][list(a.table.studies).index("riott2010")] == "sim+mmt"


def test_explicit_exclusion_and_trials_list_still_named(data, tmp_path):
    text = (ROOT / "analyses" / "retention-any-route.toml").read_text()
    spec_file = tmp_path / "x.toml"
    spec_file.write_text(text + '\n[exclude]\nhaasen2007 = "sensitivity: without the largest trial"\n')
    a = build_analysis(read_spec(spec_file), load_extraction(data))
    assert dict(a.omitted)["haasen2007"] == "excluded by the analysis: sensitivity: without the largest trial"
    assert a.criteria["haasen2007"] == "exclude"
    spec_file.write_text('trials = ["haasen2007", "naomi2009"]\n' + text)
    a = build_analysis(read_spec(spec_file), load_extraction(data))
    assert a.table.studies == ("haasen2007", "naomi2009")
    assert a.criteria["riott2010"] == "trials"


def test_bad_eligibility_keys(tmp_path):
    text = (ROOT / "analyses" / "retention-any-route.toml").read_text()
    for bad, column in [('route = ["injected", "inhaled"]', "eligibility.route"),
                        ('colour = ["red"]', "eligibility.colour")]:
        path = tmp_path / "bad.toml"
        path.write_text(text.replace('route = ["injected", "inhaled"]', bad.replace('["injected", "inhaled"]', '"x"')
                                     if "route" in bad else bad))
        with pytest.raises(InputError) as exc:
            read_spec(path)
        assert exc.value.column == column and exc.value.line is not None
    path.write_text(text.replace('route = ["injected", "inhaled"]', 'route = ["injectd"]'))
    with pytest.raises(InputError, match=r"unknown value 'injectd'; trials\.csv route is one of: injected, inhaled"):
        read_spec(path)
    path.write_text(text.replace('control_role = "control"', 'control_role = "boss"'))
    with pytest.raises(InputError, match="role"):
        read_spec(path)


def test_add_trial_reads_semicolons_and_warns_on_sizes(data, tmp_path, capsys):
    folder = new_trial(tmp_path / "new", sep=";")
    (folder / "arms.csv").write_text((folder / "arms.csv").read_text().replace(";50;", ";45;"))
    (folder / "outcomes.csv").write_text((folder / "outcomes.csv").read_text().replace(";50;", ";45;"))
    code, out, err = run(["--data-dir", str(data), "add-trial", "--from", str(folder), "--dry-run"], capsys)
    assert code == 0, err
    assert out.startswith("would append: 1 row(s) to trials.csv, 2 row(s) to arms.csv, 2 row(s) to outcomes.csv")
    assert "enters  retention" in out
    assert "warning: fict2024: arm sizes add up to 90 (45 + 45), not the 100 randomised in trials.csv" in err
    assert "fict2024" not in load_extraction(data).trial_ids()  # dry run: nothing written


def test_add_trial_lists_every_problem(data, tmp_path, capsys):
    folder = new_trial(tmp_path / "new")
    (folder / "arms.csv").write_text((folder / "arms.csv").read_text().replace(",50,", ",60,"))
    (folder / "outcomes.csv").write_text((folder / "outcomes.csv").read_text().replace(",reported,", ",told,"))
    code, out, err = run(["--data-dir", str(data), "add-trial", "--from", str(folder)], capsys)
    assert code == 2 and "more problem" not in err
    lines = err.strip().splitlines()
    assert lines[-1] == f"{len(lines) - 1} problem(s) found; nothing written" and len(lines) - 1 >= 3
    assert any("arm sizes of fict2024 add up to 120, more than the 100 randomised" in e for e in lines)
    assert sum("column 'status'" in e for e in lines) == 2


def test_option_errors_name_the_option_and_suggest(capsys, data, tmp_path):
    code, _, err = run(["pool", "retnetion"], capsys)
    assert code == 2
    assert err.startswith("error: argument 'ANALYSIS': unknown analysis 'retnetion'; did you mean 'retention'")
    code, _, err = run(["pool", "--data", "x.csv"], capsys)
    assert code == 2 and err.startswith("error: option '--measure': ") and "column" not in err
    code, _, err = run(["--analyses-dir", str(tmp_path / "none"), "pool", "retention"], capsys)
    assert code == 2 and "option '--analyses-dir'" in err


def test_analyses_dir_option_and_next_to_the_data(data, tmp_path, capsys):
    mine = tmp_path / "specs"
    mine.mkdir()
    shutil.copy(ROOT / "analyses" / "retention-any-route.toml", mine / "mine.toml")
    res = json.loads(run(["--analyses-dir", str(mine), "pool", "mine", "--format", "json"], capsys)[1])
    assert res["k"] == 4
    code, _, err = run(["--analyses-dir", str(mine), "pool", "retention"], capsys)
    assert code == 2 and "available: mine" in err
    # A project copy elsewhere: <root>/data/extracted and <root>/analyses are found together.
    root = tmp_path / "copy"
    shutil.copytree(data, root / "data" / "extracted")
    shutil.copytree(mine, root / "analyses")
    res = json.loads(run(["--data-dir", str(root / "data" / "extracted"), "pool", "mine", "--format", "json"],
                         capsys)[1])
    assert res["k"] == 4
    # The next command in the same process is back on the default analyses.
    assert json.loads(run(["pool", "retention-any-route", "--format", "json"], capsys)[1])["k"] == 4
