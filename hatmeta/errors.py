"""User-facing errors: one line naming the file, the row (line number) and the column, or the
command-line option or argument at fault."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class InputError(Exception):
    """A mistake in the user's input. The command line prints it on one line and exits 2.

    ``column``: a column of an input file; ``option``: a command-line option or argument
    ('--measure', 'ANALYSIS'), printed as "option '--measure': ..." (or "argument 'ANALYSIS': ...").
    """

    # What the command line prints under the one-line error (a refusal, ``NotPooled``, fills them in);
    # empty for every other input error.
    details: str = ""
    details_full: str = ""

    def __init__(self, message: str, file: object = None, line: int | None = None, column: str | None = None,
                 option: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        # Older call sites pass options as column='--measure' or 'ANALYSIS': those are options too.
        if option is None and column is not None and _is_option(column):
            option = column
        self.option = option

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = str(self.file)
            if where in IN_MEMORY:
                # In-memory tables have rows, not lines: "<DataFrame>: row 2" is the frame's row index
                # (the header, row -1, is named by its column alone).
                where += f": row {self.line}" if self.line is not None and self.line >= 0 else ""
            elif self.line is not None:
                where += f":{self.line}"
            where += ": "
        if self.option is not None:
            kind = "option" if str(self.option).startswith("-") else "argument"
            col = f"{kind} '{self.option}': "
        else:
            col = f"column '{self.column}': " if self.column is not None else ""
        return f"{where}{col}{self.message}"


def _is_option(name: object) -> bool:
    """'--measure' (an option) or 'ANALYSIS' / 'FILE' (a command-line argument), not a data column."""
    name = str(name)
    return name.startswith("-") or name in ARGUMENTS


ARGUMENTS = ("ANALYSIS", "FILE", "REF", "NAME")  # click's metavars of positional arguments
IN_MEMORY = ("<DataFrame>", "<dict>")  # the "file" of a table given as a pandas DataFrame or a dict of columns


class NotPooled(InputError):
    """An analysis no trial can enter: a user-facing refusal that carries what was left out.

    ``omitted``: [(trial, reason)]; ``details``: extra lines the command line prints under the
    one-line error (the gaps, de-duplicated), filled in by the API, which knows the evidence."""

    def __init__(self, message: str, omitted: Iterable[tuple[str, str]] = (), file: object = None,
                 **kw: Any) -> None:
        super().__init__(message, file=file, **kw)
        self.omitted = tuple(omitted)
        self.details = ""  # a few short lines, grouped by kind
        self.details_full = ""  # one line per trial's note (-v)
        self.gaps: list[dict[str, Any]] = []
        self.published: list[dict[str, Any]] = []
