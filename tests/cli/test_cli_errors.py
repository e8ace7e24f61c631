"""Bad input to `hatmeta pool --data`: one line naming file, row and column; exit code 2; no traceback."""

import subprocess
import sys

import pytest

GOOD = [["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"],
        ["a", "4", "123", "11", "139"], ["b", "6", "306", "29", "303"], ["c", "3", "231", "11", "220"]]


def run(*args):
    return subprocess.run([sys.executable, "-m", "hatmeta.cli", *args], capture_output=True, text=True)


def _with(row, col, value):
    rows = [list(r) for r in GOOD]
    rows[row][GOOD[0].index(col) if isinstance(col, str) else col] = value
    return rows


@pytest.mark.parametrize("rows, line, column, words", [
    (_with(2, "n_treat", "abc"), 3, "n_treat", "not a number"),
    (_with(1, "n_ctrl", "0"), 2, "n_ctrl", "at least 1"),
    (_with(1, "n_treat", "-5"), 2, "n_treat", "at least 1"),
    (_with(3, "events_ctrl", "300"), 4, "events_ctrl", "exceed"),
    (_with(2, "events_treat", ""), 3, "events_treat", "missing value"),
    (_with(2, "events_treat", "2.5"), 3, "events_treat", "whole number"),
    ([r[:4] for r in GOOD], 1, "n_ctrl", "missing column"),
])
def test_bad_binary_tables(write_csv, rows, line, column, words):
    path = write_csv(rows)
    p = run("pool", "--data", str(path), "--measure", "RR")
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{path}:{line}:" in lines[0] and f"column '{column}'" in lines[0] and words in lines[0]


def test_sd_must_be_positive(write_csv):
    path = write_csv([["study", "mean_treat", "sd_treat", "n_treat", "mean_ctrl", "sd_ctrl", "n_ctrl"],
                      ["a", "1", "2", "10", "1.5", "2", "12"], ["b", "1", "0", "10", "1.5", "2", "12"]])
    p = run("pool", "--data", str(path), "--measure", "MD")
    assert p.returncode == 2 and f"{path}:3: column 'sd_treat'" in p.stderr


@pytest.mark.parametrize("args, words", [
    (["--measure", "XYZ"], "unknown measure"),
    (["--measure", "RR", "--method", "BOGUS"], "unknown method"),
    (["--measure", "MD"], "missing column"),
])
def test_bad_options(write_csv, args, words):
    p = run("pool", "--data", str(write_csv(GOOD)), *args)
    assert p.returncode == 2 and words in p.stderr and "Traceback" not in p.stderr


def test_too_few_studies_for_the_method(write_csv):
    p = run("pool", "--data", str(write_csv(GOOD[:2])), "--measure", "RR", "--method", "REML")
    assert p.returncode == 2 and "at least 2 studies" in p.stderr
    ok = run("pool", "--data", str(write_csv(GOOD[:2])), "--measure", "RR", "--method", "FE")
    assert ok.returncode == 0


def test_missing_file_and_no_input():
    p = run("pool", "--data", "/nonexistent/x.csv", "--measure", "RR")
    assert p.returncode == 2 and "file not found" in p.stderr
    p = run("pool")
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_double_zero_studies_are_named(write_csv):
    rows = GOOD + [["z", "0", "50", "0", "48"]]
    p = run("pool", "--data", str(write_csv(rows)), "--measure", "OR", "--format", "json")
    assert p.returncode == 0
    import json

    out = json.loads(p.stdout)
    assert out["k"] == 3 and any("z: no events in both arms" in n for n in out["notes"])


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_separated_tables_read_like_commas(tmp_path, sep):
    """Spreadsheets in a European locale save 'CSV' with semicolons; the result is the comma file's."""
    comma = tmp_path / "comma.csv"
    other = tmp_path / "other.csv"
    comma.write_text("\n".join(",".join(r) for r in GOOD) + "\n")
    other.write_text("\ufeff" + "\r\n".join(sep.join(r) for r in GOOD) + "\r\n", encoding="utf-8")
    a = run("pool", "--data", str(comma), "--measure", "RR", "--format", "json")
    b = run("pool", "--data", str(other), "--measure", "RR", "--format", "json")
    assert a.returncode == 0 and b.returncode == 0, b.stderr
    assert a.stdout.replace(str(comma), "") == b.stdout.replace(str(other), "")


def test_a_decimal_comma_is_named(tmp_path):
    path = tmp_path / "dc.csv"
    path.write_text("study;yi;vi\na;0,5;0.1\nb;0.2;0.1\n")
    p = run("pool", "--data", str(path), "--measure", "GEN")
    assert p.returncode == 2 and f"{path}:2: column 'yi'" in p.stderr and "decimal comma" in p.stderr


@pytest.mark.parametrize("args", [("pool",), ("pool", "--by", "alloc"), ("forest",), ("table",), ("tsa",)])
def test_a_missing_measure_is_one_error_wherever_it_is_asked(args):
    """Every --data command words a missing --measure the same way and lists what can be chosen."""
    from pathlib import Path

    from hatmeta.fit.effects import MEASURES
    from hatmeta.methods.tsa import SUPPORTED

    bcg = Path(__file__).parents[1] / "fixtures" / "data" / "bcg.csv"
    proc = run(args[0], "--data", str(bcg), *args[1:])
    assert proc.returncode == 2
    allowed = SUPPORTED if args[0] == "tsa" else MEASURES
    assert proc.stderr.strip() == f"error: option '--measure': --measure is required with --data ({', '.join(allowed)})"
