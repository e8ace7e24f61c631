"""Study-level and pooled tables (Markdown, CSV, HTML, LaTeX) and the summary-of-findings table.

Ratios are shown on the natural scale, two decimals, as in Cochrane reviews. Built from a
``MetaResult``; nothing here computes statistics beyond turning a risk ratio into risks per 1000.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..numbers import fmt_p, interval, p_text, tau2_text
from ..vocabulary import COMMON_EFFECT_METHODS, DEFAULT_LABELS
from .plots.forest import NOT_ESTIMABLE, PI_NA, ci_text, input_order

if TYPE_CHECKING:
    from ..results import MetaResult

FORMATS = ("markdown", "csv", "html", "latex")
LATEX_WRAP = 40  # characters: a LaTeX column with a longer cell wraps
# LaTeX's special characters, escaped one character at a time (so an escape is never escaped again).
TEX_ESCAPES = {"\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#", "_": "\\_",
               "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}", "^": "\\textasciicircum{}", "²": "$^2$",
               "τ": "$\\tau$", "<": "\\textless{}", ">": "\\textgreater{}"}  # < and > print as ¡ and ¿ in OT1


def _ci(res, est, lo, hi):
    """Natural scale, decimals from the magnitude: the same text as the forest plot's."""
    return ci_text(res.natural, est, lo, hi)


def _arms(res, labels):
    """Arm columns by the layout of the inputs: events/total (binary), mean (SD), n (continuous).
    Totals count the participants of not-estimable studies too, as RevMan does."""
    ins = [s.inputs for s in res.studies] + [a["inputs"] for a in getattr(res, "not_estimable", ()) or ()]
    if ins and all("events_treat" in i and "n_treat" in i for i in ins):
        head = [f"{labels[0]} events/total", f"{labels[1]} events/total"]

        def cells(i):
            return [f"{i['events_treat']}/{i['n_treat']}", f"{i['events_ctrl']}/{i['n_ctrl']}"]

        total = [f"{sum(i['events_treat'] for i in ins)}/{sum(i['n_treat'] for i in ins)}",
                 f"{sum(i['events_ctrl'] for i in ins)}/{sum(i['n_ctrl'] for i in ins)}"]
        return head, cells, total
    if ins and all("mean_treat" in i for i in ins):
        head = [f"{labels[0]} mean (SD), n", f"{labels[1]} mean (SD), n"]

        def cells(i):
            return [f"{i['mean_treat']:g} ({i['sd_treat']:g}), {i['n_treat']:g}",
                    f"{i['mean_ctrl']:g} ({i['sd_ctrl']:g}), {i['n_ctrl']:g}"]

        total = [f"n = {sum(i['n_treat'] for i in ins):g}", f"n = {sum(i['n_ctrl'] for i in ins):g}"]
        return head, cells, total
    return [], (lambda i: []), []


def result_rows(res: MetaResult, labels: tuple[str, str] = DEFAULT_LABELS) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one per study, then the pooled estimate and the prediction interval.

    Effects on the natural scale (ratios back-transformed), two decimals; weights in percent."""
    arm_head, cells, total = _arms(res, labels)
    from ..numbers import level_text

    head = ["Study"] + arm_head + [f"{res.measure} [{level_text(res.level)} CI]", "Weight %"]
    rows = []
    for what, x in input_order(res, range(len(res.studies)), getattr(res, "not_estimable", ()) or ()):
        if what == "absent":  # RevMan: listed where entered, counted, no weight
            rows.append([x.get("label") or x["study"]] + (cells(x["inputs"]) if arm_head else []) + [NOT_ESTIMABLE, ""])
        else:
            s = res.studies[x]
            rows.append([s.label or s.study] + cells(s.inputs) + [_ci(res, s.yi, s.ci_low, s.ci_high),
                                                                 f"{s.weight:.1f}"])
    rows.append([f"Total ({res.method}, {res.ci_method.upper()})"] + total
                + [_ci(res, res.estimate, res.ci_low, res.ci_high), "100.0"])
    if math.isfinite(res.pi_low):
        rows.append(["Prediction interval"] + [""] * len(total)
                    + [interval(res.natural(res.pi_low), res.natural(res.pi_high)), ""])
    elif res.method not in COMMON_EFFECT_METHODS and not res.extra.get("revman5"):  # RevMan 5 gives no PI
        rows.append(["Prediction interval"] + [""] * len(total) + [PI_NA, ""])
    for g in res.subgroups or ():
        rows.append([f"Subgroup {g.group} ({g.k} {'trial' if g.k == 1 else 'trials'})"] + [""] * len(total)
                    + [ci_text(res.natural, g.estimate, g.ci_low, g.ci_high), ""])
    return head, rows


def _p(p) -> str:
    """'= 0.04' or '< 0.0001': the shared P formatter (numbers.p_text), as the figures print it."""
    return p_text(p)


def heterogeneity_line(res: MetaResult) -> str:
    return (f"Heterogeneity: tau² = {tau2_text(res.tau2)}; Q = {res.q:.2f}, df = {res.q_df} ({fmt_p(res.q_p)}); "
            f"I² = {res.i2:.0f}%")


def render(head: Sequence[str], rows: Sequence[Sequence[str]], fmt: str, caption: str | None = None,
           footnote: str | None = None) -> str:
    """A table in Markdown, CSV, HTML or LaTeX."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        from ..csvsafe import row as safe, rows as safe_rows  # spreadsheet formulas neutralised (csvsafe.py)

        w.writerow(safe(head))
        w.writerows(safe_rows(rows))
        return buf.getvalue()
    if fmt == "markdown":
        def md(x):  # a pipe inside a cell would end the cell
            return str(x).replace("|", "\\|")
        out = [f"**{caption}**", ""] if caption else []
        out += ["| " + " | ".join(md(h) for h in head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        out += ["| " + " | ".join(md(c) for c in r) + " |" for r in rows]
        if footnote:
            out += ["", footnote]
        return "\n".join(out) + "\n"
    if fmt == "html":
        e = html.escape
        out = ["<table>"] + ([f"<caption>{e(caption)}</caption>"] if caption else [])
        out.append("<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>")
        out += ["<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows]
        out.append("</tbody></table>")
        if footnote:
            out.append(f"<p class=\"footnote\">{e(footnote)}</p>")
        return "\n".join(out) + "\n"
    if fmt == "latex":
        def tex(x):
            return "".join(TEX_ESCAPES.get(ch, ch) for ch in str(x))
        # A table holding long text (a summary of findings) wraps: tabularx shares the line width
        # among its columns, so the table fits the page instead of running off it.
        wrap = any(len(str(c)) > LATEX_WRAP for c in [*head, *(c for r in rows for c in r)])
        out = ["\\begin{table}[ht]", "\\centering"] + ([f"\\caption{{{tex(caption)}}}"] if caption else [])
        # Sizes chosen so that the tables fit a 16 cm line (A4 with 2.5 cm margins).
        if wrap:
            env = "tabularx"
            out += ["\\footnotesize", "\\setlength{\\tabcolsep}{3pt}", "% needs \\usepackage{tabularx}",
                    "\\renewcommand{\\tabularxcolumn}[1]{>{\\raggedright\\arraybackslash}p{#1}}",
                    f"\\begin{{tabularx}}{{\\linewidth}}{{{_wrapped_columns(head, rows)}}}"]
        else:
            env = "tabular"
            out += ["\\small", "\\setlength{\\tabcolsep}{4pt}", f"\\begin{{tabular}}{{l{'r' * (len(head) - 1)}}}"]
        out += ["\\hline", " & ".join(tex(h) for h in head) + " \\\\", "\\hline"]
        out += [" & ".join(tex(c) for c in r) + " \\\\" for r in rows]
        out += ["\\hline", f"\\end{{{env}}}"] + ([f"\\par\\footnotesize {tex(footnote)}"] if footnote else [])
        out.append("\\end{table}")
        return "\n".join(out) + "\n"
    from ..errors import InputError

    raise InputError(f"unknown table format {fmt!r}; choose {', '.join(FORMATS)}", column="--format")


def _wrapped_columns(head, rows, line_chars=100) -> str:
    """tabularx column types whose widths follow their text. Each column first gets room for its
    longest word, which cannot wrap; the rest of the line (``line_chars`` characters: about a 16 cm
    line in footnotesize with 3 pt column gaps) is shared in proportion to the text each column
    still holds. The hsize weights sum to the number of columns, as tabularx requires."""
    words, texts = [], []
    for j, h in enumerate(head):
        cells = [str(h), *(str(r[j]) for r in rows)]
        words.append(1.2 * max(len(w) for c in cells for w in c.split() or [""]) + 1)
        texts.append(max(len(c) for c in cells[1:] or [""]))
    rest = max(line_chars - sum(words), 0)
    more = [max(t - w, 0) for t, w in zip(texts, words)]
    width = [w + (rest * m / sum(more) if sum(more) else rest / len(words)) for w, m in zip(words, more)]
    return "".join(f">{{\\hsize={len(width) * x / sum(width):.2f}\\hsize}}X" for x in width)


def result_table(res: MetaResult, fmt: str = "markdown", labels: tuple[str, str] = DEFAULT_LABELS,
                 caption: str | None = None) -> str:
    head, rows = result_rows(res, labels)
    note = heterogeneity_line(res)
    if res.subgroup_test is not None:
        t = res.subgroup_test
        note += (f". Test for subgroup differences: Q = {t.q:.2f}, df = {t.df} (P {_p(t.p)})"
                 if math.isfinite(t.q) else ". Test for subgroup differences: not estimable")
    return render(head, rows, fmt, caption=caption, footnote=note)


# ---------------------------------------------------------------- summary of findings

