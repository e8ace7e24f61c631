"""Study-level and pooled tables (Markdown, CSV, HTML, LaTeX) and the summary-of-findings table.

Ratios are shown on the natural scale, two decimals, as in Cochrane reviews. Built from a
``MetaResult``; nothing here computes statistics beyond turning a risk ratio into risks per 1000.
"""

from __future__ import annotations

import csv
import html
import io
import math
import statistics

FORMATS = ("markdown", "csv", "html", "latex")
DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")


def _ci(res, est, lo, hi, digits=2):
    n = res.natural
    return f"{n(est):.{digits}f} [{n(lo):.{digits}f}, {n(hi):.{digits}f}]"


def result_rows(res, labels=("HAT", "control")):
    """Header and rows: one per study, then the pooled estimate and the prediction interval."""
    binary = all("events_treat" in s.inputs and "n_treat" in s.inputs for s in res.studies)
    head = ["Study"] + ([f"{labels[0]} events/total", f"{labels[1]} events/total"] if binary else []) + [
        f"{res.measure} [95% CI]", "Weight %"]
    rows = []
    for s in res.studies:
        arms = ([f"{s.inputs['events_treat']}/{s.inputs['n_treat']}", f"{s.inputs['events_ctrl']}/{s.inputs['n_ctrl']}"]
                if binary else [])
        rows.append([s.label or s.study] + arms + [_ci(res, s.yi, s.ci_low, s.ci_high), f"{s.weight:.1f}"])
    total = []
    if binary:
        total = [f"{sum(s.inputs['events_treat'] for s in res.studies)}/{sum(s.inputs['n_treat'] for s in res.studies)}",
                 f"{sum(s.inputs['events_ctrl'] for s in res.studies)}/{sum(s.inputs['n_ctrl'] for s in res.studies)}"]
    rows.append([f"Total ({res.method}, {res.ci_method.upper()})"] + total
                + [_ci(res, res.estimate, res.ci_low, res.ci_high), "100.0"])
    if math.isfinite(res.pi_low):
        rows.append(["Prediction interval"] + [""] * len(total)
                    + [f"[{res.natural(res.pi_low):.2f}, {res.natural(res.pi_high):.2f}]", ""])
    return head, rows


def heterogeneity_line(res) -> str:
    p = "< 0.00001" if res.q_p < 1e-5 else f"= {res.q_p:.2g}"
    return (f"Heterogeneity: tau² = {res.tau2:.3f}; Q = {res.q:.2f}, df = {res.q_df} (P {p}); "
            f"I² = {res.i2:.0f}%")


def render(head, rows, fmt, caption=None, footnote=None) -> str:
    """A table in Markdown, CSV, HTML or LaTeX."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(head)
        w.writerows(rows)
        return buf.getvalue()
    if fmt == "markdown":
        out = [f"**{caption}**", ""] if caption else []
        out += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
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
            return (str(x).replace("\\", "\\textbackslash{}").replace("&", "\\&").replace("%", "\\%")
                    .replace("_", "\\_").replace("#", "\\#").replace("²", "$^2$"))
        out = ["\\begin{table}[ht]", "\\centering"] + ([f"\\caption{{{tex(caption)}}}"] if caption else [])
        out += [f"\\begin{{tabular}}{{l{'r' * (len(head) - 1)}}}", "\\hline",
                " & ".join(tex(h) for h in head) + " \\\\", "\\hline"]
        out += [" & ".join(tex(c) for c in r) + " \\\\" for r in rows]
        out += ["\\hline", "\\end{tabular}"] + ([f"\\par\\footnotesize {tex(footnote)}"] if footnote else [])
        out.append("\\end{table}")
        return "\n".join(out) + "\n"
    from .errors import InputError

    raise InputError(f"unknown table format {fmt!r}; choose {', '.join(FORMATS)}", column="--format")


def result_table(res, fmt="markdown", labels=("HAT", "control"), caption=None) -> str:
    head, rows = result_rows(res, labels)
    return render(head, rows, fmt, caption=caption, footnote=heterogeneity_line(res))


# ---------------------------------------------------------------- summary of findings

def suggest(res, spec):
    """Ratings numbers can judge, as suggestions for the reviewer (never as the rating).

    Imprecision: the 95% CI includes no effect (GRADE handbook 5.2.5; Guyatt et al. 2011, J Clin
    Epidemiol 64:1283). Inconsistency: I² above 50% (Cochrane Handbook 10.10.2, 'may represent
    substantial heterogeneity'), or a prediction interval that crosses no effect while the CI does not.
    """
    out = {}
    null = 0.0
    if res.ci_low <= null <= res.ci_high:
        out["imprecision"] = "serious suggested: the 95% CI includes no effect"
    else:
        out["imprecision"] = "no serious imprecision suggested by the CI (check the optimal information size)"
    crosses = math.isfinite(res.pi_low) and res.pi_low <= null <= res.pi_high
    if res.i2 > 50 or crosses:
        why = [f"I² = {res.i2:.0f}%"] if res.i2 > 50 else []
        if crosses:
            why.append("the prediction interval includes no effect")
        out["inconsistency"] = "serious suggested: " + " and ".join(why)
    else:
        out["inconsistency"] = "no serious inconsistency suggested"
    return out


def sof_row(res, analysis):
    """One summary-of-findings row for a pooled analysis (RR or OR on binary data)."""
    spec = analysis.spec
    ins = [s.inputs for s in res.studies]
    participants = sum(int(i["n_treat"]) + int(i["n_ctrl"]) for i in ins) if all("n_treat" in i for i in ins) else None
    nat = res.natural
    row = {
        "outcome": spec.title.split(":")[0] if getattr(spec, "title", None) else spec.name,
        "participants": f"{participants} ({res.k} RCTs)" if participants else f"({res.k} RCTs)",
        "relative_effect": f"{res.measure} {nat(res.estimate):.2f} ({nat(res.ci_low):.2f} to {nat(res.ci_high):.2f})",
        "assumed_risk": "", "corresponding_risk": "",
        "heterogeneity": f"I² = {res.i2:.0f}%; tau² = {res.tau2:.3f}",
    }
    if all("events_ctrl" in i for i in ins) and res.measure in ("RR", "OR"):
        # Assumed control risk: the median control-arm risk of the included trials (Cochrane
        # Handbook 14.1.5.1); the HAT risk applies the relative effect to it.
        acr = statistics.median(i["events_ctrl"] / i["n_ctrl"] for i in ins)

        def per_1000(x):
            # A risk ratio applied to a high baseline risk can exceed 1: risks are capped at
            # 1000 per 1000 and marked, rather than shown as impossible numbers.
            r = nat(x)
            risk = acr * r if res.measure == "RR" else acr * r / (1 - acr + acr * r)
            return f"{1000 * min(risk, 1.0):.0f}{' (capped)' if risk > 1 else ''}"

        row["assumed_risk"] = f"{1000 * acr:.0f} per 1000"
        row["corresponding_risk"] = (f"{per_1000(res.estimate)} per 1000 "
                                     f"({per_1000(res.ci_low)} to {per_1000(res.ci_high)})")
    grade = dict(getattr(spec, "grade", None) or {})
    ratings = {d: grade.get(d, "not rated") for d in DOMAINS}
    row["certainty"] = grade.get("certainty", "not rated")
    row["ratings"] = ratings
    row["suggestions"] = suggest(res, spec)
    return row


SOF_HEAD = ["Outcome", "Participants (studies)", "Relative effect (95% CI)", "Assumed risk (control)",
            "Corresponding risk (HAT)", "Heterogeneity", "Certainty (GRADE)", "Suggested by the numbers"]


def sof_table(rows, fmt="markdown") -> str:
    body = [[r["outcome"], r["participants"], r["relative_effect"], r["assumed_risk"], r["corresponding_risk"],
             r["heterogeneity"], r["certainty"],
             "; ".join(f"{k}: {v}" for k, v in r["suggestions"].items())] for r in rows]
    note = ("Certainty is the reviewer's GRADE rating recorded in the analysis spec ('not rated' until "
            "then); the last column is what the numbers alone suggest, for the reviewer to judge.")
    return render(SOF_HEAD, body, fmt, caption="Summary of findings: heroin-assisted treatment vs methadone",
                  footnote=note)
