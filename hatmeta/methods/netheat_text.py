"""Plain text of a net heat plot (``NetHeat``): what it shows, the designs left out and why, and the
two matrices with the rows and columns numbered in the plot's order (so that they fit 80 columns)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from .netheat import NetHeat


def _matrix(labels: Sequence[str], M: np.ndarray, digits: int) -> list[str]:
    n = len(labels)
    cells = [[f"{M[i, j]:.{digits}f}" for j in range(n)] for i in range(n)]
    w = max([len(str(n)) + 2] + [len(c) for row in cells for c in row])
    head = "     " + "".join(f"[{j + 1}]".rjust(w + 1) for j in range(n))
    return [head] + [f"  [{i + 1}]".ljust(5) + "".join(c.rjust(w + 1) for c in cells[i]) for i in range(n)]


def _wrap(text: str, indent: str = "", later: str | None = None) -> list[str]:
    import textwrap

    return textwrap.wrap(text, 80, initial_indent=indent, subsequent_indent=indent if later is None else later,
                         break_on_hyphens=False)


def _q(x: float) -> str:
    return f"{0.0 if abs(x) < 5e-5 else x:.4f}"


def format_netheat(h: NetHeat) -> str:
    """The summary at 80 columns: model, tau^2, each design's inconsistency share and whether it is
    shown (with the reason if not), the order of the plot, then the matrices."""
    from ..precision import quantised

    h = quantised(h)
    model = (f"random effects, tau^2 = {h.tau2:.4g} ({h.tau2_source})" if h.model == "random"
             else "common-effect model")
    lines = _wrap(f"Net heat plot (Krahn, Binder & König 2013; netmeta's netheat): {model}")
    lines.append(f"Inconsistency between designs: Q = {h.q_between:.2f} on {h.q_between_df} df")
    if not h.available:
        lines += _wrap(f"No net heat plot: {h.reason}.")
    if h.rows:
        lines += _wrap("Designs and their contrasts' shares of the inconsistency (Q_r, netmeta's Q.inc.design):")
        seen: dict[str, list[dict[str, Any]]] = {}
        for r in h.rows:
            seen.setdefault(r["design"], []).append(r)
        for des, rs in seen.items():
            k = rs[0]["studies"]
            head = f"{des} ({k} stud{'y' if k == 1 else 'ies'})"
            if not rs[0]["shown"]:
                head += f", not shown: {rs[0]['reason']}"
            lines += _wrap(head, "  ", "    ")
            w = max(len(r["comparison"]) for r in rs)
            lines += [f"      {r['comparison']:<{w}}  Q_r = {_q(r['q_inc'])}" for r in rs]
    if h.available:
        lines.append("Rows and columns, in the plot's order (netheat's clustering):")
        lines += [f"  [{i + 1}] {lab}" for i, lab in enumerate(h.labels)]
        lines += [""] + _wrap("Change in inconsistency, Q_r - Q_r(column's design detached): positive (red) "
                              "where the column's design adds inconsistency to the row, negative (blue) where "
                              "it supports it:")
        lines += _matrix(h.labels, h.heat, 2)
        lines += [""] + _wrap("Contribution of the column's direct estimate to the row's network estimate "
                              "(hat matrix):")
        lines += _matrix(h.labels, h.contribution, 2)
    if h.notes:
        lines += ["Notes:"] + [x for n in h.notes for x in _wrap(n, "  - ", "    ")]
    return "\n".join(lines)


__all__ = ["format_netheat"]
