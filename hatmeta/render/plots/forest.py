"""Forest plot in the Cochrane (RevMan 5) layout.

Columns: study, figures per arm, weight, estimate [95% CI] as text, then the plot: squares sized
by weight, CI whiskers (arrows where they leave the axis), the pooled diamond, the prediction
interval, "Favours ..." under the axis on the sides the analysis says, optional risk-of-bias
traffic lights, and RevMan's rows and footer lines (Total events, heterogeneity, test for overall
effect, per subgroup too). Written by hand on matplotlib because no library draws this layout.

The layout measures itself: every column is as wide as the widest text drawn in it, measured with
the renderer's own text extents (not guessed from character counts). Arm names and "Favours"
labels too long for their place wrap onto two lines, as RevMan wraps them; only a single word too
wide for two lines widens its column, and only a table wider than MAX_W_IN steps the font down.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from ...numbers import est_ci, fmt_p, interval, num, tau2_text
from ...vocabulary import COMMON_EFFECT_METHODS, DEFAULT_LABELS, MEASURE_TITLES, METHOD_TITLES
from . import style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ...fit.multilevel import MvResult
    from ...results import MetaResult, SubgroupResult

ROW_PT = 14.4  # height of one row at an 8 pt font, points (0.2 inch)
ROW_IN = ROW_PT / 72  # the same in inches (used by the sensitivity forests, render/plots/sensitivity.py)
CHAR_IN = 0.062  # one character at 8 pt, inches, generous: for layouts that still count characters
GAP_IN = 0.16  # space between two columns, inches
PLOT_IN = 2.6  # width of the plot panel, inches
MARGIN_IN = 0.15
MAX_W_IN = 13.0  # beyond this the font steps down (a landscape page with margins)
FONT_STEPS = (8.0, 7.5, 7.0, 6.5)
PI_NA = "Not estimable (k < 3)"
NOT_ESTIMABLE = "Not estimable"
# RevMan's traffic lights: colour and sign per judgement (RoB 2's 'some concerns' shares 'unclear').
ROB_LOOK = {"low": ("#2ca02c", "+"), "some concerns": ("#e6b800", "?"), "unclear": ("#e6b800", "?"),
            "high": ("#d62728", "–"), "not assessed": ("#c8c8c8", "")}
ROB_COL_IN = 0.2
ROB_WORDS = {"low": "Low risk", "some concerns": "Some concerns", "unclear": "Unclear risk", "high": "High risk",
             "not assessed": "Not assessed"}

__all__ = ["forest", "fmt_p", "ci_text", "footer_lines", "subgroup_lines"]


def ci_text(nat: Callable[[float], float], est: float, lo: float, hi: float) -> str:
    """'1.29 [0.73, 2.26]' on the natural scale, decimals from the magnitude (numbers.est_ci); an
    interval that could not be estimated says so (as RevMan's 'Not estimable') rather than 'nan'."""
    if not math.isfinite(est):
        return NOT_ESTIMABLE
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{num(nat(est))} [CI not estimable]"
    return est_ci(nat(est), nat(lo), nat(hi))


def input_order(res: MetaResult, idx: Sequence[int], absent: Sequence[dict[str, Any]],
                ) -> list[tuple[str, Any]]:
    """[("study", i) | ("absent", row)]: studies ``idx`` of ``res`` and not-estimable rows ``absent`` merged
    in the order of the input table (each row's ``order``; RevMan keeps a 'Not estimable' study where it
    was entered). Rows without an ``order`` (a result from an older JSON) follow the studies."""
    everything = list(getattr(res, "not_estimable", ()) or ())
    if not all("order" in a for a in everything):
        return [("study", i) for i in idx] + [("absent", a) for a in absent]
    taken = {a["order"] for a in everything}
    free = [p for p in range(len(res.studies) + len(everything)) if p not in taken]
    keyed = [(free[i], ("study", i)) for i in idx] + [(a["order"], ("absent", a)) for a in absent]
    return [item for _, item in sorted(keyed, key=lambda t: t[0])]


def _binary(ins) -> bool:
    return bool(ins) and all("events_treat" in i and "n_treat" in i for i in ins)


def _het_line(q, df, q_p, i2, tau2=None) -> str:
    tau = f"Tau² = {tau2_text(tau2)}; " if tau2 is not None else ""
    return f"Heterogeneity: {tau}Chi² = {q:.2f}, df = {df} ({fmt_p(q_p)}); I² = {i2:.0f}%"


def _overall_line(stat, p, df=None) -> str:
    if df is None:
        return f"Test for overall effect: Z = {abs(stat):.2f} ({fmt_p(p)})"
    return f"Test for overall effect: t = {abs(stat):.2f}, df = {df:.0f} ({fmt_p(p)})"


def subgroup_test_of_effect(res: MetaResult, group: SubgroupResult) -> tuple[float, float, int | None] | None:
    """(statistic, p, df) of a subgroup's test for overall effect, as its CI was computed: z (Wald),
    or t on k - 1 df with HKSJ (a one-trial subgroup keeps its Wald interval, hence z)."""
    from scipy.special import ndtr, stdtr

    if not (math.isfinite(group.se) and group.se > 0):
        return None
    stat = group.estimate / group.se
    if res.ci_method == "hksj" and group.k >= 2:
        df = group.k - 1
        return stat, float(2 * stdtr(df, -abs(stat))), df
    return stat, float(2 * ndtr(-abs(stat))), None


def subgroup_lines(res: MetaResult, group: SubgroupResult, ins: Sequence[Mapping[str, Any]] | None = None,
                   labels: tuple[str, str] | None = None) -> list[str]:
    """RevMan's lines under a subgroup's subtotal: heterogeneity and its test for overall effect.

    P of Q: chi-square on k - 1 df, as for the whole analysis (Cochrane Handbook 10.10.2). The
    subgroup's events are a row of the table ('Total events'), not a line here.
    """
    from scipy.special import chdtrc

    if group.k >= 2:
        random = res.method not in COMMON_EFFECT_METHODS
        lines = [_het_line(group.q, group.k - 1, float(chdtrc(group.k - 1, group.q)), group.i2,
                           group.tau2 if random else None)]
    else:
        lines = ["Heterogeneity: Not applicable"]  # RevMan's words for a one-study subgroup
    test = subgroup_test_of_effect(res, group)
    lines.append(_overall_line(*test) if test else "Test for overall effect: not estimable")
    return lines


def footer_lines(res: MetaResult, labels: tuple[str, str] | None = None) -> list[str]:
    """RevMan's footer: heterogeneity, test for overall effect (and the test for subgroup differences).
    Total events are a row of the table, under the Events columns."""
    random = res.method not in COMMON_EFFECT_METHODS
    glmm = res.extra.get("glmm") if isinstance(res.extra, dict) else None
    if glmm is not None:  # a GLMM has no Q: its heterogeneity test is the likelihood ratio for tau^2 = 0
        lrt = glmm.get("lrt_tau2")
        het = (f"Heterogeneity: Tau² = {tau2_text(res.tau2)}; LR test of Tau² = 0: "
               + (f"{lrt:.2f} ({fmt_p(glmm.get('lrt_tau2_p'))})" if lrt is not None else "NA")
               + f"; I² = {res.i2:.0f}%" if math.isfinite(res.tau2) else "Heterogeneity: not estimable")
    elif res.q_df > 0:
        het = _het_line(res.q, res.q_df, res.q_p, res.i2, res.tau2 if random else None)
    else:
        het = "Heterogeneity: Not applicable"
    if glmm is not None and glmm.get("separation"):  # infinite estimate: likelihood-ratio test
        overall = f"Test for overall effect: likelihood ratio ({fmt_p(res.p)})"
    else:
        overall = _overall_line(res.stat, res.p, res.df)
    lines = [het, overall]
    if res.subgroup_test is not None:
        t = res.subgroup_test
        if math.isfinite(t.q):
            i2 = 100 * max(0.0, (t.q - t.df) / t.q) if t.q > 0 else 0.0
            lines.append(f"Test for subgroup differences: Chi² = {t.q:.2f}, df = {t.df} ({fmt_p(t.p)}), "
                         f"I² = {i2:.1f}%")
        else:  # e.g. a one-trial subgroup without a CI (HKSJ on k - 1 = 0 df)
            lines.append("Test for subgroup differences: not estimable (a subgroup has no standard error)")
    return lines


def _arm_cells(ins, kind):
    """Per-study cells of the four arm columns."""
    if kind == "binary":
        return [str(ins["events_treat"]), str(ins["n_treat"]), str(ins["events_ctrl"]), str(ins["n_ctrl"])]
    if kind == "continuous":
        return [f"{ins['mean_treat']:g} ({ins['sd_treat']:g})", f"{ins['n_treat']:g}",
                f"{ins['mean_ctrl']:g} ({ins['sd_ctrl']:g})", f"{ins['n_ctrl']:g}"]
    if kind == "rates":
        return [f"{ins['events_treat']:g}", f"{ins['time_treat']:g}", f"{ins['events_ctrl']:g}",
                f"{ins['time_ctrl']:g}"]
    return []


def _arm_kind(ins):
    if _binary(ins):
        return "binary"
    if ins and all("mean_treat" in i for i in ins):
        return "continuous"
    if ins and all("time_treat" in i for i in ins):
        return "rates"
    return None


ARM_HEADS = {"binary": ("Events", "Total"), "continuous": ("Mean (SD)", "Total"), "rates": ("Events", "Time")}


def _sum(ins, key):
    total = float(sum(float(i[key]) for i in ins))
    return f"{total:g}" if not total.is_integer() else str(int(total))


def _limits(res, values):
    """Axis limits and ticks, symmetric around the null. Ratios: RevMan's round ranges; differences:
    'nice' ticks (1, 2 or 5 times a power of ten), never 1.25 or 2.5 steps."""
    finite = [v for v in values if math.isfinite(v)]
    ticks: tuple[float, ...]
    if res.is_ratio:
        # 10% beyond the farthest study, so that no square sits on the edge of the axis
        reach = max([1.1 * abs(v) for v in finite] + [math.log(1.5)])
        for ticks in ((0.5, 0.7, 1, 1.5, 2), (0.2, 0.5, 1, 2, 5), (0.1, 0.2, 0.5, 1, 2, 5, 10),
                      (0.05, 0.2, 1, 5, 20), (0.01, 0.1, 1, 10, 100), (0.001, 0.1, 1, 10, 1000)):
            if math.log(ticks[-1]) >= reach:
                return (math.log(ticks[0]), math.log(ticks[-1])), ticks
        return (math.log(0.001), math.log(1000)), (0.001, 0.1, 1, 10, 1000)
    reach = max([abs(v) for v in finite] + [1e-9])
    exp = 10 ** math.floor(math.log10(reach))
    for m, step in ((1, 0.5), (2, 1), (4, 2), (5, 2.5), (10, 5)):  # noqa: B007  (step is read after the loop)
        if m * exp >= reach * (1 - 1e-12):
            top = m * exp
            break
    if m == 5:  # 5 with steps of 2.5 is not nice: -5, 0, 5 only
        return (-top, top), (-top, 0.0, top)
    st = step * exp
    n = int(round(top / st))
    ticks = tuple(float(f"{j * st:.12g}") for j in range(-n, n + 1))
    return (-top, top), ticks


def tick_text(t: float) -> str:
    return f"{t:g}"


def rob_judgement(value: str, study: str = "", domain: str = "") -> str:
    """A risk-of-bias judgement in ROB_LOOK's words: 'Low risk', 'low', 'Some concerns', 'unclear risk',
    'High' and 'not assessed' are accepted in any case; anything else is an input error naming it."""
    j = " ".join(str(value).strip().lower().replace("_", " ").split())
    j = {"low risk": "low", "high risk": "high", "unclear risk": "unclear", "some concern": "some concerns",
         "not applicable": "not assessed", "": "not assessed"}.get(j, j)
    if j not in ROB_LOOK:
        from ...errors import InputError

        raise InputError(f"risk of bias of {study}, {domain}: {value!r} is not one of "
                         f"{', '.join(ROB_LOOK)}", column="risk_of_bias")
    return j


# ---------------------------------------------------------------- measuring and wrapping text

MEASURE_DPIS = (72, 100, 300)  # screen, matplotlib's default and the saved PNG's resolution


class _Measure:
    """Text widths in inches, as matplotlib will draw them: the widest of the figure's own renderer,
    renderers at MEASURE_DPIS and the unhinted outline (what an SVG viewer shows). Hinting rounds
    each glyph's advance to whole pixels, so one string's width differs by several per cent from one
    resolution to another; the layout must hold at all of them."""

    def __init__(self, fig) -> None:
        from matplotlib.backends.backend_agg import RendererAgg

        self.renderers = [(fig.canvas.get_renderer(), fig.dpi)] + [(RendererAgg(8, 8, d), d) for d in MEASURE_DPIS]
        self.cache: dict[tuple[str, float, bool], float] = {}

    def __call__(self, text, size, bold: bool = False) -> float:
        key = (text, size, bold)
        if key not in self.cache:
            from matplotlib.font_manager import FontProperties
            from matplotlib.textpath import text_to_path

            prop = FontProperties(family=style.families(text), size=size, weight="bold" if bold else "normal")
            w = 0.0
            for line in str(text).split("\n"):
                if not line:
                    continue
                w = max([w, text_to_path.get_text_width_height_descent(line, prop, ismath=False)[0] / 72]
                        + [r.get_text_width_height_descent(line, prop, ismath=False)[0] / dpi
                           for r, dpi in self.renderers])
            self.cache[key] = w * 1.02 + 0.01
        return self.cache[key]


def _two_lines(text, width, measure, size, bold: bool = False):
    """``text`` on one line if it fits ``width``, else on two lines split at the space that makes the
    longer line shortest. Returns (text with a newline or not, width it needs)."""
    one = measure(text, size, bold)
    words = text.split(" ")
    if one <= width or len(words) < 2:
        return text, one
    best = None
    for j in range(1, len(words)):
        a, b = " ".join(words[:j]), " ".join(words[j:])
        w = max(measure(a, size, bold), measure(b, size, bold))
        if best is None or w < best[1]:
            best = (f"{a}\n{b}", w)
    return best


def _wrap(text, width, measure, size, bold: bool = False):
    """Greedy word wrap of ``text`` to ``width`` inches (a word longer than the width stays whole)."""
    lines, cur = [], ""
    for word in text.split(" "):
        trial = f"{cur} {word}" if cur else word
        if cur and measure(trial, size, bold) > width:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    lines.append(cur)
    return lines


# ---------------------------------------------------------------- the figure

@style.styled
def forest(res: MetaResult | MvResult, benefit: str = "lower", labels: tuple[str, str] = DEFAULT_LABELS,
           title: str | None = None, study_groups: Mapping[str, str] | None = None,
           bayes: Mapping[str, Any] | None = None, sort: str | None = None, years: Mapping[str, Any] | None = None,
           risk_of_bias: Mapping[str, Mapping[str, str]] | None = None, ax: Axes | None = None) -> Figure:
    """Draw ``res`` as a Cochrane-style (RevMan) forest plot.

    ``benefit``: which direction of the measure favours the experimental arm ("lower" or
    "higher"; for ratio measures of a harm, lower). ``labels``: names of the experimental and
    control groups. ``study_groups``: study -> subgroup name, to draw subgroup blocks (with
    ``res.subgroups``). ``bayes``: a Bayesian result's dict (``posterior``, ``theta``) to overlay
    shrunken estimates, the posterior diamond and the predictive interval. ``sort``: order of the
    studies within each block, "weight" (largest first), "effect" (smallest first) or "year"
    (oldest first, from ``years``: study -> year); default, as given. ``risk_of_bias``: study ->
    {domain: 'low' | 'some concerns' | 'unclear' | 'high' | 'not assessed'}, drawn as RevMan's
    traffic-light columns with a legend naming the domains. ``ax``: an Axes to use as the plot panel
    (a notebook's ``fig, ax = plt.subplots()``): its figure is resized to the layout and returned. The
    table needs the whole figure, so an Axes that shares its figure with others is refused (InputError).
    A multilevel fit (``rma_mv``'s MvResult) is drawn by ``mvforest.mv_forest``, its effects grouped by cluster.
    """
    from ...fit.multilevel import MvResult

    if isinstance(res, MvResult):
        from .mvforest import mv_forest

        return mv_forest(res, title=title, ax=ax)
    if ax is not None:
        _own_figure(ax)
    plt = style.pyplot()
    fig = plt.figure(figsize=(8, 4)) if ax is None else cast("Figure", ax.figure)  # (not a SubFigure)
    fig.patch.set_facecolor("white")
    measure = _Measure(fig)
    for fs in FONT_STEPS:
        plan = _plan(res, benefit, labels, title, study_groups, bayes, sort, years, risk_of_bias, measure, fs)
        if plan["fig_w"] <= MAX_W_IN:
            break
    _draw(fig, res, plan, bayes, ax)
    return fig


def _own_figure(ax):
    """Refuse an Axes that is one panel of several: the forest plot sizes its figure to the table, and its
    columns of text would be drawn over the other panels."""
    others = [a for a in ax.figure.axes if a is not ax and a.get_visible()]
    if others:
        from ...errors import InputError

        raise InputError(f"forest needs its own figure: the Axes given is one of {len(others) + 1} in its figure, "
                         "and the plot's table would be drawn over the others; call forest(res) (it makes a figure "
                         "sized to the table) or pass the Axes of a one-panel figure", column="ax")


ROB_KEY_IN = 0.16  # a light in the legend's key, inches


def _rob_legend(rob, domains, letters, text_w, measure, small):
    """RevMan's risk-of-bias legend, compact: a first line naming the judgements drawn, each with its
    light ('Not assessed' in grey too), then the domains by letter in as many columns as fit the width
    (read down, then across). Returns (rows of cells, width needed in inches); cells are ('head', x, text),
    ('key', x, judgement, words) or ('text', x, text), x from the left margin."""
    if not domains:
        return [], 0.0
    used = [j for j in ROB_LOOK if any(j in judged.values() for judged in rob.values())]
    head = "Risk of bias legend"
    first: list[tuple[str | float, ...]] = [("head", 0.0, head)]  # cells of 3 or 4 items
    x = measure(head, small, True) + 0.2
    for j in used:
        first.append(("key", x, j, ROB_WORDS[j]))
        x += ROB_KEY_IN + 0.04 + measure(ROB_WORDS[j], small) + 0.2
    entries = [f"({letter}) {d}" for letter, d in zip(letters, domains)]
    col_w = max(measure(t, small) for t in entries) + 0.3
    ncol = max(1, min(3, len(entries), int((max(text_w, x) + 0.3) // col_w)))
    nrow = -(-len(entries) // ncol)
    rows = [first] + [[("text", c * col_w, entries[c * nrow + r]) for c in range(ncol) if c * nrow + r < len(entries)]
                      for r in range(nrow)]
    return rows, max(x - 0.2, ncol * col_w - 0.3)


def _order(res, idx, sort, years):
    studies = res.studies
    if not sort:
        return list(idx)
    if sort == "weight":
        return sorted(idx, key=lambda i: -studies[i].weight if math.isfinite(studies[i].weight) else math.inf)
    if sort == "effect":
        return sorted(idx, key=lambda i: studies[i].yi if math.isfinite(studies[i].yi) else math.inf)
    if sort == "year":
        from ...errors import InputError

        if not years:
            raise InputError("--sort year needs a 'year' column in the table", column="--sort")

        def year(i):
            y = years.get(studies[i].study)
            try:
                return float(y)
            except (TypeError, ValueError):
                return math.inf
        return sorted(idx, key=lambda i: (year(i), studies[i].label or studies[i].study))
    from ...errors import InputError

    raise InputError(f"unknown sort {sort!r}; choose weight, effect or year", column="--sort")


def _plan(res, benefit, labels, title, study_groups, bayes, sort, years, rob, measure, fs):
    """Every text and its place, in inches, for base font size ``fs``; nothing is drawn yet."""
    small = fs - 0.5
    row_in = ROW_PT * fs / 8 / 72
    gap = GAP_IN * fs / 8
    nat = res.natural
    studies = list(res.studies)
    absent = list(getattr(res, "not_estimable", ()) or ())
    all_ins = [s.inputs for s in studies] + [a.get("inputs", {}) for a in absent]
    kind = _arm_kind([s.inputs for s in studies])
    name = MEASURE_TITLES.get(res.measure, res.measure)
    model = f"{METHOD_TITLES.get(res.method, 'IV, Random')}, {100 * res.level:g}% CI"
    theta = {t["study"]: t for t in (bayes or {}).get("theta", [])}
    random = res.method not in COMMON_EFFECT_METHODS

    # ---- rows: each a dict of cells (column -> (text, bold)), a span text, and what the panel draws
    rows: list[dict[str, Any]] = []

    def totals_row(ins_sub, est_cell, weight_cell, label):
        cells = {0: (label, True)}
        if kind in ("binary", "continuous"):
            cells[2] = (_sum(ins_sub, "n_treat"), True)
            cells[4] = (_sum(ins_sub, "n_ctrl"), True)
        cells[5] = (weight_cell, True)
        cells[6] = (est_cell, True)
        return cells

    def events_row(ins_sub):
        return {"cells": {0: ("Total events", False), 1: (_sum(ins_sub, "events_treat"), False),
                          3: (_sum(ins_sub, "events_ctrl"), False)}, "kind": "events"}

    def study_rows(idx, absent_sub):
        out = []
        order = (input_order(res, idx, absent_sub) if not sort else
                 [("study", i) for i in _order(res, idx, sort, years)] + [("absent", a) for a in absent_sub])
        for what, i in order:
            if what == "absent":
                out.append(absent_row(i))
                continue
            s = studies[i]
            cells = {0: (s.label or s.study, False), 5: (f"{s.weight:.1f}%", False),
                     6: (ci_text(nat, s.yi, s.ci_low, s.ci_high), False)}
            cells.update({j + 1: (c, False) for j, c in enumerate(_arm_cells(s.inputs, kind))})
            out.append({"cells": cells, "kind": "study", "study": s})
        return out

    def absent_row(a):  # RevMan: listed, counted in the totals, 'Not estimable', no weight
        cells = {0: (a.get("label") or a["study"], False), 6: (NOT_ESTIMABLE, False)}
        if kind == "binary":
            cells.update({j + 1: (c, False) for j, c in enumerate(_arm_cells(a["inputs"], kind))})
        return {"cells": cells, "kind": "absent", "study_id": a["study"]}

    groups = None
    if study_groups and res.subgroups:
        groups = [g.group for g in res.subgroups]
        for g in res.subgroups:
            members = [i for i, s in enumerate(studies) if study_groups.get(s.study) == g.group]
            absent_sub = [a for a in absent if study_groups.get(a["study"]) == g.group]
            rows.append({"cells": {0: (str(g.group), True)}, "kind": "group"})
            rows += study_rows(members, absent_sub)
            sub_ins = [studies[i].inputs for i in members] + [a["inputs"] for a in absent_sub]
            w_sub = sum(studies[i].weight for i in members)
            rows.append({"cells": totals_row(sub_ins, ci_text(nat, g.estimate, g.ci_low, g.ci_high),
                                             f"{w_sub:.1f}%", f"Subtotal ({100 * res.level:g}% CI)"),
                         "kind": "subtotal", "group": g})
            if kind in ("binary", "rates"):
                rows.append(events_row(sub_ins))
            rows += [{"span": line, "kind": "subnote"} for line in subgroup_lines(res, g)]
            rows.append({"kind": "blank"})
        grouped = set(groups)
        loose = [a for a in absent if study_groups.get(a["study"]) not in grouped]
        # a subgroup whose studies are all not estimable: its heading and 'Not estimable' subtotal, as RevMan
        for gname in dict.fromkeys(study_groups.get(a["study"]) for a in loose):
            block = [a for a in loose if study_groups.get(a["study"]) == gname]
            head = [{"cells": {0: (str(gname), True)}, "kind": "group"}] if gname not in (None, "") else []
            tail = [{"cells": totals_row([a["inputs"] for a in block], NOT_ESTIMABLE, "",
                                         f"Subtotal ({100 * res.level:g}% CI)"), "kind": "subtotal-ne"}] if head else []
            rows += head + study_rows([], block) + tail + [{"kind": "blank"}]
    else:
        rows += study_rows(range(len(studies)), absent)
        rows.append({"kind": "blank"})
    rows.append({"cells": totals_row(all_ins, ci_text(nat, res.estimate, res.ci_low, res.ci_high), "100.0%",
                                     f"Total ({100 * res.level:g}% CI)"), "kind": "total"})
    if kind in ("binary", "rates"):
        rows.append(events_row(all_ins))
    if math.isfinite(res.pi_low):
        rows.append({"cells": {0: ("Prediction interval", False),
                               6: (interval(nat(res.pi_low), nat(res.pi_high)), False)}, "kind": "pi"})
    elif random and not res.extra.get("revman5"):  # e.g. t on k - 2 = 0 df; RevMan 5's analyses have no PI
        rows.append({"cells": {0: ("Prediction interval", False), 6: (PI_NA, False)}, "kind": "pi-na"})
    if bayes is not None:
        mu = bayes["posterior"]["mu"]
        crl = f"{100 * bayes.get('level', 0.95):g}%"
        rows.append({"cells": {0: (f"Bayesian (posterior, {crl} CrI)", False),
                               6: (est_ci(nat(mu["median"]), nat(mu["low"]), nat(mu["high"])), False)},
                     "kind": "bayes"})

    # ---- header cells; the arm names wrap over their two columns
    head_bottom = {0: ("Study or Subgroup", True), 5: ("Weight", True), 6: (model, True)}
    if kind:
        h1, h2 = ARM_HEADS[kind]
        head_bottom.update({1: (h1, True), 2: (h2, True), 3: (h1, True), 4: (h2, True)})

    # ---- column widths: the widest text of each column (bold measured bold)
    n_col = 7
    width = [0.0] * n_col
    for row in rows + [{"cells": head_bottom}]:
        for c, (text, bold) in row.get("cells", {}).items():
            width[c] = max(width[c], measure(text, fs, bold))
    for c in range(1, 5):
        if not kind:
            width[c] = 0.0
    width[6] = max(width[6], measure(name, fs, True))
    # Subgroup lines span the table columns: the study column grows if the table is narrower.
    span_w = max([measure(r["span"], small) for r in rows if "span" in r], default=0.0)

    # Arm names over their two columns: one line, else two, else the columns grow (last resort).
    arm_heads = []
    if kind:
        for j, label in enumerate(labels):
            a, b = 1 + 2 * j, 2 + 2 * j
            avail = width[a] + gap + width[b]
            text, need = _two_lines(str(label), avail, measure, fs, True)
            if need > avail:
                width[a] += need - avail
            arm_heads.append((text, a, b))
    head_lines = max([t.count("\n") + 1 for t, _, _ in arm_heads] + [1])
    n_head = head_lines + 1

    # ---- the plot panel and its ticks
    values = [s.yi for s in studies] + [res.ci_low, res.ci_high]
    (lo_lim, hi_lim), ticks = _limits(res, values)
    tick_w = [measure(tick_text(t), fs - 1) for t in ticks]
    left_pad = max(0.12, tick_w[0] / 2 + 0.04)
    plot_w = PLOT_IN * fs / 8
    # "Favours" labels: each centred in its half of the panel, wrapped onto two lines if needed;
    # the panel widens only when two lines are still too wide.
    left_arm, right_arm = (labels[0], labels[1]) if benefit == "lower" else (labels[1], labels[0])
    favours = []
    for label in (f"Favours {left_arm}", f"Favours {right_arm}"):
        text, need = _two_lines(label, plot_w / 2 - 0.12, measure, small)
        plot_w = max(plot_w, 2 * (need + 0.12))
        favours.append(text)
    fav_lines = max(t.count("\n") + 1 for t in favours)
    right_pad = max(0.12, tick_w[-1] / 2 + 0.04)

    # ---- risk of bias columns (RevMan: right of the plot, one letter per domain, legend below)
    domains = []
    rob = {study: {d: rob_judgement(j, study, d) for d, j in judged.items()} for study, judged in (rob or {}).items()}
    for judged in rob.values():
        for d in judged:
            if d not in domains:
                domains.append(d)
    letters = [chr(ord("A") + j) for j in range(len(domains))]
    rob_col = ROB_COL_IN * fs / 8
    rob_w = 0.0
    if domains:
        rob_w = max(len(domains) * rob_col, measure("Risk of Bias", fs, True))

    # ---- x positions (inches from the left edge)
    x = [MARGIN_IN]
    for c in range(n_col):
        x.append(x[-1] + width[c] + (gap if width[c] > 0 or c == 0 else 0.0))
    table_w = x[-1] - MARGIN_IN
    if span_w > table_w - gap:
        extra = span_w - (table_w - gap)
        width[0] += extra
        x = [x[0]] + [v + extra for v in x[1:]]
    plot_x0 = x[-1] + left_pad
    plot_x1 = plot_x0 + plot_w
    rob_x0 = plot_x1 + right_pad + (gap if domains else 0.0)
    content_w = rob_x0 + rob_w + MARGIN_IN

    # ---- footer, legend and title: wrapped to the width of the content
    foot = footer_lines(res, labels)
    if bayes is not None:
        pr = bayes["prior"]
        crl = f"{100 * bayes.get('level', 0.95):g}%"
        foot.append(f"Bayesian (orange): shrunken study estimates; posterior of the mean (median, {crl} CrI), "
                    f"whiskers the {crl} predictive interval")
        foot.append(f"Priors: tau ~ {pr['tau_prior']}; mu ~ N({pr['mu_prior_mean']:g}, {pr['mu_prior_sd']:g}²)")
    text_w = content_w - 2 * MARGIN_IN
    foot_lines = [ln for line in foot for ln in _wrap(line, text_w, measure, small)]
    legend_rows, legend_w = _rob_legend(rob, domains, letters, text_w, measure, small)
    longest = max([measure(ln, small) for ln in foot_lines] + [legend_w, 0.0])
    title_lines = _wrap(str(title), text_w, measure, fs + 1, True) if title else []
    longest = max([longest] + [measure(ln, fs + 1, True) for ln in title_lines])
    fig_w = max(content_w, longest + 2 * MARGIN_IN)

    title_h = (len(title_lines) * 1.25 * (fs + 1) / 72 + 0.12) if title else 0.08
    body_rows = len(rows)
    below = 1.2 + fav_lines * 0.85  # tick labels, then the favours labels, in rows
    fig_h = (title_h + (n_head + body_rows + below) * row_in + 0.15
             + (len(foot_lines) + len(legend_rows)) * 1.05 * row_in * small / fs + 0.1)
    return dict(fs=fs, small=small, row_in=row_in, gap=gap, rows=rows, head_bottom=head_bottom, arm_heads=arm_heads,
                n_head=n_head, head_lines=head_lines, name=name, model=model, width=width, x=x, kind=kind,
                plot_x0=plot_x0, plot_x1=plot_x1, plot_w=plot_w, lim=(lo_lim, hi_lim), ticks=ticks, favours=favours,
                fav_lines=fav_lines, domains=domains, letters=letters, rob=rob or {}, rob_x0=rob_x0, rob_w=rob_w,
                rob_col=rob_col, foot_lines=foot_lines, legend_rows=legend_rows, title_lines=title_lines,
                title_h=title_h, fig_w=fig_w, fig_h=fig_h, theta=theta, below=below)


def panel_axes(fig: Figure, ax: Axes | None, rect: tuple[float, float, float, float], lim: tuple[float, float],
               rows: tuple[int, int], ticks: Sequence[float], is_ratio: bool, fs: float) -> Axes:
    """The CI panel of a forest plot at ``rect`` (figure fractions; ``ax`` moved there, or a new Axes): x from
    ``lim`` (analysis scale) with ``ticks`` (natural scale for ratios), table rows ``rows`` = (first, end)
    counted downwards, the line of no effect, no frame but the axis. Shared with render/plots/mvforest.py."""
    if ax is None:
        ax = fig.add_axes(rect)
    else:
        ax.set_position(rect)
    ax.set_xlim(*lim)
    ax.set_ylim(rows[1] - 0.5, rows[0] - 0.5)  # rows counted downwards
    ax.axvline(0.0, color=style.INK, lw=0.6)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xticks([math.log(t) for t in ticks] if is_ratio else list(ticks))
    ax.set_xticklabels([tick_text(t) for t in ticks], fontsize=fs - 1)
    ax.tick_params(axis="x", length=3, width=0.6, pad=2)
    ax.spines["bottom"].set_linewidth(0.6)
    ax.patch.set_alpha(0)
    return ax


def draw_whisker(ax: Axes, lim: tuple[float, float], y: float, lo: float, hi: float, color: str, lw: float = 0.8,
                 gid: str | None = None) -> None:
    """An interval from ``lo`` to ``hi`` at row ``y``, clipped to ``lim`` with an arrow where it leaves the
    axis (as RevMan draws it)."""
    lo_lim, hi_lim = lim
    a, b = max(lo, lo_lim), min(hi, hi_lim)
    if b > a:
        ax.plot([a, b], [y, y], color=color, lw=lw, solid_capstyle="butt", gid=gid)
    for beyond, sign in ((lo < lo_lim, -1), (hi > hi_lim, 1)):
        if beyond:
            edge = lo_lim if sign < 0 else hi_lim
            ax.annotate("", xy=(edge, y), xytext=(edge - sign * 0.06 * (hi_lim - lo_lim), y),
                        arrowprops=dict(arrowstyle="-|>", color=color, lw=lw, mutation_scale=6))


def draw_diamond(ax: Axes, y: float, lo: float, mid: float, hi: float, color: str, gid: str) -> Any:
    """A pooled estimate's diamond (its CI from ``lo`` to ``hi``) at row ``y``; None where a value is not finite
    (the text says 'not estimable')."""
    from matplotlib.patches import Polygon

    if not all(math.isfinite(v) for v in (lo, mid, hi)):
        return None
    poly = Polygon([(lo, y), (mid, y - 0.38), (hi, y), (mid, y + 0.38)], closed=True, facecolor=color,
                   edgecolor=color, lw=0.6, gid=gid)
    ax.add_patch(poly)
    return poly


def _draw(fig, res, p, bayes, ax=None):
    fs, small, row_in, x = p["fs"], p["small"], p["row_in"], p["x"]
    fig_w, fig_h = p["fig_w"], p["fig_h"]
    fig.set_size_inches(fig_w, fig_h)
    top = fig_h - p["title_h"]
    rows, n_head = p["rows"], p["n_head"]
    theta = p["theta"]

    def y_of(row):  # figure fraction of the centre of table row ``row`` (0 = first header row)
        return (top - (row + 0.5) * row_in) / fig_h

    def put(x_in, y_frac, text, ha: str = "left", fontsize=None, bold: bool = False, **kw):
        return fig.text(x_in / fig_w, y_frac, text, ha=ha, va="center", fontsize=fontsize or fs,
                        weight="bold" if bold else "normal", family=style.families(text), parse_math=False, **kw)

    if p["title_lines"]:
        fig.text(MARGIN_IN / fig_w, (fig_h - 0.08) / fig_h, "\n".join(p["title_lines"]), fontsize=fs + 1,
                 weight="bold", va="top", family=style.families(" ".join(p["title_lines"])), parse_math=False,
                 linespacing=1.1, gid="title")

    def cell_x(c):
        """Anchor and alignment of column ``c``: left for the study and estimate, right for numbers."""
        if c in (0, 6):
            return x[c], "left"
        return x[c] + p["width"][c], "right"

    # ---- headers
    for c, (text, bold) in p["head_bottom"].items():
        xx, ha = cell_x(c)
        put(xx, y_of(n_head - 1), text, ha=ha, bold=bold)
    head_mid = (top - (n_head - 1) * row_in / 2) / fig_h  # centre of the rows above the bottom header
    for text, a, b in p["arm_heads"]:  # centred over its two columns, as RevMan does
        put((x[a] + x[b] + p["width"][b]) / 2, head_mid, text, ha="center", bold=True, linespacing=1.05,
            multialignment="center")
    put(x[6], y_of(n_head - 2), p["name"], bold=True)
    mid = (p["plot_x0"] + p["plot_x1"]) / 2
    put(mid, y_of(n_head - 2), p["name"], ha="center", bold=True)
    put(mid, y_of(n_head - 1), p["model"], ha="center", bold=True)

    # ---- plot panel spanning the body rows
    body_top, body_bottom = n_head, n_head + len(rows)
    panel = (p["plot_x0"] / fig_w, (top - body_bottom * row_in) / fig_h, p["plot_w"] / fig_w,
             (body_bottom - body_top) * row_in / fig_h)
    ax = panel_axes(fig, ax, panel, p["lim"], (body_top, body_bottom), p["ticks"], res.is_ratio, fs)
    lo_lim, hi_lim = p["lim"]
    row_pt = row_in * 72
    # Square area proportional to the weight in percent (RevMan): a study of 100% would fill the
    # row; small studies keep a visible minimum. With the Bayesian overlay the square shares the
    # row with the shrunken estimate, so it is capped to its half.
    side_max = row_pt * (0.62 if theta else 0.9)

    def whisker(y, lo, hi, color, lw=0.8) -> None:
        draw_whisker(ax, p["lim"], y, lo, hi, color, lw)

    def diamond(y, lo, mid_, hi, color, gid):
        return draw_diamond(ax, y, lo, mid_, hi, color, gid)

    rob_ax = None
    if p["domains"]:
        rob_ax = fig.add_axes([p["rob_x0"] / fig_w, (top - body_bottom * row_in) / fig_h, p["rob_w"] / fig_w,
                               (body_bottom - body_top) * row_in / fig_h])
        rob_ax.set_xlim(0, p["rob_w"])
        rob_ax.set_ylim(body_bottom - 0.5, body_top - 0.5)
        rob_ax.axis("off")
        n_dom = len(p["domains"])
        offset = (p["rob_w"] - n_dom * p["rob_col"]) / 2
        centres = [offset + (j + 0.5) * p["rob_col"] for j in range(n_dom)]
        put(p["rob_x0"] + p["rob_w"] / 2, y_of(n_head - 2), "Risk of Bias", ha="center", bold=True)
        for letter, cx in zip(p["letters"], centres):
            put(p["rob_x0"] + cx, y_of(n_head - 1), letter, ha="center", bold=True)

    def traffic_lights(row, study) -> None:
        judged = p["rob"].get(study)
        if rob_ax is None or not judged:
            return
        for d, cx in zip(p["domains"], centres):
            j = judged.get(d)
            if j is None:  # a domain not judged for this study: blank, as RevMan leaves it
                continue
            colour, sign = ROB_LOOK[j]
            rob_ax.plot([cx], [row], marker="o", ms=row_pt * 0.62, color=colour, lw=0, gid=f"rob-{study}-{d}")
            if sign:
                rob_ax.text(cx, row, sign, ha="center", va="center_baseline", fontsize=fs - 1, weight="bold",
                            color="white" if j != "not assessed" else style.INK, parse_math=False)

    for r, row in enumerate(rows):
        yrow = n_head + r
        kind = row["kind"]
        for c, (text, bold) in row.get("cells", {}).items():
            xx, ha = cell_x(c)
            colour = style.BAYES if kind == "bayes" else style.INK
            put(xx, y_of(yrow), text, ha=ha, bold=bold, color=colour)
        if "span" in row:
            put(x[0], y_of(yrow), row["span"], fontsize=small)
        if kind == "study":
            s = row["study"]
            y_mark = yrow - 0.17 if theta else yrow
            if math.isfinite(s.weight):
                size = min(side_max, max(3.0, row_pt * 0.9 * math.sqrt(max(s.weight, 0) / 100)))
                whisker(y_mark, s.ci_low, s.ci_high, style.STUDY)
                if lo_lim <= s.yi <= hi_lim:
                    ax.plot([s.yi], [y_mark], marker="s", ms=size, color=style.STUDY, lw=0, gid=f"study-{s.study}")
            t = theta.get(s.study)
            if t is not None:  # shrunken (Bayesian) estimate under the observed one
                whisker(yrow + 0.22, t["low"], t["high"], style.BAYES, lw=0.7)
                ax.plot([t["median"]], [yrow + 0.22], marker="o", ms=3, color=style.BAYES, lw=0,
                        gid=f"shrunken-{s.study}")
            traffic_lights(yrow, s.study)
        elif kind == "absent":
            traffic_lights(yrow, row["study_id"])
        elif kind == "subtotal":
            g = row["group"]
            diamond(yrow, g.ci_low, g.estimate, g.ci_high, style.POOLED, f"subtotal-{g.group}")
        elif kind == "total":
            diamond(yrow, res.ci_low, res.estimate, res.ci_high, style.POOLED, "pooled")
        elif kind == "pi":
            whisker(yrow, res.pi_low, res.pi_high, style.INK, lw=1.6)
        elif kind == "bayes":
            post = bayes["posterior"]
            mu, pred = post["mu"], post.get("prediction")
            if pred:
                whisker(yrow, pred["low"], pred["high"], style.BAYES, lw=1.0)
            diamond(yrow, mu["low"], mu["median"], mu["high"], style.BAYES, "bayes")

    # ---- favours labels under the tick labels, each centred in its half of the panel
    fav_centre = body_bottom + 1.15 + (p["fav_lines"] * 0.85) / 2
    for frac, text in ((0.25, p["favours"][0]), (0.75, p["favours"][1])):
        put(p["plot_x0"] + p["plot_w"] * frac, y_of(fav_centre - 0.5), text, ha="center", fontsize=small,
            multialignment="center", linespacing=1.05, gid="favours")

    # ---- footer and the risk-of-bias legend
    y0 = top - (body_bottom + p["below"]) * row_in - 0.1
    step = 1.05 * row_in * small / fs
    for j, line in enumerate(p["foot_lines"]):
        put(MARGIN_IN, (y0 - (j + 0.5) * step) / fig_h, line, fontsize=small, gid=f"footer-{j}")
    from matplotlib.lines import Line2D

    for i, row in enumerate(p["legend_rows"]):
        yf = (y0 - (len(p["foot_lines"]) + i + 0.5) * step) / fig_h
        for kind, dx, *rest in row:
            if kind == "key":  # a light as the columns draw it, then its word
                j, words = rest
                colour, sign = ROB_LOOK[j]
                cx = MARGIN_IN + dx + ROB_KEY_IN / 2
                fig.add_artist(Line2D([cx / fig_w], [yf], marker="o", ms=small * 1.35, color=colour, lw=0,
                                      transform=fig.transFigure, gid=f"rob-key-{j}"))
                if sign:
                    fig.text(cx / fig_w, yf, sign, ha="center", va="center_baseline", fontsize=small - 1.5,
                             weight="bold", color="white", parse_math=False)
                put(MARGIN_IN + dx + ROB_KEY_IN + 0.04, yf, words, fontsize=small, gid=f"rob-legend-key-{j}")
            else:
                put(MARGIN_IN + dx, yf, rest[0], fontsize=small, bold=kind == "head", gid=f"rob-legend-{i}-{dx:.2f}")
    fig._hatmeta_axes = ax  # the plot panel, for callers that inspect the drawing
    fig._hatmeta_rob_axes = rob_ax
    return fig
