"""The project's folders are found from where hatmeta runs, as after `pip install .` (not editable)."""

import os
import subprocess
import sys

import pytest

from hatmeta.review.project import project_root

from ..conftest import ROOT


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


def _wheel_install(tmp_path):
    """hatmeta built into a wheel from the tracked files and installed with --target, as `pip install .`
    gives a user: no repository beside the package. Returns the install folder."""
    import shutil

    src = tmp_path / "src"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("hatmeta-*.whl"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, cwd=tmp_path)
    return site


def _builds_wheels() -> bool:
    """setuptools 70.1 and later build wheels without the wheel package (the test extra asks for it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return tuple(int(x) for x in version("setuptools").split(".")[:2]) >= (70, 1)
    except (PackageNotFoundError, ValueError):
        return False


@pytest.mark.skipif(not _builds_wheels(), reason="building the wheel needs setuptools>=70.1 "
                                                  "(in the test extra: pip install '.[test]')")
def test_a_plain_install_pools_the_review_in_any_folder_and_init_makes_a_working_copy(tmp_path):
    """After a non-editable install the bundled extraction and specs serve `hatmeta pool retention` in an
    empty folder (the same JSON as in the repository), and `hatmeta init DIR` writes a copy to extend."""
    site = _wheel_install(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HATMETA_")}
    env["PYTHONPATH"] = str(site)
    empty = tmp_path / "empty"
    empty.mkdir()

    def hatmeta(*args, cwd):
        return subprocess.run([sys.executable, "-m", "hatmeta.cli", *args], cwd=cwd, env=env, capture_output=True,
                              text=True)

    here = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "retention", "--format", "json"],
                          cwd=ROOT, capture_output=True, text=True, check=True).stdout
    p = hatmeta("pool", "retention", "--format", "json", cwd=empty)
    assert p.returncode == 0, p.stderr
    assert p.stdout == here
    assert (site / "hatmeta" / "review" / "bundled" / "analyses" / "retention.toml").is_file()
    p = hatmeta("init", "copy", cwd=empty)
    assert p.returncode == 0, p.stderr
    assert (empty / "copy" / "data" / "extracted" / "trials.csv").read_bytes() == \
        (ROOT / "data" / "extracted" / "trials.csv").read_bytes()
    p = hatmeta("validate", cwd=empty / "copy")
    assert p.returncode == 0 and str(empty / "copy") in p.stdout, p.stdout + p.stderr
    again = hatmeta("init", "copy", cwd=empty)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "not empty" in again.stderr
