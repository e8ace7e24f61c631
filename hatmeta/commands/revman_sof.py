"""`hatmeta sof --data FILE.rm5`: a summary of findings of any RevMan review, one row per outcome.

Each outcome is pooled with the review's stored settings (``pool_rm5``: the revman5 preset, RevMan's method,
model and CI level); the row gives the participants and studies, the effect with its CI on the natural
scale, the analysis, heterogeneity, for risk and odds ratios the assumed and corresponding risks per 1000
(assumed risk: the control arms' pooled risk, total events over total participants, GRADEpro's "study
population" risk; corresponding risk RR x ACR, or for an OR ACR OR / (1 - ACR + ACR OR): Cochrane
Handbook 14.1.5.1), and whether RevMan's stored totals are reproduced. An outcome RevMan did not pool,
or hatmeta cannot, is a row that says why. GRADE ratings are not read from the file: certainty is
'not rated'.
"""

from __future__ import annotations

import textwrap
from typing import Any

from ..errors import InputError

HEAD = ["Outcome", "Participants (studies)", "Effect (CI)", "Analysis", "Assumed risk (control)",
        "Corresponding risk", "Heterogeneity", "RevMan's stored totals", "Certainty (GRADE)"]
NOTE = ("One row per outcome of the review, pooled with its stored settings (RevMan 5's analysis). Assumed "
        "risk: the control arms' pooled risk (events over participants); corresponding risk from the pooled "
        "RR or OR (Cochrane Handbook 14.1.5.1). Certainty: GRADE ratings are not read from RevMan files "
        "('not rated').")


def sof_rows(data_file: Any) -> tuple[str, list[dict[str, str]]]:
    """(title, rows) of the summary of findings of a RevMan review: one dict per outcome (keys: HEAD's
    columns in snake case, plus ``id``)."""
    from ..io.revman_package import read_any_review
    from ..numbers import est_ci, tau2_text
    from .revman import pool_rm5

    review = read_any_review(data_file)
    if not review.outcomes:
        raise InputError("the review has no analyses (no outcomes in ANALYSES_AND_DATA)", file=review.path)
    rows = []
    for o in review.outcomes:
        row = {"id": o.id, "outcome": f"{o.id} {o.comparison}: {o.name}".strip(), "analysis": _analysis(o),
               "participants": _participants(o), "effect": "", "assumed_risk": "", "corresponding_risk": "",
               "heterogeneity": "", "revman": "", "certainty": "not rated"}
        rows.append(row)
        if o.totals == "NO":
            row["effect"] = "not pooled: the review shows no total for this outcome (RevMan's TOTALS=NO)"
            continue
        try:
            res = pool_rm5(review, o.id, None, {})
        except InputError as exc:
            said = exc.message.removeprefix(f"outcome {o.id} ({o.name})").removeprefix(":").strip()
            row["effect"] = f"not pooled: {said}"
            continue
        nat = res.natural
        if o.totals == "SUB":
            row["effect"] = "subtotals only (the review shows no overall total): " + "; ".join(
                f"{g.group}: {res.measure} {est_ci(nat(g.estimate), nat(g.ci_low), nat(g.ci_high), ' to ', '()')}"
                for g in res.subgroups or ())
        else:
            effect = est_ci(nat(res.estimate), nat(res.ci_low), nat(res.ci_high), " to ", "()")
            row["effect"] = f"{res.measure} {effect}"
            row.update(_risks(o, res))
        row["heterogeneity"] = f"I² = {res.i2:.0f}%" + (f"; tau² = {tau2_text(res.tau2)}" if o.random else "")
        block = res.extra["revman"]
        row["revman"] = {True: "reproduced", None: "none stored"}.get(block["agrees"], block.get("note", "differs"))
    title = f"Summary of findings: {review.title or review.path}"
    return title, rows


def _analysis(o) -> str:
    names = {"MH": "M-H", "IV": "IV", "PETO": "Peto"}
    return f"{names.get(o.method, o.method)}, {'Random' if o.random else 'Fixed'}, {o.ci_total:g}% CI"


def _participants(o) -> str:
    ns = [r.values.get("TOTAL_1", 0) + r.values.get("TOTAL_2", 0) for r in o.rows
          if r.values.get("TOTAL_1") is not None and r.values.get("TOTAL_2") is not None]
    k = f"{o.k} {'study' if o.k == 1 else 'studies'}"
    return f"{int(sum(ns))} ({k})" if ns and len(ns) == o.k else f"({k})"


def _risks(o, res) -> dict[str, str]:
    """Assumed risk (control arms' pooled risk) and corresponding risk per 1000, for RR and OR."""
    if o.kind != "DICH" or res.measure not in ("RR", "OR"):
        return {}
    ins = [s.inputs for s in res.studies] + [a["inputs"] for a in getattr(res, "not_estimable", ()) or ()]
    events, total = sum(i["events_ctrl"] for i in ins), sum(i["n_ctrl"] for i in ins)
    if not total:
        return {}
    acr = events / total

    def per_1000(x):
        r = res.natural(x)
        risk = acr * r if res.measure == "RR" else acr * r / (1 - acr + acr * r)
        return f"{1000 * min(risk, 1.0):.0f}{' (capped)' if risk > 1 else ''}"

    return {"assumed_risk": f"{1000 * acr:.0f} per 1000",
            "corresponding_risk": f"{per_1000(res.estimate)} per 1000 ({per_1000(res.ci_low)} to "
                                  f"{per_1000(res.ci_high)})"}


KEYS = ("outcome", "participants", "effect", "analysis", "assumed_risk", "corresponding_risk", "heterogeneity",
        "revman", "certainty")


def revman_sof(data_file: Any, fmt: str = "text", width: int = 80) -> str:
    """The summary of findings of a RevMan review as text (one block per outcome, wrapped to ``width``)
    or a table (markdown, csv, html, latex)."""
    title, rows = sof_rows(data_file)
    if fmt != "text":
        from ..render.tables import render

        return render(HEAD, [[r[k] for k in KEYS] for r in rows], fmt, caption=title, footnote=NOTE)
    lines = textwrap.wrap(title, width)
    for r in rows:
        lines += [""] + textwrap.wrap(f"{r['outcome']}: {r['participants']}", width, subsequent_indent="  ")
        for label, key in (("Effect", "effect"), ("Analysis", "analysis"), ("Heterogeneity", "heterogeneity"),
                           ("RevMan's stored totals", "revman"), ("Certainty (GRADE)", "certainty")):
            if r[key]:
                lines += textwrap.wrap(f"{label}: {r[key]}", width, initial_indent="  ", subsequent_indent="    ")
            if key == "effect" and r["assumed_risk"]:
                lines += textwrap.wrap(f"Risk: {r['assumed_risk']} (control), {r['corresponding_risk']} "
                                       "(experimental)", width, initial_indent="  ", subsequent_indent="    ")
    return "\n".join(lines + [""] + textwrap.wrap(NOTE, width)) + "\n"
