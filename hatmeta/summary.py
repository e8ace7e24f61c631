"""Plain-text, CSV and Markdown renderings of a MetaResult (the text reads like metafor's print)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .numbers import p_bare
from .printable import join_lines, printable
from .vocabulary import MEASURE_TEXT, METHOD_TEXT, TEST_NAMES

# Results are typed Any here (res: a MetaResult, post: a BayesResult, ...): this module sits below
# hatmeta.results and hatmeta.bayes in the layers, so it may not import them, even for type checking.

NOTE_CHARS = 200  # a note longer than this is cut in text output (full in JSON)


def _lv(res) -> str:
    from .numbers import level_text

    return level_text(res.level)


def fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "NA"
    return f"{x:.{digits}f}"




def headline(res: Any, labels: Sequence[str] | None = None) -> list[str]:
    """The answer first: pooled estimate with its CI and P, the prediction interval, heterogeneity
    (natural scale for ratios; the shared formatter of figures and tables)."""
    from .numbers import est_ci, fmt_p, interval, tau2_text

    n = res.natural
    random = res.method not in ("FE", "MH", "PETO")
    level = f"{100 * res.level:g}%"
    test = f"t on {fmt(res.df, 0)} df" if res.df is not None else "z"
    ci_how = "HKSJ" if res.ci_method == "hksj" else "Wald"
    scale = " (natural scale)" if res.is_ratio else ""
    out = [f"Pooled {res.measure}{scale}: {est_ci(n(res.estimate), n(res.ci_low), n(res.ci_high))} "
           f"({level} CI, {ci_how}, {test}); {fmt_p(res.p)}"]
    if random and math.isfinite(res.pi_low):
        out.append(f"Prediction interval: {interval(n(res.pi_low), n(res.pi_high))}")
    het = f"Heterogeneity: I² = {res.i2:.0f}%"
    if random:
        het += f"; tau² = {tau2_text(res.tau2)}"
    glmm = res.extra.get("glmm") if isinstance(res.extra, dict) else None
    if glmm is not None:
        # A GLMM has no Cochran's Q (no inverse-variance weights): its heterogeneity test is the likelihood
        # ratio for tau² = 0, as on the forest plot's footer.
        lrt = glmm.get("lrt_tau2")
        het += (f"; LR test of tau² = 0: {lrt:.2f} ({fmt_p(glmm.get('lrt_tau2_p'))})" if lrt is not None
                else "; no Q for a GLMM")
    elif res.q_df > 0 and math.isfinite(res.q):
        het += f"; Q = {res.q:.2f}, df = {res.q_df} ({fmt_p(res.q_p)})"
    elif res.q_df > 0:
        het += "; Q not computed for this model"
    else:
        het += " (one study)"
    out.append(het)
    if labels:
        out.append(f"Comparison: {labels[0]} vs {labels[1]}")
    return out


def format_result(res: Any, labels: Sequence[str] | None = None, verbose: bool = False,
                  study_labels: Mapping[str, str] | None = None) -> str:
    """A readable summary: the answer first (``headline``), then the detail in the style of metafor's
    print.rma (ratios also on the natural scale), then the notes grouped by kind (every note in
    full with ``verbose``). ``labels``: the (experimental, control) arm names; ``study_labels``:
    study id -> label, for naming studies in the notes as the tables do."""
    name = METHOD_TEXT.get(res.method, f"Random-effects model (tau^2 estimator: {res.method})")
    lines = []
    if res.group is not None:
        lines.append(f"Group: {res.group}")
    lines += [f"{name}; k = {res.k}; measure: {res.measure} ({MEASURE_TEXT.get(res.measure, res.measure)})"]
    lines += headline(res, labels) + [""]
    random = res.method not in ("FE", "MH", "PETO")
    if random:
        tau2_ci = ("" if math.isnan(res.tau2_ci_low) and math.isnan(res.tau2_ci_high)
                   and ("glmm" in res.extra or "revman5" in res.extra)
                   else f" ({_lv(res)} CI {fmt(res.tau2_ci_low)} to {fmt(res.tau2_ci_high)})")
        lines.append(f"tau^2 (estimated amount of total heterogeneity): {fmt(res.tau2)}{tau2_ci}")
        lines.append(f"tau (square root of estimated tau^2 value):      {fmt(res.tau)}")
    glmm = res.extra.get("glmm") if isinstance(res.extra, dict) else None
    if glmm is None and "i2_definition" in res.extra:  # RevMan Web's I^2 from tau^2 (fit/revman_web.py)
        lines.append(f"I^2 (tau^2 / (tau^2 + typical vi)):              {fmt(res.i2, 2)}%")
        lines.append(f"H^2 (1 / (1 - I^2)):                             {fmt(res.h2, 2)}")
    elif glmm is None:
        lines.append(f"I^2 (Q-based, (Q - df)/Q):                       {fmt(res.i2, 2)}%")
        lines.append(f"H^2 (Q/df):                                      {fmt(res.h2, 2)}")
    else:  # metafor's rma.glmm: tau^2 against the typical within-study variance
        lines.append(f"I^2 (tau^2 / (tau^2 + typical vi)):              {fmt(res.i2, 2)}%")
        lines.append(f"H^2 (1 + tau^2 / typical vi):                    {fmt(res.h2, 2)}")
        if "sigma2" in glmm:
            lines.append(f"sigma^2 (variance of the random study intercepts): {fmt(glmm['sigma2'])}")
    if res.k <= 60:
        lines += [""] + study_lines(res, labels)
    if glmm is None:
        lines += ["", "Test for Heterogeneity:", f"Q(df = {res.q_df}) = {fmt(res.q)}, p-val {_p_eq(res.q_p)}", ""]
    else:
        lines += ["", "Test for Heterogeneity (likelihood ratio, tau^2 = 0; p from the 50:50 chi2_0/chi2_1 mixture):",
                  f"LRT = {fmt(glmm.get('lrt_tau2'))}, p-val {_p_eq(glmm.get('lrt_tau2_p'))}; "
                  f"log-likelihood {fmt(glmm.get('loglik'))}", ""]
    stat = res.stat_name
    ci_label = "HKSJ, t" if res.ci_method == "hksj" else "Wald, z"
    lines.append(f"Model Results ({ci_label}; {_lv(res)} CI; analysis scale: {res.scale}):")
    lines.append("")
    lines.append(f"{'estimate':>10} {'se':>8} {stat + 'val':>8} {'pval':>8} {'ci.lb':>8} {'ci.ub':>8}")
    lines.append(f"{fmt(res.estimate):>10} {fmt(res.se):>8} {fmt(res.stat):>8} {p_bare(res.p):>8} "
                 f"{fmt(res.ci_low):>8} {fmt(res.ci_high):>8}")
    if res.df is not None:
        lines.append(f"(t on {fmt(res.df, 0)} df)")
    if res.scale != "identity":  # ratios, proportions, correlations back-transformed
        lines += ["", f"{res.measure} (natural scale): {fmt(res.natural(res.estimate))} "
                      f"[{fmt(res.natural(res.ci_low))}, {fmt(res.natural(res.ci_high))}]"]
    if random and math.isfinite(res.pi_low):
        df_txt = pi_convention(res)
        lines.append(f"Prediction interval ({_lv(res)}, {df_txt}): {fmt(res.natural(res.pi_low))} to "
                     f"{fmt(res.natural(res.pi_high))}{' (natural scale)' if res.scale != 'identity' else ''}")
    if res.subgroups is not None:
        lines += ["", "Subgroups:"]
        for s in res.subgroups:
            from .numbers import est_ci, tau2_text

            n = res.natural
            lines.append(f"  {s.group}: k = {s.k}, estimate {est_ci(n(s.estimate), n(s.ci_low), n(s.ci_high))}, "
                         f"tau^2 = {tau2_text(s.tau2)}")
        t = res.subgroup_test
        lines.append(f"  Test for subgroup differences: Q = {fmt(t.q)}, df = {t.df}, p = {p_bare(t.p)}")
    if res.meta_regression is not None:
        m = res.meta_regression
        lines += ["", f"Meta-regression ({m.method}): tau^2 = {fmt(m.tau2)}, R^2 = {fmt(m.r2, 2)}%",
                  f"  Test of moderators: {'F' if m.test == 't' else 'QM'}(df = {m.qm_df}) = {fmt(m.qm)}, "
                  f"p-val {_p_eq(m.qm_p)}",
                  f"  Residual heterogeneity: QE(df = {m.qe_df}) = {fmt(m.qe)}, p-val {_p_eq(m.qe_p)}",
                  ]
        w = max(12, *(len(c.name) for c in m.coefficients))
        lines.append(f"  {'':{w}} {'estimate':>9} {'se':>8} {m.test + 'val':>8} {'pval':>8}")
        for c in m.coefficients:
            lines.append(f"  {c.name:{w}} {fmt(c.estimate):>9} {fmt(c.se):>8} {fmt(c.stat):>8} {p_bare(c.p):>8}")
        lines += [f"  Note: {n}" for n in m.notes]
    if res.egger is not None:
        e = res.egger
        lines += ["", f"Egger's test: intercept {fmt(e.intercept)} (se {fmt(e.se)}), t = {fmt(e.t)}, "
                      f"df = {e.df}, p = {p_bare(e.p)}"]
    if res.extra:
        lines += robustness_lines(res)
    for title, rows, _key in (("Leave-one-out (omitted)", res.leave_one_out, "omitted"),
                             ("Cumulative (added)", res.cumulative, "added")):
        if rows is not None:
            lines += ["", f"{title}:"]
            for r in rows:
                lines.append(f"  {r.study:30} k={r.k:<3} {fmt(res.natural(r.estimate))} "
                             f"[{fmt(res.natural(r.ci_low))}, {fmt(res.natural(r.ci_high))}] tau^2 = {fmt(r.tau2)}")
    lines += _sparse_lines(res)
    if res.notes:
        sparse = res.extra.get("sparse_data") if isinstance(res.extra, dict) else None
        notes = tuple(n for n in res.notes if sparse is None or n != sparse.advice)  # the advice is shown whole above
        if notes:  # no header over nothing when the advice was the only note
            lines += [""] + (notes_full(notes, study_labels) if verbose else notes_grouped(notes, study_labels))
    return join_lines(lines)


# (kind, pattern): the notes the pooling and a review's analyses write, by kind. group(1) is the study id.
NOTE_KINDS = (
    ("Trials omitted", r"^omitted (\S+): (.*)$"),
    ("Derived figures", r"^(\S+)(?: \S+)?: derived figure: (.*)$"),
    ("Sources disagree", r"^(\S+): sources disagree on (.*)$"),
    ("Arm definitions differ in wording", r"^(\S+): the arms' definitions differ(.*)$"),
    ("Not estimable (left out of the pooling)", r"^\d+ stud(?:y|ies) dropped \((.*)\)$"),
)


def _label(study, study_labels):
    return (study_labels or {}).get(study, study)


def _relabel(text: str, study_labels: Mapping[str, str] | None) -> str:
    """Study ids in a note replaced by their labels (whole words only)."""
    import re

    if not study_labels:
        return text
    ids = sorted(study_labels, key=len, reverse=True)
    return re.sub(r"\b(" + "|".join(re.escape(i) for i in ids) + r")\b", lambda m: study_labels[m.group(1)], text)


def _shorten(n, limit=NOTE_CHARS):
    """The middle goes: a note's start names the trial and the issue, its end what was used."""
    return n if len(n) <= limit else n[:limit - 75].rsplit(" ", 1)[0] + " ... " + n[-70:].split(" ", 1)[-1]


def notes_grouped(notes: Sequence[str], study_labels: Mapping[str, str] | None = None) -> list[str]:
    """Notes grouped by kind and counted, studies named by label; omitted trials one line each with
    the reason's gist. The JSON, the report and ``--verbose`` keep every note whole."""
    import re

    groups: dict[str, list[re.Match[str]]] = {}
    other: list[str] = []
    for note in notes:
        for kind, pattern in NOTE_KINDS:
            m = re.match(pattern, note)
            if m:
                groups.setdefault(kind, []).append(m)
                break
        else:
            other.append(note)
    lines = [f"Notes ({len(notes)}; -v/--verbose shows each in full):"]
    for kind, _ in NOTE_KINDS:
        found = groups.get(kind)
        if not found:
            continue
        if kind == "Trials omitted":
            lines.append(f"  {kind} ({len(found)}):")
            for m in found:
                reason = m.group(2).split(" (")[0]
                lines.append(f"    {_label(m.group(1), study_labels)}: {_shorten(reason, 100)}")
        elif kind.startswith("Not estimable"):
            for m in found:
                lines.append(f"  {kind}: {_shorten(_relabel(m.group(1), study_labels), 160)}")
        else:
            names = list(dict.fromkeys(_label(m.group(1), study_labels) for m in found))
            lines.append(f"  {kind} ({len(found)}): {', '.join(names)}")
    for note in other:
        lines.append(f"  {_shorten(_relabel(note, study_labels))}")
    return lines


def notes_full(notes: Sequence[str], study_labels: Mapping[str, str] | None = None) -> list[str]:
    return [f"Notes ({len(notes)}):"] + [f"  - {_relabel(n, study_labels)}" for n in notes]


def _arm_text(inputs) -> str:
    """The study's figures as given: events/n, mean (SD) n, or events/time per arm."""
    if "events_treat" in inputs and "n_treat" in inputs:
        return f"{inputs['events_treat']}/{inputs['n_treat']} vs {inputs['events_ctrl']}/{inputs['n_ctrl']}"
    if "mean_treat" in inputs:
        return (f"{inputs['mean_treat']:g} ({inputs['sd_treat']:g}) n={inputs['n_treat']:g} vs "
                f"{inputs['mean_ctrl']:g} ({inputs['sd_ctrl']:g}) n={inputs['n_ctrl']:g}")
    if "time_treat" in inputs:
        return (f"{inputs['events_treat']:g}/{inputs['time_treat']:g} vs "
                f"{inputs['events_ctrl']:g}/{inputs['time_ctrl']:g}")
    return ""


def study_lines(res: Any, labels: Sequence[str] | None = None) -> list[str]:
    """One line per study: name, figures per arm, effect [CI at the result's level] (natural scale), weight %."""
    from .numbers import est_ci

    n = res.natural
    rows = [(s.label or s.study, _arm_text(s.inputs), est_ci(n(s.yi), n(s.ci_low), n(s.ci_high)),
             f"{fmt(s.weight, 1)}%") for s in res.studies]
    rows += [(a.get("label") or a["study"], _arm_text(a["inputs"]), "Not estimable", "")
             for a in getattr(res, "not_estimable", ()) or ()]
    arms = f"{labels[0]} vs {labels[1]}" if labels else "treatment vs control"
    head = ("study", arms if any(r[1] for r in rows) else "",
            f"{res.measure}{' (natural scale)' if res.scale != 'identity' else ''} [{_lv(res)} CI]", "weight")
    widths = [max(len(r[j]) for r in rows + [head]) for j in range(4)]
    line = lambda r: "  " + "  ".join(x.ljust(w) if j < 3 else x.rjust(w)  # noqa: E731
                                      for j, (x, w) in enumerate(zip(r, widths))).rstrip()
    return [line(head)] + [line(r) for r in rows]


def _p_eq(p):
    from .numbers import p_text

    return p_text(p)


STUDY_FIELDS = ("study", "yi", "vi", "ci_low", "ci_high", "weight")



def to_markdown(res: Any) -> str:
    """Study rows, the pooled row and heterogeneity, with the figures' and tables' number formatter."""
    from .numbers import est_ci, fmt_p, tau2_text

    n = res.natural
    nat = "natural scale" if res.scale != "identity" else "identity scale"
    head = f"| study | {res.measure} [{_lv(res)} CI] ({nat}) | weight % |\n|---|---|---|\n"
    rows = "".join(f"| {printable(s.label or s.study).replace('|', chr(92) + '|')} | "
                   f"{est_ci(n(s.yi), n(s.ci_low), n(s.ci_high))} | {fmt(s.weight, 1)} |\n"
                   for s in res.studies)
    rows += "".join(f"| {printable(a.get('label') or a['study']).replace('|', chr(92) + '|')} | Not estimable | |\n"
                    for a in getattr(res, "not_estimable", ()) or ())
    pooled_ci = est_ci(n(res.estimate), n(res.ci_low), n(res.ci_high))
    pooled = f"| **pooled ({res.method}, {res.ci_method})** | **{pooled_ci}** | 100 |\n"
    het = (f"\nHeterogeneity: tau^2 = {tau2_text(res.tau2)}; Q = {fmt(res.q, 2)}, df = {res.q_df} "
           f"({fmt_p(res.q_p)}); I^2 = {fmt(res.i2, 0)}%\n")
    return head + rows + pooled + het


def bayes_text(res: Any, post: Any, others: Sequence[Any] = ()) -> str:
    """The Bayesian posterior as text; ratios also on the natural scale, the probabilities in words and
    a threshold on the scale it was given (natural for ratios)."""
    words = {"p_favours_treatment": "P(the mean effect favours treatment)",
             "p_prediction_favours_treatment": "P(a new trial's effect favours treatment)",
             "p_beyond_threshold": "P(the mean effect is beyond the threshold)"}
    summary = []
    for line in post.summary().splitlines():
        key, _, value = line.partition(": ")
        if key == "threshold":
            t = post.probabilities.get("threshold")
            shown = fmt(res.natural(t), 4) if t is not None else value
            summary.append(f"threshold: {shown}{' (natural scale)' if res.is_ratio else ''}")
        elif key in post.probabilities and key in words:
            summary.append(f"{words[key]}: {value}")
        else:
            summary.append(line)
    lines = ["\n".join(summary)]
    if res.is_ratio:
        n = res.natural
        lines += ["", f"{res.measure} (natural scale): posterior median {fmt(n(post.mu.median))} "
                      f"[{_lv(res)} CrI {fmt(n(post.mu.low))}, {fmt(n(post.mu.high))}]; predicted new trial "
                      f"{fmt(n(post.prediction.median))} "
                      f"[{fmt(n(post.prediction.low))}, {fmt(n(post.prediction.high))}]"]
    if others:
        lines += ["", f"Prior sensitivity (mu: median [{_lv(res)} CrI]; tau: median):"]
        for o in (post, *others):
            m = o.mu
            lines.append(f"  {o.prior['tau_prior']:24} {fmt(res.natural(m.median))} [{fmt(res.natural(m.low))}, "
                         f"{fmt(res.natural(m.high))}]  tau {fmt(o.tau.median)}  "
                         f"P(favours) {o.probabilities['p_favours_treatment']:.3f}")
    return join_lines(lines)


def _sparse_lines(res) -> list:
    """The sparse-data advice (whole, wrapped) and the methods side by side, if the result has them."""
    import textwrap

    extra = res.extra if isinstance(res.extra, dict) else {}
    lines = []
    advice = extra.get("sparse_data")
    if advice is not None:
        lines += [""] + textwrap.wrap("Sparse data: " + advice.advice[len("sparse data: "):], 100,
                                      subsequent_indent="  ")
        if advice.continuity:
            lines.append(f"  Zero-cell increment {advice.continuity[0]['increment']:g} (effects undefined without it):")
            for c in advice.continuity:
                g, u = c["cells_given"], c["cells_used"]
                lines.append(f"    {c['study']}: cells {g[0]}/{g[1]} vs {g[2]}/{g[3]} used as "
                             f"{u[0]:g}/{u[1]:g} vs {u[2]:g}/{u[3]:g}; {res.measure} {fmt(res.natural(c['yi']), 3)}")
    rows = extra.get("compare_methods")
    if rows:
        lines += ["", methods_text(rows, res.measure, res.is_ratio)]
    return lines


def methods_text(rows: Sequence[Any], measure: str, is_ratio: bool) -> str:
    """The comparison as a text table on the natural scale."""
    import math

    nat = math.exp if is_ratio else (lambda x: x)

    def f(x, d=2):
        return "NA" if x is None or not math.isfinite(x) else f"{x:.{d}f}"

    def fn(x):
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return "NA"
        if math.isinf(x):
            return ("inf" if x > 0 else ("0" if is_ratio else "-inf"))
        return f(nat(x))

    w = max(len(r.label) for r in rows)
    lines = [f"Methods compared ({measure}{', natural scale' if is_ratio else ''}):",
             f"  {'method':<{w}}  {'k':>3}  {measure:>6}  {'95% CI':<17} {'tau^2':>6}  {'p':>7}"]
    for r in rows:
        ci = f"[{fn(r.ci_low)}, {fn(r.ci_high)}]"
        p = "NA" if not math.isfinite(r.p) else ("<.0001" if r.p < 1e-4 else f"{r.p:.4f}")
        k = "" if r.k is None else str(r.k)
        lines.append(f"  {r.label:<{w}}  {k:>3}  {fn(r.estimate):>6}  {ci:<17} {f(r.tau2, 3):>6}  {p:>7}"
                     + (f"  ({r.note})" if r.note else ""))
    return join_lines(lines)


def robustness_lines(res: Any) -> list[str]:
    x = dict(res.extra or {})
    refused = [(k, v["error"]) for k, v in x.items() if isinstance(v, dict) and "error" in v]
    for key, _ in refused:
        del x[key]
    n = res.natural
    nat = " (natural scale)" if res.is_ratio else ""
    lines = []
    if "common_effect" in x:
        lines += ["", "Common-effect and random-effects models" + nat + ":"]
        for key, label in (("common_effect", "common effect"), ("random_effects", "random effects")):
            m = x[key]
            stat = "t" if "t" in m else "z"
            lines.append(f"  {label + ' (' + m['method'] + ')':28} {fmt(n(m['estimate']))} "
                         f"[{fmt(n(m['ci_low']))}, {fmt(n(m['ci_high']))}]  {stat} = {fmt(m[stat])}, "
                         f"p = {p_bare(m['p'])}")
    for key in ("peters", "harbord", "begg"):
        if key in x:
            t = x[key]
            stat = (f"Kendall's tau = {fmt(t.statistic)}" if t.df is None else
                    f"t = {fmt(t.statistic)}, df = {t.df}")
            lines += ["", f"{TEST_NAMES[key]}: {stat}, p = {p_bare(t.p)} ({t.description})"]
    if "pet_peese" in x:
        pp = x["pet_peese"]
        lines += ["", "PET-PEESE (limit estimates, t intervals)" + nat + ":"]
        for key in ("pet", "peese"):
            e = pp.pet if key == "pet" else pp.peese
            lines.append(f"  {key.upper():6} {fmt(n(e['estimate']))} [{fmt(n(e['ci_low']))}, "
                         f"{fmt(n(e['ci_high']))}]  intercept p = {p_bare(e['p'])}")
        lines.append(f"  conditional estimate: {pp.chosen.upper()} (PEESE when PET's intercept p < 0.05)")
    if "trim_fill" in x:
        tf = x["trim_fill"]
        lines += ["", f"Trim-and-fill ({tf.estimator}): {tf.k0} stud{'y' if tf.k0 == 1 else 'ies'} filled on the "
                      f"{tf.side}; adjusted estimate{nat} {fmt(n(tf.estimate))} [{fmt(n(tf.ci_low))}, "
                      f"{fmt(n(tf.ci_high))}], tau^2 = {fmt(tf.tau2)}"]
    if "selection_model" in x:
        s = x["selection_model"]
        steps = ", ".join(f"{c:g}" for c in s.steps[:-1])
        lines += ["", f"Step-function selection model (one-sided p cut-points {steps}, "
                      f"alternative {s.alternative}): estimate{nat} {fmt(n(s.estimate))} "
                      f"[{fmt(n(s.ci_low))}, {fmt(n(s.ci_high))}], tau^2 = {fmt(s.tau2)}, "
                      f"delta = {', '.join(fmt(d) for d in s.delta)}; LRT p = {p_bare(s.lrt_p)}"]
    if "influence" in x:
        rows = x["influence"]
        w = max(10, *(len(r.study) for r in rows))
        lines += ["", "Influence diagnostics (metafor's influence; * = influential):",
                  f"  {'study':{w}} {'rstudent':>9} {'dffits':>8} {'cook.d':>8} {'cov.r':>8} {'tau2.del':>9} "
                  f"{'QE.del':>9} {'hat':>7}"]
        for r in rows:
            lines.append(f"  {r.study:{w}} {fmt(r.rstudent):>9} {fmt(r.dffits):>8} {fmt(r.cooks_distance):>8} "
                         f"{fmt(r.cov_ratio):>8} {fmt(r.tau2_deleted):>9} {fmt(r.q_deleted, 2):>9} "
                         f"{fmt(r.hat):>7}{' *' if r.influential else ''}")
        if "i2_ci_low" in x and x["i2_ci_low"] is not None and math.isfinite(x["i2_ci_low"]):
            lines.append(f"  I^2 {int(round(res.level * 100))}% CI (Q-profile, tau^2-based): "
                         f"{fmt(x['i2_ci_low'], 2)}% to {fmt(x['i2_ci_high'], 2)}%; H^2: {fmt(x['h2_ci_low'], 2)} to "
                         f"{fmt(x['h2_ci_high'], 2)}")
    for key, message in refused:
        lines += ["", f"{key.replace('_', ' ').capitalize()} not computed: {message}"]
    return lines


def record_text(rec: Any) -> str:
    """A result without a layout of its own: its type, then one line per scalar field (analysis scale)."""
    lines = [type(rec).__name__]
    for key, value in rec.to_dict().items():
        if isinstance(value, (dict, list)):
            value = f"({len(value)} entries; see to_dict())" if value else "none"
        elif isinstance(value, float):
            value = fmt(value)
        lines.append(f"  {key}: {value}")
    return join_lines(lines)


def _nat_fmt(scale: str):
    """Formatter of an analysis-scale value on the natural scale (ratios back from the log)."""
    if scale == "log":
        return lambda x: fmt(math.exp(x)) if x is not None and math.isfinite(x) else "NA"
    return lambda x: fmt(x) if x is not None and math.isfinite(x) else "NA"


def text_table(head: Sequence[Any], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Lines of a plain-text table, indented two spaces: the first column left-aligned, the others right."""
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    return ["  " + "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))) for r in [head, *rows]]


def sensitivity_text(res: Any) -> str:
    """A leave-one-out or cumulative sequence (hatmeta.results.Sensitivity), natural scale for ratios."""
    from .numbers import level_text

    n = _nat_fmt(res.scale)
    what = ("Leave-one-out analysis (each row omits one study)" if res.kind == "leave_one_out" else
            f"Cumulative meta-analysis (studies added in the order of {res.order_by!r})")
    nat = ", natural scale" if res.scale == "log" else ""
    head = ("omitted" if res.kind == "leave_one_out" else "added", "k", res.measure + nat,
            f"{level_text(res.level)} CI", "tau^2", "I^2", "p")
    rows = [(r.study, r.k, n(r.estimate), f"[{n(r.ci_low)}, {n(r.ci_high)}]", fmt(r.tau2, 3),
             f"{r.i2:.1f}%" if math.isfinite(r.i2) else "NA", p_bare(r.p)) for r in res.rows]
    return join_lines([f"{what}; {res.method}"] + text_table(head, rows))


def subgroups_text(res: Any) -> str:
    """Subgroup analysis (hatmeta.results.Subgroups) and the test for subgroup differences."""
    from .numbers import level_text

    n = _nat_fmt(res.scale)
    nat = ", natural scale" if res.scale == "log" else ""
    head = (res.by, "k", res.measure + nat, f"{level_text(res.level)} CI", "tau^2", "I^2")
    rows = [(g.group, g.k, n(g.estimate), f"[{n(g.ci_low)}, {n(g.ci_high)}]", fmt(g.tau2, 3),
             f"{g.i2:.1f}%" if math.isfinite(g.i2) else "NA") for g in res.groups]
    t = res.test
    return join_lines([f"Subgroups by {res.by!r}; {res.method}, a tau^2 per subgroup"] + text_table(head, rows)
                     + [f"Test for subgroup differences: Q = {fmt(t.q)}, df = {t.df}, p = {p_bare(t.p)}"])


def influence_text(res: Any) -> str:
    """Influence diagnostics (hatmeta.results.Influence); '*' marks an influential study (metafor's rule)."""
    head = ("study", "rstudent", "dffits", "cook.d", "cov.r", "tau2.del", "QE.del", "hat", "inf")
    rows = [(r.study, fmt(r.rstudent), fmt(r.dffits), fmt(r.cooks_distance), fmt(r.cov_ratio),
             fmt(r.tau2_deleted), fmt(r.q_deleted), fmt(r.hat), "*" if r.influential else "") for r in res.rows]
    return join_lines([f"Influence diagnostics; {res.method}"] + text_table(head, rows))


def batch_text(batch: Any, shown: int = 10) -> str:
    """A --by result (hatmeta.fit.batch.BatchResult): counts, then the first ``shown`` groups (analysis
    scale: estimate, CI, tau², k) and the failed groups' reasons."""
    head = ("group", "k", "estimate", "CI (analysis scale)", "tau^2")
    a = batch._arrays
    rows = [(str(batch.groups[j]), int(batch._counts[j]), fmt(float(a["estimate"][j])),
             f"[{fmt(float(a['ci_low'][j]))}, {fmt(float(a['ci_high'][j]))}]", fmt(float(a["tau2"][j]), 3))
            for j in range(min(shown, len(batch)))]
    failed = batch.failed
    lines = [f"{len(batch)} meta-analyses ({batch.es.measure}, {batch.method}), {len(failed)} failed"]
    lines += text_table(head, rows)
    if len(batch) > shown:
        lines.append(f"  ... and {len(batch) - shown} more (to_frame() has every group)")
    lines += [f"  failed {g}: {e}" for g, e in failed[:shown]]
    return "\n".join(lines)


def pi_convention(res: Any) -> str:
    """How the prediction interval was formed: 't, k - 2 df' (Higgins et al. 2009), 'z', or metafor's
    predict.rma ('t, k - 1 df, as metafor' after Knapp-Hartung; z after a Wald test)."""
    if res.pi_method == "t":  # revman-web's interval: t on k - 1 df (res.extra["pi_df"])
        return f"t, {res.extra.get('pi_df', res.k - 2) if isinstance(res.extra, dict) else res.k - 2} df"
    if res.pi_method == "metafor" and res.ci_method == "hksj":
        return f"t, {res.k - 1} df, as metafor's predict()"
    return "z, as metafor's predict()" if res.pi_method == "metafor" else "z"
