"""Two crashes mypy found (issue 21, typing): rows that are dropped or bad must be named, never crash."""

import subprocess
import sys
from pathlib import Path

import pytest

import hatmeta

ROOT = Path(__file__).resolve().parents[2]


def test_pool_table_on_a_frame_names_a_study_without_events_as_not_estimable():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"study": ["a", "b", "c"], "events_treat": [0, 6, 3], "n_treat": [10, 306, 231],
                          "events_ctrl": [0, 29, 11], "n_ctrl": [10, 303, 220]})
    res = hatmeta.api.pool_table(frame, "RR")
    assert res.k == 2
    assert [r["study"] for r in res.not_estimable] == ["a"]
    assert res.not_estimable[0]["inputs"] == {"events_treat": 0, "n_treat": 10, "events_ctrl": 0, "n_ctrl": 10}


def test_by_with_a_small_study_test_reports_groups_whose_rows_all_fail(tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("group,study,yi,vi\ng1,a,abc,0.1\ng1,b,xyz,0.1\n")
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "--data", str(data), "--measure", "GEN",
                        "--by", "group", "--small-study", "egger"], capture_output=True, text=True, cwd=ROOT)
    assert "Traceback" not in p.stderr
    assert "1 of 1 groups failed: g1:" in p.stderr and "column 'yi': not a number: 'abc'" in p.stderr
