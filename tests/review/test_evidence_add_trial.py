"""`hatmeta add-trial`: validates the would-be extraction, refuses duplicates, appends only the new
lines (existing bytes untouched) and writes atomically."""

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from hatmeta.cli import main
from hatmeta.review import load_extraction

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

VALID = FIXTURES / "evidence" / "valid"

NEW_TRIALS = """trial,short_name,country,sites,authors,journal,year,volume,pages,doi,pmid,registry,blinding,hypothesis,route,n_randomised,followup_weeks,itt,source,notes
demaret2015,TADAM,Belgium,Liege,"Demaret I, Quertemont E",Eur Addict Res,2015,21,179-187,,,,open,superiority,injected,74,52,yes,"Demaret 2015 Eur Addict Res, abstract",
"""
NEW_ARMS = """trial,arm,description,role,n_randomised,source,note
demaret2015,dam,heroin-assisted treatment,experimental,36,Demaret 2015 abstract,
demaret2015,mmt,methadone,control,38,Demaret 2015 abstract,
"""
NEW_OUTCOMES = """trial,outcome,definition,arm,timepoint_weeks,n,events,mean,sd,count,person_time,source,status,derivation,note
demaret2015,retention,retained,dam,52,,,,,,,Demaret 2015 abstract,not reported,,not in the abstract
demaret2015,retention,retained,mmt,52,,,,,,,Demaret 2015 abstract,not reported,,not in the abstract
"""


@pytest.fixture
def data(tmp_path):
    dest = tmp_path / "extracted"
    shutil.copytree(VALID, dest)
    return dest


@pytest.fixture
def new(tmp_path):
    folder = tmp_path / "new"
    folder.mkdir()
    for name, text in [("t.csv", NEW_TRIALS), ("a.csv", NEW_ARMS), ("o.csv", NEW_OUTCOMES)]:
        (folder / name).write_text(text)
    return folder


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def digest(folder):
    return {k: hashlib.sha256(v).hexdigest() for k, v in snapshot(folder).items()}


def run(argv, capsys, input=None, monkeypatch=None):
    if input is not None:
        import io

        monkeypatch.setattr("sys.stdin", io.StringIO(input))
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def from_args(new):
    return [a for f in ("t.csv", "a.csv", "o.csv") for a in ("--from", str(new / f))]


def test_appends_exactly_the_new_lines(data, new, capsys):
    before = snapshot(data)
    code, out, err = run(["--data-dir", str(data), "add-trial", *from_args(new)], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == "appended: 1 row(s) to trials.csv, 2 row(s) to arms.csv, 2 row(s) to outcomes.csv"
    after = snapshot(data)
    for name, body in [("trials.csv", NEW_TRIALS), ("arms.csv", NEW_ARMS), ("outcomes.csv", NEW_OUTCOMES)]:
        new_lines = body.split("\n", 1)[1].encode()
        assert after[name] == before[name] + new_lines  # existing bytes untouched, new lines appended
    assert after["discrepancies.csv"] == before["discrepancies.csv"]
    assert load_extraction(data).trial("demaret2015")["country"] == "Belgium"
    assert not [p for p in data.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_folder_input_and_dry_run(data, new, capsys):
    folder = new / "folder"
    folder.mkdir()
    for src, dst in [("t.csv", "trials.csv"), ("a.csv", "arms.csv"), ("o.csv", "outcomes.csv")]:
        shutil.copy(new / src, folder / dst)
    before = digest(data)
    code, out, _ = run(["--data-dir", str(data), "add-trial", "--from", str(folder), "--dry-run"], capsys)
    assert code == 0 and out.startswith("would append: 1 row(s) to trials.csv")
    assert digest(data) == before
    code, out, _ = run(["--data-dir", str(data), "add-trial", "--from", str(folder)], capsys)
    assert code == 0 and digest(data) != before


def test_keeps_crlf_and_missing_final_newline(data, new, capsys):
    crlf = (data / "arms.csv").read_bytes().replace(b"\n", b"\r\n")
    (data / "arms.csv").write_bytes(crlf)
    trials = (data / "trials.csv").read_bytes().rstrip(b"\n")
    (data / "trials.csv").write_bytes(trials)
    code, _, err = run(["--data-dir", str(data), "add-trial", *from_args(new)], capsys)
    assert code == 0, err
    arms = (data / "arms.csv").read_bytes()
    assert arms.startswith(crlf) and arms.endswith(b"demaret2015,mmt,methadone,control,38,Demaret 2015 abstract,\r\n")
    assert (data / "trials.csv").read_bytes().startswith(trials + b"\ndemaret2015,TADAM,")


@pytest.mark.parametrize("change, file_, line, column, words", [
    # duplicate trial: haasen2007 is already in trials.csv (line 3)
    (lambda t, a, o: (t.replace("demaret2015,TADAM,Belgium", "haasen2007,TADAM,Belgium"), a, o),
     "t.csv", 2, "trial", "duplicate trial 'haasen2007' (first on trials.csv line 3)"),
    (lambda t, a, o: (t, a.replace("experimental,36", "experimental,60"), o),
     "a.csv", 3, "n_randomised", "add up to 98, more than the 74 randomised"),
    (lambda t, a, o: (t, a, o.replace(",,,,,,,Demaret 2015 abstract,not reported",
                                      ",36,40,,,,,Demaret 2015 abstract,reported", 1)),
     "o.csv", 2, "events", "events (40) exceed n (36)"),
    (lambda t, a, o: (t, a, o.replace("demaret2015,retention,retained,mmt", "demaret2015,retention,retained,hdm")),
     "o.csv", 3, "arm", "unknown arm 'hdm' of demaret2015"),
    (lambda t, a, o: (t, a, o.replace("demaret2015,retention,retained,mmt", "haasen2007,crime,x,mmt")),
     "o.csv", 3, "trial", "already exists: add-trial only adds rows of new trials"),
    (lambda t, a, o: (t, a, o + o.split("\n", 1)[1]),
     "o.csv", 4, "outcome", "duplicate row"),
    (lambda t, a, o: (t.replace(",injected,74", ",oral,74"), a, o),
     "t.csv", 2, "route", "not one of"),
])
def test_bad_new_rows_refused_files_unchanged(data, new, capsys, change, file_, line, column, words):
    t, a, o = change(NEW_TRIALS, NEW_ARMS, NEW_OUTCOMES)
    (new / "t.csv").write_text(t)
    (new / "a.csv").write_text(a)
    (new / "o.csv").write_text(o)
    before = digest(data)
    code, out, err = run(["--data-dir", str(data), "add-trial", *from_args(new)], capsys)
    assert code == 2 and out == ""
    # Every problem on its own line (the one tested first), then the count.
    lines = err.strip().splitlines()
    assert lines[-1] == f"{len(lines) - 1} problem(s) found; nothing written"
    assert err.startswith(f"{new / file_}:{line}: column '{column}': "), err
    assert words in err
    assert digest(data) == before


def test_trial_without_arms_and_missing_trials_row(data, new, capsys):
    before = digest(data)
    code, _, err = run(["--data-dir", str(data), "add-trial", "--from", str(new / "t.csv")], capsys)
    assert code == 2 and "has no arms" in err and f"{new / 't.csv'}:2:" in err
    code, _, err = run(["--data-dir", str(data), "add-trial", "--from", str(new / "a.csv")], capsys)
    assert code == 2 and "needs a trials.csv row" in err
    assert digest(data) == before


def test_unrecognised_header(data, new, capsys):
    (new / "x.csv").write_text("foo,bar\n1,2\n")
    code, _, err = run(["--data-dir", str(data), "add-trial", "--from", str(new / "x.csv")], capsys)
    assert code == 2 and f"{new / 'x.csv'}:1: cannot tell which extraction file" in err


def test_refuses_when_existing_extraction_invalid(data, new, capsys):
    text = (data / "outcomes.csv").read_text().replace(",515,346,", ",515,999,", 1)
    (data / "outcomes.csv").write_text(text)
    before = digest(data)
    code, _, err = run(["--data-dir", str(data), "add-trial", *from_args(new)], capsys)
    assert code == 2 and "the extraction is invalid, fix it first" in err and "outcomes.csv:2:" in err
    assert digest(data) == before


@pytest.mark.parametrize("fail_on", [1, 2, 3])
def test_interrupted_write_leaves_files_unchanged(data, new, capsys, monkeypatch, fail_on):
    """os.replace fails on its n-th call: files already moved are put back, none is left changed."""
    real_replace = os.replace
    calls = {"n": 0}

    def flaky(src, dst):
        calls["n"] += 1
        if calls["n"] == fail_on:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    before = snapshot(data)
    code, out, err = run(["--data-dir", str(data), "add-trial", *from_args(new)], capsys)
    assert code == 2 and "could not write the extraction" in err and "no file was changed" in err
    assert snapshot(data) == before  # same names (no temp files left) and same bytes


def test_guided_prompts(data, capsys, monkeypatch):
    answers = [
        "demaret2015", "TADAM", "Belgium", "Liege", "Demaret I", "Eur Addict Res", "2015", "21", "179-187",
        "", "", "", "", "", "", "74", "52", "", "Demaret 2015 abstract", "",  # trial (defaults for choices)
        "y", "dam", "heroin", "", "36", "", "",  # arm 1: role defaults to experimental, source to the trial's
        "y", "mmt", "methadone", "", "38", "", "",  # arm 2: role defaults to control
        "n",
        "y", "retention", "retained", "dam", "52", "derived", "binary", "36", "50%", "Demaret 2015 abstract", "",
        "n",
        "y",  # write
    ]
    code, out, err = run(["--data-dir", str(data), "add-trial"], capsys, input="\n".join(answers) + "\n",
                         monkeypatch=monkeypatch)
    assert code == 0, out + err
    assert "50% of 36 = 18.0, rounded to 18" in out
    ex = load_extraction(data)
    row = ex.outcomes_of("demaret2015")[0]
    assert (row["events"], row["n"], row["status"], row["derivation"]) == (
        "18", "36", "derived", "50% of 36 = 18.0, rounded to 18")
    assert [a["role"] for a in ex.arms_of("demaret2015")] == ["experimental", "control"]
    assert ex.arms_of("demaret2015")[0]["source"] == "Demaret 2015 abstract"


def test_a_decimal_comma_in_a_new_trial_gets_the_hint_pool_gives(data, tmp_path, capsys):
    """add-trial names '52,0' as a decimal comma, as pool --data does (issue 26, item 14)."""
    from .test_eligibility import new_trial

    folder = new_trial(tmp_path / "new", sep=";")
    text = (folder / "outcomes.csv").read_text().replace(";dam;52;50;40;", ";dam;52;50,0;40;")
    (folder / "outcomes.csv").write_text(text)
    code, _, err = run(["--data-dir", str(data), "add-trial", "--from", str(folder)], capsys)
    assert code == 2 and "not a number: '50,0' (a decimal comma? write 0.5, not 0,5)" in err


def test_identical_rows_in_a_data_table_are_warned_about(tmp_path):
    """A row pasted twice is pooled as two studies (named in the notes) and warned about on stderr."""
    import subprocess
    import sys

    lines = (Path(__file__).parents[1] / "fixtures" / "data" / "bcg.csv").read_text().splitlines()
    path = tmp_path / "dup.csv"
    path.write_text("\n".join(lines[:4] + [lines[2]]) + "\n")
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "--data", str(path), "--measure", "RR"],
                       capture_output=True, text=True)
    assert p.returncode == 0
    assert p.stderr == (f"warning: {path}: lines 3 and 5 are identical in every column (pasted twice?); "
                        "both are pooled\n")
