"""`--by` failure isolation: a bad row fails only its own group; `--strict` stops at the first bad row."""

import json
import subprocess
import sys

import pytest

from hatmeta.api import pool_by, read_data_by
from hatmeta.io.trial_table import table_from_rows

HEADER = ["group", "study", "mean_treat", "sd_treat", "n_treat", "mean_ctrl", "sd_ctrl", "n_ctrl"]
GOOD = [["A", "a1", "1.0", "0.5", "20", "0.8", "0.6", "22"], ["A", "a2", "1.2", "0.5", "30", "0.9", "0.4", "31"],
        ["A", "a3", "0.7", "0.5", "25", "0.9", "0.4", "24"],
        ["B", "b1", "1.0", "0.9", "20", "0.8", "0.6", "22"], ["B", "b2", "1.1", "0.5", "20", "0.7", "0.6", "22"],
        ["D", "d1", "1.0", "0.5", "20", "0.8", "0.6", "22"], ["D", "d2", "1.3", "0.7", "20", "0.4", "0.6", "22"]]
BAD = [["C", "c1", "2.0", "0.5", "20", "0.8", "0.6", "22"], ["C", "c2", "1.5", "0", "25", "0.8", "0.5", "22"],
       ["E", "e1", "2.0", "0.5", "20", "0.8", "x", "22"], ["E", "e2", "2.0", "0.5", "20", "0.8", "0.4", "22"],
       ["F", "f1", "2.0", "0.5", "20", "0.8", "0.4"]]
ROWS = [HEADER, *GOOD[:3], BAD[0], *GOOD[3:5], BAD[1], BAD[2], *GOOD[5:], BAD[3], BAD[4]]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", *args], capture_output=True, text=True)


def test_a_bad_row_fails_only_its_group(write_csv):
    path = write_csv(ROWS)
    p = cli("--data", str(path), "--measure", "MD", "--by", "group", "--format", "json")
    assert p.returncode == 0, p.stderr
    out = [json.loads(line) for line in p.stdout.splitlines()]
    assert [o["group"] for o in out] == ["A", "C", "B", "E", "D", "F"]  # order of first appearance
    errors = {o["group"]: o.get("error") for o in out}
    assert errors["C"] == f"{path}:8: column 'sd_treat': must be greater than 0, got 0"
    assert errors["E"] == f"{path}:9: column 'sd_ctrl': not a number: 'x'"
    assert errors["F"] == f"{path}:13: expected 8 fields, found 7"
    for o in out:
        if o["group"] in "CEF":
            assert o["estimate"] is None and o["tau2"] is None and o["notes"] == [o["error"]]
        else:
            assert "error" not in o and o["estimate"] is not None
    # One summary line on stderr, naming the count and the first failures.
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("3 of 6 groups failed: C: ")
    # The groups answered are exactly what a clean file gives.
    clean = cli("--data", str(write_csv([HEADER, *GOOD], "clean.csv")), "--measure", "MD", "--by", "group",
                "--format", "json")
    want = {json.loads(line)["group"]: json.loads(line) for line in clean.stdout.splitlines()}
    for o in out:
        if o["group"] in want:
            assert o == want[o["group"]]


def test_strict_stops_at_the_first_bad_row(write_csv):
    path = write_csv(ROWS)
    p = cli("--data", str(path), "--measure", "MD", "--by", "group", "--strict")
    assert p.returncode == 2 and p.stdout == ""
    # The exact reader's error, as without --by (it checks the field counts of every row first).
    assert p.stderr.strip().splitlines() == [f"error: {path}:13: expected 8 fields, found 7"]
    path = write_csv(ROWS[:-1], "b.csv")
    p = cli("--data", str(path), "--measure", "MD", "--by", "group", "--strict")
    alone = cli("--data", str(path), "--measure", "MD")
    assert p.returncode == alone.returncode == 2
    assert p.stderr.strip().splitlines() == alone.stderr.strip().splitlines() == [
        f"error: {path}:9: column 'sd_ctrl': not a number: 'x'"]


def test_an_undefined_effect_fails_its_group(write_csv):
    # With --cc 0 a zero cell leaves the log RR undefined: that group fails, the others are pooled.
    rows = [["group", "study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"],
            ["A", "a1", "4", "123", "11", "139"], ["A", "a2", "3", "231", "11", "220"],
            ["B", "b1", "0", "50", "3", "40"], ["B", "b2", "2", "30", "5", "31"],
            ["C", "c1", "6", "306", "29", "303"], ["C", "c2", "62", "13598", "248", "12867"]]
    path = write_csv(rows)
    table, measure, failed, keys = read_data_by(path, "RR", "group")
    assert failed == {}
    res = pool_by(table, "group", measure, cc=0, failed=failed, group_keys=keys)
    assert [g for g, _ in res.failed] == ["B"]
    assert res.failed[0][1].startswith(f"{path}:4: column 'events_treat': RR is undefined")
    assert res[0].estimate == res[0].estimate and res[2].estimate == res[2].estimate
    with pytest.raises(Exception, match="RR is undefined"):
        pool_by(table, "group", measure, cc=0, strict=True)


@pytest.mark.parametrize("method", ["MH", "PETO", "FE", "DL"])
def test_every_method_isolates_failures(write_csv, method):
    rows = [["group", "study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"],
            ["A", "a1", "4", "123", "11", "139"], ["A", "a2", "3", "231", "11", "220"],
            ["B", "b1", "7", "5", "3", "40"], ["B", "b2", "2", "30", "5", "31"],
            ["C", "c1", "6", "306", "29", "303"], ["C", "c2", "62", "13598", "248", "12867"]]
    path = write_csv(rows)
    table, measure, failed, keys = read_data_by(path, "OR", "group")
    assert failed == {"B": f"{path}:4: column 'events_treat': events (7) exceed n_treat (5)"}
    res = pool_by(table, "group", measure, method=method, failed=failed, group_keys=keys)
    clean = pool_by(table_from_rows([rows[0], *rows[1:3], *rows[5:]]), "group", "OR", method=method)
    assert [r.group for r in res] == ["A", "B", "C"]
    assert res[1].extra == {"error": failed["B"]} and res[1].estimate != res[1].estimate
    for got, want in zip((res[0], res[2]), clean):
        assert got.estimate == want.estimate and got.se == want.se and got.tau2 == want.tau2


def test_every_group_failing_still_answers_each(write_csv):
    path = write_csv([HEADER, BAD[0], BAD[1], BAD[4]])
    p = cli("--data", str(path), "--measure", "MD", "--by", "group", "--format", "json")
    assert p.returncode == 0
    out = [json.loads(line) for line in p.stdout.splitlines()]
    assert [o["group"] for o in out] == ["C", "F"] and all(o["error"] for o in out)
    assert p.stderr.startswith("2 of 2 groups failed")
