"""A RevMan review (.rm5) as the --data source of forest, funnel, influence, baujat, table, tsa, sof and
pool --compare: the same inputs as the equivalent CSV (io/revman_source.outcome_source, one implementation),
each study's RevMan id and risk-of-bias judgements kept, and every failure one line with exit 2.

Fixtures: tests/fixtures/revman/Fleiss1993.rm5 (R meta's, RevMan 5.0.23) and edge_cases.rm5
(make_edge_cases.py; its QUALITY_ITEMS follow RevMan 5.2's layout)."""

import csv
import json
import math

import pytest

from hatmeta.io.revman import read_rm5
from hatmeta.io.revman_source import outcome_source

from ..conftest import FIXTURES

RM = FIXTURES / "revman"
FLEISS = str(RM / "Fleiss1993.rm5")
EDGE = str(RM / "edge_cases.rm5")


def cli(capsys, *args):
    from hatmeta.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def one_line_error(code, err, *words):
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, err


def _as_csv(src, path):
    """The outcome's rows as the --data CSV a user would write (the layout's columns, study and year)."""
    t = src.table
    cols = [c for c in ("events_treat", "n_treat", "events_ctrl", "n_ctrl") if c in t.all_columns()]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["study", "year", *cols])
        for i, s in enumerate(t.studies):
            w.writerow([s, t.column("year")[i], *[repr(float(t.column(c)[i])) for c in cols]])
    return path


def test_risk_of_bias_is_read_per_domain_and_group_from_quality_items():
    rob = read_rm5(EDGE).risk_of_bias
    # YES = low, NO = high, UNKNOWN = unclear; a group-level item judged for two groups is two domains
    assert rob["Bäch"] == {"Random sequence generation (selection bias)": "low",
                           "Incomplete outcome data (attrition bias)": "high",
                           "Blinding of outcome assessment (detection bias): Objective outcomes": "low",
                           "Blinding of outcome assessment (detection bias): Subjective outcomes": "high"}
    assert rob["Raad"]["Random sequence generation (selection bias)"] == "low"
    # STD-003 (Maki) has no entry for the first item: absent, not invented; 'Other bias' has no entries at all
    assert "Random sequence generation (selection bias)" not in rob["Maki"]
    assert not any("Other bias" in d for judged in rob.values() for d in judged)
    # R meta's Fleiss1993.rm5 (RevMan 5.0.23): one judged item, RevMan 5.0's question form, all UNKNOWN
    fleiss = read_rm5(FLEISS).risk_of_bias
    assert len(fleiss) == 12 and all(j == {"Allocation concealment?": "unclear"} for j in fleiss.values())


def test_pool_json_keeps_revman_ids_and_judgements_per_study(capsys):
    code, out, err = cli(capsys, "pool", "--data", EDGE, "--outcome", "CMP-001.01", "--format", "json")
    assert code == 0, err
    studies = {s["study"]: s for s in json.loads(out)["studies"]}
    assert studies["Bäch"]["revman_id"] == "STD-001"
    assert studies["Bäch"]["risk_of_bias"]["Incomplete outcome data (attrition bias)"] == "high"
    assert "risk_of_bias" in studies["Maki"] and "Random sequence generation (selection bias)" not in \
        studies["Maki"]["risk_of_bias"]


def test_forest_draws_the_reviews_lights_and_names(capsys, tmp_path):
    out_svg = tmp_path / "f.svg"
    code, out, err = cli(capsys, "forest", "--data", EDGE, "--outcome", "CMP-001.01", "--out", out_svg)
    assert code == 0, err
    svg = out_svg.read_text(encoding="utf-8")
    assert 'id="rob-Bäch-Incomplete outcome data (attrition bias)"' in svg
    assert 'id="rob-Maki-Incomplete outcome data (attrition bias)"' in svg
    assert 'id="rob-Maki-Random sequence generation (selection bias)"' not in svg  # not judged: blank
    assert "Anti-infective" in svg  # RevMan's GROUP_LABEL_1 names the arm


def test_forest_of_a_csv_draws_no_lights_and_the_rm5_source_equals_its_csv(capsys, tmp_path):
    """The .rm5 outcome is the CSV's rows with RevMan's settings: the same fit, study by study."""
    from hatmeta import api

    src = outcome_source(FLEISS, "CMP-001.01")
    path = _as_csv(src, tmp_path / "fleiss.csv")
    code, out, err = cli(capsys, "pool", "--data", path, "--measure", "OR", "--preset", "revman5", "--method", "MH",
                         "--format", "json")
    assert code == 0, err
    from_csv = json.loads(out)
    code, out, err = cli(capsys, "pool", "--data", FLEISS, "--outcome", "CMP-001.01", "--format", "json")
    from_rm5 = json.loads(out)
    for key in ("estimate", "ci_low", "ci_high", "q", "i2", "tau2"):
        assert from_rm5[key] == from_csv[key]
    assert [s["yi"] for s in from_rm5["studies"]] == [s["yi"] for s in from_csv["studies"]]
    res = api.pool_table(src.table, src.measure, **src.options)
    assert math.exp(res.estimate) == pytest.approx(0.8968655609130709, rel=1e-12)  # RevMan's stored OR


@pytest.mark.parametrize("command", ["funnel", "influence", "baujat"])
def test_other_figures_take_the_outcome(capsys, tmp_path, command):
    path = tmp_path / f"{command}.png"
    code, out, err = cli(capsys, command, "--data", FLEISS, "--outcome", "CMP-001.01", "--out", path)
    assert code == 0, err
    assert path.stat().st_size > 1000


def test_table_shows_revmans_analysis_without_a_prediction_interval(capsys):
    code, out, err = cli(capsys, "table", "--data", FLEISS, "--outcome", "CMP-001.01")
    assert code == 0, err
    assert "0.90 [0.84, 0.96]" in out  # RevMan's stored OR 0.8969 [0.8405, 0.9570]
    assert "Prediction interval" not in out  # RevMan 5 gives none (it said 'Not estimable (k < 3)' with k = 7)


def test_tsa_of_an_outcome_equals_the_tsa_of_its_rows_as_csv(capsys, tmp_path):
    src = outcome_source(FLEISS, "CMP-001.01")
    path = _as_csv(src, tmp_path / "fleiss.csv")
    code, out, err = cli(capsys, "tsa", "--data", path, "--measure", "OR", "--rrr", "0.1", "--format", "json")
    assert code == 0, err
    from_csv = json.loads(out)["tsa"]
    code, out, err = cli(capsys, "tsa", "--data", FLEISS, "--outcome", "CMP-001.01", "--rrr", "0.1",
                         "--format", "json")
    assert code == 0, err
    from_rm5 = json.loads(out)["tsa"]
    for key in ("required_information_size", "accrued_information", "conclusion", "estimate"):
        assert from_rm5[key] == from_csv[key]
    assert [t["z"] for t in from_rm5["trials"]] == [t["z"] for t in from_csv["trials"]]
    assert "M-H, Fixed" in json.dumps(from_rm5)  # the pool model named as RevMan's stored analysis


def test_sof_of_a_review_has_one_row_per_outcome(capsys):
    code, out, err = cli(capsys, "sof", "--data", FLEISS, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(out.splitlines()))
    assert [r["Outcome"].split()[0] for r in rows] == ["CMP-001.01", "CMP-001.02"]
    assert rows[0]["Effect (CI)"] == "OR 0.90 (0.84 to 0.96)" and rows[0]["Analysis"] == "M-H, Fixed, 95% CI"
    assert rows[0]["Participants (studies)"] == "28003 (7 studies)"
    assert rows[0]["RevMan's stored totals"] == "reproduced"
    assert rows[1]["Effect (CI)"].startswith("SMD -0.34") and rows[1]["RevMan's stored totals"] == "none stored"
    # control risk 2318 / 14020 (the arms' totals of Fleiss1993.rm5), OR applied through the odds
    acr = sum(r.values["EVENTS_2"] for r in read_rm5(FLEISS).outcome("CMP-001.01").rows) / \
        sum(r.values["TOTAL_2"] for r in read_rm5(FLEISS).outcome("CMP-001.01").rows)
    assert rows[0]["Assumed risk (control)"] == f"{1000 * acr:.0f} per 1000"


def test_sof_names_the_outcomes_it_cannot_pool(capsys):
    code, out, err = cli(capsys, "sof", "--data", EDGE)
    assert code == 0, err
    block = out.split("CMP-001.02", 1)[1].split("CMP-001.03", 1)[0]
    assert "not pooled: has no study data" in " ".join(block.split())
    block = " ".join(out.split("CMP-001.03", 1)[1].split("CMP-001.04", 1)[0].split())
    assert "not pooled: the review shows no total for this outcome (RevMan's TOTALS=NO)" in block
    assert max(len(line) for line in out.splitlines()) <= 80
    code, out, err = cli(capsys, "sof", "--data", EDGE, "--threshold", "1.25")
    one_line_error(code, err, "--threshold")


def test_compare_with_another_version_of_the_review(capsys, tmp_path):
    text = (RM / "Fleiss1993.rm5").read_bytes()
    start = text.index(b"<DICH_DATA")
    end = text.index(b"/>", start) + 2
    older = tmp_path / "older.rm5"
    older.write_bytes(text[:start] + text[end:])  # the first study of CMP-001.01 not yet entered
    code, out, err = cli(capsys, "pool", "--data", FLEISS, "--outcome", "CMP-001.01", "--compare", older,
                         "--format", "json")
    assert code == 0, err
    cmp = json.loads(out)["compare"]
    assert cmp["before"]["k"] == 6 and cmp["after"]["k"] == 7 and cmp["entered"] == ["MRC-1"] and not cmp["left"]
    code, before, err = cli(capsys, "pool", "--data", older, "--outcome", "CMP-001.01", "--format", "json")
    assert cmp["before"]["estimate"] == json.loads(before)["estimate"]
    code, out, err = cli(capsys, "pool", "--data", FLEISS, "--outcome", "CMP-001.01", "--compare", older)
    assert code == 0 and "Trials entered: MRC-1" in out
    # a saved result JSON still works; a git revision or a missing file is one line
    saved = tmp_path / "saved.json"
    saved.write_text(before)
    code, out, err = cli(capsys, "pool", "--data", FLEISS, "--outcome", "CMP-001.01", "--compare", saved,
                         "--format", "json")
    assert code == 0 and json.loads(out)["compare"]["entered"] == ["MRC-1"]
    code, out, err = cli(capsys, "pool", "--data", FLEISS, "--outcome", "CMP-001.01", "--compare", "HEAD~1")
    one_line_error(code, err, "--compare", "OTHER.rm5")
    code, out, err = cli(capsys, "pool", "--data", FLEISS, "--outcome", "CMP-001.01", "--compare",
                         tmp_path / "missing.rm5")
    one_line_error(code, err, "--compare", "file not found")
    code, out, err = cli(capsys, "pool", "--data", EDGE, "--outcome", "CMP-001.06", "--compare", FLEISS)
    one_line_error(code, err, "--compare", "cannot be pooled", "no outcome 'CMP-001.06'")


def test_one_estimable_subgroup_is_revmans_q_0_p_1(capsys):
    code, out, err = cli(capsys, "pool", "--data", EDGE, "--outcome", "CMP-001.06", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["subgroup_test"] == {"q": 0.0, "df": 0, "p": 1.0}
    assert [g["group"] for g in d["subgroups"]] == ["with events"] and d["subgroups"][0]["estimate"] == d["estimate"]
    assert any("subgroup no events: not estimable" in n for n in d["notes"])
    assert d["revman"]["subgroup_test"]["agrees"] is True  # the stored Q = 0


@pytest.mark.parametrize("args, words", [
    (["forest", "--data", FLEISS, "--out", "x.png"], ["--outcome", "CMP-001.01, CMP-001.02"]),
    (["forest", "--data", FLEISS, "--outcome", "CMP-009.01", "--out", "x.png"], ["no outcome 'CMP-009.01'"]),
    (["tsa", "--data", EDGE, "--outcome", "CMP-001.02"], ["has no study data"]),
    (["forest", "--data", EDGE, "--outcome", "CMP-001.01", "--measure", "OR", "--out", "x.png"], ["--measure"]),
    (["forest", "--data", EDGE, "--outcome", "CMP-001.01", "--subgroup", "year", "--out", "x.png"],
     ["--subgroup"]),
    (["funnel", "--data", FLEISS, "--outcome", "CMP-001.01", "--ci", "hksj", "--out", "x.png"], ["--ci"]),
])
def test_bad_requests_are_one_line_exit_2(capsys, tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, *args)
    one_line_error(code, err, *words)
    assert not (tmp_path / "x.png").exists()


def test_not_estimable_and_truncated_files_are_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cut = tmp_path / "cut.rm5"
    cut.write_bytes((RM / "Fleiss1993.rm5").read_bytes()[:9000])
    for args in (["forest", "--data", cut, "--outcome", "CMP-001.01"], ["tsa", "--data", cut, "--outcome",
                 "CMP-001.01"], ["sof", "--data", cut]):
        code, out, err = cli(capsys, *args)
        one_line_error(code, err, "truncated")
    zero = tmp_path / "zero.rm5"  # every study without events: RevMan's 'Not estimable' (zeros stored)
    zero.write_text('<?xml version="1.0" encoding="UTF-8"?><COCHRANE_REVIEW><ANALYSES_AND_DATA><COMPARISON '
                    'ID="CMP-001"><NAME>A vs B</NAME><DICH_OUTCOME ID="CMP-001.01" EFFECT_MEASURE="RR" METHOD="MH" '
                    'RANDOM="NO" EFFECT_SIZE="0.0" CI_START="0.0" CI_END="0.0"><NAME>Deaths</NAME>'
                    '<DICH_DATA STUDY_ID="STD-a" EVENTS_1="0" TOTAL_1="10" EVENTS_2="0" TOTAL_2="12"/>'
                    '</DICH_OUTCOME></COMPARISON></ANALYSES_AND_DATA></COCHRANE_REVIEW>')
    assert not read_rm5(zero).outcome("CMP-001.01").pooled_by_revman
    code, out, err = cli(capsys, "forest", "--data", zero, "--outcome", "CMP-001.01")
    one_line_error(code, err, "CMP-001.01 (Deaths)", "RevMan: Not estimable")
    code, out, err = cli(capsys, "sof", "--data", zero)
    assert code == 0 and "RevMan: Not estimable" in " ".join(out.split())


def test_footnotes_and_non_ascii_names_reach_the_figure_and_notes(capsys, tmp_path):
    code, out, err = cli(capsys, "pool", "--data", EDGE, "--outcome", "CMP-001.01", "--format", "json")
    assert any(n.startswith("footnote (George-Ødegård 1997): Events at 30 days") for n in json.loads(out)["notes"])
    svg = tmp_path / "f.svg"
    code, out, err = cli(capsys, "forest", "--data", EDGE, "--outcome", "CMP-001.01", "--out", svg)
    assert code == 0 and "George-Ødegård 1997" in svg.read_text(encoding="utf-8") and not err


def test_forest_shows_a_subgroup_whose_studies_are_all_not_estimable(capsys, tmp_path):
    """RevMan lists such a subgroup with its heading and 'Not estimable' subtotal (CD000023.pub4, 4.3)."""
    svg = tmp_path / "f.svg"
    code, out, err = cli(capsys, "forest", "--data", EDGE, "--outcome", "CMP-001.06", "--out", svg)
    assert code == 0, err
    text = svg.read_text(encoding="utf-8")
    block = text[text.index(">no events<"):]
    assert "Subtotal (95% CI)" in block and "Not estimable" in block


def test_revmans_p_is_compared_to_its_own_routines_precision():
    """RevMan 5.2's stored P differs from the exact normal tail of its stored Z by up to 2.4e-8 (CD000023.pub4,
    20 outcomes, Z to 1e-15): P agrees within 5e-8 absolute, every other value at 1e-8 relative."""
    from hatmeta.commands.revman import _check

    o = read_rm5(FLEISS).outcome("CMP-001.01")
    assert _check(o, "p", 0.21092899855303374, 0.2109290228760643, "full")[2] is True  # CD000023 2.3's stored pair
    assert _check(o, "p", 0.2109289, 0.2109290, "full")[2] is False
    assert _check(o, "z", 1.2510150, 1.2510151, "full")[2] is False


def test_an_outcome_the_review_did_not_pool_is_said_when_drawn(capsys, tmp_path):
    code, out, err = cli(capsys, "forest", "--data", EDGE, "--outcome", "CMP-001.03", "--out", tmp_path / "f.png")
    assert code == 0 and "TOTALS=NO" in err and len(err.strip().splitlines()) == 1
    code, out, err = cli(capsys, "pool", "--data", EDGE, "--outcome", "CMP-001.03", "--format", "json")
    assert any("the review shows no total for outcome CMP-001.03" in n for n in json.loads(out)["notes"])
