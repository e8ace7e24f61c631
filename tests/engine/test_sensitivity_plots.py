"""`hatmeta forest ANALYSIS --cumulative COL / --leave-one-out`: the sequence drawn matches the numbers."""


import pytest

from hatmeta.cli import main
from hatmeta.render.plots.forest import ci_text
from hatmeta.render.plots.sensitivity import sensitivity_forest
from hatmeta.review.api import pool_analysis


def texts(fig):
    return [t.get_text() for t in fig.texts]


def markers(fig, prefix):
    ax = fig._hatmeta_axes
    return {line.get_gid()[len(prefix):]: line.get_xdata()[0] for line in ax.lines
            if (line.get_gid() or "").startswith(prefix)}


@pytest.mark.parametrize("kind", ["cumulative", "leave_one_out"])
def test_plot_matches_the_sequence(kind):
    opts = {"cumulative": "year"} if kind == "cumulative" else {"leave_one_out": True}
    res, an = pool_analysis("retention", **opts)
    seq = getattr(res, kind)
    keys = dict(zip(an.table.studies, an.table.column("year")))
    fig = sensitivity_forest(res, kind, benefit="higher", labels=("HAT", "methadone"), order_by="year", keys=keys)
    shown = texts(fig)
    own = {s.study: s for s in res.studies}
    for r in seq:  # a fit of one trial shows that trial's own CI (RevMan)
        s = own[r.study]
        want = ci_text(res.natural, s.yi, s.ci_low, s.ci_high) if r.k == 1 else ci_text(res.natural, r.estimate,
                                                                                           r.ci_low, r.ci_high)
        assert want in shown
    pos = markers(fig, f"{kind}-")
    assert set(pos) == {r.study for r in seq}
    for r in seq:
        assert pos[r.study] == pytest.approx(r.estimate)
    assert ci_text(res.natural, res.estimate, res.ci_low, res.ci_high) in shown
    label = {s.study: s.label for s in res.studies}
    prefix = "+ " if kind == "cumulative" else "Omitting "
    assert [prefix + label[r.study] for r in seq] == [t for t in shown if t.startswith(prefix)]
    if kind == "cumulative":  # ordered by year, and the year shown
        years = [int(keys[r.study]) for r in seq]
        assert years == sorted(years) and all(str(y) in shown for y in years)
        assert seq[-1].estimate == pytest.approx(res.estimate)  # the last fit holds every study
    dashed = [ln for ln in fig._hatmeta_axes.lines if ln.get_gid() == "all-studies-line"]
    assert dashed and dashed[0].get_xdata()[0] == pytest.approx(res.estimate)


def test_cli_writes_png(tmp_path, capsys):
    from matplotlib.image import imread

    for args, name in ((["--cumulative", "year"], "c.png"), (["--leave-one-out"], "l.png")):
        with pytest.raises(SystemExit) as exc:
            main(["forest", "retention", *args, "--out", str(tmp_path / name)])
        assert exc.value.code == 0
        assert capsys.readouterr().out.strip() == str(tmp_path / name)
        img = imread(tmp_path / name)
        assert img.shape[0] > 200 and img.shape[1] > 500
    with pytest.raises(SystemExit) as exc:
        main(["forest", "retention", "--cumulative", "year", "--leave-one-out"])
    assert exc.value.code == 2 and "option '--leave-one-out'" in capsys.readouterr().err
