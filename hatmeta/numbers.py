"""The one number formatter of figures, tables and text, so that they never disagree.

P-values as RevMan 5 prints them: two decimals from 0.01, three from 0.001, four from 0.0001, then
'P < 0.0001' and 'P < 0.00001'. Estimates with two decimals (Cochrane's convention) unless the
values are small (risk differences, rates): then enough decimals for two significant digits, so
that an interval never prints as '-0.00 [-0.00, -0.00]'. Nothing here computes statistics.
"""

from __future__ import annotations

import math
from typing import TypeGuard


def _finite(x: object) -> TypeGuard[int | float]:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def p_text(p: float | None) -> str:
    """'= 0.04', '= 0.003', '= 0.0004', '< 0.0001', '< 0.00001' (without the leading 'P ')."""
    if not _finite(p):
        return "= NA"
    if p < 0.00001:
        return "< 0.00001"
    if p < 0.0001:
        return "< 0.0001"
    for digits, floor in ((2, 0.01), (3, 0.001), (4, 0.0001)):
        if p >= floor:
            text = f"{p:.{digits}f}"
            # 0.0096 rounds up to 0.010 at three decimals: print it the way the tier above would.
            return f"= {p:.2f}" if digits > 2 and float(text) >= 0.01 else f"= {text}"
    return "= NA"  # unreachable


def fmt_p(p: float | None) -> str:
    """'P = 0.04', 'P < 0.0001': RevMan's form, for figures, tables and text alike."""
    return "P " + p_text(p)


def p_bare(p: float | None) -> str:
    """P for running text and text tables, without 'P': '0.04', '<0.0001' (``p_text``'s digits)."""
    text = p_text(p)
    return "NA" if text == "= NA" else text[2:] if text.startswith("= ") else text.replace(" ", "")


def decimals(*values: float | None) -> int:
    """Decimals for a set of values shown together (an estimate and its interval): two, or more when
    the largest magnitude is below 0.1, so the smallest still shows two significant digits."""
    finite = [abs(v) for v in values if _finite(v)]
    top = max(finite, default=0.0)
    if top == 0 or top >= 0.1:
        return 2
    return min(8, 1 - math.floor(math.log10(top)))


def num(x: float | None, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals, never '-0.00' (a value that rounds to zero has no sign)."""
    if not _finite(x):
        return "NA"
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def est_ci(est: float | None, lo: float | None, hi: float | None, sep: str = ", ", brackets: str = "[]") -> str:
    """'1.29 [0.73, 2.26]' with decimals chosen from the magnitude of the three values (natural scale)."""
    d = decimals(est, lo, hi)
    a, b = tuple(brackets)
    return f"{num(est, d)} {a}{num(lo, d)}{sep}{num(hi, d)}{b}"


def interval(lo: float | None, hi: float | None) -> str:
    """'[0.73, 2.26]' (a prediction interval)."""
    d = decimals(lo, hi)
    return f"[{num(lo, d)}, {num(hi, d)}]"


def tau2_text(t: float | None) -> str:
    """tau² with two decimals, or two significant digits when smaller than 0.01 (so a real but small
    tau² on the risk-difference scale is not shown as 0.00 beside I² = 96%); exactly 0 is '0'."""
    if not _finite(t):
        return "NA"
    if t == 0:
        return "0"
    return num(t, 2 if abs(t) >= 0.01 else 1 - math.floor(math.log10(abs(t))))


def level_text(level: float) -> str:
    """A confidence level as a label: 0.95 -> "95%", 0.9 -> "90%", 0.999 -> "99.9%"."""
    return f"{100 * float(level):.10g}%"
