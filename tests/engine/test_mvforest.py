"""The forest plot of a multilevel / multivariate fit (hatmeta/render/plots/mvforest.py): effects grouped by
cluster with metafor's weights, the pooled estimate (or one per level of a categorical moderator) and its
prediction interval, reproducible bytes, and a given Axes' box respected."""

import json

import pytest

from hatmeta.errors import InputError
from hatmeta.fit.effects import escalc
from hatmeta.fit.multilevel import predict_mv, rma_mv, sampling_cov
from hatmeta.io.trial_table import read_table
from hatmeta.render.plots import forest, save

from ..conftest import FIXTURES
from .test_forest_layout import assert_laid_out
from .test_plots_on_axes import assert_inside_left_panel

HERE = FIXTURES / "multilevel"
EXTRAS = {c["id"]: c for c in json.loads((HERE / "extras.json").read_text())["cases"]}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def konstantopoulos(**kw):
    es = escalc(read_table(HERE / "konstantopoulos2011.csv"), "GEN")
    return rma_mv(es, random=["~ 1 | district/school"], **kw)


def berkey(**kw):
    es = escalc(read_table(HERE / "berkey1998.csv"), "GEN")
    V = sampling_cov(es, "trial", None, ("v1i", "v2i"))
    return rma_mv(es, random=["~ outcome | trial"], struct="UN", V=V, **kw)


def texts(fig):
    return [t.get_text() for t in fig.texts]


def by_gid(fig, gid):
    ax = fig._hatmeta_axes
    return [a for a in list(ax.lines) + list(ax.patches) + list(fig.texts) if a.get_gid() == gid]


def test_three_level_rows_are_grouped_by_district_in_table_order():
    res = konstantopoulos()
    fig = forest(res)
    table = read_table(HERE / "konstantopoulos2011.csv")
    districts = list(dict.fromkeys(table.column("district")))
    heads = {t.get_gid(): t for t in fig.texts if (t.get_gid() or "").startswith("cluster-")}
    assert [g.removeprefix("cluster-") for g in heads] == districts  # every district, in order of appearance
    assert [t.get_text() for t in heads.values()] == [f"district {d}" for d in districts]
    # every effect drawn once, under its district's heading and above the next district's
    ys = {d: heads[f"cluster-{d}"].get_position()[1] for d in districts}
    ax = fig._hatmeta_axes
    for r, d in enumerate(table.column("district")):
        (mark,) = by_gid(fig, f"effect-{r}")
        y_fig = ax.transLimits.transform((0, mark.get_ydata()[0]))[1]
        y_fig = ax.get_position().y0 + y_fig * ax.get_position().height
        assert y_fig < ys[d]
        later = [ys[e] for e in districts[districts.index(d) + 1:]]
        assert all(y_fig > y for y in later)
    assert len(by_gid(fig, "pooled-0")) == 1 and len(by_gid(fig, "pi-0")) == 1
    assert_laid_out(fig)


def test_weights_and_pooled_numbers_are_metafors():
    fig = forest(konstantopoulos())
    case = EXTRAS["konstantopoulos2011-REML"]
    shown = texts(fig)
    weights = [t for t in shown if t.endswith("%") and t != "100.0%"]
    assert weights == [f"{w:.1f}%" for w in case["weights"]]
    p = case["predict"]
    assert f"{p['pred'][0]:.2f} [{p['ci_low'][0]:.2f}, {p['ci_high'][0]:.2f}]" in shown
    assert f"[{p['pi_low'][0]:.2f}, {p['pi_high'][0]:.2f}]" in shown
    (pi,) = by_gid(fig, "pi-0")
    assert pi.get_xdata() == pytest.approx([p["pi_low"][0], p["pi_high"][0]])
    assert any(t.startswith("Test for overall effect: Z = ") for t in shown)


def test_categorical_moderator_draws_one_summary_per_level():
    res = berkey(moderators=["outcome"])
    fig = forest(res)
    shown = texts(fig)
    assert "outcome = PD (95% CI)" in shown and "outcome = AL (95% CI)" in shown
    assert not any(t.startswith("Pooled") for t in shown)
    assert [f"trial {i}" for i in range(1, 6)] == [t for t in shown if t.startswith("trial ") and "/" not in t]
    exp = EXTRAS["berkey1998-UN"]["predict"]  # metafor predict(newmods = c(0, 1), tau2.levels = 1:2)
    for j, level in ((0, "AL"), (1, "PD")):
        pred = predict_mv(res, [1.0, float(j)], level)
        assert pred.pi_low == pytest.approx(exp["pi_low"][j], abs=1e-7)
    diamonds = [by_gid(fig, f"pooled-{j}")[0] for j in range(2)]
    centres = sorted(float(d.get_xy()[1, 0]) for d in diamonds)  # the diamond's top vertex: the estimate
    assert centres == pytest.approx(sorted(exp["pred"]), abs=1e-6)
    assert len(by_gid(fig, "pi-0")) == len(by_gid(fig, "pi-1")) == 1
    assert any("Test of moderators (outcomePD): QM = " in t for t in shown)
    assert_laid_out(fig)


def test_un_without_moderators_gives_a_prediction_interval_per_inner_level():
    shown = texts(forest(berkey()))
    assert "Prediction interval (outcome = AL)" in shown and "Prediction interval (outcome = PD)" in shown


def test_continuous_moderator_has_no_pooled_estimate_and_says_so():
    fig = forest(konstantopoulos(moderators=["year"]))
    assert not by_gid(fig, "pooled-0")
    (note,) = [t for t in fig.texts if t.get_gid() == "no-pooled"]
    assert "No pooled estimate: the model has moderators (year)" in note.get_text()


def test_t_test_is_named_in_the_footer():
    shown = texts(forest(konstantopoulos(test="t")))
    assert any(t.startswith("Test for overall effect: t = ") and "df = 55" in t for t in shown)


def test_one_effect_per_cluster_draws_no_block_headings():
    es = escalc(read_table(HERE / "bcg.csv"), "GEN")
    fig = forest(rma_mv(es, random=["~ 1 | trial"]))
    assert not [t for t in fig.texts if (t.get_gid() or "").startswith("cluster-")]
    assert "trial 1" in texts(fig) and "trial 13" in texts(fig)


def test_svg_is_byte_stable(tmp_path):
    a, b = tmp_path / "a.svg", tmp_path / "b.svg"
    save(forest(berkey(moderators=["outcome"]), title="berkey1998"), a)
    save(forest(berkey(moderators=["outcome"]), title="berkey1998"), b)
    assert a.read_bytes() == b.read_bytes()
    assert b"trial 3" in a.read_bytes()


def two_panels(size=(16, 7)):
    from hatmeta.render.plots.style import pyplot

    fig, (a0, a1) = pyplot().subplots(1, 2, figsize=size)
    fig.canvas.draw()
    return fig, a0, a1


def test_drawn_inside_the_given_axes_box():
    fig, a0, a1 = two_panels()
    box = a0.get_window_extent().frozen()
    before = (*fig.get_size_inches(), a1.get_position())
    assert forest(berkey(moderators=["outcome"]), ax=a0) is fig and fig._hatmeta_axes is a0
    assert_inside_left_panel(fig, a0, a1, before)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    for t in fig.texts:
        e = t.get_window_extent(r)
        assert box.x0 - 0.5 <= e.x0 and e.x1 <= box.x1 + 0.5 and box.y0 - 0.5 <= e.y0 and e.y1 <= box.y1 + 0.5, \
            f"{t.get_text()!r} leaves the Axes' box"
    assert a0.get_tightbbox(r).y0 >= box.y0 - 0.5


def test_a_box_too_small_is_refused_with_the_size_needed():
    fig, a0, a1 = two_panels((8, 3))
    before = (*fig.get_size_inches(), a1.get_position())
    with pytest.raises(InputError, match=r"needs a box of at least .* in"):
        forest(konstantopoulos(), ax=a0)
    assert_inside_left_panel(fig, a0, a1, before)


def test_the_only_axes_of_a_figure_gets_a_figure_sized_to_the_plot():
    from hatmeta.render.plots.style import pyplot

    fig, ax = pyplot().subplots()
    assert forest(konstantopoulos(), ax=ax) is fig and fig._hatmeta_axes is ax
    assert fig.get_size_inches()[1] > 10  # 56 effects in 11 districts
    assert_laid_out(fig)


def cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "hatmeta.cli", "forest", *args], capture_output=True, text=True)


def test_cli_forest_random_writes_the_plot(tmp_path):
    out = tmp_path / "f.svg"
    p = cli("--data", str(HERE / "konstantopoulos2011.csv"), "--measure", "GEN", "--random", "~ 1 | district/school",
            "--out", str(out))
    assert p.returncode == 0, p.stderr
    svg = out.read_text()
    assert "district 644" in svg and "Pooled (REML, 95% CI)" in svg


@pytest.mark.parametrize("args, option", [
    (["--random", "~ 1 | district/school", "--sort", "weight"], "--sort"),
    (["--random", "~ 1 | district/school", "--bayes"], "--bayes"),
    (["--random", "~ 1 | district/school", "--method", "DL"], "--method"),
    (["--struct", "UN"], "--random"),
])
def test_cli_forest_random_refuses_what_it_does_not_draw(args, option, tmp_path):
    p = cli("--data", str(HERE / "konstantopoulos2011.csv"), "--measure", "GEN", *args,
            "--out", str(tmp_path / "x.png"))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and f"'{option}'" in lines[0], lines
    assert not (tmp_path / "x.png").exists()
