"""Shared look and reproducible saving of figures.

Byte-identical output: matplotlib writes a creation date into PDF, a software tag into PNG and
random ids into SVG unless told otherwise; ``save`` removes the first two and fixes the SVG
hash salt. Fonts are matplotlib's bundled DejaVu Sans, so text metrics do not depend on the
system's fonts. PNG rasterisation can still differ across FreeType builds (see reports/README.md).
"""

from __future__ import annotations

from pathlib import Path

FORMATS = ("png", "svg", "pdf")
DPI = 300
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "svg.hashsalt": "hatmeta",
    "svg.fonttype": "none",  # text stays text in SVG: searchable, and testable
    "pdf.fonttype": 42,
    "path.simplify": False,
}
METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
}
INK = "#1a1a1a"
STUDY = "#2b5d8a"  # study squares
POOLED = "#1a1a1a"  # the pooled diamond
BAYES = "#b3541e"  # Bayesian overlay


def styled(draw):
    """Run a figure function under matplotlib's defaults plus STYLE, whatever the user's
    matplotlibrc says: fonts, sizes and line widths are fixed when the artists are created, so a
    local style must not leak into figures that ``hatmeta reproduce`` compares byte for byte."""
    import functools

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        import matplotlib

        pyplot()
        with matplotlib.rc_context():
            matplotlib.rcdefaults()
            matplotlib.rcParams.update(STYLE)
            return draw(*args, **kwargs)

    return wrapper


def pyplot():
    """matplotlib.pyplot with a non-interactive backend, imported lazily."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path, fmt=None) -> Path:
    """Write ``fig`` as PNG (300 dpi), SVG or PDF, chosen by ``fmt`` or the file's suffix."""
    import matplotlib

    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        from ...errors import InputError

        raise InputError(f"unknown figure format {fmt!r}; choose png, svg or pdf", file=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not hasattr(fig, "_hatmeta_drawn"):  # draw the numbers of the output policy (render/figdata.py)
        from ..figdata import drawn

        drawn(fig)
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(STYLE)
        fig.savefig(path, format=fmt, dpi=DPI, metadata=METADATA[fmt], facecolor="white")
    return path
