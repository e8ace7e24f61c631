"""The public API is typed (py.typed + annotations): ``mypy --strict`` passes on a small user script that
calls it, with hatmeta installed as a user installs it: a wheel built from the source tree and installed
into a folder of its own, read by mypy through py.typed (PEP 561). The wheel is built with this
environment's setuptools (the test extra asks for one that builds wheels by itself), so the test needs
neither the network nor anything else from the machine. Skipped when mypy or pandas-stubs is not installed
(pip install 'hatmeta[typing]')."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import pandas as pd

    import hatmeta
    from hatmeta import MetaResult

    frame = pd.DataFrame({"study": ["a", "b", "c"], "events_treat": [4, 6, 3], "n_treat": [123, 306, 231],
                          "events_ctrl": [11, 29, 11], "n_ctrl": [139, 303, 220]})
    es = hatmeta.escalc(frame, measure="RR")
    r: MetaResult = hatmeta.rma(es, method="DL", level=0.9)
    per_study: pd.DataFrame = r.to_frame()
    pooled: pd.DataFrame = r.summary_frame()
    estimate: float = r.estimate
    table = hatmeta.read_table(frame, measure="RR")
    again: MetaResult = hatmeta.api.pool_table(table, "RR", moderators=["n_treat"], method="FE")
    groups: pd.DataFrame = hatmeta.pool_by(frame.assign(g=["x", "x", "y"]), "g", "RR").to_frame()
    print(per_study, pooled, estimate, again.summary(), groups)
''')


def test_py_typed_is_shipped():
    assert (ROOT / "hatmeta" / "py.typed").exists()


def _setuptools_builds_wheels():
    """setuptools 70.1 and later build wheels without the separate wheel package."""
    try:
        from importlib.metadata import version

        return tuple(int(x) for x in version("setuptools").split(".")[:2]) >= (70, 1)
    except (ImportError, ValueError):  # not installed (PackageNotFoundError is an ImportError) or odd version
        return False


def build_and_install(tmp_path) -> Path:
    """hatmeta's wheel built from a copy of the source tree (the tree itself gets no build/ or egg-info),
    installed with --target; returns the folder that holds the installed package."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src)
    shutil.copytree(ROOT / "hatmeta", src / "hatmeta", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist"),
                    str(src)], check=True, capture_output=True, cwd=tmp_path)
    wheel, = (tmp_path / "dist").glob("hatmeta-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert "hatmeta/py.typed" in names  # PEP 561: what tells mypy the installed package is typed
    assert any(n.startswith("hatmeta/bayes/") and n.endswith(".json") for n in names)  # package data
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, cwd=tmp_path)
    return site


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None or (importlib.util.find_spec("pandas-stubs") is None
                    and importlib.util.find_spec("pandas_stubs") is None
                    and not any((Path(p) / "pandas-stubs").exists() for p in sys.path)),
                    reason="mypy or pandas-stubs not installed")
@pytest.mark.skipif(not _setuptools_builds_wheels(), reason="building the wheel needs setuptools>=70.1 "
                                                             "(in the test extra: pip install '.[test]')")
def test_mypy_strict_passes_on_a_user_script(tmp_path):
    site = build_and_install(tmp_path)
    script = tmp_path / "user.py"
    script.write_text(SCRIPT)
    # The installed copy comes first on the path (before the source tree or any other install); mypy
    # reads folders on the path as installed packages, so it needs the wheel's py.typed.
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("MYPYPATH", None)
    # The cache (gitignored) makes a rerun take a second; a cold run reads the pandas and NumPy stubs (~15 s).
    p = subprocess.run([sys.executable, "-m", "mypy", "--strict", "-v", "--cache-dir", str(ROOT / ".mypy_cache"),
                        str(script)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    # mypy skips a folder whose package has no py.typed and takes the next one on the path (say an
    # installed copy): its log names the hatmeta it read, which must be the wheel's.
    read = set(re.findall(r"(\S*/hatmeta/__init__\.py)", p.stderr))
    assert read == {str(site / "hatmeta" / "__init__.py")}, read
    run = subprocess.run([sys.executable, "-c", "import runpy, hatmeta; print(hatmeta.__file__); "
                          f"runpy.run_path({str(script)!r})"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == str(site / "hatmeta" / "__init__.py")  # the wheel's copy ran
