"""Checks of the Cochrane and RevMan files hatmeta reads, and one-line refusals of the ones it does not.

What hatmeta reads (``hatmeta/io/revman.py``, ``hatmeta/io/revman_package.py``): RevMan 5 files
(``.rm5``), RevMan 5's analyses CSV export and the Cochrane "version 1" data package. What it refuses,
naming the format it found, because no column layout could be checked against (the sources searched are
listed in docs/guide/revman.md, "Formats hatmeta does not read"):

- a data package in the format RevMan has written since 23 September 2024. Cochrane's knowledge base
  page "Previous version: version 1 data package"
  (https://documentation.cochrane.org/revman-kb/previous-version-version-1-data-package-332136475.html)
  says packages generated until that date have the version 1 layout and lists its columns; the page of
  the current layout could not be opened. A package whose analysis-data CSVs have a column the version
  1 layout does not have is therefore refused, with the columns named, rather than read with version 1
  meanings (its settings may be REML or Hartung-Knapp, which the revman5 reproduction would not match);
- RevMan Web's per-analysis data export and its JSON study-data export (named on the knowledge base
  pages "Manual-input analyses" and "Populate study data"; no layout reachable);
- Covidence's "Export to RevMan Web" CSVs (Study information, Study arms, Study results, Risk of bias;
  Covidence's page "How to upload your data to RevMan Web" names them and the ``Char: Identification``
  column of Study information, not the columns of Study results);
- a single CSV out of a data package (it lacks the analysis settings: give the package).

Malformed files: a number column holding text, or a row with more or fewer fields than the header, is
one ``InputError`` naming the file (``package.zip/inner/name.csv``), the line and the column.
Only the standard library is imported here.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence

from ..errors import InputError

# Version 1 layout: the columns of the real files (R meta's Fleiss1993.zip, RevMan Web 2022) as
# revman_package writes and reads them; the knowledge base page names the last overall column
# "Analysis ID" where the files have "ID", so both are version 1.
V1_EXTRA = {"overall-estimates-and-settings.csv": ("Analysis ID",)}

# Number columns each reader takes (empty and "#N/A", RevMan's "not applicable", are missing values).
PACKAGE_NUMBERS = {
    "overall-estimates-and-settings.csv": (
        "Analysis group", "Analysis number", "Experimental cases", "Experimental N", "Control cases", "Control N",
        "Mean", "CI start", "CI end", "Heterogeneity Tau²", "Heterogeneity Chi²", "Heterogeneity df",
        "Heterogeneity P", "Heterogeneity I²", "Effect Z", "Effect P", "Subgroup Chi²", "Subgroup df",
        "Subgroup P", "Subgroup I²"),
    "data-rows.csv": (
        "Analysis group", "Analysis number", "GIV Mean", "GIV SE", "Experimental mean", "Experimental SD",
        "Experimental cases", "Experimental N", "Control mean", "Control SD", "Control cases", "Control N", "O-E",
        "Variance", "Weight", "Mean", "CI start", "CI end"),
    "subgroup-estimates.csv": (
        "Analysis group", "Analysis number", "Subgroup number", "Experimental cases", "Experimental N",
        "Control cases", "Control N", "Weight", "Mean", "CI start", "CI end", "Heterogeneity Tau²",
        "Heterogeneity Chi²", "Heterogeneity df", "Heterogeneity P", "Heterogeneity I²", "Effect Z", "Effect P"),
}
CSV_EXPORT_NUMBERS = ("Comparison Number", "Outcome Number", "Subgroup Number", "Events 1", "Total 1", "Events 2",
                      "Total 2", "Mean 1", "SD 1", "Mean 2", "SD 2", "Effect Estimate", "SE", "CI Start", "CI End",
                      "Weight", "Z", "P(Z)", "Q", "df", "P(Q)", "I²(Q)", "Tau²", "Qint", "P(Qint)", "I²(Qint)")
MISSING = ("", "#N/A", "NA")

NEWER_PACKAGE = ("a Cochrane data package in a layout newer than version 1 (RevMan's format since 23 September "
                 "2024): {file} has {n} not in version 1 ({cols}); hatmeta reads version 1 packages only (the newer "
                 "layout's specification could not be reached to check against)")


def v1_columns() -> dict[str, frozenset[str]]:
    """{file suffix: the version 1 columns} of the analysis-data CSVs."""
    from .revman_package import DATA_ROWS, OVERALL, SUBGROUPS

    base = {"overall-estimates-and-settings.csv": OVERALL, "data-rows.csv": DATA_ROWS,
            "subgroup-estimates.csv": SUBGROUPS}
    return {k: frozenset(v) | frozenset(V1_EXTRA.get(k, ())) for k, v in base.items()}


def _is_number(cell: str) -> bool:
    c = cell.strip()
    if c in MISSING:
        return True
    try:
        float(c)  # NaN and Infinity are numbers the readers take as missing (revman._number)
    except ValueError:
        return False
    return True


def check_rows(where: str, rows: Iterable[tuple[int, Sequence[str]]], header: Sequence[str],
               numbers: Iterable[str]) -> None:
    """Raise one ``InputError`` (``where``, line, column) at the first row whose field count differs
    from the header's or whose number column holds text. ``rows``: (line, fields), header excluded."""
    want = [(i, h) for i, h in enumerate(header) if h in set(numbers)]
    width = len(header)
    for line, fields in rows:
        if not any(f.strip() for f in fields):
            continue  # a blank line
        if len(fields) != width:
            raise InputError(f"{len(fields)} fields where the header has {width} (a cut or malformed line)",
                             file=where, line=line)
        for i, name in want:
            if not _is_number(fields[i]):
                raise InputError(f"not a number: {fields[i].strip()!r}", file=where, line=line, column=name)


def _csv_rows(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    reader = csv.reader(io.StringIO(text))
    header: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    for fields in reader:
        if not header:
            header = [h.strip() for h in fields]
            continue
        rows.append((reader.line_num, fields))
    return header, rows


def check_package(path: str, files: Mapping[str, str], names: Mapping[str, str]) -> None:
    """The analysis-data CSVs of a data package: refuse a layout newer than version 1 (columns named),
    then check every row (field count, numbers). ``files``: {suffix: text}; ``names``: {suffix: the
    file's name inside the package}."""
    known = v1_columns()
    parsed = {}
    for suffix, cols in known.items():
        if suffix not in files:
            continue
        where = f"{path}/{names.get(suffix, suffix)}"
        try:
            header, rows = _csv_rows(files[suffix])
        except csv.Error as exc:
            raise InputError(f"not a readable CSV file ({exc})", file=where) from None
        extra = [h for h in header if h and h not in cols]
        if extra:
            raise InputError(NEWER_PACKAGE.format(file=os.path.basename(where), n=_count(extra),
                                                  cols=", ".join(extra)), file=path)
        parsed[suffix] = (where, header, rows)
    for suffix, (where, header, rows) in parsed.items():
        check_rows(where, rows, header, PACKAGE_NUMBERS[suffix])


def _count(cols: Sequence[str]) -> str:
    return "1 column" if len(cols) == 1 else f"{len(cols)} columns"


def refuse_csv(path: str, header: Sequence[str]) -> InputError:
    """The error for a CSV given as a RevMan source that is not RevMan 5's analyses CSV export,
    naming what it looks like."""
    cols = [h.strip().lstrip("\ufeff") for h in header]
    s = set(cols)
    readable = ("hatmeta reads RevMan 5 files (.rm5), RevMan 5's analyses CSV export and version 1 data "
                "packages (zip or folder)")
    if {"Analysis group", "Analysis number"} <= s:
        return InputError("one CSV of a Cochrane data package (analysis-data): it lacks the package's analysis "
                          "settings; give the package itself (its zip or folder)", file=path)
    if "Study" in s and any(c.startswith("Char: ") for c in cols):
        return InputError("a 'Study information' CSV (a data package's study-data, or Covidence's Export to "
                          "RevMan Web): study characteristics, no result data to pool; " + readable, file=path)
    if "Study" in s and any(c.startswith("Domain (judgement)") for c in cols):
        return InputError("a risk-of-bias CSV (a data package's study-data, or Covidence's Export to RevMan Web): "
                          "no result data to pool; " + readable, file=path)
    return InputError("not RevMan 5's analyses CSV export (its header starts 'Comparison Number,Outcome Number,"
                      "Subgroup Number'); " + readable + "; RevMan Web's per-analysis export and Covidence's Study "
                      "arms / Study results CSVs are not read (no column layout could be checked)", file=path)


def refuse_json(path: str) -> InputError:
    return InputError("a JSON file: RevMan's JSON study-data export is not read (no documented schema could be "
                      "checked); hatmeta reads RevMan 5 files (.rm5), RevMan 5's analyses CSV export and version 1 "
                      "data packages", file=path)
