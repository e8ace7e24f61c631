"""Expected failures that are not InputErrors, as one line for the command line (exit 2).

An unreadable, missing or full disk, a name too long or a symbolic-link loop (OSError), text that is not
UTF-8 (UnicodeError), input nested too deeply for the parser (RecursionError), out of memory
(MemoryError), malformed JSON or TOML: none is a bug in hatmeta, so none gets a traceback. ``describe``
returns None for anything else, which the command line shows as a bug to report.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import json


def describe(exc: BaseException) -> str | None:
    """One line for an expected failure, or None for a genuine bug."""
    if isinstance(exc, OSError):
        where = exc.filename if getattr(exc, "filename", None) is not None else None
        what = exc.strerror or str(exc) or type(exc).__name__
        if exc.errno in (errno.ENOSPC, errno.EDQUOT if hasattr(errno, "EDQUOT") else errno.ENOSPC):
            what += " (the disk is full)"
        return f"{where}: {what}" if where is not None else what
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start}: {exc.reason})"
    if isinstance(exc, UnicodeError):
        return f"text that cannot be encoded or decoded ({exc})"
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to read"
    if isinstance(exc, MemoryError):
        return "out of memory (the input or a requested size is too large for this machine)"
    name = type(exc).__name__
    if name == "JSONDecodeError":  # the json module's, or one with its fields (simplejson's)
        j = cast("json.JSONDecodeError", exc)
        return f"not valid JSON: {j.msg} (line {j.lineno}, column {j.colno})"
    if name == "TOMLDecodeError":
        return f"not valid TOML: {exc}"
    return None
