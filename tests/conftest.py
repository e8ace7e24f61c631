import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

os.environ.setdefault("MPLBACKEND", "Agg")


def avx512_off() -> str:
    """A value of NPY_DISABLE_CPU_FEATURES that switches off every AVX-512 kernel this NumPy dispatches:
    "X86_V4 AVX512_ICL AVX512_SPR" for NumPy 2.x; NumPy 1.x names its targets AVX512F ... AVX512_ICL
    (and warns on stderr about a name it does not dispatch, such as X86_V4, or that this processor lacks)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    # supported here, or already switched off by this process's own setting (the suite run without AVX-512)
    off = set(os.environ.get("NPY_DISABLE_CPU_FEATURES", "").replace(",", " ").split())
    return " ".join(f for f in __cpu_dispatch__
                    if (f.startswith("AVX512") or f == "X86_V4") and (__cpu_features__.get(f) or f in off))


@pytest.fixture
def write_csv(tmp_path):
    """Write rows (list of lists, header first) to a CSV in tmp_path and return its path."""
    import csv

    def _write(rows, name="table.csv"):
        path = tmp_path / name
        with open(path, "w", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows(rows)
        return path

    return _write
