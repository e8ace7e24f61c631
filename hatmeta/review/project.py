"""Where the review's folders are: data/extracted/, analyses/, reports/.

The extraction and the analysis specifications live in the repository, so that a reviewer who edits
them sees the edit used. They are found like git finds its repository: the current folder or the
nearest parent holding both ``data/extracted`` and ``analyses`` (a clone, or a working copy made by
``hatmeta init DIR``); failing that, the source tree of an editable install; failing that, the copy
bundled in the installed package (``hatmeta/review/bundled/``, written by setup.py's build step), so
that ``pip install .`` then ``hatmeta pool retention`` works in any folder.
"""

from __future__ import annotations

from pathlib import Path

BUNDLED = Path(__file__).resolve().parent / "bundled"


def _is_root(path: Path) -> bool:
    return (path / "data" / "extracted").is_dir() and (path / "analyses").is_dir()


def project_root() -> Path:
    """The project folder, or the current folder when none is found (errors then name the path)."""
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if _is_root(folder):
            return folder
    source = Path(__file__).resolve().parents[2]  # <source>/hatmeta/review/project.py
    if _is_root(source):
        return source
    return BUNDLED if _is_root(BUNDLED) else cwd


def is_bundled(root: Path) -> bool:
    """True when ``root`` is the read-only copy inside the installed package."""
    return root.resolve() == BUNDLED
