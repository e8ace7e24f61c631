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
    """[source, comparison, trials, participants, estimate (95% CI)] rows: the published results first,
    then ours, on the natural scale."""
    rows = []
    for p in published:
        ci = (f" ({p['ci_low']:.2f} to {p['ci_high']:.2f})" if p["ci_low"] is not None and p["ci_high"] is not None
              else " (CI not available)")
        rows.append([p["label"], p["comparison"], str(p["trials"]),
                     str(p["participants"] or ""), f"{p['measure']} {p['estimate']:.2f}{ci}"])
    if result is not None:
        est, lo, hi = _ours(result)
        participants = _participants(result)
        rows.append(["hatmeta (this analysis)", "as specified in the analysis", str(result.k),
                     str(participants or ""), f"{result.measure} {est:.2f} ({lo:.2f} to {hi:.2f})"])
    return rows


def _participants(result):
    ins = [s.inputs for s in result.studies]
    if ins and all("n_treat" in i and "n_ctrl" in i for i in ins):
        return int(sum(i["n_treat"] + i["n_ctrl"] for i in ins))
    return None


RECONCILE_HEAD = ["Source", "Comparison", "Trials", "Participants", "Pooled estimate (95% CI)"]
RECONCILE_NOTE = ("Published estimates are read from the reviews' abstracts, not reproduced. They differ from "
                  "hatmeta's where the comparison differs (route, control), where a trial's per-arm figures could "
                  "not be opened here (see 'Not included'), or by model (the reviews used fixed or "
                  "DerSimonian-Laird random effects; hatmeta uses the model its spec states).")


def reconciliation_text(result, published) -> str:
    if not published:
        return ""
    rows = reconciliation_rows(result, published)
    widths = [max(len(r[i]) for r in rows + [RECONCILE_HEAD]) for i in range(len(RECONCILE_HEAD))]
    widths[1] = min(widths[1], 48)
    fmt = lambda r: "  ".join(_cut(c, w).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join(["Published reviews and this analysis:", "  " + fmt(RECONCILE_HEAD)]
                     + ["  " + fmt(r) for r in rows])


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
