"""Fast input for large tables: a columnar CSV reader and Parquet files (both through pyarrow).

``read_any(path, measure)`` is what ``--data`` calls. Small CSV files (below ``FAST_BYTES``) go to the
exact reader (``trial_table.read_table``), which needs nothing beyond NumPy and starts fast. A large
CSV file is parsed by ``pyarrow.csv`` in C, in parallel; the table then passes the exact reader's own
checks (``check_values``), so a bad value is reported with its file, line and column as before. If
pyarrow cannot read the file as it stands (a cell that is not a number, a short row, blank or
multi-line rows that would shift the line numbers, spaces around names), the exact reader reads it
instead: it either accepts it or names the first bad cell in one line. So the fast path changes
speed only, never what is accepted or what an error says.

pyarrow is the optional extra ``fast`` (``pip install 'hatmeta[fast]'``): without it large CSV files
are read by the exact reader and Parquet input is an input error that says what to install.
"""

from __future__ import annotations

import glob as _glob
import os
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..gc_pause import gc_paused
from . import trial_table as tt

if TYPE_CHECKING:
    from .trial_table import TableSource

# 8 MB (~150,000 rows): below this the exact reader is as quick as importing pyarrow (measured at 4 MB:
# 1.2 s against 1.4 s on a loaded machine; at 47 MB, 10.5 s against 2.3 s).
FAST_BYTES = 8 << 20


def _pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def is_parquet(path: object) -> bool:
    p = str(path)
    return p.lower().endswith((".parquet", ".pq")) or os.path.isdir(p) or any(ch in p for ch in "*?[")


def read_any(path: str | os.PathLike[str] | TableSource, measure: str | None = None, drop_incomplete: bool = False,
             by: str | None = None) -> tt.TrialTable:
    """A TrialTable from a CSV file, a Parquet file, a folder of Parquet files or a glob of them
    (anything else ``trial_table.read_table`` takes, such as a DataFrame, goes to it)."""
    if drop_incomplete and isinstance(path, (str, os.PathLike)) and is_parquet(path):
        raise InputError("--drop-incomplete reads CSV tables; Parquet input has no missing-value text",
                         option="--drop-incomplete")
    if not isinstance(path, (str, os.PathLike)) or drop_incomplete:
        return tt.read_table(path, measure=measure, drop_incomplete=drop_incomplete)
    if is_parquet(path):
        return read_parquet(path, measure, by=by)
    p = str(path)
    try:
        size = os.path.getsize(p)
    except OSError:
        size = 0
    if size >= FAST_BYTES and _pyarrow():
        table = read_csv_fast(p, measure, by=by)
        if table is not None:
            return table
    return tt.read_table(p, measure=measure)


def _header(path, measure):
    """(header as written, delimiter, layout) from the first lines, with the exact reader's header errors."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as fh:
        head = fh.read(1 << 16)
    first = head.split("\n", 1)[0]
    delim = tt._delimiter(first)
    rows = list(csv.reader(head.splitlines()[:3], delimiter=delim))
    # The exact reader on the header and the first rows: header mistakes get their usual message.
    probe = tt.table_from_rows(rows[:2], path=path, measure=measure)
    return rows[0], delim, probe.layout


def read_csv_fast(path: str | os.PathLike[str], measure: str | None = None,
                  by: str | None = None) -> tt.TrialTable | None:
    """The table of a large CSV file parsed by pyarrow, or None where only the exact reader can say
    what is wrong (or read it): the caller then uses that reader."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        names, delim, layout = _header(path, measure)
    except (InputError, UnicodeDecodeError, OSError):
        return None  # the exact reader raises the same error with its own context
    header = [h.strip().lower() for h in names]
    if header != names or any(not h for h in header):
        return None  # names with capitals or spaces: the exact reader normalises them
    wanted = tt.LAYOUTS[layout]
    types = {h: (pa.float64() if h in wanted else pa.string()) for h in header}
    try:
        at = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(block_size=16 << 20),
            parse_options=pcsv.ParseOptions(delimiter=delim, newlines_in_values=False),
            convert_options=pcsv.ConvertOptions(column_types=types, null_values=[], strings_can_be_null=False,
                                                quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        return None
    n = at.num_rows
    # Line numbers are row + 2 only if every row is one line: count the line breaks.
    breaks, last = 0, b"\n"
    with open(path, "rb") as fh:  # in blocks: the whole file at once was 47 MB of peak memory at 10^6 rows
        for block in iter(lambda: fh.read(1 << 22), b""):
            breaks += block.count(b"\n")
            last = block[-1:]
    breaks += 0 if last == b"\n" else 1
    if breaks != n + 1 or n == 0:
        return None
    return _from_arrow(at, header, wanted, layout, path, lines=range(2, n + 2), by=by)


@gc_paused()
def _from_arrow(at, header, wanted, layout, path, lines, by=None):
    """A validated TrialTable from an Arrow table whose columns are the header (lower case).

    Repeated study names (a simulation's replicates reuse s1..s5) are labelled as the exact reader
    labels them ("s1 (1)", "s1 (2)", with the original names in ``given`` and a note), unless ``by``
    (a column, lower case) is given and the names are unique within each of its groups: ``--by`` needs
    them unique only there, so they are kept as they are (what ``batch.pool_groups`` would label
    them group by group), without a label per row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if "study" not in at.column_names or any(c not in at.column_names for c in wanted):
        return None  # metafor's column names or derived columns: the exact reader maps them
    columns = {}
    for c in wanted:
        col = at.column(c)
        if col.null_count:
            return None
        v = _float_column(col) if col.type == pa.float64() else col.to_numpy().astype(float)
        if not np.isfinite(v).all():
            return None
        columns[c] = v
    studies = at.column("study")
    if studies.null_count:
        return None
    trimmed = pc.utf8_trim_whitespace(studies)
    if not pc.all(pc.equal(trimmed, studies)).as_py():
        return None
    studies = studies.to_pylist()
    if "" in studies:
        return None  # the exact reader names the empty name and its line
    repeats = len(set(studies)) != len(studies)
    extra = {}
    for h in header:
        if h not in wanted and h != "study":
            col = at.column(h)
            if col.null_count:
                return None
            extra[h] = tuple(pc.utf8_trim_whitespace(col).to_pylist())
    dup_notes: tuple[str, ...]
    labels, dup_notes = studies, ()
    if repeats and (by not in extra or len(set(zip(extra[by], studies))) != len(studies)):
        labels, dup_notes = tt.label_duplicates(studies)
    table = tt.TrialTable(path=path, layout=layout, studies=tuple(labels), columns=columns, extra=extra,
                          lines=tt._compact(lines), notes=dup_notes, given=tuple(studies) if dup_notes else ())
    tt.check_values(table)  # range checks, with file:line: column on the first bad value
    return table


def _float_column(col) -> np.ndarray:
    """A null-free float64 Arrow column as one NumPy array, read from its data buffers: pyarrow's
    ``to_numpy`` imports pandas (0.3 s), longer than reading a million rows."""
    parts = [np.frombuffer(c.buffers()[1], dtype=np.float64, count=len(c), offset=c.offset * 8)
             for c in col.chunks]
    return np.concatenate(parts) if parts else np.empty(0)


def read_parquet(path: str | os.PathLike[str], measure: str | None = None, by: str | None = None) -> tt.TrialTable:
    """A trial table from a Parquet file, a folder of them, or a glob (files in name order).

    Parquet has no lines: an error names the row (1 = the first data row, counting across files in
    order) in place of the line."""
    if not _pyarrow():
        raise InputError("Parquet input needs pyarrow: pip install 'hatmeta[fast]'", file=path, column="--data")
    import pyarrow as pa

    p, at = _parquet_arrow(path)
    names = [n.strip().lower() for n in at.column_names]
    at = at.rename_columns(names)
    n = at.num_rows
    # The exact reader checks the header and layout (on the first row, converted to text).
    first = [_cell(at.column(h)[0].as_py()) for h in names] if n else []
    probe = tt.table_from_rows([names, first] if n else [names], path=p, measure=measure, first_line=0)
    layout = probe.layout
    wanted = tt.LAYOUTS[layout]
    cast = {}
    for h in names:
        col = at.column(h)
        try:
            cast[h] = col.cast(pa.float64()) if h in wanted else col.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            cast[h] = None
    table = None
    if all(c is not None for c in cast.values()):
        table = _from_arrow(pa.table(cast), names, wanted, layout, p, lines=range(1, n + 1), by=by)
    if table is None:
        # Something the exact reader must name: give it the rows as text (row r is "line" r).
        rows = [names] + [[_cell(x) for x in row] for row in zip(*(at.column(h).to_pylist() for h in names))]
        table = tt.table_from_rows(rows, path=p, measure=measure, first_line=0)
    return table


def _parquet_arrow(path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = str(path)
    if os.path.isdir(p):
        files = sorted(os.path.join(p, f) for f in os.listdir(p) if f.lower().endswith((".parquet", ".pq")))
    elif any(ch in p for ch in "*?["):
        files = sorted(_glob.glob(p))
    else:
        files = [p]
    if not files:
        raise InputError("no Parquet files found", file=p)
    try:
        parts = [pq.read_table(f) for f in files]
        at = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
    except FileNotFoundError:
        raise InputError("file not found", file=p) from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({str(exc).splitlines()[0]})", file=p) from None
    return p, at


def parquet_rows(path: str | os.PathLike[str]) -> list[list[str]]:
    """The rows of Parquet input as text (header first), for the readers that work on rows; row r of
    the data is "line" r."""
    if not _pyarrow():
        raise InputError("Parquet input needs pyarrow: pip install 'hatmeta[fast]'", file=path, column="--data")
    _, at = _parquet_arrow(path)
    names = list(at.column_names)
    return [names] + [[_cell(x) for x in row] for row in zip(*(at.column(h).to_pylist() for h in names))]


def _cell(x):
    if x is None:
        return ""
    if isinstance(x, float):
        return repr(x)
    return str(x)


__all__ = ["read_any", "read_csv_fast", "read_parquet", "parquet_rows", "is_parquet", "FAST_BYTES"]
