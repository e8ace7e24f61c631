"""RevMan and Cochrane sources hatmeta does not read are refused on one line naming what they are; the
ones it reads give one line with file, line and column when a row is malformed (exit 2, no traceback).

Every file here is built from R meta's real Fleiss1993.zip (a version 1 data package) and
Fleiss1993_CR.csv (RevMan 5's analyses CSV export) in tests/fixtures/revman/, changed in one place.
"""

import io
import json
import subprocess
import sys
import zipfile

import pytest

from hatmeta.commands.revman import pool_rm5
from hatmeta.errors import InputError
from hatmeta.io.revman_formats import v1_columns
from hatmeta.io.revman_package import read_any_review

from ..conftest import FIXTURES, ROOT

RM = FIXTURES / "revman"
STEM = "921923100913455418"  # the review id inside Fleiss1993.zip


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hatmeta.cli", *args], capture_output=True, text=True, cwd=ROOT)


def _one_line_exit_2(proc):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr


def _fleiss_files():
    """{name in the package: text} of Fleiss1993.zip's inner data zip (its CRLF line ends as LF, so
    that the changes below are plain text edits; the unchanged zip is read as it is)."""
    with zipfile.ZipFile(RM / "Fleiss1993.zip") as z:
        inner = next(n for n in z.namelist() if n.endswith("-data.zip"))
        with zipfile.ZipFile(io.BytesIO(z.read(inner))) as data:
            return {n: data.read(n).decode("utf-8-sig").replace("\r\n", "\n") for n in data.namelist()
                    if not n.endswith("/")}


def _folder(tmp_path, change=None):
    """The package as a folder, ``change(name, text) -> text`` applied to every file."""
    root = tmp_path / "pkg"
    for name, text in _fleiss_files().items():
        out = root / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\ufeff" + (change(name, text) if change else text), encoding="utf-8")
    return root


def _zip(tmp_path, change):
    """The package as RevMan hands it out (a zip holding a zip), ``change`` applied."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as inner:
        for name, text in _fleiss_files().items():
            inner.writestr(name, ("\ufeff" + change(name, text)).encode("utf-8"))
    path = tmp_path / "changed.zip"
    with zipfile.ZipFile(path, "w") as outer:
        outer.writestr(f"Fleiss1993/{STEM}-files/{STEM}-data.zip", buf.getvalue())
    return path


def _add_column(suffix, column, value):
    def change(name, text):
        if not name.endswith(suffix):
            return text
        lines = text.rstrip("\n").split("\n")
        return "\n".join([lines[0] + "," + column] + [line + "," + value for line in lines[1:]]) + "\n"
    return change


def test_unchanged_fleiss_package_passes_the_checks(tmp_path):
    """The real version 1 files pass the column and row checks, as a folder and as the zip."""
    for src in (_folder(tmp_path), RM / "Fleiss1993.zip"):
        review = read_any_review(src)
        assert [o.id for o in review.outcomes] == ["CMP-001.01", "CMP-001.02"] and review.notes == ()


@pytest.mark.parametrize("suffix", ["overall-estimates-and-settings.csv", "data-rows.csv"])
def test_a_package_with_columns_outside_version_1_is_refused_naming_them(tmp_path, suffix):
    """RevMan's layout since 23 September 2024 could not be checked: a column version 1 does not have
    ("CI method" here; any such column) is refused, not read with version 1 meanings."""
    path = _zip(tmp_path, _add_column(suffix, "CI method", "Wald"))
    with pytest.raises(InputError, match="newer than version 1") as exc:
        read_any_review(path)
    msg = str(exc.value)
    assert "CI method" in msg and f"{STEM}-{suffix}" in msg and "23 September 2024" in msg and "1 column" in msg
    for args in (("revman", str(path)), ("pool", "--data", str(path), "--outcome", "CMP-001.01")):
        assert "newer than version 1" in _one_line_exit_2(_cli(*args))


def test_the_documented_analysis_id_column_name_is_version_1(tmp_path):
    """Cochrane's version 1 page names the last overall column "Analysis ID" (the files have "ID")."""
    def rename(name, text):
        return text.replace(",Subgroup I²,ID\n", ",Subgroup I²,Analysis ID\n", 1) if "overall" in name else text
    folder = _folder(tmp_path, rename)
    assert ",Analysis ID\n" in next(folder.rglob("*overall*")).read_text(encoding="utf-8-sig")
    res = pool_rm5(str(folder), "CMP-001.01", None, {})
    assert res.extra["revman"]["agrees"] is True


def test_version_1_columns_are_the_writers_and_the_real_files():
    files = _fleiss_files()
    for suffix, cols in v1_columns().items():
        (text,) = [t for n, t in files.items() if n.endswith(suffix)]
        assert set(text.split("\n", 1)[0].split(",")) <= cols


def test_text_in_a_number_column_names_file_line_and_column(tmp_path):
    def corrupt(name, text):
        return text.replace(",AMIS,1980,0.0,0.0,0.0,0.0,246,", ",AMIS,1980,0.0,0.0,0.0,0.0,24x6,") \
            if name.endswith("data-rows.csv") else text
    path = _zip(tmp_path, corrupt)
    with pytest.raises(InputError) as exc:
        read_any_review(path)
    e = exc.value
    assert e.file == f"{path}/{STEM}-analysis-data/{STEM}-data-rows.csv" and e.line == 2
    assert e.column == "Experimental cases" and "'24x6'" in e.message
    assert f"{STEM}-data-rows.csv:2: column 'Experimental cases': not a number" in _one_line_exit_2(
        _cli("pool", "--data", str(path), "--outcome", "CMP-001.01"))


def test_a_cut_row_is_named_by_its_line(tmp_path):
    def cut(name, text):
        if not name.endswith("data-rows.csv"):
            return text
        lines = text.split("\n")
        lines[3] = lines[3][:40]
        return "\n".join(lines)
    err = _one_line_exit_2(_cli("revman", str(_folder(tmp_path, cut))))
    assert f"{STEM}-data-rows.csv:4: " in err and "fields where the header has 24" in err


def test_na_in_a_number_column_is_a_missing_value(tmp_path):
    """RevMan writes "#N/A" for not applicable; read as missing, as an empty cell."""
    def na(name, text):
        return text.replace(",AMIS,1980,0.0,", ",AMIS,1980,#N/A,") if name.endswith("data-rows.csv") else text
    assert pool_rm5(str(_folder(tmp_path, na)), "CMP-001.01", None, {}).extra["revman"]["agrees"] is True


def test_revman5_csv_export_text_in_a_number_column(tmp_path):
    lines = (RM / "Fleiss1993_CR.csv").read_text(encoding="utf-8-sig").split("\n")
    header = lines[0].split(",")
    row = next(i for i, line in enumerate(lines) if line.split(",")[3:4] == ["MRC-1"])  # a study row
    cells = lines[row].split(",")
    cells[header.index("Total 1")] = "six"
    lines[row] = ",".join(cells)
    path = tmp_path / "export.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_any_review(path)
    assert (exc.value.line, exc.value.column) == (row + 1, "Total 1") and "'six'" in exc.value.message
    _one_line_exit_2(_cli("pool", "--data", str(path), "--outcome", "CMP-001.01"))


@pytest.mark.parametrize("pick, words", [
    ("data-rows.csv", "one CSV of a Cochrane data package"),
    ("study-information.csv", "'Study information' CSV"),
    ("risk-of-bias.csv", "risk-of-bias CSV"),
])
def test_a_single_csv_of_a_package_is_named(tmp_path, pick, words):
    (text,) = [t for n, t in _fleiss_files().items() if n.endswith(pick)]
    path = tmp_path / pick
    path.write_text("\ufeff" + text, encoding="utf-8")
    with pytest.raises(InputError, match=words):
        read_any_review(path)
    assert words in _one_line_exit_2(_cli("revman", str(path)))


def test_other_csv_and_json_sources_are_refused_naming_what_is_read(tmp_path):
    err = _one_line_exit_2(_cli("pool", "--data", str(FIXTURES / "data" / "bcg.csv"), "--outcome", "CMP-001.01"))
    assert "not RevMan 5's analyses CSV export" in err and "RevMan Web's per-analysis export" in err
    path = tmp_path / "review.json"
    path.write_text(json.dumps({"studies": []}))
    err = _one_line_exit_2(_cli("revman", str(path)))
    assert "JSON study-data export is not read" in err
