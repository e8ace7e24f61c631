"""Read and validate a trial table (CSV): one row per study, layout recognised from its columns.

Layouts (column names are case-insensitive):

- ``binary``: events_treat, n_treat, events_ctrl, n_ctrl
- ``continuous``: mean_treat, sd_treat, n_treat, mean_ctrl, sd_ctrl, n_ctrl
- ``rates``: events_treat, time_treat, events_ctrl, time_ctrl
- ``yi_vi``: yi, vi (analysis scale)
- ``yi_se``: yi, se (analysis scale)
- ``estimate_ci``: estimate, ci_low, ci_high (natural scale; logged for ratio measures)
- ``proportion``: events, n (one arm: PR, PLO, PFT)
- ``correlation``: r, n (COR, ZCOR)

metafor's argument names (ai, bi, ci, di, n1i, n2i, m1i, sd1i, x1i, t1i, xi, ni, ri, sei, ...) are
accepted for the columns above; R's NA is a missing value.

Every other column is kept as text and can serve as a subgroup, moderator, grouping or ordering key.
Only the standard library and NumPy are used here so that the command line starts fast.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import IN_MEMORY, InputError
from ..gc_pause import gc_paused

LAYOUTS = {
    "binary": ("events_treat", "n_treat", "events_ctrl", "n_ctrl"),
    "continuous": ("mean_treat", "sd_treat", "n_treat", "mean_ctrl", "sd_ctrl", "n_ctrl"),
    "rates": ("events_treat", "time_treat", "events_ctrl", "time_ctrl"),
    "yi_vi": ("yi", "vi"),
    "yi_se": ("yi", "se"),
    "estimate_ci": ("estimate", "ci_low", "ci_high"),
    "proportion": ("events", "n"),
    "correlation": ("r", "n"),
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
    "HR": PRECOMPUTED,
    "ROM": ("continuous",) + PRECOMPUTED,
    "IRD": ("rates",) + PRECOMPUTED,
    "PR": ("proportion",) + PRECOMPUTED,
    "PLO": ("proportion",) + PRECOMPUTED,
    "PFT": ("proportion",),  # back-transformed with the studies' n, so the counts are needed
    "COR": ("correlation",) + PRECOMPUTED,
    "ZCOR": ("correlation",) + PRECOMPUTED,
}
COUNT_COLUMNS = {"events_treat", "events_ctrl", "n_treat", "n_ctrl", "events", "n"}


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
    lines: Sequence[int] = ()  # a range where the rows are consecutive lines (10^7 ints would be 360 MB)
    notes: tuple = ()  # what reading changed: labels disambiguated, incomplete rows dropped
    given: tuple = ()  # study names as given, when ``studies`` had to disambiguate repeats
    dropped: tuple = ()  # (study, line, reason, {column: text}) of rows left out by drop_incomplete

    @property
    def k(self) -> int:
        return len(self.studies)

    def subset(self, index: ArrayLike) -> TrialTable:
        """The rows at ``index`` (a sequence of positions), in that order."""
        index = np.asarray(index, dtype=int)
        return TrialTable(
            path=self.path,
            layout=self.layout,
            studies=tuple(self.studies[i] for i in index),
            columns={c: v[index] for c, v in self.columns.items()},
            extra={c: tuple(v[i] for i in index) for c, v in self.extra.items()},
            lines=tuple(self.lines[i] for i in index) if self.lines else (),
            notes=self.notes,
            given=tuple(self.given[i] for i in index) if self.given else (),
            dropped=self.dropped,
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

    def all_columns(self) -> list[str]:
        return ["study", *self.columns, *self.extra]

    def line_of(self, i: int) -> int | None:
        return self.lines[i] if self.lines else None

    def identical_rows(self) -> list:
        """[(line, line)] of rows identical in every column (a row pasted twice, most likely), found only
        among rows that share a study name as given (cheap: no table of a million rows is compared)."""
        names = self.given or self.studies
        if len(set(names)) == len(names):
            return []
        first: dict = {}
        pairs = []
        for i, name in enumerate(names):
            key = (name, *(float(v[i]) for v in self.columns.values()), *(v[i] for v in self.extra.values()))
            if key in first:
                pairs.append((self.line_of(first[key]), self.line_of(i)))
            else:
                first[key] = i
        return pairs


def _format_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def detect_layout(names: Collection[str], path: str | None = None, measure: str | None = None) -> str:
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


MISSING = {"", "na", "nan", "n/a", "null", "none", ".", "<na>", "nat"}  # R's write.csv writes NA; pandas writes ''

# metafor's argument names (escalc: ai, bi, ci, di, n1i, ...), accepted as column names when the
# hatmeta name is absent. bi and di are non-events: n_treat = ai + bi, n_ctrl = ci + di.
ALIASES = {"ai": "events_treat", "ci": "events_ctrl", "n1i": "n_treat", "n2i": "n_ctrl",
           "m1i": "mean_treat", "m2i": "mean_ctrl", "sd1i": "sd_treat", "sd2i": "sd_ctrl",
           "x1i": "events_treat", "x2i": "events_ctrl", "t1i": "time_treat", "t2i": "time_ctrl",
           "xi": "events", "ni": "n", "ri": "r", "sei": "se"}
DERIVED = {"n_treat": ("events_treat", "bi"), "n_ctrl": ("events_ctrl", "di")}


if TYPE_CHECKING:
    import os

    import pandas as pd
    from numpy.typing import ArrayLike
    from typing_extensions import TypeIs

    TableSource = str | os.PathLike[str] | pd.DataFrame | Mapping[str, Sequence[Any]]


def read_table(path: TableSource, measure: str | None = None, drop_incomplete: bool = False) -> TrialTable:
    """Read a trial table and validate every cell; raise InputError on the first mistake.

    Parameters
    ----------
    path : str, os.PathLike, pandas.DataFrame or mapping
        A CSV file (comma, semicolon or tab separated), a DataFrame, or a mapping of column name to
        values. The column names decide the layout (binary, continuous, rates, yi/vi, ...).
    measure : str, optional
        The measure the table is for, so that an ambiguous layout is read as that measure needs.
    drop_incomplete : bool
        Leave out rows with a missing value (empty, NA) in a column the layout needs, naming them in
        ``notes``; otherwise the first such cell is an error (file, line and column).

    Returns
    -------
    TrialTable
        The studies and their columns as given (counts, means and SDs in the units of the data;
        nothing transformed).

    Raises
    ------
    InputError
        A bad cell, a missing column or an unreadable file, named by file, line and column.
    """
    import os

    if _is_frame(path) or isinstance(path, dict):
        return table_from_frame(path, measure=measure, drop_incomplete=drop_incomplete)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"read_table expects a CSV path (str or os.PathLike), a pandas DataFrame or a dict of "
                        f"columns, got {type(path).__name__}")
    path = str(path)
    return table_from_rows(read_rows(path), path=path, measure=measure, drop_incomplete=drop_incomplete)


_CSV_SPECIAL = ('"', "\r", "\x00")


@gc_paused()
def read_rows(path: str | os.PathLike[str]) -> list[list[str]]:
    """The CSV rows of ``path`` (header first; comma, semicolon or tab separated, byte-order mark allowed),
    with one-line errors naming the file."""
    path = str(path)
    try:
        import os
        import stat

        if stat.S_ISCHR(os.stat(path).st_mode) or stat.S_ISBLK(os.stat(path).st_mode):
            raise InputError("is a device, not a CSV file", file=path)  # /dev/zero would be read forever
        with open(path, newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
        if "\r" in text and "\n" not in text:  # a CR-only file (classic Mac Excel): lines end at each CR
            text = text.replace("\r", "\n")
        delimiter = _delimiter(text)
        if not any(ch in text for ch in _CSV_SPECIAL):
            # Without quotes, carriage returns or NULs the csv module's rows are the lines split at the
            # delimiter (an empty line is [], no row after the final newline): the same rows, 3x faster.
            lines = text.split("\n")
            if lines[-1] == "":
                lines.pop()
            return [line.split(delimiter) if line else [] for line in lines]
        return list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except UnicodeDecodeError as exc:
        with open(path, "rb") as fh:  # the line of the first bad byte (the BOM, if any, counts as none)
            line = fh.read(exc.start + 3).count(b"\n") + 1
        raise InputError("not a UTF-8 text file", file=path, line=line) from None
    except csv.Error as exc:
        raise InputError(f"not a readable CSV file ({exc})", file=path) from None
    except IsADirectoryError:
        raise InputError("is a folder, expected a CSV file", file=path) from None
    except OSError as exc:  # unreadable, a symbolic-link loop, a name too long
        raise InputError(f"cannot read the file ({exc.strerror or exc})", file=path) from None


def _is_frame(obj: object) -> TypeIs[pd.DataFrame]:
    """A pandas DataFrame, recognised without importing pandas (the command line never needs it)."""
    return type(obj).__name__ == "DataFrame" and type(obj).__module__.split(".")[0] == "pandas"


def table_from_frame(frame: pd.DataFrame | Mapping[str, Sequence[Any]], measure: str | None = None,
                     drop_incomplete: bool = False, path: str = "<DataFrame>") -> TrialTable:
    """A TrialTable from a pandas DataFrame or a dict of columns (values as numbers or text;
    NaN and None are missing). A DataFrame index named ``study`` serves as the study column."""
    if _is_frame(frame):
        if "study" not in [str(c).strip().lower() for c in frame.columns] and frame.index.name == "study":
            frame = frame.reset_index()
        names = [str(c) for c in frame.columns]
        if names and names[0] == "Unnamed: 0":
            # pandas' name for the empty first header of an R export (its row names): read as that file is.
            names[0] = ""
        columns = [frame[c].tolist() for c in frame.columns]
    else:
        path = "<dict>" if path == "<DataFrame>" else path
        names = [str(c) for c in frame]
        columns = [list(v) if not isinstance(v, (str, bytes)) else [v] for v in frame.values()]
        if len(set(map(len, columns))) > 1:
            raise InputError("columns of different lengths: " + ", ".join(f"{n} ({len(c)})" for n, c in
                                                                           zip(names, columns)), file=path)
    rows = [names] + [[_cell_text(x) for x in row] for row in zip(*columns)]
    # first_line=-1: a bad cell is named by its row (0 = the first row, as the frame's index counts).
    return table_from_rows(rows, path=path, measure=measure, drop_incomplete=drop_incomplete, first_line=-1)


def _cell_text(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):  # np.float64 is a float too: its repr under NumPy 2 is 'np.float64(1.0)'
        return "" if x != x else repr(float(x))
    if hasattr(x, "item") and not isinstance(x, str):  # NumPy scalar
        return _cell_text(x.item())
    return str(x)


def _delimiter(text: str) -> str:
    """Comma, unless the header has none and has semicolons or tabs: spreadsheets set to a
    European locale save 'CSV' with semicolons."""
    header = text.split("\n", 1)[0]
    if "," in header:
        return ","
    return max((";", "\t"), key=header.count) if (";" in header or "\t" in header) else ","


def label_duplicates(names: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Display labels for study names that repeat: every occurrence of a repeated name gets its
    rank, "Shechter (1)", "Shechter (2)", in row order (two trials by one first author are two
    studies, as in metafor). Returns (labels, notes)."""
    names = tuple(names)
    if len(set(names)) == len(names):  # the common case, checked at C speed
        return names, ()
    counts: dict = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    repeated = {n for n, c in counts.items() if c > 1}
    if not repeated:
        return names, ()
    taken = set(names)
    seen: dict = {}
    labels = []
    for name in names:
        if name not in repeated:
            labels.append(name)
            continue
        seen[name] = seen.get(name, 0) + 1
        label, r = f"{name} ({seen[name]})", seen[name]
        while label in taken:  # a name like "Shechter (2)" already in the table
            r += 1
            label = f"{name} ({r})"
        taken.add(label)
        labels.append(label)
    order = list(dict.fromkeys(x for x in names if x in repeated))
    shown = "; ".join(f"{n} x{counts[n]}" for n in order[:20])
    if len(order) > 20:  # a simulation's replicates can repeat thousands of names: the note stays short
        shown += f"; and {len(order) - 20} more names"
    notes = (f"study names repeat, so the studies are told apart by their order in the table, as "
             f"\"{order[0]} (1)\", \"{order[0]} (2)\": {shown}",)
    return tuple(labels), notes


@gc_paused()
def table_from_rows(rows: Sequence[Sequence[str]], path: str = "<table>", measure: str | None = None,
                    first_line: int = 1, drop_incomplete: bool = False) -> TrialTable:
    """Build a TrialTable from CSV rows (header first). ``first_line`` is the header's line number."""
    measure = measure.upper() if measure else None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise InputError("empty file: expected a header row", file=path, line=first_line)
    header = [h.strip().lower() for h in rows[0]]
    by_author = "study" not in header and "author" in header and "year" in header
    if header[0] == "" and any(header[1:]):
        # R's write.csv writes row names under an empty header: they name the studies if nothing else does.
        header[0] = "study" if "study" not in header and not by_author else "_rownames"
    if by_author:
        # No study column: "author, year" names each study, as metafor's examples label dat.bcg
        # (slab = paste(author, year, sep = ", ")); said in the notes.
        a, y, width = header.index("author"), header.index("year"), len(header)
        header = header + ["study"]
        rows = [rows[0]] + [[*row, f"{row[a].strip()}, {row[y].strip()}"] if len(row) == width else row
                            for row in rows[1:]]
    seen = set()
    for j, h in enumerate(header):
        if not h:
            raise InputError(f"empty column name in header (column {j + 1})", file=path, line=first_line)
        if h in seen:
            raise InputError("duplicate column name", file=path, line=first_line, column=h)
        seen.add(h)
    if "study" not in header:
        raise InputError("missing column 'study'", file=path, line=first_line, column="study")
    # metafor's names stand in for hatmeta's when those are absent (given name kept for messages).
    given: dict[str, str] = {}
    for j, h in enumerate(header):
        target = ALIASES.get(h)
        if target and target not in seen and target not in given.values():
            given[target] = h
            header[j] = target
    names = set(header) | {c for c, parts in DERIVED.items() if c not in header and all(p in header for p in parts)}
    layout = detect_layout(names, path=path, measure=measure)
    wanted = LAYOUTS[layout]
    pos = {h: j for j, h in enumerate(header)}

    # csv yields [] for an empty line; a line of whitespace yields one blank cell. Both are skipped.
    data = rows[1:]
    widths = set(map(len, data))
    if len(header) > 1 and widths == {len(header)}:  # no blank line (the common case, at C speed)
        lines: Sequence[int] = range(first_line + 1, first_line + 1 + len(data))
    else:
        keep = [r for r, row in enumerate(data) if row and (len(row) > 1 or row[0].strip())]
        if not keep:
            raise InputError("no data rows", file=path, line=first_line + 1)
        if len(keep) != len(data):
            data = [data[r] for r in keep]
            widths = set(map(len, data))
        lines = [first_line + 1 + r for r in keep]
    if widths != {len(header)}:
        r = next(r for r, row in enumerate(data) if len(row) != len(header))
        raise InputError(f"expected {len(header)} fields, found {len(data[r])}", file=path, line=lines[r])
    sources = [c for w in wanted for c in ((w,) if w in pos else DERIVED[w])]
    notes: tuple = ("studies named by their author and year columns (the table has no study column)",) \
        if by_author else ()
    dropped: tuple = ()
    if drop_incomplete:
        gone = [r for r, row in enumerate(data) if any(row[pos[c]].strip().lower() in MISSING for c in sources)]
        if gone:
            if len(gone) == len(data):
                raise InputError("every row has a missing value in "
                                 + ", ".join(given.get(c, c) for c in sources), file=path, column="--drop-incomplete")
            extra_cols = [h for h in header if h not in sources]
            dropped = tuple((data[r][pos["study"]].strip(), lines[r],
                             "missing " + ", ".join(given.get(c, c) for c in sources
                                                    if data[r][pos[c]].strip().lower() in MISSING),
                             {h: data[r][pos[h]].strip() for h in extra_cols}) for r in gone)
            where = "row" if path in IN_MEMORY else "line"
            notes += (f"{len(gone)} incomplete row{'s' if len(gone) > 1 else ''} left out ({_drop_flag(path)}): "
                      + "; ".join(f"{s or '(unnamed)'} ({where} {ln}): {why}" for s, ln, why, _ in dropped),)
            out = set(gone)
            data = [row for r, row in enumerate(data) if r not in out]
            lines = [ln for r, ln in enumerate(lines) if r not in out]
    cells = list(zip(*data))  # one tuple per column, transposed at C speed
    studies = list(map(str.strip, cells[pos["study"]]))
    if "" in studies:
        line = lines[studies.index("")]
        raise InputError("empty study name", file=path, line=line, column="study")
    labels, dup_notes = label_duplicates(studies)
    columns = {}
    for c in wanted:
        if c in pos:
            columns[c] = _parse_column(cells[pos[c]], path, lines, given.get(c, c))
        else:  # n from events and non-events (metafor's ai + bi)
            events, other = DERIVED[c]
            columns[c] = (_parse_column(cells[pos[events]], path, lines, given.get(events, events))
                          + _parse_column(cells[pos[other]], path, lines, other))
    extra = {h: tuple(map(str.strip, cells[pos[h]])) for h in header
             if h not in wanted and h != "study" and h not in sources}
    table = TrialTable(path=path, layout=layout, studies=labels, columns=columns, extra=extra,
                       lines=_compact(lines), notes=notes + dup_notes,
                       given=tuple(studies) if dup_notes else (), dropped=dropped)
    check_values(table)
    return table


def _compact(lines) -> Sequence[int]:
    """Line numbers as a range when they are consecutive (the common case), else a tuple."""
    if isinstance(lines, range):
        return lines
    lines = tuple(lines)
    if lines and lines[-1] - lines[0] == len(lines) - 1 and all(b - a == 1 for a, b in zip(lines, lines[1:])):
        return range(lines[0], lines[-1] + 1)
    return lines


def _parse_column(cells, path, lines, column) -> np.ndarray:
    """Parse a numeric column at C speed; on failure find and name the first bad cell."""
    try:
        values = np.asarray(cells, dtype=float)
    except ValueError:
        values = None
    if values is not None and np.isfinite(values).all() and not _odd_text(cells, values).any():
        return values
    for line, text in zip(lines, cells):
        _parse_number(text, path, line, column)
    raise AssertionError("unreachable: a column that failed to parse has a bad cell")


def decimal_comma_hint(text: str) -> str:
    """' (a decimal comma? ...)' for a cell like '100,0' (a spreadsheet in a European locale), else ''."""
    return " (a decimal comma? write 0.5, not 0,5)" if re.fullmatch(r"[+-]?\d+,\d+", text.strip()) else ""


def _drop_flag(path) -> str:
    """How the caller asks to leave incomplete rows out: the command line's flag, or read_table's keyword."""
    return "drop_incomplete=True" if path in IN_MEMORY else "--drop-incomplete"


def _parse_number(text, path, line, column) -> float:
    s = text.strip()
    if s.lower() in MISSING:
        raise InputError(f"missing value{' (' + s + ')' if s else ''}; {_drop_flag(path)} leaves such rows out",
                         file=path, line=line, column=column)
    try:
        if "_" in s:  # float() reads "1_5" as 15; no spreadsheet or R does
            raise ValueError
        x = float(s)
    except ValueError:
        raise InputError(f"not a number: {s!r}{decimal_comma_hint(s)}", file=path, line=line, column=column) from None
    if not math.isfinite(x):
        raise InputError(f"not a finite number: {s!r}", file=path, line=line, column=column)
    if x == 0 and _NONZERO.search(s):
        raise InputError(f"too small to compute with: {s!r} underflows to 0", file=path, line=line, column=column)
    return x


_NONZERO = re.compile(r"^[^eE]*[1-9]")  # a non-zero digit before any exponent: the number is not 0


def _odd_text(cells, values) -> np.ndarray:
    """Cells that parsed but must be looked at one by one: an underscore (float() reads "1_5" as 15) or
    a non-zero number that underflowed to 0 ("1e-400"). Tested on the joined text first (C speed)."""
    odd = np.zeros(len(values), dtype=bool)
    if "_" in "".join(cells):
        odd |= np.fromiter(("_" in c for c in cells), dtype=bool, count=len(values))
    for i in np.flatnonzero(values == 0):
        odd[i] = bool(_NONZERO.search(cells[i].strip()))
    return odd


# Magnitudes the estimators compute with exactly: beyond them squares and weights overflow (tau² = 0 with a
# confident estimate, or a null result), so such cells are refused, named, rather than computed wrongly.
# A tiny effect is harmless (it is as good as 0); a tiny variance, SE or SD is a huge weight, so the lower
# bound applies only to those divisors.
LIMIT = 1e100  # any numeric column
EFFECT_COLUMNS = {"yi", "vi", "se", "estimate", "ci_low", "ci_high"}
EFFECT_LIMIT = 1e40  # effects and their variances: weights squared twice in REML's score
TINY = {"vi": 1e-40, "se": 1e-20, "sd_treat": 1e-20, "sd_ctrl": 1e-20}  # weights up to 1e40
MAX_COUNT = 2 ** 53  # the largest count a float64 holds exactly


def magnitude_checks(c: str, v: np.ndarray) -> list:
    """(column, bad mask, message) of the magnitude checks of column ``c`` (shared with io.lenient)."""
    hi = EFFECT_LIMIT if c in EFFECT_COLUMNS else LIMIT
    a = np.abs(v)
    h = f"{hi:.0e}".replace("e+", "e")
    out = [(c, a > hi, f"too large to compute with: {{x:g}} (magnitudes up to {h}; rescale the column)")]
    if c in TINY:
        low = f"{TINY[c]:.0e}"
        out.append((c, (a < TINY[c]) & (v != 0),
                    f"too small to compute with: {{x:g}} (from {low}: a weight beyond 1e40; rescale the column)"))
    if c in COUNT_COLUMNS:
        out.append((c, v > MAX_COUNT, "a count above 2^53 cannot be held exactly, got {x:g}"))
    return out


def check_values(table: TrialTable) -> None:
    """Range and cross-field checks of a table's numeric columns."""
    cols, path = table.columns, table.path

    def fail(i, column, message):
        raise InputError(message, file=path, line=table.line_of(i), column=column)

    checks = []  # (column, bad mask, message for value x)
    for c, v in cols.items():
        checks += magnitude_checks(c, v)
        if c in COUNT_COLUMNS:
            checks.append((c, v != np.floor(v), "must be a whole number, got {x:g}"))
        if c.startswith("n_") or c == "n":
            checks.append((c, v <= 0, "must be at least 1, got {x:g}"))
        if c == "r":
            checks.append((c, np.abs(v) > 1, "a correlation must lie in [-1, 1], got {x:g}"))
        if c.startswith("events"):
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
            for i in np.flatnonzero(e > n).tolist():
                fail(i, f"events_{arm}", f"events ({e[i]:g}) exceed n_{arm} ({n[i]:g})")
    if table.layout == "proportion":
        e, n = cols["events"], cols["n"]
        for i in np.flatnonzero(e > n).tolist():
            fail(i, "events", f"events ({e[i]:g}) exceed n ({n[i]:g})")
    if table.layout == "estimate_ci":
        lo, est, hi = cols["ci_low"], cols["estimate"], cols["ci_high"]
        for i in range(table.k):
            if not lo[i] < hi[i]:
                fail(i, "ci_low", f"ci_low ({lo[i]:g}) must be below ci_high ({hi[i]:g})")
            if not lo[i] <= est[i] <= hi[i]:
                fail(i, "estimate", f"estimate ({est[i]:g}) lies outside [{lo[i]:g}, {hi[i]:g}]")
