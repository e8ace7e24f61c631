"""Plain text of a net heat plot (``NetHeat``): what it shows, the designs left out and why, and the
two matrices with the rows and columns numbered in the plot's order (so that they fit 80 columns)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .netheat import NetHeat


def _matrix(labels, M, digits):
    n = len(labels)
    cells = [[f"{M[i, j]:.{digits}f}" for j in range(n)] for i in range(n)]
    w = max([len(str(n)) + 2] + [len(c) for row in cells for c in row])
    head = "     " + "".join(f"[{j + 1}]".rjust(w + 1) for j in range(n))
    return [head] + [f"  [{i + 1}]".ljust(5) + "".join(c.rjust(w + 1) for c in cells[i]) for i in range(n)]


def format_netheat(h: NetHeat) -> str:
    """The summary: model, tau^2, the designs shown (numbered, plot order) and left out, then the matrices."""
    from ..precision import quantised

    h = quantised(h)
    tau = f"tau^2 = {h.tau2:.4g} ({h.tau2_source})" if h.model == "random" else "common-effect model"
    lines = [f"Net heat plot (Krahn, Binder & König 2013; netmeta's netheat): {h.model} effects, {tau}",
             f"Inconsistency between designs: Q = {h.q_between:.2f} on {h.q_between_df} df"]
    if not h.available:
        lines.append(f"No net heat plot: {h.reason}.")
    else:
        lines.append("Rows and columns, in the plot's order (netheat's clustering):")
        for i, lab in enumerate(h.labels):
            lines.append(f"  [{i + 1}] {lab}")
    if h.rows:
        lines.append("Inconsistency contribution of each design contrast (Q_r, netmeta's Q.inc.design):")
        from ..summary import text_table

        lines += text_table(["design contrast", "studies", "Q_r", "shown"],
                            [[r["label"], r["studies"], f"{r['q_inc']:.4f}", "yes" if r["shown"] else "no"]
                             for r in h.rows])
        out = {r["design"]: r["reason"] for r in h.rows if not r["shown"]}
        if out:
            lines.append("Left out of the plot:")
            lines += [f"  {des}: {why}" for des, why in out.items()]
    if h.available:
        lines += ["", "Change in inconsistency, Q_r - Q_r(column's design detached): positive (red) where the",
                  "column's design adds inconsistency to the row, negative (blue) where it supports it:"]
        lines += _matrix(h.labels, h.heat, 2)
        lines += ["", "Contribution of the column's direct estimate to the row's network estimate (hat matrix):"]
        lines += _matrix(h.labels, h.contribution, 2)
    if h.notes:
        lines += ["Notes:"] + [f"  - {n}" for n in h.notes]
    return "\n".join(lines)


__all__ = ["format_netheat"]
