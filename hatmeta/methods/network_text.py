"""Text and HTML renderings of a network meta-analysis (``NMAResult``), read like netmeta's print.

The league table is labelled so that it cannot be misread: every cell is the effect of the ROW
treatment against the COLUMN treatment, and the line above it says which direction favours the row.
Numbers are drawn from the result rounded by ``hatmeta.precision``.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .network import NMAResult

MEASURE_NAMES = {"OR": "odds ratio", "RR": "risk ratio", "RD": "risk difference", "MD": "mean difference",
                 "SMD": "standardised mean difference (Cohen's d, as netmeta's pairwise)", "GEN": "effect"}
METHOD_NAMES = {"DL": "DerSimonian-Laird-type estimator (netmeta)", "REML": "REML",
                "fixed": "fixed tau^2"}


def _f(x, digits=2):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "NA"
    return f"{x:.{digits}f}"


def _p(p):
    if p is None or not math.isfinite(p):
        return "NA"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def _cell(res, est, se, digits=2):
    """Natural-scale estimate [CI] of one effect (exp for OR and RR)."""
    from ..dist import norm_isf

    z = float(norm_isf((1 - res.level) / 2))
    lo, hi = est - z * se, est + z * se
    n = res.natural
    return f"{_f(n(est), digits)} [{_f(n(lo), digits)}, {_f(n(hi), digits)}]"


def _direction(res) -> str:
    null = "1" if res.is_ratio else "0"
    better = "below" if res.benefit == "lower" else "above"
    return (f"{res.measure} {better} {null} favours the row treatment (--benefit {res.benefit}: "
            f"{'lower' if res.benefit == 'lower' else 'higher'} values are better)")


def league_lines(res: NMAResult, width: int = 80) -> list:
    """The league table's lines; wider than ``width`` it is printed in blocks of columns, each with the
    row labels, as R prints a wide matrix."""
    trts = list(res.treatments)
    cells = [[t if a == t else _cell(res, res.league[a][t], res.league_se[a][t]) for t in trts] for a in trts]
    corner = "row vs column"
    w0 = max(len(corner), *(len(t) for t in trts))
    widths = [max(len(t), *(len(cells[i][j]) for i in range(len(trts)))) for j, t in enumerate(trts)]
    blocks: list[list[int]] = [[]]
    used = 2 + w0
    for j, w in enumerate(widths):
        if blocks[-1] and used + 2 + w > width:
            blocks.append([])
            used = 2 + w0
        blocks[-1].append(j)
        used += 2 + w
    lines = [f"League table ({res.model} effects, {res.measure} [{100 * res.level:g}% CI]"
             + (", natural scale):" if res.is_ratio else "):"),
             "each cell is the ROW treatment versus the COLUMN treatment;", _direction(res)]
    for cols in blocks:
        if len(blocks) > 1:
            lines.append(f"  (columns {trts[cols[0]]} to {trts[cols[-1]]})" if len(cols) > 1
                         else f"  (column {trts[cols[0]]})")
        lines.append("  " + corner.ljust(w0) + "  " + "  ".join(trts[j].rjust(widths[j]) for j in cols))
        for i, a in enumerate(trts):
            lines.append("  " + a.ljust(w0) + "  " + "  ".join(cells[i][j].rjust(widths[j]) for j in cols))
    return lines


def _fit80(lines: list, width: int = 80) -> list:
    """Prose wrapped at ``width`` (continuations indented); table rows (indented lines) kept whole,
    notes ("  - ...") wrapped under their dash."""
    import textwrap

    out: list = []
    nb = "\xa0"  # while wrapping, "name = value" is one word
    for line in lines:
        if len(line) > width and not (line.startswith("  ") and not line.startswith("  - ")):
            line = line.replace(" = ", f"{nb}={nb}")
        if len(line) <= width:
            out.append(line)
        elif line.startswith("  - "):
            out += textwrap.wrap(line[4:], width, initial_indent="  - ", subsequent_indent="    ",
                                 break_on_hyphens=False)
        elif line.startswith("  "):
            out.append(line)
        else:
            out += textwrap.wrap(line, width, subsequent_indent="  ", break_on_hyphens=False)
    return [line.replace(nb, " ") for line in out]


def _rounded(res):
    """The result rounded by the output policy (without the fit's internals, which nothing here draws)."""
    import dataclasses

    from ..precision import quantised

    return quantised(dataclasses.replace(res, fit=None))


def format_nma(res: NMAResult) -> str:
    res = _rounded(res)
    lines = []
    name = MEASURE_NAMES.get(res.measure, res.measure)
    model = "Random-effects" if res.model == "random" else "Common-effect"
    lines.append(f"Network meta-analysis ({res.measure}, {name}): {model} model, frequentist graph-theoretical "
                 f"approach (netmeta)")
    def count(n, one, many):
        return f"{n} {one if n == 1 else many}"

    lines.append(f"{count(res.k, 'study', 'studies')}, "
                 f"{count(res.n_comparisons, 'pairwise comparison', 'pairwise comparisons')}"
                 f", {len(res.treatments)} treatments, {count(len(res.designs), 'design', 'designs')}; "
                 f"reference: {res.reference}")
    lines.append("")
    lv = f"{100 * res.level:g}%"
    pi = res.model == "random" and any(e.get("pi_low") is not None and math.isfinite(e["pi_low"])
                                       for e in res.estimates)
    head = f"Effects against {res.reference} ({res.measure} [{lv} CI]" + (", natural scale)" if res.is_ratio else ")")
    lines.append(head + (f"; {lv} prediction interval" if pi else "") + f"; P-score ({res.benefit} is better)")
    est = {e["treatment"]: e for e in res.estimates}
    w = max(len(t) for t in res.treatments)
    n = res.natural
    ci = {t: _cell(res, est[t]["estimate"], est[t]["se"]) for t in res.treatments if t != res.reference}
    pis = {t: "[" + _f(n(est[t]["pi_low"])) + ", " + _f(n(est[t]["pi_high"])) + "]" for t in ci} if pi else {}
    wc = max(len("(reference)"), *(len(c) for c in ci.values())) if ci else len("(reference)")
    wp = max((len(c) for c in pis.values()), default=0)
    for t in res.treatments:
        cell = f"  {t.ljust(w)}  {ci.get(t, '(reference)'):>{wc}}"
        if pi:
            cell += f"  {pis.get(t, ''):>{wp}}"
        lines.append(cell + f"  {_f(res.p_scores[t], 3)}")
    lines.append("")
    if res.tau2 is None or not math.isfinite(res.tau2):
        lines.append("Heterogeneity: not estimable (no degrees of freedom: every comparison is estimated once)")
    elif res.model == "random":
        tau = math.sqrt(res.tau2) if res.tau2 is not None and math.isfinite(res.tau2) else float("nan")
        lines.append(f"Heterogeneity: tau^2 = {_f(res.tau2, 4)} ({METHOD_NAMES.get(res.method, res.method)}); "
                     f"tau = {_f(tau, 4)}; I^2 = {_f(res.I2, 1)}% [{_f(res.I2_low, 1)}%; {_f(res.I2_high, 1)}%]")
    else:
        lines.append(f"Heterogeneity: I^2 = {_f(res.I2, 1)}% [{_f(res.I2_low, 1)}%; {_f(res.I2_high, 1)}%]")
    lines.append("Heterogeneity (within designs) and inconsistency (between designs):")
    lines.append(f"  {'':<16} {'Q':>8} {'df':>4}  p")
    for label, q, df, p in (("Total", res.Q, res.Q_df, res.Q_p), ("Within designs", res.Q_within, res.Q_within_df,
                                                                  res.Q_within_p),
                            ("Between designs", res.Q_between, res.Q_between_df, res.Q_between_p)):
        lines.append(f"  {label:<16} {_f(q):>8} {df:>4}  {_p(p)}")
    dbt = res.design_by_treatment
    if dbt:
        lines.append("Design-by-treatment interaction (random effects, tau^2 within designs = "
                     f"{_f(dbt['tau2_within'], 4)}"
                     f"): Q = {_f(dbt['Q'])} on {dbt['df']} df, p = {_p(dbt['p'])}")
    lines.append("")
    lines += league_lines(res)
    split = [r for r in res.netsplit if r["direct"] is not None and r["indirect"] is not None]
    if split:
        lines.append("")
        lines.append(f"Direct and indirect evidence ({res.model} effects, back-calculation; "
                     f"{res.measure}{', natural scale' if res.is_ratio else ''}):")
        cw = max(len("comparison"), *(len(r["comparison"]) for r in split))
        n = res.natural

        def numbers(r):
            return (f"{r['k']:>3}  {_f(r['prop_direct']):>6}  {_f(n(r['direct'])):>9}  {_f(n(r['indirect'])):>9}  "
                    f"{_p(r['p'])}")

        if 2 + cw + 2 + 48 <= 80:
            lines.append(f"  {'comparison':<{cw}}  {'k':>3}  {'direct':>6}  {'direct':>9}  {'indirect':>9}  "
                         "p (difference)")
            lines.append(f"  {'':<{cw}}  {'':>3}  {'share':>6}")
            lines += [f"  {r['comparison']:<{cw}}  {numbers(r)}" for r in split]
        else:  # long treatment names: each comparison on its own line, its numbers under it
            lines += ["  comparison", f"    {'k':>3}  {'direct':>6}  {'direct':>9}  {'indirect':>9}  p (difference)"]
            lines.append(f"    {'':>3}  {'share':>6}")
            for r in split:
                lines += [f"  {r['comparison']}", f"    {numbers(r)}"]
    if res.dropped or res.notes:
        lines.append("")
        lines.append("Notes:")
        for note in res.notes:
            lines.append(f"  - {note}")
    return "\n".join(_fit80(lines))


def nma_html(res: NMAResult) -> str:
    """The summary as HTML: headline text and the league table as a real table (row vs column)."""
    res = _rounded(res)
    trts = list(res.treatments)
    head = "".join(f"<th>{html.escape(t)}</th>" for t in trts)
    rows = []
    for a in trts:
        cells = "".join(f"<td><b>{html.escape(a)}</b></td>" if a == t else
                        f"<td>{html.escape(_cell(res, res.league[a][t], res.league_se[a][t]))}</td>" for t in trts)
        rows.append(f"<tr><th>{html.escape(a)}</th>{cells}</tr>")
    text = format_nma(res).split("\nLeague table")[0]
    return (f"<pre>{html.escape(text)}</pre>"
            f"<p>League table: each cell is the <b>row</b> treatment versus the <b>column</b> treatment, "
            f"{html.escape(res.measure)} [{100 * res.level:g}% CI]. {html.escape(_direction(res))}.</p>"
            f"<table><thead><tr><th>row vs column</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


__all__ = ["format_nma", "nma_html", "league_lines"]
