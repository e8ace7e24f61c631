"""`hatmeta validate` and the extraction reader: each class of bad input is named (file, line,
column, message), exits 2, and leaves the files as they were."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hatmeta.cli import main
from hatmeta.errors import InputError
from hatmeta.review import load_extraction, validate_extraction

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

VALID = FIXTURES / "evidence" / "valid"


@pytest.fixture
def data(tmp_path):
    """A fresh copy of the fixture extraction."""
    dest = tmp_path / "extracted"
    shutil.copytree(VALID, dest)
    return dest


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def edit(folder, name, line, column, value):
    """Set one cell (line = file line, header = 1) by rewriting that line with the csv module."""
    import csv
    import io

    path = folder / name
    lines = path.read_text().splitlines(keepends=True)
    header = next(csv.reader([lines[0]]))
    cells = next(csv.reader([lines[line - 1]]))
    cells[header.index(column)] = value
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    lines[line - 1] = buf.getvalue()
    path.write_text("".join(lines))


def append_line(folder, name, text):
    with open(folder / name, "a") as fh:
        fh.write(text + "\n")


def test_fixture_is_valid(data, capsys):
    assert validate_extraction(data) == []
    code, out, err = run(["--data-dir", str(data), "validate"], capsys)
    assert code == 0 and out.startswith("ok: 5 trials, 12 arms, 21 outcome rows, 1 discrepancies") and err == ""


# (file, line, column, new value, words expected in the message)
CELL_CASES = [
    ("outcomes.csv", 2, "events", "600", "outcomes.csv", 2, "events", "exceed n"),
    ("outcomes.csv", 2, "n", "0", "outcomes.csv", 2, "n", "at least 1"),
    ("outcomes.csv", 2, "n", "12.5", "outcomes.csv", 2, "n", "whole number"),
    ("outcomes.csv", 2, "events", "abc", "outcomes.csv", 2, "events", "not a number"),
    ("outcomes.csv", 21, "sd", "0", "outcomes.csv", 21, "sd", "greater than 0"),
    ("outcomes.csv", 21, "sd", "-1.5", "outcomes.csv", 21, "sd", "greater than 0"),
    ("outcomes.csv", 2, "n", "600", "outcomes.csv", 2, "n", "exceeds the 515 randomised"),
    ("outcomes.csv", 2, "trial", "nosuchtrial", "outcomes.csv", 2, "trial", "unknown trial 'nosuchtrial'"),
    ("outcomes.csv", 2, "arm", "sim", "outcomes.csv", 2, "arm", "unknown arm 'sim' of haasen2007"),
    ("outcomes.csv", 2, "source", "", "outcomes.csv", 2, "source", "required"),
    ("outcomes.csv", 2, "status", "estimated", "outcomes.csv", 2, "status", "not one of"),
    ("outcomes.csv", 2, "derivation", "", "outcomes.csv", 2, "derivation", "status 'derived' needs a derivation"),
    ("outcomes.csv", 14, "n", "24", "outcomes.csv", 14, "n", "'not reported' must leave the figures empty"),
    ("outcomes.csv", 14, "note", "", "outcomes.csv", 14, "note", "where the figure was looked for"),
    ("outcomes.csv", 8, "events", "", "outcomes.csv", 8, "events", "needs figures"),
    ("outcomes.csv", 21, "sd", "", "outcomes.csv", 21, "sd", "continuous figures need n, mean, sd"),
    ("outcomes.csv", 21, "events", "3", "outcomes.csv", 21, "events", "mixes binary and continuous"),
    ("outcomes.csv", 8, "timepoint_weeks", "", "outcomes.csv", 8, "timepoint_weeks", "needs the time point"),
    ("outcomes.csv", 2, "outcome", "Retention", "outcomes.csv", 2, "outcome", "not a valid code"),
    ("arms.csv", 5, "n_randomised", "520", "arms.csv", 5, "n_randomised", "add up to 1035, more than the 1015"),
    ("arms.csv", 2, "role", "treatment", "arms.csv", 2, "role", "not one of: experimental, control, other"),
    ("arms.csv", 2, "trial", "unknown2020", "arms.csv", 2, "trial", "unknown trial 'unknown2020'"),
    ("trials.csv", 2, "route", "oral", "trials.csv", 2, "route", "not one of: injected, inhaled"),
    ("trials.csv", 2, "year", "", "trials.csv", 2, "year", "required"),
    ("trials.csv", 3, "n_randomised", "0", "trials.csv", 3, "n_randomised", "at least 1"),
    ("trials.csv", 2, "source", "", "trials.csv", 2, "source", "required"),
    ("discrepancies.csv", 2, "used", "both", "discrepancies.csv", 2, "used", "not one of: a, b"),
    ("discrepancies.csv", 2, "source_b", "", "discrepancies.csv", 2, "source_b", "required"),
]


@pytest.mark.parametrize("name, line, column, value, efile, eline, ecol, words", CELL_CASES)
def test_bad_cell_named_and_files_unchanged(data, capsys, name, line, column, value, efile, eline, ecol, words):
    edit(data, name, line, column, value)
    before = digests(data)
    code, out, err = run(["--data-dir", str(data), "validate"], capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[-1] == f"{len(lines) - 1} problem(s) found"
    expected = f"{data / efile}:{eline}: column '{ecol}': "
    hit = [m for m in lines if m.startswith(expected)]
    assert hit and words in hit[0], err
    assert "Traceback" not in err
    assert digests(data) == before
    # Every other command refuses with the first error on one line (never uses the valid part).
    code, out, err = run(["--data-dir", str(data), "trials"], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("error: ")
    with pytest.raises(InputError):
        load_extraction(data)


def test_duplicate_outcome_row(data, capsys):
    line = (data / "outcomes.csv").read_text().splitlines()[1]
    append_line(data, "outcomes.csv", line)
    errors = validate_extraction(data)
    assert len(errors) == 1
    e = errors[0]
    assert (e.file, e.line, e.column) == (str(data / "outcomes.csv"), 23, "outcome")
    assert "duplicate row" in e.message and "line 2" in e.message


def test_duplicate_trial_and_arm(data):
    append_line(data, "trials.csv", (data / "trials.csv").read_text().splitlines()[2])
    append_line(data, "arms.csv", (data / "arms.csv").read_text().splitlines()[1])
    msgs = [(e.file.rsplit("/", 1)[1], e.line, e.column, e.message) for e in validate_extraction(data)]
    assert ("trials.csv", 7, "trial", "duplicate trial 'haasen2007' (first on line 3)") in msgs
    assert ("arms.csv", 14, "arm", "duplicate arm 'dam' of perneger1998 (first on line 2)") in msgs


def test_missing_column_and_wrong_field_count(data):
    text = (data / "arms.csv").read_text().replace("role,", "", 1)
    (data / "arms.csv").write_text(text)
    errors = validate_extraction(data)
    # The header error only: rows of an unreadable file are not checked against it.
    assert [(e.line, e.column) for e in errors] == [(1, "role")]
    assert "missing column" in errors[0].message

    shutil.copy(VALID / "arms.csv", data / "arms.csv")
    append_line(data, "outcomes.csv", "haasen2007,crime,x,dam,52")
    errors = validate_extraction(data)
    assert [(e.line, e.message) for e in errors] == [(23, "expected 15 fields, found 5")]


def test_missing_file_and_folder(data, tmp_path):
    (data / "arms.csv").unlink()
    errors = validate_extraction(data)
    assert [(e.file, e.message) for e in errors] == [(str(data / "arms.csv"), "file not found")]
    errors = validate_extraction(tmp_path / "nowhere")
    assert errors[0].message == "extraction folder not found"


def test_trial_without_arms(data):
    lines = (data / "arms.csv").read_text().splitlines(keepends=True)
    (data / "arms.csv").write_text("".join(line for line in lines if not line.startswith("salome2016")))
    # salome2016's outcome rows now name unknown arms; the trials row has no arms.
    msgs = {(e.file.rsplit("/", 1)[1], e.line, e.column) for e in validate_extraction(data)}
    assert ("trials.csv", 6, "trial") in msgs
    assert ("outcomes.csv", 15, "arm") in msgs


def test_not_utf8(data):
    (data / "trials.csv").write_bytes((data / "trials.csv").read_bytes() + b"x\xff\xfe,\n")
    errors = validate_extraction(data)
    assert errors[0].message == "not UTF-8 text" and errors[0].line == 7


def test_quoted_newline_keeps_line_numbers(data):
    # A cell spanning two physical lines: the next row's error names its own physical line.
    edit(data, "outcomes.csv", 5, "events", "9999")
    edit(data, "outcomes.csv", 3, "note", "first line\nsecond line")
    errors = validate_extraction(data)
    assert [(e.line, e.column) for e in errors] == [(6, "events")]


def test_trials_command_formats(data, capsys):
    code, out, _ = run(["--data-dir", str(data), "trials", "--format", "json"], capsys)
    assert code == 0
    rows = json.loads(out)
    assert [r["trial"] for r in rows] == ["perneger1998", "haasen2007", "naomi2009", "riott2010", "salome2016"]
    # salome2016's retention rows are 'not reported': it contributes days of use only.
    assert rows[4] == {"trial": "salome2016", "country": "Canada", "n_randomised": 202, "followup_weeks": 26,
                       "outcomes": ["illicit_use_days"]}
    code, out, _ = run(["--data-dir", str(data), "trials", "--format", "csv"], capsys)
    assert out.splitlines()[0] == "trial,country,n_randomised,followup_weeks,outcomes"
    assert out.splitlines()[1] == "perneger1998,Switzerland,51,26,illicit_use retention"
    code, out, _ = run(["--data-dir", str(data), "trials", "--format", "markdown"], capsys)
    assert out.splitlines()[2] == "| perneger1998 | Switzerland | 51 | 26 | illicit_use retention |"
    code, out, _ = run(["--data-dir", str(data), "trials"], capsys)
    assert out.splitlines()[0].split() == ["trial", "country", "N", "follow-up", "(weeks)", "outcomes"]


def test_validate_subprocess_no_traceback(data):
    edit(data, "outcomes.csv", 2, "events", "600")
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "--data-dir", str(data), "validate"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.splitlines()[0] == f"{data / 'outcomes.csv'}:2: column 'events': events (600) exceed n (515)"


def test_env_var_data_dir(data, monkeypatch):
    from hatmeta.review import default_data_dir

    monkeypatch.setenv("HATMETA_DATA_DIR", str(data))
    assert default_data_dir() == data
    assert len(load_extraction().trials) == 5
    monkeypatch.delenv("HATMETA_DATA_DIR")
    assert default_data_dir().parts[-2:] == ("data", "extracted")
