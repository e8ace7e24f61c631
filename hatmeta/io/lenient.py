"""Read a trial table for ``--by`` so that a bad row fails only its own group.

The exact reader (``trial_table.table_from_rows``) stops at the first bad cell. Under ``--by`` one
bad row among millions should not leave every other group unanswered, so this reader sets each bad
row aside with the exact reader's own one-line message (file, line, column, problem) and builds the
table from the other rows. Its checks are the exact reader's: rows it flags are confirmed one by one
by that reader, and anything it does not know about is caught by re-running the exact reader, which
names the next bad row (so a new check in ``trial_table`` is honoured here without a change).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import InputError
from ..gc_pause import gc_paused
from . import trial_table as tt


@dataclass(frozen=True)
class ByTable:
    """The good rows as a TrialTable, the ``by`` key of every data row in file order, and the error
    (one line: file:line: column: problem) of each bad row, keyed by its position among the data rows."""

    table: tt.TrialTable | None
    keys: tuple[str, ...]
    errors: dict[int, str]


read_rows = tt.read_rows  # the exact reader's file-level errors (missing, not UTF-8, not CSV)


@gc_paused()
def table_by(rows: Sequence[Sequence[str]], by: str, path: str = "<table>", measure: str | None = None,
             first_line: int = 1, try_exact: bool = True) -> ByTable:
    """Split CSV ``rows`` (header first) into good rows and bad rows, each bad row with its error.

    Errors of the header (or of the whole file) are raised: they leave nothing to pool. The exact
    reader is tried on the whole table first unless ``try_exact`` is false (a row is known to be bad).
    """
    if try_exact:
        try:
            table = tt.table_from_rows(rows, path=path, measure=measure, first_line=first_line)
            return ByTable(table, table.column(by), {})
        except InputError as exc:
            if exc.line is None or exc.line <= first_line:
                raise
    header = [h.strip().lower() for h in rows[0]]
    key = by.strip().lower()
    if key not in header:
        raise InputError(f"no such column; columns are: {', '.join(header)}", file=path, column=by)
    kpos = header.index(key)
    data, lines = [], []
    for r, row in enumerate(rows[1:]):
        if row and (len(row) > 1 or row[0].strip()):  # blank lines are skipped, as the exact reader does
            data.append(row)
            lines.append(first_line + 1 + r)
    errors: dict[int, str] = {}
    width = len(header)
    keys = []
    for i, row in enumerate(data):
        keys.append(row[kpos].strip() if len(row) > kpos else "")
        if len(row) != width:
            errors[i] = str(InputError(f"expected {width} fields, found {len(row)}", file=path, line=lines[i]))
    try:
        layout = tt.detect_layout(set(header), path=path, measure=measure.upper() if measure else None)
        cols = {c: header.index(c) for c in tt.LAYOUTS[layout]}
    except (InputError, ValueError):
        cols = None  # metafor's names or derived columns: the exact reader's loop below finds the bad rows
    if cols is not None:
        _prepass(data, lines, rows, cols, layout, errors, path, measure)
    # The rest through the exact reader; whatever it still rejects is set aside too.
    while True:
        good = [i for i in range(len(data)) if i not in errors]
        if not good:
            return ByTable(None, tuple(keys), errors)
        try:
            table = tt.table_from_rows([rows[0]] + [data[i] for i in good], path=path, measure=measure,
                                       first_line=first_line)
        except InputError as exc:
            if exc.line is None or exc.line <= first_line:
                raise
            i = good[exc.line - first_line - 1]
            errors[i] = str(replace_line(exc, lines[i]))
            continue
        table = replace(table, lines=tuple(lines[i] for i in good))
        return ByTable(table, tuple(keys), errors)


def _prepass(data: list[Sequence[str]], lines: list[int], rows: Sequence[Sequence[str]], cols: dict[str, int],
             layout: str, errors: dict[int, str], path: str, measure: str | None) -> None:
    """Find bad rows at C speed where the layout's columns are named as such: each column parsed at
    once, the cells that fail parsed one by one, and the rows the range checks may reject confirmed
    one by one by the exact reader."""
    good = [i for i in range(len(data)) if i not in errors]
    values = {}
    for c, j in cols.items():
        cells = [data[i][j] for i in good]
        try:
            arr = np.asarray(cells, dtype=float)
            ok = np.isfinite(arr)
        except ValueError:
            arr, ok = np.empty(len(good)), np.zeros(len(good), dtype=bool)
        ok &= ~tt._odd_text(cells, arr)  # "1_5", "1e-400": named by the cell parser
        for pos in np.flatnonzero(~ok):
            i = good[pos]
            try:
                arr[pos] = tt._parse_number(data[i][j], path, lines[i], c)
            except InputError as exc:
                errors.setdefault(i, str(exc))
                arr[pos] = np.nan
        values[c] = arr
    suspect = _suspects(layout, values, len(good))
    for pos in np.flatnonzero(suspect):
        i = good[pos]
        if i in errors:
            continue
        try:
            tt.table_from_rows([rows[0], data[i]], path=path, measure=measure, first_line=lines[i] - 1)
        except InputError as exc:
            errors[i] = str(exc)


def replace_line(exc: InputError, line: int | None) -> InputError:
    return InputError(exc.message, file=exc.file, line=line, column=exc.column)


def _suspects(layout: str, v: dict[str, Any], n: int) -> np.ndarray:
    """Rows that may fail the exact reader's range checks (a superset: non-finite, zero, negative,
    fractional counts, events above n, an estimate outside its CI)."""
    bad = np.zeros(n, dtype=bool)
    for c, x in v.items():
        bad |= ~np.isfinite(x)
        for _, mask, _ in tt.magnitude_checks(c, x):
            bad |= mask
        if c in tt.COUNT_COLUMNS:
            bad |= x != np.floor(x)
        # One-arm layouts too (events, n; r, n): a check missed here sends each bad row through the exact
        # reader again (a re-read of the table per bad row: quadratic).
        if c.startswith(("n_", "sd_", "time_")) or c in ("vi", "se", "n"):
            bad |= x <= 0
        if c.startswith("events"):
            bad |= x < 0
        if c == "r":
            bad |= np.abs(x) > 1
    if layout == "binary":
        bad |= (v["events_treat"] > v["n_treat"]) | (v["events_ctrl"] > v["n_ctrl"])
    if layout == "proportion":
        bad |= v["events"] > v["n"]
    if layout == "estimate_ci":
        bad |= ~((v["ci_low"] < v["ci_high"]) & (v["ci_low"] <= v["estimate"]) & (v["estimate"] <= v["ci_high"]))
    return bad


def read_table_by(path: str | os.PathLike[str], by: str, measure: str | None = None, try_exact: bool = True) -> ByTable:
    """``table_by`` on a CSV file."""
    return table_by(read_rows(path), by, path=str(path), measure=measure, try_exact=try_exact)


__all__ = ["ByTable", "read_table_by", "table_by"]
