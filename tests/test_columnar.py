"""The columnar CSV reader and Parquet input give the exact reader's table, and its errors."""

import numpy as np
import pytest

from hatmeta.errors import InputError
from hatmeta.io import columnar
from hatmeta.io.trial_table import read_table

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from .conftest import FIXTURES  # noqa: E402


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
    columnar_error = pytest.raises(InputError, columnar.read_any, path, "GEN")
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
        assert t.lines[:2] == (1, 2)  # Parquet rows are numbered from 1 in place of lines


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
