"""The bundled HAT analyses, pinned twice: the standardised table each analysis pools (arms, time
point, counts), and its pooled result against metafor on that table (tests/fixtures/hat/, made by
export_tables.py and generate.R there). When the extraction changes, rerun both and review the diff.
"""

import csv
import json
import math
import subprocess
import sys

import pytest

from hatmeta.review import load_analysis
from hatmeta.review.api import pool_analysis

from ..conftest import FIXTURES, ROOT

HAT = FIXTURES / "hat"
SPECS = json.loads((HAT / "specs.json").read_text())
METAFOR = json.loads((HAT / "metafor.json").read_text())["analyses"]
POOLED = sorted(n for n, s in SPECS.items() if s["pooled"])


def test_every_analysis_spec_is_pinned():
    assert sorted(SPECS) == sorted(p.stem for p in (ROOT / "analyses").glob("*.toml"))
    assert {"retention", "retention-any-route", "illicit-use-any-route"} <= set(POOLED)


@pytest.mark.parametrize("name", sorted(n for n, s in SPECS.items() if "k" in s))
def test_standardised_table_is_pinned(name):
    table = load_analysis(name).table
    with open(HAT / f"{name}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(table.studies) == [r["study"] for r in rows]
    for c, values in table.columns.items():
        assert list(values) == [float(r[c]) for r in rows], c


@pytest.mark.parametrize("name", POOLED)
def test_pooled_result_agrees_with_metafor(name):
    res, _ = pool_analysis(name)
    exp = METAFOR[name]
    d = res.to_dict()
    assert d["k"] == exp["k"]
    for key in ("estimate", "se", "ci_low", "ci_high", "p", "tau2", "tau2_ci_low", "tau2_ci_high", "q", "q_p",
                "i2", "pi_low", "pi_high"):
        if exp[key] is None:  # metafor gives none (the prediction interval with k = 2): neither may we
            assert d[key] is None, key
        else:
            assert d[key] == pytest.approx(exp[key], rel=1e-6, abs=1e-9), key
    assert d["t" if res.df is not None else "z"] == pytest.approx(exp["stat"], rel=1e-6)
    assert [s["yi"] for s in d["studies"]] == pytest.approx(exp["yi"], rel=1e-9)


def test_retention_by_hand_from_the_raw_counts():
    """Haasen 2007: 67.2% of 515 and 40.0% of 500 retained (journal abstract) -> 346/515 vs 200/500."""
    res, _ = pool_analysis("retention")
    haasen = next(s for s in res.studies if s.study == "haasen2007")
    assert (haasen.inputs["events_treat"], haasen.inputs["n_treat"]) == (346, 515)
    assert (haasen.inputs["events_ctrl"], haasen.inputs["n_ctrl"]) == (200, 500)
    assert haasen.yi == pytest.approx(math.log((346 / 515) / (200 / 500)), rel=1e-12)
    assert haasen.vi == pytest.approx(1 / 346 - 1 / 515 + 1 / 200 - 1 / 500, rel=1e-12)
    assert res.measure == "RR" and res.method == "REML" and res.ci_method == "hksj"
    # Every trial in the extraction is pooled or listed as omitted, with a reason (eligibility by rule).
    from hatmeta.review import load_extraction

    named = set(load_extraction().trial_ids())
    omitted = {o["trial"] for o in res.to_dict()["omitted"]}
    assert {s.study for s in res.studies} | omitted == named


@pytest.mark.parametrize("name", sorted(n for n, s in SPECS.items() if not s["pooled"]))
def test_analyses_without_enough_data_refuse_with_the_reason(name):
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", name], capture_output=True, text=True,
                       cwd=ROOT)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    expected = SPECS[name].get("reason", "pooling needs at least 2")
    lines = p.stderr.strip().splitlines()
    assert expected in lines[0] and lines[0].startswith("error: ")
    # A few short lines: the gaps grouped by what is missing (no search histories), the published estimate.
    assert len(lines) <= 12 and all(len(line) <= 320 for line in lines), p.stderr


def test_text_output_shortens_long_notes_and_json_keeps_them_whole():
    """The retention notes name every source and search; the terminal gets each note's start and end
    (what was used), the JSON the whole text."""
    import json
    import subprocess
    import sys

    from hatmeta.summary import NOTE_CHARS

    from ..conftest import ROOT

    def run(*args):
        return subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "retention", *args],
                              capture_output=True, text=True, cwd=ROOT).stdout

    text, data = run(), json.loads(run("--format", "json"))
    notes = data["notes"]
    # The answer first: `hatmeta pool retention | head -12` shows the estimate, its CI and heterogeneity.
    import math

    from hatmeta.numbers import est_ci

    head = "\n".join(text.splitlines()[:12])
    assert est_ci(math.exp(data["estimate"]), math.exp(data["ci_low"]), math.exp(data["ci_high"])) in head
    assert f"I² = {data['i2']:.0f}%" in head and "Comparison: HAT vs methadone" in head
    # Notes grouped by kind and counted; trials named by label, never by id; no line runs on.
    grouped = text[text.index(f"Notes ({len(notes)};"):]
    assert f"Trials omitted ({len(data['omitted'])}):" in grouped
    assert "Hartnoll 1980 (UK)" in grouped and "hartnoll1980" not in grouped
    assert all(len(ln) <= NOTE_CHARS + 20 for ln in grouped.splitlines())
    # The published reviews follow the result (a fixed few lines); the rest stays short.
    assert len(text[:text.index("Published reviews")].splitlines()) < 45 and "Not included" not in text
    # -v shows every note in full (ids replaced by labels)
    full = run("-v")
    shown = [ln[4:] for ln in full.splitlines() if ln.startswith("  - ")]
    assert len(shown) == len(notes)
    from hatmeta.summary import _relabel

    labels = {s["study"]: s["label"] for s in data["studies"]}
    for line, note in zip(shown, notes):
        assert len(line) >= len(note) - 40 and _relabel(note, labels)[-30:] in line
