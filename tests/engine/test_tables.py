"""Tables and the summary of findings: rows, cells and escaping, checked against the result."""

import csv
import io
import math
import re
import statistics
import subprocess
import sys
from dataclasses import replace
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest

from hatmeta.api import pool_file
from hatmeta.errors import InputError
from hatmeta.render.tables import result_table
from hatmeta.review.sof import SOF_HEAD, certainty_text, sof_row, sof_table, suggest

from ..conftest import FIXTURES, ROOT

BCG = FIXTURES / "data" / "bcg.csv"
NORMAND = FIXTURES / "data" / "normand1999.csv"


@pytest.fixture(scope="module")
def bcg():
    return pool_file(BCG, "RR", method="REML")


def ci_text(res, est, lo, hi):
    return f"{math.exp(est):.2f} [{math.exp(lo):.2f}, {math.exp(hi):.2f}]"


def test_csv_has_one_row_per_study_then_the_pooled_rows(bcg):
    rows = list(csv.reader(io.StringIO(result_table(bcg, "csv", ("BCG", "control")))))
    head, body = rows[0], rows[1:]
    assert head == ["Study", "BCG events/total", "control events/total", "RR [95% CI]", "Weight %"]
    assert len(body) == bcg.k + 2  # studies, total, prediction interval
    for row, s in zip(body, bcg.studies):
        assert row[0] == s.study
        assert row[1] == f"{s.inputs['events_treat']}/{s.inputs['n_treat']}"
        assert row[2] == f"{s.inputs['events_ctrl']}/{s.inputs['n_ctrl']}"
        assert row[3] == ci_text(bcg, s.yi, s.ci_low, s.ci_high)
        assert float(row[4]) == pytest.approx(s.weight, abs=0.05)
    assert sum(float(r[4]) for r in body[:bcg.k]) == pytest.approx(100, abs=0.05 * bcg.k)
    total = body[bcg.k]
    events = sum(s.inputs["events_treat"] for s in bcg.studies)
    assert total[1] == f"{events}/{sum(s.inputs['n_treat'] for s in bcg.studies)}"
    assert total[3] == ci_text(bcg, bcg.estimate, bcg.ci_low, bcg.ci_high)
    assert body[-1][3] == f"[{math.exp(bcg.pi_low):.2f}, {math.exp(bcg.pi_high):.2f}]"


def test_continuous_tables_show_mean_sd_and_n_on_the_natural_scale():
    res = pool_file(NORMAND, "MD", method="REML")
    rows = list(csv.reader(io.StringIO(result_table(res, "csv"))))
    assert rows[0][1] == "experimental mean (SD), n"  # the engine names no review's arms
    first = res.studies[0]
    assert rows[1][1] == f"{first.inputs['mean_treat']:g} ({first.inputs['sd_treat']:g}), {first.inputs['n_treat']:g}"
    # MD is not a ratio: no back-transformation. A negative "estimate [CI]" cell is not a plain number, so
    # CSV prefixes it with ' as OWASP's formula rule asks (hatmeta/csvsafe.py).
    text = f"{first.yi:.2f} [{first.ci_low:.2f}, {first.ci_high:.2f}]"
    assert rows[1][3] == ("'" + text if text.startswith("-") else text)


def test_markdown_rows_have_as_many_cells_as_the_header(bcg):
    res = replace(bcg, studies=tuple(replace(s, label=f"{s.study} | x") if i == 0 else s
                                     for i, s in enumerate(bcg.studies)))
    text = result_table(res, "markdown", caption="BCG")
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert len(lines) == 2 + res.k + 2
    cells = [len(re.split(r"(?<!\\)\|", ln)) for ln in lines]
    assert len(set(cells)) == 1  # the pipe in the label is escaped, not a new cell
    assert "Aronson 1948 \\| x" in text
    assert text.startswith("**BCG**")
    assert "Heterogeneity: tau² = " in text


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.caption, self._in = [], "", None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th", "caption"):
            self._in = tag
            if tag != "caption":
                self.rows[-1].append("")

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "caption":
            self.caption += data
        elif self._in:
            self.rows[-1][-1] += data


def test_html_table_escapes_text_and_keeps_every_row(bcg):
    text = result_table(bcg, "html", caption="BCG <vaccine> & TB")
    assert "<vaccine>" not in text and "&amp; TB" in text
    p = _Cells()
    p.feed(text)
    assert p.caption == "BCG <vaccine> & TB"
    assert len(p.rows) == 1 + bcg.k + 2
    assert {len(r) for r in p.rows} == {5}
    assert [r[0] for r in p.rows[1:1 + bcg.k]] == [s.study for s in bcg.studies]  # 'Ferguson & Simes' intact


def test_latex_table_escapes_specials_and_has_one_ampersand_per_column_break(bcg):
    text = result_table(bcg, "latex", caption="BCG_trials 100% {x}")
    assert "\\caption{BCG\\_trials 100\\% \\{x\\}}" in text
    body = [ln for ln in text.splitlines() if ln.endswith("\\\\")]
    assert len(body) == 1 + bcg.k + 2
    for ln in body:
        assert len(re.findall(r"(?<!\\)&", ln)) == 4
    assert "Ferguson \\& Simes 1949" in text
    assert "tau$^2$" in text and "\\textbackslash{}" not in text


def test_unknown_format_is_an_input_error(bcg):
    with pytest.raises(InputError):
        result_table(bcg, "docx")


# ---------------------------------------------------------------- summary of findings

def analysis(grade=None, title="BCG vaccine: tuberculosis"):
    return SimpleNamespace(spec=SimpleNamespace(title=title, name="bcg", grade=grade or {}))


def test_sof_row_assumed_and_corresponding_risk_from_the_control_arms(bcg):
    row = sof_row(bcg, analysis())
    ins = [s.inputs for s in bcg.studies]
    acr = statistics.median(i["events_ctrl"] / i["n_ctrl"] for i in ins)
    assert row["assumed_risk"] == f"{1000 * acr:.0f} per 1000"
    rr, lo, hi = (math.exp(x) for x in (bcg.estimate, bcg.ci_low, bcg.ci_high))
    assert row["corresponding_risk"] == (f"{1000 * acr * rr:.0f} per 1000 "
                                         f"({1000 * acr * lo:.0f} to {1000 * acr * hi:.0f})")
    n = sum(i["n_treat"] + i["n_ctrl"] for i in ins)
    assert row["participants"] == f"{n} ({bcg.k} RCTs)"
    assert row["relative_effect"] == f"RR {rr:.2f} ({lo:.2f} to {hi:.2f})"
    assert row["outcome"] == "BCG vaccine"


def test_sof_odds_ratio_goes_through_the_odds(write_csv):
    path = write_csv([["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"],
                      ["a", "30", "100", "50", "100"], ["b", "20", "80", "40", "90"], ["c", "12", "60", "25", "55"]])
    res = pool_file(path, "OR", method="DL")
    row = sof_row(res, analysis())
    acr = statistics.median(s.inputs["events_ctrl"] / s.inputs["n_ctrl"] for s in res.studies)
    odds = math.exp(res.estimate)
    via_odds = f"{1000 * acr * odds / (1 - acr + acr * odds):.0f} per 1000"
    assert via_odds != f"{1000 * acr * odds:.0f} per 1000"  # the OR is not a risk ratio here
    assert row["corresponding_risk"].startswith(via_odds)


def test_sof_caps_impossible_risks_and_says_so(write_csv):
    path = write_csv([["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"],
                      ["a", "95", "100", "80", "100"], ["b", "48", "50", "30", "50"], ["c", "9", "10", "9", "10"]])
    res = pool_file(path, "RR", method="DL")
    row = sof_row(res, analysis())
    assert math.exp(res.ci_high) * 0.8 > 1  # the upper limit applied to the median risk exceeds 1
    assert row["corresponding_risk"].endswith("to 1000 (capped))")


def test_certainty_is_the_reviewers_and_never_invented(bcg):
    row = sof_row(bcg, analysis())
    assert row["certainty"] == "not rated"
    assert row["certainty_text"] == "not rated (no domain rated)"
    assert set(row["ratings"].values()) == {"not rated"}
    rated = {"risk_of_bias": "serious", "inconsistency": "very serious", "indirectness": "no serious concern",
             "imprecision": "no serious concern", "publication_bias": "not rated", "certainty": "very low"}
    assert sof_row(bcg, analysis(rated))["certainty"] == "very low"
    assert certainty_text(rated) == ("very low (rated down: risk of bias serious, inconsistency very serious; "
                                     "not rated: publication bias)")


def test_suggestions_follow_the_numbers(bcg):
    # BCG: CI excludes no effect, strong heterogeneity.
    s = suggest(bcg)
    assert bcg.ci_high < 0 and bcg.i2 > 50
    assert s["imprecision"].startswith("no serious imprecision")
    assert s["inconsistency"].startswith("serious suggested") and f"I² = {bcg.i2:.0f}%" in s["inconsistency"]
    # A CI through no effect, homogeneous: imprecision flagged, inconsistency not.
    flat = replace(bcg, ci_low=-0.1, ci_high=0.3, i2=0.0, pi_low=-0.15, pi_high=0.35)
    s = suggest(flat)
    assert s["imprecision"].startswith("serious suggested: the 95% CI includes no effect")
    assert s["inconsistency"].startswith("no serious inconsistency")
    # Thresholds (GRADE: 0.8 / 1.25): inside both -> not serious; reaching one side -> serious;
    # both sides -> serious or very serious. 1.25 and 0.8 mean the same thresholds.
    assert suggest(replace(flat, ci_low=math.log(0.9), ci_high=math.log(1.2)), 1.25)["imprecision"].startswith(
        "no serious imprecision suggested: the 95% CI lies within 0.80 or 1.25")
    assert suggest(flat, 0.8)["imprecision"].startswith("serious suggested: the 95% CI includes no effect and an")
    wide = replace(flat, ci_low=math.log(0.5), ci_high=math.log(2))
    assert suggest(wide, 1.25)["imprecision"].startswith("serious or very serious")
    # A prediction interval through no effect while the CI excludes it: inconsistency suggested.
    s = suggest(replace(bcg, i2=30.0, pi_low=-0.5, pi_high=0.2))
    assert "prediction interval includes no effect" in s["inconsistency"]
    with pytest.raises(InputError):
        suggest(bcg, 1.0)


def test_sof_table_lists_every_row_with_its_suggestions(bcg):
    rows = [sof_row(bcg, analysis()), sof_row(bcg, analysis(title="Second outcome"))]
    text = sof_table(rows, "csv")
    parsed = list(csv.reader(io.StringIO(text)))
    assert len(parsed) == 3
    assert parsed[1][0] == "BCG vaccine" and parsed[2][0] == "Second outcome"
    assert parsed[1][-1].startswith("imprecision: ") and "; inconsistency: " in parsed[1][-1]


def test_latex_sof_wraps_its_columns_to_the_line(bcg):
    """A summary of findings is too wide for a page as one line a cell: its columns wrap (tabularx),
    each at least as wide as its longest word, and tabularx's hsize weights sum to the column count."""
    rows = [sof_row(bcg, analysis()), sof_row(bcg, analysis(title="Second outcome"))]
    text = sof_table(rows, "latex")
    spec = re.search(r"\\begin\{tabularx\}\{\\linewidth\}\{(.*)\}$", text, re.M).group(1)
    weights = [float(w) for w in re.findall(r"hsize=([0-9.]+)\\hsize", spec)]
    assert len(weights) == len(SOF_HEAD) and sum(weights) == pytest.approx(len(SOF_HEAD), abs=0.05)
    assert weights[-1] == max(weights)  # the suggestions, the longest text, get the most room
    assert "\\end{tabularx}" in text and "\\begin{tabular}{" not in text


def test_latex_escapes_less_than():
    """In LaTeX's default OT1 encoding a bare < prints as an inverted exclamation mark."""
    from hatmeta.render.tables import render

    text = render(["a", "p"], [["x", "P < 0.001"]], "latex")
    assert "P \\textless{} 0.001" in text and "<" not in text


def test_table_and_sof_commands(tmp_path):
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "table", "--data", str(BCG), "--measure", "RR",
                        "--format", "csv"], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    rows = list(csv.reader(io.StringIO(p.stdout)))
    assert len(rows) == 1 + 13 + 2
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "sof", "--format", "csv", "--threshold", "1.25"],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    rows = list(csv.reader(io.StringIO(p.stdout)))
    assert rows[0][0] == "Outcome" and len(rows) >= 2
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "sof", "--threshold", "-2"],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "--threshold" in p.stderr


def test_subgroup_rows_and_the_test_for_differences():
    res = pool_file(BCG, "RR", method="REML", subgroup="alloc")
    rows = list(csv.reader(io.StringIO(result_table(res, "csv"))))
    sub = [r for r in rows if r[0].startswith("Subgroup ")]
    assert [r[0] for r in sub] == [f"Subgroup {g.group} ({g.k} {'trial' if g.k == 1 else 'trials'})"
                                   for g in res.subgroups]
    for r, g in zip(sub, res.subgroups):
        assert r[3] == ci_text(res, g.estimate, g.ci_low, g.ci_high)
    t = res.subgroup_test
    assert f"Test for subgroup differences: Q = {t.q:.2f}, df = {t.df}" in result_table(res, "markdown")


def test_two_trials_have_no_prediction_interval_and_the_table_says_so(write_csv):
    path = write_csv([["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"],
                      ["a", "30", "100", "50", "100"], ["b", "20", "80", "40", "90"]])
    res = pool_file(path, "RR", method="DL")
    rows = list(csv.reader(io.StringIO(result_table(res, "csv"))))
    assert rows[-1][0] == "Prediction interval" and rows[-1][3] == "Not estimable (k < 3)"
    fixed = pool_file(path, "RR", method="FE")
    assert list(csv.reader(io.StringIO(result_table(fixed, "csv"))))[-1][0].startswith("Total")


def test_engine_tables_and_figures_default_to_experimental_and_control():
    """A notebook user pooling any trials gets neutral arm names, never the HAT review's."""
    import inspect

    from hatmeta.render.plots.forest import forest
    from hatmeta.render.plots.sensitivity import sensitivity_forest
    from hatmeta.render.tables import result_rows

    for fn in (forest, sensitivity_forest, result_rows, result_table):
        assert inspect.signature(fn).parameters["labels"].default == ("experimental", "control")


def test_summary_of_findings_order_title_and_terminal_width():
    """Critical outcomes in clinical order (retention, illicit use, mortality, crime, SAE), a title that
    covers the secondary-comparison rows, and text that fits 80 columns (issue 26, item 10)."""
    import subprocess
    import sys

    from ..conftest import ROOT

    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "sof"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    heads = [line.split(":")[0].split(" (")[0] for before, line in zip(lines, lines[1:])  # each block's first line
             if not before and line and not line.startswith(" ")]
    order = ["Retention in treatment", "Illicit drug use", "Mortality", "Crime", "Serious adverse events"]
    firsts = [next(i for i, h in enumerate(heads) if h.startswith(o)) for o in order]
    assert firsts == sorted(firsts), heads
    assert "any route vs any other treatment" in p.stdout
    md = subprocess.run([sys.executable, "-m", "hatmeta.cli", "sof", "--format", "markdown"], cwd=ROOT,
                        capture_output=True, text=True).stdout
    assert md.startswith("**Summary of findings") and "| Outcome |" in md
