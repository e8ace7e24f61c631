"""Risk of bias, published reviews and gaps beside the HAT analyses (hatmeta.review.appraisal),
and clean provenance text in everything a reader sees."""

import math
import re
import shutil

import pytest

from hatmeta.errors import InputError
from hatmeta.review.appraisal import DOMAINS, check_appraisal, gap_rows, load_appraisal

from ..conftest import ROOT

DATA = ROOT / "data" / "extracted"


def test_bundled_appraisal_is_valid_and_complete():
    appraisal, errors = check_appraisal(DATA, trial_ids=None)
    assert errors == []
    # Every trial has a judgement (possibly 'not assessed') for every domain.
    assert set(appraisal.risk_of_bias) >= {"perneger1998", "haasen2007"}
    for trial, domains in appraisal.risk_of_bias.items():
        assert set(domains) == set(DOMAINS), trial
    assert appraisal.judgements("perneger1998")["random sequence generation"] == "low"
    mortality = appraisal.published_for("mortality")
    assert ([(p.trials, p.participants, p.estimate, p.ci_low, p.ci_high) for p in mortality]
            == [(4, 1477, 0.65, 0.25, 1.69)])


def test_a_judgement_without_its_source_is_named_by_line_and_column(tmp_path):
    shutil.copytree(DATA, tmp_path / "d")
    path = tmp_path / "d" / "risk_of_bias.csv"
    lines = path.read_text().splitlines()
    lines.append("hartnoll1980,other bias,high,,,")  # a second judgement, and one with no source
    lines.append("demaret2015,made-up domain,low,,x,y")
    path.write_text("\n".join(lines) + "\n")
    _, errors = check_appraisal(tmp_path / "d")
    text = [str(e) for e in errors]
    n = len(lines)
    assert any(f"risk_of_bias.csv:{n - 1}: column 'domain': second judgement" in t for t in text), text
    assert any(f"risk_of_bias.csv:{n - 1}: column 'source': a judgement needs its source" in t for t in text), text
    assert any(f"risk_of_bias.csv:{n}: column 'domain'" in t for t in text), text
    with pytest.raises(InputError):
        load_appraisal(tmp_path / "d")


def test_gaps_group_trials_with_the_same_reason_and_name_where_sought():
    appraisal = load_appraisal(DATA)
    gap = "not reported (Deaths by arm not found in any source opened. Cochrane pools 4 studies, N=1477.)"
    omitted = [("haasen2007", gap),
               ("riott2010", gap),
               ("salome2016", "excluded by the analysis: active comparator")]
    rows = gap_rows(omitted, "mortality", appraisal, labels={"haasen2007": "Haasen 2007"})
    assert rows[0]["trials"] == ["Haasen 2007", "riott2010"] or rows[0]["trials"] == ["Haasen 2007"]
    assert rows[0]["missing"] == "Deaths by arm not found in any source opened."
    excluded = [r for r in rows if r["missing"].startswith("excluded")]
    assert excluded and excluded[0]["sought"] == ""  # an exclusion is a choice, not a search


LEAKS = re.compile(r"(/work/|/tmp/|/root/|/home/|not in the store|\bstored (pages|text|copies)\b|\bPass \d|"
                   r"evidence brief|\b2026-\d\d-\d\d\b)")


@pytest.mark.parametrize("folder", ["data", "analyses", "reports"])
def test_committed_files_hold_no_machine_paths_or_process_words(folder):
    """A reader can follow every source: no path of one machine, no words about how the extraction was
    done (the project's brief is not a source; cite what it points to)."""
    bad = []
    for path in sorted((ROOT / folder).rglob("*")):
        if path.is_file() and path.suffix in (".csv", ".md", ".toml", ".json", ".html", ".tex", ".svg", ".txt"):
            for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                m = LEAKS.search(line)
                if m:
                    bad.append(f"{path.relative_to(ROOT)}:{number}: {m.group(0)!r}")
    assert not bad, "\n".join(bad[:20])


def test_validate_checks_the_appraisal_files_with_the_extraction(tmp_path):
    """The appraisal files are part of the extraction: `hatmeta validate` names their problems too,
    and an analysis built on a bad folder is refused."""
    from hatmeta.review import load_extraction, validate_extraction

    shutil.copytree(DATA, tmp_path / "d")
    path = tmp_path / "d" / "published.csv"
    path.write_text(path.read_text().replace(",RR,1.44,", ",RR,one point four,", 1))
    errors = [str(e) for e in validate_extraction(tmp_path / "d")]
    assert any("published.csv:2: column 'estimate'" in e for e in errors), errors
    with pytest.raises(InputError):
        load_extraction(tmp_path / "d")
    assert load_extraction(DATA).appraisal.judgements("perneger1998")["allocation concealment"] == "low"


def test_published_results_are_matched_on_the_comparison_not_only_the_outcome():
    """SALOME (diacetylmorphine vs hydromorphone) is not set beside the heroin-vs-methadone reviews."""
    from hatmeta.errors import NotPooled
    from hatmeta.review.api import pool_analysis

    with pytest.raises(NotPooled) as refused:  # SALOME's per-arm retention is not reported
        pool_analysis("salome-retention")
    assert refused.value.published == [] and "published" not in refused.value.details
    res, _ = pool_analysis("retention")
    assert {p["label"] for p in res.extra["published"]} == {"Ferri 2011, Cochrane CD003410.pub4",
                                                            "Ferri 2010, Cochrane CD003410.pub3"}
    assert all(p["same_event"] for p in res.extra["published"])


def test_a_review_counting_the_opposite_event_gets_ours_for_its_event():
    """Ferri 2010 counts use of illicit substances (lower favours heroin); the analysis counts not using
    street heroin (higher favours heroin): the reconciliation shows our RR for the review's event, the
    complementary counts refitted with the same model, and says which side counts which."""
    from hatmeta.api import pool_table
    from hatmeta.review.api import pool_analysis
    from hatmeta.review.reconciliation import reconciliation_text

    res, an = pool_analysis("illicit-use-any-route")
    (p,) = res.extra["published"]
    assert not p["same_event"] and p["direction"] == "lower favours heroin"
    assert p["our_direction"].startswith("higher favours")
    other = p["ours_for_review_event"]
    assert other["estimate"] < 1 < res.natural(res.estimate)
    t = an.table
    flipped = {"study": list(t.studies), "n_treat": list(t.column("n_treat")), "n_ctrl": list(t.column("n_ctrl")),
               "events_treat": [float(n) - float(e) for n, e in zip(t.column("n_treat"), t.column("events_treat"))],
               "events_ctrl": [float(n) - float(e) for n, e in zip(t.column("n_ctrl"), t.column("events_ctrl"))]}
    direct = pool_table(flipped, "RR", method=res.method, ci=res.ci_method, pi=res.pi_method)
    assert other["estimate"] == pytest.approx(math.exp(direct.estimate), rel=1e-12)
    text = reconciliation_text(res, res.extra["published"])
    assert "the review's event" in text and "lower favours heroin" in text
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.parametrize("name", ["crime", "illicit-use", "mortality", "sae"])
def test_a_refused_analysis_is_short_and_grouped_by_kind(name):
    """At most 10 lines and 1,200 characters at 80 columns, the trials grouped by the criterion they fail;
    -v lists each trial's note (issue 26, item 15)."""
    import subprocess
    import sys
    import textwrap

    def run(*extra):
        p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", name, *extra], cwd=ROOT,
                           capture_output=True, text=True)
        assert p.returncode == 2 and "Traceback" not in p.stderr
        return p.stderr

    short = run()
    shown = [w for line in short.splitlines() for w in (textwrap.wrap(line, 80) or [""])]
    assert len(shown) <= 10 and len(short) <= 1200, short
    assert "not reported by arm in any source opened:" in short
    verbose = run("-v")  # each trial's own note, e.g. why its arms do not fit
    assert "no control arm" in verbose and "no control arm" not in short
