"""Append a new trial's rows to the extraction: validate first, then write atomically.

Existing rows are never rewritten: each file's new content is its old bytes followed by the new
lines (in the file's own column order and line ending). The folder's lock is held from the
read that validates to the last rename, and the files are replaced through a journal
(hatmeta.review.transaction), so a killed write leaves the old or the new extraction once the next
command has run.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..errors import InputError
from .extraction import (
    FILES,
    SCHEMA,
    Row,
    _read_dir,
    _sorted,
    check_header,
    check_rows,
    default_data_dir,
    read_csv_rows,
    rows_from_cells,
)


def _layout_of(header) -> str | None:
    """Which extraction file a CSV header belongs to (the schema whose columns it holds best)."""
    names = set(header)
    best = max(FILES, key=lambda f: (sum(c.name in names for c in SCHEMA[f]) / len(SCHEMA[f]),
                                     -len(SCHEMA[f])))
    first = [c.name for c in SCHEMA[best]][:2]
    return best if all(n in names for n in first) else None


def read_new_rows(sources, errors: list | None = None) -> dict:
    """New rows from --from inputs: a folder holding trials.csv, arms.csv, ... or CSV files whose
    header says which extraction file they belong to (comma-, semicolon- or tab-separated, as
    ``pool --data`` reads). Returns {file name: [Row]}. Problems (named with the input file and
    line) are appended to ``errors`` when it is given, so all can be listed; else the first is raised."""
    collect = errors if errors is not None else []
    files = []
    for src in sources:
        src = Path(src)
        if src.is_dir():
            found = [src / n for n in FILES if (src / n).is_file()]
            if not found:
                collect.append(InputError(f"no {', '.join(FILES)} in this folder", file=str(src)))
            files.extend(found)
        else:
            files.append(src)
    new: dict = {}
    for path in files:
        problems: list = []
        header, raw = read_csv_rows(path, problems, sniff=True)
        if header is None:
            collect.extend(problems)
            continue
        name = path.name if path.name in FILES else _layout_of(header)
        if name is None:
            problems.append(InputError(
                "cannot tell which extraction file these rows belong to: the header should start like "
                "trials.csv (trial,short_name,...), arms.csv (trial,arm,...), outcomes.csv (trial,outcome,...) "
                "or discrepancies.csv (trial,outcome,field,...)", file=str(path), line=1))
        elif check_header(header, name, str(path), problems):
            new.setdefault(name, []).extend(rows_from_cells(header, raw, str(path), problems))
        collect.extend(problems)
    if errors is None and collect:
        raise collect[0]
    return new


def check_new_rows(data_dir, new: dict) -> tuple:
    """All problems with appending ``new`` ({file name: [Row]}) to the extraction in ``data_dir``.

    Returns (errors, existing headers, paths). The existing extraction must itself be valid;
    the would-be extraction (old rows + new rows) is validated as a whole.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    errors: list = []
    if not data_dir.is_dir():
        return [InputError("extraction folder not found", file=str(data_dir))], {}, {}
    tables, headers, paths = _read_dir(data_dir, errors)
    check_rows(tables, errors)
    if errors:
        first = _sorted(errors, [paths[n] for n in FILES])[0]
        return [InputError(f"the extraction is invalid, fix it first ('hatmeta validate'): {first.message}",
                           file=first.file, line=first.line, column=first.column)], headers, paths
    if not new.get("trials.csv"):
        return [InputError("add-trial needs a trials.csv row for the new trial", file="--from")], headers, paths
    existing = {r["trial"] for r in tables["trials.csv"]}
    new_ids = {r["trial"] for r in new["trials.csv"]}
    for name in FILES:
        header = headers.get(name)
        for row in new.get(name, ()) if name != "trials.csv" else ():
            if row["trial"] in existing and row["trial"] not in new_ids:
                errors.append(InputError(f"trial {row['trial']!r} already exists: add-trial only adds rows of "
                                         "new trials", file=row.file, line=row.line, column="trial"))
        if header is not None:
            for row in new.get(name, ())[:1]:
                lost = [c for c in row.values if c not in header]
                if lost:
                    errors.append(InputError(f"column not in {paths[name]} (it would be lost)", file=row.file,
                                             line=1, column=lost[0]))
    combined = {name: list(tables.get(name, ())) + list(new.get(name, ())) for name in FILES
                if name in tables or new.get(name)}
    check_rows(combined, errors)
    # Report in schema order (trials before arms before outcomes), existing file before new input.
    order = [f for n in FILES for f in [paths[n], *sorted({r.file for r in new.get(n, ())})]]
    return _sorted(errors, order), headers, paths


def _line_ending(data: bytes) -> str:
    """The file's own line ending (that of its first line), so appended lines match."""
    end = data.find(b"\n")
    return "\r\n" if end > 0 and data[end - 1:end] == b"\r" else "\n"


def render_append(path: Path, header, rows) -> bytes:
    """The file's current bytes followed by ``rows`` in ``header`` order (new file: header first)."""
    old = path.read_bytes() if path.exists() else b""
    ending = _line_ending(old) if old else "\n"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=ending)
    if not old:
        writer.writerow(header)
    for row in rows:
        writer.writerow([row[c] for c in header])
    prefix = old if not old or old.endswith(b"\n") else old + ending.encode()
    return prefix + buf.getvalue().encode("utf-8")


def write_atomically(contents: dict) -> None:
    """Replace several files ({Path: bytes}) so that either all change or none does (under the folder's
    lock, through a journal: hatmeta.review.transaction)."""
    from .transaction import commit, locked

    folder = Path(next(iter(contents))).parent
    with locked(folder):
        commit(folder, contents)


def add_trial(new: dict, data_dir=None, dry_run: bool = False) -> dict:
    """Validate and append ``new`` ({file name: [Row]}); returns {file name: number of rows added}.

    Raises the first InputError (all of them are in ``check_new_rows``) and then writes nothing.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if dry_run:
        return _add_trial(new, data_dir, True)
    from .transaction import locked

    with locked(data_dir):  # from the read that validates to the last rename: no other writer in between
        return _add_trial(new, data_dir, False)


def _add_trial(new: dict, data_dir: Path, dry_run: bool) -> dict:
    errors, headers, paths = check_new_rows(data_dir, new)
    if errors:
        first = errors[0]
        if len(errors) > 1:
            first = InputError(f"{first.message} (and {len(errors) - 1} more problem(s))", file=first.file,
                               line=first.line, column=first.column)
        raise first
    contents = {}
    for name in FILES:
        rows = new.get(name)
        if rows:
            header = headers.get(name) or [c.name for c in SCHEMA[name]]
            contents[paths[name]] = render_append(paths[name], header, rows)
    if not dry_run:
        from .transaction import commit

        commit(data_dir, contents)
    return {name: len(new[name]) for name in FILES if new.get(name)}


def would_be_extraction(new: dict, data_dir=None):
    """The extraction as it would be with ``new`` appended, in memory (a dry run writes nothing, not even
    a scratch copy that a killed run would leave behind)."""
    from dataclasses import replace

    from .extraction import load_extraction

    ex = load_extraction(data_dir)
    return replace(ex, trials=ex.trials + tuple(new.get("trials.csv", ())),
                   arms=ex.arms + tuple(new.get("arms.csv", ())),
                   outcomes=ex.outcomes + tuple(new.get("outcomes.csv", ())),
                   discrepancies=ex.discrepancies + tuple(new.get("discrepancies.csv", ())))


def rows_from_dicts(name: str, records, label: str = "<prompt>") -> list:
    """Rows for ``name`` from plain dicts (guided entry); line = entry number, for messages."""
    return [Row(file=f"{label} {name}", line=i, values={c.name: str(rec.get(c.name, "")).strip()
                                                         for c in SCHEMA[name]})
            for i, rec in enumerate(records, start=1)]


def size_warnings(new: dict) -> list:
    """Plausibility warnings on a new trial's sizes (not errors: a trial may randomise arms that no
    analysis uses, or report an arm's size only in part): arm sizes that do not add up to the
    trial's n_randomised, arms without a size, and outcome n above its arm's size."""
    out = []
    arms = new.get("arms.csv", ())
    for t in new.get("trials.csv", ()):
        tid, total = t["trial"], t["n_randomised"]
        own = [a for a in arms if a["trial"] == tid]
        sized = [a for a in own if a["n_randomised"]]
        if total and sized and len(sized) == len(own):
            s = sum(int(float(a["n_randomised"])) for a in sized)
            if s != int(float(total)):
                out.append(f"{tid}: arm sizes add up to {s} ({' + '.join(a['n_randomised'] for a in sized)}), "
                           f"not the {int(float(total))} randomised in trials.csv")
        elif total and own and len(sized) < len(own):
            out.append(f"{tid}: no n_randomised for arm(s) "
                       + ", ".join(a["arm"] for a in own if not a["n_randomised"])
                       + f"; cannot check that the arms add up to {total}")
    size = {(a["trial"], a["arm"]): a["n_randomised"] for a in arms}
    for o in new.get("outcomes.csv", ()):
        arm_n = size.get((o["trial"], o["arm"]))
        if o["n"] and arm_n and float(o["n"]) > float(arm_n):
            out.append(f"{o.file}:{o.line}: {o['trial']} {o['outcome']} arm {o['arm']}: n = {o['n']} exceeds the "
                       f"{arm_n} randomised to the arm")
    return out
