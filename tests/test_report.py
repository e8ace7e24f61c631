"""`hatmeta report` and `hatmeta reproduce`: complete, byte-identical, and checked."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hatmeta.api import pool_analysis
from hatmeta.report import build_report, read_manifest, reproduce

from .conftest import ROOT


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
    # Analyses without data say why instead of showing numbers.
    assert "Not pooled: no trial contributes" in (built / "mortality.html").read_text()


def test_results_json_and_tables_equal_the_engine(built):
    res, _ = pool_analysis("retention")
    saved = json.loads((built / "results" / "retention.json").read_text())
    assert saved == json.loads(json.dumps(res.to_dict(), sort_keys=True))
    with open(built / "tables" / "retention.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert [r[0] for r in rows[1:1 + res.k]] == [s.label for s in res.studies]
    assert rows[1 + res.k][3] == f"{res.natural(res.estimate):.2f} [{res.natural(res.ci_low):.2f}, " \
                                  f"{res.natural(res.ci_high):.2f}]"


def test_manifest_lists_every_file_and_a_rebuild_is_byte_identical(built, tmp_path):
    listed = read_manifest(built)
    on_disk = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()} - {"MANIFEST.sha256"}
    assert set(listed) == on_disk
    build_report(tmp_path)
    assert read_manifest(tmp_path) == listed


def test_reproduce_names_each_output_that_differs(built, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    assert reproduce(copy) == []
    (copy / "tables" / "retention.md").write_text("edited\n")
    (copy / "sof.csv").unlink()
    problems = dict(reproduce(copy))
    assert "edited after the manifest" in problems["tables/retention.md"]
    assert "missing" in problems["sof.csv"]
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "reproduce", "--reports", str(copy)],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 1
    assert f"{copy}/tables/retention.md" in p.stdout and f"{copy}/sof.csv" in p.stdout


def test_committed_reports_match_the_data_and_engine():
    """The committed reports' numbers (JSON, CSV, Markdown) must be what the code computes now;
    figures are compared by `hatmeta reproduce`, since rasterisation depends on the platform."""
    committed = ROOT / "reports"
    listed = read_manifest(committed)
    fresh = Path(__import__("tempfile").mkdtemp())
    build_report(fresh)
    for name in listed:
        if name.endswith((".json", ".csv", ".md")):
            assert (fresh / name).read_bytes() == (committed / name).read_bytes(), name
