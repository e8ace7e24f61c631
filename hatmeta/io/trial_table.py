"""Read and validate a trial table (CSV): one row per study, layout recognised from its columns.

Layouts (column names are case-insensitive):

- ``binary``: events_treat, n_treat, events_ctrl, n_ctrl
- ``continuous``: mean_treat, sd_treat, n_treat, mean_ctrl, sd_ctrl, n_ctrl
- ``rates``: events_treat, time_treat, events_ctrl, time_ctrl
- ``yi_vi``: yi, vi (analysis scale)
- ``yi_se``: yi, se (analysis scale)
- ``estimate_ci``: estimate, ci_low, ci_high (natural scale; logged for ratio measures)

Every other column is kept as text and can serve as a subgroup, moderator, grouping or ordering key.
Only the standard library and NumPy are used here so that the command line starts fast.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

LAYOUTS = {
    "binary": ("events_treat", "n_treat", "events_ctrl", "n_ctrl"),
    "continuous": ("mean_treat", "sd_treat", "n_treat", "mean_ctrl", "sd_ctrl", "n_ctrl"),
    "rates": ("events_treat", "time_treat", "events_ctrl", "time_ctrl"),
    "yi_vi": ("yi", "vi"),
    "yi_se": ("yi", "se"),
    "estimate_ci": ("estimate", "ci_low", "ci_high"),
}

# Which layouts each measure accepts (precomputed layouts serve every measure).
PRECOMPUTED = ("yi_vi", "yi_se", "estimate_ci")
MEASURE_LAYOUTS = {
    "RR": ("binary",) + PRECOMPUTED,
    "OR": ("binary",) + PRECOMPUTED,
    "RD": ("binary",) + PRECOMPUTED,
    "PETO": ("binary",),
    "MD": ("continuous",) + PRECOMPUTED,
    "SMD": ("continuous",) + PRECOMPUTED,
    "IRR": ("rates",) + PRECOMPUTED,
    "GEN": PRECOMPUTED,
}
COUNT_COLUMNS = {"events_treat", "events_ctrl", "n_treat", "n_ctrl"}


@dataclass(frozen=True)
class TrialTable:
    """Validated study rows in one layout.

    ``columns`` maps each layout column to a float array (one value per study); ``extra`` maps every
    other column to its text values; ``lines`` holds each row's line number in ``path`` for errors.
    """

    path: str
    layout: str
    studies: tuple
    columns: dict
    extra: dict = field(default_factory=dict)
    lines: tuple = ()

    @property
    def k(self) -> int:
        return len(self.studies)

    def subset(self, index) -> "TrialTable":
        """The rows at ``index`` (a sequence of positions), in that order."""
        index = np.asarray(index, dtype=int)
        return TrialTable(
            path=self.path,
            layout=self.layout,
            studies=tuple(self.studies[i] for i in index),
            columns={c: v[index] for c, v in self.columns.items()},
            extra={c: tuple(v[i] for i in index) for c, v in self.extra.items()},
            lines=tuple(self.lines[i] for i in index) if self.lines else (),
        )

    def column(self, name: str) -> tuple:
        """Text values of a non-layout column (subgroup, moderator, ...)."""
        key = name.strip().lower()
        if key in self.extra:
            return self.extra[key]
        if key in self.columns:
            return tuple(_format_number(x) for x in self.columns[key])
        if key == "study":
            return self.studies
        raise InputError(f"no such column; columns are: {', '.join(self.all_columns())}",
                         file=self.path, column=name)

    def all_columns(self):
        return ["study", *self.columns, *self.extra]

    def line_of(self, i: int):
        return self.lines[i] if self.lines else None


def _format_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def detect_layout(names, path=None, measure=None) -> str:
    """The layout implied by the column names (lower case), or an InputError naming what is missing."""
    present = set(names)
    candidates = MEASURE_LAYOUTS.get(measure, tuple(LAYOUTS)) if measure else tuple(LAYOUTS)
    for layout in candidates:
        if all(c in present for c in LAYOUTS[layout]):
            return layout
    # Name the missing columns of the closest layout so the user can fix the header.
    best = max(candidates, key=lambda lay: (sum(c in present for c in LAYOUTS[lay]) / len(LAYOUTS[lay])))
    missing = [c for c in LAYOUTS[best] if c not in present]
    hint = f" for measure {measure}" if measure else ""
    raise InputError(
        f"missing column(s) {', '.join(missing)}{hint} (layout '{best}' needs {', '.join(LAYOUTS[best])})",
        file=path, line=1, column=missing[0],
    )


def read_table(path, measure: str | None = None) -> TrialTable:
    """Read a trial table CSV and validate every cell; raise InputError on the first mistake."""
    path = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
        rows = list(csv.reader(io.StringIO(text), delimiter=_delimiter(text)))
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except UnicodeDecodeError:
        raise InputError("not a UTF-8 text file", file=path) from None
    except csv.Error as exc:
        raise InputError(f"not a readable CSV file ({exc})", file=path) from None
    return table_from_rows(rows, path=path, measure=measure)


def _delimiter(text: str) -> str:
    """Comma, unless the header has none and has semicolons or tabs: spreadsheets set to a
    European locale save 'CSV' with semicolons."""
    header = text.split("\n", 1)[0]
    if "," in header:
        return ","
    return max((";", "\t"), key=header.count) if (";" in header or "\t" in header) else ","


def table_from_rows(rows, path="<table>", measure=None, first_line=1) -> TrialTable:
    """Build a TrialTable from CSV rows (header first). ``first_line`` is the header's line number."""
    measure = measure.upper() if measure else None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise InputError("empty file: expected a header row", file=path, line=first_line)
    header = [h.strip().lower() for h in rows[0]]
    seen = set()
    for j, h in enumerate(header):
        if not h:
            raise InputError(f"empty column name in header (column {j + 1})", file=path, line=first_line)
        if h in seen:
            raise InputError("duplicate column name", file=path, line=first_line, column=h)
        seen.add(h)
    if "study" not in header:
        raise InputError("missing column 'study'", file=path, line=first_line, column="study")
    layout = detect_layout(header, path=path, measure=measure)
    wanted = LAYOUTS[layout]
    pos = {h: j for j, h in enumerate(header)}

    # csv yields [] for an empty line; a line of whitespace yields one blank cell. Both are skipped.
    data = rows[1:]
    keep = [r for r, row in enumerate(data) if row and (len(row) > 1 or row[0].strip())]
    if not keep:
        raise InputError("no data rows", file=path, line=first_line + 1)
    if len(keep) != len(data):
        data = [data[r] for r in keep]
    lines = [first_line + 1 + r for r in keep]
    if len(set(map(len, data))) != 1 or len(data[0]) != len(header):
        r = next(r for r, row in enumerate(data) if len(row) != len(header))
        raise InputError(f"expected {len(header)} fields, found {len(data[r])}", file=path, line=lines[r])
    cells = list(zip(*data))  # one tuple per column, transposed at C speed
    studies = [name.strip() for name in cells[pos["study"]]]
    if "" in studies or len(set(studies)) != len(studies):
        seen = {}
        for line, name in zip(lines, studies):
            if not name:
                raise InputError("empty study name", file=path, line=line, column="study")
            if name in seen:
                raise InputError(f"duplicate study '{name}' (first on line {seen[name]})", file=path,
                                 line=line, column="study")
            seen[name] = line
    columns = {c: _parse_column(cells[pos[c]], path, lines, c) for c in wanted}
    extra = {h: tuple(x.strip() for x in cells[pos[h]]) for h in header if h not in wanted and h != "study"}
    table = TrialTable(path=path, layout=layout, studies=tuple(studies), columns=columns, extra=extra,
                       lines=tuple(lines))
    check_values(table)
    return table


def _parse_column(cells, path, lines, column) -> np.ndarray:
    """Parse a numeric column at C speed; on failure find and name the first bad cell."""
    try:
        values = np.asarray(cells, dtype=float)
    except ValueError:
        values = None
    if values is not None and np.isfinite(values).all():
        return values
    for line, text in zip(lines, cells):
        _parse_number(text, path, line, column)
    raise AssertionError("unreachable: a column that failed to parse has a bad cell")


def _parse_number(text, path, line, column) -> float:
    s = text.strip()
    if not s:
        raise InputError("missing value", file=path, line=line, column=column)
    try:
        x = float(s)
    except ValueError:
        hint = " (a decimal comma? write 0.5, not 0,5)" if re.fullmatch(r"[+-]?\d+,\d+", s) else ""
        raise InputError(f"not a number: {s!r}{hint}", file=path, line=line, column=column) from None
    if not math.isfinite(x):
        raise InputError(f"not a finite number: {s!r}", file=path, line=line, column=column)
    return x


def check_values(table: TrialTable) -> None:
    """Range and cross-field checks of a table's numeric columns."""
    cols, path = table.columns, table.path

    def fail(i, column, message):
        raise InputError(message, file=path, line=table.line_of(i), column=column)

    checks = []  # (column, bad mask, message for value x)
    for c, v in cols.items():
        if c in COUNT_COLUMNS:
            checks.append((c, v != np.floor(v), "must be a whole number, got {x:g}"))
        if c.startswith("n_"):
            checks.append((c, v <= 0, "must be at least 1, got {x:g}"))
        if c.startswith("events_"):
            checks.append((c, v < 0, "must not be negative, got {x:g}"))
        if c.startswith(("sd_", "time_")) or c in ("vi", "se"):
            checks.append((c, v <= 0, "must be greater than 0, got {x:g}"))
    # Report the first bad cell in file order (row, then the order of the checks).
    first = [(int(np.flatnonzero(bad)[0]), n, c, msg) for n, (c, bad, msg) in enumerate(checks) if bad.any()]
    if first:
        i, _, c, msg = min(first)
        fail(i, c, msg.format(x=cols[c][i]))
    if table.layout == "binary":
        for arm in ("treat", "ctrl"):
            e, n = cols[f"events_{arm}"], cols[f"n_{arm}"]
            for i in np.flatnonzero(e > n):
                fail(i, f"events_{arm}", f"events ({e[i]:g}) exceed n_{arm} ({n[i]:g})")
    if table.layout == "estimate_ci":
        lo, est, hi = cols["ci_low"], cols["estimate"], cols["ci_high"]
        for i in range(table.k):
            if not lo[i] < hi[i]:
                fail(i, "ci_low", f"ci_low ({lo[i]:g}) must be below ci_high ({hi[i]:g})")
            if not lo[i] <= est[i] <= hi[i]:
                fail(i, "estimate", f"estimate ({est[i]:g}) lies outside [{lo[i]:g}, {hi[i]:g}]")
