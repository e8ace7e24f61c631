"""The project's folders are found from where hatmeta runs, as after `pip install .` (not editable)."""

import os
import subprocess
import sys

from hatmeta.review.project import project_root

from .conftest import ROOT


def test_found_from_the_repository_and_its_subfolders(monkeypatch):
    monkeypatch.chdir(ROOT / "tests")
    assert project_root() == ROOT


def test_commands_work_from_a_copy_of_the_project(tmp_path):
    """A non-editable install has no repository next to the package: the current folder decides."""
    import shutil

    shutil.copytree(ROOT / "data" / "extracted", tmp_path / "data" / "extracted")
    shutil.copytree(ROOT / "analyses", tmp_path / "analyses")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HATMETA_")}
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "validate"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert str(tmp_path) in p.stdout


def test_without_analyses_the_error_says_where_it_looked(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HATMETA_")}
    env["HATMETA_ANALYSES_DIR"] = str(tmp_path)
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "retention"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert f"no analyses found in {tmp_path}" in p.stderr


def test_no_file_keeps_a_merge_conflict():
    """A merge that left its conflict markers in a README or a module must not land."""
    import re

    marker = re.compile(r"^(<{7} |>{7} |={7}$)", re.M)
    skip = {".git", ".venv", "reports", "__pycache__", ".mypy_cache", ".pytest_cache", "node_modules"}
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
        for name in files:
            if name.endswith((".md", ".py", ".toml", ".R", ".txt", ".cfg", ".yml", ".yaml")):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8", errors="replace") as fh:
                    if marker.search(fh.read()):
                        found.append(os.path.relpath(path, ROOT))
    assert found == []
