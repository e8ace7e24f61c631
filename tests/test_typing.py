"""The public API is typed (py.typed + annotations): ``mypy --strict`` passes on a small user script that
calls it, with hatmeta installed as a user installs it (a wheel into a fresh venv). Skipped when mypy or
pandas-stubs is not installed (pip install 'hatmeta[dev]')."""

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

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


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None or (importlib.util.find_spec("pandas-stubs") is None
                    and importlib.util.find_spec("pandas_stubs") is None
                    and not any((Path(p) / "pandas-stubs").exists() for p in sys.path)),
                    reason="mypy or pandas-stubs not installed")
def test_mypy_strict_passes_on_a_user_script(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    # A regular (not editable) install, as a user has it: mypy reads installed packages through py.typed.
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)
    script = tmp_path / "user.py"
    script.write_text(SCRIPT)
    # The cache (gitignored) makes a rerun take a second; a cold run reads the pandas and NumPy stubs (~15 s).
    p = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(ROOT / ".mypy_cache"),
                        "--python-executable", str(py),
                        str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    run = subprocess.run([str(py), str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
