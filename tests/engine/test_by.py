"""`--by`: every group pooled separately in one vectorised run, equal to pooling each group alone."""

import json
import subprocess
import sys

import pytest

from hatmeta.api import pool_by, pool_table
from hatmeta.io.trial_table import read_table, table_from_rows

ROWS = [["group", "study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"],
        ["A", "a1", "4", "123", "11", "139"], ["B", "b1", "6", "306", "29", "303"],
        ["A", "a2", "3", "231", "11", "220"], ["B", "b2", "62", "13598", "248", "12867"],
        ["A", "a3", "33", "5069", "47", "5808"], ["B", "b3", "180", "1541", "372", "1451"],
        ["C", "c1", "8", "2545", "10", "629"], ["D", "d1", "0", "50", "0", "40"], ["D", "d2", "0", "30", "3", "31"],
        ["D", "d3", "2", "40", "5", "41"]]


@pytest.mark.parametrize("method, ci", [("REML", "wald"), ("DL", "hksj"), ("FE", "wald"), ("MH", "wald")])
def test_each_group_equals_its_own_fit(method, ci):
    table = table_from_rows(ROWS)
    batch = pool_by(table, "group", "RR", method=method, ci=ci)
    assert [r.group for r in batch] == ["A", "B", "C", "D"]
    for res in batch:
        rows = [ROWS[0]] + [r for r in ROWS[1:] if r[0] == res.group]
        if res.group == "C" and method not in ("FE", "MH"):
            assert res.k == 1 and res.estimate != res.estimate  # NaN, answered with a note
            assert any("at least 2 studies" in n for n in res.notes)
            continue
        alone = pool_table(table_from_rows(rows), "RR", method=method, ci=ci)
        assert res.estimate == pytest.approx(alone.estimate, rel=1e-10)
        assert res.se == pytest.approx(alone.se, rel=1e-10)
        assert res.tau2 == pytest.approx(alone.tau2, rel=1e-9, abs=1e-14)
        assert [s.study for s in res.studies] == [s.study for s in alone.studies]
        assert [s.weight for s in res.studies] == pytest.approx([s.weight for s in alone.studies])
    d = batch[3]
    assert d.k == 2 and any("d1" in n and "both arms" in n for n in d.notes)


def test_cli_json_lines_match_the_api(write_csv):
    from hatmeta.precision import q

    path = write_csv(ROWS)
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "--data", str(path), "--measure", "RR",
                        "--by", "group", "--format", "json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    batch = pool_by(read_table(path), "group", "RR")
    assert [x["group"] for x in lines] == ["A", "B", "C", "D"]
    for obj, res in zip(lines, batch):
        expected = res.to_dict()
        for key in ("k", "estimate", "se", "ci_low", "ci_high", "tau2", "q", "i2", "p", "pi_low"):
            assert obj[key] == q(expected[key])  # written under the output policy (10 significant digits)
        assert [s["study"] for s in obj["studies"]] == [s["study"] for s in expected["studies"]]
        assert [s["events_treat"] for s in obj["studies"]] == [s["events_treat"] for s in expected["studies"]]
    assert lines[2]["estimate"] is None and lines[2]["notes"]


def test_one_trial_subgroup_under_hksj_shows_its_own_wald_interval():
    """HKSJ needs two studies; a one-study subgroup shows that trial's CI (as RevMan), and the test
    for subgroup differences stays defined."""
    import math

    table = table_from_rows(ROWS[:7] + [["C", "c1", "8", "2545", "10", "629"]])
    res = pool_table(table, "RR", method="REML", ci="hksj", subgroup="group")
    c = next(g for g in res.subgroups if g.group == "C")
    study = next(s for s in res.studies if s.study == "c1")
    assert c.k == 1 and c.estimate == pytest.approx(study.yi)
    assert (c.ci_low, c.ci_high) == pytest.approx((study.ci_low, study.ci_high))
    assert math.isfinite(res.subgroup_test.q) and math.isfinite(res.subgroup_test.p)


def test_study_ids_repeat_across_groups_as_in_a_simulation(write_csv):
    """Replicates reuse s1..s6: ids need to be unique only inside a group (issue 12)."""
    import random

    rng = random.Random(3)
    rows = [["replicate", "study", "yi", "vi"]]
    for rep in range(1, 4):
        rows += [[str(rep), f"s{i}", f"{rng.gauss(0.2, 0.3):.4f}", f"{rng.uniform(0.02, 0.2):.4f}"]
                 for i in range(1, 7)]
    rows.append(["3", "s6", "0.1", "0.05"])  # a repeat inside one group is told apart and noted
    batch = pool_by(table_from_rows(rows), "replicate", "GEN")
    assert [r.group for r in batch] == ["1", "2", "3"]
    for res in batch[:2]:
        assert [s.study for s in res.studies] == [f"s{i}" for i in range(1, 7)]
        assert not res.notes
        alone = pool_table(table_from_rows([rows[0]] + [r for r in rows[1:] if r[0] == res.group]), "GEN")
        assert res.estimate == pytest.approx(alone.estimate, rel=1e-10)
    third = batch[2]
    assert [s.study for s in third.studies][-2:] == ["s6 (1)", "s6 (2)"]
    assert any("s6 x2" in n for n in third.notes)
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "--data", str(write_csv(rows)), "--measure",
                        "GEN", "--by", "replicate", "--format", "json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert [json.loads(x)["k"] for x in p.stdout.splitlines()] == [6, 6, 7]


@pytest.mark.parametrize("measure, ci", [("RR", "hksj"), ("OR", "wald")])
def test_json_lines_are_each_groups_own_json_in_any_block_size(measure, ci):
    """The column-wise writer gives, byte for byte, what the one JSON writer makes of each group's own
    result (the --by line lists each study's inputs, effect and weight, not its CI), whatever the block."""
    from hatmeta.precision import dumps

    rows = ROWS + [["E", "e1", "x", "10", "1", "10"], ["E", "e2", "1", "10", "2", "10"]]
    table = table_from_rows(rows[:-2])
    batch = pool_by(table, "group", measure, ci=ci, failed={"E": "t.csv:12: events_treat: not a number: 'x'"},
                    group_keys=[r[0] for r in rows[1:]])
    whole = b"".join(batch.json_blocks())
    for size in (1, 2, 3):
        assert b"".join(batch.json_blocks(groups_per_block=size)) == whole
    lines = whole.decode().split("\n")
    assert lines[-1] == "" and len(lines) == len(batch) + 1
    assert list(batch.json_lines()) == lines[:-1]
    for line, res in zip(lines, batch):
        expected = res.to_dict()
        keys = set(json.loads(line)["studies"][0]) if res.k else set()
        expected["studies"] = [{k: v for k, v in s.items() if k in keys} for s in expected["studies"]]
        if ci == "hksj" and "z" in expected:  # every line of one run has the same keys: t and df, null if unfitted
            expected["t"], expected["df"] = expected.pop("z"), None
        assert line == dumps(expected, indent=False)
    assert json.loads(lines[4])["error"].startswith("t.csv:12")
