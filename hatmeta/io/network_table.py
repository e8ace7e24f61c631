"""Read and validate a network table (CSV): one row per arm or one row per comparison.

Layouts (column names are case-insensitive):

- ``arm_binary``: study, treatment, events, n (one row per arm)
- ``arm_continuous``: study, treatment, mean, sd, n (one row per arm)
- ``contrast``: study, treat1, treat2, yi, se (one row per comparison, analysis scale; a
  multi-arm study gives every pair of its treatments, as netmeta's ``pairwise()`` does)

netmeta's and metafor's names are accepted where the hatmeta name is absent (studlab, treat,
event, TE, seTE, sei). CSVs as R's ``write.csv`` writes them (quoted strings, names with
commas, NA) are read as they are. Every mistake is an InputError naming the file, the line
and the column. Only the standard library and NumPy are used, so the command line starts fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from ..errors import InputError
from .trial_table import MISSING, _cell_text, _is_frame, _parse_number, read_rows

LAYOUTS = {
    "arm_binary": ("study", "treatment", "events", "n"),
    "arm_continuous": ("study", "treatment", "mean", "sd", "n"),
    "contrast": ("study", "treat1", "treat2", "yi", "se"),
}
ALIASES = {"studlab": "study", "treat": "treatment", "event": "events", "te": "yi", "sete": "se", "sei": "se"}
NUMERIC = {"events", "n", "mean", "sd", "yi", "se"}

if TYPE_CHECKING:
    import os

    import pandas as pd
    from numpy.typing import NDArray

    NetworkSource = str | os.PathLike[str] | pd.DataFrame | Mapping[str, Sequence[Any]]


@dataclass(frozen=True)
class NetworkTable:
    """Validated rows of a network table.

    ``text`` maps the text columns (study, treatment or treat1/treat2) to their values and
    ``columns`` the numeric ones to float arrays, one value per row; ``lines`` holds each row's
    line number in ``path`` (for errors).
    """

    path: str
    layout: str
    text: dict[str, tuple[str, ...]]
    columns: dict[str, NDArray[np.float64]]
    lines: tuple[int, ...]

    @property
    def rows(self) -> int:
        return len(self.lines)

    def line_of(self, i: int) -> int:
        return self.lines[i]


def read_network(source: NetworkSource) -> NetworkTable:
    """Read a network table from a CSV path, a pandas DataFrame or a dict of columns.

    Raises InputError (file, line, column) on the first mistake: a missing column, an empty
    study or treatment name, a cell that is not a number, a count that is not whole, events
    above n, an SD or SE that is not positive, a treatment twice in one study.
    """
    import os

    if _is_frame(source) or isinstance(source, dict):
        src: Any = source
        if _is_frame(src):
            names = [str(c) for c in src.columns]
            cols = [src[c].tolist() for c in src.columns]
            path = "<DataFrame>"
        else:
            names = [str(c) for c in src]
            cols = [list(v) for v in src.values()]
            path = "<dict>"
        rows = [names] + [[_cell(x) for x in row] for row in zip(*cols)]
        return network_from_rows(rows, path)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"read_network expects a CSV path, a pandas DataFrame or a dict of columns, "
                        f"got {type(source).__name__}")
    path = str(source)
    return network_from_rows(read_rows(path), path)


def _cell(x: object) -> str:
    # NumPy scalars first: np.float64 is a float whose repr is "np.float64(...)" under NumPy 2.
    if isinstance(x, np.generic):
        x = x.item()
    return _cell_text(x)


def network_from_rows(rows: Sequence[Sequence[str]], path: str = "<table>") -> NetworkTable:
    """A NetworkTable from CSV rows (header first, on line 1)."""
    if not rows or not any(c.strip() for c in rows[0]):
        raise InputError("empty file: expected a header row", file=path, line=1)
    header = [h.strip().lower() for h in rows[0]]
    if header[0] == "" and any(header[1:]):
        header[0] = "_rownames"  # R's write.csv with row names
    seen = set()
    for j, h in enumerate(header):
        if not h:
            raise InputError(f"empty column name in header (column {j + 1})", file=path, line=1)
        if h in seen:
            raise InputError("duplicate column name", file=path, line=1, column=h)
        seen.add(h)
    for j, h in enumerate(header):
        target = ALIASES.get(h)
        if target and target not in seen:
            header[j] = target
            seen.add(target)
    present = set(header)
    layout = next((lay for lay in ("arm_continuous", "arm_binary", "contrast")
                   if all(c in present for c in LAYOUTS[lay])), None)
    if layout is None:
        best = max(LAYOUTS, key=lambda lay: sum(c in present for c in LAYOUTS[lay]) / len(LAYOUTS[lay]))
        missing = [c for c in LAYOUTS[best] if c not in present]
        raise InputError(f"missing column(s) {', '.join(missing)}: a network table needs "
                         + "; or ".join(", ".join(cols) for cols in LAYOUTS.values()),
                         file=path, line=1, column=missing[0])
    pos = {h: j for j, h in enumerate(header)}
    data, lines = [], []
    for r, row in enumerate(rows[1:]):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != len(header):
            raise InputError(f"expected {len(header)} fields, found {len(row)}", file=path, line=r + 2)
        data.append(row)
        lines.append(r + 2)
    if not data:
        raise InputError("no data rows", file=path, line=2)
    text, columns = {}, {}
    for c in LAYOUTS[layout]:
        cells = [row[pos[c]].strip() for row in data]
        if c in NUMERIC:
            try:
                values = np.asarray(cells, dtype=float)
                ok = bool(np.isfinite(values).all())
            except ValueError:
                ok = False
            if not ok:
                for t, ln in zip(cells, lines):
                    if t.lower() in MISSING:  # an arm or comparison without its number: say so, drop nothing
                        raise InputError(f"missing value{' (' + t + ')' if t else ''}: every row needs its {c}; "
                                         f"leave the row out of the table or fill it in", file=path, line=ln, column=c)
                values = np.array([_parse_number(t, path, ln, c) for t, ln in zip(cells, lines)])
            columns[c] = values
        else:
            for t, ln in zip(cells, lines):
                if t.lower() in MISSING:
                    raise InputError(f"empty {c} name" if not t else f"missing {c} ({t})", file=path, line=ln,
                                     column=c)
            text[c] = tuple(cells)
    table = NetworkTable(path=path, layout=layout, text=text, columns=columns, lines=tuple(lines))
    _check(table)
    return table


def _check(t: NetworkTable) -> None:
    cols, path = t.columns, t.path

    def fail(i: int, column: str, message: str) -> NoReturn:
        raise InputError(message, file=path, line=t.line_of(i), column=column)

    checks = []
    if "n" in cols:
        checks += [("n", cols["n"] != np.floor(cols["n"]), "must be a whole number, got {x:g}"),
                   ("n", cols["n"] < 1, "must be at least 1, got {x:g}")]
    if "events" in cols:
        e = cols["events"]
        checks += [("events", e != np.floor(e), "must be a whole number, got {x:g}"),
                   ("events", e < 0, "must not be negative, got {x:g}")]
    for c in ("sd", "se"):
        if c in cols:
            checks.append((c, cols[c] <= 0, "must be greater than 0, got {x:g}"))
    first = [(int(np.flatnonzero(bad)[0]), k, c, msg) for k, (c, bad, msg) in enumerate(checks) if bad.any()]
    if first:
        i, _, c, msg = min(first)
        fail(i, c, msg.format(x=cols[c][i]))
    if "events" in cols:
        over = np.flatnonzero(cols["events"] > cols["n"])
        if over.size:
            i = int(over[0])
            fail(i, "events", f"events ({cols['events'][i]:g}) exceed n ({cols['n'][i]:g})")
    study = t.text["study"]
    if t.layout == "contrast":
        t1, t2 = t.text["treat1"], t.text["treat2"]
        seen: dict[tuple[str, frozenset[str]], int] = {}
        for i in range(t.rows):
            if t1[i] == t2[i]:
                fail(i, "treat2", f"a comparison of {t1[i]!r} with itself")
            key = (study[i], frozenset((t1[i], t2[i])))
            if key in seen:
                fail(i, "treat2", f"study {study[i]!r} compares {t1[i]!r} and {t2[i]!r} twice "
                     f"(also on line {t.line_of(seen[key])})")
            seen[key] = i
    else:
        seen_arm: dict[tuple[str, str], int] = {}
        for i, (s, tr) in enumerate(zip(study, t.text["treatment"])):
            if (s, tr) in seen_arm:
                fail(i, "treatment", f"study {s!r} has treatment {tr!r} twice (also on line "
                     f"{t.line_of(seen_arm[(s, tr)])})")
            seen_arm[(s, tr)] = i



# ------------------------------------------------------------------------------------- network helpers
# (used by the frequentist fit and the Bayesian model alike, which cannot import each other)

def r_order(name: str) -> tuple[str, str]:
    """Sort key of treatment names as R's ``sort()`` orders them in a UTF-8 locale (ICU collation:
    letters compared without case first, lower case before upper case on a tie), so that the
    treatment order, and netmeta's comparison labels built from it, are netmeta's."""
    return (name.casefold(), name.swapcase())


def components(n: int, t1: NDArray[np.intp], t2: NDArray[np.intp]) -> list[list[int]]:
    """Connected parts of a graph on treatments 0..n-1 with edges (t1[e], t2[e]), each a sorted
    list of treatment indices, parts ordered by their first treatment."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(t1.tolist(), t2.tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for t in range(n):
        groups.setdefault(find(t), []).append(t)
    return sorted(groups.values(), key=lambda g: g[0])


__all__ = ["NetworkTable", "read_network", "network_from_rows", "LAYOUTS", "r_order", "components"]
