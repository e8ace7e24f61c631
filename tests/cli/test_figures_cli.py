"""Figure commands and the shared number formatter, as a reviewer uses them."""

import math
import subprocess
import sys

import numpy as np

from hatmeta import numbers
from hatmeta.api import pool_table
from hatmeta.io.trial_table import table_from_rows

from ..conftest import FIXTURES, ROOT

BCG = str(ROOT / "tests" / "fixtures" / "data" / "bcg.csv")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hatmeta.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT)


def test_numbers_never_print_minus_zero_and_keep_two_significant_digits():
    assert numbers.est_ci(-0.0002, -0.0022, 0.0017) == "-0.0002 [-0.0022, 0.0017]"
    assert numbers.est_ci(1.2856, 0.7318, 2.2584) == "1.29 [0.73, 2.26]"
    assert numbers.num(-0.0001, 2) == "0.00"
    assert numbers.tau2_text(0.1201) == "0.12" and numbers.tau2_text(0.00031) == "0.00031"
    assert numbers.tau2_text(0.0) == "0"
    for p, text in ((0.5, "P = 0.50"), (0.0049, "P = 0.005"), (0.00012, "P = 0.0001"), (0.00007, "P < 0.0001"),
                    (1e-7, "P < 0.00001"), (0.0096, "P = 0.01")):
        assert numbers.fmt_p(p) == text


def test_risk_differences_print_their_digits_in_figure_table_and_text():
    from hatmeta.render.plots import forest
    from hatmeta.render.tables import result_table
    from hatmeta.summary import format_result

    rows = [["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"]] + [
        [f"s{i}", str(a), "1000", str(b), "1000"] for i, (a, b) in enumerate([(3, 4), (2, 5), (1, 1), (6, 3), (4, 4)])]
    res = pool_table(table_from_rows(rows), "RD")
    pooled = numbers.est_ci(res.estimate, res.ci_low, res.ci_high)
    assert "-0.00 " not in pooled and "[-0.00," not in pooled
    fig = forest(res)
    assert pooled in [t.get_text() for t in fig.texts]
    assert pooled in result_table(res) and pooled in format_result(res)
    # the continuous axis has nice ticks (1, 2 or 5 times a power of ten)
    ticks = [float(t.get_text().replace("−", "-")) for t in fig._hatmeta_axes.get_xticklabels()]
    steps = {round(b - a, 12) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1
    step = steps.pop()
    mant = step / 10 ** math.floor(math.log10(step))
    assert round(mant, 9) in (1, 2, 5)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_not_estimable_rows_in_tables_count_their_participants():
    from hatmeta.render.tables import result_rows

    rows = [["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl"], ["a", "0", "50", "0", "40"],
            ["b", "5", "60", "9", "70"], ["c", "8", "80", "12", "75"]]
    res = pool_table(table_from_rows(rows), "RR")
    head, body = result_rows(res, ("HAT", "MMT"))
    assert ["a", "0/50", "0/40", "Not estimable", ""] in body
    total = next(r for r in body if r[0].startswith("Total"))
    assert total[1:3] == ["13/190", "21/185"]


def test_forest_with_long_arm_labels_from_the_issue(tmp_path):
    out = tmp_path / "f.png"
    r = run("forest", "--data", BCG, "--measure", "RR", "--labels",
            "Heroin-assisted treatment,Oral methadone maintenance", "--out", str(out), "--sort", "year",
            "--level", "0.9", "--title", "BCG")
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 10_000 and r.stderr == ""


def test_sort_year_without_a_year_column_is_one_line(tmp_path):
    data = tmp_path / "t.csv"
    data.write_text("study,events_treat,n_treat,events_ctrl,n_ctrl\na,1,10,2,10\nb,3,10,4,10\n")
    r = run("forest", "--data", str(data), "--measure", "RR", "--sort", "year", "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "year" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_funnel_warns_below_ten_studies_and_draws_no_line_unless_asked(tmp_path):
    from hatmeta.render.plots import funnel

    few = tmp_path / "few.csv"
    few.write_text("\n".join(open(BCG).read().splitlines()[:5]) + "\n")
    r = run("funnel", "--data", str(few), "--measure", "RR", "--out", str(tmp_path / "f.png"))
    assert r.returncode == 0 and "4 studies" in r.stderr and "not drawn" in r.stderr
    helptext = run("funnel", "--help").stdout
    assert "--subgroup" not in helptext and "--labels" not in helptext and "--title" in helptext
    # drawn: no line with 4 studies unless asked; every study inside the axes
    res = pool_table(table_from_rows([ln.split(",") for ln in few.read_text().splitlines()]), "RR",
                     small_study="egger")
    for line, expect in ((None, False), (True, True)):
        fig = funnel(res, res.egger, line=line)
        ax = fig.axes[0]
        assert any(ln.get_gid() == "egger" for ln in ax.lines) == expect
        fig.canvas.draw()
        box = ax.get_window_extent()
        dots = next(ln for ln in ax.lines if ln.get_gid() == "studies")
        pts = ax.transData.transform(np.column_stack(dots.get_data()))
        r_px = dots.get_markersize() / 72 * fig.dpi / 2
        assert (pts[:, 0] - r_px >= box.x0).all() and (pts[:, 0] + r_px <= box.x1).all()
        assert (pts[:, 1] - r_px >= box.y0).all() and (pts[:, 1] + r_px <= box.y1).all()
    import matplotlib.pyplot as plt

    plt.close("all")


def test_posterior_legends_sit_outside_the_panels(tmp_path):
    from hatmeta.api import pool_bayes
    from hatmeta.render.plots import posterior

    res = pool_table(table_from_rows([ln.split(",") for ln in open(BCG).read().splitlines()]), "RR")
    post, _ = pool_bayes(res)
    fig = posterior(post, "RR", "log", title="t")
    fig.canvas.draw()
    for ax in fig.axes[:2]:
        leg = ax.get_legend().get_window_extent()
        assert leg.y1 <= ax.get_window_extent().y0  # below the panel, not over the data
    import matplotlib.pyplot as plt

    plt.close("all")


def test_every_plot_is_exported_from_one_place_and_forest_takes_the_revman_preset(tmp_path):
    """Issue 26, item 18: `from hatmeta.render.plots import baujat` works (every plot from one place);
    forest --preset revman5 draws RevMan 5's pooling; a too-small selection model blames the option."""
    import subprocess
    import sys

    from hatmeta.render import plots

    for name in ("forest", "funnel", "baujat", "influence_plot", "sensitivity_forest", "tsa_plot", "posterior",
                 "methods_plot", "network_graph", "save"):
        assert callable(getattr(plots, name)), name
    bcg = str(FIXTURES / "data" / "bcg.csv")
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "forest", "--data", bcg, "--measure", "RR", "--method",
                        "MH", "--preset", "revman5", "--out", str(tmp_path / "f.svg")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "M-H, Fixed" in (tmp_path / "f.svg").read_text()
    p = subprocess.run([sys.executable, "-m", "hatmeta.cli", "pool", "retention", "--selection-model", "step"],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and p.stderr.startswith("error: option '--selection-model':")
    assert "outcomes.csv" not in p.stderr
