"""Figures: what is drawn, not only that a file exists."""

import math
import re

import numpy as np
import pytest

from hatmeta.api import pool_table
from hatmeta.io.trial_table import table_from_rows
from hatmeta.render.plots import forest, funnel, save
from hatmeta.render.plots.forest import footer_lines


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def binary_table(k, seed=1, with_group=False):
    rng = np.random.default_rng(seed)
    header = ["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl", "label", "region"]
    rows = [header]
    for i in range(k):
        n1, n2 = int(rng.integers(30, 600)), int(rng.integers(30, 600))
        p2 = rng.uniform(0.2, 0.6)
        p1 = min(0.95, p2 * math.exp(rng.normal(0.3, 0.3)))
        rows.append([f"s{i:02d}", str(int(rng.binomial(n1, p1))), str(n1), str(int(rng.binomial(n2, p2))), str(n2),
                     f"Trial with a fairly long name {i} ({'ABC'[i % 3]}-land)", "ABC"[i % 3] if with_group else "A"])
    return table_from_rows(rows)


def texts(fig):
    return [t for t in fig.texts if t.get_text()]


@pytest.mark.parametrize("k", [2, 8, 40])
def test_forest_shows_every_study_and_labels_never_overlap(k):
    res = pool_table(binary_table(k), "RR", method="REML" if k > 2 else "DL")
    fig = forest(res, benefit="higher", labels=("HAT", "Methadone"), title="Test")
    shown = {t.get_text() for t in texts(fig)}
    # The prediction interval needs k >= 3 (t on k - 2 df): with two trials the row says so.
    assert ("Not estimable (k < 3)" in shown) == (k == 2)
    if k > 2:
        assert f"[{math.exp(res.pi_low):.2f}, {math.exp(res.pi_high):.2f}]" in shown
    for s in res.studies:
        assert s.label in shown
        assert f"{math.exp(s.yi):.2f} [{math.exp(s.ci_low):.2f}, {math.exp(s.ci_high):.2f}]" in shown
        assert f"{s.weight:.1f}%" in shown
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts(fig)]
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1:]:
            assert not ba.overlaps(bb), f"{a!r} overlaps {b!r}"
    # Every text lies inside the figure.
    W, H = fig.get_size_inches() * fig.dpi
    for name, box in boxes:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= W + 1 and box.y1 <= H + 1, name


def test_forest_diamond_sits_at_the_pooled_estimate_and_footer_matches_json():
    res = pool_table(binary_table(8, seed=3), "RR", method="REML", ci="hksj")
    fig = forest(res, benefit="higher", labels=("HAT", "Methadone"))
    ax = fig._hatmeta_axes
    diamond = next(p for p in ax.patches if p.get_gid() == "pooled")
    xs = diamond.get_xy()[:, 0]
    assert xs.min() == pytest.approx(res.ci_low) and xs.max() == pytest.approx(res.ci_high)
    assert float(np.median(xs)) == pytest.approx(res.estimate)  # top and bottom vertices (closed polygon)
    assert ax.get_xlim()[0] < res.estimate < ax.get_xlim()[1]
    d = res.to_dict()
    foot = [t.get_text() for t in fig.texts if (t.get_gid() or "").startswith("footer")]
    assert foot == footer_lines(res, ("HAT", "Methadone"))
    het = next(line for line in foot if line.startswith("Heterogeneity"))
    assert f"Tau² = {d['tau2']:.2f}" in het and f"Chi² = {d['q']:.2f}, df = {d['q_df']}" in het
    assert f"I² = {d['i2']:.0f}%" in het
    overall = next(line for line in foot if line.startswith("Test for overall effect"))
    assert overall.startswith(f"Test for overall effect: t = {abs(d['t']):.2f}, df = {d['df']:.0f}")
    # RevMan's 'Total events' is a row under the Events columns, level with its label
    events = sum(s["events_treat"] for s in d["studies"])
    label = next(t for t in fig.texts if t.get_text() == "Total events")
    cell = next(t for t in fig.texts if t.get_text() == str(events))
    assert cell.get_position()[1] == label.get_position()[1]


def test_favours_labels_follow_the_benefit_direction():
    res = pool_table(binary_table(4), "RR", method="DL")
    for benefit, left in (("higher", "Favours Methadone"), ("lower", "Favours HAT")):
        fig = forest(res, benefit=benefit, labels=("HAT", "Methadone"))
        fav = sorted((t.get_position()[0], t.get_text()) for t in fig.texts if t.get_text().startswith("Favours"))
        assert fav[0][1] == left


def test_subgroup_blocks_with_subtotals_and_the_test_for_differences():
    table = binary_table(9, with_group=True)
    res = pool_table(table, "RR", method="REML", subgroup="region")
    fig = forest(res, study_groups=dict(zip(table.studies, table.column("region"))))
    ax = fig._hatmeta_axes
    subtotals = [p for p in ax.patches if (p.get_gid() or "").startswith("subtotal-")]
    assert len(subtotals) == 3
    for g in res.subgroups:
        poly = next(p for p in subtotals if p.get_gid() == f"subtotal-{g.group}")
        assert float(np.median(poly.get_xy()[:, 0])) == pytest.approx(g.estimate)
    shown = [t.get_text() for t in fig.texts]
    assert any(s.startswith("Test for subgroup differences: Chi² = " + f"{res.subgroup_test.q:.2f}") for s in shown)
    for g in ("A", "B", "C"):
        assert g in shown


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_saved_figures_are_byte_identical_across_runs(tmp_path, fmt):
    res = pool_table(binary_table(6), "RR")
    a = save(forest(res), tmp_path / f"a.{fmt}").read_bytes()
    b = save(forest(res), tmp_path / f"b.{fmt}").read_bytes()
    assert a == b
    if fmt == "svg":  # text stays text: the labels can be searched in the file
        text = a.decode()
        assert "Trial with a fairly long name 0" in text
        assert not re.search(r"<dc:date>", text)


def test_funnel_draws_every_study_and_eggers_line():
    from hatmeta.fit.effects import escalc
    from hatmeta.methods.publication_bias import egger

    table = binary_table(12, seed=5)
    res = pool_table(table, "RR", small_study="egger")
    fig = funnel(res, res.egger)
    ax = fig.axes[0]
    pts = next(line for line in ax.lines if line.get_gid() == "studies")
    assert len(pts.get_xdata()) == res.k
    assert list(pts.get_ydata()) == pytest.approx(list(np.sqrt([s.vi for s in res.studies])))
    eg = next(line for line in ax.lines if line.get_gid() == "egger")
    e = egger(escalc(table, "RR"))
    x, y = eg.get_xdata(), eg.get_ydata()
    assert x[0] == pytest.approx(e.slope + e.intercept * y[0])
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # SE grows downwards


def test_a_long_title_fits_inside_the_figure():
    res = pool_table(binary_table(3), "RR", method="DL")
    title = "Illicit drug use (responder or abstinence definitions): heroin-assisted treatment vs oral methadone"
    fig = forest(res, title=title)
    fig.canvas.draw()
    box = next(t for t in fig.texts if t.get_text() == title).get_window_extent(fig.canvas.get_renderer())
    assert box.x1 <= fig.get_size_inches()[0] * fig.dpi


def test_bayesian_overlay_and_posterior_plot():
    from hatmeta.api import pool_bayes
    from hatmeta.render.plots import posterior

    res = pool_table(binary_table(6, seed=7), "RR")
    post, _ = pool_bayes(res, benefit="higher")
    fig = forest(res, benefit="higher", bayes=post.to_dict())
    ax = fig._hatmeta_axes
    diamond = next(p for p in ax.patches if p.get_gid() == "bayes")
    xs = diamond.get_xy()[:, 0]
    assert (xs.min(), float(np.median(xs)), xs.max()) == pytest.approx((post.mu.low, post.mu.median, post.mu.high))
    shown = [t.get_text() for t in fig.texts]
    assert f"{math.exp(post.mu.median):.2f} [{math.exp(post.mu.low):.2f}, {math.exp(post.mu.high):.2f}]" in shown
    assert any(t.startswith("Bayesian (orange)") for t in shown)
    assert f"Priors: tau ~ {post.prior['tau_prior']}; mu ~ N(0, 4²)" in shown
    fig = posterior(post, res.measure, res.scale)
    ax_mu, ax_tau = fig.axes[:2]
    line = next(ln for ln in ax_mu.lines if ln.get_gid() == "mu-posterior")
    x, y = line.get_xdata(), line.get_ydata()
    from scipy.integrate import trapezoid

    assert trapezoid(y, x) == pytest.approx(1, abs=0.01)  # a density
    assert x[np.argmax(y)] == pytest.approx(post.mu.median, abs=0.05)
    prior_line = next(ln for ln in ax_tau.lines if ln.get_gid() == "tau-prior")
    assert prior_line.get_ydata()[0] == pytest.approx(2 / (0.5 * math.sqrt(2 * math.pi)), rel=1e-3)


def svg_texts(path):
    """Every <text> of a saved SVG (text stays text: svg.fonttype 'none'), with its x and y."""
    import xml.etree.ElementTree as ET

    ns = "{http://www.w3.org/2000/svg}"
    root = ET.parse(path).getroot()
    return root, [(el.text or "", float(el.get("x")), float(el.get("y"))) for el in root.iter(f"{ns}text")]


def test_svg_file_holds_every_label_the_footer_and_the_diamond_at_the_estimate(tmp_path):
    """Read the SVG as a reader's browser would: the text and the diamond's place on the axis."""
    res = pool_table(binary_table(8, seed=11), "RR", method="REML", ci="hksj")
    path = save(forest(res, benefit="higher", labels=("HAT", "Methadone")), tmp_path / "f.svg")
    root, found = svg_texts(path)
    words = [t for t, _, _ in found]
    for s in res.studies:
        assert s.label in words
        assert f"{s.weight:.1f}%" in words
        assert f"{s.inputs['events_treat']}" in words and f"{s.inputs['n_ctrl']}" in words
    d = res.to_dict()
    het = f"Heterogeneity: Tau² = {d['tau2']:.2f}; Chi² = {d['q']:.2f}, df = {d['q_df']} "
    assert any(w.startswith(het) and w.endswith(f"I² = {d['i2']:.0f}%") for w in words)
    from hatmeta.render.plots.forest import fmt_p

    assert f"Test for overall effect: t = {abs(d['t']):.2f}, df = {d['df']:.0f} ({fmt_p(d['p'])})" in words
    assert f"{math.exp(d['estimate']):.2f} [{math.exp(d['ci_low']):.2f}, {math.exp(d['ci_high']):.2f}]" in words
    # The axis is logarithmic and labelled on the natural scale: map SVG x to log(RR) from two
    # tick labels, then the diamond's left, centre and right vertices must be the CI and estimate.
    ticks = {float(t): x for t, x, y in found if re.fullmatch(r"[0-9.]+", t) and y == max(
        yy for tt, _, yy in found if re.fullmatch(r"[0-9.]+", tt))}
    (t1, x1), (t2, x2) = sorted(ticks.items())[0], sorted(ticks.items())[-1]
    scale = (x2 - x1) / (math.log(t2) - math.log(t1))
    # The spacing of every tick is logarithmic, not linear.
    for t, x in ticks.items():
        assert x == pytest.approx(x1 + scale * (math.log(t) - math.log(t1)), abs=0.01)
    ns = "{http://www.w3.org/2000/svg}"
    group = next(g for g in root.iter(f"{ns}g") if g.get("id") == "pooled")
    d_attr = next(group.iter(f"{ns}path")).get("d")
    pts = [tuple(map(float, m)) for m in re.findall(r"([-0-9.]+) ([-0-9.]+)", d_attr)]
    xs = [x1 + scale * (v - math.log(t1)) for v in (res.ci_low, res.estimate, res.ci_high)]
    got = sorted({round(x, 3) for x, _ in pts})
    assert got == pytest.approx(xs, abs=0.01)


def test_squares_have_area_proportional_to_weight():
    res = pool_table(binary_table(8, seed=2), "RR", method="REML")
    ax = forest(res)._hatmeta_axes
    sides = {ln.get_gid()[len("study-"):]: ln.get_markersize() for ln in ax.lines
             if (ln.get_gid() or "").startswith("study-")}
    assert len(sides) == res.k
    w = {s.study: s.weight for s in res.studies}
    big = [s for s in sides if sides[s] > 3.0]  # above the visible minimum
    assert len(big) >= 2
    ratio = {s: sides[s] ** 2 / w[s] for s in big}
    assert max(ratio.values()) == pytest.approx(min(ratio.values()), rel=1e-9)


def test_subgroup_blocks_show_their_totals_weights_and_heterogeneity():
    from scipy.stats import chi2

    from hatmeta.render.plots.forest import fmt_p

    table = binary_table(10, seed=4, with_group=True)
    res = pool_table(table, "RR", method="REML", subgroup="region")
    groups = dict(zip(table.studies, table.column("region")))
    fig = forest(res, labels=("HAT", "Methadone"), study_groups=groups)
    shown = [t.get_text() for t in fig.texts]
    for g in res.subgroups:
        members = [s for s in res.studies if groups[s.study] == g.group]
        assert len(members) == g.k
        assert f"{sum(s.weight for s in members):.1f}%" in shown
        assert str(sum(s.inputs["n_treat"] for s in members)) in shown
        e1 = sum(s.inputs["events_treat"] for s in members)
        e2 = sum(s.inputs["events_ctrl"] for s in members)
        assert str(e1) in shown and str(e2) in shown  # the subgroup's 'Total events' row
        stat = g.estimate / g.se
        assert f"Test for overall effect: Z = {abs(stat):.2f} ({fmt_p(2 * chi2.sf(stat ** 2, 1) / 2)})" in shown
        p = fmt_p(chi2.sf(g.q, g.k - 1))
        assert (f"Heterogeneity: Tau² = {g.tau2:.2f}; Chi² = {g.q:.2f}, df = {g.k - 1} ({p}); I² = {g.i2:.0f}%"
                in shown)
    # With subgroup lines and the Bayesian overlay, no two texts overlap either.
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts(fig)]
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1:]:
            assert not ba.overlaps(bb), f"{a!r} overlaps {b!r}"
    # The subgroup lines stay left of the plot panel.
    panel_x0 = fig._hatmeta_axes.get_window_extent(renderer).x0
    for t in texts(fig):
        if t.get_text().startswith(("Total events", "Heterogeneity")) and t.get_gid() is None:
            assert t.get_window_extent(renderer).x1 < panel_x0


def test_p_values_print_as_revman_prints_them():
    from hatmeta.render.plots.forest import fmt_p

    assert fmt_p(0.000001) == "P < 0.00001"
    assert fmt_p(0.0432) == "P = 0.04"
    assert fmt_p(0.0043) == "P = 0.004"
    assert fmt_p(0.00012) == "P = 0.0001"
    assert fmt_p(0.00007) == "P < 0.0001"  # RevMan, where 'P = 0.00007' was printed
    assert fmt_p(0.0049) == "P = 0.005"
    assert fmt_p(0.0096) == "P = 0.01"  # not 'P = 0.010'
    assert fmt_p(0.5) == "P = 0.50"
    assert fmt_p(float("nan")) == "P = NA"


def test_funnel_and_posterior_keep_a_long_title_inside_the_figure():
    from hatmeta.api import pool_bayes
    from hatmeta.render.plots import posterior

    title = "Retention in treatment: heroin-assisted treatment vs oral methadone or conventional treatment"
    res = pool_table(binary_table(5, seed=9), "RR", small_study="egger")
    post, _ = pool_bayes(res)
    for fig in (funnel(res, res.egger, title=title), posterior(post, res.measure, res.scale, title=title)):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        W, H = fig.get_size_inches() * fig.dpi
        titles = [t for t in fig.findobj(lambda o: hasattr(o, "get_text") and o.get_text().startswith("Retention"))]
        assert titles
        for t in titles:
            box = t.get_window_extent(renderer)
            assert box.x0 >= 0 and box.x1 <= W and box.y1 <= H, t.get_text()


def test_a_subgroup_without_a_ci_says_not_estimable_instead_of_nan():
    """With HKSJ a one-trial subgroup has k - 1 = 0 df: the engine gives no CI; the plot says so."""
    table = binary_table(4, with_group=True)  # groups A (2 trials), B and C (one each)
    res = pool_table(table, "RR", method="REML", ci="hksj", subgroup="region")
    fig = forest(res, study_groups=dict(zip(table.studies, table.column("region"))))
    shown = [t.get_text() for t in fig.texts]
    assert not any("nan" in t for t in shown)
    lonely = [g for g in res.subgroups if g.k == 1]
    assert lonely
    for g in lonely:
        if not math.isfinite(g.ci_low):
            assert f"{math.exp(g.estimate):.2f} [CI not estimable]" in shown
            assert not any(p.get_gid() == f"subtotal-{g.group}" for p in fig._hatmeta_axes.patches)
    if not math.isfinite(res.subgroup_test.q):
        assert any(t.startswith("Test for subgroup differences: not estimable") for t in shown)


def test_posterior_tick_labels_and_legends_do_not_collide():
    from hatmeta.api import pool_bayes, pool_file
    from hatmeta.render.plots import posterior

    from ..conftest import FIXTURES

    res = pool_file(FIXTURES / "data" / "bcg.csv", "RR")  # a mean far below zero: long negative labels
    post, _ = pool_bayes(res)
    fig = posterior(post, res.measure, res.scale)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes[:2]:
        boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text() and t.get_visible()
                 and ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]]
        assert len(boxes) >= 3
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert not a.overlaps(b)
        legend = ax.get_legend().get_window_extent(renderer)
        for line in ax.lines:
            if (line.get_gid() or "").endswith("posterior"):
                xy = ax.transData.transform(np.column_stack([line.get_xdata(), line.get_ydata()]))
                inside = ((xy[:, 0] > legend.x0) & (xy[:, 0] < legend.x1) & (xy[:, 1] > legend.y0)
                          & (xy[:, 1] < legend.y1))
                assert not inside.any(), "the legend covers the posterior curve"


def test_a_local_matplotlib_style_does_not_leak_into_the_figures(tmp_path):
    import matplotlib

    from hatmeta.api import pool_bayes
    from hatmeta.render.plots import posterior

    res = pool_table(binary_table(5, seed=12), "RR", small_study="egger")
    post, _ = pool_bayes(res)
    draw = {"forest": lambda: forest(res), "funnel": lambda: funnel(res, res.egger),
            "posterior": lambda: posterior(post, res.measure, res.scale)}
    clean = {k: save(f(), tmp_path / f"{k}-a.svg").read_bytes() for k, f in draw.items()}
    with matplotlib.rc_context({"font.family": "serif", "font.size": 14, "lines.linewidth": 5,
                                "axes.prop_cycle": matplotlib.cycler(color=["red"]), "svg.hashsalt": None}):
        local = {k: save(f(), tmp_path / f"{k}-b.svg").read_bytes() for k, f in draw.items()}
    assert local == clean


def test_forty_trials_in_subgroups_with_the_bayesian_overlay_stay_legible():
    """The busiest layout: no two texts overlap, and no table text runs into the plot panel."""
    from hatmeta.api import pool_bayes

    table = binary_table(40, seed=8, with_group=True)
    res = pool_table(table, "RR", method="REML", subgroup="region")
    post, _ = pool_bayes(res, benefit="higher")
    fig = forest(res, benefit="higher", labels=("HAT", "Methadone"), title="Forty trials",
                 study_groups=dict(zip(table.studies, table.column("region"))), bayes=post.to_dict())
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts(fig)]
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1:]:
            assert not ba.overlaps(bb), f"{a!r} overlaps {b!r}"
    panel = fig._hatmeta_axes.get_window_extent(renderer)
    for name, box in boxes:
        beside = box.y1 > panel.y0 and box.y0 < panel.y1 and box.x0 < panel.x0
        assert not beside or box.x1 <= panel.x0, f"{name!r} runs into the plot"
    W, H = fig.get_size_inches() * fig.dpi
    assert all(b.x0 >= 0 and b.y0 >= 0 and b.x1 <= W + 1 and b.y1 <= H + 1 for _, b in boxes)
    assert len([ln for ln in fig._hatmeta_axes.lines if (ln.get_gid() or "").startswith("shrunken-")]) == 40
