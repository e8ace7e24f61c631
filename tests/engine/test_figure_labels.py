"""Figures say what they show: every mark a reader must decode has a label or a legend entry, and nothing a
reader needs is cut off by the axis range (issue 26, item 8; compared with RevMan's and R meta's defaults)."""

import pytest

from hatmeta.api import pool_table
from hatmeta.io.trial_table import read_table

from ..conftest import FIXTURES
from .test_forest_layout import assert_laid_out, table


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def retention_like():
    """Three trials far from the null (RR 1.3-1.7), as the review's retention analysis."""
    from hatmeta.io.trial_table import table_from_rows

    rows = [["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl", "label"],
            ["haasen", "346", "515", "200", "500", "Haasen 2007"], ["oviedo", "101", "115", "60", "111", "Oviedo 2009"],
            ["strang", "38", "43", "29", "42", "Strang 2010"]]
    return pool_table(table_from_rows(rows), "RR", method="REML", ci="hksj")


def test_the_funnel_shows_the_whole_pseudo_95_region_and_labels_the_pooled_line():
    from scipy.special import ndtri

    from hatmeta.render.plots import funnel

    res = retention_like()
    fig = funnel(res)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    se_max = ax.get_ylim()[0]
    z = ndtri(0.975)
    assert lo <= res.estimate - z * se_max and res.estimate + z * se_max <= hi
    assert lo < 0 < hi  # the null and its contours stay in view
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("pooled estimate (RR 1.5") for t in legend), legend


def test_the_risk_of_bias_legend_names_every_judgement_drawn_and_is_compact():
    from hatmeta.render.plots import forest

    res = pool_table(table(4), "RR")
    domains = [f"domain number {j}" for j in range(7)]
    rob = {s.study: {d: ("not assessed" if j % 2 else "low") for j, d in enumerate(domains)} for s in res.studies}
    rob[res.studies[0].study][domains[0]] = "high"
    fig = forest(res, risk_of_bias=rob)
    legend = [t for t in fig.texts if (t.get_gid() or "").startswith("rob-legend")]
    text = " ".join(t.get_text() for t in legend)
    for word in ("Low risk", "High risk", "Not assessed"):
        assert word in text, text
    for j, d in enumerate(domains):  # every domain named with its letter
        assert f"({chr(65 + j)}) {d}" in text
    lines = {round(t.get_position()[1], 4) for t in legend}
    assert len(lines) < len(domains) + 1, [t.get_text() for t in legend]  # was a line each and a header
    # the key's lights are drawn in the legend, grey for 'not assessed'
    for j in ("low", "high", "not assessed"):
        assert fig.findobj(lambda o, j=j: o.get_gid() == f"rob-key-{j}")
    assert_laid_out(fig)


def test_the_influence_plot_names_the_studies_and_explains_its_colours():
    from hatmeta.render.plots.influence import influence_plot

    res = retention_like()
    fig = influence_plot(res)
    ticks = [t.get_text() for t in fig.axes[-1].get_xticklabels()]
    assert ticks == [s.label for s in res.studies]
    assert fig.legends, "no legend for the colours"
    entries = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(e.startswith("influential") for e in entries) and "not influential" in entries, entries


def test_baujat_names_every_study_without_overlapping_labels():
    from matplotlib.text import Text

    from hatmeta.render.plots.influence import baujat

    res = pool_table(read_table(FIXTURES / "pubbias" / "egger2001.csv", measure="OR"), "OR")
    fig = baujat(res)
    ax = fig.axes[0]
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    names = [t for t in ax.texts if t.get_text()]
    assert sorted(t.get_text() for t in names) == sorted(s.label or s.study for s in res.studies)
    boxes = [Text.get_window_extent(t, r) for t in names]  # the name's box, without its leader line
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (names[i].get_text(), names[j].get_text())
    frame = ax.get_window_extent(r)
    for t, b in zip(names, boxes):
        assert frame.x0 - 1 <= b.x0 and b.x1 <= frame.x1 + 1 and frame.y0 - 1 <= b.y0 and b.y1 <= frame.y1 + 1, t
