"""Read and validate the extraction files (data/extracted/): trials, arms, outcomes, discrepancies.

The column layout is the project's extraction schema. Every problem becomes an InputError naming
the file, the line (1 = header) and the column, so `hatmeta validate` can list them all and every
other command can refuse on the first. Only the standard library is used: the CLI starts fast.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
STATUSES = ("reported", "derived", "not reported")
NUMERIC_OUTCOME_COLUMNS = ("n", "events", "mean", "sd", "count", "person_time")
# Which cells each kind of figure needs (binary and continuous definitions are kept apart).
KIND_COLUMNS = {
    "binary": ("n", "events"),
    "continuous": ("n", "mean", "sd"),
    "rates": ("count", "person_time"),
    # An event count with no exposure time (e.g. 58 serious adverse events in one arm): a reported
    # figure worth keeping with its source, but never pooled (no rate, no patient denominator).
    "count": ("count",),
}


@dataclass(frozen=True)
class Column:
    """One schema column. ``kind``: text, id, int, number or choice; ``required``: cell must be filled."""

    name: str
    required: bool = False
    kind: str = "text"
    choices: tuple = ()
    minimum: float | None = None  # inclusive
    positive: bool = False  # strictly greater than 0


def _cols(*specs):
    return tuple(specs)


SCHEMA = {
    "trials.csv": _cols(
        Column("trial", True, "id"), Column("short_name"), Column("country", True), Column("sites"),
        Column("authors"), Column("journal"), Column("year", True, "int", minimum=1900),
        Column("volume"), Column("pages"), Column("doi"), Column("pmid"), Column("registry"),
        Column("blinding", False, "choice", ("open", "double-blind")),
        Column("hypothesis", False, "choice", ("superiority", "non-inferiority")),
        Column("route", True, "choice", ("injected", "inhaled")),
        Column("n_randomised", False, "int", minimum=1), Column("followup_weeks", False, "number", positive=True),
        Column("itt", False, "choice", ("yes", "no", "partial")), Column("source", True), Column("notes"),
    ),
    "arms.csv": _cols(
        Column("trial", True, "id"), Column("arm", True, "id"), Column("description"),
        Column("role", True, "choice", ("experimental", "control", "other")),
        Column("n_randomised", False, "int", minimum=1), Column("source", True), Column("note"),
    ),
    "outcomes.csv": _cols(
        Column("trial", True, "id"), Column("outcome", True, "id"), Column("definition"),
        Column("arm", True, "id"), Column("timepoint_weeks", False, "number", positive=True),
        Column("n", False, "int", minimum=1), Column("events", False, "int", minimum=0),
        Column("mean", False, "number"), Column("sd", False, "number", positive=True),
        Column("count", False, "int", minimum=0), Column("person_time", False, "number", positive=True),
        Column("source", True), Column("status", True, "choice", STATUSES), Column("derivation"),
        Column("note"),
    ),
    "discrepancies.csv": _cols(
        Column("trial", True, "id"), Column("outcome"), Column("field", True), Column("value_a", True),
        Column("source_a", True), Column("value_b", True), Column("source_b", True),
        Column("used", True, "choice", ("a", "b")), Column("note"),
    ),
}
FILES = tuple(SCHEMA)
REQUIRED_FILES = ("trials.csv", "arms.csv", "outcomes.csv")  # discrepancies.csv may be absent


@dataclass(frozen=True)
class Row:
    """One data row: its file, line number (header = 1) and text cells (stripped)."""

    file: str
    line: int
    values: dict

    def __getitem__(self, column: str) -> str:
        return self.values.get(column, "")

    def num(self, column: str) -> float | None:
        """The cell as a float, or None when empty (validated rows only)."""
        text = self.values.get(column, "")
        return float(text) if text else None


@dataclass(frozen=True)
class Extraction:
    """A validated extraction: rows of each file in file order.

    ``headers`` keeps each file's column order (add-trial appends in that order);
    ``paths`` the file each table was read from.
    """

    data_dir: Path
    trials: tuple
    arms: tuple
    outcomes: tuple
    discrepancies: tuple = ()
    headers: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)
    appraisal: object = None  # hatmeta.review.appraisal.Appraisal: risk of bias, published reviews, searches

    def trial(self, trial_id: str) -> Row | None:
        return next((r for r in self.trials if r["trial"] == trial_id), None)

    def trial_ids(self) -> tuple:
        return tuple(r["trial"] for r in self.trials)

    def arms_of(self, trial_id: str) -> tuple:
        return tuple(r for r in self.arms if r["trial"] == trial_id)

    def outcomes_of(self, trial_id: str, outcome: str | None = None) -> tuple:
        return tuple(r for r in self.outcomes if r["trial"] == trial_id
                     and (outcome is None or r["outcome"] == outcome))


def default_data_dir() -> Path:
    """The extraction folder: $HATMETA_DATA_DIR, else the project's data/extracted/ (hatmeta.project)."""
    import os

    from .project import project_root

    env = os.environ.get("HATMETA_DATA_DIR")
    if env:
        return Path(env)
    return project_root() / "data" / "extracted"


# ---------------------------------------------------------------- reading


def read_csv_rows(path, errors: list, label=None, sniff=False):
    """(header, rows) of a CSV file; problems are appended to ``errors`` (None, [] on failure).

    ``label`` is the file name shown in messages (default: the path). Line numbers are physical
    lines of the file, so a quoted cell spanning lines does not shift later rows' numbers.
    ``sniff``: accept semicolon- or tab-separated input as ``pool --data`` does (new rows typed in
    a spreadsheet); the extraction files themselves are always comma-separated.
    """
    path = Path(path)
    name = str(label if label is not None else path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        errors.append(InputError("file not found", file=name))
        return None, []
    except IsADirectoryError:
        errors.append(InputError("is a folder, expected a CSV file", file=name))
        return None, []
    except OSError as exc:  # unreadable (permissions), a symbolic-link loop, a name too long
        errors.append(InputError(f"cannot read the file ({exc.strerror or exc})", file=name))
        return None, []
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        errors.append(InputError("not UTF-8 text", file=name, line=line))
        return None, []
    if text.startswith("\ufeff"):
        text = text[1:]
    delimiter = ","
    if sniff:
        from ..io.trial_table import _delimiter

        delimiter = _delimiter(text)
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter)
    header, rows, previous_end = None, [], 0
    try:
        for cells in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # blank line
            if header is None:
                header = [c.strip() for c in cells]
                header_line = line
                continue
            rows.append((line, cells))
    except csv.Error as exc:
        errors.append(InputError(f"not a readable CSV file ({exc})", file=name, line=previous_end + 1))
        return None, []
    if header is None:
        errors.append(InputError("empty file: expected a header row", file=name, line=1))
        return None, []
    if header_line != 1:
        errors.append(InputError("the header must be on line 1", file=name, line=header_line))
    return header, rows


def check_header(header, schema_name, file, errors) -> bool:
    """Every schema column present once; returns False when rows cannot be read by name."""
    ok = True
    seen = set()
    for name in header:
        if not name:
            errors.append(InputError("empty column name in header", file=file, line=1))
            ok = False
        elif name in seen:
            errors.append(InputError("duplicate column name", file=file, line=1, column=name))
            ok = False
        seen.add(name)
    for col in SCHEMA[schema_name]:
        if col.name not in seen:
            errors.append(InputError(f"missing column (the {schema_name} layout needs "
                                     f"{', '.join(c.name for c in SCHEMA[schema_name])})",
                                     file=file, line=1, column=col.name))
            ok = False
    return ok


def rows_from_cells(header, raw_rows, file, errors) -> list:
    """Row objects for rows with the header's number of fields; others become errors."""
    out = []
    for line, cells in raw_rows:
        if len(cells) != len(header):
            errors.append(InputError(f"expected {len(header)} fields, found {len(cells)}", file=file, line=line))
            continue
        out.append(Row(file=file, line=line, values={h: c.strip() for h, c in zip(header, cells)}))
    return out


# ---------------------------------------------------------------- checks


def _check_cell(row: Row, col: Column, errors: list) -> None:
    text = row[col.name]
    err = lambda msg: errors.append(InputError(msg, file=row.file, line=row.line, column=col.name))  # noqa: E731
    if not text:
        if col.required:
            err("required, found an empty cell")
        return
    if col.kind == "id" and not ID_RE.match(text):
        err(f"{text!r} is not a valid code (lower-case letters, digits and _, starting with a letter)")
    elif col.kind == "choice" and text not in col.choices:
        err(f"{text!r} is not one of: {', '.join(col.choices)}")
    elif col.kind in ("int", "number"):
        try:
            if "_" in text:  # float() reads "1_5" as 15
                raise ValueError
            x = float(text)
        except ValueError:
            from ..io.trial_table import decimal_comma_hint

            err(f"not a number: {text!r}{decimal_comma_hint(text)}")
            return
        if not math.isfinite(x):
            err(f"not a finite number: {text!r}")
        elif abs(x) > 1e100 or (x == 0 and re.search(r"^[^eE]*[1-9]", text)) or 0 < abs(x) < 1e-100:
            err(f"outside the magnitudes hatmeta computes with (1e-100 to 1e100): {text}")
        elif col.kind == "int" and abs(x) > 2 ** 53:
            err(f"a whole number above 2^53 cannot be held exactly, got {text}")
        elif col.kind == "int" and not x.is_integer():
            err(f"must be a whole number, got {text}")
        elif col.minimum is not None and x < col.minimum:
            err(f"must be at least {col.minimum:g}, got {text}")
        elif col.positive and x <= 0:
            err(f"must be greater than 0, got {text}")


def _cells_ok(row: Row, columns) -> bool:
    """True when the cells were valid numbers (their own errors are reported elsewhere)."""
    for c in columns:
        try:
            if row[c] and not math.isfinite(float(row[c])):
                return False
        except ValueError:
            return False
    return True


def outcome_kind(row: Row) -> str | None:
    """binary, continuous or rates from the filled cells; None when no figure is given."""
    kinds = outcome_kinds(row)
    return kinds[0] if len(kinds) == 1 else None


def outcome_kinds(row: Row) -> list:
    kinds = []
    if row["events"]:
        kinds.append("binary")
    if row["mean"] or row["sd"]:
        kinds.append("continuous")
    if row["person_time"]:
        kinds.append("rates")
    elif row["count"]:
        kinds.append("count")
    return kinds


def _check_outcome_row(row: Row, errors: list) -> None:
    err = lambda msg, col: errors.append(InputError(msg, file=row.file, line=row.line, column=col))  # noqa: E731
    status = row["status"]
    filled = [c for c in NUMERIC_OUTCOME_COLUMNS if row[c]]
    if status == "not reported":
        if filled:
            err(f"status 'not reported' must leave the figures empty, found {row[filled[0]]!r}", filled[0])
        if not row["note"]:
            err("status 'not reported' needs a note saying where the figure was looked for", "note")
        return
    if status not in ("reported", "derived"):
        return  # the status cell's own error is already listed
    if status == "derived" and not row["derivation"]:
        err("status 'derived' needs a derivation saying how the figure was computed", "derivation")
    kinds = outcome_kinds(row)
    if not kinds:
        err(f"status {status!r} needs figures: n and events (binary), n, mean and sd (continuous) "
            "or count and person_time (rates), or an event count alone", "events")
        return
    if len(kinds) > 1:
        err(f"mixes {' and '.join(kinds)} figures in one row; give each kind its own row",
            KIND_COLUMNS[kinds[0]][-1])
        return
    kind = kinds[0]
    for c in KIND_COLUMNS[kind]:
        if not row[c]:
            err(f"{kind} figures need {', '.join(KIND_COLUMNS[kind])}; this cell is empty", c)
    if not row["timepoint_weeks"]:
        err(f"status {status!r} needs the time point of the figure", "timepoint_weeks")
    if kind == "binary" and row["n"] and row["events"] and _cells_ok(row, ("n", "events")):
        if float(row["events"]) > float(row["n"]):
            err(f"events ({row['events']}) exceed n ({row['n']})", "events")


def check_rows(tables: dict, errors: list) -> None:
    """Cell checks and cross-file checks on rows grouped by schema file name."""
    for name, rows in tables.items():
        for row in rows:
            for col in SCHEMA[name]:
                _check_cell(row, col, errors)
            if name == "outcomes.csv":
                _check_outcome_row(row, errors)

    # Cross-file checks only against files that could be read (no cascade of follow-on errors).
    have_trials, have_arms = "trials.csv" in tables, "arms.csv" in tables
    trials = {}
    for row in tables.get("trials.csv", ()):
        tid = row["trial"]
        if tid in trials:
            first = trials[tid]
            errors.append(InputError(f"duplicate trial {tid!r} (first on {_where(first, row)})",
                                     file=row.file, line=row.line, column="trial"))
        else:
            trials[tid] = row

    arms = {}
    arm_total = {}
    for row in tables.get("arms.csv", ()):
        tid, arm = row["trial"], row["arm"]
        if have_trials and tid and tid not in trials:
            errors.append(InputError(f"unknown trial {tid!r}: not in trials.csv", file=row.file, line=row.line,
                                     column="trial"))
            continue
        if (tid, arm) in arms:
            errors.append(InputError(f"duplicate arm {arm!r} of {tid} (first on {_where(arms[(tid, arm)], row)})",
                                     file=row.file, line=row.line, column="arm"))
            continue
        arms[(tid, arm)] = row
        n = _int_or_none(row["n_randomised"])
        if n is not None and tid in trials:
            arm_total[tid] = arm_total.get(tid, 0) + n
            total = _int_or_none(trials[tid]["n_randomised"])
            if total is not None and arm_total[tid] > total:
                errors.append(InputError(
                    f"arm sizes of {tid} add up to {arm_total[tid]}, more than the {total} randomised "
                    f"(trials.csv line {trials[tid].line})", file=row.file, line=row.line, column="n_randomised"))
    if have_arms:
        with_arms = {tid for tid, _ in arms}
        for tid, row in trials.items():
            if tid not in with_arms:
                errors.append(InputError(f"trial {tid!r} has no arms in arms.csv", file=row.file, line=row.line,
                                         column="trial"))

    seen = {}
    for row in tables.get("outcomes.csv", ()):
        tid, arm = row["trial"], row["arm"]
        if have_trials and tid and tid not in trials:
            errors.append(InputError(f"unknown trial {tid!r}: not in trials.csv", file=row.file, line=row.line,
                                     column="trial"))
            continue
        if have_arms and arm and (tid, arm) not in arms:
            known = ", ".join(a for t, a in arms if t == tid) or "none"
            errors.append(InputError(f"unknown arm {arm!r} of {tid} (arms.csv has: {known})", file=row.file,
                                     line=row.line, column="arm"))
            continue
        key = (tid, row["outcome"], row["definition"].lower(), arm, _number_key(row["timepoint_weeks"]))
        if key in seen:
            errors.append(InputError(
                f"duplicate row: same trial, outcome, definition, arm and time point as {_where(seen[key], row)}",
                file=row.file, line=row.line, column="outcome"))
            continue
        seen[key] = row
        arm_row = arms.get((tid, arm))
        n, arm_n = _int_or_none(row["n"]), _int_or_none(arm_row["n_randomised"]) if arm_row else None
        if n is not None and arm_n is not None and n > arm_n:
            errors.append(InputError(
                f"n ({n}) exceeds the {arm_n} randomised to arm {arm} "
                f"({_where(arm_row, row)})", file=row.file, line=row.line, column="n"))

    for row in tables.get("discrepancies.csv", ()):
        tid = row["trial"]
        if have_trials and tid and tid not in trials:
            errors.append(InputError(f"unknown trial {tid!r}: not in trials.csv", file=row.file, line=row.line,
                                     column="trial"))


def _where(first: Row, row: Row) -> str:
    return f"line {first.line}" if first.file == row.file else f"{Path(first.file).name} line {first.line}"


def _int_or_none(text):
    try:
        x = float(text)
    except (TypeError, ValueError):
        return None
    return int(x) if math.isfinite(x) and x.is_integer() else None


def _number_key(text):
    try:
        return float(text)
    except ValueError:
        return text


# ---------------------------------------------------------------- entry points


def _read_dir(data_dir: Path, errors: list):
    from .transaction import locked, settle

    if not data_dir.is_dir():
        return _read_files(data_dir, errors)
    # Under the folder's lock, so that no add-trial renames a file between two reads.
    with locked(data_dir, optional=True):
        settle(data_dir, FILES)  # complete or clean up a write that was killed, before reading
        return _read_files(data_dir, errors)


def _read_files(data_dir: Path, errors: list):
    tables, headers, paths = {}, {}, {}
    for name in FILES:
        path = data_dir / name
        paths[name] = path
        if name not in REQUIRED_FILES and not path.exists():
            continue
        header, raw = read_csv_rows(path, errors)
        if header is None:
            continue
        headers[name] = header
        if not check_header(header, name, str(path), errors):
            continue
        tables[name] = rows_from_cells(header, raw, str(path), errors)
    return tables, headers, paths


def _sorted(errors: list, order: list) -> list:
    rank = {str(p): i for i, p in enumerate(order)}
    return sorted(errors, key=lambda e: (rank.get(str(e.file), len(rank)), e.line or 0))


def validate_extraction(data_dir=None) -> list:
    """Every problem in the extraction, as InputErrors in file then line order (empty if valid)."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if not data_dir.is_dir():
        return [InputError("extraction folder not found", file=str(data_dir))]
    errors: list = []
    tables, _, paths = _read_dir(data_dir, errors)
    check_rows(tables, errors)
    _appraisal(data_dir, tables, errors)
    return _sorted(errors, [paths[n] for n in FILES])


def _appraisal(data_dir: Path, tables: dict, errors: list):
    """The optional appraisal files of the folder (risk of bias, published reviews, searches), checked
    with the rest so that `hatmeta validate` names their problems too."""
    from .appraisal import check_appraisal

    ids = [r["trial"] for r in tables.get("trials.csv", ())]
    appraisal, problems = check_appraisal(data_dir, trial_ids=ids)
    errors.extend(problems)
    return appraisal


def load_extraction(data_dir=None) -> Extraction:
    """The validated extraction; raises the first InputError (file, line, column) if anything is wrong."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if not data_dir.is_dir():
        raise InputError("extraction folder not found", file=str(data_dir))
    errors: list = []
    tables, headers, paths = _read_dir(data_dir, errors)
    check_rows(tables, errors)
    appraisal = _appraisal(data_dir, tables, errors)
    if errors:
        first = _sorted(errors, [paths[n] for n in FILES])[0]
        if len(errors) > 1:
            first = InputError(f"{first.message} (and {len(errors) - 1} more problem(s): run 'hatmeta validate')",
                               file=first.file, line=first.line, column=first.column)
        raise first
    return Extraction(data_dir=data_dir, trials=tuple(tables["trials.csv"]), arms=tuple(tables["arms.csv"]),
                      outcomes=tuple(tables["outcomes.csv"]),
                      discrepancies=tuple(tables.get("discrepancies.csv", ())), headers=headers, paths=paths,
                      appraisal=appraisal)
