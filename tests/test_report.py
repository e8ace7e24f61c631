"""`hatmeta report` and `hatmeta reproduce`: complete, byte-identical, and checked."""

import csv
import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

from hatmeta.api import pool_analysis
from hatmeta.render.report import build_report, read_manifest

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
    # The methods paragraph is generated from the settings used, priors included.
    methods = re.search(r"<b>Methods\.</b> (.*?)</p>", page).group(1)
    assert "Hartung-Knapp-Sidik-Jonkman" in methods and "tau² estimated by REML" in methods
    assert "halfnormal:0.5 prior on tau" in methods and "N(0, 4²) prior" in methods
    for package in ("hatmeta", "NumPy", "SciPy", "matplotlib"):
        assert package in methods
    # Forest, funnel (with the small-k caution), Bayesian forest and posterior: four inline figures.
    assert page.count("<svg") == 4
    assert f"With {res.k} trials the funnel plot" in page
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


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    out = tmp_path_factory.mktemp("again")
    build_report(out)
    return out


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


def test_reproduce_names_each_output_that_differs(tmp_path):
    """Two analyses (one pooled, one refused) keep this fast; every file not touched must be reproduced."""
    import shutil

    small = tmp_path / "analyses"
    small.mkdir()
    for name in ("retention", "mortality"):
        shutil.copy(ROOT / "analyses" / f"{name}.toml", small)
    out = tmp_path / "reports"
    build_report(out, analyses_dir=small)
    (out / "tables" / "retention.md").write_text("edited\n")
    (out / "sof.csv").unlink()
    # A figure as another platform would render it: other bytes, and a manifest that lists them.
    png = out / "figures" / "retention-forest.png"
    old_digest = hashlib.sha256(png.read_bytes()).hexdigest()
    png.write_bytes(png.read_bytes() + b"\0")
    manifest = out / "MANIFEST.sha256"
    manifest.write_text(manifest.read_text().replace(old_digest, hashlib.sha256(png.read_bytes()).hexdigest()))
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "reproduce", "--reports", str(out)],
                       capture_output=True, text=True, cwd=ROOT, env={**os.environ, "HATMETA_ANALYSES_DIR": str(small)})
    assert p.returncode == 1, p.stderr
    named = sorted(line.split(": ")[0] for line in p.stdout.splitlines())
    # The edited and the deleted file, and nothing else: every other output was reproduced byte
    # for byte (the manifest itself still matches the regenerated outputs).
    assert named == sorted([f"{out}/sof.csv", f"{out}/tables/retention.md", f"{out}/figures/retention-forest.png"])
    problems = dict(line.split(": ", 1) for line in p.stdout.splitlines())
    assert "edited after the manifest" in problems[f"{out}/tables/retention.md"]
    assert "missing" in problems[f"{out}/sof.csv"]
    assert problems[f"{out}/figures/retention-forest.png"].startswith("raster image differs")
    assert "3 output(s) differ: 2 with numbers (JSON, CSV, Markdown, LaTeX), 1 figures or pages" in p.stderr


def test_committed_reports_match_the_data_and_engine(rebuilt):
    """The committed reports' numbers (JSON, CSV, Markdown) must be what the code computes now;
    figures are compared by `hatmeta reproduce`, since rasterisation depends on the platform."""
    committed = ROOT / "reports"
    listed = read_manifest(committed)
    assert set(listed) == set(read_manifest(rebuilt))
    for name in listed:
        if name.endswith((".json", ".csv", ".md")):
            assert (rebuilt / name).read_bytes() == (committed / name).read_bytes(), name
