"""The summary-of-findings table (GRADE): one row per pooled analysis of the review, the GRADE ratings its
spec records, and what the numbers alone suggest for imprecision and inconsistency."""

from __future__ import annotations

import math
import statistics

from ..numbers import est_ci, tau2_text
from ..render.tables import render

DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")


NOT_IMPRECISE = "no serious imprecision suggested by the CI (the optimal information size is not checked)"


def suggest(res, threshold=None):
    """Ratings that numbers can judge, as suggestions for the reviewer (never as the rating).

    Imprecision (GRADE 6: Guyatt et al. 2011, J Clin Epidemiol 64:1283; GRADE handbook 5.2.5):
    from the 95% CI, and with ``threshold`` (the smallest important effect on the natural scale,
    e.g. 1.25 for a ratio, meaning 0.8 and 1.25) whether the CI reaches an important effect on
    either side. Without a threshold only 'the CI includes no effect' can be judged.
    Inconsistency: I² above 50% (Cochrane Handbook 10.10.2: 'may represent substantial
    heterogeneity'), or a prediction interval that includes no effect while the CI excludes it.
    """
    out = {}
    null = 0.0
    includes_null = res.ci_low <= null <= res.ci_high
    if threshold is not None:
        if not math.isfinite(threshold) or (threshold <= 0 or threshold == 1 if res.is_ratio else threshold == 0):
            from ..errors import InputError

            need = "a positive ratio other than 1" if res.is_ratio else "non-zero"
            raise InputError(f"the smallest important effect must be {need}, got {threshold:g}", column="--threshold")
        t = abs(math.log(threshold)) if res.is_ratio else abs(threshold)
        t_text = (f"{math.exp(-t):.2f} or {math.exp(t):.2f}" if res.is_ratio else f"±{t:g}")
        if res.ci_low < -t and res.ci_high > t:
            out["imprecision"] = ("serious or very serious suggested: the 95% CI reaches an important effect "
                                  f"on both sides ({t_text})")
        elif includes_null and (res.ci_low < -t or res.ci_high > t):
            out["imprecision"] = f"serious suggested: the 95% CI includes no effect and an important one ({t_text})"
        elif includes_null:
            out["imprecision"] = f"no serious imprecision suggested: the 95% CI lies within {t_text}"
        else:
            out["imprecision"] = NOT_IMPRECISE
    elif includes_null:
        out["imprecision"] = ("serious suggested: the 95% CI includes no effect "
                              "(no threshold of an important effect given)")
    else:
        out["imprecision"] = NOT_IMPRECISE
    pi_crosses = (math.isfinite(res.pi_low) and res.pi_low <= null <= res.pi_high and not includes_null)
    if res.i2 > 50 or pi_crosses:
        why = [f"I² = {res.i2:.0f}%"] if res.i2 > 50 else []
        if pi_crosses:
            why.append("the prediction interval includes no effect while the CI excludes it")
        out["inconsistency"] = "serious suggested: " + " and ".join(why)
    else:
        out["inconsistency"] = f"no serious inconsistency suggested (I² = {res.i2:.0f}%)"
    return out


def certainty_text(grade: dict) -> str:
    """The reviewer's overall certainty, and the domains the reviewer rated down."""
    certainty = grade.get("certainty", "not rated")
    down = [f"{d.replace('_', ' ')} {grade[d]}" for d in DOMAINS if grade.get(d) in ("serious", "very serious")]
    unrated = [d for d in DOMAINS if grade.get(d, "not rated") == "not rated"]
    parts = []
    if down:
        parts.append("rated down: " + ", ".join(down))
    if unrated and len(unrated) < len(DOMAINS):
        parts.append("not rated: " + ", ".join(d.replace("_", " ") for d in unrated))
    elif unrated:
        parts.append("no domain rated")
    return certainty + (f" ({'; '.join(parts)})" if parts else "")


def sof_row(res, analysis, threshold=None, rob_summary=""):
    """One summary-of-findings row for a pooled analysis (RR or OR on binary data).

    ``threshold``: the smallest important effect, natural scale (see ``suggest``); ``rob_summary``:
    what the trials' risk-of-bias judgements suggest (``rob_suggestion``)."""
    spec = analysis.spec
    ins = [s.inputs for s in res.studies]
    # participants of not-estimable studies count too (RevMan, GRADEpro)
    counted = ins + [a["inputs"] for a in getattr(res, "not_estimable", ()) or ()]
    participants = (sum(int(i["n_treat"]) + int(i["n_ctrl"]) for i in counted)
                    if all("n_treat" in i for i in counted) else None)
    trials = len(counted)
    nat = res.natural
    row = {
        "outcome": sof_outcome(spec),
        "participants": f"{participants} ({trials} RCTs)" if participants else f"({trials} RCTs)",
        "relative_effect": f"{res.measure} " + est_ci(nat(res.estimate), nat(res.ci_low), nat(res.ci_high),
                                                      sep=" to ", brackets="()"),
        "assumed_risk": "", "corresponding_risk": "",
        "heterogeneity": f"I² = {res.i2:.0f}%; tau² = {tau2_text(res.tau2)}",
    }
    if all("events_ctrl" in i for i in ins) and res.measure in ("RR", "OR"):
        # Assumed control risk: the median control-arm risk of the included trials (Cochrane
        # Handbook 14.1.5.1); the HAT risk applies the relative effect to it (for an OR through
        # the odds: ACR * OR / (1 - ACR + ACR * OR), Handbook 14.1.5.1 as well).
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
        row["absolute_difference"] = _per_1000_difference(acr, [int(per_1000(x).split(" ")[0]) for x in
                                                                (res.estimate, res.ci_low, res.ci_high)])
    grade = dict(getattr(spec, "grade", None) or {})
    row.setdefault("absolute_difference", "")
    row["ratings"] = {d: grade.get(d, "not rated") for d in DOMAINS}
    row["certainty"] = grade.get("certainty", "not rated")
    row["certainty_text"] = certainty_text(grade)
    row["suggestions"] = suggest(res, threshold)
    if rob_summary:
        row["suggestions"]["risk of bias"] = rob_summary
    return row


def _per_1000_difference(acr, corresponding) -> str:
    """'N more (or fewer) per 1000 (a more to b more)' from the corresponding risks per 1000."""
    base = round(1000 * acr)

    def text(x):
        d = x - base
        return f"{abs(d)} {'more' if d >= 0 else 'fewer'}"

    est, lo, hi = corresponding
    return f"{text(est)} per 1000 ({text(lo)} to {text(hi)})"


def rob_suggestion(judgements: dict) -> str:
    """What the trials' risk-of-bias judgements imply for GRADE's risk-of-bias domain (a suggestion;
    the reviewer owns the rating). ``judgements``: trial label -> {domain: judgement}."""
    if not judgements:
        return ""
    high = sorted(t for t, d in judgements.items() if "high" in d.values())
    unassessed = sorted(t for t, d in judgements.items() if set(d.values()) == {"not assessed"})
    k = len(judgements)
    parts = []
    if high:
        parts.append(f"{len(high)} of {k} trials at high risk in at least one domain ({', '.join(high)})")
    if unassessed:
        parts.append(f"{len(unassessed)} of {k} with no domain assessed")
    if not parts:
        return f"no trial judged at high risk in any domain ({k} trials)"
    verdict = "serious suggested" if len(high) * 2 >= k else "consider"
    return f"{verdict}: " + "; ".join(parts)


def published_sof_row(outcome, published, reason):
    """A summary-of-findings row for a critical outcome hatmeta cannot pool: the published review's
    pooled estimate, labelled as published and not reproduced here, with the reason."""
    ci = (f" ({published.ci_low:.2f} to {published.ci_high:.2f})"
          if published.ci_low is not None and published.ci_high is not None else " (CI not available)")
    people = f"{published.participants} " if published.participants else ""
    return {
        "outcome": outcome,
        "participants": f"{people}({published.trials} RCTs), published",
        "relative_effect": f"{published.measure} {published.estimate:.2f}{ci}: published in {published.source_label}, "
                           "not reproduced here",
        "assumed_risk": "", "corresponding_risk": "", "absolute_difference": "",
        "heterogeneity": "", "ratings": {d: "not rated" for d in DOMAINS}, "certainty": "not rated",
        "certainty_text": "not rated", "suggestions": {"not pooled": reason},
    }


SOF_HEAD = ["Outcome", "Participants (studies)", "Relative effect (95% CI)", "Assumed risk (control)",
            "Corresponding risk (HAT)", "Absolute difference", "Heterogeneity", "Certainty (GRADE)",
            "Suggested by the numbers"]


def sof_table(rows, fmt="markdown", threshold=None) -> str:
    body = [[r["outcome"], r["participants"], r["relative_effect"], r["assumed_risk"], r["corresponding_risk"],
             r.get("absolute_difference", ""), r["heterogeneity"], r["certainty_text"],
             "; ".join(f"{k}: {v}" for k, v in r["suggestions"].items())] for r in rows]
    return render(SOF_HEAD, body, fmt, caption=SOF_TITLE, footnote=_note(threshold))


SOF_TITLE = ("Summary of findings: heroin-assisted treatment for opioid dependence (supervised injected heroin vs "
             "oral methadone; rows marked 'secondary comparison': heroin by any route vs any other treatment)")


def _note(threshold) -> str:
    return ("Certainty is the reviewer's GRADE rating recorded in the analysis spec ('not rated' until "
            "then); the last column is what the numbers alone suggest, for the reviewer to judge. Assumed risk: "
            "median control-arm risk of the included trials; absolute difference = corresponding minus assumed "
            "risk. A row marked published shows a published review's pooled estimate for a critical outcome "
            "that no extracted trial reports by arm: it is not reproduced here. "
            + (f"Smallest important effect used for imprecision: {threshold:g}." if threshold is not None
               else "No threshold of an important effect was given (hatmeta sof --threshold)."))


def sof_text(rows, threshold=None, width: int = 80) -> str:
    """The summary of findings for a terminal: one block per outcome, wrapped to ``width`` columns
    (``--format markdown`` gives the table)."""
    import textwrap

    def wrap(text, first="  ", rest="    "):
        return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest)

    lines = textwrap.wrap(SOF_TITLE, width)
    for r in rows:
        lines += [""] + wrap(f"{r['outcome']}: {r['participants']}", "", "  ")
        lines += wrap(f"Relative effect: {r['relative_effect']}")
        if r["assumed_risk"]:
            lines += wrap(f"Risk: {r['assumed_risk']} (control), {r['corresponding_risk']} (HAT); "
                          f"{r.get('absolute_difference', '')}")
        if r["heterogeneity"]:
            lines += wrap(f"Heterogeneity: {r['heterogeneity']}")
        lines += wrap(f"Certainty (GRADE): {r['certainty_text']}")
        lines += wrap("Suggested by the numbers: " + "; ".join(f"{k}: {v}" for k, v in r["suggestions"].items()))
    return "\n".join(lines + [""] + textwrap.wrap(_note(threshold), width)) + "\n"


# Critical outcomes in clinical order (retention first: the outcome the trials were powered for), then
# any other; within an outcome the primary comparison before the secondary and the sensitivity analyses.
OUTCOME_ORDER = ("retention", "illicit_use", "mortality", "crime", "sae")


def _order(spec) -> tuple:
    outcome = spec.outcome
    rank = OUTCOME_ORDER.index(outcome) if outcome in OUTCOME_ORDER else len(OUTCOME_ORDER)
    title = (getattr(spec, "title", "") or "").lower()
    kind = 2 if "sensitivity" in title else 1 if "secondary" in title else 0
    return rank, outcome, kind, spec.name


def summary_rows(pooled, refused, data_dir=None, analyses_dir=None, threshold=None) -> list:
    """Every summary-of-findings row, critical outcomes in clinical order (``OUTCOME_ORDER``): pooled RR/OR
    analyses (with what their trials' risk-of-bias judgements suggest), and each refused analysis whose outcome a
    published review has pooled (that review's estimate, labelled as published, with the refusal's reason).

    ``pooled``: [(MetaResult, Analysis)]; ``refused``: [(analysis name, reason)].
    """
    from ..errors import InputError
    from ..review.appraisal import load_appraisal, risk_of_bias_of
    from ..review.spec import read_spec, spec_path

    rows = []
    for res, analysis in pooled:
        if res.measure not in ("RR", "OR"):
            continue
        rob = risk_of_bias_of(res) or {}  # the judgements the HAT result carries, by trial label
        judgements = {s.label or s.study: rob[s.study] for s in res.studies if s.study in rob}
        rows.append((_order(analysis.spec), sof_row(res, analysis, threshold, rob_suggestion(judgements))))
    appraisal = load_appraisal(data_dir) if refused else None
    # A published row stands in only for an outcome that no analysis could pool (not for a refused
    # sensitivity analysis of an outcome that is pooled elsewhere).
    done = {analysis.spec.outcome for res, analysis in pooled if res.measure in ("RR", "OR")}
    for name, reason in refused:
        try:
            spec = read_spec(spec_path(name, analyses_dir))
        except InputError:
            continue
        for published in appraisal.published_for(spec.outcome, spec.control_arms)[:1]:
            if spec.outcome not in done:
                rows.append((_order(spec), published_sof_row(sof_outcome(spec), published, _short_reason(reason))))
                done.add(spec.outcome)
    return [r for _, r in sorted(rows, key=lambda nr: nr[0])]


def _short_reason(reason: str) -> str:
    """The refusal's first clause: what is missing, without the per-trial list."""
    return reason.split(" (")[0].split(";")[0]


def sof_outcome(spec) -> str:
    """The outcome as the summary of findings names it: the spec title's part before its first ': '
    outside parentheses, marked when the analysis is the secondary comparison."""
    title = getattr(spec, "title", "") or spec.name
    depth = 0
    for i, ch in enumerate(title):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and title.startswith(": ", i):
            outcome, rest = title[:i], title[i + 2:]
            return outcome + (" (secondary comparison)" if "secondary" in rest else "")
    return title
