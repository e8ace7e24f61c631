"""Reading conveniences (issue 12): R exports (NA, row names), metafor's column names, --drop-incomplete,
DataFrames and dicts, duplicate study names, and a clear TypeError for a wrong input type."""

import json
import subprocess
import sys

import pytest

from hatmeta.api import pool_table
from hatmeta.errors import InputError
from hatmeta.io.trial_table import read_table, table_from_rows

from ..conftest import FIXTURES

BCG = FIXTURES / "data" / "bcg.csv"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "hatmeta.cli", *args], capture_output=True, text=True)


def bcg_rows():
    return [r.split(",") for r in BCG.read_text().splitlines() if r]


def test_metafor_column_names_are_aliases(write_csv):
    """ai, bi, ci, di (events and non-events, as escalc's arguments) give the same fit as hatmeta's names."""
    table = read_table(BCG, measure="RR")
    c = table.columns
    rows = [["study", "ai", "bi", "ci", "di"]] + [
        [s, f"{a:g}", f"{n1 - a:g}", f"{e:g}", f"{n2 - e:g}"]
        for s, a, n1, e, n2 in zip(table.studies, c["events_treat"], c["n_treat"], c["events_ctrl"], c["n_ctrl"])]
    aliased = read_table(write_csv(rows), measure="RR")
    assert aliased.layout == "binary"
    assert pool_table(aliased, "RR").estimate == pytest.approx(pool_table(table, "RR").estimate, rel=1e-12)
    rows = [["study", "ai", "n1i", "ci", "n2i"]] + [[s, f"{a:g}", f"{n1:g}", f"{e:g}", f"{n2:g}"] for s, a, n1, e, n2 in
                                                     zip(table.studies, c["events_treat"], c["n_treat"],
                                                         c["events_ctrl"], c["n_ctrl"])]
    assert read_table(write_csv(rows), measure="OR").columns["n_treat"].tolist() == c["n_treat"].tolist()
    props = read_table(write_csv([["study", "xi", "ni"], ["a", "3", "10"], ["b", "5", "20"]]), measure="PLO")
    assert props.layout == "proportion"


def test_r_export_with_na_and_row_names(write_csv):
    """write.csv(dat) from R: quoted header with an empty row-names column, NA in a moderator and in a count."""
    rows = [["", "study", "ai", "n1i", "ci", "n2i", "year"], ["1", "A", "4", "123", "11", "139", "NA"],
            ["2", "B", "6", "306", "29", "303", "1949"], ["3", "C", "NA", "231", "11", "220", "1960"],
            ["4", "D", "62", "13598", "248", "12867", "1977"]]
    path = write_csv(rows)
    with pytest.raises(InputError) as err:
        read_table(path, measure="RR")
    assert err.value.line == 4
    assert "missing value (NA)" in err.value.message and "--drop-incomplete" in err.value.message
    table = read_table(path, measure="RR", drop_incomplete=True)
    assert table.studies == ("A", "B", "D")
    assert "C (line 4): missing ai" in table.notes[0]
    res = pool_table(table, "RR")
    assert any("C (line 4)" in n for n in res.notes)
    p = cli("pool", "--data", str(path), "--measure", "RR", "--drop-incomplete", "--format", "json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["k"] == 3 and any("incomplete" in n and "C (line 4)" in n for n in out["notes"])
    p = cli("pool", "--data", str(path), "--measure", "RR")
    assert p.returncode == 2 and "table.csv:4" in p.stderr and "Traceback" not in p.stderr


def test_duplicate_study_names_are_separate_studies(write_csv):
    rows = bcg_rows()
    rows[2][0] = rows[1][0]  # two trials by the same first author
    table = read_table(write_csv(rows), measure="RR")
    name = rows[1][0]
    assert table.studies[:2] == (f"{name} (1)", f"{name} (2)")
    res = pool_table(table, "RR")
    assert res.k == 13 and any(f"{name} x2" in n for n in res.notes)
    assert res.estimate == pytest.approx(pool_table(read_table(BCG, measure="RR"), "RR").estimate, rel=1e-12)
    p = cli("pool", "--data", str(write_csv(rows)), "--measure", "RR")
    assert p.returncode == 0 and f"{name} (2)" in p.stdout


def test_dataframe_and_dict_input():
    pd = pytest.importorskip("pandas")
    import hatmeta

    frame = pd.read_csv(BCG)
    frame.loc[3, "year"] = float("nan")  # NaN in an extra column is kept as empty text, not an error
    res = hatmeta.rma(hatmeta.escalc(frame, measure="RR"))
    ref = pool_table(read_table(BCG, measure="RR"), "RR")
    assert res.estimate == pytest.approx(ref.estimate, rel=1e-12)
    per_study = res.to_frame()
    assert list(per_study.columns[:6]) == ["study", "yi", "vi", "weight", "ci_low", "ci_high"]
    assert len(per_study) == 13 and per_study["weight"].sum() == pytest.approx(100)
    assert "events_treat" in per_study
    summary = res.summary_frame()
    assert len(summary) == 1 and summary.loc[0, "estimate_natural"] == pytest.approx(2.718281828459045 ** ref.estimate)
    assert "<pre>" in res._repr_html_() and "RR" in res._repr_markdown_()
    cols = {c: frame[c].tolist() for c in ("study", "events_treat", "n_treat", "events_ctrl", "n_ctrl")}
    assert hatmeta.pool_table(cols, "RR").estimate == pytest.approx(ref.estimate, rel=1e-12)
    frame.loc[2, "n_ctrl"] = float("nan")
    with pytest.raises(InputError, match="missing value"):
        hatmeta.read_table(frame, measure="RR")
    assert hatmeta.read_table(frame, measure="RR", drop_incomplete=True).k == 12
    by = hatmeta.pool_by(pd.read_csv(BCG), "alloc", "RR").to_frame()
    assert list(by["group"]) == ["random", "alternate", "systematic"] and list(by["k"]) == [7, 2, 4]


@pytest.mark.parametrize("bad", [[1, 2, 3], 42, None])
def test_wrong_input_type_is_a_type_error(bad):
    import hatmeta

    with pytest.raises(TypeError, match="read_table expects"):
        hatmeta.read_table(bad)
    with pytest.raises(TypeError, match="read_table expects"):
        hatmeta.escalc(bad, measure="RR")


def test_rma_of_a_table_is_a_type_error():
    import hatmeta

    with pytest.raises(TypeError, match="EffectSizes"):
        hatmeta.rma(read_table(BCG, measure="RR"))


def test_import_hatmeta_reaches_api():
    import hatmeta

    assert hatmeta.api.pool_table is pool_table


def test_cli_does_not_import_pandas():
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", "import hatmeta.cli; import hatmeta.api"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "pandas" not in p.stderr


def test_hedges_g_undefined_only_below_four(write_csv):
    rows = [["study", "mean_treat", "sd_treat", "n_treat", "mean_ctrl", "sd_ctrl", "n_ctrl"],
            ["a", "10", "3", "20", "12", "3", "20"], ["b", "11", "3", "2", "12", "2", "2"],
            ["c", "9", "2", "1", "12", "2", "2"]]
    res = pool_table(table_from_rows(rows), "SMD", method="FE")
    assert [s.study for s in res.studies] == ["a", "b"]  # b: total n = 4, m = 2, defined
    assert any("c: Hedges' g undefined with n_treat + n_ctrl = 3" in n for n in res.notes)


def test_missing_moderator_values_leave_the_study_out_of_the_metaregression(write_csv):
    rows = bcg_rows()
    head = rows[0]
    j = head.index("ablat")
    full = pool_table(read_table(write_csv([r for i, r in enumerate(rows) if i != 2]), measure="RR"), "RR",
                      moderators=["ablat"])
    rows[2][j] = "NA"
    res = pool_table(read_table(write_csv(rows), measure="RR"), "RR", moderators=["ablat"])
    m = res.meta_regression
    assert res.k == 13 and m.qe_df == 12 - 2
    assert m.coefficients[1].estimate == pytest.approx(full.meta_regression.coefficients[1].estimate, rel=1e-10)
    assert rows[2][0] in m.notes[0]
    assert rows[2][0] in res.to_dict()["meta_regression"]["notes"][0]


def test_pymc_engine_without_the_extra_is_one_line(write_csv, tmp_path):
    """Without PyMC installed, --engine pymc ends with the README's one-line error (exit 2), not a traceback.
    PyMC is hidden by a module that fails to import, first on the path."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "pymc.py").write_text("raise ImportError('No module named pymc')\n")
    import os

    env = dict(os.environ, PYTHONPATH=str(fake) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "--data", str(BCG), "--measure", "RR",
                        "--bayes", "--engine", "pymc"], capture_output=True, text=True, env=env)
    assert p.returncode == 2, p.stderr
    assert "hatmeta[bayes]" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("text", [
    "study,yi,vi\na,1,2\nb,3,4\n", "study,yi,vi\na,1,2\nb,3,4", "study,yi,vi\n\na,1,2\n   \nb,3,4\n\n\n",
    "study;yi;vi\na;1,5;2\n", "study\tyi\tvi\na\t1\t2\n", "\ufeffstudy,yi,vi\na,1,2\n", "study,yi,vi\na,1,2,\n,\n",
    'study,yi,vi\n"a, b",1,2\n', "study,yi,vi\r\na,1,2\r\n", "study,yi,vi\n\n"])
def test_rows_of_a_quote_free_file_are_the_csv_modules(tmp_path, text):
    """Files without quotes, carriage returns or NULs are split by line and delimiter (the fast path):
    the rows must be exactly those of the csv module, blank lines and a missing final newline included."""
    import csv
    import io

    from hatmeta.io.trial_table import _delimiter, read_rows

    path = tmp_path / "t.csv"
    path.write_bytes(text.encode("utf-8"))
    body = text.lstrip("\ufeff")
    assert read_rows(path) == list(csv.reader(io.StringIO(body), delimiter=_delimiter(body)))


def test_a_dict_of_numpy_arrays_reads_like_lists():
    """np.float64 is a Python float whose repr under NumPy 2 is 'np.float64(1.05)': read as a number."""
    import numpy as np

    from hatmeta.io.trial_table import read_table

    arrays = read_table({"study": ["a", "b"], "yi": np.array([1.05, 2.0]), "vi": np.array([0.1, 0.2])}, measure="GEN")
    lists = read_table({"study": ["a", "b"], "yi": [1.05, 2.0], "vi": [0.1, 0.2]}, measure="GEN")
    assert list(arrays.column("yi")) == list(lists.column("yi")) == ["1.05", "2"]  # cells as text, as a CSV gives them


def test_a_batch_result_has_the_four_methods_of_every_result():
    import hatmeta

    batch = hatmeta.pool_by(str(FIXTURES / "data" / "by_groups.csv"), "group", "GEN")
    groups = batch.to_dict()["groups"]
    assert len(groups) == len(batch) and groups[0]["group"] == str(batch.groups[0])
    assert groups[0]["estimate"] == pytest.approx(batch[0].estimate, rel=1e-9)
    assert f"{len(batch)} meta-analyses" in batch.summary() and len(batch.to_frame()) == len(batch)
    assert batch._repr_html_().startswith("<")


R_EXPORT = ('"","author","year","events_treat","n_treat","events_ctrl","n_ctrl"\n"1","Aronson",1948,4,123,11,139\n'
            '"2","Ferguson & Simes",1949,6,306,29,303\n"3","Rosenthal",1960,3,231,11,220\n')


def test_notebook_inputs_read_as_the_command_line_reads_them(tmp_path):
    """pd.read_csv of an R export (R's row names as 'Unnamed: 0'), author and year naming the studies,
    errors naming the frame's row, and pool_table(..., drop_incomplete=True) (issue 26, item 13)."""
    import io

    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(io.StringIO(R_EXPORT))
    assert frame.columns[0] == "Unnamed: 0"
    res = pool_table(frame, "RR")
    assert [s.study for s in res.studies] == ["Aronson, 1948", "Ferguson & Simes, 1949", "Rosenthal, 1960"]
    assert any("author and year" in n for n in res.notes)
    path = tmp_path / "r.csv"
    path.write_text(R_EXPORT)
    assert pool_table(str(path), "RR").to_dict() == res.to_dict()  # the file by path: the same studies
    bad = frame.astype({"events_treat": object})
    bad.loc[2, "events_treat"] = "x"
    with pytest.raises(InputError) as err:
        pool_table(bad, "RR")
    assert str(err.value) == "<DataFrame>: row 2: column 'events_treat': not a number: 'x'"
    gap = frame.copy()
    gap.loc[1, "n_treat"] = None
    with pytest.raises(InputError, match="drop_incomplete=True leaves such rows out"):
        pool_table(gap, "RR")
    kept = pool_table(gap, "RR", drop_incomplete=True)
    assert kept.k == 2 and any("Ferguson & Simes, 1949 (row 1): missing n_treat" in n for n in kept.notes)
