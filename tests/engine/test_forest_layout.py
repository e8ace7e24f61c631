"""Forest plots lay themselves out: adversarial labels and sizes, checked on the drawn artists'
bounding boxes (no two texts overlap, nothing leaves the canvas, no table text runs into the plot)."""

import math
import warnings

import numpy as np
import pytest

from hatmeta.api import pool_table
from hatmeta.io.trial_table import table_from_rows
from hatmeta.render.plots import forest, save

LONG = ("A sixty-character trial name that goes on and on and on, really", "Heroin-assisted treatment",
        "Oral methadone maintenance")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def table(k, seed=1, label=None, groups="A", zero=()):
    rng = np.random.default_rng(seed)
    rows = [["study", "events_treat", "n_treat", "events_ctrl", "n_ctrl", "label", "region", "year"]]
    for i in range(k):
        n1, n2 = int(rng.integers(30, 600)), int(rng.integers(30, 600))
        p2 = rng.uniform(0.2, 0.6)
        p1 = min(0.95, p2 * math.exp(rng.normal(0.3, 0.3)))
        e1, e2 = (0, 0) if i in zero else (int(rng.binomial(n1, p1)), int(rng.binomial(n2, p2)))
        name = label(i) if label else f"Trial {i}"
        rows.append([f"s{i:02d}", str(e1), str(n1), str(e2), str(n2), name, groups[i % len(groups)],
                     str(2000 + (7 * i) % 23)])
    return table_from_rows(rows)


def drawn_boxes(fig):
    """(text, bbox) of every visible text of the figure, its axes' tick labels included."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    out = [(t.get_text(), t.get_window_extent(r)) for t in fig.texts if t.get_text() and t.get_visible()]
    for ax in fig.axes:
        if not ax.axison:
            continue
        for t in ax.get_xticklabels() + ax.get_yticklabels():
            if t.get_text() and t.get_visible():
                out.append((t.get_text(), t.get_window_extent(r)))
    return out, r


def assert_laid_out(fig):
    """At the screen's resolution and at the saved PNG's (hinting makes text widths differ between them)."""
    from hatmeta.render.plots.style import DPI

    screen = fig.dpi
    try:
        fig.set_dpi(DPI)
        _assert_laid_out(fig)
    finally:
        fig.set_dpi(screen)
    return _assert_laid_out(fig)


def _assert_laid_out(fig):
    boxes, r = drawn_boxes(fig)
    # every pair at once (Bbox.overlaps, vectorised: strict inequalities, so touching is not overlapping)
    e = np.array([[b.x0, b.y0, b.x1, b.y1] for _, b in boxes])
    hit = ((e[:, None, 0] < e[None, :, 2]) & (e[None, :, 0] < e[:, None, 2])
           & (e[:, None, 1] < e[None, :, 3]) & (e[None, :, 1] < e[:, None, 3]))
    np.fill_diagonal(hit, False)
    pairs = [(boxes[i][0], boxes[j][0]) for i, j in zip(*np.nonzero(np.triu(hit)))]
    assert not pairs, f"overlapping texts: {pairs[:5]}"
    W, H = fig.get_size_inches() * fig.dpi
    for name, box in boxes:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= W + 0.5 and box.y1 <= H + 0.5, f"{name!r} leaves the canvas"
    panel = fig._hatmeta_axes.get_window_extent(r)
    for name, box in boxes:
        beside = box.y1 > panel.y0 and box.y0 < panel.y1
        if beside and box.x0 < panel.x0:
            assert box.x1 <= panel.x0, f"{name!r} runs into the plot"
        if beside and box.x1 > panel.x1:
            assert box.x0 >= panel.x1, f"{name!r} runs into the plot from the right"
    # markers and patches of the panel stay on the canvas too
    for ax in fig.axes:
        ext = ax.get_tightbbox(r)
        assert ext.x0 >= -0.5 and ext.x1 <= W + 0.5 and ext.y0 >= -0.5 and ext.y1 <= H + 0.5
    return boxes


def shown(fig):
    return [t.get_text() for t in fig.texts]


def test_long_arm_and_favours_labels_wrap_onto_two_lines_and_nothing_overlaps(tmp_path):
    res = pool_table(table(8, label=lambda i: LONG[0] if i == 3 else f"Trial {i}"), "RR")
    fig = forest(res, labels=LONG[1:], title="Retention in treatment, " * 4)
    assert_laid_out(fig)
    texts = shown(fig)
    assert "Heroin-assisted\ntreatment" in texts and "Oral methadone\nmaintenance" in texts
    assert any(t.startswith("Favours Heroin") and "\n" in t for t in texts)
    assert LONG[0] in texts  # study labels are never cut
    # wrapping, not widening: the figure stays narrower than the last-resort limit at the base font
    assert fig.get_size_inches()[0] < 13
    assert {t.get_fontsize() for t in fig.texts if t.get_text() == LONG[0]} == {8.0}
    save(fig, tmp_path / "long.png")


def test_dollar_signs_are_text_not_mathtext_and_an_unbreakable_label_steps_the_font_down():
    odd = "Cost $2 vs $3 (x^2_{i})"
    giant = "X" * 200  # one word: no wrapping can help, so the font steps down (the last resort)
    res = pool_table(table(3, label=lambda i: [odd, giant, "Trial 2"][i]), "RR")
    fig = forest(res)
    assert_laid_out(fig)
    drawn = {t.get_text(): t for t in fig.texts}
    assert odd in drawn and drawn[giant].get_fontsize() == 6.5
    small = forest(pool_table(table(3), "RR"))
    assert {t.get_fontsize() for t in small.texts if t.get_text() == "Trial 2"} == {8.0}


def test_one_study_and_eighty_studies():
    one = pool_table(table(1), "RR", method="FE")
    assert_laid_out(forest(one, labels=LONG[1:]))
    many = pool_table(table(80, seed=2, label=lambda i: f"{LONG[0][:40]} {i}"), "RR")
    fig = forest(many, labels=LONG[1:])
    assert_laid_out(fig)
    assert len([ln for ln in fig._hatmeta_axes.lines if (ln.get_gid() or "").startswith("study-")]) == 80


def test_subgroups_with_the_bayesian_overlay_and_long_labels():
    from hatmeta.api import pool_bayes

    t = table(30, seed=5, label=lambda i: LONG[0][: 20 + (i * 7) % 41], groups=["Injected heroin", "Inhaled"])
    res = pool_table(t, "RR", subgroup="region", ci="hksj")
    post, _ = pool_bayes(res, benefit="higher")
    fig = forest(res, benefit="higher", labels=LONG[1:], study_groups=dict(zip(t.studies, t.column("region"))),
                 bayes=post.to_dict(), title="Subgroups")
    assert_laid_out(fig)
    texts = shown(fig)
    # RevMan's rows: total events under the Events columns (per subgroup and overall) and a test for
    # overall effect per subgroup
    assert texts.count("Total events") == 3
    assert sum(x.startswith("Test for overall effect: t = ") for x in texts) == 3  # HKSJ: t on k - 1 df
    from hatmeta.render.plots.forest import subgroup_test_of_effect

    for g in res.subgroups:  # the test agrees with the subgroup's CI (both t on k - 1 df)
        stat, p, df = subgroup_test_of_effect(res, g)
        assert df == g.k - 1 and (p < 0.05) == (not g.ci_low <= 0 <= g.ci_high)
        assert f"Test for overall effect: t = {abs(stat):.2f}, df = {df}" in " ".join(texts)
    ins = [s.inputs for s in res.studies]
    assert str(sum(i["events_treat"] for i in ins)) in texts and str(sum(i["events_ctrl"] for i in ins)) in texts


# Which Noto fonts the test pretends are installed, from those it finds: none, Debian's fonts-noto-core
# (every fallback but CJK) or fonts-noto-core with fonts-noto-cjk. Each installation renders differently
# and each must be graceful; the first always runs, the others skip when the fonts are not here.
FONT_SETS = {"no-noto": lambda found: [],
             "noto-core": lambda found: [f for f in found if "CJK" not in f[0]],
             "noto-core-and-cjk": lambda found: list(found)}
NEEDS = {"noto-core": "fonts-noto-core (NotoSans-Regular.ttf and the other script fonts)",
         "noto-core-and-cjk": "fonts-noto-cjk (NotoSansCJK-Regular.ttc) and fonts-noto-core"}


@pytest.mark.parametrize("fonts", sorted(FONT_SETS))
def test_non_latin_labels_render_with_a_covering_font_and_no_glyph_warnings(tmp_path, capfd, monkeypatch, fonts):
    from matplotlib.text import Text

    from hatmeta.render.plots import style

    found = style._fallbacks()
    have = FONT_SETS[fonts](found)
    if (fonts == "noto-core" and not have) or (fonts == "noto-core-and-cjk" and not any("CJK" in f for f, _ in have)):
        pytest.skip(f"{NEEDS[fonts]} not installed in {', '.join(style.NOTO_DIRS)}")
    monkeypatch.setattr(style, "_FALLBACKS", have)
    monkeypatch.setattr(style, "_missing_warned", set())
    names = ["北京大学试验 2019", "Исследование Москва", "دراسة القاهرة", "अध्ययन दिल्ली", "東京研究", "Ελληνική δοκιμή"]
    t = table(len(names), seed=3, label=lambda i: names[i])
    res = pool_table(t, "RR")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = forest(res, labels=("海洛因", "美沙酮"))
        with warnings.catch_warnings():  # the layout check's own draws, outside hatmeta's drawing and saving
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from")
            assert_laid_out(fig)
        save(fig, tmp_path / "nonlatin.png")
    # matplotlib's per-glyph warnings never reach the user from forest() and save(), whatever is installed
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert "missing from font" not in capfd.readouterr().err
    cmaps = {"DejaVu Sans": style._dejavu(), **dict(have)}
    covered = frozenset().union(*cmaps.values())
    texts = {a.get_text(): a for a in fig.findobj(Text) if a.get_text().strip()}
    for name in names:
        assert name in texts
    uncovered = {s for s in texts if any(ord(c) not in covered for c in s if not c.isspace())}
    # every text some character of which no installed font has gets one warning naming the fonts to
    # install, and no other such warning is given (all of them covered: none at all). matplotlib 3.7
    # adds its own "does not support Devanagari natively" (no shaping), which is true and not ours.
    hatmeta_warnings = [str(w.message) for w in caught if "no installed font draws" in str(w.message)]
    assert len(hatmeta_warnings) == len(uncovered), hatmeta_warnings
    for s in uncovered:
        said = [m for m in hatmeta_warnings if f"(in {s!r})" in m]
        assert len(said) == 1 and "fonts-noto" in said[0], (s, hatmeta_warnings)
    # every character a font has is drawn from a family that has it (DejaVu first, then the fallbacks)
    for s, artist in texts.items():
        family = artist.get_fontfamily()
        assert family[0] == "DejaVu Sans"
        for c in s:
            if not c.isspace() and ord(c) in covered:
                assert any(ord(c) in cmaps[f] for f in family), (s, c, family)
    if fonts == "no-noto":  # only the scripts DejaVu covers (Latin, Greek, Cyrillic, Arabic) are drawn
        assert {"北京大学试验 2019", "東京研究", "अध्ययन दिल्ली"} <= uncovered
    if fonts == "noto-core":  # Devanagari now drawn (Noto Sans Devanagari); the CJK names still missing, said so
        assert "अध्ययन दिल्ली" not in uncovered and {"北京大学试验 2019", "東京研究"} <= uncovered
    if fonts == "noto-core-and-cjk":
        assert not uncovered and any("CJK" in f for f in texts[names[0]].get_fontfamily())
    assert texts["Ελληνική δοκιμή"].get_fontfamily() == ["DejaVu Sans"]  # DejaVu covers Greek
    assert texts["Исследование Москва"].get_fontfamily() == ["DejaVu Sans"]  # and Cyrillic


def test_latin_output_names_only_dejavu_so_bytes_do_not_depend_on_installed_fonts(tmp_path):
    res = pool_table(table(4), "RR")
    path = save(forest(res, labels=LONG[1:]), tmp_path / "f.svg")
    svg = path.read_text()
    assert "Noto" not in svg and "DejaVu Sans" in svg


def test_risk_of_bias_traffic_lights_and_legend():
    t = table(6, seed=4, label=lambda i: LONG[0] if i == 0 else f"Trial {i}")
    res = pool_table(t, "RR")
    domains = ["Random sequence generation (selection bias)", "Allocation concealment (selection bias)",
               "Blinding of participants and personnel (performance bias)", "Incomplete outcome data (attrition bias)"]
    levels = ["low", "some concerns", "high", "not assessed", "unclear"]
    rob = {s: {d: levels[(j + i) % len(levels)] for j, d in enumerate(domains)} for i, s in enumerate(t.studies)}
    fig = forest(res, labels=LONG[1:], risk_of_bias=rob)
    assert_laid_out(fig)
    texts = shown(fig)
    for letter, d in zip("ABCD", domains):
        assert letter in texts and f"({letter}) {d}" in texts
    assert "Risk of Bias" in texts and "Risk of bias legend" in texts
    rob_ax = fig._hatmeta_rob_axes
    marks = {ln.get_gid(): ln for ln in rob_ax.lines}
    assert len(marks) == 6 * 4
    from hatmeta.render.plots.forest import ROB_LOOK

    for s, judged in rob.items():
        for d, j in judged.items():
            assert marks[f"rob-{s}-{d}"].get_color() == ROB_LOOK[j][0]
    signs = [x.get_text() for x in rob_ax.texts]
    assert signs.count("+") == sum(j == "low" for v in rob.values() for j in v.values())
    # the traffic lights sit right of the plot panel and inside the canvas
    r = fig.canvas.get_renderer()
    assert rob_ax.get_window_extent(r).x0 > fig._hatmeta_axes.get_window_extent(r).x1
    assert rob_ax.get_tightbbox(r).x1 <= fig.get_size_inches()[0] * fig.dpi


def test_not_estimable_studies_are_rows_counted_in_the_totals_and_in_json():
    t = table(5, seed=6, zero=(2,))
    res = pool_table(t, "RR")
    assert res.k == 4 and [a["study"] for a in res.not_estimable] == ["s02"]
    d = res.to_dict()
    assert d["not_estimable"][0]["inputs"]["n_treat"] == int(t.columns["n_treat"][2])
    fig = forest(res, labels=("HAT", "Methadone"))
    assert_laid_out(fig)
    texts = shown(fig)
    assert "Trial 2" in texts and "Not estimable" in texts
    assert str(int(t.columns["n_treat"].sum())) in texts and str(int(t.columns["n_ctrl"].sum())) in texts


@pytest.mark.parametrize("sort", ["weight", "effect", "year"])
def test_sort_orders_the_rows(sort):
    t = table(7, seed=7)
    res = pool_table(t, "RR")
    years = dict(zip(t.studies, t.column("year")))
    fig = forest(res, sort=sort, years=years)
    by_label = {s.label: s for s in res.studies}
    rows = sorted((t_.get_position()[1], t_.get_text()) for t_ in fig.texts if t_.get_text() in by_label)
    order = [by_label[name] for _, name in reversed(rows)]  # top to bottom
    key = {"weight": lambda s: -s.weight, "effect": lambda s: s.yi, "year": lambda s: float(years[s.study])}[sort]
    assert [key(s) for s in order] == sorted(key(s) for s in order)


def test_level_changes_the_ci_heading():
    res = pool_table(table(4), "RR", level=0.9)
    texts = shown(forest(res))
    assert "IV, Random, 90% CI" in texts and "Total (90% CI)" in texts


def test_report_shows_the_forest_svg_with_text_at_body_size(tmp_path):
    """The HTML report inlines the SVG at twice its size in points as pixels: 8 pt table text shows at
    16 px (the page's body text), nothing below the 0.85 em of the report's footnotes."""
    import re

    from hatmeta.review.report import _inline_svg

    res = pool_table(table(40, seed=9, label=lambda i: LONG[0]), "RR")
    path = save(forest(res, labels=LONG[1:]), tmp_path / "f.svg")
    html = _inline_svg(path)
    width_px = float(re.search(r'<svg[^>]*? width="([\d.]+)px"', html).group(1))
    view_w = float(re.search(r'viewBox="0 0 ([\d.]+) ', html).group(1))
    scale = width_px / view_w  # CSS px per SVG user unit (pt)
    # matplotlib 3.11 writes font-size: 8px; 3.7 and 3.8 the shorthand font: 8px 'DejaVu Sans'
    sizes = [float(x) for x in re.findall(r"font(?:-size)?: ([\d.]+)px", html)]
    assert sizes and max(sizes) * scale >= 16 - 0.01 and min(sizes) * scale >= 0.85 * 16 - 0.5
    assert "width:100%" not in html


def test_the_layout_check_catches_an_overlap_and_a_text_off_the_canvas():
    res = pool_table(table(3), "RR")
    fig = forest(res)
    label = next(t for t in fig.texts if t.get_text() == "Trial 1")
    fig.text(*label.get_position(), "Trial 1 again", fontsize=8)
    with pytest.raises(AssertionError, match="overlapping"):
        assert_laid_out(fig)
    fig = forest(res)
    fig.text(0.99, 0.5, "runs off the right edge", fontsize=8)
    with pytest.raises(AssertionError, match="leaves the canvas"):
        assert_laid_out(fig)


def test_forest_and_funnel_draw_on_a_given_axes():
    import matplotlib.pyplot as plt

    from hatmeta.render.plots import funnel

    res = pool_table(table(12, seed=11), "RR", small_study="egger")
    fig, ax = plt.subplots()
    assert forest(res, ax=ax) is fig and fig._hatmeta_axes is ax
    assert len([ln for ln in ax.lines if (ln.get_gid() or "").startswith("study-")]) == 12
    assert_laid_out(fig)
    fig2, ax2 = plt.subplots(figsize=(4, 4))
    assert funnel(res, res.egger, ax=ax2) is fig2
    assert any(ln.get_gid() == "egger" for ln in ax2.lines)  # 12 studies: the line is drawn


def test_risk_of_bias_words_are_normalised_and_an_unknown_one_is_an_input_error():
    from hatmeta.errors import InputError
    from hatmeta.render.plots.forest import rob_judgement

    assert rob_judgement("Low risk") == "low" and rob_judgement("Some concerns") == "some concerns"
    assert rob_judgement("unclear  risk") == "unclear" and rob_judgement("HIGH") == "high"
    res = pool_table(table(2), "RR", method="FE")
    with pytest.raises(InputError, match="s00, Blinding: 'maybe'"):
        forest(res, risk_of_bias={"s00": {"Blinding": "maybe"}})
