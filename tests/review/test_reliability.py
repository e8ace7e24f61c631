"""Nothing lost, ever (issue 22): locked and crash-safe add-trial, reports replaced whole, hostile files
harmless, one line (exit 2) for every expected failure.

Runs the command line in subprocesses where a kill or a second process is the point, in-process elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hatmeta.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
VALID = FIXTURES / "evidence" / "valid"
STRACE = shutil.which("strace")

HEADER_T = ("trial,short_name,country,sites,authors,journal,year,volume,pages,doi,pmid,registry,blinding,hypothesis,"
            "route,n_randomised,followup_weeks,itt,source,notes\n")
HEADER_A = "trial,arm,description,role,n_randomised,source,note\n"
HEADER_O = ("trial,outcome,definition,arm,timepoint_weeks,n,events,mean,sd,count,person_time,source,status,"
            "derivation,note\n")


def new_trial(folder: Path, tid: str, authors: str = "Smith J") -> Path:
    """A folder holding a valid new trial ``tid`` (trials, arms and outcome rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trials.csv").write_text(HEADER_T + f'{tid},X,Belgium,Liege,"{authors}",J,2015,1,1-2,,,,open,'
                                       "superiority,injected,74,52,yes,src,\n")
    (folder / "arms.csv").write_text(HEADER_A + f"{tid},dam,heroin,experimental,36,src,\n"
                                     f"{tid},mmt,methadone,control,38,src,\n")
    (folder / "outcomes.csv").write_text(HEADER_O + f"{tid},retention,retained,dam,52,36,20,,,,,src,reported,,\n"
                                         f"{tid},retention,retained,mmt,52,38,15,,,,,src,reported,,\n")
    return folder


@pytest.fixture
def data(tmp_path):
    dest = tmp_path / "extracted"
    shutil.copytree(VALID, dest)
    return dest


def snapshot(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def env(**extra) -> dict:
    e = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
    e.update(extra)
    return e


def cli(*args, timeout=120, **extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hatmeta.cli", *args], capture_output=True, text=True,
                          env=env(**extra), timeout=timeout, cwd=ROOT)


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def trial_count(data: Path, tid: str) -> dict:
    return {name: sum(line.startswith(f"{tid},") for line in (data / name).read_text().splitlines())
            for name in ("trials.csv", "arms.csv", "outcomes.csv")}


# ---------------------------------------------------------------- concurrency


@pytest.mark.parametrize("same", [False, True], ids=["two-trials", "same-trial"])
def test_two_concurrent_add_trials_lose_nothing(data, tmp_path, same):
    """20 rounds of two add-trial runs at once: both trials are there exactly once (or, for the same trial
    twice, it is there once and the other run is refused with exit 2)."""
    for i in range(10):  # x2 parametrisations = 20 rounds
        shutil.rmtree(data)
        shutil.copytree(VALID, data)
        a = new_trial(tmp_path / f"a{i}", f"alpha{i}")
        b = new_trial(tmp_path / f"b{i}", f"alpha{i}" if same else f"beta{i}")
        procs = [subprocess.Popen([sys.executable, "-m", "hatmeta.cli", "--data-dir", str(data), "add-trial",
                                   "--from", str(src)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env(), cwd=ROOT) for src in (a, b)]
        results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
        for p in procs:
            p.stdout.close()
            p.stderr.close()
        codes = sorted(c for c, _ in results)
        if same:
            assert codes == [0, 2], results
            refused = next(e for c, e in results if c == 2)
            assert "duplicate trial 'alpha" in refused or "already exists" in refused or ".hatmeta.lock" in refused
            assert trial_count(data, f"alpha{i}") == {"trials.csv": 1, "arms.csv": 2, "outcomes.csv": 2}
        else:
            for code, err in results:
                assert code == 0 or (code == 2 and ".hatmeta.lock" in err), results
            for tid, (code, _) in zip((f"alpha{i}", f"beta{i}"), results):
                want = {"trials.csv": 1, "arms.csv": 2, "outcomes.csv": 2} if code == 0 else \
                    {"trials.csv": 0, "arms.csv": 0, "outcomes.csv": 0}
                assert trial_count(data, tid) == want, results
        assert not [p.name for p in data.iterdir() if p.name.startswith(".")]


def test_a_held_lock_is_waited_for_then_named(data, tmp_path):
    """A second writer waits HATMETA_LOCK_TIMEOUT seconds, then exits 2 naming the lock; nothing written."""
    from hatmeta.review.transaction import locked

    before = snapshot(data)
    with locked(data):
        r = cli("--data-dir", str(data), "add-trial", "--from", str(new_trial(tmp_path / "n", "gamma")),
                HATMETA_LOCK_TIMEOUT="0.5")
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and ".hatmeta.lock" in r.stderr and "waited 0.5 s" in r.stderr
    assert snapshot(data) == before


# ---------------------------------------------------------------- kills


STAGES = ["journal", "rename1", "rename2", "rename3", "unjournal"]


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_at_each_step_leaves_old_or_new(data, tmp_path, stage):
    """Killed (test hook HATMETA_TEST_KILL) before the journal, at each rename, before the journal is removed:
    after the next command the extraction is byte for byte the old one or the new one, no temp file left."""
    old = snapshot(data)
    reference = tmp_path / "reference"
    shutil.copytree(VALID, reference)
    src = new_trial(tmp_path / "n", "delta")
    assert cli("--data-dir", str(reference), "add-trial", "--from", str(src)).returncode == 0
    new = snapshot(reference)
    r = cli("--data-dir", str(data), "add-trial", "--from", str(src), HATMETA_TEST_KILL=stage)
    assert r.returncode == -signal.SIGKILL, r.stderr
    after = cli("--data-dir", str(data), "validate")
    assert after.returncode == 0, after.stderr
    assert snapshot(data) == (old if stage == "journal" else new)
    assert ("note: completed an interrupted write" in after.stderr) == (stage != "journal")
    assert not [p.name for p in data.iterdir() if p.name.startswith(".")]


@pytest.mark.skipif(STRACE is None, reason="strace is not installed (Debian: apt-get install strace)")
@pytest.mark.parametrize("nth", [1, 2, 3, 4])
def test_strace_sigkill_at_each_rename(data, tmp_path, nth):
    """strace injects SIGKILL at the n-th rename system call (the journal's, then each file's)."""
    old = snapshot(data)
    reference = tmp_path / "reference"
    shutil.copytree(VALID, reference)
    src = new_trial(tmp_path / "n", "epsilon")
    assert cli("--data-dir", str(reference), "add-trial", "--from", str(src)).returncode == 0
    new = snapshot(reference)
    calls = "rename,renameat,renameat2"
    r = subprocess.run([STRACE, "-f", "-o", "/dev/null", "-e", f"trace={calls}",
                        "-e", f"inject={calls}:signal=SIGKILL:when={nth}",
                        sys.executable, "-m", "hatmeta.cli", "--data-dir", str(data), "add-trial", "--from", str(src)],
                       capture_output=True, text=True, env=env(), cwd=ROOT, timeout=120)
    if "PTRACE" in r.stderr or "Operation not permitted" in r.stderr:
        pytest.skip(f"strace cannot trace here: {r.stderr.strip()[:200]}")
    assert r.returncode != 0, r.stderr
    after = cli("--data-dir", str(data), "validate")
    assert after.returncode == 0, after.stderr
    assert snapshot(data) in (old, new)
    assert snapshot(data) == (old if nth == 1 else new)
    assert not [p.name for p in data.iterdir() if p.name.startswith(".")]


def test_killed_dry_run_leaves_no_copy(data, tmp_path):
    """A dry run places the trial on the would-be extraction in memory: nothing in the temp folder."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    r = cli("--data-dir", str(data), "add-trial", "--dry-run", "--from", str(new_trial(tmp_path / "n", "zeta")),
            TMPDIR=str(scratch))
    assert r.returncode == 0, r.stderr
    assert "would append" in r.stdout and "zeta enters" in r.stdout
    assert list(scratch.iterdir()) == []


def test_symlinked_data_file_is_written_through(data, tmp_path):
    """trials.csv a symbolic link: the link stays a link and its target gets the new row."""
    real = tmp_path / "elsewhere" / "trials.csv"
    real.parent.mkdir()
    shutil.move(data / "trials.csv", real)
    (data / "trials.csv").symlink_to(real)
    r = cli("--data-dir", str(data), "add-trial", "--from", str(new_trial(tmp_path / "n", "eta")))
    assert r.returncode == 0, r.stderr
    assert (data / "trials.csv").is_symlink() and os.readlink(data / "trials.csv") == str(real)
    assert "eta," in real.read_text()
    assert not [p.name for p in real.parent.iterdir() if p.name.startswith(".")]


def test_hostile_journal_cannot_move_other_files(data, tmp_path):
    """A journal shipped in a folder that names a file outside the extraction is refused, nothing moved."""
    import json

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    payload = tmp_path / ".victim.txt.x.hatmeta-tmp"
    payload.write_text("owned")
    (data / ".hatmeta-journal.json").write_text(json.dumps({"version": 1, "files": [
        {"file": "victim.txt", "target": str(victim), "temp": str(payload), "sha256": "0" * 64}]}))
    r = cli("--data-dir", str(data), "validate")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "journal" in r.stderr
    assert victim.read_text() == "keep me"


# ---------------------------------------------------------------- report replaced whole


def tree(folder: Path) -> dict:
    """Every entry under ``folder``: file bytes' digest, or the target of a symbolic link."""
    out = {}
    for p in sorted(folder.rglob("*")):
        key = p.relative_to(folder).as_posix()
        if p.is_symlink():
            out[key] = "-> " + os.readlink(p)
        elif p.is_file():
            out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def small_analyses(tmp_path):
    folder = tmp_path / "analyses"
    folder.mkdir()
    shutil.copy(ROOT / "analyses" / "mortality.toml", folder)  # refused (no data): a report in seconds
    return folder


def test_failed_report_leaves_the_old_one_untouched(tmp_path, small_analyses):
    out = tmp_path / "reports"
    assert cli("--analyses-dir", str(small_analyses), "report", "--out", str(out)).returncode == 0
    (out / "README.md").write_text("kept by hand\n")
    before = tree(out)
    (small_analyses / "zz-broken.toml").write_text("[analysis\ntitle = 'x'\n")
    r = cli("--analyses-dir", str(small_analyses), "report", "--out", str(out))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert tree(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left
    (small_analyses / "zz-broken.toml").unlink()
    assert cli("--analyses-dir", str(small_analyses), "report", "--out", str(out)).returncode == 0
    assert (out / "README.md").read_text() == "kept by hand\n"  # not an output: carried over


def test_report_never_follows_a_symlink_in_out(tmp_path, small_analyses):
    out = tmp_path / "reports"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "index.html").symlink_to(victim)
    (out / "figures").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    r = cli("--analyses-dir", str(small_analyses), "report", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "keep me" and list((tmp_path / "elsewhere").iterdir()) == []
    assert not (out / "index.html").is_symlink() and (out / "index.html").read_text().startswith("<!DOCTYPE")
    assert not (out / "figures").is_symlink()


def test_report_refuses_an_out_that_is_a_symlink(tmp_path, small_analyses):
    target = tmp_path / "home"
    target.mkdir()
    (target / "precious").write_text("x")
    (tmp_path / "reports").symlink_to(target, target_is_directory=True)
    r = cli("--analyses-dir", str(small_analyses), "report", "--out", str(tmp_path / "reports"))
    assert r.returncode == 2 and "symbolic link" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert [p.name for p in target.iterdir()] == ["precious"]


# ---------------------------------------------------------------- hostile cells


HOSTILE = ('study,yi,vi,group\n'
           '"=HYPERLINK(""http://x"",""y"")",0.1,0.04,=g\n'
           '@SUM(A1),-0.5,0.05,=g\n'
           '"-2+3",0.3,0.02,=g\n'
           '"+A1",-0.2,0.03,-1\n'
           '"\tTab",0.1,0.04,-1\n'
           '"Plain",0.2,0.05,-1\n')


def _cells(text: str) -> list:
    import csv
    import io

    return [c for row in csv.reader(io.StringIO(text)) for c in row]


def _formula(c: str) -> bool:
    from hatmeta.csvsafe import _NUMBER

    return c[:1] in ("=", "+", "-", "@", "\t", "\r") and not _NUMBER.match(c)


@pytest.mark.parametrize("args", [["pool", "--format", "csv"], ["pool", "--format", "csv", "--by", "group"],
                                  ["table", "--format", "csv"]], ids=["pool", "pool-by", "table"])
def test_formula_cells_are_neutralised_in_every_csv(tmp_path, capsys, args):
    data = tmp_path / "hostile.csv"
    data.write_text(HOSTILE)
    code, out, err = run([*args, "--data", str(data), "--measure", "GEN"], capsys)
    assert code == 0, err
    cells = _cells(out)
    assert not [c for c in cells if _formula(c)], out
    assert any(c.startswith("'=HYPERLINK") for c in cells) and any(c == "'@SUM(A1)" for c in cells)
    negative = [c for c in cells if c.startswith("-")]
    # -0.5 and the like stay numbers
    assert args[0] == "table" or (negative and all(_formula(c) is False for c in negative))


def test_csvsafe_rule():
    from hatmeta.csvsafe import cell

    assert [cell(v) for v in ["-0.5", "+3", "-1.2e-05", ".5", "Plain", ""]] == ["-0.5", "+3", "-1.2e-05", ".5",
                                                                                  "Plain", ""]
    assert [cell(v) for v in ["=1+2", "-1+2", "-inf", "@x", "\tx", "\rx", "+A1", "-"]] == [
        "'=1+2", "'-1+2", "'-inf", "'@x", "'\tx", "'\rx", "'+A1", "'-"]


def test_text_output_escapes_controls_and_bidi(tmp_path, capsys):
    data = tmp_path / "names.csv"
    data.write_text('study,yi,vi\n"Forged\nk = 99  estimate 5.0",0.1,0.04\n"Evil\u202eabc",0.2,0.05\n'
                    '"Esc\x1b[31m",0.3,0.06\n')
    code, out, err = run(["pool", "--data", str(data), "--measure", "GEN"], capsys)
    assert code == 0, err
    assert "Forged\\nk = 99" in out and "\nk = 99" not in out
    assert "Evil\\u202eabc" in out and "\u202e" not in out
    assert "Esc\\x1b[31m" in out and "\x1b" not in out
    code, out, err = run(["pool", "--data", str(data), "--measure", "GEN", "--format", "markdown"], capsys)
    assert "\u202e" not in out and "\x1b" not in out and "Forged\\nk" in out


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize("rows, column, words", [
    ("a,1e200,0.1\nb,-1e200,0.2\nc,0.3,0.1\n", "yi", "too large to compute with"),
    ("a,1e308,0.1\nb,0.1,0.2\nc,0.3,0.1\n", "yi", "too large to compute with"),
    ("a,0.2,1e-320\nb,0.1,0.2\nc,0.3,0.1\n", "vi", "too small to compute with"),
    ("a,1e-400,0.1\nb,0.1,0.2\n", "yi", "too small to compute with: '1e-400' underflows to 0"),
    ("a,1_5,0.1\nb,0.1,0.2\n", "yi", "not a number: '1_5'"),
], ids=["1e200", "1e308", "vi-1e-320", "underflow", "underscore"])
def test_numbers_out_of_range_are_refused_with_the_cell(tmp_path, capsys, rows, column, words):
    data = tmp_path / "t.csv"
    data.write_text("study,yi,vi\n" + rows)
    code, out, err = run(["pool", "--data", str(data), "--measure", "GEN"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"t.csv:2: column '{column}': {words}" in err and "Warning" not in err


def test_counts_above_2_to_53_are_refused(tmp_path, capsys):
    data = tmp_path / "t.csv"
    data.write_text("study,events_treat,n_treat,events_ctrl,n_ctrl\na,5,100000000000000000000,10,100\n"
                    "b,5,100,10,100\n")
    code, out, err = run(["pool", "--data", str(data), "--measure", "OR"], capsys)
    assert code == 2 and "t.csv:2: column 'n_treat': a count above 2^53" in err


def test_by_counts_an_overflowing_group_as_failed(tmp_path, capsys):
    data = tmp_path / "t.csv"
    data.write_text("study,yi,vi,g\na,0.1,0.1,1\nb,0.1,0.2,1\nc,1e308,0.1,2\nd,0.1,0.2,2\n")
    code, out, err = run(["pool", "--data", str(data), "--measure", "GEN", "--by", "g", "--format", "csv"], capsys)
    assert "1 of 2 groups failed" in err and "t.csv:4: column 'yi': too large" in err and "Warning" not in err


def test_runtime_warnings_reach_the_user_as_one_clean_line(tmp_path):
    data = tmp_path / "t.csv"  # within each cell's range, but extreme enough together to overflow
    data.write_text("study,mean_treat,sd_treat,n_treat,mean_ctrl,sd_ctrl,n_ctrl\na,9e99,1e-19,10,0,1e-19,10\n"
                    "b,1,1,10,0,1,10\nc,2,1,10,0,1,10\n")
    r = cli("pool", "--data", str(data), "--measure", "MD")
    assert "RuntimeWarning" not in r.stderr and "site-packages" not in r.stderr and ".py:" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines and all(line.startswith("warning: numerical problem") for line in lines), r.stderr


def test_by_stays_linear_in_bad_one_arm_rows(tmp_path, monkeypatch):
    """Bad (events, n) rows are found by the pre-check, not by one re-read of the table per bad row."""
    from hatmeta.io import lenient, trial_table

    rows = [["study", "events", "n", "g"]] + [[f"s{i}", "5" if i % 2 else "50", "10", str(i // 4)]
                                              for i in range(400)]
    calls = {"n": 0}
    real = trial_table.table_from_rows

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(trial_table, "table_from_rows", counting)
    by = lenient.table_by(rows, "g", path="t.csv", measure="PLO")
    assert len(by.errors) == 200 and all("exceed n" in e for e in by.errors.values())
    assert calls["n"] <= 200 + 3  # one confirmation per bad row plus a few whole-table reads, not 200 re-reads


# ---------------------------------------------------------------- one line, exit 2


def _spec(folder: Path, name: str, edit) -> str:
    text = (ROOT / "analyses" / "retention.toml").read_text()
    (folder / f"{name}.toml").write_bytes(edit(text) if callable(edit) else edit)
    return name


def _one_line(r) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]


SPEC_CASES = {
    "utf16": lambda t: t.encode("utf-16"),
    "bad-utf8": lambda t: b'title = "\xff\xfe"\n' + t.encode(),
    "deep": lambda t: ("a = " + "[" * 100_000 + "]" * 100_000 + "\n").encode(),
    "soon": lambda t: (t + '\n[trial.naomi2009]\ntimepoint_weeks = "soon"\n').encode(),
    "reason-table": lambda t: (t.split("[model]\n", 1)[0] + "[model]\n" + re.sub(
        r'(?s)reason = """.*?"""', "reason = {a = 1}", t.split("[model]\n", 1)[1], count=1)).encode(),
    "label-5": lambda t: t.replace('experimental = "HAT"', "experimental = 5").encode(),
    "outcome-list": lambda t: re.sub(r'(?m)^outcome = .*$', 'outcome = ["a", "b"]', t, count=1).encode(),
    "max-nan": lambda t: re.sub(r'(?m)^max_weeks = .*$', "max_weeks = nan", t, count=1).encode(),
}


@pytest.fixture
def spec_dir(tmp_path):
    folder = tmp_path / "analyses"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("case", list(SPEC_CASES))
def test_bad_specs_give_one_line(spec_dir, case):
    name = _spec(spec_dir, case, SPEC_CASES[case])
    r = cli("--analyses-dir", str(spec_dir), "--data-dir", str(ROOT / "data" / "extracted"), "pool", name)
    _one_line(r)
    assert f"{case}.toml" in r.stderr


def test_bad_spec_in_report_gives_one_line(spec_dir, tmp_path):
    _spec(spec_dir, "reason-table", SPEC_CASES["reason-table"])
    _one_line(cli("--analyses-dir", str(spec_dir), "--data-dir", str(ROOT / "data" / "extracted"), "report",
                  "--out", str(tmp_path / "reports")))


def test_spec_names_stay_inside_the_analyses_folder(spec_dir, tmp_path):
    shutil.copy(ROOT / "analyses" / "retention.toml", tmp_path / "outside.toml")
    r = cli("--analyses-dir", str(spec_dir), "pool", "../outside")
    _one_line(r)
    assert "not an analysis name" in r.stderr
    (spec_dir / "mine.toml").mkdir()
    r = cli("--analyses-dir", str(spec_dir), "pool", "mine")
    _one_line(r)
    assert "is a folder" in r.stderr and "did you mean" not in r.stderr


def test_unreadable_trials_csv_gives_one_line(data, capsys, monkeypatch):
    real = Path.read_bytes

    def deny(self):
        if self.name == "trials.csv":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    code, out, err = run(["--data-dir", str(data), "validate"], capsys)
    assert code == 2 and "trials.csv: cannot read the file (Permission denied)" in err


def test_report_on_an_unwritable_or_full_disk_gives_one_line(tmp_path, small_analyses, capsys, monkeypatch):
    _one_line(cli("--analyses-dir", str(small_analyses), "report", "--out", "/proc/hatmeta-nowhere/reports"))
    from hatmeta.review import report

    def full(*a, **k):
        raise OSError(28, "No space left on device", str(tmp_path / "reports" / "index.html"))

    monkeypatch.setattr(report, "_build_report", full)
    code, out, err = run(["--analyses-dir", str(small_analyses), "report", "--out", str(tmp_path / "reports")],
                         capsys)
    assert code == 2 and "No space left on device (the disk is full)" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "reports").exists() and [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("case", ["loop", "long-name", "dev-zero", "compare-bad", "draws", "cc-nan", "rri"])
def test_bad_options_and_paths_give_one_line(tmp_path, case):
    bcg = str(FIXTURES / "data" / "bcg.csv")
    if case == "loop":
        (tmp_path / "loop").symlink_to(tmp_path / "loop")
        args = ["pool", "--data", str(tmp_path / "loop"), "--measure", "RR"]
    elif case == "long-name":
        args = ["pool", "--data", str(tmp_path / ("a" * 300 + ".csv")), "--measure", "RR"]
    elif case == "dev-zero":
        args = ["pool", "--data", "/dev/zero", "--measure", "RR"]
    elif case == "compare-bad":
        (tmp_path / "old.json").write_text('{"studies": [1, 2]}')
        args = ["pool", "--data", bcg, "--measure", "RR", "--compare", str(tmp_path / "old.json")]
    elif case == "draws":
        args = ["tsa", "--data", bcg, "--measure", "RR", "--rrr", "0.2", "--plan-next", "--draws", "1000000000"]
    elif case == "cc-nan":
        args = ["pool", "--data", bcg, "--measure", "RR", "--cc", "nan"]
    else:
        args = ["tsa", "--data", bcg, "--measure", "RR", "--benefit", "higher", "--rri", "-1"]
    r = cli(*args, timeout=60)
    _one_line(r)
    if case in ("cc-nan", "rri", "draws"):
        assert f"option '--{case.split('-')[0]}'" in r.stderr


def test_unreachable_dask_scheduler_gives_one_line(tmp_path):
    pytest.importorskip("distributed")
    r = cli("pool", "--data", str(FIXTURES / "data" / "by_groups.csv"), "--measure", "GEN", "--by", "group",
            "--dask", "tcp://127.0.0.1:9", DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")
    _one_line(r)
    assert "option '--dask'" in r.stderr


def test_messages_name_the_line(tmp_path, capsys):
    (tmp_path / "cr.csv").write_bytes(b"study,yi,vi\ra,0.1,0.1\rb,0.2\r")
    code, _, err = run(["pool", "--data", str(tmp_path / "cr.csv"), "--measure", "GEN"], capsys)
    assert code == 2 and "cr.csv:3:" in err
    (tmp_path / "bad.csv").write_bytes(b"study,yi,vi\na,0.1,0.1\nb\xff,0.2,0.1\n")
    code, _, err = run(["pool", "--data", str(tmp_path / "bad.csv"), "--measure", "GEN"], capsys)
    assert code == 2 and "bad.csv:3: not a UTF-8 text file" in err


def test_a_bug_gets_a_traceback_and_a_request_to_report(capsys, monkeypatch):
    from hatmeta.commands import pool as pool_cmd

    def broken(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(pool_cmd, "_emit", broken, raising=False)
    monkeypatch.setattr("hatmeta.api.read_data", broken)
    code, out, err = run(["pool", "--data", str(FIXTURES / "data" / "bcg.csv"), "--measure", "RR"], capsys)
    assert code == 1 and "Traceback" in err and "this is a bug in hatmeta" in err and "please report it" in err


def test_add_trial_says_a_double_zero_trial_does_not_enter(data, tmp_path):
    src = new_trial(tmp_path / "n", "theta")
    (src / "outcomes.csv").write_text(HEADER_O + "theta,retention,retained,dam,52,36,0,,,,,src,reported,,\n"
                                      "theta,retention,retained,mmt,52,38,0,,,,,src,reported,,\n")
    r = cli("--data-dir", str(data), "add-trial", "--dry-run", "--from", str(src))
    assert r.returncode == 0, r.stderr
    retention = [line for line in r.stdout.splitlines() if line.strip().split(" ", 2)[-1].startswith("retention:")
                 or " retention:" in line]
    assert retention and all("not in" in line and "not estimable" in line for line in retention), r.stdout


def test_extra_column_in_new_trials_csv_is_refused(data, tmp_path):
    src = new_trial(tmp_path / "n", "iota")
    text = (src / "trials.csv").read_text().splitlines()
    (src / "trials.csv").write_text(text[0] + ",extra\n" + text[1] + ",x\n")
    before = snapshot(data)
    r = cli("--data-dir", str(data), "add-trial", "--from", str(src))
    assert r.returncode == 2 and "column 'extra': column not in" in r.stderr
    assert snapshot(data) == before
