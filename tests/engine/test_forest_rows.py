"""Rows of the forest plots as RevMan writes them: a 'Not estimable' trial keeps its place in the input
order (RevMan lists studies as entered), and a cumulative meta-analysis's first row (k = 1) shows that
trial's own CI with heterogeneity 'not applicable', not '[CI not estimable]' beside tau² 0 and I² 0%."""

import pytest

from hatmeta.api import pool_table
from hatmeta.io.trial_table import table_from_rows
from hatmeta.render.plots import forest
from hatmeta.render.plots.forest import ci_text
from hatmeta.render.plots.sensitivity import sensitivity_forest

ROWS = [["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl", "year"],
        ["a", "10", "100", "20", "100", "2001"], ["b", "0", "50", "0", "50", "2002"],
        ["c", "15", "120", "25", "110", "2003"], ["d", "8", "90", "14", "95", "2004"]]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _y(fig, text):
    return next(t.get_position()[1] for t in fig.texts if t.get_text() == text)


@pytest.mark.parametrize("method", ["MH", "REML"])
def test_a_not_estimable_trial_stays_in_input_order(method):
    res = pool_table(table_from_rows(ROWS), "RR", method=method)
    assert [a["study"] for a in res.not_estimable] == ["b"]
    fig = forest(res)
    ys = [_y(fig, s) for s in "abcd"]  # rows counted downwards: y falls
    assert ys == sorted(ys, reverse=True), "rows out of input order"
    ne = [t.get_position()[1] for t in fig.texts if t.get_text() == "Not estimable"]
    assert len(ne) == 1 and ne[0] == pytest.approx(ys[1])


def test_the_result_table_keeps_input_order_too():
    from hatmeta.render.tables import result_table

    md = result_table(pool_table(table_from_rows(ROWS), "RR", method="MH"), "markdown")
    lines = [ln for ln in md.splitlines() if ln.startswith("| ") and ln.split("|")[1].strip() in "abcd"
             and ln.split("|")[1].strip()]
    assert [ln.split("|")[1].strip() for ln in lines] == list("abcd")


@pytest.mark.parametrize("method,ci", [("REML", "hksj"), ("MH", "wald"), ("DL", "wald")])
def test_the_first_cumulative_row_shows_the_trials_own_ci_and_heterogeneity_not_applicable(method, ci):
    rows = [r for r in ROWS if r[0] != "b"]
    res = pool_table(table_from_rows(rows), "RR", method=method, ci=ci, cumulative="year")
    first = res.cumulative[0]
    own = next(s for s in res.studies if s.study == first.study)
    fig = sensitivity_forest(res, "cumulative")
    texts = [t.get_text() for t in fig.texts]
    y_first = _y(fig, "+ a")
    row = [t.get_text() for t in fig.texts if t.get_position()[1] == pytest.approx(y_first)]
    assert ci_text(res.natural, own.yi, own.ci_low, own.ci_high) in row
    assert not any("not estimable" in t for t in row)
    assert "0%" not in row and "100%" not in row and "0.00" not in row  # no I² or tau² from one trial
    assert any("not applicable" in t for t in texts)
    # the trial's own CI is drawn as its whisker
    ax = fig._hatmeta_axes
    assert any(len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == pytest.approx(max(own.ci_low, ax.get_xlim()[0]))
               for ln in ax.lines)
