"""`hatmeta pool ANALYSIS --compare REF`: before and after, side by side, against a git revision or a
saved result JSON; the findings that crossed a line."""

import json
import shutil
import subprocess

import pytest

from hatmeta.cli import main
from hatmeta.review.api import pool_analysis
from hatmeta.review.compare import compare

from ..conftest import ROOT
from .test_eligibility import new_trial

GIT = shutil.which("git")


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def summary(k, trials, est, lo, hi, pi=(None, None)):
    return {"k": k, "trials": trials, "estimate": est, "ci_low": lo, "ci_high": hi, "tau2": 0.1, "i2": 50.0,
            "pi_low": pi[0], "pi_high": pi[1]}


def test_crossings_in_plain_language():
    # log RR; benefit 'higher': RR > 1 favours HAT.
    before = summary(3, ["a", "b", "c"], 0.2, -0.1, 0.5, (-0.8, 1.2))
    after = summary(3, ["a", "b", "d"], 0.3, 0.05, 0.55, (0.01, 0.6))
    cmp = compare(before, after, scale="log", benefit="higher", labels=("HAT", "methadone"))
    assert cmp["entered"] == ["d"] and cmp["left"] == ["c"]
    assert cmp["crossed"] == ["the confidence interval no longer includes no effect (ratio 1): it now favours HAT",
                              "the prediction interval no longer includes no effect (ratio 1)"]
    flipped = compare(before, summary(3, ["a", "b", "c"], -0.2, -0.5, 0.1), benefit="higher",
                      labels=("HAT", "methadone"))
    assert flipped["crossed"] == ["the direction flipped: the estimate favoured HAT before and favours methadone now"]
    back = compare(after, before, scale="MD", benefit="lower")
    assert back["crossed"][0] == ("the confidence interval now includes no effect (difference 0): it favoured "
                                  "control before")
    assert compare(before, before)["crossed"] == []


def git(args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path):
    if GIT is None:
        pytest.skip("git is not installed (--compare reads a revision with git)")
    """A scratch git repository holding a copy of the data and the specs, one commit."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "data" / "extracted", root / "data" / "extracted")
    shutil.copytree(ROOT / "analyses", root / "analyses")
    git(["init", "-q"], root)
    git(["add", "-A"], root)
    git(["commit", "-qm", "base"], root)
    return root


def test_compare_with_the_previous_commit(repo, tmp_path, capsys):
    data = repo / "data" / "extracted"
    code, before_json, _ = run(["--data-dir", str(data), "pool", "retention", "--format", "json"], capsys)
    before_json = json.loads(before_json)
    assert run(["--data-dir", str(data), "add-trial", "--from", str(new_trial(tmp_path / "new"))], capsys)[0] == 0
    git(["add", "-A"], repo)
    git(["commit", "-qm", "add fict2024"], repo)
    code, out, err = run(["--data-dir", str(data), "pool", "retention", "--compare", "HEAD~1", "--format", "json"],
                         capsys)
    assert code == 0, err
    d = json.loads(out)
    cmp = d["compare"]
    assert set(cmp) == {"before", "after", "entered", "left", "crossed"}
    assert cmp["before"]["k"] == 3 and cmp["after"]["k"] == 4
    assert cmp["entered"] == ["fict2024"] and cmp["left"] == []
    # before = the analysis pooled on the data as committed; after = this result.
    for key in ("estimate", "ci_low", "ci_high", "tau2", "i2", "pi_low", "pi_high"):
        assert cmp["before"][key] == pytest.approx(before_json[key], rel=1e-12), key
        assert cmp["after"][key] == pytest.approx(d[key], rel=1e-12), key
    assert set(cmp["before"]) == {"k", "trials", "estimate", "ci_low", "ci_high", "tau2", "i2", "pi_low", "pi_high"}
    code, out, _ = run(["--data-dir", str(data), "pool", "retention", "--compare", "HEAD~1"], capsys)
    assert "before (HEAD~1)" in out and "Trials entered: fict2024" in out
    assert "  k (trials)           3                 4" in out


def test_compare_with_a_saved_result_and_errors(tmp_path, capsys):
    data = tmp_path / "extracted"
    shutil.copytree(ROOT / "data" / "extracted", data)
    saved = tmp_path / "before.json"
    saved.write_text(run(["--data-dir", str(data), "pool", "retention", "--format", "json"], capsys)[1])
    run(["--data-dir", str(data), "add-trial", "--from", str(new_trial(tmp_path / "new"))], capsys)
    code, out, err = run(["--data-dir", str(data), "pool", "retention", "--compare", str(saved), "--format", "json"],
                         capsys)
    assert code == 0, err
    assert json.loads(out)["compare"]["entered"] == ["fict2024"]
    # Not a git repository: a revision cannot be read; the error names the option.
    code, _, err = run(["--data-dir", str(data), "pool", "retention", "--compare", "HEAD~1"], capsys)
    # (without git installed, the same option says it cannot run git)
    assert code == 2 and "option '--compare'" in err and ("not in a git repository" if GIT else "cannot run git") in err
    (tmp_path / "bad.json").write_text("[1, 2]")
    code, _, err = run(["pool", "retention", "--compare", str(tmp_path / "bad.json")], capsys)
    assert code == 2 and "not a saved 'hatmeta pool --format json' result" in err


def test_report_changes_since_the_previous_report(tmp_path):
    """`hatmeta report` compares the results it overwrites with the new ones (unit level: the report
    build itself is tested in test_report.py)."""
    from hatmeta.review.compare import read_results, report_changes, report_changes_text

    data = tmp_path / "extracted"
    shutil.copytree(ROOT / "data" / "extracted", data)
    old_res = pool_analysis("retention", data_dir=data)[0].to_dict()
    (tmp_path / "old" / "results").mkdir(parents=True)
    (tmp_path / "old" / "results" / "retention.json").write_text(json.dumps(old_res))
    (tmp_path / "old" / "results" / "retention-bayes.json").write_text("{}")
    (tmp_path / "old" / "results" / "illicit-use-any-route.json").write_text(
        json.dumps(pool_analysis("illicit-use-any-route", data_dir=data)[0].to_dict()))
    old = read_results(tmp_path / "old")
    assert set(old) == {"retention", "illicit-use-any-route"}
    new_folder = new_trial(tmp_path / "new")
    with pytest.raises(SystemExit):
        main(["--data-dir", str(data), "add-trial", "--from", str(new_folder)])
    new = {"retention": pool_analysis("retention", data_dir=data)[0].to_dict(),
           "illicit-use-any-route": pool_analysis("illicit-use-any-route", data_dir=data)[0].to_dict()}
    changes = report_changes(old, new)
    assert [name for name, _ in changes] == ["retention"]  # illicit use: the new trial does not report it
    assert changes[0][1]["entered"] == ["fict2024"]
    text = report_changes_text(changes, old, new, "reports")
    assert text.startswith("Changes since the report in reports:\n\nretention:\n")
    assert "before (previous report)" in text and "Trials entered: fict2024" in text
    assert report_changes_text([], old, old, "reports") == "No pooled result changed since the report in reports."


def test_the_report_change_summary_reads_pooled_results_only():
    """results/ also holds <name>-tsa.json and <name>-bayes.json: they are not pooled results, and read as
    such they printed 'k (trials) None None' after add-trial."""
    from hatmeta.review.compare import read_results

    got = read_results(ROOT / "reports")
    files = {p.stem for p in (ROOT / "reports" / "results").glob("*.json")}
    assert any(f.endswith("-tsa") for f in files)
    assert set(got) == {f for f in files if not f.endswith(("-tsa", "-bayes", "-nma", "-mv"))}
    assert all(isinstance(r["k"], int) for r in got.values())
