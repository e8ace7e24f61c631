"""The columnar CSV reader and Parquet input give the exact reader's table, and its errors."""

import numpy as np
import pytest

from hatmeta.errors import InputError
from hatmeta.io import columnar
from hatmeta.io.trial_table import read_table

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from ..conftest import FIXTURES  # noqa: E402


def _same(a, b):
    assert a.layout == b.layout and a.studies == b.studies and a.extra == b.extra and a.lines == b.lines
    assert a.columns.keys() == b.columns.keys()
    for c in a.columns:
        np.testing.assert_array_equal(a.columns[c], b.columns[c])


@pytest.mark.parametrize("name, measure", [("bcg.csv", "RR"), ("by_groups.csv", "GEN"), ("normand1999.csv", "MD")])
def test_fast_csv_reader_equals_the_exact_reader(name, measure):
    path = FIXTURES / "data" / name
    fast = columnar.read_csv_fast(str(path), measure)
    assert fast is not None
    _same(fast, read_table(path, measure=measure))


def test_repeated_study_names_are_labelled_as_the_exact_reader_labels_them(tmp_path):
    """A simulation repeats s1..s3 in every replicate: the fast reader keeps the file (no fallback)
    and gives the exact reader's labels, original names and note."""
    path = tmp_path / "sim.csv"
    path.write_text("rep,study,yi,vi\n" + "".join(f"r{i // 3},s{i % 3},0.{i % 7},0.{i % 5 + 1}\n"
                                                   for i in range(12)))
    fast, exact = columnar.read_csv_fast(str(path), "GEN"), read_table(path, measure="GEN")
    assert fast is not None
    _same(fast, exact)
    assert fast.given == exact.given and fast.given[:4] == ("s0", "s1", "s2", "s0")
    assert fast.notes == exact.notes and "study names repeat" in fast.notes[0]


def test_a_bad_value_keeps_its_file_line_column_error(tmp_path):
    path = tmp_path / "t.csv"
    rows = ["study,yi,vi"] + [f"s{i},0.{i % 10},0.{i % 9 + 1}" for i in range(200)]
    rows[120] = "s119,0.3,0"  # line 121
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError) as fast:
        columnar.read_csv_fast(str(path), "GEN")
    with pytest.raises(InputError) as exact:
        read_table(path, measure="GEN")
    assert str(fast.value) == str(exact.value) == f"{path}:121: column 'vi': must be greater than 0, got 0"
    rows[120] = "s119,0.3,abc"  # not a number: pyarrow gives up and the exact reader names it
    path.write_text("\n".join(rows) + "\n")
    assert columnar.read_csv_fast(str(path), "GEN") is None
    with pytest.raises(InputError) as columnar_error:
        columnar.read_any(path, "GEN")
    assert str(columnar_error.value) == f"{path}:121: column 'vi': not a number: 'abc'"


def test_blank_lines_fall_back_so_line_numbers_stay_right(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("study,yi,vi\ns1,0.1,0.2\n\ns2,0.2,0\n")
    assert columnar.read_csv_fast(str(path), "GEN") is None
    with pytest.raises(InputError, match=":4: column 'vi'"):
        columnar.read_any(path, "GEN")


def test_parquet_file_folder_and_glob(tmp_path):
    exact = read_table(FIXTURES / "data" / "by_groups.csv", measure="GEN")
    cols = {"Study": list(exact.studies), "yi": exact.columns["yi"], "vi": exact.columns["vi"],
            "group": list(exact.extra["group"])}
    at = pa.table(cols)
    pq.write_table(at, tmp_path / "one.parquet")
    (tmp_path / "parts").mkdir()
    half = at.num_rows // 2
    pq.write_table(at.slice(0, half), tmp_path / "parts" / "a.parquet")
    pq.write_table(at.slice(half), tmp_path / "parts" / "b.parquet")
    for src in (tmp_path / "one.parquet", tmp_path / "parts", str(tmp_path / "parts" / "*.parquet")):
        t = columnar.read_any(src, "GEN")
        assert t.studies == exact.studies and t.extra["group"] == exact.extra["group"]
        np.testing.assert_array_equal(t.columns["yi"], exact.columns["yi"])
        assert tuple(t.lines[:2]) == (1, 2)  # Parquet rows are numbered from 1 in place of lines


def test_parquet_bad_value_names_the_row(tmp_path):
    pq.write_table(pa.table({"study": ["a", "b", "c"], "yi": [0.1, 0.2, 0.3], "vi": [0.1, -1.0, 0.2]}),
                   tmp_path / "t.parquet")
    with pytest.raises(InputError, match=r"t.parquet:2: column 'vi': must be greater than 0, got -1"):
        columnar.read_any(tmp_path / "t.parquet", "GEN")
    pq.write_table(pa.table({"study": ["a", "b"], "yi": [0.1, None], "vi": [0.1, 0.2]}), tmp_path / "n.parquet")
    with pytest.raises(InputError, match=r"n.parquet:2: column 'yi': missing value"):
        columnar.read_any(tmp_path / "n.parquet", "GEN")


def test_by_over_parquet_fails_only_the_bad_group(tmp_path):
    from hatmeta.api import pool_by, read_data_by

    pq.write_table(pa.table({"g": ["a", "a", "b", "b", "c", "c"], "study": list("123456"),
                             "yi": [0.1, 0.3, 0.2, 0.4, 0.5, 0.1], "vi": [0.1, 0.2, 0.0, 0.1, 0.1, 0.3]}),
                   tmp_path / "t.parquet")
    table, measure, failed, keys = read_data_by(str(tmp_path / "t.parquet"), "GEN", "g")
    assert failed == {"b": f"{tmp_path / 't.parquet'}:3: column 'vi': must be greater than 0, got 0"}
    res = pool_by(table, "g", measure, failed=failed, group_keys=keys)
    assert [r.group for r in res] == ["a", "b", "c"] and [g for g, _ in res.failed] == ["b"]
    assert np.isfinite(res[0].estimate) and np.isfinite(res[2].estimate)


def test_by_over_a_large_csv_with_a_bad_row(tmp_path, monkeypatch):
    """The fast reader meets the bad row; the row-by-row reader then fails only its group."""
    from hatmeta.api import pool_by, read_data_by

    monkeypatch.setattr(columnar, "FAST_BYTES", 0)
    path = tmp_path / "t.csv"
    path.write_text("g,study,yi,vi\na,1,0.1,0.1\na,2,0.3,0.2\nb,3,0.2,0\nb,4,0.4,0.1\nc,5,0.5,0.1\nc,6,0.1,0.3\n")
    table, measure, failed, keys = read_data_by(str(path), "GEN", "g")
    assert failed == {"b": f"{path}:4: column 'vi': must be greater than 0, got 0"}
    res = pool_by(table, "g", measure, failed=failed, group_keys=keys)
    assert [g for g, _ in res.failed] == ["b"] and np.isfinite(res[2].estimate)
    path.write_text(path.read_text().replace(",0\n", ",0.2\n"))
    table, _, failed, keys = read_data_by(str(path), "GEN", "g")
    assert failed == {} and keys is None and table.k == 6


def test_streamed_by_over_parquet_equals_the_in_memory_fit(tmp_path):
    """Batches of 7 rows split groups across batches and files; the numbers are the in-memory ones."""
    import json
    import subprocess
    import sys

    from hatmeta.api import pool_by
    from hatmeta.fit.stream import pool_by_stream

    exact = read_table(FIXTURES / "data" / "by_groups.csv", measure="GEN")
    cols = {"study": list(exact.studies), "yi": exact.columns["yi"], "vi": exact.columns["vi"],
            "group": list(exact.extra["group"])}
    at = pa.table(cols)
    (tmp_path / "parts").mkdir()
    third = at.num_rows // 3
    for i, (a, b) in enumerate([(0, third), (third, 2 * third), (2 * third, at.num_rows)]):
        pq.write_table(at.slice(a, b - a), tmp_path / "parts" / f"{i}.parquet")
    want = pool_by(exact, "group", "GEN", method="REML", ci="hksj")
    got = [r for part in pool_by_stream(tmp_path / "parts", "group", "GEN", batch_rows=7, method="REML", ci="hksj")
           for r in part]
    assert [r.group for r in got] == [r.group for r in want]
    for a, b in zip(got, want):
        _close(a.to_dict(), b.to_dict())
    # The command line: the same JSON lines as without streaming.
    base = [sys.executable, "-m", "hatmeta.cli", "pool", "--data", str(tmp_path / "parts"), "--measure", "GEN",
            "--by", "group", "--format", "json"]
    streamed = subprocess.run(base + ["--batch-rows", "5"], capture_output=True, text=True)
    whole = subprocess.run(base, capture_output=True, text=True)
    assert streamed.returncode == whole.returncode == 0, streamed.stderr
    assert len(streamed.stdout.splitlines()) == len(whole.stdout.splitlines()) == len(want)
    for a, b in zip(streamed.stdout.splitlines(), whole.stdout.splitlines()):
        _close(json.loads(a), json.loads(b), rel=1e-9)  # JSON holds 10 significant digits (output policy)


def _close(a, b, rel=1e-12):
    """Equal up to the last bits: a group alone in a batch is summed as one column (pairwise), among
    others row by row, so the two differ by rounding (here below 1e-13)."""
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], float) and isinstance(b[key], float):
            assert a[key] == pytest.approx(b[key], rel=rel, abs=1e-15), key
        elif isinstance(a[key], list) and a[key] and isinstance(a[key][0], dict):
            for x, y in zip(a[key], b[key]):
                _close(x, y, rel)
        else:
            assert a[key] == b[key], key


def test_streamed_by_isolates_a_bad_row_and_rejects_scattered_groups(tmp_path):
    from hatmeta.fit.stream import pool_by_stream

    pq.write_table(pa.table({"g": ["a", "a", "b", "b", "c", "c"], "study": list("123456"),
                             "yi": [0.1, 0.3, 0.2, 0.4, 0.5, 0.1], "vi": [0.1, 0.2, 0.0, 0.1, 0.1, 0.3]}),
                   tmp_path / "t.parquet")
    parts = list(pool_by_stream(tmp_path / "t.parquet", "g", "GEN", batch_rows=3))
    failed = [f for p in parts for f in p.failed]
    assert failed == [("b", f"{tmp_path / 't.parquet'}:3: column 'vi': must be greater than 0, got 0")]
    assert sum(len(p) for p in parts) == 3
    with pytest.raises(InputError, match=":3: column 'vi'"):
        list(pool_by_stream(tmp_path / "t.parquet", "g", "GEN", batch_rows=3, strict=True))
    pq.write_table(pa.table({"g": ["a", "a", "b", "a"], "study": list("1234"),
                             "yi": [0.1, 0.3, 0.2, 0.4], "vi": [0.1, 0.2, 0.1, 0.1]}), tmp_path / "s.parquet")
    with pytest.raises(InputError, match="rows of group 'a' are not together"):
        list(pool_by_stream(tmp_path / "s.parquet", "g", "GEN", batch_rows=2))


def test_streamed_by_keeps_names_that_repeat_across_groups(tmp_path):
    """A simulation reuses s1..s5 in every replicate: the fast path keeps the names (unique within each
    group), as the exact reader's labels group by group; a name repeated within a group is labelled."""
    from hatmeta.api import pool_by, read_data_by
    from hatmeta.fit.stream import pool_by_stream

    rng = np.random.default_rng(2)
    n = 60
    v = rng.uniform(0.01, 0.5, n)
    study = [f"s{i % 5 + 1}" for i in range(n)]
    study[57] = "s1"  # group r11 has s1 twice
    pq.write_table(pa.table({"rep": [f"r{i // 5:02d}" for i in range(n)], "study": study,
                             "yi": rng.normal(0, 0.5, n), "vi": v}), tmp_path / "sim.parquet")
    table, measure, failed, keys = read_data_by(str(tmp_path / "sim.parquet"), "GEN", "rep")
    want = list(pool_by(table, "rep", measure, failed=failed, group_keys=keys).json_lines())
    got = [line for part in pool_by_stream(tmp_path / "sim.parquet", "rep", "GEN", batch_rows=7)
           for line in part.json_lines()]
    assert got == want
    assert '"study":"s1 (1)"' in got[11] and '"study":"s1"' in got[0]
    at = pa.table({"rep": ["a"] * 2 + ["b"] * 2, "study": ["s1", "s2", "s1", "s2"], "yi": [0.1, 0.2, 0.3, 0.4],
                   "vi": [0.1] * 4})
    fast = columnar._from_arrow(at, at.column_names, ("yi", "vi"), "yi_vi", "t", range(1, 5), by="rep")
    assert fast.studies == ("s1", "s2", "s1", "s2") and not fast.given
    plain = columnar._from_arrow(at, at.column_names, ("yi", "vi"), "yi_vi", "t", range(1, 5))
    assert plain.studies == ("s1 (1)", "s2 (1)", "s1 (2)", "s2 (2)") and plain.given == ("s1", "s2", "s1", "s2")
    assert "study names repeat" in plain.notes[0]  # without --by: labelled as the exact reader labels them
