"""A plot given ``ax=`` draws inside that Axes (a notebook's 1 x 2 figure) or refuses with a clear error.

Checked on the drawn artists: the figure keeps its size, the other panel keeps its place, and no text,
line or legend of the plot reaches into the other panel's box."""

import pytest

from hatmeta.api import pool_table
from hatmeta.errors import InputError

from .test_forest_layout import table


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def two_panels():
    from hatmeta.render.plots.style import pyplot

    fig, (a0, a1) = pyplot().subplots(1, 2, figsize=(10, 4))
    fig.canvas.draw()
    return fig, a0, a1


def assert_inside_left_panel(fig, a0, a1, before):
    """Size unchanged, a1 where it was, nothing drawn by the plot over a1."""
    w, h, pos1 = before
    assert tuple(fig.get_size_inches()) == pytest.approx((w, h))
    assert a1.get_position().bounds == pytest.approx(pos1.bounds)
    assert not a1.lines and not a1.texts and not a1.patches and not a1.collections
    renderer = fig.canvas.get_renderer()
    other = a1.get_window_extent(renderer)
    artists = list(fig.texts) + [x for ax in fig.axes if ax is not a1
                                 for x in ax.texts + ax.lines + ([ax.get_legend()] if ax.get_legend() else [])
                                 + [ax.title, ax.xaxis.label, ax.yaxis.label]]
    for artist in artists:
        if not artist.get_visible() or (hasattr(artist, "get_text") and not artist.get_text()):
            continue
        box = artist.get_window_extent(renderer)
        if box.width == 0 or box.height == 0:
            continue
        assert box.x1 <= other.x0 + 0.5, f"{artist!r} reaches into the other panel ({box.x1:.0f} > {other.x0:.0f})"


def test_forest_on_one_panel_of_two_refuses_with_a_clear_error():
    from hatmeta.render.plots import forest

    res = pool_table(table(5), "RR")
    fig, a0, a1 = two_panels()
    before = (*fig.get_size_inches(), a1.get_position())
    with pytest.raises(InputError, match="its own figure"):
        forest(res, ax=a0)
    assert_inside_left_panel(fig, a0, a1, before)


def test_forest_on_the_only_axes_of_a_figure_still_lays_itself_out():
    from hatmeta.render.plots import forest
    from hatmeta.render.plots.style import pyplot

    fig, ax = pyplot().subplots()
    assert forest(pool_table(table(5), "RR"), ax=ax) is fig and fig._hatmeta_axes is ax


@pytest.mark.parametrize("plot", ["funnel", "baujat", "tsa", "methods", "funnel-trim-fill"])
def test_plots_that_take_ax_stay_inside_it(plot):
    fig, a0, a1 = two_panels()
    before = (*fig.get_size_inches(), a1.get_position())
    res = pool_table(table(12, seed=11), "RR", small_study="egger", trim_fill=plot == "funnel-trim-fill")
    title = "Retention in treatment at 12 months, heroin-assisted treatment versus oral methadone"
    if plot.startswith("funnel"):
        from hatmeta.render.plots import funnel

        assert funnel(res, res.egger, ax=a0, title=title, filled=res.extra.get("trim_fill")) is fig
    elif plot == "baujat":
        from hatmeta.render.plots.influence import baujat

        assert baujat(res, ax=a0, title=title) is fig
    elif plot == "tsa":
        from hatmeta.methods.tsa import tsa
        from hatmeta.render.plots.tsa import tsa_plot

        t = tsa(["a", "b", "c"], [-0.3, -0.2, -0.4], [0.04, 0.02, 0.03], [200, 400, 300], measure="RR",
                scale="log", rrr=0.3, control_risk=0.15, d2=0.0)
        assert tsa_plot(t, ax=a0, title=title) is fig
    else:
        from hatmeta.render.plots.methods import methods_plot

        r = pool_table(table(6), "OR", compare_methods=True)
        assert methods_plot(r, ax=a0, title=title) is fig
    fig.canvas.draw()
    assert_inside_left_panel(fig, a0, a1, before)


def test_the_influence_plot_on_given_axes_leaves_the_rest_of_the_figure_alone():
    from hatmeta.render.plots.influence import influence_plot
    from hatmeta.render.plots.style import pyplot

    fig, grid = pyplot().subplots(4, 3, figsize=(10, 8))
    fig.canvas.draw()
    spare = [row[2] for row in grid]
    before = [b for a in fig.axes for b in a.get_position().bounds]
    res = pool_table(table(6), "RR")
    assert influence_plot(res, axes=[a for row in grid for a in row[:2]], title="A long title " * 6) is fig
    assert tuple(fig.get_size_inches()) == pytest.approx((10, 8))
    assert [b for a in fig.axes for b in a.get_position().bounds] == pytest.approx(before)  # no re-layout
    assert not fig.legends and all(not a.lines for a in spare)
    assert grid[0][0].get_legend() is not None  # the colours are still explained
