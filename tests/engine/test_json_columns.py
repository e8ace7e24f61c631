"""The column-wise JSON writer (hatmeta/json_columns.py) gives the bytes of precision.dumps on dicts."""

import numpy as np
import pytest

from hatmeta.io.trial_table import COUNT_COLUMNS
from hatmeta.json_columns import rows_json, study_rows_chunks
from hatmeta.precision import dumps
from hatmeta.results import StudyRows


def _rows(n, seed=0, labels=True):
    rng = np.random.default_rng(seed)
    yi = rng.normal(size=n) * 10.0 ** rng.integers(-20, 20, n)
    yi[::7] = np.nan
    yi[1::11] = -0.0
    yi[2::13] = np.inf
    vi = rng.uniform(0, 1, n)
    names = [f"s{i}" for i in range(n)]
    names[3] = 'comma, "quoted"\nnewline \u00e9\u4e2d'
    names[4] = ","
    events = rng.integers(0, 50, n).astype(float)
    n_col = events + 10
    n_col[-1] += 0.5  # one non-whole count, in the last chunk: the whole column is written as floats
    lab = [None if i % 5 == 0 else f"label {i}, x" for i in range(n)] if labels else None
    return StudyRows(names, yi, vi, vi * 3, yi - 1, yi + 1, inputs={"events": events, "n": n_col,
                                                                      "yi": yi * 2}, labels=lab)


@pytest.mark.parametrize("labels", [True, False])
@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_study_rows_match_dumps(labels, chunk):
    rows = _rows(53, labels=labels)
    expected = dumps(rows.to_dicts(), indent=False, as_bytes=True)
    assert b"".join(study_rows_chunks(rows, COUNT_COLUMNS, chunk=chunk)) == expected


def test_empty_and_rows_json():
    assert b"".join(study_rows_chunks(StudyRows([], [], [], [], [], []), COUNT_COLUMNS)) == b"[]"
    assert rows_json({"b": [1, 2.5], "a": ["x,]", None]}) == b'[{"a":"x,]","b":1},{"a":null,"b":2.5}]'


def test_cli_large_k_json_is_dumps_of_to_dict(tmp_path):
    """Above 1,000 studies pool --format json splices the column-wise rows into the compact dump."""
    from click.testing import CliRunner

    from hatmeta.api import pool_table, read_data
    from hatmeta.cli import cli

    rng = np.random.default_rng(5)
    path = tmp_path / "many.csv"
    with open(path, "w") as fh:
        fh.write("study,yi,vi\n")
        fh.writelines(f"s{i},{rng.normal()!r},{rng.uniform(0.01, 1)!r}\n" for i in range(1500))
    r = CliRunner().invoke(cli, ["pool", "--data", str(path), "--measure", "GEN", "--format", "json"])
    assert r.exit_code == 0, r.output
    table, measure = read_data(str(path), "GEN")
    expected = dumps(pool_table(table, measure).to_dict(), indent=False)
    assert r.output == expected + "\n"


def test_emit_falls_back_to_the_plain_dump_when_the_mark_is_not_unique(monkeypatch, capsys, tmp_path):
    """If the splice mark occurred elsewhere in the output, _emit writes the study dicts the usual way."""
    from hatmeta.api import pool_table, read_data
    from hatmeta.commands import pool as pool_cmd

    rng = np.random.default_rng(6)
    path = tmp_path / "many.csv"
    with open(path, "w") as fh:
        fh.write("study,yi,vi\n")
        fh.writelines(f"s{i},{rng.normal()!r},{rng.uniform(0.01, 1)!r}\n" for i in range(1200))
    table, measure = read_data(str(path), "GEN")
    res = pool_table(table, measure)
    monkeypatch.setattr(pool_cmd, "_emit_columnar", lambda out, rows: False)
    pool_cmd._emit(res, "json")
    assert capsys.readouterr().out == dumps(res.to_dict(), indent=False) + "\n"
