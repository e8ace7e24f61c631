import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

os.environ.setdefault("MPLBACKEND", "Agg")


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
