"""Forest plot in the Cochrane (RevMan 5) layout.

Columns: study, figures per arm, weight, estimate [95% CI] as text, then the plot: squares sized
by weight, CI whiskers (arrows where they leave the axis), the pooled diamond, the prediction
interval, "Favours ..." under the axis on the sides the analysis says, and RevMan's footer lines.
Column widths follow the longest text in each column and the figure grows with the rows, so
labels do not overlap at 2 studies or at 40. Written by hand on matplotlib because no library
draws this layout.
"""

from __future__ import annotations

import math

import numpy as np

from . import style

ROW_IN = 0.2  # height of one row, inches
CHAR_IN = 0.062  # width of one character at 8 pt DejaVu Sans, inches (a little generous)
PLOT_IN = 2.6  # width of the plot panel, inches
GAP_IN = 0.18
PI_NA = "Not estimable (k < 3)"
METHOD_NAMES = {"MH": "M-H, Fixed", "PETO": "Peto, Fixed", "FE": "IV, Fixed", "MH-DL": "M-H, Random",
                "GLMM-FS": "GLMM (UM.FS), Random", "GLMM-RS": "GLMM (UM.RS), Random",
                "GLMM-EXACT": "GLMM (CM.EL), Random"}
MEASURE_NAMES = {"RR": "Risk Ratio", "OR": "Odds Ratio", "RD": "Risk Difference", "MD": "Mean Difference",
                 "SMD": "Std. Mean Difference", "IRR": "Rate Ratio", "GEN": "Effect", "PETO": "Peto Odds Ratio"}


def fmt_p(p):
    """P as RevMan prints it: 'P < 0.00001' or 'P = 0.04'."""
    if p is None or not math.isfinite(p):
        return "P = NA"
    if p < 0.00001:
        return "P < 0.00001"
    return f"P = {p:.2f}" if p >= 0.01 else f"P = {p:.3f}" if p >= 0.001 else f"P = {p:.5f}"


def ci_text(nat, est, lo, hi) -> str:
    """'1.29 [0.73, 2.26]' on the natural scale; an interval that could not be estimated says so
    (as RevMan's 'Not estimable') rather than printing nan."""
    if not math.isfinite(est):
        return "Not estimable"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{nat(est):.2f} [CI not estimable]"
    return f"{nat(est):.2f} [{nat(lo):.2f}, {nat(hi):.2f}]"


def _binary(ins) -> bool:
    return bool(ins) and all("events_treat" in i and "n_treat" in i for i in ins)


def _events_line(ins, labels) -> str:
    e1 = sum(int(i["events_treat"]) for i in ins)
    e2 = sum(int(i["events_ctrl"]) for i in ins)
    return f"Total events: {e1} ({labels[0]}), {e2} ({labels[1]})"


def _het_line(q, df, q_p, i2, tau2=None) -> str:
    tau = f"Tau² = {tau2:.2f}; " if tau2 is not None else ""
    return f"Heterogeneity: {tau}Chi² = {q:.2f}, df = {df} ({fmt_p(q_p)}); I² = {i2:.0f}%"


def subgroup_lines(res, group, ins, labels=("HAT", "control")) -> list:
    """RevMan's lines under a subgroup's subtotal: its events and its heterogeneity.

    P of Q: chi-square on k - 1 df, as for the whole analysis (Cochrane Handbook 10.10.2).
    """
    from scipy.special import chdtrc

    lines = [_events_line(ins, labels)] if _binary(ins) else []
    if group.k >= 2:
        random = res.method not in ("FE", "MH", "PETO")
        lines.append(_het_line(group.q, group.k - 1, float(chdtrc(group.k - 1, group.q)), group.i2,
                               group.tau2 if random else None))
    else:
        lines.append("Heterogeneity: not applicable (one study)")
    return lines


def footer_lines(res, labels=("HAT", "control")) -> list:
    """RevMan's footer: total events, heterogeneity, test for overall effect (and subgroup test)."""
    lines = []
    ins = [s.inputs for s in res.studies]
    if _binary(ins):
        lines.append(_events_line(ins, labels))
    random = res.method not in ("FE", "MH", "PETO")
    glmm = res.extra.get("glmm") if isinstance(res.extra, dict) else None
    if glmm is not None:  # a GLMM has no Q: its heterogeneity test is the likelihood ratio for tau^2 = 0
        lrt = glmm.get("lrt_tau2")
        lines.append(f"Heterogeneity: Tau² = {res.tau2:.2f}; LR test of Tau² = 0: "
                     + (f"{lrt:.2f} ({fmt_p(glmm.get('lrt_tau2_p'))})" if lrt is not None else "NA")
                     + f"; I² = {res.i2:.0f}%" if math.isfinite(res.tau2) else "Heterogeneity: not estimable")
    else:
        lines.append(_het_line(res.q, res.q_df, res.q_p, res.i2, res.tau2 if random else None))
    if glmm is not None and glmm.get("separation"):  # infinite estimate: likelihood-ratio test
        lines.append(f"Test for overall effect: likelihood ratio ({fmt_p(res.p)})")
    elif res.df is None:
        lines.append(f"Test for overall effect: Z = {abs(res.stat):.2f} ({fmt_p(res.p)})")
    else:
        lines.append(f"Test for overall effect: t = {abs(res.stat):.2f}, df = {res.df:.0f} ({fmt_p(res.p)})")
    if res.subgroup_test is not None:
        t = res.subgroup_test
        if math.isfinite(t.q):
            i2 = 100 * max(0.0, (t.q - t.df) / t.q) if t.q > 0 else 0.0
            lines.append(f"Test for subgroup differences: Chi² = {t.q:.2f}, df = {t.df} ({fmt_p(t.p)}), "
                         f"I² = {i2:.1f}%")
        else:  # e.g. a one-trial subgroup without a CI (HKSJ on k - 1 = 0 df)
            lines.append("Test for subgroup differences: not estimable (a subgroup has no standard error)")
    return lines


def _arm_columns(res, labels):
    """Header and per-study text of the arm columns, by the table's layout, and a function giving
    the totals row of any set of studies."""
    ins = [s.inputs for s in res.studies]
    if _binary(ins):
        head = [(labels[0], "Events"), ("", "Total"), (labels[1], "Events"), ("", "Total")]
        rows = [[str(i["events_treat"]), str(i["n_treat"]), str(i["events_ctrl"]), str(i["n_ctrl"])] for i in ins]

        def totals(sub):
            return ["", str(sum(int(i["n_treat"]) for i in sub)), "", str(sum(int(i["n_ctrl"]) for i in sub))]
        return head, rows, totals
    if ins and all("mean_treat" in i for i in ins):
        head = [(labels[0], "Mean (SD)"), ("", "Total"), (labels[1], "Mean (SD)"), ("", "Total")]
        rows = [[f"{i['mean_treat']:g} ({i['sd_treat']:g})", f"{i['n_treat']:g}",
                 f"{i['mean_ctrl']:g} ({i['sd_ctrl']:g})", f"{i['n_ctrl']:g}"] for i in ins]

        def totals(sub):
            return ["", f"{sum(i['n_treat'] for i in sub):g}", "", f"{sum(i['n_ctrl'] for i in sub):g}"]
        return head, rows, totals
    if ins and all("time_treat" in i for i in ins):
        head = [(labels[0], "Events"), ("", "Time"), (labels[1], "Events"), ("", "Time")]
        rows = [[f"{i['events_treat']:g}", f"{i['time_treat']:g}", f"{i['events_ctrl']:g}", f"{i['time_ctrl']:g}"]
                for i in ins]
        return head, rows, lambda sub: ["", "", "", ""]
    return [], [[] for _ in ins], lambda sub: []


def _limits(res, values):
    """Axis limits: symmetric around the null, from a set of round ranges (RevMan's style)."""
    finite = [v for v in values if math.isfinite(v)]
    if res.is_ratio:
        reach = max([abs(v) for v in finite] + [math.log(1.5)])
        for ticks in ((0.5, 0.7, 1, 1.5, 2), (0.2, 0.5, 1, 2, 5), (0.1, 0.2, 0.5, 1, 2, 5, 10),
                      (0.05, 0.2, 1, 5, 20), (0.01, 0.1, 1, 10, 100), (0.001, 0.1, 1, 10, 1000)):
            if math.log(ticks[-1]) >= reach:
                return (math.log(ticks[0]), math.log(ticks[-1])), ticks
        return (math.log(0.001), math.log(1000)), (0.001, 0.1, 1, 10, 1000)
    reach = max([abs(v) for v in finite] + [1e-9])
    exp = 10 ** math.floor(math.log10(reach))
    for m in (1, 2, 2.5, 5, 10):
        if m * exp >= reach:
            top = m * exp
            break
    return (-top, top), (-top, -top / 2, 0, top / 2, top)


@style.styled
def forest(res, benefit="lower", labels=("HAT", "control"), title=None, study_groups=None, bayes=None):
    """Draw ``res`` (a MetaResult) as a Cochrane-style forest plot; return the Figure.

    ``benefit``: which direction of the measure favours the experimental arm ("lower" or
    "higher"; for ratio measures of a harm, lower). ``labels``: names of the experimental and
    control groups. ``study_groups``: study -> subgroup name, to draw subgroup blocks (with
    ``res.subgroups``). ``bayes``: a Bayesian result's dict (``posterior``, ``theta``) to overlay
    shrunken estimates, the posterior diamond and the predictive interval.
    """
    plt = style.pyplot()
    from matplotlib.patches import Polygon

    nat = res.natural
    studies = list(res.studies)
    arm_head, arm_rows, arm_totals_of = _arm_columns(res, labels)
    arm_totals = arm_totals_of([s.inputs for s in studies])
    est_text = [ci_text(nat, s.yi, s.ci_low, s.ci_high) for s in studies]
    weight_text = [f"{s.weight:.1f}%" for s in studies]
    measure = MEASURE_NAMES.get(res.measure, res.measure)
    model = METHOD_NAMES.get(res.method, "IV, Random")
    theta = {t["study"]: t for t in (bayes or {}).get("theta", [])}

    # ---- rows, top to bottom: (kind, payload)
    rows = []
    groups = None
    if study_groups and res.subgroups:
        groups = [g.group for g in res.subgroups]
        for g in res.subgroups:
            members = [i for i, s in enumerate(studies) if study_groups.get(s.study) == g.group]
            rows.append(("group", g.group))
            rows += [("study", i) for i in members]
            rows.append(("subtotal", (g, members)))
            sub_ins = [studies[i].inputs for i in members]
            rows += [("subnote", line) for line in subgroup_lines(res, g, sub_ins, labels)]
            rows.append(("blank", None))
    else:
        rows += [("study", i) for i in range(len(studies))]
        rows.append(("blank", None))
    rows.append(("total", None))
    if math.isfinite(res.pi_low):
        rows.append(("pi", None))
    elif res.method not in ("FE", "MH", "PETO"):  # e.g. t on k - 2 = 0 df with two trials
        rows.append(("pi", PI_NA))
    if bayes is not None:
        rows.append(("bayes", None))
    foot = footer_lines(res, labels)
    if bayes is not None:
        pr = bayes["prior"]
        foot.append("Bayesian (orange): shrunken study estimates; posterior of the mean (median, 95% CrI), "
                    "whiskers the 95% predictive interval")
        foot.append(f"Priors: tau ~ {pr['tau_prior']}; mu ~ N({pr['mu_prior_mean']:g}, {pr['mu_prior_sd']:g}²)")
    n_rows = len(rows) + 2  # two header rows

    # ---- column widths from the longest text in each column (no overlap, whatever the labels)
    label_text = [s.label or s.study for s in studies]
    first_col = label_text + ["Total (95% CI)", "Prediction interval", "Study or Subgroup"] + (
        [f"{g} subtotal (95% CI)" for g in groups] if groups else [])
    cols = [max(len(t) for t in first_col)]
    for j in range(len(arm_head)):
        cols.append(max([len(r[j]) for r in arm_rows] + [len(arm_head[j][1]), len(arm_totals[j]),
                                                          len(arm_head[j][0]) // 2 + 1]))
    cols.append(max(len(w) for w in weight_text + ["Weight"]))
    # Bold texts of the estimate column (subtotals, total) count 10% wider than their length.
    bold_est = [ci_text(nat, res.estimate, res.ci_low, res.ci_high)] + [
        ci_text(nat, g.estimate, g.ci_low, g.ci_high) for g in (res.subgroups or ()) if groups]
    cols.append(max([len(t) for t in est_text + [f"{measure}", f"{model}, 95% CI", "[0.00, 0.00]"]
                     + [PI_NA for kind, payload in rows if payload == PI_NA]]
                    + [math.ceil(len(t) * 1.1) for t in bold_est + [f"{model}, 95% CI"]]))
    # Subgroup lines (events, heterogeneity; 7.5 pt) span the table columns, left of the plot.
    notes_w = max([len(text) * CHAR_IN * 7.5 / 8 for kind, text in rows if kind == "subnote"], default=0.0)
    widths = [c * CHAR_IN + GAP_IN for c in cols]
    widths[0] += max(0.0, notes_w - sum(widths))
    x_left = np.concatenate([[0.15], 0.15 + np.cumsum(widths)])
    table_w = x_left[-1]
    foot_w = max(len(t) for t in foot) * CHAR_IN
    title_w = len(title) * CHAR_IN * 1.25 if title else 0.0  # 9 pt bold
    fig_w = max(table_w + PLOT_IN + 0.4, foot_w + 0.4, title_w + 0.4)
    fig_h = (n_rows + 2.4 + len(foot) * 1.05) * ROW_IN + (0.3 if title else 0.1) + 0.05
    fig = plt.figure(figsize=(fig_w, fig_h))
    fig.patch.set_facecolor("white")
    top = fig_h - (0.3 if title else 0.1)
    if title:
        fig.text(0.15 / fig_w, (fig_h - 0.12) / fig_h, title, fontsize=9, weight="bold", va="top")

    def y_of(row):  # figure fraction of the centre of table row ``row`` (0 = first header row)
        return (top - (row + 0.5) * ROW_IN) / fig_h

    def put(x_in, row, text, ha="left", fontsize=8, **kw):
        return fig.text(x_in / fig_w, y_of(row), text, ha=ha, va="center", fontsize=fontsize, **kw)

    # ---- headers
    put(x_left[0], 1, "Study or Subgroup", weight="bold")
    for j, (h1, h2) in enumerate(arm_head):
        right = x_left[j + 2] - GAP_IN
        if h1:  # centred over its two columns (events and total), as RevMan does
            put((x_left[j + 1] + x_left[j + 3] - GAP_IN) / 2, 0, h1, ha="center", weight="bold")
        put(right, 1, h2, ha="right", weight="bold")
    wcol = len(arm_head) + 1
    put(x_left[wcol + 1] - GAP_IN, 1, "Weight", ha="right", weight="bold")
    put(x_left[wcol + 1], 0, measure, weight="bold")
    put(x_left[wcol + 1], 1, f"{model}, 95% CI", weight="bold")
    plot_x0 = table_w + 0.1
    put(plot_x0 + PLOT_IN / 2, 0, measure, ha="center", weight="bold")
    put(plot_x0 + PLOT_IN / 2, 1, f"{model}, 95% CI", ha="center", weight="bold")

    # ---- plot panel spanning the body rows
    body_top = 2
    body_bottom = n_rows
    ax = fig.add_axes([plot_x0 / fig_w, (top - body_bottom * ROW_IN) / fig_h, PLOT_IN / fig_w,
                       (body_bottom - body_top) * ROW_IN / fig_h])
    values = [s.yi for s in studies] + [res.ci_low, res.ci_high]
    (lo_lim, hi_lim), ticks = _limits(res, values)
    ax.set_xlim(lo_lim, hi_lim)
    ax.set_ylim(body_bottom - 0.5, body_top - 0.5)  # rows counted downwards
    null = 0.0
    ax.axvline(null, color=style.INK, lw=0.6)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    tick_pos = [math.log(t) for t in ticks] if res.is_ratio else list(ticks)
    ax.set_xticks(tick_pos)
    ax.set_xticklabels([f"{t:g}" for t in ticks], fontsize=7)
    ax.tick_params(axis="x", length=3, width=0.6)
    ax.spines["bottom"].set_linewidth(0.6)
    ax.patch.set_alpha(0)
    row_pt = ROW_IN * 72
    # Square area proportional to the weight in percent (RevMan): a study of 100% would fill the
    # row; small studies keep a visible minimum. With the Bayesian overlay the square shares the
    # row with the shrunken estimate, so it is capped to its half.
    side_max = row_pt * (0.62 if theta else 0.9)

    def whisker(y, lo, hi, color, lw=0.8):
        a, b = max(lo, lo_lim), min(hi, hi_lim)
        if b > a:
            ax.plot([a, b], [y, y], color=color, lw=lw, solid_capstyle="butt")
        for end, beyond, sign in ((lo, lo < lo_lim, -1), (hi, hi > hi_lim, 1)):
            if beyond:  # RevMan draws an arrow where the interval leaves the axis
                edge = lo_lim if sign < 0 else hi_lim
                ax.annotate("", xy=(edge, y), xytext=(edge - sign * 0.06 * (hi_lim - lo_lim), y),
                            arrowprops=dict(arrowstyle="-|>", color=color, lw=lw, mutation_scale=6))

    def diamond(y, lo, mid, hi, color, gid):
        if not all(math.isfinite(v) for v in (lo, mid, hi)):
            return None  # nothing to draw; the text says 'not estimable'
        poly = Polygon([(lo, y), (mid, y - 0.38), (hi, y), (mid, y + 0.38)], closed=True, facecolor=color,
                       edgecolor=color, lw=0.6, gid=gid)
        ax.add_patch(poly)
        return poly

    for r, (kind, payload) in enumerate(rows):
        row = r + 2
        if kind == "group":
            put(x_left[0], row, str(payload), weight="bold")
        elif kind == "study":
            i = payload
            s = studies[i]
            put(x_left[0], row, label_text[i])
            for j, cell in enumerate(arm_rows[i]):
                put(x_left[j + 2] - GAP_IN, row, cell, ha="right")
            put(x_left[wcol + 1] - GAP_IN, row, weight_text[i], ha="right")
            put(x_left[wcol + 1], row, est_text[i])
            y_mark = row - 0.17 if theta else row
            if math.isfinite(s.weight):
                size = min(side_max, max(3.0, row_pt * 0.9 * math.sqrt(max(s.weight, 0) / 100)))
                whisker(y_mark, s.ci_low, s.ci_high, style.STUDY)
                if lo_lim <= s.yi <= hi_lim:
                    ax.plot([s.yi], [y_mark], marker="s", ms=size, color=style.STUDY, lw=0, gid=f"study-{s.study}")
            t = theta.get(s.study)
            if t is not None:  # shrunken (Bayesian) estimate under the observed one
                whisker(row + 0.22, t["low"], t["high"], style.BAYES, lw=0.7)
                ax.plot([t["median"]], [row + 0.22], marker="o", ms=3, color=style.BAYES, lw=0,
                        gid=f"shrunken-{s.study}")
        elif kind == "subnote":
            put(x_left[0], row, payload, fontsize=7.5)
        elif kind == "subtotal":
            g, members = payload
            put(x_left[0], row, "Subtotal (95% CI)", weight="bold")
            for j, cell in enumerate(arm_totals_of([studies[i].inputs for i in members])):
                put(x_left[j + 2] - GAP_IN, row, cell, ha="right", weight="bold")
            w_sub = sum(studies[i].weight for i in members)
            put(x_left[wcol + 1] - GAP_IN, row, f"{w_sub:.1f}%", ha="right", weight="bold")
            put(x_left[wcol + 1], row, ci_text(nat, g.estimate, g.ci_low, g.ci_high), weight="bold")
            diamond(row, g.ci_low, g.estimate, g.ci_high, style.POOLED, f"subtotal-{g.group}")
        elif kind == "total":
            put(x_left[0], row, "Total (95% CI)", weight="bold")
            for j, cell in enumerate(arm_totals):
                put(x_left[j + 2] - GAP_IN, row, cell, ha="right", weight="bold")
            put(x_left[wcol + 1] - GAP_IN, row, "100.0%", ha="right", weight="bold")
            put(x_left[wcol + 1], row, ci_text(nat, res.estimate, res.ci_low, res.ci_high), weight="bold")
            diamond(row, res.ci_low, res.estimate, res.ci_high, style.POOLED, "pooled")
        elif kind == "pi":
            put(x_left[0], row, "Prediction interval")
            if payload == PI_NA:
                put(x_left[wcol + 1], row, PI_NA)
            else:
                put(x_left[wcol + 1], row, f"[{nat(res.pi_low):.2f}, {nat(res.pi_high):.2f}]")
                whisker(row, res.pi_low, res.pi_high, style.INK, lw=1.6)
        elif kind == "bayes":
            post = bayes["posterior"]
            mu, pred = post["mu"], post.get("prediction")
            put(x_left[0], row, "Bayesian (posterior, 95% CrI)", color=style.BAYES)
            put(x_left[wcol + 1], row, f"{nat(mu['median']):.2f} [{nat(mu['low']):.2f}, {nat(mu['high']):.2f}]",
                color=style.BAYES)
            if pred:
                whisker(row, pred["low"], pred["high"], style.BAYES, lw=1.0)
            diamond(row, mu["low"], mu["median"], mu["high"], style.BAYES, "bayes")

    # ---- favours labels under the axis
    left, right = (labels[0], labels[1]) if benefit == "lower" else (labels[1], labels[0])
    fav_y = (top - (body_bottom + 1.45) * ROW_IN) / fig_h
    fig.text((plot_x0 + PLOT_IN * 0.25) / fig_w, fav_y, f"Favours {left}", ha="center", va="center", fontsize=7.5)
    fig.text((plot_x0 + PLOT_IN * 0.75) / fig_w, fav_y, f"Favours {right}", ha="center", va="center", fontsize=7.5)

    # ---- footer
    for j, line in enumerate(foot):
        fig.text(0.15 / fig_w, (top - (body_bottom + 2.3 + j * 1.05) * ROW_IN) / fig_h, line, ha="left",
                 va="center", fontsize=7.5, gid=f"footer-{j}")
    fig._hatmeta_axes = ax  # the plot panel, for callers that inspect the drawing
    return fig
