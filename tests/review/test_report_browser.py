"""Every page of the report, opened in a real browser (headless Chromium), at 1280 px and 800 px wide.

Checked on the laid-out page: no figure extends past its column or sits in a box that scrolls, every
image loads, every internal link (to another page, an anchor or a file of the report) resolves. A
screenshot of the retention page at each width is written for a person to look at.

Needs Playwright for Python (``pip install -e .[test]`` installs it; no browser download: the test drives
Debian's Chromium, ``apt-get install chromium``). Without either the test is skipped, saying which is
missing. The network is not used: the pages are opened from files, and Chromium is started without its
background services.

By default the report is built into the test's temporary folder (a few minutes); set
HATMETA_REPORT_DIR=reports to check an existing folder instead. The screenshots are written to the
test's tmp folder (pytest keeps the last three runs under /tmp/pytest-of-$USER/); to keep them
elsewhere set HATMETA_SCREENSHOTS=DIR (the test prints where they went).
"""

import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

CHROMIUM = os.environ.get("HATMETA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTHS = (1280, 800)

# In the page: every figure container and every image or outermost SVG, with the boxes that matter.
# A container that scrolls (scrollWidth > clientWidth) hides part of what it holds; an image wider than
# the column, or reaching past its container's box, is clipped or runs off the page.
MEASURE = """() => {
  const out = {containers: [], images: [], column: null};
  const body = document.body, cs = getComputedStyle(body), r = body.getBoundingClientRect();
  out.column = {left: r.left + parseFloat(cs.paddingLeft), right: r.right - parseFloat(cs.paddingRight)};
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                     (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '');
  for (const el of document.querySelectorAll('.figure, pre, table')) {
    out.containers.push({name: name(el), scroll: el.scrollWidth, client: el.clientWidth,
                         figure: el.classList.contains('figure')});
  }
  for (const el of document.querySelectorAll('img, svg')) {
    if (el.parentElement.closest('svg')) continue;  // an SVG's own parts
    const b = el.getBoundingClientRect();
    const box = (el.closest('.figure') || body).getBoundingClientRect();
    const fig = el.closest('.figure'), link = fig && fig.querySelector('a[href]');  // its full-size file
    const label = el.getAttribute('src') || (link ? link.getAttribute('href') : 'figure ' + out.images.length);
    out.images.push({tag: el.tagName.toLowerCase(), label: label.slice(0, 60), left: b.left, right: b.right,
                     width: b.width, height: b.height, box_left: box.left, box_right: box.right,
                     loaded: el.tagName.toLowerCase() === 'img' ? (el.complete && el.naturalWidth > 0) : true});
  }
  out.links = Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'));
  out.ids = Array.from(document.querySelectorAll('[id]')).map(e => e.id);
  out.page_width = document.documentElement.scrollWidth;
  return out;
}"""


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install playwright; it is in the 'test' extra)")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; or set HATMETA_CHROMIUM)")
    return sync_playwright


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    sync_playwright = _playwright()
    with sync_playwright() as p:
        profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh profile: no state from other runs
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                       args=ARGS, offline=True)
        yield context
        context.close()


@pytest.fixture(scope="module")
def report(browser, tmp_path_factory):
    given = os.environ.get("HATMETA_REPORT_DIR")
    if given:
        return Path(given).resolve()
    from hatmeta.review.report import build_report

    out = tmp_path_factory.mktemp("report")
    build_report(out)
    return out


def _ids_of(page: Path, cache=None):
    if cache is None:
        cache = {}
    if page not in cache:
        cache[page] = set(re.findall(r'\bid="([^"]+)"', page.read_text()))
    return cache[page]


def _link_problem(page: Path, href: str, ids_here: set, root: Path):
    """Why ``href`` on ``page`` does not resolve, or None."""
    url = urlparse(href)
    if url.scheme in ("http", "https", "mailto"):
        return None  # external: not followed (no network)
    if url.scheme not in ("", "file"):
        return f"unexpected link scheme {href!r}"
    target = page if not url.path else (page.parent / unquote(url.path)).resolve()
    if not target.exists():
        return f"{href!r}: no file {target}"
    if root not in target.parents and target != root:
        return f"{href!r} leaves the report folder"
    if url.fragment:
        ids = ids_here if target == page else _ids_of(target)
        if url.fragment not in ids:
            return f"{href!r}: no element with id {url.fragment!r}"
    return None


@pytest.mark.parametrize("width", WIDTHS)
def test_every_report_page_shows_its_figures_whole_and_its_links_resolve(browser, report, width, tmp_path):
    pages = sorted(report.glob("*.html"))
    assert pages, f"no pages in {report}"
    problems, figures = [], 0
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    errors = []
    page.on("requestfailed", lambda r: errors.append(f"{r.url}: {r.failure}"))
    try:
        for path in pages:
            page.goto(path.as_uri(), wait_until="load")
            m = page.evaluate(MEASURE)
            where = f"{path.name} at {width} px"
            for c in m["containers"]:
                if c["figure"] and c["scroll"] > c["client"] + 1:
                    problems.append(f"{where}: {c['name']} scrolls ({c['scroll']} > {c['client']} px)")
            col = m["column"]
            for im in m["images"]:
                figures += 1
                if not im["loaded"]:
                    problems.append(f"{where}: image {im['label']!r} did not load")
                if im["width"] < 1 or im["height"] < 1:
                    problems.append(f"{where}: {im['tag']} {im['label']!r} has no size")
                if im["right"] > min(col["right"], im["box_right"]) + 1 or im["left"] < max(col["left"],
                                                                                             im["box_left"]) - 1:
                    problems.append(f"{where}: {im['tag']} {im['label']!r} spans {im['left']:.0f}-{im['right']:.0f} "
                                    f"px, its column {col['left']:.0f}-{col['right']:.0f} px")
            ids = set(m["ids"])
            for href in m["links"]:
                why = _link_problem(path, href, ids, report.resolve())
                if why:
                    problems.append(f"{path.name}: {why}")
            if path.name == "retention.html":
                shots = Path(os.environ.get("HATMETA_SCREENSHOTS") or tmp_path)
                shots.mkdir(parents=True, exist_ok=True)
                shot = shots / f"retention-{width}px.png"
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot: {shot}")
    finally:
        page.close()
    assert figures > len(pages), "the pages hold fewer figures than expected: is the report complete?"
    assert not errors, "requests failed:\n" + "\n".join(errors)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])
