"""--by: a study escalc drops (double zero) is named in its own group's notes, also when its name
repeats in an earlier group (a simulation's s1..sK in every replicate)."""

from hatmeta.api import pool_by
from hatmeta.io.trial_table import table_from_rows


def test_dropped_study_note_goes_to_its_own_group():
    rows = [["trial", "study", "ai", "n1i", "ci", "n2i"]]
    for g, zero in (("g0", None), ("g1", "s2"), ("g2", None)):
        for s in ("s1", "s2", "s3"):
            a, c = (0, 0) if s == zero else (3 + len(rows) % 5, 6)
            rows.append([g, s, str(a), "40", str(c), "40"])
    res = pool_by(table_from_rows(rows, measure="RR"), "trial", "RR")
    notes = {r.group: [n for n in r.notes if n.startswith("dropped")] for r in res}
    assert notes == {"g0": [], "g1": ["dropped s2: no events in both arms: RR undefined"], "g2": []}
    assert [r.k for r in res] == [3, 2, 3]
