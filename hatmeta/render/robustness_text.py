"""Text of the small-study, publication-bias and influence analyses held in ``MetaResult.extra``."""

from __future__ import annotations

import math


def robustness_lines(res) -> list:
    from ..summary import fmt, fmt_p

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
                         f"p = {fmt_p(m['p'])}")
    for key in ("peters", "harbord", "begg"):
        if key in x:
            t = x[key]
            from ..methods.publication_bias import NAMES

            stat = (f"Kendall's tau = {fmt(t.statistic)}" if t.df is None else
                    f"t = {fmt(t.statistic)}, df = {t.df}")
            lines += ["", f"{NAMES[key]}: {stat}, p = {fmt_p(t.p)} ({t.description})"]
    if "pet_peese" in x:
        pp = x["pet_peese"]
        lines += ["", "PET-PEESE (limit estimates, t intervals)" + nat + ":"]
        for key in ("pet", "peese"):
            e = pp.pet if key == "pet" else pp.peese
            lines.append(f"  {key.upper():6} {fmt(n(e['estimate']))} [{fmt(n(e['ci_low']))}, "
                         f"{fmt(n(e['ci_high']))}]  intercept p = {fmt_p(e['p'])}")
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
                      f"delta = {', '.join(fmt(d) for d in s.delta)}; LRT p = {fmt_p(s.lrt_p)}"]
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
