"""The real extraction (data/extracted/): every figure is traceable.

Read with the csv module directly, not with hatmeta's reader, so the check does not share its bugs.
"""

import csv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

OUTCOMES = ROOT / "data" / "extracted" / "outcomes.csv"
NUMERIC = ("n", "events", "mean", "sd", "count", "person_time")


def _rows():
    if not OUTCOMES.exists():
        pytest.fail("data/extracted/outcomes.csv is missing")
    with open(OUTCOMES, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert set(NUMERIC) | {"source", "status", "derivation"} <= set(reader.fieldnames)
        return [(reader.line_num, row) for row in reader]


def test_every_numeric_cell_has_a_source():
    rows = _rows()
    assert rows, "outcomes.csv has no rows"
    missing = [line for line, row in rows if any(row[c].strip() for c in NUMERIC) and not row["source"].strip()]
    assert missing == [], f"figures without a source on lines {missing}"


def test_every_figure_is_reported_or_derived_with_how():
    rows = _rows()
    bad = [line for line, row in rows if any(row[c].strip() for c in NUMERIC)
           and row["status"] not in ("reported", "derived")]
    assert bad == [], f"figures whose status is neither reported nor derived on lines {bad}"
    undocumented = [line for line, row in rows if row["status"] == "derived" and not row["derivation"].strip()]
    assert undocumented == [], f"derived figures without a derivation on lines {undocumented}"


def test_the_bundled_extraction_validates():
    from hatmeta.review import validate_extraction

    errors = validate_extraction(ROOT / "data" / "extracted")
    assert errors == [], "\n".join(str(e) for e in errors)


def test_event_counts_without_person_time_are_kept_but_never_pooled(tmp_path):
    """A reported event count with no exposure time (e.g. 58 SAEs in one arm) is valid data, but no
    analysis can pool it: it has neither a rate nor a patient denominator."""
    from hatmeta.review.extraction import outcome_kinds

    class Row(dict):
        pass

    row = Row(n="", events="", mean="", sd="", count="58", person_time="")
    assert outcome_kinds(row) == ["count"]
    row["person_time"] = "120.5"
    assert outcome_kinds(row) == ["rates"]
