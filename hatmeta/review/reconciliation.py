"""The HAT appraisal beside a pooled result, as text, Markdown and HTML: the gaps table (trials
left out, what is missing, where it was sought) and the reconciliation with published reviews.

Built from the ``gaps`` and ``published`` entries a HAT analysis carries (MetaResult.extra, see
hatmeta.review.appraisal); nothing here computes statistics beyond exponentiating our estimate.
"""

from __future__ import annotations

import html
import math

SOUGHT_CHARS = 160  # terminal text cuts the list of places searched (JSON and the report keep it whole)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def gaps_text(gaps, verbose=False) -> str:
    """One short block per distinct gap: trials, what is missing, and (cut) where it was sought."""
    if not gaps:
        return ""
    lines = [f"Not included ({sum(len(g['trials']) for g in gaps)} trials):"]
    for g in gaps:
        lines.append(f"  {', '.join(g['trials'])}: {g['missing']}")
        if g["sought"]:
            lines.append(f"    sought in: {g['sought'] if verbose else _cut(g['sought'], SOUGHT_CHARS)}")
    return "\n".join(lines)


def _ours(result):
    """Our pooled estimate and CI on the natural scale (ratios exponentiated)."""
    f = math.exp if result.is_ratio else (lambda x: x)
    return f(result.estimate), f(result.ci_low), f(result.ci_high)


def reconciliation_rows(result, published) -> list:
    """[source, comparison, direction, trials, participants, estimate (95% CI)] rows: the published results
    first, then ours, on the natural scale; where a review counts the opposite event, ours for its event
    too (hatmeta.review.appraisal._beside)."""
    rows = []
    for p in published:
        ci = (f" ({p['ci_low']:.2f} to {p['ci_high']:.2f})" if p["ci_low"] is not None and p["ci_high"] is not None
              else " (CI not available)")
        rows.append([p["label"], p["comparison"], p.get("direction", ""), str(p["trials"]),
                     str(p["participants"] or ""), f"{p['measure']} {p['estimate']:.2f}{ci}"])
    if result is not None:
        est, lo, hi = _ours(result)
        participants = _participants(result)
        ours = next((p["our_direction"] for p in published if p.get("our_direction")), "")
        rows.append(["hatmeta (this analysis)", "as specified in the analysis", ours, str(result.k),
                     str(participants or ""), f"{result.measure} {est:.2f} ({lo:.2f} to {hi:.2f})"])
        for p in published:
            other = p.get("ours_for_review_event")
            if other and not p.get("same_event", True):
                rows.append(["hatmeta, the review's event", f"the complement of ours, to read beside {p['label']}",
                             p["direction"], str(other["k"]), str(participants or ""),
                             f"{other['measure']} {other['estimate']:.2f} ({other['ci_low']:.2f} to "
                             f"{other['ci_high']:.2f})"])
                break
    return rows


def _participants(result):
    ins = [s.inputs for s in result.studies]
    if ins and all("n_treat" in i and "n_ctrl" in i for i in ins):
        return int(sum(i["n_treat"] + i["n_ctrl"] for i in ins))
    return None


RECONCILE_HEAD = ["Source", "Comparison", "Direction", "Trials", "Participants", "Pooled estimate (95% CI)"]
RECONCILE_NOTE = ("Published estimates are read from the reviews' abstracts, not reproduced. They differ from "
                  "hatmeta's where the comparison differs (route, control), where a trial's per-arm figures could "
                  "not be opened here (see 'Not included'), or by model (the reviews used fixed or "
                  "DerSimonian-Laird random effects; hatmeta uses the model its spec states). 'Direction' says "
                  "which values favour heroin on each side: where a review counts the opposite event (e.g. use of "
                  "illicit drugs where this analysis counts response or abstinence), hatmeta's estimate for the "
                  "review's event is shown as well (exact for binary counts).")


def reconciliation_text(result, published, width: int = 80) -> str:
    """The reconciliation for a terminal: one short block per source (estimate, trials and participants;
    then comparison and direction), wrapped to ``width`` columns."""
    import textwrap

    if not published:
        return ""
    lines = ["Published reviews and this analysis (natural scale):"]
    for source, comparison, direction, trials, participants, estimate in reconciliation_rows(result, published):
        size = f"{trials} trials" + (f", n = {participants}" if participants else "")
        lines += textwrap.wrap(f"{source}: {estimate}; {size}", width, initial_indent="  ", subsequent_indent="    ")
        lines += textwrap.wrap("; ".join(x for x in (comparison, direction) if x), width, initial_indent="    ",
                               subsequent_indent="    ")
    return "\n".join(lines)


def gaps_html(gaps) -> str:
    if not gaps:
        return ""
    body = "".join(f"<tr><td>{html.escape(', '.join(g['trials']))}</td><td>{html.escape(g['missing'])}</td>"
                   f"<td>{html.escape(g['sought'])}</td></tr>" for g in gaps)
    return ("<table class=\"gaps\"><caption>Not included: what is missing and where it was sought</caption>"
            "<thead><tr><th>Trials</th><th>Missing</th><th>Sought in</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")


def reconciliation_html(result, published) -> str:
    if not published:
        return ""
    rows = reconciliation_rows(result, published)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in RECONCILE_HEAD)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return (f"<table class=\"reconcile\"><caption>Published reviews beside this analysis</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><p class=\"note\">"
            f"{html.escape(RECONCILE_NOTE)}</p>")
