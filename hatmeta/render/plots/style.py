"""Shared look and reproducible saving of figures.

Byte-identical output: matplotlib writes a creation date into PDF, a software tag into PNG and
random ids into SVG unless told otherwise; ``save`` removes the first two and fixes the SVG
hash salt. Fonts are matplotlib's bundled DejaVu Sans, so text metrics do not depend on the
system's fonts. PNG rasterisation can still differ across FreeType builds (see reports/README.md).

Text in scripts DejaVu Sans lacks (Chinese, Japanese, Korean, Devanagari, Thai, ...) falls back,
glyph by glyph, to the Noto fonts of Debian's fonts-noto-core and fonts-noto-cjk (README: install
them). A text that DejaVu covers names DejaVu alone, so Latin, Greek and Cyrillic output is the
same with or without Noto; a character no font has is drawn as a box, with one warning naming it
(matplotlib's per-glyph warnings are silenced).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    import os

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FORMATS = ("png", "svg", "pdf")
DPI = 300
STYLE: dict[str, Any] = {
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


_Draw = TypeVar("_Draw", bound=Callable[..., Any])


def styled(draw: _Draw) -> _Draw:
    """Run a figure function under matplotlib's defaults plus STYLE, whatever the user's
    matplotlibrc says: fonts, sizes and line widths are fixed when the artists are created, so a
    local style must not leak into figures that ``hatmeta reproduce`` compares byte for byte."""
    import functools

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        pyplot()
        with matplotlib.rc_context(), _no_glyph_warnings():
            matplotlib.rcdefaults()
            matplotlib.rcParams.update(STYLE)  # type: ignore[arg-type]  # rc names, checked by matplotlib
            return draw(*args, **kwargs)

    return wrapper  # type: ignore[return-value]  # same signature, by functools.wraps


def title_width(ax: Axes, given: bool, default: int = 70) -> int:
    """Characters per line of a title over ``ax``: ``default`` on a figure of the plot's own, else as many
    as fit the width of the given Axes at 8 pt (a notebook's panel is narrower than the plot's figure)."""
    if not given:
        return default
    inches = ax.get_position().width * cast("Figure", ax.figure).get_size_inches()[0]  # (not a SubFigure)
    return max(20, min(default, int(inches / 0.075)))


def pyplot() -> Any:
    """matplotlib.pyplot with a non-interactive backend, imported lazily."""
    import warnings

    # matplotlib up to 3.10 calls pyparsing names that pyparsing 3.3 deprecates: its own business, not the
    # user's, and on the command line such warnings would print as 'warning:' lines (found at the lower
    # bound matplotlib 3.8 in CI). Only DeprecationWarnings raised from matplotlib's modules are silenced.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"matplotlib(\..*)?$")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save(fig: Figure, path: str | os.PathLike[str], fmt: str | None = None) -> Path:
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
    with matplotlib.rc_context(), _no_glyph_warnings():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(STYLE)  # type: ignore[arg-type]  # rc names, checked by matplotlib
        fig.savefig(path, format=fmt, dpi=DPI, metadata=METADATA[fmt], facecolor="white")
    return path


# Noto files by name (loaded by path, so matplotlib's font cache need not know them), in the order
# they are tried: CJK first (it also covers much of Latin and Cyrillic), then one font per script.
NOTO_DIRS = ("/usr/share/fonts/opentype/noto", "/usr/share/fonts/truetype/noto",
             "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
NOTO_FILES = ("NotoSansCJK-Regular.ttc", "NotoSans-Regular.ttf", "NotoSansArabic-Regular.ttf",
              "NotoSansHebrew-Regular.ttf", "NotoSansDevanagari-Regular.ttf", "NotoSansBengali-Regular.ttf",
              "NotoSansTamil-Regular.ttf", "NotoSansThai-Regular.ttf", "NotoSansGeorgian-Regular.ttf",
              "NotoSansArmenian-Regular.ttf", "NotoSansEthiopic-Regular.ttf")
_missing_warned: set[str] = set()


def _charmap(path: str | os.PathLike[str]) -> frozenset[int]:
    from matplotlib import ft2font

    return frozenset(ft2font.FT2Font(str(path)).get_charmap())


_FALLBACKS: list[tuple[str, frozenset[int]]]  # set on first use (a NameError until then)
_DEJAVU: frozenset[int]


def _fallbacks() -> list[tuple[str, frozenset[int]]]:
    """[(family, codepoints)] of the Noto fonts found, in NOTO_FILES order (cached)."""
    global _FALLBACKS
    try:
        return _FALLBACKS
    except NameError:
        pass
    from pathlib import Path

    from matplotlib import font_manager

    found = []
    for name in NOTO_FILES:
        for d in NOTO_DIRS:
            path = Path(d).expanduser() / name
            if path.is_file():
                from matplotlib import ft2font

                family = ft2font.FT2Font(str(path)).family_name
                if not any(e.name == family for e in font_manager.fontManager.ttflist):
                    font_manager.fontManager.addfont(str(path))
                    bold = path.with_name(name.replace("-Regular", "-Bold"))
                    if bold.is_file():
                        font_manager.fontManager.addfont(str(bold))
                found.append((family, _charmap(path)))
                break
    _FALLBACKS = found
    return found


def _dejavu() -> frozenset[int]:
    global _DEJAVU
    try:
        return _DEJAVU
    except NameError:
        from matplotlib import font_manager

        _DEJAVU = _charmap(font_manager.findfont("DejaVu Sans", fallback_to_default=False))
        return _DEJAVU


def families(text: str) -> list[str]:
    """Font families for ``text``: ["DejaVu Sans"] when it covers every character, else DejaVu then the
    Noto fonts that cover the rest. Characters no font has are named in one warning per text."""
    need = {ord(c) for c in str(text) if not c.isspace()} - _dejavu()
    if not need:
        return ["DejaVu Sans"]
    out = ["DejaVu Sans"]
    for family, cmap in _fallbacks():
        if need & cmap:
            out.append(family)
            need -= cmap
        if not need:
            break
    if need and text not in _missing_warned:
        import warnings

        _missing_warned.add(text)
        chars = "".join(sorted(chr(c) for c in need))
        warnings.warn(f"no installed font draws {chars!r} (in {text!r}); install Debian's fonts-noto-core "
                      "and fonts-noto-cjk (see README)", stacklevel=2)
    return out


def _no_glyph_warnings() -> contextlib.ExitStack[bool | None]:
    """matplotlib warns once per missing glyph; ``families`` has already said it once, by text."""
    import contextlib
    import warnings

    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from")
    return stack
