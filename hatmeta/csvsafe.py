"""Spreadsheet formula neutralisation for every CSV hatmeta writes (OWASP, "CSV Injection").

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula by
Excel, LibreOffice and Google Sheets when the file is opened (a study named ``=HYPERLINK(...)``, an
author ``=1+2``). OWASP's rule is to prefix such a cell with a single quote, which spreadsheets show as
text; hatmeta does so.

One exception, chosen so that numbers stay numbers: a cell that is a plain decimal number with a sign
(``-0.5``, ``+3``, ``-1.2e-05``) is left alone. A spreadsheet reads it as that number, not as a formula,
and prefixing it would turn every negative estimate into text. Anything else after the sign
(``-1+2``, ``-A1``, ``-inf``) is prefixed. The prefix is visible to programs reading the CSV: a label
that starts with one of those characters comes back with a leading ``'``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

_T = TypeVar("_T")

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")


def cell(value: _T) -> _T | str:
    """``value`` safe to open in a spreadsheet (see the module docstring); non-text values as they are."""
    if isinstance(value, str) and value[:1] in TRIGGERS and value and not _NUMBER.match(value):
        return "'" + value
    return value


def row(values: Iterable[Any]) -> list[Any]:
    return [cell(v) for v in values]


def rows(table: Iterable[Iterable[Any]]) -> Iterator[list[Any]]:
    return (row(r) for r in table)


def any_trigger(joined: str, sep: str = "\x00") -> bool:
    """Whether any of the cells joined by ``sep`` starts with a trigger (a fast test at C speed)."""
    return (joined[:1] in TRIGGERS and bool(joined)) or any(sep + t in joined for t in TRIGGERS)
