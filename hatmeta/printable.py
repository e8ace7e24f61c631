"""Labels made safe to print: control characters and bidirectional overrides shown as escapes.

A study name read from a file may hold a quoted newline (which would print as a forged table line),
a carriage return, an escape sequence for the terminal, or a right-to-left override (U+202E) that makes
the rest of the line read backwards. Text output shows each as a visible escape instead
(``\\n``, ``\\x1b``, ``\\u202e``); JSON keeps the name as it is (JSON escapes control characters itself).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# C0 controls and DEL and C1 controls; the bidirectional embeddings, overrides, isolates and marks;
# the Unicode line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` with every control character and bidirectional control shown as an escape."""
    text = str(text)
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def join_lines(lines: Iterable[object]) -> str:
    """Lines of text output joined by newlines, each line's own characters made printable."""
    return "\n".join(printable(line) for line in lines)
