"""Plain-text, CSV and Markdown renderings of a MetaResult (the text reads like metafor's print)."""

from __future__ import annotations

import csv
import io
import math

METHOD_NAMES = {
    "FE": "Common-effect model (inverse variance)",
    "MH": "Common-effect model (Mantel-Haenszel)",
    "PETO": "Common-effect model (Peto)",
    "MH-DL": "Random-effects model (RevMan 5 M-H, Random: DerSimonian-Laird)",
    "GLMM-FS": "Random-effects GLMM, fixed study intercepts (metafor UM.FS; ML)",
    "GLMM-RS": "Random-effects GLMM, random study intercepts (metafor UM.RS; ML)",
    "GLMM-EXACT": "Random-effects conditional GLMM, exact likelihood (metafor CM.EL; ML)",
}
MEASURE_NAMES = {"RR": "risk ratio", "OR": "odds ratio", "RD": "risk difference", "MD": "mean difference",
                 "SMD": "standardised mean difference (Hedges' g)", "IRR": "incidence rate ratio",
                 "GEN": "generic effect", "PETO": "Peto odds ratio"}

NOTE_CHARS = 200  # a note longer than this is cut in text output (full in JSON)


def fmt(x, digits=4):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "NA"
    return f"{x:.{digits}f}"


def fmt_p(p):
    if p is None or not math.isfinite(p):
        return "NA"
    return "<.0001" if p < 1e-4 else f"{p:.4f}"


def format_result(res) -> str:
    """A readable summary in the style of metafor's print.rma (ratios also on the natural scale)."""
    name = METHOD_NAMES.get(res.method, f"Random-effects model (tau^2 estimator: {res.method})")
    lines = []
    if res.group is not None:
        lines.append(f"Group: {res.group}")
    lines += [f"{name}; k = {res.k}; measure: {res.measure} ({MEASURE_NAMES.get(res.measure, res.measure)})", ""]
    random = res.method not in ("FE", "MH", "PETO")
    if random:
        tau2_ci = ("" if math.isnan(res.tau2_ci_low) and math.isnan(res.tau2_ci_high) and "glmm" in res.extra
                   else f" (95% CI {fmt(res.tau2_ci_low)} to {fmt(res.tau2_ci_high)})")
        lines.append(f"tau^2 (estimated amount of total heterogeneity): {fmt(res.tau2)}{tau2_ci}")
        lines.append(f"tau (square root of estimated tau^2 value):      {fmt(res.tau)}")
    glmm = res.extra.get("glmm") if isinstance(res.extra, dict) else None
    if glmm is None:
        lines.append(f"I^2 (Q-based, (Q - df)/Q):                       {fmt(res.i2, 2)}%")
        lines.append(f"H^2 (Q/df):                                      {fmt(res.h2, 2)}")
    else:  # metafor's rma.glmm: tau^2 against the typical within-study variance
        lines.append(f"I^2 (tau^2 / (tau^2 + typical vi)):              {fmt(res.i2, 2)}%")
        lines.append(f"H^2 (1 + tau^2 / typical vi):                    {fmt(res.h2, 2)}")
        if "sigma2" in glmm:
            lines.append(f"sigma^2 (variance of the random study intercepts): {fmt(glmm['sigma2'])}")
    if res.k <= 60:
        lines += [""] + study_lines(res)
    if glmm is None:
        lines += ["", f"Test for Heterogeneity:", f"Q(df = {res.q_df}) = {fmt(res.q)}, p-val {_p_eq(res.q_p)}", ""]
    else:
        lines += ["", "Test for Heterogeneity (likelihood ratio, tau^2 = 0; p from the 50:50 chi2_0/chi2_1 mixture):",
                  f"LRT = {fmt(glmm.get('lrt_tau2'))}, p-val {_p_eq(glmm.get('lrt_tau2_p'))}; "
                  f"log-likelihood {fmt(glmm.get('loglik'))}", ""]
    stat = res.stat_name
    ci_label = "HKSJ, t" if res.ci_method == "hksj" else "Wald, z"
    lines.append(f"Model Results ({ci_label}; analysis scale: {res.scale}):")
    lines.append("")
    lines.append(f"{'estimate':>10} {'se':>8} {stat + 'val':>8} {'pval':>8} {'ci.lb':>8} {'ci.ub':>8}")
    lines.append(f"{fmt(res.estimate):>10} {fmt(res.se):>8} {fmt(res.stat):>8} {fmt_p(res.p):>8} "
                 f"{fmt(res.ci_low):>8} {fmt(res.ci_high):>8}")
    if res.df is not None:
        lines.append(f"(t on {fmt(res.df, 0)} df)")
    if res.is_ratio:
        lines += ["", f"{res.measure} (natural scale): {fmt(res.natural(res.estimate))} "
                      f"[{fmt(res.natural(res.ci_low))}, {fmt(res.natural(res.ci_high))}]"]
    if random and math.isfinite(res.pi_low):
        df_txt = f"t, {res.k - 2} df" if res.pi_method == "t" else "z"
        lines.append(f"Prediction interval ({df_txt}): {fmt(res.natural(res.pi_low))} to "
                     f"{fmt(res.natural(res.pi_high))}{' (natural scale)' if res.is_ratio else ''}")
    if res.subgroups is not None:
        lines += ["", "Subgroups:"]
        for s in res.subgroups:
            lines.append(f"  {s.group}: k = {s.k}, estimate {fmt(res.natural(s.estimate))} "
                         f"[{fmt(res.natural(s.ci_low))}, {fmt(res.natural(s.ci_high))}], tau^2 = {fmt(s.tau2)}")
        t = res.subgroup_test
        lines.append(f"  Test for subgroup differences: Q = {fmt(t.q)}, df = {t.df}, p = {fmt_p(t.p)}")
    if res.meta_regression is not None:
        m = res.meta_regression
        lines += ["", f"Meta-regression (REML): tau^2 = {fmt(m.tau2)}, R^2 = {fmt(m.r2, 2)}%",
                  f"  Test of moderators: {'F' if m.test == 't' else 'QM'}(df = {m.qm_df}) = {fmt(m.qm)}, "
                  f"p-val {_p_eq(m.qm_p)}",
                  f"  Residual heterogeneity: QE(df = {m.qe_df}) = {fmt(m.qe)}, p-val {_p_eq(m.qe_p)}",
                  ]
        w = max(12, *(len(c.name) for c in m.coefficients))
        lines.append(f"  {'':{w}} {'estimate':>9} {'se':>8} {m.test + 'val':>8} {'pval':>8}")
        for c in m.coefficients:
            lines.append(f"  {c.name:{w}} {fmt(c.estimate):>9} {fmt(c.se):>8} {fmt(c.stat):>8} {fmt_p(c.p):>8}")
    if res.egger is not None:
        e = res.egger
        lines += ["", f"Egger's test: intercept {fmt(e.intercept)} (se {fmt(e.se)}), t = {fmt(e.t)}, "
                      f"df = {e.df}, p = {fmt_p(e.p)}"]
    for title, rows, key in (("Leave-one-out (omitted)", res.leave_one_out, "omitted"),
                             ("Cumulative (added)", res.cumulative, "added")):
        if rows is not None:
            lines += ["", f"{title}:"]
            for r in rows:
                lines.append(f"  {r.study:30} k={r.k:<3} {fmt(res.natural(r.estimate))} "
                             f"[{fmt(res.natural(r.ci_low))}, {fmt(res.natural(r.ci_high))}] tau^2 = {fmt(r.tau2)}")
    lines += _sparse_lines(res)
    if res.notes:
        # The notes carry every source and search, which can run to paragraphs; a terminal reader wants
        # the gist under the result, and the JSON and the report keep them whole.
        # The middle goes: a note's start names the trial and the issue, its end what was used or concluded.
        sparse = res.extra.get("sparse_data") if isinstance(res.extra, dict) else None
        notes = [n for n in res.notes if sparse is None or n != sparse.advice]  # shown whole above
        shortened = [n if len(n) <= NOTE_CHARS else
                     n[:NOTE_CHARS - 75].rsplit(" ", 1)[0] + " ... " + n[-70:].split(" ", 1)[-1] for n in notes]
        lines += [""] + [f"Note: {n}" for n in shortened] if shortened else []
        if shortened != notes:
            lines.append("(notes shortened; --format json gives them whole)")
    return "\n".join(lines)


def _arm_text(inputs):
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


def study_lines(res) -> list:
    """One line per study: name, figures per arm, effect [95% CI] (natural scale), weight %."""
    rows = [(s.label or s.study, _arm_text(s.inputs), f"{fmt(res.natural(s.yi))} [{fmt(res.natural(s.ci_low))}, "
             f"{fmt(res.natural(s.ci_high))}]", f"{fmt(s.weight, 1)}%") for s in res.studies]
    head = ("study", "treatment vs control" if any(r[1] for r in rows) else "",
            f"{res.measure}{' (natural scale)' if res.is_ratio else ''} [95% CI]", "weight")
    widths = [max(len(r[j]) for r in rows + [head]) for j in range(4)]
    line = lambda r: "  " + "  ".join(x.ljust(w) if j < 3 else x.rjust(w)  # noqa: E731
                                      for j, (x, w) in enumerate(zip(r, widths))).rstrip()
    return [line(head)] + [line(r) for r in rows]


def _p_eq(p):
    s = fmt_p(p)
    return s if s.startswith("<") else f"= {s}"


STUDY_FIELDS = ("study", "yi", "vi", "ci_low", "ci_high", "weight")


def to_csv(results) -> str:
    """Study rows then a pooled row, one block per result (analysis scale)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["group", "row", "study", "k", "estimate", "se", "ci_low", "ci_high", "weight", "tau2", "i2", "p"])
    for res in results:
        g = "" if res.group is None else res.group
        for s in res.studies:
            w.writerow([g, "study", s.study, 1, _c(s.yi), _c(s.vi ** 0.5), _c(s.ci_low), _c(s.ci_high),
                        _c(s.weight), "", "", ""])
        w.writerow([g, "pooled", res.method, res.k, _c(res.estimate), _c(res.se), _c(res.ci_low),
                    _c(res.ci_high), "100", _c(res.tau2), _c(res.i2), _c(res.p)])
    return buf.getvalue()


def _c(x):
    return "" if x is None or not math.isfinite(x) else repr(float(x))


def to_markdown(res) -> str:
    nat = "natural scale" if res.is_ratio else "identity scale"
    head = f"| study | {res.measure} [95% CI] ({nat}) | weight % |\n|---|---|---|\n"
    rows = "".join(f"| {s.label or s.study} | {fmt(res.natural(s.yi), 3)} [{fmt(res.natural(s.ci_low), 3)}, "
                   f"{fmt(res.natural(s.ci_high), 3)}] | {fmt(s.weight, 1)} |\n" for s in res.studies)
    pooled = (f"| **pooled ({res.method}, {res.ci_method})** | **{fmt(res.natural(res.estimate), 3)} "
              f"[{fmt(res.natural(res.ci_low), 3)}, {fmt(res.natural(res.ci_high), 3)}]** | 100 |\n")
    het = (f"\nHeterogeneity: tau^2 = {fmt(res.tau2)}; Q = {fmt(res.q, 2)}, df = {res.q_df} "
           f"(p {_p_eq(res.q_p)}); I^2 = {fmt(res.i2, 0)}%\n")
    return head + rows + pooled + het


def bayes_text(res, post, others=()):
    """The Bayesian posterior as text; ratios also on the natural scale."""
    lines = [post.summary()]
    if res.is_ratio:
        n = res.natural
        lines += ["", f"{res.measure} (natural scale): posterior median {fmt(n(post.mu.median))} "
                      f"[95% CrI {fmt(n(post.mu.low))}, {fmt(n(post.mu.high))}]; predicted new trial "
                      f"{fmt(n(post.prediction.median))} [{fmt(n(post.prediction.low))}, {fmt(n(post.prediction.high))}]"]
    if others:
        lines += ["", "Prior sensitivity (mu: median [95% CrI]; tau: median):"]
        for o in (post, *others):
            m = o.mu
            lines.append(f"  {o.prior['tau_prior']:24} {fmt(res.natural(m.median))} [{fmt(res.natural(m.low))}, "
                         f"{fmt(res.natural(m.high))}]  tau {fmt(o.tau.median)}  "
                         f"P(favours) {o.probabilities['p_favours_treatment']:.3f}")
    return "\n".join(lines)


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
        from ..methods.sparse import methods_text

        lines += ["", methods_text(rows, res.measure, res.is_ratio)]
    return lines
