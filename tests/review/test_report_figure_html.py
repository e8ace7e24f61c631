"""The report's figures fit their column: inline SVGs shrink to it (and stay vectors), with links to the
full-size files. The browser test (test_report_browser.py) checks the drawn pages; this one the markup."""

import re

from hatmeta.review.report import CSS, _inline_svg


def test_an_inline_figure_scales_to_the_column_and_links_its_full_size_files(tmp_path):
    from hatmeta.render.plots import save
    from hatmeta.render.plots.style import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(16, 3))  # 16 in: 2,300 px as the report shows it, twice the column
    ax.plot([0, 1], [0, 1])
    (tmp_path / "figures").mkdir()
    for fmt in ("svg", "png"):
        save(fig, tmp_path / "figures" / f"wide-forest.{fmt}")
    plt.close(fig)
    html = _inline_svg(tmp_path / "figures" / "wide-forest.svg")
    svg = re.search(r"<svg[^>]*>", html).group(0)
    assert "viewBox=" in svg  # what lets the browser scale it without rasterising
    assert re.search(r"\.figure svg\{[^}]*max-width:100%[^}]*height:auto", CSS)
    assert "overflow-x:auto" not in CSS  # no figure behind a scrollbar
    assert 'href="figures/wide-forest.svg"' in html and 'href="figures/wide-forest.png"' in html
    assert "wide-forest.pdf" not in html  # only files that exist are linked
