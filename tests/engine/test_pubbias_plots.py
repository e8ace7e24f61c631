"""Baujat and influence plots, and trim-and-fill on the funnel plot."""

import numpy as np
from click.testing import CliRunner

from hatmeta.api import pool_table
from hatmeta.cli import cli
from hatmeta.io.trial_table import read_table
from hatmeta.render.plots import funnel
from hatmeta.render.plots.influence import baujat, influence_plot

from ..conftest import FIXTURES

DATA = FIXTURES / "pubbias" / "egger2001.csv"


def result(**options):
    return pool_table(read_table(DATA, measure="OR"), "OR", **options)


def _line(fig, gid):
    return next(line for ax in fig.axes for line in ax.get_lines() if line.get_gid() == gid)


def test_baujat_plots_every_study_at_metafors_coordinates():
    from hatmeta.methods.influence import influence_arrays

    res = result()
    fig = baujat(res)
    x, y = _line(fig, "studies").get_data()
    a = influence_arrays(np.array([s.yi for s in res.studies]), np.array([s.vi for s in res.studies]), [res.k])
    assert np.allclose(x, a["baujat_x"]) and np.allclose(y, a["baujat_y"])
    # The study with the largest residual is the one Q drops most without (ISIS-4 here).
    top = int(np.argmax(x))
    assert res.studies[top].study == "ISIS-4 1995"


def test_baujat_draws_on_a_given_axis():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert baujat(result(), ax=ax) is fig


def test_influence_plot_has_eight_panels_and_flags():
    res = result()
    fig = influence_plot(res)
    assert len(fig.axes) == 8
    n = sum(len(_line(fig, f"rstudent-{kind}").get_xdata()) for kind in ("studies", "influential"))
    assert n == res.k


def test_funnel_draws_filled_studies():
    res = result(trim_fill=True)
    tf = res.extra["trim_fill"]
    fig = funnel(res, None, filled=tf)
    fx, fy = _line(fig, "filled").get_data()
    assert len(fx) == tf.k0 == 7
    assert np.allclose(fx, tf.filled_yi) and np.allclose(fy, np.sqrt(tf.filled_vi))


def test_figure_commands(tmp_path):
    runner = CliRunner()
    for cmd in ("baujat", "influence"):
        out = tmp_path / f"{cmd}.svg"
        r = runner.invoke(cli, [cmd, "--data", str(DATA), "--measure", "OR", "--out", str(out)])
        assert r.exit_code == 0, r.output
        assert out.stat().st_size > 1000


def test_funnel_command_drops_eggers_line_below_ten_studies(tmp_path, write_csv):
    rows = [["study", "yi", "vi"]] + [[f"s{i}", 0.1 * i, 0.02 + 0.02 * i] for i in range(6)]
    path = write_csv(rows)
    r = CliRunner().invoke(cli, ["funnel", "--data", str(path), "--measure", "GEN", "--out",
                                 str(tmp_path / "f.svg")])
    assert r.exit_code == 0
    assert "6 studies" in r.output and "Egger's line not drawn" in r.output
    assert "Egger" not in (tmp_path / "f.svg").read_text()
    r = CliRunner().invoke(cli, ["funnel", "--data", str(path), "--measure", "GEN", "--egger-line", "--out",
                                 str(tmp_path / "g.svg")])
    assert "Egger" in (tmp_path / "g.svg").read_text()
