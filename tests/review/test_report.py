"""`hatmeta report` and `hatmeta reproduce`: complete, byte-identical, and checked."""

import csv
import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

from hatmeta.precision import dumps, q
from hatmeta.review.api import pool_analysis
from hatmeta.review.report import build_report, read_manifest

from ..conftest import ROOT, avx512_off


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    build_report(out)
    return out


def test_report_renders_every_analysis(built):
    names = sorted(p.stem for p in (ROOT / "analyses").glob("*.toml"))
    for name in names:
        page = (built / f"{name}.html").read_text()
        assert page.startswith("<!DOCTYPE html>")
    index = (built / "index.html").read_text()
    assert all(f'id="{n}"' in index for n in names)
    # Pooled analyses carry an inline SVG forest plot, their table and a generated methods paragraph.
    res, _ = pool_analysis("retention")
    page = (built / "retention.html").read_text()
    assert "<svg" in page and "<b>Methods.</b>" in page and "REML" in page
    for s in res.studies:
        assert s.label in page
    # The methods paragraph is generated from the settings used, priors included.
    methods = re.search(r"<b>Methods\.</b> (.*?)</p>", page).group(1)
    assert "Hartung-Knapp-Sidik-Jonkman" in methods and "tau² estimated by REML" in methods
    assert "halfnormal:0.5 prior on tau" in methods and "N(0, 4²) prior" in methods
    for package in ("hatmeta", "NumPy", "SciPy", "matplotlib"):
        assert package in methods
    # Forest, funnel (with the small-k caution), cumulative and leave-one-out forests, Bayesian forest,
    # posterior and the trial sequential analysis (the spec has a [tsa] table): seven inline figures.
    assert page.count("<svg") == 7 and "Trial sequential analysis." in page and "Cumulative meta-analysis" in page
    assert f"With {res.k} trials the funnel plot" in page
    # Analyses without data say why instead of showing numbers.
    assert "Not pooled: no trial contributes" in (built / "mortality.html").read_text()


def test_results_json_and_tables_equal_the_engine(built):
    res, _ = pool_analysis("retention")
    saved = (built / "results" / "retention.json").read_text()
    # Written by the one JSON writer: keys sorted, floats at 10 significant digits (precision.py).
    assert saved == dumps(res.to_dict()) + "\n"
    assert json.loads(saved)["estimate"] == q(res.estimate)
    with open(built / "tables" / "retention.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert [r[0] for r in rows[1:1 + res.k]] == [s.label for s in res.studies]
    assert rows[1 + res.k][3] == f"{res.natural(res.estimate):.2f} [{res.natural(res.ci_low):.2f}, " \
                                  f"{res.natural(res.ci_high):.2f}]"


SIMD = {"default": "", "no-avx512": avx512_off()}


@pytest.fixture(scope="module")
def simd_runs(tmp_path_factory):
    """`hatmeta reproduce --keep` against the committed reports, in two processes run in parallel:
    NumPy's default kernels for this processor, and with AVX-512 switched off (AVX2 kernels).
    Returns {setting: (exit code, verdict, stderr, regenerated folder)}."""
    tmp = tmp_path_factory.mktemp("simd")
    procs = {name: subprocess.Popen([sys.executable, "-m", "hatmeta.cli", "reproduce", "--keep", str(tmp / name),
                                     "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    cwd=ROOT, env={**os.environ, "NPY_DISABLE_CPU_FEATURES": value})
             for name, value in SIMD.items()}
    runs = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=900)
        runs[name] = (proc.returncode, json.loads(stdout) if stdout else None, stderr, tmp / name)
    return runs


@pytest.fixture(scope="module")
def rebuilt(simd_runs):
    return simd_runs["default"][3]


def test_manifest_lists_every_file_and_a_rebuild_is_byte_identical(built, rebuilt):
    listed = read_manifest(built)
    on_disk = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()} - {"MANIFEST.sha256"}
    assert set(listed) == on_disk
    assert read_manifest(rebuilt) == listed


def test_pages_are_self_contained(built):
    for page in built.glob("*.html"):
        text = page.read_text()
        assert not re.search(r"<(link|script|img)\b[^>]*(src|href)=\"(https?:)?//", text), page.name
        assert "<script" not in text


@pytest.fixture
def small(tmp_path):
    """Reports of two analyses (one pooled, one refused): fast enough to regenerate in a test."""
    import shutil

    analyses = tmp_path / "analyses"
    analyses.mkdir()
    for name in ("retention", "mortality"):
        shutil.copy(ROOT / "analyses" / f"{name}.toml", analyses)
    out = tmp_path / "reports"
    build_report(out, analyses_dir=analyses)
    return analyses, out


def _rehash(out, name, data: bytes):
    """Replace a committed file and its manifest entry, as another machine's report would."""
    path = out / name
    old = hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(data)
    manifest = out / "MANIFEST.sha256"
    manifest.write_text(manifest.read_text().replace(old, hashlib.sha256(data).hexdigest()))


def _reproduce(analyses, out, *args, env=None):
    return subprocess.run([sys.executable, "-m", "hatmeta.cli", "reproduce", "--reports", str(out), *args],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "HATMETA_ANALYSES_DIR": str(analyses), **(env or {})})


def test_reproduce_level_b_figures_rendered_differently_from_the_same_numbers(small, tmp_path):
    analyses, out = small
    # A figure as another matplotlib or FreeType would render it, and a page naming other versions.
    png = out / "figures" / "retention-forest.png"
    _rehash(out, "figures/retention-forest.png", png.read_bytes() + b"\0")
    page = (out / "retention.html").read_text()
    _rehash(out, "retention.html", re.sub(r"matplotlib \d[\d.]*", "matplotlib 3.0.0", page, count=1).encode())
    kept = tmp_path / "kept"
    p = _reproduce(analyses, out, "--keep", str(kept))
    assert p.returncode == 3, p.stdout + p.stderr
    lines = dict(line.split(": ", 1) for line in p.stdout.splitlines() if line.startswith(str(out)))
    assert lines == {f"{out}/figures/retention-forest.png": "(b) rendering differs; drawn from identical numbers "
                                                            "(figures/retention-forest.data.json)",
                     f"{out}/retention.html": "(b) differs only in its inline figures and the versions it names"}
    assert p.stdout.startswith("environment: ")  # versions compared with the lock before the files
    assert "level (b)" in p.stderr and "kept in" in p.stderr
    assert (kept / "MANIFEST.sha256").exists() and (kept / "figures" / "retention-forest.data.json").exists()


def test_reproduce_level_c_names_file_field_and_both_values(small):
    analyses, out = small
    saved = json.loads((out / "results" / "retention.json").read_text())
    committed_estimate = saved["estimate"]
    saved["estimate"] = round(committed_estimate + 0.01, 6)
    _rehash(out, "results/retention.json", (dumps(saved) + "\n").encode())
    (out / "tables" / "retention.md").write_text("edited\n")  # edited without its manifest entry
    (out / "sof.csv").unlink()
    p = _reproduce(analyses, out, "--format", "json")
    assert p.returncode == 1, p.stderr
    assert p.stderr == ""  # nothing but the JSON verdict (no progress lines, no prose)
    verdict = json.loads(p.stdout)
    assert verdict["level"] == "c" and verdict["exit_code"] == 1
    files = {f["file"]: f for f in verdict["files"]}
    assert set(files) == {"results/retention.json", "tables/retention.md", "sof.csv"}
    assert files["results/retention.json"]["message"] == (
        f"estimate: {saved['estimate']} committed, {committed_estimate} regenerated")
    assert "edited after the manifest" in files["tables/retention.md"]["message"]
    assert "missing" in files["sof.csv"]["message"]


def test_text_and_json_comparisons():
    from hatmeta.review.verdict import _json_diffs, _text_diffs

    assert _json_diffs({"a": [1, 0.25036917509]}, {"a": [1, 0.25036917510]}) == [
        ("a[1]", 0.25036917509, 0.2503691751, "b")]
    assert _json_diffs({"studies": [{"study": "x", "n": 5}]}, {"studies": [{"study": "x", "n": 6}]}) == [
        ("studies[x].n", 5, 6, "c")]
    assert [d[3] for d in _text_diffs("RR 1.29 [0.73, 2.26]", "RR 1.28 [0.73, 2.26]", False)] == ["b"]
    assert [d[3] for d in _text_diffs("RR 1.29 [0.73, 2.26]", "RR 1.27 [0.73, 2.26]", False)] == ["c"]
    assert [d[3] for d in _text_diffs("events 346", "events 345", False)] == ["c"]  # counts are exact
    assert [d[3] for d in _text_diffs("Favours HAT", "Favours MMT", False)] == ["c"]


def test_report_is_byte_identical_whatever_the_simd_kernels(simd_runs):
    """NumPy picks exp/log/sum kernels by processor; under AVX-512 and with it switched off (AVX2
    kernels) the whole report regenerates to the same bytes in the same environment (issue 9). On a
    processor without AVX-512 both runs use the same kernels; the committed reports, written on one
    with it, are the locked test's below."""
    for name, (code, verdict, stderr, _) in simd_runs.items():
        assert verdict is not None, stderr
        assert code == verdict["exit_code"], name  # its level against the committed reports: the locked test's
        assert stderr == ""  # no progress lines when stderr is not a terminal
    # the setting does switch the kernels off (NumPy names no AVX-512 target as in use)
    probe = ("try:\n from numpy._core._multiarray_umath import __cpu_features__ as f\n"
             "except ImportError:\n from numpy.core._multiarray_umath import __cpu_features__ as f\n"
             "print(' '.join(k for k in " + repr(SIMD["no-avx512"].split()) + " if f.get(k)))")
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       env={**os.environ, "NPY_DISABLE_CPU_FEATURES": SIMD["no-avx512"]})
    assert (p.returncode, p.stdout.strip(), p.stderr) == (0, "", "")
    (_, _, _, first), (_, _, _, second) = simd_runs.values()
    listed = read_manifest(first)
    assert listed == read_manifest(second)
    assert set(listed) == set(read_manifest(ROOT / "reports"))
    for name in listed:  # the manifest's hashes, checked against the files themselves
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_reproduce_with_the_locked_versions_is_byte_identical(simd_runs):
    """With the versions of requirements-reports.txt installed, `hatmeta reproduce` regenerates the
    committed reports byte for byte, level (a), whatever the SIMD kernels. Other versions render
    figures differently (FreeType, fonttools), which `reproduce` explains as level (b); the numbers
    are checked whatever is installed by test_committed_reports_match_the_data_and_engine."""
    verdict = simd_runs["default"][1]
    assert verdict is not None, simd_runs["default"][2]
    if verdict["environment"]:
        pytest.skip("installed versions differ from requirements-reports.txt: " + "; ".join(verdict["environment"]))
    for name, (code, verdict, _stderr, _) in simd_runs.items():
        assert (code, verdict["level"]) == (0, "a"), (name, verdict["files"])


def test_committed_reports_match_the_data_and_engine(rebuilt):
    """The committed reports' numbers (JSON, CSV, Markdown) must be what the code computes now;
    figures are compared by `hatmeta reproduce`, since rasterisation depends on the platform, and so
    are their records (figures/*.data.json), which hold text positions from matplotlib's font metrics
    (matplotlib 3.7 wraps and places the forest's texts differently from the locked 3.11)."""
    committed = ROOT / "reports"
    listed = read_manifest(committed)
    assert set(listed) == set(read_manifest(rebuilt))
    for name in listed:
        if name.endswith((".json", ".csv", ".md")) and not name.startswith("figures/"):
            assert (rebuilt / name).read_bytes() == (committed / name).read_bytes(), name


def test_progress_only_on_a_terminal(monkeypatch):
    """One line per analysis on a terminal; nothing when stderr is a pipe or in JSON mode."""
    from hatmeta.review.commands import _progress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert _progress(True) is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert _progress(False) is None  # --format json
    seen = []
    monkeypatch.setattr("click.echo", lambda text, err=False: seen.append((text, err)))
    _progress(True)(2, 7, "retention")
    assert seen == [("[2/7] retention", True)]
